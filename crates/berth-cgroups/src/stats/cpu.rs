//! CPU usage (v1 cpuacct, or cgroup2 cpu.stat) and CFS throttling (cpu.stat).

use super::source::{key, open_in, Buf, Source};
use super::CpuStats;
use crate::cgroup::{Cgroup, ControllerDir};
use crate::error::Error;

/// USER_HZ on Linux: cpuacct.stat counts in 1/100 s.
const NS_PER_USER_HZ_TICK: u64 = 10_000_000;
const NS_PER_US: u64 = 1000;

/// Where the usage comes from.
#[derive(Debug)]
enum Usage {
    None,
    /// v1 cpuacct: per-cpu totals, and per-cpu user/system (`usage_all`) or, on kernels
    /// without it, the `cpuacct.stat` ticks.
    V1 {
        percpu: Option<Source>,
        all: Option<Source>,
        ticks: Option<Source>,
    },
    /// cgroup2 `cpu.stat` (also in hybrid mode when cpuacct is not a v1 controller).
    V2(Source),
}

/// Where the throttling counters come from.
#[derive(Debug)]
enum Throttle {
    None,
    /// v1 `cpu.stat`, `throttled_time` in ns.
    V1(Source),
    /// cgroup2 `cpu.stat`, `throttled_usec`.
    V2(Source),
    /// The cgroup2 `cpu.stat` that [`Usage::V2`] reads already.
    InUsage,
}

#[derive(Debug)]
pub(super) struct CpuFiles {
    usage: Usage,
    throttle: Throttle,
}

impl CpuFiles {
    pub fn open(cgroup: &Cgroup) -> Result<CpuFiles, Error> {
        let usage = match cgroup.controller("cpuacct") {
            Some(ControllerDir::V1(dir)) => {
                let all = Source::open(dir, "cpuacct.usage_all")?;
                let ticks = match all {
                    Some(_) => None,
                    None => Source::open(dir, "cpuacct.stat")?,
                };
                Usage::V1 {
                    percpu: Source::open(dir, "cpuacct.usage_percpu")?,
                    all,
                    ticks,
                }
            }
            _ => match open_in(cgroup.any_unified_dir(), "cpu.stat")? {
                Some(source) => Usage::V2(source),
                None => Usage::None,
            },
        };
        let throttle = match cgroup.controller("cpu") {
            Some(ControllerDir::V1(dir)) => {
                Source::open(dir, "cpu.stat")?.map_or(Throttle::None, Throttle::V1)
            }
            Some(ControllerDir::V2(dir)) => match &usage {
                Usage::V2(source) if source.path().parent() == Some(dir) => Throttle::InUsage,
                _ => Source::open(dir, "cpu.stat")?.map_or(Throttle::None, Throttle::V2),
            },
            None => Throttle::None,
        };
        Ok(CpuFiles { usage, throttle })
    }

    pub fn read(&self, buf: &mut Buf, cpu: &mut CpuStats) -> Result<(), Error> {
        match &self.usage {
            Usage::None => {}
            Usage::V1 { percpu, all, ticks } => {
                if let Some(source) = percpu {
                    cpu.per_cpu_ns = numbers(source.read(buf)?);
                    cpu.usage_total_ns = cpu.per_cpu_ns.iter().sum();
                }
                if let Some(source) = all {
                    usage_all(source.read(buf)?, cpu);
                } else if let Some(source) = ticks {
                    let text = source.read(buf)?;
                    cpu.usage_user_ns = key(text, "user") * NS_PER_USER_HZ_TICK;
                    cpu.usage_system_ns = key(text, "system") * NS_PER_USER_HZ_TICK;
                }
            }
            Usage::V2(source) => {
                let text = source.read(buf)?;
                cpu.usage_total_ns = key(text, "usage_usec") * NS_PER_US;
                cpu.usage_user_ns = key(text, "user_usec") * NS_PER_US;
                cpu.usage_system_ns = key(text, "system_usec") * NS_PER_US;
                if matches!(self.throttle, Throttle::InUsage) {
                    throttling(text, "throttled_usec", NS_PER_US, cpu);
                }
            }
        }
        match &self.throttle {
            Throttle::V1(source) => throttling(source.read(buf)?, "throttled_time", 1, cpu),
            Throttle::V2(source) => throttling(source.read(buf)?, "throttled_usec", NS_PER_US, cpu),
            Throttle::None | Throttle::InUsage => {}
        }
        Ok(())
    }
}

fn throttling(text: &str, time_key: &str, to_ns: u64, cpu: &mut CpuStats) {
    cpu.periods = key(text, "nr_periods");
    cpu.throttled_periods = key(text, "nr_throttled");
    cpu.throttled_time_ns = key(text, time_key) * to_ns;
}

/// `cpuacct.usage_all`: a header, then `cpu user system` per possible CPU (ns).
fn usage_all(text: &str, cpu: &mut CpuStats) {
    cpu.per_cpu_user_ns.clear();
    cpu.per_cpu_system_ns.clear();
    for line in text.lines().skip(1) {
        let mut fields = line.split_whitespace().skip(1).map(str::parse::<u64>);
        if let (Some(Ok(user)), Some(Ok(system))) = (fields.next(), fields.next()) {
            cpu.per_cpu_user_ns.push(user);
            cpu.per_cpu_system_ns.push(system);
        }
    }
    cpu.usage_user_ns = cpu.per_cpu_user_ns.iter().sum();
    cpu.usage_system_ns = cpu.per_cpu_system_ns.iter().sum();
}

/// Whitespace-separated numbers (`cpuacct.usage_percpu`).
fn numbers(text: &str) -> Vec<u64> {
    text.split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect()
}
