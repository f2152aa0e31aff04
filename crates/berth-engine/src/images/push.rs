//! `push` and `tag`: send a stored image to a registry; give an image another name.

use berth_image::{Client, ClientOptions, Digest, Progress, PushReport, Reference};
use berth_storage::Image;

use super::{Images, ImagesError};

/// Why a push or tag failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The name is not a valid reference.
    #[error("invalid reference format: {0}")]
    Reference(#[from] berth_image::reference::ReferenceError),
    /// A tag cannot carry a digest.
    #[error("invalid reference format: {name}: a tag cannot contain a digest")]
    DigestInTag {
        /// The name given.
        name: String,
    },
    /// No such image, or a store failed.
    #[error(transparent)]
    Images(#[from] ImagesError),
    /// The stored image has a bad digest.
    #[error("image {id}: bad manifest digest: {source}")]
    Digest {
        /// The image.
        id: String,
        /// Why.
        #[source]
        source: berth_image::digest::DigestError,
    },
    /// The GC lock could not be taken.
    #[error(transparent)]
    Gc(Box<super::RemoveError>),
    /// The registry refused, or a blob is missing locally.
    #[error("{0}")]
    Push(#[from] berth_image::PushError),
}

impl From<berth_storage::ImageStoreError> for PushError {
    fn from(e: berth_storage::ImageStoreError) -> Self {
        PushError::Images(e.into())
    }
}

impl Images {
    /// Push the image named `name` to the registry the name points at. Blobs the registry has
    /// are skipped; another repository of the same registry that the image came from is
    /// offered for cross-repository mounts.
    pub fn push(
        &self,
        name: &str,
        client: &ClientOptions,
        progress: Option<&dyn Progress>,
    ) -> Result<PushReport, PushError> {
        let reference: Reference = name.parse()?;
        // Garbage collection must not take the image's blobs while they are sent.
        let _gc = self
            .gc_lock(false)
            .map_err(|e| PushError::Gc(Box::new(e)))?;
        let image = self.resolve(name)?;
        let digest: Digest = image
            .manifest_digest
            .parse()
            .map_err(|source| PushError::Digest {
                id: image.id.clone(),
                source,
            })?;
        let mount_from = mount_source(&image, &reference);
        let client = Client::for_reference(&reference, client.clone());
        let report = berth_image::push_with(
            &client,
            &self.blobs,
            &reference,
            &digest,
            mount_from.as_deref(),
            progress,
        )?;
        let mut pushed = image;
        pushed.repo_digests = vec![reference.with_digest(digest).to_string()];
        pushed.repo_tags.clear();
        let locked = self.records.lock()?;
        // Record the repo digest, unless the image was removed meanwhile.
        if self.records.get(&pushed.id)?.is_some() {
            locked.put(&pushed)?;
        }
        Ok(report)
    }

    /// `tag SOURCE TARGET`: give the image `source` resolves to the name `target`.
    pub fn tag(&self, source: &str, target: &str) -> Result<Image, PushError> {
        let image = self.resolve(source)?;
        let reference: Reference = target.parse()?;
        if reference.digest().is_some() {
            return Err(PushError::DigestInTag {
                name: target.to_owned(),
            });
        }
        Ok(self
            .records
            .lock()?
            .tag(&image.id, &reference.to_string())?)
    }
}

/// A repository of the target's registry that already holds the image's blobs.
fn mount_source(image: &Image, target: &Reference) -> Option<String> {
    image
        .repo_tags
        .iter()
        .chain(&image.repo_digests)
        .filter_map(|n| n.parse::<Reference>().ok())
        .find(|r| r.registry() == target.registry() && r.repository() != target.repository())
        .map(|r| r.repository().to_owned())
}
