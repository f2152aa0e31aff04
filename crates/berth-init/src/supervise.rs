//! The loop: block signals, become a subreaper unless PID 1, start the program, then for each
//! signal forward it and reap, until the program has exited.

use std::ffi::CString;

use crate::child::{self, ForwardError, SpawnError};
use crate::reap::{self, ReapError};
use crate::signals::{self, SignalError, Signals};

/// Errors of berth-init itself (the program's own failures are its exit status).
#[derive(Debug, thiserror::Error)]
pub enum SuperviseError {
    /// Blocking or reading signals.
    #[error(transparent)]
    Signals(#[from] SignalError),
    /// Starting the program.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    /// Forwarding a signal.
    #[error(transparent)]
    Forward(#[from] ForwardError),
    /// Reaping.
    #[error(transparent)]
    Reap(#[from] ReapError),
}

/// Runs `argv` (program first) to completion and returns berth-init's exit code: the
/// program's exit status, or 128 + the signal that killed it.
pub fn run(argv: &[CString]) -> Result<i32, SuperviseError> {
    let signals = Signals::block()?;
    become_subreaper();
    let child = child::spawn(argv, signals.original())?;
    loop {
        let signal = signals.next()?;
        if signals::forwarded(signal) {
            child.signal(signal)?;
        }
        if let Some(outcome) = reap::reap_zombies(child.pid())? {
            return Ok(outcome.exit_code());
        }
    }
}

/// Outside a pid namespace of its own, orphans of the program would go to some other
/// ancestor; as a child subreaper they come to berth-init instead (tini needs `-s` for this).
/// When the kernel refuses (it cannot for an unprivileged process since Linux 3.4, but a
/// seccomp filter might), berth-init still reaps its own child and says nothing: zombies of
/// orphans then are the real init's business, as they would be without berth-init.
fn become_subreaper() {
    if nix::unistd::getpid().as_raw() != 1 {
        let _ignored = berth_sys::set_child_subreaper();
    }
}
