//! The client against loopback fakes. "Public" hosts are names the stub
//! resolver answers with public addresses, dialled to loopback servers by
//! the test-only dial override; canaries stand where a refused request
//! would have gone and must see no connection.

use crate::support::{Logs, PUBLIC, PUBLIC2, builder, client, refused_rule};
use exoclaw_egress::header::{HeaderMap, HeaderValue};
use exoclaw_egress::testing::{Canary, FakeHttp, FakeResponse, StaticResolver};
use exoclaw_egress::{Admission, DomainRules, EgressError, FetchLimits, Method, Resolver as _};
use std::sync::Arc;
use std::time::Duration;

fn limits() -> FetchLimits {
    FetchLimits {
        timeout: Duration::from_secs(5),
        ..FetchLimits::default()
    }
}

async fn hello() -> FakeHttp {
    FakeHttp::start(|_| FakeResponse::ok("text/plain", "hello")).await
}

#[tokio::test]
async fn a_public_name_is_fetched_through_its_vetted_address() {
    let server = hello().await;
    let dns = Arc::new(StaticResolver::new().with("public.test", &[PUBLIC]));
    let c = client(&dns, &[(PUBLIC, server.addr())]);
    let got = c
        .fetch("http://public.test/a?b=c", HeaderMap::new(), &limits())
        .await
        .unwrap();
    assert_eq!(got.status.as_u16(), 200);
    assert_eq!(&got.body[..], b"hello");
    let seen = server.requests();
    assert_eq!(seen[0].target, "/a?b=c");
    assert_eq!(seen[0].header("host"), Some("public.test"));
    assert_eq!(
        dns.lookups("public.test"),
        1,
        "one lookup, no second resolution"
    );
}

#[tokio::test]
async fn dry_run_resolves_and_decides_without_connecting() {
    let server = hello().await;
    let canary = Canary::start().await;
    let dns = Arc::new(
        StaticResolver::new()
            .with("public.test", &[PUBLIC])
            .with("private.test", &["10.1.2.3"]),
    );
    let c = builder(&dns)
        .dial_override(PUBLIC.parse().unwrap(), server.addr())
        .allow_origin(&format!("http://127.0.0.1:{}", canary.port()))
        .unwrap()
        .build()
        .unwrap();
    let v = c.dry_run("http://public.test/").await.unwrap();
    assert_eq!(v.addrs, vec![PUBLIC.parse::<std::net::IpAddr>().unwrap()]);
    assert_eq!(v.admission, Admission::Public);
    assert_eq!(dns.lookups("public.test"), 1);
    assert_eq!(
        refused_rule(c.dry_run("http://private.test/").await),
        "addr.private"
    );
    let loopback = format!("http://127.0.0.2:{}/", canary.port());
    assert_eq!(refused_rule(c.dry_run(&loopback).await), "addr.loopback");
    // Allowed by the explicit origin, and still no connection.
    let explicit = c
        .dry_run(&format!("http://127.0.0.1:{}/", canary.port()))
        .await
        .unwrap();
    assert_eq!(explicit.admission, Admission::Explicit);
    assert!(matches!(
        c.dry_run("http://unknown.test/").await,
        Err(EgressError::Unavailable(_))
    ));
    assert_eq!(server.connections(), 0);
    assert_eq!(canary.connections(), 0);
}

#[tokio::test]
async fn rebinding_to_a_private_answer_is_refused_and_never_dialled() {
    let server = hello().await;
    let canary = Canary::start().await;
    let dns = Arc::new(StaticResolver::new().script("rebind.test", &[&[PUBLIC], &["127.0.0.1"]]));
    // Were 127.0.0.1 ever dialled, it would land on the canary.
    let c = client(
        &dns,
        &[(PUBLIC, server.addr()), ("127.0.0.1", canary.addr())],
    );
    let first = c
        .fetch("http://rebind.test/", HeaderMap::new(), &limits())
        .await
        .unwrap();
    assert_eq!(&first.body[..], b"hello");
    let second = c
        .fetch("http://rebind.test/", HeaderMap::new(), &limits())
        .await;
    assert_eq!(refused_rule(second), "addr.loopback");
    assert_eq!(canary.connections(), 0);
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn a_dry_run_then_a_rebinding_answer_still_refuses_the_call() {
    let canary = Canary::start().await;
    let dns =
        Arc::new(StaticResolver::new().script("rebind.test", &[&[PUBLIC], &["169.254.169.254"]]));
    let c = client(&dns, &[("169.254.169.254", canary.addr())]);
    assert!(c.dry_run("http://rebind.test/").await.is_ok());
    let call = c
        .fetch("http://rebind.test/", HeaderMap::new(), &limits())
        .await;
    assert_eq!(refused_rule(call), "addr.metadata");
    assert_eq!(canary.connections(), 0);
}

#[tokio::test]
async fn mixed_public_and_private_answers_are_refused_whole() {
    let server = hello().await;
    let canary = Canary::start().await;
    for private in [
        "10.0.0.1",
        "127.0.0.1",
        "::1",
        "fd00::1",
        "::ffff:127.0.0.1",
    ] {
        let dns = Arc::new(StaticResolver::new().with("mixed.test", &[PUBLIC, private]));
        let c = client(&dns, &[(PUBLIC, server.addr()), (private, canary.addr())]);
        let r = c
            .fetch("http://mixed.test/", HeaderMap::new(), &limits())
            .await;
        assert_eq!(refused_rule(r), "dns.mixed", "{private}");
        assert_eq!(
            refused_rule(c.dry_run("http://mixed.test/").await),
            "dns.mixed"
        );
        // Private first, public second: the same.
        let dns = Arc::new(StaticResolver::new().with("mixed.test", &[private, PUBLIC]));
        let c = client(&dns, &[(PUBLIC, server.addr()), (private, canary.addr())]);
        let r = c
            .fetch("http://mixed.test/", HeaderMap::new(), &limits())
            .await;
        assert_eq!(refused_rule(r), "dns.mixed", "{private}");
    }
    assert_eq!(server.connections(), 0);
    assert_eq!(canary.connections(), 0);
}

#[tokio::test]
async fn the_connection_goes_to_the_first_vetted_address() {
    let server = hello().await;
    let canary = Canary::start().await;
    let dns = Arc::new(StaticResolver::new().with("two.test", &[PUBLIC, PUBLIC2]));
    let c = client(&dns, &[(PUBLIC, server.addr()), (PUBLIC2, canary.addr())]);
    let got = c
        .fetch("http://two.test/", HeaderMap::new(), &limits())
        .await
        .unwrap();
    assert_eq!(&got.body[..], b"hello");
    assert_eq!(canary.connections(), 0);
}

#[tokio::test]
async fn redirects_to_refused_targets_are_refused_before_connecting() {
    let canary = Canary::start().await;
    let port = canary.port();
    let cases = [
        (format!("http://127.0.0.1:{port}/"), "addr.loopback"),
        (format!("http://2130706433:{port}/"), "addr.loopback"),
        (format!("http://0x7f.1:{port}/"), "addr.loopback"),
        (
            format!("http://[::ffff:127.0.0.1]:{port}/"),
            "addr.loopback",
        ),
        (format!("http://localhost:{port}/"), "host.localhost"),
        (format!("http://user@public.test:{port}/"), "url.userinfo"),
        (
            "http://169.254.169.254/latest/meta-data/".to_owned(),
            "addr.metadata",
        ),
        (
            "http://metadata.google.internal/".to_owned(),
            "host.metadata",
        ),
        ("file:///etc/passwd".to_owned(), "url.scheme"),
        ("gopher://public.test/".to_owned(), "url.scheme"),
        ("http://private.test/".to_owned(), "addr.private"),
    ];
    for (location, rule) in cases {
        let to = location.clone();
        let server = FakeHttp::start(move |_| FakeResponse::redirect(302, &to)).await;
        let dns = Arc::new(
            StaticResolver::new()
                .with("public.test", &[PUBLIC])
                .with("private.test", &["192.168.1.1"]),
        );
        let c = client(
            &dns,
            &[(PUBLIC, server.addr()), ("192.168.1.1", canary.addr())],
        );
        let r = c
            .fetch("http://public.test/", HeaderMap::new(), &limits())
            .await;
        assert_eq!(refused_rule(r), rule, "{location}");
        assert_eq!(server.connections(), 1);
    }
    assert_eq!(canary.connections(), 0);
}

#[tokio::test]
async fn allowed_redirects_are_followed_and_rechecked() {
    let target = hello().await;
    let to = format!("http://other.test{}", "/final");
    let first = FakeHttp::start(move |r| {
        if r.target == "/start" {
            FakeResponse::redirect(301, "/middle")
        } else {
            FakeResponse::redirect(307, &to)
        }
    })
    .await;
    let dns = Arc::new(
        StaticResolver::new()
            .with("public.test", &[PUBLIC])
            .with("other.test", &[PUBLIC2]),
    );
    let c = client(&dns, &[(PUBLIC, first.addr()), (PUBLIC2, target.addr())]);
    let mut headers = HeaderMap::new();
    headers.insert("x-subscription-token", HeaderValue::from_static("sekrit"));
    let got = c
        .fetch("http://public.test/start", headers, &limits())
        .await
        .unwrap();
    assert_eq!(&got.body[..], b"hello");
    assert_eq!(got.url.as_str(), "http://other.test/final");
    let seen = first.requests();
    assert_eq!(seen.len(), 2);
    // Same origin: the header goes along; another origin: it is dropped.
    assert!(
        seen.iter()
            .all(|r| r.header("x-subscription-token") == Some("sekrit"))
    );
    assert_eq!(target.requests()[0].header("x-subscription-token"), None);
}

#[tokio::test]
async fn redirects_are_rechecked_against_the_domain_lists() {
    let target = hello().await;
    let first = FakeHttp::start(|_| FakeResponse::redirect(302, "http://other.test/")).await;
    let dns = Arc::new(
        StaticResolver::new()
            .with("public.test", &[PUBLIC])
            .with("other.test", &[PUBLIC2]),
    );
    let base = client(&dns, &[(PUBLIC, first.addr()), (PUBLIC2, target.addr())]);
    let only = DomainRules::allow_only("tools.web_fetch", &["public.test"]).unwrap();
    let r = base
        .with_rules(only)
        .fetch("http://public.test/", HeaderMap::new(), &limits())
        .await;
    assert_eq!(refused_rule(r), "domain.not_allowed");
    let deny = DomainRules::new("tools.web_fetch", &[], &["other.test"]).unwrap();
    let r = base
        .with_rules(deny)
        .fetch("http://public.test/", HeaderMap::new(), &limits())
        .await;
    assert_eq!(refused_rule(r), "domain.denied");
    assert_eq!(target.connections(), 0);
    // Without the lists the same chain is followed.
    let ok = base
        .fetch("http://public.test/", HeaderMap::new(), &limits())
        .await
        .unwrap();
    assert_eq!(&ok.body[..], b"hello");
}

#[tokio::test]
async fn at_most_five_redirects() {
    let server = FakeHttp::start(|r| {
        let n: u32 = r.target.trim_start_matches('/').parse().unwrap_or(0);
        if n == 5 && r.header("x-stop").is_some() {
            return FakeResponse::ok("text/plain", "done");
        }
        FakeResponse::redirect(302, &format!("/{}", n + 1))
    })
    .await;
    let dns = Arc::new(StaticResolver::new().with("public.test", &[PUBLIC]));
    let c = client(&dns, &[(PUBLIC, server.addr())]);
    let r = c
        .fetch("http://public.test/0", HeaderMap::new(), &limits())
        .await;
    assert!(
        matches!(r, Err(EgressError::TooManyRedirects { max: 5 })),
        "{r:?}"
    );
    assert_eq!(
        server.requests().len(),
        6,
        "the first request and five redirects"
    );
    // Exactly five redirects succeed.
    let mut stop = HeaderMap::new();
    stop.insert("x-stop", HeaderValue::from_static("1"));
    let ok = c
        .fetch("http://public.test/0", stop, &limits())
        .await
        .unwrap();
    assert_eq!(&ok.body[..], b"done");
    // A lower limit is honoured, a higher one is capped at five.
    let low = FetchLimits {
        max_redirects: 1,
        ..limits()
    };
    let r = c
        .fetch("http://public.test/0", HeaderMap::new(), &low)
        .await;
    assert!(matches!(r, Err(EgressError::TooManyRedirects { max: 1 })));
    let high = FetchLimits {
        max_redirects: 50,
        ..limits()
    };
    let r = c
        .fetch("http://public.test/0", HeaderMap::new(), &high)
        .await;
    assert!(matches!(r, Err(EgressError::TooManyRedirects { max: 5 })));
}

#[tokio::test]
async fn bodies_are_capped_with_and_without_a_length() {
    let body = "x".repeat(100);
    let server = FakeHttp::start(move |r| {
        let resp = FakeResponse::ok("text/plain", body.clone());
        if r.target == "/stream" {
            resp.without_length()
        } else {
            resp
        }
    })
    .await;
    let dns = Arc::new(StaticResolver::new().with("public.test", &[PUBLIC]));
    let c = client(&dns, &[(PUBLIC, server.addr())]);
    for path in ["/length", "/stream"] {
        let url = format!("http://public.test{path}");
        let small = FetchLimits {
            max_bytes: 99,
            ..limits()
        };
        let r = c.fetch(&url, HeaderMap::new(), &small).await;
        assert!(
            matches!(r, Err(EgressError::TooLarge { limit: 99 })),
            "{path}: {r:?}"
        );
        assert_eq!(r.unwrap_err().code(), "egress.too_large");
        let exact = FetchLimits {
            max_bytes: 100,
            ..limits()
        };
        let ok = c.fetch(&url, HeaderMap::new(), &exact).await.unwrap();
        assert_eq!(ok.body.len(), 100, "{path}");
    }
}

#[tokio::test]
async fn the_total_timeout_holds() {
    let server =
        FakeHttp::start(|_| FakeResponse::ok("text/plain", "late").delayed(Duration::from_secs(3)))
            .await;
    let dns = Arc::new(StaticResolver::new().with("slow.test", &[PUBLIC]));
    let c = client(&dns, &[(PUBLIC, server.addr())]);
    let quick = FetchLimits {
        timeout: Duration::from_millis(200),
        ..limits()
    };
    let started = std::time::Instant::now();
    let r = c.fetch("http://slow.test/", HeaderMap::new(), &quick).await;
    assert!(matches!(r, Err(EgressError::Timeout)), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn an_explicit_loopback_origin_works_and_its_neighbours_do_not() {
    let server = hello().await;
    let canary = Canary::start().await;
    let dns = Arc::new(StaticResolver::new());
    let c = builder(&dns)
        .allow_origin(&server.origin())
        .unwrap()
        .build()
        .unwrap();
    let got = c
        .fetch(&server.url("/x"), HeaderMap::new(), &limits())
        .await
        .unwrap();
    assert_eq!(&got.body[..], b"hello");
    let r = c
        .fetch(
            &format!("http://127.0.0.1:{}/", canary.port()),
            HeaderMap::new(),
            &limits(),
        )
        .await;
    assert_eq!(refused_rule(r), "addr.loopback");
    assert_eq!(canary.connections(), 0);
}

#[tokio::test]
async fn an_explicit_loopback_name_may_resolve_privately() {
    let server = hello().await;
    let dns = Arc::new(StaticResolver::new().with("ollama.lan", &["127.0.0.1"]));
    let c = builder(&dns)
        .allow_origin(&format!("http://ollama.lan:{}", server.port()))
        .unwrap()
        .build()
        .unwrap();
    let url = format!("http://ollama.lan:{}/api", server.port());
    let got = c.fetch(&url, HeaderMap::new(), &limits()).await.unwrap();
    assert_eq!(&got.body[..], b"hello");
    // The same name on another port or scheme is not the explicit origin.
    for other in [
        "http://ollama.lan:1/",
        "https://ollama.lan/",
        "http://ollama.lan/",
    ] {
        let r = c.fetch(other, HeaderMap::new(), &limits()).await;
        assert_eq!(refused_rule(r), "host.explicit_only", "{other}");
    }
}

#[tokio::test]
async fn an_explicit_origin_is_never_a_metadata_service() {
    let dns = Arc::new(StaticResolver::new().with("meta.lan", &["169.254.169.254"]));
    let c = builder(&dns)
        .allow_origin("http://169.254.169.254")
        .unwrap()
        .allow_origin("http://meta.lan")
        .unwrap()
        .allow_origin("http://metadata.google.internal")
        .unwrap()
        .build()
        .unwrap();
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://meta.lan/latest/meta-data/",
        "http://metadata.google.internal/computeMetadata/v1/",
    ] {
        let r = c.fetch(url, HeaderMap::new(), &limits()).await;
        let rule = refused_rule(r);
        assert!(
            rule == "addr.metadata" || rule == "host.metadata",
            "{url}: {rule}"
        );
    }
}

#[tokio::test]
async fn request_checks_literals_and_the_resolver_checks_names() {
    let server = FakeHttp::start(|r| FakeResponse::ok("application/json", r.body.clone())).await;
    let canary = Canary::start().await;
    let dns = Arc::new(StaticResolver::new().with("private.test", &["10.9.8.7"]));
    let c = builder(&dns)
        .allow_origin(&server.origin())
        .unwrap()
        .dial_override("10.9.8.7".parse().unwrap(), canary.addr())
        .build()
        .unwrap();
    // A provider's POST with a JSON body, through the checked builder.
    let resp = c
        .request(Method::POST, &server.url("/v1/chat"))
        .unwrap()
        .header("content-type", "application/json")
        .body(r#"{"a":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.bytes().await.unwrap().as_ref(), br#"{"a":1}"#);
    // IP literals are refused before a request exists.
    let literal = format!("http://127.0.0.1:{}/", canary.port());
    assert_eq!(
        c.request(Method::GET, &literal).unwrap_err().rule,
        "addr.loopback"
    );
    // Names are refused inside the pinning resolver; the refusal survives
    // reqwest's error wrapping.
    let e = c
        .request(Method::GET, "http://private.test/")
        .unwrap()
        .send()
        .await
        .unwrap_err();
    let e = EgressError::from_reqwest(&e);
    assert_eq!(refused_rule::<()>(Err(e)), "addr.private");
    assert_eq!(canary.connections(), 0);
}

#[tokio::test]
async fn no_automatic_redirects_on_the_request_path() {
    let canary = Canary::start().await;
    let location = format!("http://127.0.0.1:{}/", canary.port());
    let server = FakeHttp::start(move |_| FakeResponse::redirect(302, &location)).await;
    let c = builder(&Arc::new(StaticResolver::new()))
        .allow_origin(&server.origin())
        .unwrap()
        .build()
        .unwrap();
    let resp = c
        .request(Method::GET, &server.url("/"))
        .unwrap()
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 302);
    assert_eq!(canary.connections(), 0);
}

#[tokio::test]
async fn unresolvable_names_are_unavailable_not_refused() {
    let c = client(&Arc::new(StaticResolver::new()), &[]);
    let r = c
        .fetch("http://nowhere.test/", HeaderMap::new(), &limits())
        .await;
    assert!(matches!(r, Err(EgressError::Unavailable(_))), "{r:?}");
}

#[tokio::test]
async fn refusals_are_logged_as_security_events() {
    let logs = Logs::capture();
    let c = client(&Arc::new(StaticResolver::new()), &[]);
    let _ = c
        .fetch(
            "http://100.100.100.200/latest/",
            HeaderMap::new(),
            &limits(),
        )
        .await;
    let lines = logs.lines_with("100.100.100.200");
    let line = lines.first().expect("the refusal is logged");
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("exoclaw::egress"), "{line}");
    assert!(line.contains("event=\"security.ssrf_blocked\""), "{line}");
    assert!(line.contains("rule=\"addr.metadata\""), "{line}");
    assert!(!line.contains("/latest/"), "no URL path in logs: {line}");
}

#[tokio::test]
async fn the_system_resolver_reads_etc_hosts() {
    // `localhost` comes from /etc/hosts (or the system's equivalent), never
    // from the network.
    let answers = exoclaw_egress::SystemResolver
        .lookup("localhost")
        .await
        .unwrap();
    assert!(
        !answers.is_empty() && answers.iter().all(|ip| ip.is_loopback()),
        "{answers:?}"
    );
    // End to end: an explicit `localhost` origin through the real resolver
    // reaches a loopback server; without the allowance it is refused.
    let server = hello().await;
    let origin = format!("http://localhost:{}", server.port());
    let c = exoclaw_egress::EgressClient::builder()
        .allow_origin(&origin)
        .unwrap()
        .build()
        .unwrap();
    let got = c
        .fetch(&format!("{origin}/"), HeaderMap::new(), &limits())
        .await
        .unwrap();
    assert_eq!(&got.body[..], b"hello");
    let strict = exoclaw_egress::EgressClient::builder().build().unwrap();
    let r = strict
        .fetch(&format!("{origin}/"), HeaderMap::new(), &limits())
        .await;
    assert_eq!(refused_rule(r), "host.localhost");
}

#[tokio::test]
async fn only_real_redirect_statuses_are_followed() {
    let canary = Canary::start().await;
    let location = format!("http://127.0.0.1:{}/", canary.port());
    let server = FakeHttp::start(move |_| FakeResponse::redirect(300, &location)).await;
    let dns = Arc::new(StaticResolver::new().with("public.test", &[PUBLIC]));
    let c = client(&dns, &[(PUBLIC, server.addr())]);
    let got = c
        .fetch("http://public.test/", HeaderMap::new(), &limits())
        .await
        .unwrap();
    assert_eq!(got.status.as_u16(), 300);
    assert_eq!(canary.connections(), 0);
}
