//! The exit file: `{"exit_code":N,"signal":S|null,"finished_at":"RFC3339 nanos"}`, written to
//! a temporary file, fsynced and renamed into place.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::sys::wait::WaitStatus;

/// Errors writing the exit file.
#[derive(Debug, thiserror::Error)]
pub enum ExitFileError {
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("renaming {from} to {to}: {source}")]
    Rename {
        from: PathBuf,
        to: PathBuf,
        source: std::io::Error,
    },
}

/// How the container's process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitRecord {
    /// The exit code, or 128 + the signal.
    pub exit_code: i32,
    /// The signal that killed it.
    pub signal: Option<i32>,
    /// When the monitor reaped it (RFC 3339 nanos).
    pub finished_at: String,
}

impl ExitRecord {
    /// The record for a `waitpid` status, finished now. `None` unless the process ended.
    pub fn from_status(status: WaitStatus) -> Option<ExitRecord> {
        let (exit_code, signal) = match status {
            WaitStatus::Exited(_, code) => (code, None),
            WaitStatus::Signaled(_, sig, _) => (128 + sig as i32, Some(sig as i32)),
            _ => return None,
        };
        Some(ExitRecord {
            exit_code,
            signal,
            finished_at: crate::time::now(),
        })
    }

    /// The JSON object (no trailing newline).
    pub fn to_json(&self) -> String {
        let signal = self
            .signal
            .map_or_else(|| "null".to_owned(), |s| s.to_string());
        format!(
            "{{\"exit_code\":{},\"signal\":{},\"finished_at\":{}}}",
            self.exit_code,
            signal,
            crate::json::string(&self.finished_at)
        )
    }
}

/// Write `record` to `path` atomically: `PATH.tmp`, fsync, rename.
pub fn write(path: &Path, record: &ExitRecord) -> Result<(), ExitFileError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let err = |source| ExitFileError::Write {
        path: tmp.clone(),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_CLOEXEC)
        .open(&tmp)
        .map_err(err)?;
    file.write_all(record.to_json().as_bytes()).map_err(err)?;
    file.sync_all().map_err(err)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|source| ExitFileError::Rename {
        from: tmp.clone(),
        to: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;
    use nix::unistd::Pid;

    #[test]
    fn json_for_exit_and_signal() -> Result<(), String> {
        let pid = Pid::from_raw(1);
        let mut r = ExitRecord::from_status(WaitStatus::Exited(pid, 3)).ok_or("no record")?;
        r.finished_at = "T".into();
        assert_eq!(
            r.to_json(),
            r#"{"exit_code":3,"signal":null,"finished_at":"T"}"#
        );
        let mut r = ExitRecord::from_status(WaitStatus::Signaled(pid, Signal::SIGKILL, false))
            .ok_or("no record")?;
        r.finished_at = "T".into();
        assert_eq!(
            r.to_json(),
            r#"{"exit_code":137,"signal":9,"finished_at":"T"}"#
        );
        assert!(ExitRecord::from_status(WaitStatus::StillAlive).is_none());
        Ok(())
    }
}
