//! Listening unix sockets at paths (the attach and console sockets): mode 0600, and paths too
//! long for `sockaddr_un` are bound through `/proc/self/fd/DIRFD/NAME`.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

/// Longest path `sockaddr_un` takes (108 bytes with the NUL).
const SUN_PATH_MAX: usize = 107;

/// Errors creating a listening socket.
#[derive(Debug, thiserror::Error)]
pub enum SockError {
    #[error("creating a socket: {0}")]
    Socket(#[source] std::io::Error),
    #[error("binding {path}: {source}")]
    Bind {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("listening on {path}: {source}")]
    Listen {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A non-blocking, close-on-exec socket of `kind` listening at `path` (a stale file there is
/// replaced), mode 0600.
pub fn listen(path: &Path, kind: SocketType) -> Result<OwnedFd, SockError> {
    let flags = SocketFlags::CLOEXEC | SocketFlags::NONBLOCK;
    let fd = rustix::net::socket_with(AddressFamily::UNIX, kind, flags, None)
        .map_err(|e| SockError::Socket(e.into()))?;
    let _ = std::fs::remove_file(path);
    let old = rustix::process::umask(Mode::from_raw_mode(0o177));
    let bound = bind(&fd, path);
    rustix::process::umask(old);
    bound.map_err(|source| SockError::Bind {
        path: path.to_owned(),
        source,
    })?;
    rustix::net::listen(&fd, 16).map_err(|e| SockError::Listen {
        path: path.to_owned(),
        source: e.into(),
    })?;
    Ok(fd)
}

fn bind(fd: &OwnedFd, path: &Path) -> std::io::Result<()> {
    if path.as_os_str().len() <= SUN_PATH_MAX {
        rustix::net::bind(fd, &SocketAddrUnix::new(path)?)?;
        return Ok(());
    }
    let (dir, name) = match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => (dir, name),
        _ => return Err(std::io::Error::from(rustix::io::Errno::NAMETOOLONG)),
    };
    let dir = rustix::fs::open(
        dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut short = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    short.push(name);
    rustix::net::bind(fd, &SocketAddrUnix::new(short)?)?;
    Ok(())
}
