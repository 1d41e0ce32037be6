//! Alerts end to end: real conditions in the real binary (a budget nearly
//! spent by fake-provider usage, repeated authentication failures, a
//! provider answering 500s) raise `alert.*` events that are logged and
//! POSTed once (throttled) to a loopback webhook; without a webhook
//! nothing is POSTed.

use crate::chat::{chat, setup_with};
use crate::support::*;
use exoclaw_core::provider::Usage;
use exoclaw_providers::fake::Reply;
use serde_json::{Value, json};
use std::time::Duration;

fn ask(text: &str) -> Value {
    json!({"model": "default", "messages": [{"role": "user", "content": text}], "user": "alice"})
}

/// Unauthenticated requests: each logs `security.auth_failure`.
fn fail_auth(gw: &Gateway, n: usize) {
    for _ in 0..n {
        assert_eq!(gw.get("/v1/agents", Some("wrong-token")).status, 401);
    }
}

fn posted(r: &[Received]) -> Vec<Value> {
    r.iter()
        .map(|x| serde_json::from_slice(&x.body).unwrap())
        .collect()
}

fn events(alerts: &[Value]) -> Vec<String> {
    let mut e: Vec<String> = alerts
        .iter()
        .map(|a| a["event"].as_str().unwrap().to_owned())
        .collect();
    e.sort();
    e
}

fn logged(gw: &Gateway, event: &str) -> usize {
    gw.log_lines()
        .iter()
        .filter(|l| l.contains(&format!("\"event\":\"{event}\"")) && l.contains("\"WARN\""))
        .count()
}

#[test]
fn budget_security_and_provider_alerts_reach_the_webhook_once() {
    let hook = Receiver::start(200);
    let config = json!({
        "alerts": {
            "webhook_url": hook.url("/hook"),
            "security_burst": {"count": 5, "window_sec": 60},
            "provider_failures": 2
        },
        "budgets": {"models": {"gpt-4o-mini": {"daily_usd": 1.0}}},
        "models": {"pricing": {"gpt-4o-mini": {"input_usd_per_mtok": 1.0, "output_usd_per_mtok": 0.0}}},
        "retry": {"max_attempts": 1},
        "agents": {"defaults": {"model": "gpt-4o-mini"}}
    });
    let s = setup_with(&config.to_string(), &[]);

    // 85% of the daily budget: seen before the next call, alerted once.
    s.fake.push(Reply::text("costly").usage(Usage {
        input_tokens: 850_000,
        ..Usage::default()
    }));
    assert_eq!(chat(&s.gw, ask("first")).status, 200);
    for text in ["second", "third"] {
        s.fake.push(Reply::text("cheap"));
        assert_eq!(chat(&s.gw, ask(text)).status, 200);
    }

    // Ten failed authentications: a burst of five, then another (throttled).
    fail_auth(&s.gw, 10);

    // The provider answers 500: two failed calls in a row, then a third.
    for _ in 0..3 {
        s.fake.push(Reply::status(500));
        assert_eq!(chat(&s.gw, ask("boom")).status, 502);
    }

    let got = hook.wait_for(Duration::from_secs(10), |r| r.len() >= 3);
    // Nothing more arrives: repeats are throttled.
    std::thread::sleep(Duration::from_millis(500));
    let got = hook.received().len().max(got.len());
    let alerts = posted(&hook.received());
    assert_eq!(got, 3, "{alerts:#?}");
    assert_eq!(
        events(&alerts),
        [
            "alert.budget_threshold",
            "alert.provider_failure",
            "alert.security_burst"
        ]
    );
    for a in &alerts {
        for key in ["event", "severity", "summary", "detail", "at", "instance"] {
            assert!(!a[key].is_null(), "{key} missing in {a}");
        }
        assert!(a["at"].as_str().unwrap().ends_with('Z'), "{a}");
    }
    for r in hook.received() {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/hook");
        assert_eq!(r.headers["content-type"], "application/json");
    }
    let by = |e: &str| alerts.iter().find(|a| a["event"] == e).unwrap().clone();
    let budget = by("alert.budget_threshold");
    assert_eq!(budget["detail"]["scope"], "model gpt-4o-mini");
    assert_eq!(budget["detail"]["window"], "daily");
    assert_eq!(budget["detail"]["ratio"], 0.85);
    let burst = by("alert.security_burst");
    assert_eq!(burst["detail"]["events"]["security.auth_failure"], 5);
    let provider = by("alert.provider_failure");
    assert_eq!(provider["detail"]["provider"], "openai");
    assert_eq!(provider["detail"]["consecutive_failures"], 2);

    // Logged at warn with stable names, throttled the same way.
    assert_eq!(logged(&s.gw, "alert.budget_threshold"), 1);
    assert_eq!(logged(&s.gw, "alert.security_burst"), 1);
    assert_eq!(logged(&s.gw, "alert.provider_failure"), 1);

    let raw: String = hook
        .received()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    for secret in [TOKEN, "sk-test-fake-key", "wrong-token", "costly", "boom"] {
        assert!(
            !raw.contains(secret),
            "{secret} leaked into an alert: {raw}"
        );
    }
}

#[test]
fn without_a_webhook_alerts_are_only_logged() {
    let hook = Receiver::start(200);
    let config = json!({"alerts": {"security_burst": {"count": 3, "window_sec": 60}}});
    let s = setup_with(&config.to_string(), &[]);
    fail_auth(&s.gw, 3);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while logged(&s.gw, "alert.security_burst") == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(logged(&s.gw, "alert.security_burst"), 1);
    std::thread::sleep(Duration::from_millis(300));
    assert!(hook.received().is_empty(), "nothing is POSTed anywhere");
}
