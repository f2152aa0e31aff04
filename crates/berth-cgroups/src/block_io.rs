//! `linux.resources.blockIO`, the parts shared by v1 (blkio) and v2 (io): which fields are
//! set, their ranges, and device numbers. The file names are in `v1.rs` and `v2.rs`.

use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxThrottleDevice};

use crate::error::Error;
use crate::fsutil;

pub(crate) const WEIGHT: &str = "linux.resources.blockIO.weight";
pub(crate) const LEAF_WEIGHT: &str = "linux.resources.blockIO.leafWeight";
pub(crate) const WEIGHT_DEVICE: &str = "linux.resources.blockIO.weightDevice";
pub(crate) const LEAF_WEIGHT_DEVICE: &str = "linux.resources.blockIO.weightDevice.leafWeight";

/// One of the four throttle lists, with its names on v1 and v2.
pub(crate) struct Throttle<'a> {
    pub setting: &'static str,
    /// v1 `blkio.throttle.<v1_file>`.
    pub v1_file: &'static str,
    /// v2 `io.max` key.
    pub v2_key: &'static str,
    pub devices: &'a [LinuxThrottleDevice],
}

/// The throttle lists that are set and not empty.
pub(crate) fn throttles(io: &LinuxBlockIo) -> Vec<Throttle<'_>> {
    [
        (
            "linux.resources.blockIO.throttleReadBpsDevice",
            "blkio.throttle.read_bps_device",
            "rbps",
            io.throttle_read_bps_device(),
        ),
        (
            "linux.resources.blockIO.throttleWriteBpsDevice",
            "blkio.throttle.write_bps_device",
            "wbps",
            io.throttle_write_bps_device(),
        ),
        (
            "linux.resources.blockIO.throttleReadIOPSDevice",
            "blkio.throttle.read_iops_device",
            "riops",
            io.throttle_read_iops_device(),
        ),
        (
            "linux.resources.blockIO.throttleWriteIOPSDevice",
            "blkio.throttle.write_iops_device",
            "wiops",
            io.throttle_write_iops_device(),
        ),
    ]
    .into_iter()
    .filter_map(|(setting, v1_file, v2_key, devices)| {
        let devices = devices.as_deref().filter(|d| !d.is_empty())?;
        Some(Throttle {
            setting,
            v1_file,
            v2_key,
            devices,
        })
    })
    .collect()
}

/// A weight of 0 is unset, as in runc.
pub(crate) fn nonzero(weight: Option<u16>) -> Option<u16> {
    weight.filter(|w| *w != 0)
}

/// True when the section asks for anything (weights of 0 and empty lists ask for nothing).
pub(crate) fn wanted(io: &LinuxBlockIo) -> bool {
    nonzero(io.weight()).is_some()
        || nonzero(io.leaf_weight()).is_some()
        || io.weight_device().as_ref().is_some_and(|d| !d.is_empty())
        || !throttles(io).is_empty()
}

/// Weights within 10..=1000 (the runtime-spec's range), device numbers that are not negative.
pub(crate) fn validate(io: &LinuxBlockIo) -> Result<(), Error> {
    check_weight(WEIGHT, io.weight())?;
    check_weight(LEAF_WEIGHT, io.leaf_weight())?;
    for device in io.weight_device().iter().flatten() {
        device_id(WEIGHT_DEVICE, device.major(), device.minor())?;
        check_weight(WEIGHT_DEVICE, device.weight())?;
        check_weight(LEAF_WEIGHT_DEVICE, device.leaf_weight())?;
    }
    for throttle in throttles(io) {
        for device in throttle.devices {
            device_id(throttle.setting, device.major(), device.minor())?;
        }
    }
    Ok(())
}

fn check_weight(setting: &str, weight: Option<u16>) -> Result<(), Error> {
    match nonzero(weight) {
        Some(w) if !(10..=1000).contains(&w) => Err(Error::invalid(
            setting,
            w,
            "must be 10..=1000 (0 leaves it unset)",
        )),
        _ => Ok(()),
    }
}

/// `major:minor` as the kernel's block cgroup files take it.
pub(crate) fn device_id(setting: &str, major: i64, minor: i64) -> Result<String, Error> {
    if major < 0 || minor < 0 {
        return Err(Error::invalid(
            setting,
            format!("{major}:{minor}"),
            "device numbers must not be negative",
        ));
    }
    Ok(format!("{major}:{minor}"))
}

/// The I/O scheduler a block device uses (`bfq`, `mq-deadline`, `none`), from
/// `/sys/dev/block/MAJ:MIN/queue/scheduler`; `None` when that cannot be read (no such device,
/// a partition).
pub(crate) fn scheduler(id: &str) -> Option<String> {
    let path = Path::new("/sys/dev/block").join(id).join("queue/scheduler");
    let text = fsutil::read_optional(&path).ok()??;
    let selected = text
        .split_whitespace()
        .find_map(|s| s.strip_prefix('[')?.strip_suffix(']'))
        .unwrap_or(text.trim());
    Some(selected.to_string())
}

/// Per-device BFQ weights work only on devices that use BFQ: an error naming the setting when
/// sysfs says this one does not (unknown devices are left to the kernel).
pub(crate) fn check_bfq_device(setting: &str, id: &str) -> Result<(), Error> {
    match scheduler(id) {
        Some(scheduler) if scheduler != "bfq" => Err(Error::unsupported(
            setting,
            &format!("device {id} uses the I/O scheduler {scheduler}; per-device weights need bfq"),
        )),
        _ => Ok(()),
    }
}
