//! The mount list: docker's defaults, then the user's binds, tmpfs and the init binary.

use oci_spec::runtime::Mount;

use super::defaults::{base_mounts, ipc_mounts, mount};
use super::options::{BindMount, NamespaceMode, RunOptions, TmpfsMount};

/// Default mounts with those the user mounts over removed, then the user's mounts ordered
/// by depth (docker's `sortMounts`), so a parent is mounted before what goes inside it.
pub fn mounts(opts: &RunOptions) -> Vec<Mount> {
    let mut user: Vec<Mount> = opts.binds.iter().map(bind).collect();
    user.extend(opts.tmpfs.iter().map(tmpfs));
    if let Some(init) = &opts.init {
        let source = init.host_path.to_string_lossy();
        user.push(mount(
            &init.container_path,
            "bind",
            &source,
            &["bind", "ro"],
        ));
    }
    user.sort_by_key(|m| m.destination().components().count());
    let mut all = base_mounts(opts.privileged);
    all.extend(ipc_mounts(opts.ipc == NamespaceMode::Host));
    all.retain(|d| !user.iter().any(|u| u.destination() == d.destination()));
    all.extend(user);
    all
}

fn bind(b: &BindMount) -> Mount {
    let mut options = vec!["rbind"];
    if b.read_only {
        options.push("ro");
    }
    options.push(b.propagation.as_str());
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
