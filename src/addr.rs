//! The addresses a run gives its links. Only these, link-local IPv6 and
//! multicast are ever packet destinations or assigned addresses.

use crate::world::LinkId;

/// 198.18.0.0/16 (inside the benchmarking block 198.18.0.0/15), one /28 per
/// link: 198.18.(id / 16).((id % 16) * 16 + 1).
pub fn v4(id: LinkId) -> [u8; 4] {
    [198, 18, (id >> 4) as u8, (((id & 15) << 4) | 1) as u8]
}

/// fd00:6966:7374:<id>::1/64 ("ifst" in the ULA range fd00::/8).
pub fn v6(id: LinkId) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..6].copy_from_slice(&[0xfd, 0x00, 0x69, 0x66, 0x73, 0x74]);
    a[6..8].copy_from_slice(&id.to_be_bytes());
    a[15] = 1;
    a
}

/// The other host of a link's /28: the destination of send-tcp4. Nothing
/// holds it, so the SYN waits on ARP out of the link and never leaves the
/// run's own links and stacks.
pub fn v4_neighbour(id: LinkId) -> [u8; 4] {
    let mut a = v4(id);
    a[3] += 1;
    a
}

/// fd00:6966:7374:<id>::2, the destination of send-tcp6 (waits on ND).
pub fn v6_neighbour(id: LinkId) -> [u8; 16] {
    let mut a = v6(id);
    a[15] = 2;
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn addresses_stay_in_the_allowed_ranges_and_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for id in 0..4096u16 {
            let a = Ipv4Addr::from(v4(id));
            assert_eq!(a.octets()[..2], [198, 18]);
            assert!(seen.insert(a));
            let b = Ipv6Addr::from(v6(id));
            assert_eq!(b.segments()[0] & 0xff00, 0xfd00);
        }
        assert_eq!(Ipv4Addr::from(v4(17)), Ipv4Addr::new(198, 18, 1, 17));
        // The TCP destinations share the link's subnet and are nobody's.
        for id in 0..4096u16 {
            let (a, n) = (v4(id), v4_neighbour(id));
            assert_eq!((&a[..3], a[3] & 0xf0), (&n[..3], n[3] & 0xf0));
            assert_ne!(a, n);
            let (b, m) = (v6(id), v6_neighbour(id));
            assert_eq!(b[..8], m[..8]);
            assert_ne!(b, m);
        }
        assert_eq!(
            Ipv6Addr::from(v6(3)),
            "fd00:6966:7374:3::1".parse::<Ipv6Addr>().unwrap()
        );
    }
}
