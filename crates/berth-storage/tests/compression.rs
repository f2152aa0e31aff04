//! gzip and zstd layers unpack the same as plain ones.

#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::io::{BufReader, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use berth_storage::{decompressed, overlapped, unpack, Compression, UnpackOptions};
use common::{require_root, tree, Attrs, Tar, DEFAULT};

fn sample() -> Vec<u8> {
    let mut t = Tar::new();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    t.dir(
        "d/",
        Attrs {
            mode: 0o711,
            uid: 5,
            gid: 6,
            mtime: 1_234_567,
        },
    )
    .file("d/big", DEFAULT, &big)
    .symlink("d/s", "big", DEFAULT)
    .hardlink("d/h", "d/big")
    .file(".wh.gone", DEFAULT, b"");
    t.bytes()
}

fn unpack_compressed(data: &[u8], expected: Compression) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let reader = decompressed(BufReader::new(data)).unwrap();
    assert_eq!(reader.compression(), expected);
    let fd = fs::File::open(dir.path()).unwrap();
    unpack(fd.as_fd(), reader, &UnpackOptions::default()).unwrap();
    dir
}

fn describe(root: &Path) -> Vec<(String, u32, u32, i64, u64, Vec<u8>)> {
    tree(root)
        .into_iter()
        .map(|p| {
            let m = fs::symlink_metadata(root.join(&p)).unwrap();
            let content = if m.is_file() {
                fs::read(root.join(&p)).unwrap()
            } else {
                Vec::new()
            };
            (p, m.mode(), m.uid(), m.mtime(), m.rdev(), content)
        })
        .collect()
}

#[test]
fn gzip_and_zstd_layers_unpack_like_plain() {
    if !require_root("gzip_and_zstd_layers_unpack_like_plain") {
        return;
    }
    let plain = sample();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&plain[..], 3).unwrap();

    let want = describe(unpack_compressed(&plain, Compression::None).path());
    assert_eq!(want.len(), 5);
    assert_eq!(
        describe(unpack_compressed(&gz, Compression::Gzip).path()),
        want
    );
    assert_eq!(
        describe(unpack_compressed(&zst, Compression::Zstd).path()),
        want
    );
}

#[test]
fn corrupt_compressed_stream_is_a_read_error() {
    let plain = sample();
    let mut zst = zstd::encode_all(&plain[..], 3).unwrap();
    let mid = zst.len() / 2;
    zst[mid..].iter_mut().for_each(|b| *b = !*b);
    let mut reader = decompressed(BufReader::new(&zst[..])).unwrap();
    let mut out = Vec::new();
    assert!(reader.read_to_end(&mut out).is_err());
}

#[test]
fn decompressing_in_a_thread_yields_the_same_stream() {
    // Several chunks' worth, so buffers are recycled.
    let plain: Vec<u8> = (0..5_000_000u32).map(|i| (i % 253) as u8).collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&plain[..], 1).unwrap();
    for (data, kind) in [
        (plain.clone(), Compression::None),
        (gz, Compression::Gzip),
        (zst, Compression::Zstd),
    ] {
        let mut reader = decompressed(BufReader::new(std::io::Cursor::new(data))).unwrap();
        assert_eq!(reader.compression(), kind);
        let out = overlapped(&mut reader, |chunks| {
            let mut out = Vec::new();
            chunks.read_to_end(&mut out).map(|_| out)
        })
        .unwrap();
        assert!(out == plain, "{kind:?} stream differs");
    }
}

#[test]
fn corrupt_stream_in_a_thread_is_a_read_error() {
    let plain = sample();
    let mut zst = zstd::encode_all(&plain[..], 3).unwrap();
    let mid = zst.len() / 2;
    zst[mid..].iter_mut().for_each(|b| *b = !*b);
    let mut reader = decompressed(BufReader::new(std::io::Cursor::new(zst))).unwrap();
    let read = overlapped(&mut reader, |chunks| chunks.read_to_end(&mut Vec::new()));
    assert!(read.is_err());
}
