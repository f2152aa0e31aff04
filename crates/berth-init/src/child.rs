//! The supervised program: forked, put in its own process group (which becomes the terminal's
//! foreground group when stdin is a terminal), given back the original signal state, then
//! exec'd with a `PATH` lookup. This is what tini does by default; its `-g` only changes where
//! signals are sent, not the process group.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use berth_sys::Forked;
use nix::errno::Errno;
use nix::sys::signal::{kill, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::unistd::{execvp, getpgrp, setpgid, tcsetpgrp, Pid};

/// Errors on berth-init's side of starting the program.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// `fork` failed.
    #[error("fork: {0}")]
    Fork(#[source] io::Error),
}

/// Errors in the forked child before (or instead of) exec; it prints them and exits.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    /// `setpgid(0, 0)` failed.
    #[error("setpgid: {}", .0.desc())]
    ProcessGroup(#[source] Errno),
    /// Making the new process group the terminal's foreground group failed.
    #[error("tcsetpgrp: {}", .0.desc())]
    Foreground(#[source] Errno),
    /// Restoring the original signal mask failed.
    #[error("restore signal mask: {}", .0.desc())]
    Mask(#[source] Errno),
    /// `execvp` failed.
    #[error("exec {program}: {}", .source.desc())]
    Exec {
        /// The program as given.
        program: String,
        /// Why.
        #[source]
        source: Errno,
    },
}

impl ChildError {
    /// The child's exit status, which berth-init passes on: 127 when the program is not found,
    /// 126 when it cannot be executed (as tini and the shell), 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            ChildError::Exec {
                source: Errno::ENOENT,
                ..
            } => 127,
            ChildError::Exec {
                source: Errno::EACCES,
                ..
            } => 126,
            _ => 1,
        }
    }
}

/// Errors forwarding a signal.
#[derive(Debug, thiserror::Error)]
#[error("forward signal {signal} to pid {pid}: {source}")]
pub struct ForwardError {
    /// The signal number.
    pub signal: i32,
    /// The child.
    pub pid: i32,
    /// Why.
    #[source]
    pub source: io::Error,
}

/// The running program.
pub struct Child {
    pid: i32,
    /// For signals by number (real-time ones included); `None` before Linux 5.3.
    pidfd: Option<OwnedFd>,
}

impl Child {
    /// Its pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Sends it `signal`. A child that is already gone is not an error: its exit is about to
    /// be reaped. Without a pidfd, only the named signals (not real-time ones) can be sent.
    pub fn signal(&self, signal: i32) -> Result<(), ForwardError> {
        let sent = match &self.pidfd {
            Some(fd) => berth_sys::pidfd_send_signal(fd.as_fd(), signal),
            None => match Signal::try_from(signal) {
                Ok(sig) => kill(Pid::from_raw(self.pid), sig).map_err(io::Error::from),
                Err(_) => Ok(()),
            },
        };
        match sent {
            Err(e) if e.raw_os_error() != Some(Errno::ESRCH as i32) => Err(ForwardError {
                signal,
                pid: self.pid,
                source: e,
            }),
            _ => Ok(()),
        }
    }
}

/// Forks and execs `argv` (program first). `original` is the signal mask to restore in the
/// child. Must be called while single-threaded (berth-init always is).
pub fn spawn(argv: &[CString], original: &SigSet) -> Result<Child, SpawnError> {
    let stdin = io::stdin();
    match berth_sys::fork().map_err(SpawnError::Fork)? {
        Forked::Child => exec_child(argv, original, stdin.as_fd()),
        Forked::Parent { pid, .. } => Ok(Child {
            pid,
            pidfd: berth_sys::pidfd_open(pid).ok(),
        }),
    }
}

/// The child's side: never returns. A failure is printed as one line and becomes the exit
/// status that berth-init reaps and passes on.
fn exec_child(argv: &[CString], original: &SigSet, stdin: BorrowedFd<'_>) -> ! {
    let Err(err) = isolate(stdin).and_then(|()| exec(argv, original));
    eprintln!("berth-init: {err}");
    berth_sys::exit_now(err.exit_code())
}

/// A process group of its own, in the terminal's foreground if there is one. `SIGTTOU` is
/// still blocked here, so `tcsetpgrp` from what is now a background group is allowed.
fn isolate(stdin: BorrowedFd<'_>) -> Result<(), ChildError> {
    setpgid(Pid::from_raw(0), Pid::from_raw(0)).map_err(ChildError::ProcessGroup)?;
    match tcsetpgrp(stdin, getpgrp()) {
        // No terminal (tini accepts ENOTTY and ENXIO; no stdin at all is no terminal either).
        Ok(()) | Err(Errno::ENOTTY | Errno::ENXIO | Errno::EBADF) => Ok(()),
        Err(e) => Err(ChildError::Foreground(e)),
    }
}

/// Default signal dispositions (Rust's runtime ignores `SIGPIPE`, which the program must not
/// inherit), the original mask, then exec. Returns only on failure.
fn exec(argv: &[CString], original: &SigSet) -> Result<std::convert::Infallible, ChildError> {
    berth_sys::reset_signals();
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(original), None).map_err(ChildError::Mask)?;
    // argv is never empty (args::parse); an empty one would fail to exec "" with ENOENT.
    let program = argv.first().map_or(c"", CString::as_c_str);
    execvp(program, argv).map_err(|source| ChildError::Exec {
        program: program.to_string_lossy().into_owned(),
        source,
    })
}
