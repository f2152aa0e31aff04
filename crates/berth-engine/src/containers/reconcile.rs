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
            let needs = details_of(&c).incomplete
                || c.status.is_live()
                || c.status == Status::Removing
                || c.monitor_pid.is_some();
            if needs {
                self.reconcile_one(&c.id);
            }
        }
        for id in self.stale_network_holders() {
            // Under its lock: a start under way holds it while it sets the network up.
            if let Some(_lock) = super::lock::try_lock(&self.run_root, &id) {
                let _ = self.detach_networks(&id);
            }
        }
    }

    /// Repair container `id` if whatever worked on it died: nobody holds its lock, and its
    /// record (read again under the lock) still says the work was under way. Never waits.
    pub(crate) fn reconcile_one(&mut self, id: &str) {
        // Whoever works on it now holds the lock: nothing to repair.
        let Some(lock) = super::lock::try_lock(&self.run_root, id) else {
            return;
        };
        let Ok(c) = self.db.get(id) else {
            return;
        };
        let me = std::process::id() as i32;
        if c.monitor_pid == Some(me) {
            return; // this is the container's own cleanup
        }
        let monitor_alive = c.monitor_pid.is_some_and(|m| is_monitor_of(m, &c.id));
        if details_of(&c).incomplete || (c.status == Status::Removing && !monitor_alive) {
            // A creation or removal that died half-way: finish tearing it down.
            let _ = self.remove_everything_locked(&c, true, &lock);
            return;
        }
        let runtime = self.runtime_of(&c);
        if c.status == Status::Created && c.monitor_pid.is_some() {
            // A `start` died between starting the monitor and starting the process: stop
            // what it started; the monitor records the exit.
            let _ = runtime.run(&["delete", "--force", c.id.as_str()]);
            if !monitor_alive {
                let _ = self.db.modify(&c.id, |r| {
                    r.monitor_pid = None;
                    Ok::<_, ContainerError>(())
                });
            }
            return;
        }
        if !c.status.is_live() || monitor_alive {
            return;
        }
        // The monitor died (or the machine rebooted): make sure nothing of it runs on.
        let _ = runtime.run(&["kill", "--all", c.id.as_str(), "KILL"]);
        drop(lock);
        let _ = self.cleanup(&c.id);
    }
}

/// Whether `pid` is the monitor (or its cleanup) of container `id`: its command line names
/// the container. A reused pid names something else.
pub(crate) fn is_monitor_of(pid: i32, id: &str) -> bool {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|cmdline| cmdline.split(|b| *b == 0).any(|arg| arg == id.as_bytes()))
        .unwrap_or(false)
}
