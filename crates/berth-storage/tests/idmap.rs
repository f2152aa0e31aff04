//! A container layer for a user namespace: the lowers idmapped, or (forced with
//! `BERTH_STORAGE_NO_IDMAP`) shifted copies made once and reused; the writable layer belongs
//! to the container's root. Real kernel, as root.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use berth_storage::{ContainerStore, IdMap, IdRange, RootfsOptions};

const BASE: u32 = 3_100_000;

fn map() -> IdMap {
    let range = vec![IdRange {
        container: 0,
        host: BASE,
        size: 65536,
    }];
    IdMap {
        uids: range.clone(),
        gids: range,
    }
}

/// A layer: `etc/file` (0:0, setuid kept), `home/u/f` (1000:1000), a hard link, a whiteout.
fn make_layer(dir: &Path) {
    fs::create_dir_all(dir.join("etc")).unwrap();
    fs::create_dir_all(dir.join("home/u")).unwrap();
    fs::write(dir.join("etc/file"), "hello").unwrap();
    fs::set_permissions(
        dir.join("etc/file"),
        std::os::unix::fs::PermissionsExt::from_mode(0o4755),
    )
    .unwrap();
    fs::hard_link(dir.join("etc/file"), dir.join("etc/link")).unwrap();
    fs::write(dir.join("home/u/f"), "x").unwrap();
    std::os::unix::fs::chown(dir.join("home/u/f"), Some(1000), Some(1000)).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        dir.join("gone"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::empty(),
        0,
    )
    .unwrap();
}

fn check(store: &ContainerStore, id: &str) {
    let merged = store.mount(id).unwrap();
    let file = fs::metadata(merged.join("etc/file")).unwrap();
    assert_eq!((file.uid(), file.gid()), (BASE, BASE));
    assert_eq!(file.mode() & 0o7777, 0o4755);
    let user = fs::metadata(merged.join("home/u/f")).unwrap();
    assert_eq!((user.uid(), user.gid()), (BASE + 1000, BASE + 1000));
    assert!(
        !merged.join("gone").exists(),
        "the whiteout hides nothing here but is no file"
    );
    let upper = store.upper_dir(id).unwrap();
    let meta = fs::metadata(&upper).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (BASE, BASE),
        "upper belongs to the mapped root"
    );
    fs::write(merged.join("new"), "y").unwrap();
    store.unmount(id).unwrap();
    store.remove(id).unwrap();
}

#[test]
fn idmapped_lowers_and_shifted_copies() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: idmapped_lowers_and_shifted_copies: needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let layer = tmp.path().join("layer");
    make_layer(&layer);
    let store = ContainerStore::open(tmp.path().join("store")).unwrap();
    let options = RootfsOptions {
        idmap: Some(map()),
        ..RootfsOptions::default()
    };
    let lowers = vec![layer.clone()];

    // Idmapped (this kernel, on this filesystem), else say why.
    let made = store.create("idm", &lowers, &options).unwrap();
    match &made.copied {
        None => assert!(made.idmapped_lowers),
        Some((why, _)) => eprintln!("note: idmapped lowers unavailable here: {why}"),
    }
    check(&store, "idm");

    // Forced fallback: copies made by the first container, reused by the second.
    std::env::set_var(berth_storage::idmap::FORCE_COPY_ENV, "1");
    let first = store.create("copy1", &lowers, &options).unwrap();
    let second = store.create("copy2", &lowers, &options).unwrap();
    std::env::remove_var(berth_storage::idmap::FORCE_COPY_ENV);
    assert!(!first.idmapped_lowers);
    assert!(
        first.copied.as_ref().unwrap().1.is_some(),
        "first made the copy"
    );
    assert_eq!(second.copied.as_ref().unwrap().1, None, "second reused it");
    assert_eq!(first.lowers, second.lowers);
    let copy = &first.lowers[0];
    let a = fs::metadata(copy.join("etc/file")).unwrap();
    let b = fs::metadata(copy.join("etc/link")).unwrap();
    assert_eq!(a.ino(), b.ino(), "hard links stay links");
    let whiteout = fs::symlink_metadata(copy.join("gone")).unwrap();
    assert_eq!(whiteout.rdev(), 0);
    check(&store, "copy1");
    check(&store, "copy2");
    // The source layer is untouched.
    assert_eq!(fs::metadata(layer.join("etc/file")).unwrap().uid(), 0);
}
