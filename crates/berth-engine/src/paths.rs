//! Where Berth keeps its state: `/var/lib/berth` and `/run/berth` for root, the XDG data and
//! runtime directories for anyone else.

use std::path::PathBuf;

/// The default data root: `/var/lib/berth` for root, `$XDG_DATA_HOME/berth` (or
/// `~/.local/share/berth`) otherwise.
pub fn default_data_root() -> PathBuf {
    if rustix::process::geteuid().is_root() {
        return PathBuf::from("/var/lib/berth");
    }
    let xdg = std::env::var_os("XDG_DATA_HOME").map(PathBuf::from);
    let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share"));
    xdg.or(home)
        .unwrap_or_else(|| PathBuf::from("/tmp"))
        .join("berth")
}

/// The storage root (blobs, layers, images, container layers) inside a data root.
pub fn storage_root(data_root: &std::path::Path) -> PathBuf {
    data_root.join("storage")
}

/// Why a Berth directory could not be chosen.
#[derive(Debug, thiserror::Error)]
pub enum PathsError {
    /// A non-root user has no runtime directory to keep runtime state in.
    #[error(
        "XDG_RUNTIME_DIR is not set: a non-root user keeps Berth's runtime state in \
         $XDG_RUNTIME_DIR/berth (log in through a session that sets it, e.g. systemd-logind, \
         or export it)"
    )]
    NoRuntimeDir,
}

/// The default runtime root (state that does not survive a reboot): `/run/berth` for root,
/// `$XDG_RUNTIME_DIR/berth` otherwise. Unlike the data root there is no fallback: a directory
/// that outlives the user's session would keep stale pids and sockets.
pub fn default_run_root() -> Result<PathBuf, PathsError> {
    if rustix::process::geteuid().is_root() {
        return Ok(PathBuf::from("/run/berth"));
    }
    run_root_from(std::env::var_os("XDG_RUNTIME_DIR"))
}

/// The non-root rule of [`default_run_root`], given `$XDG_RUNTIME_DIR` (an empty value counts as
/// unset, as the XDG spec says of all its variables).
fn run_root_from(xdg_runtime_dir: Option<std::ffi::OsString>) -> Result<PathBuf, PathsError> {
    match xdg_runtime_dir {
        Some(dir) if !dir.is_empty() => Ok(PathBuf::from(dir).join("berth")),
        _ => Err(PathsError::NoRuntimeDir),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_root_is_under_xdg_runtime_dir() {
        let got = run_root_from(Some("/run/user/1000".into())).expect("a run root");
        assert_eq!(got, PathBuf::from("/run/user/1000/berth"));
    }

    #[test]
    fn run_root_without_xdg_runtime_dir_is_an_error() {
        for unset in [None, Some(std::ffi::OsString::new())] {
            let err = run_root_from(unset).expect_err("no run root");
            assert!(err.to_string().contains("XDG_RUNTIME_DIR is not set"));
        }
    }

    #[test]
    fn root_uses_run_berth() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: not root");
            return;
        }
        assert_eq!(
            default_run_root().expect("root"),
            PathBuf::from("/run/berth")
        );
    }
}
