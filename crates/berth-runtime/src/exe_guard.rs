//! Protection of the runtime binary against being overwritten from a container
//! (CVE-2019-5736 class), for containers that cannot use the exec trampoline
//! ([`crate::trampoline`]: user namespaces, seccomp profiles that might refuse it, builds for
//! architectures without one).
//!
//! The container's first process and every `exec`'d process are forks of this binary until they
//! execve. A hostile image can make that execve run `/proc/self/exe` again (a `#!/proc/self/exe`
//! entrypoint), and another process in the container can then open it through `/proc/PID/exe`
//! and write to it. The kernel opens that magic link through the mount the binary was executed
//! from, so we make sure that mount is read-only: if ours is not, we bind-mount the binary
//! read-only once (under /run, keyed by device and inode, so an upgrade gets a new one) and
//! re-exec through it. runc and crun copy the binary into a sealed memfd on every start instead;
//! the bind mount is made once and costs one execve per `create`/`run`/`exec`.
//!
//! Every one of them needs it, including `run` of a container alone in a new pid namespace (a
//! shortcut tried and withdrawn): its init can exec `/proc/self/exe`, run this binary as pid 1
//! with the container's dynamic loader and `LD_PRELOAD`, keep an fd to it and exec something
//! else; the binary is then no longer busy and the fd opens for writing.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::sys::statvfs::{statvfs, FsFlags};

/// Errors of the exe guard.
#[derive(Debug, thiserror::Error)]
#[error("protect runtime binary: {step}: {cause}")]
pub struct GuardError {
    step: String,
    cause: String,
}

fn err(step: impl Into<String>) -> impl FnOnce(nix::errno::Errno) -> GuardError {
    let step = step.into();
    move |e| GuardError {
        step,
        cause: crate::util::cause(&e.into()),
    }
}

const DIR: &str = "/run/berth-runtime-exe";

/// Re-exec from a read-only mount of this binary unless we already run from one. Returns only
/// when no re-exec is needed.
pub fn ensure_read_only_exe() -> Result<(), GuardError> {
    let exe = Path::new("/proc/self/exe");
    let fs = statvfs(exe).map_err(err("statvfs /proc/self/exe"))?;
    if fs.flags().contains(FsFlags::ST_RDONLY) {
        return Ok(());
    }
    let meta = std::fs::metadata(exe).map_err(|e| GuardError {
        step: "stat /proc/self/exe".into(),
        cause: crate::util::cause(&e),
    })?;
    let target = PathBuf::from(DIR).join(format!("{}-{}", meta.dev(), meta.ino()));
    if !is_read_only_copy(&target, &meta) {
        // Concurrent first runs must not stack two mounts: the lower one's root is the
        // binary's own dentry, and a mount on it would make the binary impossible to replace.
        let _lock = lock_dir()?;
        if !is_read_only_copy(&target, &meta) {
            remove_stale_copies();
            make_read_only_copy(&target)?;
        }
    }
    let path = CString::new(target.as_os_str().as_bytes()).map_err(|_| GuardError {
        step: "re-exec".into(),
        cause: "path contains NUL".into(),
    })?;
    let args: Vec<CString> = std::env::args_os()
        .map(|a: OsString| CString::new(a.as_bytes()).unwrap_or_default())
        .collect();
    // argv[0] stays what the caller used, so messages and `ps` look the same.
    let err = nix::unistd::execv(&path, &args).err();
    Err(GuardError {
        step: format!("re-exec {}", target.display()),
        cause: err
            .map(|e| crate::util::cause(&e.into()))
            .unwrap_or_default(),
    })
}

fn lock_dir() -> Result<nix::fcntl::Flock<std::fs::File>, GuardError> {
    let io = |step: &str| {
        let step = step.to_string();
        move |e: std::io::Error| GuardError {
            step,
            cause: crate::util::cause(&e),
        }
    };
    std::fs::create_dir_all(DIR).map_err(io(&format!("create {DIR}")))?;
    let dir = std::fs::File::open(DIR).map_err(io(&format!("open {DIR}")))?;
    nix::fcntl::Flock::lock(dir, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| err(format!("lock {DIR}"))(e))
}

fn is_read_only_copy(target: &Path, exe: &std::fs::Metadata) -> bool {
    let Ok(meta) = std::fs::metadata(target) else {
        return false;
    };
    let ro = statvfs(target).is_ok_and(|s| s.flags().contains(FsFlags::ST_RDONLY));
    ro && meta.dev() == exe.dev() && meta.ino() == exe.ino()
}

/// Detach the copies of binaries that have since been deleted or replaced (link count 0):
/// every new mount namespace copies each of these mounts, so they must not pile up. A process
/// still running from one keeps it (the detach is lazy).
fn remove_stale_copies() {
    let Ok(entries) = std::fs::read_dir(DIR) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if std::fs::metadata(&path).is_ok_and(|m| m.nlink() == 0) {
            let _ = nix::mount::umount2(&path, nix::mount::MntFlags::MNT_DETACH);
            let _ = std::fs::remove_file(&path);
        }
    }
}

fn make_read_only_copy(target: &Path) -> Result<(), GuardError> {
    // An empty file to bind over; a stale one (old binary) gets a new mount on top.
    let _ = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(target);
    mount(
        Some("/proc/self/exe"),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(err(format!("bind onto {}", target.display())))?;
    let flags = MsFlags::MS_BIND
        | MsFlags::MS_REMOUNT
        | MsFlags::MS_RDONLY
        | MsFlags::MS_NOSUID
        | MsFlags::MS_NODEV;
    mount(None::<&str>, target, None::<&str>, flags, None::<&str>)
        .map_err(err(format!("remount {} read-only", target.display())))
}
