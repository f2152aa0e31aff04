//! `events`: runc's JSON lines. `--stats` prints one `stats` event and exits; otherwise a
//! `stats` event every `--interval` (the first after one interval, as runc's ticker) and an
//! `oom` event per OOM kill, until the container's init exits. Then the OOM counter is read a
//! last time, so a kill just before the exit is still reported, and `events` exits 0.

mod runc_json;

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use berth_cgroups::{Cgroup, OomError, OomWatcher, StatsReader};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::Error;
use crate::state::{start_time, Saved, Status, Store};
use runc_json::{Context, Event};

/// Parse a Go duration like `5s`, `500ms`, `1m`.
pub fn parse_interval(text: &str) -> Result<Duration, Error> {
    let bad = || Error::Invalid(format!("invalid interval {text:?}"));
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .ok_or_else(bad)?;
    let (num, unit) = text.split_at(split);
    let num: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ns" => num / 1e9,
        "us" | "µs" => num / 1e6,
        "ms" => num / 1e3,
        "s" => num,
        "m" => num * 60.0,
        "h" => num * 3600.0,
        _ => return Err(bad()),
    };
    if secs <= 0.0 {
        return Err(Error::Invalid(
            "duration interval must be greater than 0".into(),
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Print events for `id`.
pub fn run(store: &Store, id: &str, interval: &str, once: bool) -> Result<i32, Error> {
    let interval = parse_interval(interval)?;
    let saved = {
        // The lock is released at once: `delete` must not wait for `events`.
        let container = store.load(id)?;
        if container.status() == Status::Stopped {
            return Err(Error::Invalid(
                "container with id does not exist or is stopped".into(),
            ));
        }
        container.saved.clone()
    };
    let cgroup = crate::cgroup::open(&saved)?;
    let mut out = std::io::stdout().lock();
    let mut stats = StatsPrinter::open(id, &cgroup)?;
    if once {
        stats.print(&mut out)?;
        return Ok(0);
    }
    watch(&saved, &cgroup, &mut stats, interval, &mut out)?;
    Ok(0)
}

/// Reads the cgroup (files kept open between reads) and prints `stats` events.
struct StatsPrinter<'a> {
    id: &'a str,
    reader: StatsReader,
    context: Context,
}

impl<'a> StatsPrinter<'a> {
    fn open(id: &'a str, cgroup: &Cgroup) -> Result<StatsPrinter<'a>, Error> {
        Ok(StatsPrinter {
            id,
            reader: StatsReader::open(cgroup)?,
            context: Context {
                cpu_v2: cgroup.is_unified("cpu") == Some(true),
                memory_v2: cgroup.is_unified("memory") == Some(true),
                io_v2: cgroup.is_unified("io") == Some(true),
                cpuset_flags: cgroup.cpuset_flags()?,
            },
        })
    }

    fn print(&mut self, out: &mut impl Write) -> Result<(), Error> {
        let stats = self.reader.read()?;
        let data = runc_json::stats(&stats, &self.context);
        emit(
            out,
            &Event {
                kind: "stats",
                id: self.id,
                data: Some(data),
            },
        )
    }
}

/// Stats every `interval` and OOM events until init exits (or the cgroup goes away).
fn watch(
    saved: &Saved,
    cgroup: &Cgroup,
    stats: &mut StatsPrinter<'_>,
    interval: Duration,
    out: &mut impl Write,
) -> Result<(), Error> {
    let mut oom = match OomWatcher::new(cgroup) {
        Ok(watcher) => Some(watcher),
        Err(OomError::NoMemoryController) => None,
        Err(e) => return Err(oom_error(e)),
    };
    let Some(init) = init_pidfd(saved) else {
        return drain(oom.as_mut(), stats.id, out);
    };
    let mut next_tick = Instant::now() + interval;
    loop {
        let wait = next_tick.saturating_duration_since(Instant::now());
        let (oom_ready, init_exited) = wait_for(oom.as_ref(), &init, wait)?;
        if init_exited {
            return drain(oom.as_mut(), stats.id, out);
        }
        if oom_ready {
            if let Some(watcher) = oom.as_mut() {
                match watcher.check() {
                    Ok(n) => print_ooms(n, stats.id, out)?,
                    // v1 signals the eventfd when the cgroup is removed: the container is gone.
                    Err(OomError::Removed { .. }) => return Ok(()),
                    Err(e) => return Err(oom_error(e)),
                }
            }
        }
        if Instant::now() >= next_tick {
            // As runc: a failed read is reported and the next tick tries again.
            if let Err(e) = stats.print(out) {
                eprintln!("events: stats: {e}");
            }
            next_tick = next(next_tick, interval, Instant::now());
        }
    }
}

/// The tick after `tick`; ticks missed while busy are dropped, as Go's ticker does.
fn next(tick: Instant, interval: Duration, now: Instant) -> Instant {
    let next = tick + interval;
    if next > now {
        next
    } else {
        now + interval
    }
}

/// A pidfd of the container's init, if it still is the process that was started.
fn init_pidfd(saved: &Saved) -> Option<OwnedFd> {
    let pidfd = berth_sys::pidfd_open(saved.pid).ok()?;
    // Opened first, checked second: a pid reused after the check cannot be mistaken for init.
    (start_time(saved.pid) == Some(saved.pid_start)).then_some(pidfd)
}

/// Polls the OOM watcher and init's pidfd for up to `wait`: (OOM notification, init exited).
fn wait_for(
    oom: Option<&OomWatcher>,
    init: &OwnedFd,
    wait: Duration,
) -> Result<(bool, bool), Error> {
    let timeout = PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX);
    let mut fds = vec![PollFd::new(init.as_fd(), PollFlags::POLLIN)];
    if let Some(watcher) = oom {
        fds.push(PollFd::new(watcher.as_fd(), PollFlags::POLLIN));
    }
    match poll(&mut fds, timeout) {
        Ok(_) => {}
        Err(nix::errno::Errno::EINTR) => return Ok((false, false)),
        Err(e) => {
            return Err(crate::commands::io("poll", "init pidfd and OOM watcher")(
                e.into(),
            ))
        }
    }
    let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
    Ok((fds.get(1).is_some_and(ready), ready(&fds[0])))
}

/// The last look after init exited: OOM kills counted since the last check.
fn drain(oom: Option<&mut OomWatcher>, id: &str, out: &mut impl Write) -> Result<(), Error> {
    let Some(watcher) = oom else {
        return Ok(());
    };
    match watcher.check() {
        Ok(n) => print_ooms(n, id, out),
        Err(OomError::Removed { .. }) => Ok(()),
        Err(e) => Err(oom_error(e)),
    }
}

fn print_ooms(n: u64, id: &str, out: &mut impl Write) -> Result<(), Error> {
    for _ in 0..n {
        emit(
            out,
            &Event {
                kind: "oom",
                id,
                data: None,
            },
        )?;
    }
    Ok(())
}

/// One JSON line, flushed (a reader may be waiting for it).
fn emit(out: &mut impl Write, event: &Event<'_>) -> Result<(), Error> {
    let write_error = crate::commands::io("write event to", "stdout");
    serde_json::to_writer(&mut *out, event)
        .map_err(std::io::Error::from)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .map_err(write_error)
}

fn oom_error(e: OomError) -> Error {
    match e {
        OomError::Cgroup(e) => Error::Cgroup(e),
        other => Error::Io {
            op: "watch for OOM kills",
            path: "memory cgroup".into(),
            cause: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missed_ticks_are_dropped() {
        let start = Instant::now();
        let second = Duration::from_secs(1);
        assert_eq!(next(start, second, start), start + second);
        let late = start + Duration::from_millis(3500);
        assert_eq!(next(start, second, late), late + second);
    }

    #[test]
    fn intervals_parse_like_go() {
        assert_eq!(parse_interval("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_interval("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_interval("0s").is_err());
        assert!(parse_interval("five").is_err());
    }
}
