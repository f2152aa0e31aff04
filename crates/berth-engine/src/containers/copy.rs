//! `cp`: copy between a container's filesystem and the host. Every path inside the container
//! is resolved with openat2(RESOLVE_IN_ROOT) against the container's root (its process's
//! `/proc/PID/root` while it runs, so mounts are seen; the mounted rootfs otherwise), never by
//! joining strings: a symlink in the container cannot point the copy at the host.

use std::ffi::CString;
use std::fs::{self, File};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_sys::resolve::{IN_ROOT, NO_MAGICLINKS};

use super::{ContainerError, Engine};

type Result<T> = std::result::Result<T, ContainerError>;

/// Adds what was being done to an I/O error.
trait Context<T> {
    fn context(self, what: impl Into<String>) -> Result<T>;
    fn with_context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: Into<io::Error>> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl Into<String>) -> Result<T> {
        let what = what.into();
        self.map_err(|e| ContainerError::Copy {
            what,
            source: e.into(),
        })
    }

    fn with_context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| ContainerError::Copy {
            what: what(),
            source: e.into(),
        })
    }
}

const O_RDONLY: i32 = 0;
const O_DIRECTORY: i32 = 0o200000;
const O_NOFOLLOW: i32 = 0o400000;
const O_PATH: i32 = 0o10000000;
const O_NONBLOCK: i32 = 0o4000;

impl Engine {
    fn unmount_after_copy(&mut self, mounted: Option<String>) {
        if let Some(id) = mounted {
            let _ = self.images.containers.unmount(&id);
        }
    }

    /// `berth cp SOURCE DESTINATION`, one of them `CONTAINER:PATH`; `archive` keeps owners.
    pub fn copy(&mut self, source: &str, destination: &str, archive: bool) -> Result<()> {
        match (split(source), split(destination)) {
            (Some((c, src)), None) => {
                let (root, mounted) = container_root(self, c)?;
                let result = from_container(root.as_fd(), src, Path::new(destination));
                self.unmount_after_copy(mounted);
                result
            }
            (None, Some((c, dst))) => {
                let (root, mounted) = container_root(self, c)?;
                let result = to_container(Path::new(source), root.as_fd(), dst, archive);
                self.unmount_after_copy(mounted);
                result
            }
            (Some(_), Some(_)) => Err(ContainerError::Unsupported(
                "copying between containers is not supported".to_owned(),
            )),
            (None, None) => Err(ContainerError::Unsupported(
                "must specify at least one container source".to_owned(),
            )),
        }
    }
}

/// `NAME:PATH` → (NAME, PATH); a path with a `/` before the `:` is a host path.
fn split(arg: &str) -> Option<(&str, &str)> {
    let (name, path) = arg.split_once(':')?;
    if name.is_empty() || name.contains('/') {
        return None;
    }
    Some((name, path))
}

/// The container's root directory: its process's root while it runs (mounts included), else
/// its rootfs, mounted for the copy (and unmounted by the returned guard).
fn container_root(engine: &mut Engine, name: &str) -> Result<(File, Option<String>)> {
    let c = engine.get(name)?;
    if let Some(pid) = c.pid.filter(|_| c.status.is_live()) {
        let root = PathBuf::from(format!("/proc/{pid}/root"));
        let file = File::open(&root).with_context(|| format!("opening the root of {name}"))?;
        // The pid may have died and been reused since the record was read: the root is the
        // container's only if the process is still in the container's cgroup.
        let cgroup = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        if !cgroup.contains(&c.id) {
            return Err(ContainerError::NotRunning(c.id));
        }
        return Ok((file, None));
    }
    let merged = engine.images.containers.mount(&c.id)?;
    let file = File::open(&merged).with_context(|| format!("opening the root of {name}"));
    match file {
        Ok(file) => Ok((file, Some(c.id))),
        Err(e) => {
            let _ = engine.images.containers.unmount(&c.id);
            Err(e)
        }
    }
}

fn in_root(root: BorrowedFd<'_>, path: &str, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    let relative = path.trim_start_matches('/');
    let relative = if relative.is_empty() { "." } else { relative };
    let c = CString::new(relative).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    berth_sys::openat2(root, &c, flags, mode, IN_ROOT | NO_MAGICLINKS)
}

fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(fd)
    ))
}

fn base_name(path: &str) -> String {
    Path::new(path.trim_end_matches('/'))
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Container → host, with docker's rules for directories and `SRC/.`.
fn from_container(root: BorrowedFd<'_>, src: &str, dst: &Path) -> Result<()> {
    let fd = in_root(root, src, O_PATH, 0)
        .with_context(|| format!("Could not find the file {src} in container"))?;
    let meta = fs::metadata(fd_path(&fd)).context(format!("stat {src}"))?;
    let contents_only = src.ends_with("/.");
    let target = if dst.is_dir() && !contents_only {
        dst.join(base_name(src))
    } else {
        dst.to_path_buf()
    };
    if meta.is_dir() {
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).context(format!("mkdir {}", parent.display()))?;
        }
        host_dir(&target)?;
        copy_out_dir(root, src.trim_end_matches("/."), &target)
    } else {
        copy_out_file(root, src, &target)
    }
}

fn copy_out_file(root: BorrowedFd<'_>, src: &str, dst: &Path) -> Result<()> {
    // O_PATH first: opening a device or a FIFO the container made would act on it.
    let handle = in_root(root, src, O_PATH | O_NOFOLLOW, 0)
        .with_context(|| format!("opening {src} in the container"))?;
    let meta = fs::metadata(fd_path(&handle)).context(format!("stat {src}"))?;
    let stat = rustix::fs::fstat(&handle).context(format!("stat {src}"))?;
    let file_type = rustix::fs::FileType::from_raw_mode(stat.st_mode);
    replace_host_entry(dst)?;
    match file_type {
        rustix::fs::FileType::RegularFile => {
            // Reopened through the O_PATH fd: the same inode, now readable.
            let mut from = fs::OpenOptions::new()
                .read(true)
                .custom_flags(O_NONBLOCK)
                .open(fd_path(&handle))
                .context(format!("opening {src}"))?;
            let mut to = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(dst)
                .with_context(|| format!("creating {}", dst.display()))?;
            io::copy(&mut from, &mut to).context(format!("copying {src}"))?;
            to.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777))
                .context(format!("chmod {}", dst.display()))?;
        }
        rustix::fs::FileType::Symlink => {
            let target = readlink_in(root, src)?;
            std::os::unix::fs::symlink(target, dst)
                .context(format!("symlink {}", dst.display()))?;
        }
        _ => {} // devices, FIFOs and sockets are not copied
    }
    Ok(())
}

/// Make room for a new entry at host path `dst`: whatever is there (a file, or a symlink an
/// earlier copy wrote) is removed, never followed. A directory stays.
fn replace_host_entry(dst: &Path) -> Result<()> {
    match fs::symlink_metadata(dst) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => fs::remove_file(dst).context(format!("replacing {}", dst.display())),
        Err(_) => Ok(()),
    }
}

/// A host directory at `dst` (a symlink there is replaced, not followed).
fn host_dir(dst: &Path) -> Result<()> {
    replace_host_entry(dst)?;
    match fs::create_dir(dst) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
            Err(e).context(format!("mkdir {}", dst.display()))
        }
        _ => Ok(()),
    }
}

/// The target of the symlink `path` (its parent resolved in the root).
fn readlink_in(root: BorrowedFd<'_>, path: &str) -> Result<PathBuf> {
    let (parent, name) = path
        .trim_end_matches('/')
        .rsplit_once('/')
        .unwrap_or(("", path));
    let dir = in_root(root, parent, O_PATH | O_DIRECTORY, 0).context(format!("open {parent}"))?;
    rustix::fs::readlinkat(&dir, name, Vec::new())
        .map(|t| PathBuf::from(t.to_string_lossy().into_owned()))
        .context(format!("readlink {path}"))
}

fn copy_out_dir(root: BorrowedFd<'_>, src: &str, dst: &Path) -> Result<()> {
    let dir = in_root(root, src, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0)
        .context(format!("open {src}"))?;
    let entries: Vec<_> = fs::read_dir(fd_path(&dir))
        .and_then(|d| d.collect::<io::Result<_>>())
        .context(format!("read {src}"))?;
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let child = format!("{}/{name}", src.trim_end_matches('/'));
        let kind = entry.file_type().context(format!("stat {child}"))?;
        let target = dst.join(&name);
        if kind.is_dir() {
            host_dir(&target)?;
            copy_out_dir(root, &child, &target)?;
        } else if kind.is_file() || kind.is_symlink() {
            copy_out_file(root, &child, &target)?;
        }
    }
    Ok(())
}

/// Host → container.
fn to_container(src: &Path, root: BorrowedFd<'_>, dst: &str, archive: bool) -> Result<()> {
    let meta = fs::symlink_metadata(src).with_context(|| format!("stat {}", src.display()))?;
    let contents_only = src.to_string_lossy().ends_with("/.");
    let dst_is_dir = in_root(root, dst, O_PATH | O_DIRECTORY, 0).is_ok();
    let target = if dst_is_dir && !contents_only {
        format!(
            "{}/{}",
            dst.trim_end_matches('/'),
            src.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        )
    } else {
        dst.to_owned()
    };
    if meta.is_dir() {
        mkdir_in(root, &target, meta.mode())?;
        copy_in_dir(src, root, &target, archive)
    } else {
        copy_in_file(src, root, &target, archive)
    }
}

fn mkdir_in(root: BorrowedFd<'_>, path: &str, mode: u32) -> Result<()> {
    let (parent, name) = path
        .trim_end_matches('/')
        .rsplit_once('/')
        .unwrap_or(("", path));
    let dir = in_root(root, parent, O_PATH | O_DIRECTORY, 0)
        .with_context(|| format!("no directory {parent:?} in the container"))?;
    match rustix::fs::mkdirat(&dir, name, rustix::fs::Mode::from_raw_mode(mode & 0o7777)) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => Ok(()),
        Err(e) => Err(e).context(format!("mkdir {path} in the container")),
    }
}

fn copy_in_file(src: &Path, root: BorrowedFd<'_>, dst: &str, archive: bool) -> Result<()> {
    let meta = fs::symlink_metadata(src).context(format!("stat {}", src.display()))?;
    let (parent, name) = dst
        .trim_end_matches('/')
        .rsplit_once('/')
        .unwrap_or(("", dst));
    let dir = in_root(root, parent, O_PATH | O_DIRECTORY, 0)
        .with_context(|| format!("no directory {parent:?} in the container"))?;
    // Whatever the container has there is replaced, never opened: a device node or FIFO it
    // made would otherwise be written through (docker's untar does the same).
    match rustix::fs::statat(&dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st)
            if rustix::fs::FileType::from_raw_mode(st.st_mode)
                != rustix::fs::FileType::Directory =>
        {
            rustix::fs::unlinkat(&dir, name, rustix::fs::AtFlags::empty())
                .context(format!("replacing {dst} in the container"))?;
        }
        _ => {}
    }
    if meta.file_type().is_symlink() {
        let target = fs::read_link(src).context(format!("readlink {}", src.display()))?;
        rustix::fs::symlinkat(target.as_path(), &dir, name).context(format!("symlink {dst}"))?;
        return Ok(());
    }
    let flags = rustix::fs::OFlags::WRONLY
        | rustix::fs::OFlags::CREATE
        | rustix::fs::OFlags::EXCL
        | rustix::fs::OFlags::NOFOLLOW
        | rustix::fs::OFlags::CLOEXEC;
    let fd = rustix::fs::openat(
        &dir,
        name,
        flags,
        rustix::fs::Mode::from_raw_mode(meta.mode() & 0o777),
    )
    .with_context(|| format!("creating {dst} in the container"))?;
    let mut to = File::from(fd);
    File::open(src)
        .and_then(|mut from| io::copy(&mut from, &mut to))
        .context(format!("copying {}", src.display()))?;
    if archive {
        rustix::fs::fchown(
            &to,
            Some(rustix::fs::Uid::from_raw(meta.uid())),
            Some(rustix::fs::Gid::from_raw(meta.gid())),
        )
        .context(format!("chown {dst}"))?;
    }
    to.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777))
        .context(format!("chmod {dst}"))?;
    Ok(())
}

fn copy_in_dir(src: &Path, root: BorrowedFd<'_>, dst: &str, archive: bool) -> Result<()> {
    let entries = fs::read_dir(src).context(format!("read {}", src.display()))?;
    for entry in entries {
        let entry = entry.context(format!("read {}", src.display()))?;
        let child = format!(
            "{}/{}",
            dst.trim_end_matches('/'),
            entry.file_name().to_string_lossy()
        );
        let meta = entry.metadata().context(format!("stat {child}"))?;
        let kind = meta.file_type();
        if kind.is_dir() {
            mkdir_in(root, &child, meta.mode())?;
            copy_in_dir(&entry.path(), root, &child, archive)?;
        } else if kind.is_file() || kind.is_symlink() {
            copy_in_file(&entry.path(), root, &child, archive)?;
        }
    }
    Ok(())
}
