//! `berth start`: mount the rootfs, start berth-monitor (which runs the runtime's `create`),
//! record the process, attach if asked, then the runtime's `start`.

use std::fs;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::process::{Child, Command, Stdio};

use time::OffsetDateTime;

use super::config::{config_of, set_details, Details};
use super::{attach, io_err, tools, ContainerError, Engine};
use crate::state::{Container, Status};

/// A started container.
#[derive(Debug)]
pub struct Started {
    /// Its record, now running.
    pub container: Container,
    /// Its berth-monitor, a child of this process until this process exits: waiting for it
    /// means waiting until the exit is recorded (and, with `--rm`, the container removed).
    pub monitor: Child,
    /// The attach connection, when asked for: connected before the process started, so no
    /// output is missed.
    pub attach: Option<OwnedFd>,
}

impl Engine {
    /// Start container `what`; with `attach`, connect to its output first. `console` is the
    /// caller's terminal size (rows, columns), given to a `-t` container's pty before its
    /// process runs.
    pub fn start(
        &mut self,
        what: &str,
        attach: bool,
        console: Option<(u16, u16)>,
    ) -> Result<Started, ContainerError> {
        let c = self.db.get(what)?;
        let _lock = super::lock::lock(&self.run_root, &c.id)?;
        // Again under the lock: another start (or a removal) may have got there first.
        let c = self.db.get(&c.id)?;
        if c.monitor_pid
            .is_some_and(|m| super::reconcile::is_monitor_of(m, &c.id))
        {
            return Err(ContainerError::Start(format!(
                "container {} is already being started or run",
                c.name
            )));
        }
        if !matches!(c.status, Status::Created | Status::Exited) {
            return Err(ContainerError::Start(format!(
                "container {} is {}: cannot start it",
                c.name, c.status
            )));
        }
        let config = config_of(&c);
        let dirs = self.dirs(&c.id);
        if let Some(size) = console.filter(|_| config.tty) {
            set_console_size(&dirs.config_json(), size)?;
        }
        if !config.joins.is_empty() {
            self.refresh_joins(&config.joins, &dirs.config_json())?;
        }
        let runtime = self.runtime_of(&c);
        self.images.containers.mount(&c.id)?;
        // A runtime state left by an earlier run (or a crash) would make `create` fail; a
        // process spawn saved on every start when there is none.
        if runtime.has_state(&c.id) {
            let _ = runtime.run(&["delete", "--force", c.id.as_str()]);
        }
        let _ = fs::remove_dir_all(&dirs.run);
        super::make_private_dir(&dirs.run)?;
        if let Err(e) = self.attach_networks(&c) {
            let _ = self.images.containers.unmount(&c.id);
            return Err(e.into());
        }
        fs::create_dir_all(&runtime.root).map_err(io_err("create", &runtime.root))?;
        let monitor_path = tools::find("berth-monitor", "BERTH_MONITOR")?;
        let self_exe = std::env::current_exe().map_err(io_err("find", "berth".as_ref()))?;
        let (reader, writer) = std::io::pipe().map_err(io_err("pipe", &dirs.run))?;
        let mut cmd = Command::new(&monitor_path);
        cmd.arg("--id")
            .arg(&c.id)
            .arg("--runtime")
            .arg(&runtime.path)
            .arg("--runtime-arg=--root")
            .arg(format!("--runtime-arg={}", runtime.root.display()))
            .arg("--bundle")
            .arg(&dirs.bundle)
            .arg("--pid-file")
            .arg(dirs.pid_file())
            .arg("--log-path")
            .arg(dirs.log())
            .arg("--exit-file")
            .arg(dirs.exit_file())
            .arg("--attach-socket")
            .arg(dirs.attach_socket())
            .arg("--sync-fd")
            .arg("1");
        if config.tty {
            // The runtime connects to it by path: it must fit a socket address (107 bytes).
            let console = match dirs.console_socket() {
                p if p.as_os_str().len() < 100 => p,
                _ => std::env::temp_dir().join(format!("berth-console-{}.sock", &c.id[..12])),
            };
            cmd.arg("-t").arg("--console-socket").arg(console);
        }
        if config.stdin_open {
            cmd.arg("-i");
        }
        cmd.arg("--")
            .arg(&self_exe)
            .arg("--root")
            .arg(&self.data_root)
            .arg("--runroot")
            .arg(&self.run_root)
            .args(["container", "cleanup"])
            .arg(&c.id);
        cmd.stdin(Stdio::null())
            .stdout(writer)
            .stderr(Stdio::null());
        let mut monitor = cmd.spawn().map_err(io_err("start", &monitor_path))?;
        drop(cmd); // closes our copy of the pipe's write end
                   // Recorded before anything else: if this process dies now, the next command finds the
                   // monitor (and the lock free) and stops what it started.
        let monitor_pid = i32::try_from(monitor.id()).unwrap_or_default();
        self.db.modify(&c.id, |r| {
            r.monitor_pid = Some(monitor_pid);
            Ok::<_, ContainerError>(())
        })?;
        let sync = read_sync(reader);
        let pid = match sync {
            Ok(pid) => pid,
            Err(message) => {
                let _ = monitor.wait();
                let _ = self.detach_networks(&c.id);
                let _ = self.images.containers.unmount(&c.id);
                let _ = self.db.modify(&c.id, |r| {
                    r.monitor_pid = None;
                    Ok::<_, ContainerError>(())
                });
                let message = super::runtime::clean_message(&message);
                self.note_error(&c.id, &message);
                return Err(ContainerError::Start(message));
            }
        };
        let container = self.db.modify(&c.id, |r| {
            r.status = Status::Running;
            r.pid = Some(pid);
            r.monitor_pid = Some(monitor_pid);
            r.started_at = Some(OffsetDateTime::now_utc());
            r.exit_code = Some(0);
            r.exit_signal = None;
            r.oom_killed = false;
            set_details(r, &Details::default());
            Ok::<_, ContainerError>(())
        })?;
        let attach = if attach {
            Some(attach::connect(&dirs.attach_socket())?)
        } else {
            None
        };
        if let Err(e) = runtime.run(&["start", c.id.as_str()]) {
            // The process waits in `create`; killing it lets the monitor record the exit.
            let _ = runtime.run(&["kill", c.id.as_str(), "KILL"]);
            self.note_error(&c.id, &e.to_string());
            return Err(e.into());
        }
        Ok(Started {
            container,
            monitor,
            attach,
        })
    }

    /// Remember why a start failed (docker's `State.Error`).
    pub(crate) fn note_error(&mut self, id: &str, message: &str) {
        let _ = self.db.modify(id, |r| {
            let mut details = super::details_of(r);
            details.error = Some(message.to_owned());
            set_details(r, &details);
            Ok::<_, ContainerError>(())
        });
    }
}

/// Put the terminal size in the spec, so the runtime sizes the pty before the process runs.
fn set_console_size(
    path: &std::path::Path,
    (rows, cols): (u16, u16),
) -> Result<(), ContainerError> {
    let text = fs::read(path).map_err(io_err("read", path))?;
    let mut spec: oci_spec::runtime::Spec = serde_json::from_slice(&text)
        .map_err(|e| io_err("parse", path)(std::io::Error::other(e)))?;
    if let Some(process) = spec.process_mut() {
        process.set_console_size(console_box((rows, cols)));
    }
    super::create::write_spec(path, &spec)
}

/// A spec's `consoleSize` of `rows` × `cols`.
pub(crate) fn console_box((rows, cols): (u16, u16)) -> Option<oci_spec::runtime::Box> {
    oci_spec::runtime::BoxBuilder::default()
        .height(u64::from(rows))
        .width(u64::from(cols))
        .build()
        .ok()
}

/// The caller's terminal size (rows, columns), if stdin is a terminal.
pub fn terminal_size() -> Option<(u16, u16)> {
    let size = rustix::termios::tcgetwinsize(std::io::stdin()).ok()?;
    (size.ws_row > 0 && size.ws_col > 0).then_some((size.ws_row, size.ws_col))
}

/// The monitor's one line: `{"pid":N}` or `{"error":"..."}`.
fn read_sync(mut reader: std::io::PipeReader) -> Result<i32, String> {
    let mut text = String::new();
    if let Err(e) = reader.read_to_string(&mut text) {
        return Err(format!("reading from berth-monitor: {e}"));
    }
    let value: serde_json::Value = serde_json::from_str(text.trim())
        .map_err(|_| format!("berth-monitor failed before reporting ({:?})", text.trim()))?;
    if let Some(pid) = value.get("pid").and_then(|p| p.as_i64()) {
        return i32::try_from(pid).map_err(|_| format!("berth-monitor reported pid {pid}"));
    }
    Err(value
        .get("error")
        .and_then(|e| e.as_str())
        .unwrap_or("berth-monitor reported nothing")
        .to_owned())
}
