//! `exoclaw security audit --fix` beyond permissions: configuration repaired
//! only with `--yes` (or a confirmation), validated before it is written, the
//! old file kept; a missing token generated and a weak one rotated, never
//! printed; what cannot be repaired reported as left.

use crate::support::*;
use serde_json::{Value, json};
use std::path::Path;

/// `security audit --json` with `args`, the config at `cfg`.
fn audit_at(
    home: &TestHome,
    cfg: &Path,
    env: &[(&str, &str)],
    args: &[&str],
) -> (bool, Value, String) {
    let cfg = cfg.to_str().unwrap();
    let mut all_env = vec![("EXOCLAW_CONFIG", cfg)];
    all_env.extend_from_slice(env);
    let mut argv = vec!["security", "audit", "--json"];
    argv.extend_from_slice(args);
    let out = run(&home.path, &all_env, &argv);
    let v: Value = serde_json::from_str(stdout(&out).trim())
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&out), stderr(&out)));
    (
        out.status.success(),
        v,
        format!("{}{}", stdout(&out), stderr(&out)),
    )
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

fn lines(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key}: {v}"))
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect()
}

fn started() -> TestHome {
    let home = TestHome::new();
    let mut gw = Gateway::start(&home.path, &[]);
    gw.signal("TERM");
    gw.wait_exit(std::time::Duration::from_secs(10));
    home
}

fn careless_config() -> Value {
    json!({
        "gateway": {
            "host": "0.0.0.0",
            "rate_limit_rpm": 0,
            "injection_action": "off",
            "write_stall_timeout_sec": 3600
        },
        "tools": {
            "exec_approval": {"security": "off"},
            "rate_limit_per_hour": 0,
            "workspace_quota": {"user_mb": 0}
        },
        "agents": {"defaults": {"restrict_to_workspace": false, "sandbox": {"mode": "off"}}},
        "channels": {"telegram": {"dm_policy": "open", "allow_from": ["*", "42"]}},
        "backup": {"schedule": "03:30"}
    })
}

const REPAIRED: &[&str] = &[
    "gateway.bind",
    "gateway.rate_limit",
    "gateway.injection",
    "gateway.connection_timeouts",
    "tools.exec_approval",
    "tools.rate_limit",
    "tools.workspace",
    "workspace.quota",
    "channels.dm_open",
];

/// Whether the sandbox holds on this host (the oracle for `sandbox.mode`).
fn sandbox_works(home: &TestHome) -> bool {
    run(&home.path, &[], &["sandbox", "explain"])
        .status
        .success()
}

#[test]
fn yes_repairs_the_configuration_keeps_the_rest_and_is_idempotent() {
    let home = started();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    let before = serde_json::to_string_pretty(&careless_config()).unwrap();
    std::fs::write(&cfg, &before).unwrap();

    let (ok, v, _) = audit_at(&home, &cfg, &[], &[]);
    assert!(!ok, "a careless config fails the audit");
    for id in REPAIRED {
        assert_ne!(severity(&v, id), "pass", "{id} fires first");
    }

    let (ok, v, text) = audit_at(&home, &cfg, &[], &["--fix", "--yes"]);
    assert!(ok, "{text}");
    for id in REPAIRED {
        assert_eq!(severity(&v, id), "pass", "{id} repaired: {v}");
    }
    let changed = lines(&v, "changed");
    assert!(
        changed
            .iter()
            .any(|c| c.ends_with("gateway.rate_limit_rpm = 20")),
        "{changed:?}"
    );
    let left = lines(&v, "left");
    assert!(
        left.iter()
            .any(|l| l.starts_with("tools.deny: not mechanical")),
        "{left:?}"
    );
    if sandbox_works(&home) {
        assert_eq!(severity(&v, "sandbox.mode"), "pass", "{v}");
    } else {
        assert!(
            left.iter()
                .any(|l| l.contains("the sandbox does not work on this host")),
            "{left:?}"
        );
    }

    let after: Value = serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    assert_eq!(after["gateway"]["host"], "127.0.0.1");
    assert_eq!(after["channels"]["telegram"]["dm_policy"], "pairing");
    assert_eq!(after["channels"]["telegram"]["allow_from"], json!(["42"]));
    assert_eq!(after["tools"]["workspace_quota"]["user_mb"], 1024);
    assert_eq!(after["backup"]["schedule"], "03:30", "the rest is kept");
    let bak = std::fs::read_to_string(dir.path().join("config.json.bak")).unwrap();
    assert_eq!(bak, before, "the previous text is kept beside it");

    let (ok, v, text) = audit_at(&home, &cfg, &[], &["--fix", "--yes"]);
    assert!(ok, "{text}");
    assert!(lines(&v, "changed").is_empty(), "idempotent: {v}");
}

#[test]
fn without_yes_or_a_terminal_nothing_changes() {
    let home = started();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    let before = careless_config().to_string();
    std::fs::write(&cfg, &before).unwrap();
    let (ok, v, _) = audit_at(&home, &cfg, &[], &["--fix"]);
    assert!(!ok);
    assert!(lines(&v, "changed").is_empty(), "{v}");
    let left = lines(&v, "left");
    assert!(
        left.iter()
            .any(|l| l.starts_with("gateway.rate_limit: would set")
                && l.contains("re-run with --yes")),
        "{left:?}"
    );
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), before);
    assert!(!dir.path().join("config.json.bak").exists());
    assert_eq!(severity(&v, "gateway.rate_limit"), "fail");
}

#[test]
fn a_variable_that_sets_the_key_is_left_alone() {
    let home = started();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    std::fs::write(&cfg, "{}").unwrap();
    let (_, v, _) = audit_at(
        &home,
        &cfg,
        &[("EXOCLAW_HOST", "0.0.0.0")],
        &["--fix", "--yes"],
    );
    assert_eq!(severity(&v, "gateway.bind"), "warn");
    assert!(
        lines(&v, "left")
            .iter()
            .any(|l| l.starts_with("gateway.bind: the address comes from EXOCLAW_HOST")),
        "{v}"
    );
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), "{}");
}

fn dotenv_token(home: &TestHome) -> String {
    home.dotenv()
        .lines()
        .find_map(|l| l.strip_prefix("EXOCLAW_GATEWAY_TOKEN="))
        .unwrap()
        .to_owned()
}

#[test]
fn a_weak_token_is_rotated_without_being_printed_and_the_old_one_stops_working() {
    let home = started();
    let weak = "ab".repeat(24);
    let dotenv = home.dotenv().replace(&dotenv_token(&home), &weak);
    std::fs::write(home.file(".env"), dotenv).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    std::fs::write(&cfg, "{}").unwrap();

    let (ok, v, _) = audit_at(&home, &cfg, &[], &[]);
    assert!(!ok);
    assert_eq!(severity(&v, "gateway.token"), "fail");
    // From the process environment it cannot be fixed here.
    let (_, v, _) = audit_at(
        &home,
        &cfg,
        &[("EXOCLAW_GATEWAY_TOKEN", &weak)],
        &["--fix", "--yes"],
    );
    assert!(
        lines(&v, "left")
            .iter()
            .any(|l| l.starts_with("gateway.token: the token comes from the process environment")),
        "{v}"
    );
    assert_eq!(dotenv_token(&home), weak);

    let (ok, v, text) = audit_at(&home, &cfg, &[], &["--fix", "--yes"]);
    assert!(ok, "{text}");
    assert_eq!(severity(&v, "gateway.token"), "pass");
    let new = dotenv_token(&home);
    assert_ne!(new, weak);
    assert_eq!(new.len(), 64);
    assert!(!text.contains(&new), "the new token is never printed");
    assert!(
        lines(&v, "changed")
            .iter()
            .any(|c| c.starts_with("rotated the gateway token")),
        "{v}"
    );
    assert_eq!(home.mode(".env"), 0o600);

    let gw = Gateway::start(&home.path, &[]);
    assert_eq!(
        gw.get("/v1/status", Some(&weak)).status,
        401,
        "the weak token is gone"
    );
    assert_eq!(
        gw.get("/v1/status", Some(&new)).status,
        200,
        "the new one works"
    );
}

#[test]
fn a_missing_token_is_generated_into_a_private_dotenv() {
    let home = TestHome::new();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    std::fs::write(&cfg, "{}").unwrap();
    let (_, v, _) = audit_at(&home, &cfg, &[], &[]);
    assert_eq!(severity(&v, "gateway.auth"), "warn");
    let (_, v, text) = audit_at(&home, &cfg, &[], &["--fix", "--yes"]);
    assert_eq!(severity(&v, "gateway.auth"), "pass", "{v}");
    let token = dotenv_token(&home);
    assert_eq!(token.len(), 64);
    assert!(!text.contains(&token));
    assert_eq!(home.mode(""), 0o700);
    assert_eq!(home.mode(".env"), 0o600);
    let gw = Gateway::start(&home.path, &[]);
    assert_eq!(gw.get("/v1/status", Some(&token)).status, 200);
}

#[test]
fn in_a_terminal_each_repair_is_confirmed_or_declined() {
    // `script` gives the command a terminal and forwards the answers.
    let home = TestHome::new();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    std::fs::write(
        &cfg,
        r#"{"gateway": {"rate_limit_rpm": 0}, "tools": {"rate_limit_per_hour": 0}}"#,
    )
    .unwrap();
    let command = format!("{BIN} security audit --fix");
    let mut child = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("EXOCLAW_HOME", &home.path)
        .env("EXOCLAW_CONFIG", &cfg)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("util-linux `script` runs the command in a terminal");
    // The prompts come in the findings' order: the missing token, the
    // request rate limit, the tool rate limit.
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"y\nn\ny\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = stdout(&out);
    assert!(
        text.contains("fix gateway.auth: generate a gateway token into"),
        "{text}"
    );
    assert!(
        text.contains("left: gateway.rate_limit: declined (set gateway.rate_limit_rpm to 20)"),
        "{text}"
    );
    assert!(text.contains("changed: "), "{text}");
    let after: Value = serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
    assert_eq!(after["gateway"]["rate_limit_rpm"], 0, "declined");
    assert_eq!(after["tools"]["rate_limit_per_hour"], 150, "confirmed");
    assert_eq!(dotenv_token(&home).len(), 64, "confirmed");
}

/// `GET /v1/security/audit` on a running gateway: the CLI's findings, and
/// the plan `--fix` would apply, with nothing changed on disk; owners
/// only. The dashboard's security page shows the same.
#[test]
fn the_running_gateway_reports_the_audit_and_the_fix_plan_without_fixing() {
    let home = TestHome::new();
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("config.json");
    let text = json!({"gateway": {"injection_action": "off", "rate_limit_rpm": 0}}).to_string();
    std::fs::write(&cfg, &text).unwrap();
    let cfg_s = cfg.to_str().unwrap();
    let env = [("EXOCLAW_GATEWAY_TOKEN", TOKEN), ("EXOCLAW_CONFIG", cfg_s)];
    let gw = Gateway::start(&home.path, &env);
    let r = gw.get("/v1/security/audit", Some(TOKEN));
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(severity(&v, "gateway.injection"), "fail");
    assert_eq!(severity(&v, "gateway.auth"), "pass");
    let fixes: Vec<String> = v["fixes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{}: {}",
                f["id"].as_str().unwrap(),
                f["change"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        fixes.contains(&"gateway.injection: set gateway.injection_action to warn".to_owned()),
        "{fixes:?}"
    );
    assert!(
        fixes
            .iter()
            .any(|f| f.starts_with("gateway.rate_limit: set gateway.rate_limit_rpm to")),
        "{fixes:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&cfg).unwrap(),
        text,
        "nothing is fixed"
    );
    // The CLI on the same data dir and config finds the same checks.
    let (_, cli, _) = audit_at(&home, &cfg, &[("EXOCLAW_GATEWAY_TOKEN", TOKEN)], &[]);
    let ids = |v: &Value| -> Vec<(String, String)> {
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["id"].as_str().unwrap().to_owned(),
                    f["severity"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(ids(&cli), ids(&v));
    assert_eq!(cli["result"], v["result"]);
    // Not for an admin of a tenant: the audit describes the whole gateway.
    let body = json!({"name": "ada", "role": "admin"}).to_string();
    let r = request(gw.addr, "POST", "/v1/users", Some(TOKEN), Some(&body));
    assert_eq!(r.status, 201, "{}", r.body);
    let key = r.json()["api_key"].as_str().unwrap().to_owned();
    assert_eq!(gw.get("/v1/security/audit", Some(&key)).status, 403);
}
