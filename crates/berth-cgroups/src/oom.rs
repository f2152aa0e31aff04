//! OOM notifications. v1: an eventfd registered for `memory.oom_control` through
//! `cgroup.event_control`; v2: inotify on `memory.events`, which the kernel marks modified when
//! one of its counts changes. Either way a wake-up re-reads the `oom_kill` count, so one OOM
//! kill is one event however the wake-ups fall, and a kill that happened just before the
//! cgroup emptied is still counted by a last [`OomWatcher::check`].

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use crate::cgroup::{Cgroup, ControllerDir};
use crate::error::Error;
use crate::fsutil;

/// v1 signals the eventfd when the OOM killer is invoked, before it counts its kill: re-read
/// the count every `SETTLE_STEP`, up to `SETTLE_STEPS` times, until the kill shows.
const SETTLE_STEP: Duration = Duration::from_millis(5);
const SETTLE_STEPS: u32 = 20;

/// What can go wrong while watching for OOM kills.
#[derive(Debug, thiserror::Error)]
pub enum OomError {
    /// The cgroup has no memory controller (or, on v2, it is not enabled for it).
    #[error("no memory controller for this cgroup")]
    NoMemoryController,
    /// The cgroup went away (its files read ENODEV).
    #[error("{}: cgroup removed", path.display())]
    Removed { path: PathBuf },
    /// A cgroup file could not be opened, read or written.
    #[error(transparent)]
    Cgroup(#[from] Error),
    /// An eventfd, inotify or poll call failed.
    #[error("{step}: {}", source.desc().to_lowercase())]
    Sys { step: &'static str, source: Errno },
}

#[derive(Debug)]
enum Notifier {
    V1(EventFd),
    V2(Inotify),
}

/// Watches one cgroup for OOM kills; pollable (readable when the kernel reported something).
#[derive(Debug)]
pub struct OomWatcher {
    notifier: Notifier,
    /// `memory.oom_control` (v1) or `memory.events` (v2), re-read from offset 0.
    counter: File,
    counter_path: PathBuf,
    kills: u64,
}

/// What one read of the counter file says.
struct Counts {
    oom_kill: u64,
    /// v1 `oom_kill_disable`: the OOM killer is off, tasks wait instead.
    killer_disabled: bool,
}

impl OomWatcher {
    /// Starts watching; OOM kills counted before this call are not reported.
    pub fn new(cgroup: &Cgroup) -> Result<OomWatcher, OomError> {
        let mut watcher = match cgroup.controller("memory") {
            Some(ControllerDir::V1(dir)) => watch_v1(dir)?,
            Some(ControllerDir::V2(dir)) => watch_v2(dir)?,
            None => return Err(OomError::NoMemoryController),
        };
        watcher.kills = watcher.read_counts()?.oom_kill;
        Ok(watcher)
    }

    /// OOM kills counted since the cgroup was created, as of the last check.
    pub fn kills(&self) -> u64 {
        self.kills
    }

    /// Waits up to `timeout` (forever when `None`) for a notification, then [`check`]s.
    ///
    /// [`check`]: OomWatcher::check
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<u64, OomError> {
        let timeout = match timeout {
            Some(t) => PollTimeout::try_from(t).unwrap_or(PollTimeout::MAX),
            None => PollTimeout::NONE,
        };
        let mut fds = [PollFd::new(self.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => self.check(),
            Err(source) => Err(OomError::Sys {
                step: "poll for OOM notifications",
                source,
            }),
        }
    }

    /// Consumes pending notifications without blocking and re-reads the count: the number of
    /// new OOM events since the last check. An event is one OOM kill; on v1 with the OOM
    /// killer disabled (nothing is killed), a notification is one event.
    pub fn check(&mut self) -> Result<u64, OomError> {
        let notified = self.drain()?;
        let mut counts = self.read_counts()?;
        if notified && counts.oom_kill == self.kills && matches!(self.notifier, Notifier::V1(_)) {
            if counts.killer_disabled {
                return Ok(1);
            }
            counts = self.settle()?;
        }
        let new = counts.oom_kill.saturating_sub(self.kills);
        self.kills = counts.oom_kill;
        Ok(new)
    }

    /// Waits (a little) for the kill that a v1 notification announced to be counted.
    fn settle(&self) -> Result<Counts, OomError> {
        let mut counts = self.read_counts()?;
        for _ in 0..SETTLE_STEPS {
            if counts.oom_kill != self.kills {
                break;
            }
            sleep(SETTLE_STEP);
            counts = self.read_counts()?;
        }
        Ok(counts)
    }

    /// Reads pending notifications; whether there were any.
    fn drain(&self) -> Result<bool, OomError> {
        let result = match &self.notifier {
            Notifier::V1(eventfd) => eventfd.read().map(|n| n > 0),
            Notifier::V2(inotify) => inotify.read_events().map(|events| !events.is_empty()),
        };
        match result {
            Ok(any) => Ok(any),
            Err(Errno::EAGAIN) => Ok(false),
            Err(source) => Err(OomError::Sys {
                step: "read OOM notifications",
                source,
            }),
        }
    }

    fn read_counts(&self) -> Result<Counts, OomError> {
        let mut buf = [0u8; 512];
        let n = match self.counter.read_at(&mut buf, 0) {
            Ok(n) => n,
            Err(err) if err.raw_os_error() == Some(Errno::ENODEV as i32) => {
                return Err(OomError::Removed {
                    path: self.counter_path.clone(),
                })
            }
            Err(source) => return Err(read_error(&self.counter_path, source)),
        };
        let text = String::from_utf8_lossy(&buf[..n]);
        Ok(Counts {
            oom_kill: fsutil::key(&text, "oom_kill"),
            killer_disabled: fsutil::key(&text, "oom_kill_disable") == 1,
        })
    }
}

impl AsFd for OomWatcher {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.notifier {
            Notifier::V1(eventfd) => eventfd.as_fd(),
            Notifier::V2(inotify) => inotify.as_fd(),
        }
    }
}

impl Cgroup {
    /// The cgroup's OOM kill count, read once (`memory.oom_control` on v1, `memory.events` on
    /// v2); 0 without a memory controller.
    pub fn oom_kills(&self) -> Result<u64, Error> {
        let path = match self.controller("memory") {
            Some(ControllerDir::V1(dir)) => dir.join("memory.oom_control"),
            Some(ControllerDir::V2(dir)) => dir.join("memory.events"),
            None => return Ok(0),
        };
        Ok(fsutil::read_optional(&path)?.map_or(0, |text| fsutil::key(&text, "oom_kill")))
    }
}

/// v1: `<eventfd> <fd of memory.oom_control>` into `cgroup.event_control`.
fn watch_v1(dir: &Path) -> Result<OomWatcher, OomError> {
    let counter_path = dir.join("memory.oom_control");
    let counter = File::open(&counter_path).map_err(|e| read_error(&counter_path, e))?;
    let eventfd =
        EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK).map_err(|source| {
            OomError::Sys {
                step: "create eventfd",
                source,
            }
        })?;
    let registration = format!("{} {}", eventfd.as_raw_fd(), counter.as_raw_fd());
    fsutil::write(&dir.join("cgroup.event_control"), &registration)?;
    Ok(OomWatcher {
        notifier: Notifier::V1(eventfd),
        counter,
        counter_path,
        kills: 0,
    })
}

/// v2: inotify IN_MODIFY on `memory.events`.
fn watch_v2(dir: &Path) -> Result<OomWatcher, OomError> {
    let counter_path = dir.join("memory.events");
    let inotify =
        Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).map_err(|source| {
            OomError::Sys {
                step: "create inotify instance",
                source,
            }
        })?;
    match inotify.add_watch(&counter_path, AddWatchFlags::IN_MODIFY) {
        Ok(_) => {}
        Err(Errno::ENOENT) => return Err(OomError::NoMemoryController),
        Err(source) => {
            return Err(OomError::Sys {
                step: "watch memory.events",
                source,
            })
        }
    }
    let counter = File::open(&counter_path).map_err(|e| read_error(&counter_path, e))?;
    Ok(OomWatcher {
        notifier: Notifier::V2(inotify),
        counter,
        counter_path,
        kills: 0,
    })
}

fn read_error(path: &Path, source: io::Error) -> OomError {
    OomError::Cgroup(Error::Read {
        path: path.to_path_buf(),
        source,
    })
}
