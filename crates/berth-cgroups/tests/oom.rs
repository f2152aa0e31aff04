//! Real kernel, as root: a process that allocates past a small memory limit is OOM-killed, and
//! the [`OomWatcher`] of its cgroup (v1: eventfd on memory.oom_control, v2: inotify on
//! memory.events) fires and counts the kill, also when the process is already gone before
//! anyone looks. Skips (with the reason) when not root or without cgroupfs.

// Test code may panic.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use berth_cgroups::OomWatcher;
use common::{skip_reason, Guard, Helper, Work};
use oci_spec::runtime::LinuxResources;

const LIMIT: u64 = 32 << 20;
const SIGKILL: i32 = 9;
/// Generous: the cgroup-v2 VM runs without KVM.
const DEADLINE: Duration = Duration::from_secs(120);

/// The helper process (this executable run again; a no-op in the test run itself).
#[test]
fn helper() {
    common::run_helper_if_asked();
}

/// A cgroup limited to 32 MiB with a helper inside that will allocate 256 MiB once told to.
fn limited_cgroup_with_hog(prefix: &str) -> Guard {
    let mut guard = Guard::new(prefix);
    let resources: LinuxResources =
        serde_json::from_str(&format!(r#"{{"memory": {{"limit": {LIMIT}}}}}"#)).unwrap();
    guard.cgroup.apply(&resources).unwrap();
    let work = Work {
        alloc_mib: 256,
        ..Work::default()
    };
    let helper = Helper::spawn("helper", &work);
    guard.cgroup.add_pid(helper.pid()).unwrap();
    guard.helper = Some(helper);
    guard
}

/// Waits for the helper to end; it must have been SIGKILLed (by the OOM killer).
fn assert_oom_killed(guard: &mut Guard) {
    let helper = guard.helper.as_mut().unwrap();
    assert!(
        !helper.ready(),
        "the helper allocated 256 MiB under a 32 MiB limit"
    );
    let status = helper.child.wait().unwrap();
    assert_eq!(status.signal(), Some(SIGKILL), "{status}");
    guard.helper = None;
}

#[test]
fn watcher_fires_and_counts_an_oom_kill() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason}");
        return;
    }
    let mut guard = limited_cgroup_with_hog("oom-watch");
    let mut watcher = OomWatcher::new(&guard.cgroup).unwrap();
    assert_eq!(watcher.kills(), 0);
    // Nothing happened yet: a short wait times out with no event.
    assert_eq!(watcher.wait(Some(Duration::from_millis(50))).unwrap(), 0);

    guard.helper.as_mut().unwrap().go();
    let start = Instant::now();
    let mut events = 0;
    while events == 0 && start.elapsed() < DEADLINE {
        events += watcher.wait(Some(Duration::from_secs(1))).unwrap();
    }
    eprintln!(
        "{:?}: {events} OOM event(s) after {:?}",
        guard.cgroup.mode(),
        start.elapsed()
    );
    assert!(events >= 1, "no OOM event within {DEADLINE:?}");
    assert_oom_killed(&mut guard);
    // Whatever the wake-ups, the events add up to the kills counted.
    events += watcher.check().unwrap();
    assert_eq!(events, watcher.kills());
    assert_eq!(guard.cgroup.oom_kills().unwrap(), watcher.kills());
    let stats = guard.cgroup.stats().unwrap();
    assert_eq!(stats.memory.oom_kill, watcher.kills());
    if guard.cgroup.is_unified("memory") == Some(true) {
        assert!(stats.memory.oom >= 1, "{:?}", stats.memory);
    }
}

#[test]
fn a_kill_before_the_check_is_still_counted() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason}");
        return;
    }
    let mut guard = limited_cgroup_with_hog("oom-late");
    let mut watcher = OomWatcher::new(&guard.cgroup).unwrap();
    guard.helper.as_mut().unwrap().go();
    // The process is killed and reaped before the watcher is looked at: as when a container's
    // init is OOM-killed and `events` drains the counter after seeing init exit.
    assert_oom_killed(&mut guard);
    assert!(guard.cgroup.pids().unwrap().is_empty());
    let events = watcher.check().unwrap();
    assert!(events >= 1, "the kill was not counted");
    assert_eq!(events, watcher.kills());
    // Counted once: nothing new on the next look.
    assert_eq!(watcher.check().unwrap(), 0);
}

#[test]
fn a_fresh_cgroup_has_no_kills() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason}");
        return;
    }
    let guard = Guard::new("oom-none");
    // Every host here has one; the cgroup without processes has no kills yet.
    let watcher = OomWatcher::new(&guard.cgroup).unwrap();
    assert_eq!(watcher.kills(), 0);
    assert_eq!(guard.cgroup.oom_kills().unwrap(), 0);
}
