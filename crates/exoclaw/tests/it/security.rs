//! Regression tests for the findings of the outside security test (issue
//! 21), each through the real binary, on SQLite and (where storage is
//! involved) PostgreSQL: privilege escalation through pairing and
//! `EXOCLAW_OWNER_IDS`, revocation reaching open WebSockets, tenant-scoped
//! scrubbing, connection exhaustion, the WebSocket rate limit, rank rules,
//! `405`, close code `1009`, ambiguous credentials, `/metrics` scope and who
//! decides approvals.

use crate::chat::{Setup, setup_with};
use crate::support::*;
use crate::ws::{call, connected, open, recv, send};
use exoclaw_providers::fake::Reply;
use serde_json::{Value, json};
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use tungstenite::Message;

/// A gateway with the fake provider on `backend` (`None`: SQLite), and the
/// env its CLI needs.
struct Sec {
    s: Setup,
    env: Vec<(&'static str, String)>,
}

impl Sec {
    fn start(config: &str, backend: Option<&str>, extra: &[(&'static str, &str)]) -> Self {
        let mut env: Vec<(&'static str, String)> = vec![("EXOCLAW_GATEWAY_TOKEN", TOKEN.into())];
        if let Some(dsn) = backend {
            env.push(("EXOCLAW_POSTGRES_DSN", dsn.to_owned()));
        }
        for (k, v) in extra {
            env.push((k, (*v).to_owned()));
        }
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let s = setup_with(config, &pairs[1..]);
        Self { s, env }
    }

    fn cli(&self, args: &[&str]) -> std::process::Output {
        let pairs: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        run(&self.s.home.path, &pairs, args)
    }

    fn cli_json(&self, args: &[&str]) -> Value {
        let out = self.cli(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
    }

    /// A user and their first key: `(id, key)`.
    fn user(&self, name: &str, role: &str, tenant: &str) -> (String, String) {
        let v = self.cli_json(&[
            "users", "add", name, "--role", role, "--tenant", tenant, "--json",
        ]);
        (
            v["id"].as_str().unwrap().to_owned(),
            v["api_key"].as_str().unwrap().to_owned(),
        )
    }

    fn req(&self, method: &str, path: &str, key: Option<&str>, body: Option<Value>) -> Response {
        let body = body.map(|b| b.to_string());
        request(self.s.gw.addr, method, path, key, body.as_deref())
    }

    fn tenant(&self, id: &str) {
        let r = self.req("POST", "/v1/tenants", Some(TOKEN), Some(json!({"id": id})));
        assert_eq!(r.status, 201, "{}", r.body);
    }
}

fn code(r: &Response) -> String {
    r.json()["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Run `f` on SQLite and, when the harness has a cluster, on PostgreSQL.
fn on_both_backends(f: impl Fn(Option<&str>)) {
    f(None);
    if let Some(dsn) = crate::postgres::fresh_database() {
        f(Some(&dsn));
    }
}

// --- 1. pairing obeys the rank rule -----------------------------------------

fn pairing_obeys_the_rank_rule(backend: Option<&str>) {
    let sec = Sec::start("{}", backend, &[]);
    let (owner_id, _) = sec.user("root2", "owner", "default");
    let (user_id, _) = sec.user("carol", "user", "default");
    let (_, admin) = sec.user("adam", "admin", "default");
    let ask = |user: &str| {
        let r = sec.req(
            "POST",
            "/v1/pairing/request",
            None,
            Some(json!({"user_id": user})),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        let v = r.json();
        (
            v["request_id"].as_str().unwrap().to_owned(),
            v["code"].as_str().unwrap().to_owned(),
        )
    };
    // An admin approving a request for an owner: refused, nothing issued.
    let (rid, code_owner) = ask(&owner_id);
    let r = sec.req(
        "POST",
        "/v1/pairing/approve",
        Some(&admin),
        Some(json!({"code": code_owner})),
    );
    assert_eq!(
        (r.status, code(&r)),
        (403, "auth.forbidden".into()),
        "{}",
        r.body
    );
    assert!(r.body.contains("owner"), "{}", r.body);
    let status = sec
        .s
        .gw
        .get(&format!("/v1/pairing/status/{rid}"), None)
        .json();
    assert_eq!(status["status"], "pending", "{status}");
    // The same admin pairs a plain user's browser.
    let (rid2, code_user) = ask(&user_id);
    let r = sec.req(
        "POST",
        "/v1/pairing/approve",
        Some(&admin),
        Some(json!({"code": code_user})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let status = sec
        .s
        .gw
        .get(&format!("/v1/pairing/status/{rid2}"), None)
        .json();
    assert_eq!(status["status"], "approved");
    // An owner approves the owner's request; the device is an owner.
    let r = sec.req(
        "POST",
        "/v1/pairing/approve",
        Some(TOKEN),
        Some(json!({"code": code_owner})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let status = sec
        .s
        .gw
        .get(&format!("/v1/pairing/status/{rid}"), None)
        .json();
    let device = status["token"].as_str().unwrap();
    assert_eq!(
        sec.req("GET", "/v1/me", Some(device), None).json()["role"],
        "owner"
    );
}

#[test]
fn finding_1_an_admin_cannot_approve_an_owners_browser() {
    on_both_backends(pairing_obeys_the_rank_rule);
}

// --- 2. EXOCLAW_OWNER_IDS names one user --------------------------------------

fn owner_ids_name_one_user(backend: Option<&str>) {
    let sec = Sec::start("{}", backend, &[("EXOCLAW_OWNER_IDS", "boss")]);
    sec.tenant("acme");
    let (_, acme_admin) = sec.user("acme-admin", "admin", "acme");
    // An admin of another tenant creates `boss`: a plain user there.
    let r = sec.req(
        "POST",
        "/v1/users",
        Some(&acme_admin),
        Some(json!({"name": "boss"})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["role"], "user");
    let boss_key = r.json()["api_key"].as_str().unwrap().to_owned();
    let me = sec.req("GET", "/v1/me", Some(&boss_key), None).json();
    assert_eq!(me["role"], "user", "{me}");
    let r = sec.req("GET", "/v1/tenants", Some(&boss_key), None);
    assert_eq!(r.status, 403);
    let r = sec.req("GET", "/v1/users?tenant=default", Some(&boss_key), None);
    assert_eq!(r.status, 403);
    // In the default tenant the name makes an owner: an admin may not
    // create it, an owner may (and the answer says owner).
    let (_, admin) = sec.user("dora", "admin", "default");
    let r = sec.req(
        "POST",
        "/v1/users",
        Some(&admin),
        Some(json!({"name": "boss"})),
    );
    assert_eq!(
        (r.status, code(&r)),
        (403, "auth.forbidden".into()),
        "{}",
        r.body
    );
    assert!(r.body.contains("EXOCLAW_OWNER_IDS"), "{}", r.body);
    let r = sec.req(
        "POST",
        "/v1/users",
        Some(TOKEN),
        Some(json!({"name": "boss"})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["role"], "owner");
    // `security audit` flags the name that also exists in another tenant.
    let audit = sec.cli_json(&["security", "audit", "--json"]);
    let f = audit["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "access.owner_ids")
        .unwrap()
        .clone();
    assert_eq!(f["severity"], "warn", "{f}");
    assert!(
        f["reason"].as_str().unwrap().contains("other tenant"),
        "{f}"
    );
}

#[test]
fn finding_2_owner_ids_match_one_user_not_a_name_in_any_tenant() {
    on_both_backends(owner_ids_name_one_user);
}

// --- 3. revocation reaches open WebSockets ----------------------------------

/// A WebSocket connected with `key`.
fn ws_with(gw: &Gateway, key: &str) -> crate::ws::Ws {
    let mut ws = open(gw, &[]).unwrap();
    let (r, _) = call(
        &mut ws,
        "c",
        "connect",
        json!({"token": key, "protocol": 1}),
    );
    assert_eq!(r["ok"], true, "{r}");
    ws
}

/// Read until the close frame: its code, or `None` if the socket ended
/// without one; panics if nothing ends it within `limit`.
fn close_code(ws: &mut crate::ws::Ws, limit: Duration) -> Option<u16> {
    ws.get_mut()
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        match ws.read() {
            Ok(Message::Close(c)) => return c.map(|c| u16::from(c.code)),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return None,
        }
    }
    panic!("the socket stayed open for {limit:?}");
}

fn revocation_closes_sockets(backend: Option<&str>) {
    let sec = Sec::start(
        r#"{"gateway": {"credential_recheck_sec": 1}}"#,
        backend,
        &[],
    );
    let gw = &sec.s.gw;
    let (_, admin) = sec.user("adam", "admin", "default");

    // A key revoked through the API: closed at once (4401), its run stopped.
    let (_, key) = sec.user("ann", "user", "default");
    let keys = sec.req("GET", "/v1/keys", Some(&key), None).json();
    let key_id = keys["keys"][0]["id"].as_str().unwrap().to_owned();
    let mut ws = ws_with(gw, &key);
    sec.s.fake.push(
        Reply::text("a long answer that stalls")
            .deltas(4)
            .stall_after(2, Duration::from_secs(30)),
    );
    let (r, mut events) = call(&mut ws, "1", "chat.send", json!({"message": "go"}));
    assert_eq!(r["ok"], true, "{r}");
    let session = r["result"]["session_id"].as_str().unwrap().to_owned();
    while !events.iter().any(|e| e["event"] == "chat.delta") {
        events.push(recv(&mut ws));
    }
    let started = Instant::now();
    let r = sec.req("DELETE", &format!("/v1/keys/{key_id}"), Some(&admin), None);
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(close_code(&mut ws, Duration::from_secs(5)), Some(4401));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // The run was cancelled and its partial answer persisted, marked.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let msgs = sec
            .req(
                "GET",
                &format!("/v1/sessions/{session}/messages"),
                Some(TOKEN),
                None,
            )
            .json();
        let last = msgs["messages"].as_array().unwrap().last().cloned();
        if let Some(last) = last
            && last["role"] == "assistant"
        {
            assert_eq!(last["meta"]["partial"], true, "{last}");
            break;
        }
        assert!(Instant::now() < deadline, "the run did not stop: {msgs}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Disabling and deleting the user, and revoking a device: closed.
    for action in ["disable", "delete"] {
        let (uid, key) = sec.user(&format!("u-{action}"), "user", "default");
        let mut ws = ws_with(gw, &key);
        let (r, _) = call(&mut ws, "p", "ping", json!({}));
        assert_eq!(r["ok"], true);
        let r = if action == "disable" {
            sec.req(
                "PATCH",
                &format!("/v1/users/{uid}"),
                Some(&admin),
                Some(json!({"disabled": true})),
            )
        } else {
            sec.req("DELETE", &format!("/v1/users/{uid}"), Some(&admin), None)
        };
        assert!(r.status < 300, "{action}: {}", r.body);
        assert_eq!(
            close_code(&mut ws, Duration::from_secs(5)),
            Some(4401),
            "{action}"
        );
    }
    let (uid, _) = sec.user("dev-user", "user", "default");
    let r = sec.req(
        "POST",
        "/v1/pairing/request",
        None,
        Some(json!({"user_id": uid})),
    );
    let (rid, code_) = (
        r.json()["request_id"].as_str().unwrap().to_owned(),
        r.json()["code"].as_str().unwrap().to_owned(),
    );
    let r = sec.req(
        "POST",
        "/v1/pairing/approve",
        Some(&admin),
        Some(json!({"code": code_})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let polled = sec
        .s
        .gw
        .get(&format!("/v1/pairing/status/{rid}"), None)
        .json();
    let device = polled["token"].as_str().unwrap().to_owned();
    let device_id = polled["device_id"].as_str().unwrap().to_owned();
    let mut ws = ws_with(gw, &device);
    let r = sec.req(
        "DELETE",
        &format!("/v1/pairing/devices/{device_id}"),
        Some(&admin),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(close_code(&mut ws, Duration::from_secs(5)), Some(4401));

    // Revoked elsewhere (the CLI, another process): closed by the periodic
    // re-check, and every method re-checks before it acts.
    let (_, key) = sec.user("cli-revoked", "user", "default");
    let mut ws = ws_with(gw, &key);
    let keys = sec.req("GET", "/v1/keys", Some(&key), None).json();
    let key_id = keys["keys"][0]["id"].as_str().unwrap().to_owned();
    let out = sec.cli(&["keys", "revoke", &key_id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(close_code(&mut ws, Duration::from_secs(5)), Some(4401));
    let (_, key) = sec.user("cli-deleted", "user", "default");
    let mut ws = ws_with(gw, &key);
    let out = sec.cli(&["users", "delete", "cli-deleted"]);
    assert!(out.status.success(), "{}", stderr(&out));
    send(&mut ws, "x", "chat.send", json!({"message": "still here?"}));
    ws.get_mut()
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let reply = match ws.read() {
        Ok(Message::Text(t)) => serde_json::from_str(&t).unwrap(),
        Ok(Message::Close(c)) => json!({"closed": c.map(|c| u16::from(c.code))}),
        other => {
            for l in sec.s.gw.log_lines() {
                eprintln!("{l}");
            }
            panic!("{other:?}");
        }
    };
    assert!(
        reply["ok"] == false || reply.get("closed").is_some(),
        "a deleted user's socket must not act: {reply}"
    );
    let sessions = sec.req("GET", "/v1/sessions", Some(TOKEN), None).json();
    assert!(
        !sessions.to_string().contains("still here"),
        "no session for a deleted user"
    );
}

#[test]
fn finding_3_revocation_closes_open_websockets_and_stops_their_runs() {
    on_both_backends(revocation_closes_sockets);
}

#[test]
fn finding_3_a_rotated_gateway_token_closes_its_sockets_after_the_grace() {
    let sec = Sec::start(r#"{"gateway": {"credential_recheck_sec": 1}}"#, None, &[]);
    let mut ws = connected(&sec.s.gw);
    let out = sec.cli(&["token", "rotate", "--grace", "1s", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (r, _) = call(&mut ws, "p", "ping", json!({}));
    assert_eq!(r["ok"], true, "within the grace period the old token works");
    assert_eq!(close_code(&mut ws, Duration::from_secs(8)), Some(4401));
}

// --- 4 and 10. secrets are scrubbed per tenant ------------------------------

/// An API error that quotes `name` back (an invalid user name).
fn echo(sec: &Sec, key: &str, name: &str) -> String {
    let r = sec.req("POST", "/v1/users", Some(key), Some(json!({"name": name})));
    assert_eq!(r.status, 400, "{}", r.body);
    r.json()["error"]["message"].as_str().unwrap().to_owned()
}

fn scrubbing_is_per_tenant(backend: Option<&str>) {
    let sec = Sec::start("{}", backend, &[]);
    sec.tenant("acme");
    sec.tenant("beta");
    let (_, a) = sec.user("a-admin", "admin", "acme");
    let (_, b) = sec.user("b-admin", "admin", "beta");
    // A word is stored but not registered: nobody's output is rewritten.
    let r = sec.req(
        "PUT",
        "/v1/secrets/word",
        Some(&a),
        Some(json!({"value": "permission"})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["warning"]["code"],
        "secret.not_scrubbed",
        "{}",
        r.body
    );
    let r = sec.req("GET", "/v1/tenants", Some(&b), None);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("lacks the permission"),
        "{}",
        r.body
    );
    // A strong secret of acme: redacted in acme's output only.
    let value = "Zq8v+X3kP9mW2rT7yB4n";
    let r = sec.req(
        "PUT",
        "/v1/secrets/api",
        Some(&a),
        Some(json!({"value": value})),
    );
    assert_eq!(r.status, 204, "{}", r.body);
    assert!(!echo(&sec, &a, value).contains(value), "acme's own output");
    assert!(
        echo(&sec, &b, value).contains(value),
        "another tenant's output is not rewritten (a guess is not confirmed)"
    );
    // The log keeps its structure: the event name of a refusal is intact.
    let r = sec.req("GET", "/v1/me", Some("exk_bad"), None);
    assert_eq!(r.status, 401);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        sec.s
            .gw
            .log_lines()
            .iter()
            .any(|l| l.contains(r#""event":"security.auth_failure""#)),
        "the auth failure event is in the log as itself"
    );
    // Deleted: no longer redacted.
    let r = sec.req("DELETE", "/v1/secrets/api", Some(&a), None);
    assert_eq!(r.status, 204);
    assert!(
        echo(&sec, &a, value).contains(value),
        "unregistered on delete"
    );
}

#[test]
fn finding_4_one_tenants_secrets_never_rewrite_another_tenants_output() {
    on_both_backends(scrubbing_is_per_tenant);
}

#[test]
fn finding_10_stored_secrets_are_scrubbed_after_a_restart() {
    let mut sec = Sec::start("{}", None, &[]);
    let value = "Mv7Kp2Qw9+Zx4Lr8Tn3Ys";
    let r = sec.req(
        "PUT",
        "/v1/secrets/api",
        Some(TOKEN),
        Some(json!({"value": value})),
    );
    assert_eq!(r.status, 204, "{}", r.body);
    assert!(!echo(&sec, TOKEN, value).contains(value));
    sec.s.gw.signal("TERM");
    sec.s.gw.wait_exit(Duration::from_secs(20));
    let pairs: Vec<(&str, &str)> = sec.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut env = pairs.clone();
    let base = sec.s.fake.base_url();
    env.push(("EXOCLAW_OPENAI_API_KEY", "sk-test-fake-key-0123456789"));
    env.push(("EXOCLAW_OPENAI_BASE_URL", &base));
    sec.s.gw = Gateway::start(&sec.s.home.path, &env);
    let out = echo(&sec, TOKEN, value);
    assert!(!out.contains(value), "registered again at start-up: {out}");
}

// --- 5. connection exhaustion ----------------------------------------------

/// Open `n` connections that send half a request head and stall.
fn half_sent(addr: std::net::SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            s
        })
        .collect()
}

/// Whether the server closed `s` (EOF or reset) within `limit` (a response
/// before the close is read past).
fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn finding_5_idle_and_half_sent_connections_are_bounded_and_the_gateway_still_serves() {
    let sec = Sec::start(
        r#"{"gateway": {"header_timeout_sec": 2, "max_unauthenticated_per_ip": 20,
            "max_unauthenticated": 40, "max_connections_per_ip": 60}}"#,
        None,
        &[],
    );
    let addr = sec.s.gw.addr;
    // A flood of 200 stalled connections from one address.
    let mut flood = half_sent(addr, 200);
    // Health checks and authenticated clients are served at once.
    let t = Instant::now();
    assert_eq!(sec.s.gw.get("/healthz", None).status, 200);
    assert_eq!(sec.s.gw.get("/v1/status", Some(TOKEN)).status, 200);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    // The oldest stalled connections were displaced, the rest time out.
    assert!(
        closed_within(&mut flood[0], Duration::from_secs(1)),
        "displaced"
    );
    let last = flood.last_mut().unwrap();
    assert!(
        closed_within(last, Duration::from_secs(5)),
        "header timeout"
    );
    // An idle keep-alive connection is closed after the timeout too.
    let mut idle = TcpStream::connect(addr).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 1024];
    idle.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    assert!(idle.read(&mut buf).unwrap() > 0);
    assert!(
        closed_within(&mut idle, Duration::from_secs(5)),
        "idle keep-alive"
    );
    let metrics = sec.s.gw.get("/metrics", Some(TOKEN)).body;
    assert!(
        metrics.contains("exoclaw_connections_displaced_total{limit=\"unauthenticated_per_ip\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("exoclaw_connections{state=\"authenticated\"}"));
}

#[test]
fn finding_5_authenticated_connections_are_never_displaced_and_past_them_503() {
    let sec = Sec::start(r#"{"gateway": {"max_connections_per_ip": 3}}"#, None, &[]);
    let addr = sec.s.gw.addr;
    // Three keep-alive connections that authenticated.
    let mut held: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(
                format!(
                    "GET /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
                )
                .as_bytes(),
            )
            .unwrap();
            let mut buf = [0u8; 2048];
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let n = s.read(&mut buf).unwrap();
            assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
            s
        })
        .collect();
    let r = sec.s.gw.get("/healthz", None);
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.json()["error"]["code"], "server.busy");
    drop(held.pop());
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(sec.s.gw.get("/healthz", None).status, 200);
}

// --- 6. one rate limit for HTTP and the WebSocket ---------------------------

#[test]
fn finding_6_websocket_methods_share_the_per_user_rate_limit() {
    let sec = Sec::start(r#"{"gateway": {"rate_limit_rpm": 5}}"#, None, &[]);
    let (_, key) = sec.user("rl", "user", "default");
    let mut ws = ws_with(&sec.s.gw, &key);
    let mut refused = 0;
    for i in 0..10 {
        let (r, _) = call(&mut ws, &i.to_string(), "ping", json!({}));
        if r["ok"] == false {
            assert_eq!(r["error"]["code"], "rate_limited", "{r}");
            refused += 1;
        }
    }
    assert!(refused >= 5, "{refused} of 10 refused");
    // The same counters: HTTP is refused for this user now too.
    let r = sec.req("GET", "/v1/me", Some(&key), None);
    assert_eq!(r.status, 429, "{}", r.body);
}

// --- 7 and 8. tool calls are bounded in memory and on disk ----------------

fn invoke(sec: &Sec, body: Value) -> Response {
    sec.req("POST", "/v1/tools/invoke", Some(TOKEN), Some(body))
}

/// The gateway's peak resident memory so far (`VmHWM`), in KiB.
fn peak_rss_kib(gw: &Gateway) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", gw.child.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
fn finding_7_reading_a_huge_line_costs_bounded_memory() {
    let sec = Sec::start("{}", None, &[]);
    // The gateway token's workspace, created by a first call.
    let r = invoke(&sec, json!({"tool": "list_files", "args": {}}));
    assert_eq!(r.status, 200, "{}", r.body);
    let ws = sec.s.home.path.join("workspace/default/owner");
    // 256 MiB without a newline (sparse: no disk).
    let f = std::fs::File::create(ws.join("huge.txt")).unwrap();
    f.set_len(256 << 20).unwrap();
    let before = peak_rss_kib(&sec.s.gw);
    let addr = sec.s.gw.addr;
    let calls: Vec<_> = (0..6)
        .map(|_| {
            std::thread::spawn(move || {
                let body = json!({"tool": "read_file",
                    "args": {"path": "huge.txt", "start_line": 1, "end_line": 1}});
                request(
                    addr,
                    "POST",
                    "/v1/tools/invoke",
                    Some(TOKEN),
                    Some(&body.to_string()),
                )
            })
        })
        .collect();
    for c in calls {
        let r = c.join().unwrap();
        assert!(r.body.contains("larger than"), "{}", r.body);
    }
    let r = invoke(
        &sec,
        json!({"tool": "search", "args": {"pattern": "needle"}}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let grown = peak_rss_kib(&sec.s.gw).saturating_sub(before);
    assert!(
        grown < 128 * 1024,
        "six reads of a 256 MiB line grew the gateway by {} MiB",
        grown / 1024
    );
}

#[test]
fn finding_8_workspaces_have_quotas_for_files_and_commands() {
    let sec = Sec::start(
        r#"{"tools": {"workspace_quota": {"user_mb": 1}}}"#,
        None,
        &[],
    );
    let chunk = "x".repeat(600 * 1024);
    let r = invoke(
        &sec,
        json!({"tool": "write_file", "args": {"path": "a.txt", "content": chunk}}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = invoke(
        &sec,
        json!({"tool": "write_file", "args": {"path": "b.txt", "content": chunk}}),
    );
    assert_eq!(code(&r), "tool.quota_exceeded", "{}", r.body);
    assert!(r.body.contains("1.0 MiB"), "{}", r.body);
    let ws = sec.s.home.path.join("workspace/default/owner");
    assert!(!ws.join("b.txt").exists(), "nothing written");
    // A command cannot write past what is left, and then nothing more runs.
    let r = invoke(
        &sec,
        json!({"tool": "exec", "args": {"command": "head -c 3000000 /dev/zero > big.bin; echo done"}}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let size = std::fs::metadata(ws.join("big.bin")).map_or(0, |m| m.len());
    assert!(size <= 1 << 20, "the command wrote {size} bytes");
    let r = invoke(
        &sec,
        json!({"tool": "exec", "args": {"command": "echo hi"}}),
    );
    assert_eq!(code(&r), "tool.quota_exceeded", "{}", r.body);
    // Truncating is the way back.
    for f in ["a.txt", "big.bin"] {
        let r = invoke(
            &sec,
            json!({"tool": "write_file", "args": {"path": f, "content": ""}}),
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let r = invoke(
        &sec,
        json!({"tool": "exec", "args": {"command": "echo hi"}}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let audit = sec.cli_json(&["security", "audit", "--json"]);
    assert!(
        audit["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["id"] == "workspace.quota" && f["severity"] == "pass"),
        "{audit}"
    );
}

// --- 9. keys follow the rank rule -------------------------------------------

fn key_revocation_obeys_rank(backend: Option<&str>) {
    let sec = Sec::start("{}", backend, &[]);
    let (_, owner) = sec.user("own", "owner", "default");
    let (_, admin) = sec.user("adm", "admin", "default");
    let (_, user) = sec.user("usr", "user", "default");
    let id_of = |key: &str| {
        sec.req("GET", "/v1/keys", Some(key), None).json()["keys"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (owner_key, user_key) = (id_of(&owner), id_of(&user));
    let r = sec.req(
        "DELETE",
        &format!("/v1/keys/{owner_key}"),
        Some(&admin),
        None,
    );
    assert_eq!(
        (r.status, code(&r)),
        (403, "auth.forbidden".into()),
        "{}",
        r.body
    );
    assert_eq!(sec.req("GET", "/v1/me", Some(&owner), None).status, 200);
    let r = sec.req(
        "DELETE",
        &format!("/v1/keys/{user_key}"),
        Some(&admin),
        None,
    );
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(sec.req("GET", "/v1/me", Some(&user), None).status, 401);
}

#[test]
fn finding_9_an_admin_cannot_revoke_an_owners_key() {
    on_both_backends(key_revocation_obeys_rank);
}

// --- 11 and 12. protocol details --------------------------------------------

#[test]
fn finding_11_wrong_methods_answer_405_with_allow() {
    let sec = Sec::start("{}", None, &[]);
    let r = sec.req("POST", "/healthz", None, None);
    assert_eq!(r.status, 405, "{}", r.body);
    assert_eq!(r.headers["allow"], "GET, HEAD");
    for method in ["PUT", "DELETE", "OPTIONS", "FROB"] {
        let r = sec.req(method, "/v1/status", Some(TOKEN), None);
        assert_eq!(r.status, 405, "{method}: {}", r.body);
        assert_eq!(code(&r), "request.method_not_allowed");
        assert!(r.headers["allow"].contains("GET"), "{method}");
    }
    let r = sec.req("PUT", "/v1/agents", Some(TOKEN), None);
    assert_eq!(r.headers["allow"], "GET, HEAD, POST");
    assert!(
        !sec.s.gw.log_lines().iter().any(|l| l.contains("\"ERROR\"")),
        "no error is logged for a wrong method"
    );
}

#[test]
fn finding_12_protocol_details() {
    let sec = Sec::start("{}", None, &[]);
    // Two Authorization headers: refused, whichever comes first.
    for (first, second) in [(TOKEN, "wrong"), ("wrong", TOKEN)] {
        let mut s = TcpStream::connect(sec.s.gw.addr).unwrap();
        s.write_all(
            format!(
                "GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
                 Authorization: Bearer {first}\r\nAuthorization: Bearer {second}\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
        let r = read_response(&mut s);
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(code(&r), "auth.ambiguous");
    }
    // A frame over the limit closes with 1009.
    let mut ws = connected(&sec.s.gw);
    let _ = ws.send(Message::Text("x".repeat(600 * 1024).into()));
    assert_eq!(close_code(&mut ws, Duration::from_secs(5)), Some(1009));
    // /metrics is gateway-wide: not for another tenant's admin.
    sec.tenant("acme");
    let (_, acme_admin) = sec.user("acme-admin", "admin", "acme");
    let (_, operator) = sec.user("op", "operator", "default");
    let r = sec.req("GET", "/metrics", Some(&acme_admin), None);
    assert_eq!((r.status, code(&r)), (403, "auth.forbidden".into()));
    assert_eq!(
        sec.req("GET", "/metrics", Some(&operator), None).status,
        200
    );
}

/// A pending approval of `user_key`'s own run, and its id.
fn pending_approval(sec: &Sec, user_key: &str) -> String {
    let s = &sec.s;
    s.fake.push_all([
        Reply::tool_calls(vec![exoclaw_core::provider::ToolCall {
            id: "c1".into(),
            name: "exec".into(),
            arguments: json!({"command": "sudo -n true; echo after"}),
        }]),
        Reply::text("done"),
    ]);
    let addr = s.gw.addr;
    let key = user_key.to_owned();
    std::thread::spawn(move || {
        let body = json!({"model": "default", "messages": [{"role": "user", "content": "go"}]});
        request(
            addr,
            "POST",
            "/v1/chat/completions",
            Some(&key),
            Some(&body.to_string()),
        )
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = sec.req("GET", "/v1/approvals", Some(TOKEN), None).json();
        if let Some(a) = list["approvals"].as_array().unwrap().first() {
            return a["id"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "no approval appeared: {list}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn finding_12_a_plain_user_cannot_approve_their_own_exec() {
    let config = r#"{"tools": {"exec_approval": {"security": "ask"}}}"#;
    let sec = Sec::start(config, None, &[]);
    let (_, user) = sec.user("plain", "user", "default");
    let (_, operator) = sec.user("op", "operator", "default");
    let id = pending_approval(&sec, &user);
    let r = sec.req(
        "POST",
        &format!("/v1/approvals/{id}/approve"),
        Some(&user),
        None,
    );
    assert_eq!(
        (r.status, code(&r)),
        (403, "auth.forbidden".into()),
        "{}",
        r.body
    );
    let r = sec.req(
        "POST",
        &format!("/v1/approvals/{id}/deny"),
        Some(&operator),
        None,
    );
    assert_eq!(r.status, 200, "an operator decides: {}", r.body);

    // `requester` lets the user decide their own; `another_operator` keeps
    // even an owner from deciding their own run's approval.
    let config = r#"{"tools": {"exec_approval": {"security": "ask", "deciders": "requester"}}}"#;
    let sec = Sec::start(config, None, &[]);
    let (_, user) = sec.user("plain", "user", "default");
    let id = pending_approval(&sec, &user);
    let r = sec.req(
        "POST",
        &format!("/v1/approvals/{id}/deny"),
        Some(&user),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);

    let config =
        r#"{"tools": {"exec_approval": {"security": "ask", "deciders": "another_operator"}}}"#;
    let sec = Sec::start(config, None, &[]);
    let (_, owner) = sec.user("boss2", "owner", "default");
    let id = pending_approval(&sec, &owner);
    let r = sec.req(
        "POST",
        &format!("/v1/approvals/{id}/deny"),
        Some(&owner),
        None,
    );
    assert_eq!(
        (r.status, code(&r)),
        (403, "auth.forbidden".into()),
        "{}",
        r.body
    );
    let r = sec.req(
        "POST",
        &format!("/v1/approvals/{id}/deny"),
        Some(TOKEN),
        None,
    );
    assert_eq!(r.status, 200, "another person decides: {}", r.body);
}
