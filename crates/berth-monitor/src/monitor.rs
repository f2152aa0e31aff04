//! The run loop: one epoll set over the signalfd, the container's outputs, its stdin, the
//! attach socket and its clients, until the container's process has exited and its output is
//! drained.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::PollTimeout;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::attach::{self, Attach, Frame};
use crate::create::ContainerIo;
use crate::logs::{LogWriter, Stream};
use crate::stdin::Stdin;

/// Bytes read from an output at a time (so no record exceeds the 16 KiB line limit).
const CHUNK: usize = crate::logs::MAX_LINE;
/// Largest client frame taken whole (type byte included).
pub const MAX_FRAME: usize = 64 * 1024;
/// Draining ends when the outputs have been quiet this long...
const DRAIN_IDLE: u16 = 100;
/// ...or after this long in all (a process outside the container's pid namespace may still
/// hold the pipes open).
const DRAIN_MAX: Duration = Duration::from_secs(2);

const TOKEN_SIGNALS: u64 = 0;
const TOKEN_LISTENER: u64 = 1;
const TOKEN_STDOUT: u64 = 2;
const TOKEN_STDERR: u64 = 3;
const TOKEN_STDIN: u64 = 4;
const TOKEN_CLIENT: u64 = 16;

/// The signals the monitor takes through its signalfd: SIGCHLD, and those it must survive.
const SIGNALS: [Signal; 5] = [
    Signal::SIGCHLD,
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGQUIT,
];

/// Errors of the run loop.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("blocking signals: {0}")]
    Signals(#[source] Errno),
    #[error("epoll: {0}")]
    Epoll(#[source] Errno),
    #[error(transparent)]
    Attach(#[from] attach::AttachError),
}

/// Block [`SIGNALS`] and return a signalfd for them. Call before any child is started; the
/// runtime and the exit command get a clean mask (std's `Command` resets it).
pub fn block_signals() -> Result<SignalFd, MonitorError> {
    let mut set = SigSet::empty();
    for s in SIGNALS {
        set.add(s);
    }
    set.thread_block().map_err(MonitorError::Signals)?;
    SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(MonitorError::Signals)
}

/// Everything the loop watches.
pub struct Monitor {
    epoll: Epoll,
    signals: SignalFd,
    attach: Attach,
    log: LogWriter,
    outputs: [Option<File>; 2],
    stdin: Option<Stdin>,
    stdin_polled: bool,
    tty: Option<OwnedFd>,
    pid: Pid,
    status: Option<WaitStatus>,
    buf: Vec<u8>,
}

impl Monitor {
    /// Watch container `pid` with `io`.
    pub fn new(
        signals: SignalFd,
        attach: Attach,
        log: LogWriter,
        io: ContainerIo,
        pid: Pid,
    ) -> Result<Monitor, MonitorError> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(MonitorError::Epoll)?;
        let add = |fd: std::os::fd::BorrowedFd<'_>, token| {
            epoll
                .add(fd, EpollEvent::new(EpollFlags::EPOLLIN, token))
                .map_err(MonitorError::Epoll)
        };
        add(signals.as_fd(), TOKEN_SIGNALS)?;
        add(attach.listener(), TOKEN_LISTENER)?;
        if let Some(f) = &io.stdout {
            add(f.as_fd(), TOKEN_STDOUT)?;
        }
        if let Some(f) = &io.stderr {
            add(f.as_fd(), TOKEN_STDERR)?;
        }
        let tty = io.tty.is_some();
        Ok(Monitor {
            epoll,
            signals,
            attach,
            log,
            outputs: [io.stdout, io.stderr],
            stdin: io.stdin.map(|f| Stdin::new(f, tty)),
            stdin_polled: false,
            tty: io.tty,
            pid,
            status: None,
            buf: vec![0; MAX_FRAME.max(CHUNK)],
        })
    }

    /// Serve until the container's process has exited and its output is drained; returns its
    /// wait status.
    pub fn run(&mut self) -> Result<WaitStatus, MonitorError> {
        self.reap();
        let status = loop {
            if let Some(status) = self.status {
                break status;
            }
            self.poll(PollTimeout::NONE)?;
        };
        self.drain()?;
        Ok(status)
    }

    /// Send the exit frame, close the attach socket, and consume pending signals (so a
    /// SIGTERM sent to the monitor does not kill the exit command it becomes).
    pub fn finish(self, exit_code: i32) {
        let Monitor {
            attach, signals, ..
        } = self;
        attach.finish(exit_code);
        while let Ok(Some(_)) = signals.read_signal() {}
    }

    /// Read what the outputs still hold once the process has exited: until every one is at
    /// EOF (EIO for a pty), quiet for [`DRAIN_IDLE`] ms, or [`DRAIN_MAX`] has passed.
    fn drain(&mut self) -> Result<(), MonitorError> {
        let start = Instant::now();
        while self.outputs.iter().any(Option::is_some) && start.elapsed() < DRAIN_MAX {
            if self.poll(PollTimeout::from(DRAIN_IDLE))? == 0 {
                break;
            }
        }
        Ok(())
    }

    /// Wait for events and handle them; returns how many were output events.
    fn poll(&mut self, timeout: PollTimeout) -> Result<usize, MonitorError> {
        let mut events = [EpollEvent::empty(); 16];
        let n = match self.epoll.wait(&mut events, timeout) {
            Ok(n) => n,
            Err(Errno::EINTR) => 0,
            Err(e) => return Err(MonitorError::Epoll(e)),
        };
        let mut outputs = 0;
        for ev in &events[..n] {
            match ev.data() {
                TOKEN_SIGNALS => self.signals(),
                TOKEN_LISTENER => self.accept()?,
                TOKEN_STDOUT => outputs += self.output(0),
                TOKEN_STDERR => outputs += self.output(1),
                TOKEN_STDIN => self.stdin_ready(ev.events()),
                token => self.client((token - TOKEN_CLIENT) as RawFd),
            }
        }
        Ok(outputs)
    }

    fn signals(&mut self) {
        while let Ok(Some(_)) = self.signals.read_signal() {}
        self.reap();
    }

    /// Reap every child that has exited (the monitor is a subreaper); note the container's.
    fn reap(&mut self) {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => break,
                Ok(st @ (WaitStatus::Exited(pid, _) | WaitStatus::Signaled(pid, _, _)))
                    if pid == self.pid =>
                {
                    self.status = Some(st);
                }
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => break,
            }
        }
    }

    fn accept(&mut self) -> Result<(), MonitorError> {
        if let Some(client) = self.attach.accept()? {
            let token = TOKEN_CLIENT + client.as_raw_fd() as u64;
            let event = EpollEvent::new(EpollFlags::EPOLLIN, token);
            if self.epoll.add(client, event).is_err() {
                let fd = client.as_raw_fd();
                self.attach.remove(fd);
            }
        }
        Ok(())
    }

    /// Read one chunk of output `i` (0 stdout or the pty, 1 stderr): log it and send it to
    /// the clients. EOF or an error (EIO: the pty's other side is closed) ends the output.
    fn output(&mut self, i: usize) -> usize {
        let Some(file) = &mut self.outputs[i] else {
            return 0;
        };
        let buf = &mut self.buf[..CHUNK];
        match file.read(buf) {
            Ok(0) => self.outputs[i] = None,
            Ok(n) => {
                let (stream, kind) = match i {
                    0 => (Stream::Stdout, attach::STDOUT),
                    _ => (Stream::Stderr, attach::STDERR),
                };
                // A full disk must not stop the monitor: the output still goes to clients.
                let _ = self.log.write(stream, &buf[..n]);
                self.attach.broadcast(kind, &buf[..n]);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) => {}
            Err(_) => self.outputs[i] = None,
        }
        1
    }

    fn client(&mut self, fd: RawFd) {
        match self.attach.read(fd, &mut self.buf) {
            Frame::Hangup => self.attach.remove(fd),
            Frame::Stdin(data) => {
                if let Some(stdin) = &mut self.stdin {
                    let _ = stdin.push(data);
                }
            }
            Frame::CloseStdin => {
                if let Some(stdin) = &mut self.stdin {
                    stdin.close();
                }
            }
            Frame::Resize { rows, cols } => {
                if let Some(tty) = &self.tty {
                    let size = rustix::termios::Winsize {
                        ws_row: rows,
                        ws_col: cols,
                        ws_xpixel: 0,
                        ws_ypixel: 0,
                    };
                    let _ = rustix::termios::tcsetwinsize(tty, size);
                }
            }
            Frame::Nothing => {}
        }
        self.poll_stdin();
    }

    fn stdin_ready(&mut self, events: EpollFlags) {
        if let Some(stdin) = &mut self.stdin {
            if events.intersects(EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP) {
                stdin.abandon();
            } else {
                stdin.flush();
            }
        }
        self.poll_stdin();
    }

    /// Poll stdin for writability exactly while bytes wait for it.
    fn poll_stdin(&mut self) {
        let Some(stdin) = &self.stdin else { return };
        let Some(fd) = stdin.fd() else {
            // Closed: its descriptor left the epoll set with it.
            self.stdin = None;
            self.stdin_polled = false;
            return;
        };
        let want = stdin.wants_write();
        if want == self.stdin_polled {
            return;
        }
        let ok = if want {
            let event = EpollEvent::new(EpollFlags::EPOLLOUT, TOKEN_STDIN);
            self.epoll.add(fd, event).is_ok()
        } else {
            self.epoll.delete(fd).is_ok()
        };
        if ok {
            self.stdin_polled = want;
        }
    }
}
