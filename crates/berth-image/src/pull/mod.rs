//! Pulling an image: resolve the manifest (picking a platform from an index), store the
//! config, read the layers' diffIDs from it, then download the layers
//! [`PARALLEL_DOWNLOADS`] at a time (see `layers`).
//!
//! With a [`LayerSink`] each layer is unpacked while it downloads: the bytes are teed into
//! the blob store and the sink, the blob digest is verified before the sink's unpack ends and
//! the diffID by the sink, and layers are committed in order (a layer after its parent).
//! Blobs are stored before the manifests that reference them, so a manifest present in the
//! store implies its blobs (and, with a sink, its layers) are too. Present blobs and layers
//! are not fetched again, so an interrupted pull is completed by the next one.

mod config;
mod layers;

use crate::client::{Client, ClientError};
use crate::digest::Digest;
use crate::manifest::{Descriptor, Manifest, ManifestError, ManifestKind, Platform};
use crate::progress::{LayerEvent, Progress};
use crate::reference::Reference;
use crate::sink::{LayerSink, SinkError};
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
    #[error("pulling {reference}: {source}")]
    Store {
        reference: String,
        source: StoreError,
    },
    #[error("pulling {reference}: config {digest}: {reason}")]
    Config {
        reference: String,
        digest: Digest,
        reason: String,
    },
    /// The layer sink failed (unpacking, diffID mismatch, committing).
    #[error("pulling {reference}: layer {digest}: {source}")]
    Layer {
        reference: String,
        digest: Digest,
        source: SinkError,
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
    /// The layers' diffIDs, from the config.
    pub diff_ids: Vec<Digest>,
    /// The layers' chainIDs; the last one names the whole stack.
    pub chain_ids: Vec<Digest>,
}

/// Optional parts of a pull.
#[derive(Clone, Copy, Default)]
pub struct PullOptions<'a> {
    /// Unpack each layer while it downloads.
    pub sink: Option<&'a dyn LayerSink>,
    /// Per-layer progress events.
    pub progress: Option<&'a dyn Progress>,
}

struct NoProgress;

impl Progress for NoProgress {
    fn layer(&self, _: usize, _: &Descriptor, _: LayerEvent) {}
}

/// Pulls `reference` for `platform` into `store` (blobs only, no progress).
pub fn pull(
    client: &Client,
    store: &BlobStore,
    reference: &Reference,
    platform: &Platform,
) -> Result<PulledImage, PullError> {
    pull_with(client, store, reference, platform, PullOptions::default())
}

/// Pulls `reference` for `platform` into `store`, unpacking into `options.sink` while
/// downloading and reporting to `options.progress`.
pub fn pull_with(
    client: &Client,
    store: &BlobStore,
    reference: &Reference,
    platform: &Platform,
    options: PullOptions<'_>,
) -> Result<PulledImage, PullError> {
    let puller = Puller {
        client,
        store,
        reference,
        name: reference.to_string(),
        sink: options.sink,
        progress: options.progress.unwrap_or(&NoProgress),
    };
    puller.run(platform)
}

struct Puller<'a> {
    client: &'a Client,
    store: &'a BlobStore,
    reference: &'a Reference,
    name: String,
    sink: Option<&'a dyn LayerSink>,
    progress: &'a dyn Progress,
}

impl Puller<'_> {
    fn run(&self, platform: &Platform) -> Result<PulledImage, PullError> {
        self.progress.resolving(self.reference);
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
        let diff_ids = self.diff_ids(&manifest)?;
        let chain_ids = config::chain_ids(&diff_ids);
        self.progress.layers(&manifest.layers);
        self.fetch_layers(&manifest.layers, &diff_ids, &chain_ids)?;
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
            diff_ids,
            chain_ids,
        })
    }

    /// The diffIDs from the stored config, one per layer.
    fn diff_ids(&self, manifest: &Manifest) -> Result<Vec<Digest>, PullError> {
        let digest = &manifest.config.digest;
        let bytes = self.store.read(digest).map_err(|e| self.store_err(e))?;
        config::diff_ids(&bytes, manifest.layers.len()).map_err(|reason| PullError::Config {
            reference: self.name.clone(),
            digest: digest.clone(),
            reason,
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

    fn store_manifest(&self, bytes: &[u8]) -> Result<Digest, PullError> {
        self.store.put_bytes(bytes).map_err(|e| self.store_err(e))
    }

    fn store_err(&self, source: StoreError) -> PullError {
        PullError::Store {
            reference: self.name.clone(),
            source,
        }
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
