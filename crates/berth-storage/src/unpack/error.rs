//! The error of [`super::unpack`]: every variant names the tar entry it is about.

use std::io;

/// Why a layer could not be unpacked. `entry` is the entry's name as written in the tar stream.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The tar stream itself could not be read (truncated, corrupt, decompression failed).
    #[error("reading the layer's tar stream{}: {source}", after(.entry))]
    Read {
        /// The entry being read, if one was.
        entry: Option<String>,
        /// The underlying read error.
        #[source]
        source: io::Error,
    },
    /// A `..` in the entry's name would leave the layer.
    #[error("tar entry {entry:?}: path escapes the layer")]
    Escape {
        /// The entry.
        entry: String,
    },
    /// The entry's name contains a NUL byte.
    #[error("tar entry {entry:?}: name contains a NUL byte")]
    BadName {
        /// The entry.
        entry: String,
    },
    /// A whiteout that names nothing (`.wh.`) or a directory itself (`.wh..`, `.wh...`).
    #[error("tar entry {entry:?}: whiteout does not name a file")]
    BadWhiteout {
        /// The entry.
        entry: String,
    },
    /// A directory on the entry's path is a symlink: writing through it is refused.
    #[error("tar entry {entry:?}: its path goes through a symlink")]
    ThroughSymlink {
        /// The entry.
        entry: String,
    },
    /// An entry naming the layer root (`./`, `/`) is not a directory.
    #[error("tar entry {entry:?}: names the layer root but is not a directory")]
    RootNotDirectory {
        /// The entry.
        entry: String,
    },
    /// A component of the entry's parent path exists and is not a directory.
    #[error("tar entry {entry:?}: a parent is not a directory")]
    ParentNotDirectory {
        /// The entry.
        entry: String,
    },
    /// A hard link points outside the layer.
    #[error("tar entry {entry:?}: hard link target {target:?} is outside the layer")]
    HardLinkEscape {
        /// The entry.
        entry: String,
        /// The link target as written.
        target: String,
    },
    /// A hard link points at something that is not an earlier entry of this layer.
    #[error(
        "tar entry {entry:?}: hard link target {target:?} is not an earlier entry of the layer"
    )]
    HardLinkMissing {
        /// The entry.
        entry: String,
        /// The link target as written.
        target: String,
    },
    /// The entry is bigger than [`super::UnpackOptions::max_entry_size`].
    #[error("tar entry {entry:?}: size {size} exceeds the per-entry cap of {cap} bytes")]
    EntryTooLarge {
        /// The entry.
        entry: String,
        /// Its size from the header.
        size: u64,
        /// The cap.
        cap: u64,
    },
    /// The layer would grow beyond [`super::UnpackOptions::max_layer_size`].
    #[error("tar entry {entry:?}: the layer would exceed its size cap of {cap} bytes")]
    LayerTooLarge {
        /// The entry that crossed the cap.
        entry: String,
        /// The cap.
        cap: u64,
    },
    /// An entry type Berth does not unpack (GNU volume headers, multi-volume continuations...).
    #[error("tar entry {entry:?}: unsupported entry type {kind}")]
    Unsupported {
        /// The entry.
        entry: String,
        /// The type byte, as a character.
        kind: char,
    },
    /// A header field could not be parsed.
    #[error("tar entry {entry:?}: bad header field {field}: {source}")]
    Header {
        /// The entry.
        entry: String,
        /// The field.
        field: &'static str,
        /// What was wrong.
        #[source]
        source: io::Error,
    },
    /// The entry's owner has no id in this user namespace (rootless, with too few ids mapped).
    #[error(
        "tar entry {entry:?}: owner {uid}:{gid} is not mapped in this user namespace (rootless \
         Berth maps your uid/gid to 0 and your /etc/subuid and /etc/subgid ranges from 1: add a \
         range of 65536 ids for your user, then kill the berth-pause process)"
    )]
    UnmappedOwner {
        /// The entry.
        entry: String,
        /// Its uid.
        uid: u32,
        /// Its gid.
        gid: u32,
    },
    /// A filesystem operation inside the layer failed.
    #[error("tar entry {entry:?}: {step}: {source}")]
    Io {
        /// The entry.
        entry: String,
        /// What was being done (`mkdir`, `chown`, ...).
        step: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

fn after(entry: &Option<String>) -> String {
    entry
        .as_ref()
        .map(|e| format!(" after entry {e:?}"))
        .unwrap_or_default()
}

/// Turn an [`io::Error`] or [`rustix::io::Errno`] into [`UnpackError::Io`] for `entry`.
pub(crate) fn io_err(entry: &str, step: &'static str) -> impl FnOnce(io::Error) -> UnpackError {
    let entry = entry.to_owned();
    move |source| UnpackError::Io {
        entry,
        step,
        source,
    }
}

/// Like [`io_err`], for rustix's errno.
pub(crate) fn errno(
    entry: &str,
    step: &'static str,
) -> impl FnOnce(rustix::io::Errno) -> UnpackError {
    let entry = entry.to_owned();
    move |e| UnpackError::Io {
        entry,
        step,
        source: e.into(),
    }
}

/// chown's error for `entry`: EINVAL means an id that the user namespace does not map.
pub(crate) fn chown_err(
    entry: &str,
    uid: u32,
    gid: u32,
) -> impl FnOnce(rustix::io::Errno) -> UnpackError {
    let entry = entry.to_owned();
    move |e| {
        if e == rustix::io::Errno::INVAL {
            UnpackError::UnmappedOwner { entry, uid, gid }
        } else {
            UnpackError::Io {
                entry,
                step: "chown",
                source: e.into(),
            }
        }
    }
}
