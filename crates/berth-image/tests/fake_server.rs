//! Failure modes and the bearer-token flow, against a tiny fake HTTP server.

mod support;

use std::time::Duration;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use berth_image::manifest::{Descriptor, OCI_LAYER_GZIP, OCI_MANIFEST};
use berth_image::{
    pull_with, BlobStore, Client, ClientOptions, Credentials, Digest, LayerEvent, Platform,
    PullOptions, Reference,
};
use support::fake::{response, FakeServer, Seen};
use support::images::{build_image_of, noise};
use support::sink::{is_root, layer_store, layer_tmp, Recorder};

fn client(host: &str, credentials: Option<Credentials>) -> Client {
    let options = ClientOptions {
        credentials,
        retries: 2,
        backoff: Duration::from_millis(10),
        ..ClientOptions::default()
    };
    Client::new(host, host, options)
}

fn blob_files(dir: &tempfile::TempDir) -> usize {
    std::fs::read_dir(dir.path().join("blobs/sha256"))
        .expect("read_dir")
        .count()
}

const BLOB: &[u8] = b"the whole layer, all of it";

#[test]
fn truncated_download_is_retried_then_reported() {
    let server = FakeServer::start(Box::new(|_: &Seen, _| {
        let mut out = response("200 OK", &[], BLOB);
        out.truncate(out.len() - 10);
        out
    }));
    let dir = tempfile::tempdir().expect("tempdir");
    let store = BlobStore::open(dir.path()).expect("store");
    let blob = Descriptor::new(OCI_LAYER_GZIP, Digest::of(BLOB), BLOB.len() as u64);
    let err = client(&server.host, None)
        .fetch_blob("x/y", &blob, &store)
        .expect_err("truncated")
        .to_string();
    assert!(
        err.contains(&format!(
            "truncated download: got {} of {} bytes",
            BLOB.len() - 10,
            BLOB.len()
        )),
        "{err}"
    );
    assert_eq!(server.requests().len(), 3, "one try and two retries");
    assert_eq!(blob_files(&dir), 0);
}

#[test]
fn server_errors_and_rate_limits_are_retried() {
    let server = FakeServer::start(Box::new(|_: &Seen, index| match index {
        0 => response("503 Service Unavailable", &[], b""),
        1 => response("429 Too Many Requests", &[], b""),
        _ => response("200 OK", &[], BLOB),
    }));
    let dir = tempfile::tempdir().expect("tempdir");
    let store = BlobStore::open(dir.path()).expect("store");
    let blob = Descriptor::new(OCI_LAYER_GZIP, Digest::of(BLOB), BLOB.len() as u64);
    assert_eq!(
        client(&server.host, None)
            .fetch_blob("x/y", &blob, &store)
            .expect("retried"),
        BLOB.len() as u64
    );
    assert_eq!(store.read(&blob.digest).expect("stored"), BLOB);
}

#[test]
fn client_errors_are_not_retried() {
    let server = FakeServer::start(Box::new(|_: &Seen, _| {
        response(
            "404 Not Found",
            &[],
            br#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#,
        )
    }));
    let dir = tempfile::tempdir().expect("tempdir");
    let store = BlobStore::open(dir.path()).expect("store");
    let blob = Descriptor::new(OCI_LAYER_GZIP, Digest::of(BLOB), BLOB.len() as u64);
    let err = client(&server.host, None)
        .fetch_blob("x/y", &blob, &store)
        .expect_err("404")
        .to_string();
    assert!(
        err.contains("blob unknown") && err.contains(&blob.digest.to_string()),
        "{err}"
    );
    assert_eq!(server.requests().len(), 1);
}

/// A registry that wants a bearer token from its own `/token` endpoint, which
/// wants basic credentials alice:pw.
fn bearer_registry() -> FakeServer {
    let realm = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let realm_for_handler = std::sync::Arc::clone(&realm);
    let server = FakeServer::start(Box::new(move |seen: &Seen, _| {
        let realm = realm_for_handler.get().cloned().unwrap_or_default();
        if seen.target.starts_with("/token?") {
            let basic = Credentials::new("alice", "pw").basic_header();
            if seen.authorization.as_deref() != Some(basic.as_str()) {
                return response("401 Unauthorized", &[], b"");
            }
            let token = if seen.target.contains("scope=repository%3Ax%2Fy%3Apull") {
                "pull-token"
            } else {
                "other"
            };
            return response(
                "200 OK",
                &[],
                format!(r#"{{"token":"{token}"}}"#).as_bytes(),
            );
        }
        if seen.authorization.as_deref() == Some("Bearer pull-token") {
            return response(
                "200 OK",
                &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
                b"{}",
            );
        }
        let challenge =
            format!(r#"Bearer realm="{realm}",service="fake",scope="repository:x/y:pull""#);
        response("401 Unauthorized", &[("WWW-Authenticate", &challenge)], b"")
    }));
    realm
        .set(format!("http://{}/token", server.host))
        .expect("realm");
    server
}

#[test]
fn bearer_token_flow_caches_the_token_per_scope() {
    let server = bearer_registry();
    let client = client(&server.host, Some(Credentials::new("alice", "pw")));
    for _ in 0..2 {
        let manifest = client
            .get_manifest("x/y", "latest")
            .expect("manifest with token");
        assert_eq!(manifest.bytes, b"{}");
    }
    let token_requests = server
        .requests()
        .iter()
        .filter(|s| s.target.starts_with("/token?"))
        .count();
    assert_eq!(
        token_requests,
        1,
        "the token was not cached: {:?}",
        server.requests()
    );
    let token_request = server
        .requests()
        .into_iter()
        .find(|s| s.target.starts_with("/token?"))
        .expect("token request");
    assert!(
        token_request.target.contains("service=fake"),
        "{}",
        token_request.target
    );
}

#[test]
fn bearer_token_with_wrong_password_is_a_clear_error() {
    let server = bearer_registry();
    let client = client(&server.host, Some(Credentials::new("alice", "nope")));
    let err = client
        .get_manifest("x/y", "latest")
        .expect_err("wrong password")
        .to_string();
    assert!(
        err.contains("authentication failed") && err.contains("wrong username or password"),
        "{err}"
    );
}

/// Serves `image` from `src` as `x/y:latest`. With `truncate_first`, counts the GETs of the
/// first layer and breaks the first one off half-way.
fn serve_image(
    src: &BlobStore,
    image: &support::images::BuiltImage,
    truncate_first: Option<Arc<AtomicUsize>>,
) -> FakeServer {
    let manifest = src.read(&image.manifest.digest).expect("manifest");
    let config = src.read(&image.config.digest).expect("config");
    let layer = src.read(&image.layers[0].digest).expect("layer");
    let (config_hex, layer_hex) = (
        image.config.digest.hex().to_owned(),
        image.layers[0].digest.hex().to_owned(),
    );
    FakeServer::start(Box::new(move |seen: &Seen, _| {
        if seen.target.ends_with("/manifests/latest") {
            return response("200 OK", &[("Content-Type", OCI_MANIFEST)], &manifest);
        }
        if seen.target.ends_with(&config_hex) {
            return response("200 OK", &[], &config);
        }
        if seen.target.ends_with(&layer_hex) {
            let mut out = response("200 OK", &[], &layer);
            if let Some(gets) = &truncate_first {
                if gets.fetch_add(1, Ordering::SeqCst) == 0 {
                    out.truncate(out.len() - layer.len() / 2);
                }
            }
            return out;
        }
        response("404 Not Found", &[], b"")
    }))
}

/// The layer's first download breaks off half-way through the unpack; the retry unpacks it
/// again from scratch, and nothing of the first attempt is left.
#[test]
fn truncated_layer_is_unpacked_again_from_scratch() {
    if !is_root("truncated_layer_is_unpacked_again_from_scratch") {
        return;
    }
    let src_dir = tempfile::tempdir().expect("tempdir");
    let src = BlobStore::open(src_dir.path()).expect("store");
    let platform = Platform::new("linux", "amd64", None);
    let data = noise(600_000);
    let layers = vec![vec![("big/noise.bin".to_owned(), data.clone())]];
    let image = build_image_of(&src, &platform, &layers, None);
    let layer = src.read(&image.layers[0].digest).expect("layer");
    let layer_gets = Arc::new(AtomicUsize::new(0));
    let server = serve_image(&src, &image, Some(Arc::clone(&layer_gets)));
    let reference: Reference = format!("{}/x/y:latest", server.host)
        .parse()
        .expect("reference");
    let dst_dir = tempfile::tempdir().expect("tempdir");
    let dst = BlobStore::open(dst_dir.path()).expect("store");
    let (_layers_dir, sink) = layer_store();
    let progress = Recorder::default();
    let options = PullOptions {
        sink: Some(&sink),
        progress: Some(&progress),
    };
    let pulled = pull_with(
        &client(&server.host, None),
        &dst,
        &reference,
        &platform,
        options,
    )
    .expect("pull after a retry");
    assert_eq!(layer_gets.load(Ordering::SeqCst), 2, "one retry");
    let top = pulled.chain_ids[0].to_string();
    let diff = sink.0.diff_dir(&top).expect("diff dir");
    assert_eq!(
        std::fs::read(diff.join("big/noise.bin")).expect("file"),
        data
    );
    assert!(layer_tmp(&sink).is_empty(), "{:?}", layer_tmp(&sink));
    assert_eq!(dst.read(&image.layers[0].digest).expect("blob"), layer);
    let downloaded: Vec<u64> = progress
        .of(0)
        .into_iter()
        .filter_map(|e| match e {
            LayerEvent::Downloading { done, .. } => Some(done),
            _ => None,
        })
        .collect();
    assert!(
        downloaded.windows(2).any(|w| w[1] < w[0]),
        "the retry starts again from 0: {downloaded:?}"
    );
    assert_eq!(progress.kinds(0).last(), Some(&"complete"));
}

/// A tmpfs of `size` mounted on a temporary directory; unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = std::ffi::CString::new(format!("size={size}")).expect("mount data");
        match rustix::mount::mount(
            "berth-test",
            dir.path(),
            "tmpfs",
            rustix::mount::MountFlags::empty(),
            data.as_c_str(),
        ) {
            Ok(()) => Some(SmallDisk { dir }),
            Err(e) => {
                eprintln!("SKIPPED: cannot mount a tmpfs: {e}");
                None
            }
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(self.dir.path(), rustix::mount::UnmountFlags::DETACH);
    }
}

/// A full disk gives one line naming the layer, and no layer or blob is committed.
#[test]
fn a_full_disk_is_one_clear_line_and_commits_nothing() {
    if !is_root("a_full_disk_is_one_clear_line_and_commits_nothing") {
        return;
    }
    let src_dir = tempfile::tempdir().expect("tempdir");
    let src = BlobStore::open(src_dir.path()).expect("store");
    let platform = Platform::new("linux", "amd64", None);
    let layers = vec![vec![("big/noise.bin".to_owned(), noise(3 << 20))]];
    let image = build_image_of(&src, &platform, &layers, None);
    let server = serve_image(&src, &image, None);
    let reference: Reference = format!("{}/x/y:latest", server.host)
        .parse()
        .expect("reference");
    let Some(disk) = SmallDisk::mount("4m") else {
        return;
    };
    let dst = BlobStore::open(disk.dir.path()).expect("store");
    let sink = support::sink::StoreSink(
        berth_storage::LayerStore::open(disk.dir.path().join("layers")).expect("layer store"),
    );
    let options = PullOptions {
        sink: Some(&sink),
        progress: None,
    };
    let err = pull_with(
        &client(&server.host, None),
        &dst,
        &reference,
        &platform,
        options,
    )
    .expect_err("disk full")
    .to_string();
    assert!(
        err.contains("No space left on device")
            && (err.contains(&image.layers[0].digest.to_string())
                || err.contains(&image.diff_ids[0].to_string())),
        "{err}"
    );
    assert!(!err.contains('\n'), "one line: {err}");
    assert!(sink.0.list().expect("list").is_empty());
    assert!(layer_tmp(&sink).is_empty(), "{:?}", layer_tmp(&sink));
    assert!(!dst.contains(&image.layers[0].digest));
    drop(sink);
}
