//! Quality gates against the real binary and the fake provider: a blocking
//! command gate holds a failing answer back and has the agent revise it,
//! then fails clearly after its retries; a non-blocking gate passes the
//! answer on with a warning; an agent gate on `delegation.completed` sends
//! the task back with the reviewer's feedback, and the reviewer's own gates
//! do not run on its review (no recursion).

use crate::handoff::{Desk, call, desk_on, last_tool_result};
use crate::postgres::fresh_database;
use crate::support::*;
use exoclaw_providers::fake::Reply;
use serde_json::{Value, json};

fn gate_on(d: &Desk, agent: &str, gates: Value) {
    let r = request(
        d.gw.addr,
        "PATCH",
        &format!("/v1/agents/{agent}"),
        Some(TOKEN),
        Some(&json!({"config": {"model": format!("{agent}-m"), "gates": gates}}).to_string()),
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

fn needs_final(block: bool, retries: u32) -> Value {
    json!([{"name": "has-final", "event": "run.completed", "type": "command",
            "command": "grep -q FINAL", "block_on_failure": block, "max_retries": retries}])
}

#[test]
fn a_blocking_command_gate_holds_the_answer_back_until_revised() {
    held_back_until_revised(None);
}

#[test]
fn a_blocking_command_gate_holds_the_answer_back_on_postgres() {
    let Some(dsn) = fresh_database() else { return };
    held_back_until_revised(Some(&dsn));
}

fn held_back_until_revised(dsn: Option<&str>) {
    let d = desk_on(json!({}), dsn);
    gate_on(&d, "front", needs_final(true, 2));
    d.fake.push_for("front-m", Reply::text("a draft"));
    d.fake.push_for("front-m", Reply::text("the FINAL answer"));
    assert_eq!(d.say("front", "amy", "answer me"), "the FINAL answer");
    let asked = d.requests("front-m");
    assert_eq!(asked.len(), 2, "one revision");
    let revise = asked[1]["messages"].to_string();
    assert!(
        revise.contains("did not pass the quality gate has-final") && revise.contains("exit 1"),
        "{revise}"
    );
}

#[test]
fn a_blocking_gate_fails_the_turn_clearly_after_its_retries() {
    let d = desk_on(json!({}), None);
    gate_on(&d, "front", needs_final(true, 1));
    d.fake.push_for("front-m", Reply::text("draft one"));
    d.fake.push_for("front-m", Reply::text("draft two"));
    let r = d.post(
        "/v1/chat/completions",
        json!({"model": "front", "user": "bo", "messages": [{"role": "user", "content": "go"}]}),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    let body = r.json();
    assert_eq!(body["error"]["code"], "gate.failed", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("has-final") && message.contains("after 1 revision"),
        "{message}"
    );
    assert!(!r.body.contains("draft two"), "held back: {}", r.body);
    assert_eq!(d.requests("front-m").len(), 2);
}

#[test]
fn a_non_blocking_gate_passes_the_answer_on_with_a_warning() {
    let d = desk_on(json!({}), None);
    gate_on(&d, "front", needs_final(false, 1));
    d.fake.push_for("front-m", Reply::text("just a draft"));
    let answer = d.say("front", "cy", "go");
    assert!(
        answer.starts_with("just a draft")
            && answer.contains("[quality gate has-final did not pass"),
        "{answer}"
    );
    assert_eq!(d.requests("front-m").len(), 1, "no revision");
    // A passing answer comes as it is.
    d.fake.push_for("front-m", Reply::text("FINAL"));
    assert_eq!(d.say("front", "cy", "again"), "FINAL");
}

#[test]
fn an_agent_gate_sends_a_delegated_task_back_and_its_review_is_not_gated() {
    let d = desk_on(json!({}), None);
    d.link("front", "writer");
    gate_on(
        &d,
        "front",
        json!([{"event": "delegation.completed", "type": "agent", "agent": "critic",
                "criteria": "mentions rust", "block_on_failure": true, "max_retries": 2}]),
    );
    // The critic's own gate would refuse every review it writes, were it
    // applied to a review.
    gate_on(
        &d,
        "critic",
        json!([{"event": "run.completed", "type": "command", "command": "grep -q NEVER",
                "block_on_failure": true, "max_retries": 0}]),
    );
    d.fake.push_for(
        "front-m",
        call(
            "delegate",
            json!({"agent": "writer", "task": "a haiku", "mode": "sync"}),
        ),
    );
    d.fake.push_for("writer-m", Reply::text("a poem about go"));
    d.fake
        .push_for("critic-m", Reply::text("REJECTED: it must mention rust"));
    d.fake
        .push_for("writer-m", Reply::text("a poem about rust"));
    d.fake.push_for("critic-m", Reply::text("APPROVED"));
    d.fake.push_for("front-m", Reply::text("done"));
    assert_eq!(d.say("front", "di", "a haiku please"), "done");
    let result = last_tool_result(d.requests("front-m").last().unwrap());
    assert!(result.contains("a poem about rust"), "{result}");
    assert!(!result.contains("about go"), "{result}");
    let revise = d.requests("writer-m")[1]["messages"].to_string();
    assert!(revise.contains("it must mention rust"), "{revise}");
    let judged = d.requests("critic-m")[0]["messages"].to_string();
    assert!(
        judged.contains("mentions rust") && judged.contains("a poem about go"),
        "{judged}"
    );
    // A bad gate is refused with the reason.
    let r = request(
        d.gw.addr,
        "PATCH",
        "/v1/agents/front",
        Some(TOKEN),
        Some(
            &json!({"config": {"gates": [{"event": "run.completed", "type": "agent"}]}})
                .to_string(),
        ),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("gates[0].agent"), "{}", r.body);
}

#[test]
fn a_team_task_gate_refuses_a_result_until_revised_then_fails_the_task() {
    let d = desk_on(json!({}), None);
    let r = d.post(
        "/v1/teams",
        json!({"id": "core", "lead": "front", "members": ["writer"]}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    gate_on(
        &d,
        "writer",
        json!([{"name": "says-done", "event": "team_task.completed", "type": "command",
                "command": "grep -q DONE", "block_on_failure": true, "max_retries": 1}]),
    );
    let task = |title: &str| -> String {
        let r = d.post(
            "/v1/teams/core/tasks",
            json!({"title": title, "created_by": "front"}),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        let id = r.json()["id"].as_str().unwrap().to_owned();
        let r = d.post(
            &format!("/v1/teams/core/tasks/{id}/claim"),
            json!({"agent": "writer"}),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        id
    };
    let complete = |id: &str, result: &str| {
        d.post(
            &format!("/v1/teams/core/tasks/{id}/complete"),
            json!({"agent": "writer", "result": result}),
        )
    };
    // Refused with the feedback, the task still the writer's; a revised
    // result passes.
    let first = task("first");
    let r = complete(&first, "work in progress");
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "gate.rejected");
    assert!(r.body.contains("says-done"), "{}", r.body);
    let held =
        d.gw.get(&format!("/v1/teams/core/tasks/{first}"), Some(TOKEN));
    let held = held.json();
    assert_eq!(held["status"], "in_progress", "{held}");
    assert_eq!(held["comments"][0]["author"], "quality-gate", "{held}");
    let r = complete(&first, "DONE: all of it");
    assert_eq!(r.json()["status"], "done", "{}", r.body);
    assert_eq!(r.json()["result"], "DONE: all of it");
    // Past its retries the task fails, saying why.
    let second = task("second");
    assert_eq!(complete(&second, "not yet").status, 422);
    let r = complete(&second, "still not");
    assert_eq!(r.status, 200, "{}", r.body);
    let failed = r.json();
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(
        failed["result"]
            .as_str()
            .unwrap()
            .starts_with("did not pass the quality gate says-done after 1 revision"),
        "{failed}"
    );
    // A failure is not gated: the owner may always give up.
    let third = task("third");
    let r = d.post(
        &format!("/v1/teams/core/tasks/{third}/fail"),
        json!({"agent": "writer", "result": "cannot"}),
    );
    assert_eq!(r.json()["status"], "failed", "{}", r.body);
}
