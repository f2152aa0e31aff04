//! Pushing an image from the blob store: blobs first (skipping those the
//! registry has, mounting from a sibling repository when one is named), then
//! manifests, an index's children before the index.

use crate::client::{Client, ClientError, PushOutcome};
use crate::digest::Digest;
use crate::manifest::{ManifestError, ManifestKind, OCI_INDEX, OCI_MANIFEST};
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
    let pusher = Pusher {
        client,
        store,
        reference,
        mount_from,
        name: reference.to_string(),
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
                let blobs = std::iter::once(&manifest.config).chain(&manifest.layers);
                for blob in blobs {
                    let outcome = self.push_blob(&blob.digest)?;
                    report.blobs.push((blob.digest.clone(), outcome));
                }
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

    fn push_blob(&self, digest: &Digest) -> Result<PushOutcome, PushError> {
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
            .push_blob(repository, digest, self.store, self.mount_from)
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
