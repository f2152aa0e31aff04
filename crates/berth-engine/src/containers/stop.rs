//! `berth stop` and `berth kill`, and waiting for a container's exit to be recorded.
//!
//! stop: the stop signal to PID 1, wait up to the timeout for PID 1 to exit, then SIGKILL to
//! every process in the container's cgroup (the runtime's `kill --all`). Whether it had to
//! escalate is written to the record before the SIGKILL, so the exit record (written by the
//! monitor's cleanup) and `inspect` tell a graceful stop from a killed one.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use time::OffsetDateTime;

use super::config::{config_of, details_of, set_details};
use super::{ContainerError, Engine};
use crate::state::{format_time, Container, Status};

/// What `stop` did.
#[derive(Debug, Clone)]
pub struct Stopped {
    /// The record after the exit was recorded.
    pub container: Container,
    /// Whether SIGKILL was needed.
    pub escalated: bool,
}

impl Engine {
    /// Stop container `what`: the stop signal, `timeout` (the container's `--stop-timeout`
    /// when `None`), then SIGKILL. A container that does not run is left alone.
    pub fn stop(
        &mut self,
        what: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<Stopped, ContainerError> {
        let c = self.db.get(what)?;
        let config = config_of(&c);
        let Some(pid) = c.pid.filter(|_| c.status.is_live()) else {
            return Ok(Stopped {
                container: c,
                escalated: false,
            });
        };
        if c.status == Status::Paused {
            // A frozen process cannot act on the signal; thaw it first, as docker does.
            let _ = self.runtime_of(&c).run(&["resume", c.id.as_str()]);
        }
        let signal = signal.unwrap_or(&config.stop_signal).to_owned();
        let timeout = timeout.unwrap_or(config.stop_timeout);
        let started = OffsetDateTime::now_utc();
        self.db.modify(&c.id, |r| {
            let mut d = details_of(r);
            d.stop_requested_at = format_time(started).ok();
            d.stop_escalated = false;
            set_details(r, &d);
            Ok::<_, ContainerError>(())
        })?;
        let runtime = self.runtime_of(&c);
        let pidfd = berth_sys::pidfd_open(pid).ok();
        let _ = runtime.run(&["kill", c.id.as_str(), signal.as_str()]);
        // docker: a negative timeout waits for as long as it takes.
        let wait = u64::try_from(timeout).map_or(Duration::MAX, Duration::from_secs);
        let exited = match &pidfd {
            Some(fd) => wait_fd(fd.as_fd(), wait),
            None => true,
        };
        let mut escalated = false;
        if !exited {
            escalated = true;
            self.db.modify(&c.id, |r| {
                let mut d = details_of(r);
                d.stop_escalated = true;
                set_details(r, &d);
                Ok::<_, ContainerError>(())
            })?;
            let _ = runtime.run(&["kill", "--all", c.id.as_str(), "KILL"]);
        }
        let container = self.wait_recorded(&c)?;
        Ok(Stopped {
            container,
            escalated,
        })
    }

    /// Send `signal` to the container's PID 1 (docker's `kill`, SIGKILL by default).
    pub fn kill(&mut self, what: &str, signal: &str) -> Result<Container, ContainerError> {
        let c = self.db.get(what)?;
        if !c.status.is_live() {
            return Err(ContainerError::NotRunning(c.id.clone()));
        }
        if c.status == Status::Paused && !matches!(signal, "KILL" | "SIGKILL" | "9") {
            return Err(ContainerError::Paused(c.id.clone()));
        }
        let runtime = self.runtime_of(&c);
        runtime.run(&["kill", c.id.as_str(), signal])?;
        if c.status == Status::Paused {
            // A frozen process dies only once thawed (docker resumes it too).
            let _ = runtime.run(&["resume", c.id.as_str()]);
        }
        Ok(c)
    }

    /// Wait until the exit of `c`'s current run is recorded: its monitor (which becomes the
    /// cleanup command) has exited. Returns the record then.
    pub fn wait_recorded(&mut self, c: &Container) -> Result<Container, ContainerError> {
        loop {
            let now = match self.db.get(&c.id) {
                Ok(now) => now,
                // Its cleanup removed it (`--rm`): what it left is its exit code.
                Err(crate::state::ContainersError::NoSuchContainer { .. }) => {
                    let mut gone = c.clone();
                    gone.status = Status::Exited;
                    gone.pid = None;
                    gone.exit_code = super::cleanup::removed_exit_code(&self.run_root, &c.id);
                    return Ok(gone);
                }
                Err(e) => return Err(e.into()),
            };
            let Some(monitor) = now.monitor_pid else {
                return Ok(now);
            };
            match berth_sys::pidfd_open(monitor) {
                Ok(fd) if monitor_is_alive(monitor, &c.id) => {
                    wait_fd(fd.as_fd(), Duration::MAX);
                }
                // The monitor is gone without recording: the repair does it now.
                _ => {
                    self.reconcile_one(&c.id);
                    return Ok(self.db.get(&c.id)?);
                }
            }
        }
    }

    /// `berth wait`: block until the container stops; its exit code.
    pub fn wait(&mut self, what: &str) -> Result<i32, ContainerError> {
        let c = self.db.get(what)?;
        let c = if c.status.is_live() {
            self.wait_recorded(&c)?
        } else {
            c
        };
        Ok(c.exit_code.unwrap_or(0))
    }
}

/// Whether `pid` is still container `id`'s monitor (or its cleanup). Read twice: while the
/// monitor execs the cleanup command its command line can be briefly unreadable.
fn monitor_is_alive(pid: i32, id: &str) -> bool {
    super::reconcile::is_monitor_of(pid, id) || {
        std::thread::sleep(Duration::from_millis(20));
        super::reconcile::is_monitor_of(pid, id)
    }
}

/// Wait until the pidfd is readable (the process exited), at most `timeout`.
pub(crate) fn wait_fd(fd: std::os::fd::BorrowedFd<'_>, timeout: Duration) -> bool {
    let deadline = Instant::now().checked_add(timeout);
    loop {
        let left = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => Duration::from_millis(i32::MAX as u64),
        };
        let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) if deadline.is_some() => return false,
            Ok(0) => continue,
            Ok(_) => return true,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return true,
        }
    }
}

/// Whether process `pid` catches `signal` (its bit in `SigCgt` of /proc/PID/status).
pub fn has_handler(pid: i32, signal: &str) -> bool {
    let Some(number) = signal_number(signal) else {
        return true;
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let caught = status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok());
    match caught {
        Some(mask) => mask & (1u64 << (number - 1)) != 0,
        None => true,
    }
}

/// `SIGTERM`, `TERM` or `15` as a number.
pub fn signal_number(signal: &str) -> Option<i32> {
    if let Ok(n) = signal.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let name = signal.to_ascii_uppercase();
    let name = if name.starts_with("SIG") {
        name
    } else {
        format!("SIG{name}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .ok()
        .map(|s| s as i32)
}
