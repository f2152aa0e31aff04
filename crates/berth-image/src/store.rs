//! Content-addressed blob store: `<root>/blobs/sha256/<hex>`.
//!
//! A blob is streamed into a temporary file in the same directory while its digest
//! is computed; it is renamed into place only after the digest matched and the data
//! was fsynced. A mismatch leaves nothing behind, and temporary files left by a
//! crash are removed when the store is opened. [`BlobWriter`] is the same as a writer, for
//! callers that tee a download into the store while they read it.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::FlockOperation;

use crate::digest::{Digest, HashingWriter};

const TMP_PREFIX: &str = ".tmp-";

/// Errors from the blob store; each names the path or digest involved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("blob store: creating {path}: {source}")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("blob store: removing leftover {path}: {source}")]
    RemoveLeftover { path: PathBuf, source: io::Error },
    #[error("blob store: writing {expected}: {source}")]
    Write { expected: Digest, source: io::Error },
    #[error("blob store: writing a new blob: {source}")]
    WriteNew { source: io::Error },
    #[error("digest mismatch: expected {expected}, got {actual} ({size} bytes)")]
    DigestMismatch {
        expected: Digest,
        actual: Digest,
        size: u64,
    },
    #[error("size mismatch: expected {expected} bytes of {digest}, got {actual}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("blob store: committing {path}: {source}")]
    Commit { path: PathBuf, source: io::Error },
    #[error("blob store: reading {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("blob store: removing {path}: {source}")]
    Remove { path: PathBuf, source: io::Error },
}

/// A blob stored by [`BlobStore::put_new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// What the content hashed to.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Whether this call created the blob (`false`: the store had it already).
    pub created: bool,
}

/// A directory of blobs named by their sha256 digest.
#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: PathBuf,
}

impl BlobStore {
    /// Opens (creating if needed) the store under `root`, removing temporary
    /// files an interrupted write left behind.
    pub fn open(root: impl AsRef<Path>) -> Result<Self, StoreError> {
        let dir = root.as_ref().join("blobs").join("sha256");
        fs::create_dir_all(&dir).map_err(|source| StoreError::CreateDir {
            path: dir.clone(),
            source,
        })?;
        let store = BlobStore { dir };
        store.remove_leftovers()?;
        Ok(store)
    }

    fn remove_leftovers(&self) -> Result<(), StoreError> {
        let read_err = |source| StoreError::Read {
            path: self.dir.clone(),
            source,
        };
        for entry in fs::read_dir(&self.dir).map_err(read_err)? {
            let path = entry.map_err(read_err)?.path();
            let is_tmp = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(TMP_PREFIX));
            if !is_tmp {
                continue;
            }
            // A writer in another process holds a lock on its file: leave that one alone. Ours
            // is held until the file is gone, so a writer that locks it meanwhile sees that.
            let Ok(file) = File::open(&path) else {
                continue;
            };
            if rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
                continue;
            }
            match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(StoreError::RemoveLeftover { path, source: e })
                }
                _ => {}
            }
            drop(file);
        }
        Ok(())
    }

    /// A new temporary file in the store, locked (`flock`) for as long as it is open, so
    /// that [`BlobStore::open`] in another process does not take it for a crash's leftover.
    fn locked_tmp(&self) -> io::Result<tempfile::NamedTempFile> {
        loop {
            let tmp = tempfile::Builder::new()
                .prefix(TMP_PREFIX)
                .tempfile_in(&self.dir)?;
            rustix::fs::flock(tmp.as_file(), FlockOperation::LockExclusive)?;
            // A concurrent `open` may have removed it between creation and lock: retry.
            let ours = tmp.as_file().metadata()?;
            let named = fs::metadata(tmp.path());
            if named.is_ok_and(|m| m.ino() == ours.ino() && m.dev() == ours.dev()) {
                return Ok(tmp);
            }
        }
    }

    /// Where the blob with `digest` lives (whether or not it is present).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(digest.hex())
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// The blob's size in bytes.
    pub fn size(&self, digest: &Digest) -> Result<u64, StoreError> {
        let path = self.path(digest);
        fs::metadata(&path)
            .map(|m| m.len())
            .map_err(|source| StoreError::Read { path, source })
    }

    /// Reads a whole blob into memory (for manifests and configs).
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        let path = self.path(digest);
        fs::read(&path).map_err(|source| StoreError::Read { path, source })
    }

    /// Opens a blob for streaming.
    pub fn open_blob(&self, digest: &Digest) -> Result<File, StoreError> {
        let path = self.path(digest);
        File::open(&path).map_err(|source| StoreError::Read { path, source })
    }

    /// Every stored blob, in no particular order.
    pub fn list(&self) -> Result<Vec<Digest>, StoreError> {
        let read_err = |source| StoreError::Read {
            path: self.dir.clone(),
            source,
        };
        let mut digests = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(read_err)? {
            let name = entry.map_err(read_err)?.file_name();
            if let Ok(digest) = format!("sha256:{}", name.to_string_lossy()).parse() {
                digests.push(digest);
            }
        }
        Ok(digests)
    }

    /// Removes a blob; a missing one is not an error.
    pub fn remove(&self, digest: &Digest) -> Result<(), StoreError> {
        let path = self.path(digest);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StoreError::Remove { path, source }),
        }
    }

    /// Stores in-memory data and returns its digest.
    pub fn put_bytes(&self, data: &[u8]) -> Result<Digest, StoreError> {
        let digest = Digest::of(data);
        self.put(&digest, data)?;
        Ok(digest)
    }

    /// Streams `reader` into the store, verifying it hashes to `expected`.
    /// Returns the number of bytes stored. On any error nothing is left behind.
    pub fn put(&self, expected: &Digest, mut reader: impl Read) -> Result<u64, StoreError> {
        let mut writer = self.writer(expected, None)?;
        io::copy(&mut reader, &mut writer).map_err(|source| StoreError::Write {
            expected: expected.clone(),
            source,
        })?;
        writer.commit()
    }

    /// A writer for the blob `expected` (of `size` bytes, when known): it streams into a
    /// temporary file, and [`BlobWriter::commit`] stores it once size and digest match.
    /// Dropping it uncommitted removes the temporary file.
    pub fn writer(&self, expected: &Digest, size: Option<u64>) -> Result<BlobWriter, StoreError> {
        let tmp = self.locked_tmp().map_err(|source| StoreError::Write {
            expected: expected.clone(),
            source,
        })?;
        Ok(BlobWriter {
            store: self.clone(),
            expected: expected.clone(),
            size,
            inner: HashingWriter::new(BufWriter::new(tmp)),
        })
    }

    /// Streams `reader` into the store under the digest it hashes to, for content whose
    /// digest is not known in advance (an imported tarball, a legacy archive member).
    /// On any error nothing is left behind.
    pub fn put_new(&self, mut reader: impl Read) -> Result<Stored, StoreError> {
        let write_err = |source| StoreError::WriteNew { source };
        let tmp = self.locked_tmp().map_err(write_err)?;
        let mut writer = HashingWriter::new(tmp);
        io::copy(&mut reader, &mut writer).map_err(write_err)?;
        let (tmp, digest, size) = writer.finish();
        let created = !self.contains(&digest);
        if created {
            self.commit(tmp, &digest)?;
        }
        Ok(Stored {
            digest,
            size,
            created,
        })
    }

    fn commit(&self, tmp: tempfile::NamedTempFile, digest: &Digest) -> Result<(), StoreError> {
        let path = self.path(digest);
        let commit_err = |source| StoreError::Commit {
            path: path.clone(),
            source,
        };
        tmp.as_file().sync_all().map_err(commit_err)?;
        tmp.persist(&path).map_err(|e| commit_err(e.error))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(commit_err)
    }
}

/// A blob being written: hashed on the way into a temporary file in the store.
pub struct BlobWriter {
    store: BlobStore,
    expected: Digest,
    size: Option<u64>,
    inner: HashingWriter<BufWriter<tempfile::NamedTempFile>>,
}

impl BlobWriter {
    /// The digest the blob must have.
    pub fn expected(&self) -> &Digest {
        &self.expected
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.inner.written()
    }

    /// The digest of what was written so far.
    pub fn digest(&self) -> Digest {
        self.inner.digest()
    }

    /// Checks size and digest, fsyncs, renames into place and fsyncs the directory.
    /// Returns the size. On error the temporary file is removed.
    pub fn commit(self) -> Result<u64, StoreError> {
        let (buffered, actual, size) = self.inner.finish();
        if let Some(expected) = self.size.filter(|&expected| expected != size) {
            return Err(StoreError::SizeMismatch {
                digest: self.expected,
                expected,
                actual: size,
            });
        }
        if actual != self.expected {
            return Err(StoreError::DigestMismatch {
                expected: self.expected,
                actual,
                size,
            });
        }
        let tmp = buffered.into_inner().map_err(|e| StoreError::Write {
            expected: self.expected.clone(),
            source: e.into_error(),
        })?;
        self.store.commit(tmp, &self.expected)?;
        Ok(size)
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl std::fmt::Debug for BlobWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobWriter")
            .field("expected", &self.expected)
            .field("written", &self.written())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(store: &BlobStore) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&store.dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn put_stores_under_the_digest() {
        let root = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::open(root.path()).expect("open");
        let digest = store.put_bytes(b"layer data").expect("put");
        assert_eq!(digest, Digest::of(b"layer data"));
        assert_eq!(store.read(&digest).expect("read"), b"layer data");
        assert!(root
            .path()
            .join("blobs/sha256")
            .join(digest.hex())
            .is_file());
        assert_eq!(names(&store), vec![digest.hex().to_owned()]);
    }

    #[test]
    fn mismatch_names_both_digests_and_leaves_nothing() {
        let root = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::open(root.path()).expect("open");
        let expected = Digest::of(b"what the manifest said");
        let err = store
            .put(&expected, &b"what arrived"[..])
            .expect_err("mismatch");
        let message = err.to_string();
        assert!(message.contains(&expected.to_string()), "{message}");
        assert!(
            message.contains(&Digest::of(b"what arrived").to_string()),
            "{message}"
        );
        assert!(names(&store).is_empty(), "left behind: {:?}", names(&store));
    }

    #[test]
    fn writer_commits_only_the_expected_size_and_digest() {
        let root = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::open(root.path()).expect("open");
        let digest = Digest::of(b"streamed");
        let mut writer = store.writer(&digest, Some(8)).expect("writer");
        writer.write_all(b"stream").expect("write");
        assert_eq!(writer.written(), 6);
        writer.write_all(b"ed").expect("write");
        assert_eq!(writer.digest(), digest);
        assert_eq!(writer.commit().expect("commit"), 8);
        assert_eq!(store.read(&digest).expect("read"), b"streamed");

        let other = Digest::of(b"other");
        let mut writer = store.writer(&other, Some(5)).expect("writer");
        writer.write_all(b"othe").expect("write");
        let err = writer.commit().expect_err("short").to_string();
        assert!(
            err.contains("expected 5 bytes") && err.contains("got 4"),
            "{err}"
        );
        let mut writer = store.writer(&other, Some(5)).expect("writer");
        writer.write_all(b"OTHER").expect("write");
        assert!(matches!(
            writer.commit(),
            Err(StoreError::DigestMismatch { .. })
        ));
        let writer = store.writer(&other, None).expect("writer");
        drop(writer);
        assert_eq!(names(&store), vec![digest.hex().to_owned()]);
    }

    #[test]
    fn open_leaves_a_live_writer_alone() {
        let root = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::open(root.path()).expect("open");
        let data = b"written while another command opens the store";
        let mut writer = store.writer(&Digest::of(data), None).expect("writer");
        writer.write_all(&data[..10]).expect("write");
        let _other = BlobStore::open(root.path()).expect("concurrent open");
        writer.write_all(&data[10..]).expect("write");
        let digest = Digest::of(data);
        writer.commit().expect("commit after a concurrent open");
        assert_eq!(store.read(&digest).expect("read"), data);
    }

    #[test]
    fn put_new_stores_under_the_computed_digest_once() {
        let root = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::open(root.path()).expect("open");
        let first = store.put_new(&b"a tarball"[..]).expect("put_new");
        assert_eq!(first.digest, Digest::of(b"a tarball"));
        assert!(first.created);
        assert_eq!(first.size, 9);
        let again = store.put_new(&b"a tarball"[..]).expect("put_new again");
        assert!(!again.created);
        assert_eq!(names(&store), vec![first.digest.hex().to_owned()]);
    }

    #[test]
    fn open_removes_leftover_temporary_files() {
        let root = tempfile::tempdir().expect("tempdir");
        let store = BlobStore::open(root.path()).expect("open");
        let kept = store.put_bytes(b"kept").expect("put");
        fs::write(store.dir.join(".tmp-crashed"), b"half a layer").expect("write leftover");
        let store = BlobStore::open(root.path()).expect("reopen");
        assert_eq!(names(&store), vec![kept.hex().to_owned()]);
    }
}
