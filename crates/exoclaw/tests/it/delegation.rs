//! Agents working together, against the real binary and the fake provider:
//! sync and async delegation over permission links, link directions and
//! per-user lists, limits under concurrency (measured at the provider),
//! subagents and their depth, failures and timeouts that come back as
//! results, `/stop` and `/stopall` cascading, and a restart with async work
//! pending. Each agent runs on its own model, so the fake answers each run
//! from its own script however the runs interleave. The storage-bound ones
//! run on PostgreSQL too.

use crate::postgres::fresh_database;
use crate::support::*;
use crate::ws::{call, open, recv};
use exoclaw_core::provider::ToolCall;
use exoclaw_providers::fake::{FakeProvider, Reply};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A gateway with agents `support` (model `support-m`) and `research`
/// (`research-m`), on SQLite or (with a DSN) PostgreSQL.
struct Team {
    home: TestHome,
    fake: FakeProvider,
    env: Vec<(String, String)>,
    _cfg: tempfile::TempDir,
    gw: Gateway,
}

impl Team {
    fn new(config: Value, dsn: Option<&str>) -> Self {
        let (fake, base) = FakeProvider::start_in_thread().unwrap();
        let home = TestHome::new();
        let cfg = tempfile::tempdir().unwrap();
        let mut config = config;
        config["gateway"]["rate_limit_rpm"] = json!(0);
        config["gateway"]["shutdown_grace_sec"] = json!(1);
        let path = cfg.path().join("config.json");
        std::fs::write(&path, config.to_string()).unwrap();
        let env = fake_provider_env(base, &path, dsn);
        let gw = start(&home, &env);
        let team = Self {
            home,
            fake,
            env,
            _cfg: cfg,
            gw,
        };
        team.agent(
            "support",
            "support-m",
            json!({"description": "Answers customers"}),
        );
        team.agent(
            "research",
            "research-m",
            json!({"description": "Finds facts on the web"}),
        );
        team
    }

    fn agent(&self, id: &str, model: &str, extra: Value) {
        let mut config = json!({"model": model});
        if let Value::Object(m) = extra {
            config.as_object_mut().unwrap().extend(m);
        }
        let r = self.post("/v1/agents", json!({"id": id, "config": config}));
        assert_eq!(r.status, 201, "{}", r.body);
    }

    fn link(&self, source: &str, target: &str, extra: Value) {
        let mut body = json!({"target": target});
        if let Value::Object(m) = extra {
            body.as_object_mut().unwrap().extend(m);
        }
        let r = self.post(&format!("/v1/agents/{source}/links"), body);
        assert_eq!(r.status, 201, "{}", r.body);
    }

    /// A user of the default tenant and their API key.
    fn user(&self, name: &str) -> (String, String) {
        let r = self.post("/v1/users", json!({"name": name}));
        assert_eq!(r.status, 201, "{}", r.body);
        let v = r.json();
        (
            v["id"].as_str().unwrap().to_owned(),
            v["api_key"].as_str().unwrap().to_owned(),
        )
    }

    /// One chat turn as the user of `key`.
    fn chat_as(&self, key: &str, agent: &str, text: &str) -> String {
        let r = request(
            self.gw.addr,
            "POST",
            "/v1/chat/completions",
            Some(key),
            Some(
                &json!({"model": agent, "messages": [{"role": "user", "content": text}]})
                    .to_string(),
            ),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn post(&self, path: &str, body: Value) -> Response {
        request(
            self.gw.addr,
            "POST",
            path,
            Some(TOKEN),
            Some(&body.to_string()),
        )
    }

    fn get(&self, path: &str) -> Value {
        let r = self.gw.get(path, Some(TOKEN));
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        r.json()
    }

    /// One chat turn of `agent` for `user`; the answer's text.
    fn chat(&self, agent: &str, user: &str, text: &str) -> String {
        let r = self.post(
            "/v1/chat/completions",
            json!({"model": agent, "user": user, "messages": [{"role": "user", "content": text}]}),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The requests the fake got for `model`, in order.
    fn requests(&self, model: &str) -> Vec<Value> {
        self.fake
            .requests()
            .into_iter()
            .map(|r| r.body)
            .filter(|b| b["model"] == model)
            .collect()
    }

    fn delegations(&self) -> Vec<Value> {
        self.get("/v1/delegations")["delegations"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// Wait (bounded) until `f` holds.
    fn until(&self, what: &str, f: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !f(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn restart(&mut self, signal: &str) {
        self.gw.signal(signal);
        self.gw.wait_exit(Duration::from_secs(15));
        self.gw = start(&self.home, &self.env);
    }
}

fn start(home: &TestHome, env: &[(String, String)]) -> Gateway {
    let pairs = env_pairs(env);
    Gateway::start(&home.path, &pairs)
}

fn delegate(id: &str, agent: &str, task: &str, mode: &str) -> ToolCall {
    ToolCall {
        id: id.into(),
        name: "delegate".into(),
        arguments: json!({"agent": agent, "task": task, "mode": mode}),
    }
}

/// The text of the tool results in a request's messages (OpenAI wire:
/// `role: tool` messages).
fn tool_results(request: &Value) -> Vec<String> {
    request["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn system_prompt(request: &Value) -> String {
    request["messages"][0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn tool_names(request: &Value) -> Vec<String> {
    request["tools"]
        .as_array()
        .map(|t| {
            t.iter()
                .map(|t| t["function"]["name"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn sync_delegation(dsn: Option<&str>) {
    let t = Team::new(json!({}), dsn);
    t.link("support", "research", json!({}));
    t.fake.push_for(
        "support-m",
        Reply::tool_calls([delegate("c1", "research", "find x", "sync")]),
    );
    t.fake.push_for("research-m", Reply::text("x is 42"));
    t.fake
        .push_for("support-m", Reply::text("The answer is 42."));
    assert_eq!(
        t.chat("support", "alice", "what is x?"),
        "The answer is 42."
    );

    let support = t.requests("support-m");
    let prompt = system_prompt(&support[0]);
    assert!(
        prompt.contains("- research (research): Finds facts on the web"),
        "the prompt lists the reachable agents: {prompt}"
    );
    let tools = tool_names(&support[0]);
    assert!(tools.contains(&"delegate".to_owned()), "{tools:?}");
    assert!(
        !tools.contains(&"delegate_search".to_owned()),
        "≤ 15 targets: listed, not searched"
    );
    assert_eq!(tool_results(&support[1]), ["x is 42"]);
    let research = t.requests("research-m");
    let asked = research[0]["messages"].to_string();
    assert!(
        asked.contains("Task from agent support") && asked.contains("find x"),
        "{asked}"
    );
    assert!(
        !asked.contains("what is x?"),
        "a delegate works in a fresh session, not the caller's"
    );

    let d = &t.delegations()[0];
    assert_eq!(d["kind"], "delegate");
    assert_eq!(d["mode"], "sync");
    assert_eq!(d["status"], "done");
    assert_eq!(d["caller_agent"], "support");
    assert_eq!(d["target_agent"], "research");
    assert_eq!(d["user_id"], "owner", "the gateway token acts as the owner");
    assert_eq!(d["task_digest"].as_str().unwrap().len(), 64);
    // The parent trace shows the child run as a span naming its trace.
    let parent = d["parent_trace_id"].as_str().unwrap();
    let child = d["child_trace_id"].as_str().unwrap();
    let trace = t.get(&format!("/v1/traces/{parent}"));
    let span = trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "agent")
        .cloned()
        .unwrap_or_else(|| panic!("no agent span: {trace}"));
    assert_eq!(span["name"], "research");
    assert_eq!(span["attributes"]["child_trace_id"], child);
    assert_eq!(
        t.get(&format!("/v1/traces/{child}"))["trace"]["name"],
        "delegate"
    );
}

#[test]
fn a_sync_delegation_answers_with_the_targets_text() {
    sync_delegation(None);
}

#[test]
fn a_sync_delegation_answers_with_the_targets_text_on_postgres() {
    let Some(dsn) = fresh_database() else { return };
    sync_delegation(Some(&dsn));
}

#[test]
fn links_decide_who_may_delegate_to_whom_and_for_which_users() {
    let t = Team::new(json!({}), None);
    t.agent("writer", "writer-m", json!({}));
    let (_, alice) = t.user("alice");
    let (mallory_id, mallory) = t.user("mallory");
    // support → research only, not for mallory; writer ↔ research;
    // research → support: no link.
    t.link(
        "support",
        "research",
        json!({"users": {"deny": [mallory_id]}}),
    );
    t.link("writer", "research", json!({"direction": "bidirectional"}));
    let result_of = |agent: &str, model: &str, key: &str, target: &str| -> String {
        t.fake.push_for(
            model,
            Reply::tool_calls([delegate("c", target, "x", "sync")]),
        );
        t.fake.push_for(model, Reply::text("ok"));
        t.chat_as(key, agent, "go");
        tool_results(t.requests(model).last().unwrap())
            .pop()
            .unwrap()
    };
    // research has a link (to writer), so it is offered `delegate`; support
    // is not its target.
    let r = result_of("research", "research-m", &alice, "support");
    assert!(
        r.contains("delegation.no_link") && r.contains("exoclaw agent link research support"),
        "{r}"
    );
    let r = result_of("support", "support-m", &alice, "support");
    assert!(r.contains("delegation.self") && r.contains("spawn"), "{r}");
    let r = result_of("support", "support-m", &alice, "nobody");
    assert!(r.contains("delegation.no_agent"), "{r}");
    // Allowed: research → writer over the bidirectional link.
    t.fake.push_for("writer-m", Reply::text("drafted"));
    let r = result_of("research", "research-m", &alice, "writer");
    assert_eq!(r, "drafted");
    let research_prompt = system_prompt(&t.requests("research-m")[0]);
    assert!(
        research_prompt.contains("- writer (writer)"),
        "{research_prompt}"
    );
    assert!(!research_prompt.contains("- support"), "{research_prompt}");
    // mallory is denied on support's only link: no target, no delegate
    // tool, and a call anyway is refused by the policy path.
    let r = result_of("support", "support-m", &mallory, "research");
    assert!(r.contains("security.tool_denied"), "{r}");
    let tools = tool_names(t.requests("support-m").last().unwrap());
    assert!(!tools.contains(&"delegate".to_owned()), "{tools:?}");
    assert!(
        !system_prompt(t.requests("support-m").last().unwrap()).contains("- research"),
        "not listed for mallory"
    );
}

#[test]
fn another_tenants_agent_is_not_even_known() {
    let t = Team::new(json!({}), None);
    let r = t.post("/v1/tenants", json!({"id": "acme", "name": "Acme"}));
    assert_eq!(r.status, 201, "{}", r.body);
    let r = t.post(
        "/v1/users",
        json!({"name": "boss", "role": "admin", "tenant": "acme"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let key = r.json()["api_key"].as_str().unwrap().to_owned();
    let r = request(
        t.gw.addr,
        "POST",
        "/v1/agents",
        Some(&key),
        Some(&json!({"id": "secret-agent", "config": {"model": "x-m"}}).to_string()),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    t.link("support", "research", json!({}));
    t.fake.push_for(
        "support-m",
        Reply::tool_calls([delegate("c", "secret-agent", "x", "sync")]),
    );
    t.fake.push_for("support-m", Reply::text("ok"));
    t.chat("support", "alice", "go");
    let r = tool_results(t.requests("support-m").last().unwrap())
        .pop()
        .unwrap();
    assert!(
        r.contains("delegation.no_agent") && r.contains("there is no agent secret-agent"),
        "{r}"
    );
    assert!(t.requests("x-m").is_empty());
}

#[test]
fn limits_hold_under_concurrency_and_waiters_fail_clearly() {
    let t = Team::new(
        json!({"agents": {"defaults": {"delegation": {"wait_sec": 20}}}}),
        None,
    );
    t.link("support", "research", json!({"max_concurrent": 2}));
    let calls: Vec<ToolCall> = (0..6)
        .map(|i| delegate(&format!("c{i}"), "research", &format!("task {i}"), "sync"))
        .collect();
    t.fake.push_for("support-m", Reply::tool_calls(calls));
    for i in 0..6 {
        t.fake.push_for(
            "research-m",
            Reply::text(format!("done {i}")).delay(Duration::from_millis(300)),
        );
    }
    t.fake.push_for("support-m", Reply::text("all done"));
    assert_eq!(t.chat("support", "alice", "six at once"), "all done");
    assert_eq!(t.fake.max_in_flight("research-m"), 2, "max_concurrent held");
    let results = tool_results(t.requests("support-m").last().unwrap());
    assert_eq!(results.len(), 6);
    assert!(
        results.iter().all(|r| r.starts_with("done ")),
        "{results:?}"
    );

    // The target's own load limit, and a waiter that gives up.
    let t = Team::new(
        json!({"agents": {"defaults": {"delegation": {"wait_sec": 1}}}}),
        None,
    );
    t.agent("busy", "busy-m", json!({"max_delegation_load": 1}));
    t.link("support", "busy", json!({}));
    t.fake.push_for(
        "support-m",
        Reply::tool_calls([
            delegate("a", "busy", "one", "sync"),
            delegate("b", "busy", "two", "sync"),
        ]),
    );
    t.fake
        .push_for("busy-m", Reply::text("slow").delay(Duration::from_secs(3)));
    t.fake.push_for("busy-m", Reply::text("never"));
    t.fake.push_for("support-m", Reply::text("reported"));
    t.chat("support", "alice", "two at once");
    let results = tool_results(t.requests("support-m").last().unwrap());
    assert!(results.contains(&"slow".to_owned()), "{results:?}");
    let busy = results
        .iter()
        .find(|r| r.contains("delegation.busy"))
        .unwrap();
    assert!(
        busy.contains("max_delegation_load") && busy.contains("waited 1s"),
        "{busy}"
    );
    assert_eq!(t.fake.max_in_flight("busy-m"), 1);
}

#[test]
fn failures_timeouts_and_cycles_come_back_as_results() {
    let t = Team::new(
        json!({"agents": {"defaults": {"delegation": {"timeout_sec": 1, "max_depth": 2}}},
               "retry": {"max_attempts": 1}}),
        None,
    );
    t.link("support", "research", json!({"direction": "bidirectional"}));
    // The target's provider refuses: a failure result, not a hang.
    t.fake.push_for(
        "support-m",
        Reply::tool_calls([delegate("a", "research", "x", "sync")]),
    );
    t.fake.push_for("research-m", Reply::status(400));
    t.fake.push_for("support-m", Reply::text("sorry"));
    assert_eq!(t.chat("support", "alice", "go"), "sorry");
    let r = tool_results(t.requests("support-m").last().unwrap())
        .pop()
        .unwrap();
    assert!(
        r.contains("delegation.failed") && r.contains("research could not finish"),
        "{r}"
    );
    // Too slow: stopped at the timeout.
    t.fake.push_for(
        "support-m",
        Reply::tool_calls([delegate("b", "research", "y", "sync")]),
    );
    t.fake.push_for(
        "research-m",
        Reply::text("late").stall_after(1, Duration::from_secs(30)),
    );
    t.fake.push_for("support-m", Reply::text("gave up"));
    let started = Instant::now();
    assert_eq!(t.chat("support", "alice", "go"), "gave up");
    assert!(started.elapsed() < Duration::from_secs(10));
    let r = tool_results(t.requests("support-m").last().unwrap())
        .pop()
        .unwrap();
    assert!(r.contains("delegation.timeout"), "{r}");
    // A cycle: support → research → support → research is three hops.
    t.fake.push_for(
        "support-m",
        Reply::tool_calls([delegate("c", "research", "ask back", "sync")]),
    );
    t.fake.push_for(
        "research-m",
        Reply::tool_calls([delegate("d", "support", "and back", "sync")]),
    );
    t.fake.push_for(
        "support-m",
        Reply::tool_calls([delegate("e", "research", "again", "sync")]),
    );
    t.fake.push_for("support-m", Reply::text("stopped there"));
    t.fake.push_for("research-m", Reply::text("fine"));
    t.fake.push_for("support-m", Reply::text("done"));
    assert_eq!(t.chat("support", "alice", "loop"), "done");
    let inner = t
        .requests("support-m")
        .into_iter()
        .find(|r| {
            tool_results(r)
                .iter()
                .any(|x| x.contains("delegation.depth"))
        })
        .expect("the third hop is refused");
    let refusal = tool_results(&inner).pop().unwrap();
    assert!(
        refusal.contains("support → research → support → research") && refusal.contains("cycle"),
        "{refusal}"
    );
    let statuses: Vec<Value> = t
        .delegations()
        .iter()
        .map(|d| d["status"].clone())
        .collect();
    assert!(statuses.contains(&json!("failed")), "{statuses:?}");
}

#[test]
fn a_subagent_is_a_clone_with_the_parents_context_and_no_deeper_spawns() {
    let t = Team::new(json!({}), None);
    t.fake.push_for(
        "support-m",
        Reply::text("I remember the ticket number 7781."),
    );
    t.chat("support", "alice", "my ticket is 7781");
    t.fake.push_for(
        "support-m",
        Reply::tool_calls([ToolCall {
            id: "s1".into(),
            name: "spawn".into(),
            arguments: json!({"task": "summarise the ticket"}),
        }]),
    );
    t.fake
        .push_for("support-m", Reply::text("ticket 7781: login issue"));
    t.fake
        .push_for("support-m", Reply::text("Here is the summary."));
    assert_eq!(
        t.chat("support", "alice", "summarise"),
        "Here is the summary."
    );
    let reqs = t.requests("support-m");
    let clone = &reqs[2];
    let prompt = system_prompt(clone);
    assert!(prompt.contains("You are a subagent of support"), "{prompt}");
    assert!(
        prompt.contains("my ticket is 7781"),
        "the parent's conversation: {prompt}"
    );
    let tools = tool_names(clone);
    assert!(!tools.contains(&"spawn".to_owned()), "depth 1: {tools:?}");
    assert!(tool_names(&reqs[1]).contains(&"spawn".to_owned()));
    assert_eq!(tool_results(&reqs[3]), ["ticket 7781: login issue"]);
    let d = &t.delegations()[0];
    assert_eq!(
        (d["kind"].clone(), d["target_agent"].clone()),
        (json!("spawn"), json!("support"))
    );
    // The parent session was not written by the clone.
    let session = &t.get("/v1/sessions")["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["channel"] == "api")
        .unwrap()
        .clone();
    let messages = t.get(&format!(
        "/v1/sessions/{}/messages",
        session["id"].as_str().unwrap()
    ));
    let text = messages.to_string();
    assert!(
        !text.contains("ticket 7781: login issue\"}],\"role\":\"assistant"),
        "{text}"
    );
}

fn async_announce(dsn: Option<&str>) {
    let t = Team::new(json!({}), dsn);
    t.link("support", "research", json!({}));
    t.fake.push_for(
        "support-m",
        Reply::tool_calls([delegate("a", "research", "deep report", "async")]),
    );
    t.fake.push_for(
        "support-m",
        Reply::text("I asked research; I will tell you."),
    );
    t.fake.push_for(
        "research-m",
        Reply::text("report: all good").delay(Duration::from_millis(800)),
    );
    t.fake
        .push_for("support-m", Reply::text("Research says: all good."));
    let mut ws = open(&t.gw, &[]).unwrap();
    let (r, _) = call(
        &mut ws,
        "c",
        "connect",
        json!({"token": TOKEN, "protocol": 1, "client": {"name": "test"}}),
    );
    assert_eq!(r["ok"], true);
    let (r, _) = call(
        &mut ws,
        "1",
        "chat.send",
        json!({"agent": "support", "message": "write me a report"}),
    );
    let session = r["result"]["session_id"].as_str().unwrap().to_owned();
    let announce = loop {
        let f = recv(&mut ws);
        if f["event"] == "chat.announce" {
            break f;
        }
    };
    assert_eq!(announce["params"]["session_id"], session.as_str());
    assert_eq!(announce["params"]["status"], "done");
    assert_eq!(announce["params"]["text"], "Research says: all good.");
    let first = t.requests("support-m")[1].clone();
    let started = tool_results(&first).pop().unwrap();
    assert!(
        started.contains("Started agent research as delegation"),
        "{started}"
    );
    let announced = t.requests("support-m")[2]["messages"].to_string();
    assert!(announced.contains("finished the task") && announced.contains("report: all good"));
    t.until("announced", |t| t.delegations()[0]["announced"] == true);
    let history = t.get(&format!("/v1/sessions/{session}/messages"));
    assert!(history.to_string().contains("Research says: all good."));
}

#[test]
fn an_async_delegation_is_announced_into_the_callers_session() {
    async_announce(None);
}

#[test]
fn an_async_delegation_is_announced_into_the_callers_session_on_postgres() {
    let Some(dsn) = fresh_database() else { return };
    async_announce(Some(&dsn));
}

#[test]
fn stopall_cascades_to_async_work_and_stop_to_sync_children() {
    let t = Team::new(json!({}), None);
    t.link("support", "research", json!({}));
    // Async work that would take long.
    t.fake.push_for(
        "support-m",
        Reply::tool_calls([delegate("a", "research", "long job", "async")]),
    );
    t.fake.push_for("support-m", Reply::text("started"));
    t.fake.push_for(
        "research-m",
        Reply::text("never seen").stall_after(1, Duration::from_secs(60)),
    );
    assert_eq!(t.chat("support", "alice", "start"), "started");
    t.until("the child runs", |t| t.fake.in_flight("research-m") == 1);
    assert_eq!(
        t.chat("support", "alice", "/stopall"),
        "Stopped 0 run(s) and 1 delegation(s) or subagent(s)."
    );
    t.until("cancelled", |t| t.delegations()[0]["status"] == "cancelled");
    t.until("the child's call dropped", |t| {
        t.fake.in_flight("research-m") == 0
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        t.delegations()[0]["announced"],
        false,
        "a stopped delegation is not announced"
    );
    assert_eq!(t.requests("support-m").len(), 2, "no turn about it");

    // Sync: `/stop` (WebSocket chat.stop) stops the parent and its child.
    t.fake.push_for(
        "support-m",
        Reply::tool_calls([delegate("b", "research", "slow", "sync")]),
    );
    t.fake.push_for(
        "research-m",
        Reply::text("partial").stall_after(1, Duration::from_secs(60)),
    );
    let mut ws = open(&t.gw, &[]).unwrap();
    call(
        &mut ws,
        "c",
        "connect",
        json!({"token": TOKEN, "protocol": 1, "client": {"name": "test"}}),
    );
    let (r, _) = call(
        &mut ws,
        "1",
        "chat.send",
        json!({"agent": "support", "message": "go"}),
    );
    let session = r["result"]["session_id"].as_str().unwrap().to_owned();
    t.until("the sync child runs", |t| {
        t.fake.in_flight("research-m") == 1
    });
    let (r, _) = call(&mut ws, "2", "chat.stop", json!({"session_id": session}));
    assert_eq!(r["result"]["stopped"], 1, "{r}");
    t.until("the child stopped with its parent", |t| {
        t.fake.in_flight("research-m") == 0
            && t.delegations()
                .iter()
                .any(|d| d["mode"] == "sync" && d["status"] == "cancelled")
    });
}

fn restart_with_pending_async(dsn: Option<&str>, signal: &str) {
    let mut t = Team::new(json!({}), dsn);
    t.link("support", "research", json!({}));
    t.fake.push_for(
        "support-m",
        Reply::tool_calls([delegate("a", "research", "long job", "async")]),
    );
    t.fake.push_for("support-m", Reply::text("started"));
    t.fake.push_for(
        "research-m",
        Reply::text("never seen").stall_after(1, Duration::from_secs(60)),
    );
    assert_eq!(t.chat("support", "alice", "start"), "started");
    t.until("the child runs", |t| t.fake.in_flight("research-m") == 1);
    t.fake
        .push_for("support-m", Reply::text("Sorry, research was interrupted."));
    t.restart(signal);
    t.until("interrupted and announced", |t| {
        let d = &t.delegations()[0];
        d["status"] == "interrupted" && d["announced"] == true
    });
    let sessions = t.get("/v1/sessions");
    let api = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["agent_id"] == "support" && s["channel"] == "api")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    t.until("the reply is in the caller's session", |t| {
        t.get(&format!("/v1/sessions/{api}/messages"))
            .to_string()
            .contains("Sorry, research was interrupted.")
    });
    let told = t.requests("support-m").last().unwrap()["messages"].to_string();
    assert!(
        told.contains("did not finish") && told.contains("interrupted"),
        "{told}"
    );
}

#[test]
fn a_restart_marks_pending_async_work_interrupted_and_tells_the_caller() {
    restart_with_pending_async(None, "TERM");
}

#[test]
fn a_crash_with_pending_async_work_is_found_on_restart() {
    restart_with_pending_async(None, "KILL");
}

#[test]
fn a_restart_with_pending_async_work_on_postgres() {
    let Some(dsn) = fresh_database() else { return };
    restart_with_pending_async(Some(&dsn), "KILL");
}
