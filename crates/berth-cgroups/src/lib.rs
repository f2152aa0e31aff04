//! Berth's cgroups: detect the host layout (v1, v2 or hybrid), create a container's cgroup,
//! place processes, apply OCI `linux.resources`, read statistics, freeze/thaw, kill everything,
//! remove.
//!
//! The code that writes limits exists once; v1 versus v2 is decided per controller from the
//! [`Layout`]. A field of `linux.resources` that this host cannot apply is an error that names
//! the setting and the reason ([`Error::Unsupported`], [`Error::ControllerMissing`]).
#![forbid(unsafe_code)]

mod block_io;
mod cgroup;
mod control;
mod device_filter;
mod error;
mod fsutil;
mod hugetlb;
mod layout;
mod oom;
mod path;
mod resources;
mod stats;
mod v1;
mod v2;

pub use cgroup::Cgroup;
pub use error::Error;
pub use layout::{Backend, KernelRelease, Layout, Mode};
pub use oom::{OomError, OomWatcher};
pub use stats::{
    Counter, CpuStats, CpusetFlags, CpusetStats, DeviceIo, HugetlbStats, IoCounts, MemoryStats,
    PidsStats, Pressure, PressureStats, PsiData, Stats, StatsReader, V1_UNLIMITED,
};
pub use v2::{blkio_weight_to_io_weight, shares_to_weight, swap_to_v2};
