//! Shared by the real-kernel tests of tests/stats.rs and tests/oom.rs: skip reasons, a cgroup
//! guard, and a helper process (this test executable run again) that joins a cgroup before it
//! allocates memory or does I/O.

// Test helpers may panic.
#![allow(clippy::unwrap_used, dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use berth_cgroups::{Cgroup, Layout};

const SIGKILL: i32 = 9;
const MIB: usize = 1 << 20;
const PAGE: usize = 4096;
static COUNTER: AtomicU32 = AtomicU32::new(0);
/// What the helper prints when its work is done.
const READY: &str = "berth-cgroups-helper-ready";

/// Why a real-kernel test cannot run here, if it cannot.
pub fn skip_reason() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("");
    if uid != "0" {
        return Some(format!("not root (euid {uid:?})"));
    }
    if !std::path::Path::new("/sys/fs/cgroup").is_dir() {
        return Some("/sys/fs/cgroup not present".to_string());
    }
    None
}

/// A fresh cgroup on the real host, with the helper process once spawned; both go on drop.
pub struct Guard {
    pub cgroup: Cgroup,
    pub helper: Option<Helper>,
}

impl Guard {
    pub fn new(prefix: &str) -> Guard {
        let layout = Layout::detect().unwrap();
        let name = format!(
            "/berth-{prefix}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        Guard {
            cgroup: Cgroup::create(&layout, &name, prefix).unwrap(),
            helper: None,
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(helper) = self.helper.as_mut() {
            let _ = helper.child.kill();
            let _ = helper.child.wait();
        }
        let _ = self.cgroup.kill_all(SIGKILL);
        if let Err(err) = self.cgroup.destroy() {
            eprintln!("cleanup: {err}");
        }
    }
}

/// What the helper does once it is in the cgroup.
#[derive(Default)]
pub struct Work {
    /// Anonymous memory to allocate and touch, MiB (until killed, if past the limit).
    pub alloc_mib: usize,
    /// A file to write through the page cache, and how many MiB.
    pub cache_file: Option<(std::path::PathBuf, usize)>,
    /// A file to write and read back with O_DIRECT (block I/O), and how many MiB.
    pub direct_file: Option<(std::path::PathBuf, usize)>,
}

/// This test executable, run again as `test_name` with the work in its environment.
pub struct Helper {
    pub child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Helper {
    /// Starts the helper; it waits for [`Helper::go`] before it does anything.
    pub fn spawn(test_name: &str, work: &Work) -> Helper {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", test_name, "--nocapture", "--test-threads=1"])
            .env("BERTH_CG_HELPER", "1")
            .env("BERTH_CG_ALLOC_MIB", work.alloc_mib.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        if let Some((path, mib)) = &work.cache_file {
            cmd.env("BERTH_CG_CACHE_FILE", path)
                .env("BERTH_CG_CACHE_MIB", mib.to_string());
        }
        if let Some((path, mib)) = &work.direct_file {
            cmd.env("BERTH_CG_DIRECT_FILE", path)
                .env("BERTH_CG_DIRECT_MIB", mib.to_string());
        }
        let mut child = cmd.spawn().unwrap();
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Helper {
            child,
            stdin,
            stdout,
        }
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap()
    }

    /// Lets the helper work (call after it joined the cgroup).
    pub fn go(&mut self) {
        self.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    }

    /// Waits for the helper's ready line (its work is done); false if it died first. The
    /// test harness prints `test NAME ... ` before it, on the same line.
    pub fn ready(&mut self) -> bool {
        let mut line = String::new();
        loop {
            line.clear();
            if self.stdout.read_line(&mut line).unwrap_or(0) == 0 {
                return false;
            }
            if line.trim_end().ends_with(READY) {
                return true;
            }
        }
    }
}

/// Call first in the helper's test function: in a helper process it does the work, says
/// its ready line, waits for stdin to close and exits; in the test run itself it returns.
pub fn run_helper_if_asked() {
    if std::env::var_os("BERTH_CG_HELPER").is_none() {
        return;
    }
    let mut stdin = std::io::stdin().lock();
    let mut line = String::new();
    stdin.read_line(&mut line).unwrap();
    let env_usize = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0)
    };
    let memory = allocate(env_usize("BERTH_CG_ALLOC_MIB"));
    if let Some(path) = std::env::var_os("BERTH_CG_CACHE_FILE") {
        std::fs::write(path, vec![0xab_u8; env_usize("BERTH_CG_CACHE_MIB") * MIB]).unwrap();
    }
    if let Some(path) = std::env::var_os("BERTH_CG_DIRECT_FILE") {
        direct_io(
            std::path::Path::new(&path),
            env_usize("BERTH_CG_DIRECT_MIB"),
        );
    }
    println!("{READY}");
    std::io::stdout().flush().unwrap();
    let mut rest = Vec::new();
    let _ = stdin.read_to_end(&mut rest);
    drop(std::hint::black_box(memory));
    std::process::exit(0);
}

/// `mib` MiB, every page written so that it is charged.
fn allocate(mib: usize) -> Vec<Vec<u8>> {
    let mut chunks = Vec::with_capacity(mib);
    for _ in 0..mib {
        let mut chunk = vec![0_u8; MIB];
        for i in (0..MIB).step_by(PAGE) {
            chunk[i] = 1;
        }
        chunks.push(std::hint::black_box(chunk));
    }
    chunks
}

/// Writes `mib` MiB with O_DIRECT, then reads them back the same way.
fn direct_io(path: &std::path::Path, mib: usize) {
    let backing = vec![0xcd_u8; MIB + PAGE];
    let start = backing.as_ptr().align_offset(PAGE).min(PAGE);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .unwrap();
    for _ in 0..mib {
        file.write_all(&backing[start..start + MIB]).unwrap();
    }
    file.sync_all().unwrap();
    let mut back = vec![0_u8; MIB + PAGE];
    let start = back.as_ptr().align_offset(PAGE).min(PAGE);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
        .unwrap();
    for _ in 0..mib {
        file.read_exact(&mut back[start..start + MIB]).unwrap();
    }
}
