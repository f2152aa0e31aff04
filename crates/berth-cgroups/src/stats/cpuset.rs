//! The CPUs and memory nodes the cgroup may use (effective lists, on both versions), and, read
//! apart because only runc's `events` shape wants them, v1's cpuset flags.

use std::path::Path;

use super::source::{Buf, Source};
use super::{CpusetFlags, CpusetStats};
use crate::cgroup::{Cgroup, ControllerDir};
use crate::error::Error;
use crate::fsutil;

#[derive(Debug, Default)]
pub(super) struct CpusetFiles {
    cpus: Option<Source>,
    mems: Option<Source>,
}

impl CpusetFiles {
    pub fn open(cgroup: &Cgroup) -> Result<CpusetFiles, Error> {
        let (dir, cpus, mems) = match cgroup.controller("cpuset") {
            Some(ControllerDir::V1(dir)) => (dir, "cpuset.effective_cpus", "cpuset.effective_mems"),
            Some(ControllerDir::V2(dir)) => (dir, "cpuset.cpus.effective", "cpuset.mems.effective"),
            None => return Ok(CpusetFiles::default()),
        };
        Ok(CpusetFiles {
            cpus: Source::open(dir, cpus)?,
            mems: Source::open(dir, mems)?,
        })
    }

    pub fn read(&self, buf: &mut Buf) -> Result<CpusetStats, Error> {
        Ok(CpusetStats {
            cpus: read_list(&self.cpus, buf)?,
            mems: read_list(&self.mems, buf)?,
        })
    }
}

fn read_list(source: &Option<Source>, buf: &mut Buf) -> Result<Vec<u16>, Error> {
    match source {
        Some(source) => parse_list(source.path(), source.read(buf)?),
        None => Ok(Vec::new()),
    }
}

/// A kernel list like `0-3,8,10-11`.
fn parse_list(path: &Path, text: &str) -> Result<Vec<u16>, Error> {
    let bad = || Error::Parse {
        what: path.display().to_string(),
        reason: format!("bad cpu/node list {:?}", text.trim()),
    };
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (first, last) = part.split_once('-').unwrap_or((part, part));
        let first: u16 = first.parse().map_err(|_| bad())?;
        let last: u16 = last.parse().map_err(|_| bad())?;
        if first > last {
            return Err(bad());
        }
        out.extend(first..=last);
    }
    Ok(out)
}

/// v1's cpuset flags (`cpuset.<name>`); `None` where cpuset is not a v1 controller.
pub(super) fn flags(cgroup: &Cgroup) -> Result<Option<CpusetFlags>, Error> {
    let Some(ControllerDir::V1(dir)) = cgroup.controller("cpuset") else {
        return Ok(None);
    };
    let read = |name: &str| -> Result<i64, Error> {
        let path = dir.join(format!("cpuset.{name}"));
        let Some(text) = fsutil::read_optional(&path)? else {
            return Ok(0);
        };
        text.trim().parse().map_err(|_| Error::Parse {
            what: path.display().to_string(),
            reason: format!("expected a number, found {:?}", text.trim()),
        })
    };
    let flag = |name: &str| read(name).map(|v| u64::try_from(v).unwrap_or(0));
    Ok(Some(CpusetFlags {
        cpu_exclusive: flag("cpu_exclusive")?,
        mem_hardwall: flag("mem_hardwall")?,
        mem_exclusive: flag("mem_exclusive")?,
        memory_migrate: flag("memory_migrate")?,
        memory_spread_page: flag("memory_spread_page")?,
        memory_spread_slab: flag("memory_spread_slab")?,
        memory_pressure: flag("memory_pressure")?,
        sched_load_balance: flag("sched_load_balance")?,
        sched_relax_domain_level: read("sched_relax_domain_level")?,
    }))
}
