//! Real kernel, as root: create a cgroup on this host, limit it, put `sleep` in it, read stats,
//! freeze, kill everything, remove. Skips (with the reason) when not root or no cgroupfs.

// Test helpers outside #[test] functions may panic too.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU32, Ordering};

use berth_cgroups::{Cgroup, Layout, Mode};
use oci_spec::runtime::LinuxResources;

const SIGKILL: i32 = 9;
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Kills the child and removes the cgroup whatever happens in the test.
struct Guard {
    cgroup: Cgroup,
    child: Option<Child>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.cgroup.thaw();
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = self.cgroup.kill_all(SIGKILL);
        if let Err(err) = self.cgroup.destroy() {
            eprintln!("cleanup: {err}");
        }
    }
}

fn skip_reason() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("");
    if uid != "0" {
        return Some(format!("not root (euid {uid:?})"));
    }
    if !Path::new("/sys/fs/cgroup").is_dir() {
        return Some("/sys/fs/cgroup not present".to_string());
    }
    None
}

fn proc_state(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("State:"))
        .unwrap_or("")
        .trim()
        .to_string()
}

#[test]
fn lifecycle_on_the_real_kernel() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason}");
        return;
    }
    let layout = Layout::detect().unwrap();
    eprintln!(
        "mode {:?}, v1 {:?}, v2 {:?}",
        layout.mode(),
        layout.v1_controllers(),
        layout.v2_controllers()
    );
    let name = format!(
        "/berth-test-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    );
    let mut guard = Guard {
        cgroup: Cgroup::create(&layout, &name, "test").unwrap(),
        child: None,
    };
    let cgroup = guard.cgroup.clone();
    let paths = cgroup.paths();
    assert!(paths.iter().all(|(_, dir)| dir.is_dir()), "{paths:?}");
    if layout.mode() == Mode::V2 {
        assert!(cgroup.unified_dir().is_some());
    } else {
        assert!(cgroup.unified_dir().is_none());
    }

    let resources: LinuxResources = serde_json::from_str(
        r#"{"memory": {"limit": 67108864}, "cpu": {"quota": 50000, "period": 100000, "shares": 512},
            "pids": {"limit": 10}}"#,
    )
    .unwrap();
    cgroup.apply(&resources).unwrap();

    let child = Command::new("sleep").arg("30").spawn().unwrap();
    let pid = child.id();
    guard.child = Some(child);
    let pid_i32 = i32::try_from(pid).unwrap();
    cgroup.add_pid(pid_i32).unwrap();
    assert_eq!(cgroup.pids().unwrap(), [pid_i32]);

    let stats = cgroup.stats().unwrap();
    eprintln!("stats: {}", serde_json::to_string(&stats).unwrap());
    assert_eq!(stats.memory.limit, Some(64 << 20));
    assert_eq!(stats.pids.limit, Some(10));
    assert_eq!(stats.pids.current, 1);
    // No usage assertion: v1 does not move charges of a migrated task (sleep allocates nothing after).

    cgroup.freeze().unwrap();
    assert!(cgroup.is_frozen().unwrap());
    let state = proc_state(pid);
    eprintln!("frozen task state: {state}");
    // The v1 freezer parks tasks in D; the v2 freezer traps them in an interruptible sleep
    // (S, in do_freezer_trap), so there only "not running" is the task's own sign.
    match cgroup.mode() {
        berth_cgroups::Mode::V2 => assert!(!state.starts_with('R'), "{state}"),
        _ => assert!(
            !state.starts_with('R') && !state.starts_with('S'),
            "{state}"
        ),
    }
    cgroup.thaw().unwrap();
    assert!(!cgroup.is_frozen().unwrap());

    cgroup.kill_all(SIGKILL).unwrap();
    let status = guard.child.as_mut().unwrap().wait().unwrap();
    assert!(!status.success(), "sleep was killed: {status}");
    guard.child = None;
    assert!(cgroup.pids().unwrap().is_empty());

    cgroup.destroy().unwrap();
    for (controller, dir) in cgroup.paths() {
        assert!(
            !dir.exists(),
            "{controller}: {} still exists",
            dir.display()
        );
    }
}

#[test]
fn nested_relative_path_and_destroy_deepest_first() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason}");
        return;
    }
    let layout = Layout::detect().unwrap();
    let name = format!(
        "/berth-test-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    );
    let parent = Cgroup::create(&layout, &name, "p").unwrap();
    let guard = Guard {
        cgroup: parent.clone(),
        child: None,
    };
    let child = Cgroup::create(&layout, &format!("{name}/a/b"), "b").unwrap();
    if let Some((_, dir)) = child.paths().into_iter().find(|(c, _)| c == "cpuset") {
        let cpus = std::fs::read_to_string(dir.join("cpuset.cpus")).unwrap();
        assert!(!cpus.trim().is_empty(), "cpuset.cpus copied down");
    }
    parent.destroy().unwrap();
    for (controller, dir) in child.paths().into_iter().chain(parent.paths()) {
        assert!(
            !dir.exists(),
            "{controller}: {} still exists",
            dir.display()
        );
    }
    drop(guard);
}
