//! Where a pull unpacks layers while they download: a [`LayerSink`] (berth-storage's layer
//! store, wired in by its caller; this crate does not depend on it).

use std::io::Read;

use crate::digest::Digest;
use crate::manifest::Descriptor;

/// Why a sink failed; its message should name the layer (its diffID).
pub type SinkError = Box<dyn std::error::Error + Send + Sync>;

/// One layer of the image being pulled, with its identities from the image config.
#[derive(Debug, Clone, Copy)]
pub struct LayerInfo<'a> {
    /// Position in the manifest, 0 = the base layer.
    pub index: usize,
    /// The (compressed) blob as the manifest describes it.
    pub descriptor: &'a Descriptor,
    /// The digest of the uncompressed tar (config `rootfs.diff_ids[index]`).
    pub diff_id: &'a Digest,
    /// `diff_id` for the base layer, else `sha256(parent + " " + diff_id)`.
    pub chain_id: &'a Digest,
    /// The chainID of the layer below.
    pub parent: Option<&'a Digest>,
}

/// Unpacks layers for a pull. Called from several download threads at once.
pub trait LayerSink: Sync {
    /// Whether the layer `chain_id` is already unpacked (it is then not unpacked again).
    fn contains(&self, chain_id: &Digest) -> Result<bool, SinkError>;

    /// Decompresses and unpacks `blob` (the layer's bytes as they download, or from the blob
    /// store) somewhere not yet visible, and checks the uncompressed stream against
    /// `layer.diff_id`. It must read `blob` to its end: while downloading, the read at the end
    /// fails when the blob's size or digest is wrong, and the unpack must then fail. On error
    /// it leaves nothing behind; it may be called again for the same layer (a retried download).
    fn unpack<'s>(
        &'s self,
        layer: &LayerInfo<'_>,
        blob: &mut dyn Read,
    ) -> Result<Box<dyn PendingLayer + 's>, SinkError>;
}

/// A layer unpacked and verified, not yet visible. Dropping it discards it.
pub trait PendingLayer: Send {
    /// Makes the layer visible. A pull calls it in layer order, after the layer's blob is
    /// stored and its parent committed.
    fn commit(self: Box<Self>) -> Result<(), SinkError>;
}
