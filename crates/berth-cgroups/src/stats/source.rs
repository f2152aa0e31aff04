//! Stats files opened once and re-read from offset 0 with `pread`, into one reused buffer:
//! a second read of a cgroup costs no `open`, `close` or allocation per file.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::fsutil;

/// The first size of the shared read buffer; it doubles while a file does not fit.
const INITIAL_BUFFER: usize = 8192;

/// v1 shows "unlimited" as the largest page-aligned i64; this and more is unlimited.
pub const V1_UNLIMITED: u64 = 0x7FFF_FFFF_FFFF_F000;

/// The read buffer that every [`Source`] of one reader shares.
#[derive(Debug, Default)]
pub(crate) struct Buf {
    bytes: Vec<u8>,
}

/// One open cgroup file.
#[derive(Debug)]
pub(crate) struct Source {
    file: File,
    path: PathBuf,
}

impl Source {
    /// Opens `dir/name` for reading; a missing file is `None`.
    pub fn open(dir: &Path, name: &str) -> Result<Option<Source>, Error> {
        let path = dir.join(name);
        match File::open(&path) {
            Ok(file) => Ok(Some(Source { file, path })),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::Read { path, source }),
        }
    }

    /// The file's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole file, read again from offset 0.
    pub fn read<'b>(&self, buf: &'b mut Buf) -> Result<&'b str, Error> {
        self.read_io(buf).map_err(|source| Error::Read {
            path: self.path.clone(),
            source,
        })
    }

    /// [`Source::read`] with the bare I/O error (callers that accept some errnos).
    pub fn read_io<'b>(&self, buf: &'b mut Buf) -> io::Result<&'b str> {
        if buf.bytes.is_empty() {
            buf.bytes.resize(INITIAL_BUFFER, 0);
        }
        let mut len = 0;
        loop {
            let n = match self.file.read_at(&mut buf.bytes[len..], len as u64) {
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            };
            len += n;
            // A short read is the end: cgroupfs (seq_file) fills the buffer up to EOF, and
            // so do regular files (the fake cgroupfs of the tests).
            if n == 0 || len < buf.bytes.len() {
                break;
            }
            let bigger = buf.bytes.len() * 2;
            buf.bytes.resize(bigger, 0);
        }
        std::str::from_utf8(&buf.bytes[..len])
            .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))
    }

    /// A single unsigned number.
    pub fn read_u64(&self, buf: &mut Buf) -> Result<u64, Error> {
        let text = self.read(buf)?;
        fsutil::parse_u64(&self.path, text)
    }

    /// A limit: `max` (v2) or the v1 "unlimited" value is `None`.
    pub fn read_limit(&self, buf: &mut Buf) -> Result<Option<u64>, Error> {
        let text = self.read(buf)?;
        if text.trim() == "max" {
            return Ok(None);
        }
        let value = fsutil::parse_u64(&self.path, text)?;
        Ok((value < V1_UNLIMITED).then_some(value))
    }
}

/// Opens `dir/name` when `dir` is known.
pub(crate) fn open_in(dir: Option<&Path>, name: &str) -> Result<Option<Source>, Error> {
    match dir {
        Some(dir) => Source::open(dir, name),
        None => Ok(None),
    }
}

/// [`Source::read_u64`] of an optional file: a missing one is 0.
pub(crate) fn u64_or_zero(source: &Option<Source>, buf: &mut Buf) -> Result<u64, Error> {
    match source {
        Some(source) => source.read_u64(buf),
        None => Ok(0),
    }
}

/// [`Source::read_limit`] of an optional file: a missing one is unlimited.
pub(crate) fn limit_or_none(source: &Option<Source>, buf: &mut Buf) -> Result<Option<u64>, Error> {
    match source {
        Some(source) => source.read_limit(buf),
        None => Ok(None),
    }
}

pub(crate) use crate::fsutil::{key, keyed};
