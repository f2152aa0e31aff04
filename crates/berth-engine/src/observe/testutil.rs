//! Real-kernel test helpers: a fresh cgroup with a spinning shell in it, all removed on drop.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};

use berth_cgroups::{Cgroup, Layout};

const SIGKILL: i32 = 9;
static COUNTER: AtomicU32 = AtomicU32::new(0);
/// One spinning child at a time: two on a 2-core box would starve each other's figures.
static SERIAL: Mutex<()> = Mutex::new(());

/// Why a real-kernel test cannot run here, if it cannot.
pub fn skip_reason() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not root".to_string());
    }
    if !std::path::Path::new("/sys/fs/cgroup").is_dir() {
        return Some("/sys/fs/cgroup not present".to_string());
    }
    None
}

/// A cgroup with a shell in it that fills `shm_mib` MiB of /dev/shm, then spins.
pub struct Spinner {
    pub cgroup: Cgroup,
    pub child: Child,
    stdout: BufReader<ChildStdout>,
    shm: PathBuf,
    _serial: MutexGuard<'static, ()>,
}

impl Spinner {
    pub fn start(prefix: &str, shm_mib: usize) -> Spinner {
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let layout = Layout::detect().unwrap();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("/berth-observe-{prefix}-{}-{n}", std::process::id());
        let cgroup = Cgroup::create(&layout, &name, prefix).unwrap();
        let shm = PathBuf::from(format!(
            "/dev/shm/berth-observe-{prefix}-{}-{n}",
            std::process::id()
        ));
        let script = format!(
            "read go; head -c {} /dev/zero > {}; echo ready; while :; do :; done",
            shm_mib << 20,
            shm.display()
        );
        let mut child = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let spinner = Spinner {
            cgroup,
            child,
            stdout,
            shm,
            _serial: serial,
        };
        spinner.cgroup.add_pid(spinner.pid()).unwrap();
        spinner
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap()
    }

    /// Lets the shell fill /dev/shm and start spinning; waits until it has filled it.
    pub fn go(&mut self) {
        self.child
            .stdin
            .as_mut()
            .unwrap()
            .write_all(b"go\n")
            .unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready");
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.shm);
        let _ = self.cgroup.kill_all(SIGKILL);
        if let Err(err) = self.cgroup.destroy() {
            eprintln!("cleanup: {err}");
        }
    }
}
