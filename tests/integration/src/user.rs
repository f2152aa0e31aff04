//! A throwaway unprivileged user for rootless tests: made with useradd (with a subordinate id
//! range), used through setpriv, and removed with everything it left running when dropped.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::{describe, have, kill_pid, stdout};

/// Why rootless tests cannot run here, if they cannot.
pub fn unusable() -> Option<&'static str> {
    let tools = [
        "useradd",
        "userdel",
        "usermod",
        "setpriv",
        "newuidmap",
        "newgidmap",
    ];
    if tools.iter().any(|t| !have(t)) {
        return Some("needs useradd, usermod, setpriv and newuidmap/newgidmap (uidmap)");
    }
    None
}

/// A user made for one test, with a home and an XDG_RUNTIME_DIR under a private directory.
/// Dropping it kills the user's processes (not those a reused uid already had), removes the
/// user, its subuid/subgid lines and the directory.
pub struct TestUser {
    /// Login name.
    pub name: String,
    /// uid.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
    dir: tempfile::TempDir,
    foreign: Vec<i32>,
}

impl TestUser {
    /// A new user `prefix<pid>n<count>` with a 65536-id subordinate range.
    pub fn new(prefix: &str) -> TestUser {
        static MADE: AtomicU32 = AtomicU32::new(0);
        let n = MADE.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}{}n{n}", std::process::id());
        let dir = tempfile::Builder::new()
            .prefix("btu")
            .tempdir_in("/tmp")
            .unwrap();
        let out = Command::new("useradd")
            .args(["-m", "-s", "/bin/sh", &name])
            .output()
            .unwrap();
        assert!(out.status.success(), "useradd: {}", describe(&out));
        let uid = id_of("-u", &name);
        let user = TestUser {
            uid,
            gid: id_of("-g", &name),
            name,
            dir,
            foreign: processes_of(uid),
        };
        // useradd gives a range when login.defs asks for it; otherwise usermod adds one (it
        // locks the files against the other tests' useradd/userdel).
        if !has_subid_line("/etc/subuid", &user.name) || !has_subid_line("/etc/subgid", &user.name)
        {
            let start = 300_000 + (user.uid % 1000) * 65_536;
            let range = format!("{start}-{}", start + 65_535);
            let out = Command::new("usermod")
                .args(["--add-subuids", &range, "--add-subgids", &range, &user.name])
                .output()
                .unwrap();
            assert!(out.status.success(), "usermod: {}", describe(&out));
        }
        std::fs::create_dir_all(user.xdg()).unwrap();
        user.chmod("755", user.dir.path());
        user.chown(&user.home());
        user.chmod("755", &user.home());
        user.chmod("700", &user.xdg());
        user
    }

    /// The private directory (0755, root's) holding the home.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The user's home (its own).
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// Its XDG_RUNTIME_DIR (0700, its own).
    pub fn xdg(&self) -> PathBuf {
        self.home().join("xdg")
    }

    /// Give `path` (recursively) to the user.
    pub fn chown(&self, path: &Path) {
        let st = Command::new("chown")
            .args(["-R", &format!("{}:{}", self.uid, self.gid)])
            .arg(path)
            .status()
            .unwrap();
        assert!(st.success(), "chown {}", path.display());
    }

    fn chmod(&self, mode: &str, path: &Path) {
        let st = Command::new("chmod").arg(mode).arg(path).status().unwrap();
        assert!(st.success(), "chmod {mode} {}", path.display());
    }

    /// `program` run as the user through setpriv, with a clean environment: HOME,
    /// XDG_RUNTIME_DIR, PATH and `env` (`Command::env` would be reset by setpriv).
    pub fn command(&self, program: &Path, env: &[(String, OsString)]) -> Command {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--reuid",
            &self.uid.to_string(),
            "--regid",
            &self.gid.to_string(),
            "--init-groups",
            "--reset-env",
            "env",
        ])
        .arg(format!("XDG_RUNTIME_DIR={}", self.xdg().display()))
        .arg(format!("HOME={}", self.home().display()))
        .arg("PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin");
        for (key, value) in env {
            let mut pair = OsString::from(format!("{key}="));
            pair.push(value);
            cmd.arg(pair);
        }
        cmd.arg(program);
        cmd
    }

    /// SIGKILL, one pid at a time, this test's processes of the user.
    pub fn kill_all(&self) {
        for pid in processes_of(self.uid) {
            if !self.foreign.contains(&pid) {
                kill_pid(pid);
            }
        }
    }

    /// This test's live processes of the user, with their names.
    pub fn processes(&self) -> Vec<(i32, String)> {
        named_processes_of(self.uid)
            .into_iter()
            .filter(|(pid, _)| !self.foreign.contains(pid))
            .collect()
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        self.kill_all();
        let _ = Command::new("userdel")
            .args(["-r", "-f", &self.name])
            .output();
        for file in ["/etc/subuid", "/etc/subgid"] {
            let _ = Command::new("flock")
                .args([file, "sed", "-i", &format!("/^{}:/d", self.name), file])
                .output();
        }
    }
}

fn id_of(flag: &str, name: &str) -> u32 {
    let out = Command::new("id").args([flag, name]).output().unwrap();
    stdout(&out).trim().parse().unwrap()
}

fn has_subid_line(file: &str, name: &str) -> bool {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with(&format!("{name}:")))
}

fn processes_of(uid: u32) -> Vec<i32> {
    named_processes_of(uid)
        .into_iter()
        .map(|(p, _)| p)
        .collect()
}

/// The pids and names of the live (not zombie) processes whose real uid is `uid`.
pub fn named_processes_of(uid: u32) -> Vec<(i32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|l| l.split_whitespace().next().unwrap_or("").to_owned())
        };
        if field("State:").as_deref() == Some("Z") {
            continue;
        }
        if field("Uid:") == Some(uid.to_string()) {
            found.push((pid, field("Name:").unwrap_or_default()));
        }
    }
    found
}
