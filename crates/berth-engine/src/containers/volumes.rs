//! Named and anonymous volumes: directories under `<data root>/volumes/<name>/_data`. A new
//! volume gets the image's content at its mount point, as docker copies it.

use std::ffi::CString;
use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::{lchown, symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{io_err, ContainerError};

/// The volumes of a data root.
pub struct Volumes {
    root: PathBuf,
}

impl Volumes {
    /// The volumes under `data_root`.
    pub fn new(data_root: &Path) -> Volumes {
        Volumes {
            root: data_root.join("volumes"),
        }
    }

    /// The content directory of volume `name`.
    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.root.join(name).join("_data")
    }

    /// Make volume `name` if it does not exist; returns its content directory and whether it
    /// was made now.
    pub fn ensure(&self, name: &str) -> Result<(PathBuf, bool), ContainerError> {
        valid_name(name)?;
        let data = self.data_dir(name);
        if data.is_dir() {
            return Ok((data, false));
        }
        fs::create_dir_all(&data).map_err(io_err("create volume", &data))?;
        Ok((data, true))
    }

    /// Remove volume `name` and its content.
    pub fn remove(&self, name: &str) -> Result<(), ContainerError> {
        let dir = self.root.join(name);
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(io_err("remove volume", &dir)(e))
            }
            _ => Ok(()),
        }
    }
}

/// docker's volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
fn valid_name(name: &str) -> Result<(), ContainerError> {
    let ok = name.len() >= 2
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        return Ok(());
    }
    Err(ContainerError::Unsupported(format!(
        "create {name}: \"{name}\" includes invalid characters for a local volume name, only \
         \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed"
    )))
}

/// Copy what the image has at `target` (resolved inside `rootfs`, never outside it) into the
/// new volume `data`, keeping modes and owners; nothing if the image has nothing there.
pub fn copy_up(rootfs: &Path, target: &str, data: &Path) -> Result<(), ContainerError> {
    let root = fs::File::open(rootfs).map_err(io_err("open", rootfs))?;
    let relative = target.trim_start_matches('/');
    let Ok(path) = CString::new(if relative.is_empty() { "." } else { relative }) else {
        return Ok(());
    };
    let flags = libc_flags();
    let opened = berth_sys::openat2(
        root.as_fd(),
        &path,
        flags,
        0,
        berth_sys::resolve::IN_ROOT | berth_sys::resolve::NO_MAGICLINKS,
    );
    let dir = match opened {
        Ok(fd) => fd,
        Err(_) => return Ok(()), // nothing there (or not a directory): an empty volume
    };
    let source = PathBuf::from(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&dir)
    ));
    let meta = fs::metadata(&source).map_err(io_err("stat", &source))?;
    lchown(data, Some(meta.uid()), Some(meta.gid())).map_err(io_err("chown", data))?;
    fs::set_permissions(data, fs::Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(io_err("chmod", data))?;
    copy_tree(&source, data)
}

fn libc_flags() -> i32 {
    // O_RDONLY | O_DIRECTORY | O_PATH would not let us read it; a plain directory open does.
    0o200000 // O_DIRECTORY
}

/// Copy the entries of directory `from` into `to` (symlinks as symlinks, never followed).
fn copy_tree(from: &Path, to: &Path) -> Result<(), ContainerError> {
    for entry in fs::read_dir(from).map_err(io_err("read", from))? {
        let entry = entry.map_err(io_err("read", from))?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let meta = fs::symlink_metadata(&src).map_err(io_err("stat", &src))?;
        let kind = meta.file_type();
        if kind.is_symlink() {
            let link = fs::read_link(&src).map_err(io_err("readlink", &src))?;
            symlink(&link, &dst).map_err(io_err("symlink", &dst))?;
        } else if kind.is_dir() {
            fs::create_dir(&dst).map_err(io_err("mkdir", &dst))?;
            copy_tree(&src, &dst)?;
        } else if kind.is_file() {
            fs::copy(&src, &dst).map_err(io_err("copy", &dst))?;
        } else {
            continue; // devices, fifos and sockets are not copied
        }
        // chown before chmod: chown clears the setuid and setgid bits.
        lchown(&dst, Some(meta.uid()), Some(meta.gid())).map_err(io_err("chown", &dst))?;
        if !kind.is_symlink() {
            fs::set_permissions(&dst, fs::Permissions::from_mode(meta.mode() & 0o7777))
                .map_err(io_err("chmod", &dst))?;
        }
    }
    Ok(())
}
