//! Push and pull against a real Debian `docker-registry` on 127.0.0.1.

mod support;

use std::time::Duration;

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use berth_image::{
    pull, pull_with, push, BlobStore, Client, ClientOptions, Credentials, LayerEvent, Platform,
    PullOptions, PushOutcome, Reference,
};
use support::images::{build_image, build_image_of, build_index, noise};
use support::registry::TestRegistry;
use support::sink::{is_root, layer_store, layer_tmp, OrderSink, Recorder, StoreSink};

fn client(reference: &Reference, credentials: Option<Credentials>) -> Client {
    let options = ClientOptions {
        credentials,
        retries: 1,
        backoff: Duration::from_millis(20),
        ..ClientOptions::default()
    };
    Client::for_reference(reference, options)
}

fn amd64() -> Platform {
    Platform::new("linux", "amd64", None)
}

fn store() -> (tempfile::TempDir, BlobStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = BlobStore::open(dir.path()).expect("open store");
    (dir, store)
}

/// Files in the store's blob directory, sorted.
fn stored(dir: &tempfile::TempDir) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.path().join("blobs/sha256"))
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn push_then_pull_gives_identical_digests() {
    let Some(registry) = TestRegistry::start() else {
        return;
    };
    let (_src_dir, src) = store();
    let image = build_image(&src, &amd64(), 3);
    let reference = registry.reference("test/app:v1");
    let client = client(&reference, None);

    let report = push(&client, &src, &reference, &image.manifest.digest, None).expect("push");
    assert_eq!(report.blobs.len(), 4);
    assert!(
        report
            .blobs
            .iter()
            .all(|(_, outcome)| *outcome == PushOutcome::Uploaded),
        "{report:?}"
    );
    let again = push(&client, &src, &reference, &image.manifest.digest, None).expect("push again");
    assert!(
        again
            .blobs
            .iter()
            .all(|(_, outcome)| *outcome == PushOutcome::AlreadyExists),
        "{again:?}"
    );

    let (dst_dir, dst) = store();
    let pulled = pull(&client, &dst, &reference, &amd64()).expect("pull");
    assert_eq!(pulled.manifest_digest, image.manifest.digest);
    assert_eq!(pulled.config, image.config);
    assert_eq!(pulled.layers, image.layers);
    assert_eq!(pulled.index_digest, None);
    assert_eq!(
        pulled.reference.to_string(),
        format!("{}/test/app@{}", registry.host, image.manifest.digest)
    );
    let expected = std::iter::once(&image.manifest)
        .chain([&image.config])
        .chain(&image.layers);
    for blob in expected {
        assert_eq!(
            dst.read(&blob.digest).expect("pulled blob"),
            src.read(&blob.digest).expect("source blob")
        );
    }
    assert_eq!(stored(&dst_dir).len(), 5);

    let by_digest = registry.reference(&format!("test/app@{}", image.manifest.digest));
    let (_dir, fresh) = store();
    assert_eq!(
        pull(&client, &fresh, &by_digest, &amd64())
            .expect("pull by digest")
            .manifest_digest,
        image.manifest.digest
    );
}

#[test]
fn unknown_tag_or_repository_says_manifest_unknown() {
    let Some(registry) = TestRegistry::start() else {
        return;
    };
    let (dir, store) = store();
    for name in ["test/app:missing", "nobody/here:latest"] {
        let reference = registry.reference(name);
        let err = pull(&client(&reference, None), &store, &reference, &amd64())
            .expect_err(name)
            .to_string();
        assert!(
            err.contains("manifest unknown") && err.contains(name),
            "{name}: {err}"
        );
    }
    assert!(stored(&dir).is_empty());
}

#[test]
fn basic_auth_with_htpasswd() {
    let Some(registry) = TestRegistry::start_with_user("alice", "correct horse") else {
        return;
    };
    let (_src_dir, src) = store();
    let image = build_image(&src, &amd64(), 2);
    let reference = registry.reference("private/app:v1");
    let good = Some(Credentials::new("alice", "correct horse"));
    push(
        &client(&reference, good.clone()),
        &src,
        &reference,
        &image.manifest.digest,
        None,
    )
    .expect("push with login");

    let (_dir, dst) = store();
    let pulled =
        pull(&client(&reference, good), &dst, &reference, &amd64()).expect("pull with login");
    assert_eq!(pulled.manifest_digest, image.manifest.digest);

    let (wrong_dir, dst) = store();
    let wrong = Some(Credentials::new("alice", "battery staple"));
    let err = pull(&client(&reference, wrong), &dst, &reference, &amd64())
        .expect_err("wrong password")
        .to_string();
    assert!(
        err.contains("authentication failed") && err.contains("wrong username or password"),
        "{err}"
    );
    assert!(stored(&wrong_dir).is_empty());

    let err = pull(&client(&reference, None), &dst, &reference, &amd64())
        .expect_err("anonymous")
        .to_string();
    assert!(
        err.contains("authentication failed") && err.contains("no credentials"),
        "{err}"
    );
}

#[test]
fn index_picks_the_requested_platform() {
    let Some(registry) = TestRegistry::start() else {
        return;
    };
    let (_src_dir, src) = store();
    let arm64 = Platform::new("linux", "arm64", Some("v8"));
    let amd = build_image(&src, &amd64(), 1);
    let arm = build_image(&src, &arm64, 2);
    let index = build_index(&src, &[(&amd64(), &amd), (&arm64, &arm)]);
    let reference = registry.reference("test/multi:latest");
    let client = client(&reference, None);
    let report = push(&client, &src, &reference, &index.digest, None).expect("push index");
    assert_eq!(
        report.manifests,
        vec![
            amd.manifest.digest.clone(),
            arm.manifest.digest.clone(),
            index.digest.clone()
        ]
    );

    let (_dir, dst) = store();
    let pulled = pull(
        &client,
        &dst,
        &reference,
        &"linux/arm64".parse().expect("platform"),
    )
    .expect("pull arm64");
    assert_eq!(
        (pulled.manifest_digest, pulled.index_digest.clone()),
        (arm.manifest.digest.clone(), Some(index.digest.clone()))
    );
    assert_eq!(pulled.layers, arm.layers);
    assert!(dst.contains(&index.digest) && !dst.contains(&amd.config.digest));

    let pulled = pull(&client, &dst, &reference, &Platform::host()).expect("pull host platform");
    assert_eq!(
        pulled.manifest_digest,
        amd.manifest.digest,
        "host platform {}",
        Platform::host()
    );

    let err = pull(
        &client,
        &dst,
        &reference,
        &"linux/s390x".parse().expect("platform"),
    )
    .expect_err("s390x")
    .to_string();
    assert!(
        err.contains("no manifest for platform linux/s390x"),
        "{err}"
    );
    assert!(
        err.contains("available: linux/amd64, linux/arm64/v8"),
        "{err}"
    );
}

#[test]
fn manifest_fetched_by_digest_must_match_it() {
    let Some(registry) = TestRegistry::start() else {
        return;
    };
    let (_src_dir, src) = store();
    let image = build_image(&src, &amd64(), 1);
    let reference = registry.reference("test/tampered:v1");
    let client = client(&reference, None);
    push(&client, &src, &reference, &image.manifest.digest, None).expect("push");
    tamper(
        &registry.blob_data_path(&image.manifest.digest),
        "\"aaaa\"",
        "\"bbbb\"",
    );

    let (dir, dst) = store();
    let by_digest = registry.reference(&format!("test/tampered@{}", image.manifest.digest));
    let err = pull(&client, &dst, &by_digest, &amd64())
        .expect_err("tampered manifest")
        .to_string();
    assert!(
        err.contains("digest mismatch")
            && err.contains(&format!("expected {}", image.manifest.digest)),
        "{err}"
    );
    assert!(stored(&dir).is_empty(), "left behind: {:?}", stored(&dir));
}

#[test]
fn tampered_layer_is_a_digest_mismatch_and_leaves_nothing() {
    let Some(registry) = TestRegistry::start() else {
        return;
    };
    let (_src_dir, src) = store();
    let image = build_image(&src, &amd64(), 1);
    let reference = registry.reference("test/badlayer:v1");
    let client = client(&reference, None);
    push(&client, &src, &reference, &image.manifest.digest, None).expect("push");
    let layer = &image.layers[0];
    let path = registry.blob_data_path(&layer.digest);
    let mut data = std::fs::read(&path).expect("read layer");
    let last = data.len() - 1;
    data[last] ^= 0xff;
    std::fs::write(&path, data).expect("tamper layer");

    let (dir, dst) = store();
    let err = pull(&client, &dst, &reference, &amd64())
        .expect_err("tampered layer")
        .to_string();
    assert!(
        err.contains("digest mismatch") && err.contains(&format!("expected {}", layer.digest)),
        "{err}"
    );
    assert_eq!(
        stored(&dir),
        vec![image.config.digest.hex().to_owned()],
        "only the config may be stored"
    );
}

#[test]
fn push_mounts_blobs_from_another_repository() {
    let Some(registry) = TestRegistry::start() else {
        return;
    };
    let (_src_dir, src) = store();
    let image = build_image(&src, &amd64(), 2);
    let first = registry.reference("team/base:v1");
    let client = client(&first, None);
    push(&client, &src, &first, &image.manifest.digest, None).expect("push first");

    let uploads_before = registry.log().matches("PUT /v2/").count();
    let second = registry.reference("team/derived:v1");
    let report = push(
        &client,
        &src,
        &second,
        &image.manifest.digest,
        Some("team/base"),
    )
    .expect("push with mount");
    assert_eq!(report.blobs.len(), 3);
    assert!(
        report
            .blobs
            .iter()
            .all(|(_, outcome)| *outcome == PushOutcome::Mounted),
        "{report:?}"
    );
    let log = registry.log();
    let blob_puts = log.matches("PUT /v2/team/derived/blobs/").count();
    assert_eq!(blob_puts, 0, "blobs were uploaded, not mounted:\n{log}");
    assert!(
        log.matches("PUT /v2/").count() > uploads_before,
        "the manifest PUT is missing from the log"
    );

    let (_dir, dst) = store();
    let pulled = pull(&client, &dst, &second, &amd64()).expect("pull mounted image");
    assert_eq!(pulled.manifest_digest, image.manifest.digest);
}

fn tamper(path: &std::path::Path, from: &str, to: &str) {
    assert_eq!(from.len(), to.len(), "keep the size the registry recorded");
    let text = std::fs::read_to_string(path).expect("read blob");
    assert!(text.contains(from), "{from} not in {text}");
    std::fs::write(path, text.replace(from, to)).expect("write blob");
}

#[test]
fn bearer_token_flow_against_a_token_service() {
    let Some(tokens) = support::token::TokenService::start("alice", "pw") else {
        return;
    };
    let Some(registry) = TestRegistry::start_with_token_service(&tokens) else {
        return;
    };
    let (_src_dir, src) = store();
    let image = build_image(&src, &amd64(), 2);
    let reference = registry.reference("secure/app:v1");
    let client = client(&reference, Some(Credentials::new("alice", "pw")));
    push(&client, &src, &reference, &image.manifest.digest, None).expect("push with token");
    let (_dir, dst) = store();
    let pulled = pull(&client, &dst, &reference, &amd64()).expect("pull with token");
    assert_eq!(pulled.manifest_digest, image.manifest.digest);
    assert_eq!(
        tokens.token_requests(),
        2,
        "one token per scope (pull; pull,push), cached after"
    );

    let wrong = client_for(&reference, "alice", "nope");
    let (wrong_dir, dst) = store();
    let err = pull(&wrong, &dst, &reference, &amd64())
        .expect_err("wrong password")
        .to_string();
    assert!(
        err.contains("authentication failed") && err.contains("wrong username or password"),
        "{err}"
    );
    assert!(stored(&wrong_dir).is_empty());
}

fn client_for(reference: &Reference, user: &str, password: &str) -> Client {
    client(reference, Some(Credentials::new(user, password)))
}

fn files(list: &[(&str, &[u8])]) -> Vec<(String, Vec<u8>)> {
    list.iter()
        .map(|(name, data)| (name.to_string(), data.to_vec()))
        .collect()
}

/// A base layer, a layer that whites out a base file, and a 1 MiB layer (several progress steps).
fn three_layers() -> Vec<Vec<(String, Vec<u8>)>> {
    vec![
        files(&[
            ("etc/os-release", b"base"),
            ("dir/gone", b"x"),
            ("dir/kept", b"y"),
        ]),
        files(&[("dir/.wh.gone", b""), ("dir/new", b"new")]),
        files(&[("big/noise.bin", &noise(1 << 20))]),
    ]
}

/// The unpacked directories of the pulled stack, base layer first.
fn diff_dirs(sink: &StoreSink, top: &berth_image::Digest) -> Vec<PathBuf> {
    let mut dirs = sink.0.lower_dirs(&top.to_string()).expect("lower dirs");
    dirs.reverse();
    dirs
}

fn check_three_layers(dirs: &[PathBuf]) {
    assert_eq!(dirs.len(), 3);
    let read = |dir: &Path, name: &str| std::fs::read(dir.join(name)).expect(name);
    assert_eq!(read(&dirs[0], "etc/os-release"), b"base");
    assert_eq!(read(&dirs[0], "dir/gone"), b"x");
    assert_eq!(read(&dirs[1], "dir/new"), b"new");
    let whiteout = std::fs::symlink_metadata(dirs[1].join("dir/gone")).expect("whiteout");
    assert!(
        whiteout.file_type().is_char_device() && whiteout.rdev() == 0,
        "dir/.wh.gone became a 0/0 character device"
    );
    assert!(!dirs[1].join("dir/.wh.gone").exists());
    assert_eq!(read(&dirs[2], "big/noise.bin"), noise(1 << 20));
}

fn blob_gets(registry: &TestRegistry, repository: &str) -> usize {
    registry
        .log()
        .matches(&format!("GET /v2/{repository}/blobs/"))
        .count()
}

#[test]
fn pull_unpacks_layers_while_they_download() {
    if !is_root("pull_unpacks_layers_while_they_download") {
        return;
    }
    let Some(registry) = TestRegistry::start() else {
        return;
    };
    let (_src_dir, src) = store();
    let image = build_image_of(&src, &amd64(), &three_layers(), None);
    let reference = registry.reference("test/unpack:v1");
    let client = client(&reference, None);
    push(&client, &src, &reference, &image.manifest.digest, None).expect("push");

    let (dir, dst) = store();
    let (_layers_dir, sink) = layer_store();
    let progress = Recorder::default();
    let options = PullOptions {
        sink: Some(&sink),
        progress: Some(&progress),
    };
    let pulled = pull_with(&client, &dst, &reference, &amd64(), options).expect("pull");
    assert_eq!(pulled.diff_ids, image.diff_ids);
    let top = pulled.chain_ids.last().expect("top layer");
    check_three_layers(&diff_dirs(&sink, top));
    assert_eq!(stored(&dir).len(), 5, "manifest, config, 3 layers");
    assert!(layer_tmp(&sink).is_empty(), "{:?}", layer_tmp(&sink));
    for index in 0..3 {
        assert_eq!(
            progress.kinds(index),
            ["downloading", "verifying", "complete"],
            "layer {index}"
        );
    }
    let big: Vec<_> = progress
        .of(2)
        .into_iter()
        .filter_map(|e| match e {
            LayerEvent::Downloading { done, total } => Some((done, total)),
            _ => None,
        })
        .collect();
    let total = image.layers[2].size;
    assert!(big.len() >= 3, "{big:?}");
    assert_eq!(big.last(), Some(&(total, total)));
    assert!(big.len() <= 2 + 100, "throttled: {} events", big.len());

    // Everything is there: nothing is downloaded again.
    let gets = blob_gets(&registry, "test/unpack");
    let again = Recorder::default();
    let options = PullOptions {
        sink: Some(&sink),
        progress: Some(&again),
    };
    pull_with(&client, &dst, &reference, &amd64(), options).expect("pull again");
    for index in 0..3 {
        assert_eq!(again.kinds(index), ["exists"], "layer {index}");
    }
    assert_eq!(blob_gets(&registry, "test/unpack"), gets);
}

#[test]
fn a_wrong_diff_id_leaves_no_layer_and_no_blob() {
    if !is_root("a_wrong_diff_id_leaves_no_layer_and_no_blob") {
        return;
    }
    let Some(registry) = TestRegistry::start() else {
        return;
    };
    let (_src_dir, src) = store();
    let layers = vec![files(&[("a/file", b"data")])];
    let image = build_image_of(&src, &amd64(), &layers, Some(0));
    let reference = registry.reference("test/baddiff:v1");
    let client = client(&reference, None);
    push(&client, &src, &reference, &image.manifest.digest, None).expect("push");

    let (dir, dst) = store();
    let (_layers_dir, sink) = layer_store();
    let progress = Recorder::default();
    let options = PullOptions {
        sink: Some(&sink),
        progress: Some(&progress),
    };
    let err = pull_with(&client, &dst, &reference, &amd64(), options)
        .expect_err("wrong diffID")
        .to_string();
    assert!(
        err.contains(&format!("layer {}", image.layers[0].digest))
            && err.contains(&format!(
                "layer {}: diff ID mismatch: got sha256:",
                image.diff_ids[0]
            )),
        "{err}"
    );
    assert!(!err.contains('\n'), "one line: {err}");
    assert!(sink.0.list().expect("list").is_empty());
    assert!(layer_tmp(&sink).is_empty(), "{:?}", layer_tmp(&sink));
    assert_eq!(
        stored(&dir),
        vec![image.config.digest.hex().to_owned()],
        "only the config may be stored"
    );
    assert_eq!(progress.kinds(0).last(), Some(&"failed"));
}

#[test]
fn a_tampered_layer_is_a_digest_mismatch_while_unpacking_too() {
    if !is_root("a_tampered_layer_is_a_digest_mismatch_while_unpacking_too") {
        return;
    }
    let Some(registry) = TestRegistry::start() else {
        return;
    };
    let (_src_dir, src) = store();
    let layers = vec![files(&[("a/file", &noise(100_000))])];
    let image = build_image_of(&src, &amd64(), &layers, None);
    let reference = registry.reference("test/tamperunpack:v1");
    let client = client(&reference, None);
    push(&client, &src, &reference, &image.manifest.digest, None).expect("push");
    let layer = &image.layers[0];
    let path = registry.blob_data_path(&layer.digest);
    let mut data = std::fs::read(&path).expect("read layer");
    data[5000] ^= 0xff; // inside the deflate stream: the gzip decoder may fail first
    std::fs::write(&path, data).expect("tamper layer");

    let (dir, dst) = store();
    let (_layers_dir, sink) = layer_store();
    let options = PullOptions {
        sink: Some(&sink),
        progress: None,
    };
    let err = pull_with(&client, &dst, &reference, &amd64(), options)
        .expect_err("tampered layer")
        .to_string();
    assert!(
        err.contains("digest mismatch") && err.contains(&format!("expected {}", layer.digest)),
        "{err}"
    );
    assert!(sink.0.list().expect("list").is_empty());
    assert!(layer_tmp(&sink).is_empty());
    assert_eq!(stored(&dir), vec![image.config.digest.hex().to_owned()]);
}

#[test]
fn a_pull_completes_a_partial_store() {
    if !is_root("a_pull_completes_a_partial_store") {
        return;
    }
    let Some(registry) = TestRegistry::start() else {
        return;
    };
    let (_src_dir, src) = store();
    let image = build_image_of(&src, &amd64(), &three_layers(), None);
    let reference = registry.reference("test/partial:v1");
    let client = client(&reference, None);
    push(&client, &src, &reference, &image.manifest.digest, None).expect("push");
    let (dir, dst) = store();
    let (layers_dir, sink) = layer_store();
    let options = PullOptions {
        sink: Some(&sink),
        progress: None,
    };
    let pulled = pull_with(&client, &dst, &reference, &amd64(), options).expect("pull");
    let chain = &pulled.chain_ids;

    // Layer 0 lost entirely, layer 1 its blob (a crash between the two), layer 2 its unpacked
    // directory; plus what a killed pull leaves: a blob tmp file and an incomplete layer.
    sink.0
        .remove(&chain[0].to_string())
        .expect("remove layer 0");
    std::fs::remove_file(dst.path(&image.layers[0].digest)).expect("remove blob 0");
    std::fs::remove_file(dst.path(&image.layers[1].digest)).expect("remove blob 1");
    sink.0
        .remove(&chain[2].to_string())
        .expect("remove layer 2");
    std::fs::remove_file(dst.path(&image.manifest.digest)).expect("remove manifest");
    std::fs::write(dir.path().join("blobs/sha256/.tmp-killed"), b"half").expect("blob tmp");
    std::fs::create_dir(sink.0.root().join("tmp/abc-writing-1-1.incomplete")).expect("tmp");
    drop(sink);
    let dst = BlobStore::open(dir.path()).expect("reopen blobs");
    let sink = StoreSink(
        berth_storage::LayerStore::open(layers_dir.path().join("layers")).expect("reopen layers"),
    );
    assert!(layer_tmp(&sink).is_empty());

    let progress = Recorder::default();
    let options = PullOptions {
        sink: Some(&sink),
        progress: Some(&progress),
    };
    let pulled = pull_with(&client, &dst, &reference, &amd64(), options).expect("re-pull");
    assert_eq!(progress.kinds(0), ["downloading", "verifying", "complete"]);
    assert_eq!(progress.kinds(1), ["downloading", "complete"]);
    assert_eq!(progress.kinds(2), ["extracting", "verifying", "complete"]);
    check_three_layers(&diff_dirs(&sink, pulled.chain_ids.last().expect("top")));
    assert_eq!(stored(&dir).len(), 5, "{:?}", stored(&dir));
    assert!(layer_tmp(&sink).is_empty());
}

#[test]
fn layer_count_must_match_the_config() {
    let Some(registry) = TestRegistry::start() else {
        return;
    };
    let (_src_dir, src) = store();
    let image = build_image(&src, &amd64(), 2);
    // A manifest with one more layer than the config has diffIDs.
    let mut manifest: berth_image::Manifest =
        serde_json::from_slice(&src.read(&image.manifest.digest).expect("manifest"))
            .expect("parse");
    manifest.layers.push(image.layers[0].clone());
    let bytes = serde_json::to_vec(&manifest).expect("json");
    let digest = src.put_bytes(&bytes).expect("store manifest");
    let reference = registry.reference("test/count:v1");
    let client = client(&reference, None);
    push(&client, &src, &reference, &digest, None).expect("push");
    let (_dir, dst) = store();
    let err = pull(&client, &dst, &reference, &amd64())
        .expect_err("count mismatch")
        .to_string();
    assert!(
        err.contains("the manifest has 3 layers but rootfs.diff_ids has 2"),
        "{err}"
    );
}

#[test]
fn layers_unpack_in_parallel_and_commit_in_order() {
    let Some(registry) = TestRegistry::start() else {
        return;
    };
    let (_src_dir, src) = store();
    let image = build_image(&src, &amd64(), 3);
    let reference = registry.reference("test/order:v1");
    let client = client(&reference, None);
    push(&client, &src, &reference, &image.manifest.digest, None).expect("push");
    let (_dir, dst) = store();
    let sink = OrderSink::default();
    let options = PullOptions {
        sink: Some(&sink),
        progress: None,
    };
    pull_with(&client, &dst, &reference, &amd64(), options).expect("pull");
    let log = sink.log.lock().expect("lock").clone();
    let position = |what: &str| log.iter().position(|l| l == what).expect(what);
    assert!(
        position("unpacked 2") < position("unpacked 0"),
        "layer 2 did not wait for the slow layer 0: {log:?}"
    );
    let commits: Vec<&String> = log.iter().filter(|l| l.starts_with("committed")).collect();
    assert_eq!(
        commits,
        ["committed 0", "committed 1", "committed 2"],
        "{log:?}"
    );
}
