//! Signals are blocked and read from a signalfd, as tini blocks them and reads them with
//! `sigtimedwait`: no handlers run, and as PID 1 of a pid namespace the kernel still queues
//! blocked signals (it drops only those an init has neither blocked nor handled).

use nix::errno::Errno;
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// Synchronous fault signals stay unblocked (tini's list): blocking them would only turn a
/// crash of berth-init itself into a hang.
const UNBLOCKED: [Signal; 7] = [
    Signal::SIGFPE,
    Signal::SIGILL,
    Signal::SIGSEGV,
    Signal::SIGBUS,
    Signal::SIGABRT,
    Signal::SIGTRAP,
    Signal::SIGSYS,
];

/// Received but not forwarded: `SIGCHLD` only means "reap", and tini ignores the terminal's
/// `SIGTTIN`/`SIGTTOU`, which concern berth-init itself (we block them instead, which lets the
/// child take the terminal's foreground without being stopped, then drop them).
const NOT_FORWARDED: [Signal; 3] = [Signal::SIGCHLD, Signal::SIGTTIN, Signal::SIGTTOU];

/// Errors while blocking or reading signals.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    /// `sigprocmask` failed.
    #[error("block signals: {}", .0.desc())]
    Block(#[source] Errno),
    /// `signalfd` failed.
    #[error("signalfd: {}", .0.desc())]
    Open(#[source] Errno),
    /// Reading the signalfd failed.
    #[error("read signalfd: {}", .0.desc())]
    Read(#[source] Errno),
}

/// Every signal berth-init handles, blocked, and the signalfd that delivers them.
pub struct Signals {
    fd: SignalFd,
    original: SigSet,
}

impl Signals {
    /// Blocks every signal but the synchronous faults and opens a signalfd for them. Signals
    /// that arrive in between stay pending and are read from the signalfd later.
    pub fn block() -> Result<Self, SignalError> {
        let mut mask = SigSet::all();
        for sig in UNBLOCKED {
            mask.remove(sig);
        }
        let mut original = SigSet::empty();
        sigprocmask(SigmaskHow::SIG_SETMASK, Some(&mask), Some(&mut original))
            .map_err(SignalError::Block)?;
        let fd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC).map_err(SignalError::Open)?;
        Ok(Signals { fd, original })
    }

    /// The mask berth-init started with, which the child gets back before exec.
    pub fn original(&self) -> &SigSet {
        &self.original
    }

    /// Waits for the next signal and returns its number.
    pub fn next(&self) -> Result<i32, SignalError> {
        loop {
            match self.fd.read_signal() {
                Ok(Some(info)) => return Ok(info.ssi_signo as i32),
                Ok(None) | Err(Errno::EINTR) => continue,
                Err(e) => return Err(SignalError::Read(e)),
            }
        }
    }
}

/// Whether a received signal is passed on to the child.
pub fn forwarded(signal: i32) -> bool {
    !NOT_FORWARDED.iter().any(|s| *s as i32 == signal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_signals_are_forwarded() {
        for sig in [
            libc_sig::TERM,
            libc_sig::INT,
            libc_sig::HUP,
            libc_sig::USR1,
            34,
            64,
        ] {
            assert!(forwarded(sig), "{sig}");
        }
        for sig in NOT_FORWARDED {
            assert!(!forwarded(sig as i32), "{sig}");
        }
    }

    mod libc_sig {
        pub const TERM: i32 = nix::sys::signal::Signal::SIGTERM as i32;
        pub const INT: i32 = nix::sys::signal::Signal::SIGINT as i32;
        pub const HUP: i32 = nix::sys::signal::Signal::SIGHUP as i32;
        pub const USR1: i32 = nix::sys::signal::Signal::SIGUSR1 as i32;
    }
}
