//! Telegram through the real binary, the fake provider and the fake Bot
//! API: a private message is answered with the agent's Markdown as
//! Telegram HTML (after a 429 with `retry_after`, from the outbox); a
//! group message is heard only when it mentions the bot; `/help` answers
//! without a turn; a restart resumes at the stored offset (nothing
//! repeated, nothing skipped); a wrong token leaves the gateway serving;
//! an answer is streamed into a placeholder by edits, with a typing
//! indicator and status reactions.

use crate::fake_telegram::{BOT_NAME, FakeTelegram};
use crate::support::*;
use exoclaw_providers::fake::{FakeProvider, Reply};
use serde_json::{Value, json};
use std::time::Duration;

const BOT_TOKEN: &str = "123456:TEST-bot-token-abcdefghijklmnop";

struct Tg {
    home: TestHome,
    cfg: tempfile::TempDir,
    fake: FakeProvider,
    base: String,
    tg: FakeTelegram,
    gw: Gateway,
}

impl Tg {
    /// Streaming off: these tests look at what the outbox sends.
    fn new(token: &str) -> Self {
        Self::with(token, json!({"stream": false}))
    }

    fn with(token: &str, progress: Value) -> Self {
        Self::configured(token, progress, json!({}))
    }

    /// `telegram`: keys added to the channel's `telegram` section.
    fn configured(token: &str, progress: Value, telegram: Value) -> Self {
        let (fake, base) = FakeProvider::start_in_thread().unwrap();
        let tg = FakeTelegram::start(BOT_TOKEN);
        let cfg = tempfile::tempdir().unwrap();
        let mut tg_section = json!({"api_base": tg.base(), "poll_timeout_sec": 1});
        for (k, v) in telegram.as_object().unwrap() {
            tg_section[k] = v.clone();
        }
        let config = json!({
            "gateway": {"rate_limit_rpm": 0, "shutdown_grace_sec": 1},
            "channels": {"tg": {
                "type": "telegram",
                "dm_policy": "open",
                "groups": {"allow": ["*"]},
                "telegram": tg_section,
                "outbox": {"backoff_ms": 50, "backoff_max_ms": 200},
                "progress": progress,
            }},
        });
        std::fs::write(cfg.path().join("config.json"), config.to_string()).unwrap();
        let home = TestHome::new();
        let gw = Self::start(&home, &cfg, &base, token);
        Self {
            home,
            cfg,
            fake,
            base,
            tg,
            gw,
        }
    }

    fn start(home: &TestHome, cfg: &tempfile::TempDir, base: &str, token: &str) -> Gateway {
        let path = cfg.path().join("config.json");
        Gateway::start(
            &home.path,
            &[
                ("EXOCLAW_GATEWAY_TOKEN", TOKEN),
                ("EXOCLAW_OPENAI_API_KEY", "sk-test-fake-key-0123456789"),
                ("EXOCLAW_OPENAI_BASE_URL", base),
                ("EXOCLAW_CONFIG", path.to_str().unwrap()),
                ("EXOCLAW_TELEGRAM_BOT_TOKEN", token),
            ],
        )
    }

    fn channel(&self) -> Value {
        let r = self.gw.get("/v1/channels", Some(TOKEN));
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["channels"][0].clone()
    }
}

fn dm(text: &str) -> Value {
    json!({"message_id": 1, "text": text, "chat": {"id": 42, "type": "private"},
        "from": {"id": 42, "first_name": "Ann"}})
}

fn sends(got: &[(String, Value)]) -> Vec<Value> {
    got.iter()
        .filter(|(m, _)| m == "sendMessage")
        .map(|(_, b)| b.clone())
        .collect()
}

#[test]
fn telegram_messages_are_answered_in_html_and_a_restart_resumes_at_the_offset() {
    let mut t = Tg::new(BOT_TOKEN);
    t.fake.push(Reply::text("**hello** <there>"));
    // The first delivery is rate limited: the outbox waits and sends again.
    t.tg.fail_next_send(
        429,
        json!({"ok": false, "error_code": 429, "description": "Too Many Requests",
            "parameters": {"retry_after": 1}}),
    );
    t.tg.push_message(dm("hi"));
    let got = sends(&t.tg.wait_sent(1, Duration::from_secs(30)));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["chat_id"], "42");
    assert_eq!(got[0]["parse_mode"], "HTML");
    assert_eq!(got[0]["text"], "<b>hello</b> &lt;there&gt;");

    // In a group: heard only when the bot is mentioned.
    let group = |text: &str| {
        json!({"message_id": 2, "text": text, "chat": {"id": -5, "type": "group"},
            "from": {"id": 42, "first_name": "Ann"}})
    };
    t.tg.push_message(group("just chatting"));
    t.fake.push(Reply::text("at your service"));
    t.tg.push_message(group(&format!("@{BOT_NAME} help me")));
    let got = sends(&t.tg.wait_sent(2, Duration::from_secs(30)));
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        (got[1]["chat_id"].clone(), got[1]["text"].clone()),
        (json!("-5"), json!("at your service"))
    );
    // `/help` is answered by the gateway, not the agent.
    let help = t.tg.push_message(dm("/help"));
    let got = sends(&t.tg.wait_sent(3, Duration::from_secs(30)));
    assert!(
        got[2]["text"].as_str().unwrap().contains("/stopall"),
        "{got:?}"
    );
    t.tg.wait_offset(help + 1, Duration::from_secs(30));
    // The fake records a send before the gateway hears its answer and marks
    // it sent: wait (bounded) for the counters to settle.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut c = t.channel();
    // (`sent` counts in memory as the answer is heard; the queue is the
    // store's, emptied when the row is marked sent a moment later.)
    while (c["sent"] != json!(3) || c["queue_depth"] != json!(0))
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
        c = t.channel();
    }
    assert_eq!(
        (c["kind"].clone(), c["sent"].clone(), c["inbound"].clone()),
        (json!("telegram"), json!(3), json!(4)),
        "{c}"
    );
    assert_eq!(c["queue_depth"], 0, "{c}");
    // The CLI shows the same: the live state from the gateway, the
    // configuration and queue from the store.
    let port = t.gw.addr.port().to_string();
    let path = t.cfg.path().join("config.json");
    let env = [
        ("EXOCLAW_GATEWAY_TOKEN", TOKEN),
        ("EXOCLAW_CONFIG", path.to_str().unwrap()),
        ("EXOCLAW_PORT", port.as_str()),
    ];
    let out = run(&t.home.path, &env, &["channels", "status", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        (
            v["channels"][0]["name"].clone(),
            v["channels"][0]["sent"].clone()
        ),
        (json!("tg"), json!(3))
    );
    let out = run(&t.home.path, &env, &["channels", "status"]);
    assert!(stdout(&out).starts_with("NAME"), "{}", stdout(&out));
    let out = run(&t.home.path, &env, &["channels", "list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        v,
        json!({"channels": [{"name": "tg", "kind": "telegram", "dm_policy": "open", "queued": 0}]})
    );
    let metrics = t.gw.get("/metrics", Some(TOKEN)).body;
    for line in [
        r#"exoclaw_channel_messages{channel="tg",what="sent"} 3"#,
        r#"exoclaw_channel_messages{channel="tg",what="failed"} 1"#,
        r#"exoclaw_channel_state{channel="tg",what="queued"} 0"#,
        r#"exoclaw_channel_state{channel="tg",what="up"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }
    let llm_calls = t.fake.requests().len();
    assert_eq!(
        llm_calls, 2,
        "the ignored group message and /help start no turn"
    );

    // Restart: the next poll starts after the last update, so none repeats.
    t.gw.signal("TERM");
    t.gw.wait_exit(Duration::from_secs(20));
    let before = t.tg.offsets().len();
    t.gw = Tg::start(&t.home, &t.cfg, &t.base, BOT_TOKEN);
    t.fake.push(Reply::text("welcome back"));
    let next = t.tg.push_message(dm("again"));
    assert_eq!(next, help + 1);
    let got = sends(&t.tg.wait_sent(4, Duration::from_secs(30)));
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(got[3]["text"], "welcome back");
    let offsets = t.tg.wait_offset(next + 1, Duration::from_secs(30));
    assert_eq!(offsets.get(before), Some(&(help + 1)), "{offsets:?}");
    assert!(offsets[before..].iter().all(|o| *o > help), "{offsets:?}");
    assert_eq!(t.fake.requests().len(), 3, "nothing was answered twice");
}

#[test]
fn a_wrong_telegram_token_is_reported_and_the_gateway_keeps_serving() {
    let t = Tg::new("999:wrong-token-0000000000000000");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let c = t.channel();
        if c["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("credential"))
        {
            assert!(
                !c["last_error"].as_str().unwrap().contains("wrong-token"),
                "{c}"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never reported: {c}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(t.gw.get("/healthz", None).status, 200);
    let logs = t.gw.log_lines().join("\n");
    assert!(
        !logs.contains("wrong-token"),
        "the token never reaches the log"
    );
    assert!(logs.contains("channel tg stopped"), "the channel is named");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !t
        .gw
        .log_lines()
        .join("\n")
        .contains("alert.channel_failure")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no alert.channel_failure"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A cron job that answers into a Telegram chat: run now, its answer is
/// queued in the durable outbox and sent to that chat, once.
#[test]
fn a_cron_job_for_a_telegram_chat_is_sent_there() {
    let t = Tg::new(BOT_TOKEN);
    let post = |path: &str, body: Value| {
        request(
            t.gw.addr,
            "POST",
            path,
            Some(TOKEN),
            Some(&body.to_string()),
        )
    };
    let r = post(
        "/v1/cron",
        json!({"agent": "default", "schedule": "cron 0 9 * * MON-FRI in Europe/Berlin",
               "message": "the daily report", "delivery": {"kind": "channel", "channel": "tg", "peer": "42"}}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    t.fake.push(Reply::text("**all** green"));
    let r = post(&format!("/v1/cron/{id}/run"), json!({}));
    assert_eq!(r.json()["status"], "ok", "{}", r.body);
    let got = sends(&t.tg.wait_sent(1, Duration::from_secs(30)));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        (got[0]["chat_id"].clone(), got[0]["text"].clone()),
        (json!("42"), json!("<b>all</b> green"))
    );
    // Sent once: nothing more arrives.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sends(&t.tg.sent()).len(), 1);
}

/// Waits (bounded) until `pred` holds over the recorded actions.
fn wait_actions(
    tg: &FakeTelegram,
    pred: impl Fn(&[(String, Value)]) -> bool,
) -> Vec<(String, Value)> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got = tg.actions();
        if pred(&got) || std::time::Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn reactions(got: &[(String, Value)]) -> Vec<String> {
    got.iter()
        .filter(|(m, _)| m == "setMessageReaction")
        .map(|(_, b)| {
            b["reaction"][0]["emoji"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

#[test]
fn an_answer_is_streamed_by_edits_with_typing_and_status_reactions() {
    let t = Tg::with(BOT_TOKEN, json!({"edit_interval_ms": 250}));
    let answer = "one two three four five six seven eight";
    // A pause in the middle of the stream: the placeholder shows the start.
    t.fake.push(
        Reply::text(answer)
            .deltas(8)
            .stall_after(4, Duration::from_millis(1500)),
    );
    t.tg.push_message(dm("count"));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let got = loop {
        let got = t.tg.sent();
        if got
            .iter()
            .any(|(m, b)| m == "editMessageText" && b["text"] == answer)
            || std::time::Instant::now() > deadline
        {
            break got;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let placeholders = sends(&got);
    assert_eq!(placeholders.len(), 1, "one message, then edits: {got:?}");
    let first = placeholders[0]["text"].as_str().unwrap();
    assert!(
        first.ends_with(" …") && answer.starts_with(first.trim_end_matches(" …")),
        "the placeholder shows the start of the answer: {first:?}"
    );
    assert_ne!(first.trim_end_matches(" …"), answer, "sent before the end");
    let (method, last) = got.last().unwrap();
    assert_eq!(method, "editMessageText");
    assert_eq!(last["text"], answer, "the last edit is the whole answer");
    assert_eq!(last["message_id"], 2, "the placeholder's id");

    let actions = wait_actions(&t.tg, |a| reactions(a).len() >= 2);
    assert!(
        actions
            .iter()
            .any(|(m, b)| m == "sendChatAction" && b["action"] == "typing" && b["chat_id"] == "42"),
        "{actions:?}"
    );
    assert_eq!(reactions(&actions), ["👀", "👍"]);
    assert!(
        actions
            .iter()
            .filter(|(m, _)| m == "setMessageReaction")
            .all(|(_, b)| b["message_id"] == 1),
        "on the person's message: {actions:?}"
    );
    // Nothing else goes out: the edit delivered the answer, not the outbox.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(sends(&t.tg.sent()).len(), 1);

    // A turn that fails: the failure reaction, the error through the outbox.
    t.fake.push(Reply::status(400));
    let mut failed = dm("again");
    failed["message_id"] = json!(7);
    t.tg.push_message(failed);
    let actions = wait_actions(&t.tg, |a| reactions(a).len() >= 4);
    assert_eq!(reactions(&actions)[2..], ["👀", "👎"], "{actions:?}");
    let got = sends(&t.tg.wait_sent(got.len() + 1, Duration::from_secs(30)));
    assert_eq!(got.len(), 2, "the error message is sent: {got:?}");
    assert!(
        got[1]["text"]
            .as_str()
            .unwrap()
            .contains("no answer this time"),
        "{got:?}"
    );
}

#[test]
fn new_starts_a_fresh_conversation_and_keeps_the_old_one() {
    let t = Tg::new(BOT_TOKEN);
    let user_texts = |body: &Value| -> Vec<String> {
        body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["role"] == "user")
            .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    t.fake.push(Reply::text("first answer"));
    t.tg.push_message(dm("remember the blue door"));
    sends(&t.tg.wait_sent(1, Duration::from_secs(30)));
    t.fake.push(Reply::text("second answer"));
    t.tg.push_message(dm("what door?"));
    sends(&t.tg.wait_sent(2, Duration::from_secs(30)));
    assert_eq!(
        user_texts(&t.fake.last_request().unwrap().body),
        ["remember the blue door", "what door?"],
        "one conversation so far"
    );

    t.tg.push_message(dm("/new"));
    let got = sends(&t.tg.wait_sent(3, Duration::from_secs(30)));
    assert!(
        got[2]["text"]
            .as_str()
            .unwrap()
            .starts_with("Started a new conversation"),
        "{got:?}"
    );
    t.fake.push(Reply::text("third answer"));
    t.tg.push_message(dm("what door?"));
    sends(&t.tg.wait_sent(4, Duration::from_secs(30)));
    assert_eq!(
        user_texts(&t.fake.last_request().unwrap().body),
        ["what door?"],
        "the new conversation starts empty"
    );
    assert_eq!(t.fake.requests().len(), 3, "/new is not a turn");
    // The earlier conversation is kept.
    let sessions = t.gw.get("/v1/sessions", Some(TOKEN)).json();
    let listed = sessions["sessions"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{sessions}");
}

#[test]
fn channels_test_sends_through_the_outbox_and_reports_failures() {
    let t = Tg::new(BOT_TOKEN);
    let port = t.gw.addr.port().to_string();
    let path = t.cfg.path().join("config.json");
    let env = [
        ("EXOCLAW_GATEWAY_TOKEN", TOKEN),
        ("EXOCLAW_CONFIG", path.to_str().unwrap()),
        ("EXOCLAW_PORT", port.as_str()),
    ];
    let out = run(
        &t.home.path,
        &env,
        &[
            "channels",
            "test",
            "tg",
            "--to",
            "42",
            "--text",
            "ping *from* ops",
        ],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).starts_with("sent to 42 on tg (message "),
        "{}",
        stdout(&out)
    );
    let got = sends(&t.tg.sent());
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["chat_id"], "42");
    assert_eq!(got[0]["text"], "ping <i>from</i> ops");

    // Refused by the platform until dead-lettered: reported, non-zero.
    for _ in 0..8 {
        t.tg.fail_next_send(
            400,
            json!({"ok": false, "error_code": 400, "description": "Bad Request: chat not found"}),
        );
    }
    let out = run(
        &t.home.path,
        &env,
        &["channels", "test", "tg", "--to", "404", "--json"],
    );
    assert!(!out.status.success());
    let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_ne!(v["status"], "sent", "{v}");
    assert!(
        v["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("chat not found"),
        "{v}"
    );

    // An unknown channel, and no recipient.
    let out = run(
        &t.home.path,
        &env,
        &["channels", "test", "nope", "--to", "42"],
    );
    assert!(!out.status.success());
    assert!(
        error_line(&out).contains("no running channel named \"nope\""),
        "{}",
        stderr(&out)
    );
    let r = request(
        t.gw.addr,
        "POST",
        "/v1/channels/tg/test",
        Some(TOKEN),
        Some(r#"{"to": " "}"#),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let r = request(
        t.gw.addr,
        "POST",
        "/v1/channels/tg/test",
        None,
        Some(r#"{"to": "42"}"#),
    );
    assert_eq!(r.status, 401);
}

#[test]
fn webhook_mode_registers_a_secret_token_and_refuses_requests_without_it() {
    let t = Tg::configured(
        BOT_TOKEN,
        json!({"stream": false}),
        json!({"webhook_url": "https://bot.example.test/"}),
    );
    let actions = wait_actions(&t.tg, |a| a.iter().any(|(m, _)| m == "setWebhook"));
    let (_, set) = actions.iter().find(|(m, _)| m == "setWebhook").unwrap();
    assert_eq!(
        set["url"],
        "https://bot.example.test/v1/channels/telegram/tg"
    );
    let secret = set["secret_token"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 64);
    let post = |token: Option<&str>, body: &str| {
        let mut s = std::net::TcpStream::connect(t.gw.addr).unwrap();
        let extra = token
            .map(|t| format!("X-Telegram-Bot-Api-Secret-Token: {t}\r\n"))
            .unwrap_or_default();
        std::io::Write::write_all(
            &mut s,
            format!(
                "POST /v1/channels/telegram/tg HTTP/1.1\r\nHost: x\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .unwrap();
        read_response(&mut s)
    };
    let update = json!({"update_id": 500, "message": dm("hello over the hook")}).to_string();

    // Refused: no token, a wrong one, not an update.
    assert_eq!(post(None, &update).status, 401);
    assert_eq!(post(Some("wrong-token"), &update).status, 401);
    assert_eq!(post(Some(&secret), "{\"no\": 1}").status, 400);
    assert_eq!(t.fake.requests().len(), 0, "nothing reached the agent");

    t.fake.push(Reply::text("hooked"));
    assert_eq!(post(Some(&secret), &update).status, 200);
    let got = sends(&t.tg.wait_sent(1, Duration::from_secs(30)));
    assert_eq!(got[0]["text"], "hooked");
    // Telegram's retry of the same update is dropped.
    assert_eq!(post(Some(&secret), &update).status, 200);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(t.fake.requests().len(), 1);
    assert!(t.tg.offsets().is_empty(), "no polling in webhook mode");
    let audit =
        t.gw.get("/v1/audit?action=channel.webhook_refused", Some(TOKEN))
            .json();
    assert!(audit["events"].as_array().unwrap().len() >= 3, "{audit}");
    // Another channel name is not a Telegram channel.
    let r = request(
        t.gw.addr,
        "POST",
        "/v1/channels/telegram/nope",
        None,
        Some("{}"),
    );
    assert_eq!(r.status, 404);
}
