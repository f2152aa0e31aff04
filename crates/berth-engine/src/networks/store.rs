//! The `networks` and `endpoints` tables: plain reads and writes inside a caller's
//! transaction (the callers decide what goes into one).

use std::collections::BTreeMap;
use std::net::IpAddr;

use rusqlite::{params, OptionalExtension, Row, Transaction};
use serde::{Deserialize, Serialize};

/// A network as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    /// 64 hex digits.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// `bridge`, `macvlan`, `host` or `null`.
    pub driver: String,
    /// The Linux bridge (bridge) or the parent interface (macvlan).
    pub interface: String,
    /// Subnets and options.
    pub config: NetConfig,
    /// RFC 3339.
    pub created: String,
}

/// What `network create` fixed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetConfig {
    /// IPv4 first, then IPv6.
    pub subnets: Vec<Subnet>,
    /// `--internal`: no way out.
    #[serde(default)]
    pub internal: bool,
    /// `--ipv6`.
    #[serde(default)]
    pub ipv6: bool,
    /// `-o KEY=VALUE`.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// `--label`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The MTU of its interfaces.
    pub mtu: u32,
}

/// One subnet of a network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subnet {
    /// `172.18.0.0/16`.
    pub subnet: String,
    /// `172.18.0.1`.
    pub gateway: String,
    /// `--ip-range`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
}

/// What a container asked for on one network.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointConfig {
    /// `--network-alias` / `connect --alias`.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// `--ip`.
    #[serde(default)]
    pub ip4: Option<String>,
    /// `--ip6`.
    #[serde(default)]
    pub ip6: Option<String>,
    /// `--mac-address`.
    #[serde(default)]
    pub mac: Option<String>,
}

/// A container's place on a network.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointRow {
    /// The container.
    pub container_id: String,
    /// The network.
    pub network_id: String,
    /// Its interface is `eth<position>`.
    pub position: u32,
    /// What it asked for.
    pub config: EndpointConfig,
    /// Its addresses while it runs.
    pub ip4: Option<IpAddr>,
    /// Its IPv6 address while it runs.
    pub ip6: Option<IpAddr>,
}

impl EndpointRow {
    /// The interface inside the container.
    pub fn ifname(&self) -> String {
        format!("eth{}", self.position)
    }
}

const NETWORK_COLUMNS: &str = "id, name, driver, interface, config, created";
const ENDPOINT_COLUMNS: &str = "container_id, network_id, position, config, ip4, ip6";

fn network_from_row(row: &Row<'_>) -> rusqlite::Result<Network> {
    let config: String = row.get(4)?;
    Ok(Network {
        id: row.get(0)?,
        name: row.get(1)?,
        driver: row.get(2)?,
        interface: row.get(3)?,
        config: serde_json::from_str(&config).unwrap_or_default(),
        created: row.get(5)?,
    })
}

fn endpoint_from_row(row: &Row<'_>) -> rusqlite::Result<EndpointRow> {
    let config: String = row.get(3)?;
    let ip = |i| -> rusqlite::Result<Option<IpAddr>> {
        Ok(row
            .get::<_, Option<String>>(i)?
            .and_then(|s| s.parse().ok()))
    };
    Ok(EndpointRow {
        container_id: row.get(0)?,
        network_id: row.get(1)?,
        position: row.get(2)?,
        config: serde_json::from_str(&config).unwrap_or_default(),
        ip4: ip(4)?,
        ip6: ip(5)?,
    })
}

/// Store a new network.
pub fn insert_network(tx: &Transaction, n: &Network) -> rusqlite::Result<()> {
    let config = serde_json::to_string(&n.config).unwrap_or_else(|_| "{}".into());
    tx.execute(
        &format!("INSERT INTO networks ({NETWORK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
        params![n.id, n.name, n.driver, n.interface, config, n.created],
    )?;
    Ok(())
}

/// Every network, by name.
pub fn networks(tx: &Transaction) -> rusqlite::Result<Vec<Network>> {
    let mut stmt = tx.prepare(&format!(
        "SELECT {NETWORK_COLUMNS} FROM networks ORDER BY name"
    ))?;
    let rows = stmt.query_map([], network_from_row)?;
    rows.collect()
}

/// The network `what` names: full ID, name, or a unique ID prefix.
pub fn find_network(tx: &Transaction, what: &str) -> rusqlite::Result<Option<Network>> {
    let exact = tx
        .query_row(
            &format!("SELECT {NETWORK_COLUMNS} FROM networks WHERE id = ?1 OR name = ?1"),
            [what],
            network_from_row,
        )
        .optional()?;
    if exact.is_some()
        || what.is_empty()
        || !what.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Ok(exact);
    }
    let mut stmt = tx.prepare(&format!(
        "SELECT {NETWORK_COLUMNS} FROM networks WHERE id GLOB ?1 || '*' LIMIT 2"
    ))?;
    let found: Vec<Network> = stmt
        .query_map([what], network_from_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok((found.len() == 1)
        .then(|| found.into_iter().next())
        .flatten())
}

/// Forget a network (its endpoints must be gone).
pub fn delete_network(tx: &Transaction, id: &str) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM networks WHERE id = ?1", [id])?;
    Ok(())
}

/// A container's endpoints, in interface order.
pub fn endpoints_of_container(tx: &Transaction, id: &str) -> rusqlite::Result<Vec<EndpointRow>> {
    let mut stmt = tx.prepare(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE container_id = ?1 ORDER BY position"
    ))?;
    let rows = stmt.query_map([id], endpoint_from_row)?;
    rows.collect()
}

/// The endpoints on a network.
pub fn endpoints_of_network(tx: &Transaction, id: &str) -> rusqlite::Result<Vec<EndpointRow>> {
    let mut stmt = tx.prepare(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM endpoints WHERE network_id = ?1"
    ))?;
    let rows = stmt.query_map([id], endpoint_from_row)?;
    rows.collect()
}

/// Put a container on a network.
pub fn insert_endpoint(tx: &Transaction, e: &EndpointRow) -> rusqlite::Result<()> {
    let config = serde_json::to_string(&e.config).unwrap_or_else(|_| "{}".into());
    tx.execute(
        &format!("INSERT INTO endpoints ({ENDPOINT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
        params![
            e.container_id,
            e.network_id,
            e.position,
            config,
            e.ip4.map(|a| a.to_string()),
            e.ip6.map(|a| a.to_string())
        ],
    )?;
    Ok(())
}

/// Take a container off a network.
pub fn delete_endpoint(tx: &Transaction, container: &str, network: &str) -> rusqlite::Result<()> {
    tx.execute(
        "DELETE FROM endpoints WHERE container_id = ?1 AND network_id = ?2",
        [container, network],
    )?;
    Ok(())
}

/// Record (or with `None`, release) an endpoint's addresses.
pub fn set_addresses(
    tx: &Transaction,
    container: &str,
    network: &str,
    (ip4, ip6): (Option<IpAddr>, Option<IpAddr>),
) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE endpoints SET ip4 = ?3, ip6 = ?4 WHERE container_id = ?1 AND network_id = ?2",
        params![
            container,
            network,
            ip4.map(|a| a.to_string()),
            ip6.map(|a| a.to_string())
        ],
    )?;
    Ok(())
}

/// Release every address of a container.
pub fn release_addresses(tx: &Transaction, container: &str) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE endpoints SET ip4 = NULL, ip6 = NULL WHERE container_id = ?1",
        [container],
    )?;
    Ok(())
}

/// Containers that hold addresses or published ports but do not run (a start or a cleanup
/// that died half-way).
pub fn stale_holders(tx: &Transaction) -> rusqlite::Result<Vec<String>> {
    let mut stmt = tx.prepare(
        "SELECT id FROM containers WHERE status NOT IN ('running', 'paused', 'restarting')
         AND (ports != '[]' OR id IN
              (SELECT container_id FROM endpoints WHERE ip4 IS NOT NULL OR ip6 IS NOT NULL))",
    )?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    rows.collect()
}

/// The containers that have a process (running, paused, restarting).
pub fn live_ids(tx: &Transaction) -> rusqlite::Result<Vec<String>> {
    let mut stmt = tx
        .prepare("SELECT id FROM containers WHERE status IN ('running', 'paused', 'restarting')")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    rows.collect()
}
