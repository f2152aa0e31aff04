//! Building an image record from a manifest, its config and the unpacked layers.

use std::collections::HashSet;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use berth_image::Manifest;
use berth_storage::{chain_id, Image, ImageLayer, LayerStore};

use super::ImageConfig;

/// Why a record could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The manifest and the config disagree on the number of layers.
    #[error("image {id}: the manifest lists {layers} layers but the config {diff_ids} diff IDs")]
    LayerCount {
        /// The image ID.
        id: String,
        /// Layers in the manifest.
        layers: usize,
        /// diffIDs in the config.
        diff_ids: usize,
    },
    /// A layer is not unpacked in the layer store.
    #[error("image {id}: layer {chain_id} is not in the layer store")]
    LayerMissing {
        /// The image ID.
        id: String,
        /// The missing layer.
        chain_id: String,
    },
    /// The layer store failed.
    #[error("image {id}: {source}")]
    Layers {
        /// The image ID.
        id: String,
        /// The store error.
        #[source]
        source: Box<berth_storage::StoreError>,
    },
    /// Measuring a layer failed.
    #[error("image {id}: measuring {path}: {source}")]
    Size {
        /// The image ID.
        id: String,
        /// The file that could not be read.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// The record of the image with `manifest` and `config` (ID `config_id`), whose layers are
/// already in `layers`.
pub fn record_for(
    layers: &LayerStore,
    manifest_digest: &str,
    manifest_media_type: &str,
    manifest: &Manifest,
    config: &ImageConfig,
) -> Result<Image, RecordError> {
    let id = manifest.config.digest.to_string();
    let diff_ids = &config.rootfs.diff_ids;
    if diff_ids.len() != manifest.layers.len() {
        return Err(RecordError::LayerCount {
            id,
            layers: manifest.layers.len(),
            diff_ids: diff_ids.len(),
        });
    }
    let mut parent: Option<String> = None;
    let mut image_layers = Vec::new();
    let mut size = 0;
    for (blob, diff_id) in manifest.layers.iter().zip(diff_ids) {
        let chain = chain_id(parent.as_deref(), diff_id);
        let layers_err = |source| RecordError::Layers {
            id: id.clone(),
            source: Box::new(source),
        };
        if layers.get(&chain).map_err(layers_err)?.is_none() {
            return Err(RecordError::LayerMissing {
                id,
                chain_id: chain,
            });
        }
        let diff = layers.diff_dir(&chain).map_err(layers_err)?;
        size += dir_size(&diff).map_err(|(path, source)| RecordError::Size {
            id: id.clone(),
            path,
            source,
        })?;
        image_layers.push(ImageLayer {
            blob: blob.digest.to_string(),
            media_type: blob.media_type.clone(),
            size: blob.size,
            diff_id: diff_id.clone(),
            chain_id: chain.clone(),
        });
        parent = Some(chain);
    }
    Ok(Image {
        id,
        manifest_digest: manifest_digest.to_owned(),
        manifest_media_type: manifest_media_type.to_owned(),
        repo_tags: Vec::new(),
        repo_digests: Vec::new(),
        layers: image_layers,
        size,
        created: config.created.clone(),
        platform: config.platform(),
    })
}

/// Bytes in the files under `dir` (not directories; a hard-linked file counted once), as
/// docker measures a layer.
pub fn dir_size(dir: &Path) -> Result<u64, (PathBuf, io::Error)> {
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let entries = std::fs::read_dir(&path).map_err(|e| (path.clone(), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| (path.clone(), e))?;
            let meta = entry.metadata().map_err(|e| (entry.path(), e))?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.nlink() == 1 || seen.insert((meta.dev(), meta.ino())) {
                total += meta.len();
            }
        }
    }
    Ok(total)
}
