//! Shared helpers: a tar writer that can also write hostile headers, root checks, tree listing.
#![allow(clippy::unwrap_used, dead_code)]

use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;

use berth_storage::{unpack, UnpackError, UnpackOptions, UnpackStats};
use tar::{EntryType, Header};

/// True when running as root; otherwise prints why the test is skipped.
pub fn require_root(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    eprintln!("SKIP {test}: needs root (device nodes, chown, trusted xattrs, overlay mounts)");
    false
}

/// Attributes of one entry.
#[derive(Clone, Copy)]
pub struct Attrs {
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
}

pub const DEFAULT: Attrs = Attrs {
    mode: 0o644,
    uid: 0,
    gid: 0,
    mtime: 1_600_000_000,
};

/// Writes tar streams entry by entry; names and link names are written verbatim.
pub struct Tar {
    builder: tar::Builder<Vec<u8>>,
}

impl Default for Tar {
    fn default() -> Self {
        Tar::new()
    }
}

impl Tar {
    pub fn new() -> Tar {
        Tar {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    fn header(name: &str, kind: EntryType, attrs: Attrs, size: u64) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(attrs.mode);
        h.set_uid(attrs.uid);
        h.set_gid(attrs.gid);
        h.set_mtime(attrs.mtime);
        h.set_size(size);
        let bytes = name.as_bytes();
        assert!(bytes.len() < 100, "test names are short");
        h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        h
    }

    fn append(&mut self, mut h: Header, data: &[u8]) -> &mut Tar {
        h.set_cksum();
        self.builder.append(&h, data).expect("append to Vec");
        self
    }

    /// PAX extended header records for the next entry.
    pub fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Tar {
        let mut body = Vec::new();
        for (key, value) in records {
            let rest = key.len() + value.len() + 3; // ' ' '=' '\n'
            let mut len = rest + 1;
            while len != rest + len.to_string().len() {
                len = rest + len.to_string().len();
            }
            body.extend_from_slice(format!("{len} {key}=").as_bytes());
            body.extend_from_slice(value);
            body.push(b'\n');
        }
        let h = Tar::header("PaxHeader", EntryType::XHeader, DEFAULT, body.len() as u64);
        self.append(h, &body)
    }

    pub fn file(&mut self, name: &str, attrs: Attrs, data: &[u8]) -> &mut Tar {
        let h = Tar::header(name, EntryType::Regular, attrs, data.len() as u64);
        self.append(h, data)
    }

    pub fn dir(&mut self, name: &str, attrs: Attrs) -> &mut Tar {
        let h = Tar::header(name, EntryType::Directory, attrs, 0);
        self.append(h, &[])
    }

    pub fn link(&mut self, name: &str, kind: EntryType, target: &str, attrs: Attrs) -> &mut Tar {
        let mut h = Tar::header(name, kind, attrs, 0);
        let bytes = target.as_bytes();
        h.as_old_mut().linkname[..bytes.len()].copy_from_slice(bytes);
        self.append(h, &[])
    }

    pub fn symlink(&mut self, name: &str, target: &str, attrs: Attrs) -> &mut Tar {
        self.link(name, EntryType::Symlink, target, attrs)
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Tar {
        self.link(name, EntryType::Link, target, DEFAULT)
    }

    pub fn device(
        &mut self,
        name: &str,
        kind: EntryType,
        major: u32,
        minor: u32,
        attrs: Attrs,
    ) -> &mut Tar {
        let mut h = Tar::header(name, kind, attrs, 0);
        h.set_device_major(major)
            .expect("gnu header has device fields");
        h.set_device_minor(minor)
            .expect("gnu header has device fields");
        self.append(h, &[])
    }

    /// A header that declares `size` bytes, with the stream ending right after it.
    pub fn header_only(&self, name: &str, size: u64) -> Vec<u8> {
        let mut h = Tar::header(name, EntryType::Regular, DEFAULT, size);
        h.set_cksum();
        let mut out = self.builder.get_ref().clone();
        out.extend_from_slice(h.as_bytes());
        out
    }

    /// The archive so far, with its end-of-archive blocks.
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = self.builder.get_ref().clone();
        out.extend_from_slice(&[0u8; 1024]);
        out
    }
}

/// Unpack `tar` into the directory `dir` with `options`.
pub fn unpack_into(
    dir: &Path,
    tar: &[u8],
    options: &UnpackOptions,
) -> Result<UnpackStats, UnpackError> {
    let fd = File::open(dir).expect("open layer dir");
    unpack(fd.as_fd(), tar, options)
}

/// Every path under `dir` (relative, sorted), not following symlinks.
pub fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("dir entry").path();
        out.push(
            path.strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .into_owned(),
        );
        if path.symlink_metadata().expect("lstat").is_dir() {
            walk(root, &path, out);
        }
    }
}
