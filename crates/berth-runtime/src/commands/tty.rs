//! A terminal for foreground `run` and `exec` without `--console-socket`: the runtime makes
//! its own console socket, receives the pty master, and copies it to and from its own stdio
//! (raw mode when stdin is a terminal), as runc does.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::thread::JoinHandle;

use nix::sys::termios::{self, SetArg, Termios};

use super::{io, Error};

/// Our end of the console socket.
pub struct Console {
    ours: UnixStream,
}

/// Make a console socket pair; the second value goes to the container process.
pub fn pair() -> Result<(Console, OwnedFd), Error> {
    let (ours, theirs) = UnixStream::pair().map_err(io("create console socket", "socketpair"))?;
    Ok((Console { ours }, theirs.into()))
}

/// A pty attached to our stdio.
pub struct Attached {
    master: Arc<File>,
    saved: Option<Termios>,
    output: JoinHandle<()>,
}

impl Console {
    /// Receive the master and start copying.
    pub fn attach(self) -> Result<Attached, Error> {
        let mut name = [0u8; 256];
        let (_, fd) = berth_sys::recv_fd(self.ours.as_fd(), &mut name)
            .map_err(io("receive pty master", "console socket"))?;
        let master = Arc::new(File::from(fd.ok_or_else(|| {
            Error::Invalid("console socket: no pty master received".into())
        })?));
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok();
        if let Some(orig) = &saved {
            let mut raw = orig.clone();
            termios::cfmakeraw(&mut raw);
            let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        }
        let attached = Attached {
            master: master.clone(),
            saved,
            output: std::thread::spawn(move || {
                let _ = std::io::copy(&mut &*master, &mut std::io::stdout());
                let _ = std::io::stdout().flush();
            }),
        };
        attached.resize();
        let input = attached.master.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut stdin = std::io::stdin();
            while let Ok(n @ 1..) = stdin.read(&mut buf) {
                if (&*input).write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
        Ok(attached)
    }
}

impl Attached {
    /// Copy our terminal's size to the pty (on SIGWINCH).
    pub fn resize(&self) {
        if let Ok((rows, cols)) = berth_sys::window_size(std::io::stdin().as_fd()) {
            let _ = berth_sys::set_window_size(self.master.as_fd(), rows, cols);
        }
    }

    /// Wait for the output to drain and restore our terminal.
    pub fn finish(self) {
        let _ = self.output.join();
        if let Some(orig) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, orig);
        }
    }
}
