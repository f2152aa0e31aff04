//! `start`: release a created container's process from its exec fifo.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use super::{io, Error};
use crate::hooks::{self, Kind};
use crate::state::{Container, Status, Store};

/// Start container `id`.
pub fn run(store: &Store, id: &str) -> Result<i32, Error> {
    let container = store.load(id)?;
    match container.status() {
        Status::Created => {}
        Status::Stopped => {
            return Err(Error::Invalid(
                "cannot start a container that has stopped".into(),
            ))
        }
        Status::Running | Status::Paused => {
            return Err(Error::Invalid(
                "cannot start an already running container".into(),
            ))
        }
        Status::Creating => {
            return Err(Error::Invalid(
                "cannot start a container that is still being created".into(),
            ))
        }
    }
    release(&container)
}

/// Release a created container's process (whose status the caller has checked) and run the
/// poststart hooks.
pub fn release(container: &Container) -> Result<i32, Error> {
    let fifo = container.fifo_path();
    // Non-blocking: if the process died, there is no reader and this fails with ENXIO.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&fifo)
        .map_err(io("open exec fifo", &fifo))?;
    file.write_all(b"0").map_err(io("write exec fifo", &fifo))?;
    std::fs::remove_file(&fifo).map_err(io("remove exec fifo", &fifo))?;
    let state = serde_json::to_string(&container.oci_state_as(Status::Running)).unwrap_or_default();
    for warning in hooks::run_all_warn(&container.saved.spec, Kind::Poststart, &state) {
        eprintln!("warning: {warning}");
    }
    Ok(0)
}
