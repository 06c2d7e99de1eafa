//! The MiniVmm guest-harness wire protocol, version 1, as pure data.
//!
//! The harness connects to MiniVmm's UNIX stream socket. Every message is a frame: a 12-byte
//! little-endian [`FrameHeader`] (`u32 request`, `u32 flags`, `u32 size`) followed by `size`
//! payload bytes. `flags` carries the version in its low two bits and [`FLAG_REPLY`]; other bits
//! are zero. File descriptors travel as `SCM_RIGHTS` with the first byte of the header. Each
//! request gets exactly one reply with the same request number; see [`Request`] for the
//! payloads. Unknown requests are answered with `-ENOSYS`; a bad header or a reply where a
//! request was due ends the session.
//!
//! This module encodes and decodes headers and payloads and performs no I/O. Sockets and file
//! descriptors are the business of [`crate::sys`] and of the harness loop.

use std::fmt;

/// Size in bytes of an encoded [`FrameHeader`].
pub const HEADER_SIZE: usize = 12;
/// The protocol version this crate speaks, carried in the low two bits of `flags`.
pub const VERSION: u32 = 1;
/// The bits of `flags` that hold the version.
pub const VERSION_MASK: u32 = 0x3;
/// The `flags` bit that marks a frame as the reply to a request.
pub const FLAG_REPLY: u32 = 0x4;
/// Every `flags` bit that version 1 defines; the others must be zero.
pub const KNOWN_FLAGS: u32 = VERSION_MASK | FLAG_REPLY;

/// The guest page size that dirty logs count in.
pub const PAGE_SIZE: u64 = 4096;
/// The largest state a harness may send in reply to [`Request::SaveState`].
pub const MAX_STATE_BYTES: usize = 16 << 20;
/// The largest payload a frame may announce; anything bigger is a protocol error.
pub const MAX_PAYLOAD_BYTES: usize = MAX_STATE_BYTES + 64;
/// The most regions a memory table may hold.
pub const MAX_REGIONS: usize = 64;
/// Size in bytes of one encoded [`MemTableEntry`].
pub const MEM_TABLE_ENTRY_SIZE: usize = 64;
/// Size in bytes of the count-and-padding prefix of a memory table payload.
pub const MEM_TABLE_PREFIX_SIZE: usize = 8;
/// Size in bytes of the NUL-padded region name inside a [`MemTableEntry`].
pub const IDSTR_SIZE: usize = 40;
/// Size in bytes of one encoded [`DirtyLogEntry`].
pub const DIRTY_LOG_ENTRY_SIZE: usize = 16;
/// The highest share of its time, in percent, that a vCPU may be throttled by.
pub const MAX_THROTTLE_PERCENT: u32 = 99;

/// HELLO feature bit: the harness has state for [`Request::SaveState`] / [`Request::LoadState`].
pub const FEATURE_STATE: u64 = 1 << 0;
/// HELLO feature bit: the harness obeys [`Request::Throttle`].
pub const FEATURE_THROTTLE: u64 = 1 << 1;
/// Every feature bit that version 1 defines.
pub const KNOWN_FEATURES: u64 = FEATURE_STATE | FEATURE_THROTTLE;

/// The request numbers of protocol version 1. Requests without a named reply payload are
/// answered with a status: `u64`, 0 for success, otherwise a negative errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Request {
    /// Harness → MiniVmm, the first frame and the only request the harness sends. Payload:
    /// `u64` features offered ([`FEATURE_STATE`], [`FEATURE_THROTTLE`]). Reply: `u64` features
    /// accepted (a subset), or a negative errno (bit 63 set) refusing the harness.
    Hello = 1,
    /// Payload: `u32 count`, `u32 0`, then `count` 64-byte [`MemTableEntry`]s; `count` RAM
    /// memfds attached, in the same order. Replaces any earlier table.
    SetMemTable = 2,
    /// Payload: one 16-byte [`DirtyLogEntry`] per region, in table order; one log memfd each.
    SetDirtyLog = 3,
    /// No payload. Replied once the vCPUs run; `-EINVAL` while there is no memory table with
    /// its dirty logs.
    Run = 4,
    /// No payload. Replied once no vCPU writes any more and every write is marked dirty.
    Pause = 5,
    /// No payload, sent while paused. Reply: the state bytes (at most [`MAX_STATE_BYTES`]),
    /// not a status.
    SaveState = 6,
    /// Payload: state bytes, sent while paused before the first RUN. `-EINVAL` if the guest
    /// refuses them.
    LoadState = 7,
    /// No payload. The harness stops its vCPUs, replies 0 and exits.
    Shutdown = 8,
    /// Payload: `u32` percent from 0 to [`MAX_THROTTLE_PERCENT`], the share of every 10 ms
    /// of running time each vCPU sleeps; `-EINVAL` out of range. Sent only if THROTTLE was
    /// accepted.
    Throttle = 9,
}

impl Request {
    /// Every request of version 1, in numeric order.
    pub const ALL: [Request; 9] = [
        Request::Hello,
        Request::SetMemTable,
        Request::SetDirtyLog,
        Request::Run,
        Request::Pause,
        Request::SaveState,
        Request::LoadState,
        Request::Shutdown,
        Request::Throttle,
    ];

    /// The request with wire number `code`, or `None` for a number version 1 does not define.
    pub fn from_u32(code: u32) -> Option<Request> {
        Request::ALL
            .iter()
            .copied()
            .find(|request| request.code() == code)
    }

    /// The wire number of this request.
    pub fn code(self) -> u32 {
        self as u32
    }
}

/// Why bytes received from the peer are not a valid version-1 message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// The version bits of `flags` are not [`VERSION`].
    UnsupportedVersion(u32),
    /// `flags` has bits set that version 1 does not define.
    ReservedFlags(u32),
    /// The header announces a payload bigger than [`MAX_PAYLOAD_BYTES`].
    FrameTooLarge(u32),
    /// A payload does not have the size its message requires.
    PayloadSize {
        /// The request whose payload it is.
        request: Request,
        /// The size the message requires (for variable-size messages, the one implied by its content).
        expected: usize,
        /// The size received.
        actual: usize,
    },
    /// A memory table announces more than [`MAX_REGIONS`] regions.
    TooManyRegions(u32),
    /// A memory table region has a zero or unaligned size, or ends beyond the address space.
    InvalidRegion {
        /// The region's position in the table.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two memory table regions share guest-physical addresses.
    OverlappingRegions {
        /// The position of the first region in the table.
        first: usize,
        /// The position of the second region in the table.
        second: usize,
    },
    /// A region name is longer than [`IDSTR_SIZE`] bytes.
    IdstrTooLong(usize),
    /// A throttle percentage above [`MAX_THROTTLE_PERCENT`].
    ThrottleOutOfRange(u32),
    /// MiniVmm accepted features the harness did not offer.
    FeaturesNotOffered {
        /// The features the harness offered.
        offered: u64,
        /// The features MiniVmm's reply accepts.
        accepted: u64,
    },
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::UnsupportedVersion(version) => {
                write!(
                    f,
                    "unsupported protocol version {version} (expected {VERSION})"
                )
            }
            ProtocolError::ReservedFlags(flags) => {
                write!(f, "reserved flag bits set: {flags:#x}")
            }
            ProtocolError::FrameTooLarge(size) => write!(
                f,
                "frame payload of {size} bytes exceeds the limit of {MAX_PAYLOAD_BYTES}"
            ),
            ProtocolError::PayloadSize {
                request,
                expected,
                actual,
            } => write!(
                f,
                "{request:?} payload is {actual} bytes, expected {expected}"
            ),
            ProtocolError::TooManyRegions(count) => {
                write!(
                    f,
                    "memory table has {count} regions, at most {MAX_REGIONS} allowed"
                )
            }
            ProtocolError::InvalidRegion { index, reason } => {
                write!(f, "memory table region {index}: {reason}")
            }
            ProtocolError::OverlappingRegions { first, second } => {
                write!(f, "memory table regions {first} and {second} overlap")
            }
            ProtocolError::IdstrTooLong(len) => {
                write!(f, "region name of {len} bytes exceeds {IDSTR_SIZE} bytes")
            }
            ProtocolError::ThrottleOutOfRange(percent) => write!(
                f,
                "throttle of {percent}% is outside 0..={MAX_THROTTLE_PERCENT}"
            ),
            ProtocolError::FeaturesNotOffered { offered, accepted } => write!(
                f,
                "MiniVmm accepted features {accepted:#x}, more than the offered {offered:#x}"
            ),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// The fixed 12-byte header in front of every frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// The request number (see [`Request`]); a reply repeats the number of its request.
    pub request: u32,
    /// Version bits and the [`FLAG_REPLY`] bit.
    pub flags: u32,
    /// The number of payload bytes after the header.
    pub size: u32,
}

impl FrameHeader {
    /// The header of a request frame with a payload of `size` bytes.
    pub fn request(request: Request, size: u32) -> FrameHeader {
        FrameHeader {
            request: request.code(),
            flags: VERSION,
            size,
        }
    }

    /// The header of the reply to request number `request`, with a payload of `size` bytes.
    pub fn reply(request: u32, size: u32) -> FrameHeader {
        FrameHeader {
            request,
            flags: VERSION | FLAG_REPLY,
            size,
        }
    }

    /// Whether the frame is a reply.
    pub fn is_reply(&self) -> bool {
        self.flags & FLAG_REPLY != 0
    }

    /// The header's wire form.
    pub fn encode(&self) -> [u8; HEADER_SIZE] {
        let mut bytes = [0u8; HEADER_SIZE];
        bytes[0..4].copy_from_slice(&self.request.to_le_bytes());
        bytes[4..8].copy_from_slice(&self.flags.to_le_bytes());
        bytes[8..12].copy_from_slice(&self.size.to_le_bytes());
        bytes
    }

    /// Parses a header, rejecting other versions, undefined flag bits and oversized payloads.
    pub fn decode(bytes: &[u8; HEADER_SIZE]) -> Result<FrameHeader, ProtocolError> {
        let header = FrameHeader {
            request: read_u32(bytes, 0),
            flags: read_u32(bytes, 4),
            size: read_u32(bytes, 8),
        };
        let version = header.flags & VERSION_MASK;
        if version != VERSION {
            return Err(ProtocolError::UnsupportedVersion(version));
        }
        if header.flags & !KNOWN_FLAGS != 0 {
            return Err(ProtocolError::ReservedFlags(header.flags & !KNOWN_FLAGS));
        }
        if header.size as usize > MAX_PAYLOAD_BYTES {
            return Err(ProtocolError::FrameTooLarge(header.size));
        }
        Ok(header)
    }
}

/// One RAM region of a [`Request::SetMemTable`] payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemTableEntry {
    /// The guest-physical address where the region starts.
    pub guest_phys_addr: u64,
    /// The region's size in bytes; non-zero and a multiple of [`PAGE_SIZE`].
    pub size: u64,
    /// Where in its memfd the region starts.
    pub mmap_offset: u64,
    /// The region's name (MiniVmm's RAM block id), at most [`IDSTR_SIZE`] bytes.
    pub idstr: String,
}

impl MemTableEntry {
    /// The number of [`PAGE_SIZE`] pages in the region.
    pub fn page_count(&self) -> u64 {
        self.size / PAGE_SIZE
    }

    /// The first guest-physical address past the region, or `None` if it would overflow.
    pub fn end(&self) -> Option<u64> {
        self.guest_phys_addr.checked_add(self.size)
    }
}

/// One region's dirty log in a [`Request::SetDirtyLog`] payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirtyLogEntry {
    /// The log's size in bytes: at least one bit per page of its region.
    pub log_size: u64,
    /// Where in its memfd the log starts.
    pub mmap_offset: u64,
}

/// The smallest dirty log, in bytes, that has one bit for each of `pages` pages.
pub fn dirty_log_bytes(pages: u64) -> u64 {
    pages / 8 + u64::from(pages % 8 != 0)
}

/// MiniVmm's answer to [`Request::Hello`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelloReply {
    /// The features MiniVmm accepts: a subset of those offered.
    Accepted(u64),
    /// MiniVmm refuses the harness with this negative errno (for example `-EBUSY`).
    Refused(i64),
}

/// The payload of a [`Request::Hello`] request or of MiniVmm's reply: a `u64` feature set.
pub fn encode_features(features: u64) -> [u8; 8] {
    features.to_le_bytes()
}

/// Parses MiniVmm's reply to HELLO. A value with bit 63 set is a refusal status; any other
/// value must be a subset of `offered`.
pub fn parse_hello_reply(payload: &[u8], offered: u64) -> Result<HelloReply, ProtocolError> {
    let value = parse_u64(payload, Request::Hello)?;
    if value & (1 << 63) != 0 {
        return Ok(HelloReply::Refused(value as i64));
    }
    if value & !offered != 0 {
        return Err(ProtocolError::FeaturesNotOffered {
            offered,
            accepted: value,
        });
    }
    Ok(HelloReply::Accepted(value))
}

/// The payload of a status reply: `0` for success, otherwise a negative errno.
pub fn encode_status(status: i64) -> [u8; 8] {
    status.to_le_bytes()
}

/// The status `-errno` for a positive errno number.
pub fn errno_status(errno: i32) -> i64 {
    -i64::from(errno)
}

/// Parses a status reply payload.
pub fn parse_status(payload: &[u8], request: Request) -> Result<i64, ProtocolError> {
    parse_u64(payload, request).map(|value| value as i64)
}

/// The payload of a [`Request::SetMemTable`] request (without its file descriptors).
pub fn encode_mem_table(entries: &[MemTableEntry]) -> Result<Vec<u8>, ProtocolError> {
    if entries.len() > MAX_REGIONS {
        return Err(ProtocolError::TooManyRegions(
            u32::try_from(entries.len()).unwrap_or(u32::MAX),
        ));
    }
    let mut payload = Vec::with_capacity(mem_table_size(entries.len()));
    payload.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    payload.extend_from_slice(&0u32.to_le_bytes());
    for entry in entries {
        let name = entry.idstr.as_bytes();
        if name.len() > IDSTR_SIZE {
            return Err(ProtocolError::IdstrTooLong(name.len()));
        }
        payload.extend_from_slice(&entry.guest_phys_addr.to_le_bytes());
        payload.extend_from_slice(&entry.size.to_le_bytes());
        payload.extend_from_slice(&entry.mmap_offset.to_le_bytes());
        let mut idstr = [0u8; IDSTR_SIZE];
        idstr[..name.len()].copy_from_slice(name);
        payload.extend_from_slice(&idstr);
    }
    Ok(payload)
}

/// Parses a [`Request::SetMemTable`] payload and checks the table: at most [`MAX_REGIONS`]
/// regions, the exact payload size, non-zero page-aligned sizes and no overlap.
/// The reserved `u32` after the count is ignored.
pub fn parse_mem_table(payload: &[u8]) -> Result<Vec<MemTableEntry>, ProtocolError> {
    if payload.len() < MEM_TABLE_PREFIX_SIZE {
        return Err(ProtocolError::PayloadSize {
            request: Request::SetMemTable,
            expected: MEM_TABLE_PREFIX_SIZE,
            actual: payload.len(),
        });
    }
    let count = read_u32(payload, 0);
    if count as usize > MAX_REGIONS {
        return Err(ProtocolError::TooManyRegions(count));
    }
    let expected = mem_table_size(count as usize);
    if payload.len() != expected {
        return Err(ProtocolError::PayloadSize {
            request: Request::SetMemTable,
            expected,
            actual: payload.len(),
        });
    }
    let entries: Vec<MemTableEntry> = payload[MEM_TABLE_PREFIX_SIZE..]
        .chunks_exact(MEM_TABLE_ENTRY_SIZE)
        .map(|bytes| MemTableEntry {
            guest_phys_addr: read_u64(bytes, 0),
            size: read_u64(bytes, 8),
            mmap_offset: read_u64(bytes, 16),
            idstr: parse_idstr(&bytes[24..24 + IDSTR_SIZE]),
        })
        .collect();
    check_mem_table(&entries)?;
    Ok(entries)
}

/// Checks a memory table: at most [`MAX_REGIONS`] regions, each with a non-zero,
/// page-aligned size that ends inside the address space, and no two overlapping.
pub fn check_mem_table(entries: &[MemTableEntry]) -> Result<(), ProtocolError> {
    if entries.len() > MAX_REGIONS {
        return Err(ProtocolError::TooManyRegions(
            u32::try_from(entries.len()).unwrap_or(u32::MAX),
        ));
    }
    for (index, entry) in entries.iter().enumerate() {
        let reason = if entry.size == 0 {
            Some("size is zero")
        } else if entry.size % PAGE_SIZE != 0 {
            Some("size is not a multiple of the page size")
        } else if entry.end().is_none() {
            Some("region ends beyond the 64-bit address space")
        } else if usize::try_from(entry.size).is_err() {
            Some("size does not fit this host's address space")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(ProtocolError::InvalidRegion { index, reason });
        }
    }
    for (first, a) in entries.iter().enumerate() {
        for (offset, b) in entries[first + 1..].iter().enumerate() {
            // Every end exists: the loop above rejected regions that overflow.
            let disjoint = a.end().unwrap_or(u64::MAX) <= b.guest_phys_addr
                || b.end().unwrap_or(u64::MAX) <= a.guest_phys_addr;
            if !disjoint {
                return Err(ProtocolError::OverlappingRegions {
                    first,
                    second: first + 1 + offset,
                });
            }
        }
    }
    Ok(())
}

/// The payload of a [`Request::SetDirtyLog`] request (without its file descriptors).
pub fn encode_dirty_log(entries: &[DirtyLogEntry]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(entries.len() * DIRTY_LOG_ENTRY_SIZE);
    for entry in entries {
        payload.extend_from_slice(&entry.log_size.to_le_bytes());
        payload.extend_from_slice(&entry.mmap_offset.to_le_bytes());
    }
    payload
}

/// Parses a [`Request::SetDirtyLog`] payload: whole 16-byte entries, at most [`MAX_REGIONS`].
/// Whether each log is big enough for its region is checked when the logs are mapped.
pub fn parse_dirty_log(payload: &[u8]) -> Result<Vec<DirtyLogEntry>, ProtocolError> {
    let count = payload.len() / DIRTY_LOG_ENTRY_SIZE;
    if payload.len() % DIRTY_LOG_ENTRY_SIZE != 0 {
        return Err(ProtocolError::PayloadSize {
            request: Request::SetDirtyLog,
            expected: count * DIRTY_LOG_ENTRY_SIZE,
            actual: payload.len(),
        });
    }
    if count > MAX_REGIONS {
        return Err(ProtocolError::TooManyRegions(count as u32));
    }
    Ok(payload
        .chunks_exact(DIRTY_LOG_ENTRY_SIZE)
        .map(|bytes| DirtyLogEntry {
            log_size: read_u64(bytes, 0),
            mmap_offset: read_u64(bytes, 8),
        })
        .collect())
}

/// The payload of a [`Request::Throttle`] request.
pub fn encode_throttle(percent: u32) -> [u8; 4] {
    percent.to_le_bytes()
}

/// Parses a [`Request::Throttle`] payload: a `u32` percentage from 0 to [`MAX_THROTTLE_PERCENT`].
pub fn parse_throttle(payload: &[u8]) -> Result<u32, ProtocolError> {
    if payload.len() != 4 {
        return Err(ProtocolError::PayloadSize {
            request: Request::Throttle,
            expected: 4,
            actual: payload.len(),
        });
    }
    let percent = read_u32(payload, 0);
    if percent > MAX_THROTTLE_PERCENT {
        return Err(ProtocolError::ThrottleOutOfRange(percent));
    }
    Ok(percent)
}

fn mem_table_size(count: usize) -> usize {
    MEM_TABLE_PREFIX_SIZE + count * MEM_TABLE_ENTRY_SIZE
}

fn parse_idstr(bytes: &[u8]) -> String {
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..len]).into_owned()
}

fn parse_u64(payload: &[u8], request: Request) -> Result<u64, ProtocolError> {
    if payload.len() != 8 {
        return Err(ProtocolError::PayloadSize {
            request,
            expected: 8,
            actual: payload.len(),
        });
    }
    Ok(read_u64(payload, 0))
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(guest_phys_addr: u64, size: u64, idstr: &str) -> MemTableEntry {
        MemTableEntry {
            guest_phys_addr,
            size,
            mmap_offset: 0,
            idstr: idstr.to_string(),
        }
    }

    fn header_bytes(request: u32, flags: u32, size: u32) -> [u8; HEADER_SIZE] {
        FrameHeader {
            request,
            flags,
            size,
        }
        .encode()
    }

    #[test]
    fn request_codes_round_trip_and_unknown_codes_are_none() {
        for (index, request) in Request::ALL.iter().enumerate() {
            assert_eq!(request.code(), index as u32 + 1);
            assert_eq!(Request::from_u32(request.code()), Some(*request));
        }
        assert_eq!(Request::from_u32(0), None);
        assert_eq!(Request::from_u32(10), None);
        assert_eq!(Request::from_u32(u32::MAX), None);
    }

    #[test]
    fn header_has_little_endian_wire_layout() {
        let bytes = FrameHeader::reply(5, 8).encode();
        assert_eq!(bytes, [5, 0, 0, 0, 5, 0, 0, 0, 8, 0, 0, 0]);
        let bytes = FrameHeader::request(Request::Hello, 0x0102_0304).encode();
        assert_eq!(bytes, [1, 0, 0, 0, 1, 0, 0, 0, 4, 3, 2, 1]);
    }

    #[test]
    fn header_round_trips() {
        for header in [
            FrameHeader::request(Request::Throttle, 4),
            FrameHeader::reply(77, 0),
            FrameHeader::reply(6, MAX_PAYLOAD_BYTES as u32),
        ] {
            assert_eq!(FrameHeader::decode(&header.encode()), Ok(header));
        }
        assert!(FrameHeader::reply(1, 8).is_reply());
        assert!(!FrameHeader::request(Request::Run, 0).is_reply());
    }

    #[test]
    fn header_with_another_version_is_rejected() {
        for version in [0, 2, 3] {
            assert_eq!(
                FrameHeader::decode(&header_bytes(4, version, 0)),
                Err(ProtocolError::UnsupportedVersion(version))
            );
        }
    }

    #[test]
    fn header_with_reserved_flags_is_rejected() {
        assert_eq!(
            FrameHeader::decode(&header_bytes(4, VERSION | 0x8, 0)),
            Err(ProtocolError::ReservedFlags(0x8))
        );
    }

    #[test]
    fn header_with_oversized_payload_is_rejected() {
        let too_big = MAX_PAYLOAD_BYTES as u32 + 1;
        assert_eq!(
            FrameHeader::decode(&header_bytes(7, VERSION, too_big)),
            Err(ProtocolError::FrameTooLarge(too_big))
        );
    }

    #[test]
    fn hello_reply_accepts_subsets_and_recognises_refusals() {
        let offered = FEATURE_STATE | FEATURE_THROTTLE;
        assert_eq!(
            parse_hello_reply(&encode_features(FEATURE_STATE), offered),
            Ok(HelloReply::Accepted(FEATURE_STATE))
        );
        assert_eq!(
            parse_hello_reply(&encode_features(0), offered),
            Ok(HelloReply::Accepted(0))
        );
        assert_eq!(
            parse_hello_reply(&encode_status(errno_status(16)), offered),
            Ok(HelloReply::Refused(-16))
        );
        assert_eq!(
            parse_hello_reply(&encode_features(FEATURE_THROTTLE), FEATURE_STATE),
            Err(ProtocolError::FeaturesNotOffered {
                offered: FEATURE_STATE,
                accepted: FEATURE_THROTTLE
            })
        );
        assert!(matches!(
            parse_hello_reply(&[0; 4], offered),
            Err(ProtocolError::PayloadSize { actual: 4, .. })
        ));
    }

    #[test]
    fn status_is_a_twos_complement_u64() {
        assert_eq!(encode_status(0), [0; 8]);
        assert_eq!(
            encode_status(errno_status(38)),
            (-38i64 as u64).to_le_bytes()
        );
        assert_eq!(parse_status(&encode_status(-22), Request::Run), Ok(-22));
        assert!(parse_status(&[0; 9], Request::Run).is_err());
    }

    #[test]
    fn mem_table_round_trips() {
        let entries = vec![
            MemTableEntry {
                guest_phys_addr: 0,
                size: 64 << 20,
                mmap_offset: 4096,
                idstr: "pc.ram".to_string(),
            },
            entry(1 << 32, PAGE_SIZE, "high"),
        ];
        let payload = encode_mem_table(&entries).unwrap();
        assert_eq!(payload.len(), 8 + 2 * 64);
        assert_eq!(&payload[0..8], &[2, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(parse_mem_table(&payload), Ok(entries));
    }

    #[test]
    fn empty_mem_table_round_trips() {
        let payload = encode_mem_table(&[]).unwrap();
        assert_eq!(payload, vec![0; 8]);
        assert_eq!(parse_mem_table(&payload), Ok(Vec::new()));
    }

    #[test]
    fn idstr_is_nul_padded_and_may_fill_all_forty_bytes() {
        let payload = encode_mem_table(&[entry(0, PAGE_SIZE, "ab")]).unwrap();
        let idstr = &payload[8 + 24..8 + 64];
        assert_eq!(&idstr[..2], b"ab");
        assert!(idstr[2..].iter().all(|&b| b == 0));

        let full = "x".repeat(IDSTR_SIZE);
        let payload = encode_mem_table(&[entry(0, PAGE_SIZE, &full)]).unwrap();
        assert_eq!(parse_mem_table(&payload).unwrap()[0].idstr, full);

        let too_long = "y".repeat(IDSTR_SIZE + 1);
        assert_eq!(
            encode_mem_table(&[entry(0, PAGE_SIZE, &too_long)]),
            Err(ProtocolError::IdstrTooLong(IDSTR_SIZE + 1))
        );
    }

    #[test]
    fn idstr_stops_at_the_first_nul() {
        let mut payload = encode_mem_table(&[entry(0, PAGE_SIZE, "")]).unwrap();
        payload[8 + 24..8 + 24 + 5].copy_from_slice(b"ab\0cd");
        assert_eq!(parse_mem_table(&payload).unwrap()[0].idstr, "ab");
    }

    #[test]
    fn mem_table_with_wrong_size_is_rejected() {
        let mut payload = encode_mem_table(&[entry(0, PAGE_SIZE, "a")]).unwrap();
        payload.push(0);
        assert_eq!(
            parse_mem_table(&payload),
            Err(ProtocolError::PayloadSize {
                request: Request::SetMemTable,
                expected: 72,
                actual: 73
            })
        );
        assert!(matches!(
            parse_mem_table(&[1, 0, 0]),
            Err(ProtocolError::PayloadSize { actual: 3, .. })
        ));
        // A count of two with only one entry.
        let mut payload = encode_mem_table(&[entry(0, PAGE_SIZE, "a")]).unwrap();
        payload[0] = 2;
        assert!(matches!(
            parse_mem_table(&payload),
            Err(ProtocolError::PayloadSize {
                expected: 136,
                actual: 72,
                ..
            })
        ));
    }

    #[test]
    fn mem_table_with_too_many_regions_is_rejected() {
        let mut payload = vec![0u8; 8];
        payload[0] = 65;
        assert_eq!(
            parse_mem_table(&payload),
            Err(ProtocolError::TooManyRegions(65))
        );
        let entries: Vec<MemTableEntry> = (0..65)
            .map(|i| entry(i * PAGE_SIZE, PAGE_SIZE, ""))
            .collect();
        assert_eq!(
            encode_mem_table(&entries),
            Err(ProtocolError::TooManyRegions(65))
        );
        assert!(encode_mem_table(&entries[..64]).is_ok());
    }

    #[test]
    fn mem_table_regions_must_have_page_aligned_nonzero_sizes() {
        for (size, reason) in [
            (0, "size is zero"),
            (PAGE_SIZE + 1, "size is not a multiple of the page size"),
        ] {
            let payload =
                encode_mem_table(&[entry(0, PAGE_SIZE, "ok"), entry(1 << 20, size, "bad")])
                    .unwrap();
            assert_eq!(
                parse_mem_table(&payload),
                Err(ProtocolError::InvalidRegion { index: 1, reason })
            );
        }
        let payload =
            encode_mem_table(&[entry(u64::MAX - PAGE_SIZE + 2, PAGE_SIZE, "wraps")]).unwrap();
        assert!(matches!(
            parse_mem_table(&payload),
            Err(ProtocolError::InvalidRegion { index: 0, .. })
        ));
    }

    #[test]
    fn overlapping_regions_are_rejected_and_touching_ones_are_not() {
        let touching = [
            entry(0, 2 * PAGE_SIZE, "a"),
            entry(2 * PAGE_SIZE, PAGE_SIZE, "b"),
        ];
        assert!(parse_mem_table(&encode_mem_table(&touching).unwrap()).is_ok());

        let overlapping = [
            entry(0, PAGE_SIZE, "a"),
            entry(8 * PAGE_SIZE, 4 * PAGE_SIZE, "b"),
            entry(11 * PAGE_SIZE, PAGE_SIZE, "c"),
        ];
        assert_eq!(
            parse_mem_table(&encode_mem_table(&overlapping).unwrap()),
            Err(ProtocolError::OverlappingRegions {
                first: 1,
                second: 2
            })
        );
        let nested = [
            entry(0, 16 * PAGE_SIZE, "outer"),
            entry(4 * PAGE_SIZE, PAGE_SIZE, "inner"),
        ];
        assert!(parse_mem_table(&encode_mem_table(&nested).unwrap()).is_err());
    }

    #[test]
    fn dirty_log_round_trips_and_needs_whole_entries() {
        let entries = vec![
            DirtyLogEntry {
                log_size: 2048,
                mmap_offset: 0,
            },
            DirtyLogEntry {
                log_size: 1,
                mmap_offset: 8192,
            },
        ];
        let payload = encode_dirty_log(&entries);
        assert_eq!(payload.len(), 32);
        assert_eq!(&payload[0..8], &2048u64.to_le_bytes());
        assert_eq!(parse_dirty_log(&payload), Ok(entries));
        assert_eq!(parse_dirty_log(&[]), Ok(Vec::new()));
        assert!(matches!(
            parse_dirty_log(&payload[..20]),
            Err(ProtocolError::PayloadSize {
                expected: 16,
                actual: 20,
                ..
            })
        ));
        assert_eq!(
            parse_dirty_log(&vec![0; 65 * DIRTY_LOG_ENTRY_SIZE]),
            Err(ProtocolError::TooManyRegions(65))
        );
    }

    #[test]
    fn dirty_log_bytes_rounds_up() {
        assert_eq!(dirty_log_bytes(0), 0);
        assert_eq!(dirty_log_bytes(1), 1);
        assert_eq!(dirty_log_bytes(8), 1);
        assert_eq!(dirty_log_bytes(9), 2);
        assert_eq!(dirty_log_bytes(16384), 2048);
    }

    #[test]
    fn throttle_accepts_0_to_99() {
        assert_eq!(parse_throttle(&encode_throttle(0)), Ok(0));
        assert_eq!(parse_throttle(&encode_throttle(99)), Ok(99));
        assert_eq!(
            parse_throttle(&encode_throttle(100)),
            Err(ProtocolError::ThrottleOutOfRange(100))
        );
        assert!(matches!(
            parse_throttle(&[1, 0, 0, 0, 0]),
            Err(ProtocolError::PayloadSize {
                expected: 4,
                actual: 5,
                ..
            })
        ));
    }

    #[test]
    fn errors_display_a_readable_message() {
        let message = ProtocolError::UnsupportedVersion(2).to_string();
        assert!(message.contains("version 2"), "{message}");
        let message = ProtocolError::OverlappingRegions {
            first: 0,
            second: 3,
        }
        .to_string();
        assert!(message.contains("0 and 3"), "{message}");
    }
}
