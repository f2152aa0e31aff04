//! The runtime's use of `berth-cgroups`: which cgroup a container has, from its saved spec.

use berth_cgroups::{Cgroup, Error, Layout};
use oci_spec::runtime::Spec;

use crate::state::Saved;

/// The spec's `linux.cgroupsPath` (empty when unset: the container id is used, as runc does).
pub fn cgroups_path(spec: &Spec) -> String {
    spec.linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_ref())
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// Open the cgroup of a saved container (one without directories when a rootless container
/// was made without a cgroup, see [`rootless_or_made`]).
pub fn open(saved: &Saved) -> Result<Cgroup, Error> {
    let layout = Layout::detect()?;
    let cgroup = Cgroup::open(&layout, &cgroups_path(&saved.spec), &saved.id)?;
    if crate::rootless::in_user_namespace() && !cgroup.exists() {
        return Ok(cgroup.without_directories());
    }
    Ok(cgroup)
}

/// Make the cgroup's directories; rootless, as runc does, a refusal (the user may not create
/// cgroups here: v1, or v2 without delegation) is ignored when the spec asks for no limits, and
/// the container runs without a cgroup.
pub fn rootless_or_made(cgroup: Cgroup, spec: &Spec) -> Result<Cgroup, Error> {
    match cgroup.make_dirs() {
        Ok(()) => Ok(cgroup),
        Err(Error::Mkdir { source, .. })
            if crate::rootless::in_user_namespace()
                && crate::rootless::is_permission_error(&source)
                && !crate::rootless::has_limits(spec) =>
        {
            Ok(cgroup.without_directories())
        }
        Err(e) => Err(e),
    }
}

/// Is the container's cgroup frozen? (false when it cannot be read)
pub fn is_frozen(saved: &Saved) -> bool {
    open(saved).and_then(|c| c.is_frozen()).unwrap_or(false)
}

/// The spec's resources with runc's always-allowed devices appended to the device rules
/// (after the spec's own, so a leading "deny all" still lets these through): mknod of
/// anything, the default /dev nodes, the console, ptys, tun, and every `linux.devices` entry.
pub fn resources_with_default_devices(spec: &Spec) -> Option<oci_spec::runtime::LinuxResources> {
    use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};
    let linux = spec.linux().as_ref()?;
    let mut resources = linux.resources().clone()?;
    let rule = |typ, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(true);
        r.set_typ(Some(typ));
        r.set_major(major);
        r.set_minor(minor);
        r.set_access(Some(access.to_string()));
        r
    };
    let Some(rules) = resources.devices().clone() else {
        return Some(resources);
    };
    let mut rules = rules;
    rules.push(rule(LinuxDeviceType::C, None, None, "m"));
    rules.push(rule(LinuxDeviceType::B, None, None, "m"));
    for (major, minor) in [
        (1, Some(3)),
        (1, Some(8)),
        (1, Some(7)),
        (5, Some(0)),
        (1, Some(5)),
        (1, Some(9)),
        (5, Some(1)),
        (136, None),
        (5, Some(2)),
        (10, Some(200)),
    ] {
        rules.push(rule(LinuxDeviceType::C, Some(major), minor, "rwm"));
    }
    for d in linux.devices().iter().flatten() {
        let typ = match d.typ() {
            LinuxDeviceType::B => LinuxDeviceType::B,
            LinuxDeviceType::P => continue,
            _ => LinuxDeviceType::C,
        };
        rules.push(rule(typ, Some(d.major()), Some(d.minor()), "rwm"));
    }
    resources.set_devices(Some(rules));
    Some(resources)
}

/// The cgroup's oom_kill count (memory.oom_control on v1, memory.events on v2); 0 when it
/// cannot be read.
pub fn oom_kills(cgroup: &berth_cgroups::Cgroup) -> u64 {
    cgroup.oom_kills().unwrap_or(0)
}
