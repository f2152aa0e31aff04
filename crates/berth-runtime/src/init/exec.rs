//! The last step: close what must not leak, reset signals, execve.

use std::ffi::CString;

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

/// exec the process. Only returns (as the error) when execve fails.
pub fn exec(p: &Prepared, preserve_fds: i32) -> StepError {
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
    let err = berth_sys::execve(&p.path, &argv, &envp);
    fail(
        format!("exec {}", p.path.to_string_lossy()),
        crate::util::cause(&err),
    )
}
