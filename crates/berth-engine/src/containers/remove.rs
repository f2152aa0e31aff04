//! `berth rm`: kill if forced, then remove everything the container has: the runtime's state,
//! the writable layer, the bundle and run directories, anonymous volumes with `-v`, and the
//! record last (so a failure half-way leaves a record that `rm` can retry).

use std::fs;

use super::config::config_of;
use super::volumes::Volumes;
use super::{ContainerError, Engine};
use crate::state::{Container, Status};

impl Engine {
    /// Remove container `what`; one with a process only with `force` (it is killed first).
    /// `volumes` also removes its anonymous volumes.
    pub fn remove(
        &mut self,
        what: &str,
        force: bool,
        volumes: bool,
    ) -> Result<Container, ContainerError> {
        let c = self.db.get(what)?;
        let has_monitor = c
            .monitor_pid
            .is_some_and(|m| super::reconcile::is_monitor_of(m, &c.id));
        if c.status.is_live() || has_monitor {
            if !force {
                return Err(crate::state::ContainersError::IsLive {
                    name: c.name.clone(),
                    status: c.status,
                }
                .into());
            }
            let runtime = self.runtime_of(&c);
            if c.status == Status::Paused {
                let _ = runtime.run(&["resume", c.id.as_str()]);
            }
            let _ = runtime.run(&["kill", "--all", c.id.as_str(), "KILL"]);
            if c.status == Status::Created {
                // Created but never started: the process waits in the runtime's `create`.
                let _ = runtime.run(&["delete", "--force", c.id.as_str()]);
            }
            self.wait_recorded(&c)?;
        }
        let c = match self.db.get(&c.id) {
            Ok(c) => c,
            // Its cleanup removed it (`--rm`).
            Err(crate::state::ContainersError::NoSuchContainer { .. }) => return Ok(c),
            Err(e) => return Err(e.into()),
        };
        self.remove_everything(&c, volumes)?;
        Ok(c)
    }

    /// Tear down everything of `c` (whose process is gone), reporting every failure; the
    /// record goes last, and only when all else went.
    pub(crate) fn remove_everything(
        &mut self,
        c: &Container,
        volumes: bool,
    ) -> Result<(), ContainerError> {
        let lock = super::lock::lock(&self.run_root, &c.id)?;
        self.remove_everything_locked(c, volumes, &lock)
    }

    /// [`Engine::remove_everything`] for a caller that holds the container's lock.
    pub(crate) fn remove_everything_locked(
        &mut self,
        c: &Container,
        volumes: bool,
        _lock: &super::lock::OpLock,
    ) -> Result<(), ContainerError> {
        let _ = self.db.modify(&c.id, |r| {
            r.status = Status::Removing;
            Ok::<_, ContainerError>(())
        });
        let mut failures = Vec::new();
        let dirs = self.dirs(&c.id);
        let runtime = self.runtime_of(c);
        if runtime.has_state(&c.id) {
            if let Err(e) = runtime.run(&["delete", "--force", c.id.as_str()]) {
                failures.push(e.to_string());
            }
        }
        if let Err(e) = self.detach_networks(&c.id) {
            failures.push(e.to_string());
        }
        let layer = self.images.containers.get(&c.id);
        if let Err(e) = layer.and_then(|l| match l {
            Some(_) => self.images.containers.remove(&c.id),
            None => Ok(()),
        }) {
            failures.push(e.to_string());
        }
        let config = config_of(c);
        if volumes || config.auto_remove {
            let store = Volumes::new(&self.data_root);
            for v in config.volumes.iter().filter(|v| v.anonymous) {
                if let Err(e) = store.remove(&v.name) {
                    failures.push(e.to_string());
                }
            }
        }
        for dir in [&dirs.bundle, &dirs.run] {
            match fs::remove_dir_all(dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    failures.push(format!("removing {}: {e}", dir.display()));
                }
                _ => {}
            }
        }
        if !failures.is_empty() {
            let _ = self.db.modify(&c.id, |r| {
                r.status = Status::Dead;
                Ok::<_, ContainerError>(())
            });
            return Err(ContainerError::Teardown {
                id: c.id.clone(),
                failures,
            });
        }
        self.db.remove(&c.id, true)?;
        super::lock::forget(&self.run_root, &c.id);
        Ok(())
    }
}
