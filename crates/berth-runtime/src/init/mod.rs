//! The child side: everything between clone and exec, as an ordered list of named steps.
//!
//! This code runs in a freshly cloned, single-threaded process. It must not panic; every
//! failure becomes a [`StepError`] that travels back to the parent over the sync channel as
//! `step: cause`, after which the child exits.

mod caps;
mod console;
mod devices;
mod exec;
mod mounts;
pub mod namespaces;
mod process;
mod rootfs;

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;

use oci_spec::runtime::{Process, Spec};

use crate::seccomp::Filter;
use crate::sync::{Channel, Msg};

pub use namespaces::{Plan, PlanError};

/// A failed step: `step` names what was being done, `cause` why it failed.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {cause}")]
pub struct StepError {
    /// What was being done, e.g. `mount proc to /proc`.
    pub step: String,
    /// Why it failed, e.g. `permission denied`.
    pub cause: String,
}

/// Attach a step name to an error.
pub trait Step<T> {
    /// Name the step this result belongs to.
    fn step(self, step: impl FnOnce() -> String) -> Result<T, StepError>;
}

impl<T, E: Into<io::Error>> Step<T> for Result<T, E> {
    fn step(self, step: impl FnOnce() -> String) -> Result<T, StepError> {
        self.map_err(|e| StepError {
            step: step(),
            cause: crate::util::cause(&e.into()),
        })
    }
}

/// Build a step error from a message.
pub fn fail(step: impl Into<String>, cause: impl Into<String>) -> StepError {
    StepError {
        step: step.into(),
        cause: cause.into(),
    }
}

/// What the container's process is: the init of a new container, or an `exec` into one.
pub enum Role {
    /// `create`: set up the whole container, then wait on the exec fifo for `start`.
    Init {
        /// Read end of the exec fifo (opened read-write so opening never blocks).
        fifo: OwnedFd,
        /// `--no-pivot`.
        no_pivot: bool,
        /// `--no-new-keyring`.
        no_new_keyring: bool,
        /// Cgroup directories to bind at the spec's cgroup mounts: (hierarchy name, host dir).
        cgroup_dirs: Vec<(String, PathBuf)>,
        /// The state document hooks get on stdin (status "creating").
        hook_state: String,
    },
    /// `exec`: join the namespaces of the container's init (already opened by the parent).
    Exec,
}

/// Everything the child needs; prepared by the parent before clone so the child allocates little.
pub struct Config<'a> {
    /// The container's id.
    pub id: &'a str,
    /// The container's configuration.
    pub spec: &'a Spec,
    /// The process to run (the spec's, or exec's `--process`).
    pub process: &'a Process,
    /// Absolute rootfs path on the host.
    pub rootfs: PathBuf,
    /// Bundle directory (relative mount sources are resolved against it).
    pub bundle: PathBuf,
    /// Container init or exec.
    pub role: Role,
    /// How namespaces are entered.
    pub plan: Plan,
    /// Connected `--console-socket`, when the process has a terminal.
    pub console_socket: Option<OwnedFd>,
    /// `--preserve-fds`: fds 3..3+N stay open across exec.
    pub preserve_fds: i32,
    /// Compiled seccomp filter.
    pub seccomp: Option<&'a Filter>,
    /// Connected `linux.seccomp.listenerPath`, when the filter has SCMP_ACT_NOTIFY rules.
    pub seccomp_listener: Option<OwnedFd>,
    /// The parent placed us in our cgroup before `Go` (exec, or clone3 into the cgroup).
    pub placed: bool,
    /// Our pid in the runtime's pid namespace (read from the host's /proc before pivot_root).
    pub host_pid: i32,
    /// The exec trampoline (a sealed memfd), when the process execs through it.
    pub trampoline: Option<OwnedFd>,
    /// The parent creates our cgroup while we set up and says `CgroupReady` when it is done
    /// (v1/hybrid `create`); cleared once that message has been taken.
    pub cgroup_pending: std::cell::Cell<bool>,
}

/// Wait for `CgroupReady` if the parent is still making our cgroup; a no-op afterwards.
fn wait_for_cgroup(config: &Config<'_>, channel: &Channel) -> Result<(), StepError> {
    if config.cgroup_pending.replace(false) {
        crate::sync::expect(channel, Msg::CgroupReady)
            .map_err(|e| fail("wait for the cgroup", e.to_string()))?;
    }
    Ok(())
}

/// Run the child side and never return: exec the container's process, or report and exit.
pub fn child_main(config: Config<'_>, channel: Channel) -> ! {
    let err = match run(config, &channel) {
        Ok(never) => match never {},
        Err(err) => err,
    };
    // After `create` has returned nobody reads the channel; then stderr is the only way out.
    if channel.send(&Msg::Error(err.to_string())).is_err() {
        eprintln!("berth-runtime: {err}");
    }
    berth_sys::exit_now(1)
}

enum Never {}

fn run(mut config: Config<'_>, channel: &Channel) -> Result<Never, StepError> {
    // Nobody but root in the initial user namespace may ptrace us or open /proc/self/exe
    // while we run the runtime's code in the container's namespaces; execve resets it.
    // (In a user namespace the container's root is not the binary's owner, and a non-dumpable
    // process could not write its own /proc files there.)
    let userns = config.plan.new_userns
        || config.plan.unshare_user
        || config
            .plan
            .join
            .iter()
            .any(|(flag, _)| *flag == nix::sched::CloneFlags::CLONE_NEWUSER);
    if !userns {
        berth_sys::set_dumpable(false).step(|| "make the process non-dumpable".into())?;
    }
    // Deliver SIGKILL to us if the runtime dies before we are done.
    berth_sys::set_parent_death_signal(libc::SIGKILL).step(|| "set parent death signal".into())?;
    namespaces::enter(&mut config, channel)?;
    process::set_oom_score_adj(config.process)?;
    let exec = match config.role {
        Role::Init { .. } => init_container(&mut config, channel)?,
        Role::Exec => {
            // Like runc, every container process leads its own session, so a terminal can
            // become its controlling terminal (TIOCSCTTY needs a session leader).
            nix::unistd::setsid().step(|| "setsid".into())?;
            let exec = process::prepare(&config)?;
            console::setup(&mut config)?;
            exec
        }
    };
    wait_for_cgroup(&config, channel)?;
    if matches!(config.role, Role::Init { .. }) && !config.placed {
        channel
            .send(&Msg::Place)
            .step(|| "ask to join the cgroup".into())?;
        crate::sync::expect(channel, Msg::Placed)
            .map_err(|e| fail("wait for cgroup placement", e.to_string()))?;
    }
    if config.plan.late_cgroupns {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
            .step(|| "unshare cgroup namespace".into())?;
    }
    process::finalize(&config)?;
    // From here the process outlives the runtime (`create` and `exec -d` exit after the next
    // message), so it must no longer die with it.
    berth_sys::set_parent_death_signal(0).step(|| "clear parent death signal".into())?;
    if let Role::Init {
        fifo, hook_state, ..
    } = &config.role
    {
        channel.send(&Msg::Ready).step(|| "report ready".into())?;
        process::wait_for_start(fifo)?;
        crate::hooks::run_all(
            config.spec,
            crate::hooks::Kind::StartContainer,
            &state_here(hook_state, "created"),
        )
        .map_err(|e| fail("startContainer hook", e.to_string()))?;
    } else {
        channel.send(&Msg::Execing).step(|| "report exec".into())?;
    }
    let trampoline = config.trampoline.as_ref().map(AsFd::as_fd);
    Err(exec::exec(
        &exec,
        config.preserve_fds,
        trampoline,
        channel.as_raw_fd(),
    ))
}

/// `create`'s setup of a new container, up to just before the user switch.
fn init_container(config: &mut Config<'_>, channel: &Channel) -> Result<exec::Prepared, StepError> {
    nix::unistd::setsid().step(|| "setsid".into())?;
    // Modes from the config (devices' fileMode, mount points) are taken as given; the
    // process's own umask is set right before exec.
    berth_sys::set_umask(0);
    let root = rootfs::prepare(config)?;
    mounts::mount_all(config, &root, channel)?;
    devices::setup(config, &root)?;
    if config.spec.hooks().is_some() {
        wait_for_cgroup(config, channel)?;
        channel
            .send(&Msg::RuntimeHooks)
            .step(|| "request createRuntime hooks".into())?;
        crate::sync::expect(channel, Msg::HooksDone)
            .map_err(|e| fail("createRuntime hooks", e.to_string()))?;
        if let Role::Init { hook_state, .. } = &config.role {
            crate::hooks::run_all(
                config.spec,
                crate::hooks::Kind::CreateContainer,
                &state_here(hook_state, "creating"),
            )
            .map_err(|e| fail("createContainer hook", e.to_string()))?;
        }
    }
    rootfs::enter(config, root)?;
    console::setup(config)?;
    // Sysctls first: readonlyPaths makes /proc/sys read-only.
    process::set_names_and_sysctls(config)?;
    rootfs::finish(config)?;
    if let Role::Init {
        no_new_keyring: false,
        ..
    } = config.role
    {
        process::join_keyring()?;
    }
    process::prepare(config)
}

/// The hook state as the container sees itself: its own pid (as runc sends) and `status`.
fn state_here(state: &str, status: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(state).unwrap_or_default();
    v["pid"] = std::process::id().into();
    v["status"] = status.into();
    v.to_string()
}
