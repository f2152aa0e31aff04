//! `docker stats`-like figures for many containers in one sampling pass.
//!
//! A [`Sampler`] keeps one [`StatsReader`] per container (its cgroup files stay open) and the
//! previous snapshot of each; every [`Sampler::sample`] reads all containers once and computes
//! rates against the previous pass. The first pass only primes (rates are `None`);
//! [`Sampler::sample_pair`] takes two passes `interval` apart for all containers at once.
//! Every formula, for cgroup v1, v2 and hybrid hosts, is in `docs/stats.md`.
//!
//! [`StatsDisplay`] gives docker's strings (`{{.CPUPerc}}`, `{{.MemUsage}}`, ...) with docker's
//! field names, for Go-template formatting and `--format json`.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use berth_cgroups::{Cgroup, Layout, Stats, StatsReader};
use serde::Serialize;

/// What can go wrong while sampling.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// Resolving a container's cgroups path failed.
    #[error("container {id}: cgroups path {path:?}: {source}")]
    OpenCgroup {
        id: String,
        path: String,
        source: berth_cgroups::Error,
    },
    /// Opening or reading a container's cgroup statistics failed (a removed cgroup reads as
    /// ENODEV: the container stopped).
    #[error("container {id}: cgroup stats: {source}")]
    Cgroup {
        id: String,
        source: berth_cgroups::Error,
    },
    /// Reading a host, cgroup or /proc file failed.
    #[error("read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    /// A file did not have the expected shape.
    #[error("parse {}: {reason}", path.display())]
    Parse { path: PathBuf, reason: String },
    /// sysconf(3) failed.
    #[error("sysconf {name}: {source}")]
    Sysconf {
        name: &'static str,
        source: nix::Error,
    },
}

/// One container to sample.
#[derive(Debug, Clone)]
pub struct Target {
    /// Full container ID; rows are keyed by it across passes.
    pub id: String,
    /// Container name (a leading `/` is dropped for display).
    pub name: String,
    pub cgroup: Cgroup,
    /// The container's init pid on the host, for its network namespace (`None`: no net IO).
    pub pid: Option<i32>,
}

impl Target {
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        cgroup: Cgroup,
        pid: Option<i32>,
    ) -> Target {
        Target {
            id: id.into(),
            name: name.into(),
            cgroup,
            pid,
        }
    }

    /// Resolves the container's OCI `cgroupsPath` with [`Cgroup::open`].
    pub fn from_path(
        layout: &Layout,
        cgroups_path: &str,
        id: impl Into<String>,
        name: impl Into<String>,
        pid: Option<i32>,
    ) -> Result<Target, StatsError> {
        let id = id.into();
        let cgroup =
            Cgroup::open(layout, cgroups_path, &id).map_err(|source| StatsError::OpenCgroup {
                id: id.clone(),
                path: cgroups_path.to_string(),
                source,
            })?;
        Ok(Target::new(id, name, cgroup, pid))
    }
}

/// The host figures that stand in for "no limit".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Host {
    /// Online CPUs.
    pub cpus: u32,
    /// `MemTotal` of /proc/meminfo, bytes.
    pub mem_total: u64,
}

impl Host {
    /// Online CPUs from sysconf, memory from /proc/meminfo.
    pub fn detect() -> Result<Host, StatsError> {
        let cpus = nix::unistd::sysconf(nix::unistd::SysconfVar::_NPROCESSORS_ONLN)
            .map_err(|source| StatsError::Sysconf {
                name: "_SC_NPROCESSORS_ONLN",
                source,
            })?
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(1)
            .max(1);
        let path = Path::new("/proc/meminfo");
        let text = read(path)?;
        let mem_total = parse_meminfo_total(&text).ok_or_else(|| StatsError::Parse {
            path: path.to_path_buf(),
            reason: "no MemTotal line".to_string(),
        })?;
        Ok(Host { cpus, mem_total })
    }
}

/// `MemTotal:  24521234 kB` in bytes.
pub fn parse_meminfo_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

/// Where a container's CPU limit comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CpuLimitSource {
    /// CFS quota / period (v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`, v2 `cpu.max`).
    Quota,
    /// The number of CPUs in the effective cpuset.
    Cpuset,
    /// No limit: the host's online CPUs.
    Host,
}

/// A CFS bandwidth limit, microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CpuQuota {
    pub quota_us: u64,
    pub period_us: u64,
}

/// CPU figures of one row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CpuRow {
    /// Total CPU time since the cgroup was created, ns.
    pub usage_ns: u64,
    /// Δusage / Δwall × 100: docker's "CPU %", 100 = one core busy. `None` on a priming pass.
    pub percent: Option<f64>,
    /// The CPUs the container may use: min(quota / period, cpuset size, host CPUs).
    pub limit_cpus: f64,
    pub limit_source: CpuLimitSource,
    pub quota: Option<CpuQuota>,
    /// Δusage / (Δwall × limit_cpus) × 100: 100 = the container uses all it may.
    pub percent_of_limit: Option<f64>,
    /// CFS periods, periods throttled, and time throttled (ns), since creation.
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_time_ns: u64,
    /// The same over the interval.
    pub periods_delta: Option<u64>,
    pub throttled_periods_delta: Option<u64>,
    pub throttled_time_delta_ns: Option<u64>,
}

/// Memory figures of one row, bytes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryRow {
    /// usage − inactive_file: what docker shows as "MEM USAGE".
    pub working_set: u64,
    /// v1 `memory.usage_in_bytes`, v2 `memory.current` (includes all page cache).
    pub usage: u64,
    /// Anonymous memory (v1 `total_rss`, v2 `anon`).
    pub anon: u64,
    /// Page cache (v1 `total_cache`, v2 `file`), shmem included.
    pub file: u64,
    pub inactive_file: u64,
    pub shmem: u64,
    pub swap: u64,
    /// The cgroup's limit, or the host's RAM when there is none or it is larger.
    pub limit: u64,
    /// True when `limit` is the host's RAM.
    pub limit_is_host: bool,
    /// working_set / limit × 100.
    pub percent: f64,
}

/// Bytes through the container's network interfaces (all but `lo`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NetIo {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// Bytes read and written on block devices, summed over devices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BlockIo {
    pub read_bytes: u64,
    pub write_bytes: u64,
}

/// Why a row has no network figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoNet {
    /// No pid was given.
    NoPid,
    /// The pid shares the engine's network namespace (`--network host`): docker shows 0B.
    HostNetwork,
    /// /proc/<pid>/net/dev could not be read (the process exited).
    Unreadable,
}

/// One container's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatsRow {
    pub id: String,
    pub name: String,
    /// Wall time since the previous pass, ns; `None` on a priming pass.
    pub interval_ns: Option<u64>,
    pub cpu: CpuRow,
    pub memory: MemoryRow,
    /// `Err` says why there are no figures; both display as docker's `0B / 0B`.
    #[serde(serialize_with = "serialize_net")]
    pub net: Result<NetIo, NoNet>,
    pub block_io: BlockIo,
    /// `pids.current`: tasks (threads) in the cgroup.
    pub pids: u64,
    pub pids_limit: Option<u64>,
}

fn serialize_net<S: serde::Serializer>(
    net: &Result<NetIo, NoNet>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match net {
        Ok(net) => serializer.serialize_some(net),
        Err(_) => serializer.serialize_none(),
    }
}

/// One container's raw readings at one moment.
#[derive(Debug, Clone)]
struct Snapshot {
    at: Instant,
    stats: Stats,
    quota: Option<CpuQuota>,
    net: Result<NetIo, NoNet>,
}

#[derive(Debug)]
struct Entry {
    /// `None` for a container without a cgroup (read from /proc instead).
    reader: Option<StatsReader>,
    last: Option<Snapshot>,
}

/// Samples many containers in one pass; keeps what the next pass needs.
#[derive(Debug)]
pub struct Sampler {
    host: Host,
    proc_root: PathBuf,
    entries: HashMap<String, Entry>,
}

impl Sampler {
    /// A sampler for this host ([`Host::detect`]), reading /proc.
    pub fn new() -> Result<Sampler, StatsError> {
        Ok(Sampler::with_host(Host::detect()?, "/proc"))
    }

    /// A sampler with given host figures and /proc root (tests use a fake /proc).
    pub fn with_host(host: Host, proc_root: impl Into<PathBuf>) -> Sampler {
        Sampler {
            host,
            proc_root: proc_root.into(),
            entries: HashMap::new(),
        }
    }

    pub fn host(&self) -> Host {
        self.host
    }

    /// Reads every target once. Rates are computed against the previous pass of the same
    /// container ID (`None` on its first pass). Results are in `targets` order; one container
    /// failing (it stopped) does not fail the others. Containers not in `targets` are
    /// forgotten.
    pub fn sample(&mut self, targets: &[Target]) -> Vec<Result<StatsRow, StatsError>> {
        self.entries
            .retain(|id, _| targets.iter().any(|t| &t.id == id));
        targets.iter().map(|t| self.sample_one(t)).collect()
    }

    /// Two passes over all targets, `interval` apart: every row has its rates.
    pub fn sample_pair(
        &mut self,
        targets: &[Target],
        interval: Duration,
    ) -> Vec<Result<StatsRow, StatsError>> {
        let _priming = self.sample(targets);
        sleep(interval);
        self.sample(targets)
    }

    fn sample_one(&mut self, target: &Target) -> Result<StatsRow, StatsError> {
        let cgroup_err = |source| StatsError::Cgroup {
            id: target.id.clone(),
            source,
        };
        if let Some(row) = self.sample_without_cgroup(target) {
            return Ok(row);
        }
        let entry = self.entries.entry(target.id.clone()).or_insert(Entry {
            reader: None,
            last: None,
        });
        let reader = match &mut entry.reader {
            Some(reader) => reader,
            empty => {
                entry.last = None;
                empty.insert(StatsReader::open(&target.cgroup).map_err(cgroup_err)?)
            }
        };
        let stats = match reader.read() {
            Ok(stats) => stats,
            Err(source) => {
                self.entries.remove(&target.id);
                return Err(cgroup_err(source));
            }
        };
        let quota = read_cpu_quota(&target.cgroup)?;
        let net = match target.pid {
            None => Err(NoNet::NoPid),
            Some(pid) => read_net(&self.proc_root, pid),
        };
        let snapshot = Snapshot {
            at: Instant::now(),
            stats,
            quota,
            net,
        };
        let row = compute(
            &self.host,
            &target.id,
            &target.name,
            entry.last.as_ref(),
            &snapshot,
        );
        entry.last = Some(snapshot);
        Ok(row)
    }
}

impl Sampler {
    /// Rootless without a cgroup: the row from /proc ([`super::procns`]); `None` when the
    /// container has a cgroup (or no pid).
    fn sample_without_cgroup(&mut self, target: &Target) -> Option<StatsRow> {
        if !crate::rootless::is_rootless() || target.cgroup.exists() {
            return None;
        }
        let pid = target.pid?;
        let snapshot = Snapshot {
            at: Instant::now(),
            stats: super::procns::stats(&self.proc_root, pid),
            quota: None,
            net: read_net(&self.proc_root, pid),
        };
        let entry = self.entries.entry(target.id.clone()).or_insert(Entry {
            reader: None,
            last: None,
        });
        let row = compute(
            &self.host,
            &target.id,
            &target.name,
            entry.last.as_ref(),
            &snapshot,
        );
        entry.last = Some(snapshot);
        Some(row)
    }
}

/// The row for `now`, with rates against `prev` when there is one.
fn compute(host: &Host, id: &str, name: &str, prev: Option<&Snapshot>, now: &Snapshot) -> StatsRow {
    let s = &now.stats;
    let interval_ns = prev.map(|p| {
        u64::try_from(now.at.saturating_duration_since(p.at).as_nanos()).unwrap_or(u64::MAX)
    });
    let (limit_cpus, limit_source) = cpu_limit(now.quota, s.cpuset.cpus.len(), host.cpus);
    let delta = |f: fn(&Stats) -> u64| prev.map(|p| f(s).saturating_sub(f(&p.stats)));
    let usage_delta = delta(|s| s.cpu.usage_total_ns);
    let percent = match (usage_delta, interval_ns) {
        (Some(d), Some(wall)) if wall > 0 => Some(cpu_percent(d, wall)),
        _ => None,
    };
    let cpu = CpuRow {
        usage_ns: s.cpu.usage_total_ns,
        percent,
        limit_cpus,
        limit_source,
        quota: now.quota,
        percent_of_limit: percent.map(|p| p / limit_cpus),
        periods: s.cpu.periods,
        throttled_periods: s.cpu.throttled_periods,
        throttled_time_ns: s.cpu.throttled_time_ns,
        periods_delta: delta(|s| s.cpu.periods),
        throttled_periods_delta: delta(|s| s.cpu.throttled_periods),
        throttled_time_delta_ns: delta(|s| s.cpu.throttled_time_ns),
    };
    let m = &s.memory;
    let (limit, limit_is_host) = memory_limit(m.limit, host.mem_total);
    let memory = MemoryRow {
        working_set: m.working_set,
        usage: m.usage,
        anon: m.rss,
        file: m.cache,
        inactive_file: m.inactive_file,
        shmem: m.shmem,
        swap: m.swap_usage,
        limit,
        limit_is_host,
        percent: percent_of(m.working_set, limit),
    };
    let block_io = s.io.iter().fold(BlockIo::default(), |acc, d| BlockIo {
        read_bytes: acc.read_bytes.saturating_add(d.bytes.read),
        write_bytes: acc.write_bytes.saturating_add(d.bytes.write),
    });
    StatsRow {
        id: id.to_string(),
        name: name.to_string(),
        interval_ns,
        cpu,
        memory,
        net: now.net,
        block_io,
        pids: s.pids.current,
        pids_limit: s.pids.limit,
    }
}

/// Δusage / Δwall × 100 (100 = one core).
pub fn cpu_percent(usage_delta_ns: u64, wall_delta_ns: u64) -> f64 {
    if wall_delta_ns == 0 {
        return 0.0;
    }
    usage_delta_ns as f64 / wall_delta_ns as f64 * 100.0
}

/// part / whole × 100, 0 for a zero whole.
fn percent_of(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    part as f64 / whole as f64 * 100.0
}

/// The CPUs a container may use: the smallest of quota/period, the cpuset's size and the
/// host's CPUs.
pub fn cpu_limit(
    quota: Option<CpuQuota>,
    cpuset_cpus: usize,
    host_cpus: u32,
) -> (f64, CpuLimitSource) {
    let mut limit = (f64::from(host_cpus.max(1)), CpuLimitSource::Host);
    if cpuset_cpus > 0 && (cpuset_cpus as f64) < limit.0 {
        limit = (cpuset_cpus as f64, CpuLimitSource::Cpuset);
    }
    if let Some(q) = quota.filter(|q| q.period_us > 0 && q.quota_us > 0) {
        let cpus = q.quota_us as f64 / q.period_us as f64;
        if cpus < limit.0 {
            limit = (cpus, CpuLimitSource::Quota);
        }
    }
    limit
}

/// The cgroup's limit, unless none or above the host's RAM: then the host's RAM (docker does
/// the same).
pub fn memory_limit(cgroup_limit: Option<u64>, host_mem_total: u64) -> (u64, bool) {
    match cgroup_limit {
        Some(limit) if host_mem_total == 0 || limit <= host_mem_total => (limit, false),
        _ => (host_mem_total, true),
    }
}

/// v1 `cpu.cfs_quota_us` (`-1`: none) and `cpu.cfs_period_us`.
pub fn parse_v1_quota(quota: &str, period: &str) -> Option<CpuQuota> {
    let quota: i64 = quota.trim().parse().ok()?;
    let period: u64 = period.trim().parse().ok()?;
    let quota_us = u64::try_from(quota).ok()?;
    Some(CpuQuota {
        quota_us,
        period_us: period,
    })
}

/// v2 `cpu.max`: `max 100000` (none) or `50000 100000`.
pub fn parse_cpu_max(text: &str) -> Option<CpuQuota> {
    let mut fields = text.split_whitespace();
    let quota_us = fields.next()?.parse().ok()?;
    let period_us = fields.next().map_or(Some(100_000), |p| p.parse().ok())?;
    Some(CpuQuota {
        quota_us,
        period_us,
    })
}

/// The CFS quota from the cpu controller's files (berth-cgroups' `Stats` has no limits of the
/// cpu controller). Missing files: no quota.
fn read_cpu_quota(cgroup: &Cgroup) -> Result<Option<CpuQuota>, StatsError> {
    let Some(unified) = cgroup.is_unified("cpu") else {
        return Ok(None);
    };
    let wanted = if unified { "unified" } else { "cpu" };
    let Some((_, dir)) = cgroup.paths().into_iter().find(|(name, _)| name == wanted) else {
        return Ok(None);
    };
    if unified {
        Ok(read_optional(&dir.join("cpu.max"))?.and_then(|t| parse_cpu_max(&t)))
    } else {
        let quota = read_optional(&dir.join("cpu.cfs_quota_us"))?;
        let period = read_optional(&dir.join("cpu.cfs_period_us"))?;
        Ok(quota.zip(period).and_then(|(q, p)| parse_v1_quota(&q, &p)))
    }
}

/// Network bytes of `pid`'s network namespace.
fn read_net(proc_root: &Path, pid: i32) -> Result<NetIo, NoNet> {
    let ns = |who: &str| fs::read_link(proc_root.join(who).join("ns/net")).ok();
    if let (Some(own), Some(theirs)) = (ns("self"), ns(&pid.to_string())) {
        if own == theirs {
            return Err(NoNet::HostNetwork);
        }
    }
    let text = fs::read_to_string(proc_root.join(pid.to_string()).join("net/dev"))
        .map_err(|_| NoNet::Unreadable)?;
    Ok(parse_net_dev(&text))
}

/// Sums receive and transmit bytes of every interface in `/proc/<pid>/net/dev` but `lo`.
pub fn parse_net_dev(text: &str) -> NetIo {
    let mut net = NetIo::default();
    for line in text.lines().skip(2) {
        let Some((name, counters)) = line.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let fields: Vec<u64> = counters
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        if let (Some(rx), Some(tx)) = (fields.first(), fields.get(8)) {
            net.rx_bytes = net.rx_bytes.saturating_add(*rx);
            net.tx_bytes = net.tx_bytes.saturating_add(*tx);
        }
    }
    net
}

fn read(path: &Path) -> Result<String, StatsError> {
    fs::read_to_string(path).map_err(|source| StatsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn read_optional(path: &Path) -> Result<Option<String>, StatsError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StatsError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

// ---- docker's display strings ----

/// docker's `docker stats` strings, with docker's field names: the keys of
/// `--format '{{json .}}'` (alphabetical, as docker prints them) and of `{{.Field}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatsDisplay {
    #[serde(rename = "BlockIO")]
    pub block_io: String,
    #[serde(rename = "CPUPerc")]
    pub cpu_perc: String,
    #[serde(rename = "Container")]
    pub container: String,
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "MemPerc")]
    pub mem_perc: String,
    #[serde(rename = "MemUsage")]
    pub mem_usage: String,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "NetIO")]
    pub net_io: String,
    #[serde(rename = "PIDs")]
    pub pids: String,
}

/// The fields of [`StatsDisplay`] by their docker names, in docker's default table order.
pub const DISPLAY_FIELDS: [&str; 9] = [
    "Container",
    "Name",
    "ID",
    "CPUPerc",
    "MemUsage",
    "MemPerc",
    "NetIO",
    "BlockIO",
    "PIDs",
];

impl StatsDisplay {
    /// `container`: the name or ID as the user gave it (docker's `{{.Container}}`);
    /// `trunc`: a 12-character ID (docker's default; `--no-trunc` gives the full one).
    pub fn new(row: &StatsRow, container: &str, trunc: bool) -> StatsDisplay {
        let name = row.name.strip_prefix('/').unwrap_or(&row.name);
        let id = if trunc {
            row.id.chars().take(12).collect()
        } else {
            row.id.clone()
        };
        let net = row.net.unwrap_or_default();
        StatsDisplay {
            block_io: format!(
                "{} / {}",
                human_size_with_precision(row.block_io.read_bytes as f64, 3),
                human_size_with_precision(row.block_io.write_bytes as f64, 3)
            ),
            cpu_perc: row
                .cpu
                .percent
                .map_or_else(|| "--".to_string(), |p| format!("{p:.2}%")),
            container: container.to_string(),
            id,
            mem_perc: format!("{:.2}%", row.memory.percent),
            mem_usage: format!(
                "{} / {}",
                bytes_size(row.memory.working_set as f64),
                bytes_size(row.memory.limit as f64)
            ),
            name: if name.is_empty() { "--" } else { name }.to_string(),
            net_io: format!(
                "{} / {}",
                human_size_with_precision(net.rx_bytes as f64, 3),
                human_size_with_precision(net.tx_bytes as f64, 3)
            ),
            pids: row.pids.to_string(),
        }
    }

    /// The string of a docker field name (`"CPUPerc"`), for `{{.CPUPerc}}`.
    pub fn field(&self, name: &str) -> Option<&str> {
        Some(match name {
            "Container" => &self.container,
            "Name" => &self.name,
            "ID" => &self.id,
            "CPUPerc" => &self.cpu_perc,
            "MemUsage" => &self.mem_usage,
            "MemPerc" => &self.mem_perc,
            "NetIO" => &self.net_io,
            "BlockIO" => &self.block_io,
            "PIDs" => &self.pids,
            _ => return None,
        })
    }
}

const DECIMAL_UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
const BINARY_UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

/// go-units `HumanSizeWithPrecision`: powers of 1000, `%.{precision}g` (docker's net and
/// block IO use precision 3: `1.2kB`, `648B`, `12.3MB`).
pub fn human_size_with_precision(size: f64, precision: usize) -> String {
    custom_size(size, precision, 1000.0, &DECIMAL_UNITS)
}

/// go-units `BytesSize`: powers of 1024, `%.4g` (docker's memory: `1.5MiB`, `23.42GiB`).
pub fn bytes_size(size: f64) -> String {
    custom_size(size, 4, 1024.0, &BINARY_UNITS)
}

fn custom_size(mut size: f64, precision: usize, base: f64, units: &[&str]) -> String {
    let mut unit = 0;
    while size >= base && unit + 1 < units.len() {
        size /= base;
        unit += 1;
    }
    format!("{}{}", go_g(size, precision), units[unit])
}

/// Go's `%.{precision}g`: `precision` significant digits, trailing zeros dropped, exponent
/// form (`1e+03`) when the exponent is below -4 or at least `precision`.
pub fn go_g(value: f64, precision: usize) -> String {
    let precision = precision.max(1);
    if value == 0.0 || !value.is_finite() {
        return if value == 0.0 {
            "0".to_string()
        } else {
            value.to_string()
        };
    }
    let sci = format!("{:.*e}", precision - 1, value.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let sign = if value < 0.0 { "-" } else { "" };
    let exp_usize = usize::try_from(exp).ok();
    if exp < -4 || exp_usize.is_some_and(|e| e >= precision) {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { "" } else { "." };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{dot}{rest}e{esign}{:02}", exp.abs());
    }
    match exp_usize {
        Some(e) => {
            let int_len = e + 1;
            if digits.len() <= int_len {
                format!("{sign}{digits}{}", "0".repeat(int_len - digits.len()))
            } else {
                let (int, frac) = digits.split_at(int_len);
                format!("{sign}{int}.{frac}")
            }
        }
        None => {
            let zeros = usize::try_from(-exp - 1).unwrap_or(0);
            format!("{sign}0.{}{digits}", "0".repeat(zeros))
        }
    }
}

#[cfg(test)]
mod tests;
