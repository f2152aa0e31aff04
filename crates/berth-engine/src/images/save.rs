//! `save`: stream images as a docker-archive or oci-archive tarball.
//!
//! Entries are written in sorted order with fixed metadata (mtime 0, uid/gid 0, modes 0644
//! and 0755), so the same images always give the same bytes. Blobs are streamed from the
//! store; none is held in memory. A compressed layer goes into a docker-archive decompressed:
//! its uncompressed size is needed for the tar header first, so such a layer is decompressed
//! twice (once to count, once to write).

use std::collections::BTreeMap;
use std::io::{self, BufReader, Read, Write};

use berth_image::manifest::{OCI_CONFIG, OCI_INDEX, OCI_LAYER_TAR, OCI_MANIFEST};
use berth_image::{Descriptor, Digest, Index, Reference};
use berth_storage::{decompressed, Image};

use super::archive::{
    blob_path, uncompressed_manifest, ArchiveFormat, DockerItem, IMAGE_NAME, OCI_LAYOUT, REF_NAME,
};
use super::{canonical_name, familiar_repository, Images, ImagesError, RemoveError};

/// Why a save failed.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// No such image, or a store failed.
    #[error(transparent)]
    Images(#[from] ImagesError),
    /// The GC lock could not be taken.
    #[error(transparent)]
    Lock(#[from] Box<RemoveError>),
    /// A stored digest is malformed.
    #[error("image {image}: bad digest {digest:?}: {source}")]
    BadDigest {
        /// The image.
        image: String,
        /// The digest as stored.
        digest: String,
        /// Why.
        #[source]
        source: berth_image::digest::DigestError,
    },
    /// A blob is missing or unreadable.
    #[error("blob {digest}: {source}")]
    Blob {
        /// The blob.
        digest: Digest,
        /// What went wrong.
        #[source]
        source: berth_image::StoreError,
    },
    /// Decompressing a stored layer failed.
    #[error("layer blob {digest}: decompressing: {source}")]
    Decompress {
        /// The blob.
        digest: Digest,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
    /// A layer gave a different number of bytes the second time it was read.
    #[error("layer blob {digest}: {expected} bytes counted, {written} written")]
    Changed {
        /// The blob.
        digest: Digest,
        /// Bytes counted first.
        expected: u64,
        /// Bytes written.
        written: u64,
    },
    /// Writing the archive failed.
    #[error("writing {entry}: {source}")]
    Write {
        /// The archive member.
        entry: String,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
    /// Encoding a JSON document failed.
    #[error("encoding {entry}: {source}")]
    Json {
        /// The archive member.
        entry: String,
        /// What went wrong.
        #[source]
        source: serde_json::Error,
    },
}

/// Where an archive member's bytes come from.
enum Source {
    Dir,
    Blob(Digest),
    Decompressed { blob: Digest, size: u64 },
    Bytes(Vec<u8>),
}

/// Archive members by path: sorted, each written once.
type Plan = BTreeMap<String, Source>;

/// An image to save and the names it is saved under (canonical).
struct Picked {
    image: Image,
    tags: Vec<String>,
}

impl Images {
    /// Write the images `names` refer to into `out` as a `format` archive. An image named by
    /// tag is saved under that tag; by ID, without one.
    pub fn save(
        &self,
        names: &[String],
        format: ArchiveFormat,
        out: impl Write,
    ) -> Result<(), SaveError> {
        let picked = self.pick(names)?;
        let _gc = self.gc_lock(false).map_err(Box::new)?;
        let plan = match format {
            ArchiveFormat::Docker => self.docker_plan(&picked)?,
            ArchiveFormat::Oci => self.oci_plan(&picked)?,
        };
        self.write_plan(plan, out)
    }

    /// The images `names` stand for, as docker picks them: `REPO:TAG` that tag, a bare
    /// `REPO` every tag of the repository, an ID (or prefix) the image without a name.
    fn pick(&self, names: &[String]) -> Result<Vec<Picked>, SaveError> {
        let mut picked: Vec<Picked> = Vec::new();
        for name in names {
            for (image, tag) in self.named(name)? {
                match picked.iter_mut().find(|p| p.image.id == image.id) {
                    Some(p) => p.tags.extend(tag.filter(|t| !p.tags.contains(t))),
                    None => picked.push(Picked {
                        image,
                        tags: tag.into_iter().collect(),
                    }),
                }
            }
        }
        Ok(picked)
    }

    /// What one name of `save IMAGE...` stands for: images, each with the tag to save it under.
    fn named(&self, name: &str) -> Result<Vec<(Image, Option<String>)>, SaveError> {
        if let Some(repository) = bare_repository(name) {
            let mut found = Vec::new();
            for image in self.records.list().map_err(ImagesError::from)? {
                let tags: Vec<String> = image
                    .repo_tags
                    .iter()
                    .filter(|t| {
                        t.parse::<Reference>()
                            .is_ok_and(|r| same_repository(&r, &repository))
                    })
                    .cloned()
                    .collect();
                for tag in tags {
                    found.push((image.clone(), Some(tag)));
                }
            }
            if !found.is_empty() {
                found.sort_by(|a, b| a.1.cmp(&b.1));
                return Ok(found);
            }
        }
        let image = self.resolve(name)?;
        let tag = canonical_name(name).filter(|c| image.repo_tags.contains(c));
        Ok(vec![(image, tag)])
    }

    fn docker_plan(&self, picked: &[Picked]) -> Result<Plan, SaveError> {
        let mut plan = layout_plan();
        let mut items = Vec::new();
        let mut manifests = Vec::new();
        let mut repositories = Repositories::new();
        for Picked { image, tags } in picked {
            let id = parse_digest(image, &image.id)?;
            let layers = self.docker_layers(&mut plan, image)?;
            let config = Descriptor::new(OCI_CONFIG, id.clone(), self.blob_size(&id)?);
            let manifest = uncompressed_manifest(config, layers.clone());
            let bytes = to_json("manifest", &manifest)?;
            let digest = Digest::of(&bytes);
            manifests.extend(index_entries(OCI_MANIFEST, &digest, bytes.len(), tags));
            plan.insert(blob_path(&digest), Source::Bytes(bytes));
            plan.insert(blob_path(&id), Source::Blob(id.clone()));
            if let Some(top) = layers.last() {
                add_repositories(&mut repositories, tags, &top.digest);
            }
            items.push(DockerItem {
                config: blob_path(&id),
                repo_tags: Some(tags.iter().filter_map(|t| familiar_tag(t)).collect()),
                layers: layers.iter().map(|l| blob_path(&l.digest)).collect(),
            });
        }
        plan.insert("index.json".into(), Source::Bytes(index_json(manifests)?));
        let items = to_json("manifest.json", &items)?;
        plan.insert("manifest.json".into(), Source::Bytes(items));
        let repositories = to_json("repositories", &repositories)?;
        plan.insert("repositories".into(), Source::Bytes(repositories));
        Ok(plan)
    }

    /// Plan `image`'s layers as uncompressed tars named by diffID; returns their descriptors.
    fn docker_layers(&self, plan: &mut Plan, image: &Image) -> Result<Vec<Descriptor>, SaveError> {
        let mut layers = Vec::new();
        for layer in &image.layers {
            let diff_id = parse_digest(image, &layer.diff_id)?;
            let path = blob_path(&diff_id);
            let size = match plan.get(&path) {
                Some(Source::Blob(d)) => self.blob_size(d)?,
                Some(Source::Decompressed { size, .. }) => *size,
                _ => {
                    let blob = parse_digest(image, &layer.blob)?;
                    let source = self.uncompressed(&blob, &diff_id)?;
                    let size = match &source {
                        Source::Decompressed { size, .. } => *size,
                        _ => self.blob_size(&blob)?,
                    };
                    plan.insert(path, source);
                    size
                }
            };
            layers.push(Descriptor::new(OCI_LAYER_TAR, diff_id, size));
        }
        Ok(layers)
    }

    fn oci_plan(&self, picked: &[Picked]) -> Result<Plan, SaveError> {
        let mut plan = layout_plan();
        let mut manifests = Vec::new();
        for Picked { image, tags } in picked {
            let manifest = parse_digest(image, &image.manifest_digest)?;
            let size = self.blob_size(&manifest)?;
            let media_type = &image.manifest_media_type;
            manifests.extend(index_entries(media_type, &manifest, size as usize, tags));
            plan.insert(blob_path(&manifest), Source::Blob(manifest));
            let id = parse_digest(image, &image.id)?;
            plan.insert(blob_path(&id), Source::Blob(id));
            for layer in &image.layers {
                let blob = parse_digest(image, &layer.blob)?;
                plan.insert(blob_path(&blob), Source::Blob(blob));
            }
        }
        plan.insert("index.json".into(), Source::Bytes(index_json(manifests)?));
        Ok(plan)
    }

    /// How a layer blob goes into a docker-archive: as is when it is the uncompressed tar,
    /// else decompressed (counted now).
    fn uncompressed(&self, blob: &Digest, diff_id: &Digest) -> Result<Source, SaveError> {
        if blob == diff_id {
            return Ok(Source::Blob(blob.clone()));
        }
        let mut reader = self.decompressed_blob(blob)?;
        let size =
            io::copy(&mut reader, &mut io::sink()).map_err(|source| SaveError::Decompress {
                digest: blob.clone(),
                source,
            })?;
        Ok(Source::Decompressed {
            blob: blob.clone(),
            size,
        })
    }

    fn decompressed_blob(&self, blob: &Digest) -> Result<impl Read, SaveError> {
        let file = self
            .blobs
            .open_blob(blob)
            .map_err(|source| SaveError::Blob {
                digest: blob.clone(),
                source,
            })?;
        decompressed(BufReader::with_capacity(1 << 20, file)).map_err(|source| {
            SaveError::Decompress {
                digest: blob.clone(),
                source,
            }
        })
    }

    fn blob_size(&self, digest: &Digest) -> Result<u64, SaveError> {
        self.blobs.size(digest).map_err(|source| SaveError::Blob {
            digest: digest.clone(),
            source,
        })
    }

    fn write_plan(&self, plan: Plan, out: impl Write) -> Result<(), SaveError> {
        let mut builder = tar::Builder::new(out);
        for (path, source) in plan {
            self.append(&mut builder, &path, source)?;
        }
        let mut out = builder.into_inner().map_err(|source| SaveError::Write {
            entry: "the end of the archive".into(),
            source,
        })?;
        out.flush().map_err(|source| SaveError::Write {
            entry: "the archive".into(),
            source,
        })
    }

    /// Write one member, streaming blobs and checking they have the size the header says.
    fn append<W: Write>(
        &self,
        builder: &mut tar::Builder<W>,
        path: &str,
        source: Source,
    ) -> Result<(), SaveError> {
        let write_err = |source| SaveError::Write {
            entry: path.to_owned(),
            source,
        };
        let (digest, size, reader): (Digest, u64, Box<dyn Read>) = match source {
            Source::Dir => {
                let mut header = header(tar::EntryType::Directory, 0o755, 0);
                return builder
                    .append_data(&mut header, path, io::empty())
                    .map_err(write_err);
            }
            Source::Bytes(bytes) => {
                let mut header = header(tar::EntryType::Regular, 0o644, bytes.len() as u64);
                return builder
                    .append_data(&mut header, path, bytes.as_slice())
                    .map_err(write_err);
            }
            Source::Blob(digest) => {
                let size = self.blob_size(&digest)?;
                let file = self
                    .blobs
                    .open_blob(&digest)
                    .map_err(|source| SaveError::Blob {
                        digest: digest.clone(),
                        source,
                    })?;
                (digest, size, Box::new(file))
            }
            Source::Decompressed { blob, size } => {
                let reader = self.decompressed_blob(&blob)?;
                (blob, size, Box::new(reader))
            }
        };
        let mut header = header(tar::EntryType::Regular, 0o644, size);
        let mut counted = Counting::new(reader.take(size));
        builder
            .append_data(&mut header, path, &mut counted)
            .map_err(write_err)?;
        check_count(&digest, size, counted.count)
    }
}

/// docker's `repositories` file: familiar repository -> tag -> top layer.
type Repositories = BTreeMap<String, BTreeMap<String, String>>;

fn add_repositories(repositories: &mut Repositories, tags: &[String], top: &Digest) {
    for tag in tags.iter().filter_map(|t| t.parse::<Reference>().ok()) {
        let tags = repositories.entry(familiar_repository(&tag)).or_default();
        let name = tag.tag().unwrap_or("latest").to_owned();
        tags.insert(name, top.hex().to_owned());
    }
}

/// The repository `name` names when it has neither a tag nor a digest.
fn bare_repository(name: &str) -> Option<Reference> {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || name.contains('@') {
        return None;
    }
    name.parse().ok()
}

fn same_repository(a: &Reference, b: &Reference) -> bool {
    a.registry() == b.registry() && a.repository() == b.repository()
}

/// The members every archive has: the blob directories and `oci-layout`.
fn layout_plan() -> Plan {
    let mut plan = Plan::new();
    plan.insert("blobs/".into(), Source::Dir);
    plan.insert("blobs/sha256/".into(), Source::Dir);
    plan.insert("oci-layout".into(), Source::Bytes(OCI_LAYOUT.to_vec()));
    plan
}

/// `index.json` entries for a manifest: one per name (docker's annotations), or one bare
/// entry for an image saved without a name.
fn index_entries(
    media_type: &str,
    digest: &Digest,
    size: usize,
    tags: &[String],
) -> Vec<Descriptor> {
    let plain = Descriptor::new(media_type, digest.clone(), size as u64);
    if tags.is_empty() {
        return vec![plain];
    }
    let mut entries = Vec::new();
    for name in tags {
        let mut entry = plain.clone();
        entry.annotations.insert(IMAGE_NAME.into(), name.clone());
        if let Some(tag) = name
            .parse::<Reference>()
            .ok()
            .and_then(|r| r.tag().map(str::to_owned))
        {
            entry.annotations.insert(REF_NAME.into(), tag);
        }
        entries.push(entry);
    }
    entries
}

fn index_json(manifests: Vec<Descriptor>) -> Result<Vec<u8>, SaveError> {
    let index = Index {
        schema_version: 2,
        media_type: Some(OCI_INDEX.to_owned()),
        manifests,
        annotations: Default::default(),
    };
    to_json("index.json", &index)
}

/// `busybox:latest` for `docker.io/library/busybox:latest`, as docker writes RepoTags.
fn familiar_tag(name: &str) -> Option<String> {
    let reference: Reference = name.parse().ok()?;
    Some(format!(
        "{}:{}",
        familiar_repository(&reference),
        reference.tag()?
    ))
}

fn parse_digest(image: &Image, digest: &str) -> Result<Digest, SaveError> {
    digest.parse().map_err(|source| SaveError::BadDigest {
        image: image.id.clone(),
        digest: digest.to_owned(),
        source,
    })
}

fn to_json(entry: &str, value: &impl serde::Serialize) -> Result<Vec<u8>, SaveError> {
    serde_json::to_vec(value).map_err(|source| SaveError::Json {
        entry: entry.to_owned(),
        source,
    })
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}

fn check_count(digest: &Digest, expected: u64, written: u64) -> Result<(), SaveError> {
    if expected == written {
        Ok(())
    } else {
        Err(SaveError::Changed {
            digest: digest.clone(),
            expected,
            written,
        })
    }
}

/// A reader that counts the bytes it yields.
struct Counting<R> {
    inner: R,
    count: u64,
}

impl<R> Counting<R> {
    fn new(inner: R) -> Self {
        Counting { inner, count: 0 }
    }
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_name_without_tag_or_digest_is_a_bare_repository() {
        let bare = |n: &str| bare_repository(n).map(|r| r.to_string());
        assert_eq!(
            bare("busybox").as_deref(),
            Some("docker.io/library/busybox:latest")
        );
        assert_eq!(
            bare("localhost:5000/app").as_deref(),
            Some("localhost:5000/app:latest")
        );
        assert_eq!(bare("busybox:1.36"), None);
        assert_eq!(bare("localhost:5000/app:2"), None);
        assert_eq!(bare(&format!("busybox@{}", Digest::of(b"x"))), None);
    }

    #[test]
    fn index_entries_carry_both_names_or_none() {
        let digest = Digest::of(b"manifest");
        let plain = index_entries(OCI_MANIFEST, &digest, 8, &[]);
        assert_eq!(plain.len(), 1);
        assert!(plain[0].annotations.is_empty());
        let named = index_entries(
            OCI_MANIFEST,
            &digest,
            8,
            &["docker.io/library/busybox:1.36".to_owned()],
        );
        assert_eq!(
            named[0].annotations.get(IMAGE_NAME).map(String::as_str),
            Some("docker.io/library/busybox:1.36")
        );
        assert_eq!(
            named[0].annotations.get(REF_NAME).map(String::as_str),
            Some("1.36")
        );
    }

    #[test]
    fn formats_parse_by_their_docker_names() {
        assert_eq!(
            "docker-archive".parse::<ArchiveFormat>().ok(),
            Some(ArchiveFormat::Docker)
        );
        assert_eq!(
            "oci-archive".parse::<ArchiveFormat>().ok(),
            Some(ArchiveFormat::Oci)
        );
        let err = "tarball".parse::<ArchiveFormat>().expect_err("unknown");
        assert!(err.to_string().contains("docker-archive or oci-archive"));
    }
}
