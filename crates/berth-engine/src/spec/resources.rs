//! `linux.resources` from the resource flags, after docker's validation and defaults.

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources, LinuxThrottleDevice,
    LinuxThrottleDeviceBuilder,
};

use oci_spec::OciSpecError;

use super::options::{Resources, ThrottleDevice};

/// A resource flag value docker's daemon rejects; the message is docker's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    /// `-m` below 6 MiB.
    #[error("Minimum memory limit allowed is 6MB")]
    MemoryTooLow,
    /// `--memory-swap` without `-m`.
    #[error("You should always set the Memory limit when using Memoryswap limit, see usage")]
    SwapWithoutMemory,
    /// `--memory-swap` below `-m`.
    #[error("Minimum memoryswap limit should be larger than memory limit, see usage")]
    SwapBelowMemory,
    /// `--memory-swappiness` out of range.
    #[error("Invalid value: {0}, valid memory swappiness range is 0-100")]
    Swappiness(i64),
    /// `--memory-reservation` above `-m`.
    #[error("Minimum memory limit can not be less than memory reservation limit, see usage")]
    ReservationAboveMemory,
    /// `--memory-reservation` below 6 MiB.
    #[error("Minimum memory reservation allowed is 6MB")]
    ReservationTooLow,
    /// `--cpus` with `--cpu-period`.
    #[error("Conflicting options: Nano CPUs and CPU Period cannot both be set")]
    CpusAndPeriod,
    /// `--cpus` with `--cpu-quota`.
    #[error("Conflicting options: Nano CPUs and CPU Quota cannot both be set")]
    CpusAndQuota,
    /// `--cpus` negative.
    #[error("Range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available")]
    NanoCpus {
        /// The host's CPUs.
        cpus: i64,
    },
    /// `--cpu-period` out of range.
    #[error(
        "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
    )]
    CpuPeriod,
    /// `--cpu-quota` too small.
    #[error("CPU cfs quota can not be less than 1ms (i.e. 1000)")]
    CpuQuota,
    /// `--blkio-weight` out of range.
    #[error("Range of blkio weight is from 10 to 1000")]
    BlkioWeight,
}

const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// docker's checks (`verifyPlatformContainerResources`) that need no host information.
pub fn validate(r: &Resources) -> Result<(), ResourceError> {
    validate_memory(r)?;
    validate_cpu(r)?;
    if r.blkio_weight
        .is_some_and(|w| w != 0 && !(10..=1000).contains(&w))
    {
        return Err(ResourceError::BlkioWeight);
    }
    Ok(())
}

fn validate_memory(r: &Resources) -> Result<(), ResourceError> {
    let memory = r.memory.unwrap_or(0);
    let swap = r.memory_swap.unwrap_or(0);
    let reservation = r.memory_reservation.unwrap_or(0);
    if memory != 0 && memory < MIN_MEMORY {
        return Err(ResourceError::MemoryTooLow);
    }
    if swap > 0 && memory == 0 {
        return Err(ResourceError::SwapWithoutMemory);
    }
    if memory > 0 && swap > 0 && swap < memory {
        return Err(ResourceError::SwapBelowMemory);
    }
    if let Some(s) = r.memory_swappiness.filter(|s| !(-1..=100).contains(s)) {
        return Err(ResourceError::Swappiness(s));
    }
    if memory > 0 && reservation > 0 && memory < reservation {
        return Err(ResourceError::ReservationAboveMemory);
    }
    if reservation != 0 && reservation < MIN_MEMORY {
        return Err(ResourceError::ReservationTooLow);
    }
    Ok(())
}

fn validate_cpu(r: &Resources) -> Result<(), ResourceError> {
    let nano = r.nano_cpus.unwrap_or(0);
    if nano > 0 && r.cpu_period.unwrap_or(0) > 0 {
        return Err(ResourceError::CpusAndPeriod);
    }
    if nano > 0 && r.cpu_quota.unwrap_or(0) > 0 {
        return Err(ResourceError::CpusAndQuota);
    }
    // `--cpus 0` asks for no CPU at all: refused, as a limit above the host's CPUs is (docker
    // takes 0 as "unset"; a user who typed it meant something else).
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as i64);
    if r.nano_cpus
        .is_some_and(|n| n <= 0 || n > cpus * 1_000_000_000)
    {
        return Err(ResourceError::NanoCpus { cpus });
    }
    if r.cpu_period
        .is_some_and(|p| p != 0 && !(1000..=1_000_000).contains(&p))
    {
        return Err(ResourceError::CpuPeriod);
    }
    if r.cpu_quota.is_some_and(|q| q > 0 && q < 1000) {
        return Err(ResourceError::CpuQuota);
    }
    Ok(())
}

/// The resources section (device rules are added by the caller).
pub fn linux_resources(r: &Resources) -> Result<LinuxResources, OciSpecError> {
    let mut resources = LinuxResources::default();
    resources.set_memory(memory(r));
    resources.set_cpu(cpu(r));
    resources.set_pids(pids(r));
    resources.set_block_io(block_io(r)?);
    Ok(resources)
}

fn memory(r: &Resources) -> Option<LinuxMemory> {
    let limit = r.memory.filter(|m| *m > 0);
    // docker: with -m and no --memory-swap, swap = twice the memory (as much swap as memory);
    // only a positive swap reaches the spec (-1, unlimited, is no swap limit).
    let swap = match (r.memory_swap.unwrap_or(0), limit) {
        (0, Some(limit)) => limit.checked_mul(2),
        (swap, _) => Some(swap).filter(|s| *s > 0),
    };
    let reservation = r.memory_reservation.filter(|m| *m > 0);
    let swappiness = r.memory_swappiness.and_then(|s| u64::try_from(s).ok());
    let disable_oom = r.oom_kill_disable.then_some(true);
    if limit.is_none()
        && swap.is_none()
        && reservation.is_none()
        && swappiness.is_none()
        && disable_oom.is_none()
    {
        return None;
    }
    let mut m = LinuxMemory::default();
    m.set_limit(limit);
    m.set_swap(swap);
    m.set_reservation(reservation);
    m.set_swappiness(swappiness);
    m.set_disable_oom_killer(disable_oom);
    Some(m)
}

/// docker's period for `--cpus`: 100 ms.
const NANO_CPUS_PERIOD: u64 = 100_000;

fn cpu(r: &Resources) -> Option<LinuxCpu> {
    let mut c = LinuxCpu::default();
    c.set_shares(r.cpu_shares.filter(|s| *s != 0));
    c.set_cpus(r.cpuset_cpus.clone());
    c.set_mems(r.cpuset_mems.clone());
    if let Some(nano) = r.nano_cpus.filter(|n| *n > 0) {
        let quota = i128::from(nano) * i128::from(NANO_CPUS_PERIOD) / 1_000_000_000;
        c.set_period(Some(NANO_CPUS_PERIOD));
        c.set_quota(Some(i64::try_from(quota).unwrap_or(i64::MAX)));
    }
    if let Some(period) = r.cpu_period.filter(|p| *p != 0) {
        c.set_period(Some(period));
    }
    if let Some(quota) = r.cpu_quota.filter(|q| *q != 0) {
        c.set_quota(Some(quota));
    }
    (c != LinuxCpu::default()).then_some(c)
}

/// docker treats zero and negative as unlimited: no pids limit at all.
fn pids(r: &Resources) -> Option<LinuxPids> {
    let limit = r.pids_limit.filter(|l| *l > 0)?;
    let mut p = LinuxPids::default();
    p.set_limit(limit);
    Some(p)
}

fn throttle(list: &[ThrottleDevice]) -> Result<Option<Vec<LinuxThrottleDevice>>, OciSpecError> {
    if list.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        list.iter()
            .map(|d| {
                LinuxThrottleDeviceBuilder::default()
                    .major(d.major)
                    .minor(d.minor)
                    .rate(d.rate)
                    .build()
            })
            .collect::<Result<_, _>>()?,
    ))
}

fn block_io(r: &Resources) -> Result<Option<LinuxBlockIo>, OciSpecError> {
    let weight = r.blkio_weight.filter(|w| *w != 0);
    let lists = [
        &r.device_read_bps,
        &r.device_write_bps,
        &r.device_read_iops,
        &r.device_write_iops,
    ];
    if weight.is_none() && lists.iter().all(|l| l.is_empty()) {
        return Ok(None);
    }
    let mut b = LinuxBlockIo::default();
    b.set_weight(weight);
    b.set_throttle_read_bps_device(throttle(&r.device_read_bps)?);
    b.set_throttle_write_bps_device(throttle(&r.device_write_bps)?);
    b.set_throttle_read_iops_device(throttle(&r.device_read_iops)?);
    b.set_throttle_write_iops_device(throttle(&r.device_write_iops)?);
    Ok(Some(b))
}
