//! Huge pages per page size: v1 `hugetlb.<size>.usage_in_bytes` / `max_usage_in_bytes` /
//! `failcnt`, or cgroup2 `hugetlb.<size>.current` and the `max` count of `hugetlb.<size>.events`.
//! In hybrid mode hugetlb may be a cgroup2 controller: its files are read there.

use std::collections::BTreeMap;

use super::source::{key, u64_or_zero, Buf, Source};
use super::HugetlbStats;
use crate::cgroup::{Cgroup, ControllerDir};
use crate::error::Error;

#[derive(Debug)]
enum SizeFiles {
    V1 {
        usage: Option<Source>,
        max_usage: Option<Source>,
        failcnt: Option<Source>,
    },
    V2 {
        current: Option<Source>,
        events: Option<Source>,
    },
}

/// One entry per page size ("2MB", "1GB"), as the kernel names them in the file names.
#[derive(Debug, Default)]
pub(super) struct HugetlbFiles {
    sizes: Vec<(String, SizeFiles)>,
}

impl HugetlbFiles {
    pub fn open(cgroup: &Cgroup) -> Result<HugetlbFiles, Error> {
        let (dir, v2) = match cgroup.controller("hugetlb") {
            Some(ControllerDir::V1(dir)) => (dir, false),
            Some(ControllerDir::V2(dir)) => (dir, true),
            None => return Ok(HugetlbFiles::default()),
        };
        let suffix = if v2 { ".current" } else { ".usage_in_bytes" };
        let mut sizes = Vec::new();
        for size in crate::hugetlb::page_sizes(dir, suffix)? {
            let open = |name: &str| Source::open(dir, &format!("hugetlb.{size}.{name}"));
            let files = if v2 {
                SizeFiles::V2 {
                    current: open("current")?,
                    events: open("events")?,
                }
            } else {
                SizeFiles::V1 {
                    usage: open("usage_in_bytes")?,
                    max_usage: open("max_usage_in_bytes")?,
                    failcnt: open("failcnt")?,
                }
            };
            sizes.push((size, files));
        }
        Ok(HugetlbFiles { sizes })
    }

    pub fn read(&self, buf: &mut Buf) -> Result<BTreeMap<String, HugetlbStats>, Error> {
        let mut out = BTreeMap::new();
        for (size, files) in &self.sizes {
            let stats = match files {
                SizeFiles::V1 {
                    usage,
                    max_usage,
                    failcnt,
                } => HugetlbStats {
                    usage: u64_or_zero(usage, buf)?,
                    max_usage: u64_or_zero(max_usage, buf)?,
                    failcnt: u64_or_zero(failcnt, buf)?,
                },
                SizeFiles::V2 { current, events } => HugetlbStats {
                    usage: u64_or_zero(current, buf)?,
                    max_usage: 0,
                    failcnt: match events {
                        Some(source) => key(source.read(buf)?, "max"),
                        None => 0,
                    },
                },
            };
            out.insert(size.clone(), stats);
        }
        Ok(out)
    }
}
