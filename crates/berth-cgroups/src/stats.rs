//! Usage statistics, one struct for v1, v2 and hybrid hosts. Every field's source file and
//! formula, per version, is in `docs/cgroup-stats.md`.
//!
//! [`StatsReader`] opens a cgroup's stats files once and re-reads them with `pread` into one
//! buffer, so a repeated read costs no `open`/`close`; [`Cgroup::stats`] is a one-off read.
//! A missing controller or file reads as 0 (or empty, or `None` for limits and pressure).

mod cpu;
mod cpuset;
mod hugetlb;
mod io;
mod memory;
mod pids;
mod psi;
mod source;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::cgroup::{Cgroup, ControllerDir};
use crate::error::Error;

pub use source::V1_UNLIMITED;

/// A snapshot of the cgroup's usage.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    pub cpu: CpuStats,
    pub cpuset: CpusetStats,
    pub memory: MemoryStats,
    pub pids: PidsStats,
    /// Per block device, in the kernel's order.
    pub io: Vec<DeviceIo>,
    /// Per huge page size, keyed as the kernel names it ("2MB", "1GB").
    pub hugetlb: BTreeMap<String, HugetlbStats>,
    pub pressure: PressureStats,
}

/// CPU time in nanoseconds and CFS throttling.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CpuStats {
    pub usage_total_ns: u64,
    pub usage_user_ns: u64,
    pub usage_system_ns: u64,
    /// Per possible CPU; v1 only (cgroup2 has no per-CPU usage).
    pub per_cpu_ns: Vec<u64>,
    /// Per possible CPU; v1 with `cpuacct.usage_all` only.
    pub per_cpu_user_ns: Vec<u64>,
    /// Per possible CPU; v1 with `cpuacct.usage_all` only.
    pub per_cpu_system_ns: Vec<u64>,
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_time_ns: u64,
}

/// The CPUs and memory nodes the cgroup's tasks may use (effective lists).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CpusetStats {
    pub cpus: Vec<u16>,
    pub mems: Vec<u16>,
}

/// The v1 cpuset files of the same names ([`Cgroup::cpuset_flags`]); settings rather than
/// usage, so not part of [`Stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CpusetFlags {
    pub cpu_exclusive: u64,
    pub mem_hardwall: u64,
    pub mem_exclusive: u64,
    pub memory_migrate: u64,
    pub memory_spread_page: u64,
    pub memory_spread_slab: u64,
    pub memory_pressure: u64,
    pub sched_load_balance: u64,
    pub sched_relax_domain_level: i64,
}

/// A v1-style page counter: usage, limit (`None`: unlimited), high-water mark, failures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counter {
    pub usage: u64,
    pub limit: Option<u64>,
    pub max_usage: u64,
    pub failcnt: u64,
}

/// Memory in bytes. `None` limits are unlimited.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MemoryStats {
    pub usage: u64,
    pub limit: Option<u64>,
    pub max_usage: u64,
    pub failcnt: u64,
    /// usage − inactive file pages (cAdvisor's and docker's working set).
    pub working_set: u64,
    /// Anonymous memory (v1 rss, v2 anon).
    pub rss: u64,
    pub active_anon: u64,
    pub inactive_anon: u64,
    /// Page cache (v1 cache, v2 file); includes shmem.
    pub cache: u64,
    pub active_file: u64,
    pub inactive_file: u64,
    pub shmem: u64,
    /// Kernel memory (v1 memory.kmem.*; v2 usage only); `None` where not accounted.
    pub kernel: Option<Counter>,
    /// Kernel TCP buffers (v1 memory.kmem.tcp.*; v2 usage of socket buffers only).
    pub kernel_tcp: Option<Counter>,
    /// Swap alone.
    pub swap_usage: u64,
    /// Swap alone; v1 derives it from the memory+swap limit.
    pub swap_limit: Option<u64>,
    /// Memory plus swap, as v1 counts it (v2: the sums runc reports); `None` on v1 without
    /// swap accounting.
    pub memsw: Option<Counter>,
    /// OOM situations (v2 only: v1 does not show the count).
    pub oom: u64,
    /// Processes killed by the OOM killer.
    pub oom_kill: u64,
    /// memory.stat as read.
    pub stat: BTreeMap<String, u64>,
}

/// Number of tasks.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PidsStats {
    pub current: u64,
    pub limit: Option<u64>,
}

/// One block device's I/O since the cgroup was created.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DeviceIo {
    pub major: u64,
    pub minor: u64,
    pub bytes: IoCounts,
    /// Operations (requests).
    pub ios: IoCounts,
}

/// Counts by operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IoCounts {
    pub read: u64,
    pub write: u64,
    pub discard: u64,
    /// v1 only.
    pub sync: Option<u64>,
    /// v1 only.
    #[serde(rename = "async")]
    pub async_: Option<u64>,
}

/// Huge pages of one size, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HugetlbStats {
    pub usage: u64,
    /// v1 only (cgroup2 keeps no high-water mark).
    pub max_usage: u64,
    /// Allocations that failed because of the limit.
    pub failcnt: u64,
}

/// Pressure stall information; `None` where the kernel has none (no cgroup2 directory,
/// CONFIG_PSI off, `psi=0`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PressureStats {
    pub cpu: Option<Pressure>,
    pub memory: Option<Pressure>,
    pub io: Option<Pressure>,
}

/// The `some` and `full` lines of a `*.pressure` file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Pressure {
    pub some: PsiData,
    pub full: PsiData,
}

/// Stall averages in percent over 10, 60 and 300 s, and the total stall time in µs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct PsiData {
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: f64,
    pub total: u64,
}

/// A cgroup's stats files, open; [`StatsReader::read`] reads them all again.
#[derive(Debug)]
pub struct StatsReader {
    cpu: cpu::CpuFiles,
    cpuset: cpuset::CpusetFiles,
    memory: memory::MemoryFiles,
    pids: pids::PidsFiles,
    io: io::IoFiles,
    hugetlb: hugetlb::HugetlbFiles,
    psi: psi::PsiFiles,
    buf: source::Buf,
}

impl StatsReader {
    /// Opens the files every mounted controller has for this cgroup. Files the kernel does not
    /// offer are left out, and read as 0.
    pub fn open(cgroup: &Cgroup) -> Result<StatsReader, Error> {
        Ok(StatsReader {
            cpu: cpu::CpuFiles::open(cgroup)?,
            cpuset: cpuset::CpusetFiles::open(cgroup)?,
            memory: memory::MemoryFiles::open(cgroup)?,
            pids: pids::PidsFiles::open(cgroup)?,
            io: io::IoFiles::open(cgroup)?,
            hugetlb: hugetlb::HugetlbFiles::open(cgroup)?,
            psi: psi::PsiFiles::open(cgroup)?,
            buf: source::Buf::default(),
        })
    }

    /// A fresh snapshot. A file of a removed cgroup fails to read (ENODEV).
    pub fn read(&mut self) -> Result<Stats, Error> {
        let buf = &mut self.buf;
        let mut stats = Stats::default();
        self.cpu.read(buf, &mut stats.cpu)?;
        stats.cpuset = self.cpuset.read(buf)?;
        stats.memory = self.memory.read(buf)?;
        stats.pids = self.pids.read(buf)?;
        stats.io = self.io.read(buf)?;
        stats.hugetlb = self.hugetlb.read(buf)?;
        stats.pressure = self.psi.read(buf)?;
        Ok(stats)
    }
}

impl Cgroup {
    /// Reads every statistic once ([`StatsReader`] for repeated reads).
    pub fn stats(&self) -> Result<Stats, Error> {
        StatsReader::open(self)?.read()
    }

    /// v1's cpuset flags (runc's `events` shows them); `None` where cpuset is not v1. Nine
    /// files, read once each.
    pub fn cpuset_flags(&self) -> Result<Option<CpusetFlags>, Error> {
        cpuset::flags(self)
    }

    /// Whether `controller` is served by the cgroup2 hierarchy (`None`: not mounted). Tells
    /// v1 from v2 semantics per controller on hybrid hosts.
    pub fn is_unified(&self, controller: &str) -> Option<bool> {
        match self.controller(controller)? {
            ControllerDir::V1(_) => Some(false),
            ControllerDir::V2(_) => Some(true),
        }
    }
}
