//! A gateway killed mid-turn (`kill -9` while the model was answering, or
//! while a tool ran): on restart the run is `interrupted` in its trace, the
//! session says so (an `interrupted` result for each unanswered tool call,
//! then a marked note), and the next turn's model sees it.

use crate::support::*;
use exoclaw_core::provider::ToolCall;
use exoclaw_providers::fake::{FakeProvider, Reply};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn env(base: &str) -> Vec<(&'static str, String)> {
    vec![
        ("EXOCLAW_GATEWAY_TOKEN", TOKEN.to_owned()),
        (
            "EXOCLAW_OPENAI_API_KEY",
            "sk-test-fake-key-0123456789".to_owned(),
        ),
        ("EXOCLAW_OPENAI_BASE_URL", base.to_owned()),
    ]
}

fn start(home: &TestHome, env: &[(&'static str, String)]) -> Gateway {
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Gateway::start(&home.path, &pairs)
}

/// Start a streamed completion on another thread (it never finishes: the
/// gateway is killed under it).
fn chat_in_background(gw: &Gateway, text: &str) {
    let addr = gw.addr;
    let body = json!({"model": "default", "user": "alice", "stream": true,
                      "messages": [{"role": "user", "content": text}]})
    .to_string();
    std::thread::spawn(move || {
        let _ = request(
            addr,
            "POST",
            "/v1/chat/completions",
            Some(TOKEN),
            Some(&body),
        );
    });
}

fn until(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn messages(gw: &Gateway) -> (String, Vec<Value>) {
    let sessions = gw.get("/v1/sessions", Some(TOKEN)).json();
    let id = sessions["sessions"][0]["id"].as_str().unwrap().to_owned();
    let m = gw
        .get(&format!("/v1/sessions/{id}/messages"), Some(TOKEN))
        .json();
    (id, m["messages"].as_array().unwrap().clone())
}

#[test]
fn a_turn_killed_mid_answer_is_marked_interrupted_after_restart() {
    let (fake, base) = FakeProvider::start_in_thread().unwrap();
    let home = TestHome::new();
    let env = env(&base);
    let mut gw = start(&home, &env);
    fake.push(
        Reply::text("half an answer and then")
            .deltas(4)
            .stall_after(2, Duration::from_secs(60)),
    );
    chat_in_background(&gw, "tell me a long story");
    until("the model is answering", || !fake.requests().is_empty());
    let traces = gw.get("/v1/traces", Some(TOKEN)).json();
    assert_eq!(traces["traces"][0]["status"], "running", "{traces}");
    gw.signal("KILL");
    gw.wait_exit(Duration::from_secs(10));

    let gw = start(&home, &env);
    let (_, msgs) = messages(&gw);
    let last = msgs.last().unwrap();
    assert_eq!(last["role"], "assistant", "{msgs:?}");
    assert_eq!(last["meta"]["reason"], "interrupted");
    assert_eq!(last["meta"]["partial"], true);
    assert!(last.to_string().contains("interrupted"), "{last}");
    let traces = gw.get("/v1/traces", Some(TOKEN)).json();
    assert_eq!(traces["traces"][0]["status"], "interrupted", "{traces}");
    // The next turn sees what happened.
    fake.push(Reply::text("Sorry, let me start again."));
    let r = request(
        gw.addr,
        "POST",
        "/v1/chat/completions",
        Some(TOKEN),
        Some(
            &json!({"model": "default", "user": "alice",
                     "messages": [{"role": "user", "content": "go on"}]})
            .to_string(),
        ),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = fake.last_request().unwrap().body["messages"].to_string();
    assert!(seen.contains("This answer was interrupted"), "{seen}");
}

#[test]
fn a_turn_killed_during_a_tool_call_gets_its_results_and_the_next_turn_works() {
    let (fake, base) = FakeProvider::start_in_thread().unwrap();
    let home = TestHome::new();
    let env = env(&base);
    let mut gw = start(&home, &env);
    fake.push(Reply::tool_calls([ToolCall {
        id: "t1".into(),
        name: "exec".into(),
        arguments: json!({"command": "sleep 30"}),
    }]));
    chat_in_background(&gw, "run the long job");
    // The model is asked first: only then poll the API, whose per-minute
    // limit a busy poll would use up before the turn is stored.
    until("the model is asked", || !fake.requests().is_empty());
    until("the tool call is stored", || {
        std::thread::sleep(Duration::from_millis(100));
        let s = gw.get("/v1/sessions", Some(TOKEN)).json();
        s["sessions"].as_array().is_some_and(|a| !a.is_empty())
            && messages(&gw).1.iter().any(|m| m["role"] == "assistant")
    });
    // Reading the traces waits for the queued trace rows: the run's is in
    // the store before the kill.
    let traces = gw.get("/v1/traces", Some(TOKEN)).json();
    assert_eq!(traces["traces"][0]["status"], "running", "{traces}");
    gw.signal("KILL");
    gw.wait_exit(Duration::from_secs(10));

    let gw = start(&home, &env);
    let (_, msgs) = messages(&gw);
    let roles: Vec<&str> = msgs.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(
        roles,
        ["user", "assistant", "tool", "assistant"],
        "{msgs:?}"
    );
    assert!(msgs[2].to_string().contains("interrupted"), "{}", msgs[2]);
    assert_eq!(msgs[3]["meta"]["reason"], "interrupted");
    // The provider accepts the history: every tool call has its result.
    fake.push(Reply::text("The job was cut short; shall I run it again?"));
    let r = request(
        gw.addr,
        "POST",
        "/v1/chat/completions",
        Some(TOKEN),
        Some(
            &json!({"model": "default", "user": "alice",
                     "messages": [{"role": "user", "content": "what happened?"}]})
            .to_string(),
        ),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let sent = &fake.last_request().unwrap().body["messages"];
    let tool = sent
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .unwrap();
    assert_eq!(tool["tool_call_id"], "t1");
}
