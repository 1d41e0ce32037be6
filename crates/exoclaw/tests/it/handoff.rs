//! Handoff and the evaluate loop against the real binary and the fake
//! provider: an agent hands the conversation over (the next messages go to
//! the target, which gets the conversation so far), either agent or the
//! user hands it back, an idle override lapses, the overrides are listed;
//! an evaluate loop revises until the evaluator approves, or returns the
//! last answer with a warning, each round a recorded delegation.

use crate::postgres::fresh_database;
use crate::support::*;
use exoclaw_core::provider::ToolCall;
use exoclaw_providers::fake::{FakeProvider, Reply};
use serde_json::{Value, json};

pub(crate) struct Desk {
    pub(crate) fake: FakeProvider,
    pub(crate) gw: Gateway,
    _home: TestHome,
    _cfg: tempfile::TempDir,
}

pub(crate) fn desk(config: Value) -> Desk {
    desk_on(config, None)
}

/// A desk on SQLite, or on the PostgreSQL database `dsn`.
pub(crate) fn desk_on(config: Value, dsn: Option<&str>) -> Desk {
    let (fake, base) = FakeProvider::start_in_thread().unwrap();
    let home = TestHome::new();
    let cfg = tempfile::tempdir().unwrap();
    let mut config = config;
    config["gateway"]["rate_limit_rpm"] = json!(0);
    let path = cfg.path().join("config.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let mut env = vec![
        ("EXOCLAW_GATEWAY_TOKEN", TOKEN),
        ("EXOCLAW_OPENAI_API_KEY", "sk-test-fake-key-0123456789"),
        ("EXOCLAW_OPENAI_BASE_URL", &base),
        ("EXOCLAW_CONFIG", path.to_str().unwrap()),
    ];
    if let Some(dsn) = dsn {
        env.push(("EXOCLAW_POSTGRES_DSN", dsn));
        env.push(("EXOCLAW_AUTO_UPGRADE", "true"));
    }
    let gw = Gateway::start(&home.path, &env);
    let d = Desk {
        fake,
        gw,
        _home: home,
        _cfg: cfg,
    };
    for (id, model) in [
        ("front", "front-m"),
        ("billing", "billing-m"),
        ("writer", "writer-m"),
        ("critic", "critic-m"),
    ] {
        let r = d.post("/v1/agents", json!({"id": id, "config": {"model": model}}));
        assert_eq!(r.status, 201, "{}", r.body);
    }
    d
}

impl Desk {
    pub(crate) fn post(&self, path: &str, body: Value) -> Response {
        request(
            self.gw.addr,
            "POST",
            path,
            Some(TOKEN),
            Some(&body.to_string()),
        )
    }

    pub(crate) fn link(&self, source: &str, target: &str) {
        let r = self.post(
            &format!("/v1/agents/{source}/links"),
            json!({"target": target, "direction": "bidirectional"}),
        );
        assert_eq!(r.status, 201, "{}", r.body);
    }

    /// One message to `agent` in the conversation of peer `peer`.
    pub(crate) fn say(&self, agent: &str, peer: &str, text: &str) -> String {
        let r = self.post(
            "/v1/chat/completions",
            json!({"model": agent, "user": peer, "messages": [{"role": "user", "content": text}]}),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub(crate) fn requests(&self, model: &str) -> Vec<Value> {
        self.fake
            .requests()
            .into_iter()
            .map(|r| r.body)
            .filter(|b| b["model"] == model)
            .collect()
    }

    pub(crate) fn handoffs(&self) -> Value {
        let r = self.gw.get("/v1/handoffs", Some(TOKEN));
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    }
}

pub(crate) fn call(name: &str, args: Value) -> Reply {
    Reply::tool_calls([ToolCall {
        id: "c1".into(),
        name: name.into(),
        arguments: args,
    }])
}

pub(crate) fn last_tool_result(request: &Value) -> String {
    request["messages"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

#[test]
fn a_handed_over_conversation_goes_to_the_target_until_handed_back() {
    handed_over(None);
}

#[test]
fn a_handed_over_conversation_goes_to_the_target_until_handed_back_on_postgres() {
    let Some(dsn) = fresh_database() else { return };
    handed_over(Some(&dsn));
}

fn handed_over(dsn: Option<&str>) {
    let d = desk_on(json!({}), dsn);
    d.link("front", "billing");
    d.fake
        .push_for("front-m", Reply::text("Hello! How can I help?"));
    assert_eq!(
        d.say("front", "carol", "hi, I have an invoice question"),
        "Hello! How can I help?"
    );
    d.fake.push_for(
        "front-m",
        call(
            "handoff",
            json!({"agent": "billing", "reason": "invoice dispute"}),
        ),
    );
    d.fake
        .push_for("front-m", Reply::text("I am passing you to billing."));
    assert_eq!(
        d.say("front", "carol", "invoice 42 is wrong"),
        "I am passing you to billing."
    );
    assert!(last_tool_result(d.requests("front-m").last().unwrap()).contains("Handed over"));
    let listed = d.handoffs();
    assert_eq!(listed["handoffs"][0]["from_agent"], "front", "{listed}");
    assert_eq!(listed["handoffs"][0]["to_agent"], "billing");
    assert_eq!(listed["handoffs"][0]["reason"], "invoice dispute");

    // The next message to `front` in this conversation is billing's, with
    // the conversation so far in its instructions.
    d.fake
        .push_for("billing-m", Reply::text("Billing here: I see invoice 42."));
    assert_eq!(
        d.say("front", "carol", "still there?"),
        "Billing here: I see invoice 42."
    );
    let prompt = d.requests("billing-m")[0]["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        prompt
            .contains("Agent front handed this conversation over to you because: invoice dispute"),
        "{prompt}"
    );
    assert!(
        prompt.contains("invoice 42 is wrong"),
        "the conversation so far: {prompt}"
    );
    // Another conversation is not affected.
    d.fake.push_for("front-m", Reply::text("front for dave"));
    assert_eq!(d.say("front", "dave", "hello"), "front for dave");

    // The user hands it back.
    assert_eq!(
        d.say("front", "carol", "/handoff clear"),
        "Handed back: your messages go to front again."
    );
    assert_eq!(d.handoffs()["handoffs"], json!([]));
    d.fake.push_for("front-m", Reply::text("front again"));
    assert_eq!(d.say("front", "carol", "thanks"), "front again");

    // Billing hands it back with the tool.
    d.fake
        .push_for("front-m", call("handoff", json!({"agent": "billing"})));
    d.fake.push_for("front-m", Reply::text("over to billing"));
    d.say("front", "carol", "another invoice");
    d.fake
        .push_for("billing-m", call("handoff", json!({"action": "clear"})));
    d.fake
        .push_for("billing-m", Reply::text("sending you back"));
    assert_eq!(d.say("front", "carol", "all good now"), "sending you back");
    assert!(last_tool_result(d.requests("billing-m").last().unwrap()).contains("Handed back"));
    assert_eq!(d.handoffs()["handoffs"], json!([]));
}

#[test]
fn a_handoff_needs_a_link_and_bad_arguments_are_refused() {
    let d = desk(json!({}));
    d.link("front", "writer");
    for (args, code) in [
        (json!({"agent": "billing"}), "handoff.not_allowed"),
        (json!({"agent": "front"}), "handoff.self"),
        (
            json!({"action": "clear", "agent": "writer"}),
            "tool.invalid_args",
        ),
        (json!({}), "tool.invalid_args"),
    ] {
        d.fake.push_for("front-m", call("handoff", args.clone()));
        d.fake.push_for("front-m", Reply::text("ok"));
        d.say("front", "erin", "go");
        let r = last_tool_result(d.requests("front-m").last().unwrap());
        assert!(r.contains(code), "{args}: {r}");
    }
    assert_eq!(d.handoffs()["handoffs"], json!([]));
}

#[test]
fn an_idle_handoff_lapses() {
    let d = desk(json!({"agents": {"defaults": {"handoff": {"idle_sec": 60}}}}));
    d.link("front", "billing");
    d.fake
        .push_for("front-m", call("handoff", json!({"agent": "billing"})));
    d.fake.push_for("front-m", Reply::text("over"));
    d.say("front", "fay", "help");
    assert_eq!(d.handoffs()["handoffs"].as_array().unwrap().len(), 1);
    // Make it look idle: move its last activity back two minutes.
    let db = d._home.file("exoclaw.db");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection as _;
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        sqlx::query("UPDATE handoffs SET last_active_at = last_active_at - 120000")
            .execute(&mut c)
            .await
            .unwrap();
    });
    d.fake
        .push_for("front-m", Reply::text("front answers again"));
    assert_eq!(d.say("front", "fay", "hello?"), "front answers again");
    assert_eq!(d.handoffs()["handoffs"], json!([]));
}

fn evaluate(rounds: Option<u32>) -> Value {
    let mut args = json!({"generator": "writer", "evaluator": "critic",
                          "task": "write a haiku about rust", "pass_criteria": "5-7-5 syllables"});
    if let Some(n) = rounds {
        args["max_rounds"] = json!(n);
    }
    args
}

#[test]
fn the_evaluate_loop_revises_until_approved_and_records_every_round() {
    evaluate_until_approved(None);
}

#[test]
fn the_evaluate_loop_revises_until_approved_on_postgres() {
    let Some(dsn) = fresh_database() else { return };
    evaluate_until_approved(Some(&dsn));
}

fn evaluate_until_approved(dsn: Option<&str>) {
    let d = desk_on(json!({}), dsn);
    d.link("front", "writer");
    d.link("front", "critic");
    d.fake
        .push_for("front-m", call("evaluate_loop", evaluate(None)));
    d.fake.push_for("writer-m", Reply::text("draft one"));
    d.fake.push_for(
        "critic-m",
        Reply::text("REJECTED: the second line is too short"),
    );
    d.fake.push_for("writer-m", Reply::text("draft two"));
    d.fake.push_for("critic-m", Reply::text("APPROVED"));
    d.fake
        .push_for("front-m", Reply::text("Here is your haiku."));
    assert_eq!(
        d.say("front", "gus", "a haiku please"),
        "Here is your haiku."
    );
    let result = last_tool_result(d.requests("front-m").last().unwrap());
    assert!(
        result.starts_with("APPROVED by critic in round 2:") && result.contains("draft two"),
        "{result}"
    );
    let revise = d.requests("writer-m")[1]["messages"].to_string();
    assert!(
        revise.contains("draft one") && revise.contains("the second line is too short"),
        "{revise}"
    );
    let judged = d.requests("critic-m")[0]["messages"].to_string();
    assert!(
        judged.contains("5-7-5 syllables") && judged.contains("draft one"),
        "{judged}"
    );
    let history = d.gw.get("/v1/delegations", Some(TOKEN)).json();
    let rounds = history["delegations"].as_array().unwrap();
    assert_eq!(rounds.len(), 4, "two rounds of two delegations: {history}");
    assert!(
        rounds
            .iter()
            .all(|r| r["status"] == "done" && r["caller_agent"] == "front")
    );
}

#[test]
fn the_evaluate_loop_returns_the_last_answer_with_a_warning() {
    let d = desk(json!({}));
    d.link("front", "writer");
    d.link("front", "critic");
    d.fake
        .push_for("front-m", call("evaluate_loop", evaluate(Some(2))));
    for i in 1..=2 {
        d.fake.push_for("writer-m", Reply::text(format!("try {i}")));
        d.fake.push_for(
            "critic-m",
            Reply::text(format!("REJECTED: still wrong {i}")),
        );
    }
    d.fake.push_for("front-m", Reply::text("best I could do"));
    d.say("front", "hal", "a haiku please");
    let result = last_tool_result(d.requests("front-m").last().unwrap());
    assert!(
        result.starts_with("WARNING: not approved after 2 round(s)")
            && result.contains("still wrong 2")
            && result.contains("try 2"),
        "{result}"
    );
    // Without a link to the evaluator, the first round's judging fails
    // clearly and nothing hangs.
    let d = desk(json!({}));
    d.link("front", "writer");
    d.fake
        .push_for("front-m", call("evaluate_loop", evaluate(None)));
    d.fake.push_for("writer-m", Reply::text("a draft"));
    d.fake
        .push_for("front-m", Reply::text("could not check it"));
    d.say("front", "ida", "go");
    let result = last_tool_result(d.requests("front-m").last().unwrap());
    assert!(result.contains("delegation.no_link"), "{result}");
}
