//! Each container's `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname`: files in its
//! bundle, bind-mounted by the runtime. `hosts` is rewritten in place (the mount holds the
//! inode) whenever a container on the same user-defined network starts or stops: that is how
//! containers find each other by name without a DNS daemon.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;

use super::NetworkError;

/// A line of `/etc/hosts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostsEntry {
    /// The address.
    pub ip: IpAddr,
    /// Its names.
    pub names: Vec<String>,
}

const LOCALHOST: &str = "127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
";

/// docker's fallback when the host's resolvers are all on its loopback.
const FALLBACK_DNS: &[&str] = &["8.8.8.8", "8.8.4.4"];

/// `--add-host NAME:IP` (or `NAME=IP`); `host-gateway` is `gateway`.
pub fn parse_add_host(text: &str, gateway: Option<IpAddr>) -> Result<HostsEntry, NetworkError> {
    let bad = |why: &str| NetworkError::Invalid(format!("invalid --add-host {text:?}: {why}"));
    let (name, ip) = text
        .split_once('=')
        .or_else(|| text.split_once(':'))
        .ok_or_else(|| bad("expected NAME:IP"))?;
    if name.is_empty() {
        return Err(bad("the name is empty"));
    }
    let ip = match ip.trim_matches(['[', ']']) {
        "host-gateway" => gateway.ok_or_else(|| bad("no gateway on this container's network"))?,
        ip => ip.parse().map_err(|_| bad("not an IP address"))?,
    };
    Ok(HostsEntry {
        ip,
        names: vec![name.to_owned()],
    })
}

/// `/etc/hosts`: localhost, the container's own addresses, `--add-host`, then its peers.
pub fn hosts_text(own: &[HostsEntry], extra: &[HostsEntry], peers: &[HostsEntry]) -> String {
    let mut text = LOCALHOST.to_owned();
    text.push_str(&entry_lines(extra.iter().chain(own).chain(peers)));
    text
}

/// `IP<tab>NAMES` lines; anything that is not a host name is left out (a second guard: the
/// flags are checked at create), and entries left without a name.
pub fn entry_lines<'a>(entries: impl Iterator<Item = &'a HostsEntry>) -> String {
    entries
        .filter_map(|e| {
            let names: Vec<&str> = e
                .names
                .iter()
                .map(String::as_str)
                .filter(|n| is_host_name(n))
                .collect();
            (!names.is_empty()).then(|| format!("{}\t{}\n", e.ip, names.join(" ")))
        })
        .collect()
}

/// `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most 253 bytes.
pub fn is_host_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 253
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// `/etc/resolv.conf` from the host's, with `--dns`, `--dns-search` and `--dns-option`
/// replacing its lines. Resolvers on the host's loopback cannot be reached from another
/// network namespace: they are dropped (docker's rule), and Google's used if none is left.
pub fn resolv_text(
    host: &str,
    (dns, search, options): (&[String], &[String], &[String]),
    own_netns: bool,
) -> String {
    let lines = |key: &str| -> Vec<String> {
        host.lines()
            .filter_map(|l| l.trim().strip_prefix(key))
            .filter(|l| l.starts_with([' ', '\t']))
            .map(|l| l.trim().to_owned())
            .collect()
    };
    let mut servers = if dns.is_empty() {
        lines("nameserver")
    } else {
        dns.to_vec()
    };
    if own_netns && dns.is_empty() {
        servers.retain(|s| !is_loopback(s));
        if servers.is_empty() {
            servers = FALLBACK_DNS.iter().map(|s| (*s).to_owned()).collect();
        }
    }
    let search = if search.is_empty() {
        lines("search")
    } else {
        vec![search.join(" ")]
    };
    let options = if options.is_empty() {
        lines("options")
    } else {
        vec![options.join(" ")]
    };
    let mut text = String::new();
    for s in search.iter().filter(|s| !s.is_empty() && *s != ".") {
        text.push_str(&format!("search {s}\n"));
    }
    for s in servers {
        text.push_str(&format!("nameserver {s}\n"));
    }
    for o in options {
        text.push_str(&format!("options {o}\n"));
    }
    text
}

fn is_loopback(server: &str) -> bool {
    server.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Replace `path`'s content without replacing the file: a bind mount of it sees the change.
pub fn write_in_place(path: &Path, text: &str) -> Result<(), NetworkError> {
    let io = |step| {
        move |source| NetworkError::Io {
            step,
            path: path.to_path_buf(),
            source,
        }
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(io("write"))?;
    file.write_all(text.as_bytes()).map_err(io("write"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn resolv_drops_loopback_resolvers_and_takes_flags() {
        let host = "nameserver 127.0.0.53\nsearch lan\noptions edns0\n";
        let t = resolv_text(host, (&[], &[], &[]), true);
        assert_eq!(
            t,
            "search lan\nnameserver 8.8.8.8\nnameserver 8.8.4.4\noptions edns0\n"
        );
        assert!(resolv_text(host, (&[], &[], &[]), false).contains("127.0.0.53"));
        let t = resolv_text(
            host,
            (
                &["1.2.3.4".into()],
                &["example.com".into()],
                &["ndots:2".into()],
            ),
            true,
        );
        assert_eq!(
            t,
            "search example.com\nnameserver 1.2.3.4\noptions ndots:2\n"
        );
    }

    #[test]
    fn add_host_forms() {
        let e = parse_add_host("foo:5.6.7.8", None).unwrap();
        assert_eq!(e.ip.to_string(), "5.6.7.8");
        assert_eq!(
            parse_add_host("v6:[::1]", None).unwrap().ip.to_string(),
            "::1"
        );
        let gw = Some("10.0.0.1".parse().unwrap());
        assert_eq!(
            parse_add_host("h=host-gateway", gw).unwrap().ip.to_string(),
            "10.0.0.1"
        );
        assert!(parse_add_host("foo", None).is_err());
        assert!(parse_add_host("foo:bar", None).is_err());
    }
}
