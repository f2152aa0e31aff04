//! `kill`: signal the container's init, or with `--all` every process in its cgroup.

use nix::sys::signal::Signal;

use super::Error;
use crate::state::{Status, Store};

/// Parse `KILL`, `SIGKILL` or `9`.
pub fn parse_signal(text: &str) -> Result<i32, Error> {
    if let Ok(n) = text.parse::<i32>() {
        return Signal::try_from(n)
            .map(|s| s as i32)
            .or_else(|_| {
                if (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&n) {
                    Ok(n)
                } else {
                    Err(())
                }
            })
            .map_err(|_| Error::Invalid(format!("unknown signal {text:?}")));
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>()
        .map(|s| s as i32)
        .map_err(|_| Error::Invalid(format!("unknown signal {text:?}")))
}

/// Send `signal` (default SIGTERM) to `id`.
pub fn run(store: &Store, id: &str, signal: Option<&str>, all: bool) -> Result<i32, Error> {
    let signal = parse_signal(signal.unwrap_or("SIGTERM"))?;
    let container = store.load(id)?;
    if container.status() == Status::Stopped {
        return Err(Error::Invalid("container not running".into()));
    }
    if all {
        let cgroup = crate::cgroup::open(&container.saved)?;
        // Rootless without a cgroup there is no list of its processes: the init is signalled
        // (with its own pid namespace, SIGKILL to it ends them all).
        if !cgroup.has_no_directories() {
            cgroup.kill_all(signal)?;
            return Ok(0);
        }
    }
    let pidfd = berth_sys::pidfd_open(container.saved.pid).map_err(|e| {
        Error::Invalid(format!(
            "kill pid {}: {}",
            container.saved.pid,
            crate::util::cause(&e)
        ))
    })?;
    // Re-check after taking the pidfd: the pid now cannot be recycled under us.
    if !container.init_alive() {
        return Err(Error::Invalid("container not running".into()));
    }
    berth_sys::pidfd_send_signal(std::os::fd::AsFd::as_fd(&pidfd), signal).map_err(|e| {
        Error::Invalid(format!(
            "kill pid {}: {}",
            container.saved.pid,
            crate::util::cause(&e)
        ))
    })?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_like_runc() {
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("hup").unwrap(), 1);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert!(parse_signal("NOPE").is_err());
    }
}
