//! cgroup v1 file names and rules: memory, cpu, cpuset, devices, blkio, net_cls, net_prio.

use std::path::Path;

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxDeviceType, LinuxInterfacePriority, LinuxMemory,
};

use crate::block_io::{self, nonzero};
use crate::error::Error;
use crate::fsutil::{self, Write};
use crate::layout::KernelRelease;
use crate::resources::{need_file, Step};

const MEMSW: &str = "memory.memsw.limit_in_bytes";
const LIMIT: &str = "memory.limit_in_bytes";
const KMEM: &str = "memory.kmem.limit_in_bytes";
const KMEM_TCP: &str = "memory.kmem.tcp.limit_in_bytes";

/// Memory on v1. OCI `swap` is memory+swap here (`memory.memsw.limit_in_bytes`); 0 means unset
/// and -1 unlimited, as in runc. When both limits change, the one that grows is written first
/// (runc's order), and on failure the other order is tried. `checkBeforeUpdate` needs nothing
/// here: the v1 kernel itself refuses (EBUSY) a limit it cannot reclaim the usage down to.
pub(crate) fn memory(
    dir: &Path,
    memory: &LinuxMemory,
    kernel: Option<KernelRelease>,
    steps: &mut Vec<Step>,
) -> Result<(), Error> {
    limits(dir, memory, steps)?;
    kernel_memory(dir, memory.kernel(), kernel, steps)?;
    kernel_tcp(dir, memory.kernel_tcp(), steps)?;
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
    use_hierarchy(dir, memory.use_hierarchy(), kernel, steps)
}

/// `limit` and `swap` (memory+swap), in the order the kernel accepts.
fn limits(dir: &Path, memory: &LinuxMemory, steps: &mut Vec<Step>) -> Result<(), Error> {
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
    Ok(())
}

/// `memory.kernel` -> `memory.kmem.limit_in_bytes`, only on kernels that apply it: Linux 5.16
/// made writes fail with EOPNOTSUPP, later ones (6.18 among them) accept and ignore them. There,
/// -1 (no kernel memory limit) is what the kernel does anyway, so it is accepted unwritten.
fn kernel_memory(
    dir: &Path,
    value: Option<i64>,
    kernel: Option<KernelRelease>,
    steps: &mut Vec<Step>,
) -> Result<(), Error> {
    let setting = "linux.resources.memory.kernel";
    let Some(value) = value.filter(|v| *v != 0) else {
        return Ok(());
    };
    check_limit(setting, Some(value))?;
    match kernel {
        None => Err(Error::unsupported(
            setting,
            "cannot tell whether this kernel applies memory.kmem.limit_in_bytes (release unknown)",
        )),
        Some(k) if k.at_least(5, 16) && value == -1 => Ok(()),
        Some(k) if k.at_least(5, 16) => Err(Error::unsupported(
            setting,
            &format!(
                "Linux 5.16 and later do not apply memory.kmem.limit_in_bytes \
                 (writes fail with EOPNOTSUPP or are ignored); this is Linux {k}"
            ),
        )),
        Some(_) => {
            need_file(dir, KMEM, setting, "kernel memory accounting is off")?;
            steps.push(Step::One(Write::new(dir, KMEM, value)));
            Ok(())
        }
    }
}

/// `memory.kernelTCP` -> `memory.kmem.tcp.limit_in_bytes` (deprecated, still applied by 6.18).
fn kernel_tcp(dir: &Path, value: Option<i64>, steps: &mut Vec<Step>) -> Result<(), Error> {
    let setting = "linux.resources.memory.kernelTCP";
    let Some(value) = value.filter(|v| *v != 0) else {
        return Ok(());
    };
    check_limit(setting, Some(value))?;
    need_file(dir, KMEM_TCP, setting, "kernel memory accounting is off")?;
    steps.push(Step::One(Write::new(dir, KMEM_TCP, value)));
    Ok(())
}

/// `memory.use_hierarchy`; Linux 5.11 and later are always hierarchical and refuse 0.
fn use_hierarchy(
    dir: &Path,
    value: Option<bool>,
    kernel: Option<KernelRelease>,
    steps: &mut Vec<Step>,
) -> Result<(), Error> {
    let Some(value) = value else {
        return Ok(());
    };
    if let Some(k) = kernel.filter(|k| !value && k.at_least(5, 11)) {
        return Err(Error::unsupported(
            "linux.resources.memory.useHierarchy",
            &format!("Linux 5.11 and later are always hierarchical; this is Linux {k}"),
        ));
    }
    steps.push(Step::One(Write::new(
        dir,
        "memory.use_hierarchy",
        u8::from(value),
    )));
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
        let why = "CFS burst needs Linux 5.14";
        need_file(dir, "cpu.cfs_burst_us", "linux.resources.cpu.burst", why)?;
        steps.push(Step::One(Write::new(dir, "cpu.cfs_burst_us", burst)));
    }
    if let Some(idle) = cpu.idle() {
        let why = "SCHED_IDLE cgroups need Linux 5.15";
        need_file(dir, "cpu.idle", "linux.resources.cpu.idle", why)?;
        steps.push(Step::One(Write::new(dir, "cpu.idle", idle)));
    }
    if cpu.realtime_period().is_some_and(|v| v != 0) || cpu.realtime_runtime().is_some() {
        let why = "the kernel is built without CONFIG_RT_GROUP_SCHED";
        let setting = match cpu.realtime_runtime() {
            Some(_) => "linux.resources.cpu.realtimeRuntime",
            None => "linux.resources.cpu.realtimePeriod",
        };
        need_file(dir, "cpu.rt_runtime_us", setting, why)?;
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

/// blkio on v1: CFQ's weight files (`blkio.weight`, `blkio.weight_device`, `blkio.leaf_weight`,
/// `blkio.leaf_weight_device`) or, without them, BFQ's (`blkio.bfq.weight`,
/// `blkio.bfq.weight_device`), as runc picks them; throttling in `blkio.throttle.*_device`.
pub(crate) fn block_io(dir: &Path, io: &LinuxBlockIo, steps: &mut Vec<Step>) -> Result<(), Error> {
    let cfq = dir.join("blkio.weight").exists();
    let (weight_file, device_file) = if cfq {
        ("blkio.weight", "blkio.weight_device")
    } else {
        ("blkio.bfq.weight", "blkio.bfq.weight_device")
    };
    let has_weights = dir.join(weight_file).exists();
    if let Some(weight) = nonzero(io.weight()) {
        weights_exist(has_weights, block_io::WEIGHT)?;
        steps.push(Step::One(Write::new(dir, weight_file, weight)));
    }
    let no_leaf = "only CFQ has leaf weights";
    if let Some(weight) = nonzero(io.leaf_weight()) {
        need_file(dir, "blkio.leaf_weight", block_io::LEAF_WEIGHT, no_leaf)?;
        steps.push(Step::One(Write::new(dir, "blkio.leaf_weight", weight)));
    }
    for device in io.weight_device().iter().flatten() {
        let id = block_io::device_id(block_io::WEIGHT_DEVICE, device.major(), device.minor())?;
        if let Some(weight) = nonzero(device.weight()) {
            weights_exist(has_weights, block_io::WEIGHT_DEVICE)?;
            let why = "BFQ before Linux 5.4 has no per-device weights";
            need_file(dir, device_file, block_io::WEIGHT_DEVICE, why)?;
            if !cfq {
                block_io::check_bfq_device(block_io::WEIGHT_DEVICE, &id)?;
            }
            steps.push(Step::One(Write::new(
                dir,
                device_file,
                format!("{id} {weight}"),
            )));
        }
        if let Some(weight) = nonzero(device.leaf_weight()) {
            let file = "blkio.leaf_weight_device";
            need_file(dir, file, block_io::LEAF_WEIGHT_DEVICE, no_leaf)?;
            steps.push(Step::One(Write::new(dir, file, format!("{id} {weight}"))));
        }
    }
    for throttle in block_io::throttles(io) {
        let why = "the kernel has no block I/O throttling";
        need_file(dir, throttle.v1_file, throttle.setting, why)?;
        for device in throttle.devices {
            let id = block_io::device_id(throttle.setting, device.major(), device.minor())?;
            let value = format!("{id} {}", device.rate());
            steps.push(Step::One(Write::new(dir, throttle.v1_file, value)));
        }
    }
    Ok(())
}

fn weights_exist(has_weights: bool, setting: &str) -> Result<(), Error> {
    if has_weights {
        return Ok(());
    }
    Err(Error::unsupported(
        setting,
        "not available on this host (no blkio.weight or blkio.bfq.weight: \
         neither CFQ nor BFQ group weights)",
    ))
}

/// `network.classID` -> `net_cls.classid` (0 leaves it unset, as in runc).
pub(crate) fn net_cls(dir: &Path, class_id: u32, steps: &mut Vec<Step>) {
    steps.push(Step::One(Write::new(dir, "net_cls.classid", class_id)));
}

/// `network.priorities` -> one `name priority` line each into `net_prio.ifpriomap`.
pub(crate) fn net_prio(
    dir: &Path,
    priorities: &[LinuxInterfacePriority],
    steps: &mut Vec<Step>,
) -> Result<(), Error> {
    for priority in priorities {
        let name = priority.name();
        if name.is_empty() || name.chars().any(char::is_whitespace) {
            return Err(Error::invalid(
                "linux.resources.network.priorities.name",
                format!("{name:?}"),
                "must be an interface name",
            ));
        }
        let value = format!("{name} {}", priority.priority());
        steps.push(Step::One(Write::new(dir, "net_prio.ifpriomap", value)));
    }
    Ok(())
}
