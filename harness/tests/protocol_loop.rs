//! The library's request loop against a fake MiniVmm in the same process.

mod fake_minivmm;

use std::os::unix::io::AsRawFd;
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use fake_minivmm::*;
use minivmm_harness::sys;
use minivmm_harness::{Exit, Guest, GuestMemory, Harness, HarnessError};

/// The first page region 0's counters go to.
const COUNTER_PAGE: u64 = 16;

/// Step `n` (counting from 1) writes `n` as 8 little-endian bytes at the start of page
/// `16 + n % 8` of the region at 0, and the byte `n as u8` at the start of page `n % 4` of the
/// second region, if there is one. Its state is `n`, 8 bytes little-endian.
struct CountingGuest {
    steps: u64,
}

impl Guest for CountingGuest {
    fn step(&mut self, memory: &GuestMemory) {
        self.steps += 1;
        let n = self.steps;
        memory
            .write((COUNTER_PAGE + n % 8) * PAGE, &n.to_le_bytes())
            .unwrap();
        if let Some(second) = memory.regions().get(1) {
            memory
                .write_u8(second.guest_phys_addr() + (n % 4) * PAGE, n as u8)
                .unwrap();
        }
    }

    fn save_state(&mut self) -> Vec<u8> {
        self.steps.to_le_bytes().to_vec()
    }

    fn load_state(&mut self, state: &[u8], _: Option<&GuestMemory>) -> Result<(), String> {
        let mut bytes = [0u8; 8];
        if state.len() != 8 {
            return Err(format!("{} bytes", state.len()));
        }
        bytes.copy_from_slice(state);
        self.steps = u64::from_le_bytes(bytes);
        Ok(())
    }
}

/// A harness running on its own thread.
struct Session {
    fake: FakeVmm,
    result: Receiver<Result<Exit, HarnessError>>,
    _listener: Listener,
}

impl Session {
    /// Starts a harness offering STATE, and THROTTLE if `throttle`; returns before HELLO.
    fn connect(throttle: bool) -> Session {
        let listener = Listener::new();
        let path = listener.path().to_path_buf();
        let (done, result) = mpsc::channel();
        thread::spawn(move || {
            let outcome = Harness::connect(&path)
                .expect("connect to the fake MiniVmm")
                .offer_state(true)
                .offer_throttle(throttle)
                .run(CountingGuest { steps: 0 });
            let _ = done.send(outcome);
        });
        let fake = listener.accept();
        Session {
            fake,
            result,
            _listener: listener,
        }
    }

    /// Starts a harness offering STATE and THROTTLE, says HELLO back and sets up two regions:
    /// 1 MiB at 0 and 64 KiB at 4 GiB (one page into its memfd).
    fn start() -> Session {
        let mut session = Session::connect(true);
        assert_eq!(session.fake.hello(u64::MAX), 3);
        session.fake.set_up_memory(vec![
            FakeRegion::new(0, 1 << 20, 0),
            FakeRegion::new(4 << 30, 64 << 10, PAGE),
        ]);
        session
    }

    /// What `run` returned; fails if it has not returned within a second.
    fn outcome(&self) -> Result<Exit, HarnessError> {
        self.result
            .recv_timeout(Duration::from_secs(1))
            .expect("Harness::run did not return within a second")
    }

    fn save_state(&mut self) -> u64 {
        let state = self.fake.call(SAVE_STATE, &[], &[]);
        assert_eq!(state.len(), 8, "the counting guest's state is 8 bytes");
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&state);
        u64::from_le_bytes(bytes)
    }

    fn shut_down(mut self) {
        assert_eq!(self.fake.call_status(SHUTDOWN, &[], &[]), 0);
        assert!(matches!(self.outcome(), Ok(Exit::Shutdown)));
    }
}

fn counter_at(ram: &[u8], page: u64) -> u64 {
    let at = (page * PAGE) as usize;
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&ram[at..at + 8]);
    u64::from_le_bytes(bytes)
}

/// Checks the counting guest's RAM against its step count `n`.
fn assert_ram_matches_steps(fake: &FakeVmm, n: u64) {
    let low = fake.regions[0].snapshot();
    for k in n.saturating_sub(7).max(1)..=n {
        assert_eq!(counter_at(&low, COUNTER_PAGE + k % 8), k, "step {k} of {n}");
    }
    let high = fake.regions[1].snapshot();
    for k in n.saturating_sub(3).max(1)..=n {
        assert_eq!(high[((k % 4) * PAGE) as usize], k as u8, "step {k} of {n}");
    }
}

#[test]
fn hello_offers_the_chosen_features() {
    let mut with_throttle = Session::connect(true);
    assert_eq!(with_throttle.fake.hello(u64::MAX), 3, "STATE | THROTTLE");
    with_throttle.shut_down();

    let mut without = Session::connect(false);
    assert_eq!(without.fake.hello(u64::MAX), 1, "STATE only");
    without.shut_down();
}

#[test]
fn run_pause_cycles_mark_every_write_and_pause_freezes_ram() {
    let mut session = Session::start();
    let mut last_steps = 0;
    for cycle in 0..3 {
        let before: Vec<Vec<u8>> = session
            .fake
            .regions
            .iter()
            .map(FakeRegion::snapshot)
            .collect();
        for region in &session.fake.regions {
            region.clear_dirty();
        }
        assert_eq!(session.fake.call_status(RUN, &[], &[]), 0);
        thread::sleep(Duration::from_millis(30));
        assert_eq!(session.fake.call_status(PAUSE, &[], &[]), 0);

        let paused: Vec<Vec<u8>> = session
            .fake
            .regions
            .iter()
            .map(FakeRegion::snapshot)
            .collect();
        let mut changed = 0;
        for ((region, before), after) in session.fake.regions.iter().zip(&before).zip(&paused) {
            changed += assert_changed_pages_dirty(before, after, region);
        }
        assert!(
            changed >= 8,
            "cycle {cycle}: the guest should have written, {changed} pages changed"
        );

        let steps = session.save_state();
        assert!(
            steps > last_steps + 8,
            "cycle {cycle}: {steps} steps after {last_steps}"
        );
        assert_ram_matches_steps(&session.fake, steps);
        last_steps = steps;

        thread::sleep(Duration::from_millis(50));
        for (region, paused) in session.fake.regions.iter().zip(&paused) {
            assert!(region.snapshot() == *paused, "RAM changed while paused");
        }
        assert_eq!(session.save_state(), steps, "no step may run while paused");

        // PAUSE when already paused is answered (the fake's read timeout catches a hang).
        assert_eq!(session.fake.call_status(PAUSE, &[], &[]), 0);
    }
    session.shut_down();
}

#[test]
fn run_needs_the_memory_table_and_the_dirty_log() {
    let mut session = Session::connect(true);
    session.fake.hello(u64::MAX);
    assert_eq!(
        session.fake.call_status(RUN, &[], &[]),
        EINVAL,
        "no memory at all"
    );

    let region = FakeRegion::new(0, 1 << 20, 0);
    let table = mem_table_payload(&[region.entry("pc.ram")]);
    assert_eq!(
        session
            .fake
            .call_status(SET_MEM_TABLE, &table, &[region.ram_file.raw()]),
        0
    );
    assert_eq!(
        session.fake.call_status(RUN, &[], &[]),
        EINVAL,
        "no dirty log yet"
    );
    thread::sleep(Duration::from_millis(20));
    assert!(
        region.snapshot().iter().all(|&b| b == 0),
        "nothing may run without a dirty log"
    );

    session.fake.regions = vec![region];
    session.fake.send_dirty_logs();
    assert_eq!(session.fake.call_status(RUN, &[], &[]), 0);
    thread::sleep(Duration::from_millis(10));
    assert_eq!(session.fake.call_status(PAUSE, &[], &[]), 0);
    assert!(!session.fake.regions[0].dirty_pages().is_empty());
    session.shut_down();
}

#[test]
fn invalid_tables_and_logs_are_refused_with_einval() {
    let mut session = Session::connect(true);
    session.fake.hello(u64::MAX);
    let fake = &mut session.fake;
    let ram = memfd(2 << 20);
    let fd = ram.raw();
    let mib = 1u64 << 20;

    assert_eq!(
        fake.call_status(SET_DIRTY_LOG, &dirty_log_payload(&[(32, 0)]), &[fd]),
        EINVAL,
        "a dirty log before any memory table"
    );
    let cases: Vec<(&str, Vec<u8>, Vec<i32>)> = vec![
        (
            "one entry, no fd",
            mem_table_payload(&[(0, mib, 0, "a")]),
            vec![],
        ),
        (
            "one entry, two fds",
            mem_table_payload(&[(0, mib, 0, "a")]),
            vec![fd, fd],
        ),
        (
            "unaligned size",
            mem_table_payload(&[(0, mib + 1, 0, "a")]),
            vec![fd],
        ),
        ("zero size", mem_table_payload(&[(0, 0, 0, "a")]), vec![fd]),
        (
            "overlapping regions",
            mem_table_payload(&[(0, mib, 0, "a"), (mib / 2, mib, 0, "b")]),
            vec![fd, fd],
        ),
        (
            "unaligned mmap offset",
            mem_table_payload(&[(0, mib, 100, "a")]),
            vec![fd],
        ),
        (
            "payload one byte short",
            {
                let mut payload = mem_table_payload(&[(0, mib, 0, "a")]);
                payload.pop();
                payload
            },
            vec![fd],
        ),
        (
            "65 regions",
            {
                let mut payload = vec![0u8; 8];
                payload[0] = 65;
                payload
            },
            vec![],
        ),
    ];
    for (what, payload, fds) in &cases {
        assert_eq!(
            fake.call_status(SET_MEM_TABLE, payload, fds),
            EINVAL,
            "{what}"
        );
    }

    // A valid table, then bad logs for it: 256 pages need 32 bytes.
    let table = mem_table_payload(&[(0, mib, 0, "a")]);
    assert_eq!(fake.call_status(SET_MEM_TABLE, &table, &[fd]), 0);
    let log = memfd(4096);
    let log_fd = log.raw();
    let bad_logs: Vec<(&str, Vec<u8>, Vec<i32>)> = vec![
        ("log too small", dirty_log_payload(&[(31, 0)]), vec![log_fd]),
        (
            "two logs for one region",
            dirty_log_payload(&[(32, 0), (32, 0)]),
            vec![log_fd, log_fd],
        ),
        ("no fd", dirty_log_payload(&[(32, 0)]), vec![]),
        ("partial entry", vec![0u8; 20], vec![log_fd]),
    ];
    for (what, payload, fds) in &bad_logs {
        assert_eq!(
            fake.call_status(SET_DIRTY_LOG, payload, fds),
            EINVAL,
            "{what}"
        );
    }
    assert_eq!(
        fake.call_status(RUN, &[], &[]),
        EINVAL,
        "still no valid log"
    );
    assert_eq!(
        fake.call_status(SET_DIRTY_LOG, &dirty_log_payload(&[(32, 0)]), &[log_fd]),
        0
    );
    assert_eq!(fake.call_status(RUN, &[], &[]), 0);
    assert_eq!(fake.call_status(PAUSE, &[], &[]), 0);
    session.shut_down();
}

#[test]
fn save_and_load_state_round_trip() {
    let mut session = Session::start();
    assert_eq!(session.save_state(), 0, "a fresh guest has made no step");
    assert_eq!(
        session
            .fake
            .call_status(LOAD_STATE, &1000u64.to_le_bytes(), &[]),
        0
    );
    assert_eq!(session.save_state(), 1000);
    assert_eq!(
        session.fake.call_status(LOAD_STATE, &[1, 2, 3], &[]),
        EINVAL,
        "the guest refuses 3 bytes"
    );
    assert_eq!(session.save_state(), 1000, "a refused load changes nothing");

    assert_eq!(session.fake.call_status(RUN, &[], &[]), 0);
    thread::sleep(Duration::from_millis(20));
    assert_eq!(session.fake.call_status(PAUSE, &[], &[]), 0);
    let steps = session.save_state();
    assert!(
        steps > 1008,
        "the guest goes on from the loaded state: {steps}"
    );
    assert_ram_matches_steps(&session.fake, steps);
    session.shut_down();
}

#[test]
fn throttle_is_obeyed_and_range_checked() {
    let mut session = Session::start();
    let steps_in = |session: &mut Session, window: Duration| {
        let before = session.save_state();
        assert_eq!(session.fake.call_status(RUN, &[], &[]), 0);
        thread::sleep(window);
        assert_eq!(session.fake.call_status(PAUSE, &[], &[]), 0);
        session.save_state() - before
    };
    let free = steps_in(&mut session, Duration::from_millis(200));
    assert_eq!(
        session
            .fake
            .call_status(THROTTLE, &90u32.to_le_bytes(), &[]),
        0
    );
    let throttled = steps_in(&mut session, Duration::from_millis(200));
    assert!(
        throttled * 2 < free,
        "90% throttle: {throttled} steps against {free} unthrottled"
    );
    assert_eq!(
        session
            .fake
            .call_status(THROTTLE, &99u32.to_le_bytes(), &[]),
        0
    );
    assert_eq!(
        session
            .fake
            .call_status(THROTTLE, &100u32.to_le_bytes(), &[]),
        EINVAL
    );
    assert_eq!(session.fake.call_status(THROTTLE, &[0, 0, 0], &[]), EINVAL);
    assert_eq!(
        session.fake.call_status(THROTTLE, &0u32.to_le_bytes(), &[]),
        0
    );
    session.shut_down();
}

#[test]
fn throttle_without_the_feature_is_not_implemented() {
    let mut session = Session::connect(false);
    session.fake.hello(u64::MAX);
    assert_eq!(
        session
            .fake
            .call_status(THROTTLE, &50u32.to_le_bytes(), &[]),
        ENOSYS
    );
    session.shut_down();
}

#[test]
fn unknown_requests_get_enosys_and_the_session_goes_on() {
    let mut session = Session::start();
    for request in [0, 10, 77, u32::MAX, HELLO] {
        assert_eq!(
            session.fake.call_status(request, &[1, 2, 3], &[]),
            ENOSYS,
            "request {request}"
        );
    }
    assert_eq!(session.fake.call_status(RUN, &[], &[]), 0);
    assert_eq!(session.fake.call_status(PAUSE, &[], &[]), 0);
    session.shut_down();
}

#[test]
fn shutdown_while_running_stops_the_vcpu_and_ends_run_with_ok() {
    let mut session = Session::start();
    assert_eq!(session.fake.call_status(RUN, &[], &[]), 0);
    thread::sleep(Duration::from_millis(10));
    assert_eq!(session.fake.call_status(SHUTDOWN, &[], &[]), 0);
    let stopped = session.fake.regions[0].snapshot();
    assert!(matches!(session.outcome(), Ok(Exit::Shutdown)));
    assert!(
        session.fake.sees_end_of_stream(),
        "the harness closes the socket"
    );
    thread::sleep(Duration::from_millis(50));
    assert!(
        session.fake.regions[0].snapshot() == stopped,
        "RAM changed after SHUTDOWN"
    );
}

#[test]
fn closing_the_socket_while_running_stops_writes_promptly() {
    let mut session = Session::start();
    assert_eq!(session.fake.call_status(RUN, &[], &[]), 0);
    thread::sleep(Duration::from_millis(30));
    let closed = Instant::now();
    session.fake.disconnect();
    let outcome = session.outcome();
    assert!(
        matches!(outcome, Err(HarnessError::Disconnected)),
        "expected Disconnected, got {outcome:?}"
    );
    // A hang guard, not a speed goal: run must return once the socket closes.
    assert!(closed.elapsed() < Duration::from_secs(10));
    let after: Vec<Vec<u8>> = session
        .fake
        .regions
        .iter()
        .map(FakeRegion::snapshot)
        .collect();
    assert!(counter_at(&after[0], COUNTER_PAGE) > 0 || counter_at(&after[0], COUNTER_PAGE + 1) > 0);
    thread::sleep(Duration::from_millis(50));
    for (region, after) in session.fake.regions.iter().zip(&after) {
        assert!(
            region.snapshot() == *after,
            "RAM changed after run returned"
        );
    }
}

#[test]
fn a_new_memory_table_parks_the_vcpu_until_its_dirty_log_arrives() {
    let mut session = Session::start();
    assert_eq!(session.fake.call_status(RUN, &[], &[]), 0);
    thread::sleep(Duration::from_millis(10));

    let old = std::mem::take(&mut session.fake.regions);
    let new = vec![
        FakeRegion::new(0, 1 << 20, 0),
        FakeRegion::new(4 << 30, 64 << 10, 0),
    ];
    let entries: Vec<_> = new.iter().map(|region| region.entry("new")).collect();
    let fds: Vec<i32> = new.iter().map(|region| region.ram_file.raw()).collect();
    assert_eq!(
        session
            .fake
            .call_status(SET_MEM_TABLE, &mem_table_payload(&entries), &fds),
        0
    );

    let old_ram = old[0].snapshot();
    thread::sleep(Duration::from_millis(30));
    assert!(
        old[0].snapshot() == old_ram,
        "the old table is written after its replacement"
    );
    assert!(
        new[0].snapshot().iter().all(|&b| b == 0),
        "the new table is written before its log"
    );

    session.fake.regions = new;
    session.fake.send_dirty_logs();
    thread::sleep(Duration::from_millis(20));
    assert_eq!(session.fake.call_status(PAUSE, &[], &[]), 0);
    let steps = session.save_state();
    assert_ram_matches_steps(&session.fake, steps);
    let dirty = session.fake.regions[0].dirty_pages();
    assert_eq!(dirty, (COUNTER_PAGE..COUNTER_PAGE + 8).collect::<Vec<_>>());
    session.shut_down();
}

#[test]
fn frames_arriving_in_pieces_are_reassembled() {
    let mut session = Session::connect(true);
    session.fake.hello(u64::MAX);
    let region = FakeRegion::new(0, 1 << 20, 0);
    let payload = mem_table_payload(&[region.entry("pieces")]);
    let mut frame = Vec::new();
    frame.extend_from_slice(&SET_MEM_TABLE.to_le_bytes());
    frame.extend_from_slice(&VERSION.to_le_bytes());
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(&payload);
    // The descriptor rides on the first byte; the rest trickles in.
    let sent = sys::send_with_fds(
        session.fake.stream().as_raw_fd(),
        &frame[..1],
        &[region.ram_file.raw()],
    )
    .unwrap();
    assert_eq!(sent, 1);
    for piece in [&frame[1..5], &frame[5..12], &frame[12..40], &frame[40..]] {
        thread::sleep(Duration::from_millis(5));
        session.fake.write_raw(piece);
    }
    let (request, flags, reply) = session.fake.receive();
    assert_eq!((request, flags), (SET_MEM_TABLE, VERSION | REPLY));
    assert_eq!(reply, 0i64.to_le_bytes());

    session.fake.regions = vec![region];
    session.fake.send_dirty_logs();
    assert_eq!(session.fake.call_status(RUN, &[], &[]), 0);
    thread::sleep(Duration::from_millis(10));
    assert_eq!(session.fake.call_status(PAUSE, &[], &[]), 0);
    let ram = session.fake.regions[0].snapshot();
    assert!(
        counter_at(&ram, COUNTER_PAGE) > 0,
        "the table mapped from pieces is the one written"
    );
    session.shut_down();
}

fn assert_ends_with_protocol_error(frame: (u32, u32, Vec<u8>), what: &str) {
    let mut session = Session::start();
    assert_eq!(session.fake.call_status(RUN, &[], &[]), 0);
    let (request, flags, payload) = frame;
    session.fake.send_frame(request, flags, &payload, &[]);
    let outcome = session.outcome();
    assert!(
        matches!(outcome, Err(HarnessError::Protocol(_))),
        "{what}: expected a protocol error, got {outcome:?}"
    );
    assert!(
        session.fake.sees_end_of_stream(),
        "{what}: the harness closes the socket"
    );
}

#[test]
fn a_reply_from_minivmm_is_a_protocol_error() {
    assert_ends_with_protocol_error(
        (PAUSE, VERSION | REPLY, 0i64.to_le_bytes().to_vec()),
        "reply",
    );
}

#[test]
fn another_version_is_a_protocol_error() {
    assert_ends_with_protocol_error((PAUSE, 2, Vec::new()), "version 2");
}

#[test]
fn an_oversized_frame_is_a_protocol_error() {
    let mut session = Session::start();
    // Only the header: the harness must give up before reading 16 MiB + 65 bytes.
    let mut header = Vec::new();
    header.extend_from_slice(&LOAD_STATE.to_le_bytes());
    header.extend_from_slice(&VERSION.to_le_bytes());
    header.extend_from_slice(&((16u32 << 20) + 65).to_le_bytes());
    session.fake.write_raw(&header);
    assert!(matches!(session.outcome(), Err(HarnessError::Protocol(_))));
}

#[test]
fn refused_or_malformed_hello_replies_end_the_session() {
    let refused = Session::connect(true);
    let mut fake = refused.fake;
    fake.receive();
    fake.send_frame(HELLO, VERSION | REPLY, &EBUSY.to_le_bytes(), &[]);
    let outcome = refused.result.recv_timeout(Duration::from_secs(1)).unwrap();
    assert!(
        matches!(outcome, Err(HarnessError::Refused(-16))),
        "{outcome:?}"
    );

    let cases: [(u32, &[u8], &str); 3] = [
        (
            VERSION | REPLY,
            &0xFFu64.to_le_bytes(),
            "more features than offered",
        ),
        (VERSION | REPLY, &[3, 0, 0, 0], "4-byte reply"),
        (VERSION, &3u64.to_le_bytes(), "a request instead of a reply"),
    ];
    for (flags, payload, what) in cases {
        let session = Session::connect(true);
        let mut fake = session.fake;
        fake.receive();
        fake.send_frame(HELLO, flags, payload, &[]);
        let outcome = session.result.recv_timeout(Duration::from_secs(1)).unwrap();
        assert!(
            matches!(outcome, Err(HarnessError::Protocol(_))),
            "{what}: {outcome:?}"
        );
    }
}
