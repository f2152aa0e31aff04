//! References, registry client, manifests and content-addressed blobs.
#![forbid(unsafe_code)]

pub mod auth;
pub mod client;
pub mod digest;
pub mod manifest;
pub mod progress;
pub mod pull;
pub mod push;
pub mod reference;
pub mod sink;
pub mod store;
mod tee;

pub use auth::{
    credentials_from_docker_config, docker_config_path, remove_credentials, store_credentials,
    Credentials,
};
pub use client::{Client, ClientError, ClientOptions, ConsumerError, PushOutcome};
pub use digest::Digest;
pub use manifest::{Descriptor, Index, Manifest, ManifestKind, Platform};
pub use progress::{LayerEvent, Progress};
pub use pull::{pull, pull_with, PullError, PullOptions, PulledImage};
pub use push::{push, push_with, PushError, PushReport};
pub use reference::Reference;
pub use sink::{LayerInfo, LayerSink, PendingLayer, SinkError};
pub use store::{BlobStore, BlobWriter, StoreError, Stored};
