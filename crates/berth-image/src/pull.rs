//! Pulling an image: resolve the manifest (picking a platform from an index),
//! then store the config and every layer, verified, in the blob store.
//!
//! Blobs are stored before the manifests that reference them, so a manifest
//! present in the store implies its blobs are too. Layers already in the store
//! are not downloaded again, so an interrupted pull is completed by the next one.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;

use crate::client::{Client, ClientError};
use crate::digest::Digest;
use crate::manifest::{Descriptor, Manifest, ManifestError, ManifestKind, Platform};
use crate::reference::Reference;
use crate::store::{BlobStore, StoreError};

/// How many layers download at once.
pub const PARALLEL_DOWNLOADS: usize = 3;

/// Errors from a pull; each names the image.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("pulling {reference}: {source}")]
    Registry {
        reference: String,
        source: ClientError,
    },
    #[error("pulling {reference}: {source}")]
    Manifest {
        reference: String,
        source: ManifestError,
    },
    #[error("pulling {reference}: index entry {digest} for {platform} is itself an index")]
    NestedIndex {
        reference: String,
        digest: Digest,
        platform: String,
    },
    #[error("pulling {reference}: storing manifest: {source}")]
    Store {
        reference: String,
        source: StoreError,
    },
    #[error("pulling {reference}: a download thread panicked")]
    WorkerPanicked { reference: String },
}

/// What a pull stored.
#[derive(Debug, Clone)]
pub struct PulledImage {
    /// The image, pinned to the manifest digest.
    pub reference: Reference,
    /// The digest of the platform-specific image manifest.
    pub manifest_digest: Digest,
    /// The digest of the index or manifest list it was picked from, if any.
    pub index_digest: Option<Digest>,
    pub manifest: Manifest,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// Pulls `reference` for `platform` into `store`.
pub fn pull(
    client: &Client,
    store: &BlobStore,
    reference: &Reference,
    platform: &Platform,
) -> Result<PulledImage, PullError> {
    let puller = Puller {
        client,
        store,
        reference,
        name: reference.to_string(),
    };
    puller.run(platform)
}

struct Puller<'a> {
    client: &'a Client,
    store: &'a BlobStore,
    reference: &'a Reference,
    name: String,
}

impl Puller<'_> {
    fn run(&self, platform: &Platform) -> Result<PulledImage, PullError> {
        let top = self.fetch_manifest(&self.reference.manifest_reference())?;
        let (index, image) = match self.decode(&top)? {
            ManifestKind::Image(manifest) => (None, (top, manifest)),
            ManifestKind::Index(index) => {
                let entry = index
                    .select(platform, &top.digest)
                    .map_err(|source| self.manifest_err(source))?;
                (Some(top), self.fetch_platform_manifest(entry, platform)?)
            }
        };
        let (fetched, manifest) = image;
        self.fetch_blob(&manifest.config)?;
        self.fetch_layers(&manifest.layers)?;
        self.store_manifest(&fetched.bytes)?;
        if let Some(index) = &index {
            self.store_manifest(&index.bytes)?;
        }
        Ok(PulledImage {
            reference: self.reference.with_digest(fetched.digest.clone()),
            manifest_digest: fetched.digest,
            index_digest: index.map(|i| i.digest),
            config: manifest.config.clone(),
            layers: manifest.layers.clone(),
            manifest,
        })
    }

    fn fetch_manifest(&self, reference: &str) -> Result<crate::client::FetchedManifest, PullError> {
        self.client
            .get_manifest(self.reference.repository(), reference)
            .map_err(|source| self.registry_err(source))
    }

    fn decode(&self, fetched: &crate::client::FetchedManifest) -> Result<ManifestKind, PullError> {
        ManifestKind::decode(
            fetched.media_type.as_deref(),
            &fetched.digest,
            &fetched.bytes,
        )
        .map_err(|source| self.manifest_err(source))
    }

    fn fetch_platform_manifest(
        &self,
        entry: &Descriptor,
        platform: &Platform,
    ) -> Result<(crate::client::FetchedManifest, Manifest), PullError> {
        let fetched = self.fetch_manifest(&entry.digest.to_string())?;
        match self.decode(&fetched)? {
            ManifestKind::Image(manifest) => Ok((fetched, manifest)),
            ManifestKind::Index(_) => Err(PullError::NestedIndex {
                reference: self.name.clone(),
                digest: entry.digest.clone(),
                platform: platform.to_string(),
            }),
        }
    }

    fn fetch_blob(&self, blob: &Descriptor) -> Result<(), PullError> {
        if self.store.contains(&blob.digest) {
            return Ok(());
        }
        let repository = self.reference.repository();
        self.client
            .fetch_blob(repository, blob, self.store)
            .map(drop)
            .map_err(|source| self.registry_err(source))
    }

    /// Downloads the layers [`PARALLEL_DOWNLOADS`] at a time; after the first
    /// failure no new download starts, and that failure is returned.
    fn fetch_layers(&self, layers: &[Descriptor]) -> Result<(), PullError> {
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let first_error = Mutex::new(None);
        let worker = || {
            while !failed.load(Ordering::SeqCst) {
                let Some(layer) = layers.get(next.fetch_add(1, Ordering::SeqCst)) else {
                    return;
                };
                if let Err(e) = self.fetch_blob(layer) {
                    failed.store(true, Ordering::SeqCst);
                    first_error
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_or_insert(e);
                }
            }
        };
        let panicked = thread::scope(|scope| {
            let handles: Vec<_> = (0..PARALLEL_DOWNLOADS.min(layers.len()))
                .map(|_| scope.spawn(worker))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join())
                .filter(Result::is_err)
                .count()
                > 0
        });
        if let Some(error) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(error);
        }
        if panicked {
            return Err(PullError::WorkerPanicked {
                reference: self.name.clone(),
            });
        }
        Ok(())
    }

    fn store_manifest(&self, bytes: &[u8]) -> Result<Digest, PullError> {
        self.store
            .put_bytes(bytes)
            .map_err(|source| PullError::Store {
                reference: self.name.clone(),
                source,
            })
    }

    fn registry_err(&self, source: ClientError) -> PullError {
        PullError::Registry {
            reference: self.name.clone(),
            source,
        }
    }

    fn manifest_err(&self, source: ManifestError) -> PullError {
        PullError::Manifest {
            reference: self.name.clone(),
            source,
        }
    }
}
