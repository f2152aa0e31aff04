//! Real-kernel tests of netns, bridges, veths and macvlans (as root).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use berth_network::*;
use common::*;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

#[test]
fn netns_create_run_remove() {
    if !root("netns_create_run_remove") {
        return;
    }
    let path = pin_dir().join(name("ns"));
    let ns = NetNs::create(&path).unwrap();
    assert!(mounted(&path));
    let host_ino = std::fs::metadata("/proc/self/ns/net").unwrap();
    let (inner, lo_up) = ns
        .run(|| {
            let ino = std::fs::metadata("/proc/thread-self/ns/net").unwrap();
            let flags = std::fs::read_to_string("/sys/class/net/lo/flags").unwrap_or_default();
            (std::os::unix::fs::MetadataExt::ino(&ino), flags)
        })
        .unwrap();
    assert_ne!(inner, std::os::unix::fs::MetadataExt::ino(&host_ino));
    // lo is up: connect to a listener on 127.0.0.1 inside.
    let ok = ns
        .run(|| {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            TcpStream::connect(l.local_addr().unwrap()).is_ok()
        })
        .unwrap();
    assert!(ok, "loopback not up (sysfs flags {lo_up})");
    assert!(
        NetNs::create(&path).is_err(),
        "second create over the same pin must fail"
    );
    drop(ns);
    remove_netns(&path).unwrap();
    assert!(!mounted(&path));
    assert!(!path.exists());
    remove_netns(&path).unwrap();
}

#[test]
fn sysctls_follow_setns() {
    if !root("sysctls_follow_setns") {
        return;
    }
    let ns = NsGuard::new("sy");
    let key = "net.ipv4.ping_group_range";
    let host = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").unwrap();
    set_sysctls(&ns.0, &[(key.into(), "0 7".into())]).unwrap();
    let inside = in_ns(ns.path(), &["cat", "/proc/sys/net/ipv4/ping_group_range"]);
    assert_eq!(inside.split_whitespace().collect::<Vec<_>>(), ["0", "7"]);
    let after = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").unwrap();
    assert_eq!(host, after, "host value changed");
}

#[test]
fn ensure_bridge_concurrent_and_idempotent() {
    if !root("ensure_bridge_concurrent_and_idempotent") {
        return;
    }
    let br = name("bnt");
    let _g = LinkGuard(vec![br.clone()]);
    let s = subnet24();
    let cfg = BridgeConfig {
        name: br.clone(),
        mtu: 1400,
        addresses: vec![
            net(&format!("{s}.1/24")),
            net(&format!("fd{:02x}::1/64", rand16() & 0xff)),
        ],
    };
    let results: Vec<_> = std::thread::scope(|sc| {
        let a = sc.spawn(|| ensure_bridge(&cfg));
        let b = sc.spawn(|| ensure_bridge(&cfg));
        vec![a.join().unwrap(), b.join().unwrap()]
    });
    let ia = results[0].as_ref().unwrap();
    let ib = results[1].as_ref().unwrap();
    assert_eq!(ia, ib);
    assert_eq!(ensure_bridge(&cfg).unwrap(), *ia);
    assert_eq!(link_index(&br).unwrap(), Some(*ia));
    assert!(link_exists(&br).unwrap());
    let shown = sh("ip", &["-d", "addr", "show", "dev", &br]);
    assert!(
        shown.contains("mtu 1400") && shown.contains("bridge"),
        "{shown}"
    );
    assert!(shown.contains(&format!("{s}.1/24")), "{shown}");
    assert_eq!(shown.matches(&format!("{s}.1/24")).count(), 1, "{shown}");
    assert!(shown.contains("UP"), "{shown}");
    let localnet =
        std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{br}/route_localnet")).unwrap();
    assert_eq!(localnet.trim(), "1");
    assert!(host_routes().unwrap().contains(&net(&format!("{s}.0/24"))));
    assert_eq!(links_with_prefix(&br).unwrap(), vec![br.clone()]);
    delete_link(&br).unwrap();
    assert!(!link_exists(&br).unwrap());
    delete_link(&br).unwrap();
}

fn endpoint(ifname: &str, ip: &str, gw: Option<&str>) -> Endpoint {
    let addr = net(ip);
    let v4 = match addr.addr {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(_) => None,
    };
    Endpoint {
        ifname: ifname.into(),
        mac: Some(mac_for(v4)),
        mtu: 1400,
        addresses: vec![addr],
        gateways: gw.map(|g| g.parse().unwrap()).into_iter().collect(),
    }
}

/// Connect from inside `ns` to `addr` and read one byte the listener sends.
fn reach_from(ns: &NetNs, addr: SocketAddr) -> bool {
    ns.run(|| {
        let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
            return false;
        };
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).is_ok() && b[0] == b'x'
    })
    .unwrap()
}

/// A host listener that answers every connection with "x".
fn serve(bind: SocketAddr) -> SocketAddr {
    let l = TcpListener::bind(bind).unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            let _ = c.write_all(b"x");
        }
    });
    addr
}

#[test]
fn veth_into_netns_reaches_bridge() {
    if !root("veth_into_netns_reaches_bridge") {
        return;
    }
    let br = name("bnt");
    let host_if = name("bve");
    let _g = LinkGuard(vec![host_if.clone(), br.clone()]);
    let s = subnet24();
    let v6 = format!("fd{:02x}:{:x}", rand16() & 0xff, rand16());
    let cfg = BridgeConfig {
        name: br.clone(),
        mtu: 1500,
        addresses: vec![net(&format!("{s}.1/24")), net(&format!("{v6}::1/64"))],
    };
    ensure_bridge(&cfg).unwrap();
    let ns = NsGuard::new("ve");
    let mut ep = endpoint("eth0", &format!("{s}.2/24"), Some(&format!("{s}.1")));
    ep.addresses.push(net(&format!("{v6}::2/64")));
    ep.gateways.push(format!("{v6}::1").parse().unwrap());
    add_veth(&ns.0, &br, &host_if, &ep).unwrap();

    let inside = in_ns(ns.path(), &["ip", "addr", "show", "dev", "eth0"]);
    assert!(
        inside.contains(&format!("{s}.2/24")) && inside.contains("mtu 1400"),
        "{inside}"
    );
    assert!(inside.contains("link/ether 02:42:"), "{inside}");
    let routes = in_ns(ns.path(), &["ip", "route"]);
    assert!(
        routes.contains(&format!("default via {s}.1 dev eth0")),
        "{routes}"
    );
    let routes6 = in_ns(ns.path(), &["ip", "-6", "route"]);
    assert!(
        routes6.contains(&format!("default via {v6}::1 dev eth0")),
        "{routes6}"
    );
    let port = sh("ip", &["-d", "link", "show", "dev", &host_if]);
    assert!(
        port.contains(&format!("master {br}")) && port.contains("hairpin on"),
        "{port}"
    );

    let target = serve(format!("{s}.1:0").parse().unwrap());
    assert!(
        reach_from(&ns.0, target),
        "container cannot reach its gateway {target}"
    );
    let target6 = serve(format!("[{v6}::1]:0").parse().unwrap());
    assert!(
        reach_from(&ns.0, target6),
        "container cannot reach its v6 gateway {target6}"
    );

    // A second interface fails cleanly on a name clash and leaves no host veth behind.
    let clash = name("bve");
    assert!(add_veth(
        &ns.0,
        &br,
        &clash,
        &endpoint("eth0", &format!("{s}.3/24"), None)
    )
    .is_err());
    assert!(!link_exists(&clash).unwrap());

    remove_interface(&ns.0, "eth0").unwrap();
    assert!(
        !link_exists(&host_if).unwrap(),
        "deleting the peer deletes the host end"
    );
    remove_interface(&ns.0, "eth0").unwrap();
}

#[test]
fn macvlan_between_two_netns() {
    if !root("macvlan_between_two_netns") {
        return;
    }
    let parent = name("bdu");
    let _g = LinkGuard(vec![parent.clone()]);
    // No dummy module on every kernel: a veth pair with both ends up has carrier too.
    let other = format!("{parent}p");
    sh(
        "ip",
        &[
            "link", "add", &parent, "type", "veth", "peer", "name", &other,
        ],
    );
    sh("ip", &["link", "set", &parent, "up"]);
    sh("ip", &["link", "set", &other, "up"]);
    let s = subnet24();
    let a = NsGuard::new("ma");
    let b = NsGuard::new("mb");
    add_macvlan(&a.0, &parent, &endpoint("eth0", &format!("{s}.2/24"), None)).unwrap();
    add_macvlan(&b.0, &parent, &endpoint("eth0", &format!("{s}.3/24"), None)).unwrap();
    let listener =
        a.0.run(|| {
            let l = TcpListener::bind(format!("{s}.2:0")).unwrap();
            let addr = l.local_addr().unwrap();
            std::thread::spawn(move || {
                for mut c in l.incoming().flatten() {
                    let _ = c.write_all(b"x");
                }
            });
            addr
        })
        .unwrap();
    assert!(reach_from(&b.0, listener), "macvlan peers cannot talk");
    remove_interface(&a.0, "eth0").unwrap();
}

#[test]
fn create_veth_remove_cost() {
    if !root("create_veth_remove_cost") {
        return;
    }
    let br = name("bnt");
    let _g = LinkGuard(vec![br.clone()]);
    let s = subnet24();
    let cfg = BridgeConfig {
        name: br.clone(),
        mtu: 1500,
        addresses: vec![net(&format!("{s}.1/24"))],
    };
    ensure_bridge(&cfg).unwrap();
    let used = HashSet::new();
    let rounds = 100;
    let (mut t_ns, mut t_veth, mut t_rmif, mut t_rmns) = (
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
    );
    for i in 0..rounds {
        let host_if = format!("{br}v{i}");
        let _hg = LinkGuard(vec![host_if.clone()]);
        let path = pin_dir().join(format!("{br}-{i}"));
        let t = Instant::now();
        let ns = NetNs::create(&path).unwrap();
        t_ns += t.elapsed();
        let ip = next_free(
            &net(&format!("{s}.0/24")),
            None,
            format!("{s}.1").parse().unwrap(),
            &used,
        )
        .unwrap();
        let ep = endpoint("eth0", &format!("{ip}/24"), Some(&format!("{s}.1")));
        let t = Instant::now();
        let r = add_veth(&ns, &br, &host_if, &ep);
        t_veth += t.elapsed();
        // Odd rounds leave the interface to die with the namespace.
        let t = Instant::now();
        let removed = if i % 2 == 0 {
            remove_interface(&ns, "eth0")
        } else {
            Ok(())
        };
        t_rmif += t.elapsed();
        drop(ns);
        let t = Instant::now();
        let gone = remove_netns(&path);
        t_rmns += t.elapsed();
        r.unwrap();
        removed.unwrap();
        gone.unwrap();
    }
    println!(
        "per round (mean of {rounds}): NetNs::create {:?}, add_veth {:?}, remove_interface {:?} (mean of {}), remove_netns {:?}",
        t_ns / rounds,
        t_veth / rounds,
        t_rmif / (rounds / 2),
        rounds / 2,
        t_rmns / rounds
    );
    // Namespaces die asynchronously; wait for their host veths so the bridge can go cleanly.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !links_with_prefix(&format!("{br}v")).unwrap().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(links_with_prefix(&format!("{br}v")).unwrap().is_empty());
}
