//! Telegram files through the real binary, the fake provider and the fake
//! Bot API, on SQLite and PostgreSQL: a photo from an allowed sender lands
//! in the sender's workspace (0600 in a 0700 `inbox/`) and the agent reads
//! the note, marked untrusted; hostile file names land as safe names; an
//! unknown sender's file is never fetched; an oversized file (by its
//! announced size, or by its bytes when the size lied) is refused, the
//! person is told, and the text is still answered; the agent sends a file
//! back (`channel_send_file`: a multipart upload with the bytes) while
//! path escapes are refused; a queued file survives a kill and is sent
//! exactly once; outside a channel the tool says so.

use crate::fake_telegram::FakeTelegram;
use crate::support::*;
use exoclaw_core::provider::ToolCall;
use exoclaw_providers::fake::{FakeProvider, Reply};
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const BOT_TOKEN: &str = "123456:TEST-bot-token-abcdefghijklmnop";
const WAIT: Duration = Duration::from_secs(30);

struct Tg {
    home: TestHome,
    cfg: tempfile::TempDir,
    fake: FakeProvider,
    base: String,
    tg: FakeTelegram,
    gw: Gateway,
    dsn: Option<String>,
}

impl Tg {
    /// `channel`: keys over the channel's defaults (open DMs, no streaming).
    fn new(channel: Value, dsn: Option<String>) -> Self {
        let (fake, base) = FakeProvider::start_in_thread().unwrap();
        let tg = FakeTelegram::start(BOT_TOKEN);
        let cfg = tempfile::tempdir().unwrap();
        let mut section = json!({
            "type": "telegram",
            "dm_policy": "open",
            "telegram": {"api_base": tg.base(), "poll_timeout_sec": 1},
            "outbox": {"backoff_ms": 50, "backoff_max_ms": 200},
            "progress": {"stream": false, "status": false},
        });
        for (k, v) in channel.as_object().unwrap() {
            section[k] = v.clone();
        }
        let config = json!({
            "gateway": {"rate_limit_rpm": 0, "shutdown_grace_sec": 1},
            "channels": {"tg": section},
        });
        std::fs::write(cfg.path().join("config.json"), config.to_string()).unwrap();
        let home = TestHome::new();
        let gw = Self::start(&home, &cfg, &base, dsn.as_deref());
        Self {
            home,
            cfg,
            fake,
            base,
            tg,
            gw,
            dsn,
        }
    }

    fn start(home: &TestHome, cfg: &tempfile::TempDir, base: &str, dsn: Option<&str>) -> Gateway {
        let mut env = fake_provider_env(base.to_owned(), &cfg.path().join("config.json"), dsn);
        env.push((
            "EXOCLAW_TELEGRAM_BOT_TOKEN".to_owned(),
            BOT_TOKEN.to_owned(),
        ));
        Gateway::start(&home.path, &env_pairs(&env))
    }

    fn restart(&mut self) {
        self.gw = Self::start(&self.home, &self.cfg, &self.base, self.dsn.as_deref());
    }

    /// The `inbox/` directories of every user's workspace.
    fn inboxes(&self) -> Vec<PathBuf> {
        let root = self.home.path.join("workspace/default");
        let Ok(users) = std::fs::read_dir(&root) else {
            return Vec::new();
        };
        users
            .filter_map(|u| Some(u.ok()?.path().join("inbox")))
            .filter(|p| p.is_dir())
            .collect()
    }

    /// Every file received so far: (name, bytes).
    fn received(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for inbox in self.inboxes() {
            for f in std::fs::read_dir(inbox).unwrap() {
                let f = f.unwrap();
                out.push((
                    f.file_name().to_string_lossy().into_owned(),
                    std::fs::read(f.path()).unwrap(),
                ));
            }
        }
        out.sort();
        out
    }

    /// The text of the last user message the model was sent.
    fn last_user_text(&self) -> String {
        let req = self.fake.last_request().expect("a model call");
        req.body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|m| m["role"] == "user")
            .map(|m| m["content"].to_string())
            .unwrap_or_default()
    }
}

fn from(sender: i64, extra: Value) -> Value {
    let mut m = json!({"message_id": 1, "chat": {"id": sender, "type": "private"},
        "from": {"id": sender, "first_name": "Ann"}});
    for (k, v) in extra.as_object().unwrap() {
        m[k] = v.clone();
    }
    m
}

fn texts(tg: &FakeTelegram, n: usize) -> Vec<String> {
    tg.wait_sent(n, WAIT)
        .iter()
        .filter(|(m, _)| m == "sendMessage")
        .map(|(_, b)| b["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn call(id: &str, name: &str, args: Value) -> ToolCall {
    ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: args,
    }
}

#[test]
fn a_photo_from_an_allowed_sender_lands_in_the_workspace_and_hostile_names_stay_inside() {
    files_land_in_the_workspace(None);
}

#[test]
fn a_photo_from_an_allowed_sender_lands_in_the_workspace_on_postgres() {
    let Some(dsn) = crate::postgres::fresh_database() else {
        return;
    };
    files_land_in_the_workspace(Some(dsn));
}

fn files_land_in_the_workspace(dsn: Option<String>) {
    let t = Tg::new(json!({"dm_policy": "allowlist", "allow_from": ["42"]}), dsn);
    let photo = vec![0xFFu8, 0xD8, 0xFF, 0, 1, 2, 3, 0xD9];
    t.tg.add_file("small", b"tiny");
    t.tg.add_file("large", &photo);
    t.fake.push(Reply::text("A cat, it seems."));
    t.tg.push_message(from(
        42,
        json!({"caption": "what is this?", "photo": [
            {"file_id": "small", "file_size": 4, "width": 90, "height": 90},
            {"file_id": "large", "file_size": photo.len(), "width": 800, "height": 800}]}),
    ));
    assert_eq!(texts(&t.tg, 1), ["A cat, it seems."]);
    // Only the largest size was fetched, once.
    assert_eq!(t.tg.get_file_calls(), ["large"]);
    let got = t.received();
    assert_eq!(got.len(), 1, "{got:?}");
    let (name, bytes) = &got[0];
    assert_eq!(bytes, &photo);
    assert!(
        name.starts_with("20") && name.contains("-photo-") && name.ends_with(".jpg"),
        "{name}"
    );
    let inbox = &t.inboxes()[0];
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(inbox), 0o700);
    assert_eq!(mode(&inbox.join(name)), 0o600);
    // The agent was told where it is, inside untrusted-content markers,
    // after the person's own words.
    let said = t.last_user_text();
    assert!(said.contains("what is this?"), "{said}");
    assert!(
        said.contains("<<<UNTRUSTED source=\\\"channel_file:tg\\\">>>"),
        "{said}"
    );
    assert!(
        said.contains(&format!("[file saved: inbox/{name} (image/jpeg, 8 B)")),
        "{said}"
    );

    // Hostile names: each lands as a safe name inside inbox/.
    let hostile = [
        "../../etc/passwd",
        ".bashrc",
        "dir/sub/name.txt",
        "nul\u{0}byte.txt",
        &"x".repeat(300),
    ];
    for (i, name) in hostile.iter().enumerate() {
        let id = format!("doc{i}");
        t.tg.add_file(&id, format!("content {i}").as_bytes());
        t.fake.push(Reply::text(format!("got {i}")));
        t.tg.push_message(from(
            42,
            json!({"caption": format!("file {i}"), "document":
                {"file_id": id, "file_name": name, "mime_type": "text/plain", "file_size": 9}}),
        ));
        assert_eq!(texts(&t.tg, 2 + i).len(), 2 + i);
    }
    let got = t.received();
    assert_eq!(got.len(), 1 + hostile.len(), "{got:?}");
    for (name, _) in &got {
        assert!(
            !name.starts_with('.')
                && !name.contains("..")
                && name.len() <= 80
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
            "{name}"
        );
    }
    let contents: Vec<&[u8]> = got.iter().map(|(_, b)| b.as_slice()).collect();
    for i in 0..hostile.len() {
        assert!(contents.contains(&format!("content {i}").as_bytes()), "{i}");
    }
    // Nothing was written outside the workspace's inbox.
    assert!(!t.home.path.join("etc").exists());
    assert!(!t.home.path.join("workspace/etc").exists());
}

#[test]
fn an_unknown_senders_file_is_never_downloaded() {
    let t = Tg::new(json!({"dm_policy": "pairing"}), None);
    t.tg.add_file("secret", b"malware");
    t.tg.push_message(from(
        77,
        json!({"caption": "open this", "document": {"file_id": "secret", "file_name": "a.exe"}}),
    ));
    // The unknown sender gets a pairing code, and nothing more.
    let got = texts(&t.tg, 1);
    assert!(got[0].contains("pairing code"), "{got:?}");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        t.tg.get_file_calls().is_empty(),
        "{:?}",
        t.tg.get_file_calls()
    );
    assert!(t.tg.downloads().is_empty());
    assert!(t.received().is_empty());
    assert!(t.fake.requests().is_empty(), "no turn");
}

#[test]
fn an_oversized_file_is_refused_the_person_is_told_and_the_text_still_answered() {
    let t = Tg::new(json!({"files": {"max_bytes": 1000}}), None);
    // Announced too large: refused before any getFile.
    t.tg.add_file("huge", &[7u8; 5000]);
    t.fake.push(Reply::text("answered anyway"));
    t.tg.push_message(from(
        42,
        json!({"caption": "see attached", "document":
            {"file_id": "huge", "file_name": "big.bin", "file_size": 5000}}),
    ));
    let got = texts(&t.tg, 2);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got.iter()
            .any(|m| m.contains("Not received") && m.contains("big.bin") && m.contains("larger")),
        "{got:?}"
    );
    assert!(got.contains(&"answered anyway".to_owned()), "{got:?}");
    assert!(t.tg.get_file_calls().is_empty());
    let said = t.last_user_text();
    assert!(
        said.contains("see attached") && said.contains("[file refused:"),
        "{said}"
    );
    // The size lied: getFile says 100, the bytes are 5000. The download
    // stops at the cap; nothing is saved.
    t.tg.add_file_announcing("liar", &[9u8; 5000], 100);
    t.fake.push(Reply::text("second answer"));
    t.tg.push_message(from(
        42,
        json!({"caption": "another", "document": {"file_id": "liar", "file_name": "small.txt"}}),
    ));
    let got = texts(&t.tg, 4);
    assert!(got.contains(&"second answer".to_owned()), "{got:?}");
    assert_eq!(t.tg.get_file_calls(), ["liar"]);
    assert!(
        got.iter()
            .any(|m| m.contains("small.txt") && m.contains("larger")),
        "{got:?}"
    );
    assert!(t.received().is_empty(), "{:?}", t.received());
    // A file alone (no text) that is refused starts no turn.
    let before = t.fake.requests().len();
    t.tg.push_message(from(
        42,
        json!({"document": {"file_id": "huge", "file_name": "again.bin", "file_size": 5000}}),
    ));
    let got = texts(&t.tg, 5);
    assert!(got.last().unwrap().contains("again.bin"), "{got:?}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(t.fake.requests().len(), before);
    // A download that fails: the person is told, and the bot token (in the
    // download URL) is in no log line and no message.
    t.tg.add_file_gone("gone");
    t.fake.push(Reply::text("third answer"));
    t.tg.push_message(from(
        42,
        json!({"caption": "last one", "document": {"file_id": "gone", "file_name": "x.txt"}}),
    ));
    let got = texts(&t.tg, 7);
    assert!(
        got.iter()
            .any(|m| m.contains("x.txt") && m.contains("no longer available")),
        "{got:?}"
    );
    assert!(got.contains(&"third answer".to_owned()), "{got:?}");
    let logs = t.gw.log_lines().join("\n");
    assert!(
        !logs.contains("TEST-bot-token"),
        "the token never reaches the log"
    );
    assert!(got.iter().all(|m| !m.contains("TEST-bot-token")));
    assert!(!t.last_user_text().contains("TEST-bot-token"));
}

#[test]
fn the_agent_sends_a_file_back_and_path_escapes_are_refused() {
    let t = Tg::new(json!({}), None);
    t.fake.push(Reply::tool_calls([call(
        "w1",
        "write_file",
        json!({"path": "out/report.txt", "content": "quarterly numbers"}),
    )]));
    t.fake.push(Reply::text("written"));
    t.tg.push_message(from(42, json!({"text": "write the report"})));
    assert_eq!(texts(&t.tg, 1), ["written"]);
    // A symlink out of the workspace, planted beside it.
    let user_dir = std::fs::read_dir(t.home.path.join("workspace/default"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("out/report.txt").exists())
        .expect("the user's workspace");
    let outside = t.home.path.join("outside-secret.txt");
    std::fs::write(&outside, "do not send").unwrap();
    std::os::unix::fs::symlink(&outside, user_dir.join("leak.txt")).unwrap();

    t.fake.push(Reply::tool_calls([
        call(
            "s1",
            "channel_send_file",
            json!({"path": "out/report.txt", "caption": "here it is"}),
        ),
        call("s2", "channel_send_file", json!({"path": "leak.txt"})),
        call(
            "s3",
            "channel_send_file",
            json!({"path": "../../config.json"}),
        ),
        call("s4", "channel_send_file", json!({"path": "/etc/passwd"})),
    ]));
    t.fake.push(Reply::text("sent"));
    t.tg.push_message(from(42, json!({"text": "send me the report"})));
    let ups = t.tg.wait_uploads(1, WAIT);
    assert_eq!(ups.len(), 1, "{ups:?}");
    let up = &ups[0];
    assert_eq!(
        (
            up.method.as_str(),
            up.file_field.as_str(),
            up.file_name.as_str(),
            up.content_type.as_str()
        ),
        ("sendDocument", "document", "report.txt", "text/plain")
    );
    assert_eq!(up.bytes, b"quarterly numbers");
    assert_eq!(up.fields["chat_id"], "42");
    assert_eq!(up.fields["caption"], "here it is");
    assert!(texts(&t.tg, 2).contains(&"sent".to_owned()));
    // The escapes came back to the model as refusals.
    let req = t.fake.last_request().unwrap();
    let results: Vec<String> = req.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].to_string())
        .collect();
    // Offered in a channel's conversation.
    assert!(
        req.body["tools"].to_string().contains("channel_send_file"),
        "{}",
        req.body["tools"]
    );
    // The first turn's write_file, then this turn's four.
    assert_eq!(results.len(), 5, "{results:?}");
    assert!(results[1].contains("Queued report.txt"), "{results:?}");
    for r in &results[2..] {
        assert!(
            r.contains("security.path_denied") || r.contains("denied"),
            "{r}"
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(t.tg.uploads().len(), 1, "nothing else went out");

    // Outside a channel's conversation the tool says there is no one to
    // send to.
    let r = request(
        t.gw.addr,
        "POST",
        "/v1/tools/invoke",
        Some(TOKEN),
        Some(&json!({"tool": "channel_send_file", "args": {"path": "out/report.txt"}}).to_string()),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("not on a messaging channel"), "{}", r.body);
    // And not offered to the model outside one.
    t.fake.push(Reply::text("plain"));
    let r = crate::chat::chat(
        &t.gw,
        json!({"model": "default", "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let req = t.fake.last_request().unwrap();
    assert!(
        !req.body["tools"].to_string().contains("channel_send_file"),
        "{}",
        req.body["tools"]
    );
}

#[test]
fn a_queued_file_survives_a_kill_and_is_sent_exactly_once() {
    queued_file_survives_a_kill(None);
}

#[test]
fn a_queued_file_survives_a_kill_and_is_sent_exactly_once_on_postgres() {
    let Some(dsn) = crate::postgres::fresh_database() else {
        return;
    };
    queued_file_survives_a_kill(Some(dsn));
}

fn queued_file_survives_a_kill(dsn: Option<String>) {
    let mut t = Tg::new(
        json!({"outbox": {"backoff_ms": 50, "backoff_max_ms": 200, "max_attempts": 100}}),
        dsn,
    );
    t.fake.push(Reply::tool_calls([call(
        "w1",
        "write_file",
        json!({"path": "chart.png", "content": "PNG-ish bytes"}),
    )]));
    t.fake.push(Reply::tool_calls([call(
        "s1",
        "channel_send_file",
        json!({"path": "chart.png", "caption": "the chart"}),
    )]));
    t.fake.push(Reply::text("on its way"));
    // Telegram is down: the file and the answer wait in the outbox.
    for _ in 0..10_000 {
        t.tg.fail_next_send(
            502,
            json!({"ok": false, "error_code": 502, "description": "Bad Gateway"}),
        );
    }
    t.tg.push_message(from(42, json!({"text": "send the chart"})));
    let deadline = Instant::now() + WAIT;
    loop {
        let c = t.gw.get("/v1/channels", Some(TOKEN)).json()["channels"][0].clone();
        if c["failed"].as_u64().unwrap_or(0) >= 2 && c["queue_depth"] == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the sends never failed: {c}");
        std::thread::sleep(Duration::from_millis(50));
    }
    t.gw.signal("KILL");
    t.gw.wait_exit(Duration::from_secs(10));
    assert!(t.tg.uploads().is_empty());

    t.tg.clear_faults();
    t.restart();
    let ups = t.tg.wait_uploads(1, WAIT);
    assert_eq!(ups.len(), 1, "{ups:?}");
    assert_eq!(ups[0].bytes, b"PNG-ish bytes");
    assert_eq!(
        (ups[0].method.as_str(), ups[0].fields["caption"].as_str()),
        ("sendPhoto", "the chart")
    );
    assert_eq!(texts(&t.tg, 1), ["on its way"]);
    let deadline = Instant::now() + WAIT;
    loop {
        let c = t.gw.get("/v1/channels", Some(TOKEN)).json()["channels"][0].clone();
        if c["queue_depth"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "never drained: {c}");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(t.tg.uploads().len(), 1, "sent exactly once");
    assert_eq!(texts(&t.tg, 1), ["on its way"], "sent exactly once");
}
