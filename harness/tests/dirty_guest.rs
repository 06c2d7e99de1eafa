//! The `dirty-guest` binary against a fake MiniVmm: its workload invariant, its state, its
//! pacing and its exit statuses.

mod fake_minivmm;

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use fake_minivmm::*;

/// 4 MiB of RAM: the walk covers pages 256..1024.
const RAM_SIZE: u64 = 4 << 20;
const FIRST_PAGE: u64 = 256;

/// A `dirty-guest` child process, killed if a test leaves it running.
struct GuestProcess(Child);

impl GuestProcess {
    fn start(extra_args: &[&str], socket: &std::path::Path) -> GuestProcess {
        let child = Command::new(env!("CARGO_BIN_EXE_dirty-guest"))
            .arg("--socket")
            .arg(socket)
            .args(extra_args)
            .stderr(Stdio::piped())
            .spawn()
            .expect("start dirty-guest");
        GuestProcess(child)
    }

    /// Waits up to two seconds for the exit; returns the status and what went to stderr.
    fn wait(&mut self) -> (ExitStatus, String) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                let mut stderr = String::new();
                if let Some(pipe) = self.0.stderr.as_mut() {
                    pipe.read_to_string(&mut stderr).unwrap();
                }
                return (status, stderr);
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "dirty-guest did not exit"
            );
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for GuestProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A running `dirty-guest` with 4 MiB of RAM at 0, connected and set up.
fn start_guest(extra_args: &[&str]) -> (Listener, GuestProcess, FakeVmm) {
    let listener = Listener::new();
    let process = GuestProcess::start(extra_args, listener.path());
    let mut fake = listener.accept();
    assert_eq!(
        fake.hello(u64::MAX),
        3,
        "dirty-guest offers STATE | THROTTLE"
    );
    fake.set_up_memory(vec![FakeRegion::new(0, RAM_SIZE, 0)]);
    (listener, process, fake)
}

/// `(next_page, rounds)` from SAVE_STATE.
fn save_state(fake: &mut FakeVmm) -> (u64, u64) {
    let state = fake.call(SAVE_STATE, &[], &[]);
    assert_eq!(state.len(), 16, "dirty-guest's state is 16 bytes");
    let word = |at: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&state[at..at + 8]);
        u64::from_le_bytes(bytes)
    };
    (word(0), word(8))
}

fn state_bytes(next_page: u64, rounds: u64) -> Vec<u8> {
    let mut state = next_page.to_le_bytes().to_vec();
    state.extend_from_slice(&rounds.to_le_bytes());
    state
}

/// RAM as the invariant says it must be for `(next_page, rounds)`.
fn expected_ram(next_page: u64, rounds: u64) -> Vec<u8> {
    let mut ram = vec![0u8; RAM_SIZE as usize];
    for page in FIRST_PAGE..RAM_SIZE / PAGE {
        let extra = if page < next_page { 1 } else { 0 };
        ram[(page * PAGE) as usize] = (rounds + extra) as u8;
    }
    ram
}

/// Checks the documented invariant page for page.
fn assert_invariant(ram: &[u8], next_page: u64, rounds: u64) {
    assert!(
        (FIRST_PAGE..RAM_SIZE / PAGE).contains(&next_page),
        "next_page {next_page} out of range"
    );
    let expected = expected_ram(next_page, rounds);
    for page in 0..RAM_SIZE / PAGE {
        let range = (page * PAGE) as usize..((page + 1) * PAGE) as usize;
        assert!(
            ram[range.clone()] == expected[range.clone()],
            "page {page} breaks the invariant for next_page {next_page}, rounds {rounds}: \
             first byte {} (expected {}), other bytes zero: {}",
            ram[range.start],
            expected[range.start],
            ram[range.start + 1..range.end].iter().all(|&b| b == 0)
        );
    }
}

#[test]
fn workload_keeps_its_invariant_across_pauses_and_exits_1_on_disconnect() {
    let (_listener, mut process, mut fake) = start_guest(&[]);
    let mut walked = 0;
    for cycle in 0..4 {
        let region = &fake.regions[0];
        let before = region.snapshot();
        region.clear_dirty();
        assert_eq!(fake.call_status(RUN, &[], &[]), 0);
        thread::sleep(Duration::from_millis(20));
        assert_eq!(fake.call_status(PAUSE, &[], &[]), 0);

        let (next_page, rounds) = save_state(&mut fake);
        let region = &fake.regions[0];
        let paused = region.snapshot();
        assert_invariant(&paused, next_page, rounds);
        let changed = assert_changed_pages_dirty(&before, &paused, region);
        assert!(changed > 0, "cycle {cycle}: nothing was written");
        walked += changed;

        thread::sleep(Duration::from_millis(30));
        assert!(
            region.snapshot() == paused,
            "cycle {cycle}: RAM changed while paused"
        );
        assert_eq!(save_state(&mut fake), (next_page, rounds));
    }
    assert!(walked > 100, "only {walked} pages changed in four cycles");

    assert_eq!(fake.call_status(THROTTLE, &50u32.to_le_bytes(), &[]), 0);
    assert_eq!(
        fake.call_status(THROTTLE, &100u32.to_le_bytes(), &[]),
        EINVAL
    );
    assert_eq!(fake.call_status(77, &[], &[]), ENOSYS);

    assert_eq!(fake.call_status(RUN, &[], &[]), 0);
    thread::sleep(Duration::from_millis(10));
    fake.disconnect();
    let (status, stderr) = process.wait();
    assert_eq!(status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("MiniVmm closed the connection"),
        "stderr: {stderr}"
    );
    let after = fake.regions[0].snapshot();
    thread::sleep(Duration::from_millis(50));
    assert!(
        fake.regions[0].snapshot() == after,
        "RAM changed after the exit"
    );
}

#[test]
fn workload_loads_state_and_goes_on_from_it_then_exits_0_on_shutdown() {
    let (_listener, mut process, mut fake) = start_guest(&[]);
    let pages = RAM_SIZE / PAGE;
    // RAM as a source at (300, 5) would have left it.
    fake.regions[0].fill(&expected_ram(300, 5));

    for (state, what) in [
        (state_bytes(300, 5)[..15].to_vec(), "15 bytes"),
        ([state_bytes(300, 5), vec![0]].concat(), "17 bytes"),
        (state_bytes(pages, 5), "next_page at the end of RAM"),
        (state_bytes(FIRST_PAGE - 1, 5), "next_page below 1 MiB"),
    ] {
        assert_eq!(fake.call_status(LOAD_STATE, &state, &[]), EINVAL, "{what}");
    }
    assert_eq!(
        save_state(&mut fake),
        (FIRST_PAGE, 0),
        "refused loads change nothing"
    );
    assert_eq!(fake.call_status(LOAD_STATE, &state_bytes(300, 5), &[]), 0);
    assert_eq!(save_state(&mut fake), (300, 5));

    assert_eq!(fake.call_status(RUN, &[], &[]), 0);
    thread::sleep(Duration::from_millis(20));
    assert_eq!(fake.call_status(PAUSE, &[], &[]), 0);
    let (next_page, rounds) = save_state(&mut fake);
    assert!(
        (rounds, next_page) > (5, 300),
        "the walk went on: ({next_page}, {rounds})"
    );
    assert_invariant(&fake.regions[0].snapshot(), next_page, rounds);

    assert_eq!(fake.call_status(SHUTDOWN, &[], &[]), 0);
    let (status, stderr) = process.wait();
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
}

#[test]
fn rate_limits_the_pages_written_per_second() {
    let rate = 2000.0;
    let (_listener, mut process, mut fake) = start_guest(&["--rate", "2000"]);
    let start = Instant::now();
    assert_eq!(fake.call_status(RUN, &[], &[]), 0);
    thread::sleep(Duration::from_millis(300));
    assert_eq!(fake.call_status(PAUSE, &[], &[]), 0);
    let elapsed = start.elapsed().as_secs_f64();
    let (next_page, rounds) = save_state(&mut fake);
    assert_invariant(&fake.regions[0].snapshot(), next_page, rounds);
    let walk = RAM_SIZE / PAGE - FIRST_PAGE;
    let written = (rounds * walk + next_page - FIRST_PAGE) as f64;
    assert!(
        written <= rate * elapsed + 64.0,
        "{written} pages in {elapsed:.3} s at {rate} pages/s"
    );
    assert!(
        written >= rate * 0.1,
        "only {written} pages in {elapsed:.3} s"
    );

    assert_eq!(fake.call_status(SHUTDOWN, &[], &[]), 0);
    assert_eq!(process.wait().0.code(), Some(0));
}

#[test]
fn usage_errors_exit_2_and_connection_errors_exit_1() {
    let binary = env!("CARGO_BIN_EXE_dirty-guest");
    for args in [
        &["--verbose"][..],
        &[][..],
        &["--socket"][..],
        &["--socket", "s", "--rate", "x"][..],
    ] {
        let output = Command::new(binary).args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("usage: dirty-guest --socket PATH"),
            "{args:?}: {stderr}"
        );
    }
    let dir = TempDir::new();
    let missing = dir.path().join("nobody-listens.sock");
    let output = Command::new(binary)
        .arg("--socket")
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&output.stderr).lines().count(), 1);
}
