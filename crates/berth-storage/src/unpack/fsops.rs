//! Filesystem operations inside a layer directory, all relative to directory fds.
//!
//! Parents are resolved with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS |
//! RESOLVE_NO_MAGICLINKS)`: no lookup can leave the layer, and a symlink anywhere on a parent
//! path is refused (`ELOOP`) rather than followed. The final component is then created or
//! changed with `*at` calls that do not follow symlinks.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use berth_sys::resolve;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timestamps};

use super::error::{errno, UnpackError};
use super::header::Meta;
use super::path::EntryPath;

const RESOLVE: u64 = resolve::IN_ROOT | resolve::NO_SYMLINKS | resolve::NO_MAGICLINKS;

/// Mode of directories created because an entry needed them but the layer did not list them.
const IMPLICIT_DIR_MODE: u32 = 0o755;

/// Open directory `path` inside `root` with `flags` (plus `O_DIRECTORY`).
pub fn open_dir(root: BorrowedFd<'_>, path: &EntryPath, flags: i32) -> io::Result<OwnedFd> {
    berth_sys::openat2(
        root,
        &path.to_cstring(),
        flags | libc::O_DIRECTORY,
        0,
        RESOLVE,
    )
}

/// Open (as `O_PATH`) the directory `dir` inside `root`, creating missing directories on the
/// way. `entry` names the tar entry for errors.
pub fn open_or_create_dir(
    root: BorrowedFd<'_>,
    dir: &EntryPath,
    entry: &str,
) -> Result<OwnedFd, UnpackError> {
    match open_dir(root, dir, libc::O_PATH) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        Err(e) => return Err(lookup_error(e, entry)),
    }
    let mut current =
        open_dir(root, &EntryPath::root(), libc::O_PATH).map_err(|e| lookup_error(e, entry))?;
    for component in dir.components() {
        let name = cstring(component, entry)?;
        match rustix::fs::mkdirat(
            &current,
            name.as_c_str(),
            Mode::from_raw_mode(IMPLICIT_DIR_MODE),
        ) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(errno(entry, "create parent directory")(e)),
        }
        current = berth_sys::openat2(
            current.as_fd(),
            &name,
            libc::O_PATH | libc::O_DIRECTORY,
            0,
            RESOLVE,
        )
        .map_err(|e| lookup_error(e, entry))?;
    }
    Ok(current)
}

/// Map a failed parent lookup to the error a user should see.
pub fn lookup_error(e: io::Error, entry: &str) -> UnpackError {
    let entry = entry.to_owned();
    match e.raw_os_error() {
        Some(libc::ELOOP) => UnpackError::ThroughSymlink { entry },
        Some(libc::ENOTDIR) => UnpackError::ParentNotDirectory { entry },
        Some(libc::EXDEV) => UnpackError::Escape { entry },
        _ => UnpackError::Io {
            entry,
            step: "resolve parent directory",
            source: e,
        },
    }
}

/// A path component as a C string.
pub fn cstring(component: &[u8], entry: &str) -> Result<CString, UnpackError> {
    CString::new(component).map_err(|_| UnpackError::BadName {
        entry: entry.to_owned(),
    })
}

/// What [`clear_for`] found at the name.
#[derive(Debug, PartialEq, Eq)]
pub enum Existing {
    /// Nothing was there.
    Cleared,
    /// Something was there and was removed.
    Removed,
    /// A directory is there and the new entry is a directory too: merge.
    KeepDir,
}

/// Make room for a new entry `name` in `parent`: later entries replace earlier ones, except
/// that a directory over a directory keeps (merges) the existing one. A non-empty directory is
/// never removed to make room for a non-directory.
pub fn clear_for(
    parent: BorrowedFd<'_>,
    name: &CStr,
    new_is_dir: bool,
    entry: &str,
) -> Result<Existing, UnpackError> {
    let stat = match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => stat,
        Err(rustix::io::Errno::NOENT) => return Ok(Existing::Cleared),
        Err(e) => return Err(errno(entry, "stat existing entry")(e)),
    };
    let is_dir = FileType::from_raw_mode(stat.st_mode) == FileType::Directory;
    if is_dir && new_is_dir {
        return Ok(Existing::KeepDir);
    }
    let flags = if is_dir {
        AtFlags::REMOVEDIR
    } else {
        AtFlags::empty()
    };
    rustix::fs::unlinkat(parent, name, flags).map_err(errno(entry, "replace existing entry"))?;
    Ok(Existing::Removed)
}

/// Set owner, then mode (chown clears setuid/setgid), of `name` in `parent` without following
/// a symlink. Symlinks get no mode: Linux ignores it.
pub fn set_owner_and_mode(
    parent: BorrowedFd<'_>,
    name: &CStr,
    meta: &Meta,
    is_symlink: bool,
    entry: &str,
) -> Result<(), UnpackError> {
    let uid = Some(rustix::fs::Uid::from_raw(meta.uid));
    let gid = Some(rustix::fs::Gid::from_raw(meta.gid));
    rustix::fs::chownat(parent, name, uid, gid, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(super::error::chown_err(entry, meta.uid, meta.gid))?;
    if !is_symlink {
        // `name` was just created by us and is not a symlink, so following cannot go anywhere else.
        rustix::fs::chmodat(
            parent,
            name,
            Mode::from_raw_mode(meta.mode),
            AtFlags::empty(),
        )
        .map_err(errno(entry, "chmod"))?;
    }
    Ok(())
}

/// The times an entry gets: atime = mtime = the header's mtime.
pub fn timestamps(meta: &Meta) -> Timestamps {
    let t = rustix::fs::Timespec {
        tv_sec: meta.mtime.0,
        tv_nsec: meta.mtime.1.into(),
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// Set the times of `name` in `parent` without following a symlink.
pub fn set_times(
    parent: BorrowedFd<'_>,
    name: &CStr,
    meta: &Meta,
    entry: &str,
) -> Result<(), UnpackError> {
    rustix::fs::utimensat(parent, name, &timestamps(meta), AtFlags::SYMLINK_NOFOLLOW)
        .map_err(errno(entry, "set times"))
}

/// Set extended attributes on an open (non-`O_PATH`) fd.
pub fn set_xattrs_fd(
    fd: BorrowedFd<'_>,
    xattrs: &[(String, Vec<u8>)],
    entry: &str,
) -> Result<(), UnpackError> {
    for (name, value) in xattrs {
        rustix::fs::fsetxattr(fd, name.as_str(), value, rustix::fs::XattrFlags::empty())
            .map_err(errno(entry, "set xattr"))?;
    }
    Ok(())
}

/// Set extended attributes on a node that cannot be opened for I/O (device, fifo, symlink):
/// open it `O_PATH | O_NOFOLLOW` and go through its `/proc/self/fd` link, which names exactly
/// that inode.
pub fn set_xattrs_node(
    parent: BorrowedFd<'_>,
    name: &CStr,
    xattrs: &[(String, Vec<u8>)],
    entry: &str,
) -> Result<(), UnpackError> {
    if xattrs.is_empty() {
        return Ok(());
    }
    let fd = rustix::fs::openat(
        parent,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno(entry, "open for xattrs"))?;
    let proc_path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
    for (xname, value) in xattrs {
        rustix::fs::setxattr(
            proc_path.as_str(),
            xname.as_str(),
            value,
            rustix::fs::XattrFlags::empty(),
        )
        .map_err(errno(entry, "set xattr"))?;
    }
    Ok(())
}
