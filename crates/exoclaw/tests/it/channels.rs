//! Messaging channels through the real binary and the fake provider: the
//! signed generic webhook answers a signed message synchronously and
//! refuses (and audits) forged signatures, stale timestamps, replays and
//! oversized bodies; with a callback URL, answers go through the durable
//! outbox, survive a kill -9 while the callback is down, and are delivered
//! exactly once after the restart, signed; `GET /v1/channels` shows the
//! state.

use crate::support::*;
use exoclaw_gateway::channels::webhook::sign;
use exoclaw_providers::fake::{FakeProvider, Reply};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::Write as _;
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SECRET: &str = "webhook-secret-7f3a9c2e5b1d4086";

struct Hook {
    home: TestHome,
    dsn: Option<String>,
    _fake: FakeProvider,
    fake_base: String,
    cfg: tempfile::TempDir,
    gw: Gateway,
}

fn now_sec() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

fn config(hook: Value) -> Value {
    json!({
        "gateway": {"rate_limit_rpm": 0, "shutdown_grace_sec": 1},
        "channels": {"hook": hook},
    })
}

impl Hook {
    fn new(hook: Value, replies: Vec<Reply>) -> Self {
        Self::on(hook, replies, None)
    }

    /// With `dsn`, on that PostgreSQL database.
    fn on(hook: Value, replies: Vec<Reply>, dsn: Option<String>) -> Self {
        let (fake, base) = FakeProvider::start_in_thread().unwrap();
        fake.push_all(replies);
        let cfg = tempfile::tempdir().unwrap();
        std::fs::write(cfg.path().join("config.json"), config(hook).to_string()).unwrap();
        let home = TestHome::new();
        let gw = Self::start(&home, &cfg, &base, dsn.as_deref());
        let h = Self {
            home,
            dsn,
            _fake: fake,
            fake_base: base,
            cfg,
            gw,
        };
        let r = h.send(
            "PUT",
            "/v1/secrets/webhook_secret",
            json!({"owner": "channel:hook", "value": SECRET}),
        );
        assert!(r.status < 300, "{}", r.body);
        h
    }

    fn start(home: &TestHome, cfg: &tempfile::TempDir, base: &str, dsn: Option<&str>) -> Gateway {
        let path = cfg.path().join("config.json");
        let mut env = vec![
            ("EXOCLAW_GATEWAY_TOKEN", TOKEN),
            ("EXOCLAW_OPENAI_API_KEY", "sk-test-fake-key-0123456789"),
            ("EXOCLAW_OPENAI_BASE_URL", base),
            ("EXOCLAW_CONFIG", path.to_str().unwrap()),
        ];
        if let Some(dsn) = dsn {
            env.push(("EXOCLAW_POSTGRES_DSN", dsn));
            env.push(("EXOCLAW_AUTO_UPGRADE", "true"));
        }
        Gateway::start(&home.path, &env)
    }

    fn restart(&mut self, hook: Value) {
        std::fs::write(
            self.cfg.path().join("config.json"),
            config(hook).to_string(),
        )
        .unwrap();
        self.gw = Self::start(&self.home, &self.cfg, &self.fake_base, self.dsn.as_deref());
    }

    fn send(&self, method: &str, path: &str, body: Value) -> Response {
        request(
            self.gw.addr,
            method,
            path,
            Some(TOKEN),
            Some(&body.to_string()),
        )
    }

    /// POST `body` to the webhook with these headers.
    fn post(&self, body: &str, ts: &str, sig: &str) -> Response {
        let mut s = TcpStream::connect(self.gw.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let req = format!(
            "POST /v1/channels/webhook/hook HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\
             X-Exoclaw-Timestamp: {ts}\r\nX-Exoclaw-Signature: {sig}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).unwrap();
        read_response(&mut s)
    }

    /// POST `event` signed now.
    fn signed(&self, event: &Value) -> Response {
        let body = event.to_string();
        let ts = now_sec().to_string();
        self.post(&body, &ts, &sign(SECRET.as_bytes(), &ts, body.as_bytes()))
    }

    fn channel(&self) -> Value {
        let r = self.gw.get("/v1/channels", Some(TOKEN));
        assert_eq!(r.status, 200, "{}", r.body);
        let v = r.json();
        v["channels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "hook")
            .cloned()
            .unwrap_or_else(|| panic!("no channel hook: {v}"))
    }

    fn refusals(&self) -> Vec<String> {
        let r = self.gw.get(
            "/v1/audit?action=channel.webhook_refused&limit=100",
            Some(TOKEN),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let mut got: Vec<String> = r.json()["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["reason"].as_str().unwrap().to_owned())
            .collect();
        got.sort();
        got
    }
}

fn event(id: &str, text: &str) -> Value {
    json!({"event_id": id, "sender_id": "u-1", "sender_name": "Ann", "text": text})
}

#[test]
fn the_webhook_answers_signed_messages_and_refuses_forged_stale_replayed_and_oversized_ones() {
    let h = Hook::new(
        json!({"type": "webhook", "dm_policy": "open", "webhook": {"max_body_bytes": 2048}}),
        vec![Reply::text("hello from the agent")],
    );
    let r = h.signed(&event("ev-1", "hi"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json(),
        json!({"status": "replied", "reply": "hello from the agent"})
    );

    // The same event again is a replay, whoever signs it.
    let r = h.signed(&event("ev-1", "hi"));
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (409, json!("channel.replay"))
    );
    // A forged signature, a stale timestamp, no headers.
    let body = event("ev-2", "hi").to_string();
    let ts = now_sec().to_string();
    let forged = sign(b"not the secret", &ts, body.as_bytes());
    let r = h.post(&body, &ts, &forged);
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "channel.signature_invalid");
    let stale = (now_sec() - 3600).to_string();
    let r = h.post(
        &body,
        &stale,
        &sign(SECRET.as_bytes(), &stale, body.as_bytes()),
    );
    assert_eq!(r.status, 401, "{}", r.body);
    let r = h.post(&body, "", "");
    assert_eq!(r.status, 401, "{}", r.body);
    // Larger than webhook.max_body_bytes, even signed.
    let r = h.signed(&event("ev-3", &"x".repeat(4096)));
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (413, json!("request.too_large"))
    );
    // Signed, but not an event.
    let r = h.signed(&json!({"event_id": "ev-4"}));
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (400, json!("request.invalid"))
    );
    // An unknown webhook.
    let r = request(
        h.gw.addr,
        "POST",
        "/v1/channels/webhook/nope",
        None,
        Some("{}"),
    );
    assert_eq!(
        (r.status, r.json()["error"]["code"].clone()),
        (404, json!("channel.unknown"))
    );

    assert_eq!(
        h.refusals(),
        [
            "bad_headers",
            "bad_signature",
            "malformed",
            "replay",
            "timestamp_skew",
            "too_large"
        ]
    );
    // ev-2 was refused, not seen: signed properly it goes through.
    let r = h.signed(&event("ev-2", "again"));
    assert_eq!(r.status, 200, "{}", r.body);
    let c = h.channel();
    assert_eq!(
        (c["kind"].clone(), c["running"].clone()),
        (json!("webhook"), json!(true))
    );
    assert_eq!(c["inbound"], 2, "{c}");
    assert!(c["last_inbound_at"].as_i64().unwrap() > 0, "{c}");
    // The state is an operator's, not a user's.
    let r = h.gw.get("/v1/channels", None);
    assert_eq!(r.status, 401);
}

/// `webhook.max_pending`: past the bound a request is refused with `503
/// server.busy` and `Retry-After` before it is noted as seen, so the same
/// event is taken when retried; under it, accepted. Counted in `busy`.
#[test]
fn a_webhook_burst_past_max_pending_is_refused_and_taken_on_retry() {
    let cb = Receiver::start(200);
    let slow = || Reply::text("slow answer").delay(Duration::from_millis(1500));
    let h = Hook::new(
        json!({"type": "webhook", "dm_policy": "open",
               "webhook": {"callback_url": cb.url("/cb"), "max_pending": 2}}),
        vec![slow(), slow(), slow()],
    );
    let ev = |i: usize| json!({"event_id": format!("burst-{i}"), "sender_id": format!("u-{i}"), "text": "hi"});
    assert_eq!(h.signed(&ev(0)).status, 202);
    assert_eq!(h.signed(&ev(1)).status, 202);
    let r = h.signed(&ev(2));
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "server.busy");
    assert!(r.body.contains("webhook.max_pending"), "{}", r.body);
    assert_eq!(r.headers.get("retry-after").map(String::as_str), Some("1"));
    let c = h.channel();
    assert_eq!(
        (c["pending"].as_u64(), c["busy"].as_u64()),
        (Some(2), Some(1)),
        "{c}"
    );
    // Once the two are answered, the refused event is taken (not a replay).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while h.channel()["pending"] != 0 {
        assert!(std::time::Instant::now() < deadline, "{}", h.channel());
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = h.signed(&ev(2));
    assert_eq!(r.status, 202, "{}", r.body);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while cb.received().len() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "{} callbacks",
            cb.received().len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn callback_replies_survive_a_kill_and_are_delivered_exactly_once() {
    callback_replies_survive_a_kill(None);
}

#[test]
fn callback_replies_survive_a_kill_and_are_delivered_exactly_once_on_postgres() {
    let Some(dsn) = crate::postgres::fresh_database() else {
        return;
    };
    callback_replies_survive_a_kill(Some(dsn));
}

fn callback_replies_survive_a_kill(dsn: Option<String>) {
    let down = Receiver::start(503);
    let hook = |url: String| {
        json!({
            "type": "webhook",
            "dm_policy": "open",
            "webhook": {"callback_url": url},
            "outbox": {"backoff_ms": 50, "backoff_max_ms": 200, "max_attempts": 100},
        })
    };
    let mut h = Hook::on(
        hook(down.url("/cb")),
        vec![Reply::text("one"), Reply::text("two"), Reply::text("three")],
        dsn,
    );
    for (i, text) in ["a", "b", "c"].iter().enumerate() {
        let r = h.signed(&json!({
            "event_id": format!("cb-{i}"),
            "sender_id": "u-2",
            "conversation_id": "conv-9",
            "text": text,
        }));
        assert_eq!(r.status, 202, "{}", r.body);
        assert_eq!(r.json()["status"], "accepted");
    }
    // The callback is down: all three answers queue, each tried and failed.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let c = h.channel();
        let seen: BTreeSet<String> = down
            .received()
            .iter()
            .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["event_id"].to_string())
            .collect();
        if c["queue_depth"] == 3 && seen.len() == 3 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never queued: {c}");
        std::thread::sleep(Duration::from_millis(50));
    }
    h.gw.signal("KILL");
    h.gw.wait_exit(Duration::from_secs(10));

    let up = Receiver::start(200);
    h.restart(hook(up.url("/cb")));
    let got = up.wait_for(Duration::from_secs(60), |r| r.len() >= 3);
    assert_eq!(got.len(), 3, "{got:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let c = loop {
        let c = h.channel();
        if c["queue_depth"] == 0 && c["sent"] == 3 {
            break c;
        }
        assert!(std::time::Instant::now() < deadline, "never drained: {c}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        c["last_outbound_at"].as_i64().map(|t| t > 0),
        Some(true),
        "{c}"
    );
    // Exactly once each: nothing more arrives once the outbox is empty.
    let got = up.received();
    assert_eq!(got.len(), 3, "{got:?}");
    let mut texts = BTreeSet::new();
    for r in &got {
        let ts = &r.headers["x-exoclaw-timestamp"];
        assert_eq!(
            r.headers["x-exoclaw-signature"],
            sign(SECRET.as_bytes(), ts, &r.body),
            "a callback is signed like a request"
        );
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["conversation_id"], "conv-9");
        assert!(
            v["event_id"].as_str().unwrap().starts_with("reply:cb-"),
            "{v}"
        );
        texts.insert(v["text"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        texts,
        BTreeSet::from(["one".into(), "two".into(), "three".into()])
    );
}
