//! `load`: store the images of a docker-archive or oci-archive tarball (plain, gzip or zstd).
//!
//! The archive is read once, as a stream. `manifest.json` / `index.json` may come after the
//! blobs, so every member is streamed straight into the blob store as it passes: members
//! named `blobs/sha256/<hex>` are verified against their name while they are written, others
//! (legacy `<id>/layer.tar`, `<hex>.json`) are stored under the digest they hash to. Only the
//! small JSON documents are kept in memory. Then each image's layers are checked (the
//! decompressed stream must hash to the config's diffID) before they are unpacked into the
//! layer store, and the records are written, all together, as the commit point. Cost: a
//! compressed layer is decompressed twice (once to check, once to unpack); a member that is
//! not image content is written and then removed.
//!
//! Any failure removes every blob and layer this load created and stores no record.

use std::collections::HashMap;
use std::io::{self, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use berth_image::digest::HashingWriter;
use berth_image::manifest::{ManifestError, DOCKER_LIST, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST};
use berth_image::{Descriptor, Digest, Index, Manifest, ManifestKind, Platform, Reference};
use berth_storage::{chain_id, decompressed, Compression, Image};

use super::added::Added;
use super::archive::{
    blob_path, layer_media_type, uncompressed_manifest, DockerItem, BLOBS_DIR, IMAGE_NAME, REF_NAME,
};
use super::{record_for, ConfigError, ImageConfig, Images, RecordError, RemoveError};

/// Archive members read into memory instead of the blob store.
const DOCUMENTS: [&str; 4] = ["manifest.json", "index.json", "oci-layout", "repositories"];
/// The largest document read into memory.
const DOCUMENT_LIMIT: u64 = 16 << 20;

/// Why a load failed. Nothing it wrote is left behind.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The input is not a (compressed) tar archive.
    #[error("load: not a tar archive ({reason})")]
    NotAnArchive {
        /// What the tar reader said, on one line and cut short (it may quote the input).
        reason: String,
    },
    /// The archive broke off or is corrupt after some member.
    #[error("load: reading the archive after {entry}: {source}")]
    Read {
        /// The last member read.
        entry: String,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
    /// A JSON document is too big to be one.
    #[error("load: {entry} is larger than {DOCUMENT_LIMIT} bytes")]
    TooLarge {
        /// The member.
        entry: String,
    },
    /// Storing a member failed (a `blobs/sha256/<hex>` member that does not hash to `<hex>`).
    #[error("load: {entry}: {source}")]
    Blob {
        /// The member.
        entry: String,
        /// What went wrong.
        #[source]
        source: berth_image::StoreError,
    },
    /// Neither `manifest.json` nor `index.json`.
    #[error(
        "load: the archive has neither manifest.json (docker-archive) nor index.json (oci-archive)"
    )]
    NoManifest,
    /// A JSON document is invalid.
    #[error("load: {entry}: {source}")]
    Json {
        /// The member.
        entry: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// Something the manifests name is not in the archive.
    #[error("load: {what} {name} is not in the archive")]
    Missing {
        /// `config`, `layer`, `manifest`.
        what: &'static str,
        /// Its path or digest.
        name: String,
    },
    /// An index entry leads to an index inside an index: not followed.
    #[error("load: {digest}: an index nested in an index, not an image manifest")]
    NotAManifest {
        /// The nested index.
        digest: Digest,
    },
    /// An image config is unreadable.
    #[error("load: {0}")]
    Config(#[from] ConfigError),
    /// A manifest is unreadable, or an index has nothing for this platform.
    #[error("load: {0}")]
    Manifest(#[from] ManifestError),
    /// A layer's content does not hash to the diffID its config gives.
    #[error("load: layer {layer}: content hashes to {actual}, but the config says {expected}")]
    DiffId {
        /// The layer blob.
        layer: Digest,
        /// The config's diffID.
        expected: String,
        /// What the decompressed layer hashes to.
        actual: Digest,
    },
    /// Reading or decompressing a layer failed.
    #[error("load: layer {layer}: {source}")]
    Layer {
        /// The layer blob.
        layer: Digest,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
    /// Unpacking a layer failed (a hostile layer: the message names the entry).
    #[error("load: layer {layer}: {source}")]
    Unpack {
        /// The layer blob.
        layer: Digest,
        /// What went wrong.
        #[source]
        source: Box<berth_storage::StoreError>,
    },
    /// A name in the archive is not a valid tag.
    #[error("load: invalid tag {name:?}: {source}")]
    Tag {
        /// The name.
        name: String,
        /// Why.
        #[source]
        source: berth_image::reference::ReferenceError,
    },
    /// The record could not be built.
    #[error("load: {0}")]
    Record(#[from] RecordError),
    /// A store (lock, records) failed.
    #[error("load: {0}")]
    Store(#[from] Box<RemoveError>),
    /// The load failed and so did removing what it had written.
    #[error("{first}; cleaning up: {}", .failures.join("; "))]
    Cleanup {
        /// The error that stopped the load.
        first: Box<LoadError>,
        /// The removals that failed.
        failures: Vec<String>,
    },
}

/// One image a load stored.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    /// The image ID.
    pub id: String,
    /// The names the archive gave it (canonical), in archive order.
    pub tags: Vec<String>,
    /// Names that moved here from another image: (name, that image's ID).
    pub moved: Vec<(String, String)>,
}

/// What a load did.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The images, in archive order.
    pub images: Vec<LoadedImage>,
    /// Archive members that are not image content and could not be removed afterwards.
    pub warnings: Vec<String>,
}

/// The archive as read: members stored as blobs, links between members, documents.
#[derive(Debug, Default)]
struct Contents {
    files: HashMap<String, Digest>,
    links: HashMap<String, String>,
    documents: HashMap<String, Vec<u8>>,
}

impl Contents {
    /// The blob holding member `path`, following links.
    fn member(&self, path: &str) -> Option<&Digest> {
        let mut path = normalize(Path::new(path))?;
        for _ in 0..16 {
            if let Some(digest) = self.files.get(&path) {
                return Some(digest);
            }
            path = self.links.get(&path)?.clone();
        }
        None
    }

    fn document(&self, name: &str) -> Option<&[u8]> {
        self.documents.get(name).map(Vec::as_slice)
    }
}

/// An image ready to be recorded.
struct Pending {
    image: Image,
    tags: Vec<String>,
}

impl Images {
    /// Load every image of the archive in `input`; nothing is recorded unless all are.
    pub fn load(&self, input: impl Read) -> Result<Loaded, LoadError> {
        let gc = self.gc_lock(false).map_err(Box::new)?;
        let mut added = Added::default();
        let result = self
            .load_pending(&mut added, input)
            .and_then(|pending| self.commit(pending));
        drop(gc);
        let failures = added.remove_unreferenced(self);
        match result {
            Ok(images) => Ok(Loaded {
                images,
                warnings: failures,
            }),
            Err(first) => Err(with_cleanup(first, failures)),
        }
    }

    fn load_pending(&self, added: &mut Added, input: impl Read) -> Result<Vec<Pending>, LoadError> {
        let contents = self.read_contents(added, input)?;
        if let Some(manifest) = contents.document("manifest.json") {
            self.docker_images(added, &contents, manifest)
        } else if let Some(index) = contents.document("index.json") {
            self.oci_images(added, &contents, index)
        } else {
            Err(LoadError::NoManifest)
        }
    }

    /// Store the records (under the store's lock): the commit point. Returns what to report
    /// for each, including names taken from other images.
    fn commit(&self, pending: Vec<Pending>) -> Result<Vec<LoadedImage>, LoadError> {
        let store_err = |e: berth_storage::ImageStoreError| Box::new(RemoveError::from(e));
        let locked = self.records.lock().map_err(store_err)?;
        let mut loaded = Vec::new();
        for p in pending {
            let mut moved = Vec::new();
            for tag in &p.tags {
                if let Some(old) = self.records.by_name(tag).map_err(store_err)? {
                    if old.id != p.image.id {
                        moved.push((tag.clone(), old.id));
                    }
                }
            }
            locked.put(&p.image).map_err(store_err)?;
            loaded.push(LoadedImage {
                id: p.image.id,
                tags: p.tags,
                moved,
            });
        }
        Ok(loaded)
    }

    /// Stream every member of the archive into the blob store (documents into memory).
    fn read_contents(&self, added: &mut Added, input: impl Read) -> Result<Contents, LoadError> {
        let reader =
            decompressed(BufReader::with_capacity(1 << 20, input)).map_err(not_an_archive)?;
        let mut archive = tar::Archive::new(reader);
        let entries = archive.entries().map_err(not_an_archive)?;
        let mut contents = Contents::default();
        let mut last: Option<String> = None;
        for entry in entries {
            let mut entry = entry.map_err(|source| match &last {
                None => not_an_archive(source),
                Some(entry) => LoadError::Read {
                    entry: entry.clone(),
                    source,
                },
            })?;
            let raw = entry.path_bytes().into_owned();
            let name = String::from_utf8_lossy(&raw).into_owned();
            last = Some(name.clone());
            let Some(path) = normalize(Path::new(&name)) else {
                continue;
            };
            let kind = entry.header().entry_type();
            if kind.is_file() {
                self.read_member(added, &mut contents, path, &mut entry)?;
            } else if kind.is_symlink() || kind.is_hard_link() {
                if let Some(target) = link_target(&path, kind.is_symlink(), &entry) {
                    contents.links.insert(path, target);
                }
            }
        }
        Ok(contents)
    }

    fn read_member(
        &self,
        added: &mut Added,
        contents: &mut Contents,
        path: String,
        entry: &mut impl Read,
    ) -> Result<(), LoadError> {
        let blob_err = |source| LoadError::Blob {
            entry: path.clone(),
            source,
        };
        if DOCUMENTS.contains(&path.as_str()) {
            let mut bytes = Vec::new();
            entry
                .take(DOCUMENT_LIMIT + 1)
                .read_to_end(&mut bytes)
                .map_err(|source| LoadError::Read {
                    entry: path.clone(),
                    source,
                })?;
            if bytes.len() as u64 > DOCUMENT_LIMIT {
                return Err(LoadError::TooLarge { entry: path });
            }
            contents.documents.insert(path, bytes);
            return Ok(());
        }
        let named = path
            .strip_prefix(BLOBS_DIR)
            .and_then(|hex| format!("sha256:{hex}").parse::<Digest>().ok());
        let digest = match named {
            Some(digest) => {
                added.put_blob(self, &digest, entry).map_err(blob_err)?;
                digest
            }
            None => {
                let stored = self.blobs.put_new(entry).map_err(blob_err)?;
                added.stored(&stored);
                stored.digest
            }
        };
        contents.files.insert(path, digest);
        Ok(())
    }

    fn docker_images(
        &self,
        added: &mut Added,
        contents: &Contents,
        manifest: &[u8],
    ) -> Result<Vec<Pending>, LoadError> {
        let items: Vec<DockerItem> =
            serde_json::from_slice(manifest).map_err(|source| LoadError::Json {
                entry: "manifest.json".into(),
                source,
            })?;
        let mut pending = Vec::new();
        for item in items {
            pending.push(self.docker_image(added, contents, item)?);
        }
        Ok(pending)
    }

    /// One `manifest.json` entry: check and unpack its layers, store the manifest `save`
    /// would write for it.
    fn docker_image(
        &self,
        added: &mut Added,
        contents: &Contents,
        item: DockerItem,
    ) -> Result<Pending, LoadError> {
        let config_digest = contents.member(&item.config).ok_or(LoadError::Missing {
            what: "config",
            name: item.config.clone(),
        })?;
        let config = ImageConfig::read(&self.blobs, &config_digest.to_string())?;
        let mut layers = Vec::new();
        for path in &item.layers {
            let digest = contents.member(path).ok_or(LoadError::Missing {
                what: "layer",
                name: path.clone(),
            })?;
            layers.push(self.layer_descriptor(digest)?);
        }
        self.unpack_checked(added, &layers, &config)?;
        let config_size = self.stored_size(config_digest, "config")?;
        let config_desc = Descriptor::new(OCI_CONFIG, config_digest.clone(), config_size);
        let manifest = uncompressed_manifest(config_desc, layers);
        let bytes = serde_json::to_vec(&manifest).map_err(|source| LoadError::Json {
            entry: "manifest".into(),
            source,
        })?;
        let digest = added
            .put_bytes(self, &bytes)
            .map_err(|source| LoadError::Blob {
                entry: "manifest".into(),
                source,
            })?;
        let tags = item.repo_tags.unwrap_or_default();
        let tags = tags
            .iter()
            .map(|t| canonical_tag(t))
            .collect::<Result<_, _>>()?;
        self.pending(&digest, OCI_MANIFEST, &manifest, &config, tags)
    }

    fn oci_images(
        &self,
        added: &mut Added,
        contents: &Contents,
        index: &[u8],
    ) -> Result<Vec<Pending>, LoadError> {
        let index: Index = serde_json::from_slice(index).map_err(|source| LoadError::Json {
            entry: "index.json".into(),
            source,
        })?;
        let mut pending = Vec::new();
        for (descriptor, tags) in self.oci_manifests(contents, &index)? {
            pending.push(self.oci_image(added, contents, &descriptor, tags)?);
        }
        Ok(pending)
    }

    /// The image manifests `index` names, each once, with all the names the index gives it.
    fn oci_manifests(
        &self,
        contents: &Contents,
        index: &Index,
    ) -> Result<Vec<(Descriptor, Vec<String>)>, LoadError> {
        let mut wanted: Vec<(Descriptor, Vec<String>)> = Vec::new();
        for entry in &index.manifests {
            let names = names_of(entry)?;
            let manifest = self.platform_manifest(contents, entry)?;
            match wanted.iter_mut().find(|(d, _)| d.digest == manifest.digest) {
                Some((_, all)) => {
                    for name in names {
                        if !all.contains(&name) {
                            all.push(name);
                        }
                    }
                }
                None => wanted.push((manifest, names)),
            }
        }
        Ok(wanted)
    }

    /// One image manifest of an oci-archive: its blobs must be there; check and unpack.
    fn oci_image(
        &self,
        added: &mut Added,
        contents: &Contents,
        descriptor: &Descriptor,
        tags: Vec<String>,
    ) -> Result<Pending, LoadError> {
        let digest = &descriptor.digest;
        let bytes = self.archived_blob(contents, digest, "manifest")?;
        let manifest = match ManifestKind::decode(Some(&descriptor.media_type), digest, &bytes)? {
            ManifestKind::Image(m) => m,
            ManifestKind::Index(_) => {
                return Err(LoadError::NotAManifest {
                    digest: digest.clone(),
                })
            }
        };
        self.archived_blob_present(contents, &manifest.config.digest, "config")?;
        for layer in &manifest.layers {
            self.archived_blob_present(contents, &layer.digest, "layer")?;
        }
        let config = ImageConfig::read(&self.blobs, &manifest.config.digest.to_string())?;
        self.unpack_checked(added, &manifest.layers, &config)?;
        self.pending(digest, &descriptor.media_type, &manifest, &config, tags)
    }

    /// The image manifest an index entry stands for: itself, or the host's entry of the
    /// nested index it points at.
    fn platform_manifest(
        &self,
        contents: &Contents,
        entry: &Descriptor,
    ) -> Result<Descriptor, LoadError> {
        if entry.media_type != OCI_INDEX && entry.media_type != DOCKER_LIST {
            return Ok(entry.clone());
        }
        let bytes = self.archived_blob(contents, &entry.digest, "index")?;
        match ManifestKind::decode(Some(&entry.media_type), &entry.digest, &bytes)? {
            ManifestKind::Index(index) => {
                Ok(index.select(&Platform::host(), &entry.digest)?.clone())
            }
            ManifestKind::Image(_) => Ok(entry.clone()),
        }
    }

    fn pending(
        &self,
        manifest_digest: &Digest,
        media_type: &str,
        manifest: &Manifest,
        config: &ImageConfig,
        tags: Vec<String>,
    ) -> Result<Pending, LoadError> {
        let mut image = record_for(
            &self.layers,
            &manifest_digest.to_string(),
            media_type,
            manifest,
            config,
        )?;
        image.repo_tags = tags.clone();
        Ok(Pending { image, tags })
    }

    /// A blob the archive must have brought (or the store had already): read it.
    fn archived_blob(
        &self,
        contents: &Contents,
        digest: &Digest,
        what: &'static str,
    ) -> Result<Vec<u8>, LoadError> {
        self.archived_blob_present(contents, digest, what)?;
        self.blobs.read(digest).map_err(|source| LoadError::Blob {
            entry: blob_path(digest),
            source,
        })
    }

    fn archived_blob_present(
        &self,
        contents: &Contents,
        digest: &Digest,
        what: &'static str,
    ) -> Result<(), LoadError> {
        if contents.files.contains_key(&blob_path(digest)) || self.blobs.contains(digest) {
            Ok(())
        } else {
            Err(LoadError::Missing {
                what,
                name: digest.to_string(),
            })
        }
    }

    fn stored_size(&self, digest: &Digest, what: &str) -> Result<u64, LoadError> {
        self.blobs.size(digest).map_err(|source| LoadError::Blob {
            entry: format!("{what} {digest}"),
            source,
        })
    }

    /// A descriptor of a layer blob of a docker-archive, its media type from its content.
    fn layer_descriptor(&self, digest: &Digest) -> Result<Descriptor, LoadError> {
        let compression = self.layer_reader(digest)?.compression();
        let size = self.stored_size(digest, "layer")?;
        Ok(Descriptor::new(
            layer_media_type(compression),
            digest.clone(),
            size,
        ))
    }

    fn layer_reader(
        &self,
        digest: &Digest,
    ) -> Result<berth_storage::Decompressed<BufReader<std::fs::File>>, LoadError> {
        let file = self
            .blobs
            .open_blob(digest)
            .map_err(|source| LoadError::Blob {
                entry: blob_path(digest),
                source,
            })?;
        decompressed(BufReader::with_capacity(1 << 20, file)).map_err(|source| LoadError::Layer {
            layer: digest.clone(),
            source,
        })
    }

    /// Check each layer against its diffID, then unpack it on top of the one below.
    fn unpack_checked(
        &self,
        added: &mut Added,
        layers: &[Descriptor],
        config: &ImageConfig,
    ) -> Result<(), LoadError> {
        let diff_ids = &config.rootfs.diff_ids;
        if layers.len() != diff_ids.len() {
            return Err(LoadError::Record(RecordError::LayerCount {
                id: "in the archive".into(),
                layers: layers.len(),
                diff_ids: diff_ids.len(),
            }));
        }
        let mut parent: Option<String> = None;
        for (layer, diff_id) in layers.iter().zip(diff_ids) {
            self.check_diff_id(&layer.digest, diff_id)?;
            let reader = self.layer_reader(&layer.digest)?;
            added
                .put_layer(self, parent.as_deref(), diff_id, reader)
                .map_err(|e| LoadError::Unpack {
                    layer: layer.digest.clone(),
                    source: Box::new(e),
                })?;
            parent = Some(chain_id(parent.as_deref(), diff_id));
        }
        Ok(())
    }

    /// The decompressed layer must hash to `diff_id`. An uncompressed blob stored under that
    /// digest was verified on the way in.
    fn check_diff_id(&self, blob: &Digest, diff_id: &str) -> Result<(), LoadError> {
        let mut reader = self.layer_reader(blob)?;
        if reader.compression() == Compression::None && blob.to_string() == diff_id {
            return Ok(());
        }
        let mut hasher = HashingWriter::new(io::sink());
        io::copy(&mut reader, &mut hasher).map_err(|source| LoadError::Layer {
            layer: blob.clone(),
            source,
        })?;
        let (_, actual, _) = hasher.finish();
        if actual.to_string() == diff_id {
            Ok(())
        } else {
            Err(LoadError::DiffId {
                layer: blob.clone(),
                expected: diff_id.to_owned(),
                actual,
            })
        }
    }
}

/// The canonical names an `index.json` entry gives: containerd's full name, else a reference
/// name that is a full reference (podman writes those; docker writes just the tag there).
fn names_of(entry: &Descriptor) -> Result<Vec<String>, LoadError> {
    if let Some(name) = entry.annotations.get(IMAGE_NAME) {
        return Ok(vec![canonical_tag(name)?]);
    }
    match entry.annotations.get(REF_NAME) {
        Some(name) if name.contains(['/', ':']) => Ok(vec![canonical_tag(name)?]),
        _ => Ok(Vec::new()),
    }
}

fn canonical_tag(name: &str) -> Result<String, LoadError> {
    let reference: Reference = name.parse().map_err(|source| LoadError::Tag {
        name: name.to_owned(),
        source,
    })?;
    Ok(reference.to_string())
}

/// A member path without `./`, leading `/` or trailing `/`; `None` for the archive root or a
/// path with `..`.
fn normalize(path: &Path) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str()?),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::Prefix(_) => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// The member a link points at: a symlink's target is relative to its directory, a hard
/// link's to the archive root.
fn link_target<R: Read>(path: &str, symlink: bool, entry: &tar::Entry<'_, R>) -> Option<String> {
    let target = entry.link_name().ok()??;
    let base = if symlink {
        Path::new(path)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    } else {
        PathBuf::new()
    };
    normalize(&base.join(target))
}

/// [`LoadError::NotAnArchive`], its reason one short line: the tar reader quotes the bytes it
/// could not parse.
fn not_an_archive(source: io::Error) -> LoadError {
    let text = source.to_string();
    let first = text.lines().next().unwrap_or_default();
    let mut reason: String = first.chars().filter(|c| !c.is_control()).take(80).collect();
    if reason.len() < first.len() || text.lines().count() > 1 {
        reason.push_str("...");
    }
    LoadError::NotAnArchive { reason }
}

fn with_cleanup(first: LoadError, failures: Vec<String>) -> LoadError {
    if failures.is_empty() {
        first
    } else {
        LoadError::Cleanup {
            first: Box::new(first),
            failures,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_paths_are_normalized_and_kept_inside_the_archive() {
        let cases = [
            ("./manifest.json", Some("manifest.json")),
            ("/blobs/sha256/ab", Some("blobs/sha256/ab")),
            ("blobs/sha256/", Some("blobs/sha256")),
            ("a/../b", Some("b")),
            ("../escape", None),
            ("./", None),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize(Path::new(raw)).as_deref(), want, "{raw}");
        }
    }

    #[test]
    fn links_are_followed_a_bounded_number_of_times() {
        let mut contents = Contents::default();
        let digest = Digest::of(b"layer");
        contents.files.insert("a.tar".into(), digest.clone());
        contents.links.insert("x/layer.tar".into(), "a.tar".into());
        contents.links.insert("loop1".into(), "loop2".into());
        contents.links.insert("loop2".into(), "loop1".into());
        assert_eq!(contents.member("./x/layer.tar"), Some(&digest));
        assert_eq!(contents.member("loop1"), None);
        assert_eq!(contents.member("missing"), None);
    }

    #[test]
    fn names_come_from_containerd_or_a_full_reference_name() {
        let mut entry = Descriptor::new(OCI_MANIFEST, Digest::of(b"m"), 1);
        entry.annotations.insert(REF_NAME.into(), "latest".into());
        assert!(names_of(&entry).expect("names").is_empty());
        entry
            .annotations
            .insert(REF_NAME.into(), "example.com/x:1".into());
        assert_eq!(names_of(&entry).expect("names"), ["example.com/x:1"]);
        entry
            .annotations
            .insert(IMAGE_NAME.into(), "busybox".into());
        assert_eq!(
            names_of(&entry).expect("names"),
            ["docker.io/library/busybox:latest"]
        );
        entry
            .annotations
            .insert(IMAGE_NAME.into(), "Bad Name".into());
        assert!(names_of(&entry).is_err());
    }

    #[test]
    fn not_an_archive_is_one_short_line() {
        let quoted = io::Error::other(format!("bad header {}\nmore\nlines", "x".repeat(200)));
        let message = not_an_archive(quoted).to_string();
        assert_eq!(message.lines().count(), 1, "{message}");
        assert!(message.len() < 120, "{message}");
    }
}
