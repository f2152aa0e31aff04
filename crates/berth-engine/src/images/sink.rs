//! The layer store as the pull's layer sink: each layer is unpacked (and its diffID checked)
//! while it downloads, and committed once its blob is verified and its parent is stored.

use std::io::Read;

use berth_image::{Digest, LayerInfo, LayerSink, PendingLayer, SinkError};
use berth_storage::{LayerStore, UnpackOptions, UnpackedLayer};

/// Unpacks into a [`LayerStore`].
pub struct StoreSink<'a>(pub &'a LayerStore);

impl LayerSink for StoreSink<'_> {
    fn contains(&self, chain_id: &Digest) -> Result<bool, SinkError> {
        Ok(self.0.get(&chain_id.to_string())?.is_some())
    }

    fn unpack<'s>(
        &'s self,
        layer: &LayerInfo<'_>,
        blob: &mut dyn Read,
    ) -> Result<Box<dyn PendingLayer + 's>, SinkError> {
        let diff_id = layer.diff_id.to_string();
        let unpacked = self
            .0
            .unpack_verified(&diff_id, blob, &UnpackOptions::default())?;
        Ok(Box::new(Pending {
            store: self.0,
            unpacked,
            parent: layer.parent.map(Digest::to_string),
        }))
    }
}

/// A verified layer waiting in the store's `tmp/` for its turn.
struct Pending<'s> {
    store: &'s LayerStore,
    unpacked: UnpackedLayer,
    parent: Option<String>,
}

impl PendingLayer for Pending<'_> {
    fn commit(self: Box<Self>) -> Result<(), SinkError> {
        self.store.commit(self.unpacked, self.parent.as_deref())?;
        Ok(())
    }
}
