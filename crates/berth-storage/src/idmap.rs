//! Image layers for a container in its own user namespace, without a recursive chown of the
//! shared layers.
//!
//! Preferred: each lower directory is cloned as a detached mount (`open_tree(OPEN_TREE_CLONE)`),
//! made idmapped through a user namespace with the container's maps (`mount_setattr`
//! `MOUNT_ATTR_IDMAP`), and handed to overlayfs by fd (`lowerdir+`, Linux 6.13+). A file owned
//! by 0 in the layer then shows as owned by the container's root (e.g. 100000) on the host,
//! which its user namespace maps back to 0.
//!
//! Fallback, where the kernel or the layers' filesystem cannot idmap: a copy of each layer with
//! every owner shifted by the map, made once per (layer, map) under `mapped/` in the container
//! store and reused by every later container with the same layer and map.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{AtFlags, FileType, Mode, Timespec, Timestamps, CWD};
use rustix::mount::OpenTreeFlags;
use sha2::Digest;

/// Set in the environment (to anything), skip idmapped mounts and use the chown'd copies.
/// For tests of the fallback only.
pub const FORCE_COPY_ENV: &str = "BERTH_STORAGE_NO_IDMAP";

/// One line of a uid or gid map: `size` ids from `container` map to `host` onwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdRange {
    /// First id inside the container.
    pub container: u32,
    /// First id on the host.
    pub host: u32,
    /// How many.
    pub size: u32,
}

/// A container's uid and gid maps.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdMap {
    /// uid_map lines.
    pub uids: Vec<IdRange>,
    /// gid_map lines.
    pub gids: Vec<IdRange>,
}

impl IdMap {
    /// The host uid of container uid `id`, if mapped.
    pub fn host_uid(&self, id: u32) -> Option<u32> {
        to_host(&self.uids, id)
    }

    /// The host gid of container gid `id`, if mapped.
    pub fn host_gid(&self, id: u32) -> Option<u32> {
        to_host(&self.gids, id)
    }

    /// The kernel's `/proc/PID/uid_map` text of `ranges`.
    pub fn kernel_format(ranges: &[IdRange]) -> String {
        ranges
            .iter()
            .map(|r| format!("{} {} {}\n", r.container, r.host, r.size))
            .collect()
    }

    /// A short name for the map, usable in file names.
    fn key(&self) -> String {
        let text = format!(
            "u{}g{}",
            Self::kernel_format(&self.uids),
            Self::kernel_format(&self.gids)
        );
        hex::encode(&sha2::Sha256::digest(text.as_bytes())[..12])
    }
}

fn to_host(ranges: &[IdRange], id: u32) -> Option<u32> {
    ranges.iter().find_map(|r| {
        let offset = id.checked_sub(r.container)?;
        (offset < r.size).then(|| r.host + offset)
    })
}

/// Why idmapped layers or their fallback copies could not be made.
#[derive(Debug, thiserror::Error)]
pub enum IdmapError {
    /// The user namespace for the idmapped mounts.
    #[error("creating a user namespace with the container's id maps: {0}")]
    Userns(#[source] io::Error),
    /// Cloning or idmapping the mount of a layer.
    #[error("idmapped mount of layer {path}: {step}: {source}")]
    Mount {
        /// The layer directory.
        path: PathBuf,
        /// `open_tree` or `mount_setattr`.
        step: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Copying a layer with shifted owners.
    #[error("copying layer with shifted owners: {step} {path}: {source}")]
    Copy {
        /// What was being done.
        step: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A file's owner is outside the map.
    #[error("copying layer with shifted owners: {path}: owner {uid}:{gid} is not in the container's id map")]
    Unmapped {
        /// The file.
        path: PathBuf,
        /// Its uid.
        uid: u32,
        /// Its gid.
        gid: u32,
    },
}

/// A user namespace with `map`, as an fd.
pub fn userns_fd(map: &IdMap) -> Result<OwnedFd, IdmapError> {
    berth_sys::userns::userns_with_maps(
        &IdMap::kernel_format(&map.uids),
        &IdMap::kernel_format(&map.gids),
    )
    .map_err(IdmapError::Userns)
}

/// Whether idmapped lowers are to be tried (not forced off by [`FORCE_COPY_ENV`]).
pub fn idmap_wanted() -> bool {
    std::env::var_os(FORCE_COPY_ENV).is_none()
}

/// Detached idmapped clones of `lowers` (top-most first), ready for overlayfs's `lowerdir+`.
pub fn idmapped_lowers(lowers: &[PathBuf], map: &IdMap) -> Result<Vec<OwnedFd>, IdmapError> {
    let userns = userns_fd(map)?;
    lowers
        .iter()
        .map(|path| {
            let fail = |step| {
                move |e: rustix::io::Errno| IdmapError::Mount {
                    path: path.clone(),
                    step,
                    source: e.into(),
                }
            };
            let tree = rustix::mount::open_tree(
                CWD,
                path,
                OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
            )
            .map_err(fail("open_tree"))?;
            berth_sys::userns::idmap_mount(tree.as_fd(), userns.as_fd()).map_err(|e| {
                IdmapError::Mount {
                    path: path.clone(),
                    step: "mount_setattr MOUNT_ATTR_IDMAP",
                    source: e,
                }
            })?;
            Ok(tree)
        })
        .collect()
}

/// The shifted copies of `lowers` under `cache` (made now where missing, under a lock on
/// `cache`), and how long making them took (`None`: all were there).
pub fn mapped_copies(
    cache: &Path,
    lowers: &[PathBuf],
    map: &IdMap,
) -> Result<(Vec<PathBuf>, Option<Duration>), IdmapError> {
    let io = |step, path: &Path| {
        let path = path.to_path_buf();
        move |source| IdmapError::Copy { step, path, source }
    };
    fs::create_dir_all(cache).map_err(io("create", cache))?;
    let lock = fs::File::open(cache).map_err(io("open", cache))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| io("lock", cache)(e.into()))?;
    sweep_incomplete(cache);
    let started = Instant::now();
    let mut made = false;
    let mut copies = Vec::new();
    for lower in lowers {
        let name = hex::encode(&sha2::Sha256::digest(lower.as_os_str().as_encoded_bytes())[..12]);
        let dest = cache.join(format!("{name}-{}", map.key()));
        if !dest.is_dir() {
            let tmp = cache.join(format!("{name}-{}.incomplete", map.key()));
            let _ = fs::remove_dir_all(&tmp);
            // Lowers are often links (`l/<short>` to the layer's directory): copy what they name.
            let source = fs::canonicalize(lower).map_err(io("resolve", lower))?;
            copy_shifted(&source, &tmp, map, &mut HashMap::new())?;
            fs::rename(&tmp, &dest).map_err(io("rename", &tmp))?;
            made = true;
        }
        copies.push(dest);
    }
    fs::File::open(cache)
        .and_then(|d| d.sync_all())
        .map_err(io("sync", cache))?;
    Ok((copies, made.then(|| started.elapsed())))
}

/// Delete copies a crashed process left half-made (we hold the cache's lock).
fn sweep_incomplete(cache: &Path) {
    for entry in fs::read_dir(cache).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().ends_with(".incomplete") {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Copy the tree `src` to the new `dest` with owners shifted by `map`: contents, modes,
/// xattrs (overlay whiteouts and opaque markers included), hard links, times.
fn copy_shifted(
    src: &Path,
    dest: &Path,
    map: &IdMap,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> Result<(), IdmapError> {
    let io = |step, path: &Path| {
        let path = path.to_path_buf();
        move |source| IdmapError::Copy { step, path, source }
    };
    let errno = |step, path: &Path| {
        let path = path.to_path_buf();
        move |e: rustix::io::Errno| IdmapError::Copy {
            step,
            path,
            source: e.into(),
        }
    };
    let meta = fs::symlink_metadata(src).map_err(io("stat", src))?;
    let kind = meta.file_type();
    if !kind.is_dir() && meta.nlink() > 1 {
        if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
            return fs::hard_link(first, dest).map_err(io("link", dest));
        }
        links.insert((meta.dev(), meta.ino()), dest.to_path_buf());
    }
    let mode = meta.mode() & 0o7777;
    if kind.is_dir() {
        fs::create_dir(dest).map_err(io("create", dest))?;
        for entry in fs::read_dir(src).map_err(io("list", src))? {
            let entry = entry.map_err(io("list", src))?;
            copy_shifted(&entry.path(), &dest.join(entry.file_name()), map, links)?;
        }
    } else if kind.is_symlink() {
        let target = fs::read_link(src).map_err(io("readlink", src))?;
        std::os::unix::fs::symlink(target, dest).map_err(io("symlink", dest))?;
    } else if kind.is_file() {
        fs::copy(src, dest).map_err(io("copy", dest))?;
    } else {
        use std::os::unix::fs::FileTypeExt;
        let file_type = if kind.is_char_device() {
            FileType::CharacterDevice
        } else if kind.is_block_device() {
            FileType::BlockDevice
        } else if kind.is_fifo() {
            FileType::Fifo
        } else {
            return Ok(()); // a socket: nothing to copy
        };
        rustix::fs::mknodat(CWD, dest, file_type, Mode::from_raw_mode(mode), meta.rdev())
            .map_err(errno("mknod", dest))?;
    }
    let (uid, gid) = match (map.host_uid(meta.uid()), map.host_gid(meta.gid())) {
        (Some(u), Some(g)) => (u, g),
        _ => {
            return Err(IdmapError::Unmapped {
                path: src.to_path_buf(),
                uid: meta.uid(),
                gid: meta.gid(),
            })
        }
    };
    std::os::unix::fs::lchown(dest, Some(uid), Some(gid)).map_err(io("chown", dest))?;
    // After the chown, which clears set-id bits and file capabilities.
    if !kind.is_symlink() {
        fs::set_permissions(dest, fs::Permissions::from_mode(mode)).map_err(io("chmod", dest))?;
    }
    copy_xattrs(src, dest)?;
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: meta.atime(),
            tv_nsec: meta.atime_nsec() as _,
        },
        last_modification: Timespec {
            tv_sec: meta.mtime(),
            tv_nsec: meta.mtime_nsec() as _,
        },
    };
    rustix::fs::utimensat(CWD, dest, &times, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(errno("set times", dest))
}

fn copy_xattrs(src: &Path, dest: &Path) -> Result<(), IdmapError> {
    let errno = |step, path: &Path| {
        let path = path.to_path_buf();
        move |e: rustix::io::Errno| IdmapError::Copy {
            step,
            path,
            source: e.into(),
        }
    };
    let size = match rustix::fs::llistxattr_query(src) {
        Ok(0) | Err(rustix::io::Errno::NOTSUP) => return Ok(()),
        other => other.map_err(errno("list xattrs", src))?,
    };
    let mut names = vec![0u8; size];
    let n = rustix::fs::llistxattr(src, &mut names[..]).map_err(errno("list xattrs", src))?;
    for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name);
        let len = rustix::fs::lgetxattr_query(src, name).map_err(errno("get xattr", src))?;
        let mut value = vec![0u8; len];
        let len =
            rustix::fs::lgetxattr(src, name, &mut value[..]).map_err(errno("get xattr", src))?;
        rustix::fs::lsetxattr(dest, name, &value[..len], rustix::fs::XattrFlags::empty())
            .map_err(errno("set xattr", dest))?;
    }
    Ok(())
}
