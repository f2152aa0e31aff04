//! The client side of berth-monitor's attach socket (docs/monitor.md): relay the terminal's
//! stdin to the container and its output back, until the exit frame.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType, UnixAddr};

use super::{io_err, ContainerError};

/// Frame types.
const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const RESIZE: u8 = 3;
const EXIT: u8 = 4;

/// A socket path the kernel takes (at most 107 bytes): a longer one is reached through an
/// open descriptor of its directory, `/proc/self/fd/N/NAME`. The returned file keeps that
/// descriptor open while the path is used.
pub fn short_socket_path(
    path: &Path,
) -> Result<(std::path::PathBuf, Option<std::fs::File>), ContainerError> {
    if path.as_os_str().len() < 100 {
        return Ok((path.to_path_buf(), None));
    }
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path.file_name().unwrap_or_default();
    let file = std::fs::File::open(dir).map_err(io_err("open", dir))?;
    let short = Path::new("/proc/self/fd")
        .join(file.as_raw_fd().to_string())
        .join(name);
    Ok((short, Some(file)))
}

/// Connect to the attach socket at `path`.
pub fn connect(path: &Path) -> Result<OwnedFd, ContainerError> {
    let (short, _dir) = short_socket_path(path)?;
    let path = short.as_path();
    let fd = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| io_err("socket", path)(e.into()))?;
    let addr = UnixAddr::new(path).map_err(|e| io_err("attach", path)(e.into()))?;
    nix::sys::socket::connect(fd.as_raw_fd(), &addr)
        .map_err(|e| io_err("attach", path)(e.into()))?;
    Ok(fd)
}

/// What the relay does with the terminal.
pub struct Relay<'a> {
    /// Send stdin to the container (`-i`).
    pub stdin: bool,
    /// The container has a terminal: stdin is put in raw mode and window sizes are sent.
    pub tty: bool,
    /// Called with each signal this process gets (docker's sig-proxy), unless `tty`.
    pub on_signal: &'a mut dyn FnMut(i32),
}

/// Relay until the container exits; returns its exit code (or `None` if the monitor went
/// away without saying).
pub fn relay(sock: BorrowedFd<'_>, relay: Relay<'_>) -> Result<Option<i32>, ContainerError> {
    let stdin = std::io::stdin();
    let raw = if relay.tty {
        RawMode::enter(stdin.as_fd())
    } else {
        None
    };
    let mut signals = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ] {
        signals.add(s);
    }
    let _ = signals.thread_block();
    let sigfd = SignalFd::new(&signals).map_err(|e| io_err("signalfd", "-".as_ref())(e.into()))?;
    if relay.tty {
        send_size(sock, stdin.as_fd());
    }
    let mut stdin_open = relay.stdin;
    let on_signal = relay.on_signal;
    let mut buf = vec![0u8; 65536];
    let result = loop {
        let mut fds = vec![
            PollFd::new(sock, PollFlags::POLLIN),
            PollFd::new(sigfd.as_fd(), PollFlags::POLLIN),
        ];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => break Err(io_err("poll", "-".as_ref())(e.into())),
            Ok(_) => {}
        }
        let ready = |i: usize| {
            fds.get(i)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
        };
        let (sock_ready, sig_ready, in_ready) = (ready(0), ready(1), ready(2));
        if sig_ready {
            if let Ok(Some(info)) = sigfd.read_signal() {
                let sig = info.ssi_signo as i32;
                if sig == Signal::SIGWINCH as i32 {
                    if relay.tty {
                        send_size(sock, stdin.as_fd());
                    }
                } else if !relay.tty {
                    on_signal(sig);
                }
            }
        }
        if in_ready {
            buf[0] = STDIN;
            let n = rustix::io::read(stdin.as_fd(), &mut buf[1..]).unwrap_or(0);
            if n == 0 {
                stdin_open = false;
            }
            let _ = nix::sys::socket::send(
                sock.as_raw_fd(),
                &buf[..1 + n],
                nix::sys::socket::MsgFlags::empty(),
            );
        }
        if sock_ready {
            let n = nix::sys::socket::recv(
                sock.as_raw_fd(),
                &mut buf,
                nix::sys::socket::MsgFlags::empty(),
            )
            .unwrap_or(0);
            if n == 0 {
                break Ok(None);
            }
            match buf[0] {
                STDOUT => write_all(&mut std::io::stdout(), &buf[1..n]),
                STDERR => write_all(&mut std::io::stderr(), &buf[1..n]),
                EXIT => {
                    let code = std::str::from_utf8(&buf[1..n])
                        .ok()
                        .and_then(|t| t.trim().parse().ok());
                    break Ok(code);
                }
                _ => {}
            }
        }
    };
    drop(raw);
    let _ = signals.thread_unblock();
    result
}

fn write_all(out: &mut dyn Write, bytes: &[u8]) {
    let _ = out.write_all(bytes);
    let _ = out.flush();
}

fn send_size(sock: BorrowedFd<'_>, tty: BorrowedFd<'_>) {
    if let Ok(size) = rustix::termios::tcgetwinsize(tty) {
        let frame = format!("{}{} {}", RESIZE as char, size.ws_row, size.ws_col);
        let _ = nix::sys::socket::send(
            sock.as_raw_fd(),
            frame.as_bytes(),
            nix::sys::socket::MsgFlags::empty(),
        );
    }
}

/// The terminal in raw mode until dropped.
pub struct RawMode {
    fd: OwnedFd,
    saved: rustix::termios::Termios,
}

impl RawMode {
    /// Raw mode on `fd` if it is a terminal.
    pub fn enter(fd: BorrowedFd<'_>) -> Option<RawMode> {
        let saved = rustix::termios::tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        let fd = fd.try_clone_to_owned().ok()?;
        rustix::termios::tcsetattr(&fd, rustix::termios::OptionalActions::Now, &raw).ok()?;
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            &self.fd,
            rustix::termios::OptionalActions::Now,
            &self.saved,
        );
    }
}
