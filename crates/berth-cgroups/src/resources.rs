//! `linux.resources` -> a plan of cgroup file writes, checked whole before anything is written.
//!
//! Every field is either applied or refused with an error that names it and says why
//! ([`Error::Unsupported`], [`Error::ControllerMissing`], [`Error::InvalidValue`]); nothing is
//! ignored.

use std::collections::HashMap;
use std::path::Path;

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxNetwork, LinuxRdma,
    LinuxResources,
};

use crate::cgroup::{Cgroup, ControllerDir};
use crate::error::Error;
use crate::fsutil::Write;
use crate::layout::Mode;
use crate::{block_io, hugetlb, v1, v2};

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    One(Write),
    /// Two writes the kernel validates against each other (memory + memsw, period + quota):
    /// tried in this order, and on failure in the reverse order.
    Pair(Write, Write),
    /// cgroup v2 device rules: an eBPF program attached to the directory.
    DeviceProgram(std::path::PathBuf, Vec<u64>),
}

impl Step {
    fn run(&self) -> Result<(), Error> {
        match self {
            Step::One(write) => write.run(),
            Step::DeviceProgram(dir, prog) => crate::device_filter::attach(dir, prog),
            Step::Pair(first, second) => match first.run().and_then(|()| second.run()) {
                Ok(()) => Ok(()),
                Err(err) => match second.run().and_then(|()| first.run()) {
                    Ok(()) => Ok(()),
                    Err(_) => Err(err),
                },
            },
        }
    }
}

impl Cgroup {
    /// Applies `linux.resources`: first checks every field (unsupported or invalid settings and
    /// missing controllers fail before any limit is written), then writes the files.
    ///
    /// Hybrid hosts: a controller that lives on the unified hierarchy (hugetlb on this kind of
    /// machine) is first enabled in the ancestors' `cgroup.subtree_control` when a setting
    /// needs it, so that its files exist to be checked and written.
    pub fn apply(&self, resources: &LinuxResources) -> Result<(), Error> {
        self.enable_unified_controllers(resources)?;
        for step in plan(self, resources)? {
            step.run()?;
        }
        Ok(())
    }

    fn enable_unified_controllers(&self, resources: &LinuxResources) -> Result<(), Error> {
        if self.mode != Mode::Hybrid {
            return Ok(());
        }
        for controller in wanted_controllers(resources) {
            if let Some(ControllerDir::V2(_)) = self.controller(controller) {
                // E.g. EBUSY when an ancestor (the caller's own cgroup, for a relative
                // cgroupsPath) has processes: name the controller the spec needed.
                self.enable_in_unified(controller).map_err(|e| {
                    Error::unsupported(
                        &format!("linux.resources ({controller})"),
                        &format!("cannot enable {controller} on the unified hierarchy: {e}"),
                    )
                })?;
            }
        }
        Ok(())
    }
}

/// The controllers (by their v2 names) whose files the settings write.
fn wanted_controllers(resources: &LinuxResources) -> Vec<&'static str> {
    let cpu = resources.cpu().as_ref();
    let memory = resources.memory().as_ref().is_some_and(wants_memory);
    let cpuset = cpu.is_some_and(|c| cpuset_values(c) != (None, None));
    let io = resources.block_io().as_ref().is_some_and(block_io::wanted);
    let hugetlb = resources.hugepage_limits().as_ref();
    let rdma = resources.rdma().as_ref();
    [
        ("memory", memory),
        ("cpu", cpu.is_some_and(wants_cpu)),
        ("cpuset", cpuset),
        ("pids", resources.pids().is_some()),
        ("io", io),
        ("hugetlb", hugetlb.is_some_and(|h| !h.is_empty())),
        ("rdma", rdma.is_some_and(|r| !r.is_empty())),
    ]
    .into_iter()
    .filter_map(|(controller, wanted)| wanted.then_some(controller))
    .collect()
}

/// Checks everything and returns the writes to make.
pub(crate) fn plan(cgroup: &Cgroup, resources: &LinuxResources) -> Result<Vec<Step>, Error> {
    let mut steps = Vec::new();
    if let Some(memory) = resources.memory() {
        plan_memory(cgroup, memory, &mut steps)?;
    }
    if let Some(cpu) = resources.cpu() {
        plan_cpu(cgroup, cpu, &mut steps)?;
        plan_cpuset(cgroup, cpu, &mut steps)?;
    }
    if let Some(pids) = resources.pids() {
        let value = if pids.limit() > 0 {
            pids.limit().to_string()
        } else {
            "max".to_string()
        };
        let dir = match need(cgroup, "pids", "linux.resources.pids.limit")? {
            ControllerDir::V1(dir) | ControllerDir::V2(dir) => dir,
        };
        steps.push(Step::One(Write::new(dir, "pids.max", value)));
    }
    if let Some(devices) = resources.devices().as_ref().filter(|d| !d.is_empty()) {
        match (cgroup.controller("devices"), cgroup.any_unified_dir()) {
            (Some(ControllerDir::V1(dir)), _) => v1::devices(dir, devices, &mut steps)?,
            (_, Some(dir)) => steps.push(Step::DeviceProgram(
                dir.to_path_buf(),
                crate::device_filter::program(devices)?,
            )),
            _ => return Err(Error::missing("linux.resources.devices", "devices")),
        }
    }
    if let Some(io) = resources.block_io().as_ref() {
        plan_block_io(cgroup, io, &mut steps)?;
    }
    if let Some(limits) = resources.hugepage_limits().as_ref() {
        plan_hugetlb(cgroup, limits, &mut steps)?;
    }
    if let Some(network) = resources.network().as_ref() {
        plan_network(cgroup, network, &mut steps)?;
    }
    if let Some(rdma) = resources.rdma().as_ref() {
        plan_rdma(cgroup, rdma, &mut steps)?;
    }
    if let Some(unified) = resources.unified().as_ref().filter(|u| !u.is_empty()) {
        plan_unified(cgroup, unified, &mut steps)?;
    }
    Ok(steps)
}

/// An error naming `setting` when `file` is not in `dir`: "not available on this host (no
/// FILE: why)".
pub(crate) fn need_file(dir: &Path, file: &str, setting: &str, why: &str) -> Result<(), Error> {
    if dir.join(file).exists() {
        return Ok(());
    }
    Err(Error::unsupported(
        setting,
        &format!("not available on this host (no {file}: {why})"),
    ))
}

/// The directory of `controller`, or an error naming `setting`.
fn need<'a>(
    cgroup: &'a Cgroup,
    controller: &str,
    setting: &str,
) -> Result<ControllerDir<'a>, Error> {
    cgroup
        .controller(controller)
        .ok_or_else(|| Error::missing(setting, controller))
}

/// True when the memory section sets anything (`checkBeforeUpdate` alone writes nothing).
fn wants_memory(memory: &LinuxMemory) -> bool {
    memory.limit().is_some()
        || memory.reservation().is_some()
        || memory.swap().is_some()
        || memory.kernel().is_some()
        || memory.kernel_tcp().is_some()
        || memory.swappiness().is_some()
        || memory.disable_oom_killer().is_some()
        || memory.use_hierarchy().is_some()
}

fn plan_memory(cgroup: &Cgroup, memory: &LinuxMemory, steps: &mut Vec<Step>) -> Result<(), Error> {
    if !wants_memory(memory) {
        return Ok(());
    }
    match need(cgroup, "memory", "linux.resources.memory")? {
        ControllerDir::V1(dir) => v1::memory(dir, memory, cgroup.kernel, steps),
        ControllerDir::V2(dir) => v2::memory(dir, memory, steps),
    }
}

fn wants_cpu(cpu: &LinuxCpu) -> bool {
    cpu.shares().is_some()
        || cpu.quota().is_some()
        || cpu.period().is_some()
        || cpu.burst().is_some()
        || cpu.idle().is_some()
        || cpu.realtime_runtime().is_some()
        || cpu.realtime_period().is_some()
}

fn plan_cpu(cgroup: &Cgroup, cpu: &LinuxCpu, steps: &mut Vec<Step>) -> Result<(), Error> {
    if !wants_cpu(cpu) {
        return Ok(());
    }
    match need(cgroup, "cpu", "linux.resources.cpu")? {
        ControllerDir::V1(dir) => v1::cpu(dir, cpu, steps),
        ControllerDir::V2(dir) => v2::cpu(dir, cpu, steps),
    }
}

/// `cpus` and `mems`, empty strings as unset.
fn cpuset_values(cpu: &LinuxCpu) -> (Option<&str>, Option<&str>) {
    let cpus = cpu.cpus().as_deref().filter(|s| !s.is_empty());
    let mems = cpu.mems().as_deref().filter(|s| !s.is_empty());
    (cpus, mems)
}

fn plan_cpuset(cgroup: &Cgroup, cpu: &LinuxCpu, steps: &mut Vec<Step>) -> Result<(), Error> {
    let (cpus, mems) = cpuset_values(cpu);
    if cpus.is_none() && mems.is_none() {
        return Ok(());
    }
    let setting = if cpus.is_some() {
        "linux.resources.cpu.cpus"
    } else {
        "linux.resources.cpu.mems"
    };
    // The file names are the same on v1 and v2.
    let dir = match need(cgroup, "cpuset", setting)? {
        ControllerDir::V1(dir) | ControllerDir::V2(dir) => dir,
    };
    if let Some(cpus) = cpus {
        steps.push(Step::One(Write::new(dir, "cpuset.cpus", cpus)));
    }
    if let Some(mems) = mems {
        steps.push(Step::One(Write::new(dir, "cpuset.mems", mems)));
    }
    Ok(())
}

/// blockIO: v1 `blkio` when mounted, else v2 `io`.
fn plan_block_io(cgroup: &Cgroup, io: &LinuxBlockIo, steps: &mut Vec<Step>) -> Result<(), Error> {
    if !block_io::wanted(io) {
        return Ok(());
    }
    block_io::validate(io)?;
    match (cgroup.controller("blkio"), cgroup.controller("io")) {
        (Some(ControllerDir::V1(dir)), _) => v1::block_io(dir, io, steps),
        (_, Some(ControllerDir::V2(dir))) => {
            let root = cgroup.unified_mount().unwrap_or(dir);
            v2::block_io(root, dir, io, steps)
        }
        _ => Err(Error::missing("linux.resources.blockIO", "blkio")),
    }
}

/// hugepageLimits: v1 names on a v1 hugetlb hierarchy, v2 names where hugetlb is on the
/// unified hierarchy (pure v2, and hybrid hosts whose cgroup2 mount serves hugetlb).
fn plan_hugetlb(
    cgroup: &Cgroup,
    limits: &[LinuxHugepageLimit],
    steps: &mut Vec<Step>,
) -> Result<(), Error> {
    if limits.is_empty() {
        return Ok(());
    }
    match need(cgroup, "hugetlb", "linux.resources.hugepageLimits")? {
        ControllerDir::V1(dir) => hugetlb::plan(dir, &hugetlb::V1, limits, steps),
        ControllerDir::V2(dir) => hugetlb::plan(dir, &hugetlb::V2, limits, steps),
    }
}

/// network: v1 `net_cls` and `net_prio` only; cgroup v2 has neither.
fn plan_network(
    cgroup: &Cgroup,
    network: &LinuxNetwork,
    steps: &mut Vec<Step>,
) -> Result<(), Error> {
    if let Some(class_id) = network.class_id().filter(|c| *c != 0) {
        let dir = v1_only(cgroup, "net_cls", "linux.resources.network.classID")?;
        v1::net_cls(dir, class_id, steps);
    }
    if let Some(priorities) = network.priorities().as_deref().filter(|p| !p.is_empty()) {
        let dir = v1_only(cgroup, "net_prio", "linux.resources.network.priorities")?;
        v1::net_prio(dir, priorities, steps)?;
    }
    Ok(())
}

/// The directory of a controller that exists only on cgroup v1.
fn v1_only<'a>(cgroup: &'a Cgroup, controller: &str, setting: &str) -> Result<&'a Path, Error> {
    if let Some(ControllerDir::V1(dir)) = cgroup.controller(controller) {
        return Ok(dir);
    }
    let reason = match cgroup.mode {
        Mode::V2 => format!("cgroup v2 has no {controller} controller"),
        Mode::V1 | Mode::Hybrid => format!(
            "no {controller} hierarchy is mounted on this host (and cgroup v2 has no {controller})"
        ),
    };
    Err(Error::unsupported(setting, &reason))
}

/// rdma: `rdma.max`, `DEVICE hca_handle=N hca_object=N`, on v1 and v2 alike.
fn plan_rdma(
    cgroup: &Cgroup,
    rdma: &HashMap<String, LinuxRdma>,
    steps: &mut Vec<Step>,
) -> Result<(), Error> {
    let setting = "linux.resources.rdma";
    if rdma.is_empty() {
        return Ok(());
    }
    let dir = match need(cgroup, "rdma", setting)? {
        ControllerDir::V1(dir) | ControllerDir::V2(dir) => dir,
    };
    let mut devices: Vec<&String> = rdma.keys().collect();
    devices.sort();
    for device in devices {
        if device.is_empty() || device.chars().any(char::is_whitespace) {
            return Err(Error::invalid(
                setting,
                format!("{device:?}"),
                "must be an RDMA device name",
            ));
        }
        let limits = &rdma[device];
        let mut value = device.clone();
        if let Some(handles) = limits.hca_handles() {
            value.push_str(&format!(" hca_handle={handles}"));
        }
        if let Some(objects) = limits.hca_objects() {
            value.push_str(&format!(" hca_object={objects}"));
        }
        if value != *device {
            steps.push(Step::One(Write::new(dir, "rdma.max", value)));
        }
    }
    Ok(())
}

/// `linux.resources.unified`: raw v2 files, pure v2 only.
fn plan_unified(
    cgroup: &Cgroup,
    unified: &HashMap<String, String>,
    steps: &mut Vec<Step>,
) -> Result<(), Error> {
    let setting = "linux.resources.unified";
    let dir = match (cgroup.mode, cgroup.unified_dir()) {
        (Mode::V2, Some(dir)) => dir,
        _ => {
            return Err(Error::unsupported(
                setting,
                "only applied when every controller is on cgroup v2",
            ))
        }
    };
    let mut keys: Vec<&String> = unified.keys().collect();
    keys.sort();
    for key in keys {
        if key.is_empty() || key.contains('/') || key.starts_with('.') {
            return Err(Error::invalid(
                setting,
                key,
                "must be a plain cgroup file name",
            ));
        }
        steps.push(Step::One(Write::new(dir, key, &unified[key])));
    }
    Ok(())
}
