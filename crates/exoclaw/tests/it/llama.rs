//! A real small model: SmolLM2-135M-Instruct served by llama-cpp-python's
//! OpenAI-compatible server on loopback, driven through the real binary.
//! `cargo xtask test` provides the server (in the project virtualenv,
//! `EXOCLAW_TEST_PYTHON`) and the weights (`EXOCLAW_TEST_LLAMA_MODEL`);
//! without them the test skips, unless `REQUIRE_LLAMA=1`.
//!
//! It asserts on the mechanics, never on the tiny model's wording: a plain
//! and a streamed chat answer; a tool turn (the server refuses streamed
//! tool use, the gateway falls back to an unstreamed call) produces a
//! `read_file` span and the file's text reaches the model; usage is
//! recorded as estimated where the server reports none; a token budget
//! refuses the next call once spent.

use crate::support::*;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The interpreter and the weights, or `None` (skip).
#[expect(
    clippy::disallowed_methods,
    reason = "tests read the harness's variables"
)]
fn provided() -> Option<(String, String)> {
    let python = std::env::var("EXOCLAW_TEST_PYTHON").ok();
    let model = std::env::var("EXOCLAW_TEST_LLAMA_MODEL").ok();
    match (python, model) {
        (Some(p), Some(m)) => Some((p, m)),
        _ => {
            assert!(
                std::env::var("REQUIRE_LLAMA").as_deref() != Ok("1"),
                "REQUIRE_LLAMA=1 but EXOCLAW_TEST_PYTHON or EXOCLAW_TEST_LLAMA_MODEL is unset: run `cargo xtask test`"
            );
            eprintln!(
                "skipping: EXOCLAW_TEST_LLAMA_MODEL not set (run `cargo xtask test`, which installs llama-cpp-python and the model)"
            );
            None
        }
    }
}

/// llama-cpp-python's server, stopped on drop.
struct LlamaServer {
    child: Child,
    base: String,
}

impl LlamaServer {
    fn start(python: &str, model: &str) -> Self {
        let (listener, port) = occupied_port();
        drop(listener);
        let log = tempfile::NamedTempFile::new().unwrap();
        // `--n_batch 1`: llama.cpp's batched CPU kernels as built here crash
        // on some CPUs (AVX-512/AMX); one token at a time is fast enough for
        // a 135M model. `chatml-function-calling` is the chat format that
        // supports tools (and refuses them when streamed).
        let child = Command::new(python)
            .args(["-m", "llama_cpp.server", "--model", model])
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--chat_format", "chatml-function-calling"])
            .args(["--n_ctx", "8192", "--n_batch", "1", "--seed", "7"])
            .args(["--verbose", "false"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .expect("start llama-cpp-python's server");
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}/v1"),
        };
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let started = Instant::now();
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(addr) {
                use std::io::Write as _;
                let _ = write!(
                    s,
                    "GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                );
                let r = read_response(&mut s);
                if r.status == 200 {
                    break;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "llama-cpp-python's server did not come up: {}",
                std::fs::read_to_string(log.path()).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        server
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chat(gw: &Gateway, agent: &str, user: &str, text: &str, stream: bool) -> Response {
    let mut body = json!({"model": agent, "stream": stream, "user": user,
                          "messages": [{"role": "user", "content": text}]});
    if stream {
        body["stream_options"] = json!({"include_usage": true});
    }
    // A real model on a shared CPU: minutes, not the harness's 10 s.
    let body = body.to_string();
    let mut s = std::net::TcpStream::connect(gw.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(600))).unwrap();
    use std::io::Write as _;
    write!(
        s,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    read_response(&mut s)
}

fn newest_trace(gw: &Gateway) -> Value {
    let traces = gw.get("/v1/traces", Some(TOKEN)).json();
    let id = traces["traces"][0]["id"].as_str().unwrap().to_owned();
    gw.get(&format!("/v1/traces/{id}"), Some(TOKEN)).json()
}

#[test]
fn a_real_small_model_through_llama_cpp_python() {
    let Some((python, model)) = provided() else {
        return;
    };
    let server = LlamaServer::start(&python, &model);
    let home = TestHome::new();
    let cfg = tempfile::tempdir().unwrap();
    let cfg_path = cfg.path().join("config.json");
    let config = json!({
        "gateway": {"rate_limit_rpm": 0},
        // uvicorn closes idle keep-alive connections after 5 s: a call that
        // races it is retried, as in production.
        "retry": {"max_attempts": 2},
        "providers": {"llama": {"base_url": server.base, "timeout_sec": 300, "stall_timeout_sec": 300}},
        "agents": {"defaults": {"provider": "llama", "model": "smollm2", "max_tokens": 32, "max_iterations": 3}}
    });
    std::fs::write(&cfg_path, config.to_string()).unwrap();
    let cfg_str = cfg_path.to_str().unwrap().to_owned();
    let env = [
        ("EXOCLAW_GATEWAY_TOKEN", TOKEN),
        ("EXOCLAW_CONFIG", cfg_str.as_str()),
    ];
    let gw = Gateway::start(&home.path, &env);
    for (id, config) in [
        (
            "chat",
            // No tool is offered: the tiny model calls any tool it is
            // shown, whatever it is asked.
            json!({"system_prompt": "You are a friendly assistant. Answer in one short sentence.", "tools": {"deny": ["*"]}}),
        ),
        (
            "reader",
            json!({"system_prompt": "You read files for the user. Always call read_file with the path the user names.", "tools": {"allow": ["read_file"]}}),
        ),
    ] {
        let r = request(
            gw.addr,
            "POST",
            "/v1/agents",
            Some(TOKEN),
            Some(&json!({"id": id, "config": config}).to_string()),
        );
        assert!(
            r.status == 201 || r.status == 200,
            "{} {}",
            r.status,
            r.body
        );
    }

    // A plain chat and a streamed one (the server sends no usage in streams:
    // the gateway's estimate, marked).
    let r = chat(&gw, "chat", "alice", "Say hello.", false);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["object"], "chat.completion", "{}", r.body);
    let r = chat(&gw, "chat", "bob", "Say hello again.", true);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        !r.body.contains(r#"{"error""#),
        "{}\nmessages: {}",
        r.body,
        {
            let sessions = gw.get("/v1/sessions", Some(TOKEN)).json();
            let id = sessions["sessions"][0]["id"].as_str().unwrap().to_owned();
            gw.get(&format!("/v1/sessions/{id}/messages"), Some(TOKEN))
                .body
        }
    );
    assert!(r.body.contains("data: [DONE]"), "{}", r.body);
    assert!(r.body.contains(r#""estimated":true"#), "{}", r.body);
    let trace = newest_trace(&gw);
    let llm = trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "llm")
        .cloned()
        .unwrap();
    assert_eq!(llm["status"], "ok", "{llm}");
    assert_eq!(llm["attributes"]["usage_estimated"], true, "{llm}");
    assert!(llm["usage"]["input_tokens"].as_u64().unwrap() > 0, "{llm}");

    // A tool turn. The tiny model samples; a few fresh sessions at most.
    let file = home.path.join("workspace/reader/owner/notes.txt");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "The password of the day is heliotrope.").unwrap();
    let mut called = None;
    for attempt in 0..4 {
        let r = chat(
            &gw,
            "reader",
            &format!("carol-{attempt}"),
            "Read the file notes.txt",
            true,
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let trace = newest_trace(&gw);
        let spans = trace["spans"].as_array().unwrap().clone();
        if let Some(tool) = spans.iter().find(|s| s["kind"] == "tool") {
            called = Some((tool.clone(), spans.clone()));
            break;
        }
    }
    let (tool, spans) = called.expect("the model called a tool in one of four tries");
    assert_eq!(tool["name"], "read_file", "{tool}");
    // The result went back to the model: a second LLM call after the tool.
    let llm_calls = spans.iter().filter(|s| s["kind"] == "llm").count();
    assert!(llm_calls >= 2, "the model saw the tool result: {spans:?}");
    let logs = gw.log_lines().join("\n");
    assert!(
        logs.contains("compat: the server rejected a streamed tool turn"),
        "the fallback is logged: {logs}"
    );

    // Every call was counted (estimated where the server said nothing):
    // with a token budget of exactly what was spent, the next call is
    // refused before it is sent.
    let traces = gw.get("/v1/traces?limit=100", Some(TOKEN)).json();
    let spent: u64 = traces["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            t["usage"]["input_tokens"].as_u64().unwrap_or(0)
                + t["usage"]["output_tokens"].as_u64().unwrap_or(0)
        })
        .sum();
    assert!(spent > 0, "{traces}");
    drop(gw);
    let mut config = config;
    config["budgets"] = json!({"tenants": {"*": {"daily_tokens": spent}}});
    std::fs::write(&cfg_path, config.to_string()).unwrap();
    let gw = Gateway::start(&home.path, &env);
    let r = chat(&gw, "chat", "dave", "Hello?", false);
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "budget.exceeded", "{}", r.body);
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains(&format!("({spent} tokens used)")),
        "the ledger holds what the traces say: {message}"
    );
}
