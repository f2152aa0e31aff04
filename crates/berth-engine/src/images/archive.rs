//! What `save` writes and `load` reads: docker-archive and oci-archive tarballs.
//!
//! Both are OCI image layouts (`oci-layout`, `index.json`, `blobs/sha256/<hex>`); the
//! docker-archive adds docker's `manifest.json` and `repositories`, as docker 25+ writes it,
//! with every layer as an uncompressed tar whose digest is its diffID. Its manifest (the one
//! `index.json` points at) is built from the image's config and diffIDs by
//! [`uncompressed_manifest`], so `save` and `load` agree on it byte for byte.

use std::str::FromStr;

use berth_image::manifest::{
    OCI_CONFIG, OCI_LAYER_GZIP, OCI_LAYER_TAR, OCI_LAYER_ZSTD, OCI_MANIFEST,
};
use berth_image::{Descriptor, Digest, Manifest};
use berth_storage::Compression;

/// The `oci-layout` file.
pub(crate) const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
/// Where blobs live in an archive.
pub(crate) const BLOBS_DIR: &str = "blobs/sha256/";
/// Annotation: the image's full name (containerd, docker 25+).
pub(crate) const IMAGE_NAME: &str = "io.containerd.image.name";
/// Annotation: the reference name (docker writes the tag, podman the full name).
pub(crate) const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Why an archive format name is refused.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Not one of the formats `save` writes.
    #[error("unsupported archive format {0:?}: use docker-archive or oci-archive")]
    UnknownFormat(String),
}

/// The archive formats `save` writes (`load` reads both, and tells them apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ArchiveFormat {
    /// `manifest.json` + `repositories` + an OCI layout with uncompressed layers.
    #[default]
    Docker,
    /// An OCI layout with the blobs as stored.
    Oci,
}

impl FromStr for ArchiveFormat {
    type Err = ArchiveError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "docker-archive" | "docker" => Ok(ArchiveFormat::Docker),
            "oci-archive" | "oci" => Ok(ArchiveFormat::Oci),
            other => Err(ArchiveError::UnknownFormat(other.to_owned())),
        }
    }
}

/// One entry of docker's `manifest.json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct DockerItem {
    /// Path of the config in the archive.
    #[serde(rename = "Config")]
    pub config: String,
    /// Familiar `repo:tag` names.
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
    /// Paths of the layer tars, bottom-most first.
    #[serde(rename = "Layers")]
    pub layers: Vec<String>,
}

/// The path of blob `digest` in an archive.
pub(crate) fn blob_path(digest: &Digest) -> String {
    format!("{BLOBS_DIR}{}", digest.hex())
}

/// The media type of a layer blob with `compression`.
pub(crate) fn layer_media_type(compression: Compression) -> &'static str {
    match compression {
        Compression::None => OCI_LAYER_TAR,
        Compression::Gzip => OCI_LAYER_GZIP,
        Compression::Zstd => OCI_LAYER_ZSTD,
    }
}

/// An OCI manifest for `config` and `layers` (descriptors of the layer blobs in the archive).
pub(crate) fn uncompressed_manifest(config: Descriptor, layers: Vec<Descriptor>) -> Manifest {
    let mut config = config;
    config.media_type = OCI_CONFIG.to_owned();
    config.annotations.clear();
    Manifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_owned()),
        config,
        layers,
        annotations: Default::default(),
    }
}
