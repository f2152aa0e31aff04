//! `--network pasta` and `--network slirp4netns` (issue 6, "Rootless"), run as root here:
//! the container reaches a server on an address of the host, TCP and UDP ports published
//! from the host's loopback and its own address, ephemeral `-p 80` and `berth port`, the
//! helper process and the namespace pin gone after `rm -f`, the repair after `kill -9` of
//! `berth run -d`, and bad options refused with one line and nothing made.
//!
//! Each test has its own roots and default bridge (`BERTH_BRIDGE`), as tests/network.rs.
//! Traffic stays on this machine: the host server listens on an address the test adds to
//! a dummy link.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_integration_tests::net::{
    self, host_primary_addr, http_get, udp_ask, Subnet, TcpServer, UdpServer,
};
use berth_integration_tests::{bin_dir, have, is_root, need_root, skip};

/// A private berth with a busybox image `bb`.
struct Berth {
    dir: tempfile::TempDir,
    bridge: String,
    subnet: Subnet,
}

impl Berth {
    fn new() -> Berth {
        let dir = tempfile::Builder::new()
            .prefix("bu")
            .tempdir_in("/tmp")
            .unwrap();
        let b = Berth {
            dir,
            bridge: format!("bu{}", net::rand_hex(4)),
            subnet: Subnet::random(),
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

    fn runroot(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin_dir().join("berth"));
        cmd.arg("--root")
            .arg(self.dir.path().join("data"))
            .arg("--runroot")
            .arg(self.runroot())
            .args(args)
            .env("BERTH_BRIDGE", &self.bridge)
            .env("BERTH_BRIDGE_SUBNET", self.subnet.cidr())
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "berth {args:?}: {}", describe(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A busybox httpd container serving `<name>\n` on port 80.
    fn web(&self, name: &str, extra: &[&str]) -> String {
        let script = format!(
            "mkdir -p /www && echo {name} > /www/index.html && exec httpd -f -p 80 -h /www"
        );
        let mut args = vec!["run", "-d", "--name", name];
        args.extend_from_slice(extra);
        args.extend(["bb", "sh", "-c", &script]);
        self.ok(&args).trim().to_owned()
    }

    /// `exec NAME CMD...`, retried for 10 s until it succeeds; stdout.
    fn exec_ok(&self, name: &str, cmd: &[&str]) -> String {
        let mut args = vec!["exec", name];
        args.extend_from_slice(cmd);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = self.run(&args);
            if out.status.success() {
                return String::from_utf8_lossy(&out.stdout).into_owned();
            }
            assert!(
                Instant::now() < deadline,
                "exec {name} {cmd:?}: {}",
                describe(&out)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn pid(&self, name: &str) -> i64 {
        let v: serde_json::Value = serde_json::from_str(&self.ok(&["inspect", name])).unwrap();
        v[0]["State"]["Pid"].as_i64().unwrap()
    }

    fn ids(&self) -> Vec<String> {
        self.ok(&["ps", "-aq", "--no-trunc"])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The recorded helper's pid of container `id`.
    fn helper_pid(&self, id: &str) -> i32 {
        let path = self.runroot().join("netns").join(format!("{id}.helper"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["pid"].as_i64().unwrap() as i32
    }

    /// Processes whose command line names this berth's run root (pasta's and slirp4netns's
    /// `--netns` path does), and mounts under its directory.
    fn leftovers(&self) -> Vec<String> {
        let root = self.dir.path().to_string_lossy().into_owned();
        let mut left = helpers_naming(&root);
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        left.extend(
            mounts
                .lines()
                .filter(|l| l.contains(&root))
                .map(|l| format!("mount: {l}")),
        );
        left
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        if let Ok(out) = self.command(&["ps", "-aq", "--no-trunc"]).output() {
            for id in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = self.run(&["rm", "-f", "-v", id]);
            }
        }
        // Safety net: helpers still naming our root, then mounts under it.
        let root = self.dir.path().to_string_lossy().into_owned();
        for line in helpers_naming(&root) {
            if let Some(pid) = line.split(':').next() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
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
        net::del_link(&self.bridge);
    }
}

/// Whether `pid` runs (a zombie does not).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// `pid: cmdline` of live processes whose command line contains `needle`.
fn helpers_naming(needle: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) || name == me {
            continue;
        }
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        if stat
            .rsplit(')')
            .next()
            .is_some_and(|s| s.trim_start().starts_with('Z'))
        {
            continue;
        }
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let is_helper = cmdline.contains("pasta") || cmdline.contains("slirp4netns");
        if is_helper && cmdline.contains(needle) {
            out.push(format!("{name}: {cmdline}"));
        }
    }
    out
}

/// A link (a port-less bridge: this kernel has no dummy driver) holding one host address (a /32 in a fresh 10.x.y.0/24), for a server the
/// containers reach through the helper.
struct HostAddr {
    link: String,
    ip: String,
}

impl HostAddr {
    fn new() -> HostAddr {
        let link = format!("bud{}", net::rand_hex(6));
        let ip = Subnet::random().ip(1);
        net::must("ip", &["link", "add", &link, "type", "bridge"]);
        let h = HostAddr { link, ip };
        net::must(
            "ip",
            &["addr", "add", &format!("{}/32", h.ip), "dev", &h.link],
        );
        net::must("ip", &["link", "set", &h.link, "up"]);
        h
    }
}

impl Drop for HostAddr {
    fn drop(&mut self) {
        net::del_link(&self.link);
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

const APPLETS: &[&str] = &[
    "sh", "cat", "echo", "sleep", "mkdir", "true", "ip", "wget", "timeout", "httpd", "nc", "grep",
    "hostname",
];

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

/// Why this machine cannot run the test with `program`, if it cannot.
fn skip_reason(program: &str) -> Option<String> {
    if !is_root() {
        return Some("needs root".into());
    }
    if !Path::new("/bin/busybox").exists() {
        return Some("needs /bin/busybox (busybox-static)".into());
    }
    for tool in ["tar", "ip", program] {
        if !have(tool) {
            return Some(format!("needs {tool} (apt-get install passt slirp4netns)"));
        }
    }
    None
}

macro_rules! check {
    ($program:expr) => {{
        need_root!();
        if let Some(reason) = skip_reason($program) {
            skip!("{reason}");
        }
    }};
}

/// The container reaches the host, its ports are published (TCP and UDP, fixed and
/// ephemeral) and reported, and `rm -f` leaves no helper and no pin.
fn reaches_the_host_and_publishes(mode: &str, iface: &str) {
    let host = HostAddr::new();
    let server = TcpServer::start_in(
        Path::new("/proc/self/ns/net"),
        &format!("{}:0", host.ip),
        "host\n",
    );
    let b = Berth::new();
    let (tcp, udp, lo_tcp) = (net::free_port(), net::free_port(), net::free_port());
    let id = b.web(
        "web",
        &[
            "--network",
            mode,
            "-p",
            &format!("{tcp}:80"),
            "-p",
            &format!("{udp}:5353/udp"),
            "-p",
            &format!("127.0.0.1:{lo_tcp}:80"),
        ],
    );

    let addr = b.exec_ok("web", &["ip", "addr", "show", iface]);
    assert!(
        addr.contains("inet "),
        "{mode}: no IPv4 address on {iface}: {addr}"
    );
    let helper = b.helper_pid(&id);
    assert!(alive(helper), "{mode}: helper {helper} not running");

    let url = format!("http://{}/", server.addr);
    let got = b.exec_ok("web", &["timeout", "5", "wget", "-qO-", &url]);
    assert_eq!(got, "host\n", "{mode}: the host's server at {url}");

    let ns = PathBuf::from(format!("/proc/{}/ns/net", b.pid("web")));
    let udp_server = UdpServer::start_in(&ns, "0.0.0.0:5353", "ctr");
    let mut targets = vec!["127.0.0.1".to_owned()];
    targets.extend(host_primary_addr());
    for h in &targets {
        assert_eq!(
            http_get(&format!("{h}:{tcp}"), 10.0).as_deref(),
            Some("web\n"),
            "{mode}: tcp via {h}:{tcp}"
        );
        // The datagrams arrive; the replies do not come back through either helper's own
        // UDP forwarding here (passt 0.0~git20230309; slirp4netns's API forwarding with
        // --disable-host-loopback, podman's default): see
        // udp_replies_through_slirp4netns_with_host_loopback.
        let before = udp_server.peers().len();
        let reply = udp_ask(&format!("{h}:{udp}"), "x", 2.0);
        assert!(
            udp_server.peers().len() > before,
            "{mode}: no datagram via {h}:{udp} reached the container"
        );
        if reply.as_deref() != Some("ctr:x") {
            eprintln!("note: {mode}: udp via {h}:{udp}: the container's reply did not come back");
        }
    }
    assert_eq!(
        http_get(&format!("127.0.0.1:{lo_tcp}"), 10.0).as_deref(),
        Some("web\n"),
        "{mode}: 127.0.0.1:{lo_tcp}"
    );

    let port = b.ok(&["port", "web"]);
    for want in [
        format!("80/tcp -> 0.0.0.0:{tcp}"),
        format!("80/tcp -> 127.0.0.1:{lo_tcp}"),
        format!("5353/udp -> 0.0.0.0:{udp}"),
    ] {
        assert!(
            port.lines().any(|l| l == want),
            "{mode}: want {want:?} in {port}"
        );
    }

    // -p 80: an ephemeral host port, reported and reachable.
    b.web("eph", &["--network", mode, "-p", "80"]);
    let port = b.ok(&["port", "eph"]);
    let line = port
        .lines()
        .find(|l| l.starts_with("80/tcp -> 0.0.0.0:"))
        .unwrap_or_else(|| panic!("{mode}: {port}"));
    let host_port: u16 = line.rsplit(':').next().unwrap().parse().unwrap();
    assert_ne!(host_port, 0);
    let v: serde_json::Value = serde_json::from_str(&b.ok(&["inspect", "eph"])).unwrap();
    assert_eq!(
        v[0]["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"],
        host_port.to_string().as_str()
    );
    assert_eq!(
        http_get(&format!("127.0.0.1:{host_port}"), 10.0).as_deref(),
        Some("eph\n")
    );

    b.ok(&["rm", "-f", "web", "eph"]);
    assert!(!alive(helper), "{mode}: helper {helper} left");
    assert!(b.leftovers().is_empty(), "{mode}: {:#?}", b.leftovers());
    assert!(
        http_get(&format!("127.0.0.1:{tcp}"), 1.0).is_none(),
        "{mode}: port {tcp} still open"
    );
}

#[test]
fn pasta_reaches_the_host_and_publishes_ports() {
    check!("pasta");
    reaches_the_host_and_publishes("pasta", "eth0");
}

#[test]
fn slirp4netns_reaches_the_host_and_publishes_ports() {
    check!("slirp4netns");
    reaches_the_host_and_publishes("slirp4netns", "tap0");
}

/// UDP round trips through slirp4netns's API forwarding work once the host's loopback is
/// allowed (`allow_host_loopback=true`): the container's reply goes to 10.0.2.2, which
/// `--disable-host-loopback` (podman's default) refuses.
#[test]
fn udp_replies_through_slirp4netns_with_host_loopback() {
    check!("slirp4netns");
    let b = Berth::new();
    let udp = net::free_port();
    let published = format!("{udp}:5353/udp");
    let mode = "slirp4netns:allow_host_loopback=true";
    b.ok(&[
        "run",
        "-d",
        "--name",
        "udp",
        "--network",
        mode,
        "-p",
        &published,
        "bb",
        "sleep",
        "1000",
    ]);
    let ns = PathBuf::from(format!("/proc/{}/ns/net", b.pid("udp")));
    let _server = UdpServer::start_in(&ns, "0.0.0.0:5353", "ctr");
    assert_eq!(
        udp_ask(&format!("127.0.0.1:{udp}"), "x", 10.0).as_deref(),
        Some("ctr:x")
    );
    b.ok(&["rm", "-f", "udp"]);
    assert!(b.leftovers().is_empty(), "{:#?}", b.leftovers());
}

/// The name files: slirp4netns's DNS forwarder first; pasta the host's resolvers.
#[test]
fn name_files_of_the_user_mode_networks() {
    check!("slirp4netns");
    let b = Berth::new();
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "slirp4netns",
        "--hostname",
        "hh",
        "bb",
        "cat",
        "/etc/resolv.conf",
        "/etc/hosts",
    ]);
    let first_ns = out.lines().find(|l| l.starts_with("nameserver"));
    assert_eq!(first_ns, Some("nameserver 10.0.2.3"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("10.0.2.100") && l.contains("hh")),
        "{out}"
    );
    if have("pasta") {
        let out = b.ok(&[
            "run",
            "--rm",
            "--network",
            "pasta",
            "bb",
            "cat",
            "/etc/resolv.conf",
        ]);
        assert!(!out.contains("10.0.2.3"), "{out}");
        assert!(out.contains("nameserver"), "{out}");
    }
    assert!(b.leftovers().is_empty(), "{:#?}", b.leftovers());
}

/// `kill -9` of `berth run -d` at several points; the next commands repair; nothing is left.
fn crash_then_repair(mode: &str) {
    let b = Berth::new();
    for (i, delay) in [0u64, 20, 50, 100, 200, 400].iter().enumerate() {
        let published = format!("{}:80", net::free_port());
        let name = format!("crash{i}");
        let mut child = b
            .command(&[
                "run",
                "-d",
                "--name",
                &name,
                "--network",
                mode,
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
    for id in b.ids() {
        let out = b.run(&["rm", "-f", &id]);
        assert!(
            out.status.success(),
            "{mode}: rm -f {id}: {}",
            describe(&out)
        );
    }
    b.ok(&["system", "prune", "-f"]);
    assert!(b.ids().is_empty());
    // pasta leaves when its namespace pin goes; give it a moment.
    let deadline = Instant::now() + Duration::from_secs(3);
    while !b.leftovers().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(b.leftovers().is_empty(), "{mode}: {:#?}", b.leftovers());
}

#[test]
fn pasta_teardown_after_kill_9_of_run() {
    check!("pasta");
    crash_then_repair("pasta");
}

#[test]
fn slirp4netns_teardown_after_kill_9_of_run() {
    check!("slirp4netns");
    crash_then_repair("slirp4netns");
}

/// Bad options: one line, exit 125, no container, no helper.
#[test]
fn bad_user_mode_options_fail_cleanly() {
    check!("slirp4netns");
    let b = Berth::new();
    let mut cases = vec![
        ("slirp4netns:bogus=1", "unknown option for slirp4netns"),
        ("slirp4netns:mtu=abc", "invalid mtu"),
    ];
    if have("pasta") {
        cases.push(("pasta:--bogus", "--bogus"));
    }
    for (mode, words) in cases {
        let out = b.run(&["run", "-d", "--network", mode, "bb", "true"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{mode}: {}", describe(&out));
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{mode}: one line: {stderr}"
        );
        assert!(stderr.contains(words), "{mode}: {stderr}");
        assert!(b.ids().is_empty(), "{mode}: a container was made");
        assert!(b.leftovers().is_empty(), "{mode}: {:#?}", b.leftovers());
    }
}
