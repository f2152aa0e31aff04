//! A per-container lock, held while `start` or a removal works on a container: the next
//! command's repair (`reconcile`) can tell an abandoned operation (its lock is free: the
//! process that held it died) from one still under way. The lock files live in the run root
//! (`locks/<id>`), outside the directories a removal deletes, and are small enough to keep.

use std::fs::File;
use std::path::Path;

use rustix::fs::{flock, FlockOperation};

use super::{io_err, ContainerError};

/// A held lock; released when dropped (or when its process dies).
#[derive(Debug)]
pub struct OpLock {
    _file: File,
}

fn open(run_root: &Path, id: &str) -> Result<File, ContainerError> {
    let dir = run_root.join("locks");
    std::fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
    let path = dir.join(id);
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err("open", &path))
}

/// Wait for and take container `id`'s lock.
pub fn lock(run_root: &Path, id: &str) -> Result<OpLock, ContainerError> {
    let file = open(run_root, id)?;
    flock(&file, FlockOperation::LockExclusive)
        .map_err(|e| io_err("lock", &run_root.join("locks").join(id))(e.into()))?;
    Ok(OpLock { _file: file })
}

/// Take container `id`'s lock if no process holds it now.
pub fn try_lock(run_root: &Path, id: &str) -> Option<OpLock> {
    let file = open(run_root, id).ok()?;
    flock(&file, FlockOperation::NonBlockingLockExclusive).ok()?;
    Some(OpLock { _file: file })
}

/// Forget container `id`'s lock file (after it is removed).
pub fn forget(run_root: &Path, id: &str) {
    let _ = std::fs::remove_file(run_root.join("locks").join(id));
}
