//! Addresses on the container network: the host's subnet, the address a
//! new container leases, the names of its namespace and veth, and the
//! link-layer address that goes with an IPv4 address.
//!
//! A link-layer address follows from the IPv4 address (as Docker does):
//! an address leased again after its container went keeps its MAC, so
//! the host's neighbour cache, which may still hold the entry of the
//! container that had it, stays right. With a random MAC per container
//! the host sent to the old one, and a container that took a freed
//! address was unreachable from its host for up to a minute.

use std::net::Ipv4Addr;

use sha2::{Digest, Sha256};

/// A subnet that is not an IPv4 /16 to /28.
#[derive(Debug, thiserror::Error)]
#[error("invalid container subnet {0:?}: expected an IPv4 /16 to /28 such as 10.89.0.0/24")]
pub struct BadSubnet(pub String);

/// An IPv4 subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub base: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub fn parse(s: &str) -> Result<Subnet, BadSubnet> {
        let bad = || BadSubnet(s.to_string());
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if !(16..=28).contains(&prefix) {
            return Err(bad());
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Subnet {
            base: Ipv4Addr::from(u32::from(addr) & mask),
            prefix,
        })
    }

    /// The bridge's own address: the first in the subnet.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) + 1)
    }

    fn size(&self) -> u32 {
        1 << (32 - self.prefix)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX << (32 - self.prefix);
        u32::from(ip) & mask == u32::from(self.base)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

/// The lowest address of `subnet` that is neither the network, the
/// gateway, the broadcast address nor in `used`.
pub fn next_free(subnet: Subnet, used: &[Ipv4Addr]) -> Option<Ipv4Addr> {
    let base = u32::from(subnet.base);
    (2..subnet.size() - 1)
        .map(|off| Ipv4Addr::from(base + off))
        .find(|ip| !used.contains(ip))
}

/// The first `10.89.N.0/24`, trying N from `first` round to `first - 1`,
/// that none of `taken` (addresses on this machine's interfaces) falls in.
/// Hosts sharing a machine start from different `first`s, so two starting
/// at once rarely pick the same.
pub fn pick_subnet(taken: &[Ipv4Addr], first: u8) -> Option<Subnet> {
    (0..=255u8)
        .map(|i| i.wrapping_add(first))
        .map(|n| Subnet {
            base: Ipv4Addr::new(10, 89, n, 0),
            prefix: 24,
        })
        .find(|s| !taken.iter().any(|ip| s.contains(*ip)))
}

/// Network names for one instance: its namespace and the host end of its
/// veth (interface names are limited to 15 bytes, so a hash).
pub fn names(instance: &str) -> (String, String) {
    let hash = hex8(instance);
    (format!("atoll-{instance}"), format!("av{hash}"))
}

pub(super) fn hex8(s: &str) -> String {
    let d = Sha256::digest(s.as_bytes());
    d.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// The link-layer address of `ip` on the container network: locally
/// administered, unicast, the IPv4 address in its last four bytes.
pub fn mac_for(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    format!("02:42:{a:02x}:{b:02x}:{c:02x}:{d:02x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_parse_and_normalize() {
        let s = Subnet::parse("10.89.3.7/24").unwrap();
        assert_eq!(s.to_string(), "10.89.3.0/24");
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 89, 3, 1));
        assert!(Subnet::parse("10.0.0.0/8").is_err());
        assert!(Subnet::parse("10.0.0.0").is_err());
        assert!(Subnet::parse("nope/24").is_err());
    }

    #[test]
    fn addresses_skip_network_gateway_broadcast_and_used() {
        let s = Subnet::parse("10.89.0.0/28").unwrap();
        assert_eq!(next_free(s, &[]), Some(Ipv4Addr::new(10, 89, 0, 2)));
        let used: Vec<Ipv4Addr> = (2..15).map(|i| Ipv4Addr::new(10, 89, 0, i)).collect();
        assert_eq!(next_free(s, &used), None, ".15 is the broadcast address");
        assert_eq!(next_free(s, &used[1..]), Some(Ipv4Addr::new(10, 89, 0, 2)));
    }

    #[test]
    fn the_picked_subnet_avoids_addresses_in_use() {
        let taken = [Ipv4Addr::new(10, 89, 0, 1), Ipv4Addr::new(10, 89, 1, 9)];
        assert_eq!(pick_subnet(&taken, 0).unwrap().to_string(), "10.89.2.0/24");
        assert_eq!(
            pick_subnet(&taken, 255).unwrap().to_string(),
            "10.89.255.0/24"
        );
        assert_eq!(pick_subnet(&taken, 1).unwrap().to_string(), "10.89.2.0/24");
    }

    #[test]
    fn interface_names_fit_the_kernel_limit() {
        let (ns, veth) = names("a-very-long-app-name-with-service-abcdef");
        assert!(veth.len() <= 15, "{veth}");
        assert!(ns.starts_with("atoll-"));
        assert_ne!(names("a").1, names("b").1);
    }

    #[test]
    fn a_link_layer_address_follows_from_the_ip_address() {
        assert_eq!(mac_for(Ipv4Addr::new(10, 89, 3, 2)), "02:42:0a:59:03:02");
        assert_ne!(
            mac_for(Ipv4Addr::new(10, 89, 3, 2)),
            mac_for(Ipv4Addr::new(10, 89, 3, 3))
        );
    }
}
