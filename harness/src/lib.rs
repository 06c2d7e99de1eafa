//! The reference guest harness for MiniVmm.
//!
//! MiniVmm is a userspace VMM without KVM: the guest runs in a separate process, the
//! *harness*, which maps the VM's RAM from memfds that MiniVmm passes over a UNIX socket,
//! writes guest memory from vCPU threads, marks every page it writes in a shared dirty log, and
//! parks its vCPUs when MiniVmm pauses the VM. That is all MiniVmm needs to migrate the VM live
//! without losing a write.
//!
//! A harness implements [`Guest`] and hands it to [`Harness::run`]:
//!
//! ```no_run
//! use minivmm_harness::{Guest, GuestMemory, Harness, HarnessOptions};
//!
//! struct Ticker(u8);
//!
//! impl Guest for Ticker {
//!     fn step(&mut self, memory: &GuestMemory) {
//!         self.0 = self.0.wrapping_add(1);
//!         memory.write_u8(0x10_0000, self.0).expect("1 MiB lies inside guest RAM");
//!     }
//! }
//!
//! let harness = Harness::connect("/tmp/h.sock")?.with_options(HarnessOptions::default());
//! harness.run(Ticker(0))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The modules, from the wire up: [`protocol`] (frames and payloads, pure), [`sys`] (the Linux
//! calls), [`memory`] (mapped RAM and dirty logs), [`vcpu`] (threads that pause between steps)
//! and [`harness`] (the request loop).

#![deny(missing_docs)]

mod connection;
pub mod harness;
pub mod memory;
pub mod protocol;
pub mod sys;
pub mod vcpu;

pub use harness::{Exit, Guest, Harness, HarnessError, HarnessOptions};
pub use memory::{GuestMemory, MemoryError, Region};
