//! The mount list: docker's defaults, then the user's binds, tmpfs and the init binary.

use oci_spec::runtime::Mount;

use std::path::Path;

use super::defaults::{default_mounts, mount, WRITABLE_WITH_READ_ONLY};
use super::options::{BindMount, NamespaceMode, RunOptions, TmpfsMount};

/// Default mounts minus those the user mounts over (and everything under `/dev` when the user
/// mounts `/dev`), `ro` added to the rest with `--read-only` (but for docker's writable list),
/// then the user's mounts ordered by depth (docker's `sortMounts`), so a parent is mounted
/// before what goes inside it, then the init binary.
pub fn mounts(opts: &RunOptions) -> Vec<Mount> {
    let mut user: Vec<Mount> = opts.binds.iter().map(bind).collect();
    user.extend(opts.tmpfs.iter().map(tmpfs));
    user.sort_by_key(|m| m.destination().components().count());
    let user_dev = user.iter().any(|u| u.destination() == Path::new("/dev"));
    let mut all = default_mounts(opts.privileged, opts.ipc == NamespaceMode::Host);
    let replaced = |d: &Mount| {
        user.iter().any(|u| u.destination() == d.destination())
            || (user_dev && d.destination().starts_with("/dev/"))
    };
    all.retain(|d| !replaced(d));
    if opts.id_map.is_some() && opts.network != NamespaceMode::Private {
        all.iter_mut().for_each(sysfs_as_bind);
    }
    if opts.read_only {
        all.iter_mut().for_each(add_read_only);
    }
    all.extend(user);
    if let Some(init) = init_mount(opts) {
        all.push(init);
    }
    all
}

/// In a user namespace that does not own the network namespace (the engine makes it, or it is
/// another container's or the host's), the kernel refuses to mount sysfs: the host's /sys is
/// bound instead, read-only, as podman does.
fn sysfs_as_bind(m: &mut Mount) {
    if m.typ().as_deref() != Some("sysfs") {
        return;
    }
    m.set_typ(Some("bind".to_owned()));
    m.set_source(Some("/sys".into()));
    m.set_options(Some(
        ["rprivate", "nosuid", "noexec", "nodev", "ro", "rbind"]
            .map(str::to_owned)
            .to_vec(),
    ));
}

fn add_read_only(m: &mut Mount) {
    let writable = WRITABLE_WITH_READ_ONLY
        .iter()
        .any(|w| m.destination() == Path::new(w));
    let mut options = m.options().clone().unwrap_or_default();
    if !writable && !options.iter().any(|o| o == "ro") {
        options.push("ro".to_owned());
        m.set_options(Some(options));
    }
}

/// `--init`: only in a new pid namespace (elsewhere there is an init already), as docker.
pub fn init_mount(opts: &RunOptions) -> Option<Mount> {
    let init = opts
        .init
        .as_ref()
        .filter(|_| opts.pid == NamespaceMode::Private)?;
    let source = init.host_path.to_string_lossy();
    Some(mount(
        &init.container_path,
        "bind",
        &source,
        &["bind", "ro"],
    ))
}

fn bind(b: &BindMount) -> Mount {
    let mut options = vec!["rbind"];
    if b.read_only {
        options.push("ro");
    }
    if let Some(propagation) = b.propagation {
        options.push(propagation.as_str());
    }
    mount(
        &b.destination,
        "bind",
        &b.source.to_string_lossy(),
        &options,
    )
}

/// docker's tmpfs: `noexec,nosuid,nodev,rprivate` then the user's options, merged so the
/// last of each option (or of each exclusive pair, like exec/noexec) wins.
fn tmpfs(t: &TmpfsMount) -> Mount {
    let given = ["noexec", "nosuid", "nodev", "rprivate"]
        .into_iter()
        .chain(t.options.iter().map(String::as_str));
    let options = merge_tmpfs_options(given.collect());
    let refs: Vec<&str> = options.iter().map(String::as_str).collect();
    mount(&t.destination, "tmpfs", "tmpfs", &refs)
}

/// What an option conflicts with: the flag without its `no` prefix, the data key, or
/// `ro`/`rw` and the propagation modes as groups.
fn option_key(option: &str) -> &str {
    if let Some((key, _)) = option.split_once('=') {
        return key;
    }
    match option {
        "ro" | "rw" => "ro",
        "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => "propagation",
        "sync" | "async" => "sync",
        "strictatime" | "relatime" | "noatime" | "atime" => "atime",
        flag => flag.strip_prefix("no").unwrap_or(flag),
    }
}

fn merge_tmpfs_options(options: Vec<&str>) -> Vec<String> {
    let mut seen: Vec<&str> = Vec::new();
    let mut merged: Vec<String> = Vec::new();
    for option in options.into_iter().rev() {
        let key = option_key(option);
        if !seen.contains(&key) {
            seen.push(key);
            merged.push(option.to_owned());
        }
    }
    merged.reverse();
    merged
}

/// The image's `Volumes` not covered by a user mount: anonymous volumes to create.
pub fn image_volumes(config: Option<&serde_json::Value>, opts: &RunOptions) -> Vec<String> {
    let Some(volumes) = config
        .and_then(|c| c.get("Volumes"))
        .and_then(|v| v.as_object())
    else {
        return Vec::new();
    };
    let covered = |path: &str| {
        let path = path.trim_end_matches('/');
        opts.binds
            .iter()
            .any(|b| b.destination.trim_end_matches('/') == path)
            || opts
                .tmpfs
                .iter()
                .any(|t| t.destination.trim_end_matches('/') == path)
    };
    let mut list: Vec<String> = volumes.keys().filter(|p| !covered(p)).cloned().collect();
    list.sort();
    list
}
