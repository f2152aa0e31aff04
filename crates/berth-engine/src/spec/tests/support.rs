//! Helpers of the generate tests: images, options and spec accessors.

use oci_spec::runtime::{Capability, Mount, Spec};

use super::user::rootfs;
use crate::images::ImageConfig;
use crate::spec::{generate, Generated, RunOptions};

pub(super) const PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub(super) fn image(config: serde_json::Value) -> ImageConfig {
    let json = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": []},
    });
    ImageConfig::parse("test", json.to_string().as_bytes()).expect("image config")
}

/// busybox:latest's config.
pub(super) fn busybox() -> ImageConfig {
    image(serde_json::json!({"Env": [PATH], "Cmd": ["sh"]}))
}

pub(super) fn opts() -> RunOptions {
    RunOptions {
        hostname: Some("0123456789ab".into()),
        cgroup_v2: true,
        ..RunOptions::default()
    }
}

pub(super) fn run(image: &ImageConfig, opts: &RunOptions) -> Generated {
    let root = rootfs();
    generate(image, root.path(), opts).expect("generate")
}

pub(super) fn spec(opts: &RunOptions) -> Spec {
    run(&busybox(), opts).spec
}

pub(super) fn caps(names: &[&str]) -> oci_spec::runtime::Capabilities {
    names
        .iter()
        .map(|n| {
            n.strip_prefix("CAP_")
                .unwrap_or(n)
                .parse::<Capability>()
                .expect(n)
        })
        .collect()
}

pub(super) fn args(spec: &Spec) -> Vec<String> {
    spec.process()
        .as_ref()
        .and_then(|p| p.args().clone())
        .unwrap_or_default()
}

pub(super) fn env(spec: &Spec) -> Vec<String> {
    spec.process()
        .as_ref()
        .and_then(|p| p.env().clone())
        .unwrap_or_default()
}

pub(super) fn mount_at<'a>(spec: &'a Spec, destination: &str) -> Option<&'a Mount> {
    spec.mounts()
        .as_ref()?
        .iter()
        .find(|m| m.destination().to_str() == Some(destination))
}

pub(super) fn options(m: &Mount) -> Vec<String> {
    m.options().clone().unwrap_or_default()
}
