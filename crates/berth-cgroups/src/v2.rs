//! cgroup v2 file names and conversions: memory, cpu, io, subtree_control.

use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory};

use crate::block_io::{self, nonzero};
use crate::error::Error;
use crate::fsutil::{self, Write};
use crate::resources::{need_file, Step};

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

/// True when the `cgroup.controllers` (or `cgroup.subtree_control`) file `path` lists
/// `controller`; a missing file lists nothing.
pub(crate) fn lists_controller(path: &Path, controller: &str) -> Result<bool, Error> {
    let text = fsutil::read_optional(path)?.unwrap_or_default();
    Ok(text.split_whitespace().any(|c| c == controller))
}

/// Enables `controller` in `parent/cgroup.subtree_control` unless it is enabled already.
pub(crate) fn enable_controller(parent: &Path, controller: &str) -> Result<(), Error> {
    let file = parent.join("cgroup.subtree_control");
    if lists_controller(&file, controller)? {
        return Ok(());
    }
    fsutil::write(&file, &format!("+{controller}"))
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

/// blkio weight (10..=1000) -> `io.weight` (1..=10000), linear as runc and crun convert it:
/// `1 + (weight − 10) · 9999 / 990`, so 10 → 1, 500 → 4950, 1000 → 10000; 0 stays unset.
pub fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    let weight = u64::from(weight).clamp(10, 1000);
    1 + (weight - 10) * 9999 / 990
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
    no_kernel_limit("linux.resources.memory.kernel", memory.kernel())?;
    no_kernel_limit("linux.resources.memory.kernelTCP", memory.kernel_tcp())?;
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
    if memory.check_before_update() == Some(true) {
        check_usage(dir, limit)?;
    }
    if let Some(limit) = limit {
        steps.push(Step::One(Write::new(dir, "memory.max", max_or(limit))));
    }
    if let Some(low) = memory.reservation().filter(|v| *v != 0) {
        steps.push(Step::One(Write::new(dir, "memory.low", max_or(low))));
    }
    Ok(())
}

/// `memory.kernel` / `memory.kernelTCP`: v2 has no separate limits (kernel and socket memory
/// count towards `memory.max`), so only -1, "no such limit", is true here.
fn no_kernel_limit(setting: &str, value: Option<i64>) -> Result<(), Error> {
    match value {
        None | Some(0 | -1) => Ok(()),
        Some(v) if v < -1 => Err(Error::invalid(
            setting,
            v,
            "must be -1 (unlimited) or positive",
        )),
        Some(_) => Err(Error::unsupported(
            setting,
            "cgroup v2 has no separate kernel memory limits (they count towards memory.max)",
        )),
    }
}

/// `checkBeforeUpdate`, as runc: a new `memory.max` at or below `memory.current` is refused
/// (v2 would reclaim and then OOM-kill to reach it).
fn check_usage(dir: &Path, limit: Option<i64>) -> Result<(), Error> {
    let Some(limit) = limit.and_then(|l| u64::try_from(l).ok()) else {
        return Ok(());
    };
    let path = dir.join("memory.current");
    let usage = fsutil::parse_u64(&path, &fsutil::read(&path)?)?;
    if usage < limit {
        return Ok(());
    }
    Err(Error::invalid(
        "linux.resources.memory.limit",
        limit,
        &format!("checkBeforeUpdate: the cgroup already uses {usage} bytes"),
    ))
}

/// io on v2. Weights go to `io.bfq.weight` when BFQ is there (unconverted: BFQ takes blkio's
/// range), else to `io.weight` converted ([`blkio_weight_to_io_weight`]), as runc and crun do.
/// Per-device weights go to BFQ for a device that uses it (Linux 5.4 and later), else to
/// `io.weight` for a device with io cost enabled (`io.cost.qos` at `root`), else are refused.
/// Throttles are one `io.max` line per device, `MAJ:MIN rbps=.. wbps=.. riops=.. wiops=..`, a
/// rate of 0 (v1's "no limit") written as `max`. v2 has no leaf weights: a non-zero one is
/// refused (as crun does).
pub(crate) fn block_io(
    root: &Path,
    dir: &Path,
    io: &LinuxBlockIo,
    steps: &mut Vec<Step>,
) -> Result<(), Error> {
    refuse_leaf_weights(io)?;
    let bfq = fsutil::read_optional(&dir.join("io.bfq.weight"))?;
    let io_weight = dir.join("io.weight").exists();
    if let Some(weight) = nonzero(io.weight()) {
        let (file, value) = match (&bfq, io_weight) {
            (Some(_), _) => ("io.bfq.weight", u64::from(weight)),
            (None, true) => ("io.weight", blkio_weight_to_io_weight(weight)),
            (None, false) => return Err(no_weights(block_io::WEIGHT)),
        };
        steps.push(Step::One(Write::new(dir, file, value)));
    }
    // Before 5.4 io.bfq.weight holds one number: the default weight, no per-device ones.
    let bfq_per_device = bfq.is_some_and(|text| text.trim().parse::<u64>().is_err());
    for device in io.weight_device().iter().flatten() {
        let id = block_io::device_id(block_io::WEIGHT_DEVICE, device.major(), device.minor())?;
        if let Some(weight) = nonzero(device.weight()) {
            let (file, value) = device_weight(root, &id, weight, bfq_per_device, io_weight)?;
            steps.push(Step::One(Write::new(dir, file, format!("{id} {value}"))));
        }
    }
    io_max(dir, io, steps)
}

/// Where a device's weight goes: BFQ if the device uses it (or, when sysfs cannot tell, if
/// BFQ has per-device weights), else io cost if enabled for the device.
fn device_weight(
    root: &Path,
    id: &str,
    weight: u16,
    bfq_per_device: bool,
    io_weight: bool,
) -> Result<(&'static str, u64), Error> {
    let scheduler = block_io::scheduler(id);
    let uses_bfq = scheduler.as_deref().map_or(bfq_per_device, |s| s == "bfq");
    if uses_bfq && bfq_per_device {
        return Ok(("io.bfq.weight", u64::from(weight)));
    }
    if io_weight && io_cost_enabled(root, id)? {
        return Ok(("io.weight", blkio_weight_to_io_weight(weight)));
    }
    let scheduler = scheduler.unwrap_or_else(|| "unknown".to_string());
    Err(Error::unsupported(
        block_io::WEIGHT_DEVICE,
        &format!(
            "device {id} has neither BFQ (its I/O scheduler: {scheduler}) nor io cost \
             (enable=1 in io.cost.qos) for per-device weights"
        ),
    ))
}

/// True when `root/io.cost.qos` has `MAJ:MIN enable=1` for the device.
fn io_cost_enabled(root: &Path, id: &str) -> Result<bool, Error> {
    let text = fsutil::read_optional(&root.join("io.cost.qos"))?.unwrap_or_default();
    Ok(text.lines().any(|line| {
        let mut fields = line.split_whitespace();
        fields.next() == Some(id) && fields.any(|f| f == "enable=1")
    }))
}

fn refuse_leaf_weights(io: &LinuxBlockIo) -> Result<(), Error> {
    let device_leaf = io
        .weight_device()
        .iter()
        .flatten()
        .any(|d| nonzero(d.leaf_weight()).is_some());
    let setting = if nonzero(io.leaf_weight()).is_some() {
        block_io::LEAF_WEIGHT
    } else if device_leaf {
        block_io::LEAF_WEIGHT_DEVICE
    } else {
        return Ok(());
    };
    Err(Error::unsupported(setting, "cgroup v2 has no leaf weights"))
}

fn no_weights(setting: &str) -> Error {
    Error::unsupported(
        setting,
        "not available on this host (no io.bfq.weight or io.weight: neither BFQ nor io cost)",
    )
}

/// The four throttle lists as one `io.max` line per device, in order of first appearance.
fn io_max(dir: &Path, io: &LinuxBlockIo, steps: &mut Vec<Step>) -> Result<(), Error> {
    let mut lines: Vec<(String, String)> = Vec::new();
    for throttle in block_io::throttles(io) {
        need_file(
            dir,
            "io.max",
            throttle.setting,
            "the kernel has no block I/O throttling",
        )?;
        for device in throttle.devices {
            let id = block_io::device_id(throttle.setting, device.major(), device.minor())?;
            let rate = match device.rate() {
                0 => "max".to_string(),
                rate => rate.to_string(),
            };
            let entry = format!(" {}={rate}", throttle.v2_key);
            match lines.iter_mut().find(|(line_id, _)| *line_id == id) {
                Some((_, keys)) => keys.push_str(&entry),
                None => lines.push((id, entry)),
            }
        }
    }
    for (id, keys) in lines {
        steps.push(Step::One(Write::new(dir, "io.max", format!("{id}{keys}"))));
    }
    Ok(())
}

/// cpu on v2: `cpu.weight`, `cpu.max` ("quota period" or "max period"), `cpu.max.burst`,
/// `cpu.idle`. Realtime scheduling has no v2 interface.
pub(crate) fn cpu(dir: &Path, cpu: &LinuxCpu, steps: &mut Vec<Step>) -> Result<(), Error> {
    let realtime = match (cpu.realtime_runtime(), cpu.realtime_period()) {
        (Some(_), _) => Some("linux.resources.cpu.realtimeRuntime"),
        (None, Some(_)) => Some("linux.resources.cpu.realtimePeriod"),
        (None, None) => None,
    };
    if let Some(setting) = realtime {
        return Err(Error::unsupported(
            setting,
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
        let why = "CFS burst needs Linux 5.14";
        need_file(dir, "cpu.max.burst", "linux.resources.cpu.burst", why)?;
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
    fn blkio_weight_conversion() {
        assert_eq!(blkio_weight_to_io_weight(0), 0);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
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
