//! Mount points of the container store: is a directory mounted on, and unmounting it.

use std::io;
use std::path::Path;

use rustix::fs::{AtFlags, StatxAttributes, StatxFlags, CWD};
use rustix::mount::UnmountFlags;

/// Whether `path` is the root of a mount (`STATX_ATTR_MOUNT_ROOT`). A missing path (or one
/// under a non-directory) is not.
pub(crate) fn is_mount_root(path: &Path) -> io::Result<bool> {
    match rustix::fs::statx(CWD, path, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::empty()) {
        Ok(st) => Ok(st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT)),
        Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Unmount `path` if it is a mount point; `Ok(false)` if nothing was mounted there.
pub(crate) fn unmount_if_mounted(path: &Path) -> io::Result<bool> {
    if !is_mount_root(path)? {
        return Ok(false);
    }
    rustix::mount::unmount(path, UnmountFlags::NOFOLLOW)?;
    Ok(true)
}

/// Unmount `path` if mounted; when it is busy, detach it lazily (it leaves the namespace now and
/// goes away when its last user does).
pub(crate) fn force_unmount(path: &Path) -> io::Result<()> {
    match unmount_if_mounted(path) {
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
            rustix::mount::unmount(path, UnmountFlags::NOFOLLOW | UnmountFlags::DETACH)?;
            Ok(())
        }
        other => other.map(drop),
    }
}

/// Is `file` still what `path` names (same device and inode)? False once `path` is gone.
pub(crate) fn same_file(file: &std::fs::File, path: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}
