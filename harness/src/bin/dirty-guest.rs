//! `dirty-guest`: the incrementing-byte workload as a MiniVmm guest harness.
//!
//! ```text
//! dirty-guest --socket PATH [--rate PAGES_PER_SECOND]
//! ```
//!
//! It connects to MiniVmm at `PATH` and offers the STATE and THROTTLE features. While the VM
//! runs, its one vCPU walks the pages of the RAM region at guest-physical address 0 (the first
//! region of the table if none starts at 0) from page 256 (1 MiB) to the region's last page: for
//! the page at `next_page` it increments the first byte (wrapping at 256), which marks the page
//! dirty, and moves on; past the last page it starts again at page 256 and counts one more
//! round. A step handles up to 64 pages. `--rate` paces the walk to that many pages per second
//! on average; 0 or no `--rate` means as fast as possible.
//!
//! State (SAVE_STATE / LOAD_STATE): exactly 16 bytes, `next_page` (a page index within that
//! region) then `rounds`, both `u64` little-endian. A load is refused unless it is 16 bytes long
//! with `next_page` in `[256, page_count)`, which needs the memory table to have come first.
//!
//! Invariant, starting from all-zero RAM: whenever the VM is paused, for every page `p` in
//! `[256, page_count)` of that region the first byte is
//! `(rounds + (if p < next_page { 1 } else { 0 })) mod 256`, and every other byte of RAM is 0.
//!
//! Exit status: 0 after SHUTDOWN; 1 when MiniVmm closes the connection (after the line
//! `dirty-guest: MiniVmm closed the connection; stopping` on stderr) or on any other error
//! (one line on stderr); 2 for a usage error.

use std::env;
use std::process;
use std::thread;
use std::time::{Duration, Instant};

use minivmm_harness::protocol::PAGE_SIZE;
use minivmm_harness::{Guest, GuestMemory, Harness, HarnessError, HarnessOptions, Region};

/// The first page of the walk: 1 MiB.
const FIRST_PAGE: u64 = 256;
/// The most pages one step writes.
const PAGES_PER_STEP: u64 = 64;
/// The size of the saved state.
const STATE_SIZE: usize = 16;
/// The longest a step sleeps to keep to the rate, so that a pause is never held up for long.
const MAX_PACING_SLEEP: Duration = Duration::from_millis(1);

const USAGE: &str = "usage: dirty-guest --socket PATH [--rate PAGES_PER_SECOND]";

/// What the command line asks for.
#[derive(Debug, PartialEq)]
enum Command {
    Run { socket: String, rate: u64 },
    Help,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Command, String> {
    let mut socket = None;
    let mut rate = 0;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--socket" => {
                socket = Some(args.next().ok_or("--socket needs a path")?);
            }
            "--rate" => {
                let value = args
                    .next()
                    .ok_or("--rate needs a number of pages per second")?;
                rate = value
                    .parse()
                    .map_err(|_| format!("--rate: not a number of pages per second: {value}"))?;
            }
            "-h" | "--help" => return Ok(Command::Help),
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    match socket {
        Some(socket) => Ok(Command::Run { socket, rate }),
        None => Err("--socket is required".to_string()),
    }
}

/// Spreads page writes evenly over time: an allowance that grows at the rate, capped at one
/// step's worth so that time spent paused or throttled does not turn into a burst.
struct Pacer {
    pages_per_second: f64,
    allowance: f64,
    last: Option<Instant>,
}

impl Pacer {
    fn new(pages_per_second: u64) -> Pacer {
        Pacer {
            pages_per_second: pages_per_second as f64,
            allowance: 0.0,
            last: None,
        }
    }

    /// How many pages, at most `max`, may be written now.
    fn take(&mut self, max: u64) -> u64 {
        let now = Instant::now();
        if let Some(last) = self.last {
            let earned = now.duration_since(last).as_secs_f64() * self.pages_per_second;
            self.allowance = (self.allowance + earned).min(max as f64);
        }
        self.last = Some(now);
        let pages = self.allowance.floor() as u64;
        self.allowance -= pages as f64;
        pages
    }

    /// How long until the next page is due, at most [`MAX_PACING_SLEEP`].
    fn time_to_next_page(&self) -> Duration {
        let missing = (1.0 - self.allowance).max(0.0);
        Duration::from_secs_f64(missing / self.pages_per_second).min(MAX_PACING_SLEEP)
    }
}

/// The workload and its state.
struct DirtyGuest {
    next_page: u64,
    rounds: u64,
    pacer: Option<Pacer>,
}

impl DirtyGuest {
    fn new(rate: u64) -> DirtyGuest {
        DirtyGuest {
            next_page: FIRST_PAGE,
            rounds: 0,
            pacer: if rate == 0 {
                None
            } else {
                Some(Pacer::new(rate))
            },
        }
    }

    /// Parses saved state, checking it against the workload region's size.
    fn parse_state(state: &[u8], memory: Option<&GuestMemory>) -> Result<(u64, u64), String> {
        if state.len() != STATE_SIZE {
            return Err(format!(
                "state is {} bytes, expected {STATE_SIZE}",
                state.len()
            ));
        }
        let mut word = [0u8; 8];
        word.copy_from_slice(&state[0..8]);
        let next_page = u64::from_le_bytes(word);
        word.copy_from_slice(&state[8..16]);
        let rounds = u64::from_le_bytes(word);
        let page_count = memory
            .and_then(workload_region)
            .map(Region::page_count)
            .ok_or("no memory table yet: MiniVmm must send SET_MEM_TABLE before LOAD_STATE")?;
        if !(FIRST_PAGE..page_count).contains(&next_page) {
            return Err(format!(
                "next_page {next_page} is outside [{FIRST_PAGE}, {page_count})"
            ));
        }
        Ok((next_page, rounds))
    }
}

/// The region the workload walks: the one at guest-physical address 0, else the first.
fn workload_region(memory: &GuestMemory) -> Option<&Region> {
    let regions = memory.regions();
    regions
        .iter()
        .find(|region| region.guest_phys_addr() == 0)
        .or_else(|| regions.first())
}

impl Guest for DirtyGuest {
    fn step(&mut self, memory: &GuestMemory) {
        let region = match workload_region(memory) {
            Some(region) if region.page_count() > FIRST_PAGE => region,
            _ => {
                // Nothing to walk: idle rather than spin.
                thread::sleep(MAX_PACING_SLEEP);
                return;
            }
        };
        let pages = match &mut self.pacer {
            None => PAGES_PER_STEP,
            Some(pacer) => {
                let pages = pacer.take(PAGES_PER_STEP);
                if pages == 0 {
                    thread::sleep(pacer.time_to_next_page());
                    return;
                }
                pages
            }
        };
        let end = region.page_count();
        for _ in 0..pages {
            if self.next_page >= end {
                // Only after a new, smaller memory table: start the walk again.
                self.next_page = FIRST_PAGE;
                self.rounds += 1;
            }
            let gpa = region.guest_phys_addr() + self.next_page * PAGE_SIZE;
            let byte = memory
                .read_u8(gpa)
                .expect("the walk stays inside its region");
            memory
                .write_u8(gpa, byte.wrapping_add(1))
                .expect("the walk stays inside its region");
            self.next_page += 1;
            if self.next_page == end {
                self.next_page = FIRST_PAGE;
                self.rounds += 1;
            }
        }
    }

    fn save_state(&mut self) -> Vec<u8> {
        let mut state = Vec::with_capacity(STATE_SIZE);
        state.extend_from_slice(&self.next_page.to_le_bytes());
        state.extend_from_slice(&self.rounds.to_le_bytes());
        state
    }

    fn load_state(&mut self, state: &[u8], memory: Option<&GuestMemory>) -> Result<(), String> {
        match DirtyGuest::parse_state(state, memory) {
            Ok((next_page, rounds)) => {
                self.next_page = next_page;
                self.rounds = rounds;
                Ok(())
            }
            Err(reason) => {
                eprintln!("dirty-guest: refusing the state MiniVmm sent: {reason}");
                Err(reason)
            }
        }
    }
}

/// Runs the harness; returns the exit status.
fn run(socket: &str, rate: u64) -> i32 {
    let harness = match Harness::connect(socket) {
        Ok(harness) => harness,
        Err(error) => {
            eprintln!("dirty-guest: cannot connect to {socket}: {error}");
            return 1;
        }
    };
    let options = HarnessOptions {
        state: true,
        throttle: true,
    };
    match harness.with_options(options).run(DirtyGuest::new(rate)) {
        Ok(_) => 0,
        Err(HarnessError::Disconnected) => {
            eprintln!("dirty-guest: MiniVmm closed the connection; stopping");
            1
        }
        Err(error) => {
            eprintln!("dirty-guest: {error}");
            1
        }
    }
}

fn main() {
    match parse_args(env::args().skip(1)) {
        Ok(Command::Run { socket, rate }) => process::exit(run(&socket, rate)),
        Ok(Command::Help) => println!("{USAGE}"),
        Err(message) => {
            eprintln!("dirty-guest: {message}\n{USAGE}");
            process::exit(2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Command, String> {
        parse_args(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn command_line_takes_a_socket_and_an_optional_rate() {
        assert_eq!(
            args(&["--socket", "/tmp/h.sock"]),
            Ok(Command::Run {
                socket: "/tmp/h.sock".into(),
                rate: 0
            })
        );
        assert_eq!(
            args(&["--rate", "5000", "--socket", "s"]),
            Ok(Command::Run {
                socket: "s".into(),
                rate: 5000
            })
        );
        assert_eq!(args(&["--help"]), Ok(Command::Help));
    }

    #[test]
    fn bad_command_lines_are_refused() {
        for bad in [
            &[][..],
            &["--socket"][..],
            &["--socket", "s", "--rate"][..],
            &["--socket", "s", "--rate", "fast"][..],
            &["--socket", "s", "--verbose"][..],
            &["s"][..],
        ] {
            assert!(args(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn state_is_sixteen_little_endian_bytes() {
        let mut guest = DirtyGuest::new(0);
        guest.next_page = 0x0102;
        guest.rounds = 7;
        let state = guest.save_state();
        assert_eq!(state.len(), 16);
        assert_eq!(&state[0..8], &[2, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&state[8..16], &[7, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn state_without_memory_or_of_the_wrong_size_is_refused() {
        assert!(DirtyGuest::parse_state(&[0; 15], None).is_err());
        let mut state = [0u8; 16];
        state[0..8].copy_from_slice(&300u64.to_le_bytes());
        assert!(DirtyGuest::parse_state(&state, None).is_err());
    }

    #[test]
    fn pacer_keeps_to_the_rate_without_bursting() {
        let mut pacer = Pacer::new(1000);
        assert_eq!(
            pacer.take(64),
            0,
            "nothing is due before any time has passed"
        );
        let start = Instant::now();
        let mut pages = 0;
        while start.elapsed() < Duration::from_millis(100) {
            let now = pacer.take(64);
            pages += now;
            if now == 0 {
                let wait = pacer.time_to_next_page();
                assert!(wait <= MAX_PACING_SLEEP);
                thread::sleep(wait);
            }
        }
        let elapsed = start.elapsed().as_secs_f64();
        assert!(
            pages as f64 <= elapsed * 1000.0 + 1.0,
            "{pages} pages in {elapsed} s at 1000 pages/s"
        );
        // A long gap earns at most one step's worth.
        thread::sleep(Duration::from_millis(200));
        assert_eq!(pacer.take(64), 64);
        assert_eq!(pacer.take(64), 0);
    }
}
