//! Address classes: which IPv4 and IPv6 addresses an outbound call may
//! reach. Everything not globally routable is refused — loopback, private,
//! link-local, CGNAT, unique-local, multicast, broadcast, unspecified,
//! reserved, documentation and benchmark ranges, cloud metadata addresses —
//! and IPv6 forms that embed an IPv4 address (IPv4-mapped, NAT64
//! `64:ff9b::/96`, 6to4 `2002::/16`) are judged by the address they embed.
//! IPv6 outside global unicast `2000::/3` is refused as a whole, so new
//! special ranges there are refused by default.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is refused: a stable rule and what the address is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocked {
    /// `addr.loopback`, `addr.private`, `addr.metadata`, ...
    pub rule: &'static str,
    /// "a loopback address", for messages.
    pub what: &'static str,
}

const fn b(rule: &'static str, what: &'static str) -> Blocked {
    Blocked { rule, what }
}

/// Cloud metadata and similar host-local services on otherwise special
/// (or, for Azure's wire server, public) addresses. Checked first so the
/// rule names the danger.
const METADATA_V4: &[(Ipv4Addr, &str)] = &[
    (
        Ipv4Addr::new(169, 254, 169, 254),
        "AWS/GCP/Azure/OCI instance metadata",
    ),
    (Ipv4Addr::new(169, 254, 170, 2), "AWS ECS task metadata"),
    (Ipv4Addr::new(100, 100, 100, 200), "Alibaba Cloud metadata"),
    (Ipv4Addr::new(168, 63, 129, 16), "Azure wire server"),
];

const METADATA_V6: &[Ipv6Addr] = &[
    // AWS instance metadata over IPv6.
    Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254),
];

/// IPv4 ranges refused, most specific first where they overlap.
const V4_RANGES: &[([u8; 4], u8, Blocked)] = &[
    (
        [255, 255, 255, 255],
        32,
        b("addr.broadcast", "the broadcast address"),
    ),
    (
        [0, 0, 0, 0],
        8,
        b("addr.unspecified", "a \"this network\" address"),
    ),
    ([10, 0, 0, 0], 8, b("addr.private", "a private address")),
    (
        [100, 64, 0, 0],
        10,
        b("addr.cgnat", "a carrier-grade NAT address"),
    ),
    ([127, 0, 0, 0], 8, b("addr.loopback", "a loopback address")),
    (
        [169, 254, 0, 0],
        16,
        b("addr.link_local", "a link-local address"),
    ),
    ([172, 16, 0, 0], 12, b("addr.private", "a private address")),
    (
        [192, 0, 0, 0],
        24,
        b("addr.reserved", "an IETF protocol address"),
    ),
    (
        [192, 0, 2, 0],
        24,
        b("addr.documentation", "a documentation address"),
    ),
    (
        [192, 31, 196, 0],
        24,
        b("addr.reserved", "an AS112 address"),
    ),
    ([192, 52, 193, 0], 24, b("addr.reserved", "an AMT address")),
    (
        [192, 88, 99, 0],
        24,
        b("addr.reserved", "a 6to4 relay address"),
    ),
    ([192, 168, 0, 0], 16, b("addr.private", "a private address")),
    (
        [192, 175, 48, 0],
        24,
        b("addr.reserved", "an AS112 address"),
    ),
    (
        [198, 18, 0, 0],
        15,
        b("addr.benchmark", "a benchmarking address"),
    ),
    (
        [198, 51, 100, 0],
        24,
        b("addr.documentation", "a documentation address"),
    ),
    (
        [203, 0, 113, 0],
        24,
        b("addr.documentation", "a documentation address"),
    ),
    (
        [224, 0, 0, 0],
        4,
        b("addr.multicast", "a multicast address"),
    ),
    ([240, 0, 0, 0], 4, b("addr.reserved", "a reserved address")),
];

fn v4_in(ip: Ipv4Addr, net: [u8; 4], prefix: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn v6_in(ip: Ipv6Addr, net: Ipv6Addr, prefix: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    u128::from(ip) & mask == u128::from(net) & mask
}

/// Classify an IPv4 address: `Ok` when public.
pub fn classify_v4(ip: Ipv4Addr) -> Result<(), Blocked> {
    if METADATA_V4.iter().any(|(m, _)| *m == ip) {
        return Err(b("addr.metadata", "a cloud metadata address"));
    }
    match V4_RANGES.iter().find(|(net, p, _)| v4_in(ip, *net, *p)) {
        Some((_, _, blocked)) => Err(*blocked),
        None => Ok(()),
    }
}

/// The IPv4 address an IPv6 address carries where the network would route
/// it to that IPv4 host: IPv4-mapped `::ffff:0:0/96`, SIIT
/// `::ffff:0:0:0/96`, NAT64 `64:ff9b::/96` and 6to4 `2002::/16`.
pub fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let o = ip.octets();
    let low = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    if s[..4] == [0, 0, 0, 0] && s[4] == 0xffff && s[5] == 0 {
        return Some(low);
    }
    if v6_in(ip, Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96) {
        return Some(low);
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    None
}

/// Classify an IPv6 address: `Ok` when public.
pub fn classify_v6(ip: Ipv6Addr) -> Result<(), Blocked> {
    if METADATA_V6.contains(&ip) {
        return Err(b("addr.metadata", "a cloud metadata address"));
    }
    if ip.is_unspecified() {
        return Err(b("addr.unspecified", "the unspecified address"));
    }
    if ip.is_loopback() {
        return Err(b("addr.loopback", "a loopback address"));
    }
    if let Some(v4) = embedded_v4(ip) {
        return classify_v4(v4);
    }
    let ranges: &[(Ipv6Addr, u8, Blocked)] = &[
        (
            Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0),
            96,
            b("addr.reserved", "an IPv4-compatible address (deprecated)"),
        ),
        (
            Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0),
            48,
            b("addr.reserved", "a local-use NAT64 address"),
        ),
        (
            Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0),
            64,
            b("addr.reserved", "a discard-only address"),
        ),
        (
            Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0),
            32,
            b("addr.teredo", "a Teredo tunnel address"),
        ),
        (
            Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0),
            23,
            b("addr.reserved", "an IETF protocol address"),
        ),
        (
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
            32,
            b("addr.documentation", "a documentation address"),
        ),
        (
            Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0),
            20,
            b("addr.documentation", "a documentation address"),
        ),
        (
            Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0),
            7,
            b("addr.unique_local", "a unique-local address"),
        ),
        (
            Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0),
            10,
            b("addr.link_local", "a link-local address"),
        ),
        (
            Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0),
            10,
            b("addr.reserved", "a site-local address (deprecated)"),
        ),
        (
            Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0),
            8,
            b("addr.multicast", "a multicast address"),
        ),
    ];
    if let Some((_, _, blocked)) = ranges.iter().find(|(net, p, _)| v6_in(ip, *net, *p)) {
        return Err(*blocked);
    }
    if !v6_in(ip, Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3) {
        return Err(b("addr.reserved", "an address outside global unicast"));
    }
    Ok(())
}

/// Classify an address: `Ok` when public.
pub fn classify_ip(ip: IpAddr) -> Result<(), Blocked> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// Whether an address is public (globally routable and not a metadata
/// service).
pub fn is_public(ip: IpAddr) -> bool {
    classify_ip(ip).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> Option<&'static str> {
        let ip: IpAddr = s.parse().unwrap();
        classify_ip(ip).err().map(|b| b.rule)
    }

    #[test]
    fn refused_v4() {
        for (ip, want) in [
            ("0.0.0.0", "addr.unspecified"),
            ("0.1.2.3", "addr.unspecified"),
            ("10.0.0.1", "addr.private"),
            ("10.255.255.255", "addr.private"),
            ("100.64.0.1", "addr.cgnat"),
            ("100.127.255.255", "addr.cgnat"),
            ("100.100.100.200", "addr.metadata"),
            ("127.0.0.1", "addr.loopback"),
            ("127.255.255.254", "addr.loopback"),
            ("169.254.0.1", "addr.link_local"),
            ("169.254.169.254", "addr.metadata"),
            ("169.254.170.2", "addr.metadata"),
            ("168.63.129.16", "addr.metadata"),
            ("172.16.0.1", "addr.private"),
            ("172.31.255.255", "addr.private"),
            ("192.0.0.8", "addr.reserved"),
            ("192.0.2.1", "addr.documentation"),
            ("192.88.99.1", "addr.reserved"),
            ("192.168.1.1", "addr.private"),
            ("198.18.0.1", "addr.benchmark"),
            ("198.19.255.255", "addr.benchmark"),
            ("198.51.100.7", "addr.documentation"),
            ("203.0.113.9", "addr.documentation"),
            ("224.0.0.1", "addr.multicast"),
            ("239.255.255.250", "addr.multicast"),
            ("240.0.0.1", "addr.reserved"),
            ("255.255.255.254", "addr.reserved"),
            ("255.255.255.255", "addr.broadcast"),
        ] {
            assert_eq!(rule(ip), Some(want), "{ip}");
        }
    }

    #[test]
    fn public_v4_next_to_refused_ranges() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.0",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "168.63.129.17",
        ] {
            assert_eq!(rule(ip), None, "{ip}");
        }
    }

    #[test]
    fn refused_v6() {
        for (ip, want) in [
            ("::", "addr.unspecified"),
            ("::1", "addr.loopback"),
            ("::ffff:127.0.0.1", "addr.loopback"),
            ("::ffff:7f00:1", "addr.loopback"),
            ("::ffff:10.0.0.1", "addr.private"),
            ("::ffff:169.254.169.254", "addr.metadata"),
            ("::ffff:0:127.0.0.1", "addr.loopback"),
            ("::127.0.0.1", "addr.reserved"),
            ("::8.8.8.8", "addr.reserved"),
            ("64:ff9b::127.0.0.1", "addr.loopback"),
            ("64:ff9b::a9fe:a9fe", "addr.metadata"),
            ("64:ff9b:1::1", "addr.reserved"),
            ("100::1", "addr.reserved"),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "addr.teredo"),
            ("2001:2::1", "addr.reserved"),
            ("2001:db8::1", "addr.documentation"),
            ("3fff::1", "addr.documentation"),
            ("2002:7f00:1::", "addr.loopback"),
            ("2002:c0a8:101::1", "addr.private"),
            ("fc00::1", "addr.unique_local"),
            ("fd12:3456::1", "addr.unique_local"),
            ("fd00:ec2::254", "addr.metadata"),
            ("fe80::1", "addr.link_local"),
            ("febf::1", "addr.link_local"),
            ("fec0::1", "addr.reserved"),
            ("ff02::1", "addr.multicast"),
            ("5f00::1", "addr.reserved"),
            ("4000::1", "addr.reserved"),
        ] {
            assert_eq!(rule(ip), Some(want), "{ip}");
        }
    }

    #[test]
    fn public_v6() {
        for ip in [
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "2a00:1450:4001::1",
            "::ffff:93.184.216.34",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2001:200::1",
        ] {
            assert_eq!(rule(ip), None, "{ip}");
        }
    }
}
