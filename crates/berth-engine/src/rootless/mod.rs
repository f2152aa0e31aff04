//! Rootless mode: an unprivileged user runs Berth inside a user namespace of its own.
//!
//! As podman does, `berth` run by a non-root user joins the user and mount namespaces of a
//! per-user pause process (see [`pause`]) before doing anything else. Inside, it is uid 0 with
//! every capability of that namespace: the layer store can chown to the user's subordinate ids,
//! overlay mounts and network namespaces work, and `berth-runtime` / `berth-monitor` inherit the
//! namespaces. The uid map is 0 -> the user's uid, 1.. -> the user's /etc/subuid ranges
//! (written by newuidmap/newgidmap); without a subuid entry only the user's own id is mapped.
//!
//! Rootless is detected from `/proc/self/uid_map`, so the same answer holds in `berth` after it
//! joined and in every helper it spawns.

pub mod create;
pub mod pause;
pub mod subid;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use berth_storage::IdRange;

use crate::containers::userns::{is_initial, parse_proc_map};

/// This process's uid map (ranges of /proc/self/uid_map).
fn own_uid_map() -> Vec<IdRange> {
    parse_proc_map(&std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default())
}

/// Does this process run rootless: not root, or root only inside a user namespace that is not
/// the initial one (after joining the pause process, and in every helper spawned from there)?
pub fn is_rootless() -> bool {
    static ROOTLESS: OnceLock<bool> = OnceLock::new();
    *ROOTLESS.get_or_init(|| !rustix::process::geteuid().is_root() || !is_initial(&own_uid_map()))
}

/// The host uid behind this process's effective uid (the user who runs Berth rootless; the
/// euid itself outside a user namespace).
pub fn host_uid() -> u32 {
    let euid = rustix::process::geteuid().as_raw();
    own_uid_map()
        .into_iter()
        .find(|r| euid >= r.container && euid - r.container < r.size)
        .map_or(euid, |r| r.host + (euid - r.container))
}

/// Should `berth` join (or create) the pause process: a non-root user outside any namespace of
/// Berth's.
pub fn must_enter() -> bool {
    !rustix::process::geteuid().is_root()
}

/// Join the user's pause process's namespaces, creating it when missing. Call at the top of
/// `main`, before any thread exists; a no-op for root.
pub fn enter() -> Result<(), pause::PauseError> {
    if !must_enter() {
        return Ok(());
    }
    pause::join_or_create()
}

/// The image's supplementary groups of the container's user, or none when this user namespace
/// denies setgroups (rootless without subgid ranges: only the user's own gid is mapped), as runc
/// drops them there.
pub fn supplementary_gids(gids: Vec<u32>) -> Vec<u32> {
    let denied = std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny");
    if denied {
        Vec::new()
    } else {
        gids
    }
}

/// The line that refuses resource limits when they cannot be enforced rootless, or `None` when
/// they can (cgroup v2 with a delegated, writable user cgroup).
pub fn limits_unavailable() -> Option<String> {
    no_cgroup_reason()
        .map(|r| format!("resource limits cannot be enforced rootless on this host: {r}"))
}

/// Why rootless containers get no cgroup here, with how to enable one; `None` when rootful or
/// when a delegated cgroup v2 exists.
pub fn no_cgroup_reason() -> Option<&'static str> {
    if !is_rootless() || delegated_cgroup().is_some() {
        return None;
    }
    Some(
        "its cgroups are v1/hybrid (or v2 without a cgroup delegated to you), which cannot be \
         given to a user (to enable them, boot with cgroup v2 (systemd.unified_cgroup_hierarchy=1) \
         and delegate controllers to users with `Delegate=yes` in a drop-in for user@.service)",
    )
}

/// On a pure cgroup v2 host, the topmost ancestor of our own cgroup that we may write to (the
/// one systemd delegated, user@<uid>.service), relative to /sys/fs/cgroup; `None` on v1/hybrid
/// or without delegation. Rootless containers get their cgroups below it.
pub fn delegated_cgroup() -> Option<PathBuf> {
    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
    let root = Path::new("/sys/fs/cgroup");
    let statfs = rustix::fs::statfs(root).ok()?;
    if statfs.f_type != CGROUP2_SUPER_MAGIC {
        return None;
    }
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let own = PathBuf::from(
        own.lines()
            .find_map(|l| l.strip_prefix("0::"))?
            .trim_start_matches('/'),
    );
    let writable = |rel: &Path| {
        let dir = root.join(rel);
        rustix::fs::access(&dir, rustix::fs::Access::WRITE_OK).is_ok()
            && rustix::fs::access(
                dir.join("cgroup.subtree_control"),
                rustix::fs::Access::WRITE_OK,
            )
            .is_ok()
    };
    own.ancestors()
        .filter(|a| !a.as_os_str().is_empty() && writable(a))
        .last()
        .map(Path::to_path_buf)
}
