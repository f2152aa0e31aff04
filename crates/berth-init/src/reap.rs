//! Reaping: every exited child is collected with `waitpid(-1, WNOHANG)` (rustix's `wait`; its
//! `waitpid(None)` is pid 0, the caller's process group only) until none is left, as
//! tini does after each signal. Orphans re-parented to berth-init (PID 1, or a child subreaper)
//! are collected the same way.

use rustix::io::Errno;
use rustix::process::{wait, WaitOptions, WaitStatus};

/// Errors while reaping.
#[derive(Debug, thiserror::Error)]
pub enum ReapError {
    /// `waitpid` failed with something other than "no children".
    #[error("waitpid: {0}")]
    Wait(#[source] Errno),
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It exited with this status.
    Exited(i32),
    /// A signal with this number killed it.
    Killed(i32),
}

impl Outcome {
    /// berth-init's own exit code for it: the status, or 128 + the signal (the shell's and
    /// tini's convention).
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Exited(status) => status & 0xff,
            Outcome::Killed(signal) => (128 + signal) & 0xff,
        }
    }

    fn of(status: WaitStatus) -> Option<Outcome> {
        status
            .exit_status()
            .map(Outcome::Exited)
            .or_else(|| status.terminating_signal().map(Outcome::Killed))
    }
}

/// Reaps every child that has exited, without blocking. Returns how `main` ended if it was
/// among them.
pub fn reap_zombies(main: i32) -> Result<Option<Outcome>, ReapError> {
    let mut main_outcome = None;
    loop {
        match wait(WaitOptions::NOHANG) {
            Ok(Some((pid, status))) if pid.as_raw_nonzero().get() == main => {
                main_outcome = Outcome::of(status);
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(Errno::CHILD) => return Ok(main_outcome),
            Err(Errno::INTR) => {}
            Err(e) => return Err(ReapError::Wait(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_tini() {
        assert_eq!(Outcome::Exited(0).exit_code(), 0);
        assert_eq!(Outcome::Exited(3).exit_code(), 3);
        assert_eq!(Outcome::Killed(9).exit_code(), 137);
        assert_eq!(Outcome::Killed(15).exit_code(), 143);
        assert_eq!(Outcome::Killed(64).exit_code(), 192);
    }
}
