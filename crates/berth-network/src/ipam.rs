//! Pure address management: free addresses, default subnets, ULA prefixes, MACs.
//! No state: the engine stores allocations and passes them in.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::ipnet::{from_bits, to_bits, IpNet};

/// First free address of `subnet` within `range` (or the whole subnet) skipping the network
/// address, the broadcast (v4), the gateway and everything in `used`; `None` when full.
/// The scan starts just after `gateway` (when it is in range) and wraps around.
/// It looks at no more than `used.len() + 4` candidates, so it is fast for any size.
pub fn next_free(
    subnet: &IpNet,
    range: Option<&IpNet>,
    gateway: IpAddr,
    used: &HashSet<IpAddr>,
) -> Option<IpAddr> {
    let net = subnet.network();
    let (mut lo, mut hi) = (to_bits(net.addr), to_bits(net.last()));
    if let Some(r) = range {
        if r.is_v4() != subnet.is_v4() {
            return None;
        }
        lo = lo.max(to_bits(r.network().addr));
        hi = hi.min(to_bits(r.last()));
    }
    if lo > hi {
        return None;
    }
    let gw = to_bits(gateway);
    let start = if gateway.is_ipv4() == subnet.is_v4() && gw >= lo && gw < hi {
        gw + 1
    } else {
        lo
    };
    let size = hi - lo;
    // Many used addresses in a small range: one pass over `used` into a bitmap beats
    // hashing every candidate.
    let bitmap = (used.len() > 256 && size < BITMAP_MAX).then(|| used_bitmap(used, lo, hi));
    let skip = |bits: u128| {
        bits == to_bits(net.addr)
            || (subnet.is_v4() && bits == to_bits(net.last()))
            || bits == gw
            || match &bitmap {
                Some(map) => bit_set(map, bits - lo),
                None => used.contains(&from_bits(net.addr, bits)),
            }
    };
    let budget = (used.len() as u128 + 4).min(size.saturating_add(1));
    let mut bits = start;
    for _ in 0..budget {
        if !skip(bits) {
            return Some(from_bits(net.addr, bits));
        }
        bits = if bits >= hi { lo } else { bits + 1 };
    }
    None
}

/// Ranges up to this many addresses (a /12 for v4) may use a bitmap (128 KiB at most).
const BITMAP_MAX: u128 = 1 << 20;

/// One bit per address of lo..=hi, set for the used ones.
fn used_bitmap(used: &HashSet<IpAddr>, lo: u128, hi: u128) -> Vec<u64> {
    let mut map = vec![0u64; ((hi - lo) / 64 + 1) as usize];
    for ip in used {
        let bits = to_bits(*ip);
        if bits >= lo && bits <= hi {
            let off = (bits - lo) as usize;
            map[off / 64] |= 1 << (off % 64);
        }
    }
    map
}

fn bit_set(map: &[u64], off: u128) -> bool {
    let off = off as usize;
    map.get(off / 64)
        .is_some_and(|w| w & (1 << (off % 64)) != 0)
}

/// docker's default pools, in order: 172.18.0.0/16 .. 172.31.0.0/16, then 192.168.0.0/20 ..
/// 192.168.240.0/20 (172.17.0.0/16 is left to the default bridge).
fn default_pools() -> impl Iterator<Item = IpNet> {
    let b172 = (18..=31).map(|b| IpNet {
        addr: IpAddr::V4(Ipv4Addr::new(172, b, 0, 0)),
        prefix: 16,
    });
    let b192 = (0..16u8).map(|i| IpNet {
        addr: IpAddr::V4(Ipv4Addr::new(192, 168, i * 16, 0)),
        prefix: 20,
    });
    b172.chain(b192)
}

/// First subnet of docker's default pools that overlaps none of `taken`.
pub fn pick_subnet(taken: &[IpNet]) -> Option<IpNet> {
    default_pools().find(|pool| !taken.iter().any(|t| t.overlaps(pool)))
}

/// A ULA /64 (fdXX:XXXX:XXXX:XXXX::/64) derived from `seed` (a network id) by FNV-1a,
/// so the same network always gets the same prefix.
pub fn ula_subnet(seed: &str) -> IpNet {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in seed.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let prefix = (0xfd_u64 << 56) | (hash >> 8);
    IpNet {
        addr: IpAddr::V6(Ipv6Addr::from(u128::from(prefix) << 64)),
        prefix: 64,
    }
}

/// A locally administered unicast MAC: 02:42:a:b:c:d for a v4 address (as docker), random otherwise.
pub fn mac_for(ip: Option<Ipv4Addr>) -> [u8; 6] {
    if let Some(ip) = ip {
        let [a, b, c, d] = ip.octets();
        return [0x02, 0x42, a, b, c, d];
    }
    let mut mac = [0u8; 6];
    if getrandom::fill(&mut mac).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        mac.copy_from_slice(&nanos.to_le_bytes()[..6]);
    }
    mac[0] = (mac[0] & 0xfe) | 0x02;
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().expect("valid IpNet")
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().expect("valid ip")
    }

    #[test]
    fn next_free_skips_gateway_network_broadcast() {
        let subnet = net("10.9.0.0/30"); // .0 network, .1 gw, .2, .3 broadcast
        let mut used = HashSet::new();
        assert_eq!(
            next_free(&subnet, None, ip("10.9.0.1"), &used),
            Some(ip("10.9.0.2"))
        );
        used.insert(ip("10.9.0.2"));
        assert_eq!(next_free(&subnet, None, ip("10.9.0.1"), &used), None);
    }

    #[test]
    fn next_free_wraps_and_honours_range() {
        let subnet = net("10.9.0.0/24");
        let used: HashSet<_> = (2..=254).map(|i| ip(&format!("10.9.0.{i}"))).collect();
        assert_eq!(next_free(&subnet, None, ip("10.9.0.1"), &used), None);
        let used: HashSet<_> = [ip("10.9.0.130")].into();
        let range = net("10.9.0.128/25");
        assert_eq!(
            next_free(&subnet, Some(&range), ip("10.9.0.1"), &used),
            Some(ip("10.9.0.128"))
        );
        // gateway at the end: wraps to the start, skipping the network address
        assert_eq!(
            next_free(&subnet, None, ip("10.9.0.254"), &HashSet::new()),
            Some(ip("10.9.0.1"))
        );
    }

    #[test]
    fn next_free_v6() {
        let subnet = net("fd00:1::/64");
        let used: HashSet<_> = [ip("fd00:1::2")].into();
        assert_eq!(
            next_free(&subnet, None, ip("fd00:1::1"), &used),
            Some(ip("fd00:1::3"))
        );
    }

    #[test]
    fn next_free_slash16_with_60000_used_is_fast() {
        let subnet = net("172.20.0.0/16");
        let used: HashSet<IpAddr> = (2u32..60_002)
            .map(|i| IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(172, 20, 0, 0)) + i)))
            .collect();
        let t = std::time::Instant::now();
        let got = next_free(&subnet, None, ip("172.20.0.1"), &used);
        let took = t.elapsed();
        assert_eq!(
            got,
            Some(IpAddr::V4(Ipv4Addr::from(
                u32::from(Ipv4Addr::new(172, 20, 0, 0)) + 60_002
            )))
        );
        println!("next_free over 60000 used took {took:?}");
    }

    /// The obvious O(size) scan, to check the fast paths against.
    fn naive(
        subnet: &IpNet,
        range: Option<&IpNet>,
        gw: IpAddr,
        used: &HashSet<IpAddr>,
    ) -> Option<IpAddr> {
        let net = subnet.network();
        let r = range.copied().unwrap_or(net);
        let ok = |b: u128| {
            let ip = from_bits(net.addr, b);
            subnet.contains(ip)
                && r.contains(ip)
                && ip != net.addr
                && ip != net.last()
                && ip != gw
                && !used.contains(&ip)
        };
        let (lo, hi) = (to_bits(net.addr), to_bits(net.last()));
        let g = to_bits(gw);
        let after = (g.max(lo)..=hi).find(|&b| b > g && ok(b));
        after
            .or_else(|| (lo..=hi).find(|&b| ok(b)))
            .map(|b| from_bits(net.addr, b))
    }

    #[test]
    fn fast_paths_match_naive_scan() {
        let subnet = net("10.50.0.0/22");
        let mut seed: u32 = 12345;
        for round in 0..200u32 {
            let mut used = HashSet::new();
            let count = (round * 7) % 1100;
            for _ in 0..count {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                used.insert(from_bits(
                    subnet.addr,
                    to_bits(subnet.addr) + u128::from(seed >> 8) % 1024,
                ));
            }
            let gw = from_bits(subnet.addr, to_bits(subnet.addr) + u128::from(round % 1024));
            let range = net("10.50.1.0/23");
            assert_eq!(
                next_free(&subnet, None, gw, &used),
                naive(&subnet, None, gw, &used),
                "round {round}"
            );
            assert_eq!(
                next_free(&subnet, Some(&range), gw, &used),
                naive(&subnet, Some(&range), gw, &used),
                "round {round} range"
            );
        }
    }

    #[test]
    fn pick_subnet_skips_overlaps() {
        assert_eq!(pick_subnet(&[]), Some(net("172.18.0.0/16")));
        assert_eq!(
            pick_subnet(&[net("172.18.5.0/24"), net("172.19.0.0/16")]),
            Some(net("172.20.0.0/16"))
        );
        assert_eq!(
            pick_subnet(&[net("172.16.0.0/12")]),
            Some(net("192.168.0.0/20"))
        );
        assert_eq!(
            pick_subnet(&[net("172.16.0.0/12"), net("192.168.0.0/16")]),
            None
        );
    }

    #[test]
    fn ula_and_mac() {
        let a = ula_subnet("abc");
        assert_eq!(a, ula_subnet("abc"));
        assert_ne!(a, ula_subnet("abd"));
        assert!(a.to_string().starts_with("fd"));
        assert_eq!(a.prefix, 64);
        assert_eq!(a.network(), a);
        assert_eq!(
            mac_for(Some(Ipv4Addr::new(172, 18, 0, 2))),
            [2, 0x42, 172, 18, 0, 2]
        );
        let m = mac_for(None);
        assert_eq!(m[0] & 3, 2);
    }
}
