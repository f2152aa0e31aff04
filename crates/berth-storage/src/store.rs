//! The layer store: each layer unpacked once, keyed by its chainID.
//!
//! Layout under the store root:
//! ```text
//! layers/<chain hex>/diff/    the unpacked layer (an overlay lower directory)
//! layers/<chain hex>/layer.json   chainID, diffID, parent chainID, link name
//! l/<link>  -> ../layers/<chain hex>/diff   short names so 200+ lowers fit in mount options
//! tmp/<...>.incomplete/       layers being written (and layers being removed)
//! ```
//! A layer is unpacked into `tmp/`, synced, then renamed into `layers/`: anything left in
//! `tmp/` is incomplete and [`LayerStore::open`] removes it. Writers hold an `flock` on their
//! tmp directory so a concurrent `open` leaves them alone.
//!
//! [`LayerStore::put`] does it in one step from an uncompressed tar. For a pull that unpacks
//! while it downloads, [`LayerStore::unpack_verified`] takes the (compressed) blob stream, reads
//! it to its end and checks the diffID, and returns an [`UnpackedLayer`] that stays in `tmp/`
//! until [`LayerStore::commit`] (after the caller verified the blob's digest and committed the
//! layer's parent).

use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::FlockOperation;
use sha2::{Digest, Sha256};

use crate::compression::{decompressed, overlapped, Compression};
use crate::hashing::HashingReader;
use crate::unpack::{unpack, UnpackError, UnpackOptions};

const LAYERS: &str = "layers";
const LINKS: &str = "l";
const TMP: &str = "tmp";
const DIFF: &str = "diff";
const META: &str = "layer.json";
const INCOMPLETE_SUFFIX: &str = ".incomplete";
const SHA256_PREFIX: &str = "sha256:";
/// Hex characters of a short link name (48 bits).
const LINK_LEN: usize = 12;
/// Read buffer in front of the decompressor of [`LayerStore::unpack_verified`].
const STREAM_BUFFER: usize = 128 << 10;

/// Why a layer store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A diffID or chainID is not `sha256:` followed by 64 lowercase hex digits.
    #[error("invalid {what} {value:?}: expected sha256:<64 hex digits>")]
    InvalidDigest {
        /// Which identifier.
        what: &'static str,
        /// The value given.
        value: String,
    },
    /// The parent layer is not in the store.
    #[error("parent layer {chain_id} is not in the store")]
    ParentMissing {
        /// The parent's chainID.
        chain_id: String,
    },
    /// The layer is not in the store.
    #[error("layer {chain_id} is not in the store")]
    NotFound {
        /// The chainID.
        chain_id: String,
    },
    /// Unpacking the layer failed; nothing was stored.
    #[error("unpacking layer {diff_id}: {source}")]
    Unpack {
        /// The layer's diffID.
        diff_id: String,
        /// What went wrong.
        #[source]
        source: UnpackError,
    },
    /// A filesystem operation on the store failed.
    #[error("layer store: {step} {path}: {source}")]
    Io {
        /// What was being done.
        step: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The uncompressed layer does not hash to the diffID the image config gives; nothing was
    /// stored.
    #[error("layer {diff_id}: diff ID mismatch: got {actual}")]
    DiffIdMismatch {
        /// The diffID from the image config.
        diff_id: String,
        /// What the uncompressed stream hashed to.
        actual: String,
    },
    /// Reading or decompressing the layer stream failed outside a tar entry (its start, the
    /// padding after the tar's end, the rest of the compressed stream); nothing was stored.
    #[error("layer {diff_id}: reading the layer stream: {source}")]
    Stream {
        /// The layer's diffID.
        diff_id: String,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
    /// A layer's metadata file is unreadable.
    #[error("layer store: bad metadata {path}: {source}")]
    Meta {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// Two layers hash to the same short link name.
    #[error("layer store: link name {link} of layer {chain_id} is already used by another layer")]
    LinkCollision {
        /// The short link name.
        link: String,
        /// The layer that wanted it.
        chain_id: String,
    },
}

fn io_err(step: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { step, path, source }
}

/// A stored layer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Layer {
    /// `sha256(parent chainID + " " + diffID)`, or the diffID for a base layer.
    pub chain_id: String,
    /// The digest of the uncompressed layer tar.
    pub diff_id: String,
    /// The chainID of the layer below, if any.
    pub parent: Option<String>,
    /// The short link name under `l/`.
    pub link: String,
}

/// The chainID of a layer with `diff_id` on top of the layer `parent` (OCI image spec).
pub fn chain_id(parent: Option<&str>, diff_id: &str) -> String {
    match parent {
        None => diff_id.to_owned(),
        Some(parent) => format!(
            "{SHA256_PREFIX}{}",
            hex::encode(Sha256::digest(format!("{parent} {diff_id}")))
        ),
    }
}

/// The hex part of a `sha256:` digest, checked so it is safe as a file name.
fn digest_hex<'a>(what: &'static str, digest: &'a str) -> Result<&'a str, StoreError> {
    let hex = digest.strip_prefix(SHA256_PREFIX).unwrap_or("");
    if hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(hex)
    } else {
        Err(StoreError::InvalidDigest {
            what,
            value: digest.to_owned(),
        })
    }
}

fn link_name(chain_id: &str) -> String {
    let mut link = hex::encode(Sha256::digest(chain_id.as_bytes()));
    link.truncate(LINK_LEN);
    link.make_ascii_uppercase();
    link
}

/// Layers on disk under one root directory.
#[derive(Debug)]
pub struct LayerStore {
    root: PathBuf,
}

impl LayerStore {
    /// Open (creating if needed) the store at `root`; remove incomplete layers and repair links.
    pub fn open(root: impl Into<PathBuf>) -> Result<LayerStore, StoreError> {
        let store = LayerStore { root: root.into() };
        for dir in [LAYERS, LINKS, TMP] {
            let path = store.root.join(dir);
            fs::create_dir_all(&path).map_err(io_err("create", &path))?;
        }
        store.remove_incomplete()?;
        store.remove_dangling_links()?;
        for layer in store.list()? {
            store.ensure_link(&layer)?;
        }
        Ok(store)
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Unpack the layer `diff_id` (uncompressed tar in `reader`) on top of `parent`, unless the
    /// store has it already; either way, return the stored layer. `reader` is not read when the
    /// layer exists.
    pub fn put(
        &self,
        parent: Option<&str>,
        diff_id: &str,
        reader: impl Read,
        options: &UnpackOptions,
    ) -> Result<Layer, StoreError> {
        digest_hex("diffID", diff_id)?;
        if let Some(parent) = parent {
            self.get(parent)?.ok_or_else(|| StoreError::ParentMissing {
                chain_id: parent.to_owned(),
            })?;
        }
        let chain_id = chain_id(parent, diff_id);
        if let Some(layer) = self.get(&chain_id)? {
            return Ok(layer);
        }
        let layer = Layer {
            chain_id: chain_id.clone(),
            diff_id: diff_id.to_owned(),
            parent: parent.map(str::to_owned),
            link: link_name(&chain_id),
        };
        let tmp = self.new_tmp_dir(digest_hex("chainID", &chain_id)?, "writing")?;
        let result = self
            .fill(&tmp, diff_id, reader, options)
            .and_then(|()| self.commit_tmp(&tmp, &layer));
        if result.is_err() {
            // Best effort: whatever is left is removed by the next `open`.
            let _ = fs::remove_dir_all(&tmp.path);
        }
        result
    }

    /// Unpack the layer `diff_id` from `reader` (gzip, zstd or plain tar, sniffed) into `tmp/`,
    /// without making it visible. `reader` is read to its end, also past the end of the tar and
    /// of the compressed stream, so a caller hashing the bytes it hands out sees all of them
    /// (and can fail the last read, making this fail, when they do not match a digest). The
    /// uncompressed stream must hash to `diff_id` ([`StoreError::DiffIdMismatch`] otherwise).
    /// On error nothing is left behind; on success [`LayerStore::commit`] stores the layer.
    pub fn unpack_verified(
        &self,
        diff_id: &str,
        reader: impl Read,
        options: &UnpackOptions,
    ) -> Result<UnpackedLayer, StoreError> {
        let tmp = self.new_tmp_dir(digest_hex("diffID", diff_id)?, "unpacking")?;
        let mut unpacked = UnpackedLayer {
            tmp,
            diff_id: diff_id.to_owned(),
            compression: Compression::None,
        };
        unpacked.compression = self.fill_verified(&unpacked.tmp, diff_id, reader, options)?;
        Ok(unpacked)
    }

    /// Store `unpacked` on top of `parent` (which must be stored), unless the store already has
    /// that chainID (then `unpacked` is discarded); either way, return the stored layer.
    pub fn commit(
        &self,
        unpacked: UnpackedLayer,
        parent: Option<&str>,
    ) -> Result<Layer, StoreError> {
        if let Some(parent) = parent {
            self.get(parent)?.ok_or_else(|| StoreError::ParentMissing {
                chain_id: parent.to_owned(),
            })?;
        }
        let chain_id = chain_id(parent, &unpacked.diff_id);
        if let Some(layer) = self.get(&chain_id)? {
            return Ok(layer);
        }
        let layer = Layer {
            link: link_name(&chain_id),
            chain_id,
            diff_id: unpacked.diff_id.clone(),
            parent: parent.map(str::to_owned),
        };
        // On error, dropping `unpacked` removes what is left of it.
        self.commit_tmp(&unpacked.tmp, &layer)
    }

    /// The layer with `chain_id`, if it is stored.
    pub fn get(&self, chain_id: &str) -> Result<Option<Layer>, StoreError> {
        let dir = self.layer_dir(chain_id)?;
        let meta = dir.join(META);
        match fs::read(&meta) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| StoreError::Meta { path: meta, source }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", &meta)(e)),
        }
    }

    /// Every stored layer, in no particular order.
    pub fn list(&self) -> Result<Vec<Layer>, StoreError> {
        let dir = self.root.join(LAYERS);
        let mut layers = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let entry = entry.map_err(io_err("list", &dir))?;
            let chain_id = format!("{SHA256_PREFIX}{}", entry.file_name().to_string_lossy());
            if digest_hex("chainID", &chain_id).is_err() {
                continue; // not a layer directory
            }
            if let Some(layer) = self.get(&chain_id)? {
                layers.push(layer);
            }
        }
        Ok(layers)
    }

    /// Remove the layer `chain_id`. The caller makes sure nothing uses it (no child layer, no
    /// mount). The directory is first moved to `tmp/`, so a crash mid-way leaves only
    /// something `open` cleans up.
    pub fn remove(&self, chain_id: &str) -> Result<(), StoreError> {
        let layer = self.get(chain_id)?.ok_or_else(|| StoreError::NotFound {
            chain_id: chain_id.to_owned(),
        })?;
        let link = self.root.join(LINKS).join(&layer.link);
        match fs::remove_file(&link) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove link", &link)(e)),
        }
        // Lock before moving, so a concurrent `open` does not race the removal.
        let dir = self.layer_dir(chain_id)?;
        let lock = lock_dir(&dir)?;
        let doomed = self.unique_tmp_path(digest_hex("chainID", chain_id)?, "removing");
        fs::rename(&dir, &doomed).map_err(io_err("move out", &dir))?;
        let removed = fs::remove_dir_all(&doomed).map_err(io_err("remove", &doomed));
        drop(lock);
        removed
    }

    /// The directory holding the unpacked contents of `chain_id`.
    pub fn diff_dir(&self, chain_id: &str) -> Result<PathBuf, StoreError> {
        Ok(self.layer_dir(chain_id)?.join(DIFF))
    }

    /// Short-link paths (`<root>/l/<link>`) of `chain_id` and all its parents, top-most first:
    /// the overlay lower directories of an image whose top layer is `chain_id`.
    pub fn lower_dirs(&self, chain_id: &str) -> Result<Vec<PathBuf>, StoreError> {
        let mut lowers = Vec::new();
        let mut next = Some(chain_id.to_owned());
        while let Some(id) = next {
            let layer = self
                .get(&id)?
                .ok_or(StoreError::NotFound { chain_id: id })?;
            lowers.push(self.root.join(LINKS).join(&layer.link));
            next = layer.parent;
        }
        Ok(lowers)
    }

    fn layer_dir(&self, chain_id: &str) -> Result<PathBuf, StoreError> {
        Ok(self
            .root
            .join(LAYERS)
            .join(digest_hex("chainID", chain_id)?))
    }

    /// A fresh `tmp/` path: `<chain hex>-<what>-<pid>-<n>.incomplete`.
    fn unique_tmp_path(&self, chain_hex: &str, what: &str) -> PathBuf {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!(
            "{chain_hex}-{what}-{}-{n}{INCOMPLETE_SUFFIX}",
            std::process::id()
        );
        self.root.join(TMP).join(name)
    }

    fn new_tmp_dir(&self, hex: &str, what: &str) -> Result<TmpDir, StoreError> {
        loop {
            let path = self.unique_tmp_path(hex, what);
            fs::create_dir(&path).map_err(io_err("create", &path))?;
            // A concurrent `open` may sweep it between mkdir and flock: then make another.
            let Ok(dir) = File::open(&path) else { continue };
            rustix::fs::flock(&dir, FlockOperation::LockExclusive)
                .map_err(|e| io_err("lock", &path)(e.into()))?;
            if crate::mounts::same_file(&dir, &path) {
                return Ok(TmpDir { path, lock: dir });
            }
        }
    }

    /// Unpack the uncompressed tar `reader` into `<tmp>/diff`.
    fn fill(
        &self,
        tmp: &TmpDir,
        diff_id: &str,
        reader: impl Read,
        options: &UnpackOptions,
    ) -> Result<(), StoreError> {
        let diff = tmp.path.join(DIFF);
        fs::create_dir(&diff).map_err(io_err("create", &diff))?;
        let diff_fd = File::open(&diff).map_err(io_err("open", &diff))?;
        unpack(diff_fd.as_fd(), reader, options).map_err(|source| StoreError::Unpack {
            diff_id: diff_id.to_owned(),
            source,
        })?;
        Ok(())
    }

    /// [`Self::fill`] from a possibly compressed stream, hashing the uncompressed bytes, then
    /// reading everything that is left: the tar's padding, then the raw stream.
    fn fill_verified(
        &self,
        tmp: &TmpDir,
        diff_id: &str,
        mut reader: impl Read,
        options: &UnpackOptions,
    ) -> Result<Compression, StoreError> {
        let stream_err = |source| StoreError::Stream {
            diff_id: diff_id.to_owned(),
            source,
        };
        let buffered = BufReader::with_capacity(STREAM_BUFFER, &mut reader);
        let stream = decompressed(buffered).map_err(stream_err)?;
        let compression = stream.compression();
        let mut hashing = HashingReader::new(stream);
        let diff = tmp.path.join(DIFF);
        fs::create_dir(&diff).map_err(io_err("create", &diff))?;
        let diff_fd = File::open(&diff).map_err(io_err("open", &diff))?;
        // Inflate (and hash) on this thread while another writes the files.
        overlapped(&mut hashing, |chunks| {
            unpack(diff_fd.as_fd(), chunks, options)
        })
        .map_err(|source| StoreError::Unpack {
            diff_id: diff_id.to_owned(),
            source,
        })?;
        io::copy(&mut hashing, &mut io::sink()).map_err(stream_err)?;
        let actual = hashing.digest();
        drop(hashing);
        io::copy(&mut reader, &mut io::sink()).map_err(stream_err)?;
        if actual != diff_id {
            return Err(StoreError::DiffIdMismatch {
                diff_id: diff_id.to_owned(),
                actual,
            });
        }
        Ok(compression)
    }

    /// Write `layer.json` into `tmp`, sync, and rename it into `layers/`.
    fn commit_tmp(&self, tmp: &TmpDir, layer: &Layer) -> Result<Layer, StoreError> {
        let meta = tmp.path.join(META);
        let json = serde_json::to_vec_pretty(layer).map_err(|source| StoreError::Meta {
            path: meta.clone(),
            source,
        })?;
        fs::write(&meta, json).map_err(io_err("write", &meta))?;
        rustix::fs::syncfs(&tmp.lock).map_err(|e| io_err("sync", &tmp.path)(e.into()))?;
        let dir = self.layer_dir(&layer.chain_id)?;
        match fs::rename(&tmp.path, &dir) {
            Ok(()) => {}
            // Another writer stored the same layer first: use theirs.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTEMPTY) | Some(libc::EEXIST)) => {
                let _ = fs::remove_dir_all(&tmp.path);
            }
            Err(e) => return Err(io_err("commit", &dir)(e)),
        }
        sync_dir(&self.root.join(LAYERS))?;
        self.ensure_link(layer)?;
        Ok(layer.clone())
    }

    /// Create `l/<link>` for `layer` if missing; fail if another layer holds that name.
    fn ensure_link(&self, layer: &Layer) -> Result<(), StoreError> {
        let link = self.root.join(LINKS).join(&layer.link);
        let target = Path::new("..")
            .join(LAYERS)
            .join(digest_hex("chainID", &layer.chain_id)?)
            .join(DIFF);
        match fs::read_link(&link) {
            Ok(existing) if existing == target => return Ok(()),
            Ok(_) => {
                return Err(StoreError::LinkCollision {
                    link: layer.link.clone(),
                    chain_id: layer.chain_id.clone(),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("read link", &link)(e)),
        }
        match std::os::unix::fs::symlink(&target, &link) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return self.ensure_link(layer),
            Err(e) => return Err(io_err("create link", &link)(e)),
        }
        sync_dir(&self.root.join(LINKS))
    }

    /// Remove everything in `tmp/` that no live writer holds locked.
    fn remove_incomplete(&self) -> Result<(), StoreError> {
        let tmp = self.root.join(TMP);
        for entry in fs::read_dir(&tmp).map_err(io_err("list", &tmp))? {
            let path = entry.map_err(io_err("list", &tmp))?.path();
            let Ok(dir) = File::open(&path) else { continue };
            if rustix::fs::flock(&dir, FlockOperation::NonBlockingLockExclusive).is_err() {
                continue; // a writer is still at it
            }
            fs::remove_dir_all(&path).map_err(io_err("remove incomplete layer", &path))?;
        }
        Ok(())
    }

    fn remove_dangling_links(&self) -> Result<(), StoreError> {
        let links = self.root.join(LINKS);
        for entry in fs::read_dir(&links).map_err(io_err("list", &links))? {
            let path = entry.map_err(io_err("list", &links))?.path();
            if !path.exists() {
                fs::remove_file(&path).map_err(io_err("remove dangling link", &path))?;
            }
        }
        Ok(())
    }
}

/// A directory in `tmp/`, locked while this writer lives.
#[derive(Debug)]
struct TmpDir {
    path: PathBuf,
    lock: File,
}

/// A layer unpacked by [`LayerStore::unpack_verified`] with its diffID checked, waiting in
/// `tmp/` for [`LayerStore::commit`]. Dropping it removes it (and a crash leaves it to `open`).
#[derive(Debug)]
pub struct UnpackedLayer {
    tmp: TmpDir,
    diff_id: String,
    compression: Compression,
}

impl UnpackedLayer {
    /// The verified diffID.
    pub fn diff_id(&self) -> &str {
        &self.diff_id
    }

    /// The compression the stream had.
    pub fn compression(&self) -> Compression {
        self.compression
    }
}

impl Drop for UnpackedLayer {
    fn drop(&mut self) {
        // After a commit the directory was renamed away and this finds nothing. Best effort:
        // whatever is left is removed by the next `open`.
        let _ = fs::remove_dir_all(&self.tmp.path);
    }
}

/// Open `path` and take an exclusive `flock` on it (without waiting).
fn lock_dir(path: &Path) -> Result<File, StoreError> {
    let dir = File::open(path).map_err(io_err("open", path))?;
    rustix::fs::flock(&dir, FlockOperation::NonBlockingLockExclusive)
        .map_err(|e| io_err("lock", path)(e.into()))?;
    Ok(dir)
}

fn sync_dir(path: &Path) -> Result<(), StoreError> {
    File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync", path))
}
