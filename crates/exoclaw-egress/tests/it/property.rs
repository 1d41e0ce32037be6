//! Bounded property tests of URL classification (the fuzz target's
//! property, in the normal test run), with a seeded generator so failures
//! reproduce:
//! - a non-public IPv4 address in any notation (decimal, octal, hex,
//!   1–4 parts, trailing dot, fullwidth digits, IPv6 embeddings) is refused;
//! - a public one in the same notations is allowed and read back exactly;
//! - for fragment soup, classification never panics, and whatever it allows
//!   has a public host by an independent oracle built on `std` and `url`.

use exoclaw_egress::{Host, RefusalKind, classify};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// xorshift64*: small, seeded, good enough to spread cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// Ranges whose every address must be refused.
const REFUSED: &[([u8; 4], u32)] = &[
    ([0, 0, 0, 0], 8),
    ([10, 0, 0, 0], 8),
    ([100, 64, 0, 0], 10),
    ([127, 0, 0, 0], 8),
    ([169, 254, 0, 0], 16),
    ([172, 16, 0, 0], 12),
    ([192, 0, 0, 0], 24),
    ([192, 0, 2, 0], 24),
    ([192, 168, 0, 0], 16),
    ([198, 18, 0, 0], 15),
    ([198, 51, 100, 0], 24),
    ([203, 0, 113, 0], 24),
    ([224, 0, 0, 0], 4),
    ([240, 0, 0, 0], 4),
];

fn private_v4(rng: &mut Rng) -> u32 {
    let (net, prefix) = rng.pick(REFUSED);
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    (u32::from(Ipv4Addr::from(*net)) & mask) | (rng.next() as u32 & !mask)
}

fn public_v4(rng: &mut Rng) -> u32 {
    // First octets with no special range anywhere inside.
    const FIRST: &[u8] = &[
        1, 2, 3, 4, 5, 8, 9, 11, 23, 31, 45, 64, 77, 93, 101, 104, 126, 128, 142, 151, 173, 185,
        199, 208, 216, 223,
    ];
    (u32::from(*rng.pick(FIRST)) << 24) | (rng.next() as u32 & 0x00ff_ffff)
}

fn number(rng: &mut Rng, n: u32) -> String {
    match rng.below(4) {
        0 => n.to_string(),
        1 => format!("0{n:o}"),
        2 => format!("0x{n:x}"),
        _ => format!("0X{n:X}"),
    }
}

/// An IPv4 address in a random WHATWG-accepted notation.
fn encode_v4(rng: &mut Rng, ip: u32) -> String {
    let parts: Vec<u32> = match rng.below(4) {
        0 => vec![ip],
        1 => vec![ip >> 24, ip & 0x00ff_ffff],
        2 => vec![ip >> 24, (ip >> 16) & 0xff, ip & 0xffff],
        _ => Ipv4Addr::from(ip)
            .octets()
            .iter()
            .map(|&o| u32::from(o))
            .collect(),
    };
    let mut s = parts
        .iter()
        .map(|&p| number(rng, p))
        .collect::<Vec<_>>()
        .join(".");
    if rng.chance(15) {
        s.push('.');
    }
    if rng.chance(15) && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        // Fullwidth digits and ideographic full stops.
        let ideographic = rng.chance(50);
        s = s
            .chars()
            .map(|c| match c {
                '0'..='9' => char::from_u32(0xff10 + (c as u32 - '0' as u32)).unwrap_or(c),
                '.' if ideographic => '。',
                other => other,
            })
            .collect();
    }
    s
}

/// An IPv6 form the network routes to the IPv4 address, and its value.
fn embed_v4(rng: &mut Rng, ip: u32) -> (String, Ipv6Addr) {
    let v4 = Ipv4Addr::from(ip);
    let (hi, lo) = ((ip >> 16) as u16, ip as u16);
    let (text, addr) = match rng.below(5) {
        0 => (format!("::ffff:{v4}"), v4.to_ipv6_mapped()),
        1 => (format!("::ffff:{hi:x}:{lo:x}"), v4.to_ipv6_mapped()),
        2 => (format!("0:0:0:0:0:FFFF:{v4}"), v4.to_ipv6_mapped()),
        3 => (
            format!("64:ff9b::{v4}"),
            Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, hi, lo),
        ),
        _ => (
            format!("2002:{hi:x}:{lo:X}::"),
            Ipv6Addr::new(0x2002, hi, lo, 0, 0, 0, 0, 0),
        ),
    };
    (format!("[{text}]"), addr)
}

fn wrap(rng: &mut Rng, host: &str) -> String {
    let scheme = rng.pick(&["http", "https", "HTTP", "hTtPs"]);
    let port = rng.pick(&["", ":80", ":443", ":8080", ":1"]);
    let tail = rng.pick(&[
        "",
        "/",
        "/a/b?c=d",
        "/#frag",
        "?q=1",
        "/x?next=http://127.0.0.1/",
    ]);
    format!("{scheme}://{host}{port}{tail}")
}

#[test]
fn non_public_ipv4_in_any_notation_is_refused() {
    let mut rng = Rng(0x5eed_0001);
    for _ in 0..5_000 {
        let ip = private_v4(&mut rng);
        let host = if rng.chance(25) {
            embed_v4(&mut rng, ip).0
        } else {
            encode_v4(&mut rng, ip)
        };
        let url = wrap(&mut rng, &host);
        match classify(&url) {
            Ok(t) => panic!("{url:?} ({}) was allowed as {}", Ipv4Addr::from(ip), t.host),
            Err(r) => assert_eq!(r.kind, RefusalKind::SsrfBlocked, "{url:?}"),
        }
    }
}

#[test]
fn public_ipv4_in_any_notation_is_allowed_and_read_back() {
    let mut rng = Rng(0x5eed_0002);
    for _ in 0..5_000 {
        let ip = public_v4(&mut rng);
        let (host, want) = if rng.chance(25) {
            let (text, v6) = embed_v4(&mut rng, ip);
            (text, IpAddr::V6(v6))
        } else {
            (encode_v4(&mut rng, ip), IpAddr::V4(Ipv4Addr::from(ip)))
        };
        let url = wrap(&mut rng, &host);
        let t = classify(&url).unwrap_or_else(|r| panic!("{url:?} was refused: {r}"));
        assert_eq!(t.host, Host::Ip(want), "{url:?}");
    }
}

fn oracle_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_unspecified()
        || ip.is_multicast()
        || o[0] == 0
        || o[0] >= 240
        || (o[0] == 100 && (64..128).contains(&o[1]))
        || (o[0] == 198 && (18..20).contains(&o[1]))
        || (o[0] == 192 && o[1] == 0 && o[2] == 0))
}

fn oracle_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return oracle_public_v4(v4);
    }
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local())
        && ip.segments()[0] & 0xe000 == 0x2000
}

/// Independent of the crate: what `url` makes of the input, judged by `std`.
fn oracle_public(input: &str) -> bool {
    let Ok(u) = url::Url::parse(input) else {
        return false;
    };
    if !matches!(u.scheme(), "http" | "https") || !u.username().is_empty() || u.password().is_some()
    {
        return false;
    }
    match u.host() {
        Some(url::Host::Ipv4(ip)) => oracle_public_v4(ip),
        Some(url::Host::Ipv6(ip)) => oracle_public_v6(ip),
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.');
            let local = ["localhost", "local", "internal"]
                .iter()
                .any(|s| d == *s || d.ends_with(&format!(".{s}")));
            !local && d.parse::<IpAddr>().is_err() && !d.is_empty()
        }
        None => false,
    }
}

#[test]
fn fragment_soup_never_panics_and_allows_only_public_hosts() {
    const FRAGMENTS: &[&str] = &[
        "http://",
        "https://",
        "HTTP://",
        "ftp://",
        "//",
        "/",
        "\\",
        "@",
        "%40",
        "%2e",
        "%",
        ":",
        "::",
        "[",
        "]",
        ".",
        "。",
        "?",
        "#",
        "user",
        "pass",
        "127.0.0.1",
        "127.1",
        "0x7f",
        "0177",
        "2130706433",
        "10",
        "0",
        "255",
        "::ffff:",
        "64:ff9b::",
        "fe80::1",
        "%25eth0",
        "localhost",
        "LOCALHOST",
        "ｌｏｃａｌｈｏｓｔ",
        ".localhost",
        "example.com",
        "xn--",
        "bücher",
        "①②⑦",
        "１２７",
        "169.254.169.254",
        "metadata.google.internal",
        ".internal",
        "8.8.8.8",
        "93.184.216.34",
        "2606:4700::1",
        ":80",
        ":443",
        ":0",
        ":65536",
        " ",
        "\t",
        "\n",
        "\0",
        "a",
        "-",
    ];
    let mut rng = Rng(0x5eed_0003);
    let mut allowed = 0;
    for _ in 0..30_000 {
        let n = 1 + rng.below(8);
        let input: String = (0..n).map(|_| *rng.pick(FRAGMENTS)).collect();
        if let Ok(t) = classify(&input) {
            allowed += 1;
            assert!(oracle_public(&input), "{input:?} was allowed as {}", t.host);
        }
    }
    assert!(
        allowed > 100,
        "the generator reaches allowed URLs too ({allowed})"
    );
}
