//! `--network|--ipc|--pid|--uts container:NAME`: the other container is recorded by ID at
//! create, and the paths of its namespaces are written into the spec again at every start
//! (a pid from create time goes stale when the other container restarts, and could then
//! name an unrelated process).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxNamespaceType;

use super::{io_err, ContainerError, CreateOptions, Engine};

impl Engine {
    /// The containers `container:NAME` modes name, by namespace kind.
    pub(crate) fn join_targets(
        &mut self,
        opts: &CreateOptions,
    ) -> Result<BTreeMap<String, String>, ContainerError> {
        let mut joins = BTreeMap::new();
        for (mode, kind) in [
            (&opts.network, "net"),
            (&opts.ipc, "ipc"),
            (&opts.pid, "pid"),
            (&opts.uts, "uts"),
        ] {
            if let Some(other) = mode.strip_prefix("container:") {
                joins.insert(kind.to_owned(), self.db.get(other)?.id);
            }
        }
        Ok(joins)
    }

    /// Where container `id`'s `kind` namespace is now: its pinned network namespace, or its
    /// process's. It must be running.
    pub(crate) fn namespace_path(
        &mut self,
        id: &str,
        kind: &str,
    ) -> Result<PathBuf, ContainerError> {
        let c = self.db.get(id)?;
        let pid =
            c.pid
                .filter(|_| c.status.is_live())
                .ok_or_else(|| ContainerError::JoinNotRunning {
                    name: c.name.clone(),
                })?;
        let pinned = crate::networks::netns_path(&self.run_root, &c.id);
        if kind == "net" && pinned.exists() {
            return Ok(pinned);
        }
        Ok(PathBuf::from(format!("/proc/{pid}/ns/{kind}")))
    }

    /// Write the current paths of the joined namespaces into the spec at `path`.
    pub(crate) fn refresh_joins(
        &mut self,
        joins: &BTreeMap<String, String>,
        path: &Path,
    ) -> Result<(), ContainerError> {
        let text = std::fs::read(path).map_err(io_err("read", path))?;
        let mut spec: oci_spec::runtime::Spec = serde_json::from_slice(&text)
            .map_err(|e| io_err("parse", path)(std::io::Error::other(e)))?;
        let mut paths = Vec::new();
        for (kind, id) in joins {
            paths.push((kind_type(kind), self.namespace_path(id, kind)?));
        }
        if let Some(namespaces) = spec
            .linux_mut()
            .as_mut()
            .and_then(|l| l.namespaces_mut().as_mut())
        {
            for ns in namespaces.iter_mut() {
                if let Some((_, p)) = paths.iter().find(|(t, _)| *t == ns.typ()) {
                    ns.set_path(Some(p.clone()));
                }
            }
        }
        super::create::write_spec(path, &spec)
    }
}

fn kind_type(kind: &str) -> LinuxNamespaceType {
    match kind {
        "net" => LinuxNamespaceType::Network,
        "ipc" => LinuxNamespaceType::Ipc,
        "pid" => LinuxNamespaceType::Pid,
        _ => LinuxNamespaceType::Uts,
    }
}
