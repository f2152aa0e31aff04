//! Progress of a pull or a push, for the CLI's per-layer bars.

use crate::manifest::Descriptor;
use crate::reference::Reference;

/// What happens to one layer. Events of a layer arrive in this order (some skipped);
/// `Downloading` repeats and may start again from 0 when a download is retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerEvent {
    /// Pull: both the blob and (with a sink) the unpacked layer are stored. Push: the registry
    /// has the blob. Nothing to do.
    AlreadyExists,
    /// Bytes received from the registry (being unpacked at the same time with a sink).
    /// Sent at most every 1% (and at least 256 KiB) and at the end.
    Downloading { done: u64, total: u64 },
    /// Unpacking a blob already in the store (same throttling).
    Extracting { done: u64, total: u64 },
    /// All bytes are in and verified; waiting for the layers below before it is committed.
    Verifying,
    /// Push: bytes sent to the registry (same throttling as `Downloading`).
    Uploading { done: u64, total: u64 },
    /// Push: the registry mounted the blob from another of its repositories.
    Mounted,
    /// Pull: stored (and unpacked, with a sink). Push: uploaded.
    Complete,
    /// This layer failed; the pull fails with the same error.
    Failed { error: String },
}

/// Receives a pull's or a push's events, from several download threads. Keep it cheap: drawing should
/// happen elsewhere or be throttled further.
pub trait Progress: Sync {
    /// The pull started resolving `reference` (manifest, index, config).
    fn resolving(&self, reference: &Reference) {
        let _ = reference;
    }

    /// The layers are known; events for layer `index` of these follow.
    fn layers(&self, layers: &[Descriptor]) {
        let _ = layers;
    }

    /// Layer `index` (`layer`) changed.
    fn layer(&self, index: usize, layer: &Descriptor, event: LayerEvent);
}

/// The minimum step between two `Downloading`/`Extracting` events of a `total`-byte layer.
pub(crate) fn step(total: u64) -> u64 {
    (total / 100).max(256 << 10)
}
