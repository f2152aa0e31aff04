//! `exec`: run a new process inside a running container.

use std::path::Path;

use oci_spec::runtime::{Capability, Process};

use super::{io, Error};
use crate::cli::ExecArgs;
use crate::init::{self, Config, Role};
use crate::spawn::{self, ParentSide};
use crate::state::{Status, Store};
use crate::util::write_replace;

/// Exec into `args.id`; returns the process's exit code (0 with `-d`).
pub fn run(store: &Store, args: &ExecArgs) -> Result<i32, Error> {
    let container = store.load(&args.id)?;
    match container.status() {
        Status::Running | Status::Created => {}
        Status::Paused if args.ignore_paused => {}
        Status::Paused => {
            return Err(Error::Invalid(
                "cannot exec in a paused container (use --ignore-paused to override)".into(),
            ))
        }
        _ => return Err(Error::Invalid("cannot exec in a stopped container".into())),
    }
    let saved = container.saved.clone();
    let process = build_process(&saved.spec, args)?;
    let trampoline = super::protect_binary(&saved.spec, &process)?;
    let cgroup = crate::cgroup::open(&saved)?;
    let seccomp = match saved
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
    {
        Some(profile) => Some(crate::seccomp_cache::compile_cached(profile, store.root())?),
        None => None,
    };
    let own_console = process.terminal() == Some(true) && args.console_socket.is_none();
    if own_console && args.detach {
        return Err(Error::Invalid(
            "cannot allocate tty if berth-runtime will detach without setting console socket"
                .into(),
        ));
    }
    let (console, console_socket) = if own_console {
        let (ours, theirs) = super::tty::pair()?;
        (Some(ours), Some(theirs))
    } else {
        let socket = args
            .console_socket
            .as_deref()
            .map(|p| {
                std::os::unix::net::UnixStream::connect(p)
                    .map(Into::into)
                    .map_err(io("connect to console socket", p))
            })
            .transpose()?;
        (None, socket)
    };
    let plan = init::namespaces::plan_exec(&saved.spec, saved.pid)?;
    // The container's lock is not needed while the process runs.
    drop(container);
    if !args.detach {
        super::run::block_signals()?;
        berth_sys::set_child_subreaper().map_err(io("set child subreaper", "/proc/self"))?;
    }
    let config = Config {
        id: &args.id,
        spec: &saved.spec,
        process: &process,
        rootfs: saved.rootfs.clone(),
        bundle: saved.bundle.clone(),
        role: Role::Exec,
        plan,
        console_socket,
        preserve_fds: args.preserve_fds,
        seccomp: seccomp.as_ref(),
        seccomp_listener: super::connect_listener(&saved.spec, seccomp.as_ref())?,
        host_pid: 0,
        placed: false,
        trampoline,
        cgroup_pending: false.into(),
    };
    let spawned = spawn::spawn(
        config,
        &ParentSide {
            cgroup: &cgroup,
            spec: &saved.spec,
            layout: None,
            place_early: true,
        },
    )?;
    let guard = spawn::KillOnDrop(Some(spawned.pid));
    let program = process.args().as_ref().and_then(|a| a.first()).cloned();
    spawn::wait_exec(&spawned.channel, program.as_deref().unwrap_or_default())?;
    if let Some(pid_file) = &args.pid_file {
        write_replace(pid_file, spawned.pid.to_string().as_bytes(), false)
            .map_err(io("write pid file", pid_file))?;
    }
    std::mem::forget(guard);
    if args.detach {
        return Ok(0);
    }
    let attached = console.map(|c| c.attach()).transpose()?;
    let code = super::run::wait_forwarding(spawned.pid, &|| {
        if let Some(a) = &attached {
            a.resize()
        }
    })?;
    if let Some(a) = attached {
        a.finish();
    }
    Ok(code)
}

fn build_process(spec: &oci_spec::runtime::Spec, args: &ExecArgs) -> Result<Process, Error> {
    if let Some(path) = &args.process {
        return load_process(path);
    }
    let mut process = spec.process().clone().unwrap_or_default();
    if args.args.is_empty() {
        return Err(Error::Invalid(
            "exec: no command given (args or --process required)".into(),
        ));
    }
    process.set_args(Some(args.args.clone()));
    process.set_terminal(Some(args.tty));
    if let Some(cwd) = &args.cwd {
        process.set_cwd(cwd.clone());
    }
    if !args.env.is_empty() {
        let mut env = process.env().clone().unwrap_or_default();
        env.extend(args.env.iter().cloned());
        process.set_env(Some(env));
    }
    let mut user = process.user().clone();
    if let Some(spec) = &args.user {
        let (uid, gid) = spec
            .split_once(':')
            .map_or((spec.as_str(), None), |(u, g)| (u, Some(g)));
        user.set_uid(
            uid.parse()
                .map_err(|_| Error::Invalid(format!("parsing {spec} as user: invalid uid")))?,
        );
        if let Some(gid) = gid {
            user.set_gid(
                gid.parse()
                    .map_err(|_| Error::Invalid(format!("parsing {spec} as user: invalid gid")))?,
            );
        }
    }
    if !args.additional_gids.is_empty() {
        user.set_additional_gids(Some(args.additional_gids.clone()));
    }
    process.set_user(user);
    if args.no_new_privs {
        process.set_no_new_privileges(Some(true));
    }
    if let Some(profile) = &args.apparmor {
        process.set_apparmor_profile(Some(profile.clone()));
    }
    if let Some(label) = &args.process_label {
        process.set_selinux_label(Some(label.clone()));
    }
    if !args.cap.is_empty() {
        let mut caps = process.capabilities().clone().unwrap_or_default();
        for name in &args.cap {
            let cap: Capability =
                serde_json::from_value(serde_json::Value::String(name.to_ascii_uppercase()))
                    .map_err(|_| Error::Invalid(format!("unknown capability {name:?}")))?;
            let add = |s: &Option<oci_spec::runtime::Capabilities>| {
                let mut s = s.clone().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            let (b, e, p) = (
                add(caps.bounding()),
                add(caps.effective()),
                add(caps.permitted()),
            );
            caps.set_bounding(b);
            caps.set_effective(e);
            caps.set_permitted(p);
        }
        process.set_capabilities(Some(caps));
    }
    Ok(process)
}

fn load_process(path: &Path) -> Result<Process, Error> {
    let text = std::fs::read(path).map_err(io("read process file", path))?;
    let mut de = serde_json::Deserializer::from_slice(&text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        Error::Invalid(format!(
            "invalid process file {}: {}: {}",
            path.display(),
            e.path(),
            e.inner()
        ))
    })
}
