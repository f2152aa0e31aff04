//! Every entry type and attribute survives an unpack.

#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use berth_storage::UnpackOptions;
use common::{require_root, tree, unpack_into, Attrs, Tar, DEFAULT};
use tar::EntryType;

const T0: u64 = 1_500_000_000;

fn attrs(mode: u32, uid: u64, gid: u64, mtime: u64) -> Attrs {
    Attrs {
        mode,
        uid,
        gid,
        mtime,
    }
}

fn sample_layer() -> Vec<u8> {
    let mut t = Tar::new();
    t.dir("./", attrs(0o755, 0, 0, T0))
        .pax(&[("SCHILY.xattr.user.dir", b"d1")])
        .dir("d/", attrs(0o750, 1000, 1001, T0 + 1))
        .pax(&[
            ("SCHILY.xattr.user.k", b"v"),
            ("SCHILY.xattr.trusted.t", b"x\0y"),
            ("mtime", b"1500000002.25"),
        ])
        .file("d/f", attrs(0o4755, 1000, 1001, 0), b"hello")
        .file("g", attrs(0o2750, 0, 50, T0 + 3), b"")
        .dir("sticky/", attrs(0o1777, 0, 0, T0 + 4))
        .pax(&[("SCHILY.xattr.trusted.sym", b"on-link")])
        .symlink("d/s", "../g", attrs(0o777, 1000, 1002, T0 + 5))
        .hardlink("d/h", "d/f")
        .hardlink("root-link", "./d/f")
        .device("c", EntryType::Char, 1, 3, attrs(0o666, 0, 5, T0 + 6))
        .device("b", EntryType::Block, 7, 2, attrs(0o660, 0, 6, T0 + 7))
        .pax(&[("SCHILY.xattr.trusted.fifo", b"1")])
        .device("p", EntryType::Fifo, 0, 0, attrs(0o640, 2, 3, T0 + 8))
        .file("implicit/x/file", DEFAULT, b"deep")
        .pax(&[("uid", b"4000000000"), ("gid", b"70000")])
        .file("big-ids", DEFAULT, b"ids")
        .file("replaced", DEFAULT, b"first")
        .file("replaced", DEFAULT, b"second");
    t.bytes()
}

fn check(path: &Path, mode: u32, uid: u32, gid: u32, mtime: (i64, i64)) {
    let m = fs::symlink_metadata(path).unwrap();
    assert_eq!(m.mode() & 0o7777, mode, "{} mode", path.display());
    assert_eq!((m.uid(), m.gid()), (uid, gid), "{} owner", path.display());
    assert_eq!(
        (m.mtime(), m.mtime_nsec()),
        mtime,
        "{} mtime",
        path.display()
    );
}

fn xattr(path: &Path, name: &str) -> Vec<u8> {
    let mut buf = vec![0u8; 256];
    let n = rustix::fs::lgetxattr(path, name, &mut buf)
        .unwrap_or_else(|e| panic!("{}: {name}: {e}", path.display()));
    buf.truncate(n);
    buf
}

#[test]
fn every_entry_type_and_attribute_round_trips() {
    if !require_root("every_entry_type_and_attribute_round_trips") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let l = dir.path();
    let stats = unpack_into(l, &sample_layer(), &UnpackOptions::default()).unwrap();
    assert_eq!(stats.bytes, 5 + 4 + 3 + 5 + 6);

    let t = |s: u64| (s as i64, 0);
    check(l, 0o755, 0, 0, t(T0));
    check(&l.join("d"), 0o750, 1000, 1001, t(T0 + 1));
    assert_eq!(xattr(&l.join("d"), "user.dir"), b"d1");
    check(
        &l.join("d/f"),
        0o4755,
        1000,
        1001,
        (T0 as i64 + 2, 250_000_000),
    );
    assert_eq!(fs::read(l.join("d/f")).unwrap(), b"hello");
    assert_eq!(xattr(&l.join("d/f"), "user.k"), b"v");
    assert_eq!(xattr(&l.join("d/f"), "trusted.t"), b"x\0y");
    check(&l.join("g"), 0o2750, 0, 50, t(T0 + 3));
    check(&l.join("sticky"), 0o1777, 0, 0, t(T0 + 4));

    let s = fs::symlink_metadata(l.join("d/s")).unwrap();
    assert!(s.file_type().is_symlink());
    assert_eq!(fs::read_link(l.join("d/s")).unwrap(), Path::new("../g"));
    assert_eq!((s.uid(), s.gid(), s.mtime()), (1000, 1002, (T0 + 5) as i64));

    assert_eq!(xattr(&l.join("d/s"), "trusted.sym"), b"on-link");
    assert!(
        rustix::fs::getxattr(l.join("g"), "trusted.sym", &mut [0u8; 16]).is_err(),
        "not on the target"
    );

    let f = fs::metadata(l.join("d/f")).unwrap();
    for link in ["d/h", "root-link"] {
        let h = fs::metadata(l.join(link)).unwrap();
        assert_eq!(
            (h.ino(), h.dev()),
            (f.ino(), f.dev()),
            "{link} is a hard link"
        );
    }
    assert_eq!(f.nlink(), 3);

    let c = fs::symlink_metadata(l.join("c")).unwrap();
    assert!(c.file_type().is_char_device());
    assert_eq!(c.rdev(), rustix::fs::makedev(1, 3));
    check(&l.join("c"), 0o666, 0, 5, t(T0 + 6));
    let b = fs::symlink_metadata(l.join("b")).unwrap();
    assert!(b.file_type().is_block_device());
    assert_eq!(b.rdev(), rustix::fs::makedev(7, 2));
    check(&l.join("b"), 0o660, 0, 6, t(T0 + 7));
    assert!(fs::symlink_metadata(l.join("p"))
        .unwrap()
        .file_type()
        .is_fifo());
    check(&l.join("p"), 0o640, 2, 3, t(T0 + 8));
    assert_eq!(xattr(&l.join("p"), "trusted.fifo"), b"1");

    assert_eq!(fs::read(l.join("implicit/x/file")).unwrap(), b"deep");
    check(
        &l.join("implicit/x"),
        0o755,
        0,
        0,
        (
            fs::metadata(l.join("implicit/x")).unwrap().mtime(),
            fs::metadata(l.join("implicit/x")).unwrap().mtime_nsec(),
        ),
    );
    let ids = fs::metadata(l.join("big-ids")).unwrap();
    assert_eq!((ids.uid(), ids.gid()), (4_000_000_000, 70_000));
    assert_eq!(fs::read(l.join("replaced")).unwrap(), b"second");

    assert_eq!(
        tree(l),
        [
            "b",
            "big-ids",
            "c",
            "d",
            "d/f",
            "d/h",
            "d/s",
            "g",
            "implicit",
            "implicit/x",
            "implicit/x/file",
            "p",
            "replaced",
            "root-link",
            "sticky"
        ]
    );
}

#[test]
fn long_gnu_and_pax_names_unpack() {
    if !require_root("long_gnu_and_pax_names_unpack") {
        return;
    }
    let long = format!("{}/{}", "a".repeat(120), "b".repeat(150));
    let mut builder = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o600);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    builder.append_data(&mut h, &long, &b"ok"[..]).unwrap();
    let bytes = builder.into_inner().unwrap();
    let dir = tempfile::tempdir().unwrap();
    unpack_into(dir.path(), &bytes, &UnpackOptions::default()).unwrap();
    assert_eq!(fs::read(dir.path().join(&long)).unwrap(), b"ok");
}
