//! MiniVmm's side of the harness protocol, played inside the test process.
//!
//! Frames are encoded here by hand from the protocol description, not with the library's
//! `protocol` module, so that a symmetric mistake there cannot hide. Only the socket calls
//! (`sys::send_with_fds`) and the mappings (`sys::Mapping`) come from the library.

// Each test binary that includes this module uses a different part of it.
#![allow(dead_code)]

use std::ffi::CString;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::raw::{c_char, c_int, c_uint};
use std::os::unix::io::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use minivmm_harness::sys::{self, Fd, Mapping};

pub const PAGE: u64 = 4096;
pub const VERSION: u32 = 1;
pub const REPLY: u32 = 4;

pub const HELLO: u32 = 1;
pub const SET_MEM_TABLE: u32 = 2;
pub const SET_DIRTY_LOG: u32 = 3;
pub const RUN: u32 = 4;
pub const PAUSE: u32 = 5;
pub const SAVE_STATE: u32 = 6;
pub const LOAD_STATE: u32 = 7;
pub const SHUTDOWN: u32 = 8;
pub const THROTTLE: u32 = 9;

pub const EINVAL: i64 = -22;
pub const ENOSYS: i64 = -38;
pub const EBUSY: i64 = -16;

/// How long the fake side waits for anything from the harness before failing the test.
pub const TIMEOUT: Duration = Duration::from_secs(5);

extern "C" {
    fn memfd_create(name: *const c_char, flags: c_uint) -> c_int;
    fn ftruncate(fd: c_int, len: i64) -> c_int;
}

/// A zero-filled memfd of `len` bytes.
pub fn memfd(len: u64) -> Fd {
    let name = CString::new("fake-minivmm").unwrap();
    // SAFETY: `name` is a valid C string; 1 is MFD_CLOEXEC.
    let raw = unsafe { memfd_create(name.as_ptr(), 1) };
    assert!(raw >= 0, "memfd_create: {}", io::Error::last_os_error());
    // SAFETY: `raw` is a fresh descriptor that nothing else owns.
    let fd = unsafe { Fd::from_raw(raw) };
    // SAFETY: plain system call on a descriptor we own.
    let result = unsafe { ftruncate(fd.raw(), len as i64) };
    assert_eq!(result, 0, "ftruncate: {}", io::Error::last_os_error());
    fd
}

/// A SET_MEM_TABLE payload: `(guest_phys_addr, size, mmap_offset, idstr)` per region.
pub fn mem_table_payload(entries: &[(u64, u64, u64, &str)]) -> Vec<u8> {
    let mut payload = Vec::new();
    payload.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    payload.extend_from_slice(&0u32.to_le_bytes());
    for &(gpa, size, offset, name) in entries {
        payload.extend_from_slice(&gpa.to_le_bytes());
        payload.extend_from_slice(&size.to_le_bytes());
        payload.extend_from_slice(&offset.to_le_bytes());
        let mut idstr = [0u8; 40];
        idstr[..name.len()].copy_from_slice(name.as_bytes());
        payload.extend_from_slice(&idstr);
    }
    payload
}

/// A SET_DIRTY_LOG payload: `(log_size, mmap_offset)` per region.
pub fn dirty_log_payload(entries: &[(u64, u64)]) -> Vec<u8> {
    let mut payload = Vec::new();
    for &(size, offset) in entries {
        payload.extend_from_slice(&size.to_le_bytes());
        payload.extend_from_slice(&offset.to_le_bytes());
    }
    payload
}

/// A directory under the system's temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let path = std::env::temp_dir().join(format!(
            "minivmm-harness-test-{}-{}-{}",
            std::process::id(),
            nanos,
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The socket MiniVmm listens on.
pub struct Listener {
    _dir: TempDir,
    path: PathBuf,
    listener: UnixListener,
}

impl Listener {
    pub fn new() -> Listener {
        let dir = TempDir::new();
        let path = dir.path().join("h.sock");
        let listener = UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        Listener {
            _dir: dir,
            path,
            listener,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits (at most [`TIMEOUT`]) for the harness to connect.
    pub fn accept(&self) -> FakeVmm {
        let start = Instant::now();
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
                    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
                    return FakeVmm {
                        stream,
                        regions: Vec::new(),
                    };
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    assert!(start.elapsed() < TIMEOUT, "the harness never connected");
                    thread::sleep(Duration::from_millis(1));
                }
                Err(error) => panic!("accept: {error}"),
            }
        }
    }
}

/// One RAM region as MiniVmm holds it: the memfds it sent, and its own mappings of them.
pub struct FakeRegion {
    pub gpa: u64,
    pub size: u64,
    pub ram_file: Fd,
    pub ram_offset: u64,
    pub ram: Mapping,
    pub log_file: Fd,
    pub log_offset: u64,
    pub log_size: u64,
    pub log: Mapping,
}

impl FakeRegion {
    /// A region of `size` bytes at `gpa`; its RAM starts `ram_offset` bytes into its memfd,
    /// its (minimal) dirty log one page into another.
    pub fn new(gpa: u64, size: u64, ram_offset: u64) -> FakeRegion {
        let ram_file = memfd(ram_offset + size);
        let ram = Mapping::shared(&ram_file, size as usize, ram_offset).unwrap();
        let pages = size / PAGE;
        let log_size = (pages + 7) / 8;
        let log_offset = PAGE;
        let log_file = memfd(log_offset + log_size);
        let log = Mapping::shared(&log_file, log_size as usize, log_offset).unwrap();
        FakeRegion {
            gpa,
            size,
            ram_file,
            ram_offset,
            ram,
            log_file,
            log_offset,
            log_size,
            log,
        }
    }

    pub fn pages(&self) -> u64 {
        self.size / PAGE
    }

    /// A copy of the region's RAM.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut copy = vec![0u8; self.size as usize];
        // SAFETY: the mapping is `size` bytes long and alive; `copy` is a separate buffer.
        unsafe { std::ptr::copy_nonoverlapping(self.ram.as_ptr(), copy.as_mut_ptr(), copy.len()) };
        copy
    }

    /// Overwrites the region's RAM (only while the harness is paused).
    pub fn fill(&self, bytes: &[u8]) {
        assert_eq!(bytes.len() as u64, self.size);
        // SAFETY: as for `snapshot`, in the other direction.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ram.as_ptr(), bytes.len()) };
    }

    fn log_byte(&self, index: u64) -> &AtomicU8 {
        assert!(index < self.log_size);
        // SAFETY: inside the log mapping, which lives as long as `self`; accessed atomically.
        unsafe { &*(self.log.as_ptr().add(index as usize) as *const AtomicU8) }
    }

    pub fn is_dirty(&self, page: u64) -> bool {
        self.log_byte(page / 8).load(Ordering::Acquire) & (1 << (page % 8)) != 0
    }

    /// The pages whose dirty bit is set.
    pub fn dirty_pages(&self) -> Vec<u64> {
        (0..self.pages())
            .filter(|&page| self.is_dirty(page))
            .collect()
    }

    /// Clears the whole log, as MiniVmm does when it harvests it.
    pub fn clear_dirty(&self) {
        for index in 0..self.log_size {
            self.log_byte(index).swap(0, Ordering::AcqRel);
        }
    }

    /// The mem-table entry that describes this region.
    pub fn entry<'a>(&self, name: &'a str) -> (u64, u64, u64, &'a str) {
        (self.gpa, self.size, self.ram_offset, name)
    }
}

/// Asserts that every page that differs between two snapshots has its dirty bit set.
pub fn assert_changed_pages_dirty(before: &[u8], after: &[u8], region: &FakeRegion) -> usize {
    let mut changed = 0;
    for page in 0..region.pages() {
        let range = (page * PAGE) as usize..((page + 1) * PAGE) as usize;
        if before[range.clone()] != after[range] {
            changed += 1;
            assert!(
                region.is_dirty(page),
                "page {page} of the region at {:#x} changed but is not marked dirty",
                region.gpa
            );
        }
    }
    changed
}

/// MiniVmm's end of one harness connection.
pub struct FakeVmm {
    stream: UnixStream,
    pub regions: Vec<FakeRegion>,
}

impl FakeVmm {
    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }

    /// Sends one frame, with `fds` attached to its first byte.
    pub fn send_frame(&self, request: u32, flags: u32, payload: &[u8], fds: &[RawFd]) {
        let mut frame = Vec::new();
        frame.extend_from_slice(&request.to_le_bytes());
        frame.extend_from_slice(&flags.to_le_bytes());
        frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        frame.extend_from_slice(payload);
        sys::send_all_with_fds(self.stream.as_raw_fd(), &frame, fds).unwrap();
    }

    /// Receives one frame: `(request, flags, payload)`.
    pub fn receive(&mut self) -> (u32, u32, Vec<u8>) {
        let mut header = [0u8; 12];
        self.stream
            .read_exact(&mut header)
            .expect("no frame from the harness in time");
        let word = |at: usize| {
            u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
        };
        let (request, flags, size) = (word(0), word(4), word(8));
        let mut payload = vec![0u8; size as usize];
        self.stream
            .read_exact(&mut payload)
            .expect("the harness's frame was cut short");
        (request, flags, payload)
    }

    /// Sends a request and returns the payload of its reply.
    pub fn call(&mut self, request: u32, payload: &[u8], fds: &[RawFd]) -> Vec<u8> {
        self.send_frame(request, VERSION, payload, fds);
        let (replied_to, flags, payload) = self.receive();
        assert_eq!(replied_to, request, "reply to the wrong request");
        assert_eq!(
            flags,
            VERSION | REPLY,
            "a reply must carry version 1 and REPLY"
        );
        payload
    }

    /// Sends a request and returns the status of its reply.
    pub fn call_status(&mut self, request: u32, payload: &[u8], fds: &[RawFd]) -> i64 {
        let reply = self.call(request, payload, fds);
        assert_eq!(reply.len(), 8, "a status reply is 8 bytes");
        let mut word = [0u8; 8];
        word.copy_from_slice(&reply);
        i64::from_le_bytes(word)
    }

    /// Receives the harness's HELLO, replies accepting `offered & accept`, returns `offered`.
    pub fn hello(&mut self, accept: u64) -> u64 {
        let (request, flags, payload) = self.receive();
        assert_eq!(request, HELLO, "the harness must say HELLO first");
        assert_eq!(flags, VERSION, "HELLO is a version-1 request");
        assert_eq!(payload.len(), 8);
        let mut word = [0u8; 8];
        word.copy_from_slice(&payload);
        let offered = u64::from_le_bytes(word);
        self.send_frame(
            HELLO,
            VERSION | REPLY,
            &(offered & accept).to_le_bytes(),
            &[],
        );
        offered
    }

    /// Sends SET_MEM_TABLE and SET_DIRTY_LOG for `regions`, asserting both succeed, and keeps
    /// the regions for inspection.
    pub fn set_up_memory(&mut self, regions: Vec<FakeRegion>) {
        let entries: Vec<_> = regions.iter().map(|region| region.entry("ram")).collect();
        let ram_fds: Vec<RawFd> = regions.iter().map(|region| region.ram_file.raw()).collect();
        assert_eq!(
            self.call_status(SET_MEM_TABLE, &mem_table_payload(&entries), &ram_fds),
            0
        );
        self.regions = regions;
        self.send_dirty_logs();
    }

    /// Sends SET_DIRTY_LOG for the kept regions, asserting it succeeds.
    pub fn send_dirty_logs(&mut self) {
        let logs: Vec<(u64, u64)> = self
            .regions
            .iter()
            .map(|region| (region.log_size, region.log_offset))
            .collect();
        let log_fds: Vec<RawFd> = self
            .regions
            .iter()
            .map(|region| region.log_file.raw())
            .collect();
        assert_eq!(
            self.call_status(SET_DIRTY_LOG, &dirty_log_payload(&logs), &log_fds),
            0
        );
    }

    /// Writes raw bytes to the socket (for frames sent in pieces).
    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Closes the connection as MiniVmm would by exiting; the regions stay mapped here.
    pub fn disconnect(&self) {
        self.stream.shutdown(Shutdown::Both).unwrap();
    }

    /// Whether the harness has closed its end (reads EOF within [`TIMEOUT`]).
    pub fn sees_end_of_stream(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.stream.read(&mut byte), Ok(0))
    }
}
