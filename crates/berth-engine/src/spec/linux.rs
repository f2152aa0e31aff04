//! The `linux` section: namespaces, device nodes and rules, sysctls, paths, seccomp.

use std::collections::HashMap;

use oci_spec::runtime::{
    Linux, LinuxBuilder, LinuxDevice, LinuxDeviceCgroup, LinuxNamespace, LinuxNamespaceType,
    LinuxSeccomp,
};

use super::defaults::{device_rule, device_rules, MASKED_PATHS, NETWORK_SYSCTLS, READONLY_PATHS};
use super::options::{HostDevice, NamespaceMode, RunOptions};
use super::parse::is_ipc_sysctl;
use super::seccomp::{Profile, Target};
use super::{resources, SpecError};

/// The whole `linux` section.
pub fn linux(opts: &RunOptions, caps: &[String]) -> Result<Linux, SpecError> {
    let mut linux = LinuxBuilder::default().build()?;
    linux.set_namespaces(Some(namespaces(opts)));
    if let Some(map) = &opts.id_map {
        linux.set_uid_mappings(Some(id_mappings(&map.uids)?));
        linux.set_gid_mappings(Some(id_mappings(&map.gids)?));
    }
    let (devices, rules) = devices(opts);
    linux.set_devices(Some(devices));
    let mut res = resources::linux_resources(&opts.resources)?;
    res.set_devices(Some(rules));
    linux.set_resources(Some(res));
    linux.set_sysctl(sysctls(opts)?);
    linux.set_cgroups_path(opts.cgroups_path.clone());
    // oci-spec's defaults are youki's: every field that docker leaves empty is reset.
    linux.set_masked_paths(guarded_paths(opts, &MASKED_PATHS, &opts.mask));
    linux.set_readonly_paths(guarded_paths(opts, &READONLY_PATHS, &[]));
    linux.set_seccomp(seccomp(opts, caps)?);
    Ok(linux)
}

/// docker's default paths (none when privileged) minus `unmask=`, plus `extra` (`mask=`).
fn guarded_paths(opts: &RunOptions, defaults: &[&str], extra: &[String]) -> Option<Vec<String>> {
    let defaults: &[&str] = if opts.privileged { &[] } else { defaults };
    let kept: Vec<String> = defaults
        .iter()
        .filter(|p| !opts.unmask.iter().any(|u| unmasks(u, p)))
        .map(|p| (*p).to_owned())
        .chain(extra.iter().filter(|p| !opts.unmask.contains(p)).cloned())
        .collect();
    (!kept.is_empty() || !opts.privileged).then_some(kept)
}

/// Whether `unmask=` entry `pattern` (a path, `ALL`, or `DIR/*`) covers `path`.
fn unmasks(pattern: &str, path: &str) -> bool {
    match pattern.strip_suffix("/*") {
        _ if pattern == "ALL" || pattern == path => true,
        Some(dir) => path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/')),
        None => false,
    }
}

/// docker's rule: none when privileged or `seccomp=unconfined`; else the given profile (or
/// docker's default) converted for the container's final capabilities.
fn seccomp(opts: &RunOptions, caps: &[String]) -> Result<Option<LinuxSeccomp>, SpecError> {
    if opts.privileged || opts.seccomp_unconfined {
        return Ok(None);
    }
    let profile = match &opts.seccomp_profile {
        Some(profile) => profile,
        None => Profile::docker_default()?,
    };
    Ok(profile.convert(&Target::host(caps)?)?)
}

/// The spec's `uidMappings` or `gidMappings`.
fn id_mappings(
    ranges: &[berth_storage::IdRange],
) -> Result<Vec<oci_spec::runtime::LinuxIdMapping>, SpecError> {
    ranges
        .iter()
        .map(|r| {
            Ok(oci_spec::runtime::LinuxIdMappingBuilder::default()
                .container_id(r.container)
                .host_id(r.host)
                .size(r.size)
                .build()?)
        })
        .collect()
}

/// docker's order: mount, network, uts, pid, ipc, then cgroup (private on cgroup v2 only),
/// then user when the container has its own (`--userns`).
fn namespaces(opts: &RunOptions) -> Vec<LinuxNamespace> {
    let private = NamespaceMode::Private;
    let cgroup = if opts.cgroup_v2 {
        &private
    } else {
        &NamespaceMode::Host
    };
    [
        (LinuxNamespaceType::Mount, &private),
        (LinuxNamespaceType::Network, &opts.network),
        (LinuxNamespaceType::Uts, &opts.uts),
        (LinuxNamespaceType::Pid, &opts.pid),
        (LinuxNamespaceType::Ipc, &opts.ipc),
        (LinuxNamespaceType::Cgroup, cgroup),
    ]
    .into_iter()
    .chain(
        opts.id_map
            .is_some()
            .then_some((LinuxNamespaceType::User, &private)),
    )
    .filter_map(|(typ, mode)| {
        let mut ns = LinuxNamespace::default();
        ns.set_typ(typ);
        match mode {
            NamespaceMode::Private => {}
            NamespaceMode::Host => return None,
            NamespaceMode::Path(path) => {
                ns.set_path(Some(path.clone()));
            }
        }
        Some(ns)
    })
    .collect()
}

fn node(host: &HostDevice, path: &str) -> LinuxDevice {
    let mut d = LinuxDevice::default();
    d.set_path(path.into());
    d.set_typ(host.kind);
    d.set_major(host.major);
    d.set_minor(host.minor);
    d.set_file_mode(Some(host.file_mode & 0o7777));
    d.set_uid(Some(host.uid));
    d.set_gid(Some(host.gid));
    d
}

/// Device nodes and cgroup rules: none and docker's allowlist by default (the runtime makes
/// null, zero, full, random, urandom and tty itself), plus `--device`; every host device and
/// allow-all when privileged.
fn devices(opts: &RunOptions) -> (Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>) {
    let mut rules = device_rules(opts.privileged);
    let mut nodes: Vec<LinuxDevice> = Vec::new();
    if opts.privileged {
        nodes.extend(
            opts.host_devices
                .iter()
                .map(|d| node(d, &d.path.to_string_lossy())),
        );
    }
    for mapping in &opts.devices {
        nodes.retain(|n| n.path().to_string_lossy() != mapping.container_path);
        nodes.push(node(&mapping.host, &mapping.container_path));
        if !opts.privileged {
            rules.push(device_rule(
                true,
                Some(mapping.host.kind),
                Some(mapping.host.major),
                Some(mapping.host.minor),
                &mapping.permissions,
            ));
        }
    }
    (nodes, rules)
}

/// `--sysctl`, refused where the namespace is the host's (docker's check).
fn sysctls(opts: &RunOptions) -> Result<Option<HashMap<String, String>>, SpecError> {
    for key in opts.sysctls.keys() {
        if key.starts_with("net.") && opts.network == NamespaceMode::Host {
            return Err(SpecError::SysctlHostNetwork(key.clone()));
        }
        if is_ipc_sysctl(key) && opts.ipc == NamespaceMode::Host {
            return Err(SpecError::SysctlHostIpc(key.clone()));
        }
    }
    let mut sysctls: HashMap<String, String> = HashMap::new();
    if opts.network == NamespaceMode::Private {
        sysctls.extend(
            NETWORK_SYSCTLS
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
    }
    sysctls.extend(opts.sysctls.clone());
    Ok((!sysctls.is_empty()).then_some(sysctls))
}
