//! `run`, `create`, `start`, `stop`, `kill`, `restart`, `rm`, `wait`, `pause`, `unpause`,
//! `rename`, `update`, `exec`, `port`, `container prune`, `container cleanup`.

use std::os::fd::AsFd;

use anyhow::{bail, Context, Result};
use berth_engine::containers::attach::{relay, Relay};
use berth_engine::containers::exec::ExecOptions;
use berth_engine::containers::{config_of, ContainerError, CreateOptions, Engine};
use berth_engine::spec::parse;
use berth_engine::state::Status;

use super::run_flags::{create_options, PullPolicy, RunFlags};
use crate::cli::{
    ContainerPruneArgs, ContainersArgs, ExecArgs, KillArgs, PortArgs, RenameArgs, RmArgs, RunArgs,
    StartArgs, StopArgs, UpdateArgs,
};
use crate::format::human_size;

/// What a command wants the process to exit with.
pub type Code = i32;

/// `create`: prints the new container's ID.
pub fn create(engine: &mut Engine, args: &RunArgs) -> Result<Code> {
    let opts = options(args)?;
    let c = create_pulling(engine, &opts, &args.flags)?;
    engine.release_rootfs(&c.id)?;
    println!("{}", c.id);
    Ok(0)
}

/// `run`: create, start, and (without `-d`) attach until it exits, exiting with its code.
pub fn run(engine: &mut Engine, args: &RunArgs) -> Result<Code> {
    let opts = options(args)?;
    let detach = args.flags.detach;
    let c = create_pulling(engine, &opts, &args.flags)?;
    let console = berth_engine::containers::start::terminal_size();
    let started = match engine.start(&c.id, !detach, console) {
        Ok(s) => s,
        Err(e) => {
            if opts.auto_remove {
                let _ = engine.remove(&c.id, true, true);
            }
            // docker: 127 when the command cannot be found, 126 when it cannot be run.
            let text = e.to_string();
            if let Some(code) = exec_failure_code(&text) {
                eprintln!("Error: {text}");
                return Ok(code);
            }
            return Err(e.into());
        }
    };
    if detach {
        warn_unhandled_stop_signal(&started.container);
        println!("{}", c.id);
        return Ok(0);
    }
    let mut monitor = started.monitor;
    let Some(sock) = started.attach else {
        bail!("internal error: no attach connection");
    };
    let config = config_of(&started.container);
    let runtime = engine.runtime_of(&started.container);
    let id = c.id.clone();
    let mut forward = |sig: i32| {
        let _ = runtime.run(&["kill", id.as_str(), &sig.to_string()]);
    };
    let code = relay(
        sock.as_fd(),
        Relay {
            stdin: config.stdin_open,
            tty: config.tty,
            on_signal: &mut forward,
        },
    )?;
    drop(sock);
    // The monitor becomes the cleanup command: once it exits, the exit is recorded (and a
    // `--rm` container removed).
    let _ = monitor.wait();
    match code {
        Some(code) => Ok(code),
        // The connection ended without the exit frame: the record has the code, or, for a
        // `--rm` container already removed, the note its cleanup left.
        None => Ok(engine
            .get(&c.id)
            .ok()
            .and_then(|c| c.exit_code)
            .or_else(|| {
                berth_engine::containers::cleanup::removed_exit_code(&engine.run_root, &c.id)
            })
            .unwrap_or(255)),
    }
}

/// docker's status for a container command that could not be executed.
fn exec_failure_code(message: &str) -> Option<Code> {
    let m = message.to_ascii_lowercase();
    if m.contains("executable file not found") || m.contains("no such file or directory") {
        Some(127)
    } else if m.contains("permission denied") || m.contains("exec format error") {
        Some(126)
    } else {
        None
    }
}

fn options(args: &RunArgs) -> Result<CreateOptions> {
    Ok(create_options(
        &args.flags,
        args.image.clone(),
        args.command.clone(),
    )?)
}

/// Create; pull the image first if it is missing (docker's `--pull missing`).
fn create_pulling(
    engine: &mut Engine,
    opts: &CreateOptions,
    flags: &RunFlags,
) -> Result<berth_engine::state::Container> {
    if flags.pull == PullPolicy::Always {
        super::registry::pull_quietly(&engine.images, &opts.image, opts.platform.as_deref())?;
    }
    match engine.create(opts) {
        Err(ContainerError::NoSuchImage(name)) if flags.pull == PullPolicy::Missing => {
            super::registry::pull_quietly(&engine.images, &name, opts.platform.as_deref())
                .with_context(|| {
                    format!("Unable to find image '{name}' locally, and pulling it failed")
                })?;
            Ok(engine.create(opts)?)
        }
        other => Ok(other?),
    }
}

/// docker's warning when a stop will have to wait for the timeout.
fn warn_unhandled_stop_signal(c: &berth_engine::state::Container) {
    let config = config_of(c);
    if config.init {
        return;
    }
    if let Some(pid) = c.pid {
        // Give PID 1 a moment to install its handlers.
        std::thread::sleep(std::time::Duration::from_millis(50));
        if !berth_engine::containers::stop::has_handler(pid, &config.stop_signal) {
            eprintln!(
                "{}",
                unhandled_warning(&c.name, &config.stop_signal, config.stop_timeout)
            );
        }
    }
}

fn unhandled_warning(name: &str, signal: &str, timeout: i64) -> String {
    format!(
        "WARNING: {name}: PID 1 has no handler for {signal} and runs without an init \
         (--no-init): the kernel does not deliver unhandled signals to PID 1, so `berth stop` \
         will wait the full {timeout}s and then SIGKILL it. Use --init, or handle {signal}."
    )
}

/// `start`.
pub fn start(engine: &mut Engine, args: &StartArgs) -> Result<Code> {
    let mut code = 0;
    for name in &args.containers {
        let attach = args.attach && args.containers.len() == 1;
        match engine.start(
            name,
            attach,
            berth_engine::containers::start::terminal_size(),
        ) {
            Ok(started) if attach => {
                let Some(sock) = started.attach else { continue };
                let config = config_of(&started.container);
                let runtime = engine.runtime_of(&started.container);
                let id = started.container.id.clone();
                let mut forward = |sig: i32| {
                    let _ = runtime.run(&["kill", id.as_str(), &sig.to_string()]);
                };
                let exit = relay(
                    sock.as_fd(),
                    Relay {
                        stdin: args.interactive && config.stdin_open,
                        tty: config.tty,
                        on_signal: &mut forward,
                    },
                )?;
                let mut monitor = started.monitor;
                let _ = monitor.wait();
                return Ok(exit.unwrap_or(0));
            }
            Ok(_) => println!("{name}"),
            Err(e) => {
                eprintln!("Error response from daemon: {e}");
                code = 1;
            }
        }
    }
    if code != 0 {
        eprintln!(
            "Error: failed to start containers: {}",
            args.containers.join(", ")
        );
    }
    Ok(code)
}

/// `stop`.
pub fn stop(engine: &mut Engine, args: &StopArgs) -> Result<Code> {
    each(&args.containers, |name| {
        let c = engine.get(name)?;
        let config = config_of(&c);
        if let Some(pid) = c.pid.filter(|_| c.status == Status::Running) {
            let signal = args.signal.clone().unwrap_or(config.stop_signal.clone());
            if !config.init && !berth_engine::containers::stop::has_handler(pid, &signal) {
                let timeout = args.time.unwrap_or(config.stop_timeout);
                eprintln!("{}", unhandled_warning(&c.name, &signal, timeout));
            }
        }
        engine.stop(name, args.time, args.signal.as_deref())?;
        println!("{name}");
        Ok(())
    })
}

/// `restart`: stop, then start.
pub fn restart(engine: &mut Engine, args: &StopArgs) -> Result<Code> {
    each(&args.containers, |name| {
        engine.stop(name, args.time, args.signal.as_deref())?;
        engine.start(name, false, None)?;
        println!("{name}");
        Ok(())
    })
}

/// `kill`.
pub fn kill(engine: &mut Engine, args: &KillArgs) -> Result<Code> {
    each(&args.containers, |name| {
        engine.kill(name, &args.signal)?;
        println!("{name}");
        Ok(())
    })
}

/// `rm`.
pub fn rm(engine: &mut Engine, args: &RmArgs) -> Result<Code> {
    each(&args.containers, |name| {
        engine.remove(name, args.force, args.volumes)?;
        println!("{name}");
        Ok(())
    })
}

/// `wait`: each container's exit code, in order.
pub fn wait(engine: &mut Engine, args: &ContainersArgs) -> Result<Code> {
    each(&args.containers, |name| {
        let code = engine.wait(name)?;
        println!("{code}");
        Ok(())
    })
}

/// `pause`.
pub fn pause(engine: &mut Engine, args: &ContainersArgs) -> Result<Code> {
    each(&args.containers, |name| {
        engine.pause(name)?;
        println!("{name}");
        Ok(())
    })
}

/// `unpause`.
pub fn unpause(engine: &mut Engine, args: &ContainersArgs) -> Result<Code> {
    each(&args.containers, |name| {
        engine.unpause(name)?;
        println!("{name}");
        Ok(())
    })
}

/// `rename`.
pub fn rename(engine: &mut Engine, args: &RenameArgs) -> Result<Code> {
    engine.rename(&args.container, &args.new_name)?;
    Ok(0)
}

/// `update`.
pub fn update(engine: &mut Engine, args: &UpdateArgs) -> Result<Code> {
    let mut r = berth_engine::spec::Resources::default();
    let flag = |name: &'static str| {
        move |e: parse::ParseError| anyhow::anyhow!("invalid argument for {name}: {e}")
    };
    r.memory = args
        .memory
        .as_deref()
        .map(parse::ram_in_bytes)
        .transpose()
        .map_err(flag("--memory"))?;
    r.memory_swap = args
        .memory_swap
        .as_deref()
        .map(parse::memory_swap)
        .transpose()
        .map_err(flag("--memory-swap"))?;
    r.memory_reservation = args
        .memory_reservation
        .as_deref()
        .map(parse::ram_in_bytes)
        .transpose()
        .map_err(flag("--memory-reservation"))?;
    r.nano_cpus = args
        .cpus
        .as_deref()
        .map(parse::nano_cpus)
        .transpose()
        .map_err(flag("--cpus"))?;
    r.cpu_shares = args.cpu_shares;
    r.cpu_period = args.cpu_period;
    r.cpu_quota = args.cpu_quota;
    r.cpuset_cpus = args.cpuset_cpus.clone();
    r.cpuset_mems = args.cpuset_mems.clone();
    r.pids_limit = args.pids_limit;
    r.blkio_weight = args.blkio_weight;
    each(&args.containers, |name| {
        engine.update(name, &r)?;
        println!("{name}");
        Ok(())
    })
}

/// `exec`: exits with the command's code.
pub fn exec(engine: &mut Engine, args: &ExecArgs) -> Result<Code> {
    let mut env = Vec::new();
    for file in &args.env_file {
        env.extend(
            parse::env_file(file.as_ref(), |k| std::env::var(k).ok())
                .with_context(|| format!("--env-file {file}"))?,
        );
    }
    for e in &args.env {
        env.push(parse::env(e, |k| std::env::var(k).ok())?);
    }
    let opts = ExecOptions {
        cmd: args.command.clone(),
        tty: args.tty,
        interactive: args.interactive,
        user: args.user.clone(),
        env,
        workdir: args.workdir.clone(),
        detach: args.detach,
        privileged: args.privileged,
    };
    Ok(engine.exec(&args.container, &opts)?)
}

/// `port`: the published ports (none until the network engine publishes them).
pub fn port(engine: &mut Engine, args: &PortArgs) -> Result<Code> {
    let c = engine.get(&args.container)?;
    let ports = c.ports.as_array().cloned().unwrap_or_default();
    let mut found = false;
    for p in ports {
        let private = format!(
            "{}/{}",
            p["PrivatePort"].as_u64().unwrap_or_default(),
            p["Type"].as_str().unwrap_or("tcp")
        );
        if let Some(want) = &args.port {
            let want = if want.contains('/') {
                want.clone()
            } else {
                format!("{want}/tcp")
            };
            if want != private {
                continue;
            }
        }
        found = true;
        println!(
            "{private} -> {}:{}",
            p["IP"].as_str().unwrap_or("0.0.0.0"),
            p["PublicPort"].as_u64().unwrap_or_default()
        );
    }
    if let (Some(want), false) = (&args.port, found) {
        bail!("No public port '{want}' published for {}", args.container);
    }
    Ok(0)
}

/// `container prune`: remove every stopped container.
pub fn prune(engine: &mut Engine, args: &ContainerPruneArgs) -> Result<Code> {
    if !args.filter.is_empty() {
        bail!("container prune --filter is not supported yet");
    }
    let mut reclaimed = 0u64;
    println!("Deleted Containers:");
    for c in engine.db.list()? {
        if matches!(c.status, Status::Created | Status::Exited | Status::Dead) {
            let upper = engine.images.containers.upper_dir(&c.id).ok();
            let size = upper
                .and_then(|u| berth_engine::images::dir_size(&u).ok())
                .unwrap_or(0);
            if engine.remove(&c.id, false, false).is_ok() {
                reclaimed += size;
                println!("{}", c.id);
            }
        }
    }
    println!();
    println!("Total reclaimed space: {}", human_size(reclaimed, 3));
    Ok(0)
}

/// `system prune`: the repair every command does (already done when the engine opened),
/// then the stopped containers and the unused networks.
pub fn system_prune(engine: &mut Engine, _args: &crate::cli::ForceArgs) -> Result<Code> {
    prune(engine, &ContainerPruneArgs::default())?;
    let removed = engine.network_prune()?;
    println!("Deleted Networks:");
    for name in removed {
        println!("{name}");
    }
    Ok(0)
}

/// `container cleanup` (berth-monitor's exit command).
pub fn cleanup(engine: &mut Engine, id: &str) -> Result<Code> {
    engine.cleanup(id)?;
    Ok(0)
}

/// Run `f` for each name; print each failure as docker does and exit 1 if any failed.
fn each(names: &[String], mut f: impl FnMut(&str) -> Result<()>) -> Result<Code> {
    let mut code = 0;
    for name in names {
        if let Err(e) = f(name) {
            eprintln!("Error response from daemon: {}", crate::one_line(&e));
            code = 1;
        }
    }
    Ok(code)
}
