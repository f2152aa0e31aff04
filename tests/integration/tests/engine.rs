//! `berth` end to end, as root on the real kernel: run, create, start, stop, kill, rm, ps,
//! inspect, logs, exec, wait, pause, update, top, stats, cp, rename, prune, with berth-init
//! and berth-monitor, against a busybox image imported into a private root. Every test
//! removes what it made (its own data and run roots) even when it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_integration_tests::{bin_dir, have, is_root, need_root, skip};

/// A private berth (its own data and run roots, and its own default bridge, so that tests
/// running at once do not share one address pool) with a busybox image `bb`.
struct Berth {
    dir: tempfile::TempDir,
    bridge: String,
}

impl Berth {
    fn new() -> Berth {
        let dir = tempfile::Builder::new()
            .prefix("be")
            .tempdir_in("/tmp")
            .unwrap();
        let bridge = format!("be{}", std::process::id());
        let b = Berth { dir, bridge };
        let rootfs = b.dir.path().join("rootfs");
        busybox_rootfs(&rootfs);
        let tar = b.dir.path().join("bb.tar");
        let out = Command::new("tar")
            .args([
                "-C",
                rootfs.to_str().unwrap(),
                "-cf",
                tar.to_str().unwrap(),
                ".",
            ])
            .output()
            .unwrap();
        assert!(out.status.success());
        b.ok(&["import", tar.to_str().unwrap(), "bb:latest"]);
        b
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin_dir().join("berth"));
        cmd.arg("--root")
            .arg(self.data())
            .arg("--runroot")
            .arg(self.dir.path().join("run"))
            .env("BERTH_BRIDGE", &self.bridge)
            .env("BERTH_BRIDGE_SUBNET", private_subnet())
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Run, assert success, return stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "berth {args:?}: {}", describe(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn inspect(&self, name: &str, template: &str) -> String {
        self.ok(&["inspect", "-f", template, name])
            .trim()
            .to_owned()
    }

    fn ids(&self) -> Vec<String> {
        self.ok(&["ps", "-aq", "--no-trunc"])
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        for id in self.ids_quiet() {
            let _ = self.run(&["rm", "-f", "-v", &id]);
        }
        // Unmount anything still mounted under the root before the tempdir goes.
        let root = self.dir.path().to_string_lossy().into_owned();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for line in mounts.lines() {
            if let Some(point) = line.split(' ').nth(4) {
                if point.starts_with(&root) {
                    let _ = Command::new("umount").args(["-l", point]).status();
                }
            }
        }
        berth_integration_tests::remove_berth_bridge(&self.bridge);
    }
}

/// A /24 for this test process's default bridge (pids differ between processes that run
/// at once).
fn private_subnet() -> String {
    let pid = std::process::id();
    format!("10.{}.{}.0/24", 100 + (pid >> 8) % 100, pid % 256)
}

impl Berth {
    fn ids_quiet(&self) -> Vec<String> {
        let out = self.run(&["ps", "-aq", "--no-trunc"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

fn describe(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A busybox root filesystem with users and groups.
fn busybox_rootfs(root: &Path) {
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("data")).unwrap();
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    std::fs::write(root.join("data/seed"), "from the image\n").unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
    for tool in [
        "sh", "ls", "cat", "echo", "sleep", "ps", "id", "head", "dd", "mkdir", "env", "true",
        "false", "kill", "hostname", "pwd", "tail", "trap", "stty", "wc", "yes", "ln", "mkfifo",
        "test",
    ] {
        std::os::unix::fs::symlink("busybox", bin.join(tool)).unwrap();
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nwww:x:1000:1000::/home/www:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        root.join("etc/group"),
        "root:x:0:\nwww:x:1000:\nstaff:x:50:www\n",
    )
    .unwrap();
}

fn skip_reason() -> Option<String> {
    if !is_root() {
        return Some("needs root (real namespaces, cgroups and mounts)".into());
    }
    if !Path::new("/bin/busybox").exists() {
        return Some("needs /bin/busybox (busybox-static)".into());
    }
    if !have("tar") {
        return Some("needs tar".into());
    }
    None
}

macro_rules! setup {
    () => {{
        need_root!();
        if let Some(reason) = skip_reason() {
            skip!("{reason}");
        }
        Berth::new()
    }};
}

#[test]
fn run_reports_the_exit_code_and_keeps_stdout_and_stderr_apart() {
    let b = setup!();
    let out = b.run(&[
        "run",
        "--name",
        "codes",
        "bb",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    assert_eq!(
        b.inspect("codes", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 3"
    );
    // The log is k8s-file: timestamp, stream, F, text.
    let log = b.inspect("codes", "{{.LogPath}}");
    let text = std::fs::read_to_string(log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    for (line, stream, body) in [(lines[0], "stdout", "out"), (lines[1], "stderr", "err")] {
        let fields: Vec<&str> = line.splitn(4, ' ').collect();
        assert!(fields[0].ends_with('Z') && fields[0].len() == 30, "{line}");
        assert_eq!(&fields[1..], &[stream, "F", body], "{line}");
    }
    // logs writes each stream where it came from.
    let logs = b.run(&["logs", "codes"]);
    assert_eq!(String::from_utf8_lossy(&logs.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&logs.stderr), "err\n");
}

#[test]
fn run_rm_removes_the_container_and_its_layer() {
    let b = setup!();
    let out = b.run(&["run", "--rm", "bb", "echo", "hi"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hi\n",
        "{}",
        describe(&out)
    );
    assert!(b.ids().is_empty());
    let layers = b.data().join("storage/containers");
    let left: Vec<_> = std::fs::read_dir(&layers)
        .map(|d| d.collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    assert!(std::fs::read_dir(b.data().join("containers"))
        .unwrap()
        .next()
        .is_none());
}

#[test]
fn errors_exit_125_with_one_line_and_create_nothing() {
    let b = setup!();
    b.ok(&["create", "--name", "taken", "bb", "true"]);
    let missing = b.dir.path().join("no-such-dir");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["run".into(), "nosuchimage:1".into()], "nosuchimage"),
        (
            vec![
                "run".into(),
                "--name".into(),
                "taken".into(),
                "bb".into(),
                "true".into(),
            ],
            "is already in use",
        ),
        (
            vec![
                "run".into(),
                "-m".into(),
                "1k".into(),
                "bb".into(),
                "true".into(),
            ],
            "Minimum memory limit",
        ),
        (
            vec![
                "run".into(),
                "--cpus".into(),
                "0".into(),
                "bb".into(),
                "true".into(),
            ],
            "Range of CPUs",
        ),
        (
            vec![
                "run".into(),
                "--cpus".into(),
                "999".into(),
                "bb".into(),
                "true".into(),
            ],
            "CPUs",
        ),
        (
            vec![
                "run".into(),
                "-v".into(),
                format!("{}:/x", missing.display()),
                "bb".into(),
                "true".into(),
            ],
            "does not exist",
        ),
        (vec!["run".into(), "--bogus".into(), "bb".into()], "--bogus"),
    ];
    for (args, wanted) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = b.run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{args:?}: {}", describe(&out));
        assert!(stderr.contains(wanted), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert_eq!(b.ids().len(), 1, "{args:?} left a container");
    }
    assert!(!missing.exists());
    let layers = std::fs::read_dir(b.data().join("storage/containers"))
        .unwrap()
        .count();
    assert_eq!(layers, 1);
}

#[test]
fn detached_container_execs_stops_and_removes() {
    let b = setup!();
    let id = b.ok(&[
        "run", "-d", "--name", "web", "-e", "A=1", "bb", "sleep", "1000",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 64);
    assert!(b.ok(&["ps"]).contains("web"));
    assert_eq!(b.ok(&["ps", "-q"]).trim(), &id[..12]);
    assert_eq!(
        b.ok(&["ps", "--format", "{{.Names}} {{.State}}"]).trim(),
        "web running"
    );
    assert_eq!(
        b.ok(&[
            "exec",
            "-e",
            "B=2",
            "-w",
            "/data",
            "web",
            "sh",
            "-c",
            "echo $A$B $(pwd)"
        ])
        .trim(),
        "12 /data"
    );
    assert_eq!(
        b.ok(&["exec", "-u", "www", "web", "id", "-u"]).trim(),
        "1000"
    );
    assert_eq!(
        b.run(&["exec", "web", "sh", "-c", "exit 7"]).status.code(),
        Some(7)
    );
    // With berth-init as PID 1 (the default), SIGTERM ends it at once: 143, no SIGKILL.
    let started = Instant::now();
    b.ok(&["stop", "web"]);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "stop waited {:?}",
        started.elapsed()
    );
    assert_eq!(
        b.inspect(
            "web",
            "{{.State.ExitCode}} {{.State.StopEscalated}} {{.State.Running}}"
        ),
        "143 false false"
    );
    b.ok(&["rm", "web"]);
    assert!(b.ids().is_empty());
}

#[test]
fn stop_without_init_warns_and_escalates_to_sigkill() {
    let b = setup!();
    let run = b.run(&[
        "run",
        "-d",
        "--no-init",
        "--name",
        "noinit",
        "bb",
        "sleep",
        "1000",
    ]);
    assert!(run.status.success(), "{}", describe(&run));
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("no handler for SIGTERM"),
        "{}",
        describe(&run)
    );
    let started = Instant::now();
    let stop = b.run(&["stop", "-t", "1", "noinit"]);
    assert!(stop.status.success(), "{}", describe(&stop));
    assert!(String::from_utf8_lossy(&stop.stderr).contains("will wait the full 1s"));
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(
        b.inspect(
            "noinit",
            "{{.State.ExitCode}} {{.State.ExitSignal}} {{.State.StopEscalated}}"
        ),
        "137 9 true"
    );
    let ms: u64 = b
        .inspect("noinit", "{{.State.StopDurationMs}}")
        .parse()
        .unwrap();
    assert!(ms >= 1000, "{ms}");
}

#[test]
fn oom_kill_is_recorded_with_its_victim() {
    let b = setup!();
    // A shell that fills a tmpfs-less buffer: dd into memory through a pipe to tail.
    let out = b.run(&[
        "run",
        "--name",
        "oom",
        "-m",
        "16m",
        "--memory-swap",
        "16m",
        "bb",
        "sh",
        "-c",
        "dd if=/dev/zero bs=1M count=64 2>/dev/null | tail -c 60000000 >/dev/null; echo survived",
    ]);
    // The shell survives; the kernel killed `tail`, and the record says so.
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Killed"),
        "{}",
        describe(&out)
    );
    assert_eq!(b.inspect("oom", "{{.State.OOMKilled}}"), "true");
    let kills: u64 = b.inspect("oom", "{{.State.OOMKills}}").parse().unwrap();
    assert!(kills >= 1);
    let victims = b.inspect("oom", "{{json .State.OOMVictims}}");
    assert!(victims.contains("\"Comm\":\"tail\""), "{victims}");
}

#[test]
fn init_reaps_orphaned_zombies() {
    let b = setup!();
    b.ok(&[
        "run",
        "-d",
        "--name",
        "reaper",
        "bb",
        "sh",
        "-c",
        "sleep 1000",
    ]);
    // Orphans: each `sh -c 'sleep 0 &'` exits at once, its child is reparented to PID 1.
    for _ in 0..5 {
        b.ok(&["exec", "reaper", "sh", "-c", "sleep 0.1 & exit 0"]);
    }
    std::thread::sleep(Duration::from_millis(500));
    let ps = b.ok(&["exec", "reaper", "ps", "-o", "stat,comm"]);
    assert!(
        !ps.lines().any(|l| l.trim_start().starts_with('Z')),
        "zombies:\n{ps}"
    );
    assert_eq!(b.inspect("reaper", "{{.Path}}"), "/dev/init");
    b.ok(&["rm", "-f", "reaper"]);
}

#[test]
fn volumes_binds_and_cp() {
    let b = setup!();
    let host = b.dir.path().join("host");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("in.txt"), "to the container\n").unwrap();
    let bind = format!("{}:/mnt:ro", host.display());
    b.ok(&[
        "run",
        "-d",
        "--name",
        "vol",
        "-v",
        "named:/data",
        "-v",
        &bind,
        "bb",
        "sleep",
        "1000",
    ]);
    // A new named volume gets the image's content.
    assert_eq!(
        b.ok(&["exec", "vol", "cat", "/data/seed"]),
        "from the image\n"
    );
    assert_eq!(
        b.ok(&["exec", "vol", "cat", "/mnt/in.txt"]),
        "to the container\n"
    );
    assert_ne!(
        b.run(&["exec", "vol", "sh", "-c", "echo x > /mnt/y"])
            .status
            .code(),
        Some(0)
    );
    // cp both ways.
    b.ok(&["cp", host.join("in.txt").to_str().unwrap(), "vol:/tmp/"]);
    assert_eq!(
        b.ok(&["exec", "vol", "cat", "/tmp/in.txt"]),
        "to the container\n"
    );
    let out = b.dir.path().join("out");
    b.ok(&["cp", "vol:/data", out.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(out.join("seed")).unwrap(),
        "from the image\n"
    );
    // A symlink in the container cannot send cp to the host's files.
    b.ok(&["exec", "vol", "ln", "-s", "/", "/tmp/escape"]);
    let evil = b.run(&[
        "cp",
        "vol:/tmp/escape/etc/hostname",
        b.dir.path().join("h").to_str().unwrap(),
    ]);
    let copied = std::fs::read_to_string(b.dir.path().join("h")).unwrap_or_default();
    let host_name = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    assert!(
        !evil.status.success() || copied != host_name || host_name.is_empty(),
        "{}",
        describe(&evil)
    );
    b.ok(&["rm", "-f", "vol"]);
    // A named volume outlives its container.
    assert!(b.data().join("volumes/named/_data/seed").exists());
}

#[test]
fn pause_update_rename_wait_and_prune() {
    let b = setup!();
    b.ok(&["run", "-d", "--name", "pp", "bb", "sleep", "1000"]);
    b.ok(&["pause", "pp"]);
    assert_eq!(
        b.inspect("pp", "{{.State.Status}} {{.State.Paused}}"),
        "paused true"
    );
    assert!(b.ok(&["ps"]).contains("(Paused)"));
    b.ok(&["unpause", "pp"]);
    b.ok(&["update", "-m", "64m", "pp"]);
    assert_eq!(
        b.inspect("pp", "{{.HostConfig.Memory}}"),
        (64u64 << 20).to_string()
    );
    b.ok(&["rename", "pp", "qq"]);
    let wait = b
        .command(&["wait", "qq"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    b.ok(&["kill", "-s", "KILL", "qq"]);
    let waited = wait.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&waited.stdout).trim(), "137");
    b.ok(&["create", "--name", "never", "bb", "true"]);
    let pruned = b.ok(&["container", "prune", "-f"]);
    assert!(pruned.contains("Total reclaimed space"), "{pruned}");
    assert!(b.ids().is_empty());
}

#[test]
fn top_and_stats_cover_every_container_in_one_call() {
    let b = setup!();
    b.ok(&[
        "run",
        "-d",
        "--name",
        "busy",
        "bb",
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    b.ok(&["run", "-d", "--name", "idle", "bb", "sleep", "1000"]);
    let top = b.ok(&["top", "busy"]);
    assert!(top.lines().next().unwrap().contains("%CPU"), "{top}");
    assert!(top.contains("while"), "{top}");
    let started = Instant::now();
    let stats = b.ok(&["stats", "--no-stream", "--format", "json"]);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let rows: Vec<serde_json::Value> = stats
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2, "{stats}");
    let busy = rows.iter().find(|r| r["Name"] == "busy").unwrap();
    let cpu: f64 = busy["CPUPerc"]
        .as_str()
        .unwrap()
        .trim_end_matches('%')
        .parse()
        .unwrap();
    assert!(cpu > 5.0, "{busy}");
    assert_eq!(busy["PIDs"], "2");
    b.ok(&["rm", "-f", "busy", "idle"]);
}

#[test]
fn another_oci_runtime_runs_the_same_container() {
    let b = setup!();
    if !have("runc") {
        skip!("needs runc");
    }
    let out = b.run(&[
        "run",
        "--runtime",
        "runc",
        "--name",
        "rc1",
        "bb",
        "sh",
        "-c",
        "echo $(hostname) ok; exit 5",
    ]);
    assert_eq!(out.status.code(), Some(5), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).ends_with(" ok\n"));
    assert_eq!(b.inspect("rc1", "{{.HostConfig.Runtime}}"), "runc");
    b.ok(&[
        "run",
        "-d",
        "--runtime",
        "runc",
        "--name",
        "rd",
        "bb",
        "sleep",
        "1000",
    ]);
    assert_eq!(b.ok(&["exec", "rd", "echo", "in"]), "in\n");
    b.ok(&["stop", "rd"]);
    assert_eq!(b.inspect("rd", "{{.State.ExitCode}}"), "143");
    let bad = b.run(&["run", "--runtime", "no-such-runtime", "bb", "true"]);
    assert_eq!(bad.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no-such-runtime"));
}

#[test]
fn concurrent_runs_with_one_name_give_one_container() {
    let b = setup!();
    let children: Vec<_> = (0..4)
        .map(|_| {
            b.command(&["create", "--name", "same", "bb", "true"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let won = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(
        won,
        1,
        "{:#?}",
        outs.iter().map(describe).collect::<Vec<_>>()
    );
    assert_eq!(b.ids().len(), 1);
    assert_eq!(
        std::fs::read_dir(b.data().join("storage/containers"))
            .unwrap()
            .count(),
        1
    );
}

#[test]
fn a_dead_monitor_is_noticed_by_the_next_command() {
    let b = setup!();
    b.ok(&[
        "run",
        "-d",
        "--no-init",
        "--name",
        "orphan",
        "bb",
        "sleep",
        "1000",
    ]);
    let monitor_pid = b.inspect("orphan", "{{.State.Pid}}");
    let pid: i32 = monitor_pid.parse().unwrap();
    // Kill the container's process and its monitor together, as a crash or OOM would.
    let ppid = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let ppid: i32 = ppid
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let _ = Command::new("kill")
        .args(["-9", &ppid.to_string(), &pid.to_string()])
        .status();
    std::thread::sleep(Duration::from_millis(300));
    let state = b.inspect("orphan", "{{.State.Status}} {{.State.Running}}");
    assert_eq!(state, "exited false");
    b.ok(&["rm", "orphan"]);
}

/// Kill `berth run -d` at many points of its work: the next command repairs whatever was
/// left (an abandoned creation is removed; a started container is kept), and removing what
/// remains leaves no layer, mount, bundle or cgroup behind.
#[test]
fn kill_9_of_berth_run_at_any_point_is_repaired_by_the_next_command() {
    let b = setup!();
    for (i, delay_ms) in [0u64, 5, 10, 20, 40, 60, 90, 120, 150, 180, 220, 260, 320]
        .iter()
        .enumerate()
    {
        let name = format!("crash{i}");
        let mut child = b
            .command(&["run", "-d", "--name", &name, "bb", "sleep", "1000"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(*delay_ms));
        let _ = child.kill();
        let _ = child.wait();
    }
    // The next command repairs: no record is left incomplete, every record has its layer and
    // every layer its record.
    let ps = b.ok(&["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.State}}"]);
    let ids: Vec<&str> = ps.lines().filter_map(|l| l.split(' ').next()).collect();
    let layers: std::collections::BTreeSet<String> =
        std::fs::read_dir(b.data().join("storage/containers"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
    let recorded: std::collections::BTreeSet<String> = ids.iter().map(|s| s.to_string()).collect();
    assert_eq!(layers, recorded, "ps:\n{ps}");
    for id in &ids {
        let out = b.run(&["rm", "-f", id]);
        assert!(out.status.success(), "{}", describe(&out));
    }
    assert!(b.ids().is_empty());
    let root = b.dir.path().to_string_lossy().into_owned();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&root), "mounts left under {root}");
    for id in recorded {
        // v1 controllers, and the unified hierarchy of a v2 host.
        for controller in ["memory", "pids", "cpu", ""] {
            let dir = Path::new("/sys/fs/cgroup")
                .join(controller)
                .join("berth")
                .join(&id);
            assert!(!dir.exists(), "{} left", dir.display());
        }
    }
    // (On a slow machine every kill may come before the first bundle: no directory at all.)
    let bundles = std::fs::read_dir(b.data().join("containers")).map_or(0, Iterator::count);
    assert_eq!(bundles, 0);
}

/// `cp` replaces what the container put at a destination instead of opening it (a FIFO would
/// block, a device node would be written through), never opens a FIFO it copies out, and the
/// spec (the container's environment, secrets included) is readable by root only.
#[test]
fn cp_never_opens_special_files_and_specs_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let b = setup!();
    b.ok(&[
        "run",
        "-d",
        "--name",
        "fifo",
        "-e",
        "SECRET=hunter2",
        "bb",
        "sleep",
        "1000",
    ]);
    b.ok(&["exec", "fifo", "mkfifo", "/tmp/in", "/tmp/out"]);
    let payload = b.dir.path().join("payload");
    std::fs::write(&payload, "payload\n").unwrap();
    let within = |args: &[&str]| {
        let mut child = b
            .command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("berth {args:?} hung on a FIFO");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    assert!(within(&["cp", payload.to_str().unwrap(), "fifo:/tmp/in"]).success());
    assert_eq!(b.ok(&["exec", "fifo", "cat", "/tmp/in"]), "payload\n");
    let out = b.dir.path().join("copied");
    within(&["cp", "fifo:/tmp/out", out.to_str().unwrap()]);
    assert!(!out.exists() || out.metadata().unwrap().is_file());
    let spec = b
        .data()
        .join("containers")
        .join(b.inspect("fifo", "{{.Id}}"))
        .join("config.json");
    assert!(std::fs::read_to_string(&spec).unwrap().contains("hunter2"));
    assert_eq!(
        spec.metadata().unwrap().permissions().mode() & 0o077,
        0,
        "{}",
        spec.display()
    );
    let bundles = b.data().join("containers");
    assert_eq!(bundles.metadata().unwrap().permissions().mode() & 0o077, 0);
    b.ok(&["rm", "-f", "fifo"]);
}

/// `-t` gives the container a terminal of the caller's size (run and exec, through
/// `script`'s pty), `-i` passes stdin, `exec -d` runs in the background, and `logs -f` follows
/// until the container exits.
#[test]
fn terminals_stdin_detached_exec_and_following_logs() {
    let b = setup!();
    if !have("script") {
        skip!("needs script (util-linux)");
    }
    // In a shell command line: the private default bridge goes in front, as `command` sets it.
    let berth = format!(
        "BERTH_BRIDGE={} BERTH_BRIDGE_SUBNET={} {} --root {} --runroot {}",
        b.bridge,
        private_subnet(),
        bin_dir().join("berth").display(),
        b.data().display(),
        b.dir.path().join("run").display()
    );
    let in_pty = |cmd: &str| {
        Command::new("script")
            .args([
                "-eqc",
                &format!("stty cols 100 rows 30; {berth} {cmd}"),
                "/dev/null",
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = in_pty("run --rm -t bb sh -c 'stty size; exit 3'");
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("30 100"),
        "{}",
        describe(&out)
    );
    b.ok(&[
        "run",
        "-d",
        "--name",
        "term",
        "bb",
        "sh",
        "-c",
        "for i in 1 2 3; do echo line$i; sleep 0.3; done; sleep 1000",
    ]);
    let out = in_pty("exec -t term sh -c 'stty size; exit 5'");
    assert_eq!(out.status.code(), Some(5), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("30 100"));
    // -i: stdin reaches the container.
    let mut child = b
        .command(&["run", "--rm", "-i", "bb", "sh"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"echo from-stdin; exit 4\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from-stdin\n");
    // exec -d returns at once; its process runs on.
    b.ok(&[
        "exec",
        "-d",
        "term",
        "sh",
        "-c",
        "sleep 0.2; echo done > /tmp/bg",
    ]);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(b.ok(&["exec", "term", "cat", "/tmp/bg"]), "done\n");
    // logs: --tail, -t, and -f that ends when the container does.
    assert_eq!(b.ok(&["logs", "--tail", "1", "term"]), "line3\n");
    let stamped = b.ok(&["logs", "-t", "--tail", "1", "term"]);
    assert!(stamped.ends_with("Z line3\n"), "{stamped}");
    let follow = b
        .command(&["logs", "-f", "term"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    b.ok(&["kill", "term"]);
    let followed = follow.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&followed.stdout),
        "line1\nline2\nline3\n"
    );
}

/// A run root deep enough that its socket paths exceed a socket address (107 bytes): attach,
/// `run -t` and `exec -t` still work.
#[test]
fn socket_paths_longer_than_a_socket_address_work() {
    let b = setup!();
    if !have("script") {
        skip!("needs script (util-linux)");
    }
    let deep = b
        .dir
        .path()
        .join("a-run-root-deep-enough-that-sockets-need-another-way-in-0123456789");
    // In a shell command line: the private default bridge goes in front, as `command` sets it.
    let berth = format!(
        "BERTH_BRIDGE={} BERTH_BRIDGE_SUBNET={} {} --root {} --runroot {}",
        b.bridge,
        private_subnet(),
        bin_dir().join("berth").display(),
        b.data().display(),
        deep.display()
    );
    let sh = |cmd: &str| {
        Command::new("script")
            .args(["-eqc", &format!("{berth} {cmd}"), "/dev/null"])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = sh("run --rm bb echo attached");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("attached"),
        "{}",
        describe(&out)
    );
    let out = sh("run --rm -t bb echo with-a-tty");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("with-a-tty"),
        "{}",
        describe(&out)
    );
    let out = sh("run -d --name deep bb sleep 1000");
    assert!(out.status.success(), "{}", describe(&out));
    let out = sh("exec -t deep echo exec-tty");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("exec-tty"),
        "{}",
        describe(&out)
    );
    let out = sh("rm -f deep");
    assert!(out.status.success(), "{}", describe(&out));
}

/// `--privileged`: every capability this host can grant (its bounding set: this machine
/// withholds CAP_SYS_RESOURCE, and asking for it fails capset), and no seccomp; a default
/// container is confined by Docker's seccomp profile.
#[test]
fn privileged_gets_what_the_host_can_grant_and_no_seccomp() {
    let b = setup!();
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |text: &str, key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    let bounding = u64::from_str_radix(&field(&status, "CapBnd:"), 16).unwrap();
    let out = b.ok(&[
        "run",
        "--rm",
        "--privileged",
        "bb",
        "cat",
        "/proc/self/status",
    ]);
    let eff = u64::from_str_radix(&field(&out, "CapEff:"), 16).unwrap();
    // The known capabilities (through CAP_CHECKPOINT_RESTORE, 40) that the host has.
    assert_eq!(eff, bounding & ((1u64 << 41) - 1), "{out}");
    assert_eq!(field(&out, "Seccomp:"), "0", "{out}");
    let out = b.ok(&["run", "--rm", "bb", "cat", "/proc/self/status"]);
    assert_eq!(field(&out, "Seccomp:"), "2", "{out}");
    // docker's 14 capabilities.
    assert_eq!(field(&out, "CapEff:"), "00000000a80425fb", "{out}");
}
