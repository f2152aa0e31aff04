//! Reaping: every exited child is collected with `wait4(-1, WNOHANG)` until none is left, as
//! tini does after each signal. Orphans re-parented to berth-init (PID 1, or a child
//! subreaper) are collected the same way.

use berth_sys::rt::{self, Errno, WaitStatus};

use crate::msg::Msg;

/// Errors while reaping.
#[derive(Debug, PartialEq, Eq)]
pub enum ReapError {
    /// `waitpid` failed with something other than "no children".
    Wait(Errno),
}

impl ReapError {
    /// Appends the message.
    pub fn describe(&self, msg: &mut Msg) {
        let ReapError::Wait(e) = self;
        msg.str("waitpid: ").errno(*e);
    }
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
        match rt::wait_any_nohang() {
            Ok(Some((pid, status))) if pid == main => main_outcome = Outcome::of(status),
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

    #[test]
    fn wait_statuses() {
        assert_eq!(Outcome::of(WaitStatus(3 << 8)), Some(Outcome::Exited(3)));
        assert_eq!(Outcome::of(WaitStatus(9)), Some(Outcome::Killed(9)));
        assert_eq!(
            Outcome::of(WaitStatus(11 | 0x80)),
            Some(Outcome::Killed(11))
        );
        assert_eq!(Outcome::of(WaitStatus(0x137f)), None);
    }
}
