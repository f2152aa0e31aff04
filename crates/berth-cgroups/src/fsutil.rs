//! Reading and writing cgroupfs files, with errors that name the file and the value.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use crate::error::Error;

/// One pending write of `value` into the cgroup file `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Write {
    pub path: PathBuf,
    pub value: String,
}

impl Write {
    pub fn new(dir: &Path, file: &str, value: impl ToString) -> Write {
        Write {
            path: dir.join(file),
            value: value.to_string(),
        }
    }

    pub fn run(&self) -> Result<(), Error> {
        write(&self.path, &self.value)
    }
}

/// Writes `value` with one `write(2)`, without creating the file (cgroupfs files always exist).
pub(crate) fn write(path: &Path, value: &str) -> Result<(), Error> {
    let result = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut file| file.write_all(value.as_bytes()));
    result.map_err(|source| Error::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    })
}

pub(crate) fn read(path: &Path) -> Result<String, Error> {
    fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Like [`read`], but a missing file is `None`.
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>, Error> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

pub(crate) fn parse_u64(path: &Path, text: &str) -> Result<u64, Error> {
    text.trim().parse().map_err(|_| Error::Parse {
        what: path.display().to_string(),
        reason: format!("expected an unsigned number, found {:?}", text.trim()),
    })
}

/// `key value` lines (memory.stat, cpu.stat, memory.events); other lines are skipped.
pub(crate) fn keyed(text: &str) -> impl Iterator<Item = (&str, u64)> {
    text.lines().filter_map(|line| {
        let mut fields = line.split_whitespace();
        let key = fields.next()?;
        let value = fields.next()?.parse().ok()?;
        Some((key, value))
    })
}

/// The value of `key` in a `key value` file, 0 when absent.
pub(crate) fn key(text: &str, key: &str) -> u64 {
    keyed(text)
        .find(|(k, _)| *k == key)
        .map_or(0, |(_, value)| value)
}
