//! Tasks: `pids.current` and `pids.max`, the same on both versions.

use super::source::{limit_or_none, u64_or_zero, Buf, Source};
use super::PidsStats;
use crate::cgroup::{Cgroup, ControllerDir};
use crate::error::Error;

#[derive(Debug, Default)]
pub(super) struct PidsFiles {
    current: Option<Source>,
    max: Option<Source>,
}

impl PidsFiles {
    pub fn open(cgroup: &Cgroup) -> Result<PidsFiles, Error> {
        match cgroup.controller("pids") {
            Some(ControllerDir::V1(dir) | ControllerDir::V2(dir)) => Ok(PidsFiles {
                current: Source::open(dir, "pids.current")?,
                max: Source::open(dir, "pids.max")?,
            }),
            None => Ok(PidsFiles::default()),
        }
    }

    pub fn read(&self, buf: &mut Buf) -> Result<PidsStats, Error> {
        Ok(PidsStats {
            current: u64_or_zero(&self.current, buf)?,
            limit: limit_or_none(&self.max, buf)?,
        })
    }
}
