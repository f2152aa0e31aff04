//! `berth exec`: a new process in a running container, through the runtime's `exec` with a
//! process JSON built from the container's own process (its env, user, capabilities), with
//! the exec's command, `-e`, `-u` and `-w` laid over it.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::process::{Command, Stdio};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use oci_spec::runtime::{Process, Spec, User};

use super::attach::RawMode;
use super::{io_err, ContainerError, Engine};
use crate::state::Status;

/// What `berth exec` asks for.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// The command.
    pub cmd: Vec<String>,
    /// `-t`.
    pub tty: bool,
    /// `-i`.
    pub interactive: bool,
    /// `-u`.
    pub user: Option<String>,
    /// `-e`, `KEY=VALUE`.
    pub env: Vec<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-d`.
    pub detach: bool,
    /// `--privileged`: every capability.
    pub privileged: bool,
}

impl Engine {
    /// Run `opts.cmd` in container `what`; its exit code (0 at once with `detach`).
    pub fn exec(&mut self, what: &str, opts: &ExecOptions) -> Result<i32, ContainerError> {
        let c = self.db.get(what)?;
        match c.status {
            Status::Running => {}
            Status::Paused => return Err(ContainerError::Paused(c.id)),
            _ => return Err(ContainerError::NotRunning(c.id)),
        }
        let pid = c.pid.unwrap_or_default();
        let dirs = self.dirs(&c.id);
        let spec_text =
            std::fs::read(dirs.config_json()).map_err(io_err("read", &dirs.config_json()))?;
        let spec: Spec = serde_json::from_slice(&spec_text)
            .map_err(|e| io_err("parse", &dirs.config_json())(std::io::Error::other(e)))?;
        let process = exec_process(&spec, opts, Path::new(&format!("/proc/{pid}/root")))?;
        let tag = crate::state::new_id()?;
        let process_file = dirs.run.join(format!("exec-{}.json", &tag[..12]));
        let json = serde_json::to_vec(&process)
            .map_err(|e| io_err("serialize", &process_file)(std::io::Error::other(e)))?;
        super::cleanup::write_atomic(&process_file, &json)?;
        let runtime = self.runtime_of(&c);
        let mut cmd = runtime.command();
        cmd.arg("exec").arg("--process").arg(&process_file);
        if opts.detach {
            cmd.arg("--detach");
        }
        let result = if opts.tty && !opts.detach {
            // The runtime connects to this path itself, so it must fit a socket address
            // (107 bytes): the temporary directory when the run directory is too deep. The
            // socket is not writable by others, so nobody else can connect to it.
            let name = format!("berth-exec-{}.sock", &tag[..12]);
            let socket_path = match dirs.run.join(&name) {
                p if p.as_os_str().len() < 100 => p,
                _ => std::env::temp_dir().join(name),
            };
            let r = exec_tty(cmd, &socket_path, &c.id, opts.interactive);
            let _ = std::fs::remove_file(&socket_path);
            r
        } else {
            cmd.arg(&c.id);
            if opts.detach {
                cmd.stdin(Stdio::null()).stdout(Stdio::null());
            } else if !opts.interactive {
                cmd.stdin(Stdio::null());
            }
            let status = cmd.status().map_err(io_err("run", &runtime.path));
            status.map(|s| exit_code(&s))
        };
        let _ = std::fs::remove_file(&process_file);
        result
    }
}

/// The exec's process: the container's, with the exec's command, env, user and cwd.
fn exec_process(spec: &Spec, opts: &ExecOptions, rootfs: &Path) -> Result<Process, ContainerError> {
    let mut process = spec.process().clone().unwrap_or_default();
    process.set_args(Some(opts.cmd.clone()));
    process.set_terminal(Some(opts.tty));
    let size = super::start::terminal_size().filter(|_| opts.tty);
    process.set_console_size(size.and_then(super::start::console_box));
    let mut env = process.env().clone().unwrap_or_default();
    for e in &opts.env {
        let key = e.split('=').next().unwrap_or_default();
        env.retain(|old| old.split('=').next() != Some(key));
        env.push(e.clone());
    }
    process.set_env(Some(env));
    if let Some(w) = opts.workdir.as_ref().filter(|w| !w.is_empty()) {
        process.set_cwd(w.into());
    }
    if let Some(u) = opts.user.as_ref().filter(|u| !u.is_empty()) {
        let resolved = crate::spec::resolve_user(rootfs, u).map_err(|source| {
            crate::spec::SpecError::User {
                user: u.clone(),
                source,
            }
        })?;
        let mut user = User::default();
        user.set_uid(resolved.uid);
        user.set_gid(resolved.gid);
        let gids = std::iter::once(resolved.gid)
            .chain(crate::rootless::supplementary_gids(
                resolved.additional_gids,
            ))
            .collect();
        user.set_additional_gids(Some(gids));
        process.set_user(user);
    }
    if opts.privileged {
        if let Some(mut caps) = process.capabilities().clone() {
            let all: std::collections::HashSet<_> = crate::spec::ALL_CAPABILITIES
                .iter()
                .filter_map(|c| c.parse().ok())
                .collect();
            caps.set_bounding(Some(all.clone()));
            caps.set_effective(Some(all.clone()));
            caps.set_permitted(Some(all));
            process.set_capabilities(Some(caps));
        }
    }
    Ok(process)
}

/// docker's exit code of a finished process: its code, or 128+signal.
pub fn exit_code(status: &std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(255)
}

/// `exec -t`: the runtime sends the pty master over a console socket; relay it.
fn exec_tty(
    mut cmd: Command,
    socket_path: &Path,
    id: &str,
    interactive: bool,
) -> Result<i32, ContainerError> {
    let listener =
        std::os::unix::net::UnixListener::bind(socket_path).map_err(io_err("bind", socket_path))?;
    cmd.arg("--tty")
        .arg("--console-socket")
        .arg(socket_path)
        .arg(id)
        .stdin(Stdio::null());
    let mut child = cmd.spawn().map_err(io_err("run", socket_path))?;
    drop(cmd);
    let master = listener.accept().ok().and_then(|(conn, _)| {
        let mut buf = [0u8; 4096];
        berth_sys::recv_fd(conn.as_fd(), &mut buf).ok()?.1
    });
    if let Some(master) = master {
        relay_pty(master.as_fd(), interactive);
    }
    let status = child.wait().map_err(io_err("wait", socket_path))?;
    Ok(exit_code(&status))
}

/// Terminal ↔ pty master until the master hangs up.
fn relay_pty(master: BorrowedFd<'_>, interactive: bool) {
    let stdin = std::io::stdin();
    let _raw = RawMode::enter(stdin.as_fd());
    if let Ok(size) = rustix::termios::tcgetwinsize(stdin.as_fd()) {
        let _ = berth_sys::set_window_size(master, size.ws_row, size.ws_col);
    }
    let mut buf = vec![0u8; 65536];
    let mut stdin_open = interactive;
    loop {
        let mut fds = vec![PollFd::new(master, PollFlags::POLLIN)];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        if let Err(e) = poll(&mut fds, PollTimeout::NONE) {
            if e == nix::errno::Errno::EINTR {
                continue;
            }
            return;
        }
        let ready = |i: usize| {
            fds.get(i)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
        };
        let (m, i) = (ready(0), ready(1));
        if i {
            match rustix::io::read(stdin.as_fd(), &mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => {
                    let _ = rustix::io::write(master, &buf[..n]);
                }
            }
        }
        if m {
            match rustix::io::read(master, &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    use std::io::Write;
                    let mut out = std::io::stdout();
                    let _ = out.write_all(&buf[..n]);
                    let _ = out.flush();
                }
            }
        }
    }
}
