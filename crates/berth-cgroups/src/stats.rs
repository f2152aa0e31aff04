//! Usage statistics: cpu, memory, pids (formulas in the README). Missing controllers read as 0.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::cgroup::{Cgroup, ControllerDir};
use crate::error::Error;
use crate::fsutil;
use crate::layout::Mode;

/// v1 shows "unlimited" as the largest page-aligned i64.
const V1_UNLIMITED: u64 = 0x7FFF_FFFF_FFFF_F000;
/// USER_HZ on Linux: cpuacct.stat counts in 1/100 s.
const NS_PER_USER_HZ_TICK: u64 = 10_000_000;

/// A snapshot of the cgroup's usage.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub pids: PidsStats,
}

/// CPU time in nanoseconds and CFS throttling.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CpuStats {
    pub usage_total_ns: u64,
    pub usage_user_ns: u64,
    pub usage_system_ns: u64,
    /// v1 only (cpuacct.usage_percpu); empty on v2.
    pub per_cpu_ns: Vec<u64>,
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_time_ns: u64,
}

/// Memory in bytes. `None` limits are unlimited.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MemoryStats {
    pub usage: u64,
    pub limit: Option<u64>,
    pub max_usage: u64,
    pub failcnt: u64,
    pub cache: u64,
    pub rss: u64,
    pub swap_usage: u64,
    pub swap_limit: Option<u64>,
    /// memory.stat as read.
    pub stat: BTreeMap<String, u64>,
}

/// Number of tasks.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PidsStats {
    pub current: u64,
    pub limit: Option<u64>,
}

impl Cgroup {
    /// Reads cpu, memory and pids statistics.
    pub fn stats(&self) -> Result<Stats, Error> {
        let mut stats = Stats::default();
        match self.controller("cpuacct") {
            Some(ControllerDir::V1(dir)) => cpu_usage_v1(dir, &mut stats.cpu)?,
            _ => {
                if let (Mode::V2, Some(dir)) = (self.mode, self.any_unified_dir()) {
                    cpu_usage_v2(dir, &mut stats.cpu)?;
                }
            }
        }
        match self.controller("cpu") {
            Some(ControllerDir::V1(dir)) => throttling(dir, &mut stats.cpu, "throttled_time", 1)?,
            Some(ControllerDir::V2(dir)) => {
                throttling(dir, &mut stats.cpu, "throttled_usec", 1000)?;
            }
            None => {}
        }
        match self.controller("memory") {
            Some(ControllerDir::V1(dir)) => stats.memory = memory_v1(dir)?,
            Some(ControllerDir::V2(dir)) => stats.memory = memory_v2(dir)?,
            None => {}
        }
        if let Some(ControllerDir::V1(dir) | ControllerDir::V2(dir)) = self.controller("pids") {
            stats.pids = PidsStats {
                current: fsutil::read_u64_or_zero(&dir.join("pids.current"))?,
                limit: fsutil::read_limit(&dir.join("pids.max"))?,
            };
        }
        Ok(stats)
    }
}

fn cpu_usage_v1(dir: &Path, cpu: &mut CpuStats) -> Result<(), Error> {
    cpu.usage_total_ns = fsutil::read_u64_or_zero(&dir.join("cpuacct.usage"))?;
    let user = dir.join("cpuacct.usage_user");
    if user.exists() {
        cpu.usage_user_ns = fsutil::read_u64_or_zero(&user)?;
        cpu.usage_system_ns = fsutil::read_u64_or_zero(&dir.join("cpuacct.usage_sys"))?;
    } else if let Some(text) = fsutil::read_optional(&dir.join("cpuacct.stat"))? {
        let ticks = fsutil::parse_flat_keyed(&text);
        cpu.usage_user_ns = ticks.get("user").copied().unwrap_or(0) * NS_PER_USER_HZ_TICK;
        cpu.usage_system_ns = ticks.get("system").copied().unwrap_or(0) * NS_PER_USER_HZ_TICK;
    }
    if let Some(text) = fsutil::read_optional(&dir.join("cpuacct.usage_percpu"))? {
        cpu.per_cpu_ns = text
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
    }
    Ok(())
}

fn cpu_usage_v2(dir: &Path, cpu: &mut CpuStats) -> Result<(), Error> {
    let Some(text) = fsutil::read_optional(&dir.join("cpu.stat"))? else {
        return Ok(());
    };
    let stat = fsutil::parse_flat_keyed(&text);
    let usec = |key: &str| stat.get(key).copied().unwrap_or(0) * 1000;
    cpu.usage_total_ns = usec("usage_usec");
    cpu.usage_user_ns = usec("user_usec");
    cpu.usage_system_ns = usec("system_usec");
    Ok(())
}

fn throttling(dir: &Path, cpu: &mut CpuStats, time_key: &str, to_ns: u64) -> Result<(), Error> {
    let Some(text) = fsutil::read_optional(&dir.join("cpu.stat"))? else {
        return Ok(());
    };
    let stat = fsutil::parse_flat_keyed(&text);
    cpu.periods = stat.get("nr_periods").copied().unwrap_or(0);
    cpu.throttled_periods = stat.get("nr_throttled").copied().unwrap_or(0);
    cpu.throttled_time_ns = stat.get(time_key).copied().unwrap_or(0) * to_ns;
    Ok(())
}

fn v1_limit(value: u64) -> Option<u64> {
    (value < V1_UNLIMITED).then_some(value)
}

fn memory_v1(dir: &Path) -> Result<MemoryStats, Error> {
    let read = |file: &str| fsutil::read_u64_or_zero(&dir.join(file));
    let stat = fsutil::read_optional(&dir.join("memory.stat"))?
        .map(|text| fsutil::parse_flat_keyed(&text))
        .unwrap_or_default();
    let get = |key: &str, fallback: &str| {
        stat.get(key)
            .or_else(|| stat.get(fallback))
            .copied()
            .unwrap_or(0)
    };
    let usage = read("memory.usage_in_bytes")?;
    let has_memsw = dir.join("memory.memsw.usage_in_bytes").exists();
    let (swap_usage, swap_limit) = if has_memsw {
        let memsw = read("memory.memsw.usage_in_bytes")?;
        let limit = read("memory.memsw.limit_in_bytes")?;
        (memsw.saturating_sub(usage), v1_limit(limit))
    } else {
        (0, None)
    };
    Ok(MemoryStats {
        usage,
        limit: v1_limit(read("memory.limit_in_bytes")?),
        max_usage: read("memory.max_usage_in_bytes")?,
        failcnt: read("memory.failcnt")?,
        cache: get("total_cache", "cache"),
        rss: get("total_rss", "rss"),
        swap_usage,
        swap_limit,
        stat,
    })
}

fn memory_v2(dir: &Path) -> Result<MemoryStats, Error> {
    let stat = fsutil::read_optional(&dir.join("memory.stat"))?
        .map(|text| fsutil::parse_flat_keyed(&text))
        .unwrap_or_default();
    let events = fsutil::read_optional(&dir.join("memory.events"))?
        .map(|text| fsutil::parse_flat_keyed(&text))
        .unwrap_or_default();
    Ok(MemoryStats {
        usage: fsutil::read_u64_or_zero(&dir.join("memory.current"))?,
        limit: fsutil::read_limit(&dir.join("memory.max"))?,
        max_usage: fsutil::read_u64_or_zero(&dir.join("memory.peak"))?,
        failcnt: events.get("max").copied().unwrap_or(0),
        cache: stat.get("file").copied().unwrap_or(0),
        rss: stat.get("anon").copied().unwrap_or(0),
        swap_usage: fsutil::read_u64_or_zero(&dir.join("memory.swap.current"))?,
        swap_limit: fsutil::read_limit(&dir.join("memory.swap.max"))?,
        stat,
    })
}
