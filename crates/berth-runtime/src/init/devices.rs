//! /dev: the default devices, the spec's extra devices, and the standard symlinks.
//! Devices are made with mknod, or bind-mounted from the host inside a user namespace (where
//! mknod is not allowed).

use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use oci_spec::runtime::LinuxDeviceType;

use super::rootfs::{fd_path, Create, Root};
use super::{Config, Step, StepError};

/// A device node to create.
struct Device {
    path: PathBuf,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
}

/// runc's default devices: null, zero, full, tty, random, urandom.
fn defaults() -> Vec<Device> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("tty", 5, 0),
        ("random", 1, 8),
        ("urandom", 1, 9),
    ]
    .into_iter()
    .map(|(name, major, minor)| Device {
        path: Path::new("/dev").join(name),
        kind: SFlag::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

/// Create the devices and symlinks, unless /dev is a bind mount from the host.
pub fn setup(config: &Config<'_>, root: &Root) -> Result<(), StepError> {
    let dev_is_bound = config.spec.mounts().iter().flatten().any(|m| {
        m.destination() == Path::new("/dev")
            && m.options()
                .iter()
                .flatten()
                .any(|o| o == "bind" || o == "rbind")
    });
    if dev_is_bound {
        return Ok(());
    }
    let in_userns = config.plan.new_userns
        || crate::rootless::in_user_namespace()
        || config
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .is_some_and(|ns| {
                ns.iter()
                    .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User)
            });
    let mut devices = defaults();
    for d in config
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().clone())
        .into_iter()
        .flatten()
    {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => continue,
        };
        devices.retain(|x| x.path != *d.path());
        devices.push(Device {
            path: d.path().clone(),
            kind,
            major: d.major() as u64,
            minor: d.minor() as u64,
            mode: d.file_mode().unwrap_or(0o666),
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        });
    }
    for device in &devices {
        if in_userns {
            bind_device(root, device)?;
        } else {
            make_device(root, device)?;
        }
    }
    symlinks(root)
}

fn make_device(root: &Root, d: &Device) -> Result<(), StepError> {
    let step = || format!("create device {}", d.path.display());
    let parent = d.path.parent().unwrap_or(Path::new("/"));
    let name = d.path.file_name().unwrap_or_default();
    let dir = root.resolve(parent, Create::Dir).step(step)?;
    // O_PATH fds cannot be used as *at() directories for mknod; reopen the directory.
    let dir = berth_sys::openat2(dir.as_fd(), c".", libc::O_RDONLY | libc::O_DIRECTORY, 0, 0)
        .step(step)?;
    let _ = nix::unistd::unlinkat(
        Some(dir.as_raw_fd()),
        name,
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    );
    mknodat(
        Some(dir.as_raw_fd()),
        name,
        d.kind,
        Mode::from_bits_truncate(d.mode),
        makedev(d.major, d.minor),
    )
    .step(step)?;
    nix::unistd::fchownat(
        Some(dir.as_raw_fd()),
        name,
        Some(d.uid.into()),
        Some(d.gid.into()),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .step(step)
}

fn bind_device(root: &Root, d: &Device) -> Result<(), StepError> {
    let target = root
        .resolve(&d.path, Create::File)
        .step(|| format!("create device {}", d.path.display()))?;
    mount(
        Some(&d.path),
        fd_path(target.as_fd()).as_str(),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .step(|| format!("bind device {}", d.path.display()))
}

fn symlinks(root: &Root) -> Result<(), StepError> {
    let dev = root
        .resolve(Path::new("/dev"), Create::Dir)
        .step(|| "open /dev".into())?;
    let dev = berth_sys::openat2(dev.as_fd(), c".", libc::O_RDONLY | libc::O_DIRECTORY, 0, 0)
        .step(|| "open /dev".into())?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        match nix::unistd::symlinkat(target, Some(dev.as_raw_fd()), name) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(e).step(|| format!("symlink /dev/{name}")),
        }
    }
    // /dev/ptmx points at the container's own devpts instance.
    let _ = nix::unistd::unlinkat(
        Some(dev.as_raw_fd()),
        "ptmx",
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    );
    nix::unistd::symlinkat("pts/ptmx", Some(dev.as_raw_fd()), "ptmx")
        .step(|| "symlink /dev/ptmx".into())
}
