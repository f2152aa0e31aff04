//! How the child gets its namespaces, planned by the parent before clone.
//!
//! Fast path: every namespace is new, so they all ride on `clone3` and there is no second fork.
//! Slow path (a namespace joined by path, or a time namespace with offsets): the child joins
//! (`setns`) first, then unshares a user namespace and asks for its id maps, then unshares the
//! rest, and forks once more when a pid or time namespace only applies to children.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::{fail, Config, Step, StepError};
use crate::sync::{Channel, Msg};

/// The namespace plan.
pub struct Plan {
    /// Flags for `clone3` itself.
    pub clone_flags: CloneFlags,
    /// Namespaces to join, opened by the parent: user first, mount last.
    pub join: Vec<(CloneFlags, OwnedFd)>,
    /// Slow path: unshare a user namespace after joining, then ask for maps.
    pub unshare_user: bool,
    /// Namespaces the child unshares itself after joining (and the cgroup namespace, which must
    /// be created after the child is in its cgroup unless `CLONE_INTO_CGROUP` placed it).
    pub unshare_flags: CloneFlags,
    /// Lines for /proc/self/timens_offsets, written after unsharing the time namespace.
    pub time_offsets: Vec<String>,
    /// Unshare the cgroup namespace right before exec, once the process is in its cgroup.
    pub late_cgroupns: bool,
    /// A pid or time namespace that only applies to children: fork once more.
    pub second_fork: bool,
    /// The process ends up in a new user namespace whose maps the parent writes.
    pub new_userns: bool,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            clone_flags: CloneFlags::empty(),
            join: Vec::new(),
            unshare_user: false,
            unshare_flags: CloneFlags::empty(),
            time_offsets: Vec::new(),
            late_cgroupns: false,
            second_fork: false,
            new_userns: false,
        }
    }
}

/// Errors while planning (in the parent).
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A namespace path could not be opened.
    #[error("open {kind} namespace {path}: {cause}")]
    Open {
        /// Namespace type.
        kind: &'static str,
        /// Path from the spec.
        path: String,
        /// Why.
        cause: String,
    },
    /// A timeOffsets entry is malformed.
    #[error("invalid config.json: linux.timeOffsets.{0}: {1}")]
    TimeOffset(String, String),
}

/// The clone flag of a namespace type.
pub fn clone_flags(typ: LinuxNamespaceType) -> CloneFlags {
    match typ {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CLONE_NEWTIME,
    }
}

/// `CLONE_NEWTIME` (not in nix's enum).
pub const CLONE_NEWTIME: CloneFlags = CloneFlags::from_bits_retain(0x80);

/// Join order: user first (it grants the rights to join the others), mount last (it changes
/// what paths mean).
fn join_rank(flag: CloneFlags) -> u8 {
    if flag == CloneFlags::CLONE_NEWUSER {
        0
    } else if flag == CloneFlags::CLONE_NEWNS {
        2
    } else {
        1
    }
}

/// Plan a new container's namespaces. `into_cgroup`: clone3 places the child in its cgroup.
pub fn plan_create(spec: &Spec, into_cgroup: bool) -> Result<Plan, PlanError> {
    let mut plan = Plan::default();
    let namespaces = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    let offsets = time_offsets(spec)?;
    let slow = namespaces.iter().any(|ns| ns.path().is_some())
        || (!offsets.is_empty()
            && namespaces
                .iter()
                .any(|ns| ns.typ() == LinuxNamespaceType::Time));
    for ns in &namespaces {
        let flag = clone_flags(ns.typ());
        match ns.path() {
            Some(path) => plan.join.push((flag, open_ns(ns.typ(), path)?)),
            // The cgroup namespace's root is the cgroup we are in when we unshare it; without
            // CLONE_INTO_CGROUP we are placed late (see spawn.rs), so it is made after `start`.
            None if flag == CloneFlags::CLONE_NEWCGROUP && !into_cgroup => {
                plan.late_cgroupns = true
            }
            None if slow && flag == CloneFlags::CLONE_NEWUSER => plan.unshare_user = true,
            None if slow => plan.unshare_flags |= flag,
            None => plan.clone_flags |= flag,
        }
        if ns.path().is_none() && flag == CloneFlags::CLONE_NEWUSER {
            plan.new_userns = true;
        }
    }
    plan.join.sort_by_key(|(flag, _)| join_rank(*flag));
    if slow {
        let joins_pid = plan
            .join
            .iter()
            .any(|(f, _)| *f == CloneFlags::CLONE_NEWPID || *f == CLONE_NEWTIME);
        let new_pid_or_time = plan
            .unshare_flags
            .intersects(CloneFlags::CLONE_NEWPID | CLONE_NEWTIME);
        plan.second_fork = joins_pid || new_pid_or_time;
        plan.time_offsets = offsets;
    }
    Ok(plan)
}

/// Plan an `exec`: join every namespace the container's init has that the spec lists.
pub fn plan_exec(spec: &Spec, pid: i32) -> Result<Plan, PlanError> {
    let mut plan = Plan::default();
    let namespaces = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    for ns in &namespaces {
        let name = proc_ns_name(ns.typ());
        let path = format!("/proc/{pid}/ns/{name}");
        let flag = clone_flags(ns.typ());
        if same_namespace(&path, name) {
            continue; // e.g. the host network: setns to our own user namespace is an error
        }
        plan.second_fork |= flag == CloneFlags::CLONE_NEWPID || flag == CLONE_NEWTIME;
        plan.join
            .push((flag, open_ns(ns.typ(), std::path::Path::new(&path))?));
    }
    plan.join.sort_by_key(|(flag, _)| join_rank(*flag));
    Ok(plan)
}

fn same_namespace(path: &str, name: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (
        std::fs::metadata(path),
        std::fs::metadata(format!("/proc/self/ns/{name}")),
    ) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

fn proc_ns_name(typ: LinuxNamespaceType) -> &'static str {
    match typ {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
        other => crate::spec::ns_name(other),
    }
}

fn open_ns(typ: LinuxNamespaceType, path: &std::path::Path) -> Result<OwnedFd, PlanError> {
    File::open(path)
        .map(OwnedFd::from)
        .map_err(|e| PlanError::Open {
            kind: crate::spec::ns_name(typ),
            path: path.display().to_string(),
            cause: crate::util::cause(&e),
        })
}

fn time_offsets(spec: &Spec) -> Result<Vec<String>, PlanError> {
    let Some(offsets) = spec.linux().as_ref().and_then(|l| l.time_offsets().clone()) else {
        return Ok(Vec::new());
    };
    let mut lines = Vec::new();
    for (clock, value) in offsets {
        let secs = value.secs().unwrap_or(0);
        let nanos = value.nanosecs().unwrap_or(0);
        if nanos >= 1_000_000_000 {
            return Err(PlanError::TimeOffset(
                clock,
                format!("nanosecs {nanos} is not below one second"),
            ));
        }
        if clock != "monotonic" && clock != "boottime" {
            return Err(PlanError::TimeOffset(clock, "unknown clock".into()));
        }
        lines.push(format!("{clock} {secs} {nanos}"));
    }
    Ok(lines)
}

/// Join `joins` (user first, mount last), as runc does: a namespace the caller may not join
/// before the user namespace (one that namespace owns, when the caller is not root on the
/// host) is retried after it; one it may not join after it (the host-owned network namespace
/// of a container with its own user namespace) is joined before it.
fn join_all(joins: &[(CloneFlags, OwnedFd)]) -> Result<(), StepError> {
    let join = |(flag, fd): &(CloneFlags, OwnedFd)| nix::sched::setns(fd.as_fd(), *flag);
    let step = |flag: CloneFlags| move || format!("join {} namespace", flag_name(flag));
    let (user, others): (Vec<_>, Vec<_>) = joins
        .iter()
        .partition(|(flag, _)| *flag == CloneFlags::CLONE_NEWUSER);
    let mut later = Vec::new();
    for ns in others.iter().filter(|_| !user.is_empty()) {
        match join(ns) {
            Err(nix::errno::Errno::EPERM) => later.push(*ns),
            other => other.step(step(ns.0))?,
        }
    }
    if user.is_empty() {
        later = others;
    }
    for ns in user.iter().chain(later.iter()) {
        join(ns).step(step(ns.0))?;
    }
    Ok(())
}

/// Child side: wait for the parent's go, then join, unshare and fork as planned.
pub(super) fn enter(config: &mut Config<'_>, channel: &Channel) -> Result<(), StepError> {
    crate::sync::expect(channel, Msg::Go).map_err(|e| fail("wait for parent", e.to_string()))?;
    let plan = &config.plan;
    join_all(&plan.join)?;
    if plan.unshare_user {
        nix::sched::unshare(CloneFlags::CLONE_NEWUSER).step(|| "unshare user namespace".into())?;
        channel
            .send(&Msg::MapRequest)
            .step(|| "request id maps".into())?;
        crate::sync::expect(channel, Msg::Mapped)
            .map_err(|e| fail("wait for id maps", e.to_string()))?;
    }
    if plan.new_userns {
        nix::unistd::setresgid(0.into(), 0.into(), 0.into())
            .step(|| "become root in the user namespace (setresgid)".into())?;
        nix::unistd::setresuid(0.into(), 0.into(), 0.into())
            .step(|| "become root in the user namespace (setresuid)".into())?;
    }
    if !plan.unshare_flags.is_empty() {
        nix::sched::unshare(plan.unshare_flags).step(|| "unshare namespaces".into())?;
    }
    if !plan.time_offsets.is_empty() {
        let text = plan.time_offsets.join("\n");
        std::fs::write("/proc/self/timens_offsets", text).step(|| "write time offsets".into())?;
    }
    if plan.second_fork {
        match berth_sys::fork().step(|| "fork into the pid namespace".into())? {
            berth_sys::Forked::Parent { pid, .. } => {
                let _ = channel.send(&Msg::Pid(pid));
                berth_sys::exit_now(0);
            }
            // Our parent, the intermediate, exits right away on purpose: no death signal here.
            // Wait until the runtime has our pid, so our messages cannot overtake it.
            berth_sys::Forked::Child => crate::sync::expect(channel, Msg::Go)
                .map_err(|e| fail("wait for the runtime to take our pid", e.to_string()))?,
        }
    }
    // Namespace fds are not needed any more and must not reach the container.
    config.plan.join.clear();
    // /proc is still the runtime's here, so /proc/self names our pid as the host sees it.
    config.host_pid = std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str()?.parse().ok())
        .unwrap_or(0);
    Ok(())
}

fn flag_name(flag: CloneFlags) -> &'static str {
    for typ in [
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Cgroup,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::User,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Time,
    ] {
        if clone_flags(typ) == flag {
            return crate::spec::ns_name(typ);
        }
    }
    "unknown"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(namespaces: serde_json::Value) -> Spec {
        let v = serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"args": ["/bin/true"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": namespaces}
        });
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn all_new_namespaces_ride_on_clone() {
        let s = spec(
            serde_json::json!([{"type":"pid"},{"type":"network"},{"type":"mount"},{"type":"user"},{"type":"cgroup"}]),
        );
        let plan = plan_create(&s, true).unwrap();
        assert!(plan.clone_flags.contains(
            CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWCGROUP
        ));
        assert!(!plan.second_fork);
        assert!(plan.new_userns);
        // Without CLONE_INTO_CGROUP the cgroup namespace waits until the child is placed.
        let plan = plan_create(&s, false).unwrap();
        assert!(!plan.clone_flags.contains(CloneFlags::CLONE_NEWCGROUP));
        assert!(plan.late_cgroupns);
    }

    #[test]
    fn joining_a_pid_namespace_forks_twice() {
        let s =
            spec(serde_json::json!([{"type":"pid","path":"/proc/self/ns/pid"},{"type":"mount"}]));
        let plan = plan_create(&s, false).unwrap();
        assert!(plan.second_fork);
        assert_eq!(plan.unshare_flags, CloneFlags::CLONE_NEWNS);
        assert!(plan.clone_flags.is_empty());
    }

    #[test]
    fn missing_namespace_path_names_it() {
        let s = spec(serde_json::json!([{"type":"network","path":"/nonexistent/ns"}]));
        let err = plan_create(&s, false).err().unwrap().to_string();
        assert!(err.contains("network namespace /nonexistent/ns"), "{err}");
    }
}
