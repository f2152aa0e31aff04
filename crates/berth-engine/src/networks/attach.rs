//! What `start` does before the runtime runs (a pinned network namespace with an interface
//! per network, addresses from the IPAM, published ports) and what the exit cleanup undoes.
//! A failure half-way undoes everything; a crash half-way is undone by the next command
//! (`reconcile`: a container that does not run but holds addresses or ports).

use std::collections::HashSet;
use std::net::IpAddr;

use berth_network::{Endpoint, IpNet, NetNs, PortMapping};
use rusqlite::Transaction;

use super::ports::{proto_name, publish_all, PortSpec, PublishedPort};
use super::store::{self, EndpointRow, Network};
use super::{host_veth, manage, netns_path, NetworkError};
use crate::containers::{config_of, Engine};
use crate::state::Container;

/// An endpoint with its network, addresses given.
pub(crate) struct Placed {
    pub(crate) endpoint: EndpointRow,
    pub(crate) network: Network,
}

impl Engine {
    /// Give container `c` its network, if it has endpoints (not `none`, `host` or
    /// `container:`). Everything is undone on failure.
    pub(crate) fn attach_networks(&mut self, c: &Container) -> Result<(), NetworkError> {
        let config = config_of(c);
        let mut specs = Vec::new();
        for p in &config.net.publish {
            specs.extend(super::parse_publish(p)?);
        }
        if config.net.publish_all {
            specs.extend(publish_all(&config.exposed_ports));
        }
        if let Some(mode) = super::usermode::mode_of(&config.network_mode) {
            let made = mode.and_then(|m| self.attach_usermode(c, &m, &specs));
            if let Err(e) = made {
                let _ = self.detach_networks(&c.id);
                return Err(e);
            }
            return self.refresh_hosts(&c.id, &[]);
        }
        let (placed, mappings) = self.db.write(|tx| {
            let placed = allocate_all(tx, &c.id)?;
            let mappings = if placed.is_empty() {
                Vec::new()
            } else {
                publish(tx, &c.id, &placed, &specs)?
            };
            Ok::<_, NetworkError>((placed, mappings))
        })?;
        if !config.own_netns {
            return Ok(());
        }
        let made = self.realize(&c.id, &placed, &mappings);
        if let Err(e) = made {
            let _ = self.detach_networks(&c.id);
            return Err(e);
        }
        self.refresh_hosts(&c.id, &placed)
    }

    /// The kernel's part: bridges, the namespace, interfaces, firewall rules.
    fn realize(
        &mut self,
        id: &str,
        placed: &[Placed],
        mappings: &[PortMapping],
    ) -> Result<(), NetworkError> {
        for p in placed.iter().filter(|p| p.network.driver == "bridge") {
            if !berth_network::link_exists(&p.network.interface)? {
                manage::bring_up(&p.network)?;
            }
        }
        let ns = fresh_netns(&netns_path(&self.run_root, id))?;
        for p in placed {
            plug(&ns, id, p)?;
        }
        if !mappings.is_empty() {
            berth_network::add_port_rules(id, mappings)?;
        }
        Ok(())
    }

    /// Undo [`Engine::attach_networks`]: every step is tried, every failure reported.
    pub(crate) fn detach_networks(&mut self, id: &str) -> Result<(), NetworkError> {
        let mut failures = Vec::new();
        if let Err(e) = self.stop_usermode(id) {
            failures.push(e.to_string());
        }
        let (ports, mode) = self.db.read(|tx| {
            let row: (String, Option<String>) = tx
                .query_row(
                    "SELECT ports, json_extract(config, '$.network_mode') FROM containers
                     WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap_or_else(|_| ("[]".to_owned(), None));
            Ok::<_, NetworkError>(row)
        })?;
        // A user-mode helper's ports are its sockets, gone with it: no rules to remove.
        let usermode = mode.is_some_and(|m| super::usermode::mode_of(&m).is_some());
        if ports != "[]" && !usermode {
            if let Err(e) = berth_network::remove_port_rules(id) {
                failures.push(e.to_string());
            }
        }
        // The kernel deletes the namespace's interfaces (and the veths' host ends) with it,
        // off this path (deleting a veth here costs ~30 ms)... unless a `container:` sharer
        // keeps the namespace alive: then they go first, or its addresses, about to be
        // given to others, would stay in use.
        if let Err(e) = self.unplug_if_shared(id) {
            failures.push(e.to_string());
        }
        if let Err(e) = berth_network::remove_netns(&netns_path(&self.run_root, id)) {
            failures.push(e.to_string());
        }
        let had: Vec<Placed> = self.db.write(|tx| {
            let had = placed_of(tx, id)?;
            store::release_addresses(tx, id)?;
            tx.execute("UPDATE containers SET ports = '[]' WHERE id = ?1", [id])?;
            Ok::<_, NetworkError>(had)
        })?;
        if let Err(e) = self.refresh_hosts(id, &had) {
            failures.push(e.to_string());
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

    /// Remove `id`'s interfaces from its namespace if running containers share it.
    fn unplug_if_shared(&mut self, id: &str) -> Result<(), NetworkError> {
        let (sharers, endpoints) = self.db.read(|tx| {
            let sharers: i64 = tx.query_row(
                "SELECT count(*) FROM containers WHERE id != ?1
                 AND status IN ('running', 'paused', 'restarting')
                 AND json_extract(config, '$.joins.net') = ?1",
                [id],
                |r| r.get(0),
            )?;
            Ok::<_, NetworkError>((sharers, store::endpoints_of_container(tx, id)?))
        })?;
        let path = netns_path(&self.run_root, id);
        if sharers == 0 || !path.exists() {
            return Ok(());
        }
        let ns = NetNs::open(&path)?;
        for e in endpoints
            .iter()
            .filter(|e| e.ip4.is_some() || e.ip6.is_some())
        {
            berth_network::remove_interface(&ns, &e.ifname())?;
        }
        Ok(())
    }

    /// Release what containers that no longer run still hold (a start or an exit cleanup
    /// that died half-way). Called by the repair, under each container's lock.
    pub(crate) fn stale_network_holders(&mut self) -> Vec<String> {
        let mut ids = self.db.read(store::stale_holders).unwrap_or_default();
        // A pinned namespace or a user-mode helper of a container that does not run (or is
        // gone); nothing when the database cannot say which run.
        let pinned = self.pinned_or_helped();
        if pinned.is_empty() {
            return ids;
        }
        let Ok(live) = self.db.read(store::live_ids) else {
            return ids;
        };
        for id in pinned {
            if !live.contains(&id) && !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids
    }
}

impl Engine {
    /// At create: `-p` must parse, and its fixed host ports be free on the host and not
    /// published by another container (checked again at start, which decides).
    pub(crate) fn precheck_ports(
        &mut self,
        id: &str,
        publish: &[String],
    ) -> Result<(), NetworkError> {
        let mut specs = Vec::new();
        for p in publish {
            specs.extend(super::parse_publish(p)?);
        }
        let taken = self.db.read(|tx| ports_in_use(tx, id))?;
        for spec in specs.iter().filter(|s| s.host_port != 0) {
            host_port(spec, &taken, &[])?;
        }
        Ok(())
    }
}

/// A new namespace pinned at `path` (a leftover pin there is removed first).
pub(crate) fn fresh_netns(path: &std::path::Path) -> Result<NetNs, NetworkError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| NetworkError::Io {
            step: "create",
            path: dir.to_path_buf(),
            source,
        })?;
    }
    berth_network::remove_netns(path)?;
    Ok(NetNs::create(path)?)
}

/// Addresses for every endpoint of container `id`.
fn allocate_all(tx: &Transaction, id: &str) -> Result<Vec<Placed>, NetworkError> {
    let mut placed = Vec::new();
    for mut endpoint in store::endpoints_of_container(tx, id)? {
        let network = network_by_id(tx, &endpoint.network_id)?;
        let addresses = allocate(tx, &network, &endpoint)?;
        store::set_addresses(tx, id, &network.id, addresses)?;
        (endpoint.ip4, endpoint.ip6) = addresses;
        placed.push(Placed { endpoint, network });
    }
    Ok(placed)
}

/// The endpoints of `id` that hold addresses, with their networks.
pub(crate) fn placed_of(tx: &Transaction, id: &str) -> Result<Vec<Placed>, NetworkError> {
    let mut placed = Vec::new();
    for endpoint in store::endpoints_of_container(tx, id)? {
        if endpoint.ip4.is_some() || endpoint.ip6.is_some() {
            let network = network_by_id(tx, &endpoint.network_id)?;
            placed.push(Placed { endpoint, network });
        }
    }
    Ok(placed)
}

pub(crate) fn network_by_id(tx: &Transaction, id: &str) -> Result<Network, NetworkError> {
    store::find_network(tx, id)?.ok_or_else(|| NetworkError::NotFound(id.to_owned()))
}

/// One address per family the network has: the one asked for, or the next free one.
pub(crate) fn allocate(
    tx: &Transaction,
    network: &Network,
    endpoint: &EndpointRow,
) -> Result<(Option<IpAddr>, Option<IpAddr>), NetworkError> {
    let others: Vec<EndpointRow> = store::endpoints_of_network(tx, &network.id)?
        .into_iter()
        .filter(|e| e.container_id != endpoint.container_id)
        .collect();
    let mut out = (None, None);
    for v4 in [true, false] {
        let Some(s) = network
            .config
            .subnets
            .iter()
            .find(|s| s.subnet.parse::<IpNet>().is_ok_and(|n| n.is_v4() == v4))
        else {
            continue;
        };
        let subnet: IpNet = s
            .subnet
            .parse()
            .map_err(|e: berth_network::IpNetError| NetworkError::Invalid(e.to_string()))?;
        let gateway: IpAddr = s
            .gateway
            .parse()
            .map_err(|_| NetworkError::Invalid(format!("bad gateway {}", s.gateway)))?;
        let range: Option<IpNet> = s.ip_range.as_deref().and_then(|r| r.parse().ok());
        let used: HashSet<IpAddr> = others
            .iter()
            .filter_map(|e| if v4 { e.ip4 } else { e.ip6 })
            .collect();
        let asked = if v4 {
            &endpoint.config.ip4
        } else {
            &endpoint.config.ip6
        };
        let address = match asked {
            Some(text) => {
                let address: IpAddr = text
                    .parse()
                    .map_err(|_| NetworkError::Invalid(format!("invalid IP address {text}")))?;
                check_requested(network, &subnet, gateway, address, &used)?;
                address
            }
            None => berth_network::next_free(&subnet, range.as_ref(), gateway, &used).ok_or(
                NetworkError::Exhausted {
                    network: network.name.clone(),
                    family: if v4 { 4 } else { 6 },
                },
            )?,
        };
        if v4 {
            out.0 = Some(address);
        } else {
            out.1 = Some(address);
        }
    }
    Ok(out)
}

/// `--ip`: inside the subnet, not its gateway, not taken.
pub(crate) fn check_requested(
    network: &Network,
    subnet: &IpNet,
    gateway: IpAddr,
    address: IpAddr,
    used: &HashSet<IpAddr>,
) -> Result<(), NetworkError> {
    let reason = if !subnet.contains(address) {
        Some("it is not in the network's subnet")
    } else if address == gateway || address == subnet.network().addr {
        Some("it is the network's gateway or network address")
    } else if subnet.is_v4() && address == subnet.last() {
        Some("it is the subnet's broadcast address")
    } else if used.contains(&address) {
        Some("it is already in use")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(NetworkError::Address {
            address,
            network: network.name.clone(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Choose host ports, refuse taken ones, record them; the firewall's mappings.
fn publish(
    tx: &Transaction,
    id: &str,
    placed: &[Placed],
    specs: &[PortSpec],
) -> Result<Vec<PortMapping>, NetworkError> {
    let Some(target) = placed.iter().find(|p| p.network.driver == "bridge") else {
        return Ok(Vec::new()); // docker publishes nothing for macvlan
    };
    let taken = ports_in_use(tx, id)?;
    let mut records: Vec<PublishedPort> = Vec::new();
    let mut mappings = Vec::new();
    for spec in specs {
        let host_port = host_port(spec, &taken, &records)?;
        let any = spec.host_ip.is_none();
        let families = [
            (
                target.endpoint.ip4,
                any || spec.host_ip.is_some_and(|i| i.is_ipv4()),
                "0.0.0.0",
            ),
            (
                target.endpoint.ip6,
                any || spec.host_ip.is_some_and(|i| i.is_ipv6()),
                "::",
            ),
        ];
        for (container_ip, wanted, any_text) in families {
            let (Some(container_ip), true) = (container_ip, wanted) else {
                continue;
            };
            mappings.push(PortMapping {
                host_ip: spec.host_ip,
                host_port,
                proto: spec.proto,
                container_ip,
                container_port: spec.container_port,
            });
            records.push(PublishedPort {
                ip: spec.host_ip.map_or(any_text.to_owned(), |i| i.to_string()),
                private_port: spec.container_port,
                public_port: host_port,
                proto: proto_name(spec.proto).to_owned(),
            });
        }
        if spec.host_ip.is_some_and(|i| i.is_ipv6()) && target.endpoint.ip6.is_none() {
            return Err(NetworkError::Invalid(format!(
                "cannot publish on {}: the container has no IPv6 address",
                spec.host_ip.map(|i| i.to_string()).unwrap_or_default()
            )));
        }
    }
    let json = serde_json::to_string(&records).unwrap_or_else(|_| "[]".into());
    tx.execute(
        "UPDATE containers SET ports = ?2 WHERE id = ?1",
        [id, json.as_str()],
    )?;
    Ok(mappings)
}

/// The host port for `spec`: free on the host, and not published by another container.
pub(crate) fn host_port(
    spec: &PortSpec,
    taken: &[PublishedPort],
    ours: &[PublishedPort],
) -> Result<u16, NetworkError> {
    let proto = proto_name(spec.proto);
    let address = spec.host_ip.map_or("0.0.0.0".to_owned(), |i| i.to_string());
    let clash = |p: &PublishedPort| {
        p.public_port == spec.host_port
            && p.proto == proto
            && (spec.host_ip.is_none() || p.ip == "0.0.0.0" || p.ip == "::" || p.ip == address)
    };
    if spec.host_port != 0 {
        if let Some(p) = taken.iter().chain(ours).find(|p| clash(p)) {
            return Err(NetworkError::PortTaken {
                address,
                port: spec.host_port,
                proto,
                reason: format!("port is already allocated (published on {})", p.ip),
            });
        }
    }
    berth_network::reserve_check(spec.host_ip, spec.host_port, spec.proto).map_err(|e| {
        NetworkError::PortTaken {
            address,
            port: spec.host_port,
            proto,
            reason: e.to_string(),
        }
    })
}

/// Ports other running containers publish.
pub(crate) fn ports_in_use(tx: &Transaction, id: &str) -> Result<Vec<PublishedPort>, NetworkError> {
    let mut stmt = tx.prepare("SELECT ports FROM containers WHERE id != ?1 AND ports != '[]'")?;
    let rows = stmt.query_map([id], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for text in rows {
        out.extend(serde_json::from_str::<Vec<PublishedPort>>(&text?).unwrap_or_default());
    }
    Ok(out)
}

/// One interface in the namespace: a veth on the bridge, or a macvlan on the parent.
pub(crate) fn plug(ns: &NetNs, id: &str, p: &Placed) -> Result<(), NetworkError> {
    let e = &p.endpoint;
    let mut addresses = Vec::new();
    let mut gateways = Vec::new();
    for s in &p.network.config.subnets {
        let Ok(subnet) = s.subnet.parse::<IpNet>() else {
            continue;
        };
        let Some(addr) = (if subnet.is_v4() { e.ip4 } else { e.ip6 }) else {
            continue;
        };
        addresses.push(IpNet {
            addr,
            prefix: subnet.prefix,
        });
        if e.position == 0 && !p.network.config.internal {
            gateways.extend(s.gateway.parse::<IpAddr>().ok());
        }
    }
    let mac = match e.config.mac.as_deref() {
        Some(text) => Some(parse_mac(text)?),
        None => Some(berth_network::mac_for(match e.ip4 {
            Some(IpAddr::V4(a)) => Some(a),
            _ => None,
        })),
    };
    let endpoint = Endpoint {
        ifname: e.ifname(),
        mac,
        mtu: p.network.config.mtu,
        addresses,
        gateways,
    };
    match p.network.driver.as_str() {
        "macvlan" => berth_network::add_macvlan(ns, &p.network.interface, &endpoint)?,
        _ => berth_network::add_veth(
            ns,
            &p.network.interface,
            &host_veth(id, e.position),
            &endpoint,
        )?,
    }
    Ok(())
}

/// `--mac-address 02:42:ac:11:00:02`.
pub(crate) fn parse_mac(text: &str) -> Result<[u8; 6], NetworkError> {
    let bad = || NetworkError::Invalid(format!("invalid MAC address {text}"));
    let parts: Vec<u8> = text
        .split(':')
        .map(|p| u8::from_str_radix(p, 16).map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    parts.try_into().map_err(|_| bad())
}
