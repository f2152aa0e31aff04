//! What one import or load wrote to the stores, so a failure takes exactly that back out.
//!
//! Imports and loads hold the GC lock shared while they write; their blobs and layers belong
//! to no image until the record is stored (the commit point). Whatever this operation created
//! and does not end up in a record is removed here, explicitly, instead of by a full
//! collection (which would need the lock exclusively and could race other writers).

use std::collections::HashSet;
use std::io::Read;

use berth_image::{Digest, Stored};
use berth_storage::{chain_id, Image, Layer, UnpackOptions};

use super::Images;

/// Blobs and layers created by one operation (not those that were there before).
#[derive(Debug, Default)]
pub(crate) struct Added {
    blobs: Vec<Digest>,
    layers: Vec<String>,
}

impl Added {
    /// Note a blob stored by [`berth_image::BlobStore::put_new`].
    pub(crate) fn stored(&mut self, stored: &Stored) {
        if stored.created {
            self.blobs.push(stored.digest.clone());
        }
    }

    /// Store `data` as a blob, noting it if it is new.
    pub(crate) fn put_bytes(
        &mut self,
        images: &Images,
        data: &[u8],
    ) -> Result<Digest, berth_image::StoreError> {
        let digest = Digest::of(data);
        if !images.blobs.contains(&digest) {
            images.blobs.put(&digest, data)?;
            self.blobs.push(digest.clone());
        }
        Ok(digest)
    }

    /// Stream a blob of known digest into the store (verified), noting it if it is new.
    /// A blob the store has already is not read again.
    pub(crate) fn put_blob(
        &mut self,
        images: &Images,
        digest: &Digest,
        reader: impl Read,
    ) -> Result<(), berth_image::StoreError> {
        if !images.blobs.contains(digest) {
            images.blobs.put(digest, reader)?;
            self.blobs.push(digest.clone());
        }
        Ok(())
    }

    /// Unpack a layer (uncompressed tar in `reader`) unless the store has it; note it if new.
    pub(crate) fn put_layer(
        &mut self,
        images: &Images,
        parent: Option<&str>,
        diff_id: &str,
        reader: impl Read,
    ) -> Result<Layer, berth_storage::StoreError> {
        let chain = chain_id(parent, diff_id);
        let existed = images.layers.get(&chain)?.is_some();
        let layer = images
            .layers
            .put(parent, diff_id, reader, &UnpackOptions::default())?;
        if !existed {
            self.layers.push(chain);
        }
        Ok(layer)
    }

    /// Remove everything this operation created; returns the removals that failed.
    pub(crate) fn rollback(self, images: &Images) -> Vec<String> {
        self.remove_unused(images, &[])
    }

    /// Remove what this operation created and none of `records` uses (archive members that
    /// are not image content, other platforms' blobs); returns the removals that failed.
    pub(crate) fn remove_unused(self, images: &Images, records: &[Image]) -> Vec<String> {
        let mut blobs_used = HashSet::new();
        let mut layers_used = HashSet::new();
        for image in records {
            blobs_used.insert(image.id.clone());
            blobs_used.insert(image.manifest_digest.clone());
            for layer in &image.layers {
                blobs_used.insert(layer.blob.clone());
                layers_used.insert(layer.chain_id.clone());
            }
        }
        let mut failures = Vec::new();
        for chain in self.layers.iter().rev() {
            if !layers_used.contains(chain) {
                if let Err(e) = images.layers.remove(chain) {
                    failures.push(e.to_string());
                }
            }
        }
        for digest in &self.blobs {
            if !blobs_used.contains(&digest.to_string()) {
                if let Err(e) = images.blobs.remove(digest) {
                    failures.push(e.to_string());
                }
            }
        }
        failures
    }
}
