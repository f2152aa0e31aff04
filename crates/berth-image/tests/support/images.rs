//! Small images built directly in a blob store: gzip tar layers of a few files,
//! a config, an OCI manifest, and an OCI index.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use berth_image::manifest::{OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST};
use berth_image::{BlobStore, Descriptor, Digest, Index, Manifest, Platform};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Bytes that differ between calls and between runs.
pub fn unique(label: &str) -> Vec<u8> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("{label} {nanos} {n} {}\n", std::process::id())
        .repeat(50)
        .into_bytes()
}

/// A tar of `files`, and its gzip.
fn layer(files: &[(&str, Vec<u8>)]) -> (Vec<u8>, Vec<u8>) {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_600_000_000);
        header.set_cksum();
        builder
            .append_data(&mut header, name, data.as_slice())
            .expect("tar append");
    }
    let tar = builder.into_inner().expect("tar finish");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).expect("gzip");
    (tar, gz.finish().expect("gzip finish"))
}

pub struct BuiltImage {
    pub manifest: Descriptor,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    /// As written in the config.
    pub diff_ids: Vec<Digest>,
}

/// Builds an image of `layer_count` layers for `platform` in `store`.
pub fn build_image(store: &BlobStore, platform: &Platform, layer_count: usize) -> BuiltImage {
    let layers: Vec<Vec<(String, Vec<u8>)>> = (0..layer_count)
        .map(|i| {
            vec![
                (format!("layer{i}/a.txt"), unique("a")),
                (format!("layer{i}/b.bin"), unique("b")),
            ]
        })
        .collect();
    build_image_of(store, platform, &layers, None)
}

/// Builds an image of the given layers (file name, contents); with `wrong_diff_id`, the
/// config gives that layer a wrong diffID.
pub fn build_image_of(
    store: &BlobStore,
    platform: &Platform,
    layer_files: &[Vec<(String, Vec<u8>)>],
    wrong_diff_id: Option<usize>,
) -> BuiltImage {
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for (i, files) in layer_files.iter().enumerate() {
        let files: Vec<(&str, Vec<u8>)> =
            files.iter().map(|(n, d)| (n.as_str(), d.clone())).collect();
        let (tar, gz) = layer(&files);
        diff_ids.push(if wrong_diff_id == Some(i) {
            Digest::of(b"not this layer")
        } else {
            Digest::of(&tar)
        });
        layers.push(put(store, OCI_LAYER_GZIP, &gz));
    }
    let config = serde_json::json!({
        "architecture": platform.architecture,
        "os": platform.os,
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = put(
        store,
        OCI_CONFIG,
        &serde_json::to_vec(&config).expect("config json"),
    );
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_owned()),
        config: config.clone(),
        layers: layers.clone(),
        annotations: BTreeMap::from([("org.example.marker".to_owned(), "aaaa".to_owned())]),
    };
    let manifest = put(
        store,
        OCI_MANIFEST,
        &serde_json::to_vec(&manifest).expect("manifest json"),
    );
    BuiltImage {
        manifest,
        config,
        layers,
        diff_ids,
    }
}

/// An OCI index of `images`, each with its platform; returns the index's descriptor.
pub fn build_index(store: &BlobStore, images: &[(&Platform, &BuiltImage)]) -> Descriptor {
    let manifests = images
        .iter()
        .map(|(platform, image)| Descriptor {
            platform: Some((*platform).clone()),
            ..image.manifest.clone()
        })
        .collect();
    let index = Index {
        schema_version: 2,
        media_type: Some(OCI_INDEX.to_owned()),
        manifests,
        annotations: BTreeMap::new(),
    };
    put(
        store,
        OCI_INDEX,
        &serde_json::to_vec(&index).expect("index json"),
    )
}

fn put(store: &BlobStore, media_type: &str, data: &[u8]) -> Descriptor {
    let digest = store.put_bytes(data).expect("store blob");
    Descriptor::new(media_type, digest, data.len() as u64)
}

/// `len` bytes that do not compress (xorshift).
pub fn noise(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}
