//! berth-runtime as containerd's runc: a private containerd (its own root, state dir, socket and
//! config, CRI disabled) runs a busybox image through the io.containerd.runc.v2 shim, which
//! calls berth-runtime (`ctr run --runc-binary`) for create/start/state/exec/ps/pause/resume/
//! kill/delete. Everything (containerd, shims, containers, mounts, cgroups) is removed by a
//! guard, also when a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_integration_tests::{
    berth_runtime, describe, have, is_root, kill_pid, leftovers, pids_with_cmdline, probe, stderr,
    stdout, unique_id, unmount_under, wait_until, workspace, Runtime,
};

/// The image every test runs: busybox + /bin/probe from mkrootfs, packed by mkociimage.
const IMAGE: &str = "localhost/berth-busybox:test";

/// A private containerd with one namespace holding the imported test image.
struct Containerd {
    /// Holds root/, state/, sock, config.toml, containerd.log.
    dir: tempfile::TempDir,
    /// The daemon.
    child: Option<Child>,
    /// `--address`.
    sock: PathBuf,
    /// The containerd namespace (unique per test, so cgroups /<ns>/<id> are ours).
    ns: String,
    /// `overlayfs` when it works here, else `native`.
    snapshotter: String,
    /// berth-runtime, with the shim's `--runc-root` as its root: state lives at root/<ns>/<id>.
    runtime: Runtime,
}

impl Containerd {
    /// Start containerd and import the image; None (after printing why) if the machine
    /// cannot run it.
    fn start() -> Option<Containerd> {
        if !is_root() {
            eprintln!("skipped: containerd tests need root");
            return None;
        }
        for cmd in ["containerd", "ctr", "containerd-shim-runc-v2"] {
            if !have(cmd) {
                eprintln!("skipped: {cmd} is not installed (Debian: apt-get install containerd)");
                return None;
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("berth-containerd-")
            .tempdir()
            .unwrap();
        let sock = dir.path().join("sock");
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                r#"version = 2
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[plugins."io.containerd.internal.v1.opt"]
  path = "{}"
"#,
                dir.path().join("opt").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .arg("--root")
            .arg(dir.path().join("root"))
            .arg("--state")
            .arg(dir.path().join("state"))
            .arg("--address")
            .arg(&sock)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn containerd");
        let runtime = Runtime {
            bin: berth_runtime(),
            root: tempfile::Builder::new()
                .prefix("berth-runc-root-")
                .tempdir()
                .unwrap(),
        };
        let mut c = Containerd {
            dir,
            child: Some(child),
            sock,
            ns: unique_id("berth-ctr"),
            snapshotter: "native".into(),
            runtime,
        };
        c.wait_ready();
        c.snapshotter = c.pick_snapshotter();
        c.import_image();
        Some(c)
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "containerd exited ({status}) before serving:\n{}",
                    self.log_tail()
                );
            }
            if self.sock.exists() && self.ctr(&["version"]).status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "containerd did not serve {} within 20 s:\n{}",
                self.sock.display(),
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// overlayfs if its plugin loaded (it needs a filesystem that can hold overlay upper dirs).
    fn pick_snapshotter(&self) -> String {
        let out = self.ctr(&["plugins", "ls"]);
        let ok = stdout(&out).lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.first() == Some(&"io.containerd.snapshotter.v1")
                && f.get(1) == Some(&"overlayfs")
                && f.last() == Some(&"ok")
        });
        if ok { "overlayfs" } else { "native" }.into()
    }

    /// Build the busybox rootfs (with the probe), pack it as an OCI layout tarball and import it.
    fn import_image(&self) {
        let rootfs = self.dir.path().join("rootfs");
        let tar = self.dir.path().join("image.tar");
        let status = Command::new(workspace().join("tests/fixtures/mkrootfs"))
            .arg(&rootfs)
            .arg(probe())
            .status()
            .unwrap();
        assert!(status.success(), "mkrootfs failed");
        let out = Command::new(workspace().join("tests/fixtures/mkociimage"))
            .arg(&rootfs)
            .arg(&tar)
            .arg(IMAGE)
            .output()
            .unwrap();
        assert!(out.status.success(), "mkociimage failed: {}", stderr(&out));
        let snap = format!("--snapshotter={}", self.snapshotter);
        let out = self.ctr(&["images", "import", &snap, tar.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "ctr images import failed: {}{}",
            stdout(&out),
            stderr(&out)
        );
        let out = self.ctr(&["images", "ls", "-q"]);
        assert!(
            stdout(&out).lines().any(|l| l == IMAGE),
            "{IMAGE} not listed after import: {}",
            stdout(&out)
        );
    }

    /// `ctr -a SOCK -n NS ARGS` (stdin closed, 120 s timeout), captured.
    fn ctr(&self, args: &[&str]) -> Output {
        self.ctr_cmd(args).stdin(Stdio::null()).output().unwrap()
    }

    fn ctr_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("timeout");
        c.args(["-k", "5", "120", "ctr", "-a"])
            .arg(&self.sock)
            .args(["-n", &self.ns])
            .args(args);
        c
    }

    /// `ctr run` flags that make the shim use berth-runtime with our runtime root.
    fn run_flags(&self) -> Vec<String> {
        vec![
            "--runc-binary".into(),
            self.runtime.bin.to_str().unwrap().into(),
            "--runc-root".into(),
            self.runtime.root.path().to_str().unwrap().into(),
            format!("--snapshotter={}", self.snapshotter),
        ]
    }

    /// The task's bundle directory (the shim's working directory; rootfs is mounted in it).
    fn bundle(&self, id: &str) -> PathBuf {
        self.dir
            .path()
            .join("state/io.containerd.runtime.v2.task")
            .join(&self.ns)
            .join(id)
    }

    /// berth-runtime's state directory for `id` (the shim appends the namespace to the root).
    fn state_dir(&self, id: &str) -> PathBuf {
        self.runtime.root.path().join(&self.ns).join(id)
    }

    /// berth-runtime with the root the shim gives it (`--runc-root` + namespace).
    fn runtime_cmd(&self) -> Command {
        let mut c = Command::new(&self.runtime.bin);
        c.arg("--root").arg(self.runtime.root.path().join(&self.ns));
        c
    }

    /// `ctr task ls` as (id, pid, status) rows.
    fn tasks(&self) -> Vec<(String, String, String)> {
        let out = self.ctr(&["task", "ls"]);
        assert!(out.status.success(), "ctr task ls: {}", stderr(&out));
        stdout(&out)
            .lines()
            .skip(1)
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() == 3).then(|| (f[0].into(), f[1].into(), f[2].into()))
            })
            .collect()
    }

    fn task_status(&self, id: &str) -> Option<String> {
        self.tasks().into_iter().find(|t| t.0 == id).map(|t| t.2)
    }

    /// Wait (up to `secs`) until `ctr task ls` shows `want` for `id`.
    fn wait_task_status(&self, id: &str, want: &str, secs: u64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if self.task_status(id).as_deref() == Some(want) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Shims serving this containerd (optionally only the one for `id`).
    fn shims(&self, id: Option<&str>) -> Vec<i32> {
        let sock = self.sock.to_str().unwrap();
        let mut needles = vec!["containerd-shim", sock];
        if let Some(id) = id {
            needles.push(id);
        }
        pids_with_cmdline(&needles)
    }

    /// Everything that could be left by task `id`: berth-runtime state, cgroups named `id`,
    /// mounts of its bundle, processes in its cgroup, its shim.
    fn leftovers(&self, id: &str) -> Vec<String> {
        let mut found = leftovers(&self.runtime, id, &self.bundle(id));
        if self.state_dir(id).exists() {
            found.push(format!(
                "runtime state dir {}",
                self.state_dir(id).display()
            ));
        }
        for pid in self.shims(Some(id)) {
            found.push(format!("shim process {pid}"));
        }
        found
    }

    /// Wait up to 10 s for [`Containerd::leftovers`] to be empty; what is left otherwise.
    fn wait_clean(&self, id: &str) -> Vec<String> {
        wait_until(10.0, || self.leftovers(id).is_empty());
        self.leftovers(id)
    }

    fn log_tail(&self) -> String {
        let log =
            std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Cgroup directories of this namespace, in every hierarchy (/sys/fs/cgroup/*/<ns>).
    fn ns_cgroups(&self) -> Vec<PathBuf> {
        std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join(&self.ns))
            .filter(|p| p.is_dir())
            .collect()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Politely first: kill and delete every task and container of our namespace.
        if self
            .child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
        {
            for id in stdout(&self.ctr(&["task", "ls", "-q"])).lines() {
                let _ = self.ctr(&["task", "kill", "-a", "-s", "SIGKILL", id]);
                let _ = self.ctr(&["task", "delete", "-f", id]);
            }
            for id in stdout(&self.ctr(&["container", "ls", "-q"])).lines() {
                let _ = self.ctr(&["container", "delete", id]);
            }
        }
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // Then by force: shims, containers (through the runtime), mounts, cgroups.
        for pid in self.shims(None) {
            kill_pid(pid);
        }
        if let Ok(dirs) = std::fs::read_dir(self.runtime.root.path().join(&self.ns)) {
            for d in dirs.flatten() {
                let id = d.file_name().to_string_lossy().into_owned();
                let _ = self
                    .runtime_cmd()
                    .args(["delete", "--force", &id])
                    .stdin(Stdio::null())
                    .output();
            }
        }
        unmount_under(self.dir.path());
        for cg in self.ns_cgroups() {
            if let Ok(children) = std::fs::read_dir(&cg) {
                for c in children.flatten().filter(|c| c.path().is_dir()) {
                    let _ = std::fs::remove_dir(c.path());
                }
            }
            let _ = std::fs::remove_dir(&cg);
        }
    }
}

macro_rules! containerd_or_skip {
    () => {
        match Containerd::start() {
            Some(c) => c,
            None => return,
        }
    };
}

/// Describe a command's result for assertion messages.
fn show(out: &Output) -> String {
    describe(out)
}

#[test]
fn ctr_run_rm_prints_output_and_exits_with_the_task_status() {
    let c = containerd_or_skip!();
    let id = unique_id("ctr-rm");
    let mut args: Vec<String> = vec!["run".into(), "--rm".into()];
    args.extend(c.run_flags());
    args.extend([IMAGE, &id, "sh", "-c", "echo hello; exit 3"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = c.ctr(&args);
    assert_eq!(
        stdout(&out).trim(),
        "hello",
        "ctr run --rm: {}\ncontainerd log:\n{}",
        show(&out),
        c.log_tail()
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "ctr run --rm exit status: {}",
        show(&out)
    );
    let left = c.wait_clean(&id);
    assert!(left.is_empty(), "left behind after ctr run --rm: {left:#?}");
    let out = c.ctr(&["container", "ls", "-q"]);
    assert!(
        !stdout(&out).lines().any(|l| l == id),
        "container record {id} kept by --rm"
    );
}

#[test]
fn ctr_detached_task_exec_ps_pause_resume_kill_delete() {
    let c = containerd_or_skip!();
    let id = unique_id("ctr-task");
    let run_err = c.dir.path().join("run-d.err");

    // run -d: create + start through the shim.
    let mut args: Vec<String> = vec!["run".into(), "-d".into()];
    args.extend(c.run_flags());
    args.extend([IMAGE, &id, "sleep", "300"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // The task's stdio must not be our pipe, or waiting for ctr's output would wait for the task.
    let status = c
        .ctr_cmd(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&run_err).unwrap())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "ctr run -d failed ({status}): {}\ncontainerd log:\n{}",
        std::fs::read_to_string(&run_err).unwrap_or_default(),
        c.log_tail()
    );
    assert!(
        c.wait_task_status(&id, "RUNNING", 10),
        "task {id} not RUNNING after run -d: {:?}",
        c.tasks()
    );
    let pid = c.tasks().into_iter().find(|t| t.0 == id).unwrap().1;
    assert!(
        Path::new("/proc").join(&pid).exists(),
        "task pid {pid} from ctr task ls is not a live process"
    );
    let state = c.runtime_cmd().args(["state", &id]).output().unwrap();
    assert!(
        state.status.success(),
        "berth-runtime state {id}: {}",
        show(&state)
    );

    // exec: output comes back, and so does the exit status.
    let out = c.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        &id,
        "sh",
        "-c",
        "echo from-exec",
    ]);
    assert!(out.status.success(), "ctr task exec e1: {}", show(&out));
    assert_eq!(
        stdout(&out).trim(),
        "from-exec",
        "ctr task exec e1: {}",
        show(&out)
    );
    let out = c.ctr(&["task", "exec", "--exec-id", "e2", &id, "sh", "-c", "exit 7"]);
    assert_eq!(
        out.status.code(),
        Some(7),
        "exec exit status: {}",
        show(&out)
    );

    // ps lists the init pid (runtime `ps --format json`).
    let out = c.ctr(&["task", "ps", &id]);
    assert!(out.status.success(), "ctr task ps: {}", show(&out));
    let pids: Vec<String> = stdout(&out)
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect();
    assert!(
        pids.contains(&pid),
        "ctr task ps does not list init pid {pid}: {}",
        stdout(&out)
    );

    // pause / resume, seen by containerd and by the freezer.
    let freezer = Path::new("/sys/fs/cgroup/freezer")
        .join(&c.ns)
        .join(&id)
        .join("freezer.state");
    let out = c.ctr(&["task", "pause", &id]);
    assert!(out.status.success(), "ctr task pause: {}", show(&out));
    assert_eq!(
        c.task_status(&id).as_deref(),
        Some("PAUSED"),
        "after pause: {:?}",
        c.tasks()
    );
    if freezer.exists() {
        assert_eq!(std::fs::read_to_string(&freezer).unwrap().trim(), "FROZEN");
    }
    let out = c.ctr(&["task", "resume", &id]);
    assert!(out.status.success(), "ctr task resume: {}", show(&out));
    assert_eq!(
        c.task_status(&id).as_deref(),
        Some("RUNNING"),
        "after resume: {:?}",
        c.tasks()
    );
    if freezer.exists() {
        assert_eq!(std::fs::read_to_string(&freezer).unwrap().trim(), "THAWED");
    }

    // kill, wait for the exit, delete task and container.
    let out = c.ctr(&["task", "kill", "-s", "SIGKILL", &id]);
    assert!(out.status.success(), "ctr task kill: {}", show(&out));
    assert!(
        c.wait_task_status(&id, "STOPPED", 10),
        "task {id} not STOPPED after SIGKILL: {:?}",
        c.tasks()
    );
    let out = c.ctr(&["task", "delete", &id]);
    assert!(out.status.success(), "ctr task delete: {}", show(&out));
    let out = c.ctr(&["container", "delete", &id]);
    assert!(out.status.success(), "ctr container delete: {}", show(&out));
    assert!(
        c.task_status(&id).is_none(),
        "task still listed: {:?}",
        c.tasks()
    );

    let left = c.wait_clean(&id);
    assert!(left.is_empty(), "left behind after delete: {left:#?}");
    assert!(
        !Path::new("/proc").join(&pid).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default()
                != "sleep\x00300\x00",
        "init (pid {pid}) still running"
    );
}
