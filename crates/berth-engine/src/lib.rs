//! The engine behind the `berth` CLI. Today: images (pull, push, tag, remove, save, load,
//! import, garbage collection) over `berth-image` and `berth-storage`. The CLI crate only parses
//! arguments and prints what these functions return.
#![forbid(unsafe_code)]

pub mod containers;
pub mod images;
pub mod networks;
pub mod observe;
pub mod paths;
pub mod rootless;
pub mod spec;
pub mod state;
