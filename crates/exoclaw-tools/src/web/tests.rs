//! web_fetch and web_search against loopback fakes (explicit origins of the
//! egress client), with canaries where a refused call would have gone:
//! both sides of every control, and `check` agreeing with `call`.

use super::html::{self, MAX_DEPTH};
use super::{WebFetch, WebSearch};
use exoclaw_core::Secret;
use exoclaw_core::tool::{Tool, ToolContext, ToolError};
use exoclaw_egress::testing::{Canary, FakeHttp, FakeResponse, StaticResolver};
use exoclaw_egress::{DomainRules, EgressClient};
use serde_json::{Value, json};
use std::sync::Arc;

fn ctx() -> ToolContext {
    ToolContext {
        tenant: "default".into(),
        user: "u1".into(),
        agent: "default".into(),
        session: None,
        workspace: std::env::temp_dir(),
        request_id: None,
        run: Default::default(),
        approved: None,
        call_id: None,
        agents: None,
        lineage: Default::default(),
        cancel: Default::default(),
    }
}

/// A client that reaches `servers` (explicitly allowed loopback origins)
/// and resolves names with `dns`.
fn client(dns: StaticResolver, servers: &[&FakeHttp]) -> EgressClient {
    let mut b = EgressClient::builder().resolver(Arc::new(dns));
    for s in servers {
        b = b.allow_origin(&s.origin()).unwrap();
    }
    b.build().unwrap()
}

async fn fetch(tool: &WebFetch, args: Value) -> Result<String, ToolError> {
    tool.call(&ctx(), &args).await.map(|o| o.content)
}

const PAGE: &str = r#"<!doctype html><html><head><title>The Title</title>
<style>body { color: red }</style><script>alert("x")</script></head>
<body><h1>Heading</h1><p>Some <b>bold</b> text and a <a href="https://example.com/x">link</a>.</p>
<ul><li>one</li><li>two</li></ul><form><input name="q"><button>Go</button></form></body></html>"#;

#[tokio::test]
async fn html_becomes_markdown_without_scripts_or_styles() {
    let server = FakeHttp::start(|_| FakeResponse::ok("text/html; charset=utf-8", PAGE)).await;
    let tool = WebFetch::new(client(StaticResolver::new(), &[&server]));
    let out = fetch(&tool, json!({"url": server.url("/page")}))
        .await
        .unwrap();
    assert!(
        out.starts_with(&format!("URL: {}\nTitle: The Title\n", server.url("/page"))),
        "{out}"
    );
    assert!(out.contains("# Heading"), "{out}");
    assert!(out.contains("**bold**"), "{out}");
    assert!(out.contains("[link](https://example.com/x)"), "{out}");
    assert!(out.contains("one") && out.contains("two"), "{out}");
    for absent in ["alert", "color: red", "<script", "Go"] {
        assert!(!out.contains(absent), "{absent:?} leaked: {out}");
    }
}

#[tokio::test]
async fn text_passes_through_and_other_types_are_refused() {
    let server = FakeHttp::start(|r| match r.target.as_str() {
        "/plain" => FakeResponse::ok("text/plain", "just <b>text</b>"),
        "/md" => FakeResponse::ok("text/markdown", "# md"),
        "/latin1" => FakeResponse::ok("text/plain; charset=ISO-8859-1", b"caf\xe9".to_vec()),
        "/sniff" => FakeResponse::status(200)
            .header("X", "y")
            .with_body("<!DOCTYPE html><h1>Sniffed</h1>"),
        "/binary" => FakeResponse::status(200).with_body(vec![0xff, 0xfe, 0x00]),
        "/png" => FakeResponse::ok("image/png", vec![0x89, b'P', b'N', b'G']),
        "/json" => FakeResponse::ok("application/json", "{}"),
        "/missing" => FakeResponse::status(404),
        _ => FakeResponse::status(500),
    })
    .await;
    let tool = WebFetch::new(client(StaticResolver::new(), &[&server]));
    let out = fetch(&tool, json!({"url": server.url("/plain")}))
        .await
        .unwrap();
    assert!(out.ends_with("\njust <b>text</b>"), "{out}");
    assert!(
        fetch(&tool, json!({"url": server.url("/md")}))
            .await
            .unwrap()
            .ends_with("# md")
    );
    assert!(
        fetch(&tool, json!({"url": server.url("/latin1")}))
            .await
            .unwrap()
            .ends_with("café")
    );
    assert!(
        fetch(&tool, json!({"url": server.url("/sniff")}))
            .await
            .unwrap()
            .contains("# Sniffed")
    );
    for path in ["/png", "/json", "/binary"] {
        let e = fetch(&tool, json!({"url": server.url(path)}))
            .await
            .unwrap_err();
        assert_eq!(e.code, "tool.failed", "{path}");
        assert!(
            e.message.contains("not supported") || e.message.contains("not text"),
            "{path}: {e}"
        );
    }
    let e = fetch(&tool, json!({"url": server.url("/missing")}))
        .await
        .unwrap_err();
    assert_eq!(e.code, "tool.failed");
    assert!(e.message.contains("404"), "{e}");
}

#[tokio::test]
async fn the_size_cap_holds_and_is_configurable_within_bounds() {
    let server = FakeHttp::start(|_| FakeResponse::ok("text/plain", "x".repeat(2000))).await;
    let tool = WebFetch::new(client(StaticResolver::new(), &[&server]));
    let e = fetch(&tool, json!({"url": server.url("/"), "max_bytes": 1000}))
        .await
        .unwrap_err();
    assert_eq!(e.code, "egress.too_large");
    assert!(
        fetch(&tool, json!({"url": server.url("/"), "max_bytes": 2000}))
            .await
            .is_ok()
    );
    for bad in [
        json!(0),
        json!(super::MAX_BYTES + 1),
        json!(-1),
        json!("big"),
    ] {
        let args = json!({"url": server.url("/"), "max_bytes": bad});
        assert_eq!(
            fetch(&tool, args.clone()).await.unwrap_err().code,
            "tool.invalid_args"
        );
        assert_eq!(
            tool.check(&ctx(), &args).await.unwrap_err().code,
            "tool.invalid_args"
        );
    }
    for bad in [
        json!({}),
        json!({"url": 1}),
        json!({"url": "http://x", "extra": 1}),
    ] {
        assert_eq!(
            fetch(&tool, bad).await.unwrap_err().code,
            "tool.invalid_args"
        );
    }
}

#[tokio::test]
async fn refusals_carry_security_codes_and_check_agrees_with_call() {
    let canary = Canary::start().await;
    let port = canary.port();
    let dns = StaticResolver::new()
        .with("private.test", &["10.0.0.7"])
        .with("mixed.test", &["93.184.216.34", "127.0.0.1"])
        .with("denied.example.com", &["93.184.216.34"]);
    let base = client(dns, &[]);
    let tool = WebFetch::new(base.with_rules(
        DomainRules::new::<&str>("tools.web_fetch", &[], &["denied.example.com"]).unwrap(),
    ));
    let cases = [
        (
            format!("http://127.0.0.1:{port}/"),
            "security.ssrf_blocked",
            "addr.loopback",
        ),
        (
            format!("http://2130706433:{port}/"),
            "security.ssrf_blocked",
            "addr.loopback",
        ),
        (
            format!("http://[::ffff:7f00:1]:{port}/"),
            "security.ssrf_blocked",
            "addr.loopback",
        ),
        (
            format!("http://localhost:{port}/"),
            "security.ssrf_blocked",
            "host.localhost",
        ),
        (
            "http://169.254.169.254/latest/meta-data/".to_owned(),
            "security.ssrf_blocked",
            "addr.metadata",
        ),
        (
            "http://metadata.google.internal/".to_owned(),
            "security.ssrf_blocked",
            "host.metadata",
        ),
        (
            "http://private.test/".to_owned(),
            "security.ssrf_blocked",
            "addr.private",
        ),
        (
            "http://mixed.test/".to_owned(),
            "security.ssrf_blocked",
            "dns.mixed",
        ),
        (
            format!("http://user@127.0.0.1:{port}/"),
            "security.ssrf_blocked",
            "url.userinfo",
        ),
        (
            "file:///etc/passwd".to_owned(),
            "security.ssrf_blocked",
            "url.scheme",
        ),
        (
            "https://denied.example.com/".to_owned(),
            "security.egress_denied",
            "domain.denied",
        ),
    ];
    for (url, code, rule) in cases {
        let args = json!({"url": url});
        let checked = tool.check(&ctx(), &args).await.unwrap_err();
        let called = fetch(&tool, args).await.unwrap_err();
        assert_eq!(checked, called, "{url}: check and call disagree");
        assert_eq!(called.code, code, "{url}: {called}");
        assert!(
            called.message.contains(&format!("(rule {rule})")),
            "{url}: {called}"
        );
    }
    assert_eq!(canary.connections(), 0);
}

#[tokio::test]
async fn check_resolves_but_never_connects() {
    let server = FakeHttp::start(|_| FakeResponse::ok("text/plain", "hi")).await;
    let tool = WebFetch::new(client(StaticResolver::new(), &[&server]));
    tool.check(&ctx(), &json!({"url": server.url("/")}))
        .await
        .unwrap();
    assert_eq!(server.connections(), 0);
    let e = tool
        .check(&ctx(), &json!({"url": "http://unknown.test/"}))
        .await
        .unwrap_err();
    assert_eq!(e.code, "egress.unavailable");
}

#[tokio::test]
async fn a_redirect_to_a_private_address_is_refused() {
    let canary = Canary::start().await;
    let location = format!("http://127.0.0.1:{}/", canary.port());
    let server = FakeHttp::start(move |_| FakeResponse::redirect(302, &location)).await;
    let tool = WebFetch::new(client(StaticResolver::new(), &[&server]));
    let e = fetch(&tool, json!({"url": server.url("/")}))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code.as_str(), e.message.contains("addr.loopback")),
        ("security.ssrf_blocked", true),
        "{e}"
    );
    assert_eq!(canary.connections(), 0);
}

#[test]
fn tag_nesting_is_estimated_in_linear_time() {
    assert_eq!(
        html::tag_nesting(PAGE),
        2,
        "html, head and body close implicitly; ul nests in body"
    );
    assert_eq!(html::tag_nesting(&"<div>".repeat(1000)), 1000);
    assert_eq!(html::tag_nesting(&"<div></div>".repeat(1000)), 1);
    for flat in ["<p>", "<li>", "<br>", "<img src=x>", "<td>", "<x/>"] {
        assert_eq!(html::tag_nesting(&flat.repeat(1000)), 0, "{flat}");
    }
    assert_eq!(
        html::tag_nesting("<!-- <div><div> --><script>'<div><div>'</script><style></STYLE>"),
        0
    );
    // Inputs that make naive scanners quadratic finish at once.
    let started = std::time::Instant::now();
    for hostile in [
        "<a".repeat(200_000),
        format!("{}>", "<a ".repeat(200_000)),
        "<script>".repeat(100_000),
        "</".repeat(200_000),
        "<!--".repeat(100_000),
        "<!".repeat(200_000),
        "<x></x".repeat(100_000),
    ] {
        let _ = html::tag_nesting(&hostile);
        let _ = html::strip_html(&hostile);
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn the_text_fallback_keeps_text_and_drops_code() {
    let text = html::strip_html(
        "<html><head><title>t</title><script>var a = '<b>';</script></head><body><h1>Big</h1><p>a &amp; b<br>c</p><!-- hidden --><style>x{}</style>d 1 < 2</body></html>",
    );
    assert_eq!(text, "Big\na & b\nc\nd 1 < 2");
}

#[test]
fn deep_pages_do_not_overflow_the_stack() {
    let deep = format!(
        "{}deep text{}",
        "<div>".repeat(100_000),
        "</div>".repeat(100_000)
    );
    // Under the pre-scan limit, over the converter's depth limit.
    let deep_tables = format!(
        "{}deep cell{}",
        "<table><tr><td>".repeat(60),
        "</td></tr></table>".repeat(60)
    );
    let at_limit = format!(
        "{}<p>x <b>y</b></p>{}",
        "<blockquote><ul><li>".repeat(MAX_DEPTH / 3 - 2),
        "</li></ul></blockquote>".repeat(MAX_DEPTH / 3 - 2)
    );
    // Worker threads have small stacks: convert on one.
    let out = std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(move || {
            let started = std::time::Instant::now();
            let texts = (
                html::to_markdown(&deep).markdown,
                html::to_markdown(&at_limit).markdown,
                html::to_markdown(&deep_tables).markdown,
            );
            (texts, started.elapsed())
        })
        .unwrap()
        .join()
        .unwrap();
    let ((deep, at_limit, tables), took) = out;
    assert_eq!(deep, "deep text");
    assert!(
        at_limit.contains("**y**"),
        "the converter still runs at the limit: {at_limit}"
    );
    assert_eq!(tables, "deep cell");
    assert!(took < std::time::Duration::from_secs(10), "{took:?}");
}

const BRAVE: &str = r#"{"web": {"results": [
  {"title": "Rust <strong>Lang</strong>", "url": "https://www.rust-lang.org/", "description": "A language &amp; <strong>more</strong>"},
  {"title": "Docs", "url": "https://doc.rust-lang.org/", "description": ""},
  {"title": "Third", "url": "https://example.com/3", "description": "x"}
]}}"#;

#[tokio::test]
async fn brave_is_used_with_a_key() {
    let brave = FakeHttp::start(|_| FakeResponse::ok("application/json", BRAVE)).await;
    let ddg = Canary::start().await;
    let tool = WebSearch::new(
        client(StaticResolver::new(), &[&brave]),
        Some(Secret::new("brave-key-123")),
    )
    .with_endpoints(
        brave.url("/res/v1/web/search"),
        format!("http://127.0.0.1:{}/html/", ddg.port()),
    );
    let args = json!({"query": "rust lang", "count": 2});
    tool.check(&ctx(), &args).await.unwrap();
    let out = tool.call(&ctx(), &args).await.unwrap().content;
    assert!(
        out.contains("1. Rust Lang\n   https://www.rust-lang.org/\n   A language & more"),
        "{out}"
    );
    assert!(
        out.contains("2. Docs\n   https://doc.rust-lang.org/"),
        "{out}"
    );
    assert!(!out.contains("Third"), "count is honoured: {out}");
    let seen = &brave.requests()[0];
    assert_eq!(seen.target, "/res/v1/web/search?q=rust+lang&count=2");
    assert_eq!(seen.header("x-subscription-token"), Some("brave-key-123"));
    assert_eq!(seen.header("accept"), Some("application/json"));
    assert_eq!(ddg.connections(), 0);
}

#[tokio::test]
async fn brave_errors_do_not_leak_the_key() {
    let brave = FakeHttp::start(|_| FakeResponse::status(401)).await;
    let tool = WebSearch::new(
        client(StaticResolver::new(), &[&brave]),
        Some(Secret::new("brave-key-123")),
    )
    .with_endpoints(brave.url("/s"), "http://127.0.0.1:9/");
    let e = tool.call(&ctx(), &json!({"query": "q"})).await.unwrap_err();
    assert!(e.message.contains("401"), "{e}");
    assert!(!e.message.contains("brave-key-123"), "{e}");
}

const DDG: &str = r##"<html><body>
<div class="result results_links result--ad"><h2 class="result__title"><a class="result__a" href="https://ads.example/">An ad</a></h2>
  <a class="result__snippet" href="#">Buy now</a></div>
<div class="result results_links results_links_deep web-result">
  <h2 class="result__title"><a rel="nofollow" class="result__a" href="//duckduckgo.com/l/?uddg=https%3A%2F%2Fwww.rust%2Dlang.org%2F&amp;rut=abc">Rust <b>Programming</b> Language</a></h2>
  <a class="result__snippet" href="//duckduckgo.com/l/?uddg=x">A language empowering <b>everyone</b>.</a></div>
<div class="result results_links web-result">
  <h2 class="result__title"><a class="result__a" href="https://doc.rust-lang.org/book/">The Book</a></h2></div>
</body></html>"##;

#[tokio::test]
async fn duckduckgo_is_used_without_a_key_and_parsed() {
    let ddg = FakeHttp::start(|_| FakeResponse::ok("text/html", DDG)).await;
    let brave = Canary::start().await;
    let tool = WebSearch::new(client(StaticResolver::new(), &[&ddg]), None).with_endpoints(
        format!("http://127.0.0.1:{}/s", brave.port()),
        ddg.url("/html/"),
    );
    let out = tool
        .call(&ctx(), &json!({"query": "rust & co"}))
        .await
        .unwrap()
        .content;
    assert!(out.contains("(DuckDuckGo)"), "{out}");
    assert!(
        out.contains("1. Rust Programming Language\n   https://www.rust-lang.org/\n   A language empowering everyone."),
        "{out}"
    );
    assert!(
        out.contains("2. The Book\n   https://doc.rust-lang.org/book/"),
        "{out}"
    );
    assert!(
        !out.contains("An ad") && !out.contains("Buy now"),
        "ads are skipped: {out}"
    );
    assert_eq!(ddg.requests()[0].target, "/html/?q=rust+%26+co");
    assert_eq!(brave.connections(), 0);
}

#[tokio::test]
async fn search_refusals_match_between_check_and_call() {
    let canary = Canary::start().await;
    let endpoint = format!("http://127.0.0.1:{}/html/", canary.port());
    let tool = WebSearch::new(client(StaticResolver::new(), &[]), None)
        .with_endpoints("http://unused.test/", endpoint);
    let args = json!({"query": "q"});
    let checked = tool.check(&ctx(), &args).await.unwrap_err();
    let called = tool.call(&ctx(), &args).await.unwrap_err();
    assert_eq!(checked, called);
    assert_eq!(called.code, "security.ssrf_blocked");
    for bad in [
        json!({"query": ""}),
        json!({"query": "q", "count": 0}),
        json!({"query": "q", "count": 21}),
        json!({"q": "x"}),
    ] {
        assert_eq!(
            tool.check(&ctx(), &bad).await.unwrap_err().code,
            "tool.invalid_args",
            "{bad}"
        );
    }
    assert_eq!(canary.connections(), 0);
}

#[test]
fn ddg_hits_handle_odd_pages() {
    assert!(html::ddg_hits("", 5).is_empty());
    assert!(html::ddg_hits("<a class=result__a href='javascript:alert(1)'>x</a>", 5).is_empty());
    let hits = html::ddg_hits(DDG, 1);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].url, "https://www.rust-lang.org/");
}
