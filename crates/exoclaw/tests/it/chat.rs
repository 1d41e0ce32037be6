//! The agent loop end to end: the real binary against the fake provider on
//! loopback (both wire formats), through the OpenAI-compatible API, the tool
//! invocation API, sessions and traces; faults included.

use crate::support::*;
use exoclaw_core::provider::{StopReason, ToolCall, Usage};
use exoclaw_providers::fake::{FakeProvider, Reply, WireFormat};
use serde_json::{Value, json};
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

pub struct Setup {
    pub home: TestHome,
    pub fake: FakeProvider,
    pub gw: Gateway,
    _cfg: tempfile::TempDir,
}

/// A gateway whose OpenAI provider is the fake (plus `config` as config.json).
pub fn setup_with(config: &str, extra: &[(&str, &str)]) -> Setup {
    let (fake, base) = FakeProvider::start_in_thread().unwrap();
    let home = TestHome::new();
    let cfg = tempfile::tempdir().unwrap();
    let cfg_path = cfg.path().join("config.json");
    // Tests poll the API; the gateway rate limit has its own test.
    let mut config: serde_json::Value = serde_json::from_str(config).unwrap();
    if config.pointer("/gateway/rate_limit_rpm").is_none() {
        if config.get("gateway").is_none() {
            config["gateway"] = json!({});
        }
        config["gateway"]["rate_limit_rpm"] = json!(0);
    }
    std::fs::write(&cfg_path, config.to_string()).unwrap();
    let cfg_str = cfg_path.to_str().unwrap().to_owned();
    let mut env: Vec<(&str, &str)> = vec![
        ("EXOCLAW_GATEWAY_TOKEN", TOKEN),
        ("EXOCLAW_OPENAI_API_KEY", "sk-test-fake-key-0123456789"),
        ("EXOCLAW_OPENAI_BASE_URL", &base),
        ("EXOCLAW_CONFIG", &cfg_str),
    ];
    env.extend_from_slice(extra);
    let gw = Gateway::start(&home.path, &env);
    Setup {
        home,
        fake,
        gw,
        _cfg: cfg,
    }
}

impl Setup {
    /// The config file the gateway runs with (`EXOCLAW_CONFIG`), for CLI
    /// commands that must see the same configuration.
    pub fn config_path(&self) -> std::path::PathBuf {
        self._cfg.path().join("config.json")
    }
}

pub fn setup() -> Setup {
    setup_with("{}", &[])
}

pub fn chat(gw: &Gateway, body: Value) -> Response {
    request(
        gw.addr,
        "POST",
        "/v1/chat/completions",
        Some(TOKEN),
        Some(&body.to_string()),
    )
}

fn ask(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": text}], "user": "alice"})
}

#[test]
fn a_completion_runs_the_agent_and_persists_the_session() {
    let s = setup();
    s.fake
        .push(Reply::text("Hello from the fake model").usage(Usage {
            input_tokens: 12,
            output_tokens: 6,
            cache_read_tokens: 4,
            ..Usage::default()
        }));
    let r = chat(&s.gw, ask("default", "hi there"));
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "default");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Hello from the fake model"
    );
    assert_eq!(v["usage"]["prompt_tokens"], 12);
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 4);

    // The provider saw the agent's system prompt and the user's words.
    let req = s.fake.last_request().unwrap();
    assert_eq!(req.wire, WireFormat::OpenAi);
    assert_eq!(req.body["stream"], true);
    assert_eq!(req.body["stream_options"]["include_usage"], true);
    assert_eq!(req.headers["authorization"], "***");
    let msgs = req.body["messages"].as_array().unwrap();
    assert_eq!(msgs[0]["role"], "system");
    assert!(msgs[0]["content"].as_str().unwrap().contains("exoclaw"));
    assert_eq!(msgs.last().unwrap()["content"], "hi there");

    // History is kept server-side per (agent, user field).
    s.fake.push(Reply::text("second answer"));
    chat(&s.gw, ask("default", "and again"));
    let msgs = s.fake.last_request().unwrap().body["messages"]
        .as_array()
        .unwrap()
        .clone();
    let texts: Vec<&str> = msgs.iter().filter_map(|m| m["content"].as_str()).collect();
    assert!(
        texts.contains(&"hi there") && texts.contains(&"Hello from the fake model"),
        "{texts:?}"
    );
    s.fake.push(Reply::text("bob's answer"));
    chat(
        &s.gw,
        json!({"model": "default", "messages": [{"role": "user", "content": "hi"}], "user": "bob"}),
    );
    let bob = s.fake.last_request().unwrap().body["messages"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(bob, 2, "another user field is another session");

    let sessions = s.gw.get("/v1/sessions", Some(TOKEN)).json();
    let alice = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["peer"] == "alice")
        .unwrap()
        .clone();
    let id = alice["id"].as_str().unwrap();
    let m =
        s.gw.get(&format!("/v1/sessions/{id}/messages"), Some(TOKEN))
            .json();
    let roles: Vec<&str> = m["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant"]);
    let del = request(
        s.gw.addr,
        "DELETE",
        &format!("/v1/sessions/{id}"),
        Some(TOKEN),
        None,
    );
    assert_eq!(del.status, 204);
    assert_eq!(
        s.gw.get(&format!("/v1/sessions/{id}/messages"), Some(TOKEN))
            .status,
        404
    );
}

/// Read an SSE response: the `data:` payloads in order.
fn sse(gw: &Gateway, body: Value) -> (u16, Vec<String>) {
    let mut s = TcpStream::connect(gw.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let body = body.to_string();
    write!(
        s,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let r = read_response(&mut s);
    let data = r
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(str::to_owned)
        .collect();
    (r.status, data)
}

#[test]
fn streaming_completions_send_chunks_usage_and_done() {
    let s = setup();
    s.fake
        .push(Reply::text("one two three four").deltas(4).usage(Usage {
            input_tokens: 3,
            output_tokens: 4,
            ..Usage::default()
        }));
    let mut body = ask("default", "count");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let (status, data) = sse(&s.gw, body);
    assert_eq!(status, 200);
    assert_eq!(data.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "one two three four");
    assert!(
        chunks
            .iter()
            .filter(|c| c["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|t| !t.is_empty()))
            .count()
            >= 4,
        "streamed in pieces"
    );
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "stop")
    );
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 4);
}

#[test]
fn tools_run_server_side_and_every_call_is_traced() {
    let s = setup();
    s.fake.push(Reply::tool_calls([
        ToolCall {
            id: "c1".into(),
            name: "write_file".into(),
            arguments: json!({"path": "notes/todo.txt", "content": "buy milk"}),
        },
        ToolCall {
            id: "c2".into(),
            name: "read_file".into(),
            arguments: json!({"path": "../../.env"}),
        },
    ]));
    s.fake.push(Reply::text("Saved your note."));
    let r = chat(&s.gw, ask("default", "save a note"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "Saved your note."
    );
    let file = s.home.path.join("workspace/default/owner/notes/todo.txt");
    assert_eq!(std::fs::read_to_string(file).unwrap(), "buy milk");
    // The tool results went back to the model, the escape attempt refused.
    let req = s.fake.last_request().unwrap();
    let tool_msgs: Vec<&Value> = req.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .collect();
    assert_eq!(tool_msgs.len(), 2);
    assert!(
        tool_msgs[1]["content"]
            .as_str()
            .unwrap()
            .contains("security.path_denied")
    );
    assert!(
        !tool_msgs[1]["content"]
            .as_str()
            .unwrap()
            .contains(s.home.path.to_str().unwrap()),
        "no host paths"
    );

    let traces = s.gw.get("/v1/traces", Some(TOKEN)).json();
    let trace = &traces["traces"][0];
    assert_eq!(trace["status"], "ok");
    let id = trace["id"].as_str().unwrap();
    let t = s.gw.get(&format!("/v1/traces/{id}"), Some(TOKEN)).json();
    let kinds: Vec<(&str, &str)> = t["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["kind"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| k.0 == "llm").count(),
        2,
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("tool", "ok")) && kinds.contains(&("tool", "denied")),
        "{kinds:?}"
    );
    assert_eq!(s.gw.get("/v1/traces/nope", Some(TOKEN)).status, 404);
}

#[test]
fn models_and_agents_api() {
    let s = setup();
    let models = s.gw.get("/v1/models", Some(TOKEN)).json();
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], "default");
    let r = request(
        s.gw.addr,
        "POST",
        "/v1/agents",
        Some(TOKEN),
        Some(r#"{"id": "writer", "display_name": "Writer", "config": {"model": "gpt-4o"}}"#),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        request(
            s.gw.addr,
            "POST",
            "/v1/agents",
            Some(TOKEN),
            Some(r#"{"id": "writer"}"#)
        )
        .status,
        409
    );
    assert_eq!(
        request(
            s.gw.addr,
            "POST",
            "/v1/agents",
            Some(TOKEN),
            Some(r#"{"id": "Bad Id"}"#)
        )
        .status,
        400
    );
    // Settings are checked as the runtime reads them, the field named.
    for (config, field) in [
        (r#"{"max_iterations": 0}"#, "config.max_iterations"),
        (r#"{"max_iteratons": 5}"#, "config.max_iteratons"),
        (r#"{"tools": {"deny": [1]}}"#, "config.tools.deny[0]"),
        (r#"[1]"#, "config."),
    ] {
        let r = request(
            s.gw.addr,
            "PATCH",
            "/v1/agents/writer",
            Some(TOKEN),
            Some(&format!(r#"{{"config": {config}}}"#)),
        );
        assert_eq!(r.status, 400, "{config}: {}", r.body);
        assert_eq!(r.json()["error"]["code"], "request.invalid");
        let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.starts_with(field), "{config}: {message}");
    }
    let r = request(
        s.gw.addr,
        "PATCH",
        "/v1/agents/writer",
        Some(TOKEN),
        Some(r#"{"display_name": "Pen"}"#),
    );
    assert_eq!(r.json()["display_name"], "Pen");
    assert_eq!(
        r.json()["config"]["model"],
        "gpt-4o",
        "a refused change changes nothing"
    );
    s.fake.push(Reply::text("written"));
    assert_eq!(chat(&s.gw, ask("writer", "write")).status, 200);
    assert_eq!(
        s.fake.last_request().unwrap().body["model"],
        "gpt-4o",
        "the agent's model is used"
    );
    let r = chat(&s.gw, ask("nobody", "hi"));
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], "model_not_found");
    assert_eq!(
        request(s.gw.addr, "DELETE", "/v1/agents/writer", Some(TOKEN), None).status,
        204
    );
    assert_eq!(s.gw.get("/v1/agents/writer", Some(TOKEN)).status, 404);
    // every change is audited
    let audit = s.gw.get("/v1/audit?action=agent.", Some(TOKEN)).json();
    let seen: Vec<(&str, &Value)> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), &e["agent"]))
        .collect();
    assert_eq!(
        seen,
        [
            ("agent.delete", &json!("writer")),
            ("agent.update", &json!("writer")),
            ("agent.create", &json!("writer")),
        ],
        "{audit}"
    );
    assert_eq!(
        audit["events"][1]["detail"]["changed"],
        json!(["display_name"])
    );
}

#[test]
fn tool_invoke_uses_the_same_policy_path_with_and_without_dry_run() {
    let s = setup_with(
        r#"{"agents": {"defaults": {"tools": {"deny": ["list_files"]}}}}"#,
        &[],
    );
    let invoke = |body: Value| {
        request(
            s.gw.addr,
            "POST",
            "/v1/tools/invoke",
            Some(TOKEN),
            Some(&body.to_string()),
        )
    };
    let r = invoke(json!({"tool": "write_file", "args": {"path": "a.txt", "content": "x"}}));
    assert_eq!(
        (r.status, r.json()["ok"].clone()),
        (200, json!(true)),
        "{}",
        r.body
    );
    let r = invoke(json!({"tool": "read_file", "args": {"path": "a.txt"}}));
    assert_eq!(r.json()["output"], "x\n");
    let r = invoke(
        json!({"tool": "write_file", "args": {"path": "b.txt", "content": "y"}, "dry_run": true}),
    );
    assert_eq!(r.json(), json!({"ok": true, "decision": "allow"}));
    assert!(
        !s.home.path.join("workspace/default/owner/b.txt").exists(),
        "dry run executes nothing"
    );
    for dry in [false, true] {
        let r =
            invoke(json!({"tool": "read_file", "args": {"path": "/etc/passwd"}, "dry_run": dry}));
        assert_eq!(r.status, 403);
        assert_eq!(r.json()["error"]["code"], "security.path_denied");
        let r = invoke(json!({"tool": "read_file", "args": {}, "dry_run": dry}));
        assert_eq!(r.status, 400);
        assert_eq!(r.json()["error"]["code"], "tool.invalid_args");
        assert!(
            r.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("path")
        );
        let r = invoke(json!({"tool": "nope", "dry_run": dry}));
        assert_eq!(r.json()["error"]["code"], "tool.not_found");
        let r = invoke(json!({"tool": "list_files", "dry_run": dry}));
        assert_eq!(r.json()["error"]["code"], "security.tool_denied");
    }
    let r = invoke(json!({"tool": "read_file", "args": {"path": "a.txt"}, "agent": "ghost"}));
    assert_eq!(r.status, 404);
}

#[test]
fn storms_retry_then_fall_back_then_fail_clearly() {
    let (backup, backup_url) = FakeProvider::start_in_thread().unwrap();
    let config = json!({
        "providers": {"backup": {"base_url": backup_url}},
        "models": {"aliases": {"smart": [
            {"provider": "openai", "model": "gpt-4o"},
            {"provider": "backup", "model": "local-model"}
        ]}},
        "retry": {"max_attempts": 2, "base_delay_ms": 10, "max_delay_ms": 50},
        "agents": {"defaults": {"model": "smart"}}
    });
    let s = setup_with(&config.to_string(), &[]);
    s.fake
        .push_all([Reply::status(429).retry_after(0), Reply::status(503)]);
    backup.push(Reply::text("from the backup"));
    let r = chat(&s.gw, ask("default", "hello"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "from the backup"
    );
    assert_eq!(
        s.fake.requests().len(),
        2,
        "retried once on the first route"
    );
    assert_eq!(backup.last_request().unwrap().body["model"], "local-model");

    s.fake.push_all([Reply::status(500), Reply::status(500)]);
    backup.push_all([Reply::status(502), Reply::status(502)]);
    let r = chat(&s.gw, ask("default", "again"));
    assert_eq!(r.status, 502, "{}", r.body);
    let msg = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        msg.contains("openai") && msg.contains("backup"),
        "names what was tried: {msg}"
    );
}

#[test]
fn malformed_sse_and_stalls_end_with_an_error_not_a_hang() {
    let s = setup_with(
        r#"{"providers": {"openai": {"stall_timeout_sec": 1}}, "retry": {"max_attempts": 1}}"#,
        &[],
    );
    s.fake.push(Reply::text("abc def ghi").malformed_after(1));
    let t = Instant::now();
    let r = chat(&s.gw, ask("default", "x"));
    assert_eq!(r.status, 502, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "provider.malformed");
    // Stalls after the first text delta (the role chunk counts as an event).
    s.fake
        .push(Reply::text("abc def ghi").stall_after(2, Duration::from_secs(30)));
    let r = chat(&s.gw, ask("default", "y"));
    assert_eq!(r.status, 504, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "provider.stalled");
    assert!(t.elapsed() < Duration::from_secs(15));
    // The partial answer is persisted and marked.
    let sessions = s.gw.get("/v1/sessions", Some(TOKEN)).json();
    let id = sessions["sessions"][0]["id"].as_str().unwrap().to_owned();
    let m =
        s.gw.get(&format!("/v1/sessions/{id}/messages"), Some(TOKEN))
            .json();
    let last = m["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["meta"]["partial"], true);
    assert_eq!(last["meta"]["error_code"], "provider.stalled");
}

#[test]
fn budgets_refuse_before_the_call() {
    let config = json!({
        // The first call reserves its worst case (about $6: its input and
        // 4,096 output tokens at $1,000 per million) and spends $200.
        "budgets": {"models": {"*": {"daily_usd": 50}}},
        "models": {"pricing": {"gpt-4o-mini": {"input_usd_per_mtok": 1000.0, "output_usd_per_mtok": 1000.0}}},
        "agents": {"defaults": {"model": "gpt-4o-mini"}}
    });
    let s = setup_with(&config.to_string(), &[]);
    s.fake.push(Reply::text("paid answer").usage(Usage {
        input_tokens: 100_000,
        output_tokens: 100_000,
        ..Usage::default()
    }));
    assert_eq!(chat(&s.gw, ask("default", "first")).status, 200);
    let before = s.fake.requests().len();
    let r = chat(&s.gw, ask("default", "second"));
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "budget.exceeded");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("daily")
    );
    assert_eq!(
        s.fake.requests().len(),
        before,
        "the provider was not called"
    );
    let traces = s.gw.get("/v1/traces", Some(TOKEN)).json();
    assert!(
        traces["traces"][1]["cost_micros"].as_i64().unwrap() > 0,
        "the first call was priced"
    );
}

#[test]
fn a_client_disconnect_mid_stream_lets_the_run_finish_and_persist() {
    let s = setup();
    s.fake.push(
        Reply::text("a long answer that keeps going on")
            .deltas(6)
            .delay(Duration::from_millis(300)),
    );
    let mut conn = TcpStream::connect(s.gw.addr).unwrap();
    let body = json!({"model": "default", "stream": true, "user": "carol", "messages": [{"role": "user", "content": "talk"}]}).to_string();
    write!(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.contains("200"), "{line}");
    drop(reader);
    conn.shutdown(std::net::Shutdown::Both).unwrap();
    // The run goes on: the whole answer lands in the session.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let sessions = s.gw.get("/v1/sessions", Some(TOKEN)).json();
        if let Some(id) = sessions["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["peer"] == "carol")
            .and_then(|x| x["id"].as_str())
        {
            let m =
                s.gw.get(&format!("/v1/sessions/{id}/messages"), Some(TOKEN))
                    .json();
            let done = m["messages"].as_array().unwrap().iter().any(|x| {
                x["role"] == "assistant" && x["content"].to_string().contains("keeps going on")
            });
            if done {
                break;
            }
        }
        assert!(Instant::now() < deadline, "the answer was not persisted");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn cancel_on_disconnect_persists_a_marked_partial_answer() {
    let s = setup_with(r#"{"gateway": {"cancel_on_disconnect": true}}"#, &[]);
    s.fake.push(
        Reply::text("first part and then a stall")
            .deltas(4)
            .stall_after(2, Duration::from_secs(30)),
    );
    let mut conn = TcpStream::connect(s.gw.addr).unwrap();
    let body = json!({"model": "default", "stream": true, "user": "dave", "messages": [{"role": "user", "content": "talk"}]}).to_string();
    write!(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut seen = String::new();
    while !seen.contains("first") {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        seen.push_str(&line);
    }
    drop(reader);
    conn.shutdown(std::net::Shutdown::Both).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let traces = s.gw.get("/v1/traces", Some(TOKEN)).json();
        if traces["traces"][0]["status"] == "cancelled" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the run was not cancelled: {traces}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let sessions = s.gw.get("/v1/sessions", Some(TOKEN)).json();
    let id = sessions["sessions"][0]["id"].as_str().unwrap().to_owned();
    let m =
        s.gw.get(&format!("/v1/sessions/{id}/messages"), Some(TOKEN))
            .json();
    let last = m["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["meta"]["partial"], true);
    assert_eq!(last["meta"]["reason"], "cancelled");
}

#[test]
fn anthropic_wire_end_to_end() {
    let (fake, base) = FakeProvider::start_in_thread().unwrap();
    let home = TestHome::new();
    let gw = Gateway::start(
        &home.path,
        &[
            ("EXOCLAW_GATEWAY_TOKEN", TOKEN),
            ("EXOCLAW_ANTHROPIC_API_KEY", "sk-ant-test-0123456789"),
            ("EXOCLAW_ANTHROPIC_BASE_URL", &base),
        ],
    );
    fake.push(
        Reply::text("Bonjour")
            .stop(StopReason::EndTurn)
            .pings()
            .chunked(&[1, 3, 7]),
    );
    let r = chat(&gw, ask("default", "salut"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["choices"][0]["message"]["content"], "Bonjour");
    let req = fake.last_request().unwrap();
    assert_eq!(req.wire, WireFormat::Anthropic);
    assert_eq!(req.headers["x-api-key"], "***");
    assert_eq!(req.body["system"][0]["cache_control"]["type"], "ephemeral");
}

#[test]
fn a_provider_key_stored_in_the_vault_works_at_once_and_after_restart() {
    let (fake, base) = FakeProvider::start_in_thread().unwrap();
    fake.require_api_key(Some("sk-stored-in-the-vault-0123"));
    let home = TestHome::new();
    let env = [
        ("EXOCLAW_GATEWAY_TOKEN", TOKEN),
        ("EXOCLAW_OPENAI_BASE_URL", base.as_str()),
    ];
    let mut gw = Gateway::start(&home.path, &env);
    let r = chat(&gw, ask("default", "hi"));
    assert_eq!(r.status, 503, "no provider yet: {}", r.body);
    assert_eq!(r.json()["error"]["code"], "provider.not_configured");
    let put = request(
        gw.addr,
        "PUT",
        "/v1/secrets/api_key",
        Some(TOKEN),
        Some(r#"{"owner": "provider:openai", "value": "sk-stored-in-the-vault-0123"}"#),
    );
    assert_eq!(put.status, 204);
    fake.push(Reply::text("keyed"));
    let r = chat(&gw, ask("default", "hi"));
    assert_eq!(r.status, 200, "{}", r.body);
    gw.signal("TERM");
    gw.wait_exit(Duration::from_secs(10));
    let gw = Gateway::start(&home.path, &env);
    fake.push(Reply::text("still keyed"));
    let r = chat(&gw, ask("default", "again"));
    assert_eq!(r.json()["choices"][0]["message"]["content"], "still keyed");
    assert!(
        !gw.log_lines().join("\n").contains("sk-stored-in-the-vault"),
        "the key never reaches a log"
    );
}

#[test]
fn a_turns_trace_and_usage_are_stored_after_sigterm_right_after_the_response() {
    let config = json!({
        "models": {"pricing": {"gpt-4o-mini": {"input_usd_per_mtok": 1.0, "output_usd_per_mtok": 2.0}}},
        "agents": {"defaults": {"model": "gpt-4o-mini"}}
    });
    let mut s = setup_with(&config.to_string(), &[]);
    s.fake.push(Reply::text("last words").usage(Usage {
        input_tokens: 1000,
        output_tokens: 500,
        ..Usage::default()
    }));
    let r = chat(&s.gw, ask("default", "before the end"));
    assert_eq!(r.status, 200, "{}", r.body);
    // No read in between (a trace read would flush the queue): the rows
    // may still be queued when the signal arrives.
    s.gw.signal("TERM");
    assert_eq!(s.gw.wait_exit(Duration::from_secs(10)).code(), Some(0));

    let (traces, spend) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            use exoclaw_core::store::{TraceStore as _, UsageStore as _};
            let store = exoclaw_store::SqliteStore::open(exoclaw_store::SqliteOptions::new(
                s.home.file("exoclaw.db"),
            ))
            .await
            .unwrap();
            let tenant = exoclaw_core::TenantId::new("default");
            let traces = store
                .list_traces(&tenant, &exoclaw_core::trace::TraceFilter::default())
                .await
                .unwrap();
            let mut full = Vec::new();
            for t in traces {
                full.push(store.get_trace(&tenant, &t.id).await.unwrap().unwrap());
            }
            let spend = store
                .spend_since(
                    &tenant,
                    &exoclaw_core::trace::SpendScope::Model("gpt-4o-mini".to_owned()),
                    0,
                )
                .await
                .unwrap();
            store.close().await;
            (full, spend)
        });
    assert_eq!(traces.len(), 1, "{traces:?}");
    let (trace, spans) = &traces[0];
    assert_eq!(trace.status, "ok", "the end of the trace is stored");
    assert_eq!(trace.usage.input_tokens, 1000);
    assert_eq!(trace.cost_micros, 2000);
    assert_eq!(spans.len(), 1, "the LLM span is stored");
    assert_eq!(spend, 2000, "the usage ledger has the call");
}

/// Listings say whether more exist and how to get them: messages page with
/// `after`/`next_after`, traces with `cursor`/`next_cursor`.
#[test]
fn message_and_trace_listings_page_with_cursors() {
    let s = setup();
    for i in 0..3 {
        s.fake.push(Reply::text(format!("answer {i}")));
        assert_eq!(chat(&s.gw, ask("default", &format!("q{i}"))).status, 200);
    }
    let sessions = s.gw.get("/v1/sessions", Some(TOKEN)).json();
    let id = sessions["sessions"][0]["id"].as_str().unwrap().to_owned();
    let mut seqs = Vec::new();
    let mut after = 0;
    loop {
        let page =
            s.gw.get(
                &format!("/v1/sessions/{id}/messages?after={after}&limit=4"),
                Some(TOKEN),
            )
            .json();
        let messages = page["messages"].as_array().unwrap();
        seqs.extend(messages.iter().map(|m| m["seq"].as_i64().unwrap()));
        match page["next_after"].as_i64() {
            Some(next) => {
                assert_eq!(messages.len(), 4, "only a full page has a next one");
                after = next;
            }
            None => break,
        }
    }
    assert_eq!(
        seqs,
        (1..=6).collect::<Vec<i64>>(),
        "every message once, in order"
    );

    let mut ids = Vec::new();
    let mut path = "/v1/traces?limit=2".to_owned();
    loop {
        let page = s.gw.get(&path, Some(TOKEN)).json();
        ids.extend(
            page["traces"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/traces?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(ids.len(), 3, "{ids:?}");
    let r = s.gw.get("/v1/traces?cursor=nonsense", Some(TOKEN));
    assert_eq!(r.status, 400, "{}", r.body);
}
