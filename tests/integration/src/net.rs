//! Fixtures for the network tests (tests/network.rs): random names and subnets, network
//! namespaces joined to the host by veth pairs ("external hosts"), macvlan parents (veth pairs), servers opened
//! inside another network namespace (TCP and UDP, recording who connected), and queries of
//! `ip` and `nft`. Every fixture removes what it made when dropped.
//!
//! The tests use `ip`, `nft` and `nsenter` freely; the product may not.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Random bytes from the kernel.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("read /dev/urandom");
    buf
}

/// `n` random lowercase hex digits.
pub fn rand_hex(n: usize) -> String {
    random_bytes(n.div_ceil(2))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()[..n]
        .to_string()
}

/// A random number in `lo..=hi`.
pub fn rand_in(lo: u32, hi: u32) -> u32 {
    let b = random_bytes(4);
    lo + u32::from_le_bytes([b[0], b[1], b[2], b[3]]) % (hi - lo + 1)
}

/// A random `10.A.B.0/24` that no address or route of the host overlaps (A in 64..=250, so
/// clear of the common 10.0.x.x and 10.1.x.x ranges).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subnet {
    /// Second octet.
    pub a: u8,
    /// Third octet.
    pub b: u8,
}

impl Subnet {
    /// A fresh random subnet, not in use on the host (addresses and routes).
    pub fn random() -> Subnet {
        let used = host_routes_and_addrs();
        loop {
            let s = Subnet {
                a: rand_in(64, 250) as u8,
                b: rand_in(0, 255) as u8,
            };
            if !used.iter().any(|u| u.contains(&s.prefix()))
                && reserve(&format!("subnet-10.{}.{}", s.a, s.b))
            {
                return s;
            }
        }
    }

    /// `10.A.B.0/24`.
    pub fn cidr(&self) -> String {
        format!("10.{}.{}.0/24", self.a, self.b)
    }

    /// `10.A.B.` (for matching addresses by text).
    pub fn prefix(&self) -> String {
        format!("10.{}.{}.", self.a, self.b)
    }

    /// `10.A.B.N`.
    pub fn ip(&self, n: u8) -> String {
        format!("10.{}.{}.{n}", self.a, self.b)
    }

    /// Does `addr` (`a.b.c.d`, optionally with `/len`) lie in this subnet?
    pub fn contains(&self, addr: &str) -> bool {
        addr.starts_with(&self.prefix())
    }
}

/// Reserve `key` (a subnet, a port) for this process among concurrently running test
/// processes: a file named `key` holding the owner's pid under a shared directory, created
/// exclusively; a file whose owner has exited is taken over. Reservations are never
/// released explicitly (they lapse with the process), so no two live test processes pick
/// the same subnet or port.
pub fn reserve(key: &str) -> bool {
    let dir = std::env::temp_dir().join("berth-nettest-reserved");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(key);
    let me = std::process::id();
    for _ in 0..2 {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut f) => {
                let _ = write!(f, "{me}");
                return true;
            }
            Err(_) => {
                let owner = std::fs::read_to_string(&path).unwrap_or_default();
                let owner = owner.trim();
                if owner == me.to_string() {
                    return false;
                }
                if owner.is_empty() || Path::new("/proc").join(owner).exists() {
                    return false;
                }
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    false
}

/// Every line of `ip -o addr` and `ip route` (all tables), for picking unused subnets.
fn host_routes_and_addrs() -> Vec<String> {
    let mut lines = Vec::new();
    for args in [
        &["-o", "-4", "addr"][..],
        &["-4", "route", "show", "table", "all"][..],
    ] {
        if let Ok(out) = Command::new("ip").args(args).output() {
            lines.extend(
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .map(str::to_owned),
            );
        }
    }
    lines
}

/// Run a command, capturing its output (stdin closed).
pub fn run_cmd(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program} {args:?}: {e}"))
}

/// Run a command and panic with its output unless it succeeds; its stdout.
pub fn must(program: &str, args: &[&str]) -> String {
    let out = run_cmd(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        crate::describe(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ip ARGS`, panicking on failure.
pub fn ip(args: &[&str]) -> String {
    must("ip", args)
}

/// Does a link named `name` exist (in the test's network namespace)?
pub fn link_exists(name: &str) -> bool {
    run_cmd("ip", &["link", "show", "dev", name])
        .status
        .success()
}

/// Names of all links (without `@peer` suffixes).
pub fn links() -> BTreeSet<String> {
    let out = run_cmd("ip", &["-o", "link", "show"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

/// Names of the links enslaved to `bridge` (empty when the bridge does not exist).
pub fn links_with_master(bridge: &str) -> Vec<String> {
    let out = run_cmd("ip", &["-o", "link", "show", "master", bridge]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

/// Lines of `ip -o addr` that mention an address in `subnet` (links holding one).
pub fn addrs_in(subnet: &Subnet) -> Vec<String> {
    let out = run_cmd("ip", &["-o", "-4", "addr"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&format!(" {}", subnet.prefix())))
        .map(str::to_owned)
        .collect()
}

/// Routes (all tables) that mention `subnet`.
pub fn routes_in(subnet: &Subnet) -> Vec<String> {
    let out = run_cmd("ip", &["-4", "route", "show", "table", "all"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&subnet.prefix()))
        .map(str::to_owned)
        .collect()
}

/// The host's IPv4 addresses with their link (`(link, addr)`), loopback excluded.
pub fn host_addrs() -> Vec<(String, String)> {
    let out = run_cmd("ip", &["-o", "-4", "addr"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let link = f.get(1)?.to_string();
            let addr = f.get(3)?.split('/').next()?.to_string();
            (link != "lo").then_some((link, addr))
        })
        .collect()
}

/// The host's own address: the address of the link that carries the default route (or the
/// first global address). None when the host has no such address.
pub fn host_primary_addr() -> Option<String> {
    let route = run_cmd("ip", &["-4", "route", "show", "default"]);
    let text = String::from_utf8_lossy(&route.stdout).into_owned();
    let dev = text
        .split_whitespace()
        .skip_while(|w| *w != "dev")
        .nth(1)
        .map(str::to_owned);
    let addrs = host_addrs();
    dev.and_then(|d| addrs.iter().find(|(l, _)| *l == d).map(|(_, a)| a.clone()))
        .or_else(|| addrs.first().map(|(_, a)| a.clone()))
}

/// `nft list table inet berth` with handles (empty when the table does not exist).
pub fn nft_berth() -> String {
    nft_table("berth")
}

/// `nft -a list table inet TABLE` (empty when the table does not exist).
pub fn nft_table(table: &str) -> String {
    let out = run_cmd("nft", &["-a", "list", "table", "inet", table]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Lines of the `inet berth` table that contain `needle` (a tag like `berth-ctr:<id>`, a
/// subnet, `dport <port>`), with counter values blanked (so that snapshots taken while
/// traffic flows compare equal).
pub fn nft_lines_with(needle: &str) -> Vec<String> {
    nft_berth()
        .lines()
        .filter(|l| l.contains(needle))
        .map(without_counters)
        .collect()
}

/// An nft line with the numbers after `packets` and `bytes` replaced by `N`.
fn without_counters(line: &str) -> String {
    let mut out = Vec::new();
    let mut blank_next = false;
    for word in line.split_whitespace() {
        out.push(if blank_next { "N" } else { word });
        blank_next = word == "packets" || word == "bytes";
    }
    out.join(" ")
}

/// Delete every rule of `inet berth` whose text contains `needle` (cleanup safety net).
pub fn nft_delete_rules_with(needle: &str) {
    nft_delete_rules_in("berth", needle);
}

/// Delete every rule of `inet TABLE` whose text contains `needle`.
pub fn nft_delete_rules_in(table: &str, needle: &str) {
    let mut chain = String::new();
    for line in nft_table(table).lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("chain ") {
            chain = rest.split_whitespace().next().unwrap_or("").to_string();
            continue;
        }
        if !t.contains(needle) {
            continue;
        }
        if let Some((_, handle)) = t.rsplit_once("# handle ") {
            let _ = run_cmd(
                "nft",
                &[
                    "delete",
                    "rule",
                    "inet",
                    table,
                    &chain,
                    "handle",
                    handle.trim(),
                ],
            );
        }
    }
}

/// Delete link `name` if it exists (cleanup).
pub fn del_link(name: &str) {
    if link_exists(name) {
        let _ = run_cmd("ip", &["link", "del", name]);
    }
}

/// A named network namespace (`ip netns add`), deleted on drop.
pub struct NetNs {
    /// Name under /run/netns.
    pub name: String,
}

impl NetNs {
    /// A new namespace `<prefix><random hex>` with its loopback up.
    pub fn new(prefix: &str) -> NetNs {
        let name = format!("{prefix}{}", rand_hex(6));
        ip(&["netns", "add", &name]);
        let ns = NetNs { name };
        ns.ok(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// Its bind mount, for setns.
    pub fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }

    /// Run `args` inside (`ip netns exec`).
    pub fn exec(&self, args: &[&str]) -> Output {
        let mut all = vec!["netns", "exec", &self.name];
        all.extend_from_slice(args);
        run_cmd("ip", &all)
    }

    /// Run `args` inside and panic unless it succeeds; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.exec(args);
        assert!(
            out.status.success(),
            "in netns {}: {args:?}: {}",
            self.name,
            crate::describe(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = run_cmd("ip", &["netns", "del", &self.name]);
    }
}

/// An "external host": a network namespace joined to the host by a veth pair on a /30. The
/// host end is `host_ip` (`10.A.B.1`), the namespace end `ns_ip` (`10.A.B.2`) with a default
/// route through the host, so it can reach the host and anything the host routes to it.
pub struct External {
    /// The namespace.
    pub ns: NetNs,
    /// Host end of the veth pair.
    pub host_if: String,
    /// Address of the host end.
    pub host_ip: String,
    /// Address of the namespace end.
    pub ns_ip: String,
    /// The /24 the /30 was taken from (reserved for it).
    pub subnet: Subnet,
}

impl External {
    /// Build one: netns `bx<hex>`, veth `vx<hex>` (host) / `eth0` (inside).
    pub fn new() -> External {
        let ns = NetNs::new("bx");
        let host_if = format!("vx{}", rand_hex(8));
        let subnet = Subnet::random();
        let ext = External {
            host_if,
            host_ip: subnet.ip(1),
            ns_ip: subnet.ip(2),
            subnet,
            ns,
        };
        ip(&[
            "link",
            "add",
            &ext.host_if,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &ext.ns.name,
        ]);
        ip(&[
            "addr",
            "add",
            &format!("{}/30", ext.host_ip),
            "dev",
            &ext.host_if,
        ]);
        ip(&["link", "set", &ext.host_if, "up"]);
        ext.ns.ok(&[
            "ip",
            "addr",
            "add",
            &format!("{}/30", ext.ns_ip),
            "dev",
            "eth0",
        ]);
        ext.ns.ok(&["ip", "link", "set", "eth0", "up"]);
        ext.ns
            .ok(&["ip", "route", "add", "default", "via", &ext.host_ip]);
        ext
    }
}

impl Default for External {
    fn default() -> Self {
        External::new()
    }
}

impl Drop for External {
    fn drop(&mut self) {
        del_link(&self.host_if);
    }
}

/// A macvlan parent and the segment behind it: a veth pair whose host end `parent`
/// (`mvp<hex>`, up, no address) is the parent, and whose other end is `eth0` in the
/// namespace `ns` with address `peer_ip` on `subnet`, standing for another machine on the
/// parent's wire. (Dummy links would be simpler parents, but not every kernel has them: this
/// one's has no `dummy` module.) The link goes on drop, the namespace with it.
pub struct Segment {
    /// The host end: pass `-o parent=<this>`.
    pub parent: String,
    /// The other machine.
    pub ns: NetNs,
    /// Its address.
    pub peer_ip: String,
    /// The segment's /24.
    pub subnet: Subnet,
}

impl Segment {
    /// Build one on a fresh random /24; the peer is `10.A.B.<peer_host>`.
    pub fn new(peer_host: u8) -> Segment {
        let ns = NetNs::new("bm");
        let subnet = Subnet::random();
        let seg = Segment {
            parent: format!("mvp{}", rand_hex(8)),
            peer_ip: subnet.ip(peer_host),
            subnet,
            ns,
        };
        ip(&[
            "link",
            "add",
            &seg.parent,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &seg.ns.name,
        ]);
        ip(&["link", "set", &seg.parent, "up"]);
        let addr = format!("{}/24", seg.peer_ip);
        seg.ns.ok(&["ip", "addr", "add", &addr, "dev", "eth0"]);
        seg.ns.ok(&["ip", "link", "set", "eth0", "up"]);
        seg
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        del_link(&self.parent);
    }
}

/// Run `f` on a thread that has joined the network namespace at `ns` (a /run/netns file or
/// /proc/PID/ns/net). Sockets made there stay in that namespace.
pub fn in_netns<T: Send>(ns: &Path, f: impl FnOnce() -> T + Send) -> T {
    let file = std::fs::File::open(ns).unwrap_or_else(|e| panic!("open {}: {e}", ns.display()));
    std::thread::scope(|s| {
        s.spawn(move || {
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .unwrap_or_else(|e| panic!("setns: {e}"));
            f()
        })
        .join()
        .unwrap()
    })
}

/// A TCP server on a socket bound inside some network namespace, answering each connection
/// with a minimal HTTP response whose body is `body`, and recording each peer's address.
pub struct TcpServer {
    /// Where it listens (as seen inside its namespace).
    pub addr: SocketAddr,
    peers: Arc<Mutex<Vec<SocketAddr>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TcpServer {
    /// Listen on `bind` (e.g. `0.0.0.0:8080`) inside the namespace at `ns`.
    pub fn start_in(ns: &Path, bind: &str, body: &str) -> TcpServer {
        let bind = bind.to_string();
        let listener = in_netns(ns, move || TcpListener::bind(&bind))
            .unwrap_or_else(|e| panic!("bind in {}: {e}", ns.display()));
        Self::serve(listener, body)
    }

    fn serve(listener: TcpListener, body: &str) -> TcpServer {
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let peers = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s, body) = (peers.clone(), stop.clone(), body.to_string());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut conn, peer)) => {
                        p.lock().unwrap().push(peer);
                        let _ = conn.set_nonblocking(false);
                        let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                        // Read the request head (best effort), then answer and close.
                        let mut req = Vec::new();
                        let mut buf = [0u8; 1024];
                        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                            match conn.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => req.extend_from_slice(&buf[..n]),
                            }
                        }
                        let _ = write!(
                            conn,
                            "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        TcpServer {
            addr,
            peers,
            stop,
            thread: Some(thread),
        }
    }

    /// The addresses of every peer that connected so far.
    pub fn peers(&self) -> Vec<SocketAddr> {
        self.peers.lock().unwrap().clone()
    }
}

impl Drop for TcpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A UDP server on a socket bound inside some network namespace: answers every datagram
/// with `<body>:<datagram>` and records each peer's address.
pub struct UdpServer {
    /// Where it listens (as seen inside its namespace).
    pub addr: SocketAddr,
    peers: Arc<Mutex<Vec<SocketAddr>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl UdpServer {
    /// Bind `bind` (e.g. `0.0.0.0:53`) inside the namespace at `ns`.
    pub fn start_in(ns: &Path, bind: &str, body: &str) -> UdpServer {
        let bind = bind.to_string();
        let sock = in_netns(ns, move || UdpSocket::bind(&bind))
            .unwrap_or_else(|e| panic!("bind udp in {}: {e}", ns.display()));
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let addr = sock.local_addr().unwrap();
        let peers = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s, body) = (peers.clone(), stop.clone(), body.to_string());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !s.load(Ordering::SeqCst) {
                if let Ok((n, peer)) = sock.recv_from(&mut buf) {
                    p.lock().unwrap().push(peer);
                    let mut reply = format!("{body}:").into_bytes();
                    reply.extend_from_slice(&buf[..n]);
                    let _ = sock.send_to(&reply, peer);
                }
            }
        });
        UdpServer {
            addr,
            peers,
            stop,
            thread: Some(thread),
        }
    }

    /// The addresses of every peer that sent something so far.
    pub fn peers(&self) -> Vec<SocketAddr> {
        self.peers.lock().unwrap().clone()
    }
}

impl Drop for UdpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Send `msg` to `to` over UDP (from the current namespace) and wait up to `secs` for a
/// reply, resending every 200 ms; the reply's text.
pub fn udp_ask(to: &str, msg: &str, secs: f64) -> Option<String> {
    let sock = UdpSocket::bind("0.0.0.0:0").ok()?;
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .ok()?;
    let deadline = std::time::Instant::now() + Duration::from_secs_f64(secs);
    let mut buf = [0u8; 2048];
    while std::time::Instant::now() < deadline {
        let _ = sock.send_to(msg.as_bytes(), to);
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            return Some(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    None
}

/// An HTTP GET of `http://<to>/` over TCP from the current namespace, retried until `secs`
/// pass; the response body on success.
pub fn http_get(to: &str, secs: f64) -> Option<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs_f64(secs);
    loop {
        if let Some(body) = http_get_once(to) {
            return Some(body);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn http_get_once(to: &str) -> Option<String> {
    let addr: SocketAddr = to.parse().ok()?;
    let mut conn = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    write!(conn, "GET / HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut resp = Vec::new();
    conn.read_to_end(&mut resp).ok()?;
    let text = String::from_utf8_lossy(&resp).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.")
        .then_some(())
        .filter(|_| head.split_whitespace().nth(1) == Some("200"))?;
    Some(body.to_string())
}

/// A random port in 20000..=32000 (below the ephemeral range docker uses for `-p 80`,
/// 32768..=60999) that is free on 0.0.0.0 for both TCP and UDP right now.
pub fn free_port() -> u16 {
    loop {
        let port = rand_in(20000, 32000) as u16;
        let tcp = TcpListener::bind(("0.0.0.0", port));
        let udp = UdpSocket::bind(("0.0.0.0", port));
        if tcp.is_ok() && udp.is_ok() && reserve(&format!("port-{port}")) {
            return port;
        }
    }
}

/// Run `f` until its output is a success or `secs` pass; the last output.
pub fn wait_ok(secs: f64, mut f: impl FnMut() -> Output) -> Output {
    let deadline = std::time::Instant::now() + Duration::from_secs_f64(secs);
    loop {
        let out = f();
        if out.status.success() || std::time::Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
