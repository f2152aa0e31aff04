//! Network namespaces pinned by a bind mount on a file, and running code inside them.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use netlink_packet_route::link::{LinkFlags, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

use crate::nl::Nl;

/// Errors of namespace handling; each names the namespace path and the step.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// Creating, opening or unlinking the pin file failed.
    #[error("netns {path}: {step}")]
    File {
        /// The pin file.
        path: PathBuf,
        /// What was being done.
        step: &'static str,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A namespace system call (unshare, setns, mount, umount) failed.
    #[error("netns {path}: {step}")]
    Sys {
        /// The pin file.
        path: PathBuf,
        /// What was being done.
        step: &'static str,
        /// The errno.
        #[source]
        source: Errno,
    },
    /// Bringing up loopback inside the new namespace failed.
    #[error("netns {path}: bring up lo")]
    Loopback {
        /// The pin file.
        path: PathBuf,
        /// The netlink error.
        #[source]
        source: io::Error,
    },
    /// Writing a sysctl inside the namespace failed.
    #[error("netns {path}: sysctl {key}")]
    Sysctl {
        /// The pin file.
        path: PathBuf,
        /// The sysctl key (dotted).
        key: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A worker thread panicked.
    #[error("netns {path}: worker thread panicked during {step}")]
    Panicked {
        /// The pin file.
        path: PathBuf,
        /// What the thread was doing.
        step: &'static str,
    },
}

/// A network namespace pinned at a path (a bind mount of an nsfs file), with an open fd on it.
#[derive(Debug)]
pub struct NetNs {
    path: PathBuf,
    fd: OwnedFd,
}

impl NetNs {
    /// New netns pinned at `path` (the file is created; parent dirs must exist); loopback is
    /// brought up inside. Done in a short-lived thread: unshare(CLONE_NEWNET), then bind-mount
    /// /proc/thread-self/ns/net onto `path`, so the calling thread never changes namespace.
    /// Fails if `path` already exists (call `remove_netns` first to reuse a leftover pin).
    /// The helper thread is joined before returning, so a single-threaded caller stays so.
    pub fn create(path: &Path) -> Result<NetNs, NetnsError> {
        let file_err = |step, source| NetnsError::File {
            path: path.into(),
            step,
            source,
        };
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| file_err("create pin file", e))?;
        let made = std::thread::scope(|s| {
            s.spawn(|| create_in_thread(path))
                .join()
                .unwrap_or_else(|_| {
                    Err(NetnsError::Panicked {
                        path: path.into(),
                        step: "create",
                    })
                })
        });
        if let Err(e) = made {
            // Best effort: the original error is the one worth reporting.
            let _ = remove_netns(path);
            return Err(e);
        }
        NetNs::open(path)
    }

    /// Open a pinned netns.
    pub fn open(path: &Path) -> Result<NetNs, NetnsError> {
        let file = File::open(path).map_err(|source| NetnsError::File {
            path: path.into(),
            step: "open",
            source,
        })?;
        Ok(NetNs {
            path: path.into(),
            fd: file.into(),
        })
    }

    /// The pin path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The namespace fd.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Run `f` on a thread that has setns'd into this netns (netlink sockets it opens live
    /// there, and /proc/thread-self/net and /proc/sys/net show this namespace).
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, NetnsError> {
        std::thread::scope(|s| {
            s.spawn(|| {
                setns(self.fd.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|source| {
                    NetnsError::Sys {
                        path: self.path.clone(),
                        step: "setns",
                        source,
                    }
                })?;
                Ok(f())
            })
            .join()
            .unwrap_or_else(|_| {
                Err(NetnsError::Panicked {
                    path: self.path.clone(),
                    step: "run",
                })
            })
        })
    }
}

/// Runs on a throwaway thread: new netns, pin it, bring lo up.
fn create_in_thread(path: &Path) -> Result<(), NetnsError> {
    let sys_err = |step, source| NetnsError::Sys {
        path: path.into(),
        step,
        source,
    };
    unshare(CloneFlags::CLONE_NEWNET).map_err(|e| sys_err("unshare", e))?;
    mount(
        Some("/proc/thread-self/ns/net"),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| sys_err("bind-mount", e))?;
    loopback_up().map_err(|source| NetnsError::Loopback {
        path: path.into(),
        source,
    })
}

/// lo is always ifindex 1 in a new namespace.
fn loopback_up() -> io::Result<()> {
    let mut msg = LinkMessage::default();
    msg.header.index = 1;
    msg.header.flags = LinkFlags::Up;
    msg.header.change_mask = LinkFlags::Up;
    Nl::open()?.request(RouteNetlinkMessage::SetLink(msg), 0)
}

/// Unmount (MNT_DETACH) and unlink a pinned netns; Ok if it is already gone.
pub fn remove_netns(path: &Path) -> Result<(), NetnsError> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
        Err(source) => {
            return Err(NetnsError::Sys {
                path: path.into(),
                step: "umount",
                source,
            })
        }
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(NetnsError::File {
            path: path.into(),
            step: "unlink",
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Write sysctls ("net.ipv4.ip_forward", "1") inside `ns`: /proc/sys/net is resolved against the
/// network namespace of the task that looks the path up, so a thread that has setns'd sees and
/// writes its namespace's values (verified by the tests). Keys may use '.' or '/'.
pub fn set_sysctls(ns: &NetNs, sysctls: &[(String, String)]) -> Result<(), NetnsError> {
    ns.run(|| {
        for (key, value) in sysctls {
            write_sysctl(key, value).map_err(|source| NetnsError::Sysctl {
                path: ns.path.clone(),
                key: key.clone(),
                source,
            })?;
        }
        Ok(())
    })?
}

/// Write one sysctl in the calling thread's namespaces.
pub(crate) fn write_sysctl(key: &str, value: &str) -> io::Result<()> {
    // "a/b.c/d" keeps dots (interface names like "eth0.5"); "a.b.c" uses dots as separators.
    let rel = if key.contains('/') {
        key.to_string()
    } else {
        key.replace('.', "/")
    };
    if rel
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "bad sysctl key",
        ));
    }
    let path = Path::new("/proc/sys").join(rel);
    OpenOptions::new()
        .write(true)
        .open(path)?
        .write_all(value.as_bytes())
}
