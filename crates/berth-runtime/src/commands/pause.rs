//! `pause` and `resume`: freeze and thaw the container's cgroup.

use super::Error;
use crate::state::{Status, Store};

/// Freeze `id`.
pub fn pause(store: &Store, id: &str) -> Result<i32, Error> {
    let container = store.load(id)?;
    match container.status() {
        Status::Running | Status::Created => {}
        _ => return Err(Error::Invalid("container not running".into())),
    }
    crate::cgroup::open(&container.saved)?.freeze()?;
    Ok(0)
}

/// Thaw `id`.
pub fn resume(store: &Store, id: &str) -> Result<i32, Error> {
    let container = store.load(id)?;
    if container.status() != Status::Paused {
        return Err(Error::Invalid("container not paused".into()));
    }
    crate::cgroup::open(&container.saved)?.thaw()?;
    Ok(0)
}
