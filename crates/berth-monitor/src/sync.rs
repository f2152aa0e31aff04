//! The sync pipe to the engine: one line of JSON, `{"pid":N}` or `{"error":"TEXT"}`, then EOF.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::RawFd;
use std::os::unix::fs::OpenOptionsExt;

/// Errors reporting to the engine.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("writing the sync pipe: {0}")]
    Write(#[from] std::io::Error),
}

/// The write end of the engine's sync pipe, if the monitor was given one.
pub struct SyncPipe(Option<File>);

impl SyncPipe {
    /// Take over inherited fd `fd`: reopen the pipe through `/proc/self/fd` (an owned, close-on-
    /// exec descriptor without `unsafe`), then close the inherited number so neither the
    /// runtime nor the container inherits it. No pipe there: reports go nowhere.
    pub fn take(fd: RawFd) -> SyncPipe {
        let file = OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_CLOEXEC | nix::libc::O_NONBLOCK)
            .open(format!("/proc/self/fd/{fd}"))
            .ok();
        if fd > 2 {
            // Closing a number we do not own is fine only because nothing else in this
            // process has opened a descriptor yet (this runs first in main).
            let _ = nix::unistd::close(fd);
        } else if let Ok(null) = OpenOptions::new().write(true).open("/dev/null") {
            // The engine may pass the pipe as stdout (std spawns with no other fds): put
            // /dev/null in its place, so the pipe closes when the report is written.
            let _ = nix::unistd::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), fd);
        }
        SyncPipe(file)
    }

    /// Report the container's pid.
    pub fn pid(self, pid: i32) -> Result<(), SyncError> {
        self.line(&format!("{{\"pid\":{pid}}}\n"))
    }

    /// Report why the container could not be created.
    pub fn error(self, text: &str) -> Result<(), SyncError> {
        self.line(&format!("{{\"error\":{}}}\n", crate::json::string(text)))
    }

    fn line(self, line: &str) -> Result<(), SyncError> {
        match self.0 {
            Some(mut f) => Ok(f.write_all(line.as_bytes())?),
            None => Ok(()),
        }
    }
}
