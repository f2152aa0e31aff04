//! Removing images (`rmi`, `image prune`) and collecting what no image uses any more.
//!
//! Records go first, then garbage collection removes every blob and layer that no remaining
//! image references. Collection holds the store's GC lock exclusively; pulls, loads and
//! imports hold it shared while they write blobs and layers that no record names yet.

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::path::PathBuf;

use berth_image::Reference;
use berth_storage::Image;
use rustix::fs::FlockOperation;

use super::{canonical_name, Images, ImagesError};

/// Why a removal failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    /// The name is an ID of an image with several names: docker's conflict rule.
    #[error(
        "conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories"
    )]
    ManyNames {
        /// The short image ID.
        short: String,
    },
    /// A container uses the image.
    #[error(
        "conflict: unable to remove repository reference \"{name}\" (must force) - container {container} is using its referenced image {short}"
    )]
    InUse {
        /// The name given.
        name: String,
        /// The container.
        container: String,
        /// The short image ID.
        short: String,
    },
    /// A store failed.
    #[error(transparent)]
    Images(#[from] ImagesError),
    /// The GC lock could not be taken.
    #[error("image store: locking {path}: {source}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Removing a blob or layer failed; the others were still tried.
    #[error("garbage collection: {}", .0.join("; "))]
    Collect(Vec<String>),
}

impl From<berth_storage::ImageStoreError> for RemoveError {
    fn from(e: berth_storage::ImageStoreError) -> Self {
        RemoveError::Images(e.into())
    }
}

/// What a removal did, in docker's terms.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Removed {
    /// Names taken off images (`busybox:latest`, as typed or canonical).
    pub untagged: Vec<String>,
    /// Image IDs, then layer chainIDs, that were deleted.
    pub deleted: Vec<String>,
    /// Bytes freed (blobs and unpacked layers).
    pub reclaimed: u64,
}

/// The GC lock of a storage root: shared by writers of unreferenced content, exclusive for
/// collection.
#[derive(Debug)]
pub struct GcLock {
    _file: File,
}

impl Images {
    /// Take the GC lock, shared (`exclusive == false`) or exclusive; waits.
    pub fn gc_lock(&self, exclusive: bool) -> Result<GcLock, RemoveError> {
        let path = self.root().join("gc.lock");
        let lock_err = |source| RemoveError::Lock {
            path: path.clone(),
            source,
        };
        let file = File::options()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(lock_err)?;
        let op = if exclusive {
            FlockOperation::LockExclusive
        } else {
            FlockOperation::LockShared
        };
        rustix::fs::flock(&file, op).map_err(|e| lock_err(e.into()))?;
        Ok(GcLock { _file: file })
    }

    /// `rmi NAME`: untag a name; delete the image when no name is left. An ID (or an ID
    /// prefix) deletes the image, which needs `force` if it has several names.
    pub fn remove(&self, name: &str, force: bool) -> Result<Removed, RemoveError> {
        let image = self.resolve(name)?;
        let by_name = canonical_name(name)
            .is_some_and(|c| image.repo_tags.contains(&c) || image.repo_digests.contains(&c));
        let last_name = image.repo_tags.len() <= 1;
        if !force && (!by_name || last_name) {
            if let Some(container) = self.container_using(&image)? {
                return Err(RemoveError::InUse {
                    name: name.to_owned(),
                    container,
                    short: short_id(&image.id),
                });
            }
        }
        let mut removed = Removed::default();
        let locked = self.records.lock()?;
        if by_name {
            // A name: take just that name off (docker's -f only skips the conflict checks);
            // the image goes when no tag or digest is left.
            let canonical = canonical_name(name).unwrap_or_default();
            let mut after = locked.untag(&canonical)?;
            removed.untagged.push(name.to_owned());
            // The last tag of a repository takes that repository's digests with it.
            let repository = canonical.parse::<Reference>().ok();
            while let Some(digest) = after
                .as_ref()
                .and_then(|i| last_tag_gone(i, repository.as_ref()))
            {
                after = locked.untag(&digest)?;
                removed.untagged.push(digest);
            }
            if after.is_some_and(|i| !i.repo_tags.is_empty() || !i.repo_digests.is_empty()) {
                return Ok(removed);
            }
        } else if image.repo_tags.len() > 1 && !force {
            return Err(RemoveError::ManyNames {
                short: short_id(&image.id),
            });
        }
        let image = self.records.get(&image.id)?.unwrap_or(image);
        removed.untagged.extend(image.repo_tags.iter().cloned());
        removed.untagged.extend(image.repo_digests.iter().cloned());
        locked.remove(&image.id)?;
        drop(locked);
        removed.deleted.push(image.id.clone());
        let collected = self.collect()?;
        removed.deleted.extend(collected.deleted);
        removed.reclaimed = collected.reclaimed;
        Ok(removed)
    }

    /// `image prune`: delete images without a tag (or, with `all`, every image), then collect.
    pub fn prune(&self, all: bool) -> Result<Removed, RemoveError> {
        let locked = self.records.lock()?;
        let mut removed = Removed::default();
        for image in self.records.list()? {
            let unused = self.container_using(&image)?.is_none();
            if unused && (all || image.repo_tags.is_empty()) {
                removed.untagged.extend(image.repo_tags.iter().cloned());
                removed.untagged.extend(image.repo_digests.iter().cloned());
                locked.remove(&image.id)?;
                removed.deleted.push(image.id);
            }
        }
        drop(locked);
        let collected = self.collect()?;
        removed.deleted.extend(collected.deleted);
        removed.reclaimed = collected.reclaimed;
        Ok(removed)
    }

    /// Remove every blob and layer no image references. Returns the layers removed and the
    /// bytes freed. Every removal is tried; failures are reported together.
    pub fn collect(&self) -> Result<Removed, RemoveError> {
        let _gc = self.gc_lock(true)?;
        let images = self.records.list()?;
        let (blobs_used, mut layers_used) = references(&images);
        let in_use = self.lowers_in_use()?;
        let all_layers = self.layers.list().map_err(ImagesError::from)?;
        // A layer below a container keeps its parents too.
        for layer in &all_layers {
            if self.layer_in_use(&in_use, &layer.chain_id, &layer.link) {
                layers_used.extend(self.ancestors(&layer.chain_id));
            }
        }
        let mut removed = Removed::default();
        let mut failures = Vec::new();
        for layer in all_layers {
            if layers_used.contains(&layer.chain_id) {
                continue;
            }
            let size = self
                .layers
                .diff_dir(&layer.chain_id)
                .ok()
                .and_then(|d| super::dir_size(&d).ok())
                .unwrap_or(0);
            match self.layers.remove(&layer.chain_id) {
                Ok(()) => {
                    removed.deleted.push(layer.chain_id);
                    removed.reclaimed += size;
                }
                Err(e) => failures.push(e.to_string()),
            }
        }
        for digest in self.blobs.list().map_err(ImagesError::from)? {
            if blobs_used.contains(&digest.to_string()) {
                continue;
            }
            let size = self.blobs.size(&digest).unwrap_or(0);
            match self.blobs.remove(&digest) {
                Ok(()) => removed.reclaimed += size,
                Err(e) => failures.push(e.to_string()),
            }
        }
        if failures.is_empty() {
            Ok(removed)
        } else {
            Err(RemoveError::Collect(failures))
        }
    }
}

impl Images {
    /// `chain_id` and every layer below it.
    fn ancestors(&self, chain_id: &str) -> Vec<String> {
        let mut chain = Vec::new();
        let mut next = Some(chain_id.to_owned());
        while let Some(id) = next {
            next = self.layers.get(&id).ok().flatten().and_then(|l| l.parent);
            chain.push(id);
        }
        chain
    }
}

/// The blobs (manifests, configs, layers, and the indexes images were pulled by) and layers
/// (every chainID of every image) that `images` use.
pub(super) fn references(images: &[Image]) -> (HashSet<String>, HashSet<String>) {
    let mut blobs = HashSet::new();
    let mut layers = HashSet::new();
    for image in images {
        blobs.insert(image.id.clone());
        blobs.insert(image.manifest_digest.clone());
        for name in &image.repo_digests {
            if let Some((_, digest)) = name.rsplit_once('@') {
                blobs.insert(digest.to_owned());
            }
        }
        for layer in &image.layers {
            blobs.insert(layer.blob.clone());
            layers.insert(layer.chain_id.clone());
        }
    }
    (blobs, layers)
}

/// A digest name of `repository` left on `image` when none of its tags is.
fn last_tag_gone(image: &Image, repository: Option<&Reference>) -> Option<String> {
    let repository = repository?;
    let same = |n: &String| {
        n.parse::<Reference>().is_ok_and(|r| {
            r.registry() == repository.registry() && r.repository() == repository.repository()
        })
    };
    if image.repo_tags.iter().any(same) {
        return None;
    }
    image.repo_digests.iter().find(|d| same(d)).cloned()
}

/// The 12-hex-digit short form of an image ID.
pub fn short_id(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}
