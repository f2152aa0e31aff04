//! A container's OCI runtime spec from its image config and `berth run` options, with
//! docker's defaults (see the README's "Spec generation"). Pure: the only I/O is reading
//! the image's /etc/passwd and /etc/group inside the given rootfs.

mod defaults;
mod linux;
mod mounts;
mod options;
pub mod parse;
pub mod parse_mount;
mod process;
mod resources;
pub mod seccomp;
mod user;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::Path;

use oci_spec::runtime::{
    LinuxCapabilities, LinuxCapabilitiesBuilder, PosixRlimit, PosixRlimitBuilder, PosixRlimitType,
    Process, ProcessBuilder, RootBuilder, Spec, SpecBuilder, User,
};

use crate::images::ImageConfig;

pub use defaults::{ALL_CAPABILITIES, DEFAULT_CAPABILITIES, MASKED_PATHS, READONLY_PATHS};
pub use options::{
    BindMount, DeviceMapping, HostDevice, InitBinary, NamespaceMode, Propagation, Resources,
    RunOptions, ThrottleDevice, TmpfsMount, Ulimit,
};
pub use resources::ResourceError;
pub use seccomp::{Profile as SeccompProfile, SeccompError};
pub use user::{ExecUser, UserError};

/// Why no spec could be generated.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// Neither the image nor the options give a command (docker's wording).
    #[error("No command specified")]
    NoCommand,
    /// `-u` could not be resolved in the image.
    #[error("resolving user {user:?}: {source}")]
    User {
        /// The `-u` value.
        user: String,
        /// Why.
        #[source]
        source: UserError,
    },
    /// A resource flag docker refuses.
    #[error(transparent)]
    Resources(#[from] ResourceError),
    /// `--cap-add` / `--cap-drop` with a name that is no capability (docker's wording).
    #[error("unknown capability: {0:?}")]
    UnknownCapability(String),
    /// A relative `-w` (docker's wording).
    #[error("the working directory '{0}' is invalid, it needs to be an absolute path")]
    Workdir(String),
    /// `--oom-score-adj` out of range (docker's wording).
    #[error("Invalid value {0}, range for oom score adj is [-1000, 1000]")]
    OomScoreAdj(i32),
    /// A `--ulimit` name oci-spec does not know.
    #[error("invalid ulimit type: {0}")]
    Ulimit(String),
    /// A network sysctl with `--network host`.
    #[error("sysctl {0:?} not allowed in host network namespace")]
    SysctlHostNetwork(String),
    /// An IPC sysctl with `--ipc host`.
    #[error("sysctl {0:?} not allowed in host IPC namespace")]
    SysctlHostIpc(String),
    /// The seccomp profile could not be converted.
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    /// oci-spec refused a value.
    #[error("building the spec: {0}")]
    Build(#[from] oci_spec::OciSpecError),
}

/// The spec and what docker keeps beside it.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The OCI runtime spec.
    pub spec: Spec,
    /// `--stop-signal`, else the image's StopSignal, else `SIGTERM`.
    pub stop_signal: String,
    /// The image's Labels with `--label` laid over them.
    pub labels: BTreeMap<String, String>,
    /// The image's Volumes no user mount covers: anonymous volumes the caller creates and
    /// mounts (sorted).
    pub volumes: Vec<String>,
}

/// Generate the spec of a container of `image`, whose root filesystem is at `rootfs`.
pub fn generate(
    image: &ImageConfig,
    rootfs: &Path,
    opts: &RunOptions,
) -> Result<Generated, SpecError> {
    resources::validate(&opts.resources)?;
    let config = image.config.as_ref();
    let mut spec = SpecBuilder::default().build()?;
    spec.set_version(oci_spec::runtime::VERSION.to_owned());
    let mut root = RootBuilder::default().build()?;
    root.set_path(rootfs.to_path_buf());
    root.set_readonly(opts.read_only.then_some(true));
    spec.set_root(Some(root));
    let caps = process::capability_names(opts)?;
    spec.set_process(Some(build_process(config, rootfs, opts, &caps)?));
    spec.set_hostname(match opts.uts {
        NamespaceMode::Host => None,
        _ => opts.hostname.clone(),
    });
    spec.set_mounts(Some(mounts::mounts(opts)));
    spec.set_linux(Some(linux::linux(opts, &caps)?));
    spec.set_annotations(None);
    Ok(Generated {
        spec,
        stop_signal: stop_signal(config, opts),
        labels: labels(config, opts),
        volumes: mounts::image_volumes(config, opts),
    })
}

fn build_process(
    config: Option<&serde_json::Value>,
    rootfs: &Path,
    opts: &RunOptions,
    caps: &[String],
) -> Result<Process, SpecError> {
    let mut process = ProcessBuilder::default().build()?;
    process.set_terminal(Some(opts.tty));
    process.set_args(Some(process::args(config, opts)?));
    process.set_env(Some(process::env(config, opts)));
    process.set_cwd(workdir(config, opts)?.into());
    let user = user(rootfs, config, opts)?;
    process.set_capabilities(Some(capabilities(opts, caps, user.uid())?));
    process.set_user(user);
    process.set_rlimits(rlimits(opts)?);
    process.set_no_new_privileges(opts.no_new_privileges.then_some(true));
    process.set_oom_score_adj(Some(oom_score_adj(opts)?));
    Ok(process)
}

/// Bounding, effective and permitted are the final set. docker >= 23 sets no inheritable
/// capabilities (CVE-2022-24769; oci-spec's default has some) and, for root, no ambient
/// ones. A non-root user loses its permitted set at exec unless the capabilities are
/// ambient, so there the added ones go to the inheritable and ambient sets
/// (kubernetes#56374).
fn capabilities(
    opts: &RunOptions,
    names: &[String],
    uid: u32,
) -> Result<LinuxCapabilities, SpecError> {
    let set = process::capability_set(names)?;
    let mut caps = LinuxCapabilitiesBuilder::default()
        .bounding(set.clone())
        .effective(set.clone())
        .permitted(set)
        .build()?;
    let ambient = if uid == 0 {
        None
    } else {
        Some(process::added_capabilities(opts, names)?)
            .filter(|added| !added.is_empty())
            .map(|added| process::capability_set(&added))
            .transpose()?
    };
    caps.set_inheritable(ambient.clone());
    caps.set_ambient(ambient);
    Ok(caps)
}

fn image_str(config: Option<&serde_json::Value>, key: &str) -> Option<String> {
    config?
        .get(key)?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn workdir(config: Option<&serde_json::Value>, opts: &RunOptions) -> Result<String, SpecError> {
    let dir = opts
        .workdir
        .clone()
        .filter(|w| !w.is_empty())
        .or_else(|| image_str(config, "WorkingDir"))
        .unwrap_or_else(|| "/".to_owned());
    if !dir.starts_with('/') {
        return Err(SpecError::Workdir(dir));
    }
    Ok(dir)
}

fn user(
    rootfs: &Path,
    config: Option<&serde_json::Value>,
    opts: &RunOptions,
) -> Result<User, SpecError> {
    let spec = opts
        .user
        .clone()
        .or_else(|| image_str(config, "User"))
        .unwrap_or_default();
    let resolved = user::resolve(rootfs, &spec).map_err(|source| SpecError::User {
        user: spec.clone(),
        source,
    })?;
    let mut u = User::default();
    u.set_uid(resolved.uid);
    u.set_gid(resolved.gid);
    let added = user::group_ids(rootfs, &opts.group_add).map_err(|source| SpecError::User {
        user: opts.group_add.join(","),
        source,
    })?;
    // docker lists the primary gid first, then the supplementary groups, then --group-add.
    let mut supplementary = resolved.additional_gids;
    for gid in added {
        if gid != resolved.gid && !supplementary.contains(&gid) {
            supplementary.push(gid);
        }
    }
    let gids = std::iter::once(resolved.gid)
        .chain(crate::rootless::supplementary_gids(supplementary))
        .collect();
    u.set_additional_gids(Some(gids));
    Ok(u)
}

fn rlimits(opts: &RunOptions) -> Result<Option<Vec<PosixRlimit>>, SpecError> {
    if opts.ulimits.is_empty() {
        return Ok(None);
    }
    let list = opts
        .ulimits
        .iter()
        .map(|u| {
            let name = format!("RLIMIT_{}", u.name.to_ascii_uppercase());
            let typ: PosixRlimitType = name
                .parse()
                .map_err(|_| SpecError::Ulimit(u.name.clone()))?;
            Ok(PosixRlimitBuilder::default()
                .typ(typ)
                .soft(u.soft)
                .hard(u.hard)
                .build()?)
        })
        .collect::<Result<_, SpecError>>()?;
    Ok(Some(list))
}

fn oom_score_adj(opts: &RunOptions) -> Result<i32, SpecError> {
    let adj = opts.oom_score_adj.unwrap_or(0);
    if !(-1000..=1000).contains(&adj) {
        return Err(SpecError::OomScoreAdj(adj));
    }
    Ok(adj)
}

fn stop_signal(config: Option<&serde_json::Value>, opts: &RunOptions) -> String {
    opts.stop_signal
        .clone()
        .or_else(|| image_str(config, "StopSignal"))
        .unwrap_or_else(|| "SIGTERM".to_owned())
}

fn labels(config: Option<&serde_json::Value>, opts: &RunOptions) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = config
        .and_then(|c| c.get("Labels"))
        .and_then(|l| l.as_object())
        .map(|l| {
            l.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    labels.extend(opts.labels.clone());
    labels
}

/// The OCI resources for `r` (`berth update`), after docker's checks.
pub fn linux_resources(r: &Resources) -> Result<oci_spec::runtime::LinuxResources, SpecError> {
    resources::validate(r)?;
    Ok(resources::linux_resources(r)?)
}

/// Resolve a `-u` value through the passwd and group files of `rootfs` (`berth exec -u`).
pub fn resolve_user(rootfs: &Path, spec: &str) -> Result<ExecUser, UserError> {
    user::resolve(rootfs, spec)
}
