//! Resource limits of berth-runtime containers, measured on the real kernel: the OOM kill and
//! its count, a CPU quota, a cpuset, pids.max, block IO throttling (direct and buffered writes),
//! freeze and thaw, a live memory update, swappiness.
//!
//! Each container gets `linux.resources` in its config.json and `linux.cgroupsPath` `/<id>`, so
//! its cgroup is `<hierarchy>/<id>` and the tests read the kernel's own files there. On this
//! project's hybrid hosts the v1 controllers do the work; tests/vm runs the same tests on a pure
//! cgroup-v2 kernel, and each test asserts what its version does (docs/cgroup-behaviour.md).
//! Rate measurements (CPU, block IO, freezer) hold a lock so they never overlap each other.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_integration_tests::*;
use serde_json::{json, Value};

const MIB: u64 = 1 << 20;

// ---- cgroup hierarchies, as the test process sees them

/// Where a controller lives: a v1 hierarchy, or the cgroup2 mount.
#[derive(Debug, Clone)]
struct Controller {
    mount: PathBuf,
    v2: bool,
}

impl Controller {
    /// The container's cgroup directory (its cgroupsPath is `/<id>`).
    fn dir(&self, id: &str) -> PathBuf {
        self.mount.join(id)
    }

    fn version(&self) -> &'static str {
        if self.v2 {
            "v2"
        } else {
            "v1"
        }
    }
}

/// The cgroup mounts of /proc/self/mountinfo: (mount point, fstype, super options).
fn cgroup_mounts() -> Vec<(PathBuf, String, String)> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let target = left.split(' ').nth(4)?;
            let mut right = right.split(' ');
            let fstype = right.next()?;
            let options = right.nth(1)?;
            (fstype == "cgroup" || fstype == "cgroup2").then(|| {
                (
                    PathBuf::from(target),
                    fstype.to_string(),
                    options.to_string(),
                )
            })
        })
        .collect()
}

/// The hierarchy that holds `name` (v1 name like `cpuacct`, or a v2 controller like `io`):
/// a v1 mount listing it, else a cgroup2 mount whose cgroup.controllers has it.
fn controller(name: &str) -> Option<Controller> {
    let mounts = cgroup_mounts();
    let v1 = mounts
        .iter()
        .find(|(_, fstype, options)| fstype == "cgroup" && options.split(',').any(|o| o == name));
    if let Some((mount, _, _)) = v1 {
        return Some(Controller {
            mount: mount.clone(),
            v2: false,
        });
    }
    mounts
        .iter()
        .filter(|(_, fstype, _)| fstype == "cgroup2")
        .find(|(mount, _, _)| {
            std::fs::read_to_string(mount.join("cgroup.controllers"))
                .unwrap_or_default()
                .split_whitespace()
                .any(|c| c == name)
        })
        .map(|(mount, _, _)| Controller {
            mount: mount.clone(),
            v2: true,
        })
}

/// The hierarchy with the CPU usage counter: v1 `cpuacct`, else v2 `cpu` (cpu.stat).
fn cpu_usage_controller() -> Option<Controller> {
    controller("cpuacct").or_else(|| controller("cpu").filter(|c| c.v2))
}

/// The hierarchy with the freezer: v1 `freezer`, else cgroup2 (`cgroup.freeze`, in every
/// non-root cgroup).
fn freezer() -> Option<Controller> {
    controller("freezer").or_else(|| {
        cgroup_mounts()
            .into_iter()
            .find(|(_, fstype, _)| fstype == "cgroup2")
            .map(|(mount, _, _)| Controller { mount, v2: true })
    })
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// `key value` lines (memory.events, cpu.stat, memory.oom_control) -> the value of `key`.
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// The kernel's CPU list format (`0-2,5`) as CPU numbers.
fn parse_cpu_list(text: &str) -> Vec<usize> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => cpus.extend(a.parse::<usize>().unwrap()..=b.parse().unwrap()),
            None => cpus.push(part.parse().unwrap()),
        }
    }
    cpus
}

// ---- processes

/// utime + stime of `pid` in seconds (fields 14 and 15 of /proc/PID/stat, in clock ticks).
fn cpu_seconds(pid: i64) -> f64 {
    let stat = read(Path::new(&format!("/proc/{pid}/stat")));
    // Fields after the command name (which may hold spaces); the first of them is field 3.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let per_second = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .unwrap()
        .unwrap();
    ticks as f64 / per_second as f64
}

/// The cgroup's CPU time in seconds: v1 `cpuacct.usage` (ns), v2 `usage_usec` of cpu.stat.
fn cgroup_cpu_seconds(usage: &Controller, id: &str) -> f64 {
    if usage.v2 {
        let stat = read(&usage.dir(id).join("cpu.stat"));
        keyed(&stat, "usage_usec").unwrap() as f64 / 1e6
    } else {
        read(&usage.dir(id).join("cpuacct.usage"))
            .trim()
            .parse::<u64>()
            .unwrap() as f64
            / 1e9
    }
}

/// Throttling counters and the load average, for failure messages about rates.
fn cpu_context(cpu: &Controller, id: &str) -> String {
    format!(
        "cpu.stat: {:?}; loadavg: {}",
        std::fs::read_to_string(cpu.dir(id).join("cpu.stat")).unwrap_or_default(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    )
}

/// An exclusive lock held while a test measures a rate, so this file's busy loops and
/// throttled writers do not disturb each other.
fn measuring() -> nix::fcntl::Flock<File> {
    let file = File::create(std::env::temp_dir().join("berth-cgroups-measure.lock")).unwrap();
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .unwrap()
}

// ---- containers

/// A bundle running `args` in the cgroup `/<id>`, with `resources` merged into
/// `linux.resources` (the default "deny all devices" rule stays unless replaced).
fn limited(args: &[&str], id: &str, resources: Value) -> Bundle {
    let mut b = Bundle::new(args);
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = format!("/{id}").into();
        for (key, value) in resources.as_object().unwrap() {
            c["linux"]["resources"][key] = value.clone();
        }
    });
    b
}

/// create + start; returns the init's pid.
fn start(rt: &Runtime, b: &Bundle, id: &str) -> i64 {
    let (st, err) = create(rt, b, id, &[]);
    assert!(st.success(), "create {id}: {err}");
    let out = rt.run(&["start", id]);
    assert!(out.status.success(), "start {id}: {}", describe(&out));
    let state = rt.state(id).expect("state after start");
    state["pid"].as_i64().unwrap()
}

/// delete (which must succeed), then nothing of the container may be left.
fn finish(rt: &Runtime, id: &str, b: &Bundle) {
    let out = rt.run(&["delete", "--force", id]);
    assert!(out.status.success(), "delete {id}: {}", describe(&out));
    assert_clean(rt, id, b);
}

/// `exec id ARGS...`, stdin closed, output captured.
fn exec(rt: &Runtime, id: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["exec", id];
    all.extend_from_slice(args);
    rt.run(&all)
}

/// Memory limit with memory+swap equal to it: no swap, whatever swap the host has (the
/// swappiness test may turn some on meanwhile).
fn memory_without_swap(limit: u64) -> Value {
    json!({"limit": limit, "swap": limit})
}

// ---- memory

#[test]
fn memory_limit_oom_kills_with_137_and_counts_the_kill() {
    need_root!();
    let Some(memory) = controller("memory") else {
        skip!("no memory controller");
    };
    let rt = Runtime::berth();
    let resources = json!({"memory": memory_without_swap(32 * MIB)});

    // `run` returns 128 + SIGKILL for an init the OOM killer killed.
    let id = unique_id("cg-oom-run");
    let b = limited(&["/bin/probe", "alloc", "64"], &id, resources.clone());
    let _g = rt.guard(&id);
    let out = rt.run_bundle(&b, &id);
    assert_eq!(out.status.code(), Some(137), "{}", describe(&out));
    assert!(!stdout(&out).contains("allocated 64"), "{}", describe(&out));
    assert_clean(&rt, &id, &b);

    // The kill is counted in the container's memory cgroup, read before delete.
    let id = unique_id("cg-oom-count");
    let b = limited(&["/bin/probe", "alloc", "64"], &id, resources);
    let _g = rt.guard(&id);
    start(&rt, &b, &id);
    assert!(
        wait_status(&rt, &id, "stopped"),
        "the allocation was not stopped: {:?}",
        rt.state(&id)
    );
    let file = if memory.v2 {
        "memory.events"
    } else {
        "memory.oom_control"
    };
    let text = read(&memory.dir(&id).join(file));
    eprintln!("{} {file}: {text:?}", memory.version());
    assert_eq!(keyed(&text, "oom_kill"), Some(1), "{file}: {text}");
    finish(&rt, &id, &b);
}

#[test]
fn update_memory_saves_an_allocation_the_old_limit_killed() {
    need_root!();
    let Some(memory) = controller("memory") else {
        skip!("no memory controller");
    };
    let rt = Runtime::berth();
    let id = unique_id("cg-update");
    let b = limited(
        &["/bin/probe", "sleep", "1000"],
        &id,
        json!({"memory": memory_without_swap(32 * MIB)}),
    );
    let _g = rt.guard(&id);
    start(&rt, &b, &id);

    let out = exec(&rt, &id, &["/bin/probe", "alloc", "64"]);
    assert_eq!(
        out.status.code(),
        Some(137),
        "64 MiB under a 32 MiB limit: {}",
        describe(&out)
    );
    assert_eq!(
        status_of(&rt, &id).as_deref(),
        Some("running"),
        "the OOM killer took the allocating process, not the init"
    );

    let out = rt.run(&["update", "--memory", "128m", "--memory-swap", "128m", &id]);
    assert!(out.status.success(), "update: {}", describe(&out));
    let limit = if memory.v2 {
        read(&memory.dir(&id).join("memory.max"))
    } else {
        read(&memory.dir(&id).join("memory.limit_in_bytes"))
    };
    assert_eq!(limit.trim(), (128 * MIB).to_string());

    let out = exec(&rt, &id, &["/bin/probe", "alloc", "64"]);
    assert!(
        out.status.success(),
        "64 MiB under 128 MiB: {}",
        describe(&out)
    );
    assert_eq!(stdout(&out).trim(), "allocated 64");
    finish(&rt, &id, &b);
}

/// Swap for the length of a test (unless the host has some): a swap file under /var/tmp, or
/// where that filesystem cannot hold one, swap on a loop device over the file. Dropped: swapoff.
struct Swap {
    device: Option<PathBuf>,
    _loop: Option<LoopDevice>,
    _dir: Option<tempfile::TempDir>,
}

impl Swap {
    fn host_has_swap() -> bool {
        std::fs::read_to_string("/proc/swaps")
            .unwrap_or_default()
            .lines()
            .count()
            > 1
    }

    /// Swap to use, or why there is none.
    fn on(mib: u64) -> Result<Swap, String> {
        if Swap::host_has_swap() {
            return Ok(Swap {
                device: None,
                _loop: None,
                _dir: None,
            });
        }
        for tool in ["mkswap", "swapon", "swapoff"] {
            if !have(tool) {
                return Err(format!("{tool} not found"));
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("berth-swap-")
            .tempdir_in("/var/tmp")
            .map_err(|e| format!("tempdir in /var/tmp: {e}"))?;
        let file = dir.path().join("swap");
        let made = File::create(&file)
            .and_then(|f| f.set_len(mib * MIB).map(|()| f))
            .and_then(|f| {
                use std::os::unix::fs::PermissionsExt;
                f.set_permissions(std::fs::Permissions::from_mode(0o600))
            });
        made.map_err(|e| format!("create {}: {e}", file.display()))?;
        // A swap file must have no holes: write it out.
        sh(&format!(
            "dd if=/dev/zero of={} bs=1M count={mib} conv=notrunc status=none",
            file.display()
        ))?;
        let first = sh(&format!(
            "mkswap {f} >/dev/null && swapon {f}",
            f = file.display()
        ));
        if first.is_ok() {
            return Ok(Swap {
                device: Some(file),
                _loop: None,
                _dir: Some(dir),
            });
        }
        // Filesystems like tmpfs refuse swap files; a loop device over the file works.
        let lo = LoopDevice::over(&file)?;
        sh(&format!(
            "mkswap {d} >/dev/null && swapon {d}",
            d = lo.path.display()
        ))
        .map_err(|e| {
            format!(
                "swap file: {}; swap on a loop device: {e}",
                first.unwrap_err()
            )
        })?;
        Ok(Swap {
            device: Some(lo.path.clone()),
            _loop: Some(lo),
            _dir: Some(dir),
        })
    }
}

impl Drop for Swap {
    fn drop(&mut self) {
        if let Some(device) = &self.device {
            if let Err(e) = sh(&format!("swapoff {}", device.display())) {
                eprintln!("cleanup: {e}");
            }
        }
    }
}

/// `sh -c SCRIPT`; Err with its stderr when it fails.
fn sh(script: &str) -> Result<String, String> {
    let out = Command::new("sh")
        .args(["-c", script])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{script}: {e}"))?;
    if out.status.success() {
        Ok(stdout(&out))
    } else {
        Err(format!("{script}: {}: {}", out.status, stderr(&out).trim()))
    }
}

#[test]
fn swappiness_zero_keeps_the_cgroup_out_of_swap() {
    need_root!();
    let Some(memory) = controller("memory") else {
        skip!("no memory controller");
    };
    let rt = Runtime::berth();
    let resources = |swappiness: u64| {
        let memory = json!({"limit": 32 * MIB, "swap": -1, "swappiness": swappiness});
        json!({ "memory": memory })
    };
    if memory.v2 {
        // cgroup v2 has no per-cgroup swappiness: refused with a clear error, nothing left.
        let id = unique_id("cg-swappiness");
        let b = limited(&["/bin/probe", "alloc", "64"], &id, resources(0));
        let _g = rt.guard(&id);
        let out = rt.run_bundle(&b, &id);
        assert!(!out.status.success(), "{}", describe(&out));
        assert!(
            stderr(&out).contains("linux.resources.memory.swappiness: unsupported"),
            "{}",
            describe(&out)
        );
        assert_clean(&rt, &id, &b);
        return;
    }
    if !memory.mount.join("memory.memsw.limit_in_bytes").exists() {
        skip!("swap accounting is off (no memory.memsw.limit_in_bytes): memory.swap cannot be set");
    }
    // 64 MiB under a 32 MiB limit with unlimited memory+swap: swappiness 0 must not swap, so
    // the allocation is OOM-killed; swappiness 60 swaps the excess out and succeeds.
    let cases: Vec<_> = [(0, 137, ""), (60, 0, "allocated 64")]
        .into_iter()
        .map(|(swappiness, code, text)| {
            let id = unique_id("cg-swappiness");
            let b = limited(&["/bin/probe", "alloc", "64"], &id, resources(swappiness));
            (swappiness, code, text, id, b)
        })
        .collect();
    // Swap is on for the two runs only: other tests' memory limits may not expect it.
    let swap = match Swap::on(256) {
        Ok(swap) => swap,
        Err(why) => skip!("no swap: {why}"),
    };
    for (swappiness, code, text, id, b) in &cases {
        let _g = rt.guard(id);
        let out = rt.run_bundle(b, id);
        assert_eq!(
            out.status.code(),
            Some(*code),
            "swappiness {swappiness}: {}",
            describe(&out)
        );
        assert_eq!(stdout(&out).trim(), *text, "swappiness {swappiness}");
        assert_clean(&rt, id, b);
    }
    drop(swap);
}

// ---- cpu

#[test]
fn cpu_quota_of_half_a_cpu_gives_half_a_cpu() {
    need_root!();
    let (Some(cpu), Some(usage)) = (controller("cpu"), cpu_usage_controller()) else {
        skip!("no cpu or cpuacct controller");
    };
    let rt = Runtime::berth();
    let id = unique_id("cg-quota");
    let b = limited(
        &["/bin/probe", "busy", "0"],
        &id,
        json!({"cpu": {"quota": 50000, "period": 100000}}),
    );
    // Taken first, released last: the container is gone before another measurement starts.
    let _lock = measuring();
    let _g = rt.guard(&id);
    let pid = start(&rt, &b, &id);
    let limit = if cpu.v2 {
        read(&cpu.dir(&id).join("cpu.max"))
    } else {
        format!(
            "{} {}",
            read(&cpu.dir(&id).join("cpu.cfs_quota_us")).trim(),
            read(&cpu.dir(&id).join("cpu.cfs_period_us")).trim()
        )
    };
    assert_eq!(limit.trim(), "50000 100000");

    std::thread::sleep(Duration::from_millis(500));
    let (t0, p0, c0) = (
        Instant::now(),
        cpu_seconds(pid),
        cgroup_cpu_seconds(&usage, &id),
    );
    std::thread::sleep(Duration::from_millis(2500));
    let (p1, c1) = (cpu_seconds(pid), cgroup_cpu_seconds(&usage, &id));
    let wall = t0.elapsed().as_secs_f64();
    let by_proc = (p1 - p0) / wall;
    let by_cgroup = (c1 - c0) / wall;
    eprintln!(
        "{}: over {wall:.2} s: /proc/{pid}/stat {:.1}% of a CPU, cgroup usage {:.1}%",
        cpu.version(),
        by_proc * 100.0,
        by_cgroup * 100.0
    );
    for (what, share) in [("utime+stime", by_proc), ("cgroup usage", by_cgroup)] {
        assert!(
            (0.45..=0.55).contains(&share),
            "{what}: {:.1}% of a CPU, not within 10% of 50%; {}",
            share * 100.0,
            cpu_context(&cpu, &id)
        );
    }
    finish(&rt, &id, &b);
}

#[test]
fn cpuset_pins_the_container_to_one_cpu() {
    need_root!();
    let Some(cpuset) = controller("cpuset") else {
        skip!("no cpuset controller");
    };
    let parent = if cpuset.v2 {
        "cpuset.cpus.effective"
    } else {
        "cpuset.cpus"
    };
    let available = parse_cpu_list(&read(&cpuset.mount.join(parent)));
    let Some(&cpu) = available.last().filter(|_| available.len() > 1) else {
        skip!("only CPUs {available:?}: pinning to one proves nothing");
    };
    let rt = Runtime::berth();
    let id = unique_id("cg-cpuset");
    let b = limited(
        &["/bin/probe", "sleep", "1000"],
        &id,
        json!({"cpu": {"cpus": cpu.to_string()}}),
    );
    let _g = rt.guard(&id);
    let pid = start(&rt, &b, &id);
    let status = read(Path::new(&format!("/proc/{pid}/status")));
    let allowed = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim();
    assert_eq!(allowed, cpu.to_string(), "init's Cpus_allowed_list");
    let out = exec(&rt, &id, &["/bin/probe", "affinity"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        stdout(&out).trim(),
        cpu.to_string(),
        "sched_getaffinity in an exec"
    );
    assert_eq!(
        read(&cpuset.dir(&id).join("cpuset.cpus")).trim(),
        cpu.to_string()
    );
    finish(&rt, &id, &b);
}

// ---- pids

#[test]
fn pids_max_makes_fork_fail_with_eagain() {
    need_root!();
    if controller("pids").is_none() {
        skip!("no pids controller");
    }
    let rt = Runtime::berth();
    let id = unique_id("cg-pids");
    let b = limited(
        &["/bin/probe", "fork", "10"],
        &id,
        json!({"pids": {"limit": 5}}),
    );
    let _g = rt.guard(&id);
    let out = rt.run_bundle(&b, &id);
    // The probe is one of the 5 tasks, so its fifth fork fails.
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(
        stdout(&out).trim(),
        "forked 4\nfork failed: EAGAIN",
        "{}",
        describe(&out)
    );
    assert_clean(&rt, &id, &b);
}

// ---- freezer

#[test]
fn pause_stops_cpu_time_and_resume_restarts_it() {
    need_root!();
    let Some(freezer) = freezer() else {
        skip!("no freezer (v1 freezer or cgroup2)");
    };
    let rt = Runtime::berth();
    let id = unique_id("cg-freeze");
    let b = limited(&["/bin/probe", "busy", "0"], &id, json!({}));
    // Taken first, released last: the container is gone before another measurement starts.
    let _lock = measuring();
    let _g = rt.guard(&id);
    let pid = start(&rt, &b, &id);
    assert!(
        wait_until(10.0, || cpu_seconds(pid) > 0.1),
        "the busy loop never ran"
    );

    let out = rt.run(&["pause", &id]);
    assert!(out.status.success(), "pause: {}", describe(&out));
    assert_eq!(status_of(&rt, &id).as_deref(), Some("paused"));
    let frozen = cpu_seconds(pid);
    std::thread::sleep(Duration::from_secs(1));
    let later = cpu_seconds(pid);
    eprintln!(
        "{} freezer: paused {frozen:.2} s, after 1 s {later:.2} s",
        freezer.version()
    );
    assert_eq!(frozen, later, "a frozen process accrued CPU time");

    let out = rt.run(&["resume", &id]);
    assert!(out.status.success(), "resume: {}", describe(&out));
    assert_eq!(status_of(&rt, &id).as_deref(), Some("running"));
    let thawed = cpu_seconds(pid);
    std::thread::sleep(Duration::from_secs(1));
    let resumed = cpu_seconds(pid);
    eprintln!("resumed: {thawed:.2} s, after 1 s {resumed:.2} s");
    assert!(
        resumed - thawed >= 0.1,
        "a resumed busy loop got {:.2} s of CPU in 1 s",
        resumed - thawed
    );
    finish(&rt, &id, &b);
}

// ---- block IO

/// A loop device over a file, detached on drop (tests shell out to losetup).
struct LoopDevice {
    path: PathBuf,
    major: u64,
    minor: u64,
}

impl LoopDevice {
    fn over(file: &Path) -> Result<LoopDevice, String> {
        use std::os::unix::fs::MetadataExt;
        if !have("losetup") {
            return Err("losetup not found".into());
        }
        let path = PathBuf::from(sh(&format!("losetup --find --show {}", file.display()))?.trim());
        let rdev = std::fs::metadata(&path)
            .map_err(|e| format!("stat {}: {e}", path.display()))?
            .rdev();
        Ok(LoopDevice {
            path,
            major: nix::sys::stat::major(rdev),
            minor: nix::sys::stat::minor(rdev),
        })
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        if let Err(e) = sh(&format!("losetup --detach {}", self.path.display())) {
            eprintln!("cleanup: {e}");
        }
    }
}

/// `seconds S` of `probe write --timed`.
fn write_seconds(out: &std::process::Output) -> f64 {
    stdout(out)
        .lines()
        .find_map(|l| l.strip_prefix("seconds "))
        .unwrap_or_else(|| panic!("no seconds: {}", describe(out)))
        .parse()
        .unwrap()
}

#[test]
fn blkio_throttles_the_containers_writes_and_on_v2_their_writeback() {
    need_root!();
    let Some(io) = controller("blkio").or_else(|| controller("io")) else {
        skip!("no blkio (v1) or io (v2) controller");
    };
    let dir = tempfile::Builder::new()
        .prefix("berth-blkio-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let backing = dir.path().join("disk");
    File::create(&backing).unwrap().set_len(64 * MIB).unwrap();
    let lo = match LoopDevice::over(&backing) {
        Ok(lo) => lo,
        Err(why) => skip!("no loop device: {why}"),
    };
    let (major, minor) = (lo.major, lo.minor);
    let rate = 4 * MIB;
    let mib = 12;
    let rt = Runtime::berth();
    let id = unique_id("cg-blkio");
    let mut b = limited(
        &["/bin/probe", "sleep", "1000"],
        &id,
        json!({
            "devices": [
                {"allow": false, "access": "rwm"},
                {"allow": true, "type": "b", "major": major, "minor": minor, "access": "rwm"}
            ],
            "blockIO": {"throttleWriteBpsDevice": [{"major": major, "minor": minor, "rate": rate}]}
        }),
    );
    b.edit(|c| {
        c["linux"]["devices"] = json!([{
            "path": "/dev/berth-disk", "type": "b", "major": major, "minor": minor,
            "fileMode": 0o660, "uid": 0, "gid": 0
        }]);
    });
    // Taken first, released last: the container is gone before another measurement starts.
    let _lock = measuring();
    let _g = rt.guard(&id);
    let (st, err) = create(&rt, &b, &id, &[]);
    if !st.success() && err.contains("linux.resources.blockIO") && err.contains("unsupported") {
        panic!("berth-runtime refuses blockIO (not implemented yet?): {err}");
    }
    assert!(st.success(), "create: {err}");
    let out = rt.run(&["start", &id]);
    assert!(out.status.success(), "start: {}", describe(&out));
    let (file, want) = if io.v2 {
        ("io.max", format!("{major}:{minor} rbps=max wbps={rate} "))
    } else {
        (
            "blkio.throttle.write_bps_device",
            format!("{major}:{minor} {rate}"),
        )
    };
    let limits = read(&io.dir(&id).join(file));
    assert!(limits.contains(&want), "{file}: {limits:?}, want {want:?}");
    // The host keeps the device open, so the probe's close is never the last one (the last
    // close of a block device writes its dirty pages back, in the closing process).
    let held = File::open(&lo.path).unwrap();
    let limit = rate as f64 / MIB as f64;
    let within = |rate: f64| (rate / limit - 1.0).abs() <= 0.10;
    let v = io.version();
    // `probe write` of `mib` MiB to the device in the container: MiB/s from its own timing.
    let write = |flags: &[&str]| {
        let size = mib.to_string();
        let mut args = vec!["/bin/probe", "write", "/dev/berth-disk", &size, "--timed"];
        args.extend_from_slice(flags);
        let out = exec(&rt, &id, &args);
        assert!(out.status.success(), "write {flags:?}: {}", describe(&out));
        mib as f64 / write_seconds(&out)
    };

    // O_DIRECT: the container's own IO, throttled on both versions.
    let direct = write(&["--direct"]);
    eprintln!("{v}: O_DIRECT writes of {mib} MiB at {direct:.2} MiB/s (limit {limit} MiB/s)");
    assert!(
        within(direct),
        "{v}: O_DIRECT writes at {direct:.2} MiB/s, not within 10% of {limit} MiB/s"
    );

    // Buffered writes and fsync in the container: throttled on both versions (v1: the fsync
    // submits the writeback from the container's process; v2: cgroup writeback).
    let synced = write(&[]);
    eprintln!("{v}: buffered writes + fsync in the container at {synced:.2} MiB/s");
    assert!(
        within(synced),
        "{v}: buffered writes + fsync at {synced:.2} MiB/s, not within 10% of {limit} MiB/s"
    );

    // Buffered writes without fsync land in the page cache; then the host writes them back.
    let buffered = write(&["--no-sync"]);
    let started = Instant::now();
    held.sync_all().unwrap();
    let writeback = mib as f64 / started.elapsed().as_secs_f64();
    eprintln!(
        "{v}: buffered writes without fsync at {buffered:.1} MiB/s, their writeback (fsync on \
         the host) at {writeback:.2} MiB/s"
    );
    if io.v2 {
        // The dirty pages belong to the container's cgroup, and so does their writeback,
        // whoever starts it.
        assert!(
            within(writeback),
            "v2: writeback at {writeback:.2} MiB/s, not within 10% of {limit} MiB/s"
        );
    } else {
        // v1 throttles only the IO that a process of the cgroup submits: neither the writes
        // into the page cache nor their writeback by another process.
        assert!(
            buffered >= 3.0 * limit && writeback >= 3.0 * limit,
            "v1: buffered writes ({buffered:.1} MiB/s) and their writeback ({writeback:.1} \
             MiB/s) should not be throttled to {limit} MiB/s"
        );
    }
    drop(held);
    finish(&rt, &id, &b);
}
