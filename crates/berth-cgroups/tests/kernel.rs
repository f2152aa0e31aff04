//! Real kernel, as root: create a cgroup on this host, limit it, put `sleep` in it, read stats,
//! freeze, kill everything, remove. Skips (with the reason) when not root or no cgroupfs.

// Test helpers outside #[test] functions may panic too.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use berth_cgroups::{Backend, Cgroup, Error, Layout, Mode};
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

// ---------------------------------------------------------------- blockIO, hugetlb, network,
// rdma, kernel memory, checkBeforeUpdate

/// A fresh cgroup on the real host with a guard that removes it; `None` (with the reason
/// printed) when the test cannot run here.
fn real_cgroup() -> Option<(Layout, Guard)> {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason}");
        return None;
    }
    let layout = Layout::detect().unwrap();
    let name = format!(
        "/berth-test-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    );
    let guard = Guard {
        cgroup: Cgroup::create(&layout, &name, "test").unwrap(),
        child: None,
    };
    Some((layout, guard))
}

/// The cgroup's directory for `controller` (v1 name), wherever the layout puts it.
fn dir_for(layout: &Layout, cgroup: &Cgroup, controller: &str) -> Option<PathBuf> {
    let key = match layout.controller(controller)? {
        Backend::V1(_) => controller,
        Backend::V2(_) => "unified",
    };
    cgroup
        .paths()
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, dir)| dir)
}

fn apply_json(cgroup: &Cgroup, json: &str) -> Result<(), Error> {
    cgroup.apply(&serde_json::from_str::<LinuxResources>(json).unwrap())
}

fn read_trimmed(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

/// `major:minor` of a whole block device of this machine; loads `loop` when there is none
/// (the pure v2 VM has no disks).
fn block_device() -> Option<String> {
    let find = || {
        let mut devices: Vec<(String, String)> = std::fs::read_dir("/sys/block")
            .ok()?
            .filter_map(Result::ok)
            .filter_map(|e| {
                let dev = std::fs::read_to_string(e.path().join("dev")).ok()?;
                Some((
                    e.file_name().to_string_lossy().into_owned(),
                    dev.trim().to_string(),
                ))
            })
            .collect();
        devices.sort();
        devices.into_iter().next().map(|(_, dev)| dev)
    };
    if let Some(dev) = find() {
        return Some(dev);
    }
    let loaded = Command::new("modprobe").arg("loop").status();
    eprintln!("no block device; modprobe loop: {loaded:?}");
    find()
}

#[test]
fn block_io_on_the_real_kernel() {
    let Some((layout, guard)) = real_cgroup() else {
        return;
    };
    let cgroup = &guard.cgroup;
    let Some(dev) = block_device() else {
        eprintln!("skipped: no block device in /sys/block, and loop could not be loaded");
        return;
    };
    let (major, minor) = dev.split_once(':').unwrap();
    let v1 = matches!(layout.controller("blkio"), Some(Backend::V1(_)));
    let Some(dir) = dir_for(&layout, cgroup, if v1 { "blkio" } else { "io" }) else {
        eprintln!("skipped: neither a blkio nor an io controller");
        return;
    };
    eprintln!("device {dev}, files in {}", dir.display());
    let json = format!(
        r#"{{"blockIO": {{"throttleReadBpsDevice": [{{"major": {major}, "minor": {minor}, "rate": 1048576}}],
            "throttleWriteIOPSDevice": [{{"major": {major}, "minor": {minor}, "rate": 100}}]}}}}"#
    );
    apply_json(cgroup, &json).unwrap();
    if v1 {
        let read_bps = read_trimmed(&dir.join("blkio.throttle.read_bps_device"));
        assert_eq!(read_bps, format!("{dev} 1048576"));
        let write_iops = read_trimmed(&dir.join("blkio.throttle.write_iops_device"));
        assert_eq!(write_iops, format!("{dev} 100"));
    } else {
        let io_max = read_trimmed(&dir.join("io.max"));
        assert_eq!(
            io_max,
            format!("{dev} rbps=1048576 wbps=max riops=max wiops=100")
        );
    }
    check_weight(cgroup, &dir, v1);
    check_device_weight(cgroup, &dir, &dev, v1);
}

/// A per-device weight: applied when the device uses BFQ (v1 and v2) or has io cost enabled
/// (v2), else refused before any write, naming the device's scheduler.
fn check_device_weight(cgroup: &Cgroup, dir: &Path, dev: &str, v1: bool) {
    let Ok(scheduler) = std::fs::read_to_string(format!("/sys/dev/block/{dev}/queue/scheduler"))
    else {
        eprintln!("{dev}: no queue/scheduler in sysfs, per-device weight not checked");
        return;
    };
    let (major, minor) = dev.split_once(':').unwrap();
    let json = format!(
        r#"{{"blockIO": {{"weightDevice": [{{"major": {major}, "minor": {minor}, "weight": 300}}]}}}}"#
    );
    let result = apply_json(cgroup, &json);
    eprintln!("{dev} scheduler {:?}: {result:?}", scheduler.trim());
    let bfq_file = if v1 {
        "blkio.bfq.weight_device"
    } else {
        "io.bfq.weight"
    };
    let root_qos = dir
        .ancestors()
        .last()
        .unwrap()
        .join("sys/fs/cgroup/io.cost.qos");
    let io_cost = !v1
        && std::fs::read_to_string(root_qos)
            .unwrap_or_default()
            .lines()
            .any(|l| l.starts_with(&format!("{dev} ")) && l.contains("enable=1"));
    if scheduler.contains("[bfq]") && dir.join(bfq_file).exists() {
        result.unwrap();
        assert!(read_trimmed(&dir.join(bfq_file)).contains(&format!("{dev} 300")));
    } else if io_cost {
        result.unwrap();
        assert!(read_trimmed(&dir.join("io.weight")).contains(&format!("{dev} 2930")));
    } else {
        let err = result.unwrap_err();
        assert!(
            matches!(&err, Error::Unsupported { setting, .. } if setting == "linux.resources.blockIO.weightDevice"),
            "{err}"
        );
    }
}

/// Applies weight 500 where the kernel has weight files, else checks the refusal names them.
fn check_weight(cgroup: &Cgroup, dir: &Path, v1: bool) {
    let candidates: &[(&str, &str)] = if v1 {
        &[("blkio.weight", "500"), ("blkio.bfq.weight", "500")]
    } else {
        &[
            ("io.bfq.weight", "default 500"),
            ("io.weight", "default 4950"),
        ]
    };
    let result = apply_json(cgroup, r#"{"blockIO": {"weight": 500}}"#);
    match candidates.iter().find(|(file, _)| dir.join(file).exists()) {
        Some((file, want)) => {
            result.unwrap();
            eprintln!("weight 500 -> {file}");
            assert_eq!(read_trimmed(&dir.join(file)), *want, "{file}");
        }
        None => {
            let err = result.unwrap_err();
            eprintln!("no weight files here: {err}");
            assert!(
                matches!(&err, Error::Unsupported { setting, .. } if setting == "linux.resources.blockIO.weight"),
                "{err}"
            );
        }
    }
}

/// Puts `hugetlb` back out of a unified parent's `cgroup.subtree_control` if the test put it in.
struct SubtreeRestore(Option<PathBuf>);

impl Drop for SubtreeRestore {
    fn drop(&mut self) {
        if let Some(file) = &self.0 {
            if let Err(err) = std::fs::write(file, "-hugetlb") {
                eprintln!("cleanup: -hugetlb in {}: {err}", file.display());
            }
        }
    }
}

#[test]
fn hugetlb_on_the_real_kernel() {
    let Some((layout, guard)) = real_cgroup() else {
        return;
    };
    let Some(backend) = layout.controller("hugetlb") else {
        eprintln!("skipped: no hugetlb controller");
        return;
    };
    if !Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").is_dir() {
        eprintln!("skipped: no 2 MB huge pages on this kernel");
        return;
    }
    let cgroup = guard.cgroup.clone();
    let dir = dir_for(&layout, &cgroup, "hugetlb").unwrap();
    // Dropped after `guard` (declared later, dropped first): the cgroup is gone by then.
    let parent_control = dir.parent().unwrap().join("cgroup.subtree_control");
    let was_enabled = std::fs::read_to_string(&parent_control)
        .map(|t| t.split_whitespace().any(|c| c == "hugetlb"))
        .unwrap_or(true);
    let _restore = SubtreeRestore(
        (layout.mode() == Mode::Hybrid && !was_enabled).then(|| parent_control.clone()),
    );
    let guard = guard;
    apply_json(
        &cgroup,
        r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}"#,
    )
    .unwrap();
    let file = match backend {
        Backend::V1(_) => "hugetlb.2MB.limit_in_bytes",
        Backend::V2(_) => "hugetlb.2MB.max",
    };
    eprintln!("{:?}: {}", layout.mode(), dir.join(file).display());
    assert_eq!(read_trimmed(&dir.join(file)), "4194304");
    let err = apply_json(
        &cgroup,
        r#"{"hugepageLimits": [{"pageSize": "3MB", "limit": 4194304}]}"#,
    )
    .unwrap_err();
    eprintln!("{err}");
    assert!(err.to_string().contains("2MB"), "{err}");
    drop(guard);
}

#[test]
fn kernel_memory_on_the_real_kernel() {
    let Some((layout, guard)) = real_cgroup() else {
        return;
    };
    let cgroup = &guard.cgroup;
    let Some(dir) = dir_for(&layout, cgroup, "memory") else {
        eprintln!("skipped: no memory controller");
        return;
    };
    let release = layout.kernel_release().unwrap();
    let v1 = matches!(layout.controller("memory"), Some(Backend::V1(_)));
    let err = apply_json(cgroup, r#"{"memory": {"kernel": 67108864}}"#);
    eprintln!("Linux {release}, memory.kernel: {err:?}");
    if v1 && !release.at_least(5, 16) {
        err.unwrap();
        eprintln!("kernel memory limit applied (Linux before 5.16)");
        return;
    }
    let err = err.unwrap_err();
    assert!(
        matches!(&err, Error::Unsupported { setting, .. } if setting == "linux.resources.memory.kernel"),
        "{err}"
    );
    if v1 {
        assert!(err.to_string().contains("5.16"), "{err}");
        kmem_write_is_not_applied(&dir);
    }
    apply_json(cgroup, r#"{"memory": {"kernel": -1}}"#).unwrap();

    let tcp = apply_json(cgroup, r#"{"memory": {"kernelTCP": 16777216}}"#);
    let tcp_file = dir.join("memory.kmem.tcp.limit_in_bytes");
    if v1 && tcp_file.exists() {
        tcp.unwrap();
        assert_eq!(read_trimmed(&tcp_file), "16777216");
    } else {
        let err = tcp.unwrap_err();
        eprintln!("memory.kernelTCP: {err}");
        assert!(
            matches!(&err, Error::Unsupported { setting, .. } if setting == "linux.resources.memory.kernelTCP"),
            "{err}"
        );
    }
}

/// Why Berth refuses memory.kernel from 5.16 on: the kernel fails the write or ignores it.
fn kmem_write_is_not_applied(dir: &Path) {
    let file = dir.join("memory.kmem.limit_in_bytes");
    if !file.exists() {
        eprintln!("no {}", file.display());
        return;
    }
    let before = read_trimmed(&file);
    let write = std::fs::write(&file, "67108864");
    let after = read_trimmed(&file);
    eprintln!("direct write to memory.kmem.limit_in_bytes: {write:?}, reads {before} -> {after}");
    assert!(
        write.is_err() || after == before,
        "the kernel applied a kmem limit"
    );
}

#[test]
fn check_before_update_on_the_real_kernel() {
    let Some((layout, mut guard)) = real_cgroup() else {
        return;
    };
    let cgroup = guard.cgroup.clone();
    let Some(dir) = dir_for(&layout, &cgroup, "memory") else {
        eprintln!("skipped: no memory controller");
        return;
    };
    let huge = r#"{"memory": {"limit": 268435456, "checkBeforeUpdate": true}}"#;
    if let Some(Backend::V1(_)) = layout.controller("memory") {
        // v1: the kernel refuses what it cannot reclaim down to; Berth adds nothing.
        apply_json(&cgroup, huge).unwrap();
        assert_eq!(
            read_trimmed(&dir.join("memory.limit_in_bytes")),
            "268435456"
        );
        return;
    }
    let (child, usage) = memory_user(&cgroup, &dir);
    guard.child = Some(child);
    eprintln!("memory.current {usage}");
    let below = usage / 2;
    let err = apply_json(
        &cgroup,
        &format!(r#"{{"memory": {{"limit": {below}, "checkBeforeUpdate": true}}}}"#),
    )
    .unwrap_err();
    eprintln!("{err}");
    assert!(
        matches!(&err, Error::InvalidValue { setting, .. } if setting == "linux.resources.memory.limit"),
        "{err}"
    );
    assert_eq!(
        read_trimmed(&dir.join("memory.max")),
        "max",
        "nothing written"
    );
    apply_json(&cgroup, huge).unwrap();
    assert_eq!(read_trimmed(&dir.join("memory.max")), "268435456");
}

/// A shell in the cgroup that holds about 4 MB, and the cgroup's `memory.current` then.
fn memory_user(cgroup: &Cgroup, dir: &Path) -> (Child, u64) {
    use std::io::{BufRead, BufReader, Write};
    let mut child = Command::new("sh")
        .args([
            "-c",
            r#"read go; x=$(head -c 4000000 /dev/zero | tr '\0' a); echo ready; read done"#,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    cgroup.add_pid(i32::try_from(child.id()).unwrap()).unwrap();
    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    let usage: u64 = read_trimmed(&dir.join("memory.current")).parse().unwrap();
    assert!(usage > 4_000_000, "memory.current {usage}");
    (child, usage)
}

#[test]
fn network_and_rdma_on_the_real_kernel() {
    let Some((layout, guard)) = real_cgroup() else {
        return;
    };
    let cgroup = &guard.cgroup;
    let result = apply_json(cgroup, r#"{"network": {"classID": 1048577}}"#);
    match dir_for(&layout, cgroup, "net_cls").filter(|_| layout.mode() != Mode::V2) {
        Some(dir) => {
            result.unwrap();
            assert_eq!(read_trimmed(&dir.join("net_cls.classid")), "1048577");
        }
        None => {
            let err = result.unwrap_err();
            eprintln!("no net_cls: {err}");
            assert!(matches!(err, Error::Unsupported { .. }), "{err}");
        }
    }
    let result = apply_json(
        cgroup,
        r#"{"rdma": {"berth-no-such-hca": {"hcaHandles": 1}}}"#,
    );
    let err = result.unwrap_err();
    eprintln!("rdma: {err}");
    if layout.controller("rdma").is_some() {
        // The controller is there, the device is not: the kernel's refusal, with the file.
        assert!(matches!(err, Error::Write { .. }), "{err}");
    } else {
        assert!(matches!(err, Error::ControllerMissing { .. }), "{err}");
    }
}
