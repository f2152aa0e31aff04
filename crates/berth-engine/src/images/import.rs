//! `import`: a root filesystem tarball becomes a one-layer image.
//!
//! The tarball (plain, gzip or zstd) is decompressed once, on the way into the blob store,
//! where it is hashed: its digest is the layer's diffID. The layer blob is that uncompressed
//! tar, media type `application/vnd.oci.image.layer.v1.tar`. Why not gzip it on the way:
//! compressing costs far more CPU than the rest of the import, `save --format docker-archive`
//! wants the uncompressed tar anyway, and blob digest = diffID keeps the image simple; the
//! price is disk space for the blob. The stored tar is then unpacked into the layer store
//! (which needs the diffID before it starts, hence blob first). Cost: the input is read once,
//! the tar written once and read once.

use std::io::{BufReader, Read};

use berth_image::manifest::{OCI_CONFIG, OCI_LAYER_TAR, OCI_MANIFEST};
use berth_image::{Descriptor, Digest, Manifest, Platform, Reference};
use berth_storage::{decompressed, Image};
use serde_json::json;

use super::added::Added;
use super::config::RootFs;
use super::{record_for, ImageConfig, Images, RecordError, RemoveError};

/// The PATH docker gives an imported image.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Why an import failed. Nothing it wrote is left behind.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The name to tag with is not a valid `REPOSITORY[:TAG]`.
    #[error("invalid reference format: {name}: {reason}")]
    Reference {
        /// The name given.
        name: String,
        /// Why it is refused.
        reason: String,
    },
    /// `--platform` is not `os/arch[/variant]`.
    #[error("{0}")]
    Platform(#[from] berth_image::manifest::ManifestError),
    /// The tarball is empty.
    #[error("import {source_name}: the tarball is empty")]
    Empty {
        /// FILE or `-`.
        source_name: String,
    },
    /// Reading or storing the tarball failed.
    #[error("import {source_name}: {source}")]
    Blob {
        /// FILE or `-`.
        source_name: String,
        /// What went wrong.
        #[source]
        source: berth_image::StoreError,
    },
    /// Unpacking failed (a hostile or corrupt tarball: the message names the entry).
    #[error("import {source_name}: {source}")]
    Unpack {
        /// FILE or `-`.
        source_name: String,
        /// What went wrong.
        #[source]
        source: Box<berth_storage::StoreError>,
    },
    /// The image could not be recorded.
    #[error("import {source_name}: {source}")]
    Record {
        /// FILE or `-`.
        source_name: String,
        /// What went wrong.
        #[source]
        source: Box<RemoveError>,
    },
    /// The record could not be built from the stored layer.
    #[error("import {source_name}: {source}")]
    Layers {
        /// FILE or `-`.
        source_name: String,
        /// What went wrong.
        #[source]
        source: RecordError,
    },
    /// Building the config or the manifest failed.
    #[error("import {source_name}: {what}: {reason}")]
    Build {
        /// FILE or `-`.
        source_name: String,
        /// Which document.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The import failed and so did removing what it had written.
    #[error("{first}; cleaning up: {}", .failures.join("; "))]
    Cleanup {
        /// The error that stopped the import.
        first: Box<ImportError>,
        /// The removals that failed.
        failures: Vec<String>,
    },
}

/// What to import and how to name it.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Where the tarball comes from (FILE or `-`), for messages and the history entry.
    pub source_name: String,
    /// `REPOSITORY[:TAG]` to tag the image with; dangling without.
    pub reference: Option<String>,
    /// `-m`: the history comment.
    pub message: Option<String>,
    /// `--platform` (default: the host's).
    pub platform: Option<String>,
}

impl Images {
    /// Import the rootfs tarball `input` as a one-layer image; returns the stored record.
    pub fn import(&self, input: impl Read, options: &ImportOptions) -> Result<Image, ImportError> {
        let tag = options.reference.as_deref().map(tag_name).transpose()?;
        let platform = match &options.platform {
            Some(p) => p.parse()?,
            None => Platform::host(),
        };
        let record_err = |e| ImportError::Record {
            source_name: options.source_name.clone(),
            source: Box::new(e),
        };
        let gc = self.gc_lock(false).map_err(record_err)?;
        let mut added = Added::default();
        let result = self.import_into(&mut added, input, options, &platform, tag);
        drop(gc);
        match result {
            Ok(image) => Ok(image),
            Err(first) => {
                let failures = added.remove_unreferenced(self);
                if failures.is_empty() {
                    Err(first)
                } else {
                    Err(ImportError::Cleanup {
                        first: Box::new(first),
                        failures,
                    })
                }
            }
        }
    }

    fn import_into(
        &self,
        added: &mut Added,
        input: impl Read,
        options: &ImportOptions,
        platform: &Platform,
        tag: Option<String>,
    ) -> Result<Image, ImportError> {
        let name = &options.source_name;
        let blob_err = |source| ImportError::Blob {
            source_name: name.clone(),
            source,
        };
        let io_err = |e| blob_err(berth_image::StoreError::WriteNew { source: e });
        let tar = decompressed(BufReader::with_capacity(1 << 20, input)).map_err(io_err)?;
        let stored = self.blobs.put_new(tar).map_err(blob_err)?;
        added.stored(&stored);
        if stored.size == 0 {
            return Err(ImportError::Empty {
                source_name: name.clone(),
            });
        }
        let diff_id = stored.digest.to_string();
        let blob = self.blobs.open_blob(&stored.digest).map_err(blob_err)?;
        added
            .put_layer(
                self,
                None,
                &diff_id,
                BufReader::with_capacity(1 << 20, blob),
            )
            .map_err(|e| ImportError::Unpack {
                source_name: name.clone(),
                source: Box::new(e),
            })?;
        let layer = Descriptor::new(OCI_LAYER_TAR, stored.digest.clone(), stored.size);
        let config = import_config(platform, &diff_id, options);
        let (manifest, digest) = self.store_documents(added, &config, layer, name)?;
        self.record_import(&manifest, &digest, &config, tag, name)
    }

    /// Record the imported image (the commit point), tagged if a name was given.
    fn record_import(
        &self,
        manifest: &Manifest,
        digest: &Digest,
        config: &ImageConfig,
        tag: Option<String>,
        name: &str,
    ) -> Result<Image, ImportError> {
        let mut image = record_for(
            &self.layers,
            &digest.to_string(),
            OCI_MANIFEST,
            manifest,
            config,
        )
        .map_err(|source| ImportError::Layers {
            source_name: name.to_owned(),
            source,
        })?;
        image.repo_tags.extend(tag);
        let record_err = |e| ImportError::Record {
            source_name: name.to_owned(),
            source: Box::new(RemoveError::from(e)),
        };
        self.records
            .lock()
            .map_err(record_err)?
            .put(&image)
            .map_err(record_err)
    }

    /// Store the config and a manifest naming it and `layer`; returns the manifest and its digest.
    fn store_documents(
        &self,
        added: &mut Added,
        config: &ImageConfig,
        layer: Descriptor,
        name: &str,
    ) -> Result<(Manifest, Digest), ImportError> {
        let build_err = |what, e: serde_json::Error| ImportError::Build {
            source_name: name.to_owned(),
            what,
            reason: e.to_string(),
        };
        let blob_err = |source| ImportError::Blob {
            source_name: name.to_owned(),
            source,
        };
        let config_bytes = serde_json::to_vec(config).map_err(|e| build_err("config", e))?;
        let config_digest = added.put_bytes(self, &config_bytes).map_err(blob_err)?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.to_owned()),
            config: Descriptor::new(OCI_CONFIG, config_digest, config_bytes.len() as u64),
            layers: vec![layer],
            annotations: Default::default(),
        };
        let bytes = serde_json::to_vec(&manifest).map_err(|e| build_err("manifest", e))?;
        let digest = added.put_bytes(self, &bytes).map_err(blob_err)?;
        Ok((manifest, digest))
    }
}

/// The canonical tag for `REPOSITORY[:TAG]` (a digest is refused, as docker does).
fn tag_name(name: &str) -> Result<String, ImportError> {
    let reference: Reference = name.parse().map_err(|e| ImportError::Reference {
        name: name.to_owned(),
        reason: format!("{e}"),
    })?;
    if reference.digest().is_some() {
        return Err(ImportError::Reference {
            name: name.to_owned(),
            reason: "a tag cannot contain a digest".to_owned(),
        });
    }
    Ok(reference.to_string())
}

/// The config docker gives an imported image: the platform, the one diffID, a default PATH,
/// `created` now and one history entry carrying the message.
fn import_config(platform: &Platform, diff_id: &str, options: &ImportOptions) -> ImageConfig {
    let now = now_rfc3339();
    let comment = options
        .message
        .clone()
        .unwrap_or_else(|| format!("Imported from {}", options.source_name));
    ImageConfig {
        created: Some(now.clone()),
        author: None,
        comment: Some(comment.clone()),
        architecture: platform.architecture.clone(),
        os: platform.os.clone(),
        variant: platform.variant.clone(),
        config: Some(json!({ "Env": [DEFAULT_PATH] })),
        rootfs: RootFs {
            kind: "layers".to_owned(),
            diff_ids: vec![diff_id.to_owned()],
        },
        history: vec![json!({ "created": now, "comment": comment })],
    }
}

/// The current time, RFC 3339 in UTC with nanoseconds, as docker writes `created`.
fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}
