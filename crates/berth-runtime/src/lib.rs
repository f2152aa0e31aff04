//! berth-runtime: an OCI runtime with runc's command line.
//!
//! `create` loads the bundle ([`spec`]), reserves the state directory ([`state`]), creates the
//! cgroup ([`cgroup`]), clones the child ([`spawn`]) which runs the named [`init`] steps and
//! reports over the [`sync`] channel, then waits on its exec fifo for `start`.
#![forbid(unsafe_code)]

pub mod cgroup;
pub mod cli;
pub mod commands;
pub mod exe_guard;
pub mod hooks;
pub mod init;
pub mod rootless;
pub mod seccomp;
pub mod seccomp_cache;
pub mod spawn;
pub mod spec;
pub mod state;
pub mod sync;
pub mod trampoline;
pub mod util;

/// `--version` text, in runc's layout.
pub const VERSION_TEXT: &str = concat!(env!("CARGO_PKG_VERSION"), "\nspec: 1.0.2-dev");
