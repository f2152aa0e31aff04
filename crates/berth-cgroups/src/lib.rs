//! Berth's cgroups: detect the host layout (v1, v2 or hybrid), create a container's cgroup,
//! place processes, apply OCI `linux.resources`, read statistics, freeze/thaw, kill everything,
//! remove.
//!
//! The code that writes limits exists once; v1 versus v2 is decided per controller from the
//! [`Layout`]. A field of `linux.resources` that is not applied returns [`Error::Unsupported`].
#![forbid(unsafe_code)]

mod cgroup;
mod control;
mod device_filter;
mod error;
mod fsutil;
mod layout;
mod path;
mod resources;
mod stats;
mod v1;
mod v2;

pub use cgroup::Cgroup;
pub use error::Error;
pub use layout::{Backend, Layout, Mode};
pub use stats::{CpuStats, MemoryStats, PidsStats, Stats};
pub use v2::{shares_to_weight, swap_to_v2};
