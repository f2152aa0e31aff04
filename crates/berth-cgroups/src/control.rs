//! Freeze, thaw and kill every process of a cgroup.

use std::path::Path;
use std::thread::sleep;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::cgroup::{Cgroup, ControllerDir};
use crate::error::Error;
use crate::fsutil;

/// Poll the freezer every 2 ms, for about two seconds.
const POLL: Duration = Duration::from_millis(2);
const POLL_ATTEMPTS: u32 = 1000;

/// Which freezer interface this cgroup uses.
enum Freezer<'a> {
    /// v1 `freezer.state`.
    V1(&'a Path),
    /// v2 core `cgroup.freeze` + `cgroup.events`.
    V2(&'a Path),
}

impl Cgroup {
    /// Freezes every process; returns once the kernel reports the cgroup frozen.
    pub fn freeze(&self) -> Result<(), Error> {
        match self.freezer()? {
            Freezer::V1(dir) => set_v1(dir, "FROZEN"),
            Freezer::V2(dir) => set_v2(dir, true),
        }
    }

    /// Thaws the cgroup; returns once the kernel reports it thawed.
    pub fn thaw(&self) -> Result<(), Error> {
        match self.freezer()? {
            Freezer::V1(dir) => set_v1(dir, "THAWED"),
            Freezer::V2(dir) => set_v2(dir, false),
        }
    }

    /// True when the kernel reports the cgroup frozen (not merely freezing).
    pub fn is_frozen(&self) -> Result<bool, Error> {
        match self.freezer()? {
            Freezer::V1(dir) => Ok(fsutil::read(&dir.join("freezer.state"))?.trim() == "FROZEN"),
            Freezer::V2(dir) => v2_frozen(dir),
        }
    }

    /// Sends `signal` to every process. Pure v2 with SIGKILL writes `cgroup.kill`; otherwise the
    /// cgroup is frozen (when a freezer exists), each pid signalled, and the cgroup thawed.
    pub fn kill_all(&self, signal: i32) -> Result<(), Error> {
        let sig = Signal::try_from(signal)
            .map_err(|_| Error::invalid("signal", signal, "unknown signal"))?;
        if let Some(dir) = self.unified_dir() {
            let kill_file = dir.join("cgroup.kill");
            if sig == Signal::SIGKILL && kill_file.exists() {
                return fsutil::write(&kill_file, "1");
            }
        }
        // Frozen, the processes cannot fork away from the signal; a freeze that times out
        // still signals every process (and is undone) rather than giving up.
        let has_freezer = self.freezer().is_ok();
        let froze = if has_freezer { self.freeze() } else { Ok(()) };
        let result = self.signal_each(sig);
        let thawed = if has_freezer { self.thaw() } else { Ok(()) };
        result.and(froze).and(thawed)
    }

    fn signal_each(&self, sig: Signal) -> Result<(), Error> {
        for pid in self.pids()? {
            match kill(Pid::from_raw(pid), sig) {
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(source) => {
                    return Err(Error::Kill {
                        pid,
                        signal: sig as i32,
                        source,
                    })
                }
            }
        }
        Ok(())
    }

    fn freezer(&self) -> Result<Freezer<'_>, Error> {
        if let Some(ControllerDir::V1(dir)) = self.controller("freezer") {
            return Ok(Freezer::V1(dir));
        }
        self.any_unified_dir()
            .map(Freezer::V2)
            .ok_or_else(|| Error::missing("freeze", "freezer"))
    }
}

/// Writes the state and waits for it; FROZEN is re-written while the kernel is still FREEZING
/// (as runc does). On timeout a failed freeze is undone.
fn set_v1(dir: &Path, want: &str) -> Result<(), Error> {
    let state = dir.join("freezer.state");
    for _ in 0..POLL_ATTEMPTS {
        fsutil::write(&state, want)?;
        if fsutil::read(&state)?.trim() == want {
            return Ok(());
        }
        sleep(POLL);
    }
    if want == "FROZEN" {
        // Best effort: leave the container running rather than half-frozen.
        let _ = fsutil::write(&state, "THAWED");
    }
    Err(Error::FreezeTimeout {
        path: state,
        want: want.to_string(),
    })
}

fn set_v2(dir: &Path, frozen: bool) -> Result<(), Error> {
    fsutil::write(&dir.join("cgroup.freeze"), if frozen { "1" } else { "0" })?;
    for _ in 0..POLL_ATTEMPTS {
        if v2_frozen(dir)? == frozen {
            return Ok(());
        }
        sleep(POLL);
    }
    if frozen {
        let _ = fsutil::write(&dir.join("cgroup.freeze"), "0");
    }
    Err(Error::FreezeTimeout {
        path: dir.join("cgroup.events"),
        want: format!("frozen {}", u8::from(frozen)),
    })
}

fn v2_frozen(dir: &Path) -> Result<bool, Error> {
    let events = fsutil::read(&dir.join("cgroup.events"))?;
    Ok(fsutil::key(&events, "frozen") == 1)
}
