//! The processes of a container, as `docker top` shows them (the host's `ps -ef` columns
//! `UID PID PPID C STIME TTY TIME CMD`), plus `%CPU` over a sampling interval and `RSS`.
//!
//! The pids come from the container's cgroup ([`Cgroup::pids`]); every pid's
//! `/proc/<pid>/stat` is read once, then again after the interval: per-process CPU% is the
//! Δ(utime + stime) over Δwall. Formulas in `docs/stats.md`.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use berth_cgroups::Cgroup;
use serde::Serialize;
use time::{OffsetDateTime, UtcOffset};

/// What can go wrong while listing a container's processes.
#[derive(Debug, thiserror::Error)]
pub enum TopError {
    /// Listing the cgroup's processes failed.
    #[error("list the processes of the cgroup: {source}")]
    Pids { source: berth_cgroups::Error },
    /// Reading a /proc or passwd file failed (a process that exits meanwhile is skipped).
    #[error("read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    /// A /proc file did not have the expected shape.
    #[error("parse {}: {reason}", path.display())]
    Parse { path: PathBuf, reason: String },
    /// sysconf(3) failed.
    #[error("sysconf {name}: {source}")]
    Sysconf {
        name: &'static str,
        source: nix::Error,
    },
}

/// How to sample.
#[derive(Debug, Clone)]
pub struct TopOptions {
    /// Time between the two readings for `%CPU`.
    pub interval: Duration,
    /// /proc, or a fake one in tests.
    pub proc_root: PathBuf,
    /// The host's user database for UID names (docker top runs the host's `ps`).
    pub passwd: PathBuf,
    /// The offset STIME is shown in (`ps` shows local time). The CLI passes the local offset
    /// where it can know it.
    pub utc_offset: UtcOffset,
    /// USER_HZ (`sysconf(_SC_CLK_TCK)`): units of utime, stime and starttime.
    pub clock_ticks: u64,
    /// `sysconf(_SC_PAGE_SIZE)`: units of statm.
    pub page_size: u64,
}

impl TopOptions {
    /// The host's /proc, /etc/passwd, UTC, and sysconf's tick rate and page size.
    pub fn new(interval: Duration) -> Result<TopOptions, TopError> {
        let conf = |var, name| -> Result<u64, TopError> {
            nix::unistd::sysconf(var)
                .map_err(|source| TopError::Sysconf { name, source })?
                .and_then(|v| u64::try_from(v).ok())
                .filter(|v| *v > 0)
                .ok_or(TopError::Sysconf {
                    name,
                    source: nix::Error::EINVAL,
                })
        };
        Ok(TopOptions {
            interval,
            proc_root: PathBuf::from("/proc"),
            passwd: PathBuf::from("/etc/passwd"),
            utc_offset: UtcOffset::UTC,
            clock_ticks: conf(nix::unistd::SysconfVar::CLK_TCK, "_SC_CLK_TCK")?,
            page_size: conf(nix::unistd::SysconfVar::PAGE_SIZE, "_SC_PAGE_SIZE")?,
        })
    }
}

/// The columns of [`ProcessRow::columns`]: docker top's default ones, with `%CPU` and `RSS`
/// (KiB, as ps shows it) before `CMD`, which stays last because it has spaces.
pub const TOP_COLUMNS: [&str; 10] = [
    "UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "%CPU", "RSS", "CMD",
];

/// One process.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessRow {
    /// Effective UID on the host.
    pub uid: u32,
    /// The UID's name in the host's passwd, else the number (ps's UID column).
    pub user: String,
    /// Host pid.
    pub pid: i32,
    pub ppid: i32,
    /// ps's `C`: CPU time / time since start × 100, over the process's life, integer, at
    /// most 99.
    pub c: u64,
    /// Start time.
    #[serde(serialize_with = "super::serialize_time")]
    pub start_time: OffsetDateTime,
    /// ps's STIME: `HH:MM` today, `MonDD` this year, else the year.
    pub stime: String,
    /// `pts/N`, `ttyN`, `ttySN` or `?`.
    pub tty: String,
    /// CPU time (utime + stime) since start, ns.
    pub cpu_time_ns: u64,
    /// ps's TIME: `[DD-]HH:MM:SS` of the CPU time.
    pub time: String,
    /// Δ(utime + stime) / Δwall × 100 over the interval (100 = one core).
    pub cpu_percent: f64,
    /// Resident set size, bytes (`statm` resident × page size).
    pub rss_bytes: u64,
    /// The command line, or `[comm]` when it has none (kernel threads, zombies).
    pub cmd: String,
}

impl ProcessRow {
    /// The strings of [`TOP_COLUMNS`].
    pub fn columns(&self) -> [String; 10] {
        [
            self.user.clone(),
            self.pid.to_string(),
            self.ppid.to_string(),
            self.c.to_string(),
            self.stime.clone(),
            self.tty.clone(),
            self.time.clone(),
            format!("{:.1}", self.cpu_percent),
            (self.rss_bytes / 1024).to_string(),
            self.cmd.clone(),
        ]
    }
}

/// The processes of `cgroup` and its children, by pid.
pub fn top(cgroup: &Cgroup, options: &TopOptions) -> Result<Vec<ProcessRow>, TopError> {
    top_of(
        || cgroup.pids().map_err(|source| TopError::Pids { source }),
        options,
    )
}

/// [`top`] for a container whose init is `pid`: rootless without a cgroup, its processes are
/// those of its pid namespace.
pub fn top_container(
    cgroup: &Cgroup,
    pid: Option<i32>,
    options: &TopOptions,
) -> Result<Vec<ProcessRow>, TopError> {
    match pid {
        Some(pid) if crate::rootless::is_rootless() && !cgroup.exists() => top_of(
            || Ok(super::procns::pid_namespace_pids(&options.proc_root, pid)),
            options,
        ),
        _ => top(cgroup, options),
    }
}

/// [`top`] for a pid list that `list` gives (called before and after the interval: the
/// second list is the one shown).
pub fn top_of(
    mut list: impl FnMut() -> Result<Vec<i32>, TopError>,
    options: &TopOptions,
) -> Result<Vec<ProcessRow>, TopError> {
    let root = &options.proc_root;
    let first: HashMap<i32, Stat> = list()?
        .into_iter()
        .filter_map(|pid| {
            read_stat(root, pid)
                .transpose()
                .map(|s| s.map(|s| (pid, s)))
        })
        .collect::<Result<_, _>>()?;
    let started = Instant::now();
    sleep(options.interval);
    let pids = list()?;
    let wall = started.elapsed();
    let users = Users::load(&options.passwd)?;
    let system = System::read(root)?;
    let now = OffsetDateTime::now_utc();
    let mut rows = Vec::new();
    for pid in pids {
        let Some(stat) = read_stat(root, pid)? else {
            continue;
        };
        let Some(details) = read_details(root, pid, options.page_size)? else {
            continue;
        };
        let before = first
            .get(&pid)
            .filter(|b| b.starttime == stat.starttime)
            .map_or(0, |b| b.ticks());
        rows.push(row(
            &stat, &details, before, wall, &users, &system, now, options,
        ));
    }
    rows.sort_by_key(|r| r.pid);
    Ok(rows)
}

#[allow(clippy::too_many_arguments)]
fn row(
    stat: &Stat,
    details: &Details,
    ticks_before: u64,
    wall: Duration,
    users: &Users,
    system: &System,
    now: OffsetDateTime,
    options: &TopOptions,
) -> ProcessRow {
    let hz = options.clock_ticks.max(1);
    let ticks = stat.ticks();
    let delta = ticks.saturating_sub(ticks_before);
    let cpu_percent = if wall.is_zero() {
        0.0
    } else {
        delta as f64 / hz as f64 / wall.as_secs_f64() * 100.0
    };
    let since_boot = stat.starttime as f64 / hz as f64;
    let age = (system.uptime_secs - since_boot).max(0.0);
    let c = if age > 0.0 {
        ((ticks as f64 / hz as f64) / age * 100.0) as u64
    } else {
        0
    };
    let start_ns = i128::from(system.boot_time) * 1_000_000_000
        + i128::from(stat.starttime) * 1_000_000_000 / i128::from(hz);
    let start_time =
        OffsetDateTime::from_unix_timestamp_nanos(start_ns).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let cmd = if details.cmdline.is_empty() {
        format!("[{}]", stat.comm)
    } else {
        details.cmdline.clone()
    };
    ProcessRow {
        uid: details.uid,
        user: users.name(details.uid),
        pid: stat.pid,
        ppid: stat.ppid,
        c: c.min(99),
        start_time,
        stime: stime(start_time, now, options.utc_offset),
        tty: tty_name(stat.tty_nr),
        cpu_time_ns: ticks.saturating_mul(1_000_000_000 / hz),
        time: cpu_time(ticks / hz),
        cpu_percent,
        rss_bytes: details.rss_bytes,
        cmd,
    }
}

/// The fields of `/proc/<pid>/stat` that top uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    pub comm: String,
    pub ppid: i32,
    pub tty_nr: u32,
    pub utime: u64,
    pub stime: u64,
    /// Clock ticks after boot.
    pub starttime: u64,
}

impl Stat {
    fn ticks(&self) -> u64 {
        self.utime.saturating_add(self.stime)
    }
}

/// Parses `/proc/<pid>/stat`; `comm` may hold spaces and parentheses.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text.get(..open)?.trim().parse().ok()?;
    let comm = text.get(open + 1..close)?.to_string();
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // rest[0] is the state; the numbers follow in proc(5)'s order from field 4.
    let field = |i: usize| rest.get(i).and_then(|f| f.parse::<i64>().ok());
    Some(Stat {
        pid,
        comm,
        ppid: i32::try_from(field(1)?).ok()?,
        tty_nr: u32::try_from(field(4)?).ok()?,
        utime: u64::try_from(field(11)?).ok()?,
        stime: u64::try_from(field(12)?).ok()?,
        starttime: u64::try_from(field(19)?).ok()?,
    })
}

/// `None` when the process is gone.
fn read_stat(root: &Path, pid: i32) -> Result<Option<Stat>, TopError> {
    let path = root.join(pid.to_string()).join("stat");
    let Some(text) = read_process_file(&path)? else {
        return Ok(None);
    };
    parse_stat(&text).map(Some).ok_or_else(|| TopError::Parse {
        path,
        reason: format!("unexpected stat line {:?}", text.trim()),
    })
}

/// What top reads besides stat.
struct Details {
    uid: u32,
    rss_bytes: u64,
    cmdline: String,
}

fn read_details(root: &Path, pid: i32, page_size: u64) -> Result<Option<Details>, TopError> {
    let dir = root.join(pid.to_string());
    let (Some(status), Some(statm)) = (
        read_process_file(&dir.join("status"))?,
        read_process_file(&dir.join("statm"))?,
    ) else {
        return Ok(None);
    };
    let cmdline = match fs::read(dir.join("cmdline")) {
        Ok(bytes) => join_cmdline(&bytes),
        Err(_) => String::new(),
    };
    let uid = parse_status_uid(&status).ok_or_else(|| TopError::Parse {
        path: dir.join("status"),
        reason: "no Uid line".to_string(),
    })?;
    let resident: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .unwrap_or(0);
    Ok(Some(Details {
        uid,
        rss_bytes: resident.saturating_mul(page_size),
        cmdline,
    }))
}

/// A /proc file of a process; `None` when the process is gone (ENOENT, ESRCH).
fn read_process_file(path: &Path) -> Result<Option<String>, TopError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(err)
            if err.kind() == io::ErrorKind::NotFound
                || err.raw_os_error() == Some(nix::errno::Errno::ESRCH as i32) =>
        {
            Ok(None)
        }
        Err(source) => Err(TopError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The effective UID of `/proc/<pid>/status` (`Uid: real effective saved fs`).
pub fn parse_status_uid(status: &str) -> Option<u32> {
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// NUL-separated arguments joined by spaces (lossy UTF-8).
pub fn join_cmdline(bytes: &[u8]) -> String {
    bytes
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(String::from_utf8_lossy)
        .collect::<Vec<_>>()
        .join(" ")
}

/// UID → name from a passwd file.
#[derive(Debug, Default)]
pub struct Users {
    names: HashMap<u32, String>,
}

impl Users {
    /// A missing file gives numbers only.
    pub fn load(path: &Path) -> Result<Users, TopError> {
        match fs::read_to_string(path) {
            Ok(text) => Ok(Users::parse(&text)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Users::default()),
            Err(source) => Err(TopError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// `name:x:uid:gid:...` lines; the first name of a UID wins, as getpwuid does.
    pub fn parse(text: &str) -> Users {
        let mut names = HashMap::new();
        for line in text.lines() {
            let mut fields = line.split(':');
            let (Some(name), Some(_), Some(uid)) = (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            if let Ok(uid) = uid.parse() {
                names.entry(uid).or_insert_with(|| name.to_string());
            }
        }
        Users { names }
    }

    /// The name, or the number when unknown.
    pub fn name(&self, uid: u32) -> String {
        self.names
            .get(&uid)
            .cloned()
            .unwrap_or_else(|| uid.to_string())
    }
}

/// Boot time and uptime.
struct System {
    boot_time: i64,
    uptime_secs: f64,
}

impl System {
    fn read(root: &Path) -> Result<System, TopError> {
        let read = |name: &str| {
            let path = root.join(name);
            fs::read_to_string(&path).map_err(|source| TopError::Read { path, source })
        };
        let bad = |name: &str, reason: &str| TopError::Parse {
            path: root.join(name),
            reason: reason.to_string(),
        };
        let stat = read("stat")?;
        let boot_time = stat
            .lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| bad("stat", "no btime line"))?;
        let uptime_secs = read("uptime")?
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad("uptime", "expected seconds"))?;
        Ok(System {
            boot_time,
            uptime_secs,
        })
    }
}

/// ps's TIME: `HH:MM:SS`, with `D-` in front past a day.
pub fn cpu_time(secs: u64) -> String {
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let hms = format!(
        "{:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    );
    if days > 0 {
        format!("{days}-{hms}")
    } else {
        hms
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// ps's STIME: `HH:MM` when started today, `MonDD` this year, else the year; in `offset`.
pub fn stime(start: OffsetDateTime, now: OffsetDateTime, offset: UtcOffset) -> String {
    let (start, now) = (start.to_offset(offset), now.to_offset(offset));
    if start.year() != now.year() {
        start.year().to_string()
    } else if start.ordinal() != now.ordinal() {
        let month = MONTHS
            .get(usize::from(u8::from(start.month())) - 1)
            .copied()
            .unwrap_or("???");
        format!("{month}{:02}", start.day())
    } else {
        format!("{:02}:{:02}", start.hour(), start.minute())
    }
}

/// The terminal of `tty_nr` (stat field 7) as ps names the common ones; `?` for none or an
/// unknown device.
pub fn tty_name(tty_nr: u32) -> String {
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    match major {
        0 => "?".to_string(),
        136..=143 => format!("pts/{}", (major - 136) * 256 + minor),
        4 if minor < 64 => format!("tty{minor}"),
        4 => format!("ttyS{}", minor - 64),
        _ => "?".to_string(),
    }
}

#[cfg(test)]
mod tests;
