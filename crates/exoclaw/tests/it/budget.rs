//! Budgets that always bind, through the real binary: calls reserve their
//! worst case in the store before they are sent, so 50 concurrent calls
//! against a budget that allows 10 let exactly 10 through, on SQLite, on
//! PostgreSQL and across two gateways sharing one PostgreSQL; token budgets
//! bind for a model without a price; a tenant's budget narrows the others.

use crate::chat::{chat, setup_with};
use crate::support::*;
use exoclaw_core::provider::Usage;
use exoclaw_providers::fake::{FakeProvider, Reply};
use serde_json::{Value, json};
use std::time::Duration;

/// Each call is priced at exactly $1: output only, 100 tokens at $10,000
/// per million, with `max_tokens` 100 (so the reservation is $1 too).
fn dollar_a_call(budget: Value) -> Value {
    json!({
        "budgets": budget,
        "models": {"pricing": {"gpt-4o-mini": {"input_usd_per_mtok": 0, "output_usd_per_mtok": 10000}}},
        "agents": {"defaults": {"model": "gpt-4o-mini", "max_tokens": 100}}
    })
}

fn dollar_reply() -> Reply {
    Reply::text("one paid answer")
        .usage(Usage {
            input_tokens: 10,
            output_tokens: 100,
            ..Usage::default()
        })
        .delay(Duration::from_millis(50))
}

/// Sends `n` chats at once (each from its own user, so each has its own
/// session) to the gateways in turn; returns (answered, refused as
/// `budget.exceeded`, anything else).
fn burst(gateways: &[&Gateway], n: usize) -> (usize, usize, Vec<String>) {
    let addrs: Vec<std::net::SocketAddr> = gateways.iter().map(|g| g.addr).collect();
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let addr = addrs[i % addrs.len()];
            std::thread::spawn(move || {
                let body = json!({"model": "default", "user": format!("user-{i}"),
                                  "messages": [{"role": "user", "content": "spend"}]});
                request(
                    addr,
                    "POST",
                    "/v1/chat/completions",
                    Some(TOKEN),
                    Some(&body.to_string()),
                )
            })
        })
        .collect();
    let (mut ok, mut refused, mut other) = (0, 0, Vec::new());
    for h in handles {
        let r = h.join().unwrap();
        if r.status == 200 {
            ok += 1;
        } else if r.status == 429 && r.json()["error"]["code"] == "budget.exceeded" {
            refused += 1;
        } else {
            other.push(format!("{} {}", r.status, r.body));
        }
    }
    (ok, refused, other)
}

#[test]
fn fifty_concurrent_calls_against_a_budget_for_ten_let_exactly_ten_through() {
    let config = dollar_a_call(json!({"tenants": {"*": {"daily_usd": 10}}}));
    let s = setup_with(&config.to_string(), &[]);
    s.fake.push_all((0..50).map(|_| dollar_reply()));
    let (ok, refused, other) = burst(&[&s.gw], 50);
    assert!(other.is_empty(), "{other:?}");
    assert_eq!((ok, refused), (10, 40));
    assert_eq!(s.fake.requests().len(), 10, "refused before any request");
}

#[test]
fn fifty_concurrent_calls_on_two_gateways_sharing_postgresql_let_exactly_ten_through() {
    let Some(dsn) = crate::postgres::fresh_database() else {
        return;
    };
    let config = dollar_a_call(
        json!({"users": {"*": {"daily_usd": 100}}, "tenants": {"default": {"daily_usd": 10}}}),
    );
    let (fake, base) = FakeProvider::start_in_thread().unwrap();
    fake.push_all((0..50).map(|_| dollar_reply()));
    let cfg = tempfile::tempdir().unwrap();
    let cfg_path = cfg.path().join("config.json");
    let mut config = config;
    config["gateway"] = json!({"rate_limit_rpm": 0});
    std::fs::write(&cfg_path, config.to_string()).unwrap();
    let cfg_str = cfg_path.to_str().unwrap().to_owned();
    let env = [
        ("EXOCLAW_POSTGRES_DSN", dsn.as_str()),
        ("EXOCLAW_GATEWAY_TOKEN", TOKEN),
        ("EXOCLAW_OPENAI_API_KEY", "sk-test-fake-key-0123456789"),
        ("EXOCLAW_OPENAI_BASE_URL", base.as_str()),
        ("EXOCLAW_CONFIG", cfg_str.as_str()),
    ];
    let (home_a, home_b) = (TestHome::new(), TestHome::new());
    let a = Gateway::start(&home_a.path, &env);
    // The second gateway shares the first one's vault key (one database).
    let key = home_a
        .dotenv()
        .lines()
        .find_map(|l| l.strip_prefix("EXOCLAW_ENCRYPTION_KEY=").map(str::to_owned))
        .expect("the vault key of the first gateway");
    let mut env_b = env.to_vec();
    env_b.push(("EXOCLAW_ENCRYPTION_KEY", key.as_str()));
    let b = Gateway::start(&home_b.path, &env_b);
    let (ok, refused, other) = burst(&[&a, &b], 50);
    assert!(other.is_empty(), "{other:?}");
    assert_eq!((ok, refused), (10, 40), "one ledger, one limit");
    assert_eq!(fake.requests().len(), 10);
}

#[test]
fn a_token_budget_binds_for_a_model_without_a_price_and_a_usd_budget_there_is_reported() {
    // No price for this model: the USD budget cannot bind (said at start-up),
    // the token budget does.
    let config = json!({
        "budgets": {"models": {"*": {"daily_usd": 1, "daily_tokens": 150000}}},
        "agents": {"defaults": {"model": "unpriced-local-model", "max_tokens": 100}}
    });
    let s = setup_with(&config.to_string(), &[]);
    let logs = s.gw.log_lines().join("\n");
    assert!(
        logs.contains("not enforceable") && logs.contains("unpriced-local-model"),
        "{logs}"
    );
    // Each answer reports 100,000 tokens: after two, 200,000 are spent.
    let big = || {
        Reply::text("counted").usage(Usage {
            input_tokens: 99_900,
            output_tokens: 100,
            ..Usage::default()
        })
    };
    s.fake.push_all([big(), big(), big()]);
    let ask = |text: &str| json!({"model": "default", "user": "alice", "messages": [{"role": "user", "content": text}]});
    assert_eq!(chat(&s.gw, ask("one")).status, 200);
    assert_eq!(chat(&s.gw, ask("two")).status, 200);
    let r = chat(&s.gw, ask("three"));
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "budget.exceeded");
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("daily_tokens"), "{message}");
    assert_eq!(s.fake.requests().len(), 2);
}

/// `GET /v1/usage` sums the ledger per day and model (a member sees only
/// their own calls, an admin the tenant's), `GET /v1/budgets` shows each
/// limit against what it used, and bad parameters are named.
#[test]
fn usage_and_budgets_report_what_the_ledger_holds() {
    let config = dollar_a_call(json!({"tenants": {"*": {"daily_usd": 10}}}));
    let s = setup_with(&config.to_string(), &[]);
    s.fake.push_all((0..12).map(|_| dollar_reply()));
    let (ok, refused, other) = burst(&[&s.gw], 12);
    assert!(other.is_empty(), "{other:?}");
    assert_eq!((ok, refused), (10, 2));
    let today = exoclaw_providers::calendar::format_date(exoclaw_providers::calendar::now_millis());

    let r = s.gw.get("/v1/usage?days=7", Some(TOKEN));
    assert_eq!(r.status, 200, "{}", r.body);
    let u = r.json();
    assert_eq!(u["by"], "model");
    assert_eq!(u["scope"], "tenant");
    assert_eq!(u["to"], today);
    assert_eq!(u["totals"].as_array().unwrap().len(), 1, "{u}");
    assert_eq!(u["totals"][0]["key"], "gpt-4o-mini");
    assert_eq!(u["totals"][0]["calls"], 10, "refused calls cost nothing");
    assert_eq!(u["totals"][0]["cost_micros"], 10_000_000);
    assert_eq!(u["totals"][0]["output_tokens"], 1000);
    assert_eq!(u["days"][0]["date"], today);
    // The ledger's user is the caller (the gateway token's owner), not the
    // request's `user` field.
    let r = s.gw.get("/v1/usage?by=user", Some(TOKEN));
    assert_eq!(r.json()["totals"][0]["key"], "owner", "{}", r.body);
    assert_eq!(r.json()["totals"][0]["calls"], 10, "{}", r.body);

    let r = s.gw.get("/v1/budgets", Some(TOKEN));
    assert_eq!(r.status, 200, "{}", r.body);
    let b = r.json();
    assert_eq!(b["budgets"].as_array().unwrap().len(), 1, "{b}");
    assert_eq!(b["budgets"][0]["scope"], "tenant default");
    assert_eq!(b["budgets"][0]["path"], "budgets.tenants.\"*\"");
    assert_eq!(b["budgets"][0]["window"], "daily");
    assert_eq!(b["budgets"][0]["unit"], "usd");
    assert_eq!(b["budgets"][0]["limit"], 10_000_000);
    assert_eq!(b["budgets"][0]["used"], 10_000_000);

    for (path, says) in [
        ("/v1/usage?days=0", "days"),
        ("/v1/usage?days=400", "days"),
        ("/v1/usage?by=tenant", "by"),
    ] {
        let r = s.gw.get(path, Some(TOKEN));
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        assert!(
            r.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains(says),
            "{}",
            r.body
        );
    }

    // A member with a key: their own calls only, and no budgets.
    let body = json!({"name": "mallory", "key": {}}).to_string();
    let r = request(s.gw.addr, "POST", "/v1/users", Some(TOKEN), Some(&body));
    assert_eq!(r.status, 201, "{}", r.body);
    let key = r.json()["api_key"].as_str().unwrap().to_owned();
    let r = s.gw.get("/v1/usage", Some(&key));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["scope"], "own");
    assert_eq!(r.json()["totals"], json!([]), "{}", r.body);
    let r = s.gw.get("/v1/budgets", Some(&key));
    assert_eq!(r.status, 403, "{}", r.body);
}
