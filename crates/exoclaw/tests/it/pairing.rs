//! Browser pairing through the real binary: request -> approve (CLI or API)
//! -> poll -> credential once; expiry, single use, concurrent approvals,
//! brute-force lockout, rate limits of the public routes, bad input.

use crate::support::*;
use exoclaw_core::TenantId;
use exoclaw_core::model::{NewUser, Role};
use exoclaw_core::store::Store;
use exoclaw_store::{SqliteOptions, SqliteStore};
use serde_json::{Value, json};
use sha2::Digest as _;
use std::time::Duration;

struct Pairing {
    home: TestHome,
    gw: Gateway,
    cfg: String,
    _dir: tempfile::TempDir,
}

fn start(gateway: Value) -> Pairing {
    let home = TestHome::new();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    std::fs::write(&cfg, json!({ "gateway": gateway }).to_string()).unwrap();
    let cfg = cfg.to_str().unwrap().to_owned();
    let gw = Gateway::start(
        &home.path,
        &[("EXOCLAW_GATEWAY_TOKEN", TOKEN), ("EXOCLAW_CONFIG", &cfg)],
    );
    Pairing {
        home,
        gw,
        cfg,
        _dir: dir,
    }
}

impl Pairing {
    fn cli(&self, args: &[&str]) -> std::process::Output {
        run(
            &self.home.path,
            &[
                ("EXOCLAW_GATEWAY_TOKEN", TOKEN),
                ("EXOCLAW_CONFIG", &self.cfg),
            ],
            args,
        )
    }

    fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        request(self.gw.addr, "POST", path, token, Some(&body.to_string()))
    }

    fn ask(&self, user: &str) -> Response {
        self.post("/v1/pairing/request", None, &json!({ "user_id": user }))
    }

    /// `(request_id, code)` of a new request.
    fn ask_ok(&self, user: &str) -> (String, String) {
        let r = self.ask(user);
        assert_eq!(r.status, 201, "{}", r.body);
        let v = r.json();
        (
            v["request_id"].as_str().unwrap().to_owned(),
            v["code"].as_str().unwrap().to_owned(),
        )
    }

    fn status(&self, id: &str) -> Response {
        self.gw.get(&format!("/v1/pairing/status/{id}"), None)
    }

    /// A store beside the running gateway (SQLite in WAL mode).
    fn with_store<T>(&self, f: impl AsyncFnOnce(&dyn Store) -> T) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let store = SqliteStore::open(SqliteOptions::new(self.home.file("exoclaw.db")))
                    .await
                    .unwrap();
                let out = f(&store).await;
                store.close().await;
                out
            })
    }

    fn create_user(&self, name: &str) -> String {
        self.with_store(async |s| {
            s.create_user(
                &TenantId::new("default"),
                &NewUser {
                    name: name.to_owned(),
                    role: Role::User,
                },
            )
            .await
            .unwrap()
            .id
            .to_string()
        })
    }
}

fn sha256_hex(s: &str) -> String {
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

#[test]
fn browser_pairs_through_cli_approval_and_gets_its_credential_once() {
    let p = start(json!({"rate_limit_rpm": 0}));
    let user = p.create_user("alice");
    let (id, code) = p.ask_ok(&user);
    assert_eq!(code.len(), 8);
    assert_eq!(id.len(), 32);
    let r = p.status(&id);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["status"], "pending");
    assert_eq!(
        r.headers.get("cache-control").map(String::as_str),
        Some("no-store")
    );
    // The admin sees the request (never a hash or the request id).
    let listed = request(p.gw.addr, "GET", "/v1/pairing", Some(TOKEN), None);
    assert_eq!(listed.status, 200);
    assert_eq!(listed.json()["pending"][0]["user_id"], user.as_str());
    assert!(!listed.body.contains(&id) && !listed.body.contains("hash"));
    let out = p.cli(&["pairing", "approve", &code.to_lowercase(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["status"], "approved");
    assert_eq!(v["user_id"], user.as_str());
    // First poll after approval: the credential, once.
    let r = p.status(&id).json();
    assert_eq!(r["status"], "approved", "{r}");
    assert_eq!(r["user_id"], user.as_str());
    let token = r["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("exd_") && token.len() == 47, "{token}");
    let again = p.status(&id).json();
    assert_eq!(again, json!({"status": "issued"}));
    // The code is single use.
    let out = p.cli(&["pairing", "approve", &code]);
    assert!(!out.status.success());
    assert!(
        error_line(&out).contains("already issued"),
        "{}",
        stderr(&out)
    );
    // The credential is a bearer token for that user.
    let me = request(p.gw.addr, "GET", "/v1/me", Some(&token), None);
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.json()["user_id"], user.as_str());
    assert_eq!(me.json()["role"], "user");
    let hash = sha256_hex(&token);
    let device = p
        .with_store(async |s| s.find_device_by_token_hash(&hash).await.unwrap())
        .expect("device stored by hash");
    assert_eq!(device.user_id.as_str(), user);
    assert!(device.revoked_at.is_none());
    let out = p.cli(&["pairing", "list", "--json"]);
    let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["devices"][0]["id"], device.id.as_str());
    assert_eq!(v["pending"], json!([]));
    assert!(!stdout(&out).contains(&hash));
    // Revoke (API), then again (conflict); the CLI refuses an unknown id.
    let r = request(
        p.gw.addr,
        "DELETE",
        &format!("/v1/pairing/devices/{}", device.id),
        Some(TOKEN),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["device"]["revoked_at"].is_i64());
    let out = p.cli(&["pairing", "revoke", &device.id]);
    assert!(
        error_line(&out).contains("already revoked"),
        "{}",
        stderr(&out)
    );
    let out = p.cli(&["pairing", "revoke", "nope"]);
    assert!(
        error_line(&out).contains("no device nope"),
        "{}",
        stderr(&out)
    );
    let revoked = p
        .with_store(async |s| s.find_device_by_token_hash(&hash).await.unwrap())
        .unwrap();
    assert!(revoked.revoked_at.is_some());
    // A revoked device is refused and falls back to pairing.
    let me = request(p.gw.addr, "GET", "/v1/me", Some(&token), None);
    assert_eq!(me.status, 401, "{}", me.body);
    // A revoked device pairs again from scratch.
    let (id2, _) = p.ask_ok(&user);
    assert_eq!(p.status(&id2).json()["status"], "pending");
    // Neither code nor credential reached the log.
    let logs = p.gw.log_lines().join("\n");
    assert!(!logs.contains(&code) && !logs.contains(&token));
    // Unknown and malformed request ids are 404.
    for bad in ["0123456789abcdef0123456789abcdef", "nothex", "..%2F..%2Fx"] {
        let r = p.status(bad);
        assert_eq!(r.status, 404, "{bad}: {}", r.body);
    }
}

#[test]
fn expired_codes_are_refused_and_polls_say_expired() {
    let p = start(json!({"rate_limit_rpm": 0, "pairing_ttl_sec": 1}));
    let user = p.create_user("bob");
    let (id, code) = p.ask_ok(&user);
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(p.status(&id).json()["status"], "expired");
    let out = p.cli(&["pairing", "approve", &code]);
    assert!(!out.status.success());
    assert!(
        error_line(&out).contains("unknown or expired"),
        "{}",
        stderr(&out)
    );
    let r = p.post("/v1/pairing/approve", Some(TOKEN), &json!({ "code": code }));
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], "pairing.invalid_code");
}

#[test]
fn concurrent_approvals_of_one_code_succeed_once() {
    let p = start(json!({"rate_limit_rpm": 0}));
    let user = p.create_user("carol");
    let (id, code) = p.ask_ok(&user);
    let outcomes: Vec<bool> = std::thread::scope(|s| {
        let mut handles = Vec::new();
        for i in 0..10 {
            let p = &p;
            let code = code.clone();
            handles.push(s.spawn(move || {
                if i % 3 == 0 {
                    p.cli(&["pairing", "approve", &code]).status.success()
                } else {
                    let r = p.post("/v1/pairing/approve", Some(TOKEN), &json!({ "code": code }));
                    assert!(r.status == 200 || r.status == 409, "{}", r.body);
                    if r.status == 409 {
                        assert_eq!(r.json()["error"]["code"], "pairing.already_decided");
                    }
                    r.status == 200
                }
            }));
        }
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(outcomes.iter().filter(|ok| **ok).count(), 1, "{outcomes:?}");
    // Parallel polls: the credential is handed out once.
    let polls: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6).map(|_| s.spawn(|| p.status(&id).json())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        polls.iter().filter(|v| v["status"] == "approved").count(),
        1,
        "{polls:?}"
    );
    assert!(
        polls
            .iter()
            .all(|v| v["status"] == "approved" || v["status"] == "issued")
    );
}

#[test]
fn brute_forcing_codes_locks_approval_out() {
    let p = start(json!({"rate_limit_rpm": 0}));
    let user = p.create_user("dave");
    let (_, code) = p.ask_ok(&user);
    for guess in ["AAAAAAAA", "BBBBBBBB", "CCCCCCCC", "DDDDDDDD", "EEEEEEEE"] {
        let r = p.post(
            "/v1/pairing/approve",
            Some(TOKEN),
            &json!({ "code": guess }),
        );
        assert_eq!(r.status, 404, "{}", r.body);
        assert_eq!(r.json()["error"]["code"], "pairing.invalid_code");
    }
    // Locked now, even for the right code, for the API and the CLI alike.
    let r = p.post("/v1/pairing/approve", Some(TOKEN), &json!({ "code": code }));
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "pairing.locked");
    let retry: u64 = r.headers["retry-after"].parse().unwrap();
    assert!((800..=900).contains(&retry), "{retry}");
    let out = p.cli(&["pairing", "approve", &code]);
    assert!(error_line(&out).contains("locked"), "{}", stderr(&out));
    let r = p.post("/v1/pairing/deny", Some(TOKEN), &json!({ "code": code }));
    assert_eq!(r.status, 429);
    // Logged as a security event, audited without the code.
    let logs = p.gw.log_lines().join("\n");
    assert!(logs.contains("security.pairing_bruteforce"), "{logs}");
    assert!(!logs.contains(&code));
    let rows = p.with_store(async |s| {
        s.list_audit(&exoclaw_core::model::AuditFilter {
            action_prefix: Some("pairing.".to_owned()),
            ..Default::default()
        })
        .await
        .unwrap()
    });
    assert_eq!(
        rows.iter()
            .filter(|e| e.action == "pairing.approve_failed")
            .count(),
        5
    );
    let text = serde_json::to_string(&rows).unwrap();
    assert!(!text.contains("AAAAAAAA") && !text.contains(&code));
}

#[test]
fn public_pairing_routes_are_rate_limited_and_capped() {
    // The dedicated per-IP limit on new requests, and the cap per user.
    let p = start(json!({"rate_limit_rpm": 0}));
    for _ in 0..3 {
        p.ask_ok("erin");
    }
    let r = p.ask("erin");
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "pairing.too_many_pending");
    assert!(r.headers.contains_key("retry-after"));
    p.ask_ok("frank");
    let r = p.ask("gina");
    assert_eq!(r.status, 429, "the sixth request in a minute: {}", r.body);
    assert_eq!(r.json()["error"]["code"], "rate_limited");
    // The gateway's per-IP limit covers both routes (they are not exempt
    // like the probes).
    let p = start(json!({"rate_limit_rpm": 3}));
    let (id, _) = p.ask_ok("erin");
    let codes: Vec<u16> = (0..4).map(|_| p.status(&id).status).collect();
    assert_eq!(codes, [200, 200, 429, 429]);
    assert_eq!(p.ask("frank").status, 429);
    assert_eq!(p.gw.get("/healthz", None).status, 200, "probes stay exempt");
}

#[test]
fn bad_pairing_input_is_refused() {
    let p = start(json!({"rate_limit_rpm": 0}));
    for body in [
        json!({"user_id": ""}),
        json!({"user_id": "Alice Smith"}),
        json!({"user_id": "x".repeat(65)}),
        json!({"user_id": "a", "role": "owner"}),
        json!({}),
    ] {
        let r = p.post("/v1/pairing/request", None, &body);
        assert!(r.status == 400 || r.status == 422, "{body}: {}", r.body);
    }
    // The admin routes need the gateway token.
    for (method, path) in [
        ("GET", "/v1/pairing"),
        ("POST", "/v1/pairing/approve"),
        ("POST", "/v1/pairing/deny"),
        ("DELETE", "/v1/pairing/devices/x"),
    ] {
        let r = request(
            p.gw.addr,
            method,
            path,
            None,
            Some("{\"code\":\"AAAAAAAA\"}"),
        );
        assert_eq!(r.status, 401, "{method} {path}");
        assert_eq!(r.json()["error"]["code"], "auth.unauthorized");
        let r = request(p.gw.addr, method, path, Some("exd_forged"), None);
        assert_eq!(r.status, 401, "{method} {path}");
    }
    let r = request(
        p.gw.addr,
        "POST",
        "/v1/pairing/approve",
        Some(TOKEN),
        Some("{not json"),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "request.invalid_json");
}

/// People know their user names: a browser may ask with the name (or the
/// id); the status says whom it asked for, the admin's listing resolves it,
/// the approval pairs the right user, and a name that is another user's id
/// is refused as ambiguous. Whether a user exists is never revealed before
/// an admin decides.
#[test]
fn a_browser_pairs_by_user_name_and_the_listing_says_for_whom() {
    let p = start(json!({"rate_limit_rpm": 0}));
    let alice = p.create_user("alice");
    let r = p.post("/v1/pairing/request", None, &json!({"user": "alice"}));
    assert_eq!(r.status, 201, "{}", r.body);
    let (id, code) = (
        r.json()["request_id"].as_str().unwrap().to_owned(),
        r.json()["code"].as_str().unwrap().to_owned(),
    );
    let status = p.status(&id).json();
    assert_eq!(status["status"], "pending");
    assert_eq!(status["user"], "alice", "{status}");
    let listing = stdout(&p.cli(&["pairing", "list"]));
    assert!(
        listing.contains(&format!("user alice (id {alice})")),
        "{listing}"
    );
    assert!(listing.starts_with("PENDING "), "{listing}");
    let out = p.cli(&["pairing", "approve", &code, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["user_id"], alice.as_str(), "the name resolved to the id");
    let r = p.status(&id).json();
    assert_eq!(r["user_id"], alice.as_str(), "{r}");

    // An unknown name is accepted like a known one (nothing revealed);
    // the approval says it does not exist.
    let r = p.post("/v1/pairing/request", None, &json!({"user": "nobody"}));
    assert_eq!(r.status, 201, "{}", r.body);
    let code = r.json()["code"].as_str().unwrap().to_owned();
    let out = p.cli(&["pairing", "approve", &code]);
    assert!(error_line(&out).contains("nobody"), "{}", stderr(&out));

    // A name that is one user's name and another's id: refused.
    let bob = p.create_user("bob");
    let _twin = p.create_user(&bob);
    let r = p.post("/v1/pairing/request", None, &json!({"user": bob}));
    let code = r.json()["code"].as_str().unwrap().to_owned();
    let out = p.cli(&["pairing", "approve", &code]);
    assert!(!out.status.success());
    assert!(
        error_line(&out).contains("pair with the id"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_pairing_request_names_exactly_one_user() {
    let p = start(json!({"rate_limit_rpm": 0}));
    for body in [
        json!({"user": "alice", "user_id": "alice"}),
        json!({}),
        json!({"user": "has space"}),
    ] {
        let r = p.post("/v1/pairing/request", None, &body);
        assert_eq!(r.status, 400, "{body}: {}", r.body);
    }
}
