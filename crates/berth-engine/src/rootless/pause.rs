//! The per-user pause process that holds the rootless user and mount namespaces.
//!
//! Like podman's: `$RUNTIME_DIR/pause.pid` names a process (comm `berth-pause`) that sleeps
//! forever in the namespaces; every `berth` joins them with setns. The file is guarded by
//! `pause.lock`. When the process is gone (killed, reboot), a running container's
//! `berth-monitor` still holds the old namespaces: the next `berth` joins those and leaves a new
//! pause process there, so the containers stay reachable. With none, a new namespace pair is
//! made.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_sys::Forked;

use super::subid;

/// The pause process's name in /proc/<pid>/comm.
const PAUSE_COMM: &str = "berth-pause";

/// Why the rootless namespaces could not be joined or made.
#[derive(Debug, thiserror::Error)]
pub enum PauseError {
    /// The runtime directory (pid file, lock) could not be used.
    #[error("rootless: {0}")]
    RuntimeDir(#[source] crate::paths::PathsError),
    /// A file of the pause process could not be read or written.
    #[error("rootless: {step} {path}: {source}")]
    File {
        /// What was being done.
        step: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The pause process could not be created.
    #[error("rootless: create the pause process: {0}")]
    Spawn(#[source] std::io::Error),
    /// The id maps could not be written.
    #[error("rootless: {tool} for pause process {pid} failed: {detail}")]
    Map {
        /// newuidmap, newgidmap, or the map file written directly.
        tool: String,
        /// The pause process.
        pid: i32,
        /// What the tool said.
        detail: String,
    },
    /// A namespace could not be joined.
    #[error("rootless: join the {ns} namespace of pid {pid}: {source}")]
    Join {
        /// `user` or `mnt`.
        ns: &'static str,
        /// The process holding it.
        pid: i32,
        /// The error.
        source: std::io::Error,
    },
    /// Becoming uid/gid 0 inside failed.
    #[error("rootless: become root in the user namespace: {0}")]
    Become(#[source] std::io::Error),
}

fn file_err<'a>(
    step: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> PauseError + 'a {
    move |source| PauseError::File {
        step,
        path: path.to_path_buf(),
        source,
    }
}

/// Join the pause process's namespaces, making it first when it is gone. Single-threaded only.
pub fn join_or_create() -> Result<(), PauseError> {
    let dir = crate::paths::user_run_dir().map_err(PauseError::RuntimeDir)?;
    let lock_path = dir.join("pause.lock");
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(file_err("open", &lock_path))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| file_err("lock", &lock_path)(e.into()))?;
    let pid_path = dir.join("pause.pid");
    let cwd = std::env::current_dir().ok();
    let pid = match live_pause(&pid_path) {
        Some(pid) => pid,
        None => {
            let pid = match orphaned_namespaces() {
                Some(holder) => adopt(holder)?,
                None => create()?,
            };
            write_pid(&pid_path, pid)?;
            pid
        }
    };
    join(pid)?;
    drop(lock);
    // setns into a mount namespace moves us to its root: go back where the user was.
    if let Some(cwd) = cwd {
        let _ = std::env::set_current_dir(cwd);
    }
    become_root()
}

/// The pid in `pid_file` when it is our live pause process (a killed one may linger as a
/// zombie, whose namespaces are gone).
fn live_pause(pid_file: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let has_namespaces = ["user", "mnt"]
        .iter()
        .all(|ns| std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).is_ok());
    (is_ours(pid, PAUSE_COMM) && has_namespaces).then_some(pid)
}

/// Is `pid` a process of this user named `comm`?
fn is_ours(pid: i32, comm: &str) -> bool {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let name = std::fs::read_to_string(proc.join("comm")).unwrap_or_default();
    let owner = std::fs::metadata(&proc).map(|m| m.uid()).ok();
    name.trim_end() == comm && owner == Some(rustix::process::getuid().as_raw())
}

/// A `berth-monitor` of this user still in Berth's namespaces (the pause process died under
/// running containers).
fn orphaned_namespaces() -> Option<i32> {
    let own_ns = std::fs::read_link("/proc/self/ns/user").ok()?;
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let ns = std::fs::read_link(e.path().join("ns/user")).ok()?;
        (ns != own_ns && is_ours(pid, "berth-monitor")).then_some(pid)
    })
}

/// Join `holder`'s namespaces and leave a new pause process in them.
fn adopt(holder: i32) -> Result<i32, PauseError> {
    let (user, mnt) = open_namespaces(holder)?;
    match berth_sys::fork().map_err(PauseError::Spawn)? {
        Forked::Child => {
            let joined =
                berth_sys::setns(user.as_fd(), nix::sched::CloneFlags::CLONE_NEWUSER.bits())
                    .and_then(|()| {
                        berth_sys::setns(mnt.as_fd(), nix::sched::CloneFlags::CLONE_NEWNS.bits())
                    });
            if joined.is_err() {
                berth_sys::exit_now(1);
            }
            pause_forever()
        }
        Forked::Parent { pid, .. } => {
            // The child joins on its own; wait until it has (its user namespace changes).
            let holders = std::fs::read_link(format!("/proc/{holder}/ns/user")).ok();
            for _ in 0..2000 {
                let theirs = std::fs::read_link(format!("/proc/{pid}/ns/user")).ok();
                if theirs.is_some() && theirs == holders {
                    return Ok(pid);
                }
                if theirs.is_none() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            reap(pid);
            create()
        }
    }
}

/// A new pause process in a new user and mount namespace, with its id maps written.
fn create() -> Result<i32, PauseError> {
    let flags = (nix::sched::CloneFlags::CLONE_NEWUSER.bits()
        | nix::sched::CloneFlags::CLONE_NEWNS.bits()) as u64;
    match berth_sys::clone3(flags, None).map_err(PauseError::Spawn)? {
        Forked::Child => pause_forever(),
        Forked::Parent { pid, .. } => match write_maps(pid) {
            Ok(()) => Ok(pid),
            Err(e) => {
                reap(pid);
                Err(e)
            }
        },
    }
}

fn reap(pid: i32) {
    let pid = nix::unistd::Pid::from_raw(pid);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(pid, None);
}

/// The pause process: detached, no fds, asleep until killed.
fn pause_forever() -> ! {
    let _ = nix::unistd::setsid();
    if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
        for fd in 0..3 {
            let _ = nix::unistd::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), fd);
        }
    }
    let _ = berth_sys::close_from(3);
    let _ = nix::sys::prctl::set_name(c"berth-pause");
    let _ = std::env::set_current_dir("/");
    loop {
        nix::unistd::pause();
    }
}

/// Write the pause process's uid and gid maps: newuidmap/newgidmap with the user's subordinate
/// ranges, or only the user's own ids (written directly) when it has none.
fn write_maps(pid: i32) -> Result<(), PauseError> {
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    let name = nix::unistd::User::from_uid(uid.into())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_default();
    let uids = subid::ranges(Path::new("/etc/subuid"), &name, uid);
    let gids = subid::ranges(Path::new("/etc/subgid"), &name, uid);
    if uids.is_empty() || gids.is_empty() {
        eprintln!(
            "WARN: no subuid/subgid ranges found for user {name:?} in /etc/subuid and \
             /etc/subgid: only your own uid and gid are mapped (as root), images owning files \
             by other ids cannot be used; add a range (e.g. `usermod --add-subuids \
             100000-165535 --add-subgids 100000-165535 {name}`) and kill the berth-pause process"
        );
        return write_single_maps(pid, uid, gid);
    }
    run_map_tool("newuidmap", pid, &subid::map_args(uid, &uids))?;
    run_map_tool("newgidmap", pid, &subid::map_args(gid, &gids))
}

fn run_map_tool(tool: &str, pid: i32, args: &[String]) -> Result<(), PauseError> {
    let fail = |detail: String| PauseError::Map {
        tool: tool.to_string(),
        pid,
        detail,
    };
    let out = Command::new(tool)
        .arg(pid.to_string())
        .args(args)
        .output()
        .map_err(|e| fail(format!("{e} (install the uidmap package)")))?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stderr);
        return Err(fail(text.trim().replace('\n', "; ")));
    }
    Ok(())
}

/// An unprivileged process may map its own ids (and, for gids, only after denying setgroups).
fn write_single_maps(pid: i32, uid: u32, gid: u32) -> Result<(), PauseError> {
    let write = |file: &str, text: String| {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, text).map_err(|e| PauseError::Map {
            tool: path,
            pid,
            detail: e.to_string(),
        })
    };
    write("uid_map", format!("0 {uid} 1\n"))?;
    write("setgroups", "deny".to_string())?;
    write("gid_map", format!("0 {gid} 1\n"))
}

/// Record the pause process's pid (tmp + rename).
fn write_pid(path: &Path, pid: i32) -> Result<(), PauseError> {
    let tmp = path.with_extension("pid.tmp");
    let mut f = File::create(&tmp).map_err(file_err("write", &tmp))?;
    f.write_all(pid.to_string().as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(file_err("write", &tmp))?;
    std::fs::rename(&tmp, path).map_err(file_err("rename", path))
}

fn open_namespaces(pid: i32) -> Result<(File, File), PauseError> {
    let open = |ns: &'static str| {
        File::open(format!("/proc/{pid}/ns/{ns}")).map_err(|source| PauseError::Join {
            ns,
            pid,
            source,
        })
    };
    Ok((open("user")?, open("mnt")?))
}

/// setns into the pause process's user, then mount, namespace.
fn join(pid: i32) -> Result<(), PauseError> {
    let (user, mnt) = open_namespaces(pid)?;
    let err = |ns| move |source| PauseError::Join { ns, pid, source };
    berth_sys::setns(user.as_fd(), nix::sched::CloneFlags::CLONE_NEWUSER.bits())
        .map_err(err("user"))?;
    berth_sys::setns(mnt.as_fd(), nix::sched::CloneFlags::CLONE_NEWNS.bits()).map_err(err("mnt"))
}

/// uid and gid 0 inside, without the host's supplementary groups (which show as nobody there;
/// dropping them is refused when setgroups is denied, and then they stay).
fn become_root() -> Result<(), PauseError> {
    let root_u = nix::unistd::Uid::from_raw(0);
    let root_g = nix::unistd::Gid::from_raw(0);
    let _ = nix::unistd::setgroups(&[]);
    nix::unistd::setresgid(root_g, root_g, root_g).map_err(|e| PauseError::Become(e.into()))?;
    nix::unistd::setresuid(root_u, root_u, root_u).map_err(|e| PauseError::Become(e.into()))
}
