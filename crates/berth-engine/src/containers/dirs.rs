//! Where a container's files are: its bundle (the spec and its log) in the data root, which
//! survives a reboot, and its run directory (pid file, exit file, sockets) in the run root.

use std::path::{Path, PathBuf};

/// A container's directories.
#[derive(Debug, Clone)]
pub struct Dirs {
    /// `<data root>/containers/<id>`: `config.json` (the OCI bundle) and `ctr.log`.
    pub bundle: PathBuf,
    /// `<run root>/c/<id>`: `pid`, `exit.json`, `attach`, `console.sock`.
    pub run: PathBuf,
}

impl Dirs {
    /// The directories of container `id`.
    pub fn new(data_root: &Path, run_root: &Path, id: &str) -> Dirs {
        Dirs {
            bundle: data_root.join("containers").join(id),
            run: run_root.join("c").join(id),
        }
    }

    /// The OCI spec.
    pub fn config_json(&self) -> PathBuf {
        self.bundle.join("config.json")
    }

    /// The k8s-file log.
    pub fn log(&self) -> PathBuf {
        self.bundle.join("ctr.log")
    }

    /// The runtime writes the container's pid here.
    pub fn pid_file(&self) -> PathBuf {
        self.run.join("pid")
    }

    /// berth-monitor's exit record.
    pub fn exit_file(&self) -> PathBuf {
        self.run.join("exit.json")
    }

    /// berth-monitor's attach socket.
    pub fn attach_socket(&self) -> PathBuf {
        self.run.join("attach")
    }

    /// Where the runtime sends the pty master.
    pub fn console_socket(&self) -> PathBuf {
        self.run.join("console.sock")
    }
}
