//! `exoclaw serve`: first start, auth, probes, logs, graceful shutdown.

use crate::support::*;
use std::io::Write as _;
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn first_start_generates_private_secrets_and_prints_the_token_once() {
    let home = TestHome::new();
    let gw = Gateway::start(&home.path, &[]);
    assert_eq!(home.mode(""), 0o700, "data dir");
    assert_eq!(home.mode(".env"), 0o600, ".env");
    assert_eq!(home.mode("exoclaw.db"), 0o600, "database");
    for sub in ["workspace", "skills", "backups", "logs"] {
        assert!(home.file(sub).is_dir(), "{sub}");
    }
    let dotenv = home.dotenv();
    let token = dotenv
        .lines()
        .find_map(|l| l.strip_prefix("EXOCLAW_GATEWAY_TOKEN="))
        .expect("token in .env")
        .to_owned();
    assert!(token.len() >= 32);
    assert!(dotenv.contains("EXOCLAW_ENCRYPTION_KEY="));
    let banner = gw.stdout();
    assert!(banner.contains(&token), "token printed once on first start");
    assert!(banner.contains("grep EXOCLAW_GATEWAY_TOKEN"), "{banner}");
    assert!(banner.contains("rotate"), "{banner}");
    for line in gw.log_lines() {
        assert!(
            !line.contains(&token),
            "token leaked into a log line: {line}"
        );
    }
    assert_eq!(gw.get("/v1/status", Some(&token)).status, 200);
    drop(gw);

    // Second start: same token from .env, nothing printed.
    let gw = Gateway::start(&home.path, &[]);
    assert_eq!(gw.stdout(), "");
    assert_eq!(gw.get("/v1/status", Some(&token)).status, 200);
    assert_eq!(home.dotenv(), dotenv, ".env unchanged on later starts");
}

#[test]
fn healthz_is_public_and_says_nothing_more() {
    let home = TestHome::new();
    let gw = Gateway::start(&home.path, &[("EXOCLAW_GATEWAY_TOKEN", TOKEN)]);
    let r = gw.get("/healthz", None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), serde_json::json!({"status": "ok"}));
    let r = gw.get("/readyz", None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "ready");
}

#[test]
fn every_other_route_requires_the_bearer_token() {
    let home = TestHome::new();
    let cfg = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(cfg.path(), r#"{"gateway": {"rate_limit_rpm": 0}}"#).unwrap();
    let gw = Gateway::start(
        &home.path,
        &[
            ("EXOCLAW_GATEWAY_TOKEN", TOKEN),
            ("EXOCLAW_CONFIG", cfg.path().to_str().unwrap()),
        ],
    );
    let wrong = "x".repeat(TOKEN.len());
    for path in [
        "/v1/status",
        "/v1/secrets",
        "/nope",
        "/v1/nope",
        "/healthz/x",
    ] {
        for token in [None, Some(wrong.as_str()), Some("")] {
            let r = gw.get(path, token);
            assert_eq!(r.status, 401, "{path} with {token:?}");
            assert_eq!(r.json()["error"]["code"], "auth.unauthorized", "{path}");
            assert_eq!(
                r.headers.get("www-authenticate").map(String::as_str),
                Some("Bearer")
            );
        }
    }
    // The root is the dashboard's: it sends a browser to its sign-in page.
    let r = gw.get("/", None);
    assert_eq!(r.status, 303);
    assert_eq!(r.headers.get("location").map(String::as_str), Some("/ui/"));
    // A prefix of the real token, or the token with a suffix, is refused too.
    assert_eq!(
        gw.get("/v1/status", Some(&TOKEN[..TOKEN.len() - 1])).status,
        401
    );
    assert_eq!(gw.get("/v1/status", Some(&format!("{TOKEN}x"))).status, 401);

    let ok = gw.get("/v1/status", Some(TOKEN));
    assert_eq!(ok.status, 200);
    let body = ok.json();
    assert_eq!(body["storage"], "sqlite");
    assert_eq!(body["schema"]["current"], body["schema"]["latest"]);
    let missing = gw.get("/v1/nope", Some(TOKEN));
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"]["code"], "not_found");
    // Failed attempts are logged as security events, without the token.
    let logs = gw.log_lines().join("\n");
    assert!(logs.contains("security.auth_failure"), "{logs}");
    assert!(!logs.contains(&wrong));
}

#[test]
fn every_log_line_of_a_request_carries_its_request_id() {
    let home = TestHome::new();
    let gw = Gateway::start(&home.path, &[("EXOCLAW_GATEWAY_TOKEN", TOKEN)]);
    let r = gw.get("/v1/nope", Some("wrong-token-wrong-token-wrong-token"));
    let id = r.headers.get("x-request-id").expect("x-request-id").clone();
    assert!(id.len() >= 16);
    std::thread::sleep(Duration::from_millis(100));
    let lines: Vec<serde_json::Value> = gw
        .log_lines()
        .iter()
        .map(|l| serde_json::from_str(l).expect("every stderr line is JSON"))
        .collect();
    let mine: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|v| v["span"]["request_id"] == id.as_str())
        .collect();
    let messages: Vec<&str> = mine.iter().filter_map(|v| v["message"].as_str()).collect();
    assert!(
        messages.contains(&"security event: auth.failure deny"),
        "{messages:?}"
    );
    assert!(messages.contains(&"request finished"), "{messages:?}");
    // Two requests get two ids.
    let other = gw.get("/healthz", None);
    assert_ne!(other.headers.get("x-request-id"), Some(&id));
}

#[test]
fn a_client_supplied_request_id_is_not_trusted() {
    let home = TestHome::new();
    let gw = Gateway::start(&home.path, &[("EXOCLAW_GATEWAY_TOKEN", TOKEN)]);
    let mut s = TcpStream::connect(gw.addr).unwrap();
    s.write_all(
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: forged\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let r = read_response(&mut s);
    assert_ne!(
        r.headers.get("x-request-id").map(String::as_str),
        Some("forged")
    );
}

#[test]
fn non_loopback_bind_needs_a_configured_token() {
    let home = TestHome::new();
    let out = run(&home.path, &[("EXOCLAW_HOST", "0.0.0.0")], &["serve"]);
    assert!(!out.status.success());
    let err = error_line(&out);
    assert!(err.contains("refusing to bind 0.0.0.0"), "{err}");
    assert!(err.contains("EXOCLAW_GATEWAY_TOKEN"), "{err}");
    assert!(!home.path.exists(), "nothing created on refusal");

    // With a token configured it binds (the test only talks over loopback).
    let gw = Gateway::start(
        &home.path,
        &[
            ("EXOCLAW_HOST", "0.0.0.0"),
            ("EXOCLAW_GATEWAY_TOKEN", TOKEN),
        ],
    );
    assert!(gw.addr.ip().is_unspecified());
}

#[test]
fn short_tokens_are_refused() {
    let home = TestHome::new();
    let out = run(
        &home.path,
        &[("EXOCLAW_GATEWAY_TOKEN", "too-short")],
        &["serve"],
    );
    assert!(!out.status.success());
    let err = error_line(&out);
    assert!(err.contains("EXOCLAW_GATEWAY_TOKEN"), "{err}");
    assert!(err.contains("at least 32"), "{err}");
    assert!(
        !err.contains("too-short"),
        "the value is never echoed: {err}"
    );
    assert!(!home.path.exists());
}

/// A keep-alive connection the server is already serving (one request done),
/// so a request written on it next is seen at once, even on a loaded machine.
fn served_connection(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 1024];
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("{\"status\":\"ok\"}") {
        let n = std::io::Read::read(&mut s, &mut buf).unwrap();
        assert!(n > 0, "connection closed while priming");
        seen.extend_from_slice(&buf[..n]);
    }
    s
}

#[test]
fn sigterm_stops_accepting_drains_in_flight_requests_and_exits_zero() {
    let home = TestHome::new();
    let mut gw = Gateway::start(&home.path, &[("EXOCLAW_GATEWAY_TOKEN", TOKEN)]);
    // An in-flight request: headers sent, body only half-way.
    let body = r#"{"value": "d7f3a9c2e1b84f60"}"#;
    let mut s = served_connection(gw.addr);
    let head = format!(
        "PUT /v1/secrets/drain HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&body.as_bytes()[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(500));

    gw.signal("TERM");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        TcpStream::connect_timeout(&gw.addr, Duration::from_millis(500)).is_err(),
        "no new connections after SIGTERM"
    );
    s.write_all(&body.as_bytes()[10..]).unwrap();
    let r = read_response(&mut s);
    assert_eq!(r.status, 204, "the in-flight request completes: {r:?}");
    let status = gw.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));

    // The drained write is durable.
    let out = run(
        &home.path,
        &[("EXOCLAW_GATEWAY_TOKEN", TOKEN)],
        &["secrets", "list"],
    );
    assert!(stdout(&out).contains("tenant  drain"), "{}", stdout(&out));
}

#[test]
fn sigint_exits_zero_and_grace_period_bounds_the_drain() {
    let home = TestHome::new();
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("config.json");
    std::fs::write(&cfg, r#"{"gateway": {"shutdown_grace_sec": 1}}"#).unwrap();
    let cfg = cfg.to_str().unwrap().to_owned();
    let mut gw = Gateway::start(
        &home.path,
        &[("EXOCLAW_GATEWAY_TOKEN", TOKEN), ("EXOCLAW_CONFIG", &cfg)],
    );
    // A request that never finishes its body.
    let mut s = served_connection(gw.addr);
    s.write_all(
        format!("PUT /v1/secrets/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{")
            .as_bytes(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let t = std::time::Instant::now();
    gw.signal("INT");
    let status = gw.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "waited for the grace period"
    );
    let logs = gw.log_lines().join("\n");
    assert!(logs.contains("grace period over"), "{logs}");
}

#[test]
fn secrets_api_stores_values_it_never_returns() {
    let home = TestHome::new();
    let gw = Gateway::start(&home.path, &[("EXOCLAW_GATEWAY_TOKEN", TOKEN)]);
    let value = "sk-live-value-that-must-not-come-back";
    let r = request(
        gw.addr,
        "PUT",
        "/v1/secrets/openai_key",
        Some(TOKEN),
        Some(&format!(
            r#"{{"value": "{value}", "owner": "provider:openai"}}"#
        )),
    );
    assert_eq!(r.status, 204, "{r:?}");
    let list = gw.get("/v1/secrets", Some(TOKEN));
    assert_eq!(list.status, 200);
    assert_eq!(list.json()["secrets"][0]["name"], "openai_key");
    assert_eq!(list.json()["secrets"][0]["owner"], "provider:openai");
    assert!(!list.body.contains(value));
    let db = std::fs::read(home.file("exoclaw.db")).unwrap();
    let wal = std::fs::read(home.file("exoclaw.db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(
            !bytes.windows(value.len()).any(|w| w == value.as_bytes()),
            "plaintext found on disk"
        );
    }
    // Bad input gets a clear error.
    let bad = request(
        gw.addr,
        "PUT",
        "/v1/secrets/x",
        Some(TOKEN),
        Some("{not json"),
    );
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"]["code"], "request.invalid_json");
    let bad = request(
        gw.addr,
        "PUT",
        "/v1/secrets/bad%20name",
        Some(TOKEN),
        Some(r#"{"value":"v"}"#),
    );
    assert_eq!(bad.status, 400);
    // Over the 1 MB body limit: refused from the Content-Length alone.
    let mut s = TcpStream::connect(gw.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        format!("PUT /v1/secrets/big HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", 2 * 1024 * 1024)
            .as_bytes(),
    )
    .unwrap();
    let r = read_response(&mut s);
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(r.json()["error"]["code"], "request.too_large");
    let del = request(
        gw.addr,
        "DELETE",
        "/v1/secrets/openai_key?owner=provider:openai",
        Some(TOKEN),
        None,
    );
    assert_eq!(del.status, 204);
    let again = request(
        gw.addr,
        "DELETE",
        "/v1/secrets/openai_key?owner=provider:openai",
        Some(TOKEN),
        None,
    );
    assert_eq!(again.status, 404);
}

fn get_with(gw: &Gateway, path: &str, token: Option<&str>, extra: &str) -> Response {
    let mut s = TcpStream::connect(gw.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{auth}{extra}Connection: close\r\n\r\n"
    )
    .unwrap();
    read_response(&mut s)
}

#[test]
fn rate_limits_per_ip_and_user_answer_429_with_retry_after() {
    let home = TestHome::new();
    let cfg = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(cfg.path(), r#"{"gateway": {"rate_limit_rpm": 3}}"#).unwrap();
    let cfg_path = cfg.path().to_str().unwrap().to_owned();
    let gw = Gateway::start(
        &home.path,
        &[
            ("EXOCLAW_GATEWAY_TOKEN", TOKEN),
            ("EXOCLAW_CONFIG", &cfg_path),
        ],
    );
    // Token guessing is throttled too: failures count against the address.
    for _ in 0..3 {
        assert_eq!(
            gw.get("/v1/status", Some("wrong-token-wrong-token-wrong-token"))
                .status,
            401
        );
    }
    let r = gw.get("/v1/status", Some(TOKEN));
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["error"]["code"], "rate_limited");
    let after: u64 = r.headers["retry-after"].parse().unwrap();
    assert!((1..=20).contains(&after), "{after}");
    // Probes are never limited.
    for _ in 0..10 {
        assert_eq!(gw.get("/healthz", None).status, 200);
        assert_eq!(gw.get("/readyz", None).status, 200);
    }
    // A client cannot pick another bucket with X-Forwarded-For.
    let r = get_with(
        &gw,
        "/v1/status",
        Some(TOKEN),
        "X-Forwarded-For: 198.51.100.7\r\n",
    );
    assert_eq!(r.status, 429, "an untrusted X-Forwarded-For is ignored");
    assert!(gw.log_lines().join("\n").contains("security.rate_limited"));
    drop(gw);

    // Behind a trusted proxy each forwarded client has its own bucket; the
    // user bucket still caps the one token across clients.
    std::fs::write(
        cfg.path(),
        r#"{"gateway": {"rate_limit_rpm": 3, "trusted_proxies": ["127.0.0.1"]}}"#,
    )
    .unwrap();
    let gw = Gateway::start(
        &home.path,
        &[
            ("EXOCLAW_GATEWAY_TOKEN", TOKEN),
            ("EXOCLAW_CONFIG", &cfg_path),
        ],
    );
    let mut ok = 0;
    for i in 0..6 {
        let r = get_with(
            &gw,
            "/v1/status",
            Some(TOKEN),
            &format!("X-Forwarded-For: 198.51.100.{i}\r\n"),
        );
        if r.status == 200 {
            ok += 1;
        } else {
            assert_eq!(r.status, 429);
        }
    }
    assert_eq!(ok, 3, "the per-user bucket allows 3 in a burst");
    for i in 10..13 {
        let r = get_with(
            &gw,
            "/nope",
            Some("bad-token-bad-token-bad-token-bad"),
            &format!("X-Forwarded-For: 198.51.100.{i}\r\n"),
        );
        assert_eq!(r.status, 401, "separate address buckets behind the proxy");
    }
}
