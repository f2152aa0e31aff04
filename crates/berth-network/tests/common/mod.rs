//! Shared test helpers: root check, unique names, Drop guards that clean up even on failure.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_network::{delete_link, remove_netns, NetNs};

/// True when running as root; otherwise prints why the test is skipped.
pub fn root(test: &str) -> bool {
    let ok = nix::unistd::geteuid().is_root();
    if !ok {
        eprintln!("skipping {test}: needs root");
    }
    ok
}

/// A random 16-bit number.
pub fn rand16() -> u16 {
    let mut b = [0u8; 2];
    getrandom::fill(&mut b).unwrap();
    u16::from_le_bytes(b)
}

/// A unique short name: prefix + 4 hex digits.
pub fn name(prefix: &str) -> String {
    format!("{prefix}{:04x}", rand16())
}

/// A random 10.x.y.0/24 base "10.x.y".
pub fn subnet24() -> String {
    let r = rand16();
    format!("10.{}.{}", 100 + (r >> 8) % 150, r & 0xff)
}

/// Directory holding the tests' netns pins.
pub fn pin_dir() -> PathBuf {
    let dir = PathBuf::from("/run/berth-network-tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A netns that is removed on drop.
pub struct NsGuard(pub NetNs);

impl NsGuard {
    pub fn new(tag: &str) -> NsGuard {
        let path = pin_dir().join(name(tag));
        NsGuard(NetNs::create(&path).unwrap())
    }
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for NsGuard {
    fn drop(&mut self) {
        let _ = remove_netns(self.0.path());
    }
}

/// Host links deleted on drop.
pub struct LinkGuard(pub Vec<String>);

impl Drop for LinkGuard {
    fn drop(&mut self) {
        for l in &self.0 {
            let _ = delete_link(l);
        }
    }
}

/// Run a command, return stdout; panics with stderr on failure.
pub fn sh(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run a command inside the netns pinned at `path`.
pub fn in_ns(path: &Path, args: &[&str]) -> String {
    let net = format!("--net={}", path.display());
    let mut all = vec![net.as_str()];
    all.extend_from_slice(args);
    sh("nsenter", &all)
}

/// Is `path` a mount point?
pub fn mounted(path: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let p = path.to_string_lossy();
    mounts.lines().any(|l| l.split(' ').nth(4) == Some(&p))
}

/// Deletes the shared `inet berth` table on drop, but only when no rule and no bridge is left
/// in it (other tests share it).
pub struct TableGuard;

impl Drop for TableGuard {
    fn drop(&mut self) {
        if let Ok((ids, bridges)) = berth_network::tagged() {
            if ids.is_empty() && bridges.is_empty() {
                let _ = Command::new("nft")
                    .args(["delete", "table", "inet", "berth"])
                    .output();
            }
        }
    }
}

/// Removes a network's rules on drop.
pub struct NetRulesGuard(pub String);

impl Drop for NetRulesGuard {
    fn drop(&mut self) {
        let _ = berth_network::remove_network_rules(&self.0);
    }
}

/// Removes a container's port rules on drop.
pub struct PortRulesGuard(pub String);

impl Drop for PortRulesGuard {
    fn drop(&mut self) {
        let _ = berth_network::remove_port_rules(&self.0);
    }
}

/// Is `nft` usable here?
pub fn nft_ok(test: &str) -> bool {
    let ok = Command::new("nft")
        .args(["list", "tables"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipping {test}: nft not usable");
    }
    ok
}
