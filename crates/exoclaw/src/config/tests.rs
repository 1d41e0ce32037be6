//! Configuration tests: every problem reported at once, with paths; secrets
//! refused from config.json and never echoed.

use super::*;
use exoclaw_gateway::home::Home;

fn load(text: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    crate::config::from_parts(
        Home::new("/tmp/exoclaw-test-home"),
        PathBuf::from("/tmp/exoclaw-test-home/config.json"),
        text,
        true,
        Env::from_pairs(env.iter().copied()),
    )
}

fn problem_paths(text: &str, env: &[(&str, &str)]) -> Vec<String> {
    match load(text, env) {
        Ok(_) => Vec::new(),
        Err(e) => e.problems.into_iter().map(|p| p.path).collect(),
    }
}

#[test]
fn empty_file_gives_secure_defaults() {
    let s = load("", &[]).unwrap();
    assert_eq!(s.config.gateway.host, "127.0.0.1");
    assert_eq!(s.config.gateway.port, 18790);
    assert_eq!(s.config.gateway.rate_limit_rpm, 20);
    assert_eq!(s.config.gateway.shutdown_grace_sec, 30);
    assert_eq!(s.config.tools.rate_limit_per_hour, 150);
    assert_eq!(
        s.config.tools.exec_approval.security,
        file::ExecSecurity::Full
    );
    assert!(s.config.agents.defaults.restrict_to_workspace);
    assert_eq!(
        s.config.agents.defaults.sandbox.mode,
        file::SandboxMode::All
    );
    assert!(!s.config.agents.defaults.sandbox.network_enabled);
    assert_eq!(
        s.config.gateway.injection_action,
        file::InjectionAction::Warn
    );
    assert!(s.bind_ip.is_loopback());
}

#[test]
fn reference_keys_are_accepted() {
    let s = load(
        r#"{
          "gateway": {"host": "0.0.0.0", "port": 9000, "allowed_origins": ["https://dash.example.com"],
                      "rate_limit_rpm": 60, "injection_action": "block", "tools": {"deny": ["exec"]}},
          "tools": {"rate_limit_per_hour": 0, "exec_approval": {"security": "ask"},
                    "web_fetch": {"allow_domains": ["example.com", "*.docs.rs"]}},
          "agents": {"defaults": {"restrict_to_workspace": true,
                                  "sandbox": {"mode": "non-main", "memory_mb": 256}}},
          "providers": {"ollama": {"base_url": "http://127.0.0.1:11434/v1"}},
          "backup": {"schedule": "03:30"}
        }"#,
        &[("EXOCLAW_GATEWAY_TOKEN", &"x".repeat(40))],
    )
    .unwrap();
    assert_eq!(s.config.gateway.port, 9000);
    assert_eq!(s.config.agents.defaults.sandbox.memory_mb, 256);
    assert!(!s.bind_ip.is_loopback());
}

#[test]
fn every_problem_is_reported_at_once_with_its_path() {
    let paths = problem_paths(
        r#"{
          "gateway": {"port": "high", "bogus": 1},
          "tools": {"exec_approval": {"security": "sometimes"}},
          "agents": {"defaults": {"sandbox": {"memroy_mb": 1}}},
          "nonsense": true
        }"#,
        &[],
    );
    for expected in [
        "gateway.port",
        "gateway.bogus",
        "tools.exec_approval.security",
        "agents.defaults.sandbox.memroy_mb",
        "nonsense",
    ] {
        assert!(
            paths.iter().any(|p| p == expected),
            "{expected} missing from {paths:?}"
        );
    }
}

#[test]
fn range_and_format_rules() {
    let paths = problem_paths(
        r#"{
          "gateway": {"host": "example.com", "allowed_origins": ["*", "https://a.example/path"],
                      "trusted_proxies": ["nope"], "shutdown_grace_sec": 99999},
          "agents": {"defaults": {"sandbox": {"cpus": 0}}, "window_cache_idle_sec": 0},
          "egress": {"allow_domains": ["Bad_Domain", "https://x.com"],
                     "pool_max_idle_per_host": 10001, "pool_idle_timeout_sec": 0},
          "providers": {"x": {"base_url": "ftp://x"}},
          "backup": {"schedule": "25:00", "keep_days": 0}
        }"#,
        &[],
    );
    for expected in [
        "gateway.host",
        "gateway.allowed_origins[0]",
        "gateway.allowed_origins[1]",
        "gateway.trusted_proxies[0]",
        "gateway.shutdown_grace_sec",
        "agents.defaults.sandbox.cpus",
        "egress.allow_domains[0]",
        "egress.allow_domains[1]",
        "agents.window_cache_idle_sec",
        "egress.pool_max_idle_per_host",
        "egress.pool_idle_timeout_sec",
        "providers.x.base_url",
        "backup.schedule",
        "backup.keep_days",
    ] {
        assert!(
            paths.iter().any(|p| p == expected),
            "{expected} missing from {paths:?}"
        );
    }
}

#[test]
fn secrets_in_config_json_are_refused_without_echo() {
    let text = r#"{"gateway": {"token": "0123456789abcdef0123456789abcdef"},
                   "providers": {"openai": {"api_key": "sk-proj-abcdefghijklmnopqrstuvwxyz"}},
                   "database": {"postgres_dsn": "postgres://u:hunter2@db/x"}}"#;
    let err = load(text, &[]).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("gateway.token"), "{msg}");
    assert!(msg.contains("EXOCLAW_GATEWAY_TOKEN"), "{msg}");
    assert!(msg.contains("EXOCLAW_OPENAI_API_KEY"), "{msg}");
    assert!(msg.contains("EXOCLAW_POSTGRES_DSN"), "{msg}");
    for secret in ["0123456789abcdef", "sk-proj", "hunter2"] {
        assert!(!msg.contains(secret), "echoed {secret}: {msg}");
    }
}

#[test]
fn a_secret_shaped_value_under_any_key_is_refused() {
    let paths = problem_paths(
        r#"{"egress": {"allow_domains": ["sk-ant-api03-aaaaaaaaaaaaaaaaaaaa"]}}"#,
        &[],
    );
    assert!(
        paths.contains(&"egress.allow_domains[0]".to_owned()),
        "{paths:?}"
    );
}

#[test]
fn json_syntax_error_names_the_position_not_the_content() {
    let err = load("{\"gateway\": {\"host\": \"sk-secretvalue\"", &[]).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("line 1"), "{msg}");
    assert!(!msg.contains("sk-secretvalue"), "{msg}");
}

#[test]
fn env_overrides_win_and_bad_env_is_named() {
    let s = load(
        r#"{"gateway": {"host": "127.0.0.1", "port": 1000}}"#,
        &[("EXOCLAW_PORT", "2000"), ("EXOCLAW_HOST", "::1")],
    )
    .unwrap();
    assert_eq!(s.config.gateway.port, 2000);
    assert_eq!(s.config.gateway.host, "::1");

    let paths = problem_paths(
        "",
        &[
            ("EXOCLAW_PORT", "99999"),
            ("EXOCLAW_GATEWAY_TOKEN", "short"),
            ("EXOCLAW_ENCRYPTION_KEY", "abc"),
            ("EXOCLAW_BACKUP_KEY", "not-hex"),
            ("EXOCLAW_POSTGRES_DSN", "mysql://x"),
        ],
    );
    assert_eq!(
        paths,
        [
            "EXOCLAW_PORT",
            "EXOCLAW_GATEWAY_TOKEN",
            "EXOCLAW_ENCRYPTION_KEY",
            "EXOCLAW_BACKUP_KEY",
            "EXOCLAW_POSTGRES_DSN"
        ]
    );
}

#[test]
fn show_redacts_secrets() {
    let token = "t".repeat(48);
    let s = load(
        "",
        &[
            ("EXOCLAW_GATEWAY_TOKEN", &token),
            ("EXOCLAW_POSTGRES_DSN", "postgres://u:hunter2@db/x"),
        ],
    )
    .unwrap();
    let shown = s.show().to_string();
    assert!(!shown.contains(&token), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(
        shown.contains(r#""EXOCLAW_GATEWAY_TOKEN":"***""#),
        "{shown}"
    );
    assert!(
        shown.contains(r#""EXOCLAW_ENCRYPTION_KEY":null"#),
        "{shown}"
    );
    assert!(shown.contains(r#""storage":"postgres""#), "{shown}");
}

#[test]
fn env_var_names_for_secret_paths() {
    assert_eq!(
        validate::env_var_for("gateway.token"),
        "EXOCLAW_GATEWAY_TOKEN"
    );
    assert_eq!(
        validate::env_var_for("providers.open-router.api_key"),
        "EXOCLAW_OPEN_ROUTER_API_KEY"
    );
    assert_eq!(
        validate::env_var_for("channels.telegram.token"),
        "EXOCLAW_TELEGRAM_TOKEN"
    );
}

#[test]
fn telemetry_comes_from_env_and_is_checked() {
    let s = load("", &[]).unwrap();
    assert!(!s.config.telemetry.enabled);
    assert_eq!(s.config.telemetry.service_name, "exoclaw-gateway");

    let mut paths = problem_paths(
        r#"{"telemetry": {"enabled": true, "protocol": "grpc"}}"#,
        &[],
    );
    paths.sort();
    let mut expected = vec!["telemetry.endpoint", "telemetry.protocol"];
    if !cfg!(feature = "otel") {
        expected.insert(0, "telemetry.enabled");
    }
    assert_eq!(paths, expected);

    let env = [
        ("EXOCLAW_TELEMETRY_ENABLED", "true"),
        (
            "EXOCLAW_TELEMETRY_ENDPOINT",
            "http://collector.example:4318",
        ),
        ("EXOCLAW_TELEMETRY_PROTOCOL", "http"),
        ("EXOCLAW_TELEMETRY_SERVICE_NAME", "gw-1"),
    ];
    let err = load("", &env).unwrap_err().to_string();
    assert!(err.contains("unencrypted"), "{err}");
    if !cfg!(feature = "otel") {
        assert!(err.contains("--features otel"), "{err}");
    }
    let mut env = env.to_vec();
    env.push(("EXOCLAW_TELEMETRY_INSECURE", "1"));
    let loaded = load("", &env);
    if cfg!(feature = "otel") {
        let s = loaded.unwrap();
        let t = &s.config.telemetry;
        assert!(t.enabled && t.insecure);
        assert_eq!(t.service_name, "gw-1");
        assert_eq!(t.endpoint.as_deref(), Some("http://collector.example:4318"));
    } else {
        let paths: Vec<String> = loaded
            .unwrap_err()
            .problems
            .into_iter()
            .map(|p| p.path)
            .collect();
        assert_eq!(paths, ["telemetry.enabled"]);
    }
    assert_eq!(
        problem_paths("", &[("EXOCLAW_TELEMETRY_PROTOCOL", "udp")]),
        ["EXOCLAW_TELEMETRY_PROTOCOL"]
    );
}

#[test]
fn alerts_settings_are_checked() {
    let s = load(
        "",
        &[("EXOCLAW_ALERTS_WEBHOOK_URL", "https://hooks.example/x")],
    )
    .unwrap();
    let a = &s.config.alerts;
    assert_eq!(a.webhook_url.as_deref(), Some("https://hooks.example/x"));
    assert!((a.budget_threshold - 0.8).abs() < f64::EPSILON);
    assert_eq!(
        (a.security_burst.count, a.security_burst.window_sec),
        (5, 300)
    );
    assert_eq!(a.throttle_sec, 900);
    let mut paths = problem_paths(
        r#"{"alerts": {"webhook_url": "ftp://x", "budget_threshold": 1.5,
                       "security_burst": {"count": 0, "window_sec": 0}, "provider_failures": 0}}"#,
        &[],
    );
    paths.sort();
    assert_eq!(
        paths,
        [
            "alerts.budget_threshold",
            "alerts.provider_failures",
            "alerts.security_burst.count",
            "alerts.security_burst.window_sec",
            "alerts.webhook_url"
        ]
    );
}
