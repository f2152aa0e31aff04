//! What `create` does differently rootless: resource limits refused where they cannot be
//! enforced, only networks a user can have, and /sys bound from the host when the container
//! shares the host's network namespace (sysfs cannot be mounted there from a user namespace).

use std::borrow::Cow;
use std::path::Path;

use oci_spec::runtime::{Mount, Spec};

use crate::containers::ContainerError;
use crate::containers::CreateOptions;
use crate::spec::{NamespaceMode, RunOptions};

/// `opts` as a rootless `create` takes them: the default network filled in, and refused with
/// one line when they ask for limits that cannot be enforced or a network a user cannot have.
/// Unchanged when not rootless.
pub fn check_create(opts: &CreateOptions) -> Result<Cow<'_, CreateOptions>, ContainerError> {
    if !super::is_rootless() {
        return Ok(Cow::Borrowed(opts));
    }
    if opts.run.resources != crate::spec::Resources::default() {
        if let Some(line) = super::limits_unavailable() {
            return Err(ContainerError::Unsupported(line));
        }
    }
    if opts.network.is_empty() {
        let mut filled = opts.clone();
        filled.network = crate::networks::rootless_default().to_string();
        return Ok(Cow::Owned(filled));
    }
    let mode = opts.network.as_str();
    let usable = matches!(mode, "none" | "host" | "pasta" | "slirp4netns" | "private")
        || mode.starts_with("container:")
        || mode.starts_with("pasta:")
        || mode.starts_with("slirp4netns:");
    if !usable {
        return Err(ContainerError::Unsupported(format!(
            "--network {mode}: rootless containers cannot use bridge networks (they need \
             root on the host): use --network pasta, slirp4netns, none or host"
        )));
    }
    Ok(Cow::Borrowed(opts))
}

/// `pause` needs the container's cgroup (the freezer), `update` its limits: rootless where
/// there is none they are refused with the line that says why (podman refuses them likewise).
pub fn check_cgroup_needed(command: &str) -> Result<(), ContainerError> {
    let Some(reason) = super::no_cgroup_reason() else {
        return Ok(());
    };
    let what = if command == "pause" {
        "a rootless container cannot be frozen on this host"
    } else {
        "resource limits cannot be enforced rootless on this host"
    };
    Err(ContainerError::Unsupported(format!(
        "{command}: {what}: {reason}"
    )))
}

/// The spec as rootless needs it: on a cgroup v2 host with a delegated cgroup the container's
/// cgroup goes below it (untested here: this host is hybrid); with the host's network namespace
/// /sys is bound read-only from the host (the kernel refuses a new sysfs mount in a user
/// namespace that does not own the network namespace), as podman does.
pub fn adapt_spec(spec: &mut Spec, run: &RunOptions) {
    if !super::is_rootless() {
        return;
    }
    if let (Some(base), Some(linux)) = (super::delegated_cgroup(), spec.linux_mut().as_mut()) {
        let name = linux
            .cgroups_path()
            .as_ref()
            .and_then(|p| p.file_name().map(|n| n.to_os_string()))
            .unwrap_or_default();
        linux.set_cgroups_path(Some(Path::new("/").join(base).join("berth").join(name)));
    }
    if run.network != NamespaceMode::Host {
        return;
    }
    let Some(mounts) = spec.mounts().clone() else {
        return;
    };
    let mounts = mounts
        .into_iter()
        .map(|m| {
            if m.typ().as_deref() != Some("sysfs") {
                return m;
            }
            let mut bound = m.clone();
            bound.set_typ(Some("bind".to_string()));
            bound.set_source(Some("/sys".into()));
            bound.set_options(Some(
                ["rbind", "nosuid", "noexec", "nodev", "ro"]
                    .map(String::from)
                    .to_vec(),
            ));
            bound
        })
        .collect::<Vec<Mount>>();
    spec.set_mounts(Some(mounts));
}
