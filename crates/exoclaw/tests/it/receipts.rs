//! Tool-call receipts end to end: a turn with tool calls through the real
//! binary and the fake provider, `exoclaw audit export --sign`, and `exoclaw
//! audit verify --bundle` offline (no data dir, no config), then the same
//! bundle changed the ways an attacker would change it.

use crate::chat::chat;
use crate::support::*;
use exoclaw_core::provider::ToolCall;
use exoclaw_providers::fake::{FakeProvider, Reply};
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Duration;

fn verify(bundle: &Path, key: Option<&str>) -> (bool, String) {
    // Offline: a data dir that does not exist, no config, no keys.
    let nowhere = tempfile::tempdir().unwrap();
    let home = nowhere.path().join("absent");
    let path = bundle.to_str().unwrap();
    let mut args = vec!["audit", "verify", "--bundle", path];
    if let Some(k) = key {
        args.extend(["--public-key", k]);
    }
    let out = run(&home, &[], &args);
    assert!(!home.exists(), "offline verification creates nothing");
    (
        out.status.success(),
        format!("{}{}", stdout(&out), stderr(&out)),
    )
}

#[test]
fn tool_calls_export_as_signed_receipts_that_verify_offline_on_sqlite() {
    scenario(None);
}

#[test]
fn tool_calls_export_as_signed_receipts_that_verify_offline_on_postgres() {
    let Some(dsn) = crate::postgres::fresh_database() else {
        return;
    };
    scenario(Some(&dsn));
}

/// A turn with three tool calls (one refused), exported, verified, tampered.
fn scenario(dsn: Option<&str>) {
    let (fake, base) = FakeProvider::start_in_thread().unwrap();
    let home = TestHome::new();
    let cfg = tempfile::tempdir().unwrap();
    let cfg_path = cfg.path().join("config.json");
    std::fs::write(&cfg_path, r#"{"gateway": {"rate_limit_rpm": 0}}"#).unwrap();
    let owned = fake_provider_env(base, &cfg_path, dsn);
    let env = env_pairs(&owned);
    let mut gw = Gateway::start(&home.path, &env);
    fake.push(Reply::tool_calls([
        ToolCall {
            id: "call_w".into(),
            name: "write_file".into(),
            arguments: json!({"path": "notes/plan.md", "content": "ship receipts"}),
        },
        ToolCall {
            id: "call_escape".into(),
            name: "read_file".into(),
            // `2.0`: kept as written by SQLite, as `2` by PostgreSQL's
            // jsonb; the canonical digest is the same.
            arguments: json!({"path": "../../.env", "start_line": 2.0}),
        },
    ]));
    fake.push(Reply::tool_calls([ToolCall {
        id: "call_r".into(),
        name: "read_file".into(),
        arguments: json!({"path": "notes/plan.md", "start_line": 1}),
    }]));
    fake.push(Reply::text("Planned."));
    let r = chat(
        &gw,
        json!({"model": "default", "messages": [{"role": "user", "content": "plan"}], "user": "alice"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    gw.signal("TERM");
    gw.wait_exit(Duration::from_secs(10));

    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("audit.json");
    let b = bundle.to_str().unwrap();
    let out = run(&home.path, &env, &["audit", "export", "--sign", "--out", b]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("created the audit signing key"),
        "{}",
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("3 receipts, signed"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        std::fs::metadata(&bundle).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&bundle).unwrap();
    assert!(!text.contains(TOKEN), "no gateway token in a bundle");
    assert!(
        !home.dotenv().lines().any(|l| l
            .strip_prefix("EXOCLAW_ENCRYPTION_KEY=")
            .is_some_and(|k| text.contains(k))),
        "no vault key in a bundle"
    );
    let file: Value = serde_json::from_str(&text).unwrap();
    let receipts = file["bundle"]["receipts"].as_array().unwrap();
    let by_call = |id: &str| {
        receipts
            .iter()
            .find(|r| r["call_id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(by_call("call_w")["args"]["content"], "ship receipts");
    assert!(
        by_call("call_r")["output"]
            .as_str()
            .unwrap()
            .contains("ship receipts")
    );
    assert!(
        by_call("call_escape")["output"].is_null(),
        "a refused call has no output"
    );

    // The public key, from the vault; a second export reuses it.
    let out = run(&home.path, &env, &["audit", "key"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let key = stdout(&out).trim().to_owned();
    assert_eq!(file["signature"]["public_key"], key.as_str());

    let (ok, report) = verify(&bundle, Some(&key));
    assert!(ok, "{report}");
    assert!(
        report.contains("receipts matching their digests: 3"),
        "{report}"
    );
    assert!(report.contains("signature: valid"), "{report}");
    assert!(
        report.contains("from the first event, to the head"),
        "{report}"
    );

    // A receipt's output rewritten: the digest and the signature both say so.
    let mut forged = file.clone();
    for r in forged["bundle"]["receipts"].as_array_mut().unwrap() {
        if r["call_id"] == "call_r" {
            r["output"] = json!("nothing was planned");
        }
    }
    let forged_path = dir.path().join("forged.json");
    std::fs::write(&forged_path, forged.to_string()).unwrap();
    let (ok, report) = verify(&forged_path, Some(&key));
    assert!(!ok);
    assert!(
        report.contains("the output does not match the audited digest"),
        "{report}"
    );
    assert!(report.contains("signature: INVALID"), "{report}");

    // An event dropped and the signature removed: the chain still says so,
    // and a required key refuses an unsigned bundle.
    let mut cut = file.clone();
    cut["signature"] = Value::Null;
    cut["bundle"]["chains"][0]["events"]
        .as_array_mut()
        .unwrap()
        .remove(1);
    std::fs::write(&forged_path, cut.to_string()).unwrap();
    let (ok, report) = verify(&forged_path, None);
    assert!(!ok);
    assert!(report.contains("missing"), "{report}");
    let (ok, report) = verify(&forged_path, Some(&key));
    assert!(!ok && report.contains("not signed"), "{report}");

    // Without contents: digests only, unsigned; an existing file is kept.
    let out = run(
        &home.path,
        &env,
        &["audit", "export", "--no-contents", "--out", b],
    );
    assert!(!out.status.success());
    assert!(error_line(&out).contains("--force"), "{}", stderr(&out));
    let out = run(
        &home.path,
        &env,
        &[
            "audit",
            "export",
            "--no-contents",
            "--force",
            "--since",
            "1h",
            "--out",
            b,
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("0 receipts)"), "{}", stdout(&out));
    let (ok, report) = verify(&bundle, None);
    assert!(ok, "{report}");
    assert!(report.contains("signature: none"), "{report}");
    assert!(
        report.contains("tool calls: 3, receipts matching their digests: 0"),
        "{report}"
    );

    // Not a bundle at all.
    std::fs::write(&forged_path, "{\"hello\": 1}").unwrap();
    let (ok, report) = verify(&forged_path, None);
    assert!(
        !ok && report.contains("not an exoclaw audit bundle"),
        "{report}"
    );
}
