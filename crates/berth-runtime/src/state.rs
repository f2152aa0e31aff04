//! Container state under `--root`: one directory per container holding `state.json` and the
//! `exec.fifo`, written atomically under an `flock` on the directory.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::util::cause;

/// Errors of the state store.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// No such container.
    #[error("container does not exist")]
    NotFound,
    /// The id is taken.
    #[error("container with id exists: {0}")]
    Exists(String),
    /// The id has characters we do not allow.
    #[error("invalid container id format: {0}")]
    BadId(String),
    /// Filesystem trouble.
    #[error("{op} {path}: {cause}")]
    Io {
        /// What we were doing.
        op: &'static str,
        /// Where.
        path: PathBuf,
        /// Why.
        cause: String,
    },
    /// state.json is unreadable.
    #[error("parse {path}: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StateError + 'a {
    move |e| StateError::Io {
        op,
        path: path.to_path_buf(),
        cause: cause(&e),
    }
}

/// Whether setup finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// `create` is still running (or died: then the directory is cleaned up).
    Creating,
    /// Setup finished.
    Created,
}

/// What we keep about a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    /// Container id.
    pub id: String,
    /// Init pid in the runtime's pid namespace.
    pub pid: i32,
    /// Init's start time (field 22 of /proc/<pid>/stat) so a recycled pid is not mistaken for it.
    pub pid_start: u64,
    /// Bundle directory.
    pub bundle: PathBuf,
    /// Rootfs directory.
    pub rootfs: PathBuf,
    /// Creation time, RFC 3339.
    pub created: String,
    /// Owner (empty for root, as runc).
    pub owner: String,
    /// Whether setup finished.
    pub phase: Phase,
    /// The config the container was created from (exec and hooks use it).
    pub spec: Spec,
}

/// Lifecycle status as the runtime spec names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Being created.
    Creating,
    /// Created, waiting for start.
    Created,
    /// Running.
    Running,
    /// Frozen.
    Paused,
    /// Init has exited.
    Stopped,
}

impl Status {
    /// The spec's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// The state directory of all containers.
pub struct Store {
    root: PathBuf,
}

/// An open container directory, locked for as long as this lives.
pub struct Container {
    /// The container's directory.
    pub dir: PathBuf,
    /// Its saved state.
    pub saved: Saved,
    /// Held for mutating commands; `None` for a read-only [`Store::peek`].
    _lock: Option<Flock<File>>,
}

impl Store {
    /// A store rooted at `root` (created if missing, mode 0700).
    pub fn open(root: &Path) -> Result<Store, StateError> {
        std::fs::create_dir_all(root).map_err(io_err("create", root))?;
        Ok(Store {
            root: root.to_path_buf(),
        })
    }

    /// The state root (also holds the compiled seccomp programs).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory a container id lives in.
    pub fn dir_of(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Reserve a new container directory and lock it. Fails if the id is taken.
    pub fn reserve(&self, id: &str) -> Result<(PathBuf, Flock<File>), StateError> {
        check_id(id)?;
        let dir = self.dir_of(id);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                // A directory left by a `create` that died is ours to reclaim.
                if !self.reclaim_incomplete(id) {
                    return Err(StateError::Exists(id.into()));
                }
                std::fs::create_dir(&dir).map_err(io_err("create", &dir))?;
            }
            Err(e) => return Err(io_err("create", &dir)(e)),
        }
        let lock = lock_dir(&dir)?;
        Ok((dir, lock))
    }

    /// Open and lock an existing container.
    pub fn load(&self, id: &str) -> Result<Container, StateError> {
        check_id(id)?;
        let dir = self.dir_of(id);
        if !dir.is_dir() {
            return Err(StateError::NotFound);
        }
        let lock = lock_dir(&dir)?;
        let saved = read_saved(&dir)?;
        Ok(Container {
            dir,
            saved,
            _lock: Some(lock),
        })
    }

    /// Read a container's state without taking its lock (`state`, `list`, `ps`): state.json is
    /// replaced by rename, so a reader sees a whole version, and a running `create` (which holds
    /// the lock throughout) does not block it.
    pub fn peek(&self, id: &str) -> Result<Container, StateError> {
        check_id(id)?;
        let dir = self.dir_of(id);
        if !dir.is_dir() {
            return Err(StateError::NotFound);
        }
        let saved = read_saved(&dir)?;
        Ok(Container {
            dir,
            saved,
            _lock: None,
        })
    }

    /// All container ids, in directory order.
    pub fn ids(&self) -> Result<Vec<String>, StateError> {
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(&self.root).map_err(io_err("read", &self.root))? {
            let entry = entry.map_err(io_err("read", &self.root))?;
            if entry.path().is_dir() {
                ids.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Remove `id`'s directory if it is an abandoned, incomplete creation; true if removed.
    pub fn reclaim_incomplete(&self, id: &str) -> bool {
        let dir = self.dir_of(id);
        let Ok(file) = File::open(&dir) else {
            return false;
        };
        // A live `create` holds the lock; if we can take it without waiting, nobody does.
        let Ok(lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) else {
            return false;
        };
        let incomplete = match read_saved(&dir) {
            Ok(saved) => saved.phase == Phase::Creating,
            Err(StateError::NotFound) => true,
            Err(_) => false,
        };
        if incomplete {
            let _ = std::fs::remove_dir_all(&dir);
        }
        drop(lock);
        incomplete
    }
}

fn check_id(id: &str) -> Result<(), StateError> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(StateError::BadId(id.into()))
    }
}

fn lock_dir(dir: &Path) -> Result<Flock<File>, StateError> {
    let file = File::open(dir).map_err(io_err("open", dir))?;
    Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| io_err("lock", dir)(e.into()))
}

fn read_saved(dir: &Path) -> Result<Saved, StateError> {
    let path = dir.join("state.json");
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StateError::NotFound),
        Err(e) => return Err(io_err("read", &path)(e)),
    };
    serde_json::from_slice(&text).map_err(|e| StateError::Corrupt {
        path,
        message: e.to_string(),
    })
}

/// Save `saved` into `dir` (tmp + fsync + rename). The caller holds the directory lock.
pub fn save(dir: &Path, saved: &Saved) -> Result<(), StateError> {
    save_with(dir, saved, true)
}

/// [`save`], with or without the fsync: the `creating` record is replaced moments later, and a
/// crash leaves it (or nothing) marked incomplete either way.
pub fn save_with(dir: &Path, saved: &Saved, durable: bool) -> Result<(), StateError> {
    let path = dir.join("state.json");
    let data = serde_json::to_vec(saved).map_err(|e| StateError::Corrupt {
        path: path.clone(),
        message: e.to_string(),
    })?;
    crate::util::write_replace(&path, &data, durable).map_err(io_err("write", &path))
}

/// Start time of `pid` (field 22 of /proc/<pid>/stat), or None if it does not exist.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let state = rest.split(' ').next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    rest.split(' ').nth(19)?.parse().ok()
}

impl Container {
    /// A container whose state `create` has just saved, still under its lock.
    pub fn locked(dir: PathBuf, saved: Saved, lock: Flock<File>) -> Container {
        Container {
            dir,
            saved,
            _lock: Some(lock),
        }
    }

    /// Is init still the process we started?
    pub fn init_alive(&self) -> bool {
        self.saved.pid > 0 && start_time(self.saved.pid) == Some(self.saved.pid_start)
    }

    /// The exec fifo; present between `create` and `start`.
    pub fn fifo_path(&self) -> PathBuf {
        self.dir.join("exec.fifo")
    }

    /// Current status.
    pub fn status(&self) -> Status {
        if !self.init_alive() {
            return Status::Stopped;
        }
        if self.saved.phase == Phase::Creating {
            return Status::Creating;
        }
        if self.fifo_path().exists() {
            return Status::Created;
        }
        if crate::cgroup::is_frozen(&self.saved) {
            return Status::Paused;
        }
        Status::Running
    }

    /// The runtime-spec state document, with the same fields and order as runc's.
    pub fn oci_state(&self) -> OciState {
        self.oci_state_as(self.status())
    }

    /// The state document with a status the caller already knows (hooks after start and
    /// delete), without probing the process and the freezer again.
    pub fn oci_state_as(&self, status: Status) -> OciState {
        OciState {
            oci_version: self.saved.spec.version().clone(),
            id: self.saved.id.clone(),
            pid: if status == Status::Stopped {
                0
            } else {
                self.saved.pid
            },
            status: status.as_str().into(),
            bundle: self.saved.bundle.clone(),
            rootfs: self.saved.rootfs.clone(),
            created: self.saved.created.clone(),
            owner: self.saved.owner.clone(),
            annotations: self.saved.spec.annotations().clone(),
        }
    }

    /// Remove the state directory.
    pub fn remove_dir(&self) -> Result<(), StateError> {
        std::fs::remove_dir_all(&self.dir).map_err(io_err("remove", &self.dir))
    }
}

/// `state` output (runc's field order).
#[derive(Debug, Serialize, Deserialize)]
pub struct OciState {
    /// Spec version.
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    /// Id.
    pub id: String,
    /// Init pid (0 when stopped).
    pub pid: i32,
    /// Status name.
    pub status: String,
    /// Bundle directory.
    pub bundle: PathBuf,
    /// Rootfs directory.
    pub rootfs: PathBuf,
    /// Creation time.
    pub created: String,
    /// Owner.
    pub owner: String,
    /// Annotations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<HashMap<String, String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        for bad in ["", "..", "a/b", "a b", "x\0"] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
        for good in ["abc", "a.b-c_d+e", "0123"] {
            check_id(good).unwrap();
        }
    }

    #[test]
    fn incomplete_directory_is_reclaimed_but_a_locked_one_is_not() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let (_dir, lock) = store.reserve("c1").unwrap();
        // Held by a live creator: not reclaimable, and the id is taken.
        assert!(matches!(store.reserve("c1"), Err(StateError::Exists(_))));
        drop(lock);
        // The creator died before writing state: the next reserve reclaims the directory.
        let (_dir, _lock) = store.reserve("c1").unwrap();
    }

    #[test]
    fn own_start_time_is_read() {
        assert!(start_time(std::process::id() as i32).is_some());
        assert!(start_time(i32::MAX).is_none());
    }
}
