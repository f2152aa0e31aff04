//! Container interfaces: a veth pair onto a bridge, or a macvlan, created directly inside the
//! container's netns and configured there with one netlink socket and one batch.

use std::net::IpAddr;
use std::os::fd::AsRawFd;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::link::{
    InfoBridgePort, InfoData, InfoKind, InfoMacVlan, InfoPortData, InfoPortKind, InfoVeth,
    LinkAttribute, LinkFlags, LinkInfo, LinkMessage, MacVlanMode,
};
use netlink_packet_route::RouteNetlinkMessage;

use crate::ipnet::IpNet;
use crate::link::{
    default_route, delete_with, index_of, new_address, nl_err, no_dad, open_nl, LinkError,
};
use crate::netns::NetNs;

/// One interface of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Name inside the container: "eth0", "eth1"...
    pub ifname: String,
    /// MAC address; the kernel picks one when None.
    pub mac: Option<[u8; 6]>,
    /// MTU.
    pub mtu: u32,
    /// Container addresses with the subnet prefix.
    pub addresses: Vec<IpNet>,
    /// Default routes to add (empty for internal networks).
    pub gateways: Vec<IpAddr>,
}

/// A veth pair: host end `host_ifname` enslaved to `bridge`, up, in hairpin mode; the peer is
/// created directly in `ns` as `ep.ifname` (IFLA_NET_NS_FD in the peer's attributes) with its
/// MAC and MTU, then given its addresses (v6 without DAD), brought up and given default routes.
pub fn add_veth(
    ns: &NetNs,
    bridge: &str,
    host_ifname: &str,
    ep: &Endpoint,
) -> Result<(), LinkError> {
    let mut nl = open_nl(host_ifname)?;
    let bridge_index = index_of(&mut nl, bridge)?.ok_or_else(|| LinkError::NotFound {
        name: bridge.into(),
    })?;
    let mut host = LinkMessage::default();
    host.header.flags = LinkFlags::Up;
    host.header.change_mask = LinkFlags::Up;
    host.attributes
        .push(LinkAttribute::IfName(host_ifname.into()));
    host.attributes.push(LinkAttribute::Mtu(ep.mtu));
    host.attributes
        .push(LinkAttribute::Controller(bridge_index));
    let peer = peer_message(ns, ep);
    host.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
    ]));
    // Port options apply only to an existing port: a second NEWLINK (no CREATE) by name.
    let mut hairpin = LinkMessage::default();
    hairpin
        .attributes
        .push(LinkAttribute::IfName(host_ifname.into()));
    hairpin.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::PortKind(InfoPortKind::Bridge),
        LinkInfo::PortData(InfoPortData::BridgePort(vec![InfoBridgePort::HairpinMode(
            true,
        )])),
    ]));
    let batch = vec![
        (
            RouteNetlinkMessage::NewLink(host),
            NLM_F_CREATE | NLM_F_EXCL,
        ),
        (RouteNetlinkMessage::NewLink(hairpin), 0),
    ];
    nl.batch(batch).map_err(|(i, e)| {
        nl_err(
            host_ifname,
            if i == 0 {
                "create veth pair"
            } else {
                "set hairpin mode"
            },
        )(e)
    })?;
    configure_or_undo(ns, ep, || delete_with(&mut nl, host_ifname))
}

/// A macvlan (mode bridge) on host link `parent`, created directly in `ns` as `ep.ifname`,
/// then configured like `add_veth`'s peer.
pub fn add_macvlan(ns: &NetNs, parent: &str, ep: &Endpoint) -> Result<(), LinkError> {
    let mut nl = open_nl(parent)?;
    let parent_index = index_of(&mut nl, parent)?.ok_or_else(|| LinkError::NotFound {
        name: parent.into(),
    })?;
    let mut link = peer_message(ns, ep);
    link.attributes.push(LinkAttribute::Link(parent_index));
    link.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::MacVlan),
        LinkInfo::Data(InfoData::MacVlan(vec![InfoMacVlan::Mode(
            MacVlanMode::Bridge,
        )])),
    ]));
    nl.request(
        RouteNetlinkMessage::NewLink(link),
        NLM_F_CREATE | NLM_F_EXCL,
    )
    .map_err(nl_err(&ep.ifname, "create macvlan"))?;
    configure_or_undo(ns, ep, || remove_interface(ns, &ep.ifname))
}

/// Delete interface `ifname` inside `ns` (Ok if missing). Deleting a veth end deletes its peer.
pub fn remove_interface(ns: &NetNs, ifname: &str) -> Result<(), LinkError> {
    ns.run(|| delete_with(&mut open_nl(ifname)?, ifname))?
}

/// The attributes of an interface to be born in `ns`: name, netns, MTU, MAC.
fn peer_message(ns: &NetNs, ep: &Endpoint) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.attributes
        .push(LinkAttribute::IfName(ep.ifname.clone()));
    msg.attributes
        .push(LinkAttribute::NetNsFd(ns.fd().as_raw_fd()));
    msg.attributes.push(LinkAttribute::Mtu(ep.mtu));
    if let Some(mac) = ep.mac {
        msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
    }
    msg
}

/// Configure the new interface inside `ns`; on failure run `undo` (best effort) and report
/// the configuration error.
fn configure_or_undo(
    ns: &NetNs,
    ep: &Endpoint,
    undo: impl FnOnce() -> Result<(), LinkError>,
) -> Result<(), LinkError> {
    let result = ns
        .run(|| configure_inside(ep))
        .map_err(LinkError::from)
        .and_then(|r| r);
    if result.is_err() {
        let _ = undo();
    }
    result
}

/// In the container's netns: addresses, up, default routes, in one batch.
fn configure_inside(ep: &Endpoint) -> Result<(), LinkError> {
    let name = ep.ifname.as_str();
    let mut nl = open_nl(name)?;
    let index =
        index_of(&mut nl, name)?.ok_or_else(|| LinkError::NotFound { name: name.into() })?;
    if ep.addresses.iter().any(|a| !a.is_v4()) {
        // With DAD the link-local address stays tentative for a second or more, and v6 traffic
        // is lost meanwhile (the addresses we add carry IFA_F_NODAD already).
        no_dad(name)?;
    }
    let mut msgs: Vec<_> = ep
        .addresses
        .iter()
        .map(|a| (new_address(index, a), NLM_F_CREATE | NLM_F_EXCL))
        .collect();
    let mut up = LinkMessage::default();
    up.header.index = index;
    up.header.flags = LinkFlags::Up;
    up.header.change_mask = LinkFlags::Up;
    msgs.push((RouteNetlinkMessage::SetLink(up), 0));
    let first_route = msgs.len();
    msgs.extend(
        ep.gateways
            .iter()
            .map(|gw| (default_route(index, *gw), NLM_F_CREATE | NLM_F_EXCL)),
    );
    nl.batch(msgs).map_err(|(i, e)| {
        let step = if i < ep.addresses.len() {
            "add address"
        } else if i < first_route {
            "set up"
        } else {
            "add default route"
        };
        nl_err(name, step)(e)
    })
}
