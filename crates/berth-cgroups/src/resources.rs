//! `linux.resources` -> a plan of cgroup file writes, checked whole before anything is written.
//!
//! Every field is either applied or refused with [`Error::Unsupported`]; nothing is ignored.

use std::collections::HashMap;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxNetwork, LinuxResources};

use crate::cgroup::{Cgroup, ControllerDir};
use crate::error::Error;
use crate::fsutil::Write;
use crate::layout::Mode;
use crate::{v1, v2};

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
    /// missing controllers fail before anything is written), then writes the files.
    pub fn apply(&self, resources: &LinuxResources) -> Result<(), Error> {
        for step in plan(self, resources)? {
            step.run()?;
        }
        Ok(())
    }
}

/// Checks everything and returns the writes to make.
pub(crate) fn plan(cgroup: &Cgroup, resources: &LinuxResources) -> Result<Vec<Step>, Error> {
    refuse_unsupported(resources)?;
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
    if let Some(unified) = resources.unified().as_ref().filter(|u| !u.is_empty()) {
        plan_unified(cgroup, unified, &mut steps)?;
    }
    Ok(steps)
}

/// Sections not implemented in this round.
fn refuse_unsupported(resources: &LinuxResources) -> Result<(), Error> {
    let not_yet = "not implemented yet";
    if resources
        .block_io()
        .as_ref()
        .is_some_and(|b| *b != LinuxBlockIo::default())
    {
        return Err(Error::unsupported("linux.resources.blockIO", not_yet));
    }
    if resources
        .hugepage_limits()
        .as_ref()
        .is_some_and(|h| !h.is_empty())
    {
        return Err(Error::unsupported(
            "linux.resources.hugepageLimits",
            not_yet,
        ));
    }
    if resources
        .network()
        .as_ref()
        .is_some_and(|n| *n != LinuxNetwork::default())
    {
        return Err(Error::unsupported("linux.resources.network", not_yet));
    }
    if resources.rdma().as_ref().is_some_and(|r| !r.is_empty()) {
        return Err(Error::unsupported("linux.resources.rdma", not_yet));
    }
    Ok(())
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

fn plan_memory(cgroup: &Cgroup, memory: &LinuxMemory, steps: &mut Vec<Step>) -> Result<(), Error> {
    if memory.kernel().is_some() {
        return Err(Error::unsupported(
            "linux.resources.memory.kernel",
            "kernel memory limits are deprecated and not applied",
        ));
    }
    if memory.kernel_tcp().is_some() {
        return Err(Error::unsupported(
            "linux.resources.memory.kernelTCP",
            "kernel TCP memory limits are not implemented",
        ));
    }
    if memory.check_before_update() == Some(true) {
        return Err(Error::unsupported(
            "linux.resources.memory.checkBeforeUpdate",
            "not implemented yet",
        ));
    }
    let wants_memory = memory.limit().is_some()
        || memory.reservation().is_some()
        || memory.swap().is_some()
        || memory.swappiness().is_some()
        || memory.disable_oom_killer().is_some()
        || memory.use_hierarchy().is_some();
    if !wants_memory {
        return Ok(());
    }
    match need(cgroup, "memory", "linux.resources.memory")? {
        ControllerDir::V1(dir) => v1::memory(dir, memory, steps),
        ControllerDir::V2(dir) => v2::memory(dir, memory, steps),
    }
}

fn plan_cpu(cgroup: &Cgroup, cpu: &LinuxCpu, steps: &mut Vec<Step>) -> Result<(), Error> {
    let wants_cpu = cpu.shares().is_some()
        || cpu.quota().is_some()
        || cpu.period().is_some()
        || cpu.burst().is_some()
        || cpu.idle().is_some()
        || cpu.realtime_runtime().is_some()
        || cpu.realtime_period().is_some();
    if !wants_cpu {
        return Ok(());
    }
    match need(cgroup, "cpu", "linux.resources.cpu")? {
        ControllerDir::V1(dir) => v1::cpu(dir, cpu, steps),
        ControllerDir::V2(dir) => v2::cpu(dir, cpu, steps),
    }
}

fn plan_cpuset(cgroup: &Cgroup, cpu: &LinuxCpu, steps: &mut Vec<Step>) -> Result<(), Error> {
    let cpus = cpu.cpus().as_deref().filter(|s| !s.is_empty());
    let mems = cpu.mems().as_deref().filter(|s| !s.is_empty());
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
