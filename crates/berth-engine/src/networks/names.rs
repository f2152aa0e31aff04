//! Keeping `/etc/hosts` true: a container's own addresses, `--add-host`, and on user-defined
//! networks every running peer by name, alias and short ID (docker's embedded DNS answers
//! the same names; on the default bridge, as in docker, peers are not named).

use super::attach::{placed_of, Placed};
use super::dns::{hosts_text, parse_add_host, write_in_place, HostsEntry};
use super::store;
use super::{NetworkError, DEFAULT_NETWORK};
use crate::containers::{config_of, Engine};
use crate::state::short_id;

impl Engine {
    /// Rewrite the hosts file of `id` and of every running container that shares one of
    /// `placed`'s user-defined networks with it.
    pub(crate) fn refresh_hosts(
        &mut self,
        id: &str,
        placed: &[Placed],
    ) -> Result<(), NetworkError> {
        let mut targets = vec![id.to_owned()];
        self.db.read(|tx| {
            for p in placed.iter().filter(|p| is_user(p)) {
                for e in store::endpoints_of_network(tx, &p.network.id)? {
                    if (e.ip4.is_some() || e.ip6.is_some()) && !targets.contains(&e.container_id) {
                        targets.push(e.container_id);
                    }
                }
            }
            Ok::<_, NetworkError>(())
        })?;
        let mut failures = Vec::new();
        for t in targets {
            if let Err(e) = self.write_hosts(&t) {
                failures.push(e.to_string());
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(NetworkError::Teardown {
                id: id.to_owned(),
                failures,
            })
        }
    }

    /// Write container `id`'s hosts file from the database.
    pub(crate) fn write_hosts(&mut self, id: &str) -> Result<(), NetworkError> {
        let Ok(c) = self.db.get(id) else {
            return Ok(()); // removed meanwhile
        };
        let config = config_of(&c);
        let (own, peers, gateway) = self.db.read(|tx| {
            let placed = placed_of(tx, id)?;
            let mut own = Vec::new();
            let mut peers: Vec<HostsEntry> = Vec::new();
            for p in &placed {
                let mut names = vec![config.hostname.clone()];
                if is_user(p) {
                    names.push(c.name.clone());
                    names.extend(p.endpoint.config.aliases.iter().cloned());
                }
                names.retain(|n| !n.is_empty());
                names.dedup();
                for ip in [p.endpoint.ip4, p.endpoint.ip6].into_iter().flatten() {
                    own.push(HostsEntry {
                        ip,
                        names: names.clone(),
                    });
                }
                if is_user(p) {
                    peers.extend(peer_entries(tx, &p.network.id, id)?);
                }
            }
            let gateway = placed
                .first()
                .and_then(|p| p.network.config.subnets.first())
                .and_then(|s| s.gateway.parse().ok());
            Ok::<_, NetworkError>((own, peers, gateway))
        })?;
        let user = super::usermode::mode_of(&config.network_mode).and_then(Result::ok);
        let own = match own.is_empty() {
            true => super::usermode::own_entries(user.as_ref(), &config.hostname),
            false => own,
        };
        let gateway = gateway.or_else(|| super::usermode::gateway_of(user.as_ref()));
        let extra = config
            .net
            .add_hosts
            .iter()
            .filter_map(|h| parse_add_host(h, gateway).ok())
            .collect::<Vec<_>>();
        let path = self.dirs(id).bundle.join("hosts");
        if !path.exists() {
            return Ok(());
        }
        write_in_place(&path, &hosts_text(&own, &extra, &peers))
    }
}

/// Not the default bridge: a network whose containers know each other by name.
fn is_user(p: &Placed) -> bool {
    p.network.name != DEFAULT_NETWORK
}

/// The running containers on `network` other than `me`, by name, alias and short ID.
fn peer_entries(
    tx: &rusqlite::Transaction,
    network: &str,
    me: &str,
) -> Result<Vec<HostsEntry>, NetworkError> {
    let mut out = Vec::new();
    for e in store::endpoints_of_network(tx, network)? {
        if e.container_id == me {
            continue;
        }
        let name: String = match tx.query_row(
            "SELECT name FROM containers WHERE id = ?1",
            [&e.container_id],
            |r| r.get(0),
        ) {
            Ok(name) => name,
            Err(_) => continue,
        };
        let mut names = vec![name];
        names.extend(e.config.aliases.iter().cloned());
        names.push(short_id(&e.container_id).to_owned());
        for ip in [e.ip4, e.ip6].into_iter().flatten() {
            out.push(HostsEntry {
                ip,
                names: names.clone(),
            });
        }
    }
    Ok(out)
}
