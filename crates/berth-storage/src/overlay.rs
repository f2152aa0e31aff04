//! Mounting an overlay of layer directories with the new mount API (`fsopen`/`fsconfig`).
//!
//! Each lower directory is passed as its own `lowerdir+` parameter (Linux 6.8+), so the number
//! of layers is not limited by the one-page option string of `mount(2)`. Older kernels (Debian
//! 12's 6.1) refuse that parameter; there the lower directories go as one colon-separated
//! `lowerdir` value, as `mount(2)` takes them, within its one page.

use std::io;
use std::path::{Path, PathBuf};

use rustix::fs::CWD;
use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags};

/// Why an overlay could not be mounted.
#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    /// A mount step failed.
    #[error("mounting overlay on {target}: {step}: {source}")]
    Mount {
        /// Where it was to be mounted.
        target: PathBuf,
        /// The step (`fsopen`, `lowerdir+ PATH`, `fsmount`, ...).
        step: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A path could not be passed to the kernel.
    #[error("mounting overlay on {target}: path {path} is not valid UTF-8")]
    BadPath {
        /// Where it was to be mounted.
        target: PathBuf,
        /// The offending path.
        path: PathBuf,
    },
}

/// The upper and work directories of a writable overlay.
#[derive(Debug, Clone, Copy)]
pub struct Upper<'a> {
    /// The writable layer.
    pub upper: &'a Path,
    /// overlayfs's work directory, on the same filesystem as `upper`.
    pub work: &'a Path,
}

/// Mount an overlay on `target`: `lowers` top-most first, plus an optional writable upper.
pub fn mount_overlay(
    lowers: &[PathBuf],
    upper: Option<Upper<'_>>,
    target: &Path,
) -> Result<(), OverlayError> {
    let lowers = lowers
        .iter()
        .map(|l| utf8(l, target))
        .collect::<Result<Vec<_>, _>>()?;
    let fs = match configure(&lowers, true, upper, target) {
        Err(OverlayError::Mount { source, .. })
            if source.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) =>
        {
            configure(&lowers, false, upper, target)?
        }
        other => other?,
    };
    attach(&fs, target)
}

/// Mount an overlay on `target` whose lowers are mounts given by fd (top-most first), e.g.
/// idmapped detached clones of the layers (`lowerdir+` by fd: Linux 6.13+).
pub fn mount_overlay_fds(
    lowers: &[rustix::fd::OwnedFd],
    upper: Option<Upper<'_>>,
    target: &Path,
) -> Result<(), OverlayError> {
    let fail = |step: String| mount_error(target, step);
    let fs = rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)
        .map_err(fail("fsopen".into()))?;
    for (i, fd) in lowers.iter().enumerate() {
        rustix::mount::fsconfig_set_fd(&fs, "lowerdir+", fd)
            .map_err(fail(format!("lowerdir+ (fd of layer {i})")))?;
    }
    set_upper(&fs, upper, target)?;
    rustix::mount::fsconfig_create(&fs).map_err(fail("create".into()))?;
    attach(&fs, target)
}

/// The error of mount step `step` on `target`, for `map_err`.
fn mount_error(target: &Path, step: String) -> impl FnOnce(rustix::io::Errno) -> OverlayError {
    let target = target.to_path_buf();
    move |e| OverlayError::Mount {
        target,
        step,
        source: e.into(),
    }
}

/// Mount the created overlay context `fs` on `target`.
fn attach(fs: &rustix::fd::OwnedFd, target: &Path) -> Result<(), OverlayError> {
    let fail = |step: &str| mount_error(target, step.to_owned());
    let mnt = rustix::mount::fsmount(fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())
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

fn set_upper(
    fs: &rustix::fd::OwnedFd,
    upper: Option<Upper<'_>>,
    target: &Path,
) -> Result<(), OverlayError> {
    let fail = |step: String| mount_error(target, step);
    if let Some(Upper { upper, work }) = upper {
        let up = utf8(upper, target)?;
        rustix::mount::fsconfig_set_string(fs, "upperdir", up)
            .map_err(fail(format!("upperdir {up}")))?;
        let wk = utf8(work, target)?;
        rustix::mount::fsconfig_set_string(fs, "workdir", wk)
            .map_err(fail(format!("workdir {wk}")))?;
    }
    Ok(())
}

/// An overlay filesystem context with the lower directories (one `lowerdir+` each, or one
/// colon-separated `lowerdir`) and the upper, created (superblock made) but not mounted.
fn configure(
    lowers: &[&str],
    one_by_one: bool,
    upper: Option<Upper<'_>>,
    target: &Path,
) -> Result<rustix::fd::OwnedFd, OverlayError> {
    let fail = |step: String| mount_error(target, step);
    let fs = rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)
        .map_err(fail("fsopen".into()))?;
    if one_by_one {
        for value in lowers {
            rustix::mount::fsconfig_set_string(&fs, "lowerdir+", *value)
                .map_err(fail(format!("lowerdir+ {value}")))?;
        }
    } else {
        if let Some(bad) = lowers.iter().find(|l| l.contains([':', ','])) {
            return Err(OverlayError::Mount {
                target: target.to_path_buf(),
                step: format!("lowerdir {bad}"),
                source: io::Error::other(
                    "a ':' or ',' in a layer path (this kernel takes one lowerdir list)",
                ),
            });
        }
        let value = lowers.join(":");
        rustix::mount::fsconfig_set_string(&fs, "lowerdir", value.as_str())
            .map_err(fail(format!("lowerdir {value}")))?;
    }
    set_upper(&fs, upper, target)?;
    rustix::mount::fsconfig_create(&fs).map_err(fail("create".into()))?;
    Ok(fs)
}

fn utf8<'p>(path: &'p Path, target: &Path) -> Result<&'p str, OverlayError> {
    path.to_str().ok_or_else(|| OverlayError::BadPath {
        target: target.to_path_buf(),
        path: path.to_path_buf(),
    })
}
