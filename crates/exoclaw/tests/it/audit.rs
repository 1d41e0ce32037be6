//! `exoclaw security audit`: a fixture per check id proving it fires, the
//! default install proving it clears, `--fix` and `--deep`.

use crate::support::*;
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt as _;

fn audit(home: &TestHome, config: &str, env: &[(&str, &str)], args: &[&str]) -> (bool, Value) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    std::fs::write(&cfg, config).unwrap();
    let cfg = cfg.to_str().unwrap().to_owned();
    let mut all_env = vec![("EXOCLAW_CONFIG", cfg.as_str())];
    all_env.extend_from_slice(env);
    let mut argv = vec!["security", "audit", "--json"];
    argv.extend_from_slice(args);
    let out = run(&home.path, &all_env, &argv);
    let v: Value = serde_json::from_str(stdout(&out).trim())
        .unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)));
    (out.status.success(), v)
}

fn severity(v: &Value, id: &str) -> String {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == id)
        .unwrap_or_else(|| panic!("no finding {id}: {v}"))["severity"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A check id, the config that trips it, extra env, the severity expected.
type Case<'a> = (&'a str, Value, &'a [(&'a str, &'a str)], &'a str);

fn started() -> TestHome {
    let home = TestHome::new();
    let mut gw = Gateway::start(&home.path, &[]);
    gw.signal("TERM");
    gw.wait_exit(std::time::Duration::from_secs(10));
    home
}

#[test]
fn a_fresh_default_install_has_no_failure() {
    let home = started();
    let (ok, v) = audit(&home, "{}", &[], &[]);
    assert!(ok, "{v}");
    assert_ne!(v["result"], "fail");
    for f in v["findings"].as_array().unwrap() {
        assert!(
            f["id"].is_string() && f["reason"].is_string() && f["fix"].is_string(),
            "{f}"
        );
        assert_ne!(f["severity"], "fail", "{f}");
    }
}

#[test]
fn every_check_fires_on_its_fixture_and_clears_by_default() {
    let home = started();
    let (_, clean) = audit(&home, "{}", &[], &[]);
    let weak = "ab".repeat(32);
    let cases: &[Case] = &[
        (
            "gateway.bind",
            json!({"gateway": {"host": "0.0.0.0"}}),
            &[],
            "warn",
        ),
        (
            "gateway.rate_limit",
            json!({"gateway": {"rate_limit_rpm": 0}}),
            &[],
            "fail",
        ),
        (
            "gateway.connection_limits",
            json!({"gateway": {"max_ws_per_user": 10000}}),
            &[],
            "warn",
        ),
        (
            "gateway.connection_limits",
            json!({"gateway": {"max_connections": 500}}),
            &[],
            "warn",
        ),
        (
            "gateway.connection_timeouts",
            json!({"gateway": {"write_stall_timeout_sec": 3600}}),
            &[],
            "warn",
        ),
        (
            "channels.dm_open",
            json!({"channels": {"telegram": {"dm_policy": "open"}}}),
            &[],
            "warn",
        ),
        (
            "channels.dm_open",
            json!({"channels": {"telegram": {"allow_from": ["*"]}}}),
            &[],
            "warn",
        ),
        (
            "gateway.injection",
            json!({"gateway": {"injection_action": "off"}}),
            &[],
            "fail",
        ),
        (
            "tools.exec_approval",
            json!({"tools": {"exec_approval": {"security": "off"}}}),
            &[],
            "fail",
        ),
        (
            "tools.exec_approval",
            json!({"tools": {"exec_approval": {"security": "ask"}}}),
            &[],
            "warn",
        ),
        (
            "tools.workspace",
            json!({"agents": {"defaults": {"restrict_to_workspace": false}}}),
            &[],
            "fail",
        ),
        (
            "sandbox.mode",
            json!({"agents": {"defaults": {"sandbox": {"mode": "off"}}}}),
            &[],
            "fail",
        ),
        (
            "sandbox.mode",
            json!({"agents": {"defaults": {"sandbox": {"mode": "non-main"}}}}),
            &[],
            "warn",
        ),
        (
            "sandbox.network",
            json!({"agents": {"defaults": {"sandbox": {"network_enabled": true}}}}),
            &[],
            "warn",
        ),
        (
            "tools.rate_limit",
            json!({"tools": {"rate_limit_per_hour": 0}}),
            &[],
            "warn",
        ),
        (
            "vault.key",
            json!({}),
            &[("EXOCLAW_ENCRYPTION_KEY", weak.as_str())],
            "fail",
        ),
    ];
    for (id, config, env, expect) in cases {
        assert_eq!(severity(&clean, id), "pass", "{id} passes by default");
        let (ok, v) = audit(&home, &config.to_string(), env, &[]);
        assert_eq!(severity(&v, id), *expect, "{id} on {config}");
        assert_eq!(ok, *expect != "fail", "exit status for {id}");
    }
    // The checks that warn on a default install clear with their setting.
    let cleared: &[(&str, Value)] = &[
        (
            "tools.deny",
            json!({"gateway": {"tools": {"deny": ["group:runtime"]}}}),
        ),
        ("backup.schedule", json!({"backup": {"schedule": "03:30"}})),
        (
            "budgets.set",
            json!({"budgets": {"models": {"*": {"daily_usd": 5.0}}}}),
        ),
        (
            "gateway.bind",
            json!({"gateway": {"host": "0.0.0.0", "trusted_proxies": ["127.0.0.1"]}}),
        ),
    ];
    for (id, config) in cleared {
        let (_, v) = audit(&home, &config.to_string(), &[], &[]);
        assert_eq!(severity(&v, id), "pass", "{id} clears with {config}");
    }
}

#[test]
fn fix_repairs_permissions_only_idempotently_and_never_follows_symlinks() {
    let home = started();
    std::fs::set_permissions(&home.path, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(home.file(".env"), std::fs::Permissions::from_mode(0o644)).unwrap();
    // A symlinked secret file must not be followed: its target keeps its mode.
    let outside = tempfile::NamedTempFile::new().unwrap();
    std::fs::set_permissions(outside.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::symlink(outside.path(), home.file("exoclaw.db-shm")).unwrap();

    let (ok, v) = audit(&home, "{}", &[], &[]);
    assert!(!ok);
    assert_eq!(severity(&v, "fs.permissions"), "fail");
    let (ok, v) = audit(&home, "{}", &[], &["--fix"]);
    assert!(ok, "{v}");
    assert_eq!(severity(&v, "fs.permissions"), "pass");
    assert_eq!(v["changed"].as_array().unwrap().len(), 2, "{v}");
    assert!(
        v["left"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().contains("tools.deny"))
    );
    assert_eq!(home.mode(""), 0o700);
    assert_eq!(home.mode(".env"), 0o600);
    let target_mode = std::fs::metadata(outside.path())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(target_mode, 0o644, "the symlink target was not touched");
    let (ok, v) = audit(&home, "{}", &[], &["--fix"]);
    assert!(ok);
    assert!(
        v["changed"].as_array().unwrap().is_empty(),
        "idempotent: {v}"
    );
}

#[test]
fn the_audit_chain_check_fails_when_the_log_was_tampered_with() {
    let home = TestHome::new();
    let gw = Gateway::start(&home.path, &[("EXOCLAW_GATEWAY_TOKEN", TOKEN)]);
    for token in [
        None,
        Some("wrong-token-0123456789abcdef0123456789"),
        Some(TOKEN),
    ] {
        gw.get("/v1/status", token);
    }
    drop(gw);
    let (ok, v) = audit(&home, "{}", &[], &[]);
    assert_eq!(severity(&v, "audit.chain"), "pass", "{v}");
    assert!(ok);
    crate::audit_log::tamper(&home, "DELETE FROM audit_events WHERE tenant_seq = 2");
    let (ok, v) = audit(&home, "{}", &[], &[]);
    assert_eq!(severity(&v, "audit.chain"), "fail", "{v}");
    assert!(!ok, "a broken chain fails the audit");
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "audit.chain")
        .unwrap();
    assert!(
        f["reason"].as_str().unwrap().contains("seq 2 (missing)"),
        "{f}"
    );
    assert!(
        f["fix"].as_str().unwrap().contains("exoclaw audit verify"),
        "{f}"
    );
}

#[test]
fn deep_probes_the_running_gateway() {
    let home = TestHome::new();
    let gw = Gateway::start(&home.path, &[("EXOCLAW_GATEWAY_TOKEN", TOKEN)]);
    let port = gw.addr.port().to_string();
    let (_, v) = audit(
        &home,
        "{}",
        &[("EXOCLAW_GATEWAY_TOKEN", TOKEN), ("EXOCLAW_PORT", &port)],
        &["--deep"],
    );
    assert_eq!(severity(&v, "deep.auth"), "pass", "{v}");
    assert_eq!(severity(&v, "deep.origin"), "pass", "{v}");
}

/// `backup.recent`: warns without a schedule; with one, fails when the
/// newest backup is older than two days (or none exists in a data dir over
/// a day old) and clears when a fresh backup appears.
#[test]
fn backup_recent_fires_on_stale_or_missing_backups_and_clears() {
    use std::time::{Duration, SystemTime};
    let home = started();
    let (_, v) = audit(&home, "{}", &[], &[]);
    assert_eq!(severity(&v, "backup.recent"), "warn", "no schedule");
    let scheduled = json!({"backup": {"schedule": "03:30"}}).to_string();
    let (ok, v) = audit(&home, &scheduled, &[], &[]);
    assert_eq!(
        severity(&v, "backup.recent"),
        "pass",
        "a new data dir has a day for its first backup: {v}"
    );
    assert!(ok);

    let set_age = |path: &std::path::Path, days: u64| {
        let f = std::fs::File::options().append(true).open(path).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(days * 86_400))
            .unwrap();
    };
    // No backup, and the data dir is three days old.
    set_age(&home.file(".env"), 3);
    let (ok, v) = audit(&home, &scheduled, &[], &[]);
    assert_eq!(severity(&v, "backup.recent"), "fail", "{v}");
    assert!(!ok, "a fail makes the exit status non-zero");

    // A backup, but three days old; other files in the dir do not count.
    let dir = home.file("backups");
    std::fs::create_dir_all(&dir).unwrap();
    let old = dir.join("exoclaw-backup-20260101T033000Z.exob");
    std::fs::write(&old, b"x").unwrap();
    set_age(&old, 3);
    std::fs::write(dir.join("notes.txt"), b"not a backup").unwrap();
    let (_, v) = audit(&home, &scheduled, &[], &[]);
    assert_eq!(severity(&v, "backup.recent"), "fail", "{v}");

    // A fresh backup clears it.
    std::fs::write(dir.join("exoclaw-backup-20260104T033000Z.exob"), b"x").unwrap();
    let (ok, v) = audit(&home, &scheduled, &[], &[]);
    assert_eq!(severity(&v, "backup.recent"), "pass", "{v}");
    assert!(ok);
}
