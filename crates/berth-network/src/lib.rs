//! Berth's container networking: network namespaces, bridge/veth/macvlan via netlink, IPAM,
//! nftables NAT and published ports, sysctls, and the user-mode helpers (pasta, slirp4netns). No state and no policy: the engine decides and
//! stores; this crate does what it is told and can undo it by name or tag.

mod endpoint;
mod ipam;
mod ipnet;
mod link;
mod netns;
mod nft;
mod nl;
mod ports;
mod usermode;

pub use endpoint::{add_macvlan, add_veth, remove_interface, Endpoint};
pub use ipam::{mac_for, next_free, pick_subnet, ula_subnet};
pub use ipnet::{IpNet, IpNetError};
pub use link::{
    delete_link, ensure_bridge, host_routes, link_exists, link_index, links_with_prefix,
    BridgeConfig, LinkError,
};
pub use netns::{remove_netns, set_sysctls, NetNs, NetnsError};
pub use nft::{
    add_network_rules, add_port_rules, remove_network_rules, remove_port_rules, tagged,
    NetworkRules, NftError,
};
pub use ports::{reserve_check, PortMapping, Proto};
pub use usermode::{
    parse_mode as parse_user_mode, Forward, Helper, SlirpOptions, UserMode, UsermodeError,
};

/// The user-mode helpers (pasta, slirp4netns).
pub mod user {
    pub use crate::usermode::{
        check, find, slirp_add_hostfwd, start_pasta, start_slirp, start_time, stop, stop_by_netns,
        SLIRP_TAP,
    };
}
