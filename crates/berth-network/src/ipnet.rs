//! `IpNet`: an address with a prefix length ("10.1.2.3/24", "fd00::1/64").

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Why a string is not an `IpNet`.
#[derive(Debug, thiserror::Error)]
pub enum IpNetError {
    /// No '/' in the text.
    #[error("{text:?}: expected ADDRESS/PREFIX")]
    NoPrefix {
        /// The text given.
        text: String,
    },
    /// The address part does not parse.
    #[error("{text:?}: bad address")]
    Address {
        /// The text given.
        text: String,
        /// The parser's error.
        #[source]
        source: std::net::AddrParseError,
    },
    /// The prefix is not a number within 0..=32 (v4) or 0..=128 (v6).
    #[error("{text:?}: bad prefix length")]
    Prefix {
        /// The text given.
        text: String,
    },
}

/// An IP address with a prefix length. The address may have host bits set
/// (a gateway or container address "with the subnet prefix").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    /// The address (host bits may be set).
    pub addr: IpAddr,
    /// The prefix length.
    pub prefix: u8,
}

impl IpNet {
    /// An `IpNet`, or `None` if the prefix is too long for the family.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<IpNet> {
        (prefix <= max_prefix(addr)).then_some(IpNet { addr, prefix })
    }

    /// True for IPv4.
    pub fn is_v4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// The network: this prefix with the host bits cleared.
    pub fn network(&self) -> IpNet {
        IpNet {
            addr: from_bits(self.addr, to_bits(self.addr) & self.mask()),
            prefix: self.prefix,
        }
    }

    /// The last address of the network (the v4 broadcast address).
    pub fn last(&self) -> IpAddr {
        from_bits(
            self.addr,
            to_bits(self.addr) | (!self.mask() & family_mask(self.addr)),
        )
    }

    /// Does this network contain `ip` (same family, same prefix bits)?
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.is_v4()
            && to_bits(ip) & self.mask() == to_bits(self.addr) & self.mask()
    }

    /// Do the two networks share any address?
    pub fn overlaps(&self, other: &IpNet) -> bool {
        if self.is_v4() != other.is_v4() {
            return false;
        }
        let shorter = if self.prefix <= other.prefix {
            self
        } else {
            other
        };
        let longer = if self.prefix <= other.prefix {
            other
        } else {
            self
        };
        shorter.contains(longer.addr)
    }

    /// The netmask as bits, aligned like `to_bits`.
    pub(crate) fn mask(&self) -> u128 {
        let host_bits = u32::from(max_prefix(self.addr) - self.prefix.min(max_prefix(self.addr)));
        family_mask(self.addr) & !(u128::MAX.checked_shl(host_bits).map_or(u128::MAX, |m| !m))
    }
}

/// 32 for v4, 128 for v6.
pub(crate) fn max_prefix(ip: IpAddr) -> u8 {
    if ip.is_ipv4() {
        32
    } else {
        128
    }
}

fn family_mask(ip: IpAddr) -> u128 {
    if ip.is_ipv4() {
        u128::from(u32::MAX)
    } else {
        u128::MAX
    }
}

/// The address as an integer (v4 in the low 32 bits).
pub(crate) fn to_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// An address of the same family as `like` from an integer.
pub(crate) fn from_bits(like: IpAddr, bits: u128) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from((bits & u128::from(u32::MAX)) as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(bits)),
    }
}

impl FromStr for IpNet {
    type Err = IpNetError;

    fn from_str(text: &str) -> Result<IpNet, IpNetError> {
        let (addr, prefix) = text
            .split_once('/')
            .ok_or_else(|| IpNetError::NoPrefix { text: text.into() })?;
        let addr: IpAddr = addr.parse().map_err(|source| IpNetError::Address {
            text: text.into(),
            source,
        })?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| IpNetError::Prefix { text: text.into() })?;
        IpNet::new(addr, prefix).ok_or_else(|| IpNetError::Prefix { text: text.into() })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().expect("valid IpNet")
    }

    #[test]
    fn parse_display_network() {
        let n = net("10.1.2.3/24");
        assert_eq!(n.to_string(), "10.1.2.3/24");
        assert_eq!(n.network().to_string(), "10.1.2.0/24");
        assert_eq!(n.last().to_string(), "10.1.2.255");
        assert_eq!(net("fd00::5/64").network().to_string(), "fd00::/64");
        assert_eq!(net("0.0.0.0/0").network().to_string(), "0.0.0.0/0");
        assert_eq!(
            net("::/0").last().to_string(),
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
        );
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
        assert!("10.0.0.0".parse::<IpNet>().is_err());
    }

    #[test]
    fn contains_and_overlaps() {
        assert!(net("172.18.0.0/16").contains("172.18.255.1".parse().expect("ip")));
        assert!(!net("172.18.0.0/16").contains("172.19.0.1".parse().expect("ip")));
        assert!(net("10.0.0.0/8").overlaps(&net("10.2.0.0/16")));
        assert!(net("10.2.0.0/16").overlaps(&net("10.0.0.0/8")));
        assert!(!net("10.2.0.0/16").overlaps(&net("10.3.0.0/16")));
        assert!(!net("10.2.0.0/16").overlaps(&net("fd00::/8")));
        assert!(net("0.0.0.0/0").overlaps(&net("1.2.3.4/32")));
    }
}
