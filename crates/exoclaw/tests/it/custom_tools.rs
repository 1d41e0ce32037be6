//! Custom tools through the real gateway: a bad definition is refused with
//! the reason and stores nothing; a tool is offered only once granted;
//! arguments are checked against the schema and reach the command as single
//! words (shell metacharacters, command substitution, newlines and option
//! injection do nothing); secret environment values come from the vault
//! and are scrubbed from the output; the tool survives a restart and the
//! CLI sees and removes it.

use crate::support::*;
use serde_json::{Value, json};
use std::time::Duration;

struct Setup {
    home: TestHome,
    gw: Gateway,
    _fake: exoclaw_providers::fake::FakeProvider,
    env: Vec<(String, String)>,
    _cfg: tempfile::TempDir,
}

impl Setup {
    fn new() -> Self {
        let (fake, base) = exoclaw_providers::fake::FakeProvider::start_in_thread().unwrap();
        let home = TestHome::new();
        let cfg = tempfile::tempdir().unwrap();
        let cfg_path = cfg.path().join("config.json");
        std::fs::write(&cfg_path, r#"{"gateway": {"rate_limit_rpm": 0}}"#).unwrap();
        let env = vec![
            ("EXOCLAW_GATEWAY_TOKEN".to_owned(), TOKEN.to_owned()),
            (
                "EXOCLAW_OPENAI_API_KEY".to_owned(),
                "sk-test-fake-key-0123456789".to_owned(),
            ),
            ("EXOCLAW_OPENAI_BASE_URL".to_owned(), base),
            (
                "EXOCLAW_CONFIG".to_owned(),
                cfg_path.to_str().unwrap().to_owned(),
            ),
        ];
        let gw = Gateway::start(&home.path, &env_pairs(&env));
        Self {
            home,
            gw,
            _fake: fake,
            env,
            _cfg: cfg,
        }
    }

    fn restart(&mut self) {
        self.gw.signal("TERM");
        self.gw.wait_exit(Duration::from_secs(20));
        self.gw = Gateway::start(&self.home.path, &env_pairs(&self.env));
    }

    fn post(&self, path: &str, body: &Value) -> Response {
        request(
            self.gw.addr,
            "POST",
            path,
            Some(TOKEN),
            Some(&body.to_string()),
        )
    }

    fn invoke(&self, tool: &str, args: Value) -> Response {
        self.post("/v1/tools/invoke", &json!({"tool": tool, "args": args}))
    }
}

const SECRET: &str = "tok-6f1d0c9a8b7e4d3c2b1a0f9e8d7c6b5a";

fn echo_tool(agents: Value) -> Value {
    json!({
        "name": "say",
        "description": "print the text between bars",
        "parameters": {
            "type": "object",
            "properties": {"text": {"type": "string", "maxLength": 200}},
            "required": ["text"],
            "additionalProperties": false
        },
        "command": ["printf", "|%s|", "{text}"],
        "agents": agents
    })
}

/// The `stdout` of a successful invocation.
fn stdout_of(r: &Response) -> String {
    assert_eq!(r.status, 200, "{}", r.body);
    let out: Value = serde_json::from_str(r.json()["output"].as_str().unwrap()).unwrap();
    out["stdout"].as_str().unwrap().to_owned()
}

#[test]
fn bad_definitions_are_refused_with_the_reason_and_store_nothing() {
    let s = Setup::new();
    let cases = [
        (
            json!({"parameters": {"type": "object", "properties": {"text": {"type": "nope"}}}}),
            "parameters",
        ),
        (json!({"parameters": {"type": "array"}}), "object schema"),
        (
            json!({"command": ["printf", "{missing}"]}),
            "{missing} names no property",
        ),
        (json!({"command": ["{text}"]}), "program must be a literal"),
        (json!({"command": ["printf", "{text"]}), "not closed"),
        (json!({"command": []}), "command"),
        (json!({"env": {"LD_PRELOAD": "{text}"}}), "reserved"),
        (json!({"name": "bad name"}), "name"),
        (json!({"agents": ["no-such-agent"]}), "no agent"),
    ];
    for (change, why) in cases {
        let mut body = echo_tool(json!(["default"]));
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = s.post("/v1/tools/custom", &body);
        assert_eq!(r.status, 400, "{change}: {}", r.body);
        assert_eq!(r.json()["error"]["code"], "tool.invalid_definition");
        let msg = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(msg.contains(why), "{change}: {msg:?} does not say {why:?}");
    }
    let mut body = echo_tool(json!(["default"]));
    body["name"] = json!("exec");
    let r = s.post("/v1/tools/custom", &body);
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "tool.name_taken");
    let list = s.gw.get("/v1/tools/custom", Some(TOKEN));
    assert_eq!(list.json(), json!({"tools": []}));
}

#[test]
fn a_granted_tool_runs_its_arguments_as_single_words() {
    let mut s = Setup::new();
    // Deny by default: stored without a grant, offered to nobody.
    let r = s.post("/v1/tools/custom", &echo_tool(json!([])));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = s.invoke("say", json!({"text": "hi"}));
    assert_eq!(r.json()["error"]["code"], "tool.not_found", "{}", r.body);
    let r = s.post("/v1/tools/custom", &echo_tool(json!(["default"])));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(stdout_of(&s.invoke("say", json!({"text": "hi"}))), "|hi|");

    // A canary in the workspace, and attempts to reach a shell.
    let r = s.invoke("exec", json!({"command": "echo keep > canary.txt"}));
    assert_eq!(r.status, 200, "{}", r.body);
    let ws = s.home.path.join("workspace/default/owner");
    for hostile in [
        "; rm -f canary.txt",
        "$(touch pwned1)",
        "`touch pwned2`",
        "x\ntouch pwned3",
        "| touch pwned4 &&",
        "' ; touch pwned5 '",
    ] {
        let out = stdout_of(&s.invoke("say", json!({ "text": hostile })));
        assert_eq!(out, format!("|{hostile}|"), "passed as one word");
    }
    assert!(ws.join("canary.txt").exists(), "nothing was removed");
    for n in 1..=5 {
        assert!(!ws.join(format!("pwned{n}")).exists(), "pwned{n} was made");
    }
    // Option injection: refused before anything runs.
    for hostile in ["--exec=touch pwned6", "-v"] {
        let r = s.invoke("say", json!({ "text": hostile }));
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(r.json()["error"]["code"], "tool.invalid_args");
    }
    // The schema is the one the definition declared.
    for bad in [
        json!({}),
        json!({"text": 5}),
        json!({"text": "x", "more": 1}),
    ] {
        let r = s.invoke("say", bad.clone());
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert_eq!(r.json()["error"]["code"], "tool.invalid_args");
    }

    // Another agent is not granted it.
    let r = s.post(
        "/v1/agents",
        &json!({"id": "other", "display_name": "Other"}),
    );
    assert!(r.status == 200 || r.status == 201, "{}", r.body);
    let r = s.post(
        "/v1/tools/invoke",
        &json!({"tool": "say", "args": {"text": "hi"}, "agent": "other"}),
    );
    assert_eq!(r.json()["error"]["code"], "tool.not_found", "{}", r.body);

    // Secret environment from the vault: the command gets it, the output
    // is scrubbed of it, and no listing shows it.
    let secret_tool = json!({
        "name": "show_token",
        "description": "print the token's length and the token",
        "parameters": {"type": "object", "properties": {}},
        "command": ["printenv", "SAY_TOKEN"],
        "secret_env": {"SAY_TOKEN": SECRET},
        "agents": ["*"]
    });
    let r = s.post("/v1/tools/custom", &secret_tool);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!r.body.contains(SECRET));
    let out = stdout_of(&s.invoke("show_token", json!({})));
    assert!(!out.contains(SECRET), "scrubbed: {out}");
    assert!(out.contains("[REDACTED"), "the command had it: {out}");
    let list = s.gw.get("/v1/tools/custom", Some(TOKEN));
    assert!(!list.body.contains(SECRET));
    let listed = list.json();
    let shown = listed["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "show_token")
        .unwrap()
        .clone();
    assert_eq!(shown["secret_env"], json!(["SAY_TOKEN"]));
    assert_eq!(shown["agents"], json!(["*"]));

    // Kept across a restart; the CLI lists and removes it.
    s.restart();
    assert_eq!(
        stdout_of(&s.invoke("say", json!({"text": "again"}))),
        "|again|"
    );
    let out = stdout_of(&s.invoke("show_token", json!({})));
    assert!(out.contains("[REDACTED"), "{out}");
    let env = env_pairs(&s.env);
    let out = run(&s.home.path, &env, &["tools", "custom", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("NAME"), "{text}");
    assert!(
        text.contains("say") && text.contains("show_token"),
        "{text}"
    );
    let out = run(&s.home.path, &env, &["tools", "custom", "list", "--json"]);
    let listed: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(listed["tools"].as_array().unwrap().len(), 2);
    let out = run(
        &s.home.path,
        &env,
        &["tools", "custom", "remove", "show_token"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(
        &s.home.path,
        &env,
        &["tools", "custom", "remove", "show_token"],
    );
    assert!(!out.status.success());

    // Removed through the API: no longer offered.
    let r = request(
        s.gw.addr,
        "DELETE",
        "/v1/tools/custom/say",
        Some(TOKEN),
        None,
    );
    assert_eq!(r.status, 204, "{}", r.body);
    let r = s.invoke("say", json!({"text": "hi"}));
    assert_eq!(r.json()["error"]["code"], "tool.not_found");
    let r = request(
        s.gw.addr,
        "DELETE",
        "/v1/tools/custom/say",
        Some(TOKEN),
        None,
    );
    assert_eq!(r.status, 404);
}

#[test]
fn the_cli_adds_a_tool_from_standard_input() {
    let mut s = Setup::new();
    let env = env_pairs(&s.env);
    let mut body = echo_tool(json!(["default"]));
    body["command"] = json!(["printf", "<%s>", "{text}"]);
    let out = run_with_stdin(
        &s.home.path,
        &env,
        &["tools", "custom", "add", "--file", "-"],
        &body.to_string(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run_with_stdin(
        &s.home.path,
        &env,
        &["tools", "custom", "add", "--file", "-"],
        r#"{"name": "x", "description": "d", "parameters": {"type": "object"}, "command": ["{y}"]}"#,
    );
    assert!(!out.status.success());
    assert!(
        error_line(&out).contains("tool.invalid_definition"),
        "{}",
        error_line(&out)
    );
    s.restart();
    assert_eq!(stdout_of(&s.invoke("say", json!({"text": "cli"}))), "<cli>");
}
