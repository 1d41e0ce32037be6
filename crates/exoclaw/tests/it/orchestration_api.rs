//! The operator surface of orchestration against the real binary: links
//! over HTTP, the WebSocket and the CLI with every refusal; the delegation
//! history of real delegations (the fake provider scripted per model) with
//! its filters, paging and the own-user rule; bindings and the WebSocket
//! chat they route; tenant isolation. The storage-bound ones run on SQLite
//! and on PostgreSQL.

use crate::chat::{Setup, setup_with};
use crate::support::*;
use crate::ws::{Ws, call, connected, open, recv};
use exoclaw_core::provider::ToolCall;
use exoclaw_providers::fake::Reply;
use serde_json::{Value, json};
use std::path::Path;

fn req(s: &Setup, method: &str, path: &str, key: &str, body: Option<Value>) -> Response {
    let body = body.map(|b| b.to_string());
    request(s.gw.addr, method, path, Some(key), body.as_deref())
}

fn code(r: &Response) -> String {
    r.json()["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn message(r: &Response) -> String {
    r.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A CLI command that succeeds: its stdout.
fn cli_ok(home: &Path, env: &[(&str, &str)], args: &[&str]) -> String {
    let out = run(home, env, args);
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// A CLI command that fails: its `error: ...` line.
fn cli_err(home: &Path, env: &[(&str, &str)], args: &[&str]) -> String {
    let out = run(home, env, args);
    assert!(
        !out.status.success(),
        "{args:?} succeeded: {}",
        stdout(&out)
    );
    error_line(&out)
}

fn cli_json(home: &Path, env: &[(&str, &str)], args: &[&str]) -> Value {
    let out = cli_ok(home, env, args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

/// `users add NAME --role ROLE --tenant T --json`: (user id, key).
fn add_user(
    s: &Setup,
    env: &[(&str, &str)],
    name: &str,
    role: &str,
    tenant: &str,
) -> (String, String) {
    let v = cli_json(
        &s.home.path,
        env,
        &[
            "users", "add", name, "--role", role, "--tenant", tenant, "--json",
        ],
    );
    (
        v["id"].as_str().unwrap().to_owned(),
        v["api_key"].as_str().unwrap().to_owned(),
    )
}

/// Create agent `id` answering with `model`.
fn agent(s: &Setup, key: &str, id: &str, model: &str) {
    let r = req(
        s,
        "POST",
        "/v1/agents",
        key,
        Some(json!({"id": id, "config": {"model": model}})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
}

/// The audit events whose action starts with `prefix`, in the token's
/// tenant, newest first.
fn audited(s: &Setup, prefix: &str) -> Vec<Value> {
    let r = req(s, "GET", &format!("/v1/audit?action={prefix}"), TOKEN, None);
    assert_eq!(r.status, 200, "{}", r.body);
    let events = r.json()["events"].as_array().unwrap().clone();
    assert!(
        events
            .iter()
            .all(|e| e["action"].as_str().unwrap().starts_with(prefix))
    );
    events
}

/// A WebSocket connected with `key`.
fn ws_as(s: &Setup, key: &str) -> Ws {
    let mut ws = open(&s.gw, &[]).unwrap();
    let (r, _) = call(
        &mut ws,
        "c",
        "connect",
        json!({"token": key, "protocol": 1}),
    );
    assert_eq!(r["ok"], true, "{r}");
    ws
}

fn ws_code(r: &Value) -> &str {
    r["error"]["code"].as_str().unwrap_or_default()
}

#[test]
fn links_over_http_the_websocket_and_the_cli_with_every_refusal() {
    let s = setup_with("{}", &[]);
    let env = [("EXOCLAW_GATEWAY_TOKEN", TOKEN)];
    for a in ["boss", "research", "writer"] {
        agent(&s, TOKEN, a, &format!("{a}-model"));
    }
    let links = |agent: &str| req(&s, "GET", &format!("/v1/agents/{agent}/links"), TOKEN, None);
    assert_eq!(links("boss").json(), json!({"links": []}));
    assert_eq!(links("nobody").status, 404);

    // HTTP: create with the defaults.
    let r = req(
        &s,
        "POST",
        "/v1/agents/boss/links",
        TOKEN,
        Some(json!({"target": "research"})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let link = r.json();
    assert_eq!(link["source"], "boss");
    assert_eq!(link["target"], "research");
    assert_eq!(link["direction"], "outbound");
    assert_eq!(link["max_concurrent"], Value::Null);
    assert_eq!(link["users"], json!({"allow": [], "deny": []}));
    assert!(link["created_at"].as_i64().unwrap() > 0);
    // The target lists it too; the third agent does not.
    assert_eq!(links("research").json(), json!({"links": [link]}));
    assert_eq!(links("writer").json(), json!({"links": []}));

    // Every refusal, with its status, code and the field it names.
    for (path, body, status, want_code, want) in [
        (
            "/v1/agents/boss/links",
            json!({"target": "nobody"}),
            422,
            "agent.unknown",
            "target: no agent \"nobody\"",
        ),
        (
            "/v1/agents/nobody/links",
            json!({"target": "boss"}),
            404,
            "not_found",
            "nobody",
        ),
        (
            "/v1/agents/boss/links",
            json!({"target": "research"}),
            409,
            "conflict",
            "boss to research",
        ),
        (
            "/v1/agents/boss/links",
            json!({"target": "boss"}),
            400,
            "request.invalid",
            "itself",
        ),
        (
            "/v1/agents/boss/links",
            json!({"target": "writer", "max_concurrent": 0}),
            400,
            "request.invalid",
            "max_concurrent",
        ),
        (
            "/v1/agents/boss/links",
            json!({"target": "writer", "max_concurrent": 10001}),
            400,
            "request.invalid",
            "max_concurrent",
        ),
        (
            "/v1/agents/boss/links",
            json!({"target": "writer", "direction": "sideways"}),
            400,
            "request.invalid",
            "direction",
        ),
        (
            "/v1/agents/boss/links",
            json!({"target": "writer", "users": {"allow": [""]}}),
            400,
            "request.invalid",
            "users.allow[0]",
        ),
        (
            "/v1/agents/boss/links",
            json!({"target": "writer", "colour": "red"}),
            422,
            "request.invalid_json",
            "colour",
        ),
        (
            "/v1/agents/boss/links",
            json!({"target": "writer", "users": {"allow": [], "maybe": []}}),
            422,
            "request.invalid_json",
            "maybe",
        ),
    ] {
        let r = req(&s, "POST", path, TOKEN, Some(body.clone()));
        assert_eq!(r.status, status, "{body}: {}", r.body);
        assert_eq!(code(&r), want_code, "{body}: {}", r.body);
        assert!(message(&r).contains(want), "{body}: {}", r.body);
    }
    let r = req(
        &s,
        "POST",
        "/v1/agents/boss/links",
        TOKEN,
        Some(
            json!({"target": "writer", "direction": "bidirectional", "max_concurrent": 10000,
                    "users": {"allow": ["alice"], "deny": ["eve"]}}),
        ),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["max_concurrent"], 10000);
    assert_eq!(
        r.json()["users"],
        json!({"allow": ["alice"], "deny": ["eve"]})
    );
    assert_eq!(links("boss").json()["links"].as_array().unwrap().len(), 2);

    // Deleting: only the link's own direction; the reverse is named.
    let r = req(&s, "DELETE", "/v1/agents/research/links/boss", TOKEN, None);
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(
        message(&r).contains("DELETE /v1/agents/boss/links/research"),
        "{}",
        r.body
    );
    let r = req(
        &s,
        "DELETE",
        "/v1/agents/research/links/writer",
        TOKEN,
        None,
    );
    assert_eq!(r.status, 404);
    assert!(!message(&r).contains("DELETE"), "{}", r.body);
    assert_eq!(
        req(&s, "DELETE", "/v1/agents/nobody/links/boss", TOKEN, None).status,
        404
    );
    let r = req(&s, "DELETE", "/v1/agents/boss/links/research", TOKEN, None);
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(
        req(&s, "DELETE", "/v1/agents/boss/links/research", TOKEN, None).status,
        404
    );
    let linked = audited(&s, "agent.link");
    assert_eq!(linked.len(), 2, "{linked:?}");
    assert_eq!(linked[1]["actor"], "gateway-token");
    assert_eq!(linked[1]["resource"], "agent:boss");
    assert_eq!(linked[1]["detail"]["target"], "research");
    assert!(linked[1]["request_id"].is_string());
    let unlinked = audited(&s, "agent.unlink");
    assert_eq!(unlinked.len(), 1);
    assert_eq!(unlinked[0]["detail"]["target"], "research");

    // The WebSocket: the same operations and answers.
    let mut ws = connected(&s.gw);
    let (r, _) = call(
        &mut ws,
        "1",
        "agents.links.create",
        json!({"source": "research", "target": "writer", "direction": "inbound", "max_concurrent": 2}),
    );
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["result"]["direction"], "inbound");
    assert_eq!(r["result"]["max_concurrent"], 2);
    let (r, _) = call(
        &mut ws,
        "2",
        "agents.links.list",
        json!({"agent": "writer"}),
    );
    assert_eq!(r["result"], links("writer").json(), "{r}");
    let (r, _) = call(&mut ws, "3", "agents.links.list", json!({}));
    assert_eq!(r["result"]["links"].as_array().unwrap().len(), 2, "{r}");
    for (params, want_code, want) in [
        (
            json!({"source": "research", "target": "writer"}),
            "conflict",
            "research to writer",
        ),
        (
            json!({"source": "research", "target": "research"}),
            "request.invalid",
            "itself",
        ),
        (
            json!({"source": "nobody", "target": "research"}),
            "not_found",
            "nobody",
        ),
        (
            json!({"source": "research", "target": "nobody"}),
            "agent.unknown",
            "nobody",
        ),
        (
            json!({"source": "research", "target": "boss", "direction": "up"}),
            "request.invalid",
            "direction",
        ),
        (
            json!({"source": "research", "target": "boss", "max_concurrent": -1}),
            "request.invalid",
            "max_concurrent",
        ),
        (json!({"target": "boss"}), "request.invalid", "source"),
    ] {
        let (r, _) = call(&mut ws, "4", "agents.links.create", params.clone());
        assert_eq!(ws_code(&r), want_code, "{params}: {r}");
        assert!(
            r["error"]["message"].as_str().unwrap().contains(want),
            "{params}: {r}"
        );
    }
    let (r, _) = call(
        &mut ws,
        "5",
        "agents.links.delete",
        json!({"source": "writer", "target": "research"}),
    );
    assert_eq!(ws_code(&r), "not_found", "{r}");
    let m = r["error"]["message"].as_str().unwrap();
    assert!(
        m.contains(r#"agents.links.delete {"source":"research","target":"writer"}"#),
        "{m}"
    );
    let (r, _) = call(
        &mut ws,
        "6",
        "agents.links.delete",
        json!({"source": "research", "target": "writer"}),
    );
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["result"], json!({}));

    // The CLI: writes audited as `cli`, listings as tables or the API's
    // document.
    let home = &s.home.path;
    let out = cli_ok(
        home,
        &env,
        &[
            "agent",
            "link",
            "writer",
            "research",
            "--direction",
            "bidirectional",
            "--max-concurrent",
            "3",
            "--allow-user",
            "alice",
            "--allow-user",
            "bob",
            "--deny-user",
            "eve",
        ],
    );
    assert!(out.contains("linked writer -> research"), "{out}");
    let doc = cli_json(home, &env, &["agent", "links", "writer", "--json"]);
    assert_eq!(doc, links("writer").json());
    let mine = doc["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["source"] == "writer")
        .unwrap()
        .clone();
    assert_eq!(
        mine["users"],
        json!({"allow": ["alice", "bob"], "deny": ["eve"]})
    );
    assert_eq!(mine["max_concurrent"], 3);
    let table = cli_ok(home, &env, &["agent", "links"]);
    let mut lines = table.lines();
    assert!(lines.next().unwrap().starts_with("SOURCE"), "{table}");
    assert_eq!(lines.count(), 2, "{table}");
    assert!(table.contains("alice,bob"), "{table}");
    let none = cli_ok(home, &env, &["agent", "links", "--tenant", "other"]);
    assert_eq!(none.trim(), "no links");
    for (args, want) in [
        (
            vec!["agent", "link", "writer", "research"],
            "writer to research",
        ),
        (vec!["agent", "link", "writer", "writer"], "itself"),
        (vec!["agent", "link", "writer", "nobody"], "nobody"),
        (
            vec!["agent", "link", "writer", "boss", "--tenant", "other"],
            "writer",
        ),
        (vec!["agent", "links", "nobody"], "nobody"),
        (
            vec!["agent", "unlink", "research", "writer"],
            "exoclaw agent unlink writer research",
        ),
    ] {
        let e = cli_err(home, &env, &args);
        assert!(e.contains(want), "{args:?}: {e}");
    }
    for bad in [
        vec!["agent", "link", "writer", "boss", "--direction", "up"],
        vec!["agent", "link", "writer", "boss", "--max-concurrent", "0"],
    ] {
        let out = run(home, &env, &bad);
        assert!(!out.status.success(), "{bad:?}");
    }
    let out = cli_ok(home, &env, &["agent", "unlink", "writer", "research"]);
    assert!(out.contains("unlinked writer -> research"), "{out}");
    let cli_events: Vec<Value> = audited(&s, "agent.")
        .into_iter()
        .filter(|e| e["actor"] == "cli")
        .collect();
    let actions: Vec<&str> = cli_events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["agent.unlink", "agent.link"], "{cli_events:?}");
    assert_eq!(cli_events[1]["detail"]["users"]["deny"], json!(["eve"]));
}

/// One real delegation from `caller` (model `caller-model`) to `research`
/// (`research-model`), in a chat as `key` with the OpenAI `user` `peer`.
fn delegate_once(s: &Setup, key: &str, peer: &str, n: usize) {
    s.fake.push_for(
        "caller-model",
        Reply::tool_calls([ToolCall {
            id: format!("call-{n}"),
            name: "delegate".into(),
            arguments: json!({"agent": "research", "task": format!("find x #{n}")}),
        }]),
    );
    s.fake.push_for("research-model", Reply::text("found"));
    s.fake.push_for("caller-model", Reply::text("done"));
    let r = req(
        s,
        "POST",
        "/v1/chat/completions",
        key,
        Some(json!({"model": "caller", "user": peer,
                    "messages": [{"role": "user", "content": format!("go {n}")}]})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "done",
        "{}",
        r.body
    );
}

fn listed(s: &Setup, key: &str, query: &str) -> Value {
    let r = req(s, "GET", &format!("/v1/delegations{query}"), key, None);
    assert_eq!(r.status, 200, "{query}: {}", r.body);
    r.json()
}

fn ids(page: &Value) -> Vec<String> {
    page["delegations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect()
}

fn delegation_history(extra_env: &[(&str, &str)]) {
    let s = setup_with("{}", extra_env);
    let mut env = vec![("EXOCLAW_GATEWAY_TOKEN", TOKEN)];
    env.extend_from_slice(extra_env);
    agent(&s, TOKEN, "caller", "caller-model");
    agent(&s, TOKEN, "research", "research-model");
    let r = req(
        &s,
        "POST",
        "/v1/agents/caller/links",
        TOKEN,
        Some(json!({"target": "research"})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let (alice_id, alice) = add_user(&s, &env, "alice", "user", "default");
    let (bob_id, bob) = add_user(&s, &env, "bob", "user", "default");
    // Alice twice, Bob once, the owner once: newest first they are
    // owner, bob, alice, alice.
    delegate_once(&s, &alice, "a", 1);
    delegate_once(&s, &alice, "a", 2);
    delegate_once(&s, &bob, "b", 3);
    delegate_once(&s, TOKEN, "o", 4);

    let all = listed(&s, TOKEN, "");
    assert_eq!(all["next_cursor"], Value::Null, "{all}");
    let rows = all["delegations"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "{all}");
    let users: Vec<&str> = rows
        .iter()
        .map(|d| d["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        users,
        [
            "owner",
            bob_id.as_str(),
            alice_id.as_str(),
            alice_id.as_str()
        ]
    );
    let d = &rows[1];
    let mut fields: Vec<&str> = d.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "announced",
            "caller_agent",
            "caller_session",
            "child_session",
            "child_trace_id",
            "cost_micros",
            "error_code",
            "finished_at",
            "id",
            "input_tokens",
            "kind",
            "mode",
            "output_tokens",
            "parent_id",
            "parent_trace_id",
            "started_at",
            "status",
            "target_agent",
            "task_digest",
            "user_id",
        ],
        "every field of a delegation but its owner instance: {d}"
    );
    assert_eq!(d["kind"], "delegate");
    assert_eq!(d["mode"], "sync");
    assert_eq!(d["status"], "done");
    assert_eq!(d["caller_agent"], "caller");
    assert_eq!(d["target_agent"], "research");
    assert_eq!(d["parent_id"], Value::Null);
    assert_eq!(d["error_code"], Value::Null);
    assert_eq!(d["announced"], false);
    assert_eq!(d["task_digest"].as_str().unwrap().len(), 64);
    assert!(
        d["caller_session"].is_string() && d["child_session"].is_string(),
        "{d}"
    );
    assert!(
        d["parent_trace_id"].is_string() && d["child_trace_id"].is_string(),
        "{d}"
    );
    assert!(d["finished_at"].as_i64().unwrap() >= d["started_at"].as_i64().unwrap());
    // The child's trace is readable.
    let trace = req(
        &s,
        "GET",
        &format!("/v1/traces/{}", d["child_trace_id"].as_str().unwrap()),
        TOKEN,
        None,
    );
    assert_eq!(trace.status, 200, "{}", trace.body);
    // One by id.
    let id = d["id"].as_str().unwrap();
    let one = req(&s, "GET", &format!("/v1/delegations/{id}"), TOKEN, None);
    assert_eq!(one.status, 200);
    assert_eq!(&one.json(), d);
    assert_eq!(
        req(&s, "GET", "/v1/delegations/no-such-id", TOKEN, None).status,
        404
    );

    // Filters.
    let all_ids = ids(&all);
    for (query, want) in [
        ("?caller=caller", all_ids.clone()),
        ("?target=research", all_ids.clone()),
        ("?caller=research", vec![]),
        ("?status=done&kind=delegate", all_ids.clone()),
        ("?status=failed", vec![]),
        ("?kind=spawn", vec![]),
        (&*format!("?user={alice_id}"), all_ids[2..].to_vec()),
        (
            &*format!("?user={bob_id}&status=done"),
            all_ids[1..2].to_vec(),
        ),
    ] {
        assert_eq!(ids(&listed(&s, TOKEN, query)), want, "{query}");
    }
    for query in [
        "?limit=0",
        "?limit=1001",
        "?limit=-1",
        "?status=ok",
        "?kind=clone",
        "?caller=Not%20An%20Id",
        "?before=soon",
        "?stauts=done",
    ] {
        let r = req(&s, "GET", &format!("/v1/delegations{query}"), TOKEN, None);
        assert_eq!(r.status, 400, "{query}: {}", r.body);
        assert_eq!(code(&r), "request.invalid", "{query}");
    }

    // Paging: a full page says where the next starts; the last says null.
    let first = listed(&s, TOKEN, "?limit=3");
    assert_eq!(ids(&first), all_ids[..3].to_vec());
    let next = first["next_cursor"].as_str().unwrap().to_owned();
    assert_eq!(
        next,
        format!(
            "{}.{}",
            first["delegations"][2]["started_at"].as_i64().unwrap(),
            first["delegations"][2]["id"].as_str().unwrap()
        )
    );
    let second = listed(&s, TOKEN, &format!("?limit=3&cursor={next}"));
    assert_eq!(ids(&second), all_ids[3..].to_vec());
    assert_eq!(second["next_cursor"], Value::Null);
    let exact = listed(&s, TOKEN, "?limit=2");
    let next = exact["next_cursor"].as_str().unwrap().to_owned();
    let rest = listed(&s, TOKEN, &format!("?limit=2&cursor={next}"));
    assert_eq!(ids(&rest), all_ids[2..].to_vec());
    // Full, so it points further, to an empty last page.
    let next = rest["next_cursor"].as_str().unwrap().to_owned();
    let empty = listed(&s, TOKEN, &format!("?limit=2&cursor={next}"));
    assert_eq!(empty, json!({"delegations": [], "next_cursor": null}));

    // The own-user rule: a user sees their own, asking for another's
    // matches nothing, another's by id is not found.
    let mine = listed(&s, &alice, "");
    assert_eq!(ids(&mine), all_ids[2..].to_vec());
    assert_eq!(
        ids(&listed(&s, &alice, &format!("?user={alice_id}"))),
        all_ids[2..].to_vec()
    );
    assert_eq!(
        listed(&s, &alice, &format!("?user={bob_id}")),
        json!({"delegations": [], "next_cursor": null})
    );
    assert_eq!(
        ids(&listed(&s, &alice, "?user=owner")),
        Vec::<String>::new()
    );
    let bobs = &all_ids[1];
    let r = req(&s, "GET", &format!("/v1/delegations/{bobs}"), &alice, None);
    assert_eq!(r.status, 404, "{}", r.body);
    let r = req(
        &s,
        "GET",
        &format!("/v1/delegations/{}", all_ids[2]),
        &alice,
        None,
    );
    assert_eq!(r.status, 200);
    assert_eq!(ids(&listed(&s, &bob, "")), all_ids[1..2].to_vec());

    // The WebSocket: the same pages and the same rule.
    let mut ws = ws_as(&s, &alice);
    let (r, _) = call(&mut ws, "1", "delegations.list", json!({}));
    assert_eq!(r["result"], mine, "{r}");
    let (r, _) = call(&mut ws, "2", "delegations.list", json!({"user": bob_id}));
    assert_eq!(
        r["result"],
        json!({"delegations": [], "next_cursor": null}),
        "{r}"
    );
    let (r, _) = call(&mut ws, "3", "delegations.get", json!({"id": bobs}));
    assert_eq!(ws_code(&r), "not_found", "{r}");
    let (r, _) = call(&mut ws, "4", "delegations.get", json!({"id": all_ids[3]}));
    assert_eq!(r["result"]["id"], all_ids[3].as_str(), "{r}");
    let (r, _) = call(&mut ws, "5", "delegations.list", json!({"limit": 0}));
    assert_eq!(ws_code(&r), "request.invalid", "{r}");
    let mut owner_ws = connected(&s.gw);
    let (r, _) = call(&mut owner_ws, "1", "delegations.list", json!({"limit": 3}));
    assert_eq!(r["result"], first, "{r}");

    // The CLI prints the same document, or a table that says how to go on.
    let home = &s.home.path;
    assert_eq!(
        cli_json(home, &env, &["delegations", "list", "--json"]),
        all
    );
    assert_eq!(
        cli_json(
            home,
            &env,
            &["delegations", "list", "--limit", "3", "--json"]
        ),
        first
    );
    let table = cli_ok(home, &env, &["delegations", "list", "--limit", "3"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("STATUS"),
        "{table}"
    );
    assert_eq!(lines.len(), 5, "{table}");
    let first_next = first["next_cursor"].as_str().unwrap();
    assert_eq!(lines[4], format!("older ones: add --cursor {first_next}"));
    let filtered = cli_json(
        home,
        &env,
        &[
            "delegations",
            "list",
            "--user",
            &alice_id,
            "--status",
            "done",
            "--caller",
            "caller",
            "--target",
            "research",
            "--kind",
            "delegate",
            "--json",
        ],
    );
    assert_eq!(ids(&filtered), all_ids[2..].to_vec());
    let none = cli_ok(home, &env, &["delegations", "list", "--status", "failed"]);
    assert_eq!(none.trim(), "no delegations");
    let shown = cli_json(home, &env, &["delegations", "show", id, "--json"]);
    assert_eq!(&shown, d);
    let text = cli_ok(home, &env, &["delegations", "show", id]);
    assert!(text.contains(&format!("{:<16}{id}\n", "id")), "{text}");
    assert!(text.contains(&format!("{:<16}done\n", "status")), "{text}");
    let e = cli_err(home, &env, &["delegations", "show", "no-such-id"]);
    assert!(e.contains("no delegation"), "{e}");
    let e = cli_err(
        home,
        &env,
        &["delegations", "show", id, "--tenant", "other"],
    );
    assert!(e.contains("no delegation"), "{e}");
}

#[test]
fn delegation_history_lists_filters_pages_and_keeps_users_apart_on_sqlite() {
    delegation_history(&[]);
}

#[test]
fn delegation_history_lists_filters_pages_and_keeps_users_apart_on_postgres() {
    let Some(dsn) = crate::postgres::fresh_database() else {
        return;
    };
    delegation_history(&[("EXOCLAW_POSTGRES_DSN", &dsn)]);
}

/// Events of the run started by `chat.send` until its end; the end.
fn run_end(ws: &mut Ws) -> Value {
    loop {
        let f = recv(ws);
        if f["event"] == "chat.done" || f["event"] == "chat.error" {
            return f;
        }
    }
}

fn bindings(extra_env: &[(&str, &str)]) {
    let s = setup_with("{}", extra_env);
    let mut env = vec![("EXOCLAW_GATEWAY_TOKEN", TOKEN)];
    env.extend_from_slice(extra_env);
    agent(&s, TOKEN, "support", "support-model");
    agent(&s, TOKEN, "sales", "sales-model");
    assert_eq!(
        req(&s, "GET", "/v1/bindings", TOKEN, None).json(),
        json!({"bindings": []})
    );
    let r = req(
        &s,
        "POST",
        "/v1/bindings",
        TOKEN,
        Some(json!({"agent": "support", "channel": "ws", "peer": "desk"})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let desk = r.json();
    assert_eq!(desk["agent"], "support");
    assert_eq!(desk["channel"], "ws");
    assert_eq!(desk["peer"], "desk");
    assert_eq!(desk["account"], Value::Null);
    assert_eq!(desk["user"], Value::Null);
    let desk_id = desk["id"].as_str().unwrap().to_owned();
    for (body, status, want_code, want) in [
        (
            json!({"agent": "support", "channel": "ws", "peer": "desk"}),
            409,
            "conflict",
            "same",
        ),
        (
            json!({"agent": "nobody", "channel": "ws"}),
            404,
            "not_found",
            "nobody",
        ),
        (
            json!({"agent": "support", "channel": ""}),
            400,
            "request.invalid",
            "channel",
        ),
        (
            json!({"agent": "support", "peer": " "}),
            400,
            "request.invalid",
            "peer",
        ),
        (
            json!({"agent": "support", "user": ""}),
            400,
            "request.invalid",
            "user",
        ),
        (
            json!({"agent": "support", "account": "x".repeat(257)}),
            400,
            "request.invalid",
            "account",
        ),
        (
            json!({"agent": "support", "room": "1"}),
            422,
            "request.invalid_json",
            "room",
        ),
        (
            json!({"channel": "ws"}),
            422,
            "request.invalid_json",
            "agent",
        ),
    ] {
        let r = req(&s, "POST", "/v1/bindings", TOKEN, Some(body.clone()));
        assert_eq!(r.status, status, "{body}: {}", r.body);
        assert_eq!(code(&r), want_code, "{body}: {}", r.body);
        assert!(message(&r).contains(want), "{body}: {}", r.body);
    }

    // WebSocket chat without `agent`: the binding of (ws, peer, user)
    // answers; without a match, `default`.
    let mut ws = connected(&s.gw);
    s.fake
        .push_for("support-model", Reply::text("support here"));
    let (r, _) = call(
        &mut ws,
        "1",
        "chat.send",
        json!({"message": "hi", "peer": "desk"}),
    );
    assert_eq!(r["ok"], true, "{r}");
    let session = r["result"]["session_id"].as_str().unwrap().to_owned();
    let end = run_end(&mut ws);
    assert_eq!(end["params"]["text"], "support here", "{end}");
    s.fake.push(Reply::text("default here"));
    let (r, _) = call(
        &mut ws,
        "2",
        "chat.send",
        json!({"message": "hi", "peer": "lobby"}),
    );
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(run_end(&mut ws)["params"]["text"], "default here");
    // A more specific binding (the user too) wins over the peer's alone;
    // an explicit `agent` wins over every binding.
    let (r, _) = call(
        &mut ws,
        "3",
        "bindings.create",
        json!({"agent": "sales", "channel": "ws", "peer": "desk", "user": "owner"}),
    );
    assert_eq!(r["ok"], true, "{r}");
    let sales = r["result"].clone();
    s.fake.push_for("sales-model", Reply::text("sales here"));
    let (r, _) = call(
        &mut ws,
        "4",
        "chat.send",
        json!({"message": "hi", "peer": "desk"}),
    );
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(run_end(&mut ws)["params"]["text"], "sales here");
    s.fake.push_for("support-model", Reply::text("asked for"));
    let (r, _) = call(
        &mut ws,
        "5",
        "chat.send",
        json!({"message": "hi", "peer": "desk", "agent": "support"}),
    );
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(run_end(&mut ws)["params"]["text"], "asked for");
    let (r, _) = call(&mut ws, "6", "sessions.list", json!({"agent": "support"}));
    let sessions = r["result"]["sessions"].as_array().unwrap();
    assert!(sessions.iter().any(|x| x["id"] == session.as_str()), "{r}");

    // The WebSocket methods answer what HTTP answers.
    let (r, _) = call(&mut ws, "7", "bindings.list", json!({}));
    assert_eq!(
        r["result"],
        req(&s, "GET", "/v1/bindings", TOKEN, None).json()
    );
    assert_eq!(r["result"]["bindings"], json!([desk, sales]));
    for (method, params, want_code) in [
        (
            "bindings.create",
            json!({"agent": "sales", "channel": "ws", "peer": "desk", "user": "owner"}),
            "conflict",
        ),
        (
            "bindings.create",
            json!({"agent": "sales", "peer": ""}),
            "request.invalid",
        ),
        ("bindings.create", json!({"agent": "ghost"}), "not_found"),
        (
            "bindings.create",
            json!({"agent": "sales", "room": "x"}),
            "request.invalid",
        ),
        (
            "bindings.delete",
            json!({"id": "no-such-binding"}),
            "not_found",
        ),
        ("bindings.delete", json!({}), "request.invalid"),
        ("bindings.list", json!({"tenant": "x"}), "request.invalid"),
    ] {
        let (r, _) = call(&mut ws, "8", method, params.clone());
        assert_eq!(ws_code(&r), want_code, "{method} {params}: {r}");
    }
    let (r, _) = call(&mut ws, "9", "bindings.delete", json!({"id": sales["id"]}));
    assert_eq!(r["result"], json!({}), "{r}");

    // HTTP delete, twice.
    let path = format!("/v1/bindings/{desk_id}");
    assert_eq!(req(&s, "DELETE", &path, TOKEN, None).status, 204);
    let r = req(&s, "DELETE", &path, TOKEN, None);
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(
        req(&s, "GET", "/v1/bindings", TOKEN, None).json(),
        json!({"bindings": []})
    );
    let created = audited(&s, "binding.create");
    assert_eq!(created.len(), 2, "{created:?}");
    assert_eq!(created[1]["resource"], format!("binding:{desk_id}"));
    assert_eq!(created[1]["agent"], "support");
    assert_eq!(created[1]["detail"]["peer"], "desk");
    assert_eq!(audited(&s, "binding.delete").len(), 2);

    // The CLI.
    let home = &s.home.path;
    let empty = cli_ok(home, &env, &["bindings", "list"]);
    assert!(empty.starts_with("no bindings"), "{empty}");
    let out = cli_ok(
        home,
        &env,
        &[
            "bindings",
            "add",
            "--agent",
            "sales",
            "--channel",
            "telegram",
            "--account",
            "bot2",
        ],
    );
    assert!(
        out.starts_with("added binding ") && out.contains("-> sales"),
        "{out}"
    );
    let doc = cli_json(home, &env, &["bindings", "list", "--json"]);
    assert_eq!(doc, req(&s, "GET", "/v1/bindings", TOKEN, None).json());
    let b = &doc["bindings"][0];
    assert_eq!(
        (b["channel"].as_str(), b["account"].as_str()),
        (Some("telegram"), Some("bot2"))
    );
    let table = cli_ok(home, &env, &["bindings", "list"]);
    assert!(
        table.starts_with("ID") && table.contains("telegram"),
        "{table}"
    );
    assert_eq!(table.lines().count(), 2, "{table}");
    for (args, want) in [
        (
            vec![
                "bindings",
                "add",
                "--agent",
                "sales",
                "--channel",
                "telegram",
                "--account",
                "bot2",
            ],
            "same",
        ),
        (vec!["bindings", "add", "--agent", "nobody"], "nobody"),
        (
            vec!["bindings", "add", "--agent", "sales", "--peer", ""],
            "peer",
        ),
        (vec!["bindings", "remove", "no-such-binding"], "no binding"),
        (
            vec!["bindings", "add", "--agent", "sales", "--tenant", "other"],
            "sales",
        ),
    ] {
        let e = cli_err(home, &env, &args);
        assert!(e.contains(want), "{args:?}: {e}");
    }
    let id = b["id"].as_str().unwrap();
    let e = cli_err(home, &env, &["bindings", "remove", id, "--tenant", "other"]);
    assert!(e.contains("no binding"), "{e}");
    let out = cli_ok(home, &env, &["bindings", "remove", id]);
    assert!(out.contains(id), "{out}");
    let by_cli: Vec<Value> = audited(&s, "binding.")
        .into_iter()
        .filter(|e| e["actor"] == "cli")
        .collect();
    let actions: Vec<&str> = by_cli
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["binding.delete", "binding.create"], "{by_cli:?}");
}

#[test]
fn bindings_route_the_websocket_chat_and_are_managed_everywhere_on_sqlite() {
    bindings(&[]);
}

#[test]
fn bindings_route_the_websocket_chat_and_are_managed_everywhere_on_postgres() {
    let Some(dsn) = crate::postgres::fresh_database() else {
        return;
    };
    bindings(&[("EXOCLAW_POSTGRES_DSN", &dsn)]);
}

fn tenant_isolation(extra_env: &[(&str, &str)]) {
    let s = setup_with("{}", extra_env);
    let mut env = vec![("EXOCLAW_GATEWAY_TOKEN", TOKEN)];
    env.extend_from_slice(extra_env);
    let r = req(
        &s,
        "POST",
        "/v1/tenants",
        TOKEN,
        Some(json!({"id": "tenant-b"})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let (_, b_admin) = add_user(&s, &env, "b-admin", "admin", "tenant-b");
    // Tenant A (default): two linked agents, a binding, a delegation.
    agent(&s, TOKEN, "caller", "caller-model");
    agent(&s, TOKEN, "research", "research-model");
    let r = req(
        &s,
        "POST",
        "/v1/agents/caller/links",
        TOKEN,
        Some(json!({"target": "research"})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let r = req(
        &s,
        "POST",
        "/v1/bindings",
        TOKEN,
        Some(json!({"agent": "research", "channel": "ws"})),
    );
    let binding = r.json()["id"].as_str().unwrap().to_owned();
    delegate_once(&s, TOKEN, "o", 1);
    let delegation = ids(&listed(&s, TOKEN, ""))[0].clone();
    // Tenant B has agents of the same names: still not A's.
    agent(&s, &b_admin, "caller", "b-model");
    agent(&s, &b_admin, "analyst", "b-model");

    // B's admin sees none of it and reaches none of it.
    assert_eq!(
        req(&s, "GET", "/v1/agents/caller/links", &b_admin, None).json(),
        json!({"links": []})
    );
    for (method, path, body) in [
        ("GET", "/v1/agents/research/links".to_owned(), None),
        (
            "POST",
            "/v1/agents/research/links".to_owned(),
            Some(json!({"target": "caller"})),
        ),
        (
            "DELETE",
            "/v1/agents/caller/links/research".to_owned(),
            None,
        ),
        ("DELETE", format!("/v1/bindings/{binding}"), None),
        ("GET", format!("/v1/delegations/{delegation}"), None),
        (
            "POST",
            "/v1/bindings".to_owned(),
            Some(json!({"agent": "research"})),
        ),
    ] {
        let r = req(&s, method, &path, &b_admin, body);
        assert_eq!(r.status, 404, "b-admin: {method} {path}: {}", r.body);
    }
    // B's own `caller` linked to A's `research`: no such target in B.
    let r = req(
        &s,
        "POST",
        "/v1/agents/caller/links",
        &b_admin,
        Some(json!({"target": "research"})),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(code(&r), "agent.unknown");
    assert_eq!(
        req(&s, "GET", "/v1/bindings", &b_admin, None).json(),
        json!({"bindings": []})
    );
    assert_eq!(
        listed(&s, &b_admin, ""),
        json!({"delegations": [], "next_cursor": null})
    );
    let mut ws = ws_as(&s, &b_admin);
    for (method, params) in [
        ("agents.links.list", json!({"agent": "research"})),
        (
            "agents.links.delete",
            json!({"source": "caller", "target": "research"}),
        ),
        ("delegations.get", json!({"id": delegation})),
        ("bindings.delete", json!({"id": binding})),
    ] {
        let (r, _) = call(&mut ws, "1", method, params.clone());
        assert_eq!(ws_code(&r), "not_found", "{method} {params}: {r}");
    }
    for method in ["agents.links.list", "bindings.list", "delegations.list"] {
        let (r, _) = call(&mut ws, "2", method, json!({}));
        assert_eq!(r["ok"], true, "{method}: {r}");
        let text = r["result"].to_string();
        assert!(
            !text.contains("research") && !text.contains(&delegation),
            "{method}: {text}"
        );
    }
    // B links its own agents; A's listing does not show them.
    let r = req(
        &s,
        "POST",
        "/v1/agents/caller/links",
        &b_admin,
        Some(json!({"target": "analyst"})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let a_links = req(&s, "GET", "/v1/agents/caller/links", TOKEN, None).json();
    assert_eq!(a_links["links"].as_array().unwrap().len(), 1, "{a_links}");
    assert_eq!(a_links["links"][0]["target"], "research");

    // A still has everything.
    assert_eq!(
        req(&s, "GET", "/v1/bindings", TOKEN, None).json()["bindings"][0]["id"],
        binding.as_str()
    );
    assert_eq!(
        req(
            &s,
            "GET",
            &format!("/v1/delegations/{delegation}"),
            TOKEN,
            None
        )
        .status,
        200
    );
    // The CLI keeps tenants apart too.
    let home = &s.home.path;
    let b_links = cli_json(
        home,
        &env,
        &["agent", "links", "--tenant", "tenant-b", "--json"],
    );
    assert_eq!(b_links["links"].as_array().unwrap().len(), 1, "{b_links}");
    assert_eq!(b_links["links"][0]["target"], "analyst");
    let b_hist = cli_json(
        home,
        &env,
        &["delegations", "list", "--tenant", "tenant-b", "--json"],
    );
    assert_eq!(b_hist, json!({"delegations": [], "next_cursor": null}));
}

#[test]
fn another_tenants_admin_never_sees_links_bindings_or_delegations_on_sqlite() {
    tenant_isolation(&[]);
}

#[test]
fn another_tenants_admin_never_sees_links_bindings_or_delegations_on_postgres() {
    let Some(dsn) = crate::postgres::fresh_database() else {
        return;
    };
    tenant_isolation(&[("EXOCLAW_POSTGRES_DSN", &dsn)]);
}
