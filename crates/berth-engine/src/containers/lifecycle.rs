//! pause, unpause, rename, update.

use super::{ContainerError, Engine};
use crate::state::{Container, Status};

impl Engine {
    /// Freeze every process of the container.
    pub fn pause(&mut self, what: &str) -> Result<Container, ContainerError> {
        crate::rootless::create::check_cgroup_needed("pause")?;
        let c = self.db.get(what)?;
        match c.status {
            Status::Running => {}
            Status::Paused => {
                return Err(ContainerError::Start(format!(
                    "Container {} is already paused",
                    c.id
                )))
            }
            _ => return Err(ContainerError::NotRunning(c.id)),
        }
        self.runtime_of(&c).run(&["pause", c.id.as_str()])?;
        self.db
            .transition(&c.id, &[Status::Running], Status::Paused)?;
        Ok(self.db.get(&c.id)?)
    }

    /// Thaw it.
    pub fn unpause(&mut self, what: &str) -> Result<Container, ContainerError> {
        let c = self.db.get(what)?;
        if c.status != Status::Paused {
            return Err(ContainerError::Start(format!(
                "Container {} is not paused",
                c.id
            )));
        }
        self.runtime_of(&c).run(&["resume", c.id.as_str()])?;
        self.db
            .transition(&c.id, &[Status::Paused], Status::Running)?;
        Ok(self.db.get(&c.id)?)
    }

    /// Rename it.
    pub fn rename(&mut self, what: &str, new_name: &str) -> Result<(), ContainerError> {
        Ok(self.db.rename(what, new_name)?)
    }

    /// Change the resource limits of a running container (`berth update`): the runtime's
    /// `update --resources FILE` with the OCI resources, and the bundle's spec, so a restart
    /// keeps them.
    pub fn update(
        &mut self,
        what: &str,
        resources: &crate::spec::Resources,
    ) -> Result<Container, ContainerError> {
        crate::rootless::create::check_cgroup_needed("update")?;
        let c = self.db.get(what)?;
        let linux = crate::spec::linux_resources(resources)?;
        let dirs = self.dirs(&c.id);
        let path = dirs.config_json();
        let text = std::fs::read(&path).map_err(super::io_err("read", &path))?;
        let mut spec: oci_spec::runtime::Spec = serde_json::from_slice(&text)
            .map_err(|e| super::io_err("parse", &path)(std::io::Error::other(e)))?;
        if c.status.is_live() {
            let file = dirs.run.join("update.json");
            let json = serde_json::to_vec(&linux)
                .map_err(|e| super::io_err("serialize", &file)(std::io::Error::other(e)))?;
            super::cleanup::write_atomic(&file, &json)?;
            let result = self.runtime_of(&c).run(&[
                "update".as_ref(),
                "--resources".as_ref(),
                file.as_os_str(),
                c.id.as_ref(),
            ]);
            let _ = std::fs::remove_file(&file);
            result?;
        }
        if let Some(l) = spec.linux_mut() {
            l.set_resources(Some(merge(l.resources().clone(), linux)));
        }
        super::create::write_spec(&path, &spec)?;
        Ok(c)
    }
}

/// The new limits over the old: what `update` sets replaces, the rest stays.
fn merge(
    old: Option<oci_spec::runtime::LinuxResources>,
    new: oci_spec::runtime::LinuxResources,
) -> oci_spec::runtime::LinuxResources {
    let Some(mut old) = old else { return new };
    if new.memory().is_some() {
        old.set_memory(*new.memory());
    }
    if new.cpu().is_some() {
        old.set_cpu(new.cpu().clone());
    }
    if new.pids().is_some() {
        old.set_pids(*new.pids());
    }
    if new.block_io().is_some() {
        old.set_block_io(new.block_io().clone());
    }
    old
}
