//! `-p [ip:][hostPort:]containerPort[/tcp|udp]` and `-P`: parsing, choosing the host ports,
//! and the record docker's `port`, `ps` and `inspect` show.

use std::net::IpAddr;

use berth_network::Proto;
use serde::{Deserialize, Serialize};

use super::NetworkError;

/// One `-p` mapping as asked for (a range is several).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortSpec {
    /// The host address; any when `None`.
    pub host_ip: Option<IpAddr>,
    /// 0: an ephemeral port.
    pub host_port: u16,
    /// The container's port.
    pub container_port: u16,
    /// TCP or UDP.
    pub proto: Proto,
}

/// A published port, as docker's API shows it (`ports` in the record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedPort {
    /// The host address (`0.0.0.0` for any).
    #[serde(rename = "IP")]
    pub ip: String,
    /// The container's port.
    #[serde(rename = "PrivatePort")]
    pub private_port: u16,
    /// The host's port.
    #[serde(rename = "PublicPort")]
    pub public_port: u16,
    /// `tcp` or `udp`.
    #[serde(rename = "Type")]
    pub proto: String,
}

/// Parse one `-p` value (docker's syntax, ranges included).
pub fn parse_publish(text: &str) -> Result<Vec<PortSpec>, NetworkError> {
    let bad = |why: &str| NetworkError::Invalid(format!("invalid publish spec {text:?}: {why}"));
    let (rest, proto) = match text.rsplit_once('/') {
        Some((rest, "tcp")) => (rest, Proto::Tcp),
        Some((rest, "udp")) => (rest, Proto::Udp),
        Some((_, other)) => return Err(bad(&format!("unknown protocol {other:?}"))),
        None => (text, Proto::Tcp),
    };
    let (host_ip, rest) = split_ip(rest).map_err(|w| bad(&w))?;
    let (host, container) = match rest.rsplit_once(':') {
        Some((host, container)) => (host, container),
        None => ("", rest),
    };
    let container = port_range(container).map_err(|w| bad(&w))?;
    let host = match host {
        "" => None,
        h => Some(port_range(h).map_err(|w| bad(&w))?),
    };
    if container.0 == 0 {
        return Err(bad("the container port must not be 0"));
    }
    let count = container.1 - container.0 + 1;
    if let Some((lo, hi)) = host {
        if hi - lo + 1 != count && count != 1 {
            return Err(bad("the host and container port ranges differ in size"));
        }
    }
    Ok((0..count)
        .map(|i| PortSpec {
            host_ip,
            host_port: host.map_or(0, |(lo, _)| lo + i),
            container_port: container.0 + i,
            proto,
        })
        .collect())
}

/// `IP:` (or `[IPv6]:`) in front, if any.
fn split_ip(text: &str) -> Result<(Option<IpAddr>, &str), String> {
    if let Some(rest) = text.strip_prefix('[') {
        let (ip, rest) = rest.split_once("]:").ok_or("unclosed [")?;
        let ip = ip
            .parse()
            .map_err(|_| format!("invalid IP address {ip:?}"))?;
        return Ok((Some(ip), rest));
    }
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() == 3 {
        let ip = parts[0]
            .parse()
            .map_err(|_| format!("invalid IP address {:?}", parts[0]))?;
        let rest = &text[parts[0].len() + 1..];
        return Ok((Some(ip), rest));
    }
    if parts.len() > 3 {
        return Err("too many colons (write an IPv6 address in brackets)".to_owned());
    }
    Ok((None, text))
}

fn port_range(text: &str) -> Result<(u16, u16), String> {
    let number = |s: &str| {
        s.parse::<u16>()
            .map_err(|_| format!("invalid port {s:?}: it must be 1-65535"))
    };
    match text.split_once('-') {
        Some((lo, hi)) => {
            let (lo, hi) = (number(lo)?, number(hi)?);
            if hi < lo {
                return Err(format!("invalid port range {text}"));
            }
            Ok((lo, hi))
        }
        None => number(text).map(|p| (p, p)),
    }
}

/// `-P`: each exposed port (`80/tcp`) to an ephemeral host port.
pub fn publish_all(exposed: &[String]) -> Vec<PortSpec> {
    exposed
        .iter()
        .filter_map(|p| parse_publish(p).ok())
        .flatten()
        .collect()
}

/// `tcp` or `udp`.
pub fn proto_name(p: Proto) -> &'static str {
    match p {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn docker_publish_forms() {
        let one = |t: &str| parse_publish(t).unwrap();
        assert_eq!(one("80")[0].host_port, 0);
        assert_eq!(one("8080:80")[0].host_port, 8080);
        assert_eq!(one("8080:80/udp")[0].proto, Proto::Udp);
        let p = one("127.0.0.1:8080:80")[0];
        assert_eq!(p.host_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(p.container_port, 80);
        let p = one("127.0.0.1::80")[0];
        assert_eq!((p.host_port, p.container_port), (0, 80));
        let p = one("[::1]:8080:80")[0];
        assert_eq!(p.host_ip, Some("::1".parse().unwrap()));
        let r = one("8000-8002:80-82");
        assert_eq!(r.len(), 3);
        assert_eq!((r[2].host_port, r[2].container_port), (8002, 82));
        for bad in [
            "",
            "x",
            "80/sctp",
            "99999",
            "1:2:3:4",
            "8000-8001:80-82",
            "0",
        ] {
            assert!(parse_publish(bad).is_err(), "{bad}");
        }
    }
}
