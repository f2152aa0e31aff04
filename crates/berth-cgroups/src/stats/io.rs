//! Block I/O per device: v1 blkio `<op>` tables, or the cgroup2 `io.stat` line per device.

use std::path::Path;

use super::source::{Buf, Source};
use super::{DeviceIo, IoCounts};
use crate::cgroup::{Cgroup, ControllerDir};
use crate::error::Error;

/// v1 (bytes, operations) files, best first: the throttle layer's recursive counters (every
/// bio, with or without limits), the same without children, then BFQ's.
const V1_SOURCES: &[(&str, &str)] = &[
    (
        "blkio.throttle.io_service_bytes_recursive",
        "blkio.throttle.io_serviced_recursive",
    ),
    (
        "blkio.throttle.io_service_bytes",
        "blkio.throttle.io_serviced",
    ),
    (
        "blkio.bfq.io_service_bytes_recursive",
        "blkio.bfq.io_serviced_recursive",
    ),
];

#[derive(Debug)]
pub(super) enum IoFiles {
    None,
    V1 { bytes: Source, ios: Option<Source> },
    V2(Source),
}

impl IoFiles {
    pub fn open(cgroup: &Cgroup) -> Result<IoFiles, Error> {
        match (cgroup.controller("blkio"), cgroup.controller("io")) {
            (Some(ControllerDir::V1(dir)), _) => open_v1(dir),
            (_, Some(ControllerDir::V2(dir))) => {
                Ok(Source::open(dir, "io.stat")?.map_or(IoFiles::None, IoFiles::V2))
            }
            _ => Ok(IoFiles::None),
        }
    }

    pub fn read(&self, buf: &mut Buf) -> Result<Vec<DeviceIo>, Error> {
        let mut devices = Vec::new();
        match self {
            IoFiles::None => {}
            IoFiles::V1 { bytes, ios } => {
                v1_table(bytes.read(buf)?, &mut devices, |d| &mut d.bytes);
                if let Some(ios) = ios {
                    v1_table(ios.read(buf)?, &mut devices, |d| &mut d.ios);
                }
            }
            IoFiles::V2(source) => {
                for line in source.read(buf)?.lines() {
                    v2_line(line, &mut devices);
                }
            }
        }
        Ok(devices)
    }
}

fn open_v1(dir: &Path) -> Result<IoFiles, Error> {
    for (bytes, ios) in V1_SOURCES {
        if let Some(bytes) = Source::open(dir, bytes)? {
            let ios = Source::open(dir, ios)?;
            return Ok(IoFiles::V1 { bytes, ios });
        }
    }
    Ok(IoFiles::None)
}

/// The entry of device `major:minor`, added in the order devices first appear.
fn device(devices: &mut Vec<DeviceIo>, major: u64, minor: u64) -> &mut DeviceIo {
    let index = match devices
        .iter()
        .position(|d| d.major == major && d.minor == minor)
    {
        Some(index) => index,
        None => {
            devices.push(DeviceIo {
                major,
                minor,
                ..DeviceIo::default()
            });
            devices.len() - 1
        }
    };
    &mut devices[index]
}

/// `MAJ:MIN` into numbers.
fn major_minor(text: &str) -> Option<(u64, u64)> {
    let (major, minor) = text.split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// v1 lines `MAJ:MIN Op value` (Read, Write, Sync, Async, Discard, Total); the last line
/// `Total value` (all devices) is skipped, and so is each device's Total (read + write +
/// discard, recomputed when needed).
fn v1_table(text: &str, devices: &mut Vec<DeviceIo>, counts: fn(&mut DeviceIo) -> &mut IoCounts) {
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let (Some(dev), Some(op), Some(value)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let (Some((major, minor)), Ok(value)) = (major_minor(dev), value.parse::<u64>()) else {
            continue;
        };
        let c = counts(device(devices, major, minor));
        match op {
            "Read" => c.read = value,
            "Write" => c.write = value,
            "Discard" => c.discard = value,
            "Sync" => c.sync = Some(value),
            "Async" => c.async_ = Some(value),
            _ => {}
        }
    }
}

/// A cgroup2 line: `MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=.. dbytes=.. dios=..`.
fn v2_line(line: &str, devices: &mut Vec<DeviceIo>) {
    let mut fields = line.split_whitespace();
    let Some((major, minor)) = fields.next().and_then(major_minor) else {
        return;
    };
    let d = device(devices, major, minor);
    for field in fields {
        let Some((name, value)) = field.split_once('=') else {
            continue;
        };
        let Ok(value) = value.parse::<u64>() else {
            continue;
        };
        match name {
            "rbytes" => d.bytes.read = value,
            "wbytes" => d.bytes.write = value,
            "dbytes" => d.bytes.discard = value,
            "rios" => d.ios.read = value,
            "wios" => d.ios.write = value,
            "dios" => d.ios.discard = value,
            _ => {}
        }
    }
}
