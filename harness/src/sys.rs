//! The few Linux calls the harness needs, declared by hand, behind small safe wrappers.
//!
//! [`Fd`] owns a file descriptor, [`Mapping`] owns a shared memory mapping, and
//! [`send_with_fds`] / [`recv_with_fds`] move bytes together with `SCM_RIGHTS` file
//! descriptors over a UNIX socket. Linux on x86_64 only: the structure layouts below are that
//! ABI's.

use std::fmt;
use std::io;
use std::mem;
use std::os::raw::{c_int, c_void};
use std::os::unix::io::{AsRawFd, FromRawFd, IntoRawFd, RawFd};
use std::ptr::{self, NonNull};

/// Errno: invalid argument.
pub const EINVAL: i32 = 22;
/// Errno: function not implemented.
pub const ENOSYS: i32 = 38;
/// Errno: device or resource busy.
pub const EBUSY: i32 = 16;
/// Errno: input/output error.
pub const EIO: i32 = 5;

/// The most file descriptors [`recv_with_fds`] accepts in one message (the kernel's own limit).
pub const MAX_FDS_PER_MESSAGE: usize = 253;

const PROT_READ: c_int = 0x1;
const PROT_WRITE: c_int = 0x2;
const MAP_SHARED: c_int = 0x01;
const SOL_SOCKET: c_int = 1;
const SCM_RIGHTS: c_int = 1;
const MSG_CTRUNC: c_int = 0x8;
const MSG_NOSIGNAL: c_int = 0x4000;
const MSG_CMSG_CLOEXEC: c_int = 0x4000_0000;

/// `struct iovec`.
#[repr(C)]
struct IoVec {
    base: *mut c_void,
    len: usize,
}

/// `struct msghdr` (x86_64 glibc/musl layout; `repr(C)` inserts the padding after `name_len`).
#[repr(C)]
struct MsgHdr {
    name: *mut c_void,
    name_len: u32,
    iov: *mut IoVec,
    iov_len: usize,
    control: *mut c_void,
    control_len: usize,
    flags: c_int,
}

/// `struct cmsghdr`; its data follows at the next 8-byte boundary.
#[repr(C)]
struct CmsgHdr {
    len: usize,
    level: c_int,
    kind: c_int,
}

extern "C" {
    fn sendmsg(socket: c_int, message: *const MsgHdr, flags: c_int) -> isize;
    fn recvmsg(socket: c_int, message: *mut MsgHdr, flags: c_int) -> isize;
    fn mmap(
        addr: *mut c_void,
        len: usize,
        prot: c_int,
        flags: c_int,
        fd: c_int,
        offset: i64,
    ) -> *mut c_void;
    fn munmap(addr: *mut c_void, len: usize) -> c_int;
    fn close(fd: c_int) -> c_int;
}

const CMSG_HEADER_SIZE: usize = mem::size_of::<CmsgHdr>();

/// Rounds `len` up to the alignment of control message headers.
const fn cmsg_align(len: usize) -> usize {
    (len + mem::size_of::<usize>() - 1) & !(mem::size_of::<usize>() - 1)
}

/// Room needed in a control buffer for one message carrying `fds` descriptors.
const fn cmsg_space(fds: usize) -> usize {
    CMSG_HEADER_SIZE + cmsg_align(fds * mem::size_of::<c_int>())
}

/// A control buffer with room for the largest `SCM_RIGHTS` message, aligned for `CmsgHdr`.
const CONTROL_WORDS: usize = cmsg_space(MAX_FDS_PER_MESSAGE) / mem::size_of::<u64>();

/// An open file descriptor that this value owns and closes when dropped.
pub struct Fd(RawFd);

impl Fd {
    /// Takes ownership of `fd`.
    ///
    /// # Safety
    /// `fd` must be an open descriptor that nothing else closes.
    pub unsafe fn from_raw(fd: RawFd) -> Fd {
        Fd(fd)
    }

    /// The descriptor number, still owned by `self`.
    pub fn raw(&self) -> RawFd {
        self.0
    }
}

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

impl IntoRawFd for Fd {
    fn into_raw_fd(self) -> RawFd {
        let fd = self.0;
        mem::forget(self);
        fd
    }
}

impl FromRawFd for Fd {
    unsafe fn from_raw_fd(fd: RawFd) -> Fd {
        Fd(fd)
    }
}

impl fmt::Debug for Fd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Fd").field(&self.0).finish()
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: `self` owns the descriptor, and it is closed exactly once, here.
        unsafe {
            close(self.0);
        }
    }
}

/// A `MAP_SHARED`, read/write mapping of part of a file, unmapped when dropped.
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a `Mapping` is an address range, not a Rust object; it is valid from every thread
// until dropped. Synchronising access to the bytes is the business of whoever uses them.
unsafe impl Send for Mapping {}
// SAFETY: as above; `&Mapping` only hands out the address and length.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `file`, starting at `offset`, shared and readable/writable.
    /// `offset` must be a multiple of the host page size and `len` non-zero.
    pub fn shared<F: AsRawFd>(file: &F, len: usize, offset: u64) -> io::Result<Mapping> {
        let offset = i64::try_from(offset).map_err(|_| io::Error::from_raw_os_error(EINVAL))?;
        // SAFETY: a fresh mapping at an address of the kernel's choosing touches no existing
        // memory; the result is checked before use.
        let addr = unsafe {
            mmap(
                ptr::null_mut(),
                len,
                PROT_READ | PROT_WRITE,
                MAP_SHARED,
                file.as_raw_fd(),
                offset,
            )
        };
        if addr as isize == -1 {
            return Err(io::Error::last_os_error());
        }
        let ptr =
            NonNull::new(addr as *mut u8).ok_or_else(|| io::Error::from_raw_os_error(EINVAL))?;
        Ok(Mapping { ptr, len })
    }

    /// The first byte of the mapping.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The mapping's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (never true for a mapping that exists).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mapping")
            .field("ptr", &self.ptr)
            .field("len", &self.len)
            .finish()
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `self` owns this mapping, created by `mmap` with exactly this address and length.
        unsafe {
            munmap(self.ptr.as_ptr() as *mut c_void, self.len);
        }
    }
}

/// Sends some of `data` over `socket` with one `sendmsg`, attaching `fds` as `SCM_RIGHTS` to
/// the bytes sent. Returns how many bytes went out; the descriptors go with them.
pub fn send_with_fds(socket: RawFd, data: &[u8], fds: &[RawFd]) -> io::Result<usize> {
    if fds.len() > MAX_FDS_PER_MESSAGE {
        return Err(io::Error::from_raw_os_error(EINVAL));
    }
    let mut control = [0u64; CONTROL_WORDS];
    let mut iov = IoVec {
        base: data.as_ptr() as *mut c_void,
        len: data.len(),
    };
    let mut message = MsgHdr {
        name: ptr::null_mut(),
        name_len: 0,
        iov: &mut iov,
        iov_len: 1,
        control: ptr::null_mut(),
        control_len: 0,
        flags: 0,
    };
    if !fds.is_empty() {
        let fd_bytes = mem::size_of_val(fds);
        let header = CmsgHdr {
            len: CMSG_HEADER_SIZE + fd_bytes,
            level: SOL_SOCKET,
            kind: SCM_RIGHTS,
        };
        let base = control.as_mut_ptr() as *mut u8;
        // SAFETY: `control` is 8-byte aligned and has room for a header plus
        // MAX_FDS_PER_MESSAGE descriptors, and `fds.len()` is at most that.
        unsafe {
            ptr::write(base as *mut CmsgHdr, header);
            ptr::copy_nonoverlapping(
                fds.as_ptr() as *const u8,
                base.add(CMSG_HEADER_SIZE),
                fd_bytes,
            );
        }
        message.control = base as *mut c_void;
        message.control_len = cmsg_space(fds.len());
    }
    loop {
        // SAFETY: `message` points at `iov`, `data` and `control`, all alive for the call; the
        // kernel only reads them.
        let sent = unsafe { sendmsg(socket, &message, MSG_NOSIGNAL) };
        if sent >= 0 {
            return Ok(sent as usize);
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// Sends all of `data`, the descriptors attached to the first chunk.
pub fn send_all_with_fds(socket: RawFd, data: &[u8], fds: &[RawFd]) -> io::Result<()> {
    let mut sent = send_with_fds(socket, data, fds)?;
    while sent < data.len() {
        let more = send_with_fds(socket, &data[sent..], &[])?;
        if more == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        sent += more;
    }
    Ok(())
}

/// Receives up to `buf.len()` bytes from `socket` with one `recvmsg`, appending any
/// `SCM_RIGHTS` descriptors that came with them to `fds` (close-on-exec). Returns the number of
/// bytes read; 0 means the peer closed the connection. An error if the kernel had to drop
/// descriptors for lack of room.
pub fn recv_with_fds(socket: RawFd, buf: &mut [u8], fds: &mut Vec<Fd>) -> io::Result<usize> {
    let mut control = [0u64; CONTROL_WORDS];
    let mut iov = IoVec {
        base: buf.as_mut_ptr() as *mut c_void,
        len: buf.len(),
    };
    let mut message = MsgHdr {
        name: ptr::null_mut(),
        name_len: 0,
        iov: &mut iov,
        iov_len: 1,
        control: control.as_mut_ptr() as *mut c_void,
        control_len: mem::size_of_val(&control),
        flags: 0,
    };
    let received = loop {
        // SAFETY: `message` points at `iov`, `buf` and `control`, all alive and writable for the
        // call, with their true lengths.
        let received = unsafe { recvmsg(socket, &mut message, MSG_CMSG_CLOEXEC) };
        if received >= 0 {
            break received as usize;
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    };
    let control_bytes = control.as_ptr() as *const u8;
    let mut offset = 0;
    while offset + CMSG_HEADER_SIZE <= message.control_len {
        // SAFETY: the kernel wrote `control_len` bytes of well-formed control messages, each
        // header 8-byte aligned within the aligned buffer; we stay inside `control_len`.
        let header = unsafe { ptr::read(control_bytes.add(offset) as *const CmsgHdr) };
        if header.len < CMSG_HEADER_SIZE || offset + header.len > message.control_len {
            break;
        }
        if header.level == SOL_SOCKET && header.kind == SCM_RIGHTS {
            let count = (header.len - CMSG_HEADER_SIZE) / mem::size_of::<c_int>();
            for index in 0..count {
                // SAFETY: the descriptor lies within this message's `len` bytes; it may be
                // unaligned for c_int in principle, hence read_unaligned.
                let fd = unsafe {
                    ptr::read_unaligned(
                        control_bytes
                            .add(offset + CMSG_HEADER_SIZE + index * mem::size_of::<c_int>())
                            as *const c_int,
                    )
                };
                // SAFETY: the kernel just installed this descriptor for us; nothing else owns it.
                fds.push(unsafe { Fd::from_raw(fd) });
            }
        }
        offset += cmsg_align(header.len);
    }
    if message.flags & MSG_CTRUNC != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "file descriptors were dropped: too many in one message",
        ));
    }
    Ok(received)
}

#[cfg(test)]
pub(crate) mod test_files {
    //! Files to map in tests: memfds, declared here so that the library itself needs none.

    use super::Fd;
    use std::ffi::CString;
    use std::io;
    use std::os::raw::{c_char, c_int, c_uint};

    extern "C" {
        fn memfd_create(name: *const c_char, flags: c_uint) -> c_int;
        fn ftruncate(fd: c_int, len: i64) -> c_int;
    }

    /// A zero-filled anonymous file of `len` bytes.
    pub(crate) fn memfd(len: u64) -> Fd {
        let name = CString::new("minivmm-harness-test").unwrap();
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    #[test]
    fn control_buffer_layout_matches_the_x86_64_abi() {
        assert_eq!(mem::size_of::<MsgHdr>(), 56);
        assert_eq!(mem::size_of::<CmsgHdr>(), 16);
        assert_eq!(cmsg_space(1), 24);
        assert_eq!(cmsg_space(2), 24);
        assert_eq!(cmsg_space(3), 32);
        assert!(CONTROL_WORDS * 8 >= cmsg_space(MAX_FDS_PER_MESSAGE));
    }

    #[test]
    fn descriptors_travel_with_the_first_byte() {
        let (carrier_tx, carrier_rx) = UnixStream::pair().unwrap();
        let (a_near, a_far) = UnixStream::pair().unwrap();
        let (b_near, b_far) = UnixStream::pair().unwrap();

        send_all_with_fds(
            carrier_tx.as_raw_fd(),
            b"hello world",
            &[a_far.as_raw_fd(), b_far.as_raw_fd()],
        )
        .unwrap();
        drop((a_far, b_far));

        let mut fds = Vec::new();
        let mut first = [0u8; 5];
        assert_eq!(
            recv_with_fds(carrier_rx.as_raw_fd(), &mut first, &mut fds).unwrap(),
            5
        );
        assert_eq!(&first, b"hello");
        assert_eq!(fds.len(), 2);

        let mut rest = Vec::new();
        let mut no_fds = Vec::new();
        let mut chunk = [0u8; 64];
        let n = recv_with_fds(carrier_rx.as_raw_fd(), &mut chunk, &mut no_fds).unwrap();
        rest.extend_from_slice(&chunk[..n]);
        assert_eq!(rest, b" world");
        assert!(no_fds.is_empty());

        // The received descriptors are the far ends of the two pairs: they still work.
        for (fd, near) in fds.into_iter().zip([a_near, b_near]) {
            // SAFETY: ownership moves from `Fd` into the stream.
            let mut far = unsafe { UnixStream::from_raw_fd(fd.into_raw_fd()) };
            far.write_all(b"ping").unwrap();
            let mut reply = [0u8; 4];
            (&near).read_exact(&mut reply).unwrap();
            assert_eq!(&reply, b"ping");
        }
    }

    #[test]
    fn recv_reports_end_of_stream_as_zero() {
        let (tx, rx) = UnixStream::pair().unwrap();
        drop(tx);
        let mut fds = Vec::new();
        let mut buf = [0u8; 4];
        assert_eq!(
            recv_with_fds(rx.as_raw_fd(), &mut buf, &mut fds).unwrap(),
            0
        );
    }

    #[test]
    fn dropping_an_fd_closes_it() {
        let (tx, mut rx) = UnixStream::pair().unwrap();
        // SAFETY: ownership moves from the stream into `Fd`.
        let fd = unsafe { Fd::from_raw(tx.into_raw_fd()) };
        drop(fd);
        let mut buf = [0u8; 1];
        assert_eq!(
            rx.read(&mut buf).unwrap(),
            0,
            "the peer should see end of stream"
        );
    }

    #[test]
    fn send_to_a_closed_peer_fails_without_a_signal() {
        let (tx, rx) = UnixStream::pair().unwrap();
        drop(rx);
        let error = send_all_with_fds(tx.as_raw_fd(), b"x", &[]).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn mapping_shares_bytes_with_the_file_at_the_offset() {
        let file = test_files::memfd(3 * 4096);
        let mapping = Mapping::shared(&file, 4096, 4096).unwrap();
        assert_eq!(mapping.len(), 4096);
        // SAFETY: the mapping is 4096 bytes long and only this test uses it.
        unsafe { *mapping.as_ptr().add(10) = 0xAB };
        let whole = Mapping::shared(&file, 3 * 4096, 0).unwrap();
        // SAFETY: in bounds of `whole`, which maps the same file.
        let seen = unsafe { *whole.as_ptr().add(4096 + 10) };
        assert_eq!(seen, 0xAB);
    }

    #[test]
    fn mapping_with_an_unaligned_offset_fails() {
        let file = test_files::memfd(8192);
        let error = Mapping::shared(&file, 4096, 100).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(EINVAL));
    }
}
