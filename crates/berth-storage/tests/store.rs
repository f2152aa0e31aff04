//! The layer store: chainIDs, unpack-once, short links, incomplete layers, removal.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{self, Read};
use std::path::Path;

use berth_storage::{chain_id, LayerStore, StoreError, UnpackError, UnpackOptions};
use common::{require_root, Tar, DEFAULT};
use sha2::{Digest, Sha256};

fn diff_id(tar: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(tar)))
}

fn layer_tar(name: &str) -> Vec<u8> {
    let mut t = Tar::new();
    t.dir("dir/", DEFAULT)
        .file(&format!("dir/{name}"), DEFAULT, name.as_bytes());
    t.bytes()
}

/// Reads `good` bytes of `data`, then fails (or panics) like a dropped download.
struct Interrupted<'a> {
    data: &'a [u8],
    good: usize,
    panic: bool,
}

impl Read for Interrupted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.good == 0 {
            if self.panic {
                panic!("simulated crash mid-unpack");
            }
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "simulated network failure",
            ));
        }
        let n = buf.len().min(self.good).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        self.good -= n;
        Ok(n)
    }
}

struct MustNotRead;

impl Read for MustNotRead {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        panic!("an existing layer was unpacked again");
    }
}

fn tmp_entries(root: &Path) -> Vec<String> {
    std::fs::read_dir(root.join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn chain_ids_follow_the_oci_image_spec() {
    let a = "sha256:".to_owned() + &"a".repeat(64);
    let b = "sha256:".to_owned() + &"b".repeat(64);
    assert_eq!(chain_id(None, &a), a);
    let expected = format!("sha256:{}", hex::encode(Sha256::digest(format!("{a} {b}"))));
    assert_eq!(chain_id(Some(&a), &b), expected);
}

#[test]
fn layers_are_unpacked_once_and_linked() {
    if !require_root("layers_are_unpacked_once_and_linked") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = LayerStore::open(dir.path()).unwrap();
    let (t1, t2) = (layer_tar("one"), layer_tar("two"));
    let base = store
        .put(None, &diff_id(&t1), &t1[..], &UnpackOptions::default())
        .unwrap();
    assert_eq!(base.chain_id, diff_id(&t1));
    let top = store
        .put(
            Some(&base.chain_id),
            &diff_id(&t2),
            &t2[..],
            &UnpackOptions::default(),
        )
        .unwrap();
    assert_eq!(top.chain_id, chain_id(Some(&base.chain_id), &diff_id(&t2)));
    assert_eq!(
        store
            .put(
                Some(&base.chain_id),
                &diff_id(&t2),
                MustNotRead,
                &UnpackOptions::default()
            )
            .unwrap(),
        top
    );

    let lowers = store.lower_dirs(&top.chain_id).unwrap();
    assert_eq!(lowers.len(), 2);
    assert_eq!(std::fs::read(lowers[0].join("dir/two")).unwrap(), b"two");
    assert_eq!(std::fs::read(lowers[1].join("dir/one")).unwrap(), b"one");
    assert!(
        lowers[0].file_name().unwrap().len() <= 12,
        "short link names"
    );

    let mut listed: Vec<_> = store
        .list()
        .unwrap()
        .into_iter()
        .map(|l| l.chain_id)
        .collect();
    listed.sort();
    let mut expected = vec![base.chain_id.clone(), top.chain_id.clone()];
    expected.sort();
    assert_eq!(listed, expected);

    // A lost link is repaired on open.
    std::fs::remove_file(&lowers[0]).unwrap();
    let store = LayerStore::open(dir.path()).unwrap();
    assert!(lowers[0].join("dir/two").exists());

    store.remove(&top.chain_id).unwrap();
    assert_eq!(store.get(&top.chain_id).unwrap(), None);
    assert!(!lowers[0].exists(), "link removed with the layer");
    assert_eq!(store.list().unwrap().len(), 1);
    assert!(tmp_entries(dir.path()).is_empty());
}

#[test]
fn bad_identifiers_and_missing_parents_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = LayerStore::open(dir.path()).unwrap();
    let err = store
        .put(
            None,
            "sha256:../../etc",
            &b""[..],
            &UnpackOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidDigest { .. }), "{err}");
    let parent = "sha256:".to_owned() + &"c".repeat(64);
    let diff = "sha256:".to_owned() + &"d".repeat(64);
    let err = store
        .put(Some(&parent), &diff, &b""[..], &UnpackOptions::default())
        .unwrap_err();
    assert!(matches!(err, StoreError::ParentMissing { .. }), "{err}");
}

#[test]
fn a_failed_unpack_stores_nothing() {
    if !require_root("a_failed_unpack_stores_nothing") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = LayerStore::open(dir.path()).unwrap();
    let mut t = Tar::new();
    t.file("a", DEFAULT, &[1u8; 8192])
        .file("b", DEFAULT, &[2u8; 8192]);
    let tar = t.bytes();
    let reader = Interrupted {
        data: &tar,
        good: 10_000,
        panic: false,
    };
    let err = store
        .put(None, &diff_id(&tar), reader, &UnpackOptions::default())
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Unpack {
                source: UnpackError::Read { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("simulated network failure"),
        "{err}"
    );
    assert_eq!(store.get(&diff_id(&tar)).unwrap(), None);
    assert!(tmp_entries(dir.path()).is_empty());
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn an_interrupted_unpack_is_removed_by_the_next_open() {
    if !require_root("an_interrupted_unpack_is_removed_by_the_next_open") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = LayerStore::open(dir.path()).unwrap();
    let mut t = Tar::new();
    t.file("a", DEFAULT, &[1u8; 8192])
        .file("b", DEFAULT, &[2u8; 8192]);
    let tar = t.bytes();
    let id = diff_id(&tar);
    // A panic unwinds past the store without its cleanup: like a crash, it leaves the
    // half-written layer behind.
    let crashed = std::panic::catch_unwind(|| {
        let reader = Interrupted {
            data: &tar,
            good: 10_000,
            panic: true,
        };
        let _ = store.put(None, &id, reader, &UnpackOptions::default());
    });
    assert!(crashed.is_err());
    let left = tmp_entries(dir.path());
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].ends_with(".incomplete"), "{left:?}");
    assert!(
        dir.path()
            .join("tmp")
            .join(&left[0])
            .join("diff/a")
            .exists(),
        "the first file was written"
    );
    assert_eq!(
        store.get(&id).unwrap(),
        None,
        "incomplete layers are not visible"
    );

    let store = LayerStore::open(dir.path()).unwrap();
    assert!(tmp_entries(dir.path()).is_empty());
    let layer = store
        .put(None, &id, &tar[..], &UnpackOptions::default())
        .unwrap();
    assert_eq!(
        std::fs::read(store.diff_dir(&layer.chain_id).unwrap().join("b")).unwrap(),
        [2u8; 8192]
    );
}

#[test]
fn open_leaves_a_live_writer_alone() {
    if !require_root("open_leaves_a_live_writer_alone") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = LayerStore::open(dir.path()).unwrap();
    let mut t = Tar::new();
    t.file("a", DEFAULT, b"x");
    let tar = t.bytes();
    // A reader that opens a second store (as another process would) while the unpack runs.
    struct OpensStore<'a> {
        inner: &'a [u8],
        root: &'a Path,
        checked: bool,
    }
    impl Read for OpensStore<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if !self.checked {
                self.checked = true;
                LayerStore::open(self.root).unwrap();
                assert_eq!(
                    tmp_entries(self.root).len(),
                    1,
                    "the live writer's tmp dir survives"
                );
            }
            self.inner.read(buf)
        }
    }
    let reader = OpensStore {
        inner: &tar,
        root: dir.path(),
        checked: false,
    };
    store
        .put(None, &diff_id(&tar), reader, &UnpackOptions::default())
        .unwrap();
}

const CRASH_ROOT_ENV: &str = "BERTH_STORAGE_CRASH_ROOT";

/// Run by `kill_9_mid_unpack_leaves_a_store_the_next_open_repairs` in a child process: start
/// storing a layer whose stream stalls after the first file, forever.
#[test]
#[ignore = "helper process for kill_9_mid_unpack_leaves_a_store_the_next_open_repairs"]
fn crash_helper_stalls_mid_unpack() {
    let root = std::env::var(CRASH_ROOT_ENV).expect("run by the kill -9 test");
    struct Stalls(Vec<u8>);
    impl Read for Stalls {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0.drain(..n);
            Ok(n)
        }
    }
    let (tar, _) = crash_layer();
    let store = LayerStore::open(Path::new(&root)).unwrap();
    let _ = store.put(
        None,
        &diff_id(&tar),
        Stalls(tar[..3 * 512].to_vec()),
        &UnpackOptions::default(),
    );
}

fn crash_layer() -> (Vec<u8>, String) {
    let mut t = Tar::new();
    t.file("first", DEFAULT, &[1u8; 512])
        .file("second", DEFAULT, &[2u8; 512]);
    let tar = t.bytes();
    let id = diff_id(&tar);
    (tar, id)
}

#[test]
fn kill_9_mid_unpack_leaves_a_store_the_next_open_repairs() {
    if !require_root("kill_9_mid_unpack_leaves_a_store_the_next_open_repairs") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "crash_helper_stalls_mid_unpack",
            "--nocapture",
        ])
        .env(CRASH_ROOT_ENV, dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the first file to land in the incomplete layer.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let written = loop {
        let tmp = dir.path().join("tmp");
        let found = tmp.exists()
            && tmp_entries(dir.path())
                .iter()
                .any(|e| tmp.join(e).join("diff/first").exists());
        if found || std::time::Instant::now() > deadline {
            break found;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(written, "the helper never started unpacking");

    let (tar, id) = crash_layer();
    let store = LayerStore::open(dir.path()).unwrap();
    assert!(
        tmp_entries(dir.path()).is_empty(),
        "incomplete layer removed"
    );
    assert_eq!(store.get(&id).unwrap(), None);
    store
        .put(None, &id, &tar[..], &UnpackOptions::default())
        .unwrap();
    assert_eq!(
        std::fs::read(store.diff_dir(&id).unwrap().join("second")).unwrap(),
        [2u8; 512]
    );
}
