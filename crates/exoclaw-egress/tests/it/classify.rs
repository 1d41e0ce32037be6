//! The classification corpus: every notation of a non-public host is
//! refused with the rule that names it, and public hosts in the same
//! notations are allowed (both sides of the control). Each case checks
//! what the `url` crate really does with the notation instead of assuming.

use exoclaw_egress::{Host, RefusalKind, classify};
use std::net::IpAddr;

/// `url` must be refused with `rule`.
fn refused(url: &str, rule: &str) {
    match classify(url) {
        Ok(t) => panic!("{url:?} was allowed (host {})", t.host),
        Err(r) => {
            assert_eq!(r.rule, rule, "{url:?}: {r}");
            assert_eq!(r.kind, RefusalKind::SsrfBlocked, "{url:?}");
            assert_eq!(r.code(), "security.ssrf_blocked");
        }
    }
}

/// `url` must be allowed, with this host.
fn allowed(url: &str, host: &str) {
    let t = classify(url).unwrap_or_else(|r| panic!("{url:?} was refused: {r}"));
    let want = match host.parse::<IpAddr>() {
        Ok(ip) => Host::Ip(ip),
        Err(_) => Host::Name(host.to_owned()),
    };
    assert_eq!(t.host, want, "{url:?}");
}

#[test]
fn ipv4_loopback_in_every_notation_is_refused() {
    for url in [
        "http://127.0.0.1/",
        "http://127.0.0.1:8080/x",
        "https://127.0.0.1/",
        "http://127.0.0.1./",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://0X7F000001/",
        "http://017700000001/",
        "http://0177.0.0.1/",
        "http://0177.0000.0000.0001/",
        "http://127.000.000.001/",
        "http://0x7f.0x0.0x0.0x1/",
        "http://0x7f.1/",
        "http://127.1/",
        "http://127.0.1/",
        "http://0x7f.0.1/",
        "http://0177.0x0.1/",
        "http://127.0.0.255/",
        "http://127.255.255.254/",
        "HTTP://127.0.0.1/",
        // Fullwidth digits and ideographic full stops: IDNA maps them to
        // ASCII before the IPv4 parser runs.
        "http://１２７.０.０.１/",
        "http://127。0。0。1/",
        "http://①②⑦.0.0.1/",
    ] {
        refused(url, "addr.loopback");
    }
}

#[test]
fn other_private_ranges_in_other_notations_are_refused() {
    for (url, rule) in [
        ("http://10.1/", "addr.private"),
        ("http://167772161/", "addr.private"),
        ("http://012.0.0.1/", "addr.private"),
        ("http://0xa.0.0.1/", "addr.private"),
        ("http://172.16.0.1/", "addr.private"),
        ("http://172.16.1/", "addr.private"),
        ("http://0xac.0x10.0.1/", "addr.private"),
        ("http://192.168.0.1/", "addr.private"),
        ("http://3232235521/", "addr.private"),
        ("http://0xc0.0xa8.0.1/", "addr.private"),
        ("http://100.64.0.1/", "addr.cgnat"),
        ("http://169.254.1.1/", "addr.link_local"),
        ("http://0/", "addr.unspecified"),
        ("http://0.0.0.0/", "addr.unspecified"),
        ("http://0x0/", "addr.unspecified"),
        ("http://255.255.255.255/", "addr.broadcast"),
        ("http://4294967295/", "addr.broadcast"),
        ("http://224.0.0.1/", "addr.multicast"),
        ("http://240.0.0.1/", "addr.reserved"),
        ("http://192.0.0.1/", "addr.reserved"),
        ("http://192.0.2.1/", "addr.documentation"),
        ("http://198.18.0.1/", "addr.benchmark"),
        ("http://198.51.100.1/", "addr.documentation"),
        ("http://203.0.113.1/", "addr.documentation"),
    ] {
        refused(url, rule);
    }
}

#[test]
fn cloud_metadata_addresses_and_names_are_refused() {
    for (url, rule) in [
        ("http://169.254.169.254/latest/meta-data/", "addr.metadata"),
        ("http://2852039166/", "addr.metadata"),
        ("http://0xa9fea9fe/", "addr.metadata"),
        ("http://0251.0376.0251.0376/", "addr.metadata"),
        ("http://169.254.43518/", "addr.metadata"),
        ("http://[::ffff:169.254.169.254]/", "addr.metadata"),
        ("http://[::ffff:a9fe:a9fe]/", "addr.metadata"),
        ("http://[fd00:ec2::254]/", "addr.metadata"),
        ("http://100.100.100.200/", "addr.metadata"),
        ("http://168.63.129.16/", "addr.metadata"),
        ("http://169.254.170.2/v2/credentials", "addr.metadata"),
        (
            "http://metadata.google.internal/computeMetadata/v1/",
            "host.metadata",
        ),
        ("http://METADATA.GOOGLE.INTERNAL./", "host.metadata"),
        ("http://metadata/", "host.metadata"),
        ("http://metadata.goog/", "host.metadata"),
        ("http://metadata.azure.internal/", "host.metadata"),
        ("http://instance-data/", "host.metadata"),
        ("http://instance-data.ec2.internal/", "host.metadata"),
    ] {
        refused(url, rule);
    }
}

#[test]
fn ipv6_and_embedded_ipv4_forms_are_refused() {
    for (url, rule) in [
        ("http://[::1]/", "addr.loopback"),
        ("http://[0:0:0:0:0:0:0:1]/", "addr.loopback"),
        ("http://[::]/", "addr.unspecified"),
        ("http://[::ffff:127.0.0.1]/", "addr.loopback"),
        ("http://[::ffff:7f00:1]/", "addr.loopback"),
        ("http://[0:0:0:0:0:ffff:127.0.0.1]/", "addr.loopback"),
        ("http://[::FFFF:7F00:0001]/", "addr.loopback"),
        ("http://[::ffff:10.0.0.1]/", "addr.private"),
        ("http://[::ffff:0:127.0.0.1]/", "addr.loopback"),
        ("http://[::127.0.0.1]/", "addr.reserved"),
        ("http://[::7f00:1]/", "addr.reserved"),
        ("http://[64:ff9b::127.0.0.1]/", "addr.loopback"),
        ("http://[64:ff9b::a00:1]/", "addr.private"),
        ("http://[64:ff9b::169.254.169.254]/", "addr.metadata"),
        ("http://[2002:7f00:1::1]/", "addr.loopback"),
        ("http://[2002:a9fe:a9fe::]/", "addr.metadata"),
        ("http://[2002:c0a8:1::]/", "addr.private"),
        (
            "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
            "addr.teredo",
        ),
        ("http://[2001:db8::1]/", "addr.documentation"),
        ("http://[fc00::1]/", "addr.unique_local"),
        ("http://[fd00::1]/", "addr.unique_local"),
        ("http://[fe80::1]/", "addr.link_local"),
        ("http://[ff02::1]/", "addr.multicast"),
        ("http://[fec0::1]/", "addr.reserved"),
    ] {
        refused(url, rule);
    }
}

#[test]
fn ipv6_scope_ids_and_bad_brackets_are_malformed() {
    for url in [
        "http://[fe80::1%25eth0]/",
        "http://[fe80::1%eth0]/",
        "http://[::1/",
        "http://::1/",
        "http://[::1]]/",
        "http://[127.0.0.1]/",
    ] {
        refused(url, "url.malformed");
    }
}

#[test]
fn local_names_are_refused_by_name() {
    for (url, rule) in [
        ("http://localhost/", "host.localhost"),
        ("http://localhost:11434/v1", "host.localhost"),
        ("http://LOCALHOST/", "host.localhost"),
        ("http://localhost./", "host.localhost"),
        ("http://localhost../", "host.localhost"),
        ("http://LocalHost.:80/", "host.localhost"),
        ("http://ｌｏｃａｌｈｏｓｔ/", "host.localhost"),
        ("http://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/", "host.localhost"),
        ("http://api.localhost/", "host.localhost"),
        ("http://a.b.localhost./", "host.localhost"),
        ("http://printer.local/", "host.local"),
        ("http://db.internal/", "host.internal"),
        ("http://router.home.arpa/", "host.home_arpa"),
    ] {
        refused(url, rule);
    }
}

#[test]
fn url_tricks_are_refused() {
    for (url, rule) in [
        ("ftp://example.com/", "url.scheme"),
        ("file:///etc/passwd", "url.scheme"),
        ("gopher://example.com/", "url.scheme"),
        ("javascript:alert(1)", "url.scheme"),
        ("data:text/plain,hi", "url.scheme"),
        ("ws://example.com/", "url.scheme"),
        ("http://user@evil.com@good.com/", "url.userinfo"),
        ("http://good.com@evil.com/", "url.userinfo"),
        ("http://good.com:80@evil.com/", "url.userinfo"),
        ("http://user:pass@example.com/", "url.userinfo"),
        ("http://@example.com/", "url.userinfo"),
        ("http://:@example.com/", "url.userinfo"),
        ("http://evil.com\\@good.com/", "url.backslash"),
        ("http://good.com\\.evil.com/", "url.backslash"),
        ("http:\\\\evil.com/", "url.backslash"),
        ("http://example.com/a\\b?c", "url.backslash"),
        ("http://good.com%40evil.com/", "url.malformed"),
        ("http://%6c%6f%63%61%6c%68%6f%73%74/", "url.encoded_host"),
        ("http://example.com%2f@evil.com/", "url.userinfo"),
        ("http://exa mple.com/", "url.malformed"),
        (" http://example.com/", "url.malformed"),
        ("http://example.com/\n", "url.malformed"),
        ("http://exam\tple.com/", "url.malformed"),
        ("http://example.com:0/", "url.malformed"),
        ("http://example.com:99999/", "url.malformed"),
        ("http:///", "url.malformed"),
        ("http://", "url.malformed"),
        ("//example.com/", "url.malformed"),
        ("example.com", "url.malformed"),
        ("", "url.malformed"),
        ("http://1.2.3.4.5/", "url.malformed"),
        ("http://256.0.0.1/", "url.malformed"),
        ("http://a..b.com/", "url.malformed"),
        ("http://exa*mple.com/", "url.malformed"),
    ] {
        refused(url, rule);
    }
    let long = format!("http://example.com/{}", "a".repeat(9000));
    refused(&long, "url.malformed");
}

#[test]
fn public_hosts_are_allowed_in_the_same_notations() {
    for (url, host) in [
        ("http://93.184.216.34/", "93.184.216.34"),
        ("https://93.184.216.34:8443/x?y#z", "93.184.216.34"),
        ("http://1572395042/", "93.184.216.34"),
        ("http://0x5db8d822/", "93.184.216.34"),
        ("http://0135.0270.0330.042/", "93.184.216.34"),
        ("http://8.8.8.8./", "8.8.8.8"),
        ("http://1.1/", "1.0.0.1"),
        ("http://[2606:4700:4700::1111]/", "2606:4700:4700::1111"),
        ("http://[::ffff:8.8.8.8]/", "::ffff:8.8.8.8"),
        ("http://[64:ff9b::8.8.8.8]/", "64:ff9b::808:808"),
        ("http://example.com/", "example.com"),
        ("HTTPS://EXAMPLE.COM./path", "example.com"),
        ("http://example.com../", "example.com"),
        ("http://www.example.com:8080/a/b?c=d", "www.example.com"),
        ("http://bücher.example/", "xn--bcher-kva.example"),
        ("http://xn--bcher-kva.example/", "xn--bcher-kva.example"),
        ("http://ＥＸＡＭＰＬＥ.com/", "example.com"),
        ("http://localhost.example.com/", "localhost.example.com"),
        ("http://mylocal/", "mylocal"),
        ("http://internal.example.com/", "internal.example.com"),
        ("http://example.com/?next=http://127.0.0.1/", "example.com"),
        ("http://example.com/#@evil.com", "example.com"),
        ("http://example.com/?q=a\\b", "example.com"),
        ("http://under_score.example.com/", "under_score.example.com"),
    ] {
        allowed(url, host);
    }
}
