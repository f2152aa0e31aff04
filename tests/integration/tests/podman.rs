//! berth-runtime as podman's OCI runtime (`podman --runtime <berth-runtime>`): podman + conmon
//! with a private storage root, run root and tmpdir, cgroupfs, no network, and a busybox image
//! imported from the mkrootfs rootfs. podman's own defaults (containers.conf) stay in force:
//! that is what a drop-in replacement for runc has to accept.
//!
//! On this machine CAP_SYS_RESOURCE is not in the bounding set, so containers get
//! `--ulimit nofile=1024:1024 --ulimit nproc=1024:1024` (podman's defaults would raise hard
//! limits, which fails with any runtime).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use berth_integration_tests::{
    berth_runtime, describe, have, is_root, kill_pid, leftovers, pids_with_cmdline, probe, stderr,
    stdout, unique_id, unmount_under, wait_until, workspace, Runtime,
};

const IMAGE: &str = "localhost/busybox-test";

/// Flags every container gets here.
const RUN_FLAGS: &[&str] = &[
    "--network",
    "none",
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
];

/// Where berth-runtime keeps state when podman does not pass `--root` (its default).
const RUNTIME_ROOT: &str = "/run/berth-runtime";

/// podman with private storage and the test image imported.
struct Podman {
    /// storage/, run/, tmp/, rootfs/, rootfs.tar.
    dir: tempfile::TempDir,
    /// The OCI runtime podman is told to use.
    runtime: PathBuf,
}

impl Podman {
    /// Set up storage and import the image; None (after printing why) if the machine lacks
    /// podman or conmon, or we are not root.
    fn start() -> Option<Podman> {
        Podman::with_runtime(berth_runtime())
    }

    fn with_runtime(runtime: PathBuf) -> Option<Podman> {
        if !is_root() {
            eprintln!("skipped: podman tests need root");
            return None;
        }
        for cmd in ["podman", "conmon"] {
            if !have(cmd) {
                eprintln!("skipped: {cmd} is not installed (Debian: apt-get install podman)");
                return None;
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("berth-podman-")
            .tempdir()
            .unwrap();
        let p = Podman { dir, runtime };
        p.import_image();
        Some(p)
    }

    fn import_image(&self) {
        let rootfs = self.dir.path().join("rootfs");
        let tar = self.dir.path().join("rootfs.tar");
        let status = Command::new(workspace().join("tests/fixtures/mkrootfs"))
            .arg(&rootfs)
            .arg(probe())
            .status()
            .unwrap();
        assert!(status.success(), "mkrootfs failed");
        let status = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(status.success(), "tar of the rootfs failed");
        let out = self.podman(&["import", tar.to_str().unwrap(), IMAGE]);
        assert!(out.status.success(), "podman import: {}", show(&out));
    }

    /// `podman` with our storage and runtime flags (120 s timeout), before `args`.
    fn cmd(&self, args: &[&str]) -> Command {
        let d = self.dir.path();
        let mut c = Command::new("timeout");
        c.args(["-k", "5", "120", "podman", "--root"])
            .arg(d.join("storage"))
            .arg("--runroot")
            .arg(d.join("run"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .arg("--runtime")
            .arg(&self.runtime)
            .args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"])
            .args(args)
            .stdin(Stdio::null());
        c
    }

    /// Run podman with `args`, captured.
    fn podman(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// `podman run RUN_FLAGS <extra..> IMAGE <cmd..>`, captured.
    fn run(&self, extra: &[&str], cmd: &[&str]) -> Output {
        let mut args = vec!["run"];
        args.extend_from_slice(RUN_FLAGS);
        args.extend_from_slice(extra);
        args.push(IMAGE);
        args.extend_from_slice(cmd);
        self.podman(&args)
    }

    /// Full ids of all containers in our storage.
    fn container_ids(&self) -> Vec<String> {
        stdout(&self.podman(&["ps", "-a", "-q", "--no-trunc"]))
            .lines()
            .map(String::from)
            .collect()
    }

    /// What could be left by container `cid`: podman's cgroup `libpod-<cid>`, processes in
    /// it, berth-runtime state, mounts naming the id, its conmon.
    fn leftovers(&self, cid: &str) -> Vec<String> {
        // A throwaway Runtime only for the generic cgroup/mount/process checks.
        let rt = Runtime {
            bin: self.runtime.clone(),
            root: tempfile::tempdir().unwrap(),
        };
        let bundle = self.dir.path().join("storage/overlay-containers").join(cid);
        let mut found = leftovers(&rt, &format!("libpod-{cid}"), &bundle);
        let state = Path::new(RUNTIME_ROOT).join(cid);
        if state.exists() {
            found.push(format!("runtime state dir {}", state.display()));
        }
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        for line in mountinfo.lines().filter(|l| l.contains(cid)) {
            found.push(format!("mount {line}"));
        }
        for pid in pids_with_cmdline(&["conmon", cid]) {
            found.push(format!("conmon process {pid}"));
        }
        found
    }

    /// Wait up to 10 s for [`Podman::leftovers`] to be empty; what is left otherwise.
    fn wait_clean(&self, cid: &str) -> Vec<String> {
        wait_until(10.0, || self.leftovers(cid).is_empty());
        self.leftovers(cid)
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let ids = self.container_ids();
        let _ = self.podman(&["rm", "--all", "--force", "--time", "0"]);
        // Whatever podman could not remove: conmons, runtime state, cgroups, mounts.
        let dir = self.dir.path().to_str().unwrap().to_string();
        for pid in pids_with_cmdline(&["conmon", &dir]) {
            kill_pid(pid);
        }
        for id in &ids {
            let _ = Command::new(&self.runtime)
                .args(["delete", "--force", id])
                .stdin(Stdio::null())
                .output();
            for hierarchy in std::fs::read_dir("/sys/fs/cgroup")
                .into_iter()
                .flatten()
                .flatten()
            {
                let _ = std::fs::remove_dir(
                    hierarchy
                        .path()
                        .join("libpod_parent")
                        .join(format!("libpod-{id}")),
                );
            }
        }
        unmount_under(self.dir.path());
    }
}

macro_rules! podman_or_skip {
    () => {
        match Podman::start() {
            Some(p) => p,
            None => return,
        }
    };
}

/// A command's result for assertion messages, with a diagnosis when the runtime's error is
/// one of the known berth-runtime bugs.
fn show(out: &Output) -> String {
    let err = stderr(out);
    let mut text = describe(out);
    if err.contains("set sysctl") && err.contains("read-only file system") {
        text.push_str(
            "\nDIAGNOSIS (berth-runtime regression, first fixed in 704a058): init writes \
             linux.sysctl after rootfs::finish made the readonlyPaths (/proc/sys) read-only; runc writes sysctls before applying \
             readonlyPaths/maskedPaths. podman's default_sysctls (net.ipv4.ping_group_range) hit \
             it on every container. Fix: write sysctls before readonlyPaths are applied \
             (crates/berth-runtime/src/init/mod.rs).",
        );
    }
    if err.contains("set controlling terminal") {
        text.push_str(
            "\nDIAGNOSIS (berth-runtime bug): an exec'd process is not a session leader \
             (only init calls setsid), so TIOCSCTTY fails with EPERM; runc's nsexec calls \
             setsid for every container process. Fix: setsid in the Role::Exec branch of \
             crates/berth-runtime/src/init/mod.rs.",
        );
    }
    text
}

/// For a failing `podman run --rm`: does the same command work with `--runtime runc`?
/// Separates podman/environment problems from berth-runtime bugs in the failure message.
fn runc_control(extra: &[&str], cmd: &[&str]) -> String {
    if !have("runc") {
        return "(runc not installed: no control run)".into();
    }
    let Some(p) = Podman::with_runtime("runc".into()) else {
        return "(no control run)".into();
    };
    let out = p.run(extra, cmd);
    format!(
        "control run with --runtime runc: {} stdout={:?} stderr={:?}",
        out.status,
        stdout(&out),
        stderr(&out)
    )
}

#[test]
fn podman_run_rm_prints_output_and_exits_with_the_container_status() {
    let p = podman_or_skip!();
    let cidfile = p.dir.path().join("cid");
    let cidarg = format!("--cidfile={}", cidfile.display());
    let extra = ["--rm", cidarg.as_str()];
    let cmd = ["sh", "-c", "echo hi; exit 4"];
    let out = p.run(&extra, &cmd);
    if out.status.code() != Some(4) || stdout(&out).trim() != "hi" {
        panic!(
            "podman run --rm: expected stdout \"hi\" and exit 4, got {}\n{}",
            show(&out),
            runc_control(&["--rm"], &cmd)
        );
    }
    let cid = std::fs::read_to_string(&cidfile)
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(cid.len(), 64, "cidfile: {cid:?}");
    let left = p.wait_clean(&cid);
    assert!(
        left.is_empty(),
        "left behind after podman run --rm: {left:#?}"
    );
    assert!(
        p.container_ids().is_empty(),
        "containers after --rm: {:?}",
        p.container_ids()
    );
}

#[test]
fn podman_detached_container_exec_stop_rm() {
    let p = podman_or_skip!();
    let name = unique_id("pod");
    let out = p.run(&["-d", "--name", &name], &["sleep", "300"]);
    assert!(
        out.status.success(),
        "podman run -d: {}\n{}",
        show(&out),
        runc_control(&["--rm"], &["true"])
    );
    let cid = stdout(&out).trim().to_string();
    assert_eq!(cid.len(), 64, "podman run -d printed {cid:?}");
    let out = p.podman(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.Pid}}",
        &name,
    ]);
    let inspect = stdout(&out);
    assert!(
        inspect.starts_with("running "),
        "inspect after run -d: {}",
        show(&out)
    );
    let pid = inspect.split_whitespace().nth(1).unwrap().to_string();
    assert!(
        Path::new("/proc").join(&pid).exists(),
        "container pid {pid} is not alive"
    );
    assert!(
        Path::new(RUNTIME_ROOT).join(&cid).exists(),
        "berth-runtime state {RUNTIME_ROOT}/{cid} missing: is podman really using berth-runtime?"
    );

    let out = p.podman(&["exec", &name, "echo", "from-exec"]);
    assert!(out.status.success(), "podman exec: {}", show(&out));
    assert_eq!(
        stdout(&out).trim(),
        "from-exec",
        "podman exec: {}",
        show(&out)
    );
    let out = p.podman(&["exec", &name, "sh", "-c", "exit 6"]);
    assert_eq!(
        out.status.code(),
        Some(6),
        "podman exec exit status: {}",
        show(&out)
    );

    // sleep as pid 1 has no SIGTERM handler: stop escalates to SIGKILL after 2 s.
    let out = p.podman(&["stop", "-t", "2", &name]);
    assert!(out.status.success(), "podman stop: {}", show(&out));
    let out = p.podman(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        &name,
    ]);
    assert_eq!(
        stdout(&out).trim(),
        "exited 137",
        "inspect after stop: {}",
        show(&out)
    );
    let out = p.podman(&["rm", &name]);
    assert!(out.status.success(), "podman rm: {}", show(&out));
    assert!(
        p.container_ids().is_empty(),
        "containers after rm: {:?}",
        p.container_ids()
    );

    let left = p.wait_clean(&cid);
    assert!(left.is_empty(), "left behind after podman rm: {left:#?}");
    assert!(
        std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default()
            != "sleep\x00300\x00",
        "container init (pid {pid}) still running"
    );
}

#[test]
fn podman_run_and_exec_with_a_terminal() {
    let p = podman_or_skip!();
    // run -t: the runtime sends the pty master over conmon's --console-socket.
    let cmd = ["sh", "-c", "tty; echo tty-run; exit 5"];
    let out = p.run(&["--rm", "-t"], &cmd);
    let text = stdout(&out);
    if out.status.code() != Some(5) || !text.contains("/dev/pts/") || !text.contains("tty-run") {
        panic!(
            "podman run -t: expected a /dev/pts tty, \"tty-run\" and exit 5, got {}\n{}",
            show(&out),
            runc_control(&["--rm", "-t"], &cmd)
        );
    }

    // exec -t: conmon calls `exec --tty --console-socket S --detach`.
    let name = unique_id("pod-tty");
    let out = p.run(&["-d", "--name", &name], &["sleep", "300"]);
    assert!(out.status.success(), "podman run -d: {}", show(&out));
    let cid = stdout(&out).trim().to_string();
    let out = p.podman(&["exec", "-t", &name, "sh", "-c", "tty; echo tty-exec"]);
    let text = stdout(&out);
    assert!(
        out.status.success() && text.contains("/dev/pts/") && text.contains("tty-exec"),
        "podman exec -t: expected a /dev/pts tty and \"tty-exec\", got {}",
        show(&out)
    );
    let out = p.podman(&["rm", "--force", "--time", "0", &name]);
    assert!(out.status.success(), "podman rm --force: {}", show(&out));
    let left = p.wait_clean(&cid);
    assert!(
        left.is_empty(),
        "left behind after podman rm --force: {left:#?}"
    );
}

#[test]
fn podman_default_and_explicit_sysctls_are_applied() {
    let p = podman_or_skip!();
    // podman's containers.conf default_sysctls: net.ipv4.ping_group_range=0 0 (in the
    // container's own network namespace, even with --network none).
    let cmd = [
        "cat",
        "/proc/sys/net/ipv4/ping_group_range",
        "/proc/sys/kernel/msgmax",
    ];
    let extra = ["--rm", "--sysctl", "kernel.msgmax=12345"];
    let out = p.run(&extra, &cmd);
    let lines: Vec<String> = stdout(&out)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    if !out.status.success() || lines != ["0 0", "12345"] {
        panic!(
            "podman run --sysctl: expected [\"0 0\", \"12345\"], got {lines:?}: {}\n{}",
            show(&out),
            runc_control(&extra, &cmd)
        );
    }
}
