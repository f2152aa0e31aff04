//! The parent/child sync channel: a `SOCK_SEQPACKET` socketpair carrying one message per packet.
//!
//! The order of messages is the table in `docs/architecture.md`. The parent checks it: any
//! message it does not expect at a point is a protocol error.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType,
};

/// Errors of the sync channel.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A send or receive failed.
    #[error("sync channel {op}: {source}")]
    Io {
        /// "send" or "receive".
        op: &'static str,
        /// The cause.
        source: io::Error,
    },
    /// The other side closed the channel without a final message.
    #[error("container process exited before it reported its state")]
    Closed,
    /// A malformed or unexpected message.
    #[error("sync protocol: {0}")]
    Protocol(String),
}

impl SyncError {
    /// The other side is gone (EPIPE or ECONNRESET on send, or a closed channel).
    pub fn is_peer_gone(&self) -> bool {
        match self {
            SyncError::Closed => true,
            SyncError::Io { source, .. } => matches!(
                source.raw_os_error(),
                Some(libc::EPIPE) | Some(libc::ECONNRESET)
            ),
            SyncError::Protocol(_) => false,
        }
    }
}

impl From<SyncError> for io::Error {
    fn from(e: SyncError) -> io::Error {
        match e {
            SyncError::Io { source, .. } => source,
            other => io::Error::other(other.to_string()),
        }
    }
}

/// A message on the channel. Child → parent unless noted.
#[derive(Debug, PartialEq, Eq)]
pub enum Msg {
    /// Parent → child: you are in your cgroup and your id maps are written; go on.
    Go,
    /// Child (slow path) → parent: I unshared a user namespace, write my id maps.
    MapRequest,
    /// Parent → child: maps are written.
    Mapped,
    /// Intermediate child → parent: the container's init has this pid (second fork).
    Pid(i32),
    /// Child → parent: run `prestart` and `createRuntime` hooks now.
    RuntimeHooks,
    /// Parent → child: hooks done.
    HooksDone,
    /// Child → parent: everything is set up; I wait for `start` on the exec fifo.
    Ready,
    /// Child → parent (exec only): the process is about to exec.
    Execing,
    /// Child → parent: setup is done, put me in my cgroup now (create without
    /// `CLONE_INTO_CGROUP`: what setup touched is then not charged to the container).
    Place,
    /// Parent → child: you are in your cgroup.
    Placed,
    /// Parent → child (v1/hybrid `create`): your cgroup now exists and is configured. The
    /// parent makes it while the child sets up, so the child waits for this before it first
    /// needs the cgroup (binding it at a `cgroup` mount, hooks, or `Place`).
    CgroupReady,
    /// Child → parent: a setup step failed; `message` is `step: cause`.
    Error(String),
    /// Exec trampoline → parent: its execve of the container's program failed with this errno.
    ExecFailed(i32),
}

const TAG_GO: u8 = 1;
const TAG_MAP_REQUEST: u8 = 2;
const TAG_MAPPED: u8 = 3;
const TAG_PID: u8 = 4;
const TAG_RUNTIME_HOOKS: u8 = 5;
const TAG_HOOKS_DONE: u8 = 6;
const TAG_READY: u8 = 7;
const TAG_EXECING: u8 = 8;
const TAG_ERROR: u8 = 9;
const TAG_PLACE: u8 = 10;
const TAG_PLACED: u8 = 11;
const TAG_CGROUP_READY: u8 = 12;
/// Sent by the exec trampoline (trampoline/x86_64.S, which hard-codes it) when its execve fails.
const TAG_EXEC_FAILED: u8 = 13;

/// One end of the channel.
pub struct Channel {
    fd: OwnedFd,
}

impl AsRawFd for Channel {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

/// Create both ends (close-on-exec, so neither leaks into the container's process).
pub fn pair() -> Result<(Channel, Channel), SyncError> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| SyncError::Io {
        op: "create",
        source: e.into(),
    })?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    /// Send a message.
    pub fn send(&self, msg: &Msg) -> Result<(), SyncError> {
        let mut buf = [0u8; 4096];
        let len = encode(msg, &mut buf);
        let iov = [io::IoSlice::new(&buf[..len])];
        sendmsg::<()>(self.fd.as_raw_fd(), &iov, &[], MsgFlags::MSG_NOSIGNAL, None).map_err(
            |e| SyncError::Io {
                op: "send",
                source: e.into(),
            },
        )?;
        Ok(())
    }

    /// Receive the next message; `Err(Closed)` when the other side is gone.
    pub fn recv(&self) -> Result<Msg, SyncError> {
        let mut buf = [0u8; 4096];
        let mut iov = [io::IoSliceMut::new(&mut buf)];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = loop {
            match recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other,
            }
        }
        .map_err(|e| SyncError::Io {
            op: "receive",
            source: e.into(),
        })?;
        // Any fd attached to a message we do not expect one for is closed right away.
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                if let ControlMessageOwned::ScmRights(fds) = c {
                    for fd in fds {
                        let _ = nix::unistd::close(fd);
                    }
                }
            }
        }
        let len = msg.bytes;
        if len == 0 {
            return Err(SyncError::Closed);
        }
        decode(&buf[..len])
    }
}

fn encode(msg: &Msg, buf: &mut [u8; 4096]) -> usize {
    let (tag, payload): (u8, &[u8]) = match msg {
        Msg::Go => (TAG_GO, &[]),
        Msg::MapRequest => (TAG_MAP_REQUEST, &[]),
        Msg::Mapped => (TAG_MAPPED, &[]),
        Msg::Pid(pid) => {
            buf[1..5].copy_from_slice(&pid.to_le_bytes());
            buf[0] = TAG_PID;
            return 5;
        }
        Msg::RuntimeHooks => (TAG_RUNTIME_HOOKS, &[]),
        Msg::HooksDone => (TAG_HOOKS_DONE, &[]),
        Msg::Ready => (TAG_READY, &[]),
        Msg::Execing => (TAG_EXECING, &[]),
        Msg::Place => (TAG_PLACE, &[]),
        Msg::Placed => (TAG_PLACED, &[]),
        Msg::CgroupReady => (TAG_CGROUP_READY, &[]),
        Msg::ExecFailed(errno) => {
            buf[0] = TAG_EXEC_FAILED;
            buf[1..5].copy_from_slice(&errno.to_le_bytes());
            return 5;
        }
        Msg::Error(text) => (TAG_ERROR, text.as_bytes()),
    };
    let n = payload.len().min(buf.len() - 1);
    buf[0] = tag;
    buf[1..1 + n].copy_from_slice(&payload[..n]);
    1 + n
}

fn decode(bytes: &[u8]) -> Result<Msg, SyncError> {
    let (tag, payload) = bytes
        .split_first()
        .ok_or_else(|| SyncError::Protocol("empty message".into()))?;
    Ok(match *tag {
        TAG_GO => Msg::Go,
        TAG_MAP_REQUEST => Msg::MapRequest,
        TAG_MAPPED => Msg::Mapped,
        TAG_PID => {
            let raw: [u8; 4] = payload
                .try_into()
                .map_err(|_| SyncError::Protocol("bad pid message".into()))?;
            Msg::Pid(i32::from_le_bytes(raw))
        }
        TAG_RUNTIME_HOOKS => Msg::RuntimeHooks,
        TAG_HOOKS_DONE => Msg::HooksDone,
        TAG_READY => Msg::Ready,
        TAG_EXECING => Msg::Execing,
        TAG_PLACE => Msg::Place,
        TAG_PLACED => Msg::Placed,
        TAG_CGROUP_READY => Msg::CgroupReady,
        TAG_ERROR => Msg::Error(String::from_utf8_lossy(payload).into_owned()),
        TAG_EXEC_FAILED => {
            let raw: [u8; 4] = payload
                .try_into()
                .map_err(|_| SyncError::Protocol("bad exec failure message".into()))?;
            Msg::ExecFailed(i32::from_le_bytes(raw))
        }
        other => return Err(SyncError::Protocol(format!("unknown message tag {other}"))),
    })
}

/// Expect exactly `want` next; an `Error` from the child becomes `Err` carrying its text.
pub fn expect(channel: &Channel, want: Msg) -> Result<(), ChildFailed> {
    match channel.recv().map_err(ChildFailed::Sync)? {
        Msg::Error(text) => Err(ChildFailed::Step(text)),
        got if got == want => Ok(()),
        got => Err(ChildFailed::Sync(SyncError::Protocol(format!(
            "expected {want:?}, got {got:?}"
        )))),
    }
}

/// The child failed: either it said why (`step: cause`) or the channel broke.
#[derive(Debug, thiserror::Error)]
pub enum ChildFailed {
    /// The child's own report, `step: cause`.
    #[error("{0}")]
    Step(String),
    /// The channel failed.
    #[error(transparent)]
    Sync(#[from] SyncError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_round_trips() {
        let (a, b) = pair().unwrap();
        for msg in [
            Msg::Go,
            Msg::MapRequest,
            Msg::Mapped,
            Msg::Pid(4242),
            Msg::RuntimeHooks,
            Msg::HooksDone,
            Msg::Ready,
            Msg::Execing,
            Msg::Place,
            Msg::Placed,
            Msg::CgroupReady,
            Msg::Error("mount proc to /proc: permission denied".into()),
            Msg::ExecFailed(libc::ENOEXEC),
        ] {
            a.send(&msg).unwrap();
            assert_eq!(b.recv().unwrap(), msg);
        }
        drop(a);
        assert!(matches!(b.recv(), Err(SyncError::Closed)));
    }
}
