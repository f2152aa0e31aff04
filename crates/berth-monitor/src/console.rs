//! The console socket: the runtime connects to it during `create --console-socket` and sends
//! the pty master over it (SCM_RIGHTS), as runc does.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::io::Errno;
use std::io::IoSliceMut;
use std::mem::MaybeUninit;

use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SocketFlags, SocketType};

use crate::unixsock::{self, SockError};

/// Errors receiving the pty master.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("console socket: {0}")]
    Listen(#[from] SockError),
    #[error("the runtime did not connect to the console socket")]
    NotConnected,
    #[error("console socket: {0}")]
    Io(#[source] std::io::Error),
    #[error("the runtime sent no pty master over the console socket")]
    NoFd,
}

/// A listening console socket; unlinked when dropped.
pub struct ConsoleSocket {
    listener: OwnedFd,
    path: PathBuf,
}

impl ConsoleSocket {
    /// Listen at `path`.
    pub fn bind(path: &Path) -> Result<ConsoleSocket, ConsoleError> {
        Ok(ConsoleSocket {
            listener: unixsock::listen(path, SocketType::STREAM)?,
            path: path.to_owned(),
        })
    }

    /// The socket's path, for the runtime's `--console-socket`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Take the pty master the runtime sent; call after `create` has exited, when the
    /// connection and its message are queued on the socket.
    pub fn receive(&self) -> Result<OwnedFd, ConsoleError> {
        let conn = match rustix::net::accept_with(&self.listener, SocketFlags::CLOEXEC) {
            Ok(conn) => conn,
            Err(Errno::AGAIN) => return Err(ConsoleError::NotConnected),
            Err(e) => return Err(ConsoleError::Io(e.into())),
        };
        receive_fd(&conn)
    }
}

/// One message from `conn`, and the first descriptor passed with it (SCM_RIGHTS).
fn receive_fd(conn: &OwnedFd) -> Result<OwnedFd, ConsoleError> {
    let mut buf = [0u8; 256];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut iov = [IoSliceMut::new(&mut buf)];
    rustix::net::recvmsg(
        conn.as_fd(),
        &mut iov,
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .map_err(|e| ConsoleError::Io(e.into()))?;
    let fd = control.drain().find_map(|msg| match msg {
        RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
        _ => None,
    });
    fd.ok_or(ConsoleError::NoFd)
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
