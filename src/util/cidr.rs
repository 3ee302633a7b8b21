//! IP networks in CIDR notation (`10.0.0.0/8`, `fd00::/8`, or a bare address for one
//! host) and whether an address lies inside one. Pure; IPv4-mapped IPv6 addresses
//! (`::ffff:10.1.2.3`, what a dual-stack listener reports) match IPv4 networks.

use std::net::IpAddr;

/// One network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `ADDR/PREFIX` or a bare `ADDR` (one host).
    ///
    /// # Errors
    /// A sentence naming the fault: not an address, a prefix out of range, or host
    /// bits set below the prefix (`10.0.0.1/8`: did you mean `10.0.0.0/8`?).
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or network (like 10.0.0.0/8 or fd00::/8)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("{s:?}: the prefix length must be a number from 0 to {max}")),
            },
        };
        // An IPv4-mapped network (`::ffff:10.0.0.0/104`) is the IPv4 one.
        let (addr, prefix) = match addr {
            IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => {
                if prefix < 96 {
                    return Err(format!("{s:?}: an IPv4-mapped network needs a prefix of at least 96"));
                }
                (addr.to_canonical(), prefix - 96)
            }
            _ => (addr, prefix),
        };
        let net = Cidr { addr, prefix };
        let masked = net.network();
        if masked != addr {
            return Err(format!("{s:?} has bits set after the first {prefix}; did you mean {masked}/{prefix}?"));
        }
        Ok(net)
    }

    fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => IpAddr::V4((u32::from(a) & mask32(self.prefix)).into()),
            IpAddr::V6(a) => IpAddr::V6((u128::from(a) & mask128(self.prefix)).into()),
        }
    }

    /// Whether `ip` lies in the network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => u32::from(ip) & mask32(self.prefix) == u32::from(net),
            (IpAddr::V6(net), IpAddr::V6(ip)) => u128::from(ip) & mask128(self.prefix) == u128::from(net),
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

/// Whether `ip` lies in any of `nets`.
pub fn any_contains(nets: &[Cidr], ip: IpAddr) -> bool {
    nets.iter().any(|n| n.contains(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv4() {
        let n = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(n.contains(ip("10.0.0.0")));
        assert!(n.contains(ip("10.255.255.255")));
        assert!(!n.contains(ip("11.0.0.0")));
        assert!(!n.contains(ip("9.255.255.255")));
        assert!(n.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped IPv6");
        assert!(!n.contains(ip("::1")));
        let host = Cidr::parse("192.168.1.7").unwrap();
        assert_eq!(host.to_string(), "192.168.1.7/32");
        assert!(host.contains(ip("192.168.1.7")));
        assert!(!host.contains(ip("192.168.1.8")));
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("1.2.3.4")));
        assert!(!all.contains(ip("::2")), "an IPv4 network never holds IPv6 addresses");
        assert!(Cidr::parse("172.16.0.0/12").unwrap().contains(ip("172.31.255.1")));
        assert!(!Cidr::parse("172.16.0.0/12").unwrap().contains(ip("172.32.0.1")));
    }

    #[test]
    fn ipv6() {
        let n = Cidr::parse("fd00::/8").unwrap();
        assert!(n.contains(ip("fd12:3456::1")));
        assert!(!n.contains(ip("fe80::1")));
        assert!(!n.contains(ip("10.0.0.1")));
        let one = Cidr::parse("[::1]").unwrap();
        assert_eq!(one.to_string(), "::1/128");
        assert!(one.contains(ip("::1")));
        assert!(!one.contains(ip("::2")));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("2001:db8::1")));
        assert!(Cidr::parse("2001:db8::/32").unwrap().contains(ip("2001:db8:ffff::1")));
        assert!(!Cidr::parse("2001:db8::/32").unwrap().contains(ip("2001:db9::1")));
        // A mapped network is an IPv4 one.
        assert_eq!(Cidr::parse("::ffff:10.0.0.0/104"), Cidr::parse("10.0.0.0/8"));
        assert_eq!(
            Cidr::parse("::ffff:10.0.0.0/8"),
            Err("\"::ffff:10.0.0.0/8\": an IPv4-mapped network needs a prefix of at least 96".into())
        );
    }

    #[test]
    fn bad_networks_are_explained() {
        assert_eq!(
            Cidr::parse("10.0.0.1/8").unwrap_err(),
            "\"10.0.0.1/8\" has bits set after the first 8; did you mean 10.0.0.0/8?"
        );
        assert_eq!(
            Cidr::parse("10.0.0.0/33").unwrap_err(),
            "\"10.0.0.0/33\": the prefix length must be a number from 0 to 32"
        );
        assert_eq!(
            Cidr::parse("fd00::/129").unwrap_err(),
            "\"fd00::/129\": the prefix length must be a number from 0 to 128"
        );
        assert_eq!(
            Cidr::parse("lb.example").unwrap_err(),
            "\"lb.example\" is not an IP address or network (like 10.0.0.0/8 or fd00::/8)"
        );
        assert!(Cidr::parse("10.0.0.0/x").is_err());
        assert!(any_contains(&[Cidr::parse("10.0.0.0/8").unwrap(), Cidr::parse("::1").unwrap()], ip("::1")));
        assert!(!any_contains(&[], ip("::1")));
    }
}
