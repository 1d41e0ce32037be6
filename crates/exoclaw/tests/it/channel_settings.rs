//! `GET|PATCH /v1/channels/{name}` through the real binary: the settings
//! show whether the bot token is set but never the token; a patch is
//! validated (each bad value a 400 naming its field, the file unchanged),
//! refused on a stale `version` (409) and for keys that need a restart,
//! written to `config.json`, audited, and applied to the running channel
//! without a restart (an allowlisted sender is answered at once); a
//! non-admin key gets 403 on both.

use crate::fake_telegram::FakeTelegram;
use crate::support::*;
use exoclaw_providers::fake::{FakeProvider, Reply};
use serde_json::{Value, json};
use std::time::Duration;

const BOT_TOKEN: &str = "123456:TEST-bot-token-abcdefghijklmnop";

struct S {
    home: TestHome,
    cfg: tempfile::TempDir,
    fake: FakeProvider,
    tg: FakeTelegram,
    gw: Gateway,
}

impl S {
    fn new() -> Self {
        let (fake, base) = FakeProvider::start_in_thread().unwrap();
        let tg = FakeTelegram::start(BOT_TOKEN);
        let cfg = tempfile::tempdir().unwrap();
        let config = json!({
            "gateway": {"rate_limit_rpm": 0, "shutdown_grace_sec": 1},
            "channels": {"tg": {
                "type": "telegram",
                "dm_policy": "disabled",
                "telegram": {"api_base": tg.base(), "poll_timeout_sec": 1},
                "outbox": {"backoff_ms": 50, "backoff_max_ms": 200},
                "progress": {"stream": false, "status": false},
            }},
        });
        std::fs::write(cfg.path().join("config.json"), config.to_string()).unwrap();
        let home = TestHome::new();
        let mut env = fake_provider_env(base, &cfg.path().join("config.json"), None);
        env.push((
            "EXOCLAW_TELEGRAM_BOT_TOKEN".to_owned(),
            BOT_TOKEN.to_owned(),
        ));
        let gw = Gateway::start(&home.path, &env_pairs(&env));
        Self {
            home,
            cfg,
            fake,
            tg,
            gw,
        }
    }

    fn req(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Response {
        request(
            self.gw.addr,
            method,
            path,
            Some(token),
            body.map(|b| b.to_string()).as_deref(),
        )
    }

    fn config_file(&self) -> Vec<u8> {
        std::fs::read(self.cfg.path().join("config.json")).unwrap()
    }
}

fn dm(sender: i64, text: &str) -> Value {
    json!({"message_id": 1, "text": text, "chat": {"id": sender, "type": "private"},
        "from": {"id": sender, "first_name": "Ann"}})
}

#[test]
fn channel_settings_are_shown_without_secrets_and_changed_live_with_validation() {
    let s = S::new();
    let r = s.req("GET", "/v1/channels/tg", TOKEN, None);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(
        (
            v["name"].clone(),
            v["kind"].clone(),
            v["settings"]["dm_policy"].clone(),
            v["secrets"]["bot_token"].clone()
        ),
        (
            json!("tg"),
            json!("telegram"),
            json!("disabled"),
            json!(true)
        ),
        "{v}"
    );
    assert_eq!(v["settings"]["files"]["max_bytes"], 20 * 1024 * 1024, "{v}");
    assert!(!r.body.contains("TEST-bot-token"), "no secret: {}", r.body);
    let version = v["version"].as_str().unwrap().to_owned();
    assert_eq!(
        s.req("GET", "/v1/channels/nope", TOKEN, None).json()["error"]["code"],
        "channel.unknown"
    );

    // Bad values: 400 naming the field; the file is unchanged.
    let before = s.config_file();
    for (patch, field) in [
        (json!({"dm_policy": "sometimes"}), "channels.tg.dm_policy"),
        (json!({"allow_from": "42"}), "channels.tg.allow_from"),
        (
            json!({"files": {"max_bytes": 0}}),
            "channels.tg.files.max_bytes",
        ),
        (
            json!({"progress": {"edit_interval_ms": 1}}),
            "channels.tg.progress.edit_interval_ms",
        ),
        (
            json!({"telegram": {"api_base": "http://elsewhere"}}),
            "channels.tg.telegram",
        ),
        (json!({"dm_policy": "allowlist"}), "channels.tg.allow_from"),
    ] {
        let r = s.req(
            "PATCH",
            "/v1/channels/tg",
            TOKEN,
            Some(json!({"settings": patch})),
        );
        assert_eq!(r.status, 400, "{patch}: {}", r.body);
        let e = &r.json()["error"];
        assert_eq!(e["code"], "channel.settings_invalid", "{patch}: {e}");
        assert!(
            e["message"].as_str().unwrap().contains(field),
            "{patch}: {e}"
        );
    }
    let r = s.req(
        "PATCH",
        "/v1/channels/tg",
        TOKEN,
        Some(json!({"settings": {}, "extra": 1})),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    let r = s.req(
        "PATCH",
        "/v1/channels/tg",
        TOKEN,
        Some(json!({"settings": {"dm_policy": "open"}, "version": "0000000000000000"})),
    );
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(s.config_file(), before, "failures change nothing");

    // Sender 42 is ignored while direct messages are disabled.
    s.tg.push_message(dm(42, "anyone there?"));
    std::thread::sleep(Duration::from_millis(800));
    assert!(s.tg.sent().is_empty(), "{:?}", s.tg.sent());

    // Allowlisted: written, audited, and applied without a restart.
    let r = s.req(
        "PATCH",
        "/v1/channels/tg",
        TOKEN,
        Some(
            json!({"settings": {"dm_policy": "allowlist", "allow_from": ["42"],
            "files": {"max_bytes": 1000}}, "version": version}),
        ),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["settings"]["dm_policy"], "allowlist");
    assert_eq!(v["settings"]["allow_from"], json!(["42"]));
    assert_eq!(v["settings"]["files"]["max_bytes"], 1000);
    assert_ne!(v["version"].as_str().unwrap(), version);
    let file: Value = serde_json::from_slice(&s.config_file()).unwrap();
    assert_eq!(file["channels"]["tg"]["dm_policy"], "allowlist");
    assert_eq!(
        file["channels"]["tg"]["telegram"]["poll_timeout_sec"], 1,
        "the rest of the section is kept"
    );
    let audit = s
        .req("GET", "/v1/audit?action=channel.update", TOKEN, None)
        .json();
    assert_eq!(audit["events"].as_array().map(Vec::len), Some(1), "{audit}");
    s.fake.push(Reply::text("hello 42"));
    s.tg.push_message(dm(42, "now?"));
    let got = s.tg.wait_sent(1, Duration::from_secs(30));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].1["text"], "hello 42");
    s.tg.push_message(dm(43, "me too?"));
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(s.tg.sent().len(), 1, "43 is not on the list");
    assert_eq!(s.fake.requests().len(), 1);
    let logs = s.gw.log_lines().join("\n");
    assert!(
        !logs.contains("TEST-bot-token"),
        "the token never reaches the log"
    );
    drop(s.home);
}

#[test]
fn channel_settings_need_a_gateway_admin() {
    let s = S::new();
    for role in ["operator", "user"] {
        let r = s.req(
            "POST",
            "/v1/users",
            TOKEN,
            Some(json!({"name": format!("{role}-1"), "role": role})),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        let key = r.json()["api_key"].as_str().unwrap().to_owned();
        let before = s.config_file();
        assert_eq!(s.req("GET", "/v1/channels/tg", &key, None).status, 403);
        let r = s.req(
            "PATCH",
            "/v1/channels/tg",
            &key,
            Some(json!({"settings": {"dm_policy": "open"}})),
        );
        assert_eq!(r.status, 403, "{}", r.body);
        assert_eq!(s.config_file(), before);
    }
    // An admin of the gateway's own tenant may.
    let r = s.req(
        "POST",
        "/v1/users",
        TOKEN,
        Some(json!({"name": "admin-1", "role": "admin"})),
    );
    let admin = r.json()["api_key"].as_str().unwrap().to_owned();
    assert_eq!(s.req("GET", "/v1/channels/tg", &admin, None).status, 200);
}
