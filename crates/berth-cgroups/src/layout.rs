//! Where the cgroup hierarchies are: parsed from /proc/self/mountinfo and /proc/self/cgroup.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::fsutil;

/// The v1 controllers Berth knows, plus the named systemd hierarchy (which it also joins).
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "blkio",
    "pids",
    "hugetlb",
    "net_cls",
    "net_prio",
    "perf_event",
    "rdma",
    "misc",
    "name=systemd",
];

/// How the host mounts cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Mode {
    /// Only v1 hierarchies.
    V1,
    /// Only the unified hierarchy.
    V2,
    /// v1 controllers plus a cgroup2 mount (usually /sys/fs/cgroup/unified).
    Hybrid,
}

/// Where one controller lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// A v1 hierarchy mounted here.
    V1(PathBuf),
    /// The unified hierarchy mounted here.
    V2(PathBuf),
}

/// One mounted hierarchy and the calling process's cgroup in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hierarchy {
    /// Mount point.
    pub mount: PathBuf,
    /// The process's own cgroup, relative to the mount (starts with `/`).
    pub own: String,
}

/// The host's cgroup layout.
#[derive(Debug, Clone)]
pub struct Layout {
    pub(crate) v1: BTreeMap<String, Hierarchy>,
    pub(crate) unified: Option<Hierarchy>,
    pub(crate) unified_controllers: BTreeSet<String>,
    /// The running kernel, where known: some v1 files changed meaning between releases.
    pub(crate) kernel: Option<KernelRelease>,
}

/// A kernel release, `major.minor` (from uname(2)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KernelRelease {
    pub major: u32,
    pub minor: u32,
}

impl KernelRelease {
    /// `"6.18.44-fc"` -> 6.18; `None` when it does not start with two numbers.
    pub fn parse(text: &str) -> Option<KernelRelease> {
        let mut parts = text.trim().split(['.', '-']);
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some(KernelRelease { major, minor })
    }

    /// True from `major.minor` on.
    pub fn at_least(self, major: u32, minor: u32) -> bool {
        self >= KernelRelease { major, minor }
    }
}

impl std::fmt::Display for KernelRelease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// One cgroup line of mountinfo.
struct CgroupMount {
    root: String,
    mount: PathBuf,
    v2: bool,
    controllers: Vec<String>,
}

impl Layout {
    /// Prepare for a v1 migration that is coming: write our own pid into the cgroup we are
    /// already in (no change of placement, no charges move), in one v1 hierarchy.
    ///
    /// Any cgroup v1 migration takes the global `cgroup_threadgroup_rwsem` for writing, and the
    /// first writer waits for an RCU grace period (milliseconds) unless the hierarchy is mounted
    /// with `favordynmods`. Writers that follow within about a grace period do not wait. So a
    /// caller that runs this on a helper thread while it does other work (the runtime: while
    /// the container's process sets itself up) pays that wait in parallel, and its real
    /// migration moments later is fast. A no-op where there is no v1 hierarchy.
    pub fn warm_up_migration(&self) -> Result<(), Error> {
        let Some(h) = self.v1.values().next() else {
            return Ok(());
        };
        let dir = h.mount.join(h.own.trim_start_matches('/'));
        fsutil::write(&dir.join("cgroup.procs"), &std::process::id().to_string())
    }

    /// The layout of the real host, with the running kernel's release.
    pub fn detect() -> Result<Layout, Error> {
        let mountinfo = fsutil::read(Path::new("/proc/self/mountinfo"))?;
        let own = fsutil::read(Path::new("/proc/self/cgroup"))?;
        let mut layout = Layout::from_files(&mountinfo, &own)?;
        // One uname(2), not an open/read/close of /proc/sys/kernel/osrelease: this runs on
        // every container start.
        layout.kernel = nix::sys::utsname::uname()
            .ok()
            .and_then(|u| KernelRelease::parse(&u.release().to_string_lossy()));
        Ok(layout)
    }

    /// The layout described by mountinfo and /proc/self/cgroup text; mount points may lie in a
    /// tempdir (a fake cgroupfs). Reads `cgroup.controllers` at the cgroup2 mount point. The
    /// kernel release is unknown (see [`Layout::with_kernel_release`]).
    pub fn from_files(mountinfo: &str, proc_self_cgroup: &str) -> Result<Layout, Error> {
        let own = parse_proc_self_cgroup(proc_self_cgroup)?;
        let mut v1 = BTreeMap::new();
        let mut unified = None;
        for line in mountinfo.lines() {
            let Some(mount) = parse_mountinfo_line(line)? else {
                continue;
            };
            if mount.v2 {
                if unified.is_none() {
                    let path = own.get("").map(String::as_str).unwrap_or("/");
                    unified = Some(hierarchy(&mount, path));
                }
                continue;
            }
            let key = mount.controllers.join(",");
            let path = own.get(&key).map(String::as_str).unwrap_or("/");
            for controller in &mount.controllers {
                v1.entry(controller.clone())
                    .or_insert_with(|| hierarchy(&mount, path));
            }
        }
        let unified_controllers = match &unified {
            Some(h) => read_controllers(&h.mount)?
                .into_iter()
                .filter(|c| !v1.contains_key(c))
                .collect(),
            None => BTreeSet::new(),
        };
        let has_v1 = v1.keys().any(|c| !c.starts_with("name="));
        if !has_v1 && unified.is_none() {
            return Err(Error::NoCgroups);
        }
        Ok(Layout {
            v1,
            unified,
            unified_controllers,
            kernel: None,
        })
    }

    /// The same layout on a kernel of this release (`"5.10.0"`); an unparsable text makes it
    /// unknown.
    pub fn with_kernel_release(mut self, release: &str) -> Layout {
        self.kernel = KernelRelease::parse(release);
        self
    }

    /// The running kernel's release, when known.
    pub fn kernel_release(&self) -> Option<KernelRelease> {
        self.kernel
    }

    /// V1, V2 or hybrid.
    pub fn mode(&self) -> Mode {
        let has_v1 = self.v1.keys().any(|c| !c.starts_with("name="));
        match (has_v1, self.unified.is_some()) {
            (true, true) => Mode::Hybrid,
            (true, false) => Mode::V1,
            _ => Mode::V2,
        }
    }

    /// Where `controller` (e.g. "memory") lives, if anywhere.
    pub fn controller(&self, controller: &str) -> Option<Backend> {
        if let Some(h) = self.v1.get(controller) {
            return Some(Backend::V1(h.mount.clone()));
        }
        match &self.unified {
            Some(h) if self.unified_controllers.contains(controller) => {
                Some(Backend::V2(h.mount.clone()))
            }
            _ => None,
        }
    }

    /// The cgroup2 mount point, if any (pure v2 or hybrid).
    pub fn unified_mount(&self) -> Option<&Path> {
        self.unified.as_ref().map(|h| h.mount.as_path())
    }

    /// Controllers served by v1 hierarchies (including `name=systemd`).
    pub fn v1_controllers(&self) -> Vec<&str> {
        self.v1.keys().map(String::as_str).collect()
    }

    /// Controllers served by the unified hierarchy (not bound to v1).
    pub fn v2_controllers(&self) -> Vec<&str> {
        self.unified_controllers
            .iter()
            .map(String::as_str)
            .collect()
    }
}

fn hierarchy(mount: &CgroupMount, own_path: &str) -> Hierarchy {
    // Inside a cgroup namespace or a bind mount, the mount shows `root`, not `/`.
    let own = match own_path.strip_prefix(mount.root.as_str()) {
        Some(rest) if mount.root != "/" => format!("/{}", rest.trim_start_matches('/')),
        _ => own_path.to_string(),
    };
    Hierarchy {
        mount: mount.mount.clone(),
        own,
    }
}

fn read_controllers(mount: &Path) -> Result<BTreeSet<String>, Error> {
    let text = fsutil::read_optional(&mount.join("cgroup.controllers"))?.unwrap_or_default();
    Ok(text.split_whitespace().map(str::to_string).collect())
}

/// `/proc/self/cgroup`: `id:controllers:path` -> { "cpu,cpuacct": "/x", "": "/y" (v2) }.
fn parse_proc_self_cgroup(text: &str) -> Result<BTreeMap<String, String>, Error> {
    let mut map = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::Parse {
                what: "/proc/self/cgroup".to_string(),
                reason: format!("bad line {line:?}"),
            });
        };
        // Key by the sorted controller list, the same key as the mounts use.
        let mut names: Vec<&str> = controllers.split(',').filter(|c| !c.is_empty()).collect();
        names.sort_unstable();
        map.insert(names.join(","), path.to_string());
    }
    Ok(map)
}

/// One mountinfo line: `id parent maj:min root mountpoint opts [optional...] - fstype source superopts`.
/// Returns `None` for non-cgroup mounts.
fn parse_mountinfo_line(line: &str) -> Result<Option<CgroupMount>, Error> {
    let bad = || Error::Parse {
        what: "mountinfo".to_string(),
        reason: format!("bad line {line:?}"),
    };
    let Some((left, right)) = line.split_once(" - ") else {
        return if line.trim().is_empty() {
            Ok(None)
        } else {
            Err(bad())
        };
    };
    let fields: Vec<&str> = left.split(' ').collect();
    let tail: Vec<&str> = right.split(' ').collect();
    if fields.len() < 5 || tail.len() < 3 {
        return Err(bad());
    }
    let v2 = match tail[0] {
        "cgroup2" => true,
        "cgroup" => false,
        _ => return Ok(None),
    };
    let controllers = if v2 {
        Vec::new()
    } else {
        let mut found: Vec<String> = tail[2]
            .split(',')
            .filter(|opt| V1_CONTROLLERS.contains(opt))
            .map(str::to_string)
            .collect();
        found.sort();
        found
    };
    if !v2 && controllers.is_empty() {
        return Ok(None);
    }
    Ok(Some(CgroupMount {
        root: unescape(fields[3]),
        mount: PathBuf::from(unescape(fields[4])),
        v2,
        controllers,
    }))
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_release_parses_major_minor() {
        let release = KernelRelease::parse("6.18.44-fc-v782\n").unwrap();
        assert_eq!((release.major, release.minor), (6, 18));
        assert!(release.at_least(5, 16) && !release.at_least(6, 19));
        assert_eq!(KernelRelease::parse("5.4").unwrap().to_string(), "5.4");
        assert_eq!(KernelRelease::parse("linux"), None);
    }

    #[test]
    fn unescapes_octal() {
        assert_eq!(unescape(r"/a\040b\\c"), r"/a b\\c");
        assert_eq!(unescape(r"/a\134b"), r"/a\b");
    }

    #[test]
    fn proc_self_cgroup_keys() {
        let map = parse_proc_self_cgroup("2:cpuacct,cpu:/a\n1:name=systemd:/s\n0::/u\n").unwrap();
        assert_eq!(map["cpu,cpuacct"], "/a");
        assert_eq!(map["name=systemd"], "/s");
        assert_eq!(map[""], "/u");
    }

    #[test]
    fn mount_root_is_stripped() {
        let mount = CgroupMount {
            root: "/docker/abc".into(),
            mount: "/sys/fs/cgroup/memory".into(),
            v2: false,
            controllers: vec!["memory".into()],
        };
        assert_eq!(hierarchy(&mount, "/docker/abc/x").own, "/x");
        assert_eq!(hierarchy(&mount, "/docker/abc").own, "/");
    }
}
