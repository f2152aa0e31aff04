//! Containers: create, start, stop, kill, remove, exec, and the exit cleanup that
//! berth-monitor runs (see docs/monitor.md and the README's "Containers").

pub mod attach;
pub mod cleanup;
mod config;
mod copy;
mod create;
mod dirs;
pub mod exec;
mod joins;
mod lifecycle;
mod lock;
mod options;
mod reconcile;
mod remove;
mod runtime;
pub mod start;
pub mod stop;
mod subid;
pub mod tools;
pub mod userns;
mod volumes;

use std::path::{Path, PathBuf};

pub use config::{config_of, details_of, ContainerConfig, Details, OomVictim, VolumeUse};
pub use dirs::Dirs;
pub use options::{CreateOptions, NetworkFlags};
pub use runtime::{Runtime, RuntimeError};
pub use start::Started;
pub use stop::Stopped;

/// Hold container `id`'s operation lock (create, start, removal, network changes).
pub(crate) fn lock_container(run_root: &Path, id: &str) -> Result<lock::OpLock, ContainerError> {
    lock::lock(run_root, id)
}

use crate::images::{Images, ImagesError};
use crate::state::{Container, ContainersError, DbError, StateDb};

/// Why a container operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// The image is not stored (the CLI pulls it and tries again).
    #[error("Unable to find image '{0}' locally")]
    NoSuchImage(String),
    /// The image store.
    #[error(transparent)]
    Images(#[from] ImagesError),
    /// The garbage-collection lock.
    #[error(transparent)]
    Gc(#[from] crate::images::RemoveError),
    /// The layer store.
    #[error(transparent)]
    Layers(#[from] berth_storage::StoreError),
    /// No container ID could be made.
    #[error(transparent)]
    Id(#[from] crate::state::IdError),
    /// The state database.
    #[error(transparent)]
    State(#[from] ContainersError),
    /// Opening the state database.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The spec could not be generated.
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    /// The OCI runtime.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The container's writable layer.
    #[error(transparent)]
    Layer(#[from] berth_storage::ContainerError),
    /// `--storage-opt`.
    #[error("invalid storage option: {0}")]
    StorageOpt(#[from] berth_storage::QuotaError),
    /// A helper binary is missing.
    #[error(transparent)]
    Tool(#[from] tools::NotFound),
    /// A file operation.
    #[error("{step} {path}: {source}")]
    Io {
        /// What was being done.
        step: &'static str,
        /// On what.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A `-v`/`--mount` or `--device` whose source is not there (docker's wording).
    #[error("invalid mount config for type \"bind\": bind source path does not exist: {0}")]
    BindSource(String),
    /// A `--device` that is not a device.
    #[error("error gathering device information while adding custom device {path:?}: {reason}")]
    Device {
        /// The host path.
        path: String,
        /// Why.
        reason: String,
    },
    /// `cp`.
    #[error("{what}: {source}")]
    Copy {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// `--userns`, `--uidmap`, `--gidmap`.
    #[error(transparent)]
    Userns(#[from] userns::UsernsError),
    /// A flag Berth parses but cannot honour yet.
    #[error("{0}")]
    Unsupported(String),
    /// `container:NAME` names a container that does not run.
    #[error("cannot join the namespaces of container {name}: it is not running")]
    JoinNotRunning {
        /// The container named.
        name: String,
    },
    /// Networking.
    #[error(transparent)]
    Network(#[from] crate::networks::NetworkError),
    /// berth-monitor could not start the container.
    #[error("{0}")]
    Start(String),
    /// The container is not running (docker's wording).
    #[error("Container {0} is not running")]
    NotRunning(String),
    /// The container is paused (docker's wording).
    #[error("Container {0} is paused, unpause the container before stopping or killing")]
    Paused(String),
    /// Removing failed part-way; every failure is listed.
    #[error("removing container {id}: {}", .failures.join("; "))]
    Teardown {
        /// The container.
        id: String,
        /// What failed.
        failures: Vec<String>,
    },
}

/// A mapper for I/O errors.
pub(crate) fn io_err(
    step: &'static str,
    path: &Path,
) -> impl FnOnce(std::io::Error) -> ContainerError {
    let path = path.to_path_buf();
    move |source| ContainerError::Io { step, path, source }
}

/// Make `dir` (and its parents) with mode 0700: bundles and run directories hold the
/// containers' environments.
pub(crate) fn make_private_dir(dir: &Path) -> Result<(), ContainerError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err("create", dir))
}

/// The container side of the engine: the image stores, the state database and the two roots.
#[derive(Debug)]
pub struct Engine {
    /// `/var/lib/berth` or the `--root` given.
    pub data_root: PathBuf,
    /// `/run/berth` or the `--runroot` given.
    pub run_root: PathBuf,
    /// Images and container layers.
    pub images: Images,
    /// Container records.
    pub db: StateDb,
}

impl Engine {
    /// Open the stores and the database; clean up what crashed commands left behind.
    pub fn open(data_root: &Path, run_root: &Path) -> Result<Engine, ContainerError> {
        // What the caller left open (a shell's fds, a directory) is not handed down to
        // berth-monitor, the runtime or the container (the CVE-2024-21626 class of leak).
        let _ = berth_sys::cloexec_from(3);
        make_private_dir(data_root)?;
        make_private_dir(run_root)?;
        let mut engine = Engine {
            data_root: data_root.to_path_buf(),
            run_root: run_root.to_path_buf(),
            images: Images::open(&crate::paths::storage_root(data_root))?,
            db: StateDb::open(data_root)?,
        };
        engine.reconcile();
        Ok(engine)
    }

    /// The directories of container `id`.
    pub fn dirs(&self, id: &str) -> Dirs {
        Dirs::new(&self.data_root, &self.run_root, id)
    }

    /// The runtime container `c` was created with.
    pub fn runtime_of(&self, c: &Container) -> Runtime {
        Runtime::at(&c.runtime_name, c.runtime_path.clone(), &self.run_root)
    }

    /// The container `what` names (ID, name or ID prefix).
    pub fn get(&mut self, what: &str) -> Result<Container, ContainerError> {
        Ok(self.db.get(what)?)
    }
}
