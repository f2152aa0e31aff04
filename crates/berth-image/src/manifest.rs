//! Manifests, indexes and platforms (OCI image spec and Docker schema2).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Every manifest type we accept, for the `Accept` header.
pub const ACCEPTED_MANIFESTS: [&str; 4] = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];

/// Errors from decoding manifests or choosing a platform.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest {digest}: unsupported media type {media_type:?}")]
    UnsupportedMediaType { digest: Digest, media_type: String },
    #[error("manifest {digest}: invalid JSON: {source}")]
    Json {
        digest: Digest,
        source: serde_json::Error,
    },
    #[error("invalid platform {input:?}: expected os/arch[/variant]")]
    BadPlatform { input: String },
    #[error("no manifest for platform {wanted} in {digest}; available: {}", available.join(", "))]
    NoMatchingPlatform {
        wanted: String,
        digest: Digest,
        available: Vec<String>,
    },
}

/// A content descriptor: what a manifest or index points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Self {
        Descriptor {
            media_type: media_type.to_owned(),
            digest,
            size,
            platform: None,
            urls: Vec::new(),
            annotations: BTreeMap::new(),
        }
    }
}

/// An image manifest (OCI or Docker schema2): a config and its layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An OCI index or Docker manifest list: one manifest per platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A decoded manifest body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestKind {
    Image(Manifest),
    Index(Index),
}

impl ManifestKind {
    /// Decodes `body` according to `media_type` (from the Content-Type header);
    /// when that is missing or generic, the body's own `mediaType` decides.
    pub fn decode(
        media_type: Option<&str>,
        digest: &Digest,
        body: &[u8],
    ) -> Result<Self, ManifestError> {
        let json_err = |source| ManifestError::Json {
            digest: digest.clone(),
            source,
        };
        let media_type = match media_type.filter(|m| ACCEPTED_MANIFESTS.contains(m)) {
            Some(m) => m.to_owned(),
            None => sniff_media_type(body).map_err(json_err)?,
        };
        match media_type.as_str() {
            OCI_INDEX | DOCKER_LIST => serde_json::from_slice(body)
                .map(ManifestKind::Index)
                .map_err(json_err),
            OCI_MANIFEST | DOCKER_MANIFEST => serde_json::from_slice(body)
                .map(ManifestKind::Image)
                .map_err(json_err),
            _ => Err(ManifestError::UnsupportedMediaType {
                digest: digest.clone(),
                media_type,
            }),
        }
    }
}

/// The body's `mediaType`, or, for OCI documents that omit it, what its fields say.
fn sniff_media_type(body: &[u8]) -> Result<String, serde_json::Error> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    let probe: Probe = serde_json::from_slice(body)?;
    Ok(match (probe.media_type, probe.manifests) {
        (Some(m), _) => m,
        (None, Some(_)) => OCI_INDEX.to_owned(),
        (None, None) => OCI_MANIFEST.to_owned(),
    })
}

/// An operating system and CPU architecture, as in an index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        Platform {
            os: os.to_owned(),
            architecture: architecture.to_owned(),
            variant: variant.map(str::to_owned),
        }
    }

    /// The platform this process runs on, in Go's naming (`linux/amd64`).
    pub fn host() -> Self {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            "loongarch64" => "loong64",
            other => other,
        };
        Platform::new(std::env::consts::OS, architecture, None)
    }

    /// Whether an index entry for `candidate` can serve this request. A request
    /// without a variant takes any variant; `arm64` treats a missing variant as `v8`.
    pub fn matches(&self, candidate: &Platform) -> bool {
        if self.os != candidate.os || self.architecture != candidate.architecture {
            return false;
        }
        let normalize = |p: &Platform| match (p.architecture.as_str(), p.variant.as_deref()) {
            ("arm64", None) => Some("v8".to_owned()),
            (_, v) => v.map(str::to_owned),
        };
        self.variant.is_none() || normalize(self) == normalize(candidate)
    }
}

impl FromStr for Platform {
    type Err = ManifestError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = input.split('/').collect();
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Platform::new(os, arch, None)),
            [os, arch, variant] if ![os, arch, variant].iter().any(|p| p.is_empty()) => {
                Ok(Platform::new(os, arch, Some(variant)))
            }
            _ => Err(ManifestError::BadPlatform {
                input: input.to_owned(),
            }),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(variant) => write!(f, "/{variant}"),
            None => Ok(()),
        }
    }
}

impl Index {
    /// The first manifest in the index for `wanted`, or an error listing the
    /// platforms the index has.
    pub fn select(
        &self,
        wanted: &Platform,
        index_digest: &Digest,
    ) -> Result<&Descriptor, ManifestError> {
        let found = self
            .manifests
            .iter()
            .find(|d| d.platform.as_ref().is_some_and(|p| wanted.matches(p)));
        found.ok_or_else(|| ManifestError::NoMatchingPlatform {
            wanted: wanted.to_string(),
            digest: index_digest.clone(),
            available: self.platforms(),
        })
    }

    /// The platforms listed, as `os/arch[/variant]`.
    pub fn platforms(&self) -> Vec<String> {
        let listed = self.manifests.iter().filter_map(|d| d.platform.as_ref());
        listed.map(Platform::to_string).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(platform: &str) -> Descriptor {
        let mut d = Descriptor::new(OCI_MANIFEST, Digest::of(platform.as_bytes()), 10);
        d.platform = Some(platform.parse().expect("platform"));
        d
    }

    #[test]
    fn select_picks_the_matching_platform() {
        let index = Index {
            schema_version: 2,
            media_type: Some(OCI_INDEX.to_owned()),
            manifests: vec![
                entry("linux/amd64"),
                entry("linux/arm/v7"),
                entry("linux/arm64"),
            ],
            annotations: BTreeMap::new(),
        };
        let d = Digest::of(b"index");
        let pick = |p: &str| {
            index
                .select(&p.parse().expect("platform"), &d)
                .map(|e| e.digest.clone())
        };
        assert_eq!(
            pick("linux/amd64").expect("amd64"),
            Digest::of(b"linux/amd64")
        );
        assert_eq!(
            pick("linux/arm/v7").expect("arm"),
            Digest::of(b"linux/arm/v7")
        );
        assert_eq!(pick("linux/arm").expect("arm"), Digest::of(b"linux/arm/v7"));
        assert_eq!(
            pick("linux/arm64/v8").expect("arm64"),
            Digest::of(b"linux/arm64")
        );
        let err = pick("linux/s390x").expect_err("s390x").to_string();
        assert!(
            err.contains("linux/s390x") && err.contains("linux/amd64, linux/arm/v7, linux/arm64"),
            "{err}"
        );
    }

    #[test]
    fn platform_parsing() {
        assert_eq!(
            "linux/arm/v7".parse::<Platform>().expect("p").to_string(),
            "linux/arm/v7"
        );
        for bad in ["linux", "linux/", "a/b/c/d", "/amd64"] {
            assert!(bad.parse::<Platform>().is_err(), "{bad}");
        }
        assert_eq!(Platform::host().os, "linux");
    }

    #[test]
    fn decode_uses_header_then_body() {
        let body = br#"{"schemaVersion":2,"manifests":[]}"#;
        let d = Digest::of(body);
        assert!(matches!(
            ManifestKind::decode(None, &d, body),
            Ok(ManifestKind::Index(_))
        ));
        let err = ManifestKind::decode(
            Some("application/json"),
            &d,
            br#"{"schemaVersion":2,"mediaType":"x/y"}"#,
        );
        assert!(err
            .expect_err("x/y")
            .to_string()
            .contains("unsupported media type \"x/y\""));
    }
}
