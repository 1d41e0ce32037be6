//! The dashboard in a real headless browser: Playwright (from the project
//! virtualenv) driving Debian's Chromium (`EXOCLAW_TEST_CHROMIUM`, which
//! `cargo xtask test` installs) against the real binary with the fake
//! provider. Sign-in (wrong token, then the token), the overview, a
//! streamed chat, a tool call approved inline and its trace's waterfall,
//! the session it made, approvals, agents, a user whose key is shown once
//! and revoked, a second browser signed in by pairing (and out by revoking
//! its device), 360 px wide, keyboard focus, sign-out; no console error and
//! no CSP violation on any page. Without the browser or the virtualenv the test skips, unless
//! `REQUIRE_BROWSER=1` / `REQUIRE_PYTHON=1`.
//!
//! `UPDATE_SCREENSHOTS=1` writes the screenshots to `docs/screenshots/`
//! (the README shows them); otherwise to a temporary directory.

use crate::chat::setup_with;
use crate::openai_sdk::python;
use crate::support::*;
use exoclaw_core::provider::ToolCall;
use exoclaw_providers::fake::Reply;
use std::process::Command;

const SCRIPT: &str = include_str!("browser/dashboard.py");

#[expect(
    clippy::disallowed_methods,
    reason = "tests read the harness's variables"
)]
fn chromium() -> Option<String> {
    match std::env::var("EXOCLAW_TEST_CHROMIUM") {
        Ok(p) => Some(p),
        Err(_) => {
            assert!(
                std::env::var("REQUIRE_BROWSER").as_deref() != Ok("1"),
                "REQUIRE_BROWSER=1 but EXOCLAW_TEST_CHROMIUM is unset: run `cargo xtask test`"
            );
            eprintln!("skipping: EXOCLAW_TEST_CHROMIUM not set (run `cargo xtask test`)");
            None
        }
    }
}

#[expect(
    clippy::disallowed_methods,
    reason = "tests read the harness's variables"
)]
fn screenshot_dir() -> (std::path::PathBuf, Option<tempfile::TempDir>) {
    if std::env::var("UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        (dir, None)
    } else {
        let tmp = tempfile::tempdir().unwrap();
        (tmp.path().to_owned(), Some(tmp))
    }
}

#[test]
fn the_dashboard_works_in_a_real_browser() {
    let (Some(py), Some(chromium)) = (python(), chromium()) else {
        return;
    };
    let s = setup_with(
        r#"{"tools": {"exec_approval": {"security": "ask"}},
            "budgets": {"tenants": {"*": {"daily_tokens": 100000}}}}"#,
        &[],
    );
    s.fake
        .push(Reply::text("Hello! I am the default agent, streamed to your browser.").deltas(6));
    s.fake.push(Reply::tool_calls([ToolCall {
        id: "c1".into(),
        name: "exec".into(),
        arguments: serde_json::json!({"command": "sudo -n true; echo checked"}),
    }]));
    s.fake.push(Reply::text("The check ran.").deltas(3));
    let (shots, _keep) = screenshot_dir();
    let out = Command::new(&py)
        .args([
            "-c",
            SCRIPT,
            &format!("http://{}", s.gw.addr),
            TOKEN,
            &chromium,
            shots.to_str().unwrap(),
        ])
        .output()
        .expect("run python");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the browser script failed: {stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON from the script");
    let steps = &v["steps"];
    assert_eq!(
        steps["console_before"],
        serde_json::json!([]),
        "console errors: {v}"
    );
    assert_eq!(v["csp"], serde_json::json!([]), "CSP violations: {v}");
    assert_eq!(steps["redirected_to"], "/ui/signin?next=%2Fui%2Fsessions");
    assert!(
        steps["wrong_token_error"]
            .as_str()
            .is_some_and(|e| e.contains("not a valid")),
        "{steps}"
    );
    assert_eq!(steps["after_signin"], "/ui/sessions");
    assert!(
        steps["sessions_empty"]
            .as_str()
            .unwrap()
            .contains("No sessions yet")
    );
    assert_eq!(steps["overview_h1"], "Overview");
    assert_eq!(steps["first_tab"], "skip");
    assert_eq!(
        steps["chat_answer"],
        "Hello! I am the default agent, streamed to your browser."
    );
    assert_eq!(steps["chat_status"], "");
    assert_eq!(steps["approval_command"], "sudo -n true; echo checked");
    assert_eq!(steps["tool_lines"], serde_json::json!(["⚙ exec: done"]));
    assert_eq!(steps["second_answer"], "The check ran.");
    let kinds = steps["span_kinds"].as_array().unwrap();
    assert!(
        kinds.contains(&serde_json::json!("llm")) && kinds.contains(&serde_json::json!("tool")),
        "{steps}"
    );
    assert_eq!(steps["new_key_prefix"], "exk_");
    assert_eq!(steps["key_rows"], 1);
    assert!(
        steps["key_state"].as_str().unwrap().starts_with("revoked"),
        "{steps}"
    );
    assert_eq!(steps["key_shown_again"], false, "a key is shown once");
    let code = steps["pair_code"].as_str().unwrap();
    assert_eq!(
        code.chars().filter(char::is_ascii_alphanumeric).count(),
        8,
        "{code}"
    );
    assert!(
        steps["pair_notice"]
            .as_str()
            .unwrap()
            .starts_with("Approved")
    );
    assert!(
        steps["paired_as"].as_str().unwrap().starts_with("device:"),
        "{steps}"
    );
    assert!(
        steps["after_device_revoked"]
            .as_str()
            .unwrap()
            .starts_with("/ui/signin"),
        "{steps}"
    );
    assert_eq!(steps["session_rows"], 1);
    assert_eq!(
        steps["session_roles"],
        serde_json::json!([
            "user",
            "assistant",
            "user",
            "assistant",
            "tool",
            "assistant"
        ]),
        "both turns in one session, the tool call and its result between"
    );
    assert!(
        steps["approvals_empty"]
            .as_str()
            .unwrap()
            .contains("Nothing waits")
    );
    assert_eq!(steps["agents"], serde_json::json!(["default"]));
    assert!(steps["usage_bars"].as_u64().unwrap() >= 1, "{steps}");
    assert!(
        steps["usage_caption"]
            .as_str()
            .unwrap()
            .starts_with("Cost per day, per model"),
        "{steps}"
    );
    assert_eq!(steps["budget_rows"], 1, "the tenant's token budget");
    assert!(
        steps["security_result"]
            .as_str()
            .unwrap()
            .starts_with("Result: "),
        "{steps}"
    );
    assert!(steps["security_checks"].as_u64().unwrap() >= 20, "{steps}");
    let skills = steps["skill_rows"].to_string();
    assert!(
        skills.contains("weather") && skills.contains("active"),
        "{steps}"
    );
    assert!(
        !steps["skill_refused"].as_str().unwrap().is_empty()
            && !steps["skill_refused"]
                .as_str()
                .unwrap()
                .starts_with("Sending"),
        "{steps}"
    );
    assert!(
        steps["narrow_scroll_width"].as_u64().unwrap() <= 360,
        "{steps}"
    );
    assert!(
        steps["after_signout"]
            .as_str()
            .unwrap()
            .starts_with("/ui/signin")
    );
    assert_eq!(
        steps["deliberate_violation_heard"], true,
        "the CSP listener works"
    );
    // The fake provider saw the browser's message.
    let sent = s.fake.last_request().expect("the provider was called").body;
    assert!(
        sent.to_string().contains("hello from the browser"),
        "{sent}"
    );
}
