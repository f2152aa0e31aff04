//! Host links: bridges, lookups by name, deletion, and the host's routes.

use std::io;
use std::net::IpAddr;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::ipnet::IpNet;
use crate::netns::{write_sysctl, NetnsError};
use crate::nl::Nl;

/// Errors of link handling; each names the link and the step.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// A netlink request failed.
    #[error("link {name}: {step}")]
    Netlink {
        /// The link (or "routes" for route dumps).
        name: String,
        /// What was being done.
        step: &'static str,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// A link that must exist (bridge, macvlan parent) does not.
    #[error("link {name}: not found")]
    NotFound {
        /// The link.
        name: String,
    },
    /// A sysctl write failed.
    #[error("sysctl {key}")]
    Sysctl {
        /// The key.
        key: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Entering the container's namespace failed.
    #[error(transparent)]
    Netns(#[from] NetnsError),
}

/// A bridge to create or update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeConfig {
    /// Interface name.
    pub name: String,
    /// MTU.
    pub mtu: u32,
    /// Gateway addresses with the subnet prefix.
    pub addresses: Vec<IpNet>,
}

pub(crate) fn nl_err<'a>(
    name: &'a str,
    step: &'static str,
) -> impl FnOnce(io::Error) -> LinkError + 'a {
    move |source| LinkError::Netlink {
        name: name.into(),
        step,
        source,
    }
}

/// Open a netlink socket in the calling thread's namespace.
pub(crate) fn open_nl(name: &str) -> Result<Nl, LinkError> {
    Nl::open().map_err(nl_err(name, "open netlink socket"))
}

/// Create the bridge if missing (EEXIST from a concurrent creator is fine), add missing
/// addresses (IPv6 with IFA_F_NODAD), set MTU, set up. Also enables forwarding
/// (net.ipv4.ip_forward, and net.ipv6.conf.all.forwarding if any v6 address) and
/// net.ipv4.conf.<bridge>.route_localnet. Returns the bridge's ifindex.
pub fn ensure_bridge(cfg: &BridgeConfig) -> Result<u32, LinkError> {
    let name = cfg.name.as_str();
    let mut nl = open_nl(name)?;
    let index = match index_of(&mut nl, name)? {
        Some(i) => i,
        None => create_bridge(&mut nl, cfg)?,
    };
    let v6 = cfg.addresses.iter().any(|a| !a.is_v4());
    if v6 {
        no_dad(name)?;
    }
    let mut msgs: Vec<_> = cfg
        .addresses
        .iter()
        .map(|a| (new_address(index, a), NLM_F_CREATE | NLM_F_REPLACE))
        .collect();
    let mut link = LinkMessage::default();
    link.header.index = index;
    link.header.flags = LinkFlags::Up;
    link.header.change_mask = LinkFlags::Up;
    link.attributes.push(LinkAttribute::Mtu(cfg.mtu));
    msgs.push((RouteNetlinkMessage::SetLink(link), 0));
    nl.batch(msgs)
        .map_err(|(_, e)| nl_err(name, "configure bridge")(e))?;
    enable_forwarding(name, v6)?;
    Ok(index)
}

fn create_bridge(nl: &mut Nl, cfg: &BridgeConfig) -> Result<u32, LinkError> {
    let mut link = LinkMessage::default();
    link.attributes
        .push(LinkAttribute::IfName(cfg.name.clone()));
    link.attributes.push(LinkAttribute::Mtu(cfg.mtu));
    link.attributes
        .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
            InfoKind::Bridge,
        )]));
    match nl.request(
        RouteNetlinkMessage::NewLink(link),
        NLM_F_CREATE | NLM_F_EXCL,
    ) {
        Err(e) if e.raw_os_error() != Some(libc_eexist()) => {
            return Err(nl_err(&cfg.name, "create bridge")(e))
        }
        _ => {}
    }
    index_of(nl, &cfg.name)?.ok_or_else(|| LinkError::NotFound {
        name: cfg.name.clone(),
    })
}

fn libc_eexist() -> i32 {
    nix::errno::Errno::EEXIST as i32
}

/// Turn off duplicate address detection on `ifname`, so its v6 link-local address is usable at once.
pub(crate) fn no_dad(ifname: &str) -> Result<(), LinkError> {
    let key = format!("net/ipv6/conf/{ifname}/accept_dad");
    write_sysctl(&key, "0").map_err(|source| LinkError::Sysctl { key, source })
}

fn enable_forwarding(bridge: &str, v6: bool) -> Result<(), LinkError> {
    let mut keys = vec!["net/ipv4/ip_forward".to_string()];
    if v6 {
        keys.push("net/ipv6/conf/all/forwarding".into());
    }
    keys.push(format!("net/ipv4/conf/{bridge}/route_localnet"));
    for key in keys {
        write_sysctl(&key, "1").map_err(|source| LinkError::Sysctl { key, source })?;
    }
    Ok(())
}

/// An RTM_NEWADDR for `addr` on `index` (v6 without duplicate address detection).
pub(crate) fn new_address(index: u32, addr: &IpNet) -> RouteNetlinkMessage {
    let mut msg = AddressMessage::default();
    msg.header.family = family(addr.addr);
    msg.header.prefix_len = addr.prefix;
    msg.header.index = index;
    msg.attributes.push(AddressAttribute::Local(addr.addr));
    msg.attributes.push(AddressAttribute::Address(addr.addr));
    if !addr.is_v4() {
        msg.header.flags = AddressHeaderFlags::Nodad;
        msg.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    RouteNetlinkMessage::NewAddress(msg)
}

/// An RTM_NEWROUTE for a default route via `gateway` out of `index`.
pub(crate) fn default_route(index: u32, gateway: IpAddr) -> RouteNetlinkMessage {
    let mut msg = RouteMessage::default();
    msg.header.address_family = family(gateway);
    msg.header.table = RouteHeader::RT_TABLE_MAIN;
    msg.header.protocol = netlink_packet_route::route::RouteProtocol::Boot;
    msg.header.kind = RouteType::Unicast;
    let gw = match gateway {
        IpAddr::V4(v4) => RouteAddress::Inet(v4),
        IpAddr::V6(v6) => RouteAddress::Inet6(v6),
    };
    msg.attributes.push(RouteAttribute::Gateway(gw));
    msg.attributes.push(RouteAttribute::Oif(index));
    RouteNetlinkMessage::NewRoute(msg)
}

fn family(ip: IpAddr) -> AddressFamily {
    if ip.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

/// The ifindex of `name` through an open socket, or None.
pub(crate) fn index_of(nl: &mut Nl, name: &str) -> Result<Option<u32>, LinkError> {
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.into()));
    match nl.get(RouteNetlinkMessage::GetLink(msg)) {
        Ok(replies) => Ok(replies.into_iter().find_map(|r| match r {
            RouteNetlinkMessage::NewLink(l) => Some(l.header.index),
            _ => None,
        })),
        Err(e) if e.raw_os_error() == Some(nix::errno::Errno::ENODEV as i32) => Ok(None),
        Err(e) => Err(nl_err(name, "look up link")(e)),
    }
}

/// Delete link `name` through an open socket; Ok if it is missing.
pub(crate) fn delete_with(nl: &mut Nl, name: &str) -> Result<(), LinkError> {
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.into()));
    match nl.request(RouteNetlinkMessage::DelLink(msg), 0) {
        Err(e) if e.raw_os_error() != Some(nix::errno::Errno::ENODEV as i32) => {
            Err(nl_err(name, "delete link")(e))
        }
        _ => Ok(()),
    }
}

/// Delete host link `name`; Ok if it is missing.
pub fn delete_link(name: &str) -> Result<(), LinkError> {
    delete_with(&mut open_nl(name)?, name)
}

/// Does host link `name` exist?
pub fn link_exists(name: &str) -> Result<bool, LinkError> {
    Ok(link_index(name)?.is_some())
}

/// The ifindex of host link `name`, or None.
pub fn link_index(name: &str) -> Result<Option<u32>, LinkError> {
    index_of(&mut open_nl(name)?, name)
}

/// Host links whose name starts with `prefix` (for crash cleanup of leftover host veths).
pub fn links_with_prefix(prefix: &str) -> Result<Vec<String>, LinkError> {
    let mut nl = open_nl(prefix)?;
    let replies = nl
        .dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))
        .map_err(nl_err(prefix, "list links"))?;
    let names = replies.into_iter().filter_map(|r| match r {
        RouteNetlinkMessage::NewLink(l) => l.attributes.into_iter().find_map(|a| match a {
            LinkAttribute::IfName(n) if n.starts_with(prefix) => Some(n),
            _ => None,
        }),
        _ => None,
    });
    Ok(names.collect())
}

/// Destinations of the host's main-table unicast routes (v4 and v6), default routes left out
/// (they would overlap every subnet).
pub fn host_routes() -> Result<Vec<IpNet>, LinkError> {
    let mut nl = open_nl("routes")?;
    let replies = nl
        .dump(RouteNetlinkMessage::GetRoute(RouteMessage::default()))
        .map_err(nl_err("routes", "list routes"))?;
    Ok(replies
        .into_iter()
        .filter_map(main_route_destination)
        .collect())
}

fn main_route_destination(reply: RouteNetlinkMessage) -> Option<IpNet> {
    let RouteNetlinkMessage::NewRoute(route) = reply else {
        return None;
    };
    let table = route
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(route.header.table));
    if table != u32::from(RouteHeader::RT_TABLE_MAIN)
        || route.header.kind != RouteType::Unicast
        || route.header.destination_prefix_length == 0
    {
        return None;
    }
    let addr = route.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(RouteAddress::Inet(v4)) => Some(IpAddr::V4(*v4)),
        RouteAttribute::Destination(RouteAddress::Inet6(v6)) => Some(IpAddr::V6(*v6)),
        _ => None,
    })?;
    IpNet::new(addr, route.header.destination_prefix_length).map(|n| n.network())
}
