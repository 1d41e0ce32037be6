//! `exoclaw onboard`: non-interactive and interactive (answers on stdin),
//! never replacing existing secrets, merging into an existing config.

use crate::support::*;

#[test]
fn non_interactive_onboarding_writes_config_and_secrets() {
    let home = TestHome::new();
    let env = [("EXOCLAW_ANTHROPIC_API_KEY", "sk-ant-in-env-0123456789")];
    let out = run(
        &home.path,
        &env,
        &[
            "onboard",
            "--non-interactive",
            "--provider",
            "anthropic",
            "--model",
            "claude-sonnet-4-5",
            "--port",
            "19001",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(home.file("config.json")).unwrap()).unwrap();
    assert_eq!(config["gateway"]["port"], 19001);
    assert_eq!(config["agents"]["defaults"]["provider"], "anthropic");
    assert_eq!(config["agents"]["defaults"]["model"], "claude-sonnet-4-5");
    let text = std::fs::read_to_string(home.file("config.json")).unwrap();
    assert!(!text.contains("sk-ant"), "no secret in config.json");
    let dotenv = home.dotenv();
    assert!(
        dotenv.contains("EXOCLAW_GATEWAY_TOKEN=") && dotenv.contains("EXOCLAW_ENCRYPTION_KEY=")
    );
    assert!(
        !dotenv.contains("sk-ant-in-env"),
        "a key from the environment is not copied"
    );
    assert_eq!(home.mode(".env"), 0o600);
    assert_eq!(home.mode(""), 0o700);
    assert!(stdout(&out).contains("gateway token (shown once"));
    let v = run(&home.path, &[], &["config", "validate"]);
    assert!(v.status.success(), "{}", stderr(&v));

    // Again, with other answers: secrets stay, other config keys survive.
    let before = dotenv
        .lines()
        .filter(|l| {
            l.starts_with("EXOCLAW_GATEWAY_TOKEN") || l.starts_with("EXOCLAW_ENCRYPTION_KEY")
        })
        .map(str::to_owned)
        .collect::<Vec<_>>();
    let mut c = config;
    c["budgets"] = serde_json::json!({"models": {"*": {"daily_usd": 3.0}}});
    std::fs::write(home.file("config.json"), c.to_string()).unwrap();
    let out = run(
        &home.path,
        &env,
        &["onboard", "--non-interactive", "--port", "19002"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let after = home.dotenv();
    for line in before {
        assert!(after.contains(&line), "a secret was replaced");
    }
    assert!(!stdout(&out).contains("shown once"), "no new token");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(home.file("config.json")).unwrap()).unwrap();
    assert_eq!(config["gateway"]["port"], 19002);
    assert_eq!(config["budgets"]["models"]["*"]["daily_usd"], 3.0);
}

#[test]
fn interactive_onboarding_reads_answers_and_the_key() {
    let home = TestHome::new();
    let answers = "openai\ngpt-4o\nsk-typed-key-0123456789\n127.0.0.1\n18800\nsqlite\n";
    let out = run_with_stdin(&home.path, &[], &["onboard"], answers);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        home.dotenv()
            .contains("EXOCLAW_OPENAI_API_KEY=sk-typed-key-0123456789")
    );
    let config = std::fs::read_to_string(home.file("config.json")).unwrap();
    assert!(
        config.contains("18800") && config.contains("gpt-4o"),
        "{config}"
    );
    assert!(!config.contains("sk-typed"));
    assert!(
        !stdout(&out).contains("sk-typed"),
        "the key is never echoed"
    );
    // The written setup serves.
    let gw = Gateway::start(&home.path, &[("EXOCLAW_PORT", "0")]);
    assert_eq!(gw.get("/readyz", None).status, 200);
}

#[test]
fn onboarding_refuses_what_cannot_work() {
    let home = TestHome::new();
    let out = run(
        &home.path,
        &[],
        &["onboard", "--non-interactive", "--provider", "ollama"],
    );
    assert!(!out.status.success());
    assert!(
        error_line(&out).contains("--base-url"),
        "{}",
        error_line(&out)
    );
    let out = run(
        &home.path,
        &[],
        &["onboard", "--non-interactive", "--database", "postgres"],
    );
    assert!(
        error_line(&out).contains("EXOCLAW_POSTGRES_DSN"),
        "{}",
        error_line(&out)
    );
    assert!(
        !home.file("config.json").exists(),
        "nothing written on refusal"
    );
    let out = run(
        &home.path,
        &[],
        &[
            "onboard",
            "--non-interactive",
            "--provider",
            "ollama",
            "--base-url",
            "http://127.0.0.1:11434/v1",
            "--model",
            "llama3",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        std::fs::read_to_string(home.file("config.json"))
            .unwrap()
            .contains("11434")
    );
}

#[test]
fn serve_without_config_auto_onboards_from_the_environment() {
    let home = TestHome::new();
    let gw = Gateway::start(
        &home.path,
        &[("EXOCLAW_GROQ_API_KEY", "gsk-test-0123456789abcdef")],
    );
    let logs = gw.log_lines().join("\n");
    assert!(
        logs.contains("auto_onboard") && logs.contains("groq"),
        "{logs}"
    );
}

/// A local model server: onboarding probes its `/v1/models` and takes the
/// model it serves as the default; a server that does not answer is a
/// warning, never a failed onboarding.
#[test]
fn a_local_model_at_a_url_is_probed_for_its_models() {
    let (fake, base) = exoclaw_providers::fake::FakeProvider::start_in_thread().unwrap();
    let home = TestHome::new();
    let out = run(
        &home.path,
        &[],
        &[
            "onboard",
            "--non-interactive",
            "--provider",
            "local",
            "--base-url",
            &format!("{base}/v1"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("serves 1 model(s): fake-model"),
        "{}",
        stderr(&out)
    );
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(home.file("config.json")).unwrap()).unwrap();
    assert_eq!(config["agents"]["defaults"]["provider"], "local");
    assert_eq!(config["agents"]["defaults"]["model"], "fake-model");
    assert_eq!(
        config["providers"]["local"]["base_url"],
        format!("{base}/v1")
    );
    drop(fake);

    // Nothing listens there now: onboarding still writes the config.
    let home = TestHome::new();
    let (listener, port) = occupied_port();
    drop(listener);
    let out = run(
        &home.path,
        &[],
        &[
            "onboard",
            "--non-interactive",
            "--provider",
            "local",
            "--base-url",
            &format!("http://127.0.0.1:{port}/v1"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("warning: no model list from the base URL"),
        "{}",
        stderr(&out)
    );
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(home.file("config.json")).unwrap()).unwrap();
    assert_eq!(config["agents"]["defaults"]["provider"], "local");
    assert!(
        config["agents"]["defaults"]
            .get("model")
            .is_none_or(serde_json::Value::is_null)
    );
}
