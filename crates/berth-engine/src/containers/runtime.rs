//! The OCI runtime a container runs under, driven through runc's command line.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::tools;

/// The default runtime.
pub const DEFAULT: &str = "berth-runtime";

/// Why a runtime could not be found or failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// `--runtime` names nothing runnable.
    #[error("unknown or invalid runtime name: {name}")]
    Unknown {
        /// What the user gave.
        name: String,
    },
    /// berth-runtime is not installed beside berth.
    #[error(transparent)]
    NotFound(#[from] tools::NotFound),
    /// It could not be started.
    #[error("running {runtime} {step}: {source}")]
    Spawn {
        /// The runtime.
        runtime: String,
        /// Its subcommand.
        step: String,
        /// Why.
        source: std::io::Error,
    },
    /// It ran and failed.
    #[error("{runtime} {step}: {message}")]
    Failed {
        /// The runtime.
        runtime: String,
        /// Its subcommand.
        step: String,
        /// Its error output (or exit status).
        message: String,
    },
}

/// An OCI runtime binary and the state directory Berth gives it (`--root`), so Berth's
/// containers never mix with the system runc's.
#[derive(Debug, Clone)]
pub struct Runtime {
    /// `berth-runtime`, `runc`, `crun`, or the path given.
    pub name: String,
    /// The binary.
    pub path: PathBuf,
    /// Its `--root`.
    pub root: PathBuf,
}

impl Runtime {
    /// Resolve `--runtime` (`None`: berth-runtime). A bare name is looked up in `$PATH`
    /// (berth-runtime first beside berth); a path must be an executable file.
    pub fn resolve(name: Option<&str>, run_root: &Path) -> Result<Runtime, RuntimeError> {
        let name = name.unwrap_or(DEFAULT);
        let path = if name == DEFAULT {
            tools::find(DEFAULT, "BERTH_RUNTIME")?
        } else if name.contains('/') {
            Some(PathBuf::from(name))
                .filter(|p| tools::is_executable(p))
                .ok_or_else(|| unknown(name))?
        } else {
            tools::in_path(name).ok_or_else(|| unknown(name))?
        };
        Ok(Runtime::at(name, path, run_root))
    }

    /// The runtime `name` at `path`, as recorded for a container.
    pub fn at(name: &str, path: PathBuf, run_root: &Path) -> Runtime {
        let dir: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Runtime {
            name: name.to_owned(),
            root: run_root.join("runtime").join(dir),
            path,
        }
    }

    /// Whether the runtime keeps state for container `id` (runc, crun and berth-runtime keep
    /// it in `ROOT/ID`): only then is there anything for its `delete` to do.
    pub fn has_state(&self, id: &str) -> bool {
        self.root.join(id).exists()
    }

    /// `RUNTIME --root ROOT`, ready for a subcommand.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.path);
        cmd.arg("--root").arg(&self.root);
        cmd
    }

    /// Run `RUNTIME --root ROOT ARGS...` to completion; its stderr becomes the error.
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<(), RuntimeError> {
        let step = args
            .first()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .unwrap_or_default();
        let out = self
            .command()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|source| RuntimeError::Spawn {
                runtime: self.name.clone(),
                step: step.clone(),
                source,
            })?;
        if out.status.success() {
            return Ok(());
        }
        Err(RuntimeError::Failed {
            runtime: self.name.clone(),
            step,
            message: error_text(&out.stderr, out.status),
        })
    }
}

/// The runtime's error: its last non-empty stderr line (runc logs JSON or `level=error
/// msg="..."`; the message is what matters), else the exit status.
pub fn error_text(stderr: &[u8], status: std::process::ExitStatus) -> String {
    let text = String::from_utf8_lossy(stderr);
    let line = text.lines().rev().find(|l| !l.trim().is_empty());
    match line {
        Some(line) => runc_msg(line.trim()).unwrap_or(line.trim()).to_owned(),
        None => format!("failed with {status}"),
    }
}

/// A message relayed from the runtime (by berth-monitor): the `msg` of each runc-style log
/// line, the rest as it is.
pub fn clean_message(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| runc_msg(l).unwrap_or(l))
        .collect::<Vec<_>>()
        .join(": ")
}

/// The `msg` of a runc/crun log line, if it is one.
fn runc_msg(line: &str) -> Option<&str> {
    let rest = line.split_once("msg=\"")?.1;
    rest.rsplit_once('"').map(|(msg, _)| msg)
}

fn unknown(name: &str) -> RuntimeError {
    RuntimeError::Unknown {
        name: name.to_owned(),
    }
}
