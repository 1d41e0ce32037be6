//! Discord through the real binary, the fake provider and the fake Discord
//! (Gateway + REST), on SQLite and PostgreSQL: a direct message is answered
//! (the Gateway URL from `GET /gateway/bot`); a guild message is heard only
//! when it mentions the bot; a thread is its own session; a long answer is
//! split at 2,000 characters; the bot's own messages are not answered; op
//! 7, a dropped connection and a resumable close resume the session
//! (nothing lost, nothing answered twice, the sequence continues); op 9
//! (not resumable) identifies anew; a heartbeat without its ACK reconnects;
//! close 4004 is reported as an auth failure while the gateway serves; a
//! 429 with `retry_after` is sent again after it; the sender gate and
//! `/stop` apply; an answer is streamed by edits with typing and status
//! reactions; a resume URL outside the egress policy is refused and the
//! bot identifies again; attachments land in the sender's workspace through
//! the hub (one over the cap is never fetched) and `channel_send_file`
//! answers with a multipart message. The adapter itself: `fetch_file` under its cap and
//! `send_file`'s multipart parts.

use crate::fake_discord::{BOT_ID, FakeDiscord};
use crate::support::*;
use exoclaw_core::channel::{Channel, FileKind, InboundFile, OutgoingFile};
use exoclaw_providers::fake::{FakeProvider, Reply};
use serde_json::{Value, json};
use std::time::Duration;

const BOT_TOKEN: &str = "MTIzNDU2.fake-discord.bot-token-abcdefghijklmnop";
const WAIT: Duration = Duration::from_secs(30);

struct Dc {
    _home: TestHome,
    _cfg: tempfile::TempDir,
    fake: FakeProvider,
    dc: FakeDiscord,
    gw: Gateway,
}

impl Dc {
    /// `channel`: keys merged into the channel's section; `discover`: no
    /// `gateway_url`, so it comes from `GET /gateway/bot`.
    fn start(token: &str, channel: Value, discover: bool, dsn: Option<&str>) -> Self {
        Self::prepared(token, channel, discover, dsn, |_| {})
    }

    /// [`Dc::start`] with `prepare` run on the fake Discord before the
    /// gateway starts.
    fn prepared(
        token: &str,
        channel: Value,
        discover: bool,
        dsn: Option<&str>,
        prepare: impl FnOnce(&FakeDiscord),
    ) -> Self {
        let (fake, base) = FakeProvider::start_in_thread().unwrap();
        let dc = FakeDiscord::start(BOT_TOKEN, 300);
        prepare(&dc);
        let cfg = tempfile::tempdir().unwrap();
        let mut discord = json!({"api_base": dc.api_base()});
        if !discover {
            discord["gateway_url"] = json!(dc.gateway_url());
        }
        let mut section = json!({
            "type": "discord",
            "dm_policy": "open",
            "groups": {"allow": ["*"]},
            "discord": discord,
            "outbox": {"backoff_ms": 50, "backoff_max_ms": 200},
            "progress": {"stream": false},
        });
        for (k, v) in channel.as_object().unwrap() {
            section[k] = v.clone();
        }
        let config = json!({
            "gateway": {"rate_limit_rpm": 0, "shutdown_grace_sec": 1},
            "channels": {"dc": section},
        });
        let path = cfg.path().join("config.json");
        std::fs::write(&path, config.to_string()).unwrap();
        let home = TestHome::new();
        let mut env = vec![
            ("EXOCLAW_GATEWAY_TOKEN", TOKEN),
            ("EXOCLAW_OPENAI_API_KEY", "sk-test-fake-key-0123456789"),
            ("EXOCLAW_OPENAI_BASE_URL", base.as_str()),
            ("EXOCLAW_CONFIG", path.to_str().unwrap()),
            ("EXOCLAW_DISCORD_BOT_TOKEN", token),
        ];
        if let Some(dsn) = dsn {
            env.push(("EXOCLAW_POSTGRES_DSN", dsn));
        }
        let gw = Gateway::start(&home.path, &env);
        Self {
            _home: home,
            _cfg: cfg,
            fake,
            dc,
            gw,
        }
    }

    fn channel(&self) -> Value {
        let r = self.gw.get("/v1/channels", Some(TOKEN));
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["channels"][0].clone()
    }

    /// Wait (bounded) for the first identify.
    fn connected(self) -> Self {
        let n = self.dc.wait(WAIT, FakeDiscord::identifies, |n| *n >= 1);
        assert_eq!(
            n,
            1,
            "the bot identified once: {}",
            self.gw.log_lines().join("\n")
        );
        self
    }
}

fn dm(channel: &str, author: &str, text: &str) -> Value {
    json!({"channel_id": channel, "content": text,
        "author": {"id": author, "username": format!("user{author}")}})
}

fn guild(channel: &str, text: &str, mention: bool) -> Value {
    let (content, mentions) = if mention {
        (format!("<@{BOT_ID}> {text}"), json!([{"id": BOT_ID}]))
    } else {
        (text.to_owned(), json!([]))
    };
    json!({"channel_id": channel, "guild_id": "5", "content": content, "mentions": mentions,
        "author": {"id": "42", "username": "ann"}})
}

fn user_texts(body: &Value) -> Vec<String> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "user")
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn contents(sent: &[crate::fake_discord::Call]) -> Vec<String> {
    sent.iter()
        .map(|c| c.body["content"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Direct, guild, thread and a long answer, on one store.
fn conversation(dsn: Option<&str>) {
    let t = Dc::start(BOT_TOKEN, json!({}), true, dsn).connected();
    assert!(
        t.dc.calls().iter().any(|c| c.path == "/gateway/bot"),
        "the gateway URL was asked for"
    );
    t.fake.push(Reply::text("**hello** <there>"));
    t.dc.push_message(dm("70", "42", "hi"));
    let sent = t.dc.wait_sent(1);
    assert_eq!(sent[0].path, "/channels/70/messages");
    assert_eq!(
        sent[0].body["content"], "**hello** <there>",
        "Markdown as written"
    );
    assert_eq!(sent[0].body["allowed_mentions"], json!({"parse": []}));
    assert_eq!(sent[0].body["enforce_nonce"], true);
    assert_eq!(sent[0].body["nonce"].as_str().unwrap().len(), 25);

    // A guild message is heard only when it mentions the bot.
    t.dc.push_message(guild("71", "just chatting", false));
    t.fake.push(Reply::text("at your service"));
    t.dc.push_message(guild("71", "help me", true));
    let sent = t.dc.wait_sent(2);
    assert_eq!(sent.len(), 2, "{:?}", contents(&sent));
    assert_eq!(
        (sent[1].path.as_str(), sent[1].body["content"].clone()),
        ("/channels/71/messages", json!("at your service"))
    );
    assert_eq!(
        user_texts(&t.fake.last_request().unwrap().body),
        ["help me"],
        "the mention is not part of the text"
    );

    // A thread is its own channel, so its own session.
    t.fake.push(Reply::text("in the thread"));
    t.dc.push_message(guild("72", "thread question", true));
    let sent = t.dc.wait_sent(3);
    assert_eq!(sent[2].path, "/channels/72/messages");
    assert_eq!(
        user_texts(&t.fake.last_request().unwrap().body),
        ["thread question"]
    );

    // A long answer: parts of at most 2,000 characters, nothing lost.
    let long = (0..900)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    t.fake.push(Reply::text(long.clone()));
    t.dc.push_message(dm("70", "42", "a long one please"));
    let sent = t.dc.wait_sent(6);
    let parts = contents(&sent[3..]);
    assert_eq!(parts.len(), 3, "{parts:?}");
    assert!(parts.iter().all(|p| p.chars().count() <= 2000));
    assert_eq!(parts.join(" "), long);
    assert_eq!(
        user_texts(&t.fake.last_request().unwrap().body),
        ["hi", "a long one please"],
        "the direct conversation goes on"
    );

    // The ignored guild message and the bot's own (echoed) messages start
    // no turn.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(t.fake.requests().len(), 4);
    assert_eq!(t.dc.sent().len(), 6);
    let sessions = t.gw.get("/v1/sessions", Some(TOKEN)).json();
    assert_eq!(
        sessions["sessions"].as_array().unwrap().len(),
        3,
        "{sessions}"
    );
    let c = t.channel();
    assert_eq!(
        (c["kind"].clone(), c["running"].clone()),
        (json!("discord"), json!(true)),
        "{c}"
    );
}

/// Files through the hub, as for Telegram: a direct message's attachment is
/// fetched under the cap into the sender's workspace `inbox/` (its hostile
/// name made safe) and the agent sees the note; an attachment over the cap
/// is refused by its announced size and never fetched; the agent's
/// `channel_send_file` goes out as a multipart message.
#[test]
fn discord_attachments_land_in_the_workspace_and_files_go_back() {
    let t = Dc::start(
        BOT_TOKEN,
        json!({"files": {"max_bytes": 1024}}),
        false,
        None,
    )
    .connected();
    t.dc.add_attachment("notes.txt", b"hello file");
    t.dc.add_attachment("big.bin", &[0u8; 2048]);
    let attachment = |id: &str, name: &str, file: &str, size: u64| {
        json!({"id": id, "filename": name, "size": size,
            "url": t.dc.attachment_url(file), "content_type": "text/plain"})
    };
    let call = |id: &str, name: &str, args: Value| exoclaw_core::provider::ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: args,
    };
    t.fake.push(Reply::tool_calls([call(
        "w1",
        "write_file",
        json!({"path": "out.txt", "content": "the answer file"}),
    )]));
    t.fake.push(Reply::tool_calls([call(
        "s1",
        "channel_send_file",
        json!({"path": "out.txt", "caption": "here it is"}),
    )]));
    t.fake.push(Reply::text("done"));
    let mut m = dm("70", "42", "see attached");
    m["attachments"] = json!([
        attachment("900", "../../notes.txt", "notes.txt", 10),
        attachment("901", "big.bin", "big.bin", 2048),
    ]);
    t.dc.push_message(m);
    let sent = t.dc.wait(WAIT, FakeDiscord::sent, |s| {
        s.iter().any(|c| c.body["content"] == "done")
    });

    // The agent saw a note for the saved file and one for the refused one.
    let first = &t.fake.requests()[0].body;
    let said = user_texts(first).join("\n");
    assert!(said.contains("see attached"), "{said}");
    assert!(said.contains("[file saved: inbox/"), "{said}");
    assert!(
        said.contains("big.bin") || said.contains("refused"),
        "{said}"
    );
    // Saved inside the sender's inbox under a safe name; the big one never
    // fetched.
    let root = t._home.path.join("workspace/default");
    let saved: Vec<(String, Vec<u8>)> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|u| std::fs::read_dir(u.ok()?.path().join("inbox")).ok())
        .flatten()
        .map(|f| {
            let f = f.unwrap();
            (
                f.file_name().to_string_lossy().into_owned(),
                std::fs::read(f.path()).unwrap(),
            )
        })
        .collect();
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert!(
        saved[0].0.ends_with(".txt") && !saved[0].0.contains(".."),
        "{saved:?}"
    );
    assert_eq!(saved[0].1, b"hello file");
    assert_eq!(
        t.dc.fetched(),
        ["notes.txt"],
        "an attachment over the cap is not fetched"
    );
    assert!(!t._home.path.join("workspace/notes.txt").exists());

    // The file back: a multipart message with the bytes and the caption.
    let file = sent
        .iter()
        .find(|c| c.content_type.starts_with("multipart/form-data"))
        .expect("a multipart message");
    assert_eq!(file.path, "/channels/70/messages");
    assert_eq!(file.body["payload_json"]["content"], "here it is");
    assert_eq!(file.body["files"][0]["filename"], "out.txt");
    assert_eq!(file.body["files"][0]["bytes"], "the answer file");
}

#[test]
fn discord_direct_guild_thread_and_long_answers_on_sqlite() {
    conversation(None);
}

#[test]
fn discord_direct_guild_thread_and_long_answers_on_postgres() {
    let Some(dsn) = crate::postgres::fresh_database() else {
        return;
    };
    conversation(Some(&dsn));
}

#[test]
fn discord_resumes_after_reconnects_drops_and_closes_without_losing_or_repeating() {
    let t = Dc::start(BOT_TOKEN, json!({}), false, None).connected();
    t.fake.push(Reply::text("first"));
    t.dc.push_message(dm("70", "42", "one"));
    t.dc.wait_sent(1);

    // Op 7: the bot reconnects and resumes; a message sent meanwhile is
    // delivered once.
    t.dc.reconnect();
    t.fake.push(Reply::text("second"));
    let two = t.dc.push_message(dm("70", "42", "two"));
    let resumes = t.dc.wait(WAIT, FakeDiscord::resumes, |r| !r.is_empty());
    assert_eq!(resumes.len(), 1, "{resumes:?}");
    assert_eq!(resumes[0].0, "session-1");
    assert!(resumes[0].1.is_some_and(|s| s >= 1), "{resumes:?}");
    assert_eq!(contents(&t.dc.wait_sent(2)), ["first", "second"]);

    // A dropped connection: the message pushed while it is down comes with
    // the resume.
    t.dc.drop_connection();
    t.fake.push(Reply::text("third"));
    let three = t.dc.push_message(dm("70", "42", "three"));
    assert!(three > two, "the sequence continues");
    let resumes = t.dc.wait(WAIT, FakeDiscord::resumes, |r| r.len() >= 2);
    assert_eq!(resumes[1].0, "session-1");
    assert!(
        resumes[1].1 > resumes[0].1 && resumes[1].1 >= Some(two),
        "the bot's sequence number went on through the replay: {resumes:?}"
    );
    assert_eq!(contents(&t.dc.wait_sent(3)), ["first", "second", "third"]);

    // A resumable close code resumes too.
    t.dc.close(4000);
    let resumes = t.dc.wait(WAIT, FakeDiscord::resumes, |r| r.len() >= 3);
    assert_eq!(resumes.len(), 3);
    t.fake.push(Reply::text("fourth"));
    t.dc.push_message(dm("70", "42", "four"));
    t.dc.wait_sent(4);

    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(t.dc.identifies(), 1, "never identified anew");
    assert_eq!(t.fake.requests().len(), 4, "nothing answered twice");
    assert_eq!(
        contents(&t.dc.sent()),
        ["first", "second", "third", "fourth"]
    );
}

#[test]
fn discord_identifies_anew_after_an_invalid_session_and_reconnects_a_zombie() {
    let t = Dc::start(BOT_TOKEN, json!({}), false, None).connected();
    // Op 9, not resumable: a fresh IDENTIFY after 1-5 s, no RESUME.
    t.dc.invalidate(false);
    let n =
        t.dc.wait(Duration::from_secs(20), FakeDiscord::identifies, |n| {
            *n >= 2
        });
    assert_eq!(n, 2);
    assert!(t.dc.resumes().is_empty(), "{:?}", t.dc.resumes());
    t.fake.push(Reply::text("still here"));
    t.dc.push_message(dm("70", "42", "hello again"));
    assert_eq!(contents(&t.dc.wait_sent(1)), ["still here"]);

    // A heartbeat without its ACK: a zombie connection, resumed.
    let beats = t.dc.heartbeats();
    t.dc.skip_acks(1);
    let resumes = t.dc.wait(WAIT, FakeDiscord::resumes, |r| !r.is_empty());
    assert_eq!(resumes.len(), 1);
    assert_eq!(resumes[0].0, "session-2");
    assert!(t.dc.heartbeats() > beats);
    t.fake.push(Reply::text("after the zombie"));
    t.dc.push_message(dm("70", "42", "are you alive"));
    assert_eq!(contents(&t.dc.wait_sent(2))[1], "after the zombie");
    assert_eq!(t.dc.identifies(), 2);
}

#[test]
fn discord_close_4004_is_an_auth_failure_and_the_gateway_keeps_serving() {
    let t = Dc::start(
        "wrong-discord-token-0000000000000000",
        json!({}),
        false,
        None,
    );
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let c = t.channel();
        if c["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("credential"))
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never reported: {c}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(t.dc.identifies(), 0);
    assert_eq!(t.gw.get("/healthz", None).status, 200);
    let logs = t.gw.log_lines().join("\n");
    assert!(
        !logs.contains("wrong-discord-token"),
        "the token never reaches the log"
    );
    assert!(logs.contains("channel dc stopped"), "the channel is named");
}

#[test]
fn discord_sends_again_after_retry_after_and_on_server_errors() {
    let t = Dc::start(BOT_TOKEN, json!({}), false, None).connected();
    t.dc.fail_next_send(
        429,
        json!({"message": "You are being rate limited.", "retry_after": 0.8, "global": false}),
    );
    t.dc.fail_next_send(502, json!({"message": "Bad Gateway"}));
    t.fake.push(Reply::text("eventually"));
    let asked = std::time::Instant::now();
    t.dc.push_message(dm("70", "42", "hi"));
    let sent = t.dc.wait_sent(1);
    assert_eq!(contents(&sent), ["eventually"]);
    assert!(
        sent[0].at.duration_since(asked) >= Duration::from_millis(800),
        "sent after retry_after"
    );
    let c = t.channel();
    assert_eq!(c["failed"], 2, "{c}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(t.dc.sent().len(), 1, "sent once");
}

#[test]
fn discord_senders_pass_the_gate_and_stop_ends_the_answer_being_written() {
    let t = Dc::start(
        BOT_TOKEN,
        json!({"dm_policy": "pairing", "allow_from": ["42"]}),
        false,
        None,
    )
    .connected();
    // An unknown sender gets a pairing code, not an answer.
    t.dc.push_message(dm("80", "77", "let me in"));
    let sent = t.dc.wait_sent(1);
    assert_eq!(sent[0].path, "/channels/80/messages");
    assert!(
        contents(&sent)[0].contains("pairing code"),
        "{:?}",
        contents(&sent)
    );
    assert_eq!(t.fake.requests().len(), 0);

    // A slow answer, then /stop from the same person (mentioning the bot
    // in a guild works the same way).
    t.fake
        .push(Reply::text("too late").delay(Duration::from_secs(20)));
    t.dc.push_message(dm("70", "42", "think hard"));
    t.fake_waits_for_request();
    t.dc.push_message(dm("70", "42", "/stop"));
    let sent = t.dc.wait_sent(2);
    assert!(
        contents(&sent)[1].starts_with("Stopped 1 run"),
        "{:?}",
        contents(&sent)
    );
    // Typing was shown and the person's message got the working reaction.
    let calls = t.dc.calls();
    assert!(
        calls.iter().any(|c| c.path == "/channels/70/typing"),
        "{calls:?}"
    );
    assert!(
        calls
            .iter()
            .any(|c| c.method == "PUT" && c.path.contains("/reactions/%F0%9F%91%80/@me")),
        "{calls:?}"
    );
}

impl Dc {
    fn fake_waits_for_request(&self) {
        let deadline = std::time::Instant::now() + WAIT;
        while self.fake.requests().is_empty() {
            assert!(std::time::Instant::now() < deadline, "no turn started");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The adapter alone against the fake REST API.
fn adapter(
    dc: &FakeDiscord,
    dir: &std::path::Path,
) -> exoclaw_gateway::channels::discord::DiscordChannel {
    use exoclaw_gateway::config::{FileConfig, channels::DiscordChannelConfig, env::Env};
    let settings = exoclaw_gateway::Settings::from_config(
        exoclaw_gateway::home::Home::new(dir),
        FileConfig::default(),
        Env::default(),
    );
    let client = exoclaw_gateway::egress::discord_client(
        &settings,
        "channels.dc.discord",
        &dc.api_base(),
        None,
    )
    .unwrap();
    exoclaw_gateway::channels::discord::DiscordChannel::new(
        "dc",
        exoclaw_core::TenantId::new(exoclaw_core::DEFAULT_TENANT),
        DiscordChannelConfig {
            api_base: dc.api_base(),
            gateway_url: None,
        },
        Some(exoclaw_core::Secret::new(BOT_TOKEN.to_owned())),
        None,
        client,
    )
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn discord_fetch_file_enforces_the_cap_on_the_size_and_the_bytes() {
    let dc = FakeDiscord::start(BOT_TOKEN, 300);
    let dir = tempfile::tempdir().unwrap();
    let a = adapter(&dc, dir.path());
    assert!(a.info().can_files);
    dc.add_attachment("small.txt", b"hello file");
    dc.add_attachment("big.bin", &[b'x'; 4096]);
    let file = |name: &str, size: Option<u64>| InboundFile {
        kind: FileKind::Document,
        file_ref: dc.attachment_url(name),
        name: Some(name.to_owned()),
        mime: None,
        size,
    };
    block_on(async {
        assert_eq!(
            a.fetch_file(&file("small.txt", Some(10)), 100)
                .await
                .unwrap(),
            b"hello file"
        );
        // Announced over the cap: refused before any download.
        let e = a
            .fetch_file(&file("big.bin", Some(4096)), 1000)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("larger than 1000"), "{e}");
        // Announced small, but the bytes pass the cap: refused at the cap.
        let e = a
            .fetch_file(&file("big.bin", Some(10)), 1000)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("larger than 1000"), "{e}");
        assert!(!e.is_retryable());
        // A URL outside Discord and the configured origins is refused.
        let mut elsewhere = file("small.txt", Some(10));
        elsewhere.file_ref = "http://127.0.0.2:9/x".to_owned();
        let e = a.fetch_file(&elsewhere, 100).await.unwrap_err();
        assert!(e.to_string().contains("egress policy"), "{e}");
        elsewhere.file_ref = "https://example.com/x.png".to_owned();
        let e = a.fetch_file(&elsewhere, 100).await.unwrap_err();
        assert!(e.to_string().contains("egress policy"), "{e}");
    });
}

#[test]
fn discord_send_file_posts_a_multipart_message() {
    let dc = FakeDiscord::start(BOT_TOKEN, 300);
    let dir = tempfile::tempdir().unwrap();
    let a = adapter(&dc, dir.path());
    let file = OutgoingFile {
        peer: "70".to_owned(),
        name: "../reports/q3 \"final\".csv".to_owned(),
        mime: Some("text/csv".to_owned()),
        bytes: b"a,b\n1,2\n".to_vec(),
        caption: Some("the report".to_owned()),
        idempotency_key: "file:1".to_owned(),
    };
    let sent = block_on(a.send_file(&file)).unwrap();
    assert!(sent.platform_id.is_some());
    let calls = dc.sent();
    assert_eq!(calls.len(), 1);
    let c = &calls[0];
    assert_eq!(c.path, "/channels/70/messages");
    assert!(
        c.content_type.starts_with("multipart/form-data; boundary="),
        "{}",
        c.content_type
    );
    let payload = &c.body["payload_json"];
    assert_eq!(payload["content"], "the report");
    assert_eq!(
        payload["attachments"],
        json!([{"id": 0, "filename": "q3 final.csv"}])
    );
    assert_eq!(payload["allowed_mentions"], json!({"parse": []}));
    assert_eq!(
        c.body["files"],
        json!([{"name": "files[0]", "filename": "q3 final.csv", "content_type": "text/csv",
            "bytes": "a,b\n1,2\n"}])
    );
    // The same idempotency key again: Discord's nonce makes it a repeat.
    block_on(a.send_file(&file)).unwrap();
    assert_eq!(dc.sent().len(), 1);
    assert_eq!(dc.calls().len(), 2);
    // Refused peers never reach the API.
    let mut bad = file;
    bad.peer = "70/../../users/@me".to_owned();
    assert!(block_on(a.send_file(&bad)).is_err());
    assert_eq!(dc.calls().len(), 2);
}

#[test]
fn discord_streams_an_answer_by_edits_with_typing_and_reactions() {
    let t = Dc::start(
        BOT_TOKEN,
        json!({"progress": {"edit_interval_ms": 250}}),
        false,
        None,
    )
    .connected();
    let answer = "one two three four five six seven eight";
    t.fake.push(
        Reply::text(answer)
            .deltas(8)
            .stall_after(4, Duration::from_millis(1000)),
    );
    let asked = t.dc.push_message(dm("70", "42", "count"));
    assert!(asked > 0);
    let done = |c: &Vec<crate::fake_discord::Call>| {
        c.iter()
            .any(|c| c.method == "PATCH" && c.body["content"] == answer)
            && c.iter()
                .any(|c| c.path.contains("/reactions/%F0%9F%91%8D/@me"))
    };
    let calls = t.dc.wait(WAIT, FakeDiscord::calls, done);
    let posts = t.dc.sent();
    assert_eq!(posts.len(), 1, "one placeholder, then edits: {calls:?}");
    let first = posts[0].body["content"].as_str().unwrap();
    assert!(
        first.ends_with(" …") && answer.starts_with(first.trim_end_matches(" …")),
        "the placeholder shows the start of the answer: {first:?}"
    );
    let last = calls.iter().rfind(|c| c.method == "PATCH").unwrap();
    assert!(
        last.path.starts_with("/channels/70/messages/"),
        "{}",
        last.path
    );
    assert_eq!(
        last.body["content"], answer,
        "the last edit is the whole answer"
    );
    assert!(calls.iter().any(|c| c.path == "/channels/70/typing"));
    let reactions: Vec<&str> = calls
        .iter()
        .filter(|c| c.method == "PUT")
        .map(|c| c.path.as_str())
        .collect();
    assert_eq!(reactions.len(), 2, "{reactions:?}");
    assert!(
        reactions[0].contains("%F0%9F%91%80"),
        "👀 first: {reactions:?}"
    );
    // Nothing more goes out: the edit delivered the answer, not the outbox.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(t.dc.sent().len(), 1);
}

#[test]
fn discord_refuses_a_resume_url_outside_the_policy_and_identifies_again() {
    // READY names a loopback address nobody configured to resume at.
    let t = Dc::prepared(BOT_TOKEN, json!({}), false, None, |dc| {
        dc.set_resume_url("ws://127.0.0.2:9");
    })
    .connected();
    t.dc.reconnect();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let c = t.channel();
        if c["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("egress policy"))
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never refused: {c}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The session is dropped: the next start identifies at the configured
    // Gateway and serves again.
    let n = t.dc.wait(WAIT, FakeDiscord::identifies, |n| *n >= 2);
    assert_eq!(n, 2);
    assert!(
        t.dc.resumes().is_empty(),
        "the refused URL was never reached"
    );
    t.fake.push(Reply::text("back"));
    t.dc.push_message(dm("70", "42", "hello"));
    assert_eq!(contents(&t.dc.wait_sent(1)), ["back"]);
}
