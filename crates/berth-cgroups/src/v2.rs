//! cgroup v2 file names and conversions: memory, cpu, subtree_control.

use std::path::Path;

use oci_spec::runtime::{LinuxCpu, LinuxMemory};

use crate::error::Error;
use crate::fsutil::{self, Write};
use crate::resources::Step;

/// Enables in `parent/cgroup.subtree_control` every controller of `parent/cgroup.controllers`
/// that is not enabled yet, one at a time (so an already enabled set needs no write).
pub(crate) fn enable_controllers(parent: &Path) -> Result<(), Error> {
    let available = fsutil::read_optional(&parent.join("cgroup.controllers"))?.unwrap_or_default();
    let enabled =
        fsutil::read_optional(&parent.join("cgroup.subtree_control"))?.unwrap_or_default();
    let enabled: Vec<&str> = enabled.split_whitespace().collect();
    for controller in available.split_whitespace() {
        if !enabled.contains(&controller) {
            fsutil::write(
                &parent.join("cgroup.subtree_control"),
                &format!("+{controller}"),
            )?;
        }
    }
    Ok(())
}

/// v1 `cpu.shares` (2..=262144, default 1024) -> v2 `cpu.weight` (1..=10000, default 100).
///
/// The conversion of runc >= 1.3 / crun >= 1.23 (opencontainers/cgroups): a quadratic in
/// log2(shares) through (2, 1), (1024, 100) and (262144, 10000), rounded up. The older linear
/// `1 + ((shares - 2) * 9999) / 262142` mapped the default 1024 to 39, not 100.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    if shares <= 2 {
        return 1;
    }
    if shares >= 262_144 {
        return 10_000;
    }
    // shares is below 2^18, so the conversion to f64 is exact.
    #[allow(clippy::cast_precision_loss)]
    let l = (shares as f64).log2();
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    let weight = 10f64.powf(exponent).ceil();
    // weight is within 1..=10000 here.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let weight = weight as u64;
    weight.clamp(1, 10_000)
}

/// OCI memory+swap (`swap`) -> v2 `memory.swap.max` (swap only), as runc converts it.
/// `None` = leave unset, `Some(-1)` = "max".
pub fn swap_to_v2(swap: Option<i64>, limit: Option<i64>) -> Result<Option<i64>, Error> {
    let setting = "linux.resources.memory.swap";
    let swap = swap.unwrap_or(0);
    let limit = limit.unwrap_or(0);
    if limit == -1 && swap == 0 {
        return Ok(Some(-1));
    }
    if swap == -1 {
        return Ok(Some(-1));
    }
    if swap == 0 {
        return Ok(None);
    }
    if limit == 0 || limit == -1 {
        return Err(Error::invalid(
            setting,
            swap,
            "a swap limit needs a memory limit",
        ));
    }
    if swap < limit {
        return Err(Error::invalid(
            setting,
            swap,
            "memory+swap limit must be >= the memory limit",
        ));
    }
    Ok(Some(swap - limit))
}

fn max_or(value: i64) -> String {
    if value == -1 {
        "max".to_string()
    } else {
        value.to_string()
    }
}

/// Memory on v2: `memory.max`, `memory.swap.max` (swap only), `memory.low`.
pub(crate) fn memory(dir: &Path, memory: &LinuxMemory, steps: &mut Vec<Step>) -> Result<(), Error> {
    if memory.swappiness().is_some() {
        return Err(Error::unsupported(
            "linux.resources.memory.swappiness",
            "cgroup v2 has no per-cgroup swappiness",
        ));
    }
    if memory.disable_oom_killer() == Some(true) {
        return Err(Error::unsupported(
            "linux.resources.memory.disableOOMKiller",
            "cgroup v2 cannot disable the OOM killer",
        ));
    }
    if memory.use_hierarchy() == Some(false) {
        return Err(Error::unsupported(
            "linux.resources.memory.useHierarchy",
            "cgroup v2 is always hierarchical",
        ));
    }
    let limit = memory.limit().filter(|v| *v != 0);
    for (setting, value) in [
        ("linux.resources.memory.limit", limit),
        ("linux.resources.memory.swap", memory.swap()),
        ("linux.resources.memory.reservation", memory.reservation()),
    ] {
        if let Some(v) = value.filter(|v| *v < -1) {
            return Err(Error::invalid(
                setting,
                v,
                "must be -1 (unlimited) or positive",
            ));
        }
    }
    let swap_file = dir.join("memory.swap.max");
    let swap = swap_to_v2(memory.swap(), limit)?;
    // "Unlimited memory" implies unlimited swap only where swap accounting exists.
    let swap = swap.filter(|_| memory.swap().is_some() || swap_file.exists());
    if swap.is_some() && !swap_file.exists() {
        return Err(Error::unsupported(
            "linux.resources.memory.swap",
            "swap accounting is off (no memory.swap.max)",
        ));
    }
    if let Some(swap) = swap {
        steps.push(Step::One(Write::new(dir, "memory.swap.max", max_or(swap))));
    }
    if let Some(limit) = limit {
        steps.push(Step::One(Write::new(dir, "memory.max", max_or(limit))));
    }
    if let Some(low) = memory.reservation().filter(|v| *v != 0) {
        steps.push(Step::One(Write::new(dir, "memory.low", max_or(low))));
    }
    Ok(())
}

/// cpu on v2: `cpu.weight`, `cpu.max` ("quota period" or "max period"), `cpu.max.burst`,
/// `cpu.idle`. Realtime scheduling has no v2 interface.
pub(crate) fn cpu(dir: &Path, cpu: &LinuxCpu, steps: &mut Vec<Step>) -> Result<(), Error> {
    if cpu.realtime_runtime().is_some() || cpu.realtime_period().is_some() {
        return Err(Error::unsupported(
            "linux.resources.cpu.realtimeRuntime",
            "cgroup v2 has no realtime cpu controls",
        ));
    }
    if let Some(shares) = cpu.shares().filter(|v| *v != 0) {
        steps.push(Step::One(Write::new(
            dir,
            "cpu.weight",
            shares_to_weight(shares),
        )));
    }
    let quota = cpu.quota().filter(|v| *v != 0);
    let period = cpu.period().filter(|v| *v != 0);
    if quota.is_some() || period.is_some() {
        let mut value = match quota {
            Some(q) if q > 0 => q.to_string(),
            _ => "max".to_string(),
        };
        if let Some(period) = period {
            value.push_str(&format!(" {period}"));
        }
        steps.push(Step::One(Write::new(dir, "cpu.max", value)));
    }
    if let Some(burst) = cpu.burst() {
        steps.push(Step::One(Write::new(dir, "cpu.max.burst", burst)));
    }
    if let Some(idle) = cpu.idle() {
        steps.push(Step::One(Write::new(dir, "cpu.idle", idle)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_anchor_points() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 100);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1_000_000), 10_000);
        assert!(shares_to_weight(512) < 100 && shares_to_weight(2048) > 100);
    }

    #[test]
    fn swap_conversion() {
        assert_eq!(swap_to_v2(Some(200), Some(100)).unwrap(), Some(100));
        assert_eq!(swap_to_v2(Some(-1), Some(100)).unwrap(), Some(-1));
        assert_eq!(swap_to_v2(None, Some(-1)).unwrap(), Some(-1));
        assert_eq!(swap_to_v2(None, Some(100)).unwrap(), None);
        assert!(swap_to_v2(Some(50), Some(100)).is_err());
        assert!(swap_to_v2(Some(50), None).is_err());
    }
}
