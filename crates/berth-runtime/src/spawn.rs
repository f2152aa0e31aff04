//! The parent side of starting a process in a container: clone, id maps, cgroup placement and
//! the sync protocol (see `docs/architecture.md`). Shared by `create`, `run` and `exec`.

use std::os::fd::AsFd;
use std::path::Path;

use berth_cgroups::Cgroup;
use oci_spec::runtime::{LinuxIdMapping, Spec};

use crate::init::{self, Config};
use crate::sync::{self, ChildFailed, Msg};

/// Errors on the parent side.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// clone3 failed.
    #[error("clone container process: {0}")]
    Clone(String),
    /// Writing an id map failed.
    #[error("write {file} for pid {pid}: {cause}")]
    IdMap {
        /// uid_map or gid_map.
        file: &'static str,
        /// The child.
        pid: i32,
        /// Why.
        cause: String,
    },
    /// Placing the child in its cgroup failed.
    #[error("join cgroup: {0}")]
    Cgroup(#[from] berth_cgroups::Error),
    /// The child failed or the protocol broke.
    #[error(transparent)]
    Child(#[from] ChildFailed),
    /// A createRuntime/prestart hook failed.
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    /// The sync channel itself.
    #[error(transparent)]
    Sync(#[from] sync::SyncError),
}

/// A started child: its pid (the container process, after any second fork).
pub struct Spawned {
    /// Pid of the container process in our pid namespace.
    pub pid: i32,
    /// The parent's end of the sync channel.
    pub channel: sync::Channel,
}

/// What the parent does while the child sets up.
pub struct ParentSide<'a> {
    /// The container's cgroup.
    pub cgroup: &'a Cgroup,
    /// The spec (id maps, hooks).
    pub spec: &'a Spec,
    /// The host's cgroup layout (to warm up a late v1 migration), if known.
    pub layout: Option<&'a berth_cgroups::Layout>,
    /// Place the child in its cgroup before it starts setting up (`exec`), rather than leaving
    /// it to the caller once setup is done (`create`: the kernel objects and pages that setup
    /// touches are then not charged to the container).
    pub place_early: bool,
}

/// Clone the child and take it through the first protocol steps (maps, cgroup, second fork).
/// Returns the container process pid; the caller continues the protocol on the channel.
pub fn spawn(config: Config<'_>, parent: &ParentSide<'_>) -> Result<Spawned, SpawnError> {
    let (ours, theirs) = sync::pair()?;
    let mut into = parent
        .cgroup
        .unified_dir()
        .and_then(|d| std::fs::File::open(d).ok());
    let new_user = config
        .plan
        .clone_flags
        .contains(nix::sched::CloneFlags::CLONE_NEWUSER);
    let unshare_user = config.plan.unshare_user;
    let second_fork = config.plan.second_fork;
    let flags = config.plan.clone_flags.bits() as u64;
    let mut config = config;
    config.placed = into.is_some() || parent.place_early;
    let forked = match berth_sys::clone3(flags, into.as_ref().map(|f| f.as_fd())) {
        // Old kernels (or a cgroup clone3 refuses): fall back to placing by pid, early.
        Err(e) if into.is_some() && e.raw_os_error() != Some(libc::ENOMEM) => {
            into = None;
            config.placed = true;
            berth_sys::clone3(flags, None).map_err(|e| SpawnError::Clone(crate::util::cause(&e)))?
        }
        other => other.map_err(|e| SpawnError::Clone(crate::util::cause(&e)))?,
    };
    let pid = match forked {
        berth_sys::Forked::Child => {
            drop(ours);
            init::child_main(config, theirs)
        }
        berth_sys::Forked::Parent { pid, .. } => pid,
    };
    drop(theirs);
    let place_by_pid = config.placed && into.is_none();
    let placed_before_go = config.placed;
    drop(config);
    let mut guard = KillOnDrop(Some(pid));
    if !placed_before_go {
        // The child is moved into its cgroup after its setup (v1/hybrid): pay the migration's
        // RCU grace period now, on a thread, while the child sets up (see warm_up_migration).
        if let Some(layout) = parent.layout {
            let layout = layout.clone();
            std::thread::spawn(move || layout.warm_up_migration());
        }
    }
    if new_user {
        write_maps(pid, parent.spec)?;
    }
    if place_by_pid {
        parent.cgroup.add_pid(pid)?;
    }
    ours.send(&Msg::Go)?;
    if unshare_user {
        sync::expect(&ours, Msg::MapRequest)?;
        write_maps(pid, parent.spec)?;
        ours.send(&Msg::Mapped)?;
    }
    let mut container_pid = pid;
    if second_fork {
        match ours.recv()? {
            Msg::Pid(p) => container_pid = p,
            Msg::Error(text) => return Err(ChildFailed::Step(text).into()),
            other => {
                return Err(
                    sync::SyncError::Protocol(format!("expected Pid, got {other:?}")).into(),
                )
            }
        }
        // The intermediate child exits right after reporting.
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        guard.0 = Some(container_pid);
        ours.send(&Msg::Go)?;
    }
    guard.0 = None;
    Ok(Spawned {
        pid: container_pid,
        channel: ours,
    })
}

/// Kill (and reap) a half-started child if setup fails.
pub struct KillOnDrop(pub Option<i32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            kill_and_reap(pid);
        }
    }
}

/// SIGKILL `pid` and reap it if it is our child.
pub fn kill_and_reap(pid: i32) {
    let pid = nix::unistd::Pid::from_raw(pid);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(pid, None);
}

fn write_maps(pid: i32, spec: &Spec) -> Result<(), SpawnError> {
    let linux = spec.linux().as_ref();
    let render = |maps: Option<&Vec<LinuxIdMapping>>| -> String {
        maps.into_iter()
            .flatten()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect()
    };
    for (file, maps) in [
        ("uid_map", linux.and_then(|l| l.uid_mappings().as_ref())),
        ("gid_map", linux.and_then(|l| l.gid_mappings().as_ref())),
    ] {
        let text = render(maps);
        if text.is_empty() {
            continue;
        }
        let path = Path::new("/proc").join(pid.to_string()).join(file);
        std::fs::write(&path, text).map_err(|e| SpawnError::IdMap {
            file,
            pid,
            cause: crate::util::cause(&e),
        })?;
    }
    Ok(())
}

/// Parent side of setup after spawn: run createRuntime hooks when asked, wait for `Ready`.
pub fn wait_ready(
    channel: &sync::Channel,
    spec: &Spec,
    state: &str,
    place: &dyn Fn() -> Result<(), berth_cgroups::Error>,
) -> Result<(), SpawnError> {
    loop {
        match channel.recv()? {
            Msg::Ready => return Ok(()),
            Msg::Place => {
                place()?;
                channel.send(&Msg::Placed)?;
            }
            Msg::RuntimeHooks => {
                crate::hooks::run_all(spec, crate::hooks::Kind::Prestart, state)?;
                crate::hooks::run_all(spec, crate::hooks::Kind::CreateRuntime, state)?;
                channel.send(&Msg::HooksDone)?;
            }
            Msg::Error(text) => return Err(ChildFailed::Step(text).into()),
            other => return Err(sync::SyncError::Protocol(format!("unexpected {other:?}")).into()),
        }
    }
}

/// Parent side of `exec` after spawn: wait until the process has exec'd `program` (the channel
/// closes on exec) or failed (a setup error, or the exec trampoline's errno).
pub fn wait_exec(channel: &sync::Channel, program: &str) -> Result<(), SpawnError> {
    sync::expect(channel, Msg::Execing)?;
    match channel.recv() {
        Err(sync::SyncError::Closed) => Ok(()),
        Ok(Msg::Error(text)) => Err(ChildFailed::Step(text).into()),
        Ok(Msg::ExecFailed(errno)) => {
            let cause = crate::util::cause(&std::io::Error::from_raw_os_error(errno));
            Err(ChildFailed::Step(format!("exec {program}: {cause}")).into())
        }
        Ok(other) => Err(sync::SyncError::Protocol(format!("unexpected {other:?}")).into()),
        Err(e) => Err(e.into()),
    }
}
