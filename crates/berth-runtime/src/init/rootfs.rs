//! The root filesystem: make it a mount, resolve paths inside it through fds, pivot into it,
//! then apply masked and read-only paths, a read-only root and the final propagation.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;

use super::{fail, Config, Role, Step, StepError};

/// An open directory that paths are resolved in, as if it were `/`.
pub struct Root {
    fd: OwnedFd,
}

/// What to create when a path is missing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// Nothing: a missing path is an error.
    Nothing,
    /// Directories all the way.
    Dir,
    /// Directories, then an empty file at the end (bind mounts of files, devices).
    File,
}

impl Root {
    /// Open `path` (a host path) as a root.
    pub fn open(path: &Path) -> io::Result<Root> {
        let fd = File::open(path)?;
        Ok(Root { fd: fd.into() })
    }

    /// Resolve `path` inside the root (symlinks and `..` cannot leave it) to an `O_PATH` fd,
    /// creating what is missing as asked. Creation goes component by component through fds.
    pub fn resolve(&self, path: &Path, create: Create) -> io::Result<OwnedFd> {
        self.resolve_depth(path, create, 0)
    }

    fn resolve_depth(&self, path: &Path, create: Create, depth: u32) -> io::Result<OwnedFd> {
        let rel = relative(path);
        match self.open_in_root(&rel) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) && create != Create::Nothing => {}
            other => return other,
        }
        let parts: Vec<&std::ffi::OsStr> = Path::new(&rel)
            .components()
            .filter_map(|c| match c {
                Component::Normal(p) => Some(p),
                _ => None,
            })
            .collect();
        let mut dir = self.open_in_root(Path::new("."))?;
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let sofar: std::path::PathBuf = parts[..=i].iter().collect();
            match self.open_in_root(&sofar) {
                Ok(fd) => {
                    dir = fd;
                    continue;
                }
                Err(e) if e.raw_os_error() != Some(libc::ENOENT) => return Err(e),
                Err(_) => {}
            }
            // A dangling symlink: create what it points to, inside the root (as runc's
            // securejoin does), by resolving its target plus the rest of the path afresh.
            if let Ok(link) = nix::fcntl::readlinkat(Some(dir.as_raw_fd()), *part) {
                if depth >= 40 {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let base: std::path::PathBuf =
                    Path::new("/").join(parts[..i].iter().collect::<std::path::PathBuf>());
                let rest: std::path::PathBuf = parts[i + 1..].iter().collect();
                let target = lexical(&base.join(link).join(rest));
                return self.resolve_depth(&target, create, depth + 1);
            }
            if last && create == Create::File {
                let file = nix::fcntl::openat(
                    Some(dir.as_raw_fd()),
                    *part,
                    OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o644),
                )?;
                let _ = nix::unistd::close(file);
            } else {
                match nix::sys::stat::mkdirat(
                    Some(dir.as_raw_fd()),
                    *part,
                    Mode::from_bits_truncate(0o755),
                ) {
                    Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            dir = self.open_in_root(&sofar)?;
        }
        Ok(dir)
    }

    fn open_in_root(&self, rel: &Path) -> io::Result<OwnedFd> {
        let c = CString::new(rel.as_os_str().as_bytes())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        berth_sys::openat2(
            self.fd.as_fd(),
            &c,
            libc::O_PATH,
            0,
            berth_sys::resolve::IN_ROOT,
        )
    }
}

/// `/proc/self/fd/N` for an fd: mount(2) through it acts on the file the fd resolved to.
pub fn fd_path(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// `..` and `.` removed lexically, clamped at `/` (for a dangling link's target).
fn lexical(path: &Path) -> std::path::PathBuf {
    let mut out = std::path::PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(p) => out.push(p),
            _ => {}
        }
    }
    out
}

fn relative(path: &Path) -> std::path::PathBuf {
    let rel: std::path::PathBuf = path
        .components()
        .filter(|c| matches!(c, Component::Normal(_) | Component::ParentDir))
        .collect();
    if rel.as_os_str().is_empty() {
        ".".into()
    } else {
        rel
    }
}

fn propagation(name: &str) -> Option<MsFlags> {
    Some(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

fn rootfs_propagation(config: &Config<'_>) -> Result<Option<MsFlags>, StepError> {
    let Some(name) = config
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().clone())
    else {
        return Ok(None);
    };
    propagation(&name).map(Some).ok_or_else(|| {
        fail(
            "set rootfs propagation",
            format!("unknown propagation {name:?}"),
        )
    })
}

/// Keep our mounts from reaching the host, then make the rootfs a mount point of its own.
pub fn prepare(config: &Config<'_>) -> Result<Root, StepError> {
    // runc's default: slave, so host mounts still propagate in but ours never leak out.
    let flags = match rootfs_propagation(config)? {
        Some(f) if f.contains(MsFlags::MS_SHARED) => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        Some(f) => f | MsFlags::MS_REC,
        None => MsFlags::MS_SLAVE | MsFlags::MS_REC,
    };
    mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
        .step(|| "make / a slave mount".into())?;
    // Make the parent mount private so pivot_root's requirements hold (runc does the same).
    let rootfs = config.rootfs.as_path();
    mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .step(|| format!("bind rootfs {} onto itself", rootfs.display()))?;
    Root::open(rootfs).step(|| format!("open rootfs {}", rootfs.display()))
}

/// Switch to the new root: `pivot_root`, or `MS_MOVE` + chroot with `--no-pivot`.
pub fn enter(config: &Config<'_>, root: Root) -> Result<(), StepError> {
    let no_pivot = matches!(config.role, Role::Init { no_pivot: true, .. });
    nix::unistd::fchdir(root.fd.as_raw_fd()).step(|| "chdir to rootfs".into())?;
    if no_pivot {
        mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
            .step(|| "move rootfs to /".into())?;
        nix::unistd::chroot(".").step(|| "chroot".into())?;
    } else {
        let old_root = File::open("/").step(|| "open old root".into())?;
        nix::unistd::pivot_root(".", ".").step(|| "pivot_root".into())?;
        // The old root is now stacked under the new one at "/"; detach it.
        nix::unistd::fchdir(old_root.as_raw_fd()).step(|| "chdir to old root".into())?;
        mount(
            None::<&str>,
            ".",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )
        .step(|| "make old root a slave".into())?;
        umount2(".", MntFlags::MNT_DETACH).step(|| "unmount old root".into())?;
    }
    nix::unistd::chdir("/").step(|| "chdir to /".into())?;
    Ok(())
}

/// After the pivot: masked paths, read-only paths, read-only root, final propagation.
pub fn finish(config: &Config<'_>) -> Result<(), StepError> {
    let linux = config.spec.linux().as_ref();
    let root = Root::open(Path::new("/")).step(|| "open /".into())?;
    for path in linux
        .and_then(|l| l.readonly_paths().as_ref())
        .into_iter()
        .flatten()
    {
        readonly_path(&root, path)?;
    }
    for path in linux
        .and_then(|l| l.masked_paths().as_ref())
        .into_iter()
        .flatten()
    {
        mask_path(&root, path)?;
    }
    if config.spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_BIND
                | MsFlags::MS_REMOUNT
                | MsFlags::MS_RDONLY
                | keep_flags(Path::new("/")),
            None::<&str>,
        )
        .step(|| "remount / read-only".into())?;
    }
    if let Some(flags) = rootfs_propagation(config)? {
        mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
            .step(|| "set rootfs propagation".into())?;
    }
    Ok(())
}

/// The lockable flags (nosuid, nodev, noexec, atime) a bind remount must repeat, or the kernel
/// refuses it in a user namespace.
pub fn keep_flags(path: &Path) -> MsFlags {
    let Ok(st) = nix::sys::statvfs::statvfs(path) else {
        return MsFlags::empty();
    };
    use nix::sys::statvfs::FsFlags;
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (from, to) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(from) {
            out |= to;
        }
    }
    out
}

fn readonly_path(root: &Root, path: &str) -> Result<(), StepError> {
    let fd = match root.resolve(Path::new(path), Create::Nothing) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(e).step(|| format!("resolve read-only path {path}")),
    };
    let target = fd_path(fd.as_fd());
    mount(
        Some(target.as_str()),
        target.as_str(),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .step(|| format!("bind read-only path {path}"))?;
    let fd = root
        .resolve(Path::new(path), Create::Nothing)
        .step(|| format!("resolve read-only path {path}"))?;
    berth_sys::mount_setattr(fd.as_fd(), true, berth_sys::mount_attr::RDONLY, 0)
        .step(|| format!("make {path} read-only"))
}

fn mask_path(root: &Root, path: &str) -> Result<(), StepError> {
    let fd = match root.resolve(Path::new(path), Create::Nothing) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(e).step(|| format!("resolve masked path {path}")),
    };
    let target = fd_path(fd.as_fd());
    let is_dir = nix::sys::stat::fstat(fd.as_raw_fd())
        .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
        .unwrap_or(false);
    if is_dir {
        mount(
            Some("tmpfs"),
            target.as_str(),
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&str>,
        )
    } else {
        mount(
            Some("/dev/null"),
            target.as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    }
    .step(|| format!("mask {path}"))
}

/// Parse a propagation option name (shared with the mounts step).
pub fn propagation_flag(name: &str) -> Option<MsFlags> {
    propagation(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_drops_root_and_dots() {
        assert_eq!(relative(Path::new("/")), Path::new("."));
        assert_eq!(relative(Path::new("/a/./b")), Path::new("a/b"));
        assert_eq!(relative(Path::new("/../x")), Path::new("../x"));
    }

    #[test]
    fn dangling_symlink_is_followed_inside_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("etc")).unwrap();
        std::os::unix::fs::symlink("/../../made/here", tmp.path().join("etc/evil")).unwrap();
        let root = Root::open(tmp.path()).unwrap();
        root.resolve(Path::new("/etc/evil/sub"), Create::Dir)
            .unwrap();
        assert!(tmp.path().join("made/here/sub").is_dir());
        assert!(!Path::new("/made").exists());
    }

    #[test]
    fn resolve_creates_inside_and_symlinks_stay_inside() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), tmp.path().join("escape")).unwrap();
        let mirror = tmp.path().join(outside.path().strip_prefix("/").unwrap());
        std::fs::create_dir_all(&mirror).unwrap();
        let root = Root::open(tmp.path()).unwrap();
        root.resolve(Path::new("/escape/sub/file"), Create::File)
            .unwrap();
        // The symlink's absolute target was taken relative to the root, not the host.
        let inside = mirror.join("sub/file");
        assert!(inside.is_file(), "{inside:?}");
        assert!(!outside.path().join("sub").exists());
    }
}
