//! `berth pull/push/images/rmi/tag` against a real `docker-registry` on 127.0.0.1: images built
//! here from the busybox rootfs (gzip and zstd layers, a deletion and an opaque directory),
//! pushed, pulled back with identical digests, mounted, and run under berth-runtime.

#![allow(clippy::unwrap_used)]

#[path = "../../../crates/berth-image/tests/support/mod.rs"]
mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use berth_image::manifest::{OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST};
use berth_image::{BlobStore, Descriptor, Digest, Manifest, Platform};
use berth_integration_tests::*;
use support::registry::TestRegistry;

const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// `berth --root ROOT args...`
fn berth(root: &Path, args: &[&str]) -> Output {
    Command::new(bin_dir().join("berth"))
        .arg("--root")
        .arg(root)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(root: &Path, args: &[&str]) -> String {
    let out = berth(root, args);
    assert!(out.status.success(), "berth {args:?}: {}", describe(&out));
    stdout(&out)
}

/// One layer's entries: (path, kind) where kind is a file's contents, or a whiteout marker.
enum Entry<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
}

fn tar_of(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(1_600_000_000);
        match entry {
            Entry::File(path, data) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                header.set_size(data.len() as u64);
                builder.append_data(&mut header, path, *data).unwrap();
            }
            Entry::Dir(path) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder.append_data(&mut header, path, &[][..]).unwrap();
            }
        }
    }
    builder.into_inner().unwrap()
}

/// The busybox rootfs (with the probe) as a tar, symlinks kept as symlinks.
fn rootfs_tar() -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    builder.append_dir_all(".", template_rootfs()).unwrap();
    builder.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

fn put(store: &BlobStore, media_type: &str, data: &[u8]) -> Descriptor {
    Descriptor::new(
        media_type,
        store.put_bytes(data).unwrap(),
        data.len() as u64,
    )
}

/// A three-layer image in `store`: busybox (gzip); /etc/app/{a,b} and /data/{x,y} (gzip);
/// a whiteout of /etc/app/a, /data made opaque with a new /data/z (zstd).
fn busybox_image(store: &BlobStore) -> Descriptor {
    let layers = [
        (rootfs_tar(), OCI_LAYER_GZIP),
        (
            tar_of(&[
                Entry::Dir("etc/app"),
                Entry::File("etc/app/a", b"a\n"),
                Entry::File("etc/app/b", b"b\n"),
                Entry::Dir("data"),
                Entry::File("data/x", b"x\n"),
                Entry::File("data/y", b"y\n"),
            ]),
            OCI_LAYER_GZIP,
        ),
        (
            tar_of(&[
                Entry::File("etc/app/.wh.a", b""),
                Entry::Dir("data"),
                Entry::File("data/.wh..wh..opq", b""),
                Entry::File("data/z", b"z\n"),
            ]),
            OCI_LAYER_ZSTD,
        ),
    ];
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for (tar, media_type) in &layers {
        diff_ids.push(Digest::of(tar).to_string());
        let blob = if *media_type == OCI_LAYER_ZSTD {
            zstd::encode_all(tar.as_slice(), 3).unwrap()
        } else {
            gzip(tar)
        };
        descriptors.push(put(store, media_type, &blob));
    }
    let platform = Platform::host();
    let config = serde_json::json!({
        "created": "2024-01-02T03:04:05Z",
        "architecture": platform.architecture,
        "os": platform.os,
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = put(store, OCI_CONFIG, &serde_json::to_vec(&config).unwrap());
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_owned()),
        config,
        layers: descriptors,
        annotations: Default::default(),
    };
    put(store, OCI_MANIFEST, &serde_json::to_vec(&manifest).unwrap())
}

/// Push the test image to `registry` as `path`; returns the manifest digest.
fn push_test_image(registry: &TestRegistry, path: &str) -> Digest {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let manifest = busybox_image(&store);
    let reference = registry.reference(path);
    let client = berth_image::Client::for_reference(&reference, Default::default());
    berth_image::push(&client, &store, &reference, &manifest.digest, None).unwrap();
    manifest.digest
}

/// A registry for a test that unpacks layers (which chowns: root only); `None`, with the reason
/// printed, when either is missing.
fn registry_as_root() -> Option<TestRegistry> {
    if !is_root() {
        eprintln!("SKIPPED: needs root (layer ownership)");
        return None;
    }
    TestRegistry::start()
}

/// Everything under the storage root that is half-made: blob temporaries, layers in tmp/.
fn half_made(root: &Path) -> Vec<PathBuf> {
    let storage = root.join("storage");
    let mut found = Vec::new();
    for dir in [storage.join("blobs/sha256"), storage.join("tmp")] {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if dir.ends_with("tmp") || name.starts_with(".tmp") {
                found.push(entry.path());
            }
        }
    }
    found
}

/// Every blob in the store hashes to its name.
fn assert_blobs_verified(root: &Path) {
    use sha2::Digest as _;
    for entry in std::fs::read_dir(root.join("storage/blobs/sha256"))
        .unwrap()
        .flatten()
    {
        let data = std::fs::read(entry.path()).unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        assert_eq!(
            hex::encode(sha2::Sha256::digest(&data)),
            name,
            "blob {name} is corrupt"
        );
    }
}

/// An overlay of the image's layers, unmounted (and its directories removed) on drop.
struct Mounted {
    dir: tempfile::TempDir,
}

impl Mounted {
    fn new(root: &Path, name: &str) -> Mounted {
        let inspect: serde_json::Value =
            serde_json::from_str(&ok(root, &["image", "inspect", name])).unwrap();
        let lowers: Vec<PathBuf> = inspect[0]["GraphDriver"]["Data"]["LowerDir"]
            .as_str()
            .unwrap()
            .split(':')
            .map(PathBuf::from)
            .collect();
        let dir = tempfile::tempdir().unwrap();
        for d in ["upper", "work", "rootfs"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        let upper = dir.path().join("upper");
        let work = dir.path().join("work");
        berth_storage::mount_overlay(
            &lowers,
            Some(berth_storage::Upper {
                upper: &upper,
                work: &work,
            }),
            &dir.path().join("rootfs"),
        )
        .unwrap();
        Mounted { dir }
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        unmount_under(self.dir.path());
    }
}

fn manifest_digest(root: &Path, name: &str) -> String {
    ok(
        root,
        &["images", "--digests", "--format", "{{.Digest}}", name],
    )
    .trim()
    .to_owned()
}

#[test]
fn push_pull_roundtrip_keeps_digests_whiteouts_and_runs() {
    if !is_root() {
        eprintln!("SKIPPED: needs root (overlay mounts, containers)");
        return;
    }
    let Some(registry) = TestRegistry::start() else {
        return;
    };
    let pushed = push_test_image(&registry, "bb/multi:v1");
    let root = tempfile::tempdir().unwrap();
    let name = format!("{}/bb/multi:v1", registry.host);
    let out = ok(root.path(), &["pull", &name]);
    assert!(out.trim_end().ends_with(&name), "{out}");
    assert_eq!(manifest_digest(root.path(), &name), pushed.to_string());

    // Whiteout semantics through the mounted root filesystem.
    let mounted = Mounted::new(root.path(), &name);
    let rootfs = mounted.rootfs();
    assert!(rootfs.join("bin/busybox").exists());
    assert!(!rootfs.join("etc/app/a").exists(), "a deleted file is back");
    assert_eq!(std::fs::read(rootfs.join("etc/app/b")).unwrap(), b"b\n");
    let mut data: Vec<String> = std::fs::read_dir(rootfs.join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    data.sort();
    assert_eq!(data, ["z"], "the opaque directory shows lower entries");

    // Run a container from it.
    let rt = Runtime::berth();
    let bundle = bundle_for(&rt, &rootfs, &["/bin/cat", "/etc/app/b", "/data/z"]);
    let id = unique_id("img");
    let _guard = rt.guard(&id);
    let run = rt
        .cmd()
        .args(["run", "--bundle"])
        .arg(bundle.path())
        .arg(&id)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", describe(&run));
    assert_eq!(stdout(&run), "b\nz\n");
    drop(mounted);

    // Push it elsewhere from berth, remove it, pull both back: identical digests and ID.
    let id_before = ok(root.path(), &["images", "-q", "--no-trunc", &name]);
    let copy = format!("{}/bb/copy:v2", registry.host);
    ok(root.path(), &["tag", &name, &copy]);
    let push = ok(root.path(), &["push", &copy]);
    assert!(push.contains(&format!("v2: digest: {pushed}")), "{push}");
    assert!(
        push.contains("Mounted from another repository") || push.contains("Layer already exists"),
        "{push}"
    );
    ok(root.path(), &["rmi", &name, &copy]);
    assert_eq!(ok(root.path(), &["images", "-q"]), "");
    assert!(std::fs::read_dir(root.path().join("storage/layers"))
        .unwrap()
        .next()
        .is_none());
    ok(root.path(), &["pull", &copy]);
    assert_eq!(manifest_digest(root.path(), &copy), pushed.to_string());
    assert_eq!(ok(root.path(), &["images", "-q", "--no-trunc"]), id_before);
    assert!(half_made(root.path()).is_empty());
}

#[test]
fn platform_is_picked_from_an_index() {
    let Some(registry) = registry_as_root() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let amd64 = Platform::new("linux", "amd64", None);
    let arm64 = Platform::new("linux", "arm64", Some("v8"));
    let a = support::images::build_image(&store, &amd64, 1);
    let b = support::images::build_image(&store, &arm64, 2);
    let index = support::images::build_index(&store, &[(&amd64, &a), (&arm64, &b)]);
    let reference = registry.reference("multi/arch:1");
    let client = berth_image::Client::for_reference(&reference, Default::default());
    berth_image::push(&client, &store, &reference, &index.digest, None).unwrap();

    let root = tempfile::tempdir().unwrap();
    let name = reference.to_string();
    ok(root.path(), &["pull", "--platform", "linux/arm64", &name]);
    let arch = ok(
        root.path(),
        &["image", "inspect", "-f", "{{.Architecture}}", &name],
    );
    assert_eq!(arch.trim(), "arm64");
    // The repo digest is the index's, as docker records it.
    assert_eq!(
        manifest_digest(root.path(), &name),
        index.digest.to_string()
    );
    let wrong = berth(root.path(), &["pull", "--platform", "linux/s390x", &name]);
    assert!(!wrong.status.success());
    assert!(
        stderr(&wrong).contains("linux/arm64"),
        "{}",
        describe(&wrong)
    );
}

#[test]
fn failed_pulls_say_why_in_one_line_and_store_nothing_partial() {
    let Some(registry) = registry_as_root() else {
        return;
    };
    let pushed = push_test_image(&registry, "bb/ok:1");
    let root = tempfile::tempdir().unwrap();
    let cases = [
        (format!("{}/bb/ok:nope", registry.host), "manifest unknown"),
        (format!("{}/bb/missing:1", registry.host), "unknown"),
        ("UPPERCASE".to_owned(), "invalid reference format"),
    ];
    for (name, expected) in &cases {
        let out = berth(root.path(), &["pull", "-q", name]);
        assert!(!out.status.success(), "{name}: {}", describe(&out));
        let err = stderr(&out);
        assert_eq!(err.trim_end().lines().count(), 1, "{name}: {err}");
        assert!(err.contains(expected), "{name}: {err}");
    }
    // A layer whose bytes differ from its digest.
    let store_dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(store_dir.path()).unwrap();
    let manifest: Manifest = serde_json::from_slice(&{
        let d = busybox_image(&store);
        store.read(&d.digest).unwrap()
    })
    .unwrap();
    let _ = pushed;
    let layer = &manifest.layers[1];
    let data = registry.blob_data_path(&layer.digest);
    let mut bytes = std::fs::read(&data).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&data, bytes).unwrap();
    let name = format!("{}/bb/ok:1", registry.host);
    let out = berth(root.path(), &["pull", "-q", &name]);
    assert!(!out.status.success(), "{}", describe(&out));
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("digest mismatch") || err.contains("diff ID"),
        "{err}"
    );
    // Before any other command opens the store (which would sweep leftovers).
    assert!(
        half_made(root.path()).is_empty(),
        "{:?}",
        half_made(root.path())
    );
    assert_blobs_verified(root.path());
    assert_eq!(ok(root.path(), &["images", "-q"]), "");
}

/// Write `config.json` for a container whose root is `rootfs` and whose process is `args`.
fn bundle_for(rt: &Runtime, rootfs: &Path, args: &[&str]) -> tempfile::TempDir {
    let bundle = tempfile::tempdir().unwrap();
    let spec = rt.run(&["spec", "--bundle", bundle.path().to_str().unwrap()]);
    assert!(spec.status.success(), "{}", describe(&spec));
    let config_path = bundle.path().join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    config["root"]["path"] = rootfs.to_str().unwrap().into();
    config["root"]["readonly"] = false.into();
    config["process"]["terminal"] = false.into();
    config["process"]["args"] = serde_json::json!(args);
    std::fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();
    bundle
}

/// Removes a container's writable layer (unmounting it) on drop.
struct ContainerGuard<'a> {
    store: &'a berth_storage::ContainerStore,
    id: String,
}

impl Drop for ContainerGuard<'_> {
    fn drop(&mut self) {
        let _ = self.store.remove(&self.id);
    }
}

#[test]
fn container_layer_of_a_pulled_image_has_its_size_limit_and_keeps_the_image() {
    if !is_root() || !have("mkfs.ext4") {
        eprintln!("SKIPPED: needs root and mkfs.ext4 (e2fsprogs) for a size-limited layer");
        return;
    }
    let Some(registry) = TestRegistry::start() else {
        return;
    };
    push_test_image(&registry, "bb/limited:1");
    let root = tempfile::tempdir().unwrap();
    let name = format!("{}/bb/limited:1", registry.host);
    ok(root.path(), &["pull", "-q", &name]);

    // A container's writable layer over the image, limited to 64 MiB (--storage-opt size=64m).
    let inspect: serde_json::Value =
        serde_json::from_str(&ok(root.path(), &["image", "inspect", &name])).unwrap();
    let lowers: Vec<PathBuf> = inspect[0]["GraphDriver"]["Data"]["LowerDir"]
        .as_str()
        .unwrap()
        .split(':')
        .map(PathBuf::from)
        .collect();
    let store = berth_storage::ContainerStore::open(root.path().join("storage")).unwrap();
    let options = berth_storage::RootfsOptions::parse(&["size=64m"]).unwrap();
    let id = unique_id("limited");
    store.create(&id, &lowers, &options).unwrap();
    let _layer = ContainerGuard {
        store: &store,
        id: id.clone(),
    };
    let rootfs = store.mount(&id).unwrap();
    let rt = Runtime::berth();
    let script = "dd if=/dev/zero of=/big bs=1M count=100 2>&1; echo rc=$?";
    let bundle = bundle_for(&rt, &rootfs, &["/bin/sh", "-c", script]);
    let cid = unique_id("limited-run");
    let _guard = rt.guard(&cid);
    let run = rt
        .cmd()
        .args(["run", "--bundle"])
        .arg(bundle.path())
        .arg(&cid)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = stdout(&run);
    assert!(
        out.contains("No space left on device"),
        "{}",
        describe(&run)
    );
    assert!(!out.contains("rc=0"), "{out}");

    // The image is in use: rmi refuses, prune keeps it; rmi -f drops the record but the
    // container's layers stay until the container is gone.
    let rmi = berth(root.path(), &["rmi", &name]);
    assert!(!rmi.status.success());
    assert!(
        stderr(&rmi).contains(&format!("container {id} is using its referenced image")),
        "{}",
        describe(&rmi)
    );
    ok(root.path(), &["image", "prune", "-a", "-f"]);
    assert_ne!(ok(root.path(), &["images", "-q"]), "");
    ok(root.path(), &["rmi", "-f", &name]);
    assert_eq!(ok(root.path(), &["images", "-q"]), "");
    for lower in &lowers {
        assert!(
            lower.join("bin").exists() || lower.read_dir().is_ok(),
            "{lower:?} was collected"
        );
    }
    drop(_guard);
    store.remove(&id).unwrap();
    ok(root.path(), &["image", "prune", "-a", "-f"]);
    assert!(std::fs::read_dir(root.path().join("storage/layers"))
        .unwrap()
        .next()
        .is_none());
}

/// An image of three 8 MiB incompressible layers (slow enough to interrupt), pushed as `path`.
fn push_big_image(registry: &TestRegistry, path: &str) -> Digest {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for i in 0..3 {
        let data: Vec<u8> = (0..8 << 20)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        let name = format!("big{i}.bin");
        let tar = tar_of(&[Entry::File(&name, &data)]);
        diff_ids.push(Digest::of(&tar).to_string());
        // Stored (level 0) gzip: random data does not compress, and the test stays quick.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
        gz.write_all(&tar).unwrap();
        layers.push(put(&store, OCI_LAYER_GZIP, &gz.finish().unwrap()));
    }
    let config = serde_json::json!({
        "architecture": Platform::host().architecture,
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_owned()),
        config: put(&store, OCI_CONFIG, &serde_json::to_vec(&config).unwrap()),
        layers,
        annotations: Default::default(),
    };
    let manifest = put(
        &store,
        OCI_MANIFEST,
        &serde_json::to_vec(&manifest).unwrap(),
    );
    let reference = registry.reference(path);
    let client = berth_image::Client::for_reference(&reference, Default::default());
    berth_image::push(&client, &store, &reference, &manifest.digest, None).unwrap();
    manifest.digest
}

/// Bytes under `dir`, following nothing.
fn bytes_under(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        total += if meta.is_dir() {
            bytes_under(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

#[test]
fn a_pull_killed_midway_is_completed_by_the_next_and_listing_meanwhile_is_safe() {
    let Some(registry) = registry_as_root() else {
        return;
    };
    let pushed = push_big_image(&registry, "big/image:1");
    let name = format!("{}/big/image:1", registry.host);
    let root = tempfile::tempdir().unwrap();
    // Twice: once killed early (first bytes of a download), once later (several MiB in).
    for threshold in [1u64, 10 << 20] {
        let mut pull = Command::new(bin_dir().join("berth"))
            .arg("--root")
            .arg(root.path())
            .args(["pull", "-q", &name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let storage = root.path().join("storage");
        let started = wait_until(60.0, || {
            // Listing while the pull writes must neither fail nor disturb it.
            let listed = berth(root.path(), &["images", "-q"]);
            assert!(listed.status.success(), "{}", describe(&listed));
            bytes_under(&storage.join("blobs")) + bytes_under(&storage.join("tmp")) >= threshold
                || pull.try_wait().unwrap().is_some()
        });
        assert!(started, "the pull wrote nothing within 60 s");
        let interrupted = pull.try_wait().unwrap().is_none();
        assert!(
            interrupted,
            "the pull finished before it could be killed ({threshold} bytes)"
        );
        let _ = pull.kill();
        let _ = pull.wait();
        let listed = ok(root.path(), &["images", "-q"]);
        assert!(
            listed.is_empty(),
            "a killed pull recorded an image: {listed}"
        );
    }
    ok(root.path(), &["pull", "-q", &name]);
    assert_eq!(manifest_digest(root.path(), &name), pushed.to_string());
    assert_ne!(ok(root.path(), &["images", "-q"]), "");
    assert!(
        half_made(root.path()).is_empty(),
        "{:?}",
        half_made(root.path())
    );
    assert_blobs_verified(root.path());
    let inspect = ok(root.path(), &["image", "inspect", "-f", "{{.Size}}", &name]);
    assert_eq!(inspect.trim(), (3 * (8u64 << 20)).to_string());
}

/// `berth --root ROOT args...` with DOCKER_CONFIG set and `stdin` fed in.
fn berth_with(root: &Path, docker_config: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(bin_dir().join("berth"))
        .arg("--root")
        .arg(root)
        .args(args)
        .env("DOCKER_CONFIG", docker_config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Push the test image with credentials.
fn push_with_credentials(
    registry: &TestRegistry,
    path: &str,
    user: &str,
    password: &str,
) -> Digest {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    let manifest = busybox_image(&store);
    let reference = registry.reference(path);
    let options = berth_image::ClientOptions {
        credentials: Some(berth_image::Credentials::new(user, password)),
        ..Default::default()
    };
    let client = berth_image::Client::for_reference(&reference, options);
    berth_image::push(&client, &store, &reference, &manifest.digest, None).unwrap();
    manifest.digest
}

/// login with a wrong then the right password, pull, logout, pull again: against `registry`.
fn login_pull_logout(registry: &TestRegistry, user: &str, password: &str) {
    let pushed = push_with_credentials(registry, "private/app:1", user, password);
    let root = tempfile::tempdir().unwrap();
    let config = tempfile::tempdir().unwrap();
    let name = format!("{}/private/app:1", registry.host);
    let host = registry.host.as_str();

    let anonymous = berth_with(root.path(), config.path(), &["pull", "-q", &name], "");
    assert!(!anonymous.status.success(), "{}", describe(&anonymous));
    assert_eq!(
        stderr(&anonymous).trim_end().lines().count(),
        1,
        "{}",
        describe(&anonymous)
    );

    let wrong = berth_with(
        root.path(),
        config.path(),
        &["login", "-u", user, "--password-stdin", host],
        "nope\n",
    );
    assert!(!wrong.status.success(), "{}", describe(&wrong));
    let err = stderr(&wrong);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("authentication failed"), "{err}");
    assert!(
        !config.path().join("config.json").exists(),
        "wrong credentials were stored"
    );

    let login = berth_with(
        root.path(),
        config.path(),
        &["login", "-u", user, "--password-stdin", host],
        &format!("{password}\n"),
    );
    assert!(login.status.success(), "{}", describe(&login));
    assert_eq!(stdout(&login), "Login Succeeded\n");
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(config.path().join("config.json")).unwrap()).unwrap();
    assert!(stored["auths"][host]["auth"].is_string(), "{stored}");

    let pull = berth_with(root.path(), config.path(), &["pull", "-q", &name], "");
    assert!(pull.status.success(), "{}", describe(&pull));
    assert_eq!(manifest_digest(root.path(), &name), pushed.to_string());

    let logout = berth_with(root.path(), config.path(), &["logout", host], "");
    assert_eq!(
        stdout(&logout),
        format!("Removing login credentials for {host}\n")
    );
    let again = berth_with(root.path(), config.path(), &["logout", host], "");
    assert_eq!(stdout(&again), format!("Not logged in to {host}\n"));
    ok(root.path(), &["rmi", &name]);
    let anonymous = berth_with(root.path(), config.path(), &["pull", "-q", &name], "");
    assert!(!anonymous.status.success(), "{}", describe(&anonymous));
}

#[test]
fn login_then_pull_from_a_registry_with_basic_auth() {
    if !is_root() {
        eprintln!("SKIPPED: needs root (layer ownership)");
        return;
    }
    let Some(registry) = TestRegistry::start_with_user("alice", "s3cret") else {
        return;
    };
    login_pull_logout(&registry, "alice", "s3cret");
}

#[test]
fn login_then_pull_through_the_bearer_token_flow() {
    if !is_root() {
        eprintln!("SKIPPED: needs root (layer ownership)");
        return;
    }
    let Some(tokens) = support::token::TokenService::start("bob", "t0ken") else {
        return;
    };
    let Some(registry) = TestRegistry::start_with_token_service(&tokens) else {
        return;
    };
    login_pull_logout(&registry, "bob", "t0ken");
}
