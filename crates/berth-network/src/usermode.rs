//! User-mode networking: pasta (from passt) or slirp4netns, a process of its own that gives a
//! pinned network namespace an interface backed by the host's ordinary sockets, and publishes
//! ports by listening on the host. What podman's `--network pasta[:OPTIONS]` and
//! `--network slirp4netns[:OPTIONS]` run, with podman's flags (checked against podman 4.3.1's
//! slirp4netns argv and podman 4.4's pasta code). No nftables rules, no veth.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use serde::{Deserialize, Serialize};

use crate::{IpNet, Proto};

/// The tap interface slirp4netns makes in the namespace (podman's name).
pub const SLIRP_TAP: &str = "tap0";

/// Errors of the user-mode helpers; each names the program and the step.
#[derive(Debug, thiserror::Error)]
pub enum UsermodeError {
    /// `--network pasta:...` / `slirp4netns:...` options are wrong.
    #[error("{0}")]
    Invalid(String),
    /// The program is not installed.
    #[error("could not find {program:?} in $PATH: --network {program} needs it installed")]
    Missing {
        /// `pasta` or `slirp4netns`.
        program: &'static str,
    },
    /// Spawning, waiting, reading.
    #[error("{program}: {step}: {source}")]
    Io {
        /// The program.
        program: &'static str,
        /// What was being done.
        step: &'static str,
        /// Why.
        source: io::Error,
    },
    /// The program refused or died.
    #[error("{program} failed: {message}")]
    Failed {
        /// The program.
        program: &'static str,
        /// Its own words.
        message: String,
    },
    /// slirp4netns's API refused a request.
    #[error("slirp4netns API {path}: {message}")]
    Api {
        /// The socket.
        path: PathBuf,
        /// The error it returned.
        message: String,
    },
}

/// `--network pasta[:OPTIONS]` or `--network slirp4netns[:OPTIONS]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserMode {
    /// pasta, with the user's extra pasta(1) options.
    Pasta(Vec<String>),
    /// slirp4netns with podman's options.
    Slirp(SlirpOptions),
}

/// podman's `slirp4netns:` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlirpOptions {
    /// `allow_host_loopback=true`: 10.0.2.2 reaches the host's 127.0.0.1.
    pub allow_host_loopback: bool,
    /// `cidr=10.0.2.0/24`.
    pub cidr: Option<IpNet>,
    /// `enable_ipv6=false` turns it off (on by default, as podman does).
    pub enable_ipv6: bool,
    /// `mtu=65520`.
    pub mtu: u32,
    /// `outbound_addr=IP|IFACE`.
    pub outbound_addr: Option<String>,
    /// `outbound_addr6=IP|IFACE`.
    pub outbound_addr6: Option<String>,
}

impl Default for SlirpOptions {
    fn default() -> SlirpOptions {
        SlirpOptions {
            allow_host_loopback: false,
            cidr: None,
            enable_ipv6: true,
            mtu: 65520,
            outbound_addr: None,
            outbound_addr6: None,
        }
    }
}

impl SlirpOptions {
    /// The container's address (`.100` of the CIDR, 10.0.2.100 by default).
    pub fn guest(&self) -> Ipv4Addr {
        self.nth(100)
    }

    /// slirp's DNS forwarder (`.3`).
    pub fn dns(&self) -> Ipv4Addr {
        self.nth(3)
    }

    /// slirp's gateway, the host (`.2`).
    pub fn gateway(&self) -> Ipv4Addr {
        self.nth(2)
    }

    fn nth(&self, n: u32) -> Ipv4Addr {
        let base = match self.cidr.map(|c| c.network().addr) {
            Some(IpAddr::V4(a)) => u32::from(a),
            _ => u32::from(Ipv4Addr::new(10, 0, 2, 0)),
        };
        Ipv4Addr::from(base + n)
    }
}

/// One published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    /// The host address; any when `None`.
    pub host_ip: Option<IpAddr>,
    /// The host port (chosen already).
    pub host_port: u16,
    /// The container's port.
    pub container_port: u16,
    /// TCP or UDP.
    pub proto: Proto,
}

/// A running helper, as recorded: enough to kill it later and never another process that
/// reuses its pid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Helper {
    /// `pasta` or `slirp4netns`.
    pub program: String,
    /// Its pid.
    pub pid: i32,
    /// Its start time (field 22 of /proc/PID/stat).
    pub start_time: u64,
}

/// Parse a `--network` value: `None` when it names neither pasta nor slirp4netns.
pub fn parse_mode(mode: &str) -> Option<Result<UserMode, UsermodeError>> {
    let (name, options) = match mode.split_once(':') {
        Some((name, options)) => (name, Some(options)),
        None => (mode, None),
    };
    let options: Vec<&str> = options
        .map(|o| o.split(',').filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    match name {
        "pasta" => Some(Ok(UserMode::Pasta(
            options.iter().map(|s| (*s).to_owned()).collect(),
        ))),
        "slirp4netns" => Some(parse_slirp(&options).map(UserMode::Slirp)),
        _ => None,
    }
}

/// podman's slirp4netns options and its wording for bad ones.
fn parse_slirp(options: &[&str]) -> Result<SlirpOptions, UsermodeError> {
    let mut out = SlirpOptions::default();
    let bad = |what: &str, v: &str| {
        UsermodeError::Invalid(format!("invalid value of {what} for slirp4netns: {v:?}"))
    };
    let boolean = |what: &str, v: &str| match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(bad(what, v)),
    };
    for option in options {
        let (key, value) = option.split_once('=').unwrap_or((option, ""));
        match key {
            "allow_host_loopback" => out.allow_host_loopback = boolean(key, value)?,
            "enable_ipv6" => out.enable_ipv6 = boolean(key, value)?,
            "cidr" => {
                let net: IpNet = value.parse().map_err(|_| bad(key, value))?;
                if !net.is_v4() || net.prefix > 25 {
                    return Err(bad(key, value));
                }
                out.cidr = Some(net);
            }
            "mtu" => {
                out.mtu = value
                    .parse()
                    .ok()
                    .filter(|m| (68..=65521).contains(m))
                    .ok_or_else(|| UsermodeError::Invalid(format!("invalid mtu {value:?}")))?;
            }
            "outbound_addr" if !value.is_empty() => out.outbound_addr = Some(value.to_owned()),
            "outbound_addr6" if !value.is_empty() => out.outbound_addr6 = Some(value.to_owned()),
            // Both handlers publish through slirp4netns's own API here.
            "port_handler" if matches!(value, "rootlessport" | "slirp4netns") => {}
            "port_handler" => return Err(bad(key, value)),
            _ => {
                return Err(UsermodeError::Invalid(format!(
                    "unknown option for slirp4netns: {option:?}"
                )))
            }
        }
    }
    Ok(out)
}

/// `program` on `$PATH`.
pub fn find(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn require(program: &'static str) -> Result<PathBuf, UsermodeError> {
    find(program).ok_or(UsermodeError::Missing { program })
}

/// Check that the program exists and, for pasta, that it accepts the user's options (it
/// parses them all before it opens the namespace, so a namespace that does not exist tells
/// good options from bad without starting anything).
pub fn check(mode: &UserMode) -> Result<(), UsermodeError> {
    let args = match mode {
        UserMode::Slirp(_) => return require("slirp4netns").map(drop),
        UserMode::Pasta(args) => args,
    };
    let pasta = require("pasta")?;
    // `--map-gw` is podman's, not pasta's.
    let args: Vec<&String> = args.iter().filter(|a| *a != "--map-gw").collect();
    if args.is_empty() {
        return Ok(());
    }
    let nowhere = "/proc/self/berth-no-such-netns";
    let out = Command::new(pasta)
        .args(["--runas", "0", "-f"])
        .args(&args)
        .args(["--netns", nowhere])
        .stdin(Stdio::null())
        .output()
        .map_err(|source| UsermodeError::Io {
            program: "pasta",
            step: "check options",
            source,
        })?;
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    if text.contains(&format!("Couldn't open network namespace {nowhere}")) {
        return Ok(());
    }
    Err(UsermodeError::Invalid(format!(
        "invalid --network pasta options {:?}: {}",
        args.iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>()
            .join(","),
        first_message(&text)
    )))
}

/// pasta's first line that says something (not its syslog noise or the usage text).
fn first_message(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .find(|l| {
            !l.is_empty()
                && !l.starts_with("Failed to send")
                && !l.starts_with("Don't run as root")
                && !l.starts_with("Usage:")
        })
        .unwrap_or("no reason given")
        .to_owned()
}

/// podman's pasta argv: the ports, the user's options, and `none` for every direction the
/// user left unset (pasta's default, `auto`, would follow whatever binds); `--no-map-gw`
/// unless `--map-gw` (podman's own option) is given.
pub fn pasta_args(
    user: &[String],
    forwards: &[Forward],
    netns: &Path,
    pid_file: &Path,
) -> Vec<String> {
    let mut args = vec!["--config-net".to_owned()];
    for f in forwards {
        args.push(if f.proto == Proto::Tcp { "-t" } else { "-u" }.to_owned());
        let addr = f.host_ip.map(|i| format!("{i}/")).unwrap_or_default();
        args.push(format!("{addr}{}:{}", f.host_port, f.container_port));
    }
    let mut map_gw = false;
    for a in user {
        if a == "--map-gw" {
            map_gw = true;
        } else {
            args.push(a.clone());
        }
    }
    for (short, long) in [
        ("-t", "--tcp-ports"),
        ("-u", "--udp-ports"),
        ("-T", "--tcp-ns"),
        ("-U", "--udp-ns"),
    ] {
        if !args.iter().any(|a| a == short || a == long) {
            args.extend([short.to_owned(), "none".to_owned()]);
        }
    }
    if !map_gw {
        args.push("--no-map-gw".to_owned());
    }
    if !user.iter().any(|a| a == "--runas") {
        // As uid 0 pasta would drop to `nobody`, who cannot enter the namespace.
        let (uid, gid) = (nix::unistd::geteuid(), nix::unistd::getegid());
        args.extend(["--runas".to_owned(), format!("{uid}:{gid}")]);
    }
    args.extend([
        "-P".to_owned(),
        pid_file.display().to_string(),
        "--netns".to_owned(),
        netns.display().to_string(),
    ]);
    args
}

/// Start pasta for `netns`: it configures the namespace, daemonizes (its own session, stdio
/// on /dev/null) and only then returns, so the interface and the ports are ready.
pub fn start_pasta(
    netns: &Path,
    user: &[String],
    forwards: &[Forward],
    pid_file: &Path,
) -> Result<Helper, UsermodeError> {
    let pasta = require("pasta")?;
    let io = |step| {
        move |source| UsermodeError::Io {
            program: "pasta",
            step,
            source,
        }
    };
    let _ = std::fs::remove_file(pid_file);
    let out = Command::new(pasta)
        .args(pasta_args(user, forwards, netns, pid_file))
        .stdin(Stdio::null())
        .output()
        .map_err(io("run"))?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        return Err(UsermodeError::Failed {
            program: "pasta",
            message: first_message(&text),
        });
    }
    let text = std::fs::read_to_string(pid_file).map_err(io("read its pid file"))?;
    let pid: i32 = text.trim().parse().map_err(|_| UsermodeError::Failed {
        program: "pasta",
        message: format!("bad pid file {}: {text:?}", pid_file.display()),
    })?;
    helper("pasta", pid)
}

fn helper(program: &'static str, pid: i32) -> Result<Helper, UsermodeError> {
    let start_time = start_time(pid).ok_or_else(|| UsermodeError::Failed {
        program,
        message: format!("process {pid} exited right after starting"),
    })?;
    Ok(Helper {
        program: program.to_owned(),
        pid,
        start_time,
    })
}

/// podman's slirp4netns argv (`-r` is the ready fd, here stdin: std's spawn cannot place
/// another fd, and slirp4netns never reads stdin).
pub fn slirp_args(opts: &SlirpOptions, netns: &Path, api_socket: &Path) -> Vec<String> {
    let mut args = Vec::new();
    if !opts.allow_host_loopback {
        args.push("--disable-host-loopback".to_owned());
    }
    args.push(format!("--mtu={}", opts.mtu));
    args.extend(["--enable-sandbox".to_owned(), "--enable-seccomp".to_owned()]);
    if opts.enable_ipv6 {
        args.push("--enable-ipv6".to_owned());
    }
    if let Some(c) = opts.cidr {
        args.push(format!("--cidr={c}"));
    }
    if let Some(a) = &opts.outbound_addr {
        args.push(format!("--outbound-addr={a}"));
    }
    if let Some(a) = &opts.outbound_addr6 {
        args.push(format!("--outbound-addr6={a}"));
    }
    args.extend(
        ["-c", "-r", "0", "--api-socket"]
            .iter()
            .map(|s| (*s).to_owned()),
    );
    args.push(api_socket.display().to_string());
    args.push("--netns-type=path".to_owned());
    args.push(netns.display().to_string());
    args.push(SLIRP_TAP.to_owned());
    args
}

/// Start slirp4netns for `netns` in a process group of its own, its output appended to
/// `log`; return once it has configured tap0 (its ready fd says `1`), or its log's last line.
pub fn start_slirp(
    netns: &Path,
    opts: &SlirpOptions,
    api_socket: &Path,
    log: &Path,
) -> Result<Helper, UsermodeError> {
    let slirp = require("slirp4netns")?;
    let io = |step| {
        move |source| UsermodeError::Io {
            program: "slirp4netns",
            step,
            source,
        }
    };
    let _ = std::fs::remove_file(api_socket);
    let logfile = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(io("open its log"))?;
    let (mut ready, writer) = std::io::pipe().map_err(io("pipe"))?;
    let mut child = Command::new(slirp)
        .args(slirp_args(opts, netns, api_socket))
        .stdin(writer)
        .stdout(logfile.try_clone().map_err(io("open its log"))?)
        .stderr(logfile)
        .process_group(0)
        .spawn()
        .map_err(io("spawn"))?;
    let pid = i32::try_from(child.id()).unwrap_or_default();
    let mut fds = [PollFd::new(ready.as_fd(), PollFlags::POLLIN)];
    let polled = poll(&mut fds, PollTimeout::from(10_000u16))
        .map_err(|e| io("wait until ready")(e.into()))?;
    let mut byte = [0u8; 1];
    let ok = polled > 0 && matches!(ready.read(&mut byte), Ok(1)) && byte[0] == b'1';
    if !ok {
        let _ = child.kill();
        let _ = child.wait();
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let last = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("exited before it was ready");
        return Err(UsermodeError::Failed {
            program: "slirp4netns",
            message: last.trim().to_owned(),
        });
    }
    helper("slirp4netns", pid)
}

/// Publish one port through slirp4netns's API socket (`add_hostfwd`).
pub fn slirp_add_hostfwd(api_socket: &Path, f: &Forward) -> Result<(), UsermodeError> {
    let api = |message: String| UsermodeError::Api {
        path: api_socket.to_path_buf(),
        message,
    };
    let host_addr = f.host_ip.map_or("0.0.0.0".to_owned(), |i| i.to_string());
    let request = serde_json::json!({
        "execute": "add_hostfwd",
        "arguments": {
            "proto": if f.proto == Proto::Tcp { "tcp" } else { "udp" },
            "host_addr": host_addr,
            "host_port": f.host_port,
            "guest_port": f.container_port,
        }
    });
    let mut s = UnixStream::connect(api_socket).map_err(|e| api(e.to_string()))?;
    s.write_all(request.to_string().as_bytes())
        .and_then(|()| s.shutdown(std::net::Shutdown::Write))
        .map_err(|e| api(e.to_string()))?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)
        .map_err(|e| api(e.to_string()))?;
    let v: serde_json::Value =
        serde_json::from_str(&reply).map_err(|e| api(format!("{e}: {reply:?}")))?;
    if let Some(e) = v.get("error") {
        let desc = e["desc"].as_str().unwrap_or("refused");
        return Err(api(format!(
            "publishing {host_addr}:{}/{}: {desc}",
            f.host_port,
            if f.proto == Proto::Tcp { "tcp" } else { "udp" }
        )));
    }
    Ok(())
}

/// Kill a recorded helper and wait (2 s at most) until it is gone; Ok if it already is.
pub fn stop(h: &Helper) -> Result<(), UsermodeError> {
    if start_time(h.pid) != Some(h.start_time) {
        return Ok(());
    }
    let program = if h.program == "pasta" {
        "pasta"
    } else {
        "slirp4netns"
    };
    let pidfd = match berth_sys::pidfd_open(h.pid) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(nix::libc::ESRCH) => return Ok(()),
        Err(source) => {
            return Err(UsermodeError::Io {
                program,
                step: "open a pidfd",
                source,
            })
        }
    };
    // The pidfd pins the process: checked again, the start time proves it is ours.
    if start_time(h.pid) != Some(h.start_time) {
        return Ok(());
    }
    berth_sys::pidfd_send_signal(pidfd.as_fd(), nix::libc::SIGKILL).map_err(|source| {
        UsermodeError::Io {
            program,
            step: "kill",
            source,
        }
    })?;
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    let _ = poll(&mut fds, PollTimeout::from(2_000u16));
    Ok(())
}

/// Kill every helper attached to `netns` (its command line names the pin), for a helper
/// whose pid was never recorded (a crash while it started); Ok when there is none.
pub fn stop_by_netns(netns: &Path) -> Result<(), UsermodeError> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Ok(());
    };
    let want = netns.as_os_str().as_encoded_bytes();
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let mut args = cmdline.split(|b| *b == 0);
        let program = args.next().unwrap_or_default();
        let name = program.rsplit(|b| *b == b'/').next().unwrap_or_default();
        let helper = match name {
            b"slirp4netns" => "slirp4netns",
            n if n.starts_with(b"pasta") || n.starts_with(b"passt") => "pasta",
            _ => continue,
        };
        if !args.any(|a| a == want) {
            continue;
        }
        if let Some(start_time) = start_time(pid) {
            stop(&Helper {
                program: helper.to_owned(),
                pid,
                start_time,
            })?;
        }
    }
    Ok(())
}

/// A live process's start time (a zombie or a missing pid has none).
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn podman_modes_and_options() {
        assert!(parse_mode("bridge").is_none());
        assert!(parse_mode("pastabridge").is_none());
        assert_eq!(
            parse_mode("pasta").unwrap().unwrap(),
            UserMode::Pasta(Vec::new())
        );
        assert_eq!(
            parse_mode("pasta:-I,eth7,--mtu,1500").unwrap().unwrap(),
            UserMode::Pasta(vec![
                "-I".into(),
                "eth7".into(),
                "--mtu".into(),
                "1500".into()
            ])
        );
        let UserMode::Slirp(s) = parse_mode("slirp4netns:allow_host_loopback=true,mtu=1500,cidr=10.5.0.0/24,port_handler=slirp4netns")
            .unwrap()
            .unwrap()
        else {
            panic!()
        };
        assert!(s.allow_host_loopback && s.enable_ipv6);
        assert_eq!(s.mtu, 1500);
        assert_eq!(s.guest(), Ipv4Addr::new(10, 5, 0, 100));
        assert_eq!(s.dns(), Ipv4Addr::new(10, 5, 0, 3));
        for bad in [
            "slirp4netns:bogus=1",
            "slirp4netns:mtu=abc",
            "slirp4netns:enable_ipv6=yes",
            "slirp4netns:cidr=fd00::/64",
            "slirp4netns:port_handler=x",
        ] {
            assert!(parse_mode(bad).unwrap().is_err(), "{bad}");
        }
    }

    #[test]
    fn argv_as_podman_builds_it() {
        let a = slirp_args(&SlirpOptions::default(), Path::new("/n"), Path::new("/s"));
        assert_eq!(
            a.join(" "),
            "--disable-host-loopback --mtu=65520 --enable-sandbox --enable-seccomp \
             --enable-ipv6 -c -r 0 --api-socket /s --netns-type=path /n tap0"
        );
        let f = Forward {
            host_ip: Some("127.0.0.1".parse().unwrap()),
            host_port: 8080,
            container_port: 80,
            proto: Proto::Udp,
        };
        let p = pasta_args(&[], &[f], Path::new("/n"), Path::new("/p")).join(" ");
        assert!(
            p.starts_with(
                "--config-net -u 127.0.0.1/8080:80 -t none -T none -U none --no-map-gw --runas "
            ),
            "{p}"
        );
        assert!(p.ends_with("-P /p --netns /n"), "{p}");
    }

    #[test]
    fn start_time_of_self_and_of_nobody() {
        assert!(start_time(std::process::id() as i32).is_some());
        assert!(start_time(-5).is_none());
    }
}
