//! Support code for the integration tests: the built binaries, busybox bundles with the probe,
//! runtimes run as commands, and checks that nothing is left behind.
//!
//! Tests run as root on the real kernel. Anything a test needs that the machine lacks makes it
//! skip with `skipped: <reason>` on stderr (see [`skip!`]).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;

pub mod net;
pub mod user;

/// Skip the current test with a reason (printed, so a skip is never silent).
#[macro_export]
macro_rules! skip {
    ($($arg:tt)*) => {{
        eprintln!("skipped: {}", format!($($arg)*));
        return;
    }};
}

/// Skip the current test unless it runs as root.
#[macro_export]
macro_rules! need_root {
    () => {
        if !$crate::is_root() {
            $crate::skip!("needs root (real namespaces, cgroups and mounts)");
        }
    };
}

/// Assert that container `id` left nothing behind (see [`leftovers`]).
pub fn assert_clean(rt: &Runtime, id: &str, bundle: &Bundle) {
    let left = leftovers(rt, id, bundle.path());
    assert!(left.is_empty(), "left behind by {id}: {left:#?}");
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Directory of the built binaries (`target/debug` next to the test executable).
pub fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("BERTH_BIN_DIR") {
        return dir.into();
    }
    let exe = std::env::current_exe().unwrap();
    // target/debug/deps/<test> -> target/debug
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

/// Path of `berth-runtime`; panics with the command to build it if missing.
pub fn berth_runtime() -> PathBuf {
    let path = bin_dir().join("berth-runtime");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p berth-runtime` first",
        path.display()
    );
    path
}

/// Path of the static probe, built on first use by tests/probe/build.sh.
pub fn probe() -> PathBuf {
    static ONCE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        if let Ok(p) = std::env::var("BERTH_PROBE") {
            return p.into();
        }
        let out = Command::new("flock")
            .arg(std::env::temp_dir().join("berth-probe-build.lock"))
            .arg(workspace().join("tests/probe/build.sh"))
            .current_dir(workspace())
            .stderr(Stdio::inherit())
            .output()
            .expect("run tests/probe/build.sh");
        assert!(out.status.success(), "building the probe failed");
        PathBuf::from(
            String::from_utf8(out.stdout)
                .unwrap()
                .trim()
                .lines()
                .last()
                .unwrap(),
        )
    })
    .clone()
}

/// Is this test running as root?
pub fn is_root() -> bool {
    nix_uid() == 0
}

fn nix_uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|u| u.parse().ok())
        .unwrap()
}

/// Is `cmd` on PATH?
pub fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// A unique container id for this process.
pub fn unique_id(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A busybox rootfs with the probe, built once per probe binary by tests/fixtures/mkrootfs
/// (under a lock, in the temporary directory) and copied into each bundle.
pub fn template_rootfs() -> PathBuf {
    static ONCE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        use std::os::unix::fs::MetadataExt;
        let probe = probe();
        let meta = std::fs::metadata(&probe).unwrap();
        let name = format!("berth-test-rootfs-{}-{}", meta.ino(), meta.mtime());
        let dir = std::env::temp_dir().join(name);
        // Built once (other test processes copy it concurrently, so it is never modified once
        // in place): mkrootfs into a scratch directory, then rename, all under a lock.
        let script = format!(
            "[ -d {d} ] || {{ rm -rf {d}.tmp && {mk} {d}.tmp {p} && mv {d}.tmp {d}; }}",
            d = dir.display(),
            mk = workspace().join("tests/fixtures/mkrootfs").display(),
            p = probe.display()
        );
        let status = Command::new("flock")
            .arg(std::env::temp_dir().join("berth-test-rootfs.lock"))
            .args(["sh", "-c", &script])
            .status()
            .unwrap();
        assert!(status.success(), "mkrootfs failed");
        dir
    })
    .clone()
}

/// An OCI bundle in a temporary directory: a busybox rootfs with the probe at /bin/probe and
/// runc's default config.json (from `berth-runtime spec`), editable as JSON.
pub struct Bundle {
    /// Keeps the directory alive.
    pub dir: tempfile::TempDir,
    /// The config as JSON.
    pub config: Value,
}

impl Bundle {
    /// A bundle whose process is `args`, without a terminal.
    pub fn new(args: &[&str]) -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("berth-bundle-")
            .tempdir()
            .unwrap();
        // One `cp -a` of a template: mkrootfs forks once per busybox applet, which is slow
        // under emulation (tests/vm).
        let status = Command::new("cp")
            .arg("-a")
            .arg(template_rootfs())
            .arg(dir.path().join("rootfs"))
            .status()
            .unwrap();
        assert!(status.success(), "copying the template rootfs failed");
        let out = Command::new(berth_runtime())
            .args(["spec", "--bundle"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "spec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut config: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap())
                .unwrap();
        config["process"]["terminal"] = false.into();
        config["process"]["args"] = args.iter().map(|a| Value::from(*a)).collect();
        let bundle = Bundle { dir, config };
        bundle.save();
        bundle
    }

    /// The bundle directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The rootfs directory.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// Write `config` back to config.json.
    pub fn save(&self) {
        std::fs::write(
            self.dir.path().join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }

    /// Edit the config and save it.
    pub fn edit(&mut self, f: impl FnOnce(&mut Value)) -> &mut Self {
        f(&mut self.config);
        self.save();
        self
    }
}

/// An OCI runtime driven through its command line, with its own state root.
pub struct Runtime {
    /// Binary.
    pub bin: PathBuf,
    /// `--root` (a temporary directory).
    pub root: tempfile::TempDir,
}

impl Runtime {
    /// berth-runtime.
    pub fn berth() -> Runtime {
        Runtime::with_bin(berth_runtime())
    }

    /// Another runtime by name (runc, crun); None if not installed.
    pub fn peer(name: &str) -> Option<Runtime> {
        have(name).then(|| Runtime::with_bin(name.into()))
    }

    fn with_bin(bin: PathBuf) -> Runtime {
        Runtime {
            bin,
            root: tempfile::Builder::new()
                .prefix("berth-root-")
                .tempdir()
                .unwrap(),
        }
    }

    /// A command with `--root` set.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(self.root.path());
        c
    }

    /// Run with `args`, stdin closed, capturing output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).stdin(Stdio::null()).output().unwrap()
    }

    /// `run --bundle B id`: the container's exit code and output.
    pub fn run_bundle(&self, bundle: &Bundle, id: &str) -> Output {
        self.cmd()
            .args(["run", "--bundle"])
            .arg(bundle.path())
            .arg(id)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// `state id` parsed, or None if it fails.
    pub fn state(&self, id: &str) -> Option<Value> {
        let out = self.run(&["state", id]);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).unwrap())
    }

    /// Best-effort `delete --force`, for cleanup guards.
    pub fn force_delete(&self, id: &str) {
        let _ = self.run(&["delete", "--force", id]);
    }
}

impl Runtime {
    /// A guard that force-deletes `id` when dropped.
    pub fn guard(&self, id: &str) -> Cleanup<'_> {
        Cleanup {
            runtime: self,
            id: id.to_string(),
        }
    }

    /// A created and started container running `probe sleep 1000`, with its guard.
    pub fn sleeper(&self, prefix: &str) -> (Bundle, String, Cleanup<'_>) {
        let b = Bundle::new(&["/bin/probe", "sleep", "1000"]);
        let id = unique_id(prefix);
        let guard = self.guard(&id);
        let (st, err) = create(self, &b, &id, &[]);
        assert!(st.success(), "create {id}: {err}");
        let out = self.run(&["start", &id]);
        assert!(out.status.success(), "start {id}: {}", stderr(&out));
        (b, id, guard)
    }
}

/// berth-runtime run from a private copy of its binary, for tests that attack the binary (a
/// failure cannot damage the shared one). On drop, the read-only copy that the exe guard
/// mounted for it under /run/berth-runtime-exe (named `<dev>-<ino>`) is detached, so the
/// test leaves no mount behind.
pub struct PrivateRuntime {
    /// The runtime, with its own state root.
    pub rt: Runtime,
    _dir: tempfile::TempDir,
}

impl PrivateRuntime {
    /// Copy the built binary into a temporary directory.
    pub fn new() -> PrivateRuntime {
        let dir = tempfile::Builder::new()
            .prefix("berth-bin-")
            .tempdir()
            .unwrap();
        let copy = dir.path().join("berth-runtime");
        std::fs::copy(berth_runtime(), &copy).unwrap();
        PrivateRuntime {
            rt: Runtime::with_bin(copy),
            _dir: dir,
        }
    }
}

impl Default for PrivateRuntime {
    fn default() -> Self {
        PrivateRuntime::new()
    }
}

impl Drop for PrivateRuntime {
    fn drop(&mut self) {
        use std::os::unix::fs::MetadataExt;
        if let Ok(m) = std::fs::metadata(&self.rt.bin) {
            let ro = Path::new("/run/berth-runtime-exe").join(format!("{}-{}", m.dev(), m.ino()));
            let _ = nix::mount::umount2(&ro, nix::mount::MntFlags::MNT_DETACH);
            let _ = std::fs::remove_file(&ro);
        }
    }
}

/// Deletes a container when dropped, so a failing test leaves nothing running.
pub struct Cleanup<'a> {
    /// Runtime.
    pub runtime: &'a Runtime,
    /// Container id.
    pub id: String,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        self.runtime.force_delete(&self.id);
    }
}

/// A command's exit status, stdout and stderr, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "{}\nstdout: {}\nstderr: {}",
        out.status,
        stdout(out),
        stderr(out)
    )
}

/// Text of an output's stdout.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Text of an output's stderr.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Parse the probe's JSON report from a container's stdout.
pub fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "probe report is not JSON ({e}): stdout={} stderr={}",
            stdout(out),
            stderr(out)
        )
    })
}

/// Everything that could be left behind by container `id` of `runtime`: cgroup directories
/// named after it, mounts of its bundle, its state directory, processes whose cgroup mentions it.
pub fn leftovers(runtime: &Runtime, id: &str, bundle: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let cgroot = Path::new("/sys/fs/cgroup");
    for entry in std::fs::read_dir(cgroot).into_iter().flatten().flatten() {
        let hierarchy = entry.path();
        let _ = walk(&hierarchy, 4, &mut |p| {
            if p.file_name().is_some_and(|n| n == id) {
                found.push(format!("cgroup {}", p.display()));
            }
        });
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let bundle = bundle.to_string_lossy();
    for line in mountinfo.lines().filter(|l| l.contains(bundle.as_ref())) {
        found.push(format!("mount {line}"));
    }
    if runtime.root.path().join(id).exists() {
        found.push(format!(
            "state dir {}",
            runtime.root.path().join(id).display()
        ));
    }
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cg = std::fs::read_to_string(entry.path().join("cgroup")).unwrap_or_default();
        if cg.lines().any(|l| l.ends_with(&format!("/{id}"))) {
            found.push(format!("process {}", entry.file_name().to_string_lossy()));
        }
    }
    found
}

fn walk(dir: &Path, depth: u32, f: &mut dyn FnMut(&Path)) -> std::io::Result<()> {
    if depth == 0 {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            f(&entry.path());
            walk(&entry.path(), depth - 1, f)?;
        }
    }
    Ok(())
}

// ---- Helpers for lifecycle/config/failures/differential/security tests ----

/// Poll `f` every 20 ms until it returns true or `secs` seconds pass; whether it became true.
pub fn wait_until(secs: f64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(secs);
    loop {
        if f() {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Where the container's stdout / stderr go for commands that leave it running
/// (`create`, `run -d`): `<bundle>/<id>.out` and `<bundle>/<id>.err`.
pub fn out_file(bundle: &Bundle, id: &str) -> PathBuf {
    bundle.path().join(format!("{id}.out"))
}

/// See [`out_file`].
pub fn err_file(bundle: &Bundle, id: &str) -> PathBuf {
    bundle.path().join(format!("{id}.err"))
}

/// Run `runtime ARGS` with stdin null and stdout/stderr appended to the container's files
/// (so a container that keeps running does not hold a pipe open). Returns the exit status and
/// what the command wrote to stderr.
pub fn run_detached(
    runtime: &Runtime,
    bundle: &Bundle,
    id: &str,
    args: &[&str],
) -> (std::process::ExitStatus, String) {
    let open = |p: PathBuf| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap()
    };
    let before = std::fs::read(err_file(bundle, id))
        .map(|v| v.len())
        .unwrap_or(0);
    let status = runtime
        .cmd()
        .args(args)
        .stdin(Stdio::null())
        .stdout(open(out_file(bundle, id)))
        .stderr(open(err_file(bundle, id)))
        .status()
        .unwrap();
    let err = std::fs::read(err_file(bundle, id)).unwrap_or_default();
    (
        status,
        String::from_utf8_lossy(&err[before.min(err.len())..]).into_owned(),
    )
}

/// `create --bundle B EXTRA.. id`, container stdio to the files of [`out_file`].
pub fn create(
    runtime: &Runtime,
    bundle: &Bundle,
    id: &str,
    extra: &[&str],
) -> (std::process::ExitStatus, String) {
    let b = bundle.path().to_str().unwrap().to_string();
    let mut args = vec!["create", "--bundle", b.as_str()];
    args.extend_from_slice(extra);
    args.push(id);
    run_detached(runtime, bundle, id, &args)
}

/// The `status` field of `state`, or None when `state` fails.
pub fn status_of(runtime: &Runtime, id: &str) -> Option<String> {
    runtime
        .state(id)
        .and_then(|s| s["status"].as_str().map(String::from))
}

/// Wait (up to 10 s) until `id` has status `want`.
pub fn wait_status(runtime: &Runtime, id: &str, want: &str) -> bool {
    wait_until(10.0, || status_of(runtime, id).as_deref() == Some(want))
}

/// `run` the bundle in the foreground and parse the probe report it prints; panics with the
/// runtime's stderr when it fails.
pub fn run_report(runtime: &Runtime, bundle: &Bundle, id: &str) -> Value {
    let out = runtime.run_bundle(bundle, id);
    assert!(out.status.success(), "run {id} failed: {}", stderr(&out));
    report(&out)
}

/// `--bundle` argument text.
pub fn bundle_arg(bundle: &Bundle) -> String {
    bundle.path().to_str().unwrap().to_string()
}

// ---- Helpers for the containerd and podman tests ----

/// Pids of processes whose NUL-separated command line contains every one of `needles`
/// (compared argument by argument, or as a substring of one argument).
pub fn pids_with_cmdline(needles: &[&str]) -> Vec<i32> {
    let me = std::process::id() as i32;
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            !cmdline.is_empty() && needles.iter().all(|n| args.iter().any(|a| a.contains(n)))
        })
        .collect()
}

/// SIGKILL `pid` (best effort, for cleanup guards).
pub fn kill_pid(pid: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// Mount points at or under `dir`, deepest first (from /proc/self/mountinfo).
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let dir = dir.to_string_lossy().into_owned();
    let mut found: Vec<PathBuf> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        // mountinfo escapes space, tab, newline and backslash as \ooo.
        .map(|p| {
            p.replace("\\040", " ")
                .replace("\\011", "\t")
                .replace("\\012", "\n")
                .replace("\\134", "\\")
        })
        .filter(|p| p == &dir || p.starts_with(&format!("{dir}/")))
        .map(PathBuf::from)
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

/// Lazily unmount everything at or under `dir` (cleanup guards of tests that run engines).
pub fn unmount_under(dir: &Path) {
    for _ in 0..3 {
        let mounts = mounts_under(dir);
        if mounts.is_empty() {
            return;
        }
        for m in mounts {
            let _ = nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// Delete a berth bridge a test's private root made, and the firewall rules tagged with it
/// (`berth-net:<bridge>` in table `inet berth`): the default network of a root is never
/// removed by berth itself, as docker's `docker0` is not.
pub fn remove_berth_bridge(bridge: &str) {
    let _ = Command::new("ip")
        .args(["link", "del", bridge])
        .stderr(Stdio::null())
        .status();
    remove_nft_rules_tagged(&format!("berth-net:{bridge}"));
    let _ = Command::new("nft")
        .args(["delete", "element", "inet", "berth", "bridges"])
        .arg(format!("{{ \"{bridge}\" }}"))
        .stderr(Stdio::null())
        .status();
}

/// Delete every rule of table `inet berth` whose comment is `tag`.
pub fn remove_nft_rules_tagged(tag: &str) {
    let Ok(out) = Command::new("nft")
        .args(["-j", "-a", "list", "table", "inet", "berth"])
        .output()
    else {
        return;
    };
    let Ok(v) = serde_json::from_slice::<Value>(&out.stdout) else {
        return;
    };
    let mut script = String::new();
    for item in v["nftables"].as_array().into_iter().flatten() {
        let rule = &item["rule"];
        if rule["comment"].as_str() == Some(tag) {
            script.push_str(&format!(
                "delete rule inet berth {} handle {}\n",
                rule["chain"].as_str().unwrap_or_default(),
                rule["handle"]
            ));
        }
    }
    if script.is_empty() {
        return;
    }
    if let Ok(mut child) = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
    {
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            let _ = stdin.write_all(script.as_bytes());
        }
        let _ = child.wait();
    }
}
