//! Domain allow/deny semantics as a table, and the layering of the
//! process-wide list, a tool's lists, explicit origins and the provider
//! profile.

use exoclaw_egress::{DomainPattern, DomainRules, EgressClient, EgressPolicy, Host, Origin};

fn name(s: &str) -> Host {
    Host::Name(s.to_owned())
}

#[test]
fn pattern_matching_table() {
    // (pattern, host, matches)
    let table = [
        ("example.com", "example.com", true),
        ("example.com", "www.example.com", false),
        ("example.com", "notexample.com", false),
        ("example.com", "example.com.evil.com", false),
        ("example.com", "example.co", false),
        ("*.example.com", "www.example.com", true),
        ("*.example.com", "a.b.example.com", true),
        ("*.example.com", "example.com", false),
        ("*.example.com", "wwwexample.com", false),
        ("*.example.com", "www.example.com.evil.com", false),
        ("*.example.com", ".example.com", false),
        ("EXAMPLE.COM", "example.com", true),
        ("example.com.", "example.com", true),
        ("*.Example.Com.", "api.example.com", true),
        ("bücher.example", "xn--bcher-kva.example", true),
        ("xn--bcher-kva.example", "xn--bcher-kva.example", true),
        ("*.bücher.example", "www.xn--bcher-kva.example", true),
    ];
    for (pattern, host, want) in table {
        let p: DomainPattern = pattern.parse().expect(pattern);
        assert_eq!(p.matches(host), want, "{pattern} vs {host}");
    }
}

#[test]
fn bad_patterns_are_rejected() {
    for bad in [
        "",
        "*",
        "*.",
        "**.example.com",
        "a.*.com",
        "*example.com",
        "example.*",
        "http://example.com",
        "example.com/path",
        "user@example.com",
        "example.com:443",
        "10.0.0.1",
        "[::1]",
        "0x7f.1",
        "exa mple.com",
        "a..b",
    ] {
        assert!(
            bad.parse::<DomainPattern>().is_err(),
            "{bad:?} was accepted"
        );
    }
}

#[test]
fn rules_table_deny_wins_and_literals_never_match() {
    let rules = DomainRules::new(
        "tools.web_fetch",
        &["example.com", "*.example.com", "docs.rs"],
        &["evil.example.com", "*.ads.example.com"],
    )
    .unwrap();
    let table: &[(Host, Result<(), &str>)] = &[
        (name("example.com"), Ok(())),
        (name("www.example.com"), Ok(())),
        (name("docs.rs"), Ok(())),
        (name("evil.example.com"), Err("domain.denied")),
        (name("x.ads.example.com"), Err("domain.denied")),
        (name("ads.example.com"), Ok(())),
        (name("crates.io"), Err("domain.not_allowed")),
        (name("sub.docs.rs"), Err("domain.not_allowed")),
        (
            Host::Ip("93.184.216.34".parse().unwrap()),
            Err("domain.ip_literal"),
        ),
        (
            Host::Ip("2606:4700::1".parse().unwrap()),
            Err("domain.ip_literal"),
        ),
    ];
    for (host, want) in table {
        let got = rules.check(host).map_err(|r| {
            assert_eq!(r.code(), "security.egress_denied", "{host}");
            r.rule
        });
        assert_eq!(got, *want, "{host}");
    }
}

#[test]
fn deny_only_allows_the_rest_and_literals() {
    let rules = DomainRules::new::<&str>("tools.web_fetch", &[], &["example.com"]).unwrap();
    assert!(rules.check(&name("example.com")).is_err());
    assert!(rules.check(&name("www.example.com")).is_ok());
    assert!(rules.check(&name("example.org")).is_ok());
    assert!(
        rules
            .check(&Host::Ip("93.184.216.34".parse().unwrap()))
            .is_ok()
    );
}

fn client(policy: EgressPolicy) -> EgressClient {
    EgressClient::builder().policy(policy).build().unwrap()
}

fn rule_of(c: &EgressClient, url: &str) -> Option<&'static str> {
    c.check_url(url).err().map(|r| r.rule)
}

#[test]
fn layers_must_all_pass() {
    let process =
        DomainRules::allow_only("egress.allow_domains", &["*.example.com", "example.org"]).unwrap();
    let tool = DomainRules::new(
        "tools.web_fetch",
        &["api.example.com", "example.org"],
        &["example.org"],
    )
    .unwrap();
    let base = client(EgressPolicy::new().with_rules(process));
    let fetch = base.with_rules(tool);
    assert_eq!(rule_of(&base, "https://www.example.com/"), None);
    assert_eq!(
        rule_of(&fetch, "https://www.example.com/"),
        Some("domain.not_allowed")
    );
    assert_eq!(rule_of(&fetch, "https://api.example.com/"), None);
    assert_eq!(
        rule_of(&fetch, "https://example.org/"),
        Some("domain.denied")
    );
    assert_eq!(
        rule_of(&base, "https://example.net/"),
        Some("domain.not_allowed")
    );
    // An allowlist never lets an IP literal through, public or not; the
    // address class speaks first for a private one.
    assert_eq!(
        rule_of(&base, "http://93.184.216.34/"),
        Some("domain.ip_literal")
    );
    assert_eq!(rule_of(&base, "http://10.0.0.1/"), Some("addr.private"));
    // Names refused by class stay refused even when listed.
    let listed = client(EgressPolicy::new().with_rules(
        DomainRules::allow_only("egress.allow_domains", &["localhost", "*.internal"]).unwrap(),
    ));
    assert_eq!(
        rule_of(&listed, "http://localhost/"),
        Some("host.localhost")
    );
    assert_eq!(
        rule_of(&listed, "http://metadata.google.internal/"),
        Some("host.metadata")
    );
}

#[test]
fn explicit_origins_match_exactly() {
    let c = EgressClient::builder()
        .allow_origin("http://127.0.0.1:11434/v1")
        .unwrap()
        .allow_origin("http://localhost:8000")
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(rule_of(&c, "http://127.0.0.1:11434/api/chat"), None);
    assert_eq!(rule_of(&c, "http://localhost:8000/v1/models"), None);
    assert_eq!(rule_of(&c, "http://localhost.:8000/v1/models"), None);
    for (url, rule) in [
        ("http://127.0.0.1:11435/", "addr.loopback"),
        ("https://127.0.0.1:11434/", "addr.loopback"),
        ("http://127.0.0.2:11434/", "addr.loopback"),
        ("http://[::1]:11434/", "addr.loopback"),
        ("http://localhost:11434/", "host.explicit_only"),
        ("https://localhost:8000/", "host.explicit_only"),
        ("http://api.localhost:8000/", "host.localhost"),
        ("http://127.0.0.1:8000/", "addr.loopback"),
        ("http://user@127.0.0.1:11434/", "url.userinfo"),
    ] {
        assert_eq!(rule_of(&c, url), Some(rule), "{url}");
    }
    // Another notation of the same address is the same origin.
    assert_eq!(rule_of(&c, "http://2130706433:11434/"), None);
}

#[test]
fn explicit_origins_still_obey_deny_lists_but_not_allowlists() {
    let policy = EgressPolicy::new()
        .with_rules(DomainRules::new("tools.web_fetch", &["example.com"], &["localhost"]).unwrap())
        .with_origin(Origin::parse("http://127.0.0.1:9000").unwrap())
        .with_origin(Origin::parse("http://localhost:9001").unwrap());
    let c = client(policy);
    assert_eq!(rule_of(&c, "http://127.0.0.1:9000/"), None);
    assert_eq!(rule_of(&c, "http://localhost:9001/"), Some("domain.denied"));
}

#[test]
fn provider_profile_reaches_only_its_base_urls() {
    let c = EgressClient::builder()
        .provider_profile(&[
            "https://api.openai.com/v1",
            "https://api.anthropic.com",
            "http://127.0.0.1:11434/v1",
        ])
        .unwrap()
        .allow_origin("http://127.0.0.1:11434")
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(
        rule_of(&c, "https://api.openai.com/v1/chat/completions"),
        None
    );
    assert_eq!(rule_of(&c, "https://api.anthropic.com/v1/messages"), None);
    assert_eq!(
        rule_of(&c, "http://127.0.0.1:11434/v1/chat/completions"),
        None
    );
    assert_eq!(
        rule_of(&c, "http://api.openai.com/v1"),
        Some("origin.not_allowed")
    );
    assert_eq!(
        rule_of(&c, "https://api.openai.com:444/v1"),
        Some("origin.not_allowed")
    );
    assert_eq!(
        rule_of(&c, "https://evil.com/v1"),
        Some("origin.not_allowed")
    );
    // A loopback base URL without the explicit allowance stays refused.
    let strict = EgressClient::builder()
        .provider_profile(&["http://127.0.0.1:11434/v1"])
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(
        rule_of(&strict, "http://127.0.0.1:11434/v1"),
        Some("addr.loopback")
    );
}

#[test]
fn origins_refuse_tricks() {
    for bad in [
        "ftp://127.0.0.1",
        "http://user@127.0.0.1:1",
        "127.0.0.1:11434",
        "http://[fe80::1%25eth0]:1",
    ] {
        assert!(Origin::parse(bad).is_err(), "{bad}");
    }
}
