//! `--network pasta[:OPTIONS]` and `--network slirp4netns[:OPTIONS]`: the container's pinned
//! namespace gets its interface from a helper process (`berth-network`'s `usermode`), and
//! published ports are the helper's host sockets, not nftables rules. The helper is recorded
//! beside the namespace pin (`<runroot>/netns/<id>.helper`: pid and start time), killed with
//! the network at exit, `rm` and by the repair after a crash.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use berth_network::{user, Forward, Helper, UserMode};

use super::ports::{proto_name, PortSpec, PublishedPort};
use super::{netns_path, HostsEntry, NetworkError};
use crate::containers::Engine;
use crate::state::Container;

/// The network mode a rootless container gets by default: pasta when it is installed (as
/// podman 5 does), else slirp4netns.
pub fn rootless_default() -> &'static str {
    if user::find("pasta").is_some() {
        "pasta"
    } else {
        "slirp4netns"
    }
}

/// The user-mode network a `--network` value names, if it names one.
pub(crate) fn mode_of(network_mode: &str) -> Option<Result<UserMode, NetworkError>> {
    berth_network::parse_user_mode(network_mode).map(|r| r.map_err(NetworkError::from))
}

/// Where the helper of container `id` is recorded.
fn record_path(run_root: &Path, id: &str) -> PathBuf {
    netns_path(run_root, id).with_extension("helper")
}

/// slirp4netns's API socket (short: a socket path has 107 bytes at most).
fn api_socket(run_root: &Path, id: &str) -> PathBuf {
    netns_path(run_root, &id[..id.len().min(12)]).with_extension("slirp")
}

fn io_err(step: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> NetworkError {
    let path = path.to_path_buf();
    move |source| NetworkError::Io { step, path, source }
}

impl Engine {
    /// Start's part for a user-mode network: host ports chosen and recorded, the namespace
    /// made and pinned, the helper started on it and recorded, the ports published. The
    /// caller undoes everything on failure (`detach_networks`).
    pub(crate) fn attach_usermode(
        &mut self,
        c: &Container,
        mode: &UserMode,
        specs: &[PortSpec],
    ) -> Result<(), NetworkError> {
        let forwards = self.db.write(|tx| choose_ports(tx, &c.id, specs))?;
        let path = netns_path(&self.run_root, &c.id);
        super::attach::fresh_netns(&path)?;
        let record = record_path(&self.run_root, &c.id);
        // Pending (pid 0) until the helper's pid is known: a crash meanwhile leaves a record
        // that sends the repair looking for the helper by its namespace.
        write_record(&record, &pending(mode))?;
        match mode {
            UserMode::Pasta(args) => {
                let pid_file = path.with_extension("pasta-pid");
                let h = user::start_pasta(&path, args, &forwards, &pid_file);
                let _ = std::fs::remove_file(&pid_file);
                write_record(&record, &h?)
            }
            UserMode::Slirp(opts) => {
                let log = self.dirs(&c.id).run.join("slirp4netns.log");
                let api = api_socket(&self.run_root, &c.id);
                write_record(&record, &user::start_slirp(&path, opts, &api, &log)?)?;
                for f in &forwards {
                    user::slirp_add_hostfwd(&api, f)?;
                }
                Ok(())
            }
        }
    }

    /// Kill container `id`'s helper, if it has one, and forget it.
    pub(crate) fn stop_usermode(&self, id: &str) -> Result<(), NetworkError> {
        let record = record_path(&self.run_root, id);
        let text = match std::fs::read_to_string(&record) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err("read", &record)(e)),
        };
        match serde_json::from_str::<Helper>(&text) {
            Ok(h) if h.pid > 0 => user::stop(&h)?,
            _ => user::stop_by_netns(&netns_path(&self.run_root, id))?,
        }
        let _ = std::fs::remove_file(api_socket(&self.run_root, id));
        match std::fs::remove_file(&record) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err("remove", &record)(e)),
            _ => Ok(()),
        }
    }

    /// Containers with a helper record or a pinned namespace: the repair checks whether
    /// they still run.
    pub(crate) fn pinned_or_helped(&self) -> Vec<String> {
        let dir = self.run_root.join("netns");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut ids: Vec<String> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let id = name.strip_suffix(".helper").unwrap_or(&name).to_owned();
                (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
            })
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

/// The container's own lines in its hosts file: slirp4netns's guest address (pasta's is the
/// host's own, which names the host).
pub(crate) fn own_entries(user: Option<&UserMode>, hostname: &str) -> Vec<HostsEntry> {
    match user {
        Some(UserMode::Slirp(s)) if !hostname.is_empty() => vec![HostsEntry {
            ip: IpAddr::V4(s.guest()),
            names: vec![hostname.to_owned()],
        }],
        _ => Vec::new(),
    }
}

/// slirp4netns's gateway (the host), for `--add-host NAME:host-gateway`.
pub(crate) fn gateway_of(user: Option<&UserMode>) -> Option<IpAddr> {
    match user {
        Some(UserMode::Slirp(s)) => Some(IpAddr::V4(s.gateway())),
        _ => None,
    }
}

/// At create: the helper is installed and takes the options.
pub(crate) fn check_mode(mode: &UserMode) -> Result<(), NetworkError> {
    Ok(user::check(mode)?)
}

/// The record of a helper about to start.
fn pending(mode: &UserMode) -> Helper {
    Helper {
        program: match mode {
            UserMode::Pasta(_) => "pasta",
            UserMode::Slirp(_) => "slirp4netns",
        }
        .to_owned(),
        pid: 0,
        start_time: 0,
    }
}

/// tmp + fsync + rename.
fn write_record(path: &Path, h: &Helper) -> Result<(), NetworkError> {
    use std::io::Write;
    let tmp = path.with_extension("helper.tmp");
    let text = serde_json::to_string(h).unwrap_or_default();
    let mut f = std::fs::File::create(&tmp).map_err(io_err("create", &tmp))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(io_err("write", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err("rename", path))
}

/// Host ports for `specs` (an ephemeral one picked now for port 0), recorded as docker shows
/// them; the helper's forwards.
fn choose_ports(
    tx: &rusqlite::Transaction,
    id: &str,
    specs: &[PortSpec],
) -> Result<Vec<Forward>, NetworkError> {
    let taken = super::attach::ports_in_use(tx, id)?;
    let mut records: Vec<PublishedPort> = Vec::new();
    let mut forwards = Vec::new();
    for spec in specs {
        let host_port = super::attach::host_port(spec, &taken, &records)?;
        forwards.push(Forward {
            host_ip: spec.host_ip,
            host_port,
            container_port: spec.container_port,
            proto: spec.proto,
        });
        records.push(PublishedPort {
            ip: spec.host_ip.map_or("0.0.0.0".to_owned(), |i| i.to_string()),
            private_port: spec.container_port,
            public_port: host_port,
            proto: proto_name(spec.proto).to_owned(),
        });
    }
    let json = serde_json::to_string(&records).unwrap_or_else(|_| "[]".into());
    tx.execute(
        "UPDATE containers SET ports = ?2 WHERE id = ?1",
        [id, json.as_str()],
    )?;
    Ok(forwards)
}
