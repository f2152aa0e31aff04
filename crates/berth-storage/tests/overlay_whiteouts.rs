//! Whiteouts and opaque directories, checked through a real overlay mount of stored layers.

#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use berth_storage::{mount_overlay, LayerStore, UnpackOptions, Upper};
use common::{require_root, Tar, DEFAULT};
use sha2::{Digest, Sha256};

/// Unmounts on drop, so a failing assertion does not leave a mount behind.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Err(e) = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH) {
            eprintln!("unmount {}: {e}", self.0.display());
        }
    }
}

fn put(store: &LayerStore, parent: Option<&str>, tar: &[u8]) -> String {
    let diff_id = format!("sha256:{}", hex::encode(Sha256::digest(tar)));
    store
        .put(parent, &diff_id, tar, &UnpackOptions::default())
        .unwrap()
        .chain_id
}

fn mount(store: &LayerStore, top: &str, scratch: &Path) -> (PathBuf, Mounted) {
    let (upper, work, target) = (
        scratch.join("upper"),
        scratch.join("work"),
        scratch.join("merged"),
    );
    for d in [&upper, &work, &target] {
        fs::create_dir_all(d).unwrap();
    }
    let lowers = store.lower_dirs(top).unwrap();
    mount_overlay(
        &lowers,
        Some(Upper {
            upper: &upper,
            work: &work,
        }),
        &target,
    )
    .unwrap();
    (target.clone(), Mounted(target))
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn whiteouts_and_opaque_dirs_hide_lower_contents() {
    if !require_root("whiteouts_and_opaque_dirs_hide_lower_contents") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = LayerStore::open(dir.path().join("store")).unwrap();
    let mut lower = Tar::new();
    lower
        .dir("etc/", DEFAULT)
        .file("etc/keep", DEFAULT, b"keep")
        .file("etc/gone", DEFAULT, b"gone")
        .dir("etc/gone-dir/", DEFAULT)
        .file("etc/gone-dir/inner", DEFAULT, b"x")
        .dir("opq/", DEFAULT)
        .file("opq/old", DEFAULT, b"old")
        .dir("opq/sub/", DEFAULT)
        .file("opq/sub/old2", DEFAULT, b"old2");
    let mut upper = Tar::new();
    upper
        .file("etc/.wh.gone", DEFAULT, b"")
        .file("etc/.wh.gone-dir", DEFAULT, b"")
        .dir("opq/", DEFAULT)
        .file("opq/.wh..wh..opq", DEFAULT, b"")
        .file("opq/new", DEFAULT, b"new")
        .file(".wh..wh.plnk", DEFAULT, b"");
    let base = put(&store, None, &lower.bytes());
    let top = put(&store, Some(&base), &upper.bytes());

    // On disk: overlay's own whiteout format.
    let diff = store.diff_dir(&top).unwrap();
    let wh = fs::symlink_metadata(diff.join("etc/gone")).unwrap();
    assert!(
        wh.file_type().is_char_device() && wh.rdev() == 0,
        "whiteout is a 0/0 char device"
    );
    let mut buf = [0u8; 8];
    let n = rustix::fs::getxattr(diff.join("opq"), "trusted.overlay.opaque", &mut buf).unwrap();
    assert_eq!(&buf[..n], b"y");
    assert!(!diff.join(".wh..wh.plnk").exists() && !diff.join("etc/.wh.gone").exists());

    let (merged, _mounted) = mount(&store, &top, &dir.path().join("c1"));
    assert_eq!(names(&merged.join("etc")), ["keep"]);
    assert_eq!(fs::read(merged.join("etc/keep")).unwrap(), b"keep");
    assert_eq!(names(&merged.join("opq")), ["new"]);
    assert!(!merged.join("opq/sub").exists());
    // The container's writes go to its upper layer, not the image's.
    fs::write(merged.join("etc/written"), b"w").unwrap();
    assert!(dir.path().join("c1/upper/etc/written").exists());
    assert!(!store.diff_dir(&top).unwrap().join("etc/written").exists());
}

#[test]
fn two_hundred_and_ten_layers_mount() {
    if !require_root("two_hundred_and_ten_layers_mount") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = LayerStore::open(dir.path().join("store")).unwrap();
    let mut parent: Option<String> = None;
    for i in 0..210 {
        let mut t = Tar::new();
        t.file(&format!("layer-{i:03}"), DEFAULT, format!("{i}").as_bytes());
        parent = Some(put(&store, parent.as_deref(), &t.bytes()));
    }
    let top = parent.unwrap();
    let lowers = store.lower_dirs(&top).unwrap();
    assert_eq!(lowers.len(), 210);
    let joined: usize = lowers
        .iter()
        .map(|l| l.strip_prefix(store.root()).unwrap().as_os_str().len() + 1)
        .sum();
    assert!(
        joined < 4096,
        "short links fit a classic mount(2) option page too: {joined} bytes"
    );
    let (merged, _mounted) = mount(&store, &top, &dir.path().join("c"));
    assert_eq!(names(&merged).len(), 210);
    assert_eq!(fs::read(merged.join("layer-000")).unwrap(), b"0");
    assert_eq!(fs::read(merged.join("layer-209")).unwrap(), b"209");
}
