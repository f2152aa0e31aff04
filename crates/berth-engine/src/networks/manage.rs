//! `network create`, `ls`, `rm`, `prune`, and the pre-defined networks (`bridge`, made on
//! first use from `BERTH_BRIDGE` / `BERTH_BRIDGE_SUBNET`, as dockerd's `--bridge` / `--bip`;
//! `host`; `none`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use berth_network::IpNet;
use rusqlite::Transaction;
use time::OffsetDateTime;

use super::store::{self, NetConfig, Network, Subnet};
use super::{NetworkError, DEFAULT_NETWORK};
use crate::containers::Engine;
use crate::state::{format_time, new_id};

/// The default bridge when `BERTH_BRIDGE` does not name one.
const DEFAULT_BRIDGE: &str = "berth0";
/// The default network's subnet when `BERTH_BRIDGE_SUBNET` does not give one (docker's).
const DEFAULT_SUBNET: &str = "172.17.0.0/16";
/// docker's default MTU.
const DEFAULT_MTU: u32 = 1500;

/// `network create`'s flags.
#[derive(Debug, Clone, Default)]
pub struct NetworkCreate {
    /// The name.
    pub name: String,
    /// `bridge` (default) or `macvlan`.
    pub driver: String,
    /// `--subnet`.
    pub subnets: Vec<String>,
    /// `--gateway`, one per subnet in order.
    pub gateways: Vec<String>,
    /// `--ip-range`, one per subnet in order.
    pub ip_ranges: Vec<String>,
    /// `--internal`.
    pub internal: bool,
    /// `--ipv6`.
    pub ipv6: bool,
    /// `-o KEY=VALUE`.
    pub options: BTreeMap<String, String>,
    /// `--label`.
    pub labels: BTreeMap<String, String>,
}

impl Engine {
    /// Create a network; for a bridge, its Linux bridge and firewall rules too.
    pub fn network_create(&mut self, req: &NetworkCreate) -> Result<Network, NetworkError> {
        self.ensure_predefined()?;
        let network = self.plan_network(req)?;
        if network.driver == "bridge" {
            check_host(&network)?;
        }
        self.db.write(|tx| {
            if store::find_network(tx, &network.name)?.is_some_and(|n| n.name == network.name) {
                return Err(NetworkError::NameInUse(network.name.clone()));
            }
            check_overlaps(tx, &network)?;
            store::insert_network(tx, &network)?;
            Ok::<_, NetworkError>(())
        })?;
        if network.driver == "bridge" {
            if let Err(e) = bring_up(&network) {
                let _ = teardown_bridge(&network);
                let _ = self.db.write(|tx| store::delete_network(tx, &network.id));
                return Err(e);
            }
        }
        Ok(network)
    }

    /// Every network, by name.
    pub fn networks(&mut self) -> Result<Vec<Network>, NetworkError> {
        self.ensure_predefined()?;
        Ok(self.db.read(store::networks)?)
    }

    /// The network `what` names.
    pub fn network(&mut self, what: &str) -> Result<Network, NetworkError> {
        self.ensure_predefined()?;
        self.db
            .read(|tx| store::find_network(tx, what))?
            .ok_or_else(|| NetworkError::NotFound(what.to_owned()))
    }

    /// Remove network `what`: not a pre-defined one, and not while containers are on it.
    pub fn network_remove(&mut self, what: &str) -> Result<Network, NetworkError> {
        let network = self.network(what)?;
        if is_predefined(&network.name) {
            return Err(NetworkError::Predefined(network.name));
        }
        self.db.write(|tx| {
            let users = store::endpoints_of_network(tx, &network.id)?;
            if !users.is_empty() {
                let names: Vec<String> = users
                    .iter()
                    .filter_map(|e| {
                        tx.query_row(
                            "SELECT name FROM containers WHERE id = ?1",
                            [&e.container_id],
                            |r| r.get(0),
                        )
                        .ok()
                    })
                    .collect();
                return Err(NetworkError::InUse {
                    name: network.name.clone(),
                    id: network.id.clone(),
                    containers: names.join(", "),
                });
            }
            store::delete_network(tx, &network.id)?;
            Ok::<_, NetworkError>(())
        })?;
        if network.driver == "bridge" {
            teardown_bridge(&network)?;
        }
        Ok(network)
    }

    /// Remove every user-defined network no container is on; their names.
    pub fn network_prune(&mut self) -> Result<Vec<String>, NetworkError> {
        let mut removed = Vec::new();
        for n in self.networks()? {
            if is_predefined(&n.name) {
                continue;
            }
            let used = self
                .db
                .read(|tx| store::endpoints_of_network(tx, &n.id))?
                .len();
            if used == 0 {
                self.network_remove(&n.id)?;
                removed.push(n.name);
            }
        }
        Ok(removed)
    }

    /// Make `bridge`, `host` and `none` if this root does not have them yet.
    pub(crate) fn ensure_predefined(&mut self) -> Result<(), NetworkError> {
        let have = self.db.read(|tx| {
            tx.query_row(
                "SELECT count(*) FROM networks WHERE name IN ('bridge', 'host', 'none')",
                [],
                |r| r.get::<_, i64>(0),
            )
        })?;
        if have == 3 {
            return Ok(());
        }
        let bridge = std::env::var("BERTH_BRIDGE").unwrap_or_else(|_| DEFAULT_BRIDGE.to_owned());
        let subnet =
            std::env::var("BERTH_BRIDGE_SUBNET").unwrap_or_else(|_| DEFAULT_SUBNET.to_owned());
        let req = NetworkCreate {
            name: DEFAULT_NETWORK.to_owned(),
            driver: "bridge".to_owned(),
            subnets: vec![subnet],
            options: BTreeMap::from([("com.docker.network.bridge.name".to_owned(), bridge)]),
            ..NetworkCreate::default()
        };
        let mut predefined = vec![self.plan_network(&req)?];
        for (name, driver) in [("host", "host"), ("none", "null")] {
            predefined.push(Network {
                id: new_id().map_err(|e| NetworkError::Invalid(e.to_string()))?,
                name: name.to_owned(),
                driver: driver.to_owned(),
                interface: String::new(),
                config: NetConfig::default(),
                created: now(),
            });
        }
        self.db.write(|tx| {
            for n in &predefined {
                if store::find_network(tx, &n.name)?.is_none() {
                    store::insert_network(tx, n)?;
                }
            }
            Ok::<_, NetworkError>(())
        })
    }

    /// Check `req` and fill in what it leaves out (subnets, gateways, the bridge's name).
    fn plan_network(&mut self, req: &NetworkCreate) -> Result<Network, NetworkError> {
        if !is_valid_network_name(&req.name) || is_predefined_mode(&req.name) {
            return Err(NetworkError::Invalid(format!(
                "invalid network name {:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                req.name
            )));
        }
        let driver = match req.driver.as_str() {
            "" | "bridge" => "bridge",
            "macvlan" => "macvlan",
            other => {
                return Err(NetworkError::Invalid(format!(
                    "plugin \"{other}\" not found: the drivers are bridge and macvlan"
                )))
            }
        };
        let id = new_id().map_err(|e| NetworkError::Invalid(e.to_string()))?;
        let mut subnets = parse_subnets(req)?;
        let taken = self.taken_subnets(driver)?;
        if !subnets.iter().any(|s| s.0.is_v4()) {
            let subnet = berth_network::pick_subnet(&taken).ok_or_else(|| {
                NetworkError::Invalid("no free subnet left in the default pools".to_owned())
            })?;
            subnets.insert(0, (subnet, first_host(&subnet), None));
        }
        if req.ipv6 && !subnets.iter().any(|s| !s.0.is_v4()) {
            let subnet = berth_network::ula_subnet(&id);
            subnets.push((subnet, first_host(&subnet), None));
        }
        if !req.ipv6 && subnets.iter().any(|s| !s.0.is_v4()) {
            return Err(NetworkError::Invalid(
                "an IPv6 --subnet needs --ipv6".to_owned(),
            ));
        }
        let interface = match driver {
            "bridge" => req
                .options
                .get("com.docker.network.bridge.name")
                .cloned()
                .unwrap_or_else(|| format!("br-{}", &id[..12])),
            _ => macvlan_parent(req)?,
        };
        if interface.is_empty() || interface.len() > 15 || interface.contains(['/', ' ']) {
            return Err(NetworkError::Invalid(format!(
                "invalid interface name {interface:?}"
            )));
        }
        Ok(Network {
            id,
            name: req.name.clone(),
            driver: driver.to_owned(),
            interface,
            config: NetConfig {
                subnets: subnets
                    .iter()
                    .map(|(s, g, r)| Subnet {
                        subnet: s.to_string(),
                        gateway: g.to_string(),
                        ip_range: r.map(|r| r.to_string()),
                    })
                    .collect(),
                internal: req.internal,
                ipv6: req.ipv6,
                options: req.options.clone(),
                labels: req.labels.clone(),
                mtu: mtu(req)?,
            },
            created: now(),
        })
    }

    /// Subnets a new network must not overlap: other networks', and for a bridge the host's
    /// routes (another berth root's bridges among them).
    fn taken_subnets(&mut self, driver: &str) -> Result<Vec<IpNet>, NetworkError> {
        let mut taken: Vec<IpNet> = self
            .db
            .read(store::networks)?
            .iter()
            .flat_map(|n| {
                n.config
                    .subnets
                    .iter()
                    .filter_map(|s| s.subnet.parse().ok())
            })
            .collect();
        if driver == "bridge" {
            taken.extend(
                berth_network::host_routes()?
                    .into_iter()
                    .filter(|r: &IpNet| r.prefix > 0),
            );
        }
        Ok(taken)
    }
}

/// Whether `name` is one of the networks every root has.
pub fn is_predefined(name: &str) -> bool {
    matches!(name, "bridge" | "host" | "none")
}

/// `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, as a Linux interface or a DNS label would take it.
fn is_valid_network_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Names `--network` gives a meaning of its own.
fn is_predefined_mode(name: &str) -> bool {
    matches!(name, "host" | "none" | "default" | "private") || name.starts_with("container:")
}

type PlannedSubnet = (IpNet, IpAddr, Option<IpNet>);

/// `--subnet`, `--gateway` and `--ip-range`, checked against each other.
fn parse_subnets(req: &NetworkCreate) -> Result<Vec<PlannedSubnet>, NetworkError> {
    if req.gateways.len() > req.subnets.len() || req.ip_ranges.len() > req.subnets.len() {
        return Err(NetworkError::Invalid(
            "every --gateway and --ip-range needs a --subnet".to_owned(),
        ));
    }
    let mut out: Vec<PlannedSubnet> = Vec::new();
    for (i, text) in req.subnets.iter().enumerate() {
        let subnet = parse_net("--subnet", text)?;
        if subnet.network() != subnet {
            return Err(NetworkError::Invalid(format!(
                "invalid subnet {text}: it should be {}",
                subnet.network()
            )));
        }
        let max = if subnet.is_v4() { 30 } else { 126 };
        if subnet.prefix > max {
            return Err(NetworkError::Invalid(format!(
                "invalid subnet {text}: too small for containers (at most /{max})"
            )));
        }
        let gateway = match req.gateways.get(i) {
            Some(g) => {
                let g: IpAddr = g.parse().map_err(|_| {
                    NetworkError::Invalid(format!("invalid --gateway {g}: not an IP address"))
                })?;
                if !subnet.contains(g) || g == subnet.addr || (g.is_ipv4() && g == subnet.last()) {
                    return Err(NetworkError::Invalid(format!(
                        "--gateway {g} is not a host address of subnet {text}"
                    )));
                }
                g
            }
            None => first_host(&subnet),
        };
        let range = match req.ip_ranges.get(i) {
            Some(r) => {
                let r = parse_net("--ip-range", r)?;
                if !subnet.contains(r.addr) || r.prefix < subnet.prefix {
                    return Err(NetworkError::Invalid(format!(
                        "--ip-range {r} is not inside subnet {text}"
                    )));
                }
                Some(r.network())
            }
            None => None,
        };
        if let Some(other) = out.iter().find(|o| o.0.overlaps(&subnet)) {
            return Err(NetworkError::Overlap {
                subnet: text.clone(),
                other: other.0.to_string(),
            });
        }
        out.push((subnet, gateway, range));
    }
    out.sort_by_key(|s| !s.0.is_v4());
    Ok(out)
}

fn parse_net(flag: &str, text: &str) -> Result<IpNet, NetworkError> {
    text.parse()
        .map_err(|e| NetworkError::Invalid(format!("invalid {flag} {text}: {e}")))
}

/// The first host address of `subnet`: the gateway docker picks.
pub(crate) fn first_host(subnet: &IpNet) -> IpAddr {
    match subnet.network().addr {
        IpAddr::V4(a) => IpAddr::V4((u32::from(a) + 1).into()),
        IpAddr::V6(a) => IpAddr::V6((u128::from(a) + 1).into()),
    }
}

fn macvlan_parent(req: &NetworkCreate) -> Result<String, NetworkError> {
    let parent = req.options.get("parent").cloned().ok_or_else(|| {
        NetworkError::Invalid("a macvlan network needs -o parent=INTERFACE".to_owned())
    })?;
    if !berth_network::link_exists(&parent)? {
        return Err(NetworkError::Invalid(format!(
            "-o parent={parent}: no such interface on this host"
        )));
    }
    Ok(parent)
}

fn mtu(req: &NetworkCreate) -> Result<u32, NetworkError> {
    let Some(text) = req
        .options
        .get("com.docker.network.driver.mtu")
        .or_else(|| req.options.get("mtu"))
    else {
        return Ok(DEFAULT_MTU);
    };
    match text.parse::<u32>() {
        Ok(m) if (68..=65535).contains(&m) => Ok(m),
        _ => Err(NetworkError::Invalid(format!(
            "invalid MTU {text}: it must be a number from 68 to 65535"
        ))),
    }
}

/// A new bridge network must not take over an interface of the host (another network's
/// bridge, or one Berth did not make: `network rm` deletes its bridge), nor a subnet the host
/// routes elsewhere (another root's network, the host's own LAN).
fn check_host(network: &Network) -> Result<(), NetworkError> {
    if berth_network::link_exists(&network.interface)? {
        return Err(NetworkError::Invalid(format!(
            "bridge name {}: an interface of that name already exists on this host",
            network.interface
        )));
    }
    let routes = berth_network::host_routes()?;
    for s in &network.config.subnets {
        let Ok(ours) = s.subnet.parse::<IpNet>() else {
            continue;
        };
        if let Some(route) = routes.iter().find(|r| r.overlaps(&ours)) {
            return Err(NetworkError::Overlap {
                subnet: s.subnet.clone(),
                other: format!("the host's route to {route}"),
            });
        }
    }
    Ok(())
}

fn check_overlaps(tx: &Transaction, network: &Network) -> Result<(), NetworkError> {
    for other in store::networks(tx)? {
        if network.driver == "bridge"
            && other.driver == "bridge"
            && other.interface == network.interface
        {
            return Err(NetworkError::Invalid(format!(
                "bridge name {}: network {} uses it",
                network.interface, other.name
            )));
        }
        for theirs in &other.config.subnets {
            let Ok(theirs_net) = theirs.subnet.parse::<IpNet>() else {
                continue;
            };
            for ours in &network.config.subnets {
                if ours
                    .subnet
                    .parse::<IpNet>()
                    .is_ok_and(|o| o.overlaps(&theirs_net))
                {
                    return Err(NetworkError::Overlap {
                        subnet: ours.subnet.clone(),
                        other: format!("{} of network {}", theirs.subnet, other.name),
                    });
                }
            }
        }
    }
    Ok(())
}

/// The bridge with its gateway addresses, and its firewall rules.
pub(crate) fn bring_up(n: &Network) -> Result<(), NetworkError> {
    let addresses = n
        .config
        .subnets
        .iter()
        .filter_map(|s| {
            let subnet: IpNet = s.subnet.parse().ok()?;
            Some(IpNet {
                addr: s.gateway.parse().ok()?,
                prefix: subnet.prefix,
            })
        })
        .collect();
    berth_network::ensure_bridge(&berth_network::BridgeConfig {
        name: n.interface.clone(),
        mtu: n.config.mtu,
        addresses,
    })?;
    berth_network::add_network_rules(&rules_of(n))?;
    Ok(())
}

/// What the firewall needs to know of a bridge network.
pub(crate) fn rules_of(n: &Network) -> berth_network::NetworkRules {
    berth_network::NetworkRules {
        bridge: n.interface.clone(),
        subnets: n
            .config
            .subnets
            .iter()
            .filter_map(|s| s.subnet.parse().ok())
            .collect(),
        internal: n.config.internal,
    }
}

/// Remove a bridge network's rules and bridge; both are attempted.
fn teardown_bridge(n: &Network) -> Result<(), NetworkError> {
    let rules = berth_network::remove_network_rules(&n.interface);
    berth_network::delete_link(&n.interface)?;
    Ok(rules?)
}

fn now() -> String {
    format_time(OffsetDateTime::now_utc()).unwrap_or_default()
}

impl Engine {
    /// Container `id`'s networks, each with its place on it, in interface order.
    pub fn container_networks(
        &mut self,
        id: &str,
    ) -> Result<Vec<(Network, store::EndpointRow)>, NetworkError> {
        self.db.read(|tx| {
            store::endpoints_of_container(tx, id)?
                .into_iter()
                .map(|e| Ok((super::attach::network_by_id(tx, &e.network_id)?, e)))
                .collect()
        })
    }

    /// The containers on network `id`: (container ID, name, its place).
    pub fn network_containers(
        &mut self,
        id: &str,
    ) -> Result<Vec<(String, String, store::EndpointRow)>, NetworkError> {
        self.db.read(|tx| {
            let mut out = Vec::new();
            for e in store::endpoints_of_network(tx, id)? {
                let name: String = tx.query_row(
                    "SELECT name FROM containers WHERE id = ?1",
                    [&e.container_id],
                    |r| r.get(0),
                )?;
                out.push((e.container_id.clone(), name, e));
            }
            Ok(out)
        })
    }
}
