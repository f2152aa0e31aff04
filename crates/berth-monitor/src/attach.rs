//! The attach socket: SOCK_SEQPACKET, one frame per packet, first byte the frame type.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use rustix::io::Errno;
use rustix::net::{RecvFlags, SendAncillaryBuffer, SendFlags, SocketFlags, SocketType};

use crate::unixsock::{self, SockError};

/// Client → monitor: stdin bytes; empty closes the container's stdin.
pub const STDIN: u8 = 0;
/// Monitor → client: stdout bytes.
pub const STDOUT: u8 = 1;
/// Monitor → client: stderr bytes.
pub const STDERR: u8 = 2;
/// Client → monitor: `ROWS COLS`.
pub const RESIZE: u8 = 3;
/// Monitor → client: the exit code; the last frame.
pub const EXIT: u8 = 4;

/// Errors of the attach socket.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("attach socket: {0}")]
    Listen(#[from] SockError),
    #[error("accepting an attach client: {0}")]
    Accept(#[source] std::io::Error),
}

/// What a client sent.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    Stdin(&'a [u8]),
    CloseStdin,
    Resize {
        rows: u16,
        cols: u16,
    },
    /// The client went away (or failed); drop it.
    Hangup,
    /// Nothing to do: no packet after all, or one the monitor does not understand.
    Nothing,
}

/// The listening socket and its clients.
pub struct Attach {
    listener: OwnedFd,
    path: PathBuf,
    clients: Vec<OwnedFd>,
}

impl Attach {
    /// Listen at `path`.
    pub fn bind(path: &Path) -> Result<Attach, AttachError> {
        Ok(Attach {
            listener: unixsock::listen(path, SocketType::SEQPACKET)?,
            path: path.to_owned(),
            clients: Vec::new(),
        })
    }

    /// The listening socket (for epoll).
    pub fn listener(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }

    /// Accept one pending client, if any, returning it for epoll.
    pub fn accept(&mut self) -> Result<Option<BorrowedFd<'_>>, AttachError> {
        let flags = SocketFlags::CLOEXEC | SocketFlags::NONBLOCK;
        match rustix::net::accept_with(&self.listener, flags) {
            Ok(fd) => {
                self.clients.push(fd);
                Ok(self.clients.last().map(|fd| fd.as_fd()))
            }
            Err(Errno::AGAIN | Errno::INTR | Errno::CONNABORTED) => Ok(None),
            Err(e) => Err(AttachError::Accept(e.into())),
        }
    }

    /// Receive one frame from client `fd` into `buf`.
    pub fn read<'b>(&self, fd: RawFd, buf: &'b mut [u8]) -> Frame<'b> {
        let Some(client) = self.clients.iter().find(|c| c.as_raw_fd() == fd) else {
            return Frame::Nothing;
        };
        match rustix::net::recv(client, &mut *buf, RecvFlags::DONTWAIT) {
            Ok((0, _)) => Frame::Hangup,
            Ok((n, _)) => parse(&buf[..n]),
            Err(Errno::AGAIN | Errno::INTR) => Frame::Nothing,
            Err(_) => Frame::Hangup,
        }
    }

    /// Drop client `fd` (closing it also removes it from epoll).
    pub fn remove(&mut self, fd: RawFd) {
        self.clients.retain(|c| c.as_raw_fd() != fd);
    }

    /// Send one frame to every client; a client that cannot take it now is dropped.
    pub fn broadcast(&mut self, kind: u8, payload: &[u8]) {
        let kind = [kind];
        let iov = [IoSlice::new(&kind), IoSlice::new(payload)];
        let flags = SendFlags::DONTWAIT | SendFlags::NOSIGNAL;
        self.clients.retain(|c| {
            let mut control = SendAncillaryBuffer::default();
            rustix::net::sendmsg(c, &iov, &mut control, flags).is_ok()
        });
    }

    /// Number of attached clients.
    pub fn clients(&self) -> usize {
        self.clients.len()
    }

    /// Send the exit frame, then close every client and the socket (which is unlinked).
    pub fn finish(mut self, exit_code: i32) {
        // Clients still in the listen backlog get the exit frame too.
        while let Ok(Some(_)) = self.accept() {}
        self.broadcast(EXIT, exit_code.to_string().as_bytes());
    }
}

impl Drop for Attach {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Decode one packet.
pub fn parse(packet: &[u8]) -> Frame<'_> {
    match packet.split_first() {
        Some((&STDIN, [])) => Frame::CloseStdin,
        Some((&STDIN, data)) => Frame::Stdin(data),
        Some((&RESIZE, data)) => parse_size(data).unwrap_or(Frame::Nothing),
        _ => Frame::Nothing,
    }
}

fn parse_size(data: &[u8]) -> Option<Frame<'static>> {
    let text = std::str::from_utf8(data).ok()?;
    let mut it = text.split_ascii_whitespace();
    let rows = it.next()?.parse().ok()?;
    let cols = it.next()?.parse().ok()?;
    it.next().is_none().then_some(Frame::Resize { rows, cols })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames() {
        assert_eq!(parse(b"\0abc"), Frame::Stdin(b"abc"));
        assert_eq!(parse(b"\0"), Frame::CloseStdin);
        assert_eq!(parse(b"\x0324 80"), Frame::Resize { rows: 24, cols: 80 });
        assert_eq!(parse(b"\x03x 80"), Frame::Nothing);
        assert_eq!(parse(b"\x031 2 3"), Frame::Nothing);
        assert_eq!(parse(b"\x07"), Frame::Nothing);
    }
}
