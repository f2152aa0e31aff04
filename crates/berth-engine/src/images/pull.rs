//! `pull`: fetch an image from its registry, unpack its layers, and record it under the name.

use std::io::BufReader;

use berth_image::{Client, ClientOptions, Digest, Platform, PulledImage, Reference};
use berth_storage::{decompressed, Image, UnpackOptions};

use super::{record_for, Images, ImagesError, RecordError, RemoveError};

/// Why a pull failed. Each message names the image.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The name is not a valid reference.
    #[error("invalid reference format: {0}")]
    Reference(#[from] berth_image::reference::ReferenceError),
    /// Talking to the registry, or storing a blob, failed.
    #[error("{0}")]
    Pull(#[from] berth_image::PullError),
    /// Unpacking a layer failed.
    #[error("pulling {reference}: layer {blob}: {source}")]
    Unpack {
        /// The image.
        reference: String,
        /// The layer blob.
        blob: Digest,
        /// What went wrong.
        #[source]
        source: Box<berth_storage::StoreError>,
    },
    /// Reading a stored blob failed.
    #[error("pulling {reference}: {source}")]
    Blob {
        /// The image.
        reference: String,
        /// What went wrong.
        #[source]
        source: berth_image::StoreError,
    },
    /// The image could not be recorded.
    #[error("pulling {reference}: {source}")]
    Record {
        /// The image.
        reference: String,
        /// What went wrong.
        #[source]
        source: RecordError,
    },
    /// A store failed.
    #[error("pulling {reference}: {source}")]
    Store {
        /// The image.
        reference: String,
        /// What went wrong.
        #[source]
        source: Box<RemoveError>,
    },
}

/// How to pull.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// Which platform to pick from an index (default: the host's).
    pub platform: Option<Platform>,
    /// How to reach the registry (credentials, `--tls-verify=false`, retries).
    pub client: ClientOptions,
}

impl Images {
    /// Pull `name` and record it under that name; returns the stored record.
    pub fn pull(&self, name: &str, options: &PullOptions) -> Result<Image, PullError> {
        let reference: Reference = name.parse()?;
        let label = reference.to_string();
        let store_err = |e: RemoveError| PullError::Store {
            reference: label.clone(),
            source: Box::new(e),
        };
        let _gc = self.gc_lock(false).map_err(store_err)?;
        let client = Client::for_reference(&reference, options.client.clone());
        let platform = options.platform.clone().unwrap_or_else(Platform::host);
        let pulled = berth_image::pull(&client, &self.blobs, &reference, &platform)?;
        self.unpack_layers(&label, &pulled)?;
        let config = self
            .config_of(&pulled)
            .map_err(|e| store_err(RemoveError::Images(e)))?;
        let mut image = record_for(
            &self.layers,
            &pulled.manifest_digest.to_string(),
            pulled
                .manifest
                .media_type
                .as_deref()
                .unwrap_or(berth_image::manifest::OCI_MANIFEST),
            &pulled.manifest,
            &config,
        )
        .map_err(|source| PullError::Record {
            reference: label.clone(),
            source,
        })?;
        if reference.tag().is_some() {
            image.repo_tags.push(label.clone());
        }
        let by = pulled
            .index_digest
            .as_ref()
            .unwrap_or(&pulled.manifest_digest);
        image
            .repo_digests
            .push(reference.with_digest(by.clone()).to_string());
        let locked = self
            .records
            .lock()
            .map_err(|e| store_err(RemoveError::from(e)))?;
        locked
            .put(&image)
            .map_err(|e| store_err(RemoveError::from(e)))
    }

    fn config_of(&self, pulled: &PulledImage) -> Result<super::ImageConfig, ImagesError> {
        Ok(super::ImageConfig::read(
            &self.blobs,
            &pulled.config.digest.to_string(),
        )?)
    }

    /// Unpack each layer blob on top of the one below (already unpacked layers are skipped).
    fn unpack_layers(&self, label: &str, pulled: &PulledImage) -> Result<(), PullError> {
        let config = self.config_of(pulled).map_err(|e| PullError::Store {
            reference: label.to_owned(),
            source: Box::new(RemoveError::Images(e)),
        })?;
        let mut parent: Option<String> = None;
        for (blob, diff_id) in pulled.layers.iter().zip(&config.rootfs.diff_ids) {
            let file = self
                .blobs
                .open_blob(&blob.digest)
                .map_err(|source| PullError::Blob {
                    reference: label.to_owned(),
                    source,
                })?;
            let unpack_err = |source| PullError::Unpack {
                reference: label.to_owned(),
                blob: blob.digest.clone(),
                source: Box::new(source),
            };
            let io_err = |e: std::io::Error| {
                unpack_err(berth_storage::StoreError::Io {
                    step: "read",
                    path: self.blobs.path(&blob.digest),
                    source: e,
                })
            };
            let reader = decompressed(BufReader::with_capacity(1 << 20, file)).map_err(io_err)?;
            let layer = self
                .layers
                .put(
                    parent.as_deref(),
                    diff_id,
                    reader,
                    &UnpackOptions::default(),
                )
                .map_err(unpack_err)?;
            parent = Some(layer.chain_id);
        }
        Ok(())
    }
}
