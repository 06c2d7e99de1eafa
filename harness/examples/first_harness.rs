//! The smallest useful harness: a counter in guest page 256, saved across migrations.
use minivmm_harness::{Guest, GuestMemory, Harness};

/// Counts steps and writes the count into the first 8 bytes of page 256 (1 MiB).
struct Counter(u64);

impl Guest for Counter {
    fn step(&mut self, memory: &GuestMemory) {
        self.0 += 1;
        let bytes = self.0.to_le_bytes();
        memory.write(1 << 20, &bytes).expect("RAM reaches 1 MiB");
    }
    fn save_state(&mut self) -> Vec<u8> {
        self.0.to_le_bytes().to_vec()
    }
    fn load_state(&mut self, state: &[u8], _: Option<&GuestMemory>) -> Result<(), String> {
        let bytes: [u8; 8] = state.try_into().map_err(|_| "expected 8 bytes")?;
        self.0 = u64::from_le_bytes(bytes);
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let socket = std::env::args().nth(1).ok_or("needs a socket path")?;
    Harness::connect(socket)?
        .offer_state(true)
        .run(Counter(0))?;
    Ok(())
}
