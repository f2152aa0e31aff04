//! `linux.resources.hugepageLimits`: `hugetlb.<size>.limit_in_bytes` (v1) or `hugetlb.<size>.max`
//! (v2), plus the reservation limit (`.rsvd.`) where the kernel has it, as runc sets both. The
//! page sizes are the ones the kernel shows as files in the cgroup's directory.

use std::fs;
use std::path::Path;

use oci_spec::runtime::LinuxHugepageLimit;

use crate::error::Error;
use crate::fsutil::Write;
use crate::resources::Step;

const SETTING: &str = "linux.resources.hugepageLimits";
const PAGE_SIZE: &str = "linux.resources.hugepageLimits.pageSize";
const LIMIT: &str = "linux.resources.hugepageLimits.limit";

/// The file suffixes of one cgroup version.
pub(crate) struct Files {
    limit: &'static str,
    rsvd: &'static str,
    unlimited: &'static str,
}

pub(crate) const V1: Files = Files {
    limit: "limit_in_bytes",
    rsvd: "rsvd.limit_in_bytes",
    unlimited: "-1",
};

pub(crate) const V2: Files = Files {
    limit: "max",
    rsvd: "rsvd.max",
    unlimited: "max",
};

/// One write per limit (two with the reservation file); an unknown page size is refused.
pub(crate) fn plan(
    dir: &Path,
    files: &Files,
    limits: &[LinuxHugepageLimit],
    steps: &mut Vec<Step>,
) -> Result<(), Error> {
    let sizes = page_sizes(dir, &format!(".{}", files.limit))?;
    if sizes.is_empty() {
        return Err(Error::unsupported(
            SETTING,
            &format!(
                "no huge page sizes here (no hugetlb.<size>.{} in {})",
                files.limit,
                dir.display()
            ),
        ));
    }
    for limit in limits {
        let size = limit.page_size();
        if !sizes.contains(size) {
            return Err(Error::invalid(
                PAGE_SIZE,
                size,
                &format!("this kernel's huge page sizes are {}", sizes.join(", ")),
            ));
        }
        let value = match limit.limit() {
            -1 => files.unlimited.to_string(),
            v if v < -1 => {
                return Err(Error::invalid(
                    LIMIT,
                    v,
                    "must be -1 (unlimited) or a byte count",
                ))
            }
            v => v.to_string(),
        };
        steps.push(Step::One(Write::new(
            dir,
            &format!("hugetlb.{size}.{}", files.limit),
            &value,
        )));
        let rsvd = format!("hugetlb.{size}.{}", files.rsvd);
        if dir.join(&rsvd).exists() {
            steps.push(Step::One(Write::new(dir, &rsvd, &value)));
        }
    }
    Ok(())
}

/// The `<size>` of every `hugetlb.<size><suffix>` file in `dir`, smallest first (a size never
/// has a dot, so `.rsvd.` files are not sizes).
pub(crate) fn page_sizes(dir: &Path, suffix: &str) -> Result<Vec<String>, Error> {
    let entries = fs::read_dir(dir).map_err(|source| Error::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut sizes: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let size = name.strip_prefix("hugetlb.")?.strip_suffix(suffix)?;
            (!size.contains('.')).then(|| size.to_string())
        })
        .collect();
    sizes.sort_by_key(|size| bytes(size));
    Ok(sizes)
}

/// `"2MB"` -> 2 MiB, as the kernel names sizes (KB, MB, GB); unknown shapes sort last.
fn bytes(size: &str) -> u64 {
    let shift = match size.get(size.len().saturating_sub(2)..) {
        Some("KB") => 10,
        Some("MB") => 20,
        Some("GB") => 30,
        _ => return u64::MAX,
    };
    size[..size.len() - 2]
        .parse::<u64>()
        .map_or(u64::MAX, |n| n << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_sort_by_bytes() {
        assert!(bytes("64KB") < bytes("2MB"));
        assert!(bytes("2MB") < bytes("1GB"));
        assert_eq!(bytes("1GB"), 1 << 30);
        assert_eq!(bytes("huge"), u64::MAX);
    }
}
