//! `delete`: remove a stopped container (or, with `--force`, kill it first).

use std::time::{Duration, Instant};

use super::Error;
use crate::hooks::{self, Kind};
use crate::state::{Container, Status, Store};

/// Delete `id`.
pub fn run(store: &Store, id: &str, force: bool) -> Result<i32, Error> {
    let container = match store.load(id) {
        Ok(c) => c,
        // A directory left by a create that died: reclaim it quietly.
        Err(crate::state::StateError::NotFound) if store.reclaim_incomplete(id) => return Ok(0),
        // runc 1.1: `delete --force` of a container that does not exist succeeds.
        Err(crate::state::StateError::NotFound) if force => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    match container.status() {
        Status::Stopped => {}
        // runc deletes a created container: it never ran user code.
        Status::Created | Status::Creating => kill_all(&container)?,
        status if force => {
            let _ = status;
            kill_all(&container)?
        }
        status => {
            return Err(Error::Invalid(format!(
                "cannot delete container {id} that is not stopped: {}",
                status.as_str()
            )))
        }
    }
    destroy(&container)
}

/// SIGKILL everything in the container and wait until init is gone.
pub fn kill_all(container: &Container) -> Result<(), Error> {
    let cgroup = crate::cgroup::open(&container.saved)?;
    // A frozen cgroup cannot act on SIGKILL until thawed.
    if cgroup.is_frozen().unwrap_or(false) {
        let _ = cgroup.thaw();
    }
    if let Err(e) = cgroup.kill_all(libc::SIGKILL) {
        // Fall back to init alone (the cgroup may already be gone).
        if container.init_alive() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(container.saved.pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        } else {
            return Err(e.into());
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while container.init_alive() {
        if Instant::now() > deadline {
            return Err(Error::Invalid(format!(
                "container init (pid {}) did not die after SIGKILL",
                container.saved.pid
            )));
        }
        // Reap it if it happens to be our child (run --keep, tests).
        let _ = nix::sys::wait::waitpid(
            nix::unistd::Pid::from_raw(container.saved.pid),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

/// Remove the cgroup and the state directory, run poststop hooks; report every failure.
pub fn destroy(container: &Container) -> Result<i32, Error> {
    destroy_with(container, crate::cgroup::open(&container.saved))
}

/// [`destroy`] with the container's cgroup already at hand (`run` keeps it from `create`).
pub fn destroy_with(
    container: &Container,
    cgroup: Result<berth_cgroups::Cgroup, berth_cgroups::Error>,
) -> Result<i32, Error> {
    let mut failures = Vec::new();
    match cgroup {
        Ok(cgroup) => {
            if let Err(e) = cgroup.destroy() {
                failures.push(format!("remove cgroup: {e}"));
            }
        }
        Err(e) => failures.push(format!("open cgroup: {e}")),
    }
    let state = serde_json::to_string(&container.oci_state_as(Status::Stopped)).unwrap_or_default();
    for warning in hooks::run_all_warn(&container.saved.spec, Kind::Poststop, &state) {
        eprintln!("warning: {warning}");
    }
    if let Err(e) = container.remove_dir() {
        failures.push(e.to_string());
    }
    if failures.is_empty() {
        Ok(0)
    } else {
        Err(Error::Teardown(failures))
    }
}
