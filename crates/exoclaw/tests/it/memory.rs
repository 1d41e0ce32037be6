//! Long-term memory against the real binary and the fake provider, on
//! SQLite and PostgreSQL: an agent saves a fact with `memory_save` in one
//! session and finds it with `memory_search` in a later session; a secret
//! in a memory is scrubbed before it is stored; `memory_get` and
//! `memory_forget`; automatic recall puts the memory into the system
//! prompt; oversized memories are refused with the limit named and write
//! nothing; `/v1/memory` and `exoclaw memory list|search|forget|status`.

use crate::postgres::fresh_database;
use crate::support::*;
use exoclaw_core::provider::ToolCall;
use exoclaw_providers::fake::{FakeProvider, Reply};
use serde_json::{Value, json};

struct Bench {
    fake: FakeProvider,
    gw: Gateway,
    home: TestHome,
    env: Vec<(String, String)>,
    _cfg: tempfile::TempDir,
}

fn bench(dsn: Option<&str>, config: Value) -> Bench {
    let (fake, base) = FakeProvider::start_in_thread().unwrap();
    let home = TestHome::new();
    let cfg = tempfile::tempdir().unwrap();
    let path = cfg.path().join("config.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let env = fake_provider_env(base, &path, dsn);
    let pairs = env_pairs(&env);
    let gw = Gateway::start(&home.path, &pairs);
    let b = Bench {
        fake,
        gw,
        home,
        env,
        _cfg: cfg,
    };
    let r = b.send(
        "POST",
        "/v1/agents",
        Some(json!({"id": "helper", "config": {"model": "helper-m"}})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    b
}

impl Bench {
    fn send(&self, method: &str, path: &str, body: Option<Value>) -> Response {
        request(
            self.gw.addr,
            method,
            path,
            Some(TOKEN),
            body.map(|b| b.to_string()).as_deref(),
        )
    }

    /// One turn of `helper` in the session of `peer`; `script` is what its
    /// model answers (tool calls), then "ok".
    fn turn(&self, peer: &str, text: &str, script: Vec<Reply>) {
        for r in script {
            self.fake.push_for("helper-m", r);
        }
        self.fake.push_for("helper-m", Reply::text("ok"));
        let r = self.send(
            "POST",
            "/v1/chat/completions",
            Some(json!({"model": "helper", "user": peer, "messages": [{"role": "user", "content": text}]})),
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }

    fn requests(&self) -> Vec<Value> {
        self.fake
            .requests()
            .into_iter()
            .map(|r| r.body)
            .filter(|b| b["model"] == "helper-m")
            .collect()
    }

    /// The tool results of the last turn, in order.
    fn results(&self) -> Vec<String> {
        let last = self.requests().pop().unwrap();
        let messages = last["messages"].as_array().unwrap();
        let start = messages
            .iter()
            .rposition(|m| m["role"] == "user")
            .unwrap_or(0);
        messages[start..]
            .iter()
            .filter(|m| m["role"] == "tool")
            .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    fn memories(&self) -> Vec<Value> {
        let r = self.send("GET", "/v1/memory?agent=helper", None);
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["memories"].as_array().unwrap().clone()
    }

    fn cli(&self, args: &[&str]) -> std::process::Output {
        let env = env_pairs(&self.env);
        run(&self.home.path, &env, args)
    }
}

fn tool(name: &str, args: Value) -> Reply {
    Reply::tool_calls([ToolCall {
        id: "c1".into(),
        name: name.into(),
        arguments: args,
    }])
}

fn saved_in_one_session_found_in_a_later_one(dsn: Option<&str>) {
    let b = bench(dsn, json!({"gateway": {"rate_limit_rpm": 0}}));
    b.turn(
        "morning",
        "remember my cat",
        vec![tool(
            "memory_save",
            json!({"content": "The user's cat is called Miso and eats salmon; api key sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX0123", "importance": 7}),
        )],
    );
    let saved = &b.results()[0];
    assert!(saved.starts_with("Saved: ["), "{saved}");
    let stored = b.memories();
    assert_eq!(stored.len(), 1);
    let content = stored[0]["content"].as_str().unwrap();
    assert!(content.contains("Miso"), "{content}");
    assert!(
        !content.contains("ABCDEFGHIJKLMNOPQRSTUVWX0123"),
        "the secret is scrubbed before it is stored: {content}"
    );
    assert_eq!(stored[0]["importance"], 7);
    assert_eq!(stored[0]["shared"], false);
    let id = stored[0]["id"].as_str().unwrap().to_owned();

    // A later session, another conversation: the agent finds it.
    b.turn(
        "evening",
        "what is my cat's name?",
        vec![tool("memory_search", json!({"query": "cat name"}))],
    );
    let found = &b.results()[0];
    assert!(found.contains("Miso") && found.contains(&id), "{found}");
    assert!(found.contains("ranked by keywords only"), "{found}");
    // The second session's history holds nothing of the first.
    let last = b.requests().pop().unwrap();
    let users: Vec<&str> = last["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "user")
        .filter_map(|m| m["content"].as_str())
        .collect();
    assert_eq!(users, ["what is my cat's name?"]);

    b.turn(
        "evening",
        "details",
        vec![tool("memory_get", json!({"id": id}))],
    );
    assert!(b.results()[0].contains("Miso"));
    // Saving it again merges.
    b.turn(
        "evening",
        "again",
        vec![tool(
            "memory_save",
            json!({"content": "the user's cat is called Miso and eats salmon; api key sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX0123"}),
        )],
    );
    assert!(
        b.results()[0].starts_with("Updated an existing memory"),
        "{:?}",
        b.results()
    );
    assert_eq!(b.memories().len(), 1);
    b.turn(
        "evening",
        "forget it",
        vec![tool("memory_forget", json!({"id": id}))],
    );
    assert!(b.results()[0].contains("Forgot"), "{:?}", b.results());
    assert!(b.memories().is_empty());
    b.turn(
        "evening",
        "again",
        vec![tool("memory_get", json!({"id": id}))],
    );
    assert!(
        b.results()[0].contains("memory.not_found"),
        "{:?}",
        b.results()
    );
}

#[test]
fn saved_in_one_session_found_in_a_later_one_on_sqlite() {
    saved_in_one_session_found_in_a_later_one(None);
}

#[test]
fn saved_in_one_session_found_in_a_later_one_on_postgres() {
    let Some(dsn) = fresh_database() else { return };
    saved_in_one_session_found_in_a_later_one(Some(&dsn));
}

#[test]
fn oversized_memories_are_refused_with_the_limit_named_and_write_nothing() {
    let b = bench(None, json!({"gateway": {"rate_limit_rpm": 0}}));
    let big = "x ".repeat(3000);
    b.turn(
        "p",
        "remember this",
        vec![tool("memory_save", json!({"content": big}))],
    );
    let r = &b.results()[0];
    assert!(r.contains("tool.invalid_args") && r.contains("4096"), "{r}");
    assert!(b.memories().is_empty());
    let r = b.send(
        "POST",
        "/v1/memory",
        Some(json!({"agent": "helper", "content": big})),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "memory.invalid");
    assert!(r.body.contains("4096"), "{}", r.body);
    let r = b.send(
        "POST",
        "/v1/memory",
        Some(json!({"agent": "nobody", "content": "x"})),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(b.memories().is_empty());
}

#[test]
fn recall_puts_relevant_memories_into_the_prompt() {
    let b = bench(
        None,
        json!({"gateway": {"rate_limit_rpm": 0}, "memory": {"recall": {"enabled": true, "top_k": 3}}}),
    );
    let r = b.send(
        "POST",
        "/v1/memory",
        Some(json!({"agent": "helper", "content": "The user's favourite colour is teal", "shared": true, "importance": 6})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["memory"]["shared"], true);
    b.turn("p", "which colour do I like?", vec![]);
    let last = b.requests().pop().unwrap();
    let system = last["messages"][0]["content"].as_str().unwrap().to_owned();
    assert!(system.contains("What you remember"), "{system}");
    assert!(system.contains("favourite colour is teal"), "{system}");
    b.turn("p", "unrelated weather question", vec![]);
    let last = b.requests().pop().unwrap();
    let system = last["messages"][0]["content"].as_str().unwrap();
    assert!(!system.contains("What you remember"), "{system}");
}

#[test]
fn the_api_and_the_cli_list_search_forget_and_report() {
    let b = bench(None, json!({"gateway": {"rate_limit_rpm": 0}}));
    for text in [
        "the deploy runs on fridays",
        "the office dog is called Biscuit",
    ] {
        let r = b.send(
            "POST",
            "/v1/memory",
            Some(json!({"agent": "helper", "content": text})),
        );
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let r = b.send("GET", "/v1/memory?agent=helper&q=dog%20name", None);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(
        v["memories"][0]["content"],
        "the office dog is called Biscuit"
    );
    assert_eq!(v["full_text_only"], true);
    let r = b.send("GET", "/v1/memory?q=dog", None);
    assert_eq!(r.status, 400, "{}", r.body);
    let r = b.send("GET", "/v1/memory/status", None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["total"], 2);
    assert!(r.json()["embedder"].is_null());

    let out = b.cli(&["memory", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("ID"), "{text}");
    assert!(
        text.contains("Biscuit") && text.contains("fridays"),
        "{text}"
    );
    let out = b.cli(&["memory", "search", "deploy", "--agent", "helper", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["memories"][0]["content"], "the deploy runs on fridays");
    let id = v["memories"][0]["id"].as_str().unwrap().to_owned();
    let out = b.cli(&["memory", "status"]);
    assert!(stdout(&out).contains("full-text only"), "{}", stdout(&out));
    let out = b.cli(&["memory", "forget", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = b.cli(&["memory", "forget", &id]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("memory.not_found"),
        "{}",
        stderr(&out)
    );
    let r = b.send("DELETE", &format!("/v1/memory/{id}"), None);
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(b.memories().len(), 1);
    let out = b.cli(&["doctor"]);
    assert!(stdout(&out).contains("memory.embedder"), "{}", stdout(&out));
}

#[test]
fn an_embedder_that_is_down_degrades_to_full_text() {
    // The fake provider has no /embeddings: every embedding call fails.
    let b = bench(
        None,
        json!({"gateway": {"rate_limit_rpm": 0},
               "memory": {"embedder": {"type": "openai", "provider": "openai", "model": "embed-3"}}}),
    );
    let r = b.send(
        "POST",
        "/v1/memory",
        Some(json!({"agent": "helper", "content": "the backup window is at 3am"})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.json()["memory"]["embedder"].is_null());
    b.turn(
        "p",
        "when is the backup?",
        vec![tool("memory_search", json!({"query": "backup window"}))],
    );
    let found = &b.results()[0];
    assert!(
        found.contains("3am") && found.contains("keywords only"),
        "{found}"
    );
    let r = b.send("GET", "/v1/memory/status", None);
    assert_eq!(r.status, 200, "{}", r.body);
    let s = r.json();
    assert_eq!(s["embedder"], "openai:embed-3");
    assert_eq!(
        (s["total"].as_u64(), s["embedded"].as_u64()),
        (Some(1), Some(0))
    );
}
