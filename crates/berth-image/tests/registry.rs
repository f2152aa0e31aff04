//! Push and pull against a real Debian `docker-registry` on 127.0.0.1.

mod support;

use std::time::Duration;

use berth_image::{
    pull, push, BlobStore, Client, ClientOptions, Credentials, Platform, PushOutcome, Reference,
};
use support::images::{build_image, build_index};
use support::registry::TestRegistry;

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
