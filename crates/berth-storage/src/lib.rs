//! Berth's storage: unpacking OCI layer tarballs (with whiteouts) into directories, a
//! chainID-keyed layer store with short link names, the image store (records and names),
//! per-container writable layers with optional size limits, and overlay mounts.

#![forbid(unsafe_code)]

pub mod compression;
pub mod container;
mod hashing;
pub mod idmap;
pub mod images;
mod mounts;
pub mod overlay;
pub mod quota;
pub mod store;
pub mod unpack;

pub use compression::{decompressed, overlapped, Chunks, Compression, Decompressed};
pub use container::{validate_id, ContainerError, ContainerLayer, ContainerStore};
pub use idmap::{IdMap, IdRange, IdmapError};
pub use images::{Image, ImageLayer, ImageStore, ImageStoreError, Locked};
pub use overlay::{mount_overlay, OverlayError, Upper};
pub use quota::{parse_size, BackingFs, QuotaError, RootfsOptions};
pub use store::{chain_id, Layer, LayerStore, StoreError, UnpackedLayer};
pub use unpack::{unpack, UnpackError, UnpackOptions, UnpackStats};
