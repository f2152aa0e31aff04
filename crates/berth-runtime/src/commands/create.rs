//! `create`: set up a container and leave its process waiting for `start`.

use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use berth_cgroups::{Cgroup, Layout};

use super::{io, Error};
use crate::cli::CreateArgs;
use crate::init::{self, Config, Role};
use crate::spawn::{self, ParentSide};
use crate::state::{self, Container, Phase, Saved, Store};
use crate::util::write_replace;

/// A created container whose process is waiting on its exec fifo.
pub struct Created {
    /// Init pid.
    pub pid: i32,
    /// Its cgroup.
    pub cgroup: Cgroup,
    /// Its state, still locked.
    pub container: Container,
}

/// Create the container described by `args`.
pub fn run(store: &Store, args: &CreateArgs) -> Result<Created, Error> {
    with_bundle(store, args, crate::spec::load(&args.bundle)?, None)
}

/// Create the container from an already loaded bundle. `console` replaces `--console-socket`
/// (foreground `run` makes its own).
pub fn with_bundle(
    store: &Store,
    args: &CreateArgs,
    bundle: crate::spec::Bundle,
    console: Option<OwnedFd>,
) -> Result<Created, Error> {
    let process = bundle
        .spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::Invalid("process missing".into()))?;
    let trampoline = super::protect_binary(&bundle.spec, process)?;
    let (dir, lock) = store.reserve(&args.id)?;
    let mut undo = Undo {
        dir: Some(dir.clone()),
        cgroup: None,
        pid: None,
    };
    let spec = &bundle.spec;
    let fifo = open_exec_fifo(&dir)?;
    let layout = Layout::detect()?;
    let cgroup = Cgroup::open(&layout, &crate::cgroup::cgroups_path(spec), &args.id)?;
    let cgroup = crate::cgroup::rootless_or_made(cgroup, spec)?;
    undo.cgroup = Some(cgroup.clone());
    // On pure v2 the child is cloned straight into its cgroup, which must exist first. On
    // v1/hybrid it joins after its setup, so the cgroup is made while the child sets up.
    let cgroup_later = cgroup.unified_dir().is_none();
    if !cgroup_later {
        make_cgroup(&cgroup, spec)?;
    }
    let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(profile) => Some(crate::seccomp_cache::compile_cached(profile, store.root())?),
        None => None,
    };
    let console_socket = match console {
        Some(fd) => Some(fd),
        None => connect_console(args.console_socket.as_deref())?,
    };
    let plan = init::namespaces::plan_create(spec, cgroup.unified_dir().is_some())?;
    let created = crate::util::rfc3339_nano(SystemTime::now());
    let mut hook_state = creating_state(&args.id, &bundle);
    let config = Config {
        id: &args.id,
        spec,
        process,
        rootfs: bundle.rootfs.clone(),
        bundle: bundle.dir.clone(),
        role: Role::Init {
            fifo,
            no_pivot: args.no_pivot,
            no_new_keyring: args.no_new_keyring,
            cgroup_dirs: cgroup_dirs(&cgroup),
            hook_state: hook_state.to_string(),
        },
        plan,
        console_socket,
        preserve_fds: args.preserve_fds,
        seccomp: seccomp.as_ref(),
        seccomp_listener: super::connect_listener(spec, seccomp.as_ref())?,
        host_pid: 0,
        placed: false,
        trampoline,
        cgroup_pending: cgroup_later.into(),
    };
    let parent = ParentSide {
        cgroup: &cgroup,
        spec,
        layout: Some(&layout),
        place_early: false,
    };
    let spawned = spawn::spawn(config, &parent)?;
    undo.pid = Some(spawned.pid);
    if cgroup_later {
        if let Err(e) = make_cgroup_for(&cgroup, spec, &spawned.channel) {
            // Kill the child while the channel is still open, so it has nothing to report.
            drop(undo);
            return Err(e);
        }
    }
    // A `creating` record (not fsynced: it is replaced when setup is done, and a crash leaves
    // it marked incomplete either way) lets `state` report the status and pid meanwhile.
    let mut saved = Saved {
        id: args.id.clone(),
        pid: spawned.pid,
        pid_start: state::start_time(spawned.pid).unwrap_or(0),
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created,
        owner: String::new(),
        phase: Phase::Creating,
        spec: bundle.spec.clone(),
    };
    state::save_with(&dir, &saved, false)?;
    saved.phase = Phase::Created;
    hook_state["pid"] = spawned.pid.into();
    let finished = finish(
        &spawned,
        &cgroup,
        &hook_state.to_string(),
        &dir,
        &saved,
        args,
    );
    if let Err(e) = finished {
        // Kill the child while the channel is still open, so it cannot report a second error.
        drop(undo);
        return Err(e);
    }
    undo.disarm();
    Ok(Created {
        pid: spawned.pid,
        cgroup,
        container: Container::locked(dir, saved, lock),
    })
}

/// The exec fifo in the container's directory, opened read-write (so opening never blocks); the
/// child reads one byte from it on `start`.
fn open_exec_fifo(dir: &Path) -> Result<OwnedFd, Error> {
    let path = dir.join("exec.fifo");
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o622))
        .map_err(|e| io("create exec fifo", &path)(e.into()))?;
    Ok(std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(&path)
        .map_err(io("open exec fifo", &path))?
        .into())
}

/// The state document hooks get while the container is being created.
fn creating_state(id: &str, bundle: &crate::spec::Bundle) -> serde_json::Value {
    serde_json::json!({
        "ociVersion": bundle.spec.version(),
        "id": id,
        "status": "creating",
        "pid": 0,
        "bundle": bundle.dir,
        "annotations": bundle.spec.annotations(),
    })
}

/// The cgroup directories to bind at a `cgroup` mount, by hierarchy name (`name=systemd` as
/// `systemd`).
fn cgroup_dirs(cgroup: &Cgroup) -> Vec<(String, PathBuf)> {
    cgroup
        .paths()
        .into_iter()
        .map(|(name, dir)| match name.strip_prefix("name=") {
            Some(short) => (short.to_string(), dir),
            None => (name, dir),
        })
        .collect()
}

/// The late cgroup of v1/hybrid: make it while the child sets up, then tell the child.
fn make_cgroup_for(
    cgroup: &Cgroup,
    spec: &oci_spec::runtime::Spec,
    channel: &crate::sync::Channel,
) -> Result<(), Error> {
    make_cgroup(cgroup, spec)?;
    // If the child has failed meanwhile the send fails with EPIPE; its error report is already
    // queued on the channel and `wait_ready` reads it. Any other failure would leave the child
    // waiting for a message that will not come.
    match channel.send(&crate::sync::Msg::CgroupReady) {
        Err(e) if !e.is_peer_gone() => Err(spawn::SpawnError::from(e).into()),
        _ => Ok(()),
    }
}

/// The rest of setup: hooks and placement until `Ready`, then the created state and pid file.
fn finish(
    spawned: &spawn::Spawned,
    cgroup: &Cgroup,
    hook_state: &str,
    dir: &Path,
    saved: &Saved,
    args: &CreateArgs,
) -> Result<(), Error> {
    let pid = spawned.pid;
    spawn::wait_ready(&spawned.channel, &saved.spec, hook_state, &|| {
        cgroup.add_pid(pid)
    })
    .map_err(|e| diagnose(e, cgroup))?;
    state::save(dir, saved)?;
    match &args.pid_file {
        Some(pid_file) => write_replace(pid_file, pid.to_string().as_bytes(), false)
            .map_err(io("write pid file", pid_file)),
        None => Ok(()),
    }
}

/// Create the container's cgroup directories and apply `linux.resources` with the default
/// device rules.
fn make_cgroup(cgroup: &Cgroup, spec: &oci_spec::runtime::Spec) -> Result<(), Error> {
    if cgroup.has_no_directories() {
        return Ok(());
    }
    cgroup.make_dirs()?;
    if let Some(resources) = crate::cgroup::resources_with_default_devices(spec) {
        cgroup.apply(&resources)?;
    }
    Ok(())
}

/// A child that vanished without a word was most likely OOM-killed: say so, as runc does.
fn diagnose(err: spawn::SpawnError, cgroup: &Cgroup) -> Error {
    use crate::sync::{ChildFailed, SyncError};
    match err {
        spawn::SpawnError::Child(ChildFailed::Sync(SyncError::Closed))
        | spawn::SpawnError::Sync(SyncError::Closed)
            if crate::cgroup::oom_kills(cgroup) > 0 =>
        {
            Error::Invalid("container init was OOM-killed (memory limit too low?)".into())
        }
        other => other.into(),
    }
}

fn connect_console(path: Option<&std::path::Path>) -> Result<Option<OwnedFd>, Error> {
    path.map(|p| {
        UnixStream::connect(p)
            .map(OwnedFd::from)
            .map_err(io("connect to console socket", p))
    })
    .transpose()
}

/// What a failed create leaves behind, removed on drop: the process, the cgroup, the state.
struct Undo {
    dir: Option<std::path::PathBuf>,
    cgroup: Option<Cgroup>,
    pid: Option<i32>,
}

impl Undo {
    fn disarm(&mut self) {
        self.dir = None;
        self.cgroup = None;
        self.pid = None;
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            spawn::kill_and_reap(pid);
        }
        if let Some(cgroup) = self.cgroup.take() {
            let _ = cgroup.kill_all(libc::SIGKILL);
            if let Err(e) = cgroup.destroy() {
                eprintln!("cleanup: remove cgroup: {e}");
            }
        }
        if let Some(dir) = self.dir.take() {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                eprintln!(
                    "cleanup: remove {}: {}",
                    dir.display(),
                    crate::util::cause(&e)
                );
            }
        }
    }
}
