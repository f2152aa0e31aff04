//! Pushing an image from the blob store: blobs first (skipping those the
//! registry has, mounting from a sibling repository when one is named), then
//! manifests, an index's children before the index.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::client::{Client, ClientError, PushOutcome};
use crate::digest::Digest;
use crate::manifest::Descriptor;
use crate::manifest::{ManifestError, ManifestKind, OCI_INDEX, OCI_MANIFEST};
use crate::progress::{step, LayerEvent, Progress};
use crate::reference::Reference;
use crate::store::{BlobStore, StoreError};

/// Errors from a push; each names the target.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("pushing {reference}: reading {digest} from the local store: {source}")]
    Store {
        reference: String,
        digest: Digest,
        source: StoreError,
    },
    #[error("pushing {reference}: {source}")]
    Manifest {
        reference: String,
        source: ManifestError,
    },
    #[error("pushing {reference}: {source}")]
    Registry {
        reference: String,
        source: ClientError,
    },
}

/// What a push did.
#[derive(Debug, Clone, Default)]
pub struct PushReport {
    /// Each blob pushed and what happened to it.
    pub blobs: Vec<(Digest, PushOutcome)>,
    /// Digests of the manifests uploaded, children before their index.
    pub manifests: Vec<Digest>,
}

/// Pushes the manifest (or index) `digest` from `store` to `reference`, tagged
/// with the reference's tag (or by digest when it has none). `mount_from` names
/// a repository of the same registry that may already hold the blobs.
pub fn push(
    client: &Client,
    store: &BlobStore,
    reference: &Reference,
    digest: &Digest,
    mount_from: Option<&str>,
) -> Result<PushReport, PushError> {
    push_with(client, store, reference, digest, mount_from, None)
}

/// [`push`], reporting each layer's upload to `progress`.
pub fn push_with(
    client: &Client,
    store: &BlobStore,
    reference: &Reference,
    digest: &Digest,
    mount_from: Option<&str>,
    progress: Option<&dyn Progress>,
) -> Result<PushReport, PushError> {
    let pusher = Pusher {
        client,
        store,
        reference,
        mount_from,
        name: reference.to_string(),
        progress,
    };
    let mut report = PushReport::default();
    let target = reference
        .tag()
        .map_or_else(|| digest.to_string(), str::to_owned);
    pusher.push_manifest(digest, &target, &mut report)?;
    Ok(report)
}

struct Pusher<'a> {
    client: &'a Client,
    store: &'a BlobStore,
    reference: &'a Reference,
    mount_from: Option<&'a str>,
    name: String,
    progress: Option<&'a dyn Progress>,
}

impl Pusher<'_> {
    fn push_manifest(
        &self,
        digest: &Digest,
        target: &str,
        report: &mut PushReport,
    ) -> Result<(), PushError> {
        let bytes = self
            .store
            .read(digest)
            .map_err(|source| self.store_err(digest, source))?;
        let kind =
            ManifestKind::decode(None, digest, &bytes).map_err(|source| PushError::Manifest {
                reference: self.name.clone(),
                source,
            })?;
        let media_type = match &kind {
            ManifestKind::Image(manifest) => {
                if let Some(progress) = self.progress {
                    progress.layers(&manifest.layers);
                }
                for (index, layer) in manifest.layers.iter().enumerate() {
                    let outcome = self.push_layer(index, layer)?;
                    report.blobs.push((layer.digest.clone(), outcome));
                }
                let outcome = self.push_blob(&manifest.config.digest, &|_| {})?;
                report.blobs.push((manifest.config.digest.clone(), outcome));
                manifest
                    .media_type
                    .clone()
                    .unwrap_or_else(|| OCI_MANIFEST.to_owned())
            }
            ManifestKind::Index(index) => {
                for child in &index.manifests {
                    self.push_manifest(&child.digest, &child.digest.to_string(), report)?;
                }
                index
                    .media_type
                    .clone()
                    .unwrap_or_else(|| OCI_INDEX.to_owned())
            }
        };
        let repository = self.reference.repository();
        self.client
            .put_manifest(repository, target, &media_type, &bytes)
            .map_err(|source| self.registry_err(source))?;
        report.manifests.push(digest.clone());
        Ok(())
    }

    /// Push layer `index`, telling the progress what happens to it.
    fn push_layer(&self, index: usize, layer: &Descriptor) -> Result<PushOutcome, PushError> {
        let Some(progress) = self.progress else {
            return self.push_blob(&layer.digest, &|_| {});
        };
        let total = layer.size;
        let last = AtomicU64::new(0);
        let sent = |done: u64| {
            let before = last.load(Ordering::Relaxed);
            if done == total || done >= before + step(total) {
                last.store(done, Ordering::Relaxed);
                progress.layer(index, layer, LayerEvent::Uploading { done, total });
            }
        };
        let result = self.push_blob(&layer.digest, &sent);
        let event = match &result {
            Ok(PushOutcome::AlreadyExists) => LayerEvent::AlreadyExists,
            Ok(PushOutcome::Mounted) => LayerEvent::Mounted,
            Ok(PushOutcome::Uploaded) => LayerEvent::Complete,
            Err(e) => LayerEvent::Failed {
                error: e.to_string(),
            },
        };
        progress.layer(index, layer, event);
        result
    }

    fn push_blob(&self, digest: &Digest, sent: &dyn Fn(u64)) -> Result<PushOutcome, PushError> {
        if !self.store.contains(digest) {
            let missing =
                std::io::Error::new(std::io::ErrorKind::NotFound, "blob not in the local store");
            let path = self.store.path(digest);
            return Err(self.store_err(
                digest,
                StoreError::Read {
                    path,
                    source: missing,
                },
            ));
        }
        let repository = self.reference.repository();
        self.client
            .push_blob_with(repository, digest, self.store, self.mount_from, sent)
            .map_err(|source| self.registry_err(source))
    }

    fn store_err(&self, digest: &Digest, source: StoreError) -> PushError {
        PushError::Store {
            reference: self.name.clone(),
            digest: digest.clone(),
            source,
        }
    }

    fn registry_err(&self, source: ClientError) -> PushError {
        PushError::Registry {
            reference: self.name.clone(),
            source,
        }
    }
}
