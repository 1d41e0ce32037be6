//! Local OpenAI-compatible servers that report less, through the real
//! binary: the fake provider in its llama-cpp-python-like mode (no usage in
//! streams, streamed tool turns refused, invented tool-call ids, a legacy
//! `function_call` beside `tool_calls`), arguments that are not JSON, and a
//! server that is down, answers HTML, closes mid-stream or sends malformed
//! JSON.

use crate::chat::{chat, setup_with};
use crate::support::*;
use exoclaw_core::provider::ToolCall;
use exoclaw_providers::fake::Reply;
use serde_json::{Value, json};

fn ask(text: &str, stream: bool) -> Value {
    ask_agent("default", text, stream)
}

fn ask_agent(agent: &str, text: &str, stream: bool) -> Value {
    let mut body = json!({"model": agent, "stream": stream, "user": "alice",
                          "messages": [{"role": "user", "content": text}]});
    if stream {
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

/// The spans of the newest trace.
fn newest_spans(gw: &Gateway) -> (Value, Vec<Value>) {
    let traces = gw.get("/v1/traces", Some(TOKEN)).json();
    let id = traces["traces"][0]["id"].as_str().unwrap().to_owned();
    let t = gw.get(&format!("/v1/traces/{id}"), Some(TOKEN)).json();
    (t["trace"].clone(), t["spans"].as_array().unwrap().clone())
}

#[test]
fn a_llama_cpp_python_like_server_gets_estimated_usage_and_tool_turns_without_streaming() {
    let s = setup_with(r#"{"retry": {"max_attempts": 1}}"#, &[]);
    s.fake.llama_cpp_python_like();

    // A plain chat (an agent without tools): the server reports usage in
    // JSON answers only, the gateway streams, so the usage is its estimate.
    let r = request(
        s.gw.addr,
        "POST",
        "/v1/agents",
        Some(TOKEN),
        Some(&json!({"id": "plain", "config": {"tools": {"deny": ["*"]}}}).to_string()),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    s.fake.push(Reply::text("Hello from a small local model."));
    let r = chat(&s.gw, ask_agent("plain", "say hello", false));
    assert_eq!(r.status, 200, "{}", r.body);
    let usage = &r.json()["usage"];
    assert_eq!(usage["estimated"], true, "{usage}");
    assert!(usage["prompt_tokens"].as_u64().unwrap() > 0, "{usage}");
    assert!(usage["completion_tokens"].as_u64().unwrap() > 0, "{usage}");
    let (_, spans) = newest_spans(&s.gw);
    let llm = spans.iter().find(|s| s["kind"] == "llm").unwrap();
    assert_eq!(llm["attributes"]["usage_estimated"], true, "{llm}");
    assert!(llm["usage"]["output_tokens"].as_u64().unwrap() > 0, "{llm}");

    // Streamed to the client: the last chunk's usage says estimated too.
    s.fake
        .push(Reply::text("streamed words from the model").deltas(3));
    let r = chat(&s.gw, ask_agent("plain", "stream please", true));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("the model"), "{}", r.body);
    assert!(r.body.contains(r#""estimated":true"#), "{}", r.body);

    // A tool turn: the streamed call with tool_choice "auto" gets an empty
    // body; the gateway sends it again without streaming, remembers, and
    // the model's call (with an invented id and a legacy function_call
    // beside it) runs; its result reaches the model.
    let file = s.home.path.join("workspace/default/owner/notes.txt");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "the secret word is heliotrope").unwrap();
    s.fake.push(Reply::tool_calls([ToolCall {
        id: "ignored".into(),
        name: "read_file".into(),
        arguments: json!({"path": "notes.txt"}),
    }]));
    s.fake.push(Reply::text("The word is heliotrope."));
    let before = s.fake.requests().len();
    let r = chat(&s.gw, ask("what does notes.txt say?", true));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("heliotrope"), "{}", r.body);
    let requests = s.fake.requests()[before..].to_vec();
    let shape: Vec<(bool, Option<&str>)> = requests
        .iter()
        .map(|r| (r.body["stream"] == true, r.body["tool_choice"].as_str()))
        .collect();
    assert_eq!(
        shape,
        [
            (true, Some("auto")),
            (false, Some("auto")),
            (false, Some("auto"))
        ],
        "streamed once, then unstreamed (remembered)"
    );
    let last = requests.last().unwrap();
    let tool_msg = last.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .cloned()
        .unwrap();
    assert!(
        tool_msg["tool_call_id"]
            .as_str()
            .unwrap()
            .starts_with("call__0_read_file_cmpl-"),
        "{tool_msg}"
    );
    assert!(
        tool_msg["content"].as_str().unwrap().contains("heliotrope"),
        "{tool_msg}"
    );
    let (_, spans) = newest_spans(&s.gw);
    assert!(
        spans
            .iter()
            .any(|s| s["kind"] == "tool" && s["name"] == "read_file" && s["status"] == "ok"),
        "{spans:?}"
    );
    let logs = s.gw.log_lines().join("\n");
    assert!(
        logs.contains("compat: the server rejected a streamed tool turn"),
        "one clear log line: {logs}"
    );

    // Arguments that are not JSON: a tool error back to the model, not a
    // failed turn.
    s.fake.push(Reply::tool_calls([ToolCall {
        id: "x".into(),
        name: "read_file".into(),
        arguments: Value::String("{\"path\": notes.txt".into()),
    }]));
    s.fake.push(Reply::text("I could not read it."));
    let r = chat(&s.gw, ask("read it again", false));
    assert_eq!(r.status, 200, "{}", r.body);
    let last = s.fake.last_request().unwrap();
    let tool_msg = last.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|m| m["role"] == "tool")
        .cloned()
        .unwrap();
    assert!(
        tool_msg["content"]
            .as_str()
            .unwrap()
            .contains("tool.invalid_args"),
        "{tool_msg}"
    );

    // /metrics tells estimated tokens apart.
    let metrics = s.gw.get("/metrics", Some(TOKEN));
    assert!(
        metrics.body.contains("llm_tokens_estimated"),
        "{}",
        metrics.body
    );
}

#[test]
fn a_local_server_that_fails_gives_a_provider_error_and_a_failed_span() {
    let s = setup_with(
        r#"{"retry": {"max_attempts": 1}, "providers": {"openai": {"stall_timeout_sec": 2}}}"#,
        &[],
    );
    let cases = [
        (
            "html",
            Reply::status(200).error_body("<html><body>It works!</body></html>"),
            "provider.malformed",
        ),
        (
            "malformed json",
            Reply::text("abc def ghi").malformed_after(1),
            "provider.malformed",
        ),
        (
            "closed mid-stream",
            Reply::text("abc def ghi").deltas(3).cut_after(2),
            "provider.unavailable",
        ),
    ];
    for (what, reply, code) in cases {
        s.fake.push(reply);
        let r = chat(&s.gw, ask(what, false));
        assert!(r.status >= 500, "{what}: {} {}", r.status, r.body);
        assert_eq!(r.json()["error"]["code"], code, "{what}: {}", r.body);
        let (trace, spans) = newest_spans(&s.gw);
        assert_eq!(trace["status"], "error", "{what}: {trace}");
        let llm = spans.iter().find(|s| s["kind"] == "llm").unwrap();
        assert_eq!(llm["status"], "error", "{what}: {llm}");
        assert_eq!(llm["attributes"]["error_code"], code, "{what}: {llm}");
    }
}

#[test]
fn a_local_server_that_is_down_is_a_provider_error_not_a_hang() {
    let (listener, port) = occupied_port();
    drop(listener);
    let base = format!("http://127.0.0.1:{port}/v1");
    let config = json!({
        "retry": {"max_attempts": 1},
        "providers": {"local": {"base_url": base}},
        "agents": {"defaults": {"provider": "local", "model": "smollm2"}}
    });
    let s = setup_with(&config.to_string(), &[]);
    let r = chat(&s.gw, ask("anyone there?", false));
    assert_eq!(r.status, 502, "{}", r.body);
    assert_eq!(
        r.json()["error"]["code"],
        "provider.unavailable",
        "{}",
        r.body
    );
    let (trace, _) = newest_spans(&s.gw);
    assert_eq!(trace["status"], "error", "{trace}");
}
