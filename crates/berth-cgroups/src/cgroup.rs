//! A container's cgroup: one directory per hierarchy; create, open, place processes, list, remove.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::thread::sleep;
use std::time::Duration;

use crate::error::Error;
use crate::layout::{Hierarchy, KernelRelease, Layout, Mode};
use crate::{fsutil, path, v1, v2};

/// Retry rmdir on EBUSY every 10 ms, up to about one second, while processes exit.
const RMDIR_RETRY: Duration = Duration::from_millis(10);
const RMDIR_ATTEMPTS: u32 = 100;

/// The cgroup's directory in one hierarchy.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub mount: PathBuf,
    /// Path below the mount, starting with `/`.
    pub relative: PathBuf,
    pub dir: PathBuf,
    /// v1: the controllers of this hierarchy; v2: the controllers served by the unified hierarchy.
    pub controllers: Vec<String>,
    pub v2: bool,
}

/// Where a controller's files are for this cgroup.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ControllerDir<'a> {
    V1(&'a Path),
    V2(&'a Path),
}

/// A container's cgroup, resolved in every mounted hierarchy.
#[derive(Debug, Clone)]
pub struct Cgroup {
    pub(crate) mode: Mode,
    pub(crate) targets: Vec<Target>,
    pub(crate) kernel: Option<KernelRelease>,
}

impl Cgroup {
    /// Resolves `cgroups_path` (see the crate docs) and creates the directories in every
    /// hierarchy (`mkdir -p`). v1 cpuset: empty `cpuset.cpus`/`cpuset.mems` are copied down from
    /// the parent at every level. Pure v2: every ancestor enables its available controllers in
    /// `cgroup.subtree_control`.
    pub fn create(layout: &Layout, cgroups_path: &str, id: &str) -> Result<Cgroup, Error> {
        let cgroup = Cgroup::open(layout, cgroups_path, id)?;
        cgroup.make_dirs()?;
        Ok(cgroup)
    }

    /// This cgroup with no directory in any hierarchy: creating, placing and listing do nothing
    /// (a rootless container where the user may not create cgroups and wants no limits).
    pub fn without_directories(&self) -> Cgroup {
        Cgroup {
            targets: Vec::new(),
            ..self.clone()
        }
    }

    /// True for a [`without_directories`](Cgroup::without_directories) cgroup.
    pub fn has_no_directories(&self) -> bool {
        self.targets.is_empty()
    }

    /// Creates the directories of an [`open`](Cgroup::open)ed cgroup, as [`create`](Cgroup::create)
    /// does (for callers that resolve the paths first and create later).
    pub fn make_dirs(&self) -> Result<(), Error> {
        for target in &self.targets {
            self.create_target(target)?;
        }
        Ok(())
    }

    /// Resolves an existing cgroup; nothing is created or checked on disk.
    pub fn open(layout: &Layout, cgroups_path: &str, id: &str) -> Result<Cgroup, Error> {
        let mut by_mount: BTreeMap<PathBuf, (Hierarchy, Vec<String>)> = BTreeMap::new();
        for (controller, hierarchy) in &layout.v1 {
            by_mount
                .entry(hierarchy.mount.clone())
                .or_insert_with(|| (hierarchy.clone(), Vec::new()))
                .1
                .push(controller.clone());
        }
        let mut targets = Vec::new();
        for (hierarchy, controllers) in by_mount.into_values() {
            targets.push(target(&hierarchy, cgroups_path, id, controllers, false)?);
        }
        if let Some(hierarchy) = &layout.unified {
            let controllers = layout.unified_controllers.iter().cloned().collect();
            targets.push(target(hierarchy, cgroups_path, id, controllers, true)?);
        }
        Ok(Cgroup {
            mode: layout.mode(),
            targets,
            kernel: layout.kernel,
        })
    }

    /// The layout mode this cgroup was resolved under.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Writes `pid` to `cgroup.procs` in every hierarchy.
    pub fn add_pid(&self, pid: i32) -> Result<(), Error> {
        for target in &self.targets {
            fsutil::write(&target.dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// The unified directory, only when every controller is v2 (pure v2): for
    /// `clone3(CLONE_INTO_CGROUP)`.
    pub fn unified_dir(&self) -> Option<&Path> {
        if self.mode != Mode::V2 {
            return None;
        }
        self.targets.iter().find(|t| t.v2).map(|t| t.dir.as_path())
    }

    /// (controller or "unified", directory) for every hierarchy.
    pub fn paths(&self) -> Vec<(String, PathBuf)> {
        let mut out = Vec::new();
        for target in &self.targets {
            if target.v2 {
                out.push(("unified".to_string(), target.dir.clone()));
            } else {
                for controller in &target.controllers {
                    out.push((controller.clone(), target.dir.clone()));
                }
            }
        }
        out
    }

    /// True when the directory exists in every hierarchy.
    pub fn exists(&self) -> bool {
        self.targets.iter().all(|t| t.dir.is_dir())
    }

    /// Every process in the cgroup and its descendants, read from the pids (else memory,
    /// freezer, unified) hierarchy.
    pub fn pids(&self) -> Result<Vec<i32>, Error> {
        let dir = self.pids_dir();
        let mut pids = Vec::new();
        for cgroup in subtree(dir)? {
            let path = cgroup.join("cgroup.procs");
            for line in fsutil::read(&path)?
                .lines()
                .filter(|l| !l.trim().is_empty())
            {
                let pid = line.trim().parse().map_err(|_| Error::Parse {
                    what: path.display().to_string(),
                    reason: format!("bad pid {line:?}"),
                })?;
                pids.push(pid);
            }
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// Removes the cgroup (and any child cgroups, deepest first) in every hierarchy, retrying on
    /// EBUSY; a missing directory is fine. Keeps going and reports every failure.
    pub fn destroy(&self) -> Result<(), Error> {
        let mut failures = Vec::new();
        for target in &self.targets {
            match subtree(&target.dir) {
                Ok(dirs) => {
                    for dir in dirs.iter().rev() {
                        if let Err(err) = rmdir_retrying(dir) {
                            failures.push(err);
                        }
                    }
                }
                Err(err) => failures.push(err),
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(Error::Destroy(failures))
        }
    }

    /// Where `controller`'s files are, if the controller is mounted.
    pub(crate) fn controller(&self, controller: &str) -> Option<ControllerDir<'_>> {
        let has = |t: &&Target| t.controllers.iter().any(|c| c == controller);
        if let Some(t) = self.targets.iter().filter(|t| !t.v2).find(has) {
            return Some(ControllerDir::V1(&t.dir));
        }
        self.targets
            .iter()
            .filter(|t| t.v2)
            .find(has)
            .map(|t| ControllerDir::V2(&t.dir))
    }

    /// The cgroup2 mount point in hybrid or pure v2 mode.
    pub(crate) fn unified_mount(&self) -> Option<&Path> {
        self.targets
            .iter()
            .find(|t| t.v2)
            .map(|t| t.mount.as_path())
    }

    /// The unified directory in hybrid or pure v2 mode.
    pub(crate) fn any_unified_dir(&self) -> Option<&Path> {
        self.targets.iter().find(|t| t.v2).map(|t| t.dir.as_path())
    }

    /// Makes `controller` of the unified hierarchy usable in this cgroup's unified directory:
    /// enables it in the `cgroup.subtree_control` of every ancestor that lacks it, top down.
    /// Pure v2 enables every controller in `create`; hybrid hosts do it here, on demand.
    pub(crate) fn enable_in_unified(&self, controller: &str) -> Result<(), Error> {
        let Some(target) = self.targets.iter().find(|t| t.v2) else {
            return Ok(());
        };
        if v2::lists_controller(&target.dir.join("cgroup.controllers"), controller)? {
            return Ok(());
        }
        let mut dir = target.mount.clone();
        for component in target.relative.components() {
            let Component::Normal(name) = component else {
                continue;
            };
            v2::enable_controller(&dir, controller)?;
            dir.push(name);
        }
        Ok(())
    }

    fn pids_dir(&self) -> &Path {
        for controller in ["pids", "memory", "freezer"] {
            if let Some(ControllerDir::V1(dir)) = self.controller(controller) {
                return dir;
            }
        }
        self.any_unified_dir()
            .or_else(|| self.targets.first().map(|t| t.dir.as_path()))
            .unwrap_or(Path::new("/nonexistent"))
    }

    fn create_target(&self, target: &Target) -> Result<(), Error> {
        let mut dir = target.mount.clone();
        let cpuset = !target.v2 && target.controllers.iter().any(|c| c == "cpuset");
        for component in target.relative.components() {
            let Component::Normal(name) = component else {
                continue;
            };
            let parent = dir.clone();
            dir.push(name);
            if target.v2 && self.mode == Mode::V2 {
                v2::enable_controllers(&parent)?;
            }
            mkdir(&dir)?;
            if cpuset {
                v1::copy_cpuset_from_parent(&parent, &dir)?;
            }
        }
        Ok(())
    }
}

fn target(
    hierarchy: &Hierarchy,
    cgroups_path: &str,
    id: &str,
    controllers: Vec<String>,
    v2: bool,
) -> Result<Target, Error> {
    let relative = path::relative_to_mount(hierarchy, cgroups_path, id)?;
    Ok(Target {
        mount: hierarchy.mount.clone(),
        dir: path::directory(hierarchy, &relative),
        relative,
        controllers,
        v2,
    })
}

fn mkdir(dir: &Path) -> Result<(), Error> {
    match fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(Error::Mkdir {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// `dir` and every directory below it, parents before children; empty if `dir` is missing.
fn subtree(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    let mut index = 0;
    if dir.is_dir() {
        out.push(dir.to_path_buf());
    }
    while index < out.len() {
        let current = out[index].clone();
        index += 1;
        let entries = fs::read_dir(&current).map_err(|source| Error::Read {
            path: current.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| Error::Read {
                path: current.clone(),
                source,
            })?;
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                out.push(entry.path());
            }
        }
    }
    Ok(out)
}

fn rmdir_retrying(dir: &Path) -> Result<(), Error> {
    let mut attempt = 0;
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(err)
                if err.raw_os_error() == Some(nix::errno::Errno::EBUSY as i32)
                    && attempt < RMDIR_ATTEMPTS =>
            {
                attempt += 1;
                sleep(RMDIR_RETRY);
            }
            Err(source) => {
                return Err(Error::Rmdir {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
}
