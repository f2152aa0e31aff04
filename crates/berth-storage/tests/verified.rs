//! `LayerStore::unpack_verified` + `commit`: the path a pull takes when it unpacks while it
//! downloads (compressed stream in, read to its end, diffID checked, committed in order).

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{self, Read, Write};
use std::path::Path;

use berth_storage::{chain_id, Compression, LayerStore, StoreError, UnpackOptions};
use common::{require_root, Tar, DEFAULT};
use sha2::{Digest, Sha256};

fn diff_id(tar: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(tar)))
}

fn layer_tar(name: &str) -> Vec<u8> {
    let mut t = Tar::new();
    t.dir("dir/", DEFAULT)
        .file(&format!("dir/{name}"), DEFAULT, name.as_bytes())
        .file(&format!("dir/.wh.gone-{name}"), DEFAULT, b"");
    t.bytes()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// Hands out `data`, counts what was read, and answers the end of the stream with `at_end`
/// (an error stands for a blob digest mismatch found by a pull's tee).
struct Blob<'a> {
    data: &'a [u8],
    read: usize,
    eof_reads: usize,
    fail_at_end: bool,
}

impl<'a> Blob<'a> {
    fn new(data: &'a [u8]) -> Self {
        Blob {
            data,
            read: 0,
            eof_reads: 0,
            fail_at_end: false,
        }
    }
}

impl Read for Blob<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = &self.data[self.read..];
        if rest.is_empty() {
            self.eof_reads += 1;
            if self.fail_at_end {
                return Err(io::Error::other("digest mismatch (simulated)"));
            }
            return Ok(0);
        }
        let n = buf.len().min(rest.len()).min(1000);
        buf[..n].copy_from_slice(&rest[..n]);
        self.read += n;
        Ok(n)
    }
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn compressed_layers_unpack_read_to_the_end_and_commit_in_order() {
    if !require_root("compressed_layers_unpack_read_to_the_end_and_commit_in_order") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = LayerStore::open(dir.path()).unwrap();
    let options = UnpackOptions::default();
    let (t1, t2) = (layer_tar("one"), layer_tar("two"));
    let (gz1, zst2) = (gzip(&t1), zstd::encode_all(&t2[..], 3).unwrap());

    let mut blob1 = Blob::new(&gz1);
    let base = store
        .unpack_verified(&diff_id(&t1), &mut blob1, &options)
        .unwrap();
    assert_eq!((blob1.read, blob1.eof_reads > 0), (gz1.len(), true));
    assert_eq!(base.compression(), Compression::Gzip);
    let mut blob2 = Blob::new(&zst2);
    let top = store
        .unpack_verified(&diff_id(&t2), &mut blob2, &options)
        .unwrap();
    assert_eq!((blob2.read, blob2.eof_reads > 0), (zst2.len(), true));
    assert_eq!(top.compression(), Compression::Zstd);
    assert!(
        store.list().unwrap().is_empty(),
        "nothing visible before commit"
    );

    let base_id = diff_id(&t1);
    let err = store.commit(top, Some(&base_id)).unwrap_err();
    assert!(matches!(err, StoreError::ParentMissing { .. }), "{err}");
    assert_eq!(
        entries(&dir.path().join("tmp")).len(),
        1,
        "only base: the top was dropped"
    );

    let base = store.commit(base, None).unwrap();
    assert_eq!(base.chain_id, base_id);
    let top = store
        .unpack_verified(&diff_id(&t2), &zst2[..], &options)
        .unwrap();
    let top = store.commit(top, Some(&base.chain_id)).unwrap();
    assert_eq!(top.chain_id, chain_id(Some(&base_id), &diff_id(&t2)));
    let lowers = store.lower_dirs(&top.chain_id).unwrap();
    assert_eq!(std::fs::read(lowers[0].join("dir/two")).unwrap(), b"two");
    assert_eq!(std::fs::read(lowers[1].join("dir/one")).unwrap(), b"one");
    let whiteout = std::fs::symlink_metadata(lowers[0].join("dir/gone-two")).unwrap();
    assert!(
        std::os::unix::fs::FileTypeExt::is_char_device(&whiteout.file_type()),
        "whiteout became a 0/0 char device"
    );
    assert!(entries(&dir.path().join("tmp")).is_empty());

    // Committing a layer the store has already keeps the stored one.
    let again = store.unpack_verified(&base_id, &t1[..], &options).unwrap();
    assert_eq!(again.compression(), Compression::None);
    assert_eq!(store.commit(again, None).unwrap(), base);
    assert!(entries(&dir.path().join("tmp")).is_empty());
}

#[test]
fn a_wrong_diff_id_stores_nothing() {
    if !require_root("a_wrong_diff_id_stores_nothing") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = LayerStore::open(dir.path()).unwrap();
    let tar = layer_tar("x");
    let gz = gzip(&tar);
    let claimed = diff_id(b"something else");
    let mut blob = Blob::new(&gz);
    let err = store
        .unpack_verified(&claimed, &mut blob, &UnpackOptions::default())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("layer {claimed}: diff ID mismatch: got {}", diff_id(&tar))
    );
    assert_eq!(blob.read, gz.len(), "read to the end before judging");
    assert!(entries(&dir.path().join("tmp")).is_empty());
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn a_failing_end_of_stream_stores_nothing() {
    if !require_root("a_failing_end_of_stream_stores_nothing") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = LayerStore::open(dir.path()).unwrap();
    let tar = layer_tar("y");
    for data in [gzip(&tar), tar.clone()] {
        let mut blob = Blob::new(&data);
        blob.fail_at_end = true;
        let err = store
            .unpack_verified(&diff_id(&tar), &mut blob, &UnpackOptions::default())
            .unwrap_err();
        assert!(
            err.to_string().contains("digest mismatch (simulated)"),
            "{err}"
        );
        assert!(entries(&dir.path().join("tmp")).is_empty());
        assert!(store.list().unwrap().is_empty());
    }
}
