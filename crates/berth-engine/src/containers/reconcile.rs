//! Repairing what crashed commands left: a creation whose process died (its lock is free) is
//! removed; a running container whose monitor died gets an exit record (from the exit file if
//! the monitor wrote one, else "unknown", 255). Runs when the engine opens.

use std::fs;

use super::config::details_of;
use super::{ContainerError, Engine};
use crate::state::Status;

impl Engine {
    /// Repair every container that needs it; failures are left for the next command.
    pub(crate) fn reconcile(&mut self) {
        let Ok(list) = self.db.list() else {
            return;
        };
        for c in list {
            if details_of(&c).incomplete {
                if self.creation_abandoned(&c.id) {
                    let _ = self.remove_everything(&c, true);
                }
                continue;
            }
            if c.status.is_live() || c.status == Status::Removing {
                self.reconcile_one(&c.id);
            }
        }
    }

    /// If container `id` is recorded as running but its monitor is gone, record the exit.
    pub(crate) fn reconcile_one(&mut self, id: &str) {
        let Ok(c) = self.db.get(id) else {
            return;
        };
        if c.status == Status::Removing {
            if c.monitor_pid.is_none_or(|m| !is_monitor_of(m, &c.id)) {
                let _ = self.remove_everything(&c, false);
            }
            return;
        }
        if !c.status.is_live() {
            return;
        }
        if c.monitor_pid.is_some_and(|m| is_monitor_of(m, &c.id)) {
            return;
        }
        // The monitor died (or the machine rebooted): make sure nothing of it runs on.
        let runtime = self.runtime_of(&c);
        let _ = runtime.run(&["kill", "--all", c.id.as_str(), "KILL"]);
        let _ = self.cleanup(&c.id);
    }

    /// Whether the creation of `id` was abandoned: nobody holds its lock.
    fn creation_abandoned(&self, id: &str) -> bool {
        let path = self.dirs(id).create_lock();
        let Ok(file) = fs::File::open(&path) else {
            return true;
        };
        let free = rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive);
        free.is_ok()
    }
}

/// Whether `pid` is the monitor (or its cleanup) of container `id`: its command line names
/// the container. A reused pid names something else.
pub(crate) fn is_monitor_of(pid: i32, id: &str) -> bool {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|cmdline| cmdline.split(|b| *b == 0).any(|arg| arg == id.as_bytes()))
        .unwrap_or(false)
}

impl From<std::convert::Infallible> for ContainerError {
    fn from(never: std::convert::Infallible) -> ContainerError {
        match never {}
    }
}
