//! The image store: which images are here and under which names.
//!
//! Layout under the store root:
//! ```text
//! images/<config hex>.json   one record per image (written tmp + fsync + rename)
//! images/lock                flock: held exclusively by every change
//! ```
//! An image's blobs and layers are stored before its record, so the record is the commit
//! point of a pull, load or import: a crash before it leaves only unreferenced blobs and
//! layers, which garbage collection removes. Names are canonical references
//! (`docker.io/library/busybox:latest`, `host:5000/x@sha256:...`); parsing them is the
//! caller's. A tag names one image: tagging another image with it moves it.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;

const IMAGES: &str = "images";
const LOCK: &str = "lock";
const SHA256_PREFIX: &str = "sha256:";

/// Why an image store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ImageStoreError {
    /// An image ID is not `sha256:` followed by 64 lowercase hex digits.
    #[error("invalid image ID {value:?}: expected sha256:<64 hex digits>")]
    InvalidId {
        /// The value given.
        value: String,
    },
    /// No image has this ID.
    #[error("no such image: {id}")]
    NotFound {
        /// The ID.
        id: String,
    },
    /// An ID prefix matches more than one image.
    #[error("image ID prefix {prefix} is ambiguous: it matches {count} images")]
    Ambiguous {
        /// The prefix given.
        prefix: String,
        /// How many images it matches.
        count: usize,
    },
    /// A filesystem operation failed.
    #[error("image store: {step} {path}: {source}")]
    Io {
        /// What was being done.
        step: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// An image record is unreadable.
    #[error("image store: bad record {path}: {source}")]
    Record {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

fn io_err(step: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ImageStoreError {
    let path = path.to_path_buf();
    move |source| ImageStoreError::Io { step, path, source }
}

/// One layer of an image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageLayer {
    /// The digest of the layer blob as stored (and pushed).
    pub blob: String,
    /// The blob's media type.
    pub media_type: String,
    /// The blob's size in bytes.
    pub size: u64,
    /// The digest of the uncompressed tar.
    pub diff_id: String,
    /// The layer's chainID in the layer store.
    pub chain_id: String,
}

/// A stored image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Image {
    /// The image ID: the digest of its config blob.
    pub id: String,
    /// The digest of its manifest blob.
    pub manifest_digest: String,
    /// The manifest's media type.
    pub manifest_media_type: String,
    /// Canonical `repo:tag` names.
    #[serde(default)]
    pub repo_tags: Vec<String>,
    /// Canonical `repo@digest` names (manifest or index digests it was pulled or pushed by).
    #[serde(default)]
    pub repo_digests: Vec<String>,
    /// Layers, bottom-most first.
    pub layers: Vec<ImageLayer>,
    /// Bytes of file contents in its layers, unpacked.
    pub size: u64,
    /// `created` from the image config, if it has one.
    #[serde(default)]
    pub created: Option<String>,
    /// `os/arch[/variant]`.
    pub platform: String,
}

impl Image {
    /// The chainID of its top layer (`None` for an image without layers).
    pub fn top_layer(&self) -> Option<&str> {
        self.layers.last().map(|l| l.chain_id.as_str())
    }
}

/// Image records under one root directory.
#[derive(Debug)]
pub struct ImageStore {
    dir: PathBuf,
}

/// The store locked for changes; dropping it unlocks.
#[derive(Debug)]
pub struct Locked<'a> {
    store: &'a ImageStore,
    _lock: File,
}

impl ImageStore {
    /// Open (creating if needed) the store at `root`, removing temporary files of a crash.
    pub fn open(root: impl AsRef<Path>) -> Result<ImageStore, ImageStoreError> {
        let dir = root.as_ref().join(IMAGES);
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        let store = ImageStore { dir };
        let locked = store.lock()?;
        for entry in fs::read_dir(&store.dir).map_err(io_err("list", &store.dir))? {
            let path = entry.map_err(io_err("list", &store.dir))?.path();
            if path.extension().is_some_and(|e| e == "tmp") {
                fs::remove_file(&path).map_err(io_err("remove leftover", &path))?;
            }
        }
        drop(locked);
        Ok(store)
    }

    /// Lock the store for changes (waits for other writers, in any process).
    pub fn lock(&self) -> Result<Locked<'_>, ImageStoreError> {
        let path = self.dir.join(LOCK);
        let file = File::options()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err("open", &path))?;
        rustix::fs::flock(&file, FlockOperation::LockExclusive)
            .map_err(|e| io_err("lock", &path)(e.into()))?;
        Ok(Locked {
            store: self,
            _lock: file,
        })
    }

    /// The image with ID `id`, if stored.
    pub fn get(&self, id: &str) -> Result<Option<Image>, ImageStoreError> {
        let path = self.record_path(id)?;
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| ImageStoreError::Record { path, source }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", &path)(e)),
        }
    }

    /// Every stored image, in no particular order.
    pub fn list(&self) -> Result<Vec<Image>, ImageStoreError> {
        let mut images = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_err("list", &self.dir))? {
            let name = entry.map_err(io_err("list", &self.dir))?.file_name();
            let Some(hex) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if let Some(image) = self.get(&format!("{SHA256_PREFIX}{hex}"))? {
                images.push(image);
            }
        }
        Ok(images)
    }

    /// The image a canonical name (`repo:tag` or `repo@digest`) points to.
    pub fn by_name(&self, name: &str) -> Result<Option<Image>, ImageStoreError> {
        Ok(self.list()?.into_iter().find(|image| {
            image.repo_tags.iter().any(|t| t == name)
                || image.repo_digests.iter().any(|d| d == name)
        }))
    }

    /// The image whose ID is, or starts with, `prefix` (with or without `sha256:`).
    pub fn by_id_prefix(&self, prefix: &str) -> Result<Option<Image>, ImageStoreError> {
        let hex = prefix.strip_prefix(SHA256_PREFIX).unwrap_or(prefix);
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let mut found: Vec<Image> = self
            .list()?
            .into_iter()
            .filter(|i| i.id[SHA256_PREFIX.len()..].starts_with(hex))
            .collect();
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.pop()),
            count => Err(ImageStoreError::Ambiguous {
                prefix: prefix.to_owned(),
                count,
            }),
        }
    }

    fn record_path(&self, id: &str) -> Result<PathBuf, ImageStoreError> {
        let hex = id.strip_prefix(SHA256_PREFIX).unwrap_or("");
        let valid = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !valid {
            return Err(ImageStoreError::InvalidId {
                value: id.to_owned(),
            });
        }
        Ok(self.dir.join(format!("{hex}.json")))
    }
}

impl Locked<'_> {
    /// Store `image`, merged with the record it may already have (names are added), and take
    /// its tags away from any other image. Returns the stored record.
    pub fn put(&self, image: &Image) -> Result<Image, ImageStoreError> {
        let mut stored = match self.store.get(&image.id)? {
            Some(mut old) => {
                add_all(&mut old.repo_tags, &image.repo_tags);
                add_all(&mut old.repo_digests, &image.repo_digests);
                old
            }
            None => image.clone(),
        };
        stored.repo_tags.sort();
        stored.repo_digests.sort();
        for tag in &stored.repo_tags {
            self.untag_others(tag, &stored.id)?;
        }
        self.write(&stored)?;
        Ok(stored)
    }

    /// Give image `id` the tag `tag` (moved from whichever image had it).
    pub fn tag(&self, id: &str, tag: &str) -> Result<Image, ImageStoreError> {
        let mut image = self.require(id)?;
        add_all(&mut image.repo_tags, &[tag.to_owned()]);
        self.put(&image)
    }

    /// Remove the name `name` (a tag or a digest reference) from the image that has it;
    /// returns that image as it is now.
    pub fn untag(&self, name: &str) -> Result<Option<Image>, ImageStoreError> {
        let Some(mut image) = self.store.by_name(name)? else {
            return Ok(None);
        };
        image.repo_tags.retain(|t| t != name);
        image.repo_digests.retain(|d| d != name);
        self.write(&image)?;
        Ok(Some(image))
    }

    /// Remove the record of image `id` (its blobs and layers are garbage collection's).
    pub fn remove(&self, id: &str) -> Result<(), ImageStoreError> {
        let path = self.store.record_path(id)?;
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.store.dir),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(ImageStoreError::NotFound { id: id.to_owned() })
            }
            Err(e) => Err(io_err("remove", &path)(e)),
        }
    }

    fn require(&self, id: &str) -> Result<Image, ImageStoreError> {
        self.store
            .get(id)?
            .ok_or_else(|| ImageStoreError::NotFound { id: id.to_owned() })
    }

    fn untag_others(&self, tag: &str, keep: &str) -> Result<(), ImageStoreError> {
        for mut other in self.store.list()? {
            if other.id != keep && other.repo_tags.iter().any(|t| t == tag) {
                other.repo_tags.retain(|t| t != tag);
                self.write(&other)?;
            }
        }
        Ok(())
    }

    fn write(&self, image: &Image) -> Result<(), ImageStoreError> {
        let path = self.store.record_path(&image.id)?;
        let tmp = path.with_extension("tmp");
        let json = serde_json::to_vec_pretty(image).map_err(|source| ImageStoreError::Record {
            path: path.clone(),
            source,
        })?;
        let mut file = File::create(&tmp).map_err(io_err("create", &tmp))?;
        file.write_all(&json)
            .and_then(|()| file.sync_all())
            .map_err(io_err("write", &tmp))?;
        fs::rename(&tmp, &path).map_err(io_err("rename", &path))?;
        sync_dir(&self.store.dir)
    }
}

fn add_all(names: &mut Vec<String>, new: &[String]) {
    for name in new {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
}

fn sync_dir(path: &Path) -> Result<(), ImageStoreError> {
    File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(n: u8, tags: &[&str]) -> Image {
        Image {
            id: format!("sha256:{}", format!("{n:02x}").repeat(32)),
            manifest_digest: format!("sha256:{}", "ab".repeat(32)),
            manifest_media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            repo_tags: tags.iter().map(|t| t.to_string()).collect(),
            repo_digests: vec![],
            layers: vec![],
            size: 1,
            created: None,
            platform: "linux/amd64".into(),
        }
    }

    #[test]
    fn tags_move_between_images_and_names_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::open(dir.path()).unwrap();
        let locked = store.lock().unwrap();
        locked
            .put(&image(1, &["docker.io/library/a:latest"]))
            .unwrap();
        locked
            .put(&image(2, &["docker.io/library/a:latest"]))
            .unwrap();
        let one = store.get(&image(1, &[]).id).unwrap().unwrap();
        assert!(one.repo_tags.is_empty(), "the tag moved to the newer image");
        let found = store
            .by_name("docker.io/library/a:latest")
            .unwrap()
            .unwrap();
        assert_eq!(found.id, image(2, &[]).id);
        assert_eq!(store.by_id_prefix("0202").unwrap().unwrap().id, found.id);
        assert!(store
            .by_id_prefix("0")
            .unwrap_err()
            .to_string()
            .contains("ambiguous"));
        locked.tag(&one.id, "docker.io/library/b:1").unwrap();
        let untagged = locked.untag("docker.io/library/b:1").unwrap().unwrap();
        assert!(untagged.repo_tags.is_empty());
        locked.remove(&one.id).unwrap();
        assert_eq!(store.list().unwrap().len(), 1);
        assert!(matches!(
            locked.remove(&one.id),
            Err(ImageStoreError::NotFound { .. })
        ));
    }

    #[test]
    fn open_removes_leftover_temporary_records() {
        let dir = tempfile::tempdir().unwrap();
        drop(ImageStore::open(dir.path()).unwrap());
        let leftover = dir
            .path()
            .join(IMAGES)
            .join(format!("{}.tmp", "cd".repeat(32)));
        fs::write(&leftover, b"{half").unwrap();
        let store = ImageStore::open(dir.path()).unwrap();
        assert!(!leftover.exists());
        assert!(store.list().unwrap().is_empty());
        assert!(store.get("sha256:../x").is_err());
    }
}
