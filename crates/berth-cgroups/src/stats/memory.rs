//! Memory: v1 `memory.*` counters and `memory.stat`, or cgroup2 `memory.current`/`max`/`peak`,
//! `memory.stat`, `memory.events` and `memory.swap.*`.

use std::collections::BTreeMap;
use std::path::Path;

use super::source::{key, keyed, limit_or_none, u64_or_zero, Buf, Source};
use super::{Counter, MemoryStats};
use crate::cgroup::{Cgroup, ControllerDir};
use crate::error::Error;

/// The four files of a v1 page counter: `<prefix>.usage_in_bytes`, `.limit_in_bytes`,
/// `.max_usage_in_bytes`, `.failcnt`.
#[derive(Debug)]
struct CounterFiles {
    usage: Option<Source>,
    limit: Option<Source>,
    max_usage: Option<Source>,
    failcnt: Option<Source>,
}

impl CounterFiles {
    fn open(dir: &Path, prefix: &str) -> Result<CounterFiles, Error> {
        let open = |suffix: &str| Source::open(dir, &format!("{prefix}.{suffix}"));
        Ok(CounterFiles {
            usage: open("usage_in_bytes")?,
            limit: open("limit_in_bytes")?,
            max_usage: open("max_usage_in_bytes")?,
            failcnt: open("failcnt")?,
        })
    }

    /// `None` when the kernel has no such counter (no `usage_in_bytes`).
    fn read(&self, buf: &mut Buf) -> Result<Option<Counter>, Error> {
        if self.usage.is_none() {
            return Ok(None);
        }
        Ok(Some(Counter {
            usage: u64_or_zero(&self.usage, buf)?,
            limit: limit_or_none(&self.limit, buf)?,
            max_usage: u64_or_zero(&self.max_usage, buf)?,
            failcnt: u64_or_zero(&self.failcnt, buf)?,
        }))
    }
}

#[derive(Debug)]
pub(super) struct V1Files {
    memory: CounterFiles,
    memsw: CounterFiles,
    kmem: CounterFiles,
    kmem_tcp: CounterFiles,
    stat: Option<Source>,
    oom_control: Option<Source>,
}

#[derive(Debug)]
pub(super) struct V2Files {
    current: Option<Source>,
    max: Option<Source>,
    peak: Option<Source>,
    stat: Option<Source>,
    events: Option<Source>,
    swap_current: Option<Source>,
    swap_max: Option<Source>,
}

#[derive(Debug)]
pub(super) enum MemoryFiles {
    None,
    V1(Box<V1Files>),
    V2(Box<V2Files>),
}

impl MemoryFiles {
    pub fn open(cgroup: &Cgroup) -> Result<MemoryFiles, Error> {
        Ok(match cgroup.controller("memory") {
            Some(ControllerDir::V1(dir)) => MemoryFiles::V1(Box::new(V1Files {
                memory: CounterFiles::open(dir, "memory")?,
                memsw: CounterFiles::open(dir, "memory.memsw")?,
                kmem: CounterFiles::open(dir, "memory.kmem")?,
                kmem_tcp: CounterFiles::open(dir, "memory.kmem.tcp")?,
                stat: Source::open(dir, "memory.stat")?,
                oom_control: Source::open(dir, "memory.oom_control")?,
            })),
            Some(ControllerDir::V2(dir)) => MemoryFiles::V2(Box::new(V2Files {
                current: Source::open(dir, "memory.current")?,
                max: Source::open(dir, "memory.max")?,
                peak: Source::open(dir, "memory.peak")?,
                stat: Source::open(dir, "memory.stat")?,
                events: Source::open(dir, "memory.events")?,
                swap_current: Source::open(dir, "memory.swap.current")?,
                swap_max: Source::open(dir, "memory.swap.max")?,
            })),
            None => MemoryFiles::None,
        })
    }

    pub fn read(&self, buf: &mut Buf) -> Result<MemoryStats, Error> {
        match self {
            MemoryFiles::None => Ok(MemoryStats::default()),
            MemoryFiles::V1(files) => read_v1(files, buf),
            MemoryFiles::V2(files) => read_v2(files, buf),
        }
    }
}

fn read_stat(source: &Option<Source>, buf: &mut Buf) -> Result<BTreeMap<String, u64>, Error> {
    let Some(source) = source else {
        return Ok(BTreeMap::new());
    };
    let text = source.read(buf)?;
    Ok(keyed(text).map(|(k, v)| (k.to_string(), v)).collect())
}

fn read_v1(files: &V1Files, buf: &mut Buf) -> Result<MemoryStats, Error> {
    let memory = files.memory.read(buf)?.unwrap_or_default();
    let memsw = files.memsw.read(buf)?;
    let stat = read_stat(&files.stat, buf)?;
    // With use_hierarchy (always on since 6.x) the total_* keys include the children.
    let get = |total: &str, local: &str| {
        stat.get(total)
            .or_else(|| stat.get(local))
            .copied()
            .unwrap_or(0)
    };
    let inactive_file = get("total_inactive_file", "inactive_file");
    Ok(MemoryStats {
        usage: memory.usage,
        limit: memory.limit,
        max_usage: memory.max_usage,
        failcnt: memory.failcnt,
        working_set: memory.usage.saturating_sub(inactive_file),
        rss: get("total_rss", "rss"),
        active_anon: get("total_active_anon", "active_anon"),
        inactive_anon: get("total_inactive_anon", "inactive_anon"),
        cache: get("total_cache", "cache"),
        active_file: get("total_active_file", "active_file"),
        inactive_file,
        shmem: get("total_shmem", "shmem"),
        kernel: files.kmem.read(buf)?,
        kernel_tcp: files.kmem_tcp.read(buf)?,
        swap_usage: memsw.map_or(0, |c| c.usage.saturating_sub(memory.usage)),
        swap_limit: memsw.and_then(|c| swap_only_limit(c.limit, memory.limit)),
        memsw,
        // v1 counts OOM situations nowhere it shows; oom_kill is in memory.oom_control.
        oom: 0,
        oom_kill: match &files.oom_control {
            Some(source) => key(source.read(buf)?, "oom_kill"),
            None => 0,
        },
        stat,
    })
}

/// v1 limits memory+swap; the swap-only limit is the difference (unlimited if either is).
fn swap_only_limit(memsw: Option<u64>, memory: Option<u64>) -> Option<u64> {
    Some(memsw?.saturating_sub(memory?))
}

fn read_v2(files: &V2Files, buf: &mut Buf) -> Result<MemoryStats, Error> {
    let usage = u64_or_zero(&files.current, buf)?;
    let limit = limit_or_none(&files.max, buf)?;
    let swap_usage = u64_or_zero(&files.swap_current, buf)?;
    let swap_limit = limit_or_none(&files.swap_max, buf)?;
    // Without swap accounting there is no swap.max: nothing to add to the memory limit.
    let swap_for_sum = if files.swap_max.is_some() {
        swap_limit
    } else {
        Some(0)
    };
    let (failcnt, oom, oom_kill) = match &files.events {
        Some(source) => {
            let text = source.read(buf)?;
            (key(text, "max"), key(text, "oom"), key(text, "oom_kill"))
        }
        None => (0, 0, 0),
    };
    let stat = read_stat(&files.stat, buf)?;
    let get = |name: &str| stat.get(name).copied().unwrap_or(0);
    let inactive_file = get("inactive_file");
    Ok(MemoryStats {
        usage,
        limit,
        max_usage: u64_or_zero(&files.peak, buf)?,
        failcnt,
        working_set: usage.saturating_sub(inactive_file),
        rss: get("anon"),
        active_anon: get("active_anon"),
        inactive_anon: get("inactive_anon"),
        cache: get("file"),
        active_file: get("active_file"),
        inactive_file,
        shmem: get("shmem"),
        kernel: files.stat.as_ref().map(|_| Counter {
            usage: v2_kernel(&stat),
            ..Counter::default()
        }),
        kernel_tcp: files.stat.as_ref().map(|_| Counter {
            usage: get("sock"),
            ..Counter::default()
        }),
        swap_usage,
        swap_limit,
        // As runc reports v2 for v1 compatibility: memory plus swap, limits added.
        memsw: Some(Counter {
            usage: usage + swap_usage,
            limit: limit.zip(swap_for_sum).map(|(m, s)| m.saturating_add(s)),
            max_usage: 0,
            failcnt: 0,
        }),
        oom,
        oom_kill,
        stat,
    })
}

/// `kernel` of memory.stat (5.18+), else the sum of the parts it stands for.
fn v2_kernel(stat: &BTreeMap<String, u64>) -> u64 {
    if let Some(kernel) = stat.get("kernel") {
        return *kernel;
    }
    ["kernel_stack", "pagetables", "percpu", "vmalloc", "slab"]
        .iter()
        .filter_map(|k| stat.get(*k))
        .sum()
}
