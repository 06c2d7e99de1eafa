//! The harness itself: connects to MiniVmm, answers its requests on the calling thread and
//! runs the guest on a vCPU thread.

use std::fmt;
use std::io;
use std::os::unix::net::UnixStream;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;

use crate::connection::{is_disconnect, Connection, Frame, ReceiveError};
use crate::memory::GuestMemory;
use crate::protocol::{
    self, FrameHeader, HelloReply, Request, FEATURE_STATE, FEATURE_THROTTLE, MAX_STATE_BYTES,
};
use crate::sys::{Fd, EINVAL, ENOSYS};
use crate::vcpu::{RunState, VcpuError, Vcpus};

/// The guest: the code that the vCPU thread runs, and the state it keeps across a migration.
pub trait Guest: Send + 'static {
    /// One short slice of vCPU work (a few microseconds up to about a millisecond), called
    /// again and again while the VM runs. A pause waits for the step in progress to return.
    /// Writes through `memory` are marked dirty for MiniVmm.
    fn step(&mut self, memory: &GuestMemory);

    /// The guest's state, taken while the vCPUs are paused. At most
    /// [`MAX_STATE_BYTES`]; more is a fatal error of the harness. Default: no state.
    fn save_state(&mut self) -> Vec<u8> {
        Vec::new()
    }

    /// Restores state saved by a source harness, while paused and before the first run.
    /// `memory` is the guest memory if MiniVmm has sent the memory table yet. `Err` refuses
    /// the bytes: MiniVmm's LOAD_STATE fails with `-EINVAL`. Default: accept anything.
    fn load_state(&mut self, state: &[u8], memory: Option<&GuestMemory>) -> Result<(), String> {
        let _ = (state, memory);
        Ok(())
    }
}

/// The features the harness offers MiniVmm in its HELLO.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HarnessOptions {
    /// The guest has state to save and load ([`FEATURE_STATE`]).
    pub state: bool,
    /// The harness obeys THROTTLE requests ([`FEATURE_THROTTLE`]).
    pub throttle: bool,
}

impl HarnessOptions {
    /// The HELLO feature bits for these options.
    pub fn features(&self) -> u64 {
        let mut features = 0;
        if self.state {
            features |= FEATURE_STATE;
        }
        if self.throttle {
            features |= FEATURE_THROTTLE;
        }
        features
    }
}

/// How a harness session ended well.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Exit {
    /// MiniVmm sent SHUTDOWN; the vCPUs have stopped.
    Shutdown,
}

/// How a harness session ended badly. The vCPU threads have stopped in every case.
#[derive(Debug)]
pub enum HarnessError {
    /// The socket failed.
    Io(io::Error),
    /// MiniVmm closed the connection (or reset it) without a SHUTDOWN.
    Disconnected,
    /// MiniVmm broke the protocol: a bad header, a reply where a request was due, a bad HELLO
    /// reply.
    Protocol(String),
    /// MiniVmm refused the HELLO with this negative errno (for example `-EBUSY`).
    Refused(i64),
    /// The guest's saved state is bigger than [`MAX_STATE_BYTES`].
    StateTooLarge(usize),
    /// A guest hook (`"step"`, `"save_state"`, `"load_state"`) panicked.
    GuestPanicked(&'static str),
}

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HarnessError::Io(error) => write!(f, "socket error: {error}"),
            HarnessError::Disconnected => write!(f, "MiniVmm closed the connection"),
            HarnessError::Protocol(message) => write!(f, "protocol error: {message}"),
            HarnessError::Refused(status) => {
                write!(f, "MiniVmm refused the harness (status {status})")
            }
            HarnessError::StateTooLarge(len) => write!(
                f,
                "guest state of {len} bytes exceeds the limit of {MAX_STATE_BYTES}"
            ),
            HarnessError::GuestPanicked(hook) => write!(f, "the guest panicked in {hook}"),
        }
    }
}

impl std::error::Error for HarnessError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HarnessError::Io(error) => Some(error),
            _ => None,
        }
    }
}

impl From<io::Error> for HarnessError {
    fn from(error: io::Error) -> HarnessError {
        if is_disconnect(&error) {
            HarnessError::Disconnected
        } else {
            HarnessError::Io(error)
        }
    }
}

impl From<ReceiveError> for HarnessError {
    fn from(error: ReceiveError) -> HarnessError {
        match error {
            ReceiveError::Closed => HarnessError::Disconnected,
            ReceiveError::Io(error) => HarnessError::Io(error),
            ReceiveError::Protocol(error) => HarnessError::Protocol(error.to_string()),
        }
    }
}

impl From<VcpuError> for HarnessError {
    fn from(error: VcpuError) -> HarnessError {
        match error {
            VcpuError::Panicked(_) => HarnessError::GuestPanicked("step"),
            VcpuError::Stopped => {
                HarnessError::Io(io::Error::new(io::ErrorKind::Other, error.to_string()))
            }
        }
    }
}

/// A connection to MiniVmm, ready to run a guest.
pub struct Harness {
    connection: Connection,
    options: HarnessOptions,
}

impl Harness {
    /// Connects to the socket MiniVmm listens on. The options start all off.
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<Harness> {
        UnixStream::connect(path).map(Harness::from_stream)
    }

    /// Uses a socket that is already connected to MiniVmm.
    pub fn from_stream(stream: UnixStream) -> Harness {
        Harness {
            connection: Connection::new(stream),
            options: HarnessOptions::default(),
        }
    }

    /// Sets the features to offer in the HELLO.
    pub fn with_options(mut self, options: HarnessOptions) -> Harness {
        self.options = options;
        self
    }

    /// Offers (or not) the STATE feature: the guest has state to save and load.
    pub fn offer_state(mut self, offer: bool) -> Harness {
        self.options.state = offer;
        self
    }

    /// Offers (or not) the THROTTLE feature: the harness obeys THROTTLE requests.
    pub fn offer_throttle(mut self, offer: bool) -> Harness {
        self.options.throttle = offer;
        self
    }

    /// The features that will be offered.
    pub fn options(&self) -> HarnessOptions {
        self.options
    }

    /// Says HELLO, then serves MiniVmm's requests on this thread while one vCPU thread runs
    /// `guest.step`, until SHUTDOWN (`Ok(Exit::Shutdown)`) or an error. The vCPU thread has
    /// stopped when this returns.
    pub fn run<G: Guest>(mut self, guest: G) -> Result<Exit, HarnessError> {
        let offered = self.options.features();
        self.hello(offered)?;
        let guest = Arc::new(Mutex::new(guest));
        let memory = Arc::new(MemorySlot::default());
        let vcpus = Vcpus::spawn(vec![vcpu_step(Arc::clone(&guest), Arc::clone(&memory))])?;
        let mut session = Session {
            connection: self.connection,
            offered,
            guest,
            memory,
            vcpus,
            run_requested: false,
        };
        let result = session.serve();
        session.vcpus.stop();
        result
    }

    /// Sends HELLO and returns the features MiniVmm accepts.
    fn hello(&mut self, offered: u64) -> Result<u64, HarnessError> {
        let payload = protocol::encode_features(offered);
        self.connection.send(
            FrameHeader::request(Request::Hello, payload.len() as u32),
            &payload,
        )?;
        let frame = self.connection.receive()?;
        if !frame.header.is_reply() || frame.header.request != Request::Hello.code() {
            return Err(HarnessError::Protocol(format!(
                "expected the reply to HELLO, got {} {}",
                if frame.header.is_reply() {
                    "a reply to"
                } else {
                    "request"
                },
                frame.header.request
            )));
        }
        match protocol::parse_hello_reply(&frame.payload, offered) {
            Ok(HelloReply::Accepted(features)) => Ok(features),
            Ok(HelloReply::Refused(status)) => Err(HarnessError::Refused(status)),
            Err(error) => Err(HarnessError::Protocol(error.to_string())),
        }
    }
}

impl fmt::Debug for Harness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Harness")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The current guest memory, swapped by the control thread while the vCPUs are parked.
#[derive(Default)]
struct MemorySlot(Mutex<Option<Arc<GuestMemory>>>);

impl MemorySlot {
    fn current(&self) -> Option<Arc<GuestMemory>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn replace(&self, memory: GuestMemory) {
        let old = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(Arc::new(memory));
        // The old table is unmapped here, outside the lock.
        drop(old);
    }
}

/// The vCPU's step function: one guest step against the current memory.
fn vcpu_step<G: Guest>(
    guest: Arc<Mutex<G>>,
    memory: Arc<MemorySlot>,
) -> impl FnMut() + Send + 'static {
    move || match memory.current() {
        Some(memory) => lock_guest(&guest).step(&memory),
        // Never the case while running: RUN needs memory, and a new table parks the vCPUs.
        None => thread::yield_now(),
    }
}

fn lock_guest<G>(guest: &Mutex<G>) -> MutexGuard<'_, G> {
    guest.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What to send back for a request.
enum Reply {
    Status(i64),
    Payload(Vec<u8>),
}

fn errno(errno: i32) -> Reply {
    Reply::Status(protocol::errno_status(errno))
}

/// The state of a session after HELLO.
struct Session<G: Guest> {
    connection: Connection,
    offered: u64,
    guest: Arc<Mutex<G>>,
    memory: Arc<MemorySlot>,
    vcpus: Vcpus,
    /// MiniVmm's last word was RUN (not PAUSE). The vCPUs run when this holds and the memory
    /// has its dirty logs.
    run_requested: bool,
}

impl<G: Guest> Session<G> {
    fn serve(&mut self) -> Result<Exit, HarnessError> {
        loop {
            let frame = self.connection.receive()?;
            if frame.header.is_reply() {
                return Err(HarnessError::Protocol(format!(
                    "MiniVmm sent a reply (to request {}) where a request was due",
                    frame.header.request
                )));
            }
            let code = frame.header.request;
            let reply = match Request::from_u32(code) {
                Some(Request::Shutdown) => {
                    self.vcpus.stop();
                    self.send_reply(code, Reply::Status(0))?;
                    return Ok(Exit::Shutdown);
                }
                Some(request) => self.handle(request, frame)?,
                None => errno(ENOSYS),
            };
            self.send_reply(code, reply)?;
        }
    }

    fn handle(&mut self, request: Request, frame: Frame) -> Result<Reply, HarnessError> {
        match request {
            Request::SetMemTable => self.set_mem_table(&frame.payload, frame.fds),
            Request::SetDirtyLog => self.set_dirty_log(&frame.payload, frame.fds),
            Request::Run => self.run(),
            Request::Pause => {
                self.run_requested = false;
                self.apply_run_state()?;
                Ok(Reply::Status(0))
            }
            Request::SaveState => self.save_state(),
            Request::LoadState => self.load_state(&frame.payload),
            Request::Throttle => Ok(self.throttle(&frame.payload)),
            // Only the harness says HELLO; SHUTDOWN is handled by the caller.
            Request::Hello | Request::Shutdown => Ok(errno(ENOSYS)),
        }
    }

    fn send_reply(&self, request: u32, reply: Reply) -> Result<(), HarnessError> {
        let status;
        let payload: &[u8] = match &reply {
            Reply::Status(value) => {
                status = protocol::encode_status(*value);
                &status
            }
            Reply::Payload(bytes) => bytes,
        };
        self.connection
            .send(FrameHeader::reply(request, payload.len() as u32), payload)?;
        Ok(())
    }

    fn set_mem_table(&mut self, payload: &[u8], fds: Vec<Fd>) -> Result<Reply, HarnessError> {
        let entries = match protocol::parse_mem_table(payload) {
            Ok(entries) => entries,
            Err(_) => return Ok(errno(EINVAL)),
        };
        match GuestMemory::map(&entries, fds) {
            Ok(memory) => {
                self.install(memory)?;
                Ok(Reply::Status(0))
            }
            Err(error) => Ok(errno(error.errno())),
        }
    }

    fn set_dirty_log(&mut self, payload: &[u8], fds: Vec<Fd>) -> Result<Reply, HarnessError> {
        let current = match self.memory.current() {
            Some(memory) => memory,
            None => return Ok(errno(EINVAL)),
        };
        let entries = match protocol::parse_dirty_log(payload) {
            Ok(entries) => entries,
            Err(_) => return Ok(errno(EINVAL)),
        };
        match current.with_dirty_logs(&entries, fds) {
            Ok(memory) => {
                drop(current);
                self.install(memory)?;
                Ok(Reply::Status(0))
            }
            Err(error) => Ok(errno(error.errno())),
        }
    }

    /// Swaps in new memory with the vCPUs parked, then lets them run again if they should.
    fn install(&mut self, memory: GuestMemory) -> Result<(), HarnessError> {
        self.vcpus.pause()?;
        self.memory.replace(memory);
        self.apply_run_state()
    }

    fn memory_ready(&self) -> bool {
        matches!(self.memory.current(), Some(memory) if memory.has_dirty_log())
    }

    fn run(&mut self) -> Result<Reply, HarnessError> {
        if !self.memory_ready() {
            return Ok(errno(EINVAL));
        }
        self.run_requested = true;
        self.apply_run_state()?;
        Ok(Reply::Status(0))
    }

    /// Runs or parks the vCPUs as MiniVmm asked, as far as the memory allows.
    fn apply_run_state(&mut self) -> Result<(), HarnessError> {
        let should_run = self.run_requested && self.memory_ready();
        let running = self.vcpus.run_state() == RunState::Running;
        if should_run && !running {
            self.vcpus.resume()?;
        } else if !should_run {
            self.vcpus.pause()?;
        }
        Ok(())
    }

    fn save_state(&mut self) -> Result<Reply, HarnessError> {
        let guest = &self.guest;
        let state = panic::catch_unwind(AssertUnwindSafe(|| lock_guest(guest).save_state()))
            .map_err(|_| HarnessError::GuestPanicked("save_state"))?;
        if state.len() > MAX_STATE_BYTES {
            return Err(HarnessError::StateTooLarge(state.len()));
        }
        Ok(Reply::Payload(state))
    }

    fn load_state(&mut self, state: &[u8]) -> Result<Reply, HarnessError> {
        let memory = self.memory.current();
        let guest = &self.guest;
        let loaded = panic::catch_unwind(AssertUnwindSafe(|| {
            lock_guest(guest).load_state(state, memory.as_deref())
        }))
        .map_err(|_| HarnessError::GuestPanicked("load_state"))?;
        Ok(match loaded {
            Ok(()) => Reply::Status(0),
            Err(_) => errno(EINVAL),
        })
    }

    fn throttle(&mut self, payload: &[u8]) -> Reply {
        if self.offered & FEATURE_THROTTLE == 0 {
            return errno(ENOSYS);
        }
        match protocol::parse_throttle(payload) {
            Ok(percent) => {
                self.vcpus.set_throttle(percent);
                Reply::Status(0)
            }
            Err(_) => errno(EINVAL),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_map_to_feature_bits() {
        assert_eq!(HarnessOptions::default().features(), 0);
        let both = HarnessOptions {
            state: true,
            throttle: true,
        };
        assert_eq!(both.features(), FEATURE_STATE | FEATURE_THROTTLE);
        let state_only = HarnessOptions {
            state: true,
            throttle: false,
        };
        assert_eq!(state_only.features(), FEATURE_STATE);
    }

    #[test]
    fn disconnects_are_their_own_error() {
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert!(matches!(
            HarnessError::from(reset),
            HarnessError::Disconnected
        ));
        let other = io::Error::from(io::ErrorKind::PermissionDenied);
        assert!(matches!(HarnessError::from(other), HarnessError::Io(_)));
        assert!(matches!(
            HarnessError::from(VcpuError::Panicked(1)),
            HarnessError::GuestPanicked("step")
        ));
    }

    #[test]
    fn errors_have_one_line_messages() {
        for error in [
            HarnessError::Disconnected,
            HarnessError::Protocol("bad".into()),
            HarnessError::Refused(-16),
            HarnessError::StateTooLarge(MAX_STATE_BYTES + 1),
            HarnessError::GuestPanicked("save_state"),
        ] {
            let message = error.to_string();
            assert!(
                !message.is_empty() && !message.contains('\n'),
                "{message:?}"
            );
        }
        assert!(HarnessError::Refused(-16).to_string().contains("-16"));
    }
}
