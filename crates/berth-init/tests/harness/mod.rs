//! Runs an init (berth-init or tini) around a shell script, either directly (so it is not
//! PID 1 and relies on being a child subreaper) or as PID 1 of a new pid namespace through
//! `unshare --pid --fork --mount-proc`. Whatever is left running is killed on drop, so a
//! failing assertion does not leak processes.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// How long any single step may take before the test gives up (and cleans up).
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// The init under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// This crate's binary.
    Berth,
    /// Debian's tini, for comparison.
    Tini,
}

/// The berth-init binary under test: `$BERTH_INIT` when set (e.g. the output of
/// `crates/berth-init/build-static.sh`), else the one cargo built for these tests.
pub fn berth_init() -> String {
    std::env::var("BERTH_INIT").unwrap_or_else(|_| env!("CARGO_BIN_EXE_berth-init").to_owned())
}

impl Init {
    fn path(self) -> String {
        match self {
            Init::Berth => berth_init(),
            Init::Tini => "/usr/bin/tini".to_owned(),
        }
    }

    /// `None` with a `SKIPPED` line when this init cannot run here.
    pub fn available(self, test: &str) -> Option<Init> {
        if Path::new(&self.path()).exists() {
            Some(self)
        } else {
            eprintln!("SKIPPED: {test} with tini: /usr/bin/tini missing (install tini: scripts/packages.sh TEST_PACKAGES)");
            None
        }
    }
}

/// Where the init runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// As a plain child of the test.
    Direct,
    /// As PID 1 of a new pid namespace.
    Pid1,
}

impl Mode {
    /// The modes this machine can run; prints a `SKIPPED` line for the others.
    pub fn available(test: &str) -> Vec<Mode> {
        let mut modes = vec![Mode::Direct];
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED: {test} as PID 1: needs root for a new pid namespace");
        } else if !Path::new("/usr/bin/unshare").exists() {
            eprintln!("SKIPPED: {test} as PID 1: /usr/bin/unshare missing (install util-linux)");
        } else {
            modes.push(Mode::Pid1);
        }
        modes
    }
}

/// A running init with its output collected line by line.
pub struct Running {
    mode: Mode,
    process: Child,
    stdout: Receiver<String>,
    stderr: Option<JoinHandle<String>>,
}

/// How it ended.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<String>,
    pub stderr: String,
}

impl Finished {
    /// The exit code (the inits always exit, they are never killed in these tests).
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("killed instead of exiting: {self:?}"))
    }
}

impl Running {
    /// Starts `init ARGS...` (ARGS after the init's own `--` are up to the caller).
    pub fn start(init: Init, mode: Mode, args: &[&str]) -> Running {
        let mut command = match mode {
            Mode::Direct => Command::new(init.path()),
            Mode::Pid1 => {
                let mut c = Command::new("/usr/bin/unshare");
                c.args(["--pid", "--fork", "--mount-proc", &init.path()]);
                c
            }
        };
        // A PATH the program lookups can rely on whoever runs the tests: a directory the user
        // cannot search on the way turns "not found" (127) into EACCES (126).
        let mut process = command
            .args(args)
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the init");
        let stdout = lines(process.stdout.take().expect("stdout"));
        let mut err = process.stderr.take().expect("stderr");
        let stderr = Some(thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        }));
        Running {
            mode,
            process,
            stdout,
            stderr,
        }
    }

    /// Runs a shell script under the init and waits for it.
    pub fn script(init: Init, mode: Mode, script: &str) -> Finished {
        Running::start(init, mode, &["--", "/bin/sh", "-c", script]).finish()
    }

    /// The next line of stdout.
    pub fn line(&mut self) -> String {
        self.stdout
            .recv_timeout(TIMEOUT)
            .unwrap_or_else(|e| panic!("no line on stdout within {TIMEOUT:?}: {e}"))
    }

    /// Reads stdout until `expected` comes, returning the lines before it.
    pub fn until(&mut self, expected: &str) -> Vec<String> {
        let mut before = Vec::new();
        loop {
            let line = self.line();
            if line == expected {
                return before;
            }
            before.push(line);
        }
    }

    /// The init's pid in the test's pid namespace (unshare's child in PID 1 mode).
    pub fn init_pid(&self) -> i32 {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(pid) = self.init_pid_now() {
                return pid;
            }
            assert!(Instant::now() < deadline, "unshare started no child");
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn init_pid_now(&self) -> Option<i32> {
        let own = self.process.id() as i32;
        match self.mode {
            Mode::Direct => Some(own),
            Mode::Pid1 => children(own).first().copied(),
        }
    }

    /// Sends a signal (by number, real-time ones included) to the init.
    pub fn signal(&self, signal: i32) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.init_pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits for the init to exit and collects the rest of its output.
    pub fn finish(mut self) -> Finished {
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(status) = self.process.try_wait().expect("wait for the init") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the init did not exit within {TIMEOUT:?}"
            );
            thread::sleep(Duration::from_millis(10));
        };
        let stdout = self.stdout.iter().collect();
        let stderr = self
            .stderr
            .take()
            .map(|h| h.join().expect("stderr reader"))
            .unwrap_or_default();
        Finished {
            status,
            stdout,
            stderr,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.process.try_wait(), Ok(Some(_))) {
            return;
        }
        // PID 1 mode: killing the namespace's init kills everything in it. Direct mode: kill
        // the init's children (their process groups too), then the init.
        if let Some(init) = self.init_pid_now() {
            if self.mode == Mode::Direct {
                for child in children(init) {
                    let _ = kill(Pid::from_raw(-child), Signal::SIGKILL);
                    let _ = kill(Pid::from_raw(child), Signal::SIGKILL);
                }
            }
            let _ = kill(Pid::from_raw(init), Signal::SIGKILL);
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// A channel of the lines `reader` produces, read on a thread.
fn lines(reader: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The children of `pid`, from procfs.
pub fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}
