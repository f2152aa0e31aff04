//! Safe, fd-typed wrappers for the Linux syscalls Berth needs that `nix` and `std` do not cover.
//!
//! This is the only crate in the workspace allowed to contain `unsafe`.
//!
//! Features: `std` (default) is everything in `lib.rs`, for the engine's crates; `init-rt` is
//! [`rt`], the freestanding runtime of berth-init, which needs neither `std` nor a libc. This
//! file is the crate root so that `lib.rs` stays the std API unchanged: without `std` the crate
//! is `no_std` and holds only `rt`.

#![cfg_attr(not(feature = "std"), no_std)]

#[cfg(feature = "std")]
#[path = "lib.rs"]
mod std_api;
#[cfg(feature = "std")]
pub use std_api::*;

#[cfg(feature = "init-rt")]
pub mod rt;
