//! Real-kernel tests of the nftables rules (as root): listing, removal by tag, and DNAT.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use berth_network::*;
use common::*;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn our_rules(tag: &str) -> usize {
    let listing = sh("nft", &["list", "table", "inet", "berth"]);
    listing
        .lines()
        .filter(|l| l.contains(&format!("\"{tag}\"")))
        .count()
}

#[test]
fn rules_added_listed_and_removed_by_tag() {
    if !root("rules_added_listed_and_removed_by_tag")
        || !nft_ok("rules_added_listed_and_removed_by_tag")
    {
        return;
    }
    let _t = TableGuard;
    let br = name("bnt");
    let internal_br = name("bni");
    let ctr = name("ctr");
    let _g = (
        NetRulesGuard(br.clone()),
        NetRulesGuard(internal_br.clone()),
        PortRulesGuard(ctr.clone()),
    );
    let s = subnet24();
    let rules = NetworkRules {
        bridge: br.clone(),
        subnets: vec![net(&format!("{s}.0/24")), net("fd42:1::/64")],
        internal: false,
    };
    let t = std::time::Instant::now();
    add_network_rules(&rules).unwrap();
    println!("add_network_rules: {:?}", t.elapsed());
    add_network_rules(&rules).unwrap(); // idempotent: no duplicates
                                        // 2 per subnet (masquerade, hairpin), loopback masquerade, the 127/8 input guard, 2 forward.
    assert_eq!(our_rules(&format!("berth-net:{br}")), 8);
    add_network_rules(&NetworkRules {
        bridge: internal_br.clone(),
        subnets: vec![],
        internal: true,
    })
    .unwrap();
    assert_eq!(our_rules(&format!("berth-net:{internal_br}")), 2);
    let ports = [
        PortMapping {
            host_ip: None,
            host_port: 18080,
            proto: Proto::Tcp,
            container_ip: format!("{s}.2").parse().unwrap(),
            container_port: 80,
        },
        PortMapping {
            host_ip: Some("127.0.0.1".parse().unwrap()),
            host_port: 18081,
            proto: Proto::Udp,
            container_ip: format!("{s}.2").parse().unwrap(),
            container_port: 53,
        },
        PortMapping {
            host_ip: None,
            host_port: 18080,
            proto: Proto::Tcp,
            container_ip: "fd42:1::2".parse().unwrap(),
            container_port: 80,
        },
    ];
    let t = std::time::Instant::now();
    add_port_rules(&ctr, &ports).unwrap();
    println!("add_port_rules (3 mappings): {:?}", t.elapsed());
    assert_eq!(our_rules(&format!("berth-ctr:{ctr}")), 6);
    let listing = sh("nft", &["list", "table", "inet", "berth"]);
    assert!(
        listing.contains(&format!("dnat ip to {s}.2:80")),
        "{listing}"
    );
    assert!(listing.contains("dnat ip6 to [fd42:1::2]:80"), "{listing}");
    let (ids, bridges) = tagged().unwrap();
    assert!(ids.contains(&ctr) && bridges.contains(&br) && bridges.contains(&internal_br));

    let bad = PortMapping {
        host_ip: Some("::1".parse().unwrap()),
        ..ports[0].clone()
    };
    assert!(matches!(
        add_port_rules(&ctr, &[bad]),
        Err(NftError::FamilyMismatch { .. })
    ));

    let t = std::time::Instant::now();
    remove_port_rules(&ctr).unwrap();
    println!("remove_port_rules: {:?}", t.elapsed());
    remove_network_rules(&br).unwrap();
    remove_network_rules(&internal_br).unwrap();
    remove_network_rules(&br).unwrap(); // Ok when gone
    assert_eq!(our_rules(&format!("berth-ctr:{ctr}")), 0);
    assert_eq!(our_rules(&br), 0);
    let (ids, bridges) = tagged().unwrap();
    assert!(!ids.contains(&ctr) && !bridges.contains(&br) && !bridges.contains(&internal_br));
}

/// Connect to `addr` from inside `ns` (or from the host when None) and read the one byte served.
fn fetch(ns: Option<&NetNs>, addr: SocketAddr) -> Result<u8, String> {
    let go = move || -> Result<u8, String> {
        let mut s =
            TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(2)))
            .map_err(|e| e.to_string())?;
        let mut b = [0u8; 1];
        s.read_exact(&mut b).map_err(|e| e.to_string())?;
        Ok(b[0])
    };
    match ns {
        Some(ns) => ns.run(go).unwrap(),
        None => go(),
    }
}

#[test]
fn dnat_from_host_loopback_and_from_outside() {
    if !root("dnat_from_host_loopback_and_from_outside")
        || !nft_ok("dnat_from_host_loopback_and_from_outside")
    {
        return;
    }
    let _t = TableGuard;
    let br = name("bnt");
    let host_if = name("bve");
    let ext_host = name("bxh");
    let ctr = name("ctr");
    let _links = LinkGuard(vec![host_if.clone(), ext_host.clone(), br.clone()]);
    let _rules = (NetRulesGuard(br.clone()), PortRulesGuard(ctr.clone()));
    let s = subnet24();
    let x = subnet24();
    let s6 = format!("fd{:02x}:{:x}", rand16() & 0xff, rand16());
    let x6 = format!("fd{:02x}:{:x}", rand16() & 0xff, rand16());

    ensure_bridge(&BridgeConfig {
        name: br.clone(),
        mtu: 1500,
        addresses: vec![net(&format!("{s}.1/24")), net(&format!("{s6}::1/64"))],
    })
    .unwrap();
    add_network_rules(&NetworkRules {
        bridge: br.clone(),
        subnets: vec![net(&format!("{s}.0/24")), net(&format!("{s6}::/64"))],
        internal: false,
    })
    .unwrap();
    let container = NsGuard::new("dc");
    let cip: IpAddr = format!("{s}.2").parse().unwrap();
    let cip6: IpAddr = format!("{s6}::2").parse().unwrap();
    let ep = Endpoint {
        ifname: "eth0".into(),
        mac: None,
        mtu: 1500,
        addresses: vec![net(&format!("{cip}/24")), net(&format!("{cip6}/64"))],
        gateways: vec![
            format!("{s}.1").parse().unwrap(),
            format!("{s6}::1").parse().unwrap(),
        ],
    };
    add_veth(&container.0, &br, &host_if, &ep).unwrap();
    container
        .0
        .run(|| {
            for ip in [cip, cip6] {
                let l = TcpListener::bind((ip, 8080)).unwrap();
                std::thread::spawn(move || {
                    for mut c in l.incoming().flatten() {
                        let _ = c.write_all(b"c");
                    }
                });
            }
        })
        .unwrap();

    // An "external" host: a netns behind a second bridge that has no Berth rules.
    let outside = NsGuard::new("dx");
    let ext_ep = Endpoint {
        ifname: "eth0".into(),
        mac: None,
        mtu: 1500,
        addresses: vec![net(&format!("{x}.2/24")), net(&format!("{x6}::2/64"))],
        gateways: vec![
            format!("{x}.1").parse().unwrap(),
            format!("{x6}::1").parse().unwrap(),
        ],
    };
    let ext_br = format!("{ext_host}b");
    let _ext_br_guard = LinkGuard(vec![ext_br.clone()]);
    ensure_bridge(&BridgeConfig {
        name: ext_br.clone(),
        mtu: 1500,
        addresses: vec![net(&format!("{x}.1/24")), net(&format!("{x6}::1/64"))],
    })
    .unwrap();
    add_veth(&outside.0, &ext_br, &ext_host, &ext_ep).unwrap();

    let host_port = reserve_check(None, 0, Proto::Tcp).unwrap();
    let mapping = PortMapping {
        host_ip: None,
        host_port,
        proto: Proto::Tcp,
        container_ip: cip,
        container_port: 8080,
    };
    let mapping6 = PortMapping {
        container_ip: cip6,
        ..mapping.clone()
    };
    add_port_rules(&ctr, &[mapping, mapping6]).unwrap();

    let loopback = fetch(
        None,
        SocketAddr::new("127.0.0.1".parse().unwrap(), host_port),
    );
    let from_outside = fetch(
        Some(&outside.0),
        SocketAddr::new(format!("{x}.1").parse().unwrap(), host_port),
    );
    let direct = fetch(Some(&outside.0), SocketAddr::new(cip, 8080));
    let hairpin = fetch(
        Some(&container.0),
        SocketAddr::new(format!("{x}.1").parse().unwrap(), host_port),
    );
    let direct6 = fetch(Some(&outside.0), SocketAddr::new(cip6, 8080));
    let from_outside6 = fetch(
        Some(&outside.0),
        SocketAddr::new(format!("{x6}::1").parse().unwrap(), host_port),
    );
    let loopback6 = fetch(None, SocketAddr::new("::1".parse().unwrap(), host_port));
    println!("IPv6 host loopback [::1]:{host_port} -> container: {loopback6:?} (not supported)");
    assert_eq!(loopback, Ok(b'c'), "host loopback -> published port");
    assert_eq!(
        from_outside,
        Ok(b'c'),
        "outside -> host address:published port"
    );
    assert_eq!(
        direct,
        Ok(b'c'),
        "outside -> container address (routed, masquerade not involved)"
    );
    assert_eq!(
        hairpin,
        Ok(b'c'),
        "container -> host address:published port (hairpin)"
    );

    assert_eq!(
        direct6,
        Ok(b'c'),
        "outside -> [container v6] at once (no DAD wait)"
    );
    assert_eq!(
        from_outside6,
        Ok(b'c'),
        "outside -> [host v6]:published port"
    );

    remove_port_rules(&ctr).unwrap();
    assert!(fetch(
        None,
        SocketAddr::new("127.0.0.1".parse().unwrap(), host_port)
    )
    .is_err());
}
