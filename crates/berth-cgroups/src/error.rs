//! The crate's error type: every variant names what was being done, to which path or setting.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while managing a cgroup.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading a cgroup (or /proc) file failed.
    #[error("read {}: {}", path.display(), io_message(source))]
    Read { path: PathBuf, source: io::Error },

    /// Writing a value to a cgroup file failed.
    #[error("write {value} to {}: {}", path.display(), io_message(source))]
    Write {
        path: PathBuf,
        value: String,
        source: io::Error,
    },

    /// Creating a cgroup directory failed.
    #[error("create {}: {}", path.display(), io_message(source))]
    Mkdir { path: PathBuf, source: io::Error },

    /// Removing a cgroup directory failed (after retries on EBUSY).
    #[error("remove {}: {}", path.display(), io_message(source))]
    Rmdir { path: PathBuf, source: io::Error },

    /// A kernel file did not have the expected shape.
    #[error("parse {what}: {reason}")]
    Parse { what: String, reason: String },

    /// Neither a cgroup v1 nor a cgroup v2 hierarchy is mounted.
    #[error("no cgroup hierarchy is mounted")]
    NoCgroups,

    /// The OCI cgroupsPath cannot be used.
    #[error("cgroups path {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },

    /// A setting needs a controller that is not mounted on this host.
    #[error("{setting}: controller {controller} not available")]
    ControllerMissing { setting: String, controller: String },

    /// A setting of `linux.resources` that Berth does not (yet) apply here.
    #[error("{setting}: unsupported: {reason}")]
    Unsupported { setting: String, reason: String },

    /// A setting whose value cannot be applied.
    #[error("{setting}: invalid value {value}: {reason}")]
    InvalidValue {
        setting: String,
        value: String,
        reason: String,
    },

    /// The freezer did not reach the wanted state in time.
    #[error("{}: timed out waiting for freezer state {want}", path.display())]
    FreezeTimeout { path: PathBuf, want: String },

    /// Sending a signal to a process of the cgroup failed.
    #[error("send signal {signal} to pid {pid}: {}", source.desc().to_lowercase())]
    Kill {
        pid: i32,
        signal: i32,
        source: nix::errno::Errno,
    },

    /// Teardown keeps going; these are all the failures it met.
    #[error("destroy cgroup: {}", join(.0))]
    Destroy(Vec<Error>),
}

/// `Device or resource busy (os error 16)` -> `device or resource busy`.
pub(crate) fn io_message(err: &io::Error) -> String {
    let text = match err.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => err.to_string(),
    };
    lowercase_first(&text)
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn join(errors: &[Error]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    pub(crate) fn unsupported(setting: &str, reason: &str) -> Error {
        Error::Unsupported {
            setting: setting.to_string(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn invalid(setting: &str, value: impl ToString, reason: &str) -> Error {
        Error::InvalidValue {
            setting: setting.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn missing(setting: &str, controller: &str) -> Error {
        Error::ControllerMissing {
            setting: setting.to_string(),
            controller: controller.to_string(),
        }
    }
}
