//! Where Berth keeps its state: `/var/lib/berth` and `/run/berth` for root, the XDG data and
//! runtime directories for anyone else.

use std::path::PathBuf;

/// The default data root: `/var/lib/berth` for root, `$XDG_DATA_HOME/berth` (or
/// `~/.local/share/berth`) otherwise.
pub fn default_data_root() -> PathBuf {
    if !crate::rootless::is_rootless() {
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
    /// The fallback runtime directory could not be made, or is not private to the user.
    #[error(
        "{path}: {reason} (Berth keeps a non-root user's runtime state in \
         $XDG_RUNTIME_DIR/berth, or in /tmp/berth-<uid> when XDG_RUNTIME_DIR is not set)"
    )]
    RunDir {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// The default runtime root (state that does not survive a reboot): `/run/berth` for root,
/// [`user_run_dir`] rootless.
pub fn default_run_root() -> Result<PathBuf, PathsError> {
    if !crate::rootless::is_rootless() {
        return Ok(PathBuf::from("/run/berth"));
    }
    user_run_dir()
}

/// A non-root user's runtime directory: `$XDG_RUNTIME_DIR/berth`, or `/tmp/berth-<uid>` when
/// XDG_RUNTIME_DIR is unset (made 0700, and refused unless the user owns it and no one else
/// may enter). Created when missing. `<uid>` is the host uid, also inside the user namespace.
pub fn user_run_dir() -> Result<PathBuf, PathsError> {
    let xdg = std::env::var_os("XDG_RUNTIME_DIR");
    let (dir, fallback) = run_root_from(xdg, crate::rootless::host_uid());
    let err = |reason: String| PathsError::RunDir {
        path: dir.clone(),
        reason,
    };
    let mut builder = std::fs::DirBuilder::new();
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.recursive(!fallback);
    match builder.create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(err(format!("create: {e}"))),
    }
    if fallback {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::symlink_metadata(&dir).map_err(|e| err(e.to_string()))?;
        let ours = meta.uid() == rustix::process::geteuid().as_raw();
        if !meta.is_dir() || !ours || meta.mode() & 0o077 != 0 {
            return Err(err("not a directory owned by you with mode 0700".into()));
        }
    }
    Ok(dir)
}

/// The rule of [`user_run_dir`], given `$XDG_RUNTIME_DIR` (an empty value counts as unset, as
/// the XDG spec says of all its variables) and the host uid: the directory, and whether it is
/// the /tmp fallback.
fn run_root_from(xdg_runtime_dir: Option<std::ffi::OsString>, uid: u32) -> (PathBuf, bool) {
    match xdg_runtime_dir {
        Some(dir) if !dir.is_empty() => (PathBuf::from(dir).join("berth"), false),
        _ => (PathBuf::from(format!("/tmp/berth-{uid}")), true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_root_is_under_xdg_runtime_dir() {
        let got = run_root_from(Some("/run/user/1000".into()), 1000);
        assert_eq!(got, (PathBuf::from("/run/user/1000/berth"), false));
    }

    #[test]
    fn run_root_without_xdg_runtime_dir_is_under_tmp() {
        for unset in [None, Some(std::ffi::OsString::new())] {
            let got = run_root_from(unset, 1000);
            assert_eq!(got, (PathBuf::from("/tmp/berth-1000"), true));
        }
    }

    #[test]
    fn root_uses_run_berth() {
        if crate::rootless::is_rootless() {
            eprintln!("skipped: not root");
            return;
        }
        assert_eq!(
            default_run_root().expect("root"),
            PathBuf::from("/run/berth")
        );
    }
}
