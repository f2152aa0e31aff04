//! `pull`: fetch an image from its registry, unpacking each layer while it downloads, and
//! record it under the name.

use berth_image::{Client, ClientOptions, Platform, Progress, PulledImage, Reference};
use berth_storage::Image;

use super::sink::StoreSink;
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
    pub fn pull(
        &self,
        name: &str,
        options: &PullOptions,
        progress: Option<&dyn Progress>,
    ) -> Result<Image, PullError> {
        let reference: Reference = name.parse()?;
        let label = reference.to_string();
        let store_err = |e: RemoveError| PullError::Store {
            reference: label.clone(),
            source: Box::new(e),
        };
        let _gc = self.gc_lock(false).map_err(store_err)?;
        let client = Client::for_reference(&reference, options.client.clone());
        let platform = options.platform.clone().unwrap_or_else(Platform::host);
        let sink = StoreSink(&self.layers);
        let streaming = berth_image::PullOptions {
            sink: Some(&sink),
            progress,
        };
        let pulled =
            berth_image::pull_with(&client, &self.blobs, &reference, &platform, streaming)?;
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
}
