//! Finding Berth's helper binaries and the OCI runtimes.

use std::path::{Path, PathBuf};

/// A binary that could not be found.
#[derive(Debug, thiserror::Error)]
#[error("cannot find {name}: not in ${env}, beside {exe}, or in $PATH")]
pub struct NotFound {
    /// The binary.
    pub name: String,
    /// The environment variable that would name it.
    pub env: String,
    /// The running executable's path.
    pub exe: String,
}

/// `name`: `$env` if set, else beside the running executable (how cargo and packages lay
/// them out), else the first in `$PATH`.
pub fn find(name: &str, env: &str) -> Result<PathBuf, NotFound> {
    if let Some(path) = std::env::var_os(env).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().ok();
    let beside = exe.as_ref().and_then(|e| e.parent()).map(|d| d.join(name));
    // `cargo test` runs test binaries from target/debug/deps; the binaries are one up.
    let above = exe
        .as_ref()
        .and_then(|e| e.parent()?.parent())
        .map(|d| d.join(name));
    beside
        .into_iter()
        .chain(above)
        .find(|p| is_executable(p))
        .or_else(|| in_path(name))
        .ok_or_else(|| NotFound {
            name: name.to_owned(),
            env: env.to_owned(),
            exe: exe.map(|e| e.display().to_string()).unwrap_or_default(),
        })
}

/// The first `name` in `$PATH` that is an executable file.
pub fn in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

/// A regular file with an execute bit.
pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
