//! The audit log end to end: `GET /v1/audit` (authentication, filters,
//! paging), what the gateway records (auth failures always, one success per
//! credential per hour, secret changes without the value), `exoclaw audit
//! list|verify`, and verification catching an edit made directly in SQLite.

use crate::support::*;
use serde_json::Value;
use std::time::Duration;

const WRONG: &str = "wrong-token-never-stored-0123456789abcdef";
const SECRET: &str = "audit-secret-value-never-stored";

/// A gateway that has seen a missing and an invalid token, three good
/// requests and one secret change.
fn busy_gateway(home: &TestHome) -> Gateway {
    let gw = Gateway::start(&home.path, &[("EXOCLAW_GATEWAY_TOKEN", TOKEN)]);
    assert_eq!(gw.get("/v1/audit", None).status, 401);
    assert_eq!(gw.get("/v1/status", Some(WRONG)).status, 401);
    for _ in 0..3 {
        assert_eq!(gw.get("/v1/status", Some(TOKEN)).status, 200);
    }
    let r = request(
        gw.addr,
        "PUT",
        "/v1/secrets/audited",
        Some(TOKEN),
        Some(&format!(r#"{{"value": "{SECRET}"}}"#)),
    );
    assert_eq!(r.status, 204, "{}", r.body);
    gw
}

fn audit(gw: &Gateway, query: &str) -> Value {
    let r = gw.get(&format!("/v1/audit{query}"), Some(TOKEN));
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn actions(v: &Value) -> Vec<String> {
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

/// Runs one statement on the data dir's SQLite database with the
/// append-only triggers dropped (as someone with file access could).
pub fn tamper(home: &TestHome, sql: &str) {
    use sqlx::Connection as _;
    let url = format!("sqlite://{}", home.file("exoclaw.db").display());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
            for s in [
                "DROP TRIGGER IF EXISTS audit_events_no_update",
                "DROP TRIGGER IF EXISTS audit_events_no_delete",
                sql,
            ] {
                sqlx::query(sqlx::AssertSqlSafe(s.to_owned()))
                    .execute(&mut c)
                    .await
                    .unwrap();
            }
            c.close().await.unwrap();
        });
}

#[test]
fn the_api_lists_the_log_with_filters_and_paging_and_needs_auth() {
    let home = TestHome::new();
    let gw = busy_gateway(&home);

    let all = audit(&gw, "");
    // newest first; one auth.success for three requests with one token
    // (plus this listing's own request, same credential: not recorded again)
    assert_eq!(
        actions(&all),
        ["secret.put", "auth.success", "auth.failure", "auth.failure"],
        "{all}"
    );
    let events = all["events"].as_array().unwrap();
    let failure = &events[3];
    assert_eq!(failure["decision"], "deny");
    assert_eq!(failure["reason"], "missing");
    assert_eq!(failure["actor"], "anonymous");
    assert_eq!(failure["resource"], "route:/v1/audit");
    assert_eq!(events[2]["reason"], "invalid");
    assert_eq!(events[2]["detail"]["channel"], "http");
    assert!(events[2]["request_id"].as_str().unwrap().len() >= 16);
    assert_eq!(events[1]["actor"], "gateway-token");
    assert_eq!(
        events[1]["detail"]["credential"].as_str().unwrap().len(),
        12
    );
    assert_eq!(events[0]["resource"], "secret:tenant/audited");
    for e in events {
        assert_eq!(e["tenant"], "default");
        assert_eq!(e["hash"].as_str().unwrap().len(), 64);
        assert!(e["at"].as_str().unwrap().ends_with('Z'));
    }
    // never a token or a secret value, in the API or the logs
    let logs = gw.log_lines().join("\n");
    for text in [all.to_string(), logs.clone()] {
        assert!(!text.contains(WRONG) && !text.contains(TOKEN) && !text.contains(SECRET));
    }
    // alert-worthy events are logged at warn as security.*
    assert!(logs.contains("security.auth_failure"), "{logs}");

    assert_eq!(
        actions(&audit(&gw, "?action=auth.")),
        ["auth.success", "auth.failure", "auth.failure"]
    );
    assert_eq!(actions(&audit(&gw, "?decision=deny")).len(), 2);
    assert_eq!(
        actions(&audit(&gw, "?actor=gateway-token&decision=allow")),
        ["secret.put", "auth.success"]
    );
    assert_eq!(actions(&audit(&gw, "?since=1h")).len(), 4);
    assert!(actions(&audit(&gw, "?until=2000-01-01")).is_empty());

    let page1 = audit(&gw, "?limit=3");
    assert_eq!(actions(&page1).len(), 3);
    let next = page1["next_before_seq"].as_i64().unwrap();
    let page2 = audit(&gw, &format!("?limit=3&before_seq={next}"));
    assert_eq!(actions(&page2), ["auth.failure"]);
    assert!(page2["next_before_seq"].is_null());

    for bad in [
        "?since=yesterday",
        "?limit=0",
        "?limit=5000",
        "?tenant=other",
    ] {
        let r = gw.get(&format!("/v1/audit{bad}"), Some(TOKEN));
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
}

#[test]
fn the_cli_lists_and_verifies_and_catches_an_edit_made_in_sqlite() {
    let home = TestHome::new();
    let mut gw = busy_gateway(&home);
    gw.signal("TERM");
    gw.wait_exit(Duration::from_secs(10));
    drop(gw);

    let out = run(&home.path, &[], &["audit", "verify", "--json"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["intact"], true, "{v}");
    assert_eq!(v["chains"][0]["checked"], 4);
    assert_eq!(v["chains"][0]["head_seq"], 4);

    let out = run(
        &home.path,
        &[],
        &[
            "audit", "list", "--action", "auth.", "--json", "--limit", "2",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let page: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let lines = page["events"].as_array().unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["action"], "auth.success");
    assert_eq!(
        page["next_before_seq"], lines[1]["seq"],
        "a full page says where the next starts"
    );
    let out = run(
        &home.path,
        &[],
        &["audit", "list", "--decision", "deny", "--since", "1d"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 3, "a header and two events: {text}");
    assert!(text.starts_with("TIME "), "{text}");
    assert!(
        text.lines().skip(1).all(|l| l.contains(" auth.failure ")),
        "{text}"
    );
    let out = run(&home.path, &[], &["audit", "list", "--since", "soon"]);
    assert!(!out.status.success());
    assert!(error_line(&out).contains("--since"), "{}", stderr(&out));

    tamper(
        &home,
        "UPDATE audit_events SET reason = 'nothing happened' WHERE tenant_seq = 2",
    );
    let out = run(&home.path, &[], &["audit", "verify"]);
    assert!(!out.status.success(), "a broken chain fails the command");
    let text = stdout(&out);
    assert!(
        text.contains("first bad seq 2 (edited)"),
        "{text}{}",
        stderr(&out)
    );
    let out = run(&home.path, &[], &["audit", "verify", "--json"]);
    assert!(!out.status.success());
    let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["intact"], false);
    assert_eq!(v["chains"][0]["broken"]["seq"], 2);
    assert_eq!(v["chains"][0]["broken"]["kind"], "edited");

    // deleting the newest event is caught through the chain head
    let home = TestHome::new();
    let mut gw = busy_gateway(&home);
    gw.signal("TERM");
    gw.wait_exit(Duration::from_secs(10));
    drop(gw);
    tamper(&home, "DELETE FROM audit_events WHERE tenant_seq = 4");
    let out = run(&home.path, &[], &["audit", "verify"]);
    assert!(!out.status.success());
    assert!(
        stdout(&out).contains("first bad seq 4 (missing)"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn verify_after_tampering_while_the_gateway_runs() {
    let home = TestHome::new();
    let gw = busy_gateway(&home);
    tamper(&home, "DELETE FROM audit_events WHERE tenant_seq = 2");
    let out = run(&home.path, &[], &["audit", "verify", "--json"]);
    assert!(!out.status.success());
    let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["chains"][0]["broken"]["kind"], "missing", "{v}");
    // the API still lists what is left
    assert_eq!(actions(&audit(&gw, "")).len(), 3);
}
