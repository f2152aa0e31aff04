//! The loop: block signals, become a subreaper unless PID 1, start the program, then for each
//! signal forward it and reap, until the program has exited.

use berth_sys::rt::{self, CStrList};

use crate::child::{self, ForwardError, SpawnError};
use crate::msg::Msg;
use crate::reap::{self, ReapError};
use crate::signals::{self, SignalError, Signals};

/// Errors of berth-init itself (the program's own failures are its exit status).
#[derive(Debug, PartialEq, Eq)]
pub enum SuperviseError {
    /// Blocking or reading signals.
    Signals(SignalError),
    /// Starting the program.
    Spawn(SpawnError),
    /// Forwarding a signal.
    Forward(ForwardError),
    /// Reaping.
    Reap(ReapError),
}

impl SuperviseError {
    /// Appends the message.
    pub fn describe(&self, msg: &mut Msg) {
        match self {
            SuperviseError::Signals(e) => e.describe(msg),
            SuperviseError::Spawn(e) => e.describe(msg),
            SuperviseError::Forward(e) => e.describe(msg),
            SuperviseError::Reap(e) => e.describe(msg),
        }
    }
}

/// Runs `argv` (program first) with environment `envp` to completion and returns
/// berth-init's exit code: the program's exit status, or 128 + the signal that killed it.
pub fn run(argv: CStrList, envp: CStrList) -> Result<i32, SuperviseError> {
    let signals = Signals::block().map_err(SuperviseError::Signals)?;
    become_subreaper();
    let child = child::spawn(argv, envp, signals.original()).map_err(SuperviseError::Spawn)?;
    loop {
        let signal = signals.next().map_err(SuperviseError::Signals)?;
        if signals::forwarded(signal) {
            child.signal(signal).map_err(SuperviseError::Forward)?;
        }
        if let Some(outcome) = reap::reap_zombies(child.pid()).map_err(SuperviseError::Reap)? {
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
    if rt::getpid() != 1 {
        let _ignored = rt::set_child_subreaper();
    }
}
