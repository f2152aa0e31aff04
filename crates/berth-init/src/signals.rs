//! Signals are blocked and read from a signalfd, as tini blocks them and reads them with
//! `sigtimedwait`: no handlers run, and as PID 1 of a pid namespace the kernel still queues
//! blocked signals (it drops only those an init has neither blocked nor handled).

use berth_sys::rt::{self, Errno, Fd, SigSet};

use crate::msg::Msg;

/// Synchronous fault signals stay unblocked (tini's list): blocking them would only turn a
/// crash of berth-init itself into a hang.
const UNBLOCKED: [i32; 7] = [
    libc_sig::FPE,
    libc_sig::ILL,
    libc_sig::SEGV,
    libc_sig::BUS,
    libc_sig::ABRT,
    libc_sig::TRAP,
    libc_sig::SYS,
];

/// Received but not forwarded: `SIGCHLD` only means "reap", and tini ignores the terminal's
/// `SIGTTIN`/`SIGTTOU`, which concern berth-init itself (we block them instead, which lets the
/// child take the terminal's foreground without being stopped, then drop them).
const NOT_FORWARDED: [i32; 3] = [libc_sig::CHLD, libc_sig::TTIN, libc_sig::TTOU];

/// Signal numbers (the same on every Linux architecture berth-init is built for).
mod libc_sig {
    pub const ILL: i32 = 4;
    pub const TRAP: i32 = 5;
    pub const ABRT: i32 = 6;
    pub const BUS: i32 = 7;
    pub const FPE: i32 = 8;
    pub const SEGV: i32 = 11;
    pub const CHLD: i32 = 17;
    pub const TTIN: i32 = 21;
    pub const TTOU: i32 = 22;
    pub const SYS: i32 = 31;
}

/// Errors while blocking or reading signals.
#[derive(Debug, PartialEq, Eq)]
pub enum SignalError {
    /// `sigprocmask` failed.
    Block(Errno),
    /// `signalfd` failed.
    Open(Errno),
    /// Reading the signalfd failed.
    Read(Errno),
}

impl SignalError {
    /// Appends the message.
    pub fn describe(&self, msg: &mut Msg) {
        let (step, e) = match self {
            SignalError::Block(e) => ("block signals: ", e),
            SignalError::Open(e) => ("signalfd: ", e),
            SignalError::Read(e) => ("read signalfd: ", e),
        };
        msg.str(step).errno(*e);
    }
}

/// The signals berth-init blocks: all but the synchronous faults.
pub fn blocked() -> SigSet {
    UNBLOCKED
        .iter()
        .fold(SigSet::all(), |set, sig| set.without(*sig))
}

/// Every signal berth-init handles, blocked, and the signalfd that delivers them.
pub struct Signals {
    fd: Fd,
    original: SigSet,
}

impl Signals {
    /// Blocks every signal but the synchronous faults and opens a signalfd for them. Signals
    /// that arrive in between stay pending and are read from the signalfd later.
    pub fn block() -> Result<Self, SignalError> {
        let mask = blocked();
        let original = rt::set_signal_mask(mask).map_err(SignalError::Block)?;
        let fd = rt::signalfd(mask).map_err(SignalError::Open)?;
        Ok(Signals { fd, original })
    }

    /// The mask berth-init started with, which the child gets back before exec.
    pub fn original(&self) -> SigSet {
        self.original
    }

    /// Waits for the next signal and returns its number.
    pub fn next(&self) -> Result<i32, SignalError> {
        loop {
            match rt::read_signal(&self.fd) {
                Ok(signal) => return Ok(signal),
                Err(Errno::INTR | Errno::AGAIN) => continue,
                Err(e) => return Err(SignalError::Read(e)),
            }
        }
    }
}

/// Whether a received signal is passed on to the child.
pub fn forwarded(signal: i32) -> bool {
    !NOT_FORWARDED.contains(&signal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_signals_are_forwarded() {
        for sig in [15, 2, 1, 10, 34, 64] {
            assert!(forwarded(sig), "{sig}");
        }
        for sig in NOT_FORWARDED {
            assert!(!forwarded(sig), "{sig}");
        }
    }

    #[test]
    fn faults_stay_unblocked() {
        let set = blocked();
        for sig in UNBLOCKED {
            assert!(!set.contains(sig), "{sig}");
        }
        for sig in [1, 2, 9, 15, 17, 19, 21, 22, 32, 33, 34, 64] {
            assert!(set.contains(sig), "{sig}");
        }
    }

    #[test]
    fn numbers_match_the_platform() {
        use nix::sys::signal::Signal;
        let ours = [
            (libc_sig::ILL, Signal::SIGILL),
            (libc_sig::TRAP, Signal::SIGTRAP),
            (libc_sig::ABRT, Signal::SIGABRT),
            (libc_sig::BUS, Signal::SIGBUS),
            (libc_sig::FPE, Signal::SIGFPE),
            (libc_sig::SEGV, Signal::SIGSEGV),
            (libc_sig::CHLD, Signal::SIGCHLD),
            (libc_sig::TTIN, Signal::SIGTTIN),
            (libc_sig::TTOU, Signal::SIGTTOU),
            (libc_sig::SYS, Signal::SIGSYS),
        ];
        for (n, sig) in ours {
            assert_eq!(n, sig as i32, "{sig}");
        }
    }
}
