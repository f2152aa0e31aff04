//! `berth import`, `save` and `load` end to end: the built binary against a temporary
//! storage root, with podman as the peer that must read our archives and write ones we read.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use sha2::{Digest as _, Sha256};

const BERTH: &str = env!("CARGO_BIN_EXE_berth");
const PODMAN: &str = "/usr/bin/podman";

/// A storage root for one test.
struct Root {
    dir: tempfile::TempDir,
}

impl Root {
    fn new() -> Root {
        Root {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Run `berth --root ROOT ARGS` with `stdin`.
    fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut child = Command::new(BERTH)
            .arg("--root")
            .arg(self.path())
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn berth");
        if let Some(data) = stdin {
            let mut pipe = child.stdin.take().expect("stdin");
            pipe.write_all(data).expect("write stdin");
        }
        child.wait_with_output().expect("wait berth")
    }

    /// Run and require success; returns stdout.
    fn ok(&self, args: &[&str], stdin: Option<&[u8]>) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "berth {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Run and require failure with exactly one line on stderr; returns it.
    fn fails(&self, args: &[&str], stdin: Option<&[u8]>) -> String {
        let out = self.run(args, stdin);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "berth {args:?} succeeded");
        assert_eq!(stderr.lines().count(), 1, "not one line: {stderr:?}");
        stderr
    }

    /// `images --no-trunc` as `REPOSITORY:TAG ID` lines, sorted.
    fn images(&self) -> Vec<String> {
        let out = self.ok(
            &[
                "images",
                "--no-trunc",
                "--format",
                "{{.Repository}}:{{.Tag}} {{.ID}}",
            ],
            None,
        );
        let mut lines: Vec<String> = out.lines().map(str::to_owned).collect();
        lines.sort();
        lines
    }

    /// Every blob, layer and link name in the storage, and anything left in tmp/.
    fn storage(&self) -> BTreeSet<String> {
        let storage = self.path().join("storage");
        let mut names = BTreeSet::new();
        for dir in ["blobs/sha256", "layers", "l", "tmp"] {
            let Ok(entries) = std::fs::read_dir(storage.join(dir)) else {
                continue;
            };
            for entry in entries {
                let name = entry.expect("entry").file_name();
                names.insert(format!("{dir}/{}", name.to_string_lossy()));
            }
        }
        names
    }
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

fn hex_of(digest: &str) -> &str {
    digest.trim_start_matches("sha256:")
}

/// A small root filesystem as a tar: directories, a file, an executable, a symlink, a hard link.
fn rootfs_tar() -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, mode: u32, data: &[u8], link: Option<&str>| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(data.len() as u64);
        header.set_mtime(1_700_000_000);
        header.set_uid(0);
        header.set_gid(0);
        match link {
            Some(target) => builder
                .append_link(&mut header, path, target)
                .expect("append link"),
            None => builder
                .append_data(&mut header, path, data)
                .expect("append"),
        }
    };
    add("bin/", tar::EntryType::Directory, 0o755, b"", None);
    add("etc/", tar::EntryType::Directory, 0o755, b"", None);
    add(
        "bin/hello",
        tar::EntryType::Regular,
        0o755,
        b"#!/bin/sh\necho hello\n",
        None,
    );
    add(
        "etc/os-release",
        tar::EntryType::Regular,
        0o644,
        b"NAME=berth-test\n",
        None,
    );
    add("bin/hi", tar::EntryType::Symlink, 0o777, b"", Some("hello"));
    add(
        "etc/os-release.link",
        tar::EntryType::Link,
        0o644,
        b"",
        Some("etc/os-release"),
    );
    builder.into_inner().expect("finish tar")
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).expect("gzip");
    encoder.finish().expect("gzip finish")
}

/// A tar of `entries` (path, bytes), in order.
fn tar_of(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        builder
            .append_data(&mut header, path, data.as_slice())
            .expect("append");
    }
    builder.into_inner().expect("finish tar")
}

/// The members of a tar archive (regular files only), in order.
fn members(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut archive = tar::Archive::new(archive);
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().expect("path").to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("read member");
        out.push((path, data));
    }
    out
}

/// A docker-archive of one image with `layers` (uncompressed tars) and a config listing
/// `diff_ids`; `omit` leaves the layer blobs out.
fn docker_archive(layers: &[Vec<u8>], diff_ids: &[String], omit: bool) -> Vec<u8> {
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = serde_json::to_vec(&config).expect("config json");
    let config_digest = sha256(&config);
    let mut entries = vec![(format!("blobs/sha256/{}", hex_of(&config_digest)), config)];
    let mut paths = Vec::new();
    for layer in layers {
        let path = format!("blobs/sha256/{}", hex_of(&sha256(layer)));
        if !omit {
            entries.push((path.clone(), layer.clone()));
        }
        paths.push(path);
    }
    let manifest = serde_json::json!([{
        "Config": format!("blobs/sha256/{}", hex_of(&config_digest)),
        "RepoTags": ["hostile:latest"],
        "Layers": paths,
    }]);
    entries.push((
        "manifest.json".into(),
        serde_json::to_vec(&manifest).expect("manifest json"),
    ));
    tar_of(&entries)
}

/// A layer whose one entry is `../escape`: the tar crate refuses to write that name, so it is
/// patched into the header bytes.
fn escaping_layer() -> Vec<u8> {
    let mut header = tar::Header::new_ustar();
    header.set_path("xxxxxxxxx").expect("path");
    header.set_size(4);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.as_mut_bytes()[..9].copy_from_slice(b"../escape");
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, &b"evil"[..]).expect("append");
    builder.into_inner().expect("finish")
}

fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, data).expect("write file");
    path
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

#[test]
fn import_save_rmi_load_round_trip() {
    let root = Root::new();
    let work = tempfile::tempdir().expect("tempdir");
    let tar = rootfs_tar();
    let plain = write(work.path(), "rootfs.tar", &tar);
    let id = root.ok(
        &["import", "-m", "first", path_str(&plain), "test/busybox:1"],
        None,
    );
    let id = id.trim().to_owned();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id:?}");
    let gz_id = root.ok(&["import", "-", "gz"], Some(&gzip(&tar)));
    let gz_id = gz_id.trim().to_owned();
    let before = root.images();
    assert_eq!(
        before,
        [format!("gz:latest {gz_id}"), format!("test/busybox:1 {id}")]
    );
    // The layer is the same tar whatever the compression: one layer, one layer blob.
    let storage = root.storage();
    assert!(storage.contains(&format!("blobs/sha256/{}", hex_of(&sha256(&tar)))));
    assert_eq!(
        storage.iter().filter(|n| n.starts_with("layers/")).count(),
        1
    );

    let docker = work.path().join("docker.tar");
    let oci = work.path().join("oci.tar");
    root.ok(
        &["save", "-o", path_str(&docker), "test/busybox:1", "gz"],
        None,
    );
    root.ok(
        &[
            "save",
            "--format",
            "oci-archive",
            "-o",
            path_str(&oci),
            "test/busybox:1",
            "gz",
        ],
        None,
    );
    // Deterministic, and the same on STDOUT.
    let streamed = root.run(&["save", "test/busybox:1", "gz"], None);
    assert!(streamed.status.success());
    assert_eq!(
        streamed.stdout,
        std::fs::read(&docker).expect("read docker.tar")
    );
    let names: Vec<String> = members(&std::fs::read(&docker).expect("read"))
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| !p.starts_with("blobs/"))
        .collect();
    assert_eq!(
        names,
        ["index.json", "manifest.json", "oci-layout", "repositories"]
    );

    for (archive, gzipped) in [(&docker, false), (&oci, false), (&docker, true)] {
        root.ok(&["rmi", "test/busybox:1", "gz"], None);
        assert!(root.storage().is_empty(), "left: {:?}", root.storage());
        assert!(root.images().is_empty());
        let out = if gzipped {
            let data = gzip(&std::fs::read(archive).expect("read archive"));
            root.ok(&["load"], Some(&data))
        } else {
            root.ok(&["load", "-i", path_str(archive)], None)
        };
        assert_eq!(
            out,
            "Loaded image: test/busybox:1\nLoaded image: gz:latest\n"
        );
        assert_eq!(root.images(), before, "after loading {}", archive.display());
    }
    assert_eq!(root.ok(&["load", "-q", "-i", path_str(&oci)], None), "");
}

#[test]
fn untagged_images_save_and_load_by_id() {
    let root = Root::new();
    let work = tempfile::tempdir().expect("tempdir");
    let id = root.ok(&["import", "-"], Some(&rootfs_tar()));
    let id = id.trim();
    let archive = work.path().join("by-id.tar");
    root.ok(&["save", "-o", path_str(&archive), &id[7..19]], None);
    root.ok(&["rmi", id], None);
    let out = root.ok(&["load", "-i", path_str(&archive)], None);
    assert_eq!(out, format!("Loaded image ID: {id}\n"));
    assert_eq!(root.images(), [format!("<none>:<none> {id}")]);
}

#[test]
fn bad_input_fails_with_one_line_and_stores_nothing() {
    let root = Root::new();
    let work = tempfile::tempdir().expect("tempdir");
    // One image stays; another is saved and removed, its archive is the one tampered with.
    root.ok(&["import", "-", "kept"], Some(&rootfs_tar()));
    let mut other = rootfs_tar();
    other.truncate(other.len() - 1024);
    let mut extra = tar_of(&[("extra".into(), b"more".to_vec())]);
    other.append(&mut extra);
    root.ok(&["import", "-", "gone"], Some(&other));
    let archive = work.path().join("gone.tar");
    root.ok(&["save", "-o", path_str(&archive), "gone"], None);
    root.ok(&["rmi", "gone"], None);
    let images = root.images();
    let storage = root.storage();
    let saved = members(&std::fs::read(&archive).expect("read"));

    let layer_hex = hex_of(&sha256(&other)).to_owned();
    let tampered: Vec<(String, Vec<u8>)> = saved
        .iter()
        .map(|(p, d)| {
            let mut d = d.clone();
            if p.ends_with(&layer_hex) {
                let n = d.len() / 2;
                d[n] ^= 1;
            }
            (p.clone(), d)
        })
        .collect();
    let evil = escaping_layer();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "not a tar",
            b"this is not a tar archive\n".repeat(40),
            "not a tar archive",
        ),
        ("empty", Vec::new(), "neither manifest.json"),
        (
            "missing layer",
            docker_archive(&[other.clone()], &[sha256(&other)], true),
            "is not in the archive",
        ),
        (
            "escaping layer",
            docker_archive(std::slice::from_ref(&evil), &[sha256(&evil)], false),
            "escapes the layer",
        ),
        ("tampered blob", tar_of(&tampered), "digest mismatch"),
        (
            "wrong diffID",
            docker_archive(&[other.clone()], &[sha256(b"something else")], false),
            "but the config says",
        ),
    ];
    for (what, data, message) in cases {
        let file = write(work.path(), "bad.tar", &data);
        let line = root.fails(&["load", "-i", path_str(&file)], None);
        assert!(line.contains(message), "{what}: {line}");
        // Storage first: `images` opens the stores, which sweeps leftovers.
        assert_eq!(root.storage(), storage, "{what}: storage changed");
        assert_eq!(root.images(), images, "{what}: images changed");
    }
    let line = root.fails(&["import", "-", "evil"], Some(&evil));
    assert!(
        line.contains("\"../escape\"") && line.contains("escapes"),
        "{line}"
    );
    let line = root.fails(&["import", "-"], Some(b"not a tar at all"));
    assert!(line.starts_with("Error: import -:"), "{line}");
    let line = root.fails(&["import", "-", "Bad:Name"], Some(&rootfs_tar()));
    assert!(line.contains("invalid reference format"), "{line}");
    let line = root.fails(
        &[
            "save",
            "-o",
            path_str(&work.path().join("x.tar")),
            "nothere",
        ],
        None,
    );
    assert!(line.contains("No such image: nothere"), "{line}");
    assert!(!work.path().join("x.tar").exists());
    assert_eq!(root.images(), images);
    assert_eq!(root.storage(), storage);
}

/// podman with its own temporary storage; `None` (and a SKIPPED line) without podman.
struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    fn new() -> Option<Podman> {
        if !Path::new(PODMAN).exists() {
            eprintln!(
                "SKIPPED: {PODMAN} missing (install podman: scripts/packages.sh TEST_PACKAGES)"
            );
            return None;
        }
        Some(Podman {
            dir: tempfile::tempdir().expect("tempdir"),
        })
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new(PODMAN)
            .arg("--root")
            .arg(self.dir.path().join("root"))
            .arg("--runroot")
            .arg(self.dir.path().join("runroot"))
            .args(["--storage-driver", "vfs"])
            .args(args)
            .output()
            .expect("run podman");
        assert!(
            out.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    /// The full ID of image `name`.
    fn id(&self, name: &str) -> String {
        let out = self.run(&["image", "inspect", "--format", "{{.Id}}", name]);
        format!("sha256:{}", hex_of(out.trim()))
    }
}

#[test]
fn podman_loads_our_archives_and_we_load_podmans() {
    let Some(podman) = Podman::new() else {
        return;
    };
    let root = Root::new();
    let work = tempfile::tempdir().expect("tempdir");
    let id = root.ok(
        &["import", "-", "example.com/berth/x:1"],
        Some(&rootfs_tar()),
    );
    let id = id.trim().to_owned();
    for format in ["docker-archive", "oci-archive"] {
        let file = work.path().join(format!("berth-{format}.tar"));
        root.ok(
            &[
                "save",
                "--format",
                format,
                "-o",
                path_str(&file),
                "example.com/berth/x:1",
            ],
            None,
        );
        podman.run(&["load", "-i", path_str(&file)]);
        assert_eq!(podman.id("example.com/berth/x:1"), id, "{format}");
        podman.run(&["rmi", "example.com/berth/x:1"]);
    }

    let tar = write(work.path(), "rootfs.tar", &rootfs_tar());
    podman.run(&["import", path_str(&tar), "example.com/podman/y:2"]);
    let podman_id = podman.id("example.com/podman/y:2");
    for format in ["docker-archive", "oci-archive"] {
        let file = work.path().join(format!("podman-{format}.tar"));
        podman.run(&[
            "save",
            "--format",
            format,
            "-o",
            path_str(&file),
            "example.com/podman/y:2",
        ]);
        let out = root.ok(&["load", "-i", path_str(&file)], None);
        assert_eq!(out, "Loaded image: example.com/podman/y:2\n", "{format}");
        let images = root.images();
        assert!(
            images.contains(&format!("example.com/podman/y:2 {podman_id}")),
            "{format}: {images:?}"
        );
        // Two configs, two manifests, the uncompressed layer both share, and podman's gzip
        // layer from the oci-archive: podman's legacy members (VERSION, json) are not kept.
        let expected = if format == "docker-archive" { 5 } else { 6 };
        let blobs = root
            .storage()
            .into_iter()
            .filter(|n| n.starts_with("blobs/"));
        assert_eq!(blobs.count(), expected, "{format}: {:?}", root.storage());
        root.ok(&["rmi", "example.com/podman/y:2"], None);
    }
}

#[test]
fn import_takes_platform_message_and_zstd() {
    let root = Root::new();
    let tar = rootfs_tar();
    let zstd = zstd::encode_all(tar.as_slice(), 3).expect("zstd");
    root.ok(
        &[
            "import",
            "--platform",
            "linux/arm64/v8",
            "-m",
            "from a test",
            "-",
            "plat:1",
        ],
        Some(&zstd),
    );
    let inspect = root.ok(&["image", "inspect", "plat:1"], None);
    let inspect: serde_json::Value = serde_json::from_str(&inspect).expect("inspect json");
    let image = &inspect[0];
    assert_eq!(image["Architecture"], "arm64");
    assert_eq!(image["Variant"], "v8");
    assert_eq!(image["Os"], "linux");
    assert_eq!(image["Comment"], "from a test");
    assert_eq!(
        image["Config"]["Env"][0],
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    );
    assert_eq!(image["RootFS"]["Layers"], serde_json::json!([sha256(&tar)]));
    let line = root.fails(
        &["import", "--platform", "arm64", "-", "plat:2"],
        Some(&tar),
    );
    assert!(line.contains("invalid platform"), "{line}");
}

#[test]
fn a_bare_repository_saves_every_tag() {
    let root = Root::new();
    let work = tempfile::tempdir().expect("tempdir");
    root.ok(&["import", "-", "repo:1"], Some(&rootfs_tar()));
    root.ok(&["tag", "repo:1", "repo:2"], None);
    root.ok(&["tag", "repo:1", "other:1"], None);
    let file = work.path().join("repo.tar");
    root.ok(&["save", "-o", path_str(&file), "repo"], None);
    let archive = members(&std::fs::read(&file).expect("read"));
    let (_, manifest) = archive
        .iter()
        .find(|(p, _)| p == "manifest.json")
        .expect("manifest.json");
    let manifest: serde_json::Value = serde_json::from_slice(manifest).expect("json");
    assert_eq!(
        manifest[0]["RepoTags"],
        serde_json::json!(["repo:1", "repo:2"])
    );
}

#[test]
fn save_refuses_a_terminal() {
    let script = Path::new("/usr/bin/script");
    if !script.exists() {
        eprintln!("SKIPPED: /usr/bin/script missing (install util-linux: scripts/packages.sh TEST_PACKAGES)");
        return;
    }
    let root = Root::new();
    root.ok(&["import", "-", "tty:1"], Some(&rootfs_tar()));
    let command = format!("{BERTH} --root {} save tty:1", root.path().display());
    let out = Command::new(script)
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("run script");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("cowardly refusing to save to a terminal. Use the -o flag or redirect"),
        "{text}"
    );
    assert!(
        text.len() < 200,
        "wrote more than the error: {} bytes",
        text.len()
    );
}

/// The host's architecture in OCI terms.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// An oci-archive of one image with one gzip layer, named `name`; with `nested`, index.json
/// points at an index listing a foreign platform (whose blobs are absent) and the host's.
fn gzip_oci_archive(tar: &[u8], name: &str, nested: bool) -> Vec<u8> {
    let layer = gzip(tar);
    let config = serde_json::json!({
        "architecture": host_arch(), "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha256(tar)]},
    });
    let config = serde_json::to_vec(&config).expect("config");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha256(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": sha256(&layer), "size": layer.len()}],
    });
    let manifest = serde_json::to_vec(&manifest).expect("manifest");
    let blob = |data: &[u8]| {
        (
            format!("blobs/sha256/{}", hex_of(&sha256(data))),
            data.to_vec(),
        )
    };
    let mut entries = vec![blob(&layer), blob(&config), blob(&manifest)];
    let annotations = serde_json::json!({"io.containerd.image.name": name,
                                         "org.opencontainers.image.ref.name": "latest"});
    let top = if nested {
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                 "digest": sha256(b"elsewhere"), "size": 9,
                 "platform": {"os": "linux", "architecture": "s390x"}},
                {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                 "digest": sha256(&manifest), "size": manifest.len(),
                 "platform": {"os": "linux", "architecture": host_arch()}},
            ],
        });
        let index = serde_json::to_vec(&index).expect("index");
        entries.push(blob(&index));
        serde_json::json!({"mediaType": "application/vnd.oci.image.index.v1+json",
                           "digest": sha256(&index), "size": index.len(),
                           "annotations": annotations})
    } else {
        serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "digest": sha256(&manifest), "size": manifest.len(),
                           "annotations": annotations})
    };
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [top]});
    entries.push((
        "index.json".into(),
        serde_json::to_vec(&index).expect("index.json"),
    ));
    entries.push((
        "oci-layout".into(),
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    ));
    tar_of(&entries)
}

#[test]
fn compressed_layers_go_uncompressed_into_a_docker_archive() {
    let root = Root::new();
    let work = tempfile::tempdir().expect("tempdir");
    let tar = rootfs_tar();
    for (nested, name) in [
        (false, "docker.io/library/gzipped:latest"),
        (true, "example.com/multi:latest"),
    ] {
        let file = write(
            work.path(),
            "oci.tar",
            &gzip_oci_archive(&tar, name, nested),
        );
        let out = root.ok(&["load", "-i", path_str(&file)], None);
        let familiar = name.trim_start_matches("docker.io/library/");
        assert_eq!(out, format!("Loaded image: {familiar}\n"));
    }
    let before = root.images();
    let docker = work.path().join("docker.tar");
    root.ok(&["save", "-o", path_str(&docker), "gzipped"], None);
    let archive = members(&std::fs::read(&docker).expect("read"));
    let layer = format!("blobs/sha256/{}", hex_of(&sha256(&tar)));
    let (_, data) = archive
        .iter()
        .find(|(p, _)| *p == layer)
        .expect("uncompressed layer");
    assert_eq!(data, &tar);
    // Removing both names leaves nothing (the nested index and the layer blob go too).
    root.ok(&["rmi", "gzipped", "example.com/multi"], None);
    assert!(root.storage().is_empty(), "left: {:?}", root.storage());
    root.ok(&["load", "-i", path_str(&docker)], None);
    let id = |images: &[String], name: &str| {
        images
            .iter()
            .find(|l| l.starts_with(name))
            .map(|l| l.split(' ').nth(1).map(str::to_owned))
    };
    assert_eq!(
        id(&root.images(), "gzipped:latest"),
        id(&before, "gzipped:latest")
    );
}

#[test]
fn loading_a_tag_another_image_has_moves_it_and_says_so() {
    let root = Root::new();
    let work = tempfile::tempdir().expect("tempdir");
    let first = root.ok(&["import", "-", "moving:1"], Some(&rootfs_tar()));
    let file = work.path().join("first.tar");
    root.ok(&["save", "-o", path_str(&file), "moving:1"], None);
    let second = root.ok(
        &["import", "-m", "second", "-", "moving:1"],
        Some(&rootfs_tar()),
    );
    let out = root.ok(&["load", "-i", path_str(&file)], None);
    assert_eq!(
        out,
        format!(
            "The image moving:1 already exists, renaming the old one with ID {} to empty string\nLoaded image: moving:1\n",
            second.trim()
        )
    );
    let images = root.images();
    assert!(
        images.contains(&format!("moving:1 {}", first.trim())),
        "{images:?}"
    );
    assert!(
        images.contains(&format!("<none>:<none> {}", second.trim())),
        "{images:?}"
    );
}

/// Serve `body` once over HTTP on a local port, with `status`; returns the URL.
fn serve_once(status: &'static str, body: Vec<u8>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let mut request = [0u8; 4096];
        let _ = stream.read(&mut request);
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(&body);
    });
    format!("http://127.0.0.1:{port}/rootfs.tar.gz")
}

#[test]
fn import_fetches_a_url() {
    let root = Root::new();
    let tar = rootfs_tar();
    let url = serve_once("200 OK", gzip(&tar));
    let id = root.ok(&["import", &url, "fetched:1"], None);
    let inspect = root.ok(&["image", "inspect", "fetched:1"], None);
    assert!(inspect.contains(id.trim()), "{inspect}");
    assert!(
        inspect.contains(&format!("Imported from {url}")),
        "{inspect}"
    );
    let storage = root.storage();
    let missing = serve_once("404 Not Found", b"no such file".to_vec());
    let line = root.fails(&["import", &missing, "fetched:2"], None);
    assert!(line.contains("404"), "{line}");
    assert_eq!(root.storage(), storage);
}
