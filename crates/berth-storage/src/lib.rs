//! Berth's layer storage: unpacking OCI layer tarballs (with whiteouts) into directories, a
//! chainID-keyed layer store with short link names, and overlay mounts of stacked layers.
//!
//! Still to come (issue 4): the content-addressed blob store, image and container stores,
//! garbage collection by reference, and rootfs size limits.

#![forbid(unsafe_code)]

pub mod compression;
pub mod overlay;
pub mod store;
pub mod unpack;

pub use compression::{
    decompressed, decompressed_in_thread, Compression, Decompressed, InflatingThread,
};
pub use overlay::{mount_overlay, OverlayError, Upper};
pub use store::{chain_id, Layer, LayerStore, StoreError};
pub use unpack::{unpack, UnpackError, UnpackOptions, UnpackStats};
