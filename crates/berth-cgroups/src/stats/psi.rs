//! Pressure stall information from the cgroup2 directory: `cpu.pressure`, `memory.pressure`,
//! `io.pressure`. In hybrid mode the container's processes are in the unified hierarchy as
//! well, so its PSI files describe the container too and are read there.

use super::source::{open_in, Buf, Source};
use super::{Pressure, PressureStats, PsiData};
use crate::cgroup::Cgroup;
use crate::error::Error;

#[derive(Debug)]
pub(super) struct PsiFiles {
    cpu: Option<Source>,
    memory: Option<Source>,
    io: Option<Source>,
}

impl PsiFiles {
    pub fn open(cgroup: &Cgroup) -> Result<PsiFiles, Error> {
        let dir = cgroup.any_unified_dir();
        Ok(PsiFiles {
            cpu: open_in(dir, "cpu.pressure")?,
            memory: open_in(dir, "memory.pressure")?,
            io: open_in(dir, "io.pressure")?,
        })
    }

    pub fn read(&self, buf: &mut Buf) -> Result<PressureStats, Error> {
        Ok(PressureStats {
            cpu: read(&self.cpu, buf)?,
            memory: read(&self.memory, buf)?,
            io: read(&self.io, buf)?,
        })
    }
}

/// A missing file (no CONFIG_PSI, or `cgroup.pressure` 0) and EOPNOTSUPP on read (`psi=0` on
/// the kernel command line) are `None`.
fn read(source: &Option<Source>, buf: &mut Buf) -> Result<Option<Pressure>, Error> {
    let Some(source) = source else {
        return Ok(None);
    };
    let text = match source.read_io(buf) {
        Ok(text) => text,
        Err(err) if err.raw_os_error() == Some(nix::errno::Errno::EOPNOTSUPP as i32) => {
            return Ok(None)
        }
        Err(err) => {
            return Err(Error::Read {
                path: source.path().to_path_buf(),
                source: err,
            })
        }
    };
    Ok(Some(parse(text)))
}

/// `some avg10=0.00 avg60=0.00 avg300=0.00 total=0` and the same for `full`.
fn parse(text: &str) -> Pressure {
    let mut pressure = Pressure::default();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let data = match fields.next() {
            Some("some") => &mut pressure.some,
            Some("full") => &mut pressure.full,
            _ => continue,
        };
        for field in fields {
            set(data, field);
        }
    }
    pressure
}

fn set(data: &mut PsiData, field: &str) {
    let Some((name, value)) = field.split_once('=') else {
        return;
    };
    match name {
        "avg10" => data.avg10 = value.parse().unwrap_or(0.0),
        "avg60" => data.avg60 = value.parse().unwrap_or(0.0),
        "avg300" => data.avg300 = value.parse().unwrap_or(0.0),
        "total" => data.total = value.parse().unwrap_or(0),
        _ => {}
    }
}
