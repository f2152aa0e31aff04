//! The image config blob (OCI image spec `config`): what the engine reads from it.

use berth_image::{BlobStore, Digest};

/// Why an image config could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The ID is not a digest.
    #[error("image config {id}: {source}")]
    BadId {
        /// The image ID.
        id: String,
        /// Why it is not a digest.
        #[source]
        source: berth_image::digest::DigestError,
    },
    /// The blob is missing or unreadable.
    #[error("image config {id}: {source}")]
    Read {
        /// The image ID.
        id: String,
        /// The store error.
        #[source]
        source: berth_image::StoreError,
    },
    /// The blob is not a valid config.
    #[error("image config {id}: {source}")]
    Parse {
        /// The image ID.
        id: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

/// An image config. Unknown fields are kept in `config` and `history` as JSON.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ImageConfig {
    /// When the image was built (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Who built it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Docker's commit message (`import -m`); not in the OCI spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// CPU architecture (`amd64`).
    pub architecture: String,
    /// Operating system (`linux`).
    pub os: String,
    /// CPU variant (`v8`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// The container defaults (Env, Cmd, Entrypoint, ...), as the image has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Value>,
    /// The layers' diffIDs.
    pub rootfs: RootFs,
    /// Build history.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<serde_json::Value>,
}

/// `rootfs` of an image config.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The digest of each uncompressed layer tar, bottom-most first.
    pub diff_ids: Vec<String>,
}

impl ImageConfig {
    /// Parse a config blob.
    pub fn parse(id: &str, bytes: &[u8]) -> Result<ImageConfig, ConfigError> {
        serde_json::from_slice(bytes).map_err(|source| ConfigError::Parse {
            id: id.to_owned(),
            source,
        })
    }

    /// Read and parse the config blob `id` from `blobs`.
    pub fn read(blobs: &BlobStore, id: &str) -> Result<ImageConfig, ConfigError> {
        let digest: Digest = id.parse().map_err(|source| ConfigError::BadId {
            id: id.to_owned(),
            source,
        })?;
        let bytes = blobs.read(&digest).map_err(|source| ConfigError::Read {
            id: id.to_owned(),
            source,
        })?;
        ImageConfig::parse(id, &bytes)
    }

    /// `os/arch[/variant]`.
    pub fn platform(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }
}
