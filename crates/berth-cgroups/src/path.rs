//! Resolving the OCI `cgroupsPath` into one directory per hierarchy, as runc does.

use std::path::{Component, Path, PathBuf};

use crate::error::Error;
use crate::layout::Hierarchy;

/// The cgroup path relative to a hierarchy's mount, e.g. `/berth/abc`.
///
/// * absolute: relative to the hierarchy's root;
/// * relative: relative to the calling process's own cgroup in that hierarchy;
/// * empty: the container id, relative.
pub(crate) fn relative_to_mount(
    hierarchy: &Hierarchy,
    cgroups_path: &str,
    id: &str,
) -> Result<PathBuf, Error> {
    let wanted = if cgroups_path.is_empty() {
        id
    } else {
        cgroups_path
    };
    check(cgroups_path, wanted)?;
    let mut out = PathBuf::from("/");
    if !wanted.starts_with('/') {
        out.push(hierarchy.own.trim_start_matches('/'));
    }
    out.push(wanted.trim_start_matches('/'));
    Ok(out)
}

/// Joins the mount and the relative path into the directory.
pub(crate) fn directory(hierarchy: &Hierarchy, relative: &Path) -> PathBuf {
    hierarchy
        .mount
        .join(relative.strip_prefix("/").unwrap_or(relative))
}

/// No `..`, no empty result, no NUL: the path must stay inside the hierarchy.
fn check(given: &str, wanted: &str) -> Result<(), Error> {
    let invalid = |reason: &str| Error::InvalidPath {
        path: given.to_string(),
        reason: reason.to_string(),
    };
    if wanted.is_empty() {
        return Err(invalid("empty path and empty container id"));
    }
    if wanted.contains('\0') {
        return Err(invalid("contains a NUL byte"));
    }
    let path = Path::new(wanted);
    if path
        .components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return Err(invalid("must not contain `.` or `..` components"));
    }
    if !path.components().any(|c| matches!(c, Component::Normal(_))) {
        return Err(invalid("names the hierarchy root"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(own: &str) -> Hierarchy {
        Hierarchy {
            mount: "/sys/fs/cgroup/memory".into(),
            own: own.into(),
        }
    }

    #[test]
    fn absolute_relative_empty() {
        let abs = relative_to_mount(&h("/user.slice"), "/berth/c1", "c1").unwrap();
        assert_eq!(abs, Path::new("/berth/c1"));
        let rel = relative_to_mount(&h("/user.slice"), "berth/c1", "c1").unwrap();
        assert_eq!(rel, Path::new("/user.slice/berth/c1"));
        let empty = relative_to_mount(&h("/user.slice"), "", "c1").unwrap();
        assert_eq!(empty, Path::new("/user.slice/c1"));
        let root_own = relative_to_mount(&h("/"), "", "c1").unwrap();
        assert_eq!(root_own, Path::new("/c1"));
        assert_eq!(
            directory(&h("/"), &abs),
            Path::new("/sys/fs/cgroup/memory/berth/c1")
        );
    }

    #[test]
    fn rejects_escapes() {
        for bad in ["/a/../b", "../x", "/", "./x"] {
            assert!(relative_to_mount(&h("/"), bad, "c1").is_err(), "{bad}");
        }
        assert!(relative_to_mount(&h("/"), "", "").is_err());
    }
}
