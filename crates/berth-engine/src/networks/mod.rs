//! Networks: `berth network create|ls|inspect|rm|prune|connect|disconnect`, each container's
//! place on them, and what `start` and the exit cleanup do with them (a pinned network
//! namespace, its interfaces, the addresses, published ports and the name files). The
//! kernel work is `berth-network`'s; the state (and so the IPAM) is the engine database's.

mod attach;
pub mod connect;
mod dns;
mod join;
mod manage;
mod names;
mod ports;
pub mod store;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

pub use connect::ConnectOptions;
pub use dns::HostsEntry;
pub use manage::{is_predefined, NetworkCreate};
pub use ports::{parse_publish, proto_name, PortSpec, PublishedPort};
pub use store::{EndpointConfig, EndpointRow, NetConfig, Network, Subnet};

/// The default network's name, and the two that are not networks but modes.
pub const DEFAULT_NETWORK: &str = "bridge";

/// Why a network operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// No such network (docker's wording).
    #[error("network {0} not found")]
    NotFound(String),
    /// The name is taken.
    #[error("network with name {0} already exists")]
    NameInUse(String),
    /// A flag's value is wrong.
    #[error("{0}")]
    Invalid(String),
    /// A subnet overlaps another network's or a route of the host.
    #[error("invalid subnet {subnet}: it overlaps {other}")]
    Overlap {
        /// The subnet asked for.
        subnet: String,
        /// What it overlaps.
        other: String,
    },
    /// `bridge`, `host` and `none` cannot be removed.
    #[error("{0} is a pre-defined network and cannot be removed")]
    Predefined(String),
    /// Containers are on it.
    #[error(
        "error while removing network: network {name} id {id} has active endpoints ({containers})"
    )]
    InUse {
        /// The network.
        name: String,
        /// Its ID.
        id: String,
        /// The containers' names.
        containers: String,
    },
    /// An address asked for cannot be had.
    #[error("requested address {address} on network {network}: {reason}")]
    Address {
        /// The address.
        address: IpAddr,
        /// The network.
        network: String,
        /// Why.
        reason: &'static str,
    },
    /// No address is left.
    #[error("no available IPv{family} addresses on network {network}")]
    Exhausted {
        /// The network.
        network: String,
        /// 4 or 6.
        family: u8,
    },
    /// A published port is taken.
    #[error("failed to bind host port {address}:{port}/{proto}: {reason}")]
    PortTaken {
        /// The host address (`0.0.0.0` for any).
        address: String,
        /// The port.
        port: u16,
        /// `tcp` or `udp`.
        proto: &'static str,
        /// Who has it, or the kernel's error.
        reason: String,
    },
    /// The container is (or is not) on the network.
    #[error("container {container} {what} network {network}")]
    Membership {
        /// The container.
        container: String,
        /// "is already attached to", "is not connected to".
        what: &'static str,
        /// The network.
        network: String,
    },
    /// The state database.
    #[error("network state ({op}): {source}")]
    Sqlite {
        /// What was being done.
        op: &'static str,
        /// Why.
        source: rusqlite::Error,
    },
    /// Links, addresses, routes.
    #[error(transparent)]
    Link(#[from] berth_network::LinkError),
    /// The network namespace.
    #[error(transparent)]
    Netns(#[from] berth_network::NetnsError),
    /// nftables.
    #[error(transparent)]
    Nft(#[from] berth_network::NftError),
    /// A file.
    #[error("{step} {path}: {source}")]
    Io {
        /// What was being done.
        step: &'static str,
        /// On what.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Tearing down failed part-way; every failure is listed.
    #[error("releasing the network of container {id}: {}", .failures.join("; "))]
    Teardown {
        /// The container.
        id: String,
        /// What failed.
        failures: Vec<String>,
    },
}

impl From<rusqlite::Error> for NetworkError {
    fn from(source: rusqlite::Error) -> NetworkError {
        NetworkError::Sqlite {
            op: "query",
            source,
        }
    }
}

/// The network a rootless container gets when `--network` is not given: `pasta` when it is
/// on PATH, else `slirp4netns` (podman's order). The one place that choice is made.
pub fn rootless_default() -> &'static str {
    let on_path = |tool: &str| {
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
    };
    if on_path("pasta") {
        "pasta"
    } else {
        "slirp4netns"
    }
}

/// Where container `id`'s network namespace is pinned.
pub fn netns_path(run_root: &Path, id: &str) -> PathBuf {
    run_root.join("netns").join(id)
}

/// The host end of container `id`'s veth on its `position`th network (15 bytes at most).
pub fn host_veth(id: &str, position: u32) -> String {
    format!("vb{}{position}", &id[..id.len().min(10)])
}
