//! vCPU threads that run a step function again and again, and park between steps on request.
//!
//! One [`Vcpus`] owns the threads. The controlling thread calls [`Vcpus::pause`], which returns
//! once every thread has finished its current step and parked, and [`Vcpus::resume`], which
//! returns once every thread has left its park. A throttle makes each thread sleep a share of
//! every 10 ms of its running time. All waiting is on one condition variable, so a pause costs
//! about one step plus a thread wake-up, with no polling.

use std::fmt;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::protocol::MAX_THROTTLE_PERCENT;

/// The slice of running time that a throttle divides into running and sleeping.
pub const THROTTLE_SLICE: Duration = Duration::from_millis(10);

/// What the vCPU threads have been told to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    /// Call the step function.
    Running,
    /// Park between steps.
    Paused,
    /// Leave the thread.
    Stopping,
}

/// Why the vCPU threads could not be paused or resumed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VcpuError {
    /// This many threads ended because their step function panicked.
    Panicked(usize),
    /// The threads have been stopped for good.
    Stopped,
}

impl fmt::Display for VcpuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VcpuError::Panicked(count) => write!(f, "{count} vCPU thread(s) panicked in a step"),
            VcpuError::Stopped => write!(f, "the vCPU threads have been stopped"),
        }
    }
}

impl std::error::Error for VcpuError {}

/// The state the threads and their controller share, under one mutex.
struct Control {
    run_state: RunState,
    threads: usize,
    parked: usize,
    exited: usize,
    panicked: usize,
    throttle_percent: u32,
}

struct Shared {
    control: Mutex<Control>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait_while<'a>(
        &self,
        guard: MutexGuard<'a, Control>,
        condition: impl FnMut(&mut Control) -> bool,
    ) -> MutexGuard<'a, Control> {
        self.changed
            .wait_while(guard, condition)
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Sleeps up to `duration`, waking early if the run state or the throttle changes.
    fn throttle_sleep(&self, duration: Duration, percent: u32) {
        let guard = self.lock();
        let _ = self
            .changed
            .wait_timeout_while(guard, duration, |control| {
                control.run_state == RunState::Running && control.throttle_percent == percent
            })
            .unwrap_or_else(PoisonError::into_inner);
    }
}

/// The vCPU threads and their controls. Dropping it stops and joins the threads.
pub struct Vcpus {
    shared: Arc<Shared>,
    handles: Vec<JoinHandle<()>>,
}

impl Vcpus {
    /// Starts one thread per step function, each parked until [`Vcpus::resume`].
    /// Returns once every thread has parked.
    pub fn spawn<F>(steps: Vec<F>) -> io::Result<Vcpus>
    where
        F: FnMut() + Send + 'static,
    {
        let shared = Arc::new(Shared {
            control: Mutex::new(Control {
                run_state: RunState::Paused,
                threads: steps.len(),
                parked: 0,
                exited: 0,
                panicked: 0,
                throttle_percent: 0,
            }),
            changed: Condvar::new(),
        });
        let mut vcpus = Vcpus {
            shared,
            handles: Vec::with_capacity(steps.len()),
        };
        for (index, step) in steps.into_iter().enumerate() {
            let shared = Arc::clone(&vcpus.shared);
            let spawned = thread::Builder::new()
                .name(format!("vcpu{index}"))
                .spawn(move || run_vcpu(&shared, step));
            match spawned {
                Ok(handle) => vcpus.handles.push(handle),
                Err(error) => {
                    vcpus.shared.lock().threads = vcpus.handles.len();
                    return Err(error);
                }
            }
        }
        let guard = vcpus.shared.lock();
        drop(
            vcpus
                .shared
                .wait_while(guard, |c| c.parked + c.exited < c.threads),
        );
        Ok(vcpus)
    }

    /// The number of vCPU threads.
    pub fn count(&self) -> usize {
        self.handles.len()
    }

    /// What the threads have last been told to do.
    pub fn run_state(&self) -> RunState {
        self.shared.lock().run_state
    }

    /// Parks every thread and returns once all have finished their step and parked.
    /// Returns at once if they are parked already.
    pub fn pause(&self) -> Result<(), VcpuError> {
        let mut control = self.shared.lock();
        if control.run_state == RunState::Stopping {
            return Err(VcpuError::Stopped);
        }
        control.run_state = RunState::Paused;
        self.shared.changed.notify_all();
        let control = self
            .shared
            .wait_while(control, |c| c.parked + c.exited < c.threads);
        check_panics(&control)
    }

    /// Releases every thread and returns once all have left their park.
    pub fn resume(&self) -> Result<(), VcpuError> {
        let mut control = self.shared.lock();
        if control.run_state == RunState::Stopping {
            return Err(VcpuError::Stopped);
        }
        check_panics(&control)?;
        control.run_state = RunState::Running;
        self.shared.changed.notify_all();
        let control = self.shared.wait_while(control, |c| c.parked > 0);
        check_panics(&control)
    }

    /// Makes each thread sleep `percent` % of every [`THROTTLE_SLICE`] of running time
    /// (0 = no throttle; values above [`MAX_THROTTLE_PERCENT`] count as that).
    pub fn set_throttle(&self, percent: u32) {
        let mut control = self.shared.lock();
        control.throttle_percent = percent.min(MAX_THROTTLE_PERCENT);
        self.shared.changed.notify_all();
    }

    /// The current throttle in percent.
    pub fn throttle(&self) -> u32 {
        self.shared.lock().throttle_percent
    }

    /// Tells the threads to leave after their current step, and joins them. Later calls do
    /// nothing; [`Vcpus::pause`] and [`Vcpus::resume`] fail from now on.
    pub fn stop(&mut self) {
        {
            let mut control = self.shared.lock();
            control.run_state = RunState::Stopping;
            self.shared.changed.notify_all();
        }
        for handle in self.handles.drain(..) {
            // A thread that panicked has been counted in `Control::panicked` already.
            let _ = handle.join();
        }
    }
}

impl Drop for Vcpus {
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for Vcpus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let control = self.shared.lock();
        f.debug_struct("Vcpus")
            .field("threads", &control.threads)
            .field("run_state", &control.run_state)
            .field("parked", &control.parked)
            .field("throttle_percent", &control.throttle_percent)
            .finish()
    }
}

fn check_panics(control: &Control) -> Result<(), VcpuError> {
    if control.panicked > 0 {
        Err(VcpuError::Panicked(control.panicked))
    } else {
        Ok(())
    }
}

/// The body of one vCPU thread.
fn run_vcpu<F: FnMut()>(shared: &Shared, mut step: F) {
    let _exit = ExitNotice(shared);
    let mut throttle = ThrottleClock::default();
    loop {
        let percent = {
            let mut control = shared.lock();
            if control.run_state == RunState::Paused {
                control.parked += 1;
                shared.changed.notify_all();
                control = shared.wait_while(control, |c| c.run_state == RunState::Paused);
                control.parked -= 1;
                shared.changed.notify_all();
                throttle.reset();
            }
            if control.run_state == RunState::Stopping {
                return;
            }
            control.throttle_percent
        };
        let started = Instant::now();
        step();
        if let Some(sleep) = throttle.after_step(started.elapsed(), percent) {
            shared.throttle_sleep(sleep, percent);
        }
    }
}

/// Counts the thread as gone when it leaves, by return or by panic.
struct ExitNotice<'a>(&'a Shared);

impl Drop for ExitNotice<'_> {
    fn drop(&mut self) {
        let mut control = self.0.lock();
        control.exited += 1;
        if thread::panicking() {
            control.panicked += 1;
        }
        self.0.changed.notify_all();
    }
}

/// Running time accumulated towards the next throttle sleep.
#[derive(Debug, Default)]
struct ThrottleClock {
    ran: Duration,
}

impl ThrottleClock {
    fn reset(&mut self) {
        self.ran = Duration::ZERO;
    }

    /// Adds a step's running time; once the running share of a slice is used up, returns how
    /// long to sleep so that sleeping makes up `percent` % of the total.
    fn after_step(&mut self, ran: Duration, percent: u32) -> Option<Duration> {
        let percent = percent.min(MAX_THROTTLE_PERCENT);
        if percent == 0 {
            self.reset();
            return None;
        }
        self.ran += ran;
        let running_share = THROTTLE_SLICE * (100 - percent) / 100;
        if self.ran < running_share {
            return None;
        }
        let sleep = self.ran * percent / (100 - percent);
        self.reset();
        Some(sleep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn counting_steps(threads: usize, step_time: Duration) -> (Vec<Arc<AtomicU64>>, Vcpus) {
        let counters: Vec<Arc<AtomicU64>> =
            (0..threads).map(|_| Arc::new(AtomicU64::new(0))).collect();
        let steps = counters
            .iter()
            .map(|counter| {
                let counter = Arc::clone(counter);
                move || {
                    let start = Instant::now();
                    while start.elapsed() < step_time {
                        std::hint::spin_loop();
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                }
            })
            .collect();
        (counters, Vcpus::spawn(steps).unwrap())
    }

    fn total(counters: &[Arc<AtomicU64>]) -> u64 {
        counters.iter().map(|c| c.load(Ordering::SeqCst)).sum()
    }

    #[test]
    fn threads_start_parked() {
        let (counters, vcpus) = counting_steps(2, Duration::ZERO);
        assert_eq!(vcpus.count(), 2);
        assert_eq!(vcpus.run_state(), RunState::Paused);
        thread::sleep(Duration::from_millis(20));
        assert_eq!(total(&counters), 0);
    }

    #[test]
    fn resume_runs_every_thread_and_pause_freezes_them() {
        let (counters, vcpus) = counting_steps(3, Duration::from_micros(20));
        for _ in 0..3 {
            vcpus.resume().unwrap();
            assert_eq!(vcpus.run_state(), RunState::Running);
            thread::sleep(Duration::from_millis(20));
            vcpus.pause().unwrap();
            let frozen: Vec<u64> = counters.iter().map(|c| c.load(Ordering::SeqCst)).collect();
            assert!(
                frozen.iter().all(|&n| n > 0),
                "every vCPU should have stepped: {frozen:?}"
            );
            thread::sleep(Duration::from_millis(20));
            let later: Vec<u64> = counters.iter().map(|c| c.load(Ordering::SeqCst)).collect();
            assert_eq!(frozen, later, "no step may run while paused");
        }
    }

    #[test]
    fn pause_when_paused_succeeds_and_runs_no_step() {
        let (counters, vcpus) = counting_steps(1, Duration::from_millis(5));
        vcpus.pause().unwrap();
        let parked = counters[0].load(Ordering::SeqCst);
        vcpus.pause().unwrap();
        thread::sleep(Duration::from_millis(20));
        assert_eq!(counters[0].load(Ordering::SeqCst), parked);
    }

    #[test]
    fn pause_waits_for_the_current_step_to_finish() {
        let (counters, vcpus) = counting_steps(1, Duration::from_millis(30));
        vcpus.resume().unwrap();
        thread::sleep(Duration::from_millis(5));
        vcpus.pause().unwrap();
        let after_pause = total(&counters);
        assert!(
            after_pause >= 1,
            "the step in progress completes before pause returns"
        );
        thread::sleep(Duration::from_millis(40));
        assert_eq!(total(&counters), after_pause);
    }

    #[test]
    fn stop_joins_the_threads_and_later_control_fails() {
        let (counters, mut vcpus) = counting_steps(2, Duration::ZERO);
        vcpus.resume().unwrap();
        vcpus.stop();
        let stopped = total(&counters);
        thread::sleep(Duration::from_millis(20));
        assert_eq!(total(&counters), stopped);
        assert_eq!(vcpus.pause(), Err(VcpuError::Stopped));
        assert_eq!(vcpus.resume(), Err(VcpuError::Stopped));
        vcpus.stop();
    }

    #[test]
    fn dropping_stops_the_threads() {
        let token = Arc::new(());
        let held = Arc::clone(&token);
        let vcpus = Vcpus::spawn(vec![move || {
            let _ = &held;
        }])
        .unwrap();
        vcpus.resume().unwrap();
        drop(vcpus);
        assert_eq!(
            Arc::strong_count(&token),
            1,
            "the thread and its closure are gone"
        );
    }

    #[test]
    fn a_panicking_step_is_reported_instead_of_hanging() {
        let vcpus = Vcpus::spawn(vec![|| panic!("test step panics on purpose")]).unwrap();
        let _ = vcpus.resume();
        assert_eq!(vcpus.pause(), Err(VcpuError::Panicked(1)));
        assert_eq!(vcpus.resume(), Err(VcpuError::Panicked(1)));
    }

    #[test]
    fn throttle_clock_sleeps_the_requested_share() {
        let mut clock = ThrottleClock::default();
        let ms = Duration::from_millis;
        assert_eq!(clock.after_step(ms(1), 0), None);
        // 75 %: run 2.5 ms of each slice, so three 1 ms steps, then sleep three times as long.
        assert_eq!(clock.after_step(ms(1), 75), None);
        assert_eq!(clock.after_step(ms(1), 75), None);
        assert_eq!(clock.after_step(ms(1), 75), Some(ms(9)));
        // 50 %: a single 20 ms step earns a 20 ms sleep.
        assert_eq!(clock.after_step(ms(20), 50), Some(ms(20)));
        // 99 %: 0.1 ms of running buys 9.9 ms of sleep; above 99 counts as 99.
        assert_eq!(
            clock.after_step(Duration::from_micros(100), 99),
            Some(Duration::from_micros(9900))
        );
        assert_eq!(
            clock.after_step(Duration::from_micros(100), 250),
            Some(Duration::from_micros(9900))
        );
    }

    #[test]
    fn throttle_slows_the_threads_down() {
        let (counters, vcpus) = counting_steps(1, Duration::from_micros(100));
        let steps_in = |window: Duration| {
            let before = total(&counters);
            vcpus.resume().unwrap();
            thread::sleep(window);
            vcpus.pause().unwrap();
            total(&counters) - before
        };
        let free = steps_in(Duration::from_millis(150));
        vcpus.set_throttle(90);
        assert_eq!(vcpus.throttle(), 90);
        let throttled = steps_in(Duration::from_millis(150));
        assert!(
            throttled * 2 < free,
            "90% throttle: {throttled} steps against {free} unthrottled"
        );
        vcpus.set_throttle(0);
    }

}
