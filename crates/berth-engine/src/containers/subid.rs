//! /etc/subuid and /etc/subgid: parsing, and the `berth` entry made on first use (a free
//! range, written under shadow's own lock with tmp + fsync + rename, other lines kept).

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::userns::{overlap, UsernsError, AUTO_SIZE, SUBGID_ENV, SUBID_OWNER, SUBUID_ENV};

/// One `NAME:START:COUNT` line of /etc/subuid or /etc/subgid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubIdEntry {
    /// User name (or uid).
    pub owner: String,
    /// First id.
    pub start: u32,
    /// How many.
    pub count: u32,
}

/// The well-formed entries of a subuid/subgid file (comments and bad lines are skipped, as
/// shadow's tools skip them).
pub fn parse_subid(text: &str) -> Vec<SubIdEntry> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|line| {
            let mut parts = line.trim().split(':');
            let owner = parts.next()?.to_owned();
            let start = parts.next()?.parse().ok()?;
            let count = parts.next()?.parse().ok()?;
            (parts.next().is_none() && !owner.is_empty() && count > 0).then_some(SubIdEntry {
                owner,
                start,
                count,
            })
        })
        .collect()
}

/// Where a new `berth` entry goes: podman's `containers:2147483647:2147483648` convention if
/// it overlaps no entry, else the largest free gap above 100000 (at most 2^31 ids, at least
/// [`AUTO_SIZE`]).
pub fn free_range(entries: &[SubIdEntry]) -> Option<(u32, u32)> {
    const PREFERRED: (u32, u32) = (2_147_483_647, 2_147_483_648);
    if !entries
        .iter()
        .any(|e| overlap((e.start, e.count), PREFERRED))
    {
        return Some(PREFERRED);
    }
    let mut used: Vec<(u64, u64)> = entries
        .iter()
        .map(|e| (u64::from(e.start), u64::from(e.start) + u64::from(e.count)))
        .collect();
    used.sort();
    let (mut best, mut at) = ((0u64, 0u64), 100_000u64);
    for (start, end) in used
        .into_iter()
        .chain([(u64::from(u32::MAX), u64::from(u32::MAX))])
    {
        if start > at && start - at > best.1 {
            best = (at, start - at);
        }
        at = at.max(end);
    }
    let size = best.1.min(PREFERRED.1 as u64);
    (size >= u64::from(AUTO_SIZE)).then_some((best.0 as u32, size as u32))
}

/// The subordinate uid and gid files.
pub fn subid_files() -> (PathBuf, PathBuf) {
    let path = |var: &str, default: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(default))
    };
    (
        path(SUBUID_ENV, "/etc/subuid"),
        path(SUBGID_ENV, "/etc/subgid"),
    )
}

/// The `berth` entries of `path`, adding one (under shadow's lock, tmp + fsync + rename,
/// other lines kept) if there is none.
pub fn berth_entries(path: &Path) -> Result<Vec<SubIdEntry>, UsernsError> {
    let read = |path: &Path| match fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(source) => Err(UsernsError::Io {
            step: "read",
            path: path.to_path_buf(),
            source,
        }),
    };
    let ours = |text: &str| -> Vec<SubIdEntry> {
        parse_subid(text)
            .into_iter()
            .filter(|e| e.owner == SUBID_OWNER)
            .collect()
    };
    let found = ours(&read(path)?);
    if !found.is_empty() {
        return Ok(found);
    }
    let _lock = ShadowLock::take(path)?;
    let text = read(path)?;
    let found = ours(&text);
    if !found.is_empty() {
        return Ok(found);
    }
    let Some((start, count)) = free_range(&parse_subid(&text)) else {
        return Err(UsernsError::Exhausted {
            size: AUTO_SIZE,
            path: path.to_path_buf(),
        });
    };
    let mut new = text.clone();
    if !new.is_empty() && !new.ends_with('\n') {
        new.push('\n');
    }
    new.push_str(&format!("{SUBID_OWNER}:{start}:{count}\n"));
    write_atomic(path, new.as_bytes()).map_err(|source| UsernsError::Io {
        step: "write",
        path: path.to_path_buf(),
        source,
    })?;
    Ok(vec![SubIdEntry {
        owner: SUBID_OWNER.to_owned(),
        start,
        count,
    }])
}

fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.berth-{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let mode = fs::metadata(path)
        .map(|m| m.permissions().mode())
        .unwrap_or(0o644);
    let written = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::File::open(dir)?.sync_all()
}

/// shadow's lock on `FILE`: `FILE.lock` made by `link(2)` from a file holding our pid, so
/// useradd/usermod and berth exclude each other; a lock whose pid is dead is broken.
struct ShadowLock(PathBuf);

impl ShadowLock {
    fn take(path: &Path) -> Result<ShadowLock, UsernsError> {
        let lock = PathBuf::from(format!("{}.lock", path.display()));
        let mine = PathBuf::from(format!("{}.{}", path.display(), std::process::id()));
        let fail = |step: &'static str, source| UsernsError::Io {
            step,
            path: lock.clone(),
            source,
        };
        fs::write(&mine, std::process::id().to_string()).map_err(|e| fail("write", e))?;
        let mut result = Err(fail(
            "lock (held by another process for 10s)",
            io::Error::from(io::ErrorKind::WouldBlock),
        ));
        for _ in 0..100 {
            match fs::hard_link(&mine, &lock) {
                Ok(()) => {
                    result = Ok(ShadowLock(lock.clone()));
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    break_if_stale(&lock);
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => {
                    result = Err(fail("lock", e));
                    break;
                }
            }
        }
        let _ = fs::remove_file(&mine);
        result
    }
}

impl Drop for ShadowLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Remove `lock` if the pid in it is not a live process.
fn break_if_stale(lock: &Path) {
    let Ok(text) = fs::read_to_string(lock) else {
        return;
    };
    let Ok(pid) = text.trim().parse::<i32>() else {
        return;
    };
    if pid > 0 && !Path::new(&format!("/proc/{pid}")).exists() {
        let _ = fs::remove_file(lock);
    }
}
