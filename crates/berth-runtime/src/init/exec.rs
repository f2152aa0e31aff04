//! The last step: close what must not leak, reset signals, execve.

use std::ffi::CString;
use std::os::fd::{BorrowedFd, RawFd};

use nix::fcntl::{fcntl, FcntlArg, FdFlag};

use super::{fail, StepError};

/// The process image to exec, prepared while we could still allocate freely.
pub struct Prepared {
    /// Resolved executable path (inside the container).
    pub path: CString,
    /// argv.
    pub argv: Vec<CString>,
    /// envp.
    pub envp: Vec<CString>,
}

/// exec the process: through the exec trampoline when there is one (it gets the channel, to
/// report its own execve's failure), else directly. Only returns (as the error) when the exec
/// fails.
pub fn exec(
    p: &Prepared,
    preserve_fds: i32,
    trampoline: Option<BorrowedFd<'_>>,
    channel: RawFd,
) -> StepError {
    let argv: Vec<*const libc::c_char> = p
        .argv
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp: Vec<*const libc::c_char> = p
        .envp
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    // No runtime fd may reach the container's process (the CVE-2024-21626 class): everything
    // above stdio and the preserved fds is closed on exec.
    let first = 3 + preserve_fds.max(0) as u32;
    if let Err(e) = berth_sys::cloexec_from(first) {
        return fail("close inherited fds", crate::util::cause(&e));
    }
    berth_sys::reset_signals();
    let err = match trampoline {
        Some(trampoline) => exec_through(trampoline, p, &argv, &envp, channel),
        None => berth_sys::execve(&p.path, &argv, &envp),
    };
    fail(
        format!("exec {}", p.path.to_string_lossy()),
        crate::util::cause(&err),
    )
}

/// execveat the trampoline with `[argv0, PATH, CHANNEL_FD, argv...]`; the channel stays open
/// across this exec only (the trampoline marks it close-on-exec again before its own).
fn exec_through(
    trampoline: BorrowedFd<'_>,
    p: &Prepared,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
    channel: RawFd,
) -> std::io::Error {
    let Ok(channel_arg) = CString::new(channel.to_string()) else {
        return std::io::Error::from_raw_os_error(libc::EINVAL);
    };
    let argv0 = argv.first().copied().unwrap_or(p.path.as_ptr());
    let mut with_prefix = vec![argv0, p.path.as_ptr(), channel_arg.as_ptr()];
    with_prefix.extend_from_slice(argv);
    if let Err(e) = fcntl(channel, FcntlArg::F_SETFD(FdFlag::empty())) {
        return e.into();
    }
    berth_sys::execveat_fd(trampoline, &with_prefix, envp)
}
