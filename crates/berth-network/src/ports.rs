//! Published ports: the mapping type and a host-side availability check.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// One published port: host_ip:host_port/proto -> container_ip:container_port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    /// Host address to match (None: every local address of the container IP's family).
    pub host_ip: Option<IpAddr>,
    /// Host port.
    pub host_port: u16,
    /// Protocol.
    pub proto: Proto,
    /// The container's address (its family picks `dnat ip` or `dnat ip6`).
    pub container_ip: IpAddr,
    /// The container's port.
    pub container_port: u16,
}

/// Is host_ip:port/proto free on the host? Binds a socket and drops it; port 0 returns a
/// kernel-chosen ephemeral port. Without a host IP, 0.0.0.0 is checked.
pub fn reserve_check(host_ip: Option<IpAddr>, port: u16, proto: Proto) -> Result<u16, io::Error> {
    let addr = SocketAddr::new(host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), port);
    match proto {
        Proto::Tcp => TcpListener::bind(addr)?.local_addr().map(|a| a.port()),
        Proto::Udp => UdpSocket::bind(addr)?.local_addr().map(|a| a.port()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_check_finds_busy_ports() {
        let port = reserve_check(Some("127.0.0.1".parse().expect("ip")), 0, Proto::Tcp)
            .expect("free port");
        assert_ne!(port, 0);
        let busy = TcpListener::bind(("127.0.0.1", 0)).expect("bind");
        let taken = busy.local_addr().expect("addr").port();
        assert!(reserve_check(Some("127.0.0.1".parse().expect("ip")), taken, Proto::Tcp).is_err());
        assert!(reserve_check(None, 0, Proto::Udp).is_ok());
    }
}
