//! The container log in k8s-file format: one record per line of output,
//! `TIMESTAMP STREAM F|P TEXT\n`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Longest text in one record; a longer line is split into `P` records.
pub const MAX_LINE: usize = 16 * 1024;

/// Errors of the log writer.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("opening log file {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing log file: {0}")]
    Write(#[source] std::io::Error),
}

/// Which output of the container a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// The name in the log record.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// An open k8s-file log.
pub struct LogWriter {
    file: File,
    buf: Vec<u8>,
}

impl LogWriter {
    /// Open (create, append, mode 0600) the log at `path`.
    pub fn open(path: &Path) -> Result<LogWriter, LogError> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_CLOEXEC)
            .open(path)
            .map_err(|source| LogError::Open {
                path: path.to_owned(),
                source,
            })?;
        Ok(LogWriter {
            file,
            buf: Vec::new(),
        })
    }

    /// Log one chunk read from `stream`, all records with the current time, in one write.
    pub fn write(&mut self, stream: Stream, chunk: &[u8]) -> Result<(), LogError> {
        self.buf.clear();
        format_records(&mut self.buf, &crate::time::now(), stream, chunk);
        self.file.write_all(&self.buf).map_err(LogError::Write)
    }
}

/// Append the records for `chunk` to `out`: a line ending in `\n` is `F` (without the newline),
/// the chunk's unterminated tail is `P`, and a line longer than [`MAX_LINE`] is split into `P`
/// records.
pub fn format_records(out: &mut Vec<u8>, timestamp: &str, stream: Stream, chunk: &[u8]) {
    let mut rest = chunk;
    while !rest.is_empty() {
        let window = &rest[..rest.len().min(MAX_LINE + 1)];
        let (text, tag, used) = match window.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], b'F', i + 1),
            None => {
                let n = rest.len().min(MAX_LINE);
                (&rest[..n], b'P', n)
            }
        };
        out.extend_from_slice(timestamp.as_bytes());
        out.push(b' ');
        out.extend_from_slice(stream.name().as_bytes());
        out.extend_from_slice(&[b' ', tag, b' ']);
        out.extend_from_slice(text);
        out.push(b'\n');
        rest = &rest[used..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(chunk: &[u8]) -> String {
        let mut out = Vec::new();
        format_records(&mut out, "T", Stream::Stderr, chunk);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn full_and_partial_lines() {
        assert_eq!(records(b"a\nb\n"), "T stderr F a\nT stderr F b\n");
        assert_eq!(records(b"a\nbc"), "T stderr F a\nT stderr P bc\n");
        assert_eq!(records(b"\n"), "T stderr F \n");
        assert_eq!(records(b""), "");
    }

    #[test]
    fn long_lines_are_split() {
        let mut line = vec![b'x'; MAX_LINE + 3];
        line.push(b'\n');
        let out = records(&line);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), "T stderr P ".len() + MAX_LINE);
        assert_eq!(lines[1], "T stderr F xxx");
        let mut exact = vec![b'y'; MAX_LINE];
        exact.push(b'\n');
        assert_eq!(records(&exact).lines().count(), 1);
    }
}
