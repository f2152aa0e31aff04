//! The spec's `mounts`, in order. Every destination is resolved inside the rootfs through fds
//! and mounted through `/proc/self/fd/N`, so a symlink in the image cannot redirect a mount.

use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::sys::stat::Mode;
use oci_spec::runtime::Mount;

use super::rootfs::{fd_path, keep_flags, propagation_flag, Create, Root};
use super::{fail, Config, Role, Step, StepError};
use crate::sync::Channel;

/// A mount's options, split the way mount(2) and mount_setattr(2) want them.
#[derive(Debug, PartialEq, Eq)]
pub struct Options {
    /// Flags to set.
    pub set: MsFlags,
    /// Flags the options clear (`rw`, `suid`, …).
    pub clear: MsFlags,
    /// Propagation changes, applied after the mount.
    pub propagation: Vec<MsFlags>,
    /// Recursive attributes (`rro`, `rnosuid`, …) for mount_setattr: (set, clear).
    pub recursive: (u64, u64),
    /// Filesystem-specific data (`mode=755`, `size=65536k`, …).
    pub data: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            set: MsFlags::empty(),
            clear: MsFlags::empty(),
            propagation: Vec::new(),
            recursive: (0, 0),
            data: Vec::new(),
        }
    }
}

/// Errors in the options themselves.
#[derive(Debug, thiserror::Error)]
#[error("mount option {0:?} is not supported")]
pub struct UnsupportedOption(pub String);

/// Parse mount options as runc does.
pub fn parse_options(options: &[String]) -> Result<Options, UnsupportedOption> {
    let mut o = Options::default();
    for opt in options {
        let (set, clear) = match opt.as_str() {
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
            "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
            "acl" => (MsFlags::MS_POSIXACL, MsFlags::empty()),
            "noacl" => (MsFlags::empty(), MsFlags::MS_POSIXACL),
            "iversion" => (MsFlags::MS_I_VERSION, MsFlags::empty()),
            "noiversion" => (MsFlags::empty(), MsFlags::MS_I_VERSION),
            "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
            "nolazytime" => (MsFlags::empty(), MsFlags::MS_LAZYTIME),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            other => {
                if let Some(p) = propagation_flag(other) {
                    o.propagation.push(p);
                } else if let Some((set, clear)) = recursive_attr(other) {
                    o.recursive.0 |= set;
                    o.recursive.1 |= clear;
                } else if matches!(other, "idmap" | "ridmap" | "tmpcopyup") {
                    return Err(UnsupportedOption(other.into()));
                } else {
                    o.data.push(other.into());
                }
                continue;
            }
        };
        o.set = (o.set | set) & !clear;
        o.clear = (o.clear | clear) & !set;
    }
    Ok(o)
}

fn recursive_attr(opt: &str) -> Option<(u64, u64)> {
    use berth_sys::mount_attr::*;
    Some(match opt {
        "rro" => (RDONLY, 0),
        "rrw" => (0, RDONLY),
        "rnosuid" => (NOSUID, 0),
        "rsuid" => (0, NOSUID),
        "rnodev" => (NODEV, 0),
        "rdev" => (0, NODEV),
        "rnoexec" => (NOEXEC, 0),
        "rexec" => (0, NOEXEC),
        _ => return None,
    })
}

/// Mount every entry of the spec's `mounts`.
pub fn mount_all(config: &Config<'_>, root: &Root, channel: &Channel) -> Result<(), StepError> {
    for m in config.spec.mounts().iter().flatten() {
        mount_one(config, root, m, channel)?;
    }
    Ok(())
}

fn mount_one(
    config: &Config<'_>,
    root: &Root,
    m: &Mount,
    channel: &Channel,
) -> Result<(), StepError> {
    let dest = m.destination();
    let typ = m.typ().clone().unwrap_or_else(|| "none".into());
    let step = || format!("mount {typ} to {}", dest.display());
    let opts = parse_options(m.options().as_deref().unwrap_or(&[]))
        .map_err(|e| fail(step(), e.to_string()))?;
    let bind = opts.set.contains(MsFlags::MS_BIND) || typ == "bind";
    if typ == "cgroup" || typ == "cgroup2" {
        super::wait_for_cgroup(config, channel)?;
        return mount_cgroup(config, root, dest, &opts).map_err(|e| fail(step(), e.cause));
    }
    let source: Option<PathBuf> = m.source().clone().map(|s| {
        if bind && s.is_relative() {
            config.bundle.join(s)
        } else {
            s
        }
    });
    let create = match (&source, bind) {
        (Some(src), true) => {
            let meta =
                std::fs::metadata(src).step(|| format!("{}: stat {}", step(), src.display()))?;
            if meta.is_dir() {
                Create::Dir
            } else {
                Create::File
            }
        }
        _ => Create::Dir,
    };
    let target = root
        .resolve(dest, create)
        .step(|| format!("{}: resolve destination", step()))?;
    let target_path = fd_path(target.as_fd());
    let data = (!opts.data.is_empty()).then(|| opts.data.join(","));
    let first_flags = if bind {
        opts.set & (MsFlags::MS_BIND | MsFlags::MS_REC)
    } else {
        opts.set
    };
    let result = mount(
        source.as_deref(),
        target_path.as_str(),
        Some(typ.as_str()).filter(|_| !bind),
        first_flags,
        data.as_deref(),
    );
    match result {
        // devpts refuses gid=5 in a user namespace without that gid mapped; runc retries without.
        Err(nix::errno::Errno::EINVAL)
            if typ == "devpts" && data.as_deref().is_some_and(|d| d.contains("gid=")) =>
        {
            let data: Vec<&str> = opts
                .data
                .iter()
                .map(String::as_str)
                .filter(|d| !d.starts_with("gid="))
                .collect();
            mount(
                source.as_deref(),
                target_path.as_str(),
                Some("devpts"),
                opts.set,
                Some(data.join(",").as_str()),
            )
            .step(step)?;
        }
        other => other.step(step)?,
    }
    let needs_remount = bind && !(opts.set & !(MsFlags::MS_BIND | MsFlags::MS_REC)).is_empty();
    if needs_remount || !opts.propagation.is_empty() || opts.recursive != (0, 0) {
        let mounted = root.resolve(dest, Create::Nothing).step(step)?;
        let path = fd_path(mounted.as_fd());
        if needs_remount {
            let flags = MsFlags::MS_BIND
                | MsFlags::MS_REMOUNT
                | (opts.set & !MsFlags::MS_REC)
                | keep_flags(Path::new(&path));
            mount(
                None::<&str>,
                path.as_str(),
                None::<&str>,
                flags,
                None::<&str>,
            )
            .step(|| format!("remount {}", dest.display()))?;
        }
        for p in &opts.propagation {
            mount(None::<&str>, path.as_str(), None::<&str>, *p, None::<&str>)
                .step(|| format!("set propagation of {}", dest.display()))?;
        }
        if opts.recursive != (0, 0) {
            berth_sys::mount_setattr(mounted.as_fd(), true, opts.recursive.0, opts.recursive.1)
                .step(|| format!("set recursive attributes of {}", dest.display()))?;
        }
    }
    Ok(())
}

/// A `cgroup` mount shows the container its own cgroups: the unified directory itself on pure
/// v2, otherwise a tmpfs with one bind-mounted directory per hierarchy (as runc does on v1).
fn mount_cgroup(
    config: &Config<'_>,
    root: &Root,
    dest: &Path,
    opts: &Options,
) -> Result<(), StepError> {
    let Role::Init { cgroup_dirs, .. } = &config.role else {
        return Ok(());
    };
    let flags = opts.set
        & (MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    let bind = |src: &Path, target: &std::os::fd::OwnedFd| -> Result<(), StepError> {
        let path = fd_path(target.as_fd());
        mount(
            Some(src),
            path.as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .step(|| format!("bind {}", src.display()))
    };
    if let [(name, dir)] = cgroup_dirs.as_slice() {
        if name == "unified" {
            let target = root
                .resolve(dest, Create::Dir)
                .step(|| "resolve destination".into())?;
            bind(dir, &target)?;
            return remount_flags(root, dest, flags);
        }
    }
    let target = root
        .resolve(dest, Create::Dir)
        .step(|| "resolve destination".into())?;
    mount(
        Some("tmpfs"),
        fd_path(target.as_fd()).as_str(),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=755"),
    )
    .step(|| "mount tmpfs".into())?;
    // The tmpfs is new and ours: its directories are made and opened relative to it.
    let tmpfs = root
        .resolve(dest, Create::Nothing)
        .step(|| "resolve the cgroup tmpfs".into())?;
    let tmpfs = berth_sys::openat2(
        tmpfs.as_fd(),
        c".",
        libc::O_RDONLY | libc::O_DIRECTORY,
        0,
        0,
    )
    .step(|| "open the cgroup tmpfs".into())?;
    for (name, dir) in cgroup_dirs {
        let step = || format!("mount cgroup {name}");
        nix::sys::stat::mkdirat(
            Some(tmpfs.as_raw_fd()),
            name.as_str(),
            Mode::from_bits_truncate(0o755),
        )
        .step(step)?;
        let c_name = std::ffi::CString::new(name.as_str()).map_err(|_| fail(step(), "bad name"))?;
        let sub = berth_sys::openat2(
            tmpfs.as_fd(),
            &c_name,
            libc::O_PATH | libc::O_DIRECTORY,
            0,
            berth_sys::resolve::BENEATH | berth_sys::resolve::NO_SYMLINKS,
        )
        .step(step)?;
        bind(dir, &sub)?;
    }
    // One recursive mount_setattr for the tmpfs and every hierarchy in it.
    if flags.is_empty() {
        return Ok(());
    }
    let top = root
        .resolve(dest, Create::Nothing)
        .step(|| "resolve the cgroup tmpfs".into())?;
    berth_sys::mount_setattr(top.as_fd(), true, mount_attr_bits(flags), 0)
        .step(|| format!("make {} read-only", dest.display()))
}

/// `MS_*` flags as `MOUNT_ATTR_*` bits.
fn mount_attr_bits(flags: MsFlags) -> u64 {
    use berth_sys::mount_attr::*;
    [
        (MsFlags::MS_RDONLY, RDONLY),
        (MsFlags::MS_NOSUID, NOSUID),
        (MsFlags::MS_NODEV, NODEV),
        (MsFlags::MS_NOEXEC, NOEXEC),
    ]
    .into_iter()
    .filter(|(f, _)| flags.contains(*f))
    .map(|(_, bit)| bit)
    .sum()
}

fn remount_flags(root: &Root, dest: &Path, flags: MsFlags) -> Result<(), StepError> {
    if flags.is_empty() {
        return Ok(());
    }
    let fd = root
        .resolve(dest, Create::Nothing)
        .step(|| format!("resolve {}", dest.display()))?;
    let path = fd_path(fd.as_fd());
    mount(
        None::<&str>,
        path.as_str(),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags | keep_flags(Path::new(&path)),
        None::<&str>,
    )
    .step(|| format!("remount {}", dest.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> Options {
        parse_options(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn flags_data_and_propagation_are_split() {
        let o = opts(&["nosuid", "strictatime", "mode=755", "size=65536k", "rslave"]);
        assert_eq!(o.set, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data, vec!["mode=755", "size=65536k"]);
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
    }

    #[test]
    fn later_options_win() {
        assert_eq!(opts(&["ro", "rw"]).set, MsFlags::empty());
        assert_eq!(opts(&["rw", "ro"]).set, MsFlags::MS_RDONLY);
        assert_eq!(
            opts(&["rbind", "rro"]).recursive,
            (berth_sys::mount_attr::RDONLY, 0)
        );
    }

    #[test]
    fn idmap_is_refused_by_name() {
        let err = parse_options(&["idmap".to_string()]).unwrap_err();
        assert_eq!(err.to_string(), "mount option \"idmap\" is not supported");
    }
}
