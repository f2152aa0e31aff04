//! `--storage-opt size=N`: parsing the options, finding out what the storage root sits on, and
//! bounding a container's writable layer: with an XFS project quota when the root is XFS
//! mounted with `prjquota`, otherwise with a loop-mounted ext4 image.
//!
//! The image is a sparse file of exactly N bytes, formatted by `mkfs.ext4` (4 KiB blocks, one
//! inode per 16 KiB, no journal, no reserved blocks: about 98% of N is usable), attached to a
//! loop device with autoclear and mounted with the new mount API. The mount holds the loop
//! device: unmounting detaches it.

use std::fs::{self, File};
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_sys::{loopdev, projquota};
use rustix::fs::CWD;
use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags};

/// The smallest `size=` accepted: below it an ext4 image holds next to nothing.
pub const MIN_SIZE: u64 = 4 << 20;
const XFS_SUPER_MAGIC: u64 = 0x5846_5342;
const MKFS: &str = "mkfs.ext4";
const MKFS_DIRS: [&str; 3] = ["/usr/sbin", "/sbin", "/usr/bin"];
/// Fast and quiet: no discard of a fresh sparse file, no journal (a writable layer is
/// disposable), no reserved blocks, inode tables left to read as zeros (mounted with
/// `noinit_itable`, so the kernel does not zero them behind our back).
const MKFS_ARGS: [&str; 14] = [
    "-q",
    "-F",
    "-b",
    "4096",
    "-i",
    "16384",
    "-I",
    "256",
    "-m",
    "0",
    "-O",
    "^has_journal",
    "-E",
    "nodiscard,lazy_itable_init=1",
];

/// Why a storage option or a size-limited layer failed.
#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    /// A `--storage-opt` is not `key=value`.
    #[error("--storage-opt {option:?}: expected key=value (e.g. size=10G)")]
    NotKeyValue {
        /// The option as given.
        option: String,
    },
    /// A `--storage-opt` key this driver does not know.
    #[error("--storage-opt {option:?}: unknown option {key:?} (supported: size)")]
    UnknownOption {
        /// The option as given.
        option: String,
        /// Its key.
        key: String,
    },
    /// The same key twice.
    #[error("--storage-opt {key}= given more than once")]
    Duplicate {
        /// The key.
        key: String,
    },
    /// A `size=` value that is not a size, is zero, or is too small.
    #[error("--storage-opt size={value:?}: {reason}")]
    BadSize {
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Setting or clearing an XFS project quota failed.
    #[error("XFS project quota {project} on {path}: {step}: {source}")]
    ProjectQuota {
        /// The project id.
        project: u32,
        /// The directory.
        path: PathBuf,
        /// What was being done.
        step: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A filesystem or device step failed.
    #[error("rootfs image {path}: {step}: {source}")]
    Io {
        /// What was being done.
        step: &'static str,
        /// The image, device or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// `mkfs.ext4` is not installed.
    #[error("rootfs image {path}: mkfs.ext4 not found (install e2fsprogs)")]
    NoMkfs {
        /// The image.
        path: PathBuf,
    },
    /// `mkfs.ext4` exited with an error.
    #[error("rootfs image {path}: mkfs.ext4 failed ({status}): {stderr}")]
    Mkfs {
        /// The image.
        path: PathBuf,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it printed.
        stderr: String,
    },
    /// Mounting the image failed.
    #[error("mounting rootfs image {image} ({device}) on {target}: {step}: {source}")]
    Mount {
        /// The image.
        image: PathBuf,
        /// The loop device.
        device: PathBuf,
        /// The mount point.
        target: PathBuf,
        /// The mount step (`fsopen`, `source`, `fsmount`, ...).
        step: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

fn io_err(step: &'static str, path: &Path) -> impl FnOnce(io::Error) -> QuotaError {
    let path = path.to_path_buf();
    move |source| QuotaError::Io { step, path, source }
}

/// Options for a container's root filesystem (`--storage-opt`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RootfsOptions {
    /// Upper bound of the writable layer, in bytes.
    pub size: Option<u64>,
    /// The container's user namespace maps, if it has its own (set by the engine, not by
    /// `--storage-opt`).
    pub idmap: Option<crate::idmap::IdMap>,
}

impl RootfsOptions {
    /// Parse `--storage-opt` values (`size=10G`). Unknown keys and repeated keys are errors.
    pub fn parse<S: AsRef<str>>(options: &[S]) -> Result<RootfsOptions, QuotaError> {
        let mut parsed = RootfsOptions::default();
        for option in options {
            let option = option.as_ref();
            let (key, value) = option
                .split_once('=')
                .ok_or_else(|| QuotaError::NotKeyValue {
                    option: option.to_owned(),
                })?;
            match key.trim().to_ascii_lowercase().as_str() {
                "size" if parsed.size.is_some() => {
                    return Err(QuotaError::Duplicate { key: "size".into() })
                }
                "size" => parsed.size = Some(parse_size(value)?),
                _ => {
                    return Err(QuotaError::UnknownOption {
                        option: option.to_owned(),
                        key: key.to_owned(),
                    })
                }
            }
        }
        Ok(parsed)
    }
}

/// Parse a size like docker (`go-units` `RAMInBytes`): a number, optionally with a fraction,
/// then an optional binary unit `k`, `m`, `g`, `t`, `p` (case-insensitive, optionally followed
/// by `b` or `ib`): `64m`, `1G`, `100MB`, `1.5GiB`, `4096`. Zero and sizes below [`MIN_SIZE`]
/// are rejected.
pub fn parse_size(value: &str) -> Result<u64, QuotaError> {
    let bad = |reason: &str| QuotaError::BadSize {
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    let text = value.trim().to_ascii_lowercase();
    let digits_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let shift = unit_shift(unit.trim_start()).ok_or_else(|| {
        bad("expected a number with an optional unit k, m, g, t or p (e.g. 64m, 10G)")
    })?;
    let bytes = scaled(number, shift).ok_or_else(|| bad("not a number, or too large"))?;
    if bytes == 0 {
        return Err(bad("must be greater than zero"));
    }
    if bytes < MIN_SIZE {
        return Err(bad("must be at least 4 MiB"));
    }
    Ok(bytes)
}

/// The power of two of a unit suffix (`""`, `b`, `k`, `kb`, `kib`, ...).
fn unit_shift(unit: &str) -> Option<u32> {
    let mut chars = unit.chars();
    let shift = match chars.next() {
        None => return Some(0),
        Some('b') => return chars.next().is_none().then_some(0),
        Some('k') => 10,
        Some('m') => 20,
        Some('g') => 30,
        Some('t') => 40,
        Some('p') => 50,
        Some(_) => return None,
    };
    matches!(chars.as_str(), "" | "b" | "ib" | "i").then_some(shift)
}

/// `number` (digits with at most one `.`) times 2^shift, rounded down; `None` on overflow.
fn scaled(number: &str, shift: u32) -> Option<u64> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let unit = 1u128 << shift;
    let mut bytes = whole.parse::<u128>().ok()?.checked_mul(unit)?;
    // At most 18 fractional digits count: beyond that they are below a byte.
    let fraction = &fraction[..fraction.len().min(18)];
    if !fraction.is_empty() {
        let denominator = 10u128.pow(fraction.len() as u32);
        bytes += fraction.parse::<u128>().ok()? * unit / denominator;
    }
    u64::try_from(bytes).ok()
}

/// What the storage root sits on, as far as size limits are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackingFs {
    /// XFS mounted with `prjquota`: project quotas could limit each writable layer.
    XfsProjectQuota,
    /// Anything else (`f_type` from `statfs`): size limits need a loop-mounted image.
    Other {
        /// The filesystem magic.
        magic: u64,
    },
}

/// Find out what `path` is stored on.
pub fn detect_backing(path: &Path) -> Result<BackingFs, QuotaError> {
    let stat = rustix::fs::statfs(path).map_err(|e| io_err("statfs", path)(e.into()))?;
    let magic = stat.f_type as u64;
    if magic == XFS_SUPER_MAGIC && has_prjquota(path)? {
        return Ok(BackingFs::XfsProjectQuota);
    }
    Ok(BackingFs::Other { magic })
}

/// Whether the mount holding `path` has enforced project quotas (`prjquota` in its super
/// options in `/proc/self/mountinfo`).
fn has_prjquota(path: &Path) -> Result<bool, QuotaError> {
    let stat = rustix::fs::stat(path).map_err(|e| io_err("stat", path)(e.into()))?;
    let device = format!(
        "{}:{}",
        rustix::fs::major(stat.st_dev),
        rustix::fs::minor(stat.st_dev)
    );
    let mountinfo = Path::new("/proc/self/mountinfo");
    let text = fs::read_to_string(mountinfo).map_err(io_err("read", mountinfo))?;
    Ok(text.lines().any(|line| {
        let mut fields = line.split(' ');
        let same_device = fields.nth(2) == Some(device.as_str());
        let super_options = line.rsplit(' ').next().unwrap_or("");
        same_device && super_options.split(',').any(|o| o == "prjquota")
    }))
}

/// The next free project id for a directory under `parents`: one more than the largest id
/// of the parents themselves and of their entries. The caller serialises allocations.
pub fn next_project_id(parents: &[&Path]) -> Result<u32, QuotaError> {
    let mut largest = 0;
    for parent in parents {
        largest = largest.max(project_of(parent)?);
        for entry in fs::read_dir(parent).map_err(io_err("list", parent))? {
            let path = entry.map_err(io_err("list", parent))?.path();
            if path.is_dir() {
                largest = largest.max(project_of(&path)?);
            }
        }
    }
    largest
        .checked_add(1)
        .ok_or_else(|| QuotaError::ProjectQuota {
            project: largest,
            path: parents.first().map(|p| p.to_path_buf()).unwrap_or_default(),
            step: "allocate",
            source: io::Error::other("project ids exhausted"),
        })
}

fn project_of(dir: &Path) -> Result<u32, QuotaError> {
    let file = File::open(dir).map_err(io_err("open", dir))?;
    projquota::project_id(file.as_fd()).map_err(|source| QuotaError::ProjectQuota {
        project: 0,
        path: dir.to_path_buf(),
        step: "read project id",
        source,
    })
}

/// Put the directory `dir` (and everything later created in it) in project `project`, limited
/// to `size` bytes.
pub fn limit_project(dir: &Path, project: u32, size: u64) -> Result<(), QuotaError> {
    let fail = |step| {
        let path = dir.to_path_buf();
        move |source| QuotaError::ProjectQuota {
            project,
            path,
            step,
            source,
        }
    };
    let file = File::open(dir).map_err(io_err("open", dir))?;
    projquota::set_project_inherit(file.as_fd(), project).map_err(fail("set project id"))?;
    projquota::set_project_block_limit(file.as_fd(), project, size).map_err(fail("set limit"))
}

/// Remove the limit of `project` on the filesystem holding `any_dir`.
pub fn clear_project(any_dir: &Path, project: u32) -> Result<(), QuotaError> {
    let file = File::open(any_dir).map_err(io_err("open", any_dir))?;
    projquota::set_project_block_limit(file.as_fd(), project, 0).map_err(|source| {
        QuotaError::ProjectQuota {
            project,
            path: any_dir.to_path_buf(),
            step: "clear limit",
            source,
        }
    })
}

/// Where `mkfs.ext4` is: on `PATH`, or in the usual sbin directories (`PATH` of a non-login
/// root shell often lacks them).
pub fn mkfs_ext4() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(MKFS_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(MKFS))
        .find(|candidate| candidate.is_file())
}

/// Create `image` (which must not exist) as a sparse file of `size` bytes and format it ext4.
/// Returns how long `mkfs.ext4` took. On failure the file is removed.
pub fn make_image(image: &Path, size: u64) -> Result<Duration, QuotaError> {
    let mkfs = mkfs_ext4().ok_or_else(|| QuotaError::NoMkfs {
        path: image.to_path_buf(),
    })?;
    let file = File::options()
        .write(true)
        .create_new(true)
        .open(image)
        .map_err(io_err("create", image))?;
    let result = file
        .set_len(size)
        .map_err(io_err("set size", image))
        .and_then(|()| run_mkfs(&mkfs, image));
    drop(file);
    if result.is_err() {
        let _ = fs::remove_file(image);
    }
    result
}

fn run_mkfs(mkfs: &Path, image: &Path) -> Result<Duration, QuotaError> {
    let started = Instant::now();
    let output = Command::new(mkfs)
        .args(MKFS_ARGS)
        .arg(image)
        .stdin(Stdio::null())
        .output()
        .map_err(io_err("run mkfs.ext4", image))?;
    let took = started.elapsed();
    if !output.status.success() {
        let mut stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        stderr.push_str(String::from_utf8_lossy(&output.stdout).trim());
        return Err(QuotaError::Mkfs {
            path: image.to_path_buf(),
            status: output.status,
            stderr,
        });
    }
    Ok(took)
}

/// Attach `image` to a free loop device (autoclear) and mount its ext4 on `target`. The mount
/// keeps the device attached; unmounting `target` detaches it. On failure nothing is left
/// attached or mounted.
pub fn mount_image(image: &Path, target: &Path) -> Result<(), QuotaError> {
    let backing = File::options()
        .read(true)
        .write(true)
        .open(image)
        .map_err(io_err("open", image))?;
    let device = loopdev::attach(backing.as_fd(), loopdev::flags::AUTOCLEAR)
        .map_err(io_err("attach loop device", image))?;
    drop(backing);
    // `device` (the only opener until the mount exists) is dropped on every path: on error
    // autoclear detaches the loop device; on success the mount holds it.
    mount_ext4(image, &device.path(), target)
}

fn mount_ext4(image: &Path, device: &Path, target: &Path) -> Result<(), QuotaError> {
    let fail = |step: &'static str| {
        let (image, device, target) = (image.to_owned(), device.to_owned(), target.to_owned());
        move |e: rustix::io::Errno| QuotaError::Mount {
            image,
            device,
            target,
            step,
            source: e.into(),
        }
    };
    let fs = rustix::mount::fsopen("ext4", FsOpenFlags::FSOPEN_CLOEXEC).map_err(fail("fsopen"))?;
    rustix::mount::fsconfig_set_string(&fs, "source", device).map_err(fail("source"))?;
    rustix::mount::fsconfig_set_flag(&fs, "noinit_itable").map_err(fail("noinit_itable"))?;
    rustix::mount::fsconfig_create(&fs).map_err(fail("create"))?;
    let mnt = rustix::mount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())
        .map_err(fail("fsmount"))?;
    rustix::mount::move_mount(
        &mnt,
        "",
        CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(fail("move_mount"))
}

/// Loop devices (`/dev/loopN`) whose backing file is `image`.
pub fn loop_devices_of(image: &Path) -> Result<Vec<PathBuf>, QuotaError> {
    let sys = Path::new("/sys/block");
    let wanted = image.to_string_lossy();
    let deleted = format!("{wanted} (deleted)");
    let mut devices = Vec::new();
    for entry in fs::read_dir(sys).map_err(io_err("list", sys))? {
        let entry = entry.map_err(io_err("list", sys))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(number) = name
            .strip_prefix("loop")
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // No `loop/` directory or no backing_file: the device is not attached.
        let Ok(backing) = fs::read_to_string(entry.path().join("loop/backing_file")) else {
            continue;
        };
        let backing = backing.trim_end_matches('\n');
        if backing == wanted || backing == deleted {
            devices.push(loopdev::device_path(number));
        }
    }
    Ok(devices)
}

/// Detach every loop device backed by `image`; one error per device that would not let go.
pub fn detach_loop_devices(image: &Path) -> Vec<QuotaError> {
    let devices = match loop_devices_of(image) {
        Ok(devices) => devices,
        Err(e) => return vec![e],
    };
    devices
        .into_iter()
        .filter_map(|device| match loopdev::detach(&device) {
            Ok(()) => None,
            // Detached meanwhile (autoclear after an unmount).
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => None,
            Err(e) => Some(io_err("detach loop device", &device)(e)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sizes_parse_like_docker() {
        for (text, bytes) in [
            ("64m", 64 << 20),
            ("64M", 64 << 20),
            ("1G", 1 << 30),
            ("1g", 1 << 30),
            ("100MB", 100 << 20),
            ("100mb", 100 << 20),
            ("1.5GiB", 3 << 29),
            ("4194304", 4 << 20),
            ("8192k", 8 << 20),
            ("10 GB", 10 << 30),
            ("2t", 2 << 40),
        ] {
            assert_eq!(parse_size(text).unwrap(), bytes, "{text}");
        }
    }

    #[test]
    fn bad_sizes_are_rejected_with_the_value() {
        for text in [
            "0",
            "0m",
            "",
            "m",
            "-1",
            "64x",
            "64mbb",
            "1.2.3g",
            "abc",
            "1k",
            "99999999999p",
        ] {
            let err = parse_size(text).unwrap_err().to_string();
            assert!(err.contains(&format!("{text:?}")), "{text}: {err}");
        }
    }

    #[test]
    fn storage_options_name_the_bad_option() {
        assert_eq!(
            RootfsOptions::parse(&["size=64m"]).unwrap().size,
            Some(64 << 20)
        );
        assert_eq!(RootfsOptions::parse::<&str>(&[]).unwrap().size, None);
        let err = RootfsOptions::parse(&["inodes=10"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown option \"inodes\""), "{err}");
        let err = RootfsOptions::parse(&["size"]).unwrap_err().to_string();
        assert!(err.contains("expected key=value"), "{err}");
        let err = RootfsOptions::parse(&["size=1g", "size=2g"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than once"), "{err}");
    }
}
