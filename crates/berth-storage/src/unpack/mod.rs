//! Applying one layer's tar stream to a directory, turning OCI whiteouts into overlay ones.
//!
//! Every entry's parent is resolved inside the layer through fds (see [`fsops`]); nothing is
//! ever written outside the directory given. Hostile entries stop the unpack with an
//! [`UnpackError`] naming the entry; the caller discards the half-written directory.

mod error;
mod fsops;
mod header;
mod path;

use std::collections::HashSet;
use std::ffi::CStr;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{FileType, Mode, OFlags};

pub use error::UnpackError;
use fsops::Existing;
use header::{Header, Kind, Meta};
use path::{BadPath, EntryPath};

/// Prefix of an OCI whiteout entry: `.wh.NAME` deletes `NAME` from the layers below.
const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// Prefix of whiteout-metadata names (aufs); only the opaque marker has a meaning.
const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
/// The opaque-directory marker: hides everything the lower layers have in its directory.
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
/// The overlayfs xattr that makes a directory opaque.
const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// Layer-supplied xattrs in this namespace are dropped: they would steer overlayfs.
const OVERLAY_XATTR_PREFIX: &str = "trusted.overlay.";

/// Limits for one unpack.
#[derive(Debug, Clone, Copy)]
pub struct UnpackOptions {
    /// Largest size a single entry may declare.
    pub max_entry_size: u64,
    /// Largest total of entry sizes in the layer.
    pub max_layer_size: u64,
}

impl Default for UnpackOptions {
    fn default() -> Self {
        const GIB: u64 = 1 << 30;
        UnpackOptions {
            max_entry_size: 64 * GIB,
            max_layer_size: 64 * GIB,
        }
    }
}

/// What an unpack did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// Tar entries applied (including whiteouts).
    pub entries: u64,
    /// Bytes of file contents written.
    pub bytes: u64,
}

/// Apply the uncompressed tar stream `reader` to the directory `layer`.
///
/// Directory times are set after all entries. On error the directory is left half-written.
pub fn unpack<R: Read>(
    layer: BorrowedFd<'_>,
    reader: R,
    options: &UnpackOptions,
) -> Result<UnpackStats, UnpackError> {
    let mut unpacker = Unpacker {
        root: layer,
        options: *options,
        seen: HashSet::new(),
        dirs: Vec::new(),
        stats: UnpackStats::default(),
        parent: None,
        removals: 0,
        buffer: vec![0; COPY_BUFFER],
    };
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(|source| UnpackError::Read {
        entry: None,
        source,
    })?;
    let mut last: Option<String> = None;
    for entry in entries {
        let mut entry = entry.map_err(|source| UnpackError::Read {
            entry: last.clone(),
            source,
        })?;
        let Some(header) = header::read(&mut entry)? else {
            continue;
        };
        last = Some(header.name.clone());
        unpacker.apply(header, &mut entry)?;
    }
    unpacker.finish_dirs()?;
    Ok(unpacker.stats)
}

struct Unpacker<'fd> {
    root: BorrowedFd<'fd>,
    options: UnpackOptions,
    /// Non-directory entries written so far: the only valid hard link targets.
    seen: HashSet<EntryPath>,
    /// Directories whose times are set at the end.
    dirs: Vec<(EntryPath, Meta, String)>,
    stats: UnpackStats,
    /// The last parent directory opened (`O_PATH`) and `removals` at that time: entries of one
    /// directory follow each other, so most entries reuse it instead of resolving again.
    parent: Option<(EntryPath, OwnedFd, u64)>,
    /// Entries removed so far: any removal may have replaced a directory on a cached path
    /// (with a symlink, say), so a cached parent from before it is resolved again.
    removals: u64,
    /// File contents pass through here.
    buffer: Vec<u8>,
}

/// Size of the buffer file contents are copied through.
const COPY_BUFFER: usize = 256 * 1024;

impl Unpacker<'_> {
    fn apply(&mut self, mut header: Header, data: &mut impl Read) -> Result<(), UnpackError> {
        self.check_size(&header)?;
        header
            .xattrs
            .retain(|(name, _)| !name.starts_with(OVERLAY_XATTR_PREFIX));
        let path = clean(&header.raw_path, &header.name)?;
        self.stats.entries += 1;
        if path.is_root() {
            return self.apply_root(&header);
        }
        let name = path.file_name().unwrap_or_default();
        if name == OPAQUE_MARKER {
            return self.mark_opaque(&path.parent(), &header.name);
        }
        if name.starts_with(WHITEOUT_META_PREFIX) {
            return Ok(());
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            if matches!(hidden, b"" | b"." | b"..") {
                return Err(UnpackError::BadWhiteout { entry: header.name });
            }
            return self.whiteout(&path.with_file_name(hidden), &header);
        }
        self.create(&path, &header, data)
    }

    /// `dir` opened `O_PATH` (created if missing), from the cache when nothing was removed since.
    fn take_parent(&mut self, dir: &EntryPath, entry: &str) -> Result<OwnedFd, UnpackError> {
        if let Some((path, fd, removals)) = self.parent.take() {
            if path == *dir && removals == self.removals {
                return Ok(fd);
            }
        }
        fsops::open_or_create_dir(self.root, dir, entry)
    }

    /// Keep `fd` (of `dir`) for the next entry.
    fn keep_parent(&mut self, dir: EntryPath, fd: OwnedFd) {
        self.parent = Some((dir, fd, self.removals));
    }

    /// [`fsops::clear_for`], counting removals for the parent cache.
    fn clear_for(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &CStr,
        is_dir: bool,
        entry: &str,
    ) -> Result<Existing, UnpackError> {
        let existing = fsops::clear_for(parent, name, is_dir, entry)?;
        if existing == Existing::Removed {
            self.removals += 1;
        }
        Ok(existing)
    }

    fn check_size(&mut self, header: &Header) -> Result<(), UnpackError> {
        let cap = self.options.max_entry_size;
        if header.size > cap {
            return Err(UnpackError::EntryTooLarge {
                entry: header.name.clone(),
                size: header.size,
                cap,
            });
        }
        let total = self.stats.bytes.saturating_add(header.size);
        if total > self.options.max_layer_size {
            return Err(UnpackError::LayerTooLarge {
                entry: header.name.clone(),
                cap: self.options.max_layer_size,
            });
        }
        Ok(())
    }

    /// `./` itself: only its metadata applies.
    fn apply_root(&mut self, header: &Header) -> Result<(), UnpackError> {
        if header.kind != Kind::Dir {
            return Err(UnpackError::RootNotDirectory {
                entry: header.name.clone(),
            });
        }
        finish_node(self.root, c".", header)?;
        self.dirs
            .push((EntryPath::root(), header.meta, header.name.clone()));
        Ok(())
    }

    fn mark_opaque(&mut self, dir: &EntryPath, entry: &str) -> Result<(), UnpackError> {
        fsops::open_or_create_dir(self.root, dir, entry)?;
        let fd = fsops::open_dir(self.root, dir, libc::O_RDONLY)
            .map_err(|e| fsops::lookup_error(e, entry))?;
        fsops::set_xattrs_fd(
            fd.as_fd(),
            &[(OVERLAY_OPAQUE_XATTR.to_owned(), b"y".to_vec())],
            entry,
        )
    }

    /// An overlay whiteout: a character device 0/0 with the hidden name.
    fn whiteout(&mut self, hidden: &EntryPath, header: &Header) -> Result<(), UnpackError> {
        let entry = header.name.as_str();
        let dir = hidden.parent();
        let parent = self.take_parent(&dir, entry)?;
        let name = fsops::cstring(hidden.file_name().unwrap_or_default(), entry)?;
        self.clear_for(parent.as_fd(), &name, false, entry)?;
        rustix::fs::mknodat(
            &parent,
            name.as_c_str(),
            FileType::CharacterDevice,
            Mode::empty(),
            0,
        )
        .map_err(error::errno(entry, "create whiteout"))?;
        let meta = Meta {
            mode: 0,
            ..header.meta
        };
        fsops::set_owner_and_mode(parent.as_fd(), &name, &meta, false, entry)?;
        // The `.wh.` entry's times, so the same layer always unpacks to the same metadata.
        fsops::set_times(parent.as_fd(), &name, &meta, entry)?;
        self.keep_parent(dir, parent);
        Ok(())
    }

    fn create(
        &mut self,
        path: &EntryPath,
        header: &Header,
        data: &mut impl Read,
    ) -> Result<(), UnpackError> {
        let entry = header.name.as_str();
        let dir = path.parent();
        let parent = self.take_parent(&dir, entry)?;
        let name = fsops::cstring(path.file_name().unwrap_or_default(), entry)?;
        let is_dir = header.kind == Kind::Dir;
        let existing = self.clear_for(parent.as_fd(), &name, is_dir, entry)?;
        match header.kind {
            Kind::File => self.write_file(parent.as_fd(), &name, header, data)?,
            Kind::Dir => make_dir(parent.as_fd(), &name, existing, header)?,
            Kind::Symlink => make_symlink(parent.as_fd(), &name, header)?,
            Kind::HardLink => self.hard_link(parent.as_fd(), &name, path, header)?,
            Kind::Char | Kind::Block | Kind::Fifo => make_node(parent.as_fd(), &name, header)?,
        }
        self.keep_parent(dir, parent);
        if header.kind == Kind::HardLink {
            return Ok(());
        }
        if is_dir {
            self.dirs
                .push((path.clone(), header.meta, header.name.clone()));
        } else {
            self.seen.insert(path.clone());
        }
        Ok(())
    }

    fn write_file(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &CStr,
        header: &Header,
        data: &mut impl Read,
    ) -> Result<(), UnpackError> {
        let entry = header.name.as_str();
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(parent, name, flags, Mode::from_raw_mode(0o600))
            .map_err(error::errno(entry, "create file"))?;
        let mut file = std::fs::File::from(fd);
        self.stats.bytes += copy_contents(data, &mut file, &mut self.buffer, entry)?;
        let uid = Some(rustix::fs::Uid::from_raw(header.meta.uid));
        let gid = Some(rustix::fs::Gid::from_raw(header.meta.gid));
        rustix::fs::fchown(&file, uid, gid).map_err(error::chown_err(
            entry,
            header.meta.uid,
            header.meta.gid,
        ))?;
        rustix::fs::fchmod(&file, Mode::from_raw_mode(header.meta.mode))
            .map_err(error::errno(entry, "chmod"))?;
        fsops::set_xattrs_fd(file.as_fd(), &header.xattrs, entry)?;
        rustix::fs::futimens(&file, &fsops::timestamps(&header.meta))
            .map_err(error::errno(entry, "set times"))
    }

    fn hard_link(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &CStr,
        path: &EntryPath,
        header: &Header,
    ) -> Result<(), UnpackError> {
        let entry = header.name.as_str();
        let raw_target = header.link.clone().unwrap_or_default();
        let shown = String::from_utf8_lossy(&raw_target).into_owned();
        let target = EntryPath::clean(&raw_target).map_err(|_| UnpackError::HardLinkEscape {
            entry: entry.to_owned(),
            target: shown.clone(),
        })?;
        if !self.seen.contains(&target) {
            return Err(UnpackError::HardLinkMissing {
                entry: entry.to_owned(),
                target: shown,
            });
        }
        let target_dir = fsops::open_dir(self.root, &target.parent(), libc::O_PATH)
            .map_err(|e| fsops::lookup_error(e, entry))?;
        let target_name = fsops::cstring(target.file_name().unwrap_or_default(), entry)?;
        rustix::fs::linkat(
            &target_dir,
            target_name.as_c_str(),
            parent,
            name,
            rustix::fs::AtFlags::empty(),
        )
        .map_err(error::errno(entry, "hard link"))?;
        self.seen.insert(path.clone());
        Ok(())
    }

    fn finish_dirs(&mut self) -> Result<(), UnpackError> {
        for (path, meta, entry) in self.dirs.iter().rev() {
            let fd = fsops::open_dir(self.root, path, libc::O_RDONLY)
                .map_err(|e| fsops::lookup_error(e, entry))?;
            rustix::fs::futimens(&fd, &fsops::timestamps(meta))
                .map_err(error::errno(entry, "set directory times"))?;
        }
        Ok(())
    }
}

fn clean(raw: &[u8], entry: &str) -> Result<EntryPath, UnpackError> {
    EntryPath::clean(raw).map_err(|bad| match bad {
        BadPath::Escapes => UnpackError::Escape {
            entry: entry.to_owned(),
        },
        BadPath::Nul => UnpackError::BadName {
            entry: entry.to_owned(),
        },
    })
}

fn make_dir(
    parent: BorrowedFd<'_>,
    name: &CStr,
    existing: Existing,
    header: &Header,
) -> Result<(), UnpackError> {
    let entry = header.name.as_str();
    if existing != Existing::KeepDir {
        rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o700))
            .map_err(error::errno(entry, "mkdir"))?;
    }
    fsops::set_owner_and_mode(parent, name, &header.meta, false, entry)?;
    if header.xattrs.is_empty() {
        return Ok(());
    }
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(parent, name, flags, Mode::empty())
        .map_err(error::errno(entry, "open directory"))?;
    fsops::set_xattrs_fd(fd.as_fd(), &header.xattrs, entry)
}

fn make_symlink(parent: BorrowedFd<'_>, name: &CStr, header: &Header) -> Result<(), UnpackError> {
    let entry = header.name.as_str();
    let target = fsops::cstring(header.link.as_deref().unwrap_or_default(), entry)?;
    rustix::fs::symlinkat(target.as_c_str(), parent, name)
        .map_err(error::errno(entry, "symlink"))?;
    finish_node(parent, name, header)
}

fn make_node(parent: BorrowedFd<'_>, name: &CStr, header: &Header) -> Result<(), UnpackError> {
    let entry = header.name.as_str();
    let (file_type, dev) = match header.kind {
        Kind::Char => (
            FileType::CharacterDevice,
            rustix::fs::makedev(header.device.0, header.device.1),
        ),
        Kind::Block => (
            FileType::BlockDevice,
            rustix::fs::makedev(header.device.0, header.device.1),
        ),
        _ => (FileType::Fifo, 0),
    };
    rustix::fs::mknodat(parent, name, file_type, Mode::from_raw_mode(0o600), dev)
        .map_err(error::errno(entry, "mknod"))?;
    finish_node(parent, name, header)
}

fn finish_node(parent: BorrowedFd<'_>, name: &CStr, header: &Header) -> Result<(), UnpackError> {
    let entry = header.name.as_str();
    let is_symlink = header.kind == Kind::Symlink;
    fsops::set_owner_and_mode(parent, name, &header.meta, is_symlink, entry)?;
    if header.kind == Kind::Dir {
        let fd = fsops::open_dir(parent, &EntryPath::root(), libc::O_RDONLY)
            .map_err(|e| fsops::lookup_error(e, entry))?;
        return fsops::set_xattrs_fd(fd.as_fd(), &header.xattrs, entry);
    }
    fsops::set_xattrs_node(parent, name, &header.xattrs, entry)?;
    fsops::set_times(parent, name, &header.meta, entry)
}

/// Copy an entry's contents, telling read errors (a bad stream) from write errors (the disk).
fn copy_contents(
    data: &mut impl Read,
    out: &mut impl Write,
    buf: &mut [u8],
    entry: &str,
) -> Result<u64, UnpackError> {
    let mut total = 0u64;
    loop {
        let n = match data.read(buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(UnpackError::Read {
                    entry: Some(entry.to_owned()),
                    source,
                })
            }
        };
        out.write_all(&buf[..n])
            .map_err(error::io_err(entry, "write file"))?;
        total += n as u64;
    }
}
