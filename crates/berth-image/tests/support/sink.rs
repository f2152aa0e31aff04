//! The wiring a caller of `pull_with` does: berth-storage's `LayerStore` as the layer sink,
//! and a progress recorder.

use std::io::Read;
use std::sync::Mutex;

use berth_image::{
    Descriptor, Digest, LayerEvent, LayerInfo, LayerSink, PendingLayer, Progress, SinkError,
};
use berth_storage::{LayerStore, UnpackOptions, UnpackedLayer};

pub struct StoreSink(pub LayerStore);

impl LayerSink for StoreSink {
    fn contains(&self, chain_id: &Digest) -> Result<bool, SinkError> {
        Ok(self.0.get(&chain_id.to_string())?.is_some())
    }

    fn unpack<'s>(
        &'s self,
        layer: &LayerInfo<'_>,
        blob: &mut dyn Read,
    ) -> Result<Box<dyn PendingLayer + 's>, SinkError> {
        let unpacked =
            self.0
                .unpack_verified(&layer.diff_id.to_string(), blob, &UnpackOptions::default())?;
        Ok(Box::new(Pending {
            store: &self.0,
            unpacked,
            parent: layer.parent.map(Digest::to_string),
        }))
    }
}

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

/// Every layer event, in arrival order.
#[derive(Default)]
pub struct Recorder {
    pub events: Mutex<Vec<(usize, LayerEvent)>>,
}

impl Progress for Recorder {
    fn layer(&self, index: usize, _: &Descriptor, event: LayerEvent) {
        self.events.lock().expect("lock").push((index, event));
    }
}

impl Recorder {
    /// The events of layer `index`.
    pub fn of(&self, index: usize) -> Vec<LayerEvent> {
        self.events
            .lock()
            .expect("lock")
            .iter()
            .filter(|(i, _)| *i == index)
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// The kinds of events of layer `index`, repeats folded: "downloading", "complete"...
    pub fn kinds(&self, index: usize) -> Vec<&'static str> {
        let mut kinds: Vec<&'static str> = self
            .of(index)
            .iter()
            .map(|e| match e {
                LayerEvent::AlreadyExists => "exists",
                LayerEvent::Downloading { .. } => "downloading",
                LayerEvent::Extracting { .. } => "extracting",
                LayerEvent::Verifying => "verifying",
                LayerEvent::Uploading { .. } => "uploading",
                LayerEvent::Mounted => "mounted",
                LayerEvent::Complete => "complete",
                LayerEvent::Failed { .. } => "failed",
            })
            .collect();
        kinds.dedup();
        kinds
    }
}

/// True as root (unpacking chowns and makes device nodes); else prints why the test skips.
pub fn is_root(test: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if !root {
        eprintln!(
            "SKIPPED: {test} needs root (unpacking layers chowns and makes whiteout devices)"
        );
    }
    root
}

/// A layer store in a temporary directory, as a sink.
pub fn layer_store() -> (tempfile::TempDir, StoreSink) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LayerStore::open(dir.path().join("layers")).expect("open layer store");
    (dir, StoreSink(store))
}

/// Names in the layer store's `tmp/` (incomplete layers).
pub fn layer_tmp(sink: &StoreSink) -> Vec<String> {
    std::fs::read_dir(sink.0.root().join("tmp"))
        .expect("read tmp")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect()
}

/// A sink that only reads the stream, slows down layer 0, and records what happened.
#[derive(Default)]
pub struct OrderSink {
    pub log: Mutex<Vec<String>>,
}

impl LayerSink for OrderSink {
    fn contains(&self, _: &Digest) -> Result<bool, SinkError> {
        Ok(false)
    }

    fn unpack<'s>(
        &'s self,
        layer: &LayerInfo<'_>,
        blob: &mut dyn Read,
    ) -> Result<Box<dyn PendingLayer + 's>, SinkError> {
        std::io::copy(blob, &mut std::io::sink())?;
        if layer.index == 0 {
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        self.log
            .lock()
            .expect("lock")
            .push(format!("unpacked {}", layer.index));
        Ok(Box::new(OrderPending {
            sink: self,
            index: layer.index,
        }))
    }
}

struct OrderPending<'s> {
    sink: &'s OrderSink,
    index: usize,
}

impl PendingLayer for OrderPending<'_> {
    fn commit(self: Box<Self>) -> Result<(), SinkError> {
        self.sink
            .log
            .lock()
            .expect("lock")
            .push(format!("committed {}", self.index));
        Ok(())
    }
}
