//! Frames over the UNIX socket to MiniVmm: whole frames out, whole frames (with their file
//! descriptors) in.

use std::io::{self, Read};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixStream;

use crate::protocol::{FrameHeader, ProtocolError, HEADER_SIZE};
use crate::sys::{self, Fd};

/// One received frame.
pub(crate) struct Frame {
    pub(crate) header: FrameHeader,
    pub(crate) payload: Vec<u8>,
    /// The descriptors that came with the header's first byte.
    pub(crate) fds: Vec<Fd>,
}

/// Why no frame could be received.
pub(crate) enum ReceiveError {
    /// The peer closed or reset the connection.
    Closed,
    /// The socket failed otherwise.
    Io(io::Error),
    /// The header is not a valid version-1 header.
    Protocol(ProtocolError),
}

impl From<io::Error> for ReceiveError {
    fn from(error: io::Error) -> ReceiveError {
        if is_disconnect(&error) {
            ReceiveError::Closed
        } else {
            ReceiveError::Io(error)
        }
    }
}

/// Whether a socket error means that the peer is gone.
pub(crate) fn is_disconnect(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::NotConnected
    )
}

/// The harness's end of the socket.
pub(crate) struct Connection {
    stream: UnixStream,
}

impl Connection {
    pub(crate) fn new(stream: UnixStream) -> Connection {
        Connection { stream }
    }

    /// Sends a header and its payload (whose length must match `header.size`).
    pub(crate) fn send(&self, header: FrameHeader, payload: &[u8]) -> io::Result<()> {
        debug_assert_eq!(header.size as usize, payload.len());
        let mut frame = Vec::with_capacity(HEADER_SIZE + payload.len());
        frame.extend_from_slice(&header.encode());
        frame.extend_from_slice(payload);
        sys::send_all_with_fds(self.stream.as_raw_fd(), &frame, &[])
    }

    /// Receives the next frame. The descriptors arrive with the first chunk of the header; the
    /// rest of the header and the payload may come in further chunks.
    pub(crate) fn receive(&mut self) -> Result<Frame, ReceiveError> {
        let mut header = [0u8; HEADER_SIZE];
        let mut fds = Vec::new();
        let first = sys::recv_with_fds(self.stream.as_raw_fd(), &mut header, &mut fds)?;
        if first == 0 {
            return Err(ReceiveError::Closed);
        }
        self.stream.read_exact(&mut header[first..])?;
        let header = FrameHeader::decode(&header).map_err(ReceiveError::Protocol)?;
        let mut payload = vec![0u8; header.size as usize];
        self.stream.read_exact(&mut payload)?;
        Ok(Frame {
            header,
            payload,
            fds,
        })
    }
}
