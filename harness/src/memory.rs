//! The guest's RAM as this process sees it: MiniVmm's memfds mapped shared, with the dirty
//! log of each region.
//!
//! Every write through [`GuestMemory`] sets the dirty bit of each page it touched, after the
//! bytes are in place and with release ordering, so that MiniVmm, which clears a bit before
//! copying its page, never copies a page without also seeing the bit of a later write.

use std::fmt;
use std::io;
use std::ptr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use crate::protocol::{self, DirtyLogEntry, MemTableEntry, ProtocolError, PAGE_SIZE};
use crate::sys::{Fd, Mapping, EINVAL, EIO};

/// Why guest memory could not be set up or accessed.
#[derive(Debug)]
pub enum MemoryError {
    /// `len` bytes at guest-physical address `gpa` do not lie inside one region.
    OutOfRange {
        /// The first guest-physical address of the access.
        gpa: u64,
        /// The length of the access in bytes.
        len: u64,
    },
    /// The memory table breaks the protocol's rules (size, alignment, overlap, count).
    InvalidTable(ProtocolError),
    /// The number of file descriptors differs from the number of table entries.
    FdCount {
        /// The number of entries, hence of descriptors needed.
        expected: usize,
        /// The number of descriptors received.
        actual: usize,
    },
    /// The number of dirty logs differs from the number of regions.
    LogCount {
        /// The number of regions.
        expected: usize,
        /// The number of dirty log entries received.
        actual: usize,
    },
    /// A dirty log has fewer bits than its region has pages.
    LogTooSmall {
        /// The region's position in the table.
        region: usize,
        /// The smallest acceptable log size in bytes.
        needed: u64,
        /// The log size received.
        actual: u64,
    },
    /// `mmap` refused a region or log.
    Map(io::Error),
}

impl MemoryError {
    /// The errno that a reply to MiniVmm reports for this error.
    pub fn errno(&self) -> i32 {
        match self {
            MemoryError::Map(error) => error.raw_os_error().unwrap_or(EIO),
            _ => EINVAL,
        }
    }
}

impl fmt::Display for MemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemoryError::OutOfRange { gpa, len } => write!(
                f,
                "{len} bytes at guest address {gpa:#x} are not inside one RAM region"
            ),
            MemoryError::InvalidTable(error) => write!(f, "invalid memory table: {error}"),
            MemoryError::FdCount { expected, actual } => write!(
                f,
                "{actual} file descriptors received for {expected} entries"
            ),
            MemoryError::LogCount { expected, actual } => {
                write!(f, "{actual} dirty logs received for {expected} regions")
            }
            MemoryError::LogTooSmall {
                region,
                needed,
                actual,
            } => write!(
                f,
                "dirty log of region {region} is {actual} bytes, needs at least {needed}"
            ),
            MemoryError::Map(error) => write!(f, "cannot map guest memory: {error}"),
        }
    }
}

impl std::error::Error for MemoryError {}

/// One RAM region of the guest, mapped, with its dirty log once MiniVmm has sent one.
#[derive(Debug)]
pub struct Region {
    guest_phys_addr: u64,
    size: u64,
    idstr: String,
    ram: Arc<Mapping>,
    dirty_log: Option<Arc<Mapping>>,
}

impl Region {
    /// The guest-physical address of the region's first byte.
    pub fn guest_phys_addr(&self) -> u64 {
        self.guest_phys_addr
    }

    /// The region's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The first guest-physical address past the region.
    pub fn end(&self) -> u64 {
        self.guest_phys_addr + self.size
    }

    /// The region's name as MiniVmm sent it.
    pub fn idstr(&self) -> &str {
        &self.idstr
    }

    /// The number of [`PAGE_SIZE`] pages in the region.
    pub fn page_count(&self) -> u64 {
        self.size / PAGE_SIZE
    }

    /// Whether `len` bytes at `gpa` lie inside the region (for `len == 0`: whether `gpa` does).
    pub fn contains(&self, gpa: u64, len: u64) -> bool {
        gpa >= self.guest_phys_addr && gpa < self.end() && len <= self.end() - gpa
    }

    /// Whether the region has a dirty log.
    pub fn has_dirty_log(&self) -> bool {
        self.dirty_log.is_some()
    }

    /// Whether the dirty bit of page `page` (counted from the region's start) is set; `false`
    /// without a log or past the last page.
    pub fn is_page_dirty(&self, page: u64) -> bool {
        match &self.dirty_log {
            Some(log) if page < self.page_count() => {
                let bit = 1u8 << (page % 8);
                log_byte(log, page / 8).load(Ordering::Acquire) & bit != 0
            }
            _ => false,
        }
    }

    /// The host address of guest address `gpa`, which must lie inside the region.
    fn host(&self, gpa: u64) -> *mut u8 {
        debug_assert!(self.contains(gpa, 0));
        // SAFETY (of the arithmetic): the offset is below `size`, the mapping's length.
        unsafe { self.ram.as_ptr().add((gpa - self.guest_phys_addr) as usize) }
    }

    /// Sets the dirty bits of every page that `len > 0` bytes at `gpa` touch.
    fn mark_dirty(&self, gpa: u64, len: u64) {
        let log = match &self.dirty_log {
            Some(log) => log,
            None => return,
        };
        let first = (gpa - self.guest_phys_addr) / PAGE_SIZE;
        let last = (gpa - self.guest_phys_addr + len - 1) / PAGE_SIZE;
        let mut page = first;
        while page <= last {
            let byte = page / 8;
            let low = page % 8;
            let high = last.min(byte * 8 + 7) % 8;
            let mask = ((0xFFu16 << low) & (0xFFu16 >> (7 - high))) as u8;
            log_byte(log, byte).fetch_or(mask, Ordering::Release);
            page = byte * 8 + 8;
        }
    }
}

/// Byte `index` of a dirty log, for atomic access.
fn log_byte(log: &Mapping, index: u64) -> &AtomicU8 {
    assert!(
        index < log.len() as u64,
        "dirty log byte {index} out of range"
    );
    // SAFETY: the byte is inside the mapping, which lives as long as the borrow; `AtomicU8` has
    // the size and alignment of `u8`, and the log is only ever accessed atomically by us.
    unsafe { &*(log.as_ptr().add(index as usize) as *const AtomicU8) }
}

/// The guest's RAM regions and their dirty logs, shared by the vCPU threads.
///
/// Like physical RAM, the bytes are shared with MiniVmm and with every vCPU: what the guest
/// writes to the same bytes from two vCPUs at once is the guest's business, as on hardware.
#[derive(Debug)]
pub struct GuestMemory {
    regions: Vec<Region>,
    dirty_log_set: bool,
}

impl GuestMemory {
    /// Maps the regions of a memory table, one descriptor per entry in the same order, each
    /// exactly `size` bytes at `mmap_offset`. The memory has no dirty log yet.
    pub fn map(entries: &[MemTableEntry], fds: Vec<Fd>) -> Result<GuestMemory, MemoryError> {
        protocol::check_mem_table(entries).map_err(MemoryError::InvalidTable)?;
        if fds.len() != entries.len() {
            return Err(MemoryError::FdCount {
                expected: entries.len(),
                actual: fds.len(),
            });
        }
        let mut regions = Vec::with_capacity(entries.len());
        for (entry, fd) in entries.iter().zip(&fds) {
            // The table check made sure that the size fits a usize.
            let ram = Mapping::shared(fd, entry.size as usize, entry.mmap_offset)
                .map_err(MemoryError::Map)?;
            regions.push(Region {
                guest_phys_addr: entry.guest_phys_addr,
                size: entry.size,
                idstr: entry.idstr.clone(),
                ram: Arc::new(ram),
                dirty_log: None,
            });
        }
        Ok(GuestMemory {
            regions,
            dirty_log_set: false,
        })
    }

    /// The same RAM with new dirty logs: one entry and one descriptor per region, in order,
    /// each log at least one bit per page.
    pub fn with_dirty_logs(
        &self,
        entries: &[DirtyLogEntry],
        fds: Vec<Fd>,
    ) -> Result<GuestMemory, MemoryError> {
        if entries.len() != self.regions.len() {
            return Err(MemoryError::LogCount {
                expected: self.regions.len(),
                actual: entries.len(),
            });
        }
        if fds.len() != entries.len() {
            return Err(MemoryError::FdCount {
                expected: entries.len(),
                actual: fds.len(),
            });
        }
        for (index, (region, entry)) in self.regions.iter().zip(entries).enumerate() {
            let needed = protocol::dirty_log_bytes(region.page_count());
            if entry.log_size < needed {
                return Err(MemoryError::LogTooSmall {
                    region: index,
                    needed,
                    actual: entry.log_size,
                });
            }
        }
        let mut regions = Vec::with_capacity(self.regions.len());
        for ((region, entry), fd) in self.regions.iter().zip(entries).zip(&fds) {
            let len = usize::try_from(entry.log_size)
                .map_err(|_| MemoryError::Map(io::Error::from_raw_os_error(EINVAL)))?;
            let log = Mapping::shared(fd, len, entry.mmap_offset).map_err(MemoryError::Map)?;
            regions.push(Region {
                guest_phys_addr: region.guest_phys_addr,
                size: region.size,
                idstr: region.idstr.clone(),
                ram: Arc::clone(&region.ram),
                dirty_log: Some(Arc::new(log)),
            });
        }
        Ok(GuestMemory {
            regions,
            dirty_log_set: true,
        })
    }

    /// The regions, in memory-table order.
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// Whether MiniVmm has sent the dirty logs for this memory table.
    pub fn has_dirty_log(&self) -> bool {
        self.dirty_log_set
    }

    /// The number of pages in all regions together.
    pub fn page_count(&self) -> u64 {
        self.regions.iter().map(Region::page_count).sum()
    }

    /// The region that holds all `len` bytes at `gpa`.
    pub fn region_for(&self, gpa: u64, len: u64) -> Result<&Region, MemoryError> {
        self.regions
            .iter()
            .find(|region| region.contains(gpa, len))
            .ok_or(MemoryError::OutOfRange { gpa, len })
    }

    /// Copies `data` to guest address `gpa`, then marks every page it touched dirty.
    /// The bytes must lie inside one region.
    pub fn write(&self, gpa: u64, data: &[u8]) -> Result<(), MemoryError> {
        let len = data.len() as u64;
        let region = self.region_for(gpa, len)?;
        // SAFETY: the region holds `len` bytes at `gpa`, and `data` is a separate Rust slice.
        unsafe { ptr::copy_nonoverlapping(data.as_ptr(), region.host(gpa), data.len()) };
        if len > 0 {
            region.mark_dirty(gpa, len);
        }
        Ok(())
    }

    /// Copies `buf.len()` bytes at guest address `gpa` into `buf`.
    pub fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let region = self.region_for(gpa, buf.len() as u64)?;
        // SAFETY: the region holds `buf.len()` bytes at `gpa`, and `buf` is a separate Rust slice.
        unsafe { ptr::copy_nonoverlapping(region.host(gpa), buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Writes one byte at `gpa` and marks its page dirty.
    pub fn write_u8(&self, gpa: u64, value: u8) -> Result<(), MemoryError> {
        let region = self.region_for(gpa, 1)?;
        // SAFETY: the region holds the byte at `gpa`.
        unsafe { ptr::write_volatile(region.host(gpa), value) };
        region.mark_dirty(gpa, 1);
        Ok(())
    }

    /// Reads the byte at `gpa`.
    pub fn read_u8(&self, gpa: u64) -> Result<u8, MemoryError> {
        let region = self.region_for(gpa, 1)?;
        // SAFETY: the region holds the byte at `gpa`.
        Ok(unsafe { ptr::read_volatile(region.host(gpa)) })
    }

    /// Marks dirty every page that `len` bytes at `gpa` touch, for guests that write through
    /// [`GuestMemory::host_address`]. Call it after those writes.
    pub fn mark_dirty(&self, gpa: u64, len: u64) -> Result<(), MemoryError> {
        let region = self.region_for(gpa, len)?;
        if len > 0 {
            region.mark_dirty(gpa, len);
        }
        Ok(())
    }

    /// The host address of `len` bytes at `gpa`, which must lie inside one region, for guests
    /// that access memory directly. The pointer is valid while `self` lives. Writes through it
    /// are not marked dirty: call [`GuestMemory::mark_dirty`] after them.
    pub fn host_address(&self, gpa: u64, len: u64) -> Result<*mut u8, MemoryError> {
        self.region_for(gpa, len).map(|region| region.host(gpa))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::test_files::memfd;

    const MIB: u64 = 1 << 20;

    fn entry(guest_phys_addr: u64, size: u64, mmap_offset: u64) -> MemTableEntry {
        MemTableEntry {
            guest_phys_addr,
            size,
            mmap_offset,
            idstr: format!("ram@{guest_phys_addr:#x}"),
        }
    }

    /// Region 0: 1 MiB at 0; region 1: 64 KiB at 4 GiB, one page into its file. Both logged.
    fn two_regions() -> GuestMemory {
        let table = [entry(0, MIB, 0), entry(4 << 30, 64 << 10, PAGE_SIZE)];
        let memory =
            GuestMemory::map(&table, vec![memfd(MIB), memfd((64 << 10) + PAGE_SIZE)]).unwrap();
        let logs = [
            DirtyLogEntry {
                log_size: 32,
                mmap_offset: 0,
            },
            DirtyLogEntry {
                log_size: 2,
                mmap_offset: 0,
            },
        ];
        memory
            .with_dirty_logs(&logs, vec![memfd(4096), memfd(4096)])
            .unwrap()
    }

    fn dirty_pages(region: &Region) -> Vec<u64> {
        (0..region.page_count())
            .filter(|&page| region.is_page_dirty(page))
            .collect()
    }

    #[test]
    fn guest_memory_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<GuestMemory>();
        assert_send_sync::<Arc<GuestMemory>>();
    }

    #[test]
    fn write_then_read_round_trips_and_marks_the_page() {
        let memory = two_regions();
        memory.write(0x5000 + 10, b"guest").unwrap();
        let mut back = [0u8; 5];
        memory.read(0x5000 + 10, &mut back).unwrap();
        assert_eq!(&back, b"guest");
        assert_eq!(dirty_pages(&memory.regions()[0]), vec![5]);
        assert!(dirty_pages(&memory.regions()[1]).is_empty());
    }

    #[test]
    fn write_spanning_pages_marks_every_touched_page() {
        let memory = two_regions();
        // From the last byte of page 6 to the first byte of page 17.
        let data = vec![1u8; (10 * PAGE_SIZE + 2) as usize];
        memory.write(7 * PAGE_SIZE - 1, &data).unwrap();
        assert_eq!(
            dirty_pages(&memory.regions()[0]),
            (6..=17).collect::<Vec<_>>()
        );
    }

    #[test]
    fn second_region_uses_its_own_offset_and_log() {
        let memory = two_regions();
        let region = &memory.regions()[1];
        let last_page = region.guest_phys_addr() + 15 * PAGE_SIZE;
        memory.write_u8(last_page, 0x7F).unwrap();
        assert_eq!(memory.read_u8(last_page).unwrap(), 0x7F);
        assert_eq!(dirty_pages(region), vec![15]);
        assert!(dirty_pages(&memory.regions()[0]).is_empty());
    }

    #[test]
    fn accesses_outside_one_region_are_refused() {
        let memory = two_regions();
        let cases = [
            (MIB - 2, 4),       // runs off the end of region 0
            (MIB, 1),           // in the hole between the regions
            (u64::MAX, 1),      // past everything
            ((4 << 30) - 1, 2), // straddles the start of region 1
        ];
        for (gpa, len) in cases {
            let data = vec![0xEEu8; len as usize];
            assert!(matches!(
                memory.write(gpa, &data),
                Err(MemoryError::OutOfRange { gpa: g, len: l }) if g == gpa && l == len
            ));
        }
        assert!(memory.read_u8(MIB).is_err());
        assert!(memory.mark_dirty(0, MIB + 1).is_err());
        assert!(memory.host_address(MIB - 1, 2).is_err());
        // Nothing was written or marked by the refused calls.
        assert!(dirty_pages(&memory.regions()[0]).is_empty());
        assert_eq!(memory.read_u8(MIB - 2).unwrap(), 0);
    }

    #[test]
    fn empty_accesses_need_an_address_inside_a_region() {
        let memory = two_regions();
        memory.write(100, &[]).unwrap();
        assert!(dirty_pages(&memory.regions()[0]).is_empty());
        assert!(memory.write(MIB, &[]).is_err());
    }

    #[test]
    fn mark_dirty_sets_exactly_the_range_across_byte_boundaries() {
        let memory = two_regions();
        memory
            .mark_dirty(3 * PAGE_SIZE + 5, 20 * PAGE_SIZE)
            .unwrap();
        assert_eq!(
            dirty_pages(&memory.regions()[0]),
            (3..=23).collect::<Vec<_>>()
        );
        memory.mark_dirty(0, MIB).unwrap();
        assert_eq!(dirty_pages(&memory.regions()[0]).len(), 256);
    }

    #[test]
    fn host_address_writes_are_visible_through_read() {
        let memory = two_regions();
        let host = memory.host_address(0x3000, 8).unwrap();
        // SAFETY: 8 bytes inside region 0, which `memory` keeps mapped.
        unsafe { ptr::write_unaligned(host as *mut u64, 0x1122_3344_5566_7788) };
        memory.mark_dirty(0x3000, 8).unwrap();
        let mut back = [0u8; 8];
        memory.read(0x3000, &mut back).unwrap();
        assert_eq!(u64::from_le_bytes(back), 0x1122_3344_5566_7788);
        assert_eq!(dirty_pages(&memory.regions()[0]), vec![3]);
    }

    #[test]
    fn without_a_dirty_log_writes_work_and_nothing_is_marked() {
        let memory = GuestMemory::map(&[entry(0, MIB, 0)], vec![memfd(MIB)]).unwrap();
        assert!(!memory.has_dirty_log());
        memory.write_u8(0x2000, 9).unwrap();
        assert_eq!(memory.read_u8(0x2000).unwrap(), 9);
        assert!(!memory.regions()[0].is_page_dirty(2));
    }

    #[test]
    fn ram_is_shared_with_the_file_and_survives_new_logs() {
        let file = memfd(MIB);
        let check = Mapping::shared(&file, MIB as usize, 0).unwrap();
        // `check` keeps its own view of the file after the descriptor moves into the table.
        let memory = GuestMemory::map(&[entry(0, MIB, 0)], vec![file]).unwrap();
        let logged = memory
            .with_dirty_logs(
                &[DirtyLogEntry {
                    log_size: 32,
                    mmap_offset: 0,
                }],
                vec![memfd(32)],
            )
            .unwrap();
        drop(memory);
        logged.write_u8(0x1234, 0x42).unwrap();
        // SAFETY: inside the 1 MiB mapping `check`.
        assert_eq!(unsafe { *check.as_ptr().add(0x1234) }, 0x42);
        assert_eq!(logged.page_count(), 256);
        assert!(logged.has_dirty_log());
    }

    #[test]
    fn map_checks_the_table_and_descriptor_count() {
        assert!(matches!(
            GuestMemory::map(&[entry(0, MIB, 0)], vec![]),
            Err(MemoryError::FdCount {
                expected: 1,
                actual: 0
            })
        ));
        let overlapping = [entry(0, MIB, 0), entry(MIB - PAGE_SIZE, MIB, 0)];
        let error = GuestMemory::map(&overlapping, vec![memfd(MIB), memfd(MIB)]).unwrap_err();
        assert!(matches!(error, MemoryError::InvalidTable(_)));
        assert_eq!(error.errno(), EINVAL);
        let error = GuestMemory::map(&[entry(0, MIB, 100)], vec![memfd(2 * MIB)]).unwrap_err();
        assert!(matches!(error, MemoryError::Map(_)));
        assert_eq!(error.errno(), EINVAL);
    }

    #[test]
    fn dirty_logs_must_match_the_regions_and_cover_every_page() {
        let memory =
            GuestMemory::map(&[entry(0, MIB + PAGE_SIZE, 0)], vec![memfd(2 * MIB)]).unwrap();
        let log = |log_size| DirtyLogEntry {
            log_size,
            mmap_offset: 0,
        };
        // 257 pages need 33 bytes.
        assert!(matches!(
            memory.with_dirty_logs(&[log(32)], vec![memfd(4096)]),
            Err(MemoryError::LogTooSmall {
                region: 0,
                needed: 33,
                actual: 32
            })
        ));
        assert!(matches!(
            memory.with_dirty_logs(&[log(33), log(33)], vec![memfd(4096), memfd(4096)]),
            Err(MemoryError::LogCount {
                expected: 1,
                actual: 2
            })
        ));
        assert!(matches!(
            memory.with_dirty_logs(&[log(33)], vec![]),
            Err(MemoryError::FdCount {
                expected: 1,
                actual: 0
            })
        ));
        let logged = memory
            .with_dirty_logs(&[log(33)], vec![memfd(4096)])
            .unwrap();
        logged.write_u8(256 * PAGE_SIZE, 1).unwrap();
        assert_eq!(dirty_pages(&logged.regions()[0]), vec![256]);
    }
}
