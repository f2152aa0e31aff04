//! Network namespaces, bridge/veth/macvlan via netlink, IPAM, nftables NAT and ports. (Not built yet: issue 6.)
