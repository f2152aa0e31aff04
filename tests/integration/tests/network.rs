//! `berth` networking end to end (issue 6), as root on the real kernel: user and default
//! bridge networks, name resolution, the gateway and masquerade to an "external host" (a
//! network namespace behind a veth pair), published TCP/UDP ports (loopback, host address,
//! from outside, hairpin), isolation and `--internal`, macvlan, connect/disconnect, the DNS
//! files and `--network host|none|container:`, `--sysctl`, teardown (also after `kill -9` of
//! `berth run`), bad input, and concurrent IPAM.
//!
//! Every test has its own data and run roots, its own default bridge (`BERTH_BRIDGE=bt<hex>`,
//! `BERTH_BRIDGE_SUBNET=10.A.B.0/24`), random subnets for its user networks and random ports,
//! so tests can run in parallel processes. Everything is removed on drop, even on failure,
//! with a safety net (links, nft rules) behind the engine's own cleanup.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_integration_tests::net::{
    self, addrs_in, host_primary_addr, http_get, in_netns, link_exists, links_with_master,
    nft_lines_with, udp_ask, External, NetNs, Segment, Subnet, TcpServer, UdpServer,
};
use berth_integration_tests::{bin_dir, have, is_root, need_root, skip};
use serde_json::Value;

/// A private berth (its own data and run roots and default bridge) with a busybox image `bb`.
struct Berth {
    dir: tempfile::TempDir,
    /// The default bridge's link name (`BERTH_BRIDGE`).
    bridge: String,
    /// The default bridge's subnet (`BERTH_BRIDGE_SUBNET`).
    subnet: Subnet,
    /// Ids of the user networks this test created (for the safety net).
    networks: std::cell::RefCell<Vec<String>>,
    /// Container ids seen (for the safety net).
    containers: std::cell::RefCell<BTreeSet<String>>,
}

impl Berth {
    fn new() -> Berth {
        let dir = tempfile::Builder::new()
            .prefix("bn")
            .tempdir_in("/tmp")
            .unwrap();
        let b = Berth {
            dir,
            bridge: format!("bt{}", net::rand_hex(4)),
            subnet: Subnet::random(),
            networks: Default::default(),
            containers: Default::default(),
        };
        let rootfs = b.dir.path().join("rootfs");
        busybox_rootfs(&rootfs);
        let tar = b.dir.path().join("bb.tar");
        let out = Command::new("tar")
            .args([
                "-C",
                rootfs.to_str().unwrap(),
                "-cf",
                tar.to_str().unwrap(),
                ".",
            ])
            .output()
            .unwrap();
        assert!(out.status.success());
        b.ok(&["import", tar.to_str().unwrap(), "bb:latest"]);
        b
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn runroot(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin_dir().join("berth"));
        cmd.arg("--root")
            .arg(self.data())
            .arg("--runroot")
            .arg(self.runroot())
            .args(args)
            .env("BERTH_BRIDGE", &self.bridge)
            .env("BERTH_BRIDGE_SUBNET", self.subnet.cidr())
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = self.command(args).output().unwrap();
        // Remember container ids printed by run/create (for the safety net).
        if matches!(args.first(), Some(&"run") | Some(&"create")) {
            let text = String::from_utf8_lossy(&out.stdout);
            let id = text.trim();
            if id.len() == 64 && id.bytes().all(|c| c.is_ascii_hexdigit()) {
                self.containers.borrow_mut().insert(id.to_owned());
            }
        }
        out
    }

    /// Run, assert success, return stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "berth {args:?}: {}", describe(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `run -d --name NAME EXTRA... bb CMD...`; the container id.
    fn run_d(&self, name: &str, extra: &[&str], cmd: &[&str]) -> String {
        let mut args = vec!["run", "-d", "--name", name];
        args.extend_from_slice(extra);
        args.push("bb");
        args.extend_from_slice(cmd);
        let id = self.ok(&args).trim().to_owned();
        assert_eq!(id.len(), 64, "run printed {id:?}");
        id
    }

    /// A container serving `http://<it>:80/` with body `<name>\n` (busybox httpd).
    fn web(&self, name: &str, extra: &[&str]) -> String {
        let script = format!(
            "mkdir -p /www && echo {name} > /www/index.html && exec httpd -f -p 80 -h /www"
        );
        self.run_d(name, extra, &["sh", "-c", &script])
    }

    /// A container that just sleeps.
    fn sleeper(&self, name: &str, extra: &[&str]) -> String {
        self.run_d(name, extra, &["sleep", "1000"])
    }

    /// `exec NAME CMD...`.
    fn exec(&self, name: &str, cmd: &[&str]) -> Output {
        let mut args = vec!["exec", name];
        args.extend_from_slice(cmd);
        self.run(&args)
    }

    /// `exec NAME CMD...`, asserting success; stdout.
    fn exec_ok(&self, name: &str, cmd: &[&str]) -> String {
        let out = self.exec(name, cmd);
        assert!(
            out.status.success(),
            "exec {name} {cmd:?}: {}",
            describe(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Retry `exec NAME CMD...` until it succeeds or 10 s pass; the last output.
    fn exec_until_ok(&self, name: &str, cmd: &[&str]) -> Output {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = self.exec(name, cmd);
            if out.status.success() || Instant::now() > deadline {
                return out;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Assert that `exec NAME CMD...` succeeds (within 10 s); its stdout.
    fn reaches(&self, name: &str, cmd: &[&str]) -> String {
        let out = self.exec_until_ok(name, cmd);
        assert!(
            out.status.success(),
            "{name}: {cmd:?} should succeed: {}",
            describe(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Assert that `exec NAME CMD...` fails (the command itself is expected to bound its own
    /// time, e.g. `ping -c1 -W2`).
    fn cannot(&self, name: &str, cmd: &[&str]) {
        let out = self.exec(name, cmd);
        assert!(
            !out.status.success(),
            "{name}: {cmd:?} should fail: {}",
            describe(&out)
        );
    }

    /// `inspect NAME` parsed: the first element.
    fn inspect(&self, name: &str) -> Value {
        let v: Value = serde_json::from_str(&self.ok(&["inspect", name])).unwrap();
        v[0].clone()
    }

    /// `network inspect NAME` parsed: the first element.
    fn net_inspect(&self, name: &str) -> Value {
        let v: Value = serde_json::from_str(&self.ok(&["network", "inspect", name])).unwrap();
        v[0].clone()
    }

    /// `network create ARGS... NAME`, asserting a 64-hex id is printed; the id.
    fn net_create(&self, args: &[&str], name: &str) -> String {
        let mut all = vec!["network", "create"];
        all.extend_from_slice(args);
        all.push(name);
        let id = self.ok(&all).trim().to_owned();
        assert!(
            id.len() == 64 && id.bytes().all(|c| c.is_ascii_hexdigit()),
            "network create printed {id:?}"
        );
        self.networks.borrow_mut().push(id.clone());
        id
    }

    /// A user bridge network on a fresh random subnet; (id, subnet).
    fn bridge_net(&self, name: &str, extra: &[&str]) -> (String, Subnet) {
        let s = Subnet::random();
        let cidr = s.cidr();
        let mut args = vec!["--subnet", cidr.as_str()];
        args.extend_from_slice(extra);
        (self.net_create(&args, name), s)
    }

    /// The container's address on `network`.
    fn ip_on(&self, name: &str, network: &str) -> String {
        let v = self.inspect(name);
        let ip = v["NetworkSettings"]["Networks"][network]["IPAddress"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} has no address on {network}: {v:#}"))
            .to_owned();
        assert!(!ip.is_empty(), "{name}: empty address on {network}");
        ip
    }

    /// The container's init pid (for joining its network namespace).
    fn pid(&self, name: &str) -> i64 {
        let v = self.inspect(name);
        let pid = v["State"]["Pid"]
            .as_i64()
            .unwrap_or_else(|| panic!("{name}: no State.Pid: {v:#}"));
        assert!(pid > 0, "{name} has no pid");
        pid
    }

    /// All container ids, also recorded for the safety net.
    fn ids(&self) -> Vec<String> {
        let out = self.run(&["ps", "-aq", "--no-trunc"]);
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        self.containers.borrow_mut().extend(ids.iter().cloned());
        ids
    }

    /// Names in `network ls` (sorted): the NAME column of the table.
    fn net_names(&self) -> Vec<String> {
        let out = self.run(&["network", "ls"]);
        let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().nth(1))
            .map(str::to_owned)
            .collect();
        names.sort();
        names
    }

    /// What a failed command must not change: containers, networks, and (host wide, but
    /// filtered to this test) links with an address in `subnets`, links on this test's
    /// bridges, nft lines mentioning `needles`.
    fn snapshot(&self, subnets: &[Subnet], needles: &[String]) -> Snapshot {
        let mut bridges = vec![self.bridge.clone()];
        bridges.extend(self.networks.borrow().iter().map(|id| bridge_of(id)));
        Snapshot {
            containers: self.ids(),
            networks: self.net_names(),
            addrs: subnets.iter().flat_map(addrs_in).collect(),
            ports: bridges.iter().flat_map(|b| links_with_master(b)).collect(),
            nft: needles.iter().flat_map(|n| nft_lines_with(n)).collect(),
        }
    }
}

#[derive(Debug, PartialEq)]
struct Snapshot {
    containers: Vec<String>,
    networks: Vec<String>,
    addrs: Vec<String>,
    ports: Vec<String>,
    nft: Vec<String>,
}

/// The Linux bridge of a user network: `br-<first 12 hex of its id>`.
fn bridge_of(id: &str) -> String {
    format!("br-{}", &id[..12])
}

impl Drop for Berth {
    fn drop(&mut self) {
        // The engine's own cleanup first.
        for id in self.ids() {
            let _ = self.run(&["rm", "-f", "-v", &id]);
        }
        let listed = self.run(&["network", "ls", "-q"]);
        let mut nets: Vec<String> = self.networks.borrow().clone();
        for id in String::from_utf8_lossy(&listed.stdout).lines() {
            if !nets
                .iter()
                .any(|n| n.starts_with(id) || id.starts_with(n.as_str()))
            {
                nets.push(id.to_owned());
            }
        }
        for n in self.networks.borrow().iter() {
            let _ = self.run(&["network", "rm", n]);
        }
        // Safety net: rules tagged with our containers and bridges, links on our bridges,
        // the bridges themselves.
        for id in self.containers.borrow().iter() {
            net::nft_delete_rules_with(&format!("berth-ctr:{id}"));
        }
        let mut bridges = vec![self.bridge.clone()];
        bridges.extend(
            nets.iter()
                .filter(|n| n.len() >= 12 && n.bytes().all(|c| c.is_ascii_hexdigit()))
                .map(|n| bridge_of(n)),
        );
        for br in &bridges {
            for port in links_with_master(br) {
                net::del_link(&port);
            }
            net::nft_delete_rules_with(&format!("berth-net:{br}"));
            net::del_link(br);
        }
        // Unmount anything still mounted under the roots before the tempdir goes.
        let root = self.dir.path().to_string_lossy().into_owned();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|p| p.starts_with(&root))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for point in points {
            let _ = Command::new("umount").args(["-l", point]).status();
        }
    }
}

fn describe(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The busybox applets the tests use (busybox 1.35 as in Debian's busybox-static: its `nc`
/// has no `-u`, so UDP servers are sockets the test opens inside the container's namespace;
/// its `wget -T` crashes, so `timeout` bounds it).
const APPLETS: &[&str] = &[
    "sh",
    "ls",
    "cat",
    "echo",
    "sleep",
    "ps",
    "id",
    "head",
    "mkdir",
    "env",
    "true",
    "false",
    "kill",
    "hostname",
    "ip",
    "ping",
    "wget",
    "timeout",
    "httpd",
    "nc",
    "nslookup",
    "grep",
    "sysctl",
    "tr",
    "sed",
    "test",
    "ifconfig",
    "route",
    "wc",
    "domainname",
    "dnsdomainname",
];

/// A busybox root filesystem with users, groups and an empty /www.
fn busybox_rootfs(root: &Path) {
    let bin = root.join("bin");
    for d in ["bin", "etc", "tmp", "www"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
    for tool in APPLETS {
        std::os::unix::fs::symlink("busybox", bin.join(tool)).unwrap();
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
}

fn skip_reason() -> Option<String> {
    if !is_root() {
        return Some("needs root (real namespaces, links and nftables)".into());
    }
    if !Path::new("/bin/busybox").exists() {
        return Some("needs /bin/busybox (busybox-static)".into());
    }
    for tool in ["tar", "ip", "nft"] {
        if !have(tool) {
            return Some(format!("needs {tool}"));
        }
    }
    None
}

/// Skip unless root with the tools.
macro_rules! check {
    () => {{
        need_root!();
        if let Some(reason) = skip_reason() {
            skip!("{reason}");
        }
    }};
}

/// `check!()` and a fresh [`Berth`]. (Tests with fixtures that must outlive the engine's
/// containers, so that the containers go first on drop, make those after `check!()` and
/// before `Berth::new()`.)
macro_rules! setup {
    () => {{
        check!();
        Berth::new()
    }};
}

/// `ping -c1 -W2 TARGET` inside a container.
fn ping(target: &str) -> Vec<&str> {
    vec!["ping", "-c1", "-W2", target]
}

/// `timeout 3 wget -qO- http://TARGET/` inside a container (busybox 1.35's `wget -T`
/// crashes with SIGSEGV, so the time limit is busybox's `timeout`).
fn wget(target: &str) -> Vec<String> {
    vec![
        "timeout".into(),
        "3".into(),
        "wget".into(),
        "-qO-".into(),
        format!("http://{target}/"),
    ]
}

/// The string field `key` of `v`, panicking with the JSON when it is missing or empty.
fn text(v: &Value, key: &str) -> String {
    match v[key].as_str() {
        Some(s) if !s.is_empty() => s.to_owned(),
        _ => panic!("no {key} in {v:#}"),
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Assert a failed command: `code`, one non-empty line on stderr.
fn assert_one_line_error(out: &Output, code: i32, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{what}: {}", describe(out));
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "{what}: want one line on stderr: {stderr}"
    );
}

// ---------------------------------------------------------------------------------------

/// Network objects: create (with subnet, gateway, ip-range, internal, ipv6), ls (the
/// predefined bridge/host/none too), inspect, the `br-<id>` link with the gateway address,
/// rm, prune.
#[test]
fn network_create_ls_inspect_rm_and_prune() {
    let b = setup!();
    let s = Subnet::random();
    let (cidr, gw, range) = (s.cidr(), s.ip(254), format!("{}128/25", s.prefix()));
    let id = b.net_create(
        &["--subnet", &cidr, "--gateway", &gw, "--ip-range", &range],
        "n1",
    );
    let names = b.net_names();
    for want in ["bridge", "host", "none", "n1"] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    let ls = b.ok(&["network", "ls"]);
    let header = ls.lines().next().unwrap_or("");
    for col in ["NETWORK ID", "NAME", "DRIVER", "SCOPE"] {
        assert!(header.contains(col), "header {header:?}");
    }
    let row = ls
        .lines()
        .find(|l| l.contains(" n1 "))
        .unwrap_or_else(|| panic!("{ls}"));
    assert!(
        row.starts_with(&id[..12]) && row.contains("bridge") && row.contains("local"),
        "{row}"
    );
    assert!(b
        .ok(&["network", "ls", "-q"])
        .lines()
        .any(|l| id.starts_with(l.trim())));

    let v = b.net_inspect("n1");
    assert_eq!(v["Name"], "n1");
    assert_eq!(v["Driver"], "bridge");
    assert_eq!(v["Internal"], false);
    assert_eq!(v["IPAM"]["Config"][0]["Subnet"], cidr.as_str(), "{v:#}");
    assert_eq!(v["IPAM"]["Config"][0]["Gateway"], gw.as_str(), "{v:#}");
    assert_eq!(v["IPAM"]["Config"][0]["IPRange"], range.as_str(), "{v:#}");
    let br = bridge_of(&id);
    assert!(link_exists(&br), "no link {br}");
    let addr = net::ip(&["-o", "-4", "addr", "show", "dev", &br]);
    assert!(addr.contains(&format!("{gw}/24")), "{br}: {addr}");

    // Addresses come from the --ip-range.
    b.sleeper("r1", &["--network", "n1"]);
    let ip = b.ip_on("r1", "n1");
    let last: u8 = ip.rsplit('.').next().unwrap().parse().unwrap();
    assert!(s.contains(&ip) && last >= 128 && ip != gw, "{ip}");
    let v = b.net_inspect("n1");
    let ctrs = v["Containers"].as_object().expect("Containers");
    assert_eq!(ctrs.len(), 1, "{v:#}");
    let (_, c) = ctrs.iter().next().unwrap();
    assert_eq!(c["Name"], "r1");
    assert_eq!(c["IPv4Address"], format!("{ip}/24").as_str());

    // Internal and IPv6 networks say so.
    let s2 = Subnet::random();
    let v6_prefix = format!("fd{}:{}::", net::rand_hex(2), net::rand_hex(4));
    let v6 = format!("{v6_prefix}/64");
    b.net_create(&["--internal", "--subnet", &s2.cidr()], "n2");
    assert_eq!(b.net_inspect("n2")["Internal"], true);
    let s3 = Subnet::random();
    b.net_create(&["--ipv6", "--subnet", &s3.cidr(), "--subnet", &v6], "n3");
    let v = b.net_inspect("n3");
    assert_eq!(v["EnableIPv6"], true, "{v:#}");
    let subnets: Vec<&str> = v["IPAM"]["Config"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["Subnet"].as_str())
        .collect();
    assert!(
        subnets.contains(&v6.as_str()) && subnets.contains(&s3.cidr().as_str()),
        "{v:#}"
    );
    // --ip6 on it: the container has that address (and an IPv4 one).
    let want6 = format!("{v6_prefix}10");
    b.sleeper("r6", &["--network", "n3", "--ip6", &want6]);
    let n3 = b.inspect("r6")["NetworkSettings"]["Networks"]["n3"].clone();
    assert_eq!(n3["GlobalIPv6Address"], want6.as_str(), "{n3:#}");
    assert!(s3.contains(&text(&n3, "IPAddress")), "{n3:#}");
    let inside = b.exec_ok("r6", &["ip", "-o", "-6", "addr", "show", "dev", "eth0"]);
    assert!(inside.contains(&format!(" {want6}/64")), "{inside}");
    b.ok(&["rm", "-f", "r6"]);

    // rm refuses a network in use, then removes it with its bridge.
    let out = b.run(&["network", "rm", "n1"]);
    assert_one_line_error(&out, 1, "rm of a network in use");
    b.ok(&["rm", "-f", "r1"]);
    b.ok(&["network", "rm", "n1"]);
    assert!(!b.net_names().contains(&"n1".to_owned()));
    assert!(!link_exists(&br), "{br} left after network rm");
    assert!(addrs_in(&s).is_empty(), "{:?}", addrs_in(&s));
    // The predefined networks cannot be removed.
    let out = b.run(&["network", "rm", "bridge"]);
    assert_one_line_error(&out, 1, "rm bridge");
    // prune removes the unused user networks, not the predefined ones.
    b.ok(&["network", "prune", "-f"]);
    let names = b.net_names();
    assert_eq!(names, vec!["bridge", "host", "none"], "after prune");
}

/// Item 1 of the plan: Containers on one user network reach each other by address, by name and by
/// `--network-alias`; on the default bridge they reach each other by address only.
#[test]
fn containers_on_a_user_network_reach_each_other_by_ip_name_and_alias() {
    let b = setup!();
    b.bridge_net("app", &[]);
    b.sleeper("ca", &["--network", "app"]);
    b.web("cb", &["--network", "app", "--network-alias", "web"]);
    let ip_b = b.ip_on("cb", "app");
    // The MAC address in inspect is eth0's.
    let mac = text(
        &b.inspect("cb")["NetworkSettings"]["Networks"]["app"],
        "MacAddress",
    );
    let link = b.exec_ok("cb", &["ip", "-o", "link", "show", "eth0"]);
    assert!(link.contains(&mac.to_lowercase()), "{mac} vs {link}");
    assert_ne!(ip_b, b.ip_on("ca", "app"));
    b.reaches("ca", &ping(&ip_b));
    b.reaches("ca", &ping("cb"));
    b.reaches("ca", &ping("web"));
    for target in [ip_b.as_str(), "cb", "web"] {
        assert_eq!(
            b.reaches("ca", &strs(&wget(target))),
            "cb\n",
            "via {target}"
        );
    }
    assert_eq!(
        b.inspect("cb")["NetworkSettings"]["Networks"]["app"]["Aliases"]
            .as_array()
            .map(|a| a.iter().any(|x| x == "web")),
        Some(true),
        "{:#}",
        b.inspect("cb")["NetworkSettings"]
    );

    // Default bridge: by address yes, by name no.
    b.sleeper("cc", &[]);
    b.web("cd", &[]);
    let ip_d = text(&b.inspect("cd")["NetworkSettings"], "IPAddress");
    assert!(
        b.subnet.contains(&ip_d),
        "{ip_d} not in {}",
        b.subnet.cidr()
    );
    assert_eq!(b.ip_on("cd", "bridge"), ip_d);
    b.reaches("cc", &ping(&ip_d));
    assert_eq!(b.reaches("cc", &strs(&wget(&ip_d))), "cd\n");
    b.cannot("cc", &ping("cd"));
}

/// Item 2 of the plan: A container reaches its gateway (the host's bridge address) and, masqueraded behind the
/// host's address, an external host.
#[test]
fn containers_reach_the_gateway_and_the_outside_masqueraded() {
    check!();
    let ext = External::new();
    let server = TcpServer::start_in(&ext.ns.path(), "0.0.0.0:80", "outside\n");
    let b = Berth::new();
    b.sleeper("cc", &[]);
    let nets = b.inspect("cc")["NetworkSettings"]["Networks"]["bridge"].clone();
    let gw = text(&nets, "Gateway");
    assert!(b.subnet.contains(&gw), "gateway {gw}");
    assert_eq!(nets["IPPrefixLen"], 24);
    let on_bridge = net::ip(&["-o", "-4", "addr", "show", "dev", &b.bridge]);
    assert!(
        on_bridge.contains(&format!(" {gw}/24")),
        "{}: {on_bridge}",
        b.bridge
    );
    b.reaches("cc", &ping(&gw));
    let route = b.exec_ok("cc", &["ip", "route"]);
    assert!(route.contains(&format!("default via {gw}")), "{route}");

    b.reaches("cc", &ping(&ext.ns_ip));
    assert_eq!(b.reaches("cc", &strs(&wget(&ext.ns_ip))), "outside\n");
    let peers = server.peers();
    assert!(!peers.is_empty());
    let ctr_ip = b.ip_on("cc", "bridge");
    for p in peers {
        assert_eq!(
            p.ip().to_string(),
            ext.host_ip,
            "the external host saw {p}, not the host's address (container {ctr_ip})"
        );
    }
}

/// Item 3 of the plan: Published ports: TCP and UDP from the host's loopback, the host's address and from an
/// external host through the host's address on that link; `-p 80` takes an ephemeral port
/// that `port` and `inspect` show; `-P` publishes the image's EXPOSEd ports.
#[test]
fn published_tcp_and_udp_ports_are_reachable() {
    check!();
    let ext = External::new();
    let b = Berth::new();
    let (tcp, udp) = (net::free_port(), net::free_port());
    let t = format!("{tcp}:80");
    let u = format!("{udp}:5353/udp");
    b.web("pub", &["-p", &t, "-p", &u]);
    let ns = PathBuf::from(format!("/proc/{}/ns/net", b.pid("pub")));
    let _udp_server = UdpServer::start_in(&ns, "0.0.0.0:5353", "ctr");

    let mut targets = vec!["127.0.0.1".to_owned()];
    targets.extend(host_primary_addr());
    for host in &targets {
        assert_eq!(
            http_get(&format!("{host}:{tcp}"), 10.0).as_deref(),
            Some("pub\n"),
            "tcp via {host}:{tcp}"
        );
        assert_eq!(
            udp_ask(&format!("{host}:{udp}"), "x", 10.0).as_deref(),
            Some("ctr:x"),
            "udp via {host}:{udp}"
        );
    }
    let (to_tcp, to_udp) = (
        format!("{}:{tcp}", ext.host_ip),
        format!("{}:{udp}", ext.host_ip),
    );
    let (got_tcp, got_udp) = in_netns(&ext.ns.path(), || {
        (http_get(&to_tcp, 10.0), udp_ask(&to_udp, "y", 10.0))
    });
    assert_eq!(
        got_tcp.as_deref(),
        Some("pub\n"),
        "tcp from outside to {to_tcp}"
    );
    assert_eq!(
        got_udp.as_deref(),
        Some("ctr:y"),
        "udp from outside to {to_udp}"
    );

    let port = b.ok(&["port", "pub"]);
    assert!(
        port.lines()
            .any(|l| l == format!("80/tcp -> 0.0.0.0:{tcp}")),
        "{port}"
    );
    assert!(
        port.lines()
            .any(|l| l == format!("5353/udp -> 0.0.0.0:{udp}")),
        "{port}"
    );
    let ports = b.inspect("pub")["NetworkSettings"]["Ports"].clone();
    assert_eq!(ports["80/tcp"][0]["HostIp"], "0.0.0.0", "{ports:#}");
    assert_eq!(
        ports["80/tcp"][0]["HostPort"],
        tcp.to_string().as_str(),
        "{ports:#}"
    );
    assert_eq!(
        ports["5353/udp"][0]["HostPort"],
        udp.to_string().as_str(),
        "{ports:#}"
    );

    // -p 80: an ephemeral host port.
    b.web("eph", &["-p", "80"]);
    let port = b.ok(&["port", "eph"]);
    let line = port
        .lines()
        .find(|l| l.starts_with("80/tcp -> 0.0.0.0:"))
        .unwrap_or_else(|| panic!("{port}"));
    let host_port: u16 = line.rsplit(':').next().unwrap().parse().unwrap();
    assert!(host_port > 0);
    let ports = b.inspect("eph")["NetworkSettings"]["Ports"].clone();
    assert_eq!(
        ports["80/tcp"][0]["HostPort"],
        host_port.to_string().as_str()
    );
    assert_eq!(
        http_get(&format!("127.0.0.1:{host_port}"), 10.0).as_deref(),
        Some("eph\n")
    );

    // -P: the exposed ports (here `--expose`; the image's EXPOSE is the same list) to
    // ephemeral host ports.
    b.ok(&[
        "run",
        "-d",
        "--name",
        "all",
        "--expose",
        "80",
        "-P",
        "bb",
        "sh",
        "-c",
        "mkdir -p /www && echo all > /www/index.html && exec httpd -f -p 80 -h /www",
    ]);
    let port = b.ok(&["port", "all"]);
    let line = port
        .lines()
        .find(|l| l.starts_with("80/tcp -> 0.0.0.0:"))
        .unwrap_or_else(|| panic!("-P: {port}"));
    let host_port: u16 = line.rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(
        http_get(&format!("127.0.0.1:{host_port}"), 10.0).as_deref(),
        Some("all\n")
    );
}

/// Item 4 of the plan: Hairpin: a container reaches its own published port, and a neighbour's, through the
/// host's address.
#[test]
fn a_container_reaches_its_own_published_port_through_the_host() {
    let b = setup!();
    let Some(host) = host_primary_addr() else {
        skip!("the host has no non-loopback IPv4 address");
    };
    let port = net::free_port();
    b.web("hp", &["-p", &format!("{port}:80")]);
    let target = format!("{host}:{port}");
    assert_eq!(b.reaches("hp", &strs(&wget(&target))), "hp\n");
    b.sleeper("nb", &[]);
    assert_eq!(b.reaches("nb", &strs(&wget(&target))), "hp\n");
    // The same on a user network.
    b.bridge_net("u", &[]);
    let port2 = net::free_port();
    b.web("hu", &["--network", "u", "-p", &format!("{port2}:80")]);
    assert_eq!(
        b.reaches("hu", &strs(&wget(&format!("{host}:{port2}")))),
        "hu\n"
    );
}

/// Item 5 of the plan: Isolation: two user networks cannot reach each other; an `--internal` network has no
/// default route and cannot reach outside, but its members reach each other.
#[test]
fn networks_are_isolated_and_internal_networks_stay_inside() {
    check!();
    let ext = External::new();
    let b = Berth::new();
    b.bridge_net("n1", &[]);
    b.bridge_net("n2", &[]);
    b.web("c1", &["--network", "n1"]);
    b.web("c2", &["--network", "n2"]);
    let (ip1, ip2) = (b.ip_on("c1", "n1"), b.ip_on("c2", "n2"));
    let gw1 = text(
        &b.inspect("c1")["NetworkSettings"]["Networks"]["n1"],
        "Gateway",
    );
    // Networking works at all (so the failures below are isolation).
    b.reaches("c1", &ping(&gw1));
    b.reaches("c1", &ping(&ext.ns_ip));
    b.cannot("c1", &ping(&ip2));
    b.cannot("c2", &ping(&ip1));
    b.cannot("c1", &strs(&wget(&ip2)));
    b.cannot("c1", &ping("c2"));

    b.bridge_net("in", &["--internal"]);
    assert_eq!(b.net_inspect("in")["Internal"], true);
    b.sleeper("i1", &["--network", "in"]);
    b.web("i2", &["--network", "in"]);
    let route = b.exec_ok("i1", &["ip", "route"]);
    assert!(
        !route.lines().any(|l| l.starts_with("default")),
        "internal network has a default route: {route}"
    );
    b.cannot("i1", &ping(&ext.ns_ip));
    b.cannot("i1", &ping(&ip1));
    let ip_i2 = b.ip_on("i2", "in");
    b.reaches("i1", &ping(&ip_i2));
    assert_eq!(b.reaches("i1", &strs(&wget("i2"))), "i2\n");
}

/// Item 6 of the plan: macvlan: a container on a macvlan network whose parent is the host end of a veth pair
/// is reachable from the namespace at the other end, and reaches it.
#[test]
fn macvlan_containers_are_reachable_on_the_parent_segment() {
    check!();
    let seg = Segment::new(200);
    let b = Berth::new();
    let (s, peer, peer_ip) = (seg.subnet, &seg.ns, seg.peer_ip.clone());
    let opt = format!("parent={}", seg.parent);
    b.net_create(&["-d", "macvlan", "-o", &opt, "--subnet", &s.cidr()], "mv");
    let v = b.net_inspect("mv");
    assert_eq!(v["Driver"], "macvlan");
    assert_eq!(v["Options"]["parent"], seg.parent.as_str(), "{v:#}");
    let row = b.ok(&["network", "ls"]);
    assert!(
        row.lines()
            .any(|l| l.contains(" mv ") && l.contains("macvlan")),
        "{row}"
    );

    b.web("m1", &["--network", "mv"]);
    let ip = b.ip_on("m1", "mv");
    assert!(s.contains(&ip), "{ip}");
    let ok = net::wait_ok(10.0, || peer.exec(&["busybox", "ping", "-c1", "-W2", &ip]));
    assert!(
        ok.status.success(),
        "ping {ip} from the parent segment: {}",
        describe(&ok)
    );
    b.reaches("m1", &ping(&peer_ip));
    let body = in_netns(&peer.path(), || http_get(&format!("{ip}:80"), 10.0));
    assert_eq!(body.as_deref(), Some("m1\n"));
    b.ok(&["rm", "-f", "m1"]);
    b.ok(&["network", "rm", "mv"]);
    assert!(link_exists(&seg.parent), "network rm took the parent");
}

/// Item 7 of the plan: connect/disconnect on a running container: eth1 with an address on the second network
/// (given by `--ip`, alias by `--alias`), reaching a container there; after disconnect eth1
/// is gone and the address is free again.
#[test]
fn connect_and_disconnect_a_running_container() {
    let b = setup!();
    b.bridge_net("n1", &[]);
    let (_, s2) = b.bridge_net("n2", &[]);
    b.sleeper("c1", &["--network", "n1"]);
    b.web("c2", &["--network", "n2"]);
    let ip_c2 = b.ip_on("c2", "n2");
    b.cannot("c1", &ping(&ip_c2));

    let want = s2.ip(50);
    b.ok(&[
        "network", "connect", "--alias", "ali", "--ip", &want, "n2", "c1",
    ]);
    let eth1 = b.exec_ok("c1", &["ip", "-o", "-4", "addr", "show", "dev", "eth1"]);
    assert!(eth1.contains(&format!(" {want}/24")), "{eth1}");
    assert_eq!(b.ip_on("c1", "n2"), want);
    b.reaches("c1", &ping(&ip_c2));
    assert_eq!(b.reaches("c1", &strs(&wget("c2"))), "c2\n");
    b.reaches("c2", &ping("ali"));
    b.reaches("c2", &ping("c1"));
    let v = b.net_inspect("n2");
    assert!(
        v["Containers"]
            .as_object()
            .is_some_and(|m| m.values().any(|c| c["Name"] == "c1")),
        "{v:#}"
    );

    b.ok(&["network", "disconnect", "n2", "c1"]);
    assert!(
        !b.exec("c1", &["ip", "link", "show", "eth1"])
            .status
            .success(),
        "eth1 left"
    );
    let nets = b.inspect("c1")["NetworkSettings"]["Networks"].clone();
    assert!(
        nets.get("n2").is_none() && nets.get("n1").is_some(),
        "{nets:#}"
    );
    b.cannot("c1", &ping(&ip_c2));
    // The address is free: a new container can take it.
    b.sleeper("c3", &["--network", "n2", "--ip", &want]);
    assert_eq!(b.ip_on("c3", "n2"), want);
    // disconnect of a container not on the network fails; -f of a stopped one works.
    let out = b.run(&["network", "disconnect", "n2", "c1"]);
    assert_one_line_error(&out, 1, "disconnect twice");
    b.ok(&["stop", "c3"]);
    b.ok(&["network", "disconnect", "-f", "n2", "c3"]);
}

/// Item 8 of the plan: The DNS files (`--dns*`, `--add-host`, `--hostname`), `--network host`, `none` and
/// `container:OTHER`.
#[test]
fn dns_files_hostname_and_the_special_network_modes() {
    let b = setup!();
    b.sleeper(
        "d1",
        &[
            "--dns",
            "1.2.3.4",
            "--dns-search",
            "example.com",
            "--dns-option",
            "ndots:2",
            "--add-host",
            "foo:5.6.7.8",
            "--hostname",
            "h1",
        ],
    );
    let resolv = b.exec_ok("d1", &["cat", "/etc/resolv.conf"]);
    let lines: Vec<&str> = resolv
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(lines.contains(&"nameserver 1.2.3.4"), "{resolv}");
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("nameserver")).count(),
        1,
        "{resolv}"
    );
    assert!(lines.contains(&"search example.com"), "{resolv}");
    assert!(lines.contains(&"options ndots:2"), "{resolv}");
    let hosts = b.exec_ok("d1", &["cat", "/etc/hosts"]);
    let has = |ip: &str, name: &str| {
        hosts.lines().any(|l| {
            let mut f = l.split_whitespace();
            f.next() == Some(ip) && f.any(|n| n == name)
        })
    };
    assert!(has("5.6.7.8", "foo"), "{hosts}");
    assert!(has("127.0.0.1", "localhost"), "{hosts}");
    let ip = b.ip_on("d1", "bridge");
    assert!(has(&ip, "h1"), "own address {ip} -> h1 missing: {hosts}");
    assert_eq!(b.exec_ok("d1", &["hostname"]).trim(), "h1");
    assert_eq!(b.exec_ok("d1", &["cat", "/etc/hostname"]).trim(), "h1");
    b.reaches("d1", &["ping", "-c1", "-W2", "h1"]);

    // host: the host's interfaces and addresses.
    b.sleeper("hh", &["--network", "host"]);
    let inside = b.exec_ok("hh", &["ip", "-o", "-4", "addr"]);
    if let Some(addr) = host_primary_addr() {
        assert!(
            inside.contains(&format!(" {addr}/")),
            "host network lacks {addr}: {inside}"
        );
    }
    let host_links = net::links();
    let inside_links = b.exec_ok("hh", &["ip", "-o", "link"]);
    for l in ["lo", "eth0"].iter().filter(|l| host_links.contains(**l)) {
        assert!(
            inside_links.contains(&format!(": {l}:")) || inside_links.contains(&format!(": {l}@")),
            "{l}: {inside_links}"
        );
    }
    // none: loopback only (no eth*, no address but 127.0.0.1; kernels may add fallback
    // tunnel devices such as tunl0 to every namespace, so those are not counted).
    b.sleeper("nn", &["--network", "none"]);
    let links = b.exec_ok("nn", &["ip", "-o", "link"]);
    assert!(links.contains(": lo:"), "{links}");
    assert!(!links.contains(": eth"), "{links}");
    let addrs = b.exec_ok("nn", &["ip", "-o", "-4", "addr"]);
    let names: Vec<&str> = addrs
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(names, vec!["lo"], "{addrs}");
    assert!(
        b.exec("nn", &["ip", "route"]).stdout.is_empty(),
        "routes with --network none"
    );
    // container:OTHER shares OTHER's stack.
    b.sleeper("jj", &["--network", "container:d1"]);
    let addr_d1 = b.exec_ok("d1", &["ip", "-o", "-4", "addr"]);
    assert_eq!(b.exec_ok("jj", &["ip", "-o", "-4", "addr"]), addr_d1);
    assert!(addr_d1.contains(&format!(" {ip}/")), "{addr_d1}");
}

/// Item 9 of the plan: `--sysctl`: net.* and kernel.domainname apply inside only; vm.* is refused.
#[test]
fn sysctls_apply_inside_only_and_non_namespaced_ones_are_refused() {
    let b = setup!();
    let key = "/proc/sys/net/ipv4/conf/all/arp_ignore";
    let host_before = std::fs::read_to_string(key).unwrap();
    let want = if host_before.trim() == "1" { "2" } else { "1" };
    let shm = "/proc/sys/kernel/shm_rmid_forced";
    let shm_before = std::fs::read_to_string(shm).unwrap();
    let shm_want = if shm_before.trim() == "1" { "0" } else { "1" };
    b.sleeper(
        "ss",
        &[
            "--sysctl",
            &format!("net.ipv4.conf.all.arp_ignore={want}"),
            "--sysctl",
            "net.ipv4.ip_forward=1",
            "--sysctl",
            &format!("kernel.shm_rmid_forced={shm_want}"),
        ],
    );
    assert_eq!(b.exec_ok("ss", &["cat", key]).trim(), want);
    assert_eq!(
        b.exec_ok("ss", &["cat", "/proc/sys/net/ipv4/ip_forward"])
            .trim(),
        "1"
    );
    assert_eq!(b.exec_ok("ss", &["cat", shm]).trim(), shm_want);
    assert_eq!(std::fs::read_to_string(key).unwrap(), host_before);
    assert_eq!(std::fs::read_to_string(shm).unwrap(), shm_before);

    // kernel.domainname is namespaced (UTS), but docker's allowlist (IPC sysctls, net.*,
    // fs.mqueue.*) does not have it, and berth follows docker: either answer is accepted,
    // as long as it is applied inside only, or refused cleanly.
    let domain_before = std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap();
    let before = b.snapshot(&[], &[]);
    let out = b.run(&[
        "run",
        "-d",
        "--name",
        "dom",
        "--sysctl",
        "kernel.domainname=x",
        "bb",
        "sleep",
        "1000",
    ]);
    if out.status.success() {
        assert_eq!(
            b.exec_ok("dom", &["cat", "/proc/sys/kernel/domainname"])
                .trim(),
            "x"
        );
    } else {
        assert_one_line_error(&out, 125, "--sysctl kernel.domainname");
        assert_eq!(
            b.snapshot(&[], &[]),
            before,
            "a refused --sysctl created something"
        );
    }
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap(),
        domain_before
    );

    let before = b.snapshot(&[], &[]);
    let out = b.run(&[
        "run",
        "-d",
        "--name",
        "bad",
        "--sysctl",
        "vm.swappiness=1",
        "bb",
        "sleep",
        "1000",
    ]);
    assert_one_line_error(&out, 125, "--sysctl vm.swappiness");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("vm.swappiness"), "{err}");
    assert_eq!(
        b.snapshot(&[], &[]),
        before,
        "a refused --sysctl created something"
    );
}

/// Item 10 of the plan: Teardown: `rm -f` removes the host end of the veth, the container's nft rules and its
/// namespace mount, and frees its address; `kill -9` of `berth run` at any point is repaired
/// by the next command, after which nothing is left.
#[test]
fn teardown_leaves_nothing_even_after_kill_9_of_run() {
    let b = setup!();
    let (nid, s) = b.bridge_net("tn", &[]);
    let br = bridge_of(&nid);
    let port = net::free_port();
    let want = s.ip(77);
    let id = b.web(
        "ww",
        &[
            "--network",
            "tn",
            "--ip",
            &want,
            "-p",
            &format!("{port}:80"),
        ],
    );
    assert_eq!(b.ip_on("ww", "tn"), want);
    let ports = links_with_master(&br);
    assert_eq!(ports.len(), 1, "{br}: {ports:?}");
    let tag = format!("berth-ctr:{id}");
    assert!(
        !nft_lines_with(&tag).is_empty(),
        "no rule tagged {tag}:\n{}",
        net::nft_berth()
    );
    assert_eq!(
        http_get(&format!("127.0.0.1:{port}"), 10.0).as_deref(),
        Some("ww\n")
    );

    b.ok(&["rm", "-f", "ww"]);
    assert!(
        links_with_master(&br).is_empty(),
        "{:?}",
        links_with_master(&br)
    );
    assert!(!link_exists(&ports[0]), "{} left", ports[0]);
    assert!(
        nft_lines_with(&tag).is_empty(),
        "{:?}",
        nft_lines_with(&tag)
    );
    assert!(
        nft_lines_with(&format!("dport {port}")).is_empty(),
        "port {port} rules left"
    );
    let root = b.dir.path().to_string_lossy().into_owned();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let left: Vec<&str> = mounts.lines().filter(|l| l.contains(&root)).collect();
    assert!(left.is_empty(), "mounts left under {root}: {left:#?}");
    b.sleeper("again", &["--network", "tn", "--ip", &want]);
    b.ok(&["rm", "-f", "again"]);

    // kill -9 of `berth run -d -p` at several points.
    let mut ports_used = Vec::new();
    for (i, delay) in [0u64, 10, 30, 60, 100, 150, 200, 300].iter().enumerate() {
        let p = net::free_port();
        ports_used.push(p);
        let name = format!("crash{i}");
        let published = format!("{p}:80");
        let mut child = b
            .command(&[
                "run",
                "-d",
                "--name",
                &name,
                "--network",
                "tn",
                "-p",
                &published,
                "bb",
                "sleep",
                "1000",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(*delay));
        let _ = child.kill();
        let _ = child.wait();
    }
    b.ok(&["ps", "-a"]);
    let ids = b.ids();
    for id in &ids {
        let out = b.run(&["rm", "-f", id]);
        assert!(out.status.success(), "rm -f {id}: {}", describe(&out));
    }
    b.ok(&["system", "prune", "-f"]);
    assert!(b.ids().is_empty());
    assert!(
        links_with_master(&br).is_empty(),
        "{:?}",
        links_with_master(&br)
    );
    assert!(
        links_with_master(&b.bridge).is_empty(),
        "{:?}",
        links_with_master(&b.bridge)
    );
    for id in b.containers.borrow().iter() {
        let tag = format!("berth-ctr:{id}");
        assert!(
            nft_lines_with(&tag).is_empty(),
            "{:?}",
            nft_lines_with(&tag)
        );
    }
    for p in ports_used {
        let left = nft_lines_with(&format!("dport {p}"));
        assert!(left.is_empty(), "rules for port {p} left: {left:?}");
    }
    // The unused network went with the prune, and its bridge and rules with it.
    assert!(
        !b.net_names().contains(&"tn".to_owned()),
        "{:?}",
        b.net_names()
    );
    assert!(!link_exists(&br), "{br} left after prune");
    assert!(nft_lines_with(&format!("berth-net:{br}")).is_empty());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let left: Vec<&str> = mounts.lines().filter(|l| l.contains(&root)).collect();
    assert!(left.is_empty(), "mounts left under {root}: {left:#?}");
}

/// Item 11 of the plan: Bad input: one line on stderr, docker's exit status, and nothing created.
#[test]
fn bad_network_input_fails_cleanly_and_creates_nothing() {
    let b = setup!();
    let (_, base) = b.bridge_net("base", &[]);
    b.sleeper("holder", &["--network", "base", "--ip", &base.ip(20)]);
    let other = Subnet::random();
    let taken = net::free_port();
    let _listener = std::net::TcpListener::bind(("0.0.0.0", taken)).unwrap();
    let dup = net::free_port();
    b.sleeper("p1", &["-p", &format!("{dup}:80")]);
    let overlap = format!("{}128/25", base.prefix());
    let ext_subnet = other.cidr();
    // A subnet the host routes elsewhere (an "external host" on a /30 of its /24).
    let ext = External::new();
    let routed = ext.subnet.cidr();
    let bridge_option = format!("com.docker.network.bridge.name={}", b.bridge);
    let broadcast = base.ip(255);

    let cases: Vec<(Vec<String>, i32)> = vec![
        (
            argv(&["network", "create", "--subnet", "10.0.0.0/33", "x1"]),
            1,
        ),
        (argv(&["network", "create", "--subnet", "foo", "x2"]), 1),
        (argv(&["network", "create", "--subnet", &overlap, "x3"]), 1),
        (
            argv(&["network", "create", "--subnet", &ext_subnet, "base"]),
            1,
        ),
        (
            argv(&[
                "network",
                "create",
                "-d",
                "macvlan",
                "-o",
                "parent=nosuchif0",
                "--subnet",
                &ext_subnet,
                "x4",
            ]),
            1,
        ),
        (argv(&["network", "create", "-d", "nosuchdriver", "x5"]), 1),
        // Another network's bridge (or any existing interface) is not taken over: `network
        // rm` would delete it.
        (argv(&["network", "create", "-o", &bridge_option, "x6"]), 1),
        (argv(&["network", "create", "--subnet", &routed, "x7"]), 1),
        // Names, not lines: an alias goes into every peer's /etc/hosts.
        (
            argv(&[
                "run",
                "-d",
                "--name",
                "t8",
                "--network",
                "base",
                "--network-alias",
                "evil\n6.6.6.6 victim",
                "bb",
                "sleep",
                "9",
            ]),
            125,
        ),
        (
            argv(&[
                "run",
                "-d",
                "--name",
                "t9",
                "--hostname",
                "h 1.2.3.4",
                "bb",
                "sleep",
                "9",
            ]),
            125,
        ),
        (
            argv(&[
                "run",
                "-d",
                "--name",
                "t10",
                "--network",
                "base",
                "--ip",
                &broadcast,
                "bb",
                "sleep",
                "9",
            ]),
            125,
        ),
        (
            argv(&[
                "run",
                "-d",
                "--name",
                "t11",
                "--network",
                "container:holder",
                "-p",
                "80",
                "bb",
                "sleep",
                "9",
            ]),
            125,
        ),
        (argv(&["network", "rm", "nosuchnet"]), 1),
        (
            argv(&[
                "run",
                "-d",
                "--name",
                "t1",
                "-p",
                &format!("{taken}:80"),
                "bb",
                "sleep",
                "9",
            ]),
            125,
        ),
        (
            argv(&[
                "run",
                "-d",
                "--name",
                "t2",
                "-p",
                &format!("{dup}:80"),
                "bb",
                "sleep",
                "9",
            ]),
            125,
        ),
        (
            argv(&[
                "run", "-d", "--name", "t3", "-p", "99999:80", "bb", "sleep", "9",
            ]),
            125,
        ),
        (
            argv(&[
                "run",
                "-d",
                "--name",
                "t4",
                "--network",
                "base",
                "--ip",
                &other.ip(5),
                "bb",
                "sleep",
                "9",
            ]),
            125,
        ),
        (
            argv(&[
                "run",
                "-d",
                "--name",
                "t5",
                "--network",
                "base",
                "--ip",
                &base.ip(20),
                "bb",
                "sleep",
                "9",
            ]),
            125,
        ),
        (
            argv(&[
                "run",
                "-d",
                "--name",
                "t6",
                "--network",
                "nosuchnet",
                "bb",
                "sleep",
                "9",
            ]),
            125,
        ),
        (
            argv(&[
                "run",
                "-d",
                "--name",
                "t7",
                "--ip",
                "not-an-ip",
                "--network",
                "base",
                "bb",
                "sleep",
                "9",
            ]),
            125,
        ),
    ];
    let needles = vec![
        format!("dport {taken}"),
        format!("dport {dup}"),
        base.prefix(),
        other.prefix(),
    ];
    for (args, code) in cases {
        let args = strs(&args);
        let before = b.snapshot(&[base, other], &needles);
        let out = b.run(&args);
        assert_one_line_error(&out, code, &format!("{args:?}"));
        let after = b.snapshot(&[base, other], &needles);
        assert_eq!(after, before, "{args:?} created something");
    }
    // p1 still serves its port; the taken port's owner is untouched.
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.State.Status}}", "p1"]).trim(),
        "running"
    );
}

/// A port published by one berth root is refused to another one (the rules share one
/// table), and the first keeps it.
#[test]
fn a_port_published_by_another_root_is_refused() {
    let a = setup!();
    let b = Berth::new();
    let port = net::free_port();
    a.web("pa", &["-p", &format!("{port}:80")]);
    let out = b.run(&[
        "run",
        "-d",
        "--name",
        "pb",
        "-p",
        &format!("{port}:80"),
        "bb",
        "sleep",
        "9",
    ]);
    assert_one_line_error(&out, 125, "second root, same port");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already published"),
        "{}",
        describe(&out)
    );
    assert_eq!(
        http_get(&format!("127.0.0.1:{port}"), 10.0).as_deref(),
        Some("pa\n")
    );
}

/// When the owner of a shared network namespace (`--network container:OWNER`) stops, its
/// address goes back to the pool: the interface holding it must leave the namespace the
/// sharer keeps alive, or two containers would answer for one address.
#[test]
fn a_sharer_loses_the_owner_s_interface_when_the_owner_stops() {
    let b = setup!();
    let (_, s) = b.bridge_net("shr", &[]);
    b.sleeper("owner", &["--network", "shr"]);
    b.sleeper("sharer", &["--network", "container:owner"]);
    assert!(b
        .exec_ok("sharer", &["ip", "-o", "-4", "addr"])
        .contains(&s.prefix()));
    b.ok(&["stop", "-t", "1", "owner"]);
    let addrs = b.exec_ok("sharer", &["ip", "-o", "-4", "addr"]);
    assert!(!addrs.contains(&s.prefix()), "{addrs}");
    // The owner's address, free again, serves a newcomer alone.
    b.sleeper("newcomer", &["--network", "shr"]);
    assert!(b
        .exec_ok("newcomer", &["ip", "-o", "-4", "addr"])
        .contains(&s.prefix()));
}

fn argv(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// Item 12 of the plan: IPAM under concurrency: 8 concurrent `run -d` on one network get 8 distinct addresses.
#[test]
fn concurrent_runs_get_distinct_addresses() {
    let b = setup!();
    let (_, s) = b.bridge_net("par", &[]);
    let outs: Vec<Output> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let name = format!("p{i}");
                let cmd = b.command(&[
                    "run",
                    "-d",
                    "--name",
                    &name,
                    "--network",
                    "par",
                    "bb",
                    "sleep",
                    "1000",
                ]);
                sc.spawn(move || {
                    let mut cmd = cmd;
                    cmd.output().unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for o in &outs {
        assert!(o.status.success(), "{}", describe(o));
    }
    let gw = b.net_inspect("par")["IPAM"]["Config"][0]["Gateway"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let ips: BTreeSet<String> = (0..8).map(|i| b.ip_on(&format!("p{i}"), "par")).collect();
    assert_eq!(ips.len(), 8, "{ips:?}");
    for ip in &ips {
        assert!(
            s.contains(ip) && *ip != gw && *ip != s.ip(0) && *ip != s.ip(255),
            "{ip}"
        );
    }
    let v = b.net_inspect("par");
    let listed: BTreeSet<String> = v["Containers"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|c| c["IPv4Address"].as_str())
        .map(|a| a.split('/').next().unwrap().to_owned())
        .collect();
    assert_eq!(listed, ips);
    // And they reach each other.
    b.reaches("p0", &ping(&b.ip_on("p7", "par")));
}

/// The fixtures themselves (no berth): an external host reachable both ways with TCP and UDP
/// servers seeing the right peers, a macvlan on a veth parent reaching the namespace at
/// the other end, and everything gone after drop. When this fails, the machine (not the engine) is
/// the problem.
#[test]
fn fixtures_work_on_this_machine() {
    check!();
    let (ns_name, host_if) = {
        let ext = External::new();
        let ping = net::run_cmd("busybox", &["ping", "-c1", "-W2", &ext.ns_ip]);
        assert!(ping.status.success(), "{}", describe(&ping));
        let tcp = TcpServer::start_in(&ext.ns.path(), "0.0.0.0:80", "ext\n");
        let udp = UdpServer::start_in(&ext.ns.path(), "0.0.0.0:5353", "ext");
        assert_eq!(
            http_get(&format!("{}:80", ext.ns_ip), 5.0).as_deref(),
            Some("ext\n")
        );
        assert_eq!(
            udp_ask(&format!("{}:5353", ext.ns_ip), "q", 5.0).as_deref(),
            Some("ext:q")
        );
        assert_eq!(tcp.peers()[0].ip().to_string(), ext.host_ip);
        assert_eq!(udp.peers()[0].ip().to_string(), ext.host_ip);
        // From inside to a server on the host.
        let port = net::free_port();
        let host_srv = TcpServer::start_in(
            Path::new("/proc/self/ns/net"),
            &format!("0.0.0.0:{port}"),
            "host\n",
        );
        let to = format!("{}:{port}", ext.host_ip);
        let got = in_netns(&ext.ns.path(), || http_get(&to, 5.0));
        assert_eq!(got.as_deref(), Some("host\n"));
        assert_eq!(host_srv.peers()[0].ip().to_string(), ext.ns_ip);
        (ext.ns.name.clone(), ext.host_if.clone())
    };
    assert!(!link_exists(&host_if), "{host_if} left");
    assert!(
        !Path::new("/run/netns").join(&ns_name).exists(),
        "{ns_name} left"
    );

    let (parent, ns_name) = {
        let seg = Segment::new(200);
        // A macvlan on the parent, in a namespace of its own, reaches the peer.
        let other = NetNs::new("bm");
        let name = format!("mvl{}", net::rand_hex(6));
        net::ip(&[
            "link",
            "add",
            &name,
            "link",
            &seg.parent,
            "type",
            "macvlan",
            "mode",
            "bridge",
        ]);
        net::ip(&["link", "set", &name, "netns", &other.name]);
        let addr = format!("{}/24", seg.subnet.ip(10));
        other.ok(&["ip", "addr", "add", &addr, "dev", &name]);
        other.ok(&["ip", "link", "set", &name, "up"]);
        let out = net::wait_ok(5.0, || {
            other.exec(&["busybox", "ping", "-c1", "-W2", &seg.peer_ip])
        });
        assert!(
            out.status.success(),
            "macvlan to the segment: {}",
            describe(&out)
        );
        let out = seg
            .ns
            .exec(&["busybox", "ping", "-c1", "-W2", &seg.subnet.ip(10)]);
        assert!(
            out.status.success(),
            "segment to the macvlan: {}",
            describe(&out)
        );
        (seg.parent.clone(), seg.ns.name.clone())
    };
    assert!(!link_exists(&parent), "{parent} left");

    // The nft safety net deletes exactly the tagged rules (on a scratch table).
    let table = format!("bt{}", net::rand_hex(8));
    net::must("nft", &["add", "table", "inet", &table]);
    net::must("nft", &["add", "chain", "inet", &table, "c"]);
    for tag in ["berth-ctr:aaa", "berth-ctr:bbb"] {
        net::must(
            "nft",
            &[
                "add",
                "rule",
                "inet",
                &table,
                "c",
                "tcp",
                "dport",
                "1",
                "accept",
                "comment",
                &format!("\"{tag}\""),
            ],
        );
    }
    net::nft_delete_rules_in(&table, "berth-ctr:aaa");
    let left = net::nft_table(&table);
    let _ = net::run_cmd("nft", &["delete", "table", "inet", &table]);
    assert!(
        !left.contains("berth-ctr:aaa") && left.contains("berth-ctr:bbb"),
        "{left}"
    );
    assert!(
        !Path::new("/run/netns").join(&ns_name).exists(),
        "{ns_name} left"
    );
}
