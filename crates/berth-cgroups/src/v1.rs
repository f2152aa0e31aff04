//! cgroup v1 file names and rules: memory, cpu, cpuset, devices.

use std::path::Path;

use oci_spec::runtime::{LinuxCpu, LinuxDeviceCgroup, LinuxDeviceType, LinuxMemory};

use crate::error::Error;
use crate::fsutil::{self, Write};
use crate::resources::Step;

const MEMSW: &str = "memory.memsw.limit_in_bytes";
const LIMIT: &str = "memory.limit_in_bytes";

/// Memory on v1. OCI `swap` is memory+swap here (`memory.memsw.limit_in_bytes`); 0 means unset
/// and -1 unlimited, as in runc. When both limits change, the one that grows is written first
/// (runc's order), and on failure the other order is tried.
pub(crate) fn memory(dir: &Path, memory: &LinuxMemory, steps: &mut Vec<Step>) -> Result<(), Error> {
    let limit = memory.limit().filter(|v| *v != 0);
    let mut swap = memory.swap().filter(|v| *v != 0);
    let has_memsw = dir.join(MEMSW).exists();
    if limit == Some(-1) && swap.is_none() && has_memsw {
        swap = Some(-1);
    }
    check_limit("linux.resources.memory.limit", limit)?;
    check_limit("linux.resources.memory.swap", swap)?;
    if let (Some(l), Some(s)) = (limit, swap) {
        if l > 0 && s > 0 && s < l {
            return Err(Error::invalid(
                "linux.resources.memory.swap",
                s,
                "memory+swap limit must be >= the memory limit",
            ));
        }
    }
    if swap.is_some() && !has_memsw {
        return Err(Error::unsupported(
            "linux.resources.memory.swap",
            "swap accounting is off (no memory.memsw.limit_in_bytes)",
        ));
    }
    match (limit, swap) {
        (Some(l), Some(s)) => {
            let current = fsutil::parse_u64(&dir.join(LIMIT), &fsutil::read(&dir.join(LIMIT))?)?;
            let (wl, ws) = (Write::new(dir, LIMIT, l), Write::new(dir, MEMSW, s));
            let growing = s == -1 || current < u64::try_from(s).unwrap_or(0);
            steps.push(if growing {
                Step::Pair(ws, wl)
            } else {
                Step::Pair(wl, ws)
            });
        }
        (Some(l), None) => steps.push(Step::One(Write::new(dir, LIMIT, l))),
        (None, Some(s)) => steps.push(Step::One(Write::new(dir, MEMSW, s))),
        (None, None) => {}
    }
    if let Some(reservation) = memory.reservation().filter(|v| *v != 0) {
        check_limit("linux.resources.memory.reservation", Some(reservation))?;
        steps.push(Step::One(Write::new(
            dir,
            "memory.soft_limit_in_bytes",
            reservation,
        )));
    }
    if let Some(swappiness) = memory.swappiness() {
        if swappiness > 100 {
            return Err(Error::invalid(
                "linux.resources.memory.swappiness",
                swappiness,
                "must be 0..=100",
            ));
        }
        steps.push(Step::One(Write::new(dir, "memory.swappiness", swappiness)));
    }
    if memory.disable_oom_killer() == Some(true) {
        steps.push(Step::One(Write::new(dir, "memory.oom_control", 1)));
    }
    if let Some(hierarchy) = memory.use_hierarchy() {
        steps.push(Step::One(Write::new(
            dir,
            "memory.use_hierarchy",
            u8::from(hierarchy),
        )));
    }
    Ok(())
}

fn check_limit(setting: &str, value: Option<i64>) -> Result<(), Error> {
    match value {
        Some(v) if v < -1 => Err(Error::invalid(
            setting,
            v,
            "must be -1 (unlimited) or positive",
        )),
        _ => Ok(()),
    }
}

/// cpu on v1: shares, CFS quota/period/burst, idle, realtime runtime/period.
pub(crate) fn cpu(dir: &Path, cpu: &LinuxCpu, steps: &mut Vec<Step>) -> Result<(), Error> {
    if let Some(shares) = cpu.shares().filter(|v| *v != 0) {
        steps.push(Step::One(Write::new(dir, "cpu.shares", shares)));
    }
    let period = cpu
        .period()
        .filter(|v| *v != 0)
        .map(|p| Write::new(dir, "cpu.cfs_period_us", p));
    let quota = cpu
        .quota()
        .filter(|v| *v != 0)
        .map(|q| Write::new(dir, "cpu.cfs_quota_us", q));
    push_pair(steps, period, quota);
    if let Some(burst) = cpu.burst() {
        steps.push(Step::One(Write::new(dir, "cpu.cfs_burst_us", burst)));
    }
    if let Some(idle) = cpu.idle() {
        steps.push(Step::One(Write::new(dir, "cpu.idle", idle)));
    }
    let rt_period = cpu
        .realtime_period()
        .filter(|v| *v != 0)
        .map(|p| Write::new(dir, "cpu.rt_period_us", p));
    let rt_runtime = cpu
        .realtime_runtime()
        .map(|r| Write::new(dir, "cpu.rt_runtime_us", r));
    push_pair(steps, rt_period, rt_runtime);
    Ok(())
}

fn push_pair(steps: &mut Vec<Step>, first: Option<Write>, second: Option<Write>) {
    match (first, second) {
        (Some(a), Some(b)) => steps.push(Step::Pair(a, b)),
        (Some(one), None) | (None, Some(one)) => steps.push(Step::One(one)),
        (None, None) => {}
    }
}

/// A new v1 cpuset cgroup starts with empty cpus and mems and cannot take processes until they
/// are set: copy them from the parent when empty.
pub(crate) fn copy_cpuset_from_parent(parent: &Path, dir: &Path) -> Result<(), Error> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let own = fsutil::read(&dir.join(file))?;
        if own.trim().is_empty() {
            let inherited = fsutil::read(&parent.join(file))?;
            fsutil::write(&dir.join(file), inherited.trim())?;
        }
    }
    Ok(())
}

/// v1 device rules, in order: each goes to `devices.allow` or `devices.deny`.
pub(crate) fn devices(
    dir: &Path,
    rules: &[LinuxDeviceCgroup],
    steps: &mut Vec<Step>,
) -> Result<(), Error> {
    for rule in rules {
        let kind = match rule.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => "a",
            LinuxDeviceType::B => "b",
            LinuxDeviceType::C | LinuxDeviceType::U => "c",
            LinuxDeviceType::P => {
                return Err(Error::invalid(
                    "linux.resources.devices",
                    "p",
                    "the devices cgroup controls only a, b and c devices",
                ))
            }
        };
        let number = |n: Option<i64>| n.map_or("*".to_string(), |n| n.to_string());
        let access = rule
            .access()
            .as_deref()
            .filter(|a| !a.is_empty())
            .unwrap_or("rwm");
        if !access.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
            return Err(Error::invalid(
                "linux.resources.devices",
                access,
                "access must be of r, w, m",
            ));
        }
        let value = if kind == "a" {
            "a".to_string()
        } else {
            format!(
                "{kind} {}:{} {access}",
                number(rule.major()),
                number(rule.minor())
            )
        };
        let file = if rule.allow() {
            "devices.allow"
        } else {
            "devices.deny"
        };
        steps.push(Step::One(Write::new(dir, file, value)));
    }
    Ok(())
}
