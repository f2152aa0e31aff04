//! One file per verb. Each returns the process exit code or an [`Error`].

mod create;
mod delete;
mod events;
mod exec;
mod features;
mod kill;
mod list;
mod pause;
mod ps;
mod run;
mod spec;
mod start;
mod state;
mod tty;
mod update;

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use crate::cli::{Cli, Command};
use crate::state::Store;

/// Errors of the commands.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// State store.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    /// Bundle config.
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    /// Namespace planning.
    #[error(transparent)]
    Plan(#[from] crate::init::PlanError),
    /// Starting the container process.
    #[error(transparent)]
    Spawn(#[from] crate::spawn::SpawnError),
    /// Cgroups.
    #[error(transparent)]
    Cgroup(#[from] berth_cgroups::Error),
    /// Seccomp.
    #[error(transparent)]
    Seccomp(#[from] crate::seccomp::SeccompError),
    /// Loading the exec trampoline failed.
    #[error(transparent)]
    Trampoline(#[from] crate::trampoline::TrampolineError),
    /// Re-executing from a read-only copy of the binary failed.
    #[error(transparent)]
    Guard(#[from] crate::exe_guard::GuardError),
    /// A hook.
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    /// A file operation.
    #[error("{op} {path}: {cause}")]
    Io {
        /// What.
        op: &'static str,
        /// Where.
        path: PathBuf,
        /// Why.
        cause: String,
    },
    /// The request does not fit the container's state or is malformed.
    #[error("{0}")]
    Invalid(String),
    /// Several teardown steps failed; all are listed.
    #[error("{}", .0.join("; "))]
    Teardown(Vec<String>),
}

/// Build an [`Error::Io`] mapper.
pub fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |e| Error::Io {
        op,
        path,
        cause: crate::util::cause(&e),
    }
}

/// Run the parsed command line.
pub fn dispatch(cli: Cli) -> Result<i32, Error> {
    if cli.systemd_cgroup {
        return Err(Error::Invalid(systemd_error()));
    }
    let store = || Store::open(&cli.root);
    match cli.command {
        Command::Create(args) => create::run(&store()?, &args).map(|_| 0),
        Command::Start { id } => start::run(&store()?, &id),
        Command::Run(args) => run::run(&store()?, &args),
        Command::State { id } => state::run(&store()?, &id),
        Command::Kill { all, id, signal } => kill::run(&store()?, &id, signal.as_deref(), all),
        Command::Delete { force, id } => delete::run(&store()?, &id, force),
        Command::List { format, quiet } => list::run(&store()?, format, quiet),
        Command::Ps {
            format,
            id,
            ps_args,
        } => ps::run(&store()?, &id, format, &ps_args),
        Command::Exec(args) => exec::run(&store()?, &args),
        Command::Pause { id } => pause::pause(&store()?, &id),
        Command::Resume { id } => pause::resume(&store()?, &id),
        Command::Update(args) => update::run(&store()?, &args),
        Command::Events {
            interval,
            stats,
            id,
        } => events::run(&store()?, &id, &interval, stats),
        Command::Spec { bundle, rootless } => spec::run(bundle, rootless),
        Command::Features => features::run(),
    }
}

fn systemd_error() -> String {
    if std::path::Path::new("/run/systemd/system").is_dir() {
        "--systemd-cgroup: the systemd cgroup driver is not supported by berth-runtime; use cgroupfs (omit the flag)".into()
    } else {
        "--systemd-cgroup: systemd is not running on this host (no /run/systemd/system), so the systemd cgroup driver cannot be used".into()
    }
}

/// Protect the runtime binary from the container (CVE-2019-5736 class) before anything is
/// set up: the exec trampoline for its process, or, when the container cannot use it (see
/// [`crate::trampoline`]), running from a read-only copy of this binary (re-executing now if
/// not, which starts the command over).
pub fn protect_binary(
    spec: &oci_spec::runtime::Spec,
    process: &oci_spec::runtime::Process,
) -> Result<Option<OwnedFd>, Error> {
    // Without the trampoline this re-executes mid-command when the binary is not read-only
    // yet: the command starts over (config parsed again), before anything was set up.
    match crate::trampoline::for_container(spec, process)? {
        Some(trampoline) => Ok(Some(trampoline)),
        None => {
            crate::exe_guard::ensure_read_only_exe()?;
            Ok(None)
        }
    }
}

/// Connect to `linux.seccomp.listenerPath` when the filter has notify rules (before clone, so
/// the child can reach the host path after pivot_root).
pub fn connect_listener(
    spec: &oci_spec::runtime::Spec,
    filter: Option<&crate::seccomp::Filter>,
) -> Result<Option<std::os::fd::OwnedFd>, Error> {
    if !filter.is_some_and(|f| f.needs_listener()) {
        return Ok(None);
    }
    let path = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .and_then(|s| s.listener_path().clone())
        .ok_or_else(|| {
            Error::Invalid(
                "invalid config.json: linux.seccomp.listenerPath: required when a rule uses SCMP_ACT_NOTIFY".into(),
            )
        })?;
    std::os::unix::net::UnixStream::connect(&path)
        .map(|s| Some(s.into()))
        .map_err(io("connect to seccomp listener", path))
}
