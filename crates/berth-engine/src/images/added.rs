//! What one import or load wrote to the stores, so a failure takes exactly that back out.
//!
//! Imports and loads hold the GC lock shared while they write; their blobs and layers belong
//! to no image until the record is stored (the commit point). Whatever this operation created
//! and no record uses is removed here, explicitly: a full collection would also take what
//! other operations left, and removing under the shared lock could race a concurrent writer
//! of the same content.

use std::io::Read;

use berth_image::{Digest, Stored};
use berth_storage::{chain_id, Layer, UnpackOptions};

use super::remove::references;
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

    /// Remove what this operation created and no image record uses: everything after a
    /// failure, the archive members that are not image content after a load. Returns the
    /// removals that failed.
    ///
    /// Takes the GC lock exclusively, so the caller must have let go of its shared hold. With
    /// no writer mid-way, what no record names is garbage for sure, even if a concurrent pull
    /// or load wrote the same blob or layer and recorded it meanwhile.
    pub(crate) fn remove_unreferenced(self, images: &Images) -> Vec<String> {
        if self.blobs.is_empty() && self.layers.is_empty() {
            return Vec::new();
        }
        let _gc = match images.gc_lock(true) {
            Ok(lock) => lock,
            Err(e) => return vec![e.to_string()],
        };
        let records = match images.records.list() {
            Ok(records) => records,
            Err(e) => return vec![e.to_string()],
        };
        let (blobs_used, layers_used) = references(&records);
        let mut failures = Vec::new();
        for chain in self.layers.iter().rev() {
            if layers_used.contains(chain) {
                continue;
            }
            let removed = match images.layers.get(chain) {
                Ok(Some(_)) => images.layers.remove(chain),
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            };
            if let Err(e) = removed {
                failures.push(e.to_string());
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
