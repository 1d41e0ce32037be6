//! The durable outbox and Telegram polling through the real binary, the
//! fake provider and the fake Bot API: answers queued while Telegram is
//! down survive a `kill -9` and are sent exactly once after the restart (on
//! SQLite and PostgreSQL); two gateways on one PostgreSQL with the same
//! channel poll the bot one at a time (the fake answers 409 to overlapping
//! `getUpdates`, and never has to) and send every answer exactly once, even
//! when one of them is killed mid-delivery: the other takes over its claimed
//! messages and its polling when the leases lapse.

use crate::fake_telegram::FakeTelegram;
use crate::support::*;
use exoclaw_providers::fake::FakeProvider;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

const BOT_TOKEN: &str = "123456:TEST-bot-token-abcdefghijklmnop";
const WAIT: Duration = Duration::from_secs(40);

/// A Telegram channel `tg` answering through the echoing fake provider;
/// short leases so a takeover is quick.
fn write_config(dir: &Path, tg: &FakeTelegram) {
    let config = json!({
        "gateway": {"rate_limit_rpm": 0, "shutdown_grace_sec": 1},
        "channels": {"tg": {
            "type": "telegram",
            "dm_policy": "open",
            "telegram": {"api_base": tg.base(), "poll_timeout_sec": 1, "poll_lease_sec": 2},
            "outbox": {"backoff_ms": 50, "backoff_max_ms": 200, "max_attempts": 100,
                "lease_sec": 2},
            "progress": {"stream": false, "status": false},
        }},
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
}

fn env(base: &str, cfg: &Path, dsn: Option<&str>) -> Vec<(String, String)> {
    let mut env = fake_provider_env(base.to_owned(), &cfg.join("config.json"), dsn);
    env.push((
        "EXOCLAW_TELEGRAM_BOT_TOKEN".to_owned(),
        BOT_TOKEN.to_owned(),
    ));
    env
}

fn dm(chat: i64, text: &str) -> Value {
    json!({"message_id": chat, "chat": {"id": chat, "type": "private"},
        "from": {"id": chat, "first_name": "Ann"}, "text": text})
}

/// The text of every `sendMessage` so far.
fn sent_texts(tg: &FakeTelegram) -> Vec<String> {
    tg.sent()
        .iter()
        .filter(|(m, _)| m == "sendMessage")
        .map(|(_, b)| b["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn channel(gw: &Gateway) -> Value {
    gw.get("/v1/channels", Some(TOKEN)).json()["channels"][0].clone()
}

/// Wait (bounded) until `done` holds for the channel's state on `gw`.
fn until_channel(gw: &Gateway, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let c = channel(gw);
        if done(&c) {
            return c;
        }
        assert!(Instant::now() < deadline, "{what}: {c}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wait (bounded) until `n` messages were sent.
fn until_sent(tg: &FakeTelegram, n: usize) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let got = sent_texts(tg);
        if got.len() >= n {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {n} sent: {got:?}",
            got.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Each of `texts` was sent exactly once, and nothing else.
fn each_once(got: &[String], texts: &[String]) {
    for t in texts {
        let n = got.iter().filter(|g| g.contains(t.as_str())).count();
        assert_eq!(n, 1, "{t:?} sent {n} times: {got:#?}");
    }
    assert_eq!(got.len(), texts.len(), "{got:#?}");
}

#[test]
fn queued_text_survives_a_kill_and_is_sent_exactly_once() {
    queued_text_survives_a_kill(None);
}

#[test]
fn queued_text_survives_a_kill_and_is_sent_exactly_once_on_postgres() {
    let Some(dsn) = crate::postgres::fresh_database() else {
        return;
    };
    queued_text_survives_a_kill(Some(&dsn));
}

fn queued_text_survives_a_kill(dsn: Option<&str>) {
    let (_fake, base) = FakeProvider::start_in_thread().unwrap();
    let tg = FakeTelegram::start(BOT_TOKEN);
    let cfg = tempfile::tempdir().unwrap();
    write_config(cfg.path(), &tg);
    let home = TestHome::new();
    let env = env(&base, cfg.path(), dsn);
    let mut gw = Gateway::start(&home.path, &env_pairs(&env));
    // Telegram is down: the answers wait in the outbox, retried.
    for _ in 0..10_000 {
        tg.fail_next_send(
            502,
            json!({"ok": false, "error_code": 502, "description": "Bad Gateway"}),
        );
    }
    let texts: Vec<String> = (1..=3).map(|i| format!("question number {i}")).collect();
    for (i, t) in (1..).zip(&texts) {
        tg.push_message(dm(i, t));
    }
    until_channel(&gw, "the sends never failed", |c| {
        c["failed"].as_u64().unwrap_or(0) >= 3 && c["queue_depth"] == 3
    });
    gw.signal("KILL");
    gw.wait_exit(Duration::from_secs(10));
    assert!(sent_texts(&tg).is_empty());

    tg.clear_faults();
    let gw = Gateway::start(&home.path, &env_pairs(&env));
    until_sent(&tg, 3);
    until_channel(&gw, "never drained", |c| c["queue_depth"] == 0);
    std::thread::sleep(Duration::from_millis(500));
    each_once(&sent_texts(&tg), &texts);
}

#[test]
fn two_gateways_on_one_postgres_poll_in_turn_and_send_each_answer_once_across_a_kill() {
    let Some(dsn) = crate::postgres::fresh_database() else {
        return;
    };
    let (_fake, base) = FakeProvider::start_in_thread().unwrap();
    let tg = FakeTelegram::start(BOT_TOKEN);
    let cfg = tempfile::tempdir().unwrap();
    write_config(cfg.path(), &tg);
    let home_a = TestHome::new();
    let mut env = env(&base, cfg.path(), Some(&dsn));
    let mut a = Gateway::start(&home_a.path, &env_pairs(&env));
    // a polls first (it holds the receive lease).
    let deadline = Instant::now() + WAIT;
    while tg.offsets().is_empty() {
        assert!(Instant::now() < deadline, "a never polled");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Twenty conversations; Telegram stalls, so every answer is queued.
    const N: i64 = 20;
    tg.hold_sends(true);
    let mut texts: Vec<String> = (1..=N).map(|i| format!("conversation {i:02}")).collect();
    for (i, t) in (1..).zip(&texts) {
        tg.push_message(dm(i, t));
    }
    until_channel(&a, "the answers were not all queued", |c| {
        c["queue_depth"] == N
    });
    // b starts now: its sender claims what a has not, its receiver stands by.
    let key = home_a
        .dotenv()
        .lines()
        .find_map(|l| l.strip_prefix("EXOCLAW_ENCRYPTION_KEY=").map(str::to_owned))
        .expect("the vault key of the first gateway");
    env.push(("EXOCLAW_ENCRYPTION_KEY".to_owned(), key));
    let home_b = TestHome::new();
    let b = Gateway::start(&home_b.path, &env_pairs(&env));
    let deadline = Instant::now() + WAIT;
    while tg.held() < 2 {
        assert!(
            Instant::now() < deadline,
            "both senders never sent: {}",
            tg.held()
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // Delivery runs on both gateways at once; a is killed in the middle of it (its
    // stalled sends are dropped unprocessed, its claims left behind).
    // Five pass; the rest stay held, however many each sender has in flight.
    tg.let_through(5);
    until_sent(&tg, 5);
    std::thread::sleep(Duration::from_millis(500));
    let before_kill = sent_texts(&tg).len();
    a.signal("KILL");
    a.wait_exit(Duration::from_secs(10));
    tg.hold_sends(false);
    assert!(
        before_kill < usize::try_from(N).unwrap(),
        "the kill came too late to test anything: {before_kill}"
    );

    // b sends a's claimed answers once their claims lapse, and takes over
    // polling when a's receive lease lapses.
    texts.push("after the kill".to_owned());
    tg.push_message(dm(99, "after the kill"));
    until_sent(&tg, texts.len());
    until_channel(&b, "b never drained the outbox", |c| c["queue_depth"] == 0);
    std::thread::sleep(Duration::from_secs(1));
    each_once(&sent_texts(&tg), &texts);
    assert_eq!(tg.conflicts(), 0, "two gateways polled at once");
}
