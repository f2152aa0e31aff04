//! The container's stdin (a pipe, or the pty master): bytes from attach clients are written
//! without blocking the monitor; what the container has not read yet waits in a bounded queue.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};

/// Most bytes queued for a container that does not read its stdin; more are dropped.
pub const MAX_PENDING: usize = 1 << 20;

/// Errors writing the container's stdin.
#[derive(Debug, thiserror::Error)]
pub enum StdinError {
    #[error("the container's stdin is full: {0} bytes dropped")]
    Full(usize),
}

/// The monitor's end of the container's stdin.
pub struct Stdin {
    file: Option<File>,
    pending: Vec<u8>,
    closing: bool,
    tty: bool,
}

impl Stdin {
    /// `file` is non-blocking; `tty`: it is the pty master (closing sends ^D instead).
    pub fn new(file: File, tty: bool) -> Stdin {
        Stdin {
            file: Some(file),
            pending: Vec::new(),
            closing: false,
            tty,
        }
    }

    /// The descriptor, while stdin is still open.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.file.as_ref().map(|f| f.as_fd())
    }

    /// Bytes wait for the container to read: poll for writability.
    pub fn wants_write(&self) -> bool {
        self.file.is_some() && !self.pending.is_empty()
    }

    /// Write `data`, queueing what does not fit now.
    pub fn push(&mut self, data: &[u8]) -> Result<(), StdinError> {
        if self.closing || self.file.is_none() {
            return Ok(());
        }
        let written = if self.pending.is_empty() {
            self.write_now(data)
        } else {
            0
        };
        let rest = &data[written..];
        let room = MAX_PENDING.saturating_sub(self.pending.len());
        self.pending
            .extend_from_slice(&rest[..rest.len().min(room)]);
        if rest.len() > room {
            return Err(StdinError::Full(rest.len() - room));
        }
        Ok(())
    }

    /// The fd is writable: write what is queued.
    pub fn flush(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        let written = self.write_now(&pending);
        self.pending = pending;
        self.pending.drain(..written);
        self.finish_close();
    }

    /// Close the container's stdin once the queue is written.
    pub fn close(&mut self) {
        self.closing = true;
        self.finish_close();
    }

    /// Give up (the fd failed): drop it and the queue.
    pub fn abandon(&mut self) {
        self.file = None;
        self.pending = Vec::new();
    }

    fn finish_close(&mut self) {
        if !self.closing || !self.pending.is_empty() {
            return;
        }
        if self.tty {
            // A pty has no separate write end to close: send the EOF character instead.
            if let Some(f) = &mut self.file {
                let _ = f.write(b"\x04");
            }
        }
        self.file = None;
    }

    /// Write as much of `data` as the fd takes now; a write error abandons stdin.
    fn write_now(&mut self, data: &[u8]) -> usize {
        let Some(file) = &mut self.file else {
            return data.len();
        };
        let mut done = 0;
        while done < data.len() {
            match file.write(&data[done..]) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.abandon();
                    return data.len();
                }
            }
        }
        done
    }
}
