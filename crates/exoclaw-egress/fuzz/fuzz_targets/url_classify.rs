//! Fuzz URL classification: arbitrary bytes never panic `classify`,
//! domain patterns or origins, and whatever `classify` allows has a public
//! host by an oracle independent of the crate (`url` re-parses the input,
//! `std` judges the address).

#![no_main]

use exoclaw_egress::{DomainPattern, Host, Origin, classify};
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn public_v4(ip: Ipv4Addr) -> bool {
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
        || (o[0] == 198 && (18..20).contains(&o[1])))
}

fn public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return public_v4(v4);
    }
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local())
        && ip.segments()[0] & 0xe000 == 0x2000
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let _ = input.parse::<DomainPattern>();
    let _ = Origin::parse(input);
    let Ok(target) = classify(input) else {
        return;
    };
    let reparsed = url::Url::parse(input).expect("an allowed URL parses");
    assert!(matches!(reparsed.scheme(), "http" | "https"), "{input:?}");
    assert!(
        reparsed.username().is_empty() && reparsed.password().is_none(),
        "{input:?}"
    );
    match (&target.host, reparsed.host()) {
        (Host::Ip(IpAddr::V4(ip)), Some(url::Host::Ipv4(again))) => {
            assert_eq!(*ip, again);
            assert!(public_v4(*ip), "{input:?} allowed {ip}");
        }
        (Host::Ip(IpAddr::V6(ip)), Some(url::Host::Ipv6(again))) => {
            assert_eq!(*ip, again);
            assert!(public_v6(*ip), "{input:?} allowed {ip}");
        }
        (Host::Name(name), Some(url::Host::Domain(d))) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            assert_eq!(*name, d);
            assert!(d.parse::<IpAddr>().is_err(), "{input:?}");
            for local in ["localhost", "local", "internal"] {
                assert!(
                    d != local && !d.ends_with(&format!(".{local}")),
                    "{input:?}"
                );
            }
        }
        (host, again) => panic!("{input:?}: classified {host:?}, url says {again:?}"),
    }
});
