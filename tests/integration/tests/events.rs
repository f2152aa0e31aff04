//! `berth-runtime events`: an OOM kill inside a running container is an `oom` line, and so is
//! the OOM kill of init itself, which ends the container (and `events`) right after. Every
//! test leaves nothing behind.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use berth_integration_tests::*;
use serde_json::Value;

/// Generous: the cgroup-v2 VM runs without KVM.
const DEADLINE: Duration = Duration::from_secs(120);

/// A container limited to 32 MiB whose init waits for `/go` in its rootfs, then runs `then`.
fn oom_bundle(then: &str) -> Bundle {
    let script = format!("until [ -e /go ]; do sleep 0.1; done; {then}");
    let mut b = Bundle::new(&["/bin/sh", "-c", &script]);
    b.edit(|c| c["linux"]["resources"]["memory"] = serde_json::json!({"limit": 32 << 20}));
    b
}

/// `events` running in the background, its stdout lines arriving on a channel; killed on drop.
struct Events {
    child: Child,
    lines: Receiver<String>,
}

impl Events {
    fn spawn(rt: &Runtime, id: &str, interval: &str) -> Events {
        let mut child = rt
            .cmd()
            .args(["events", "--interval", interval, id])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (send, lines) = channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Events { child, lines }
    }

    /// Whether `events` holds its OOM notifier yet (v1 eventfd, v2 inotify).
    fn watching(&self) -> bool {
        let fds = format!("/proc/{}/fd", self.child.id());
        std::fs::read_dir(fds)
            .into_iter()
            .flatten()
            .flatten()
            .any(|fd| {
                std::fs::read_link(fd.path()).is_ok_and(|target| {
                    let target = target.to_string_lossy();
                    target == "anon_inode:[eventfd]" || target == "anon_inode:inotify"
                })
            })
    }

    /// The next line as JSON, or None at the deadline or the end of output.
    fn next(&self, deadline: Instant) -> Option<Value> {
        let wait = deadline.saturating_duration_since(Instant::now());
        let line = self.lines.recv_timeout(wait).ok()?;
        Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}")))
    }

    /// Lines until the first `oom` event (all of them, that one last), or None.
    fn until_oom(&self) -> Option<Vec<Value>> {
        let deadline = Instant::now() + DEADLINE;
        let mut seen = Vec::new();
        while let Some(event) = self.next(deadline) {
            let oom = event["type"] == "oom";
            seen.push(event);
            if oom {
                return Some(seen);
            }
        }
        eprintln!("no oom event; saw {seen:?}");
        None
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `events` on a created container, waits until it watches, starts the container and
/// lets its init go on.
fn start_watched(rt: &Runtime, b: &Bundle, id: &str, interval: &str) -> Events {
    let (st, err) = create(rt, b, id, &[]);
    assert!(st.success(), "create {id}: {err}");
    let events = Events::spawn(rt, id, interval);
    assert!(
        wait_until(DEADLINE.as_secs_f64(), || events.watching()),
        "events never set up its OOM notifier"
    );
    let out = rt.run(&["start", id]);
    assert!(out.status.success(), "start {id}: {}", stderr(&out));
    std::fs::write(b.rootfs().join("go"), "").unwrap();
    events
}

#[test]
fn an_oom_kill_in_a_running_container_is_an_oom_event() {
    need_root!();
    let rt = Runtime::berth();
    // A child is killed; init (sh) survives it and keeps the container running.
    let b = oom_bundle("/bin/probe alloc 256; exec /bin/probe sleep 1000");
    let id = unique_id("ev-oom");
    let _g = rt.guard(&id);
    let events = start_watched(&rt, &b, &id, "200ms");
    let seen = events.until_oom().expect("an oom event");
    assert_eq!(
        seen.last().unwrap(),
        &serde_json::json!({"type": "oom", "id": id})
    );
    for stats in &seen[..seen.len() - 1] {
        assert_eq!(stats["type"], "stats", "{stats}");
        assert_eq!(stats["id"], id.as_str());
        assert!(stats["data"]["memory"]["usage"].is_object(), "{stats}");
    }
    assert_eq!(status_of(&rt, &id).as_deref(), Some("running"));
    // Stats keep coming after the kill.
    let next = events
        .next(Instant::now() + DEADLINE)
        .expect("a stats event");
    assert_eq!(next["type"], "stats");
    drop(events);
    assert!(rt.run(&["delete", "--force", &id]).status.success());
    assert_clean(&rt, &id, &b);
}

#[test]
fn the_oom_kill_of_init_is_reported_before_events_exits() {
    need_root!();
    let rt = Runtime::berth();
    // init itself is killed: the container stops right after the kill.
    let b = oom_bundle("exec /bin/probe alloc 256");
    let id = unique_id("ev-oom-init");
    let _g = rt.guard(&id);
    // No stats within the test: only the OOM event can appear.
    let mut events = start_watched(&rt, &b, &id, "1h");
    let deadline = Instant::now() + DEADLINE;
    let mut lines = Vec::new();
    while let Some(event) = events.next(deadline) {
        lines.push(event);
    }
    assert_eq!(lines, [serde_json::json!({"type": "oom", "id": id})]);
    // The output ended because events exited, on its own and with 0.
    let status = events.child.wait().unwrap();
    assert!(status.success(), "events: {status}");
    assert_eq!(status_of(&rt, &id).as_deref(), Some("stopped"));
    assert!(rt.run(&["delete", &id]).status.success());
    assert_clean(&rt, &id, &b);
}

#[test]
fn events_of_a_stopped_container_is_an_error() {
    need_root!();
    let rt = Runtime::berth();
    let b = Bundle::new(&["/bin/probe", "exit", "0"]);
    let id = unique_id("ev-stopped");
    let _g = rt.guard(&id);
    let (st, err) = create(&rt, &b, &id, &[]);
    assert!(st.success(), "create {id}: {err}");
    assert!(rt.run(&["start", &id]).status.success());
    assert!(wait_status(&rt, &id, "stopped"));
    let out = rt.run(&["events", "--stats", &id]);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(stderr(&out).contains("stopped"), "{}", describe(&out));
    assert!(rt.run(&["delete", &id]).status.success());
    assert_clean(&rt, &id, &b);
}

// ---- `events --stats` against runc's ----

/// Every key runc's `types.Stats` can print (`*`: a map key), as `.`-paths below `data`.
const RUNC_KEYS: &[&str] = &[
    "cpu.usage.total",
    "cpu.usage.percpu",
    "cpu.usage.percpu_kernel",
    "cpu.usage.percpu_user",
    "cpu.usage.kernel",
    "cpu.usage.user",
    "cpu.throttling.periods",
    "cpu.throttling.throttledPeriods",
    "cpu.throttling.throttledTime",
    "cpu.psi",
    "cpuset.cpus",
    "cpuset.cpu_exclusive",
    "cpuset.mems",
    "cpuset.mem_hardwall",
    "cpuset.mem_exclusive",
    "cpuset.memory_migrate",
    "cpuset.memory_spread_page",
    "cpuset.memory_spread_slab",
    "cpuset.memory_pressure",
    "cpuset.sched_load_balance",
    "cpuset.sched_relax_domain_level",
    "memory.cache",
    "memory.*.limit",
    "memory.*.usage",
    "memory.*.max",
    "memory.*.failcnt",
    "memory.raw",
    "memory.psi",
    "pids.current",
    "pids.limit",
    "blkio.*",
    "hugetlb.*.usage",
    "hugetlb.*.max",
    "hugetlb.*.failcnt",
    "intel_rdt",
    "network_interfaces",
];

/// The keys runc leaves out when their value is zero or empty (Go's `omitempty`): only these
/// may be present on one side and not the other, since the two containers' numbers differ.
const RUNC_OMITEMPTY: &[&str] = &[
    "cpu.usage.total",
    "cpu.usage.percpu",
    "cpu.usage.percpu_kernel",
    "cpu.usage.percpu_user",
    "cpu.throttling.periods",
    "cpu.throttling.throttledPeriods",
    "cpu.throttling.throttledTime",
    "cpu.psi",
    "cpuset.cpus",
    "cpuset.mems",
    "memory.cache",
    "memory.*.usage",
    "memory.*.max",
    "memory.raw",
    "memory.psi",
    "pids.current",
    "pids.limit",
    "blkio.*",
    "hugetlb.*.usage",
    "hugetlb.*.max",
];

/// Every node of `v` as a `.`-path (array elements as `[]`), below `data`.
fn key_paths(v: &Value, path: String, out: &mut std::collections::BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                key_paths(x, p, out);
            }
        }
        Value::Array(items) => {
            for x in items {
                key_paths(x, format!("{path}[]"), out);
            }
        }
        _ => {}
    }
    out.insert(path);
}

/// Whether `pattern` (segments, `*` for any) and `path` agree on their common segments, and
/// `pattern` is a prefix of `path` (`covers`) or `path` one of `pattern` (an ancestor).
fn agree(pattern: &str, path: &str) -> (bool, bool) {
    let segments: Vec<&str> = path.split('.').map(|s| s.trim_end_matches("[]")).collect();
    let pattern: Vec<&str> = pattern.split('.').collect();
    let same = pattern
        .iter()
        .zip(&segments)
        .all(|(p, s)| *p == "*" || p == s);
    (same && pattern.len() <= segments.len(), same)
}

/// `pattern` is a prefix of `path`.
fn covers(pattern: &str, path: &str) -> bool {
    agree(pattern, path).0
}

/// `path` is a key of `pattern` or one of its ancestors.
fn known(pattern: &str, path: &str) -> bool {
    agree(pattern, path).1
}

/// Whether `path`'s filesystem sits on a block device.
fn on_block_device(path: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(path).unwrap().dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    std::path::Path::new(&format!("/sys/dev/block/{major}:{minor}")).exists()
}

/// What `events --stats` prints for a container of `rt` that wrote through the page cache
/// and, where the rootfs is on a block device, with O_DIRECT.
fn busy_stats(rt: &Runtime) -> Value {
    let mut b = Bundle::new(&["/bin/probe", "sleep", "1000"]);
    b.edit(|c| {
        c["root"]["readonly"] = false.into();
        c["linux"]["resources"]["memory"] = serde_json::json!({"limit": 256 << 20});
        c["linux"]["resources"]["pids"] = serde_json::json!({"limit": 100});
    });
    let id = unique_id("ev-keys");
    let _g = rt.guard(&id);
    let (st, err) = create(rt, &b, &id, &[]);
    assert!(st.success(), "{}: create: {err}", rt.bin.display());
    assert!(rt.run(&["start", &id]).status.success());
    let mut writes = vec![["/bin/probe", "write", "/cached", "2"].as_slice()];
    // O_DIRECT needs a block device under the rootfs (not tmpfs, as in the v2 VM's /tmp).
    if on_block_device(&b.rootfs()) {
        writes.push(&["/bin/probe", "write", "/direct", "2", "--direct"]);
    } else {
        eprintln!(
            "note: {} is on no block device: no direct I/O",
            b.rootfs().display()
        );
    }
    for args in writes {
        let mut cmd = vec!["exec", id.as_str()];
        cmd.extend_from_slice(args);
        let out = rt.run(&cmd);
        assert!(
            out.status.success(),
            "{}: {}",
            rt.bin.display(),
            describe(&out)
        );
    }
    let out = rt.run(&["events", "--stats", &id]);
    assert!(
        out.status.success(),
        "{}: {}",
        rt.bin.display(),
        describe(&out)
    );
    let event: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(rt.run(&["delete", "--force", &id]).status.success());
    assert_clean(rt, &id, &b);
    event
}

#[test]
fn stats_have_the_keys_of_runcs() {
    need_root!();
    let Some(runc) = Runtime::peer("runc") else {
        skip!("runc is not installed");
    };
    let berth = Runtime::berth();
    let ours = busy_stats(&berth);
    let theirs = busy_stats(&runc);
    assert_eq!(
        (ours["type"].as_str(), theirs["type"].as_str()),
        (Some("stats"), Some("stats"))
    );
    let (mut a, mut b) = Default::default();
    key_paths(&ours["data"], String::new(), &mut a);
    key_paths(&theirs["data"], String::new(), &mut b);
    let unknown: Vec<&String> = a
        .iter()
        .filter(|p| !p.is_empty() && !RUNC_KEYS.iter().any(|k| known(k, p)))
        .collect();
    assert!(unknown.is_empty(), "keys runc does not have: {unknown:?}");
    let differ: Vec<&String> = a
        .symmetric_difference(&b)
        .filter(|p| !RUNC_OMITEMPTY.iter().any(|k| covers(k, p)))
        .collect();
    assert!(
        differ.is_empty(),
        "keys only one side has: {differ:?}\nberth: {ours}\nrunc: {theirs}"
    );
    // What both have, both print as the same JSON type.
    for key in [
        "memory.usage.limit",
        "memory.swap.limit",
        "cpu.usage.kernel",
        "cpuset.sched_relax_domain_level",
    ] {
        let pointer = format!("/data/{}", key.replace('.', "/"));
        let (x, y) = (ours.pointer(&pointer), theirs.pointer(&pointer));
        assert_eq!(
            x.map(Value::is_u64),
            y.map(Value::is_u64),
            "{key}: {x:?} vs {y:?}"
        );
    }
}
