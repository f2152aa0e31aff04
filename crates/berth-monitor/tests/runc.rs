//! berth-monitor supervising real containers under runc (as root, real kernel): the sync line,
//! k8s-file logs, attach frames, stdin, the pty path, the exit file and the exit command.
//! Skipped, with a note, when runc is not installed.

use std::ffi::OsString;
use std::fs::File;
use std::io::{IoSlice, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rustix::net::{AddressFamily, SendAncillaryBuffer, SendFlags, SocketAddrUnix, SocketType};
use serde_json::Value;

/// Spawns happen under this lock: the sync pipe's write end is inheritable for a moment, and
/// no other test's child may inherit it then.
static SPAWN: Mutex<()> = Mutex::new(());

const APPLETS: &[&str] = &["sh", "cat", "echo", "printf", "sleep", "stty", "true"];
const TIMEOUT: Duration = Duration::from_secs(20);

fn runc() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/bin".into(), "/sbin".into()])
        .map(|d| d.join("runc"))
        .find(|p| p.is_file())
}

/// The binary under test: `$BERTH_MONITOR` (e.g. the static musl release build), else this
/// build's.
fn monitor_binary() -> OsString {
    std::env::var_os("BERTH_MONITOR").unwrap_or_else(|| env!("CARGO_BIN_EXE_berth-monitor").into())
}

fn locked_output(cmd: &mut Command) -> std::process::Output {
    let _guard = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
    cmd.output().expect("running a command")
}

/// One container: its bundle, runc root and run directory in a temporary directory, the
/// monitor process, and cleanup (runc delete -f, kill the monitor) on drop.
struct Case {
    dir: tempfile::TempDir,
    runc: PathBuf,
    id: String,
    monitor: Option<Child>,
    sync: Option<File>,
}

impl Case {
    /// A busybox bundle running `args`, or None (with a note) without runc.
    fn new(name: &str, args: &[&str], terminal: bool) -> Option<Case> {
        let Some(runc) = runc() else {
            eprintln!("skipping {name}: runc is not installed");
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("berth-mon-")
            .tempdir()
            .expect("tempdir");
        let case = Case {
            id: format!("bm-{name}-{}", std::process::id()),
            dir,
            runc,
            monitor: None,
            sync: None,
        };
        case.make_bundle(args, terminal);
        std::fs::create_dir_all(case.path("run")).expect("run dir");
        Some(case)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, name: &str) -> PathBuf {
        self.path("run").join(name)
    }

    fn make_bundle(&self, args: &[&str], terminal: bool) {
        let bin = self.path("bundle/rootfs/bin");
        std::fs::create_dir_all(&bin).expect("rootfs");
        assert!(
            Path::new("/bin/busybox").exists(),
            "need /bin/busybox (apt-get install busybox-static)"
        );
        std::fs::copy("/bin/busybox", bin.join("busybox")).expect("copy busybox");
        for applet in APPLETS {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).expect("symlink");
        }
        let out = locked_output(
            Command::new(&self.runc)
                .arg("spec")
                .current_dir(self.path("bundle")),
        );
        assert!(out.status.success(), "runc spec: {out:?}");
        let config = self.path("bundle/config.json");
        let mut spec: Value =
            serde_json::from_slice(&std::fs::read(&config).expect("config")).expect("json");
        spec["process"]["terminal"] = terminal.into();
        spec["process"]["args"] = args.iter().map(|a| Value::from(*a)).collect();
        spec["root"]["readonly"] = false.into();
        std::fs::write(&config, serde_json::to_vec(&spec).expect("json")).expect("write config");
    }

    /// Start the monitor with `flags` (e.g. -i, -t) and `exit_command`, its sync pipe as fd 3.
    fn spawn(&mut self, bundle: &Path, flags: &[&str], exit_command: &[&str]) {
        let mut args: Vec<OsString> = vec![
            "--id".into(),
            self.id.clone().into(),
            "--runtime".into(),
            self.runc.clone().into(),
            "--runtime-arg".into(),
            "--root".into(),
            "--runtime-arg".into(),
            self.path("root").into(),
            "--bundle".into(),
            bundle.into(),
            "--pid-file".into(),
            self.run("pid").into(),
            "--log-path".into(),
            self.run("ctr.log").into(),
            "--exit-file".into(),
            self.run("exit").into(),
            "--attach-socket".into(),
            self.run("attach").into(),
            "--console-socket".into(),
            self.run("console").into(),
        ];
        args.extend(flags.iter().map(OsString::from));
        if !exit_command.is_empty() {
            args.push("--".into());
            args.extend(exit_command.iter().map(OsString::from));
        }
        let err = File::create(self.run("monitor.err")).expect("monitor.err");
        let _guard = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
        let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).expect("pipe");
        rustix::io::fcntl_setfd(&w, rustix::io::FdFlags::empty()).expect("inheritable");
        // The monitor's sync pipe is fd 3, as the engine passes it.
        let script = format!("exec \"$0\" \"$@\" 3>&{n} {n}>&-", n = w.as_raw_fd());
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(monitor_binary())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("spawn monitor");
        drop(w);
        self.monitor = Some(child);
        self.sync = Some(File::from(r));
    }

    fn bundle(&self) -> PathBuf {
        self.path("bundle")
    }

    /// Everything on the sync pipe until EOF (the monitor closes it after its one line).
    fn sync_line(&mut self) -> String {
        let mut sync = self.sync.take().expect("spawned");
        let mut text = Vec::new();
        let deadline = Instant::now() + TIMEOUT;
        let mut buf = [0u8; 256];
        loop {
            let mut fds = [nix::poll::PollFd::new(
                sync.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(100u16)).expect("poll");
            assert!(
                Instant::now() < deadline,
                "no EOF on the sync pipe; got {text:?}: {}",
                self.stderr()
            );
            if fds[0].revents().is_some_and(|r| !r.is_empty()) {
                match sync.read(&mut buf).expect("read sync") {
                    0 => break,
                    n => text.extend_from_slice(&buf[..n]),
                }
            }
        }
        String::from_utf8(text).expect("utf-8")
    }

    fn pid(&mut self) -> i32 {
        let line = self.sync_line();
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        let pid = v["pid"]
            .as_i64()
            .unwrap_or_else(|| panic!("not a pid: {line}"));
        assert!(line.ends_with("}\n"), "{line:?}");
        assert_eq!(
            pid.to_string(),
            std::fs::read_to_string(self.run("pid"))
                .expect("pid")
                .trim()
        );
        pid as i32
    }

    fn start(&self) {
        let out = locked_output(
            Command::new(&self.runc)
                .arg("--root")
                .arg(self.path("root"))
                .args(["start", &self.id]),
        );
        assert!(out.status.success(), "runc start: {out:?}");
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.run("monitor.err")).unwrap_or_default()
    }

    fn wait(&mut self) -> ExitStatus {
        let child = self.monitor.as_mut().expect("spawned");
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "the monitor did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The log as (timestamp, stream, tag, text) records.
    fn log(&self) -> Vec<(String, String, String, String)> {
        let text = std::fs::read_to_string(self.run("ctr.log")).expect("log");
        text.lines()
            .map(|line| {
                let mut it = line.splitn(4, ' ');
                let mut next = || {
                    it.next()
                        .unwrap_or_else(|| panic!("short record {line:?}"))
                        .to_owned()
                };
                let record = (next(), next(), next(), next());
                check_timestamp(&record.0);
                record
            })
            .collect()
    }

    fn exit_file(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.run("exit")).expect("exit file")).expect("json")
    }

    fn attach(&self) -> Client {
        Client::connect(&self.run("attach"))
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        if let Some(child) = &mut self.monitor {
            if child.try_wait().ok().flatten().is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = locked_output(
            Command::new(&self.runc)
                .arg("--root")
                .arg(self.path("root"))
                .args(["delete", "-f", &self.id]),
        );
    }
}

fn check_timestamp(ts: &str) {
    let b = ts.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    assert!(
        b.len() == 30
            && b[4] == b'-'
            && b[7] == b'-'
            && b[10] == b'T'
            && b[13] == b':'
            && b[16] == b':'
            && b[19] == b'.'
            && b[29] == b'Z'
            && digits(0..4)
            && digits(20..29),
        "bad timestamp {ts:?}"
    );
}

/// An attach client.
struct Client(OwnedFd);

impl Client {
    fn connect(path: &Path) -> Client {
        let fd =
            rustix::net::socket(AddressFamily::UNIX, SocketType::SEQPACKET, None).expect("socket");
        rustix::net::connect(&fd, &SocketAddrUnix::new(path).expect("addr")).expect("connect");
        rustix::net::sockopt::set_socket_timeout(
            &fd,
            rustix::net::sockopt::Timeout::Recv,
            Some(TIMEOUT),
        )
        .expect("timeout");
        Client(fd)
    }

    fn send(&self, kind: u8, payload: &[u8]) {
        let kind = [kind];
        let iov = [IoSlice::new(&kind), IoSlice::new(payload)];
        rustix::net::sendmsg(
            &self.0,
            &iov,
            &mut SendAncillaryBuffer::default(),
            SendFlags::empty(),
        )
        .expect("send frame");
    }

    /// Frames until the exit frame: (stdout, stderr, exit code text).
    fn until_exit(&self) -> (String, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut buf = vec![0u8; 70_000];
        loop {
            let (n, _) = rustix::net::recv(&self.0, &mut buf[..], rustix::net::RecvFlags::empty())
                .expect("recv frame (timed out?)");
            assert!(n > 0, "attach socket closed before the exit frame");
            let payload = buf[1..n].to_vec();
            match buf[0] {
                1 => out.extend_from_slice(&payload),
                2 => err.extend_from_slice(&payload),
                4 => {
                    let (n, _) =
                        rustix::net::recv(&self.0, &mut buf[..], rustix::net::RecvFlags::empty())
                            .expect("EOF after the exit frame");
                    assert_eq!(n, 0, "a frame after the exit frame");
                    let text = |v: Vec<u8>| String::from_utf8_lossy(&v).into_owned();
                    return (text(out), text(err), text(payload));
                }
                k => panic!("unexpected frame type {k}"),
            }
        }
    }
}

#[test]
fn pipes_logs_exit_code_and_exit_command() {
    let script = "echo out1; echo err1 >&2; printf part; sleep 0.3; echo; printf tail; exit 3";
    let Some(mut c) = Case::new("pipes", &["sh", "-c", script], false) else {
        return;
    };
    let done = c.run("done");
    let exit_cmd = format!("echo recorded > {}", done.display());
    c.spawn(&c.bundle(), &[], &["/bin/sh", "-c", &exit_cmd]);
    let pid = c.pid();
    assert!(pid > 1);
    c.start();
    assert!(c.wait().success(), "{}", c.stderr());
    let records: Vec<(String, String, String)> =
        c.log().into_iter().map(|(_, s, t, x)| (s, t, x)).collect();
    let of = |stream: &str| -> Vec<(String, String)> {
        records
            .iter()
            .filter(|r| r.0 == stream)
            .map(|r| (r.1.clone(), r.2.clone()))
            .collect()
    };
    let pair = |t: &str, x: &str| (t.to_owned(), x.to_owned());
    assert_eq!(of("stderr"), vec![pair("F", "err1")]);
    // "part" was printed without a newline, the newline came 0.3 s later, then "tail".
    let out = of("stdout");
    assert_eq!(out.first(), Some(&pair("F", "out1")), "{records:?}");
    assert!(out.contains(&pair("P", "part")), "{records:?}");
    assert_eq!(out.last(), Some(&pair("P", "tail")), "{records:?}");
    let exit = c.exit_file();
    assert_eq!(exit["exit_code"], 3);
    assert_eq!(exit["signal"], Value::Null);
    check_timestamp(exit["finished_at"].as_str().expect("finished_at"));
    assert_eq!(
        std::fs::read_to_string(&done).expect("exit command ran"),
        "recorded\n"
    );
    assert!(!c.run("attach").exists(), "attach socket left behind");
    assert!(!c.run("exit.tmp").exists());
}

#[test]
fn attach_stdin_output_and_exit_frame() {
    let Some(mut c) = Case::new("attach", &["sh", "-c", "cat; echo bye >&2; exit 5"], false) else {
        return;
    };
    c.spawn(&c.bundle(), &["-i"], &[]);
    c.pid();
    let client = c.attach();
    c.start();
    client.send(0, b"hello through attach\n");
    client.send(0, b""); // close stdin: cat ends
    let (out, err, code) = client.until_exit();
    assert_eq!(out, "hello through attach\n");
    assert_eq!(err, "bye\n");
    assert_eq!(code, "5");
    assert!(c.wait().success(), "{}", c.stderr());
    assert_eq!(c.exit_file()["exit_code"], 5);
    let log = c.log();
    assert!(
        log.iter()
            .any(|r| r.1 == "stdout" && r.2 == "F" && r.3 == "hello through attach"),
        "{log:?}"
    );
}

#[test]
fn sigkill_is_recorded_as_137() {
    let Some(mut c) = Case::new("kill", &["sleep", "100"], false) else {
        return;
    };
    c.spawn(&c.bundle(), &[], &[]);
    let pid = c.pid();
    c.start();
    std::thread::sleep(Duration::from_millis(200));
    // SIGTERM to the monitor is ignored (it must outlive the container).
    let monitor = nix::unistd::Pid::from_raw(c.monitor.as_ref().expect("spawned").id() as i32);
    nix::sys::signal::kill(monitor, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM monitor");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    assert!(c.wait().success(), "{}", c.stderr());
    let exit = c.exit_file();
    assert_eq!(exit["exit_code"], 137);
    assert_eq!(exit["signal"], 9);
}

#[test]
fn terminal_output_and_resize() {
    let script = "read line; echo \"got $line\"; stty size; exit 0";
    let Some(mut c) = Case::new("tty", &["sh", "-c", script], true) else {
        return;
    };
    c.spawn(&c.bundle(), &["-t", "-i"], &[]);
    c.pid();
    assert!(!c.run("console").exists(), "console socket left behind");
    let client = c.attach();
    c.start();
    client.send(3, b"33 111");
    client.send(0, b"go\n");
    let (out, err, code) = client.until_exit();
    assert!(out.contains("got go\r\n"), "{out:?}");
    assert!(out.contains("33 111\r\n"), "{out:?}");
    assert_eq!(err, "");
    assert_eq!(code, "0");
    assert!(c.wait().success(), "{}", c.stderr());
    let log = c.log();
    assert!(log.iter().all(|r| r.1 == "stdout"), "{log:?}");
    assert!(log.iter().any(|r| r.3.starts_with("33 111")), "{log:?}");
}

#[test]
fn create_failure_reports_the_runtime_error() {
    let Some(mut c) = Case::new("fail", &["true"], false) else {
        return;
    };
    let done = c.run("done");
    let exit_cmd = format!("echo ran > {}", done.display());
    c.spawn(
        &c.path("no-such-bundle"),
        &[],
        &["/bin/sh", "-c", &exit_cmd],
    );
    let line = c.sync_line();
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    let error = v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error: {line}"));
    assert!(error.contains("no-such-bundle"), "{error}");
    assert_eq!(c.wait().code(), Some(1));
    assert!(!done.exists(), "the exit command ran after a failed create");
    assert!(!c.run("attach").exists(), "attach socket left behind");
}

/// Not an assertion on the figure (debug builds are larger): prints the idle VmRSS of a
/// monitor supervising `sleep` (the README's release figures come from measure-rss.sh).
#[test]
fn idle_rss_is_small() {
    let Some(mut c) = Case::new("rss", &["sleep", "100"], false) else {
        return;
    };
    c.spawn(&c.bundle(), &[], &[]);
    c.pid();
    c.start();
    std::thread::sleep(Duration::from_millis(300));
    let monitor = c.monitor.as_ref().expect("spawned").id();
    let status = std::fs::read_to_string(format!("/proc/{monitor}/status")).expect("status");
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS")
        .to_owned();
    eprintln!("berth-monitor (this build) idle {rss}");
    let kib: u64 = rss
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("kB");
    assert!(kib < 4096, "{rss}");
}
