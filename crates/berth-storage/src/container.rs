//! The container store: one writable overlay layer per container, over image layers.
//!
//! Layout under the store root:
//! ```text
//! containers/<id>/container.json   the record (id, lower dirs, size limit)
//! containers/<id>/merged/          the overlay mount point (the container's rootfs)
//! containers/<id>/upper/, work/    the writable layer (no size limit, or an XFS project quota)
//! containers/<id>/rootfs.img       with size=N elsewhere: a sparse ext4 image of N bytes ...
//! containers/<id>/fs/upper/, work/ ... loop-mounted on fs/, holding the writable layer
//! containers/<id>/empty/           the only lower of a container without image layers
//! container-tmp/<id>-<what>-<pid>-<n>.incomplete/   creations and removals in progress
//! ```
//! A container is built in `container-tmp/` (under an `flock`), synced, then renamed into
//! `containers/`; removal unmounts, renames it back into `container-tmp/` and deletes it.
//! Anything in `container-tmp/` that nobody holds locked is unfinished, and
//! [`ContainerStore::open`] unmounts, detaches and deletes it.
//!
//! With `size=N` on XFS mounted with `prjquota`, `containers/<id>/` gets a project id of its
//! own (one more than the largest in `containers/` and `container-tmp/`, allocated under an
//! `flock` on `container-tmp/`), inherited by everything in it, limited to N bytes; `remove`
//! clears the limit. On any other filesystem the limit is the ext4 image.
//!
//! A container without lower directories (`FROM scratch`) gets an empty `empty/` lower, since
//! overlayfs needs at least one: its rootfs is still an overlay whose writes land in the upper.
//!
//! After `create` nothing is mounted; `mount` mounts the image (if any) and the overlay,
//! `unmount` undoes both.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rustix::fs::FlockOperation;

use crate::idmap::{self, IdMap, IdmapError};
use crate::mounts::{force_unmount, is_mount_root, unmount_if_mounted};
use crate::overlay::{mount_overlay, mount_overlay_fds, OverlayError, Upper};
use crate::quota::{self, BackingFs, QuotaError, RootfsOptions};

const CONTAINERS: &str = "containers";
const TMP: &str = "container-tmp";
const RECORD: &str = "container.json";
const MERGED: &str = "merged";
const UPPER: &str = "upper";
const WORK: &str = "work";
const IMAGE: &str = "rootfs.img";
const IMAGE_MOUNT: &str = "fs";
const EMPTY_LOWER: &str = "empty";
const INCOMPLETE_SUFFIX: &str = ".incomplete";
/// Layers copied with shifted owners, for user namespaces where idmapped mounts cannot be had.
const MAPPED: &str = "mapped";
/// Longest container id (docker's are 64 hex digits; names are shorter).
pub const MAX_ID_LEN: usize = 128;

/// Why a container store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// The id is not usable as a directory name.
    #[error("invalid container id {id:?}: {reason}")]
    InvalidId {
        /// The id given.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No container with this id.
    #[error("container {id} has no root filesystem in the store")]
    NotFound {
        /// The id.
        id: String,
    },
    /// A container with this id exists.
    #[error("container {id} already has a root filesystem in the store")]
    AlreadyExists {
        /// The id.
        id: String,
    },
    /// A lower directory is missing or unusable.
    #[error("container {id}: lower directory {path}: {reason}")]
    BadLower {
        /// The container.
        id: String,
        /// The lower directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A filesystem operation failed.
    #[error("container {id}: {step} {path}: {source}")]
    Io {
        /// The container.
        id: String,
        /// What was being done.
        step: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The record is unreadable.
    #[error("container store: bad record {path}: {source}")]
    Record {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The size limit could not be set up.
    #[error("container {id}: {source}")]
    Quota {
        /// The container.
        id: String,
        /// What went wrong.
        #[source]
        source: QuotaError,
    },
    /// The overlay could not be mounted.
    #[error("container {id}: {source}")]
    Overlay {
        /// The container.
        id: String,
        /// What went wrong.
        #[source]
        source: OverlayError,
    },
    /// Something is still mounted where a directory was to be deleted; it was kept.
    #[error("container store: {path} is still mounted; not deleting {dir}")]
    StillMounted {
        /// The mount point.
        path: PathBuf,
        /// The directory kept.
        dir: PathBuf,
    },
    /// The layers could not be made usable in the container's user namespace.
    #[error("container {id}: {source}")]
    Idmap {
        /// The container.
        id: String,
        /// What went wrong.
        #[source]
        source: IdmapError,
    },
    /// Tearing down failed; every failure is listed.
    #[error("container {id}: {what}: {}", list(errors))]
    Teardown {
        /// The container (or leftover directory name).
        id: String,
        /// What was being torn down.
        what: &'static str,
        /// Each failure, in order.
        errors: Vec<ContainerError>,
    },
}

fn list(errors: &[ContainerError]) -> String {
    let texts: Vec<String> = errors.iter().map(ToString::to_string).collect();
    texts.join("; ")
}

fn io_err(id: &str, step: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ContainerError {
    let (id, path) = (id.to_owned(), path.to_path_buf());
    move |source| ContainerError::Io {
        id,
        step,
        path,
        source,
    }
}

fn quota_err(id: &str) -> impl FnOnce(QuotaError) -> ContainerError {
    let id = id.to_owned();
    move |source| ContainerError::Quota { id, source }
}

/// A container's writable layer, as recorded in `container.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContainerLayer {
    /// The container id.
    pub id: String,
    /// The image's layer directories, top-most first (empty: no image layers).
    pub lowers: Vec<PathBuf>,
    /// The size limit of the writable layer in bytes (a loop-mounted ext4 image), if any.
    pub size: Option<u64>,
    /// The XFS project whose quota limits the writable layer (instead of an ext4 image).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<u32>,
    /// How long `mkfs.ext4` took; only set on the value returned by [`ContainerStore::create`].
    #[serde(skip)]
    pub mkfs_time: Option<Duration>,
    /// The container's user namespace maps, if it has its own: the writable layer belongs to
    /// its root, and the lowers are idmapped (or are shifted copies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idmap: Option<IdMap>,
    /// Whether the lowers are mounted idmapped (else, with `idmap`, `lowers` are the shifted
    /// copies).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub idmapped_lowers: bool,
    /// Only on the value returned by [`ContainerStore::create`]: why idmapped lowers could not
    /// be used and how long the shifted copies took (`None` time: they existed already).
    #[serde(skip)]
    pub copied: Option<(String, Option<Duration>)>,
}

/// Check that `id` is a safe directory name: 1 to [`MAX_ID_LEN`] characters of
/// `[a-zA-Z0-9_.-]`, starting with a letter or digit (so never `.`, `..` or hidden).
pub fn validate_id(id: &str) -> Result<(), ContainerError> {
    let bad = |reason| ContainerError::InvalidId {
        id: id.to_owned(),
        reason,
    };
    if id.is_empty() {
        return Err(bad("empty"));
    }
    if id.len() > MAX_ID_LEN {
        return Err(bad("longer than 128 characters"));
    }
    if !id.as_bytes()[0].is_ascii_alphanumeric() {
        return Err(bad("must start with a letter or digit"));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(bad("only letters, digits, '_', '.' and '-' are allowed"));
    }
    Ok(())
}

/// Containers' writable layers under one root directory.
#[derive(Debug)]
pub struct ContainerStore {
    root: PathBuf,
}

impl ContainerStore {
    /// Open (creating if needed) the store at `root`; unmount and delete unfinished creations
    /// and removals left in `container-tmp/`.
    pub fn open(root: impl Into<PathBuf>) -> Result<ContainerStore, ContainerError> {
        let root = root.into();
        for dir in [CONTAINERS, TMP] {
            let path = root.join(dir);
            fs::create_dir_all(&path).map_err(io_err("-", "create", &path))?;
        }
        // Absolute and without symlinks: the paths are given to the kernel and compared with
        // the loop devices' backing files.
        let root = fs::canonicalize(&root).map_err(io_err("-", "resolve", &root))?;
        let store = ContainerStore { root };
        store.remove_incomplete()?;
        Ok(store)
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Create the writable layer of container `id` over `lowers` (top-most first, e.g. from
    /// [`crate::LayerStore::lower_dirs`]). Nothing is mounted afterwards. On failure nothing is
    /// left behind (what cleanup could not remove is reported, and removed by the next `open`).
    pub fn create(
        &self,
        id: &str,
        lowers: &[PathBuf],
        options: &RootfsOptions,
    ) -> Result<ContainerLayer, ContainerError> {
        validate_id(id)?;
        check_lowers(id, lowers)?;
        if self.container_dir(id).symlink_metadata().is_ok() {
            return Err(ContainerError::AlreadyExists { id: id.to_owned() });
        }
        let xfs_quota = match options.size {
            Some(_) => {
                quota::detect_backing(&self.root).map_err(quota_err(id))?
                    == BackingFs::XfsProjectQuota
            }
            None => false,
        };
        let tmp = self.new_tmp_dir(id, "creating")?;
        let mut layer = ContainerLayer {
            id: id.to_owned(),
            lowers: lowers.to_vec(),
            size: options.size,
            project: None,
            mkfs_time: None,
            idmap: options.idmap.clone(),
            idmapped_lowers: false,
            copied: None,
        };
        if let Some(map) = &options.idmap {
            self.choose_lowers(&mut layer, map)?;
        }
        let built = self
            .build(&tmp.path, &mut layer, xfs_quota)
            .and_then(|()| self.commit(&tmp.path, id));
        let Err(e) = built else {
            return Ok(layer);
        };
        let mut errors = vec![e];
        errors.extend(teardown(id, &tmp.path).err());
        errors.extend(self.clear_project(&layer).err());
        drop(tmp);
        match errors.len() {
            1 => Err(errors.remove(0)),
            _ => Err(ContainerError::Teardown {
                id: id.to_owned(),
                what: "creating failed, then cleaning up failed",
                errors,
            }),
        }
    }

    /// The container `id`, if it exists.
    pub fn get(&self, id: &str) -> Result<Option<ContainerLayer>, ContainerError> {
        validate_id(id)?;
        let path = self.container_dir(id).join(RECORD);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| ContainerError::Record { path, source }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(id, "read", &path)(e)),
        }
    }

    /// Every container, in no particular order.
    pub fn list(&self) -> Result<Vec<ContainerLayer>, ContainerError> {
        let dir = self.root.join(CONTAINERS);
        let mut layers = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err("-", "list", &dir))? {
            let entry = entry.map_err(io_err("-", "list", &dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if validate_id(&name).is_err() {
                continue; // not a container directory
            }
            if let Some(layer) = self.get(&name)? {
                layers.push(layer);
            }
        }
        Ok(layers)
    }

    /// Mount the container's rootfs (its image first, if size-limited) and return the merged
    /// directory. Mounting a mounted container returns the same path.
    pub fn mount(&self, id: &str) -> Result<PathBuf, ContainerError> {
        let layer = self.require(id)?;
        let dir = self.container_dir(id);
        let _lock = lock_dir(id, &dir, FlockOperation::LockExclusive)?;
        let merged = dir.join(MERGED);
        if is_mount_root(&merged).map_err(io_err(id, "stat", &merged))? {
            return Ok(merged);
        }
        let mounted_image = self.mount_image(&layer, &dir)?;
        let (upper, work) = upper_and_work(&layer, &dir);
        let lowers = if layer.lowers.is_empty() {
            vec![dir.join(EMPTY_LOWER)]
        } else {
            layer.lowers.clone()
        };
        let upper = Upper {
            upper: &upper,
            work: &work,
        };
        let mounted = match (&layer.idmap, layer.idmapped_lowers) {
            (Some(map), true) => match idmap::idmapped_lowers(&lowers, map) {
                Ok(fds) => mount_overlay_fds(&fds, Some(upper), &merged),
                Err(source) => {
                    if mounted_image {
                        let _ = force_unmount(&dir.join(IMAGE_MOUNT));
                    }
                    return Err(ContainerError::Idmap {
                        id: id.to_owned(),
                        source,
                    });
                }
            },
            _ => mount_overlay(&lowers, Some(upper), &merged),
        };
        if let Err(source) = mounted {
            if mounted_image {
                // Best effort; `unmount` or `remove` retries.
                let _ = force_unmount(&dir.join(IMAGE_MOUNT));
            }
            return Err(ContainerError::Overlay {
                id: id.to_owned(),
                source,
            });
        }
        Ok(merged)
    }

    /// Unmount the container's rootfs and its image, if mounted.
    pub fn unmount(&self, id: &str) -> Result<(), ContainerError> {
        self.require(id)?;
        let dir = self.container_dir(id);
        let _lock = lock_dir(id, &dir, FlockOperation::LockExclusive)?;
        for mount_point in [dir.join(MERGED), dir.join(IMAGE_MOUNT)] {
            unmount_if_mounted(&mount_point).map_err(io_err(id, "unmount", &mount_point))?;
        }
        Ok(())
    }

    /// Remove the container's writable layer: unmount (lazily if busy), detach its loop device,
    /// delete its directory. Keeps going after a failure and reports every one.
    pub fn remove(&self, id: &str) -> Result<(), ContainerError> {
        let layer = self.require(id)?;
        let dir = self.container_dir(id);
        let lock = lock_dir(id, &dir, FlockOperation::LockExclusive)?;
        let mut errors = unmount_all(id, &dir);
        let doomed = self.unique_tmp_path(id, "removing");
        let target = match fs::rename(&dir, &doomed) {
            Ok(()) => doomed,
            Err(e) => {
                errors.push(io_err(id, "move out", &dir)(e));
                dir
            }
        };
        if let Err(e) = teardown(id, &target) {
            errors.push(e);
        }
        errors.extend(self.clear_project(&layer).err());
        drop(lock);
        if let Err(e) = sync_dir(id, &self.root.join(CONTAINERS)) {
            errors.push(e);
        }
        match errors.is_empty() {
            true => Ok(()),
            false => Err(ContainerError::Teardown {
                id: id.to_owned(),
                what: "removing",
                errors,
            }),
        }
    }

    /// The directory the container's rootfs is mounted on.
    pub fn merged_dir(&self, id: &str) -> Result<PathBuf, ContainerError> {
        validate_id(id)?;
        Ok(self.container_dir(id).join(MERGED))
    }

    /// The container's writable layer (overlay upper directory).
    pub fn upper_dir(&self, id: &str) -> Result<PathBuf, ContainerError> {
        let layer = self.require(id)?;
        Ok(upper_and_work(&layer, &self.container_dir(id)).0)
    }

    /// For a container with its own user namespace: idmapped lowers if this kernel and the
    /// layers' filesystem allow them (tried now), else shifted copies (made once per layer and
    /// map, reused).
    fn choose_lowers(&self, layer: &mut ContainerLayer, map: &IdMap) -> Result<(), ContainerError> {
        let reason = match idmap::idmap_wanted() {
            false => format!("{} is set", idmap::FORCE_COPY_ENV),
            true => match idmap::idmapped_lowers(&layer.lowers, map) {
                Ok(_) => {
                    layer.idmapped_lowers = true;
                    return Ok(());
                }
                Err(e) => e.to_string(),
            },
        };
        let (copies, took) = idmap::mapped_copies(&self.root.join(MAPPED), &layer.lowers, map)
            .map_err(|source| ContainerError::Idmap {
                id: layer.id.clone(),
                source,
            })?;
        layer.lowers = copies;
        layer.copied = Some((reason, took));
        Ok(())
    }

    fn require(&self, id: &str) -> Result<ContainerLayer, ContainerError> {
        self.get(id)?
            .ok_or_else(|| ContainerError::NotFound { id: id.to_owned() })
    }

    fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join(CONTAINERS).join(id)
    }

    /// Mount a size-limited container's image on `fs/` unless it is; true if mounted now.
    fn mount_image(&self, layer: &ContainerLayer, dir: &Path) -> Result<bool, ContainerError> {
        let target = dir.join(IMAGE_MOUNT);
        if layer.size.is_none()
            || layer.project.is_some()
            || is_mount_root(&target).map_err(io_err(&layer.id, "stat", &target))?
        {
            return Ok(false);
        }
        quota::mount_image(&dir.join(IMAGE), &target).map_err(quota_err(&layer.id))?;
        Ok(true)
    }

    /// Fill the unfinished container directory `dir`: writable layer, mount point, record.
    /// With `xfs_quota`, the size limit is a project quota on `dir` (set first, so that all
    /// in it inherits the project); otherwise an ext4 image.
    fn build(
        &self,
        dir: &Path,
        layer: &mut ContainerLayer,
        xfs_quota: bool,
    ) -> Result<(), ContainerError> {
        let id = layer.id.clone();
        let mkdir = |path: PathBuf| fs::create_dir(&path).map_err(io_err(&id, "create", &path));
        if let (Some(size), true) = (layer.size, xfs_quota) {
            layer.project = Some(self.limit_with_project(&id, dir, size)?);
        }
        mkdir(dir.join(MERGED))?;
        if layer.lowers.is_empty() {
            mkdir(dir.join(EMPTY_LOWER))?;
        }
        match (layer.size, layer.project) {
            (Some(size), None) => {
                layer.mkfs_time = Some(make_image_layer(&id, dir, size, root_owner(layer))?)
            }
            _ => {
                for name in [UPPER, WORK] {
                    mkdir(dir.join(name))?;
                    chown_to(&id, &dir.join(name), root_owner(layer))?;
                }
            }
        }
        write_record(dir, layer)?;
        sync_dir(&id, dir)
    }

    /// Allocate a project id (under a lock on `container-tmp/`) and limit `dir` to `size`.
    fn limit_with_project(&self, id: &str, dir: &Path, size: u64) -> Result<u32, ContainerError> {
        let tmp = self.root.join(TMP);
        let _lock = lock_dir(id, &tmp, FlockOperation::LockExclusive)?;
        let containers = self.root.join(CONTAINERS);
        let project = quota::next_project_id(&[&containers, &tmp]).map_err(quota_err(id))?;
        quota::limit_project(dir, project, size).map_err(quota_err(id))?;
        Ok(project)
    }

    /// Drop the project quota of `layer`, if it has one.
    fn clear_project(&self, layer: &ContainerLayer) -> Result<(), ContainerError> {
        match layer.project {
            Some(project) => {
                quota::clear_project(&self.root, project).map_err(quota_err(&layer.id))
            }
            None => Ok(()),
        }
    }

    /// Rename the finished `tmp` directory to `containers/<id>`.
    fn commit(&self, tmp: &Path, id: &str) -> Result<(), ContainerError> {
        let dir = self.container_dir(id);
        match fs::rename(tmp, &dir) {
            Ok(()) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTEMPTY) | Some(libc::EEXIST)) => {
                return Err(ContainerError::AlreadyExists { id: id.to_owned() })
            }
            Err(e) => return Err(io_err(id, "commit", &dir)(e)),
        }
        sync_dir(id, &self.root.join(CONTAINERS))
    }

    /// A fresh `container-tmp/` path: `<id>-<what>-<pid>-<n>.incomplete`.
    fn unique_tmp_path(&self, id: &str, what: &str) -> PathBuf {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{id}-{what}-{}-{n}{INCOMPLETE_SUFFIX}", std::process::id());
        self.root.join(TMP).join(name)
    }

    fn new_tmp_dir(&self, id: &str, what: &str) -> Result<TmpDir, ContainerError> {
        loop {
            let path = self.unique_tmp_path(id, what);
            fs::create_dir(&path).map_err(io_err(id, "create", &path))?;
            // A concurrent `open` may sweep it between mkdir and flock: then make another.
            let Ok(lock) = lock_dir(id, &path, FlockOperation::LockExclusive) else {
                continue;
            };
            if crate::mounts::same_file(&lock, &path) {
                return Ok(TmpDir { path, _lock: lock });
            }
        }
    }

    /// Tear down everything in `container-tmp/` that no live process holds locked.
    fn remove_incomplete(&self) -> Result<(), ContainerError> {
        let tmp = self.root.join(TMP);
        let mut errors = Vec::new();
        for entry in fs::read_dir(&tmp).map_err(io_err("-", "list", &tmp))? {
            let path = entry.map_err(io_err("-", "list", &tmp))?.path();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            let name = name.unwrap_or_default();
            let Ok(lock) = lock_dir(&name, &path, FlockOperation::NonBlockingLockExclusive) else {
                continue; // a live creation or removal, or not a directory we can open
            };
            if let Err(e) = teardown(&name, &path) {
                errors.push(e);
            }
            drop(lock);
        }
        match errors.is_empty() {
            true => Ok(()),
            false => Err(ContainerError::Teardown {
                id: "-".into(),
                what: "removing unfinished containers",
                errors,
            }),
        }
    }
}

/// The upper and work directories of `layer`, whose directory is `dir`.
fn upper_and_work(layer: &ContainerLayer, dir: &Path) -> (PathBuf, PathBuf) {
    let base = match (layer.size, layer.project) {
        (Some(_), None) => dir.join(IMAGE_MOUNT),
        _ => dir.to_path_buf(),
    };
    (base.join(UPPER), base.join(WORK))
}

/// Each lower must be an existing directory with a UTF-8 path (the mount API takes strings).
fn check_lowers(id: &str, lowers: &[PathBuf]) -> Result<(), ContainerError> {
    for lower in lowers {
        let bad = |reason: String| ContainerError::BadLower {
            id: id.to_owned(),
            path: lower.clone(),
            reason,
        };
        if lower.to_str().is_none() {
            return Err(bad("not valid UTF-8".into()));
        }
        match fs::metadata(lower) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(bad("not a directory".into())),
            Err(e) => return Err(bad(e.to_string())),
        }
    }
    Ok(())
}

/// Make `dir/rootfs.img` (ext4, `size` bytes), mount it on `dir/fs`, create `upper/` and
/// `work/` in it, unmount it (which detaches the loop device). Returns mkfs's time.
fn make_image_layer(
    id: &str,
    dir: &Path,
    size: u64,
    owner: Option<(u32, u32)>,
) -> Result<Duration, ContainerError> {
    let image = dir.join(IMAGE);
    let target = dir.join(IMAGE_MOUNT);
    fs::create_dir(&target).map_err(io_err(id, "create", &target))?;
    let mkfs_time = quota::make_image(&image, size).map_err(quota_err(id))?;
    quota::mount_image(&image, &target).map_err(quota_err(id))?;
    let made = [UPPER, WORK].into_iter().try_for_each(|name| {
        let path = target.join(name);
        fs::create_dir(&path).map_err(io_err(id, "create", &path))?;
        chown_to(id, &path, owner)
    });
    let unmounted = unmount_if_mounted(&target).map_err(io_err(id, "unmount", &target));
    made?;
    unmounted?;
    Ok(mkfs_time)
}

/// The host uid and gid of the container's root, when it has its own user namespace.
fn root_owner(layer: &ContainerLayer) -> Option<(u32, u32)> {
    let map = layer.idmap.as_ref()?;
    Some((map.host_uid(0)?, map.host_gid(0)?))
}

/// Give `path` to `owner` (the container's root), if any: overlayfs then creates the
/// container's files as it.
fn chown_to(id: &str, path: &Path, owner: Option<(u32, u32)>) -> Result<(), ContainerError> {
    match owner {
        Some((uid, gid)) => {
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(io_err(id, "chown", path))
        }
        None => Ok(()),
    }
}

/// Write `dir/container.json`: tmp file, fsync, rename.
fn write_record(dir: &Path, layer: &ContainerLayer) -> Result<(), ContainerError> {
    let path = dir.join(RECORD);
    let tmp = dir.join(format!("{RECORD}.tmp"));
    let json = serde_json::to_vec_pretty(layer).map_err(|source| ContainerError::Record {
        path: path.clone(),
        source,
    })?;
    let write = || -> io::Result<()> {
        let mut file = File::create(&tmp)?;
        io::Write::write_all(&mut file, &json)?;
        file.sync_all()
    };
    write().map_err(io_err(&layer.id, "write", &tmp))?;
    fs::rename(&tmp, &path).map_err(io_err(&layer.id, "rename", &path))
}

/// Unmount the overlay and the image of the container directory `dir` (lazily if busy).
fn unmount_all(id: &str, dir: &Path) -> Vec<ContainerError> {
    [dir.join(MERGED), dir.join(IMAGE_MOUNT)]
        .into_iter()
        .filter_map(|path| {
            force_unmount(&path)
                .map_err(io_err(id, "unmount", &path))
                .err()
        })
        .collect()
}

/// Unmount, detach and delete the container directory `dir`, reporting every failure. The
/// directory is kept if something stays mounted in it (deleting would descend into the mount).
fn teardown(id: &str, dir: &Path) -> Result<(), ContainerError> {
    let mut errors = unmount_all(id, dir);
    let image = dir.join(IMAGE);
    errors.extend(
        quota::detach_loop_devices(&image)
            .into_iter()
            .map(|source| quota_err(id)(source)),
    );
    let mounted: Vec<PathBuf> = [dir.join(MERGED), dir.join(IMAGE_MOUNT)]
        .into_iter()
        .filter(|path| is_mount_root(path).unwrap_or(true))
        .collect();
    for path in &mounted {
        errors.push(ContainerError::StillMounted {
            path: path.clone(),
            dir: dir.to_path_buf(),
        });
    }
    if mounted.is_empty() {
        if let Err(e) = delete(dir) {
            errors.push(io_err(id, "delete", dir)(e));
        }
    }
    match errors.is_empty() {
        true => Ok(()),
        false => Err(ContainerError::Teardown {
            id: id.to_owned(),
            what: "tearing down",
            errors,
        }),
    }
}

/// Delete the directory tree (or stray file) at `path`; gone already is fine.
fn delete(path: &Path) -> io::Result<()> {
    let result = match path.symlink_metadata() {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// A directory in `container-tmp/`, locked while this process builds it.
struct TmpDir {
    path: PathBuf,
    _lock: File,
}

/// Open the directory `path` and `flock` it with `operation`.
fn lock_dir(id: &str, path: &Path, operation: FlockOperation) -> Result<File, ContainerError> {
    let dir = File::open(path).map_err(io_err(id, "open", path))?;
    rustix::fs::flock(&dir, operation).map_err(|e| io_err(id, "lock", path)(e.into()))?;
    Ok(dir)
}

fn sync_dir(id: &str, path: &Path) -> Result<(), ContainerError> {
    File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(io_err(id, "sync", path))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ids_are_safe_directory_names() {
        for good in ["a", "web-1", "my_app.v2", &"f".repeat(64), &"x".repeat(128)] {
            assert!(validate_id(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "-flag",
            "a/b",
            "../x",
            "a b",
            "é",
            "a\0b",
            &"x".repeat(129),
        ] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }
}
