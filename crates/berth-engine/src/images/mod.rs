//! Images: the stores behind `berth pull/push/images/rmi/tag/save/load/import`, and the
//! operations on them. Names the user types are resolved here, as docker does: a reference
//! first (`busybox` is `docker.io/library/busybox:latest`), then an image ID prefix.

mod added;
mod archive;
mod config;
mod import;
mod load;
mod pull;
mod push;
mod record;
mod remove;
mod save;
mod sink;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use berth_image::{BlobStore, Reference};
use berth_storage::{ContainerStore, Image, ImageStore, LayerStore};

pub use archive::{ArchiveError, ArchiveFormat};
pub use config::{ConfigError, ImageConfig};
pub use import::{ImportError, ImportOptions};
pub use load::{LoadError, Loaded, LoadedImage};
pub use pull::{PullError, PullOptions};
pub use push::PushError;
pub use record::{dir_size, record_for, RecordError};
pub use remove::{short_id, GcLock, RemoveError, Removed};
pub use save::SaveError;

/// Why an image operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ImagesError {
    /// No image by that name or ID.
    #[error("No such image: {name}")]
    NoSuchImage {
        /// What the user typed.
        name: String,
    },
    /// The blob store could not be opened or read.
    #[error("{0}")]
    Blobs(#[from] berth_image::StoreError),
    /// The layer store could not be opened or read.
    #[error("{0}")]
    Layers(#[from] berth_storage::StoreError),
    /// The image store could not be opened or read.
    #[error("{0}")]
    Records(#[from] berth_storage::ImageStoreError),
    /// The container store could not be opened or read.
    #[error("{0}")]
    Containers(#[from] berth_storage::ContainerError),
    /// An image config is unreadable.
    #[error("{0}")]
    Config(#[from] ConfigError),
}

/// The image side of a storage root: blobs, unpacked layers and image records.
#[derive(Debug)]
pub struct Images {
    root: PathBuf,
    /// Content-addressed blobs (`blobs/sha256/`).
    pub blobs: BlobStore,
    /// Unpacked layers, keyed by chainID.
    pub layers: LayerStore,
    /// Image records and their names.
    pub records: ImageStore,
    /// Containers' writable layers (they keep the image layers below them alive).
    pub containers: ContainerStore,
}

impl Images {
    /// Open the stores under `storage_root`, creating them if needed and removing what a crash
    /// left half-written.
    pub fn open(storage_root: &Path) -> Result<Images, ImagesError> {
        // One spelling of the root, so paths recorded by one store match another's; each
        // store is opened (and swept of a crash's leftovers) once.
        let io_err = |step, source| berth_storage::StoreError::Io {
            step,
            path: storage_root.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(storage_root).map_err(|e| io_err("create", e))?;
        let storage_root = &storage_root
            .canonicalize()
            .map_err(|e| io_err("resolve", e))?;
        Ok(Images {
            root: storage_root.to_path_buf(),
            blobs: BlobStore::open(storage_root)?,
            layers: LayerStore::open(storage_root)?,
            records: ImageStore::open(storage_root)?,
            containers: ContainerStore::open(storage_root)?,
        })
    }

    /// The storage root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The image `name` refers to: a reference (tag or digest), else an image ID or prefix.
    pub fn resolve(&self, name: &str) -> Result<Image, ImagesError> {
        if let Some(canonical) = canonical_name(name) {
            if let Some(image) = self.records.by_name(&canonical)? {
                return Ok(image);
            }
        }
        self.records
            .by_id_prefix(name)?
            .ok_or_else(|| ImagesError::NoSuchImage {
                name: name.to_owned(),
            })
    }

    /// The lower directories (as containers name them) that some container uses.
    pub fn lowers_in_use(&self) -> Result<HashSet<PathBuf>, ImagesError> {
        Ok(self
            .containers
            .list()?
            .into_iter()
            .flat_map(|c| c.lowers)
            .collect())
    }

    /// Is the layer `chain_id` (with short link `link`) below some container?
    pub fn layer_in_use(&self, in_use: &HashSet<PathBuf>, chain_id: &str, link: &str) -> bool {
        let by_link = self.layers.root().join("l").join(link);
        let by_dir = self.layers.diff_dir(chain_id).ok();
        in_use.contains(&by_link) || by_dir.is_some_and(|d| in_use.contains(&d))
    }

    /// A container whose root filesystem is `image` (its top layer is the container's top
    /// lower directory).
    pub fn container_using(&self, image: &Image) -> Result<Option<String>, ImagesError> {
        let Some(top) = image.top_layer() else {
            return Ok(None);
        };
        let Some(layer) = self.layers.get(top)? else {
            return Ok(None);
        };
        for container in self.containers.list()? {
            let uses = container.lowers.first().is_some_and(|first| {
                self.layer_in_use(&HashSet::from([first.clone()]), top, &layer.link)
            });
            if uses {
                return Ok(Some(container.id));
            }
        }
        Ok(None)
    }

    /// The parsed config of `image`.
    pub fn config(&self, image: &Image) -> Result<ImageConfig, ImagesError> {
        Ok(ImageConfig::read(&self.blobs, &image.id)?)
    }
}

/// The canonical form of a name (`busybox` → `docker.io/library/busybox:latest`), if it
/// parses as a reference.
pub fn canonical_name(name: &str) -> Option<String> {
    name.parse::<Reference>().ok().map(|r| r.to_string())
}

/// How docker shows a repository: `busybox` for `docker.io/library/busybox`, `user/x` for
/// other Docker Hub repositories, `host:port/x` for the rest.
pub fn familiar_repository(reference: &Reference) -> String {
    match reference.registry() {
        "docker.io" => reference
            .repository()
            .strip_prefix("library/")
            .unwrap_or(reference.repository())
            .to_owned(),
        registry => format!("{registry}/{}", reference.repository()),
    }
}
