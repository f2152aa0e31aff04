//! References, registry client, manifests and content-addressed blobs.
#![forbid(unsafe_code)]

pub mod auth;
pub mod client;
pub mod digest;
pub mod manifest;
pub mod pull;
pub mod push;
pub mod reference;
pub mod store;

pub use auth::{
    credentials_from_docker_config, docker_config_path, remove_credentials, store_credentials,
    Credentials,
};
pub use client::{Client, ClientError, ClientOptions, PushOutcome};
pub use digest::Digest;
pub use manifest::{Descriptor, Index, Manifest, ManifestKind, Platform};
pub use pull::{pull, PullError, PulledImage};
pub use push::{push, PushError, PushReport};
pub use reference::Reference;
pub use store::{BlobStore, StoreError};
