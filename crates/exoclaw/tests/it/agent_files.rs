//! An agent's context files through `/v1/agents/{id}/files` on the real
//! binary: written, read, in the next turn's system prompt, audited,
//! removed; each tenant's agents keep their own files (a tenant's agent
//! named like another tenant's never reads or writes the other's);
//! refused with the reason named: a name that is not a context file, a
//! file over 64 KiB (the old text kept), an unknown agent, a user's key.

use crate::chat::{chat, setup_with};
use crate::support::*;
use exoclaw_providers::fake::Reply;
use serde_json::{Value, json};

fn put(gw: &Gateway, key: &str, path: &str, content: &str) -> Response {
    let body = json!({"content": content}).to_string();
    request(gw.addr, "PUT", path, Some(key), Some(&body))
}

fn users_add(s: &crate::chat::Setup, name: &str, role: &str, tenant: &str) -> String {
    let out = run(
        &s.home.path,
        &[("EXOCLAW_GATEWAY_TOKEN", TOKEN)],
        &[
            "users", "add", name, "--role", role, "--tenant", tenant, "--json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    v["api_key"].as_str().unwrap().to_owned()
}

#[test]
fn context_files_are_edited_per_tenant_agent_and_reach_the_prompt() {
    let s = setup_with("{}", &[]);
    let soul = "/v1/agents/default/files/SOUL.md";
    assert_eq!(s.gw.get(soul, Some(TOKEN)).status, 404, "none yet");
    let r = put(&s.gw, TOKEN, soul, "You speak like a pirate.\n");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["bytes"], 25);
    let r = s.gw.get(soul, Some(TOKEN));
    assert_eq!(r.json()["content"], "You speak like a pirate.\n");
    let list = s.gw.get("/v1/agents/default/files", Some(TOKEN)).json();
    let names: Vec<(&str, bool)> = list["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["exists"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        names,
        [
            ("SOUL.md", true),
            ("IDENTITY.md", false),
            ("AGENTS.md", false),
            ("USER.md", false),
            ("TOOLS.md", false)
        ]
    );
    assert_eq!(list["max_bytes"], 65536);

    // The next turn's system prompt has it.
    s.fake.push(Reply::text("Arr."));
    let r = chat(
        &s.gw,
        json!({"model": "default", "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let req = s.fake.last_request().unwrap();
    let system = req.body["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        system.contains("## SOUL.md\nYou speak like a pirate."),
        "{system}"
    );

    // Refusals, each naming why; the file keeps its text.
    let r = put(&s.gw, TOKEN, "/v1/agents/default/files/notes.md", "x");
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("is not a context file"), "{}", r.body);
    let r = put(&s.gw, TOKEN, soul, &"y".repeat(65_537));
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(r.body.contains("at most 65536 bytes"), "{}", r.body);
    assert_eq!(
        s.gw.get(soul, Some(TOKEN)).json()["content"],
        "You speak like a pirate.\n"
    );
    assert_eq!(
        put(&s.gw, TOKEN, "/v1/agents/nobody/files/SOUL.md", "x").status,
        404
    );

    // Another tenant's agent of the same name has its own files.
    let r = request(
        s.gw.addr,
        "POST",
        "/v1/tenants",
        Some(TOKEN),
        Some(r#"{"id": "acme"}"#),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let acme = users_add(&s, "acme-admin", "admin", "acme");
    let r = request(
        s.gw.addr,
        "POST",
        "/v1/agents",
        Some(&acme),
        Some(r#"{"id": "default"}"#),
    );
    assert!(r.status == 201 || r.status == 409, "{}", r.body);
    assert_eq!(
        s.gw.get(soul, Some(&acme)).status,
        404,
        "not the default tenant's file"
    );
    assert_eq!(put(&s.gw, &acme, soul, "acme's own soul").status, 200);
    assert_eq!(
        s.gw.get(soul, Some(&acme)).json()["content"],
        "acme's own soul"
    );
    assert_eq!(
        s.gw.get(soul, Some(TOKEN)).json()["content"],
        "You speak like a pirate.\n"
    );

    // A user may read but not write.
    let user = users_add(&s, "reader", "user", "default");
    assert_eq!(s.gw.get(soul, Some(&user)).status, 200);
    assert_eq!(put(&s.gw, &user, soul, "mutiny").status, 403);

    // Removed, and audited both ways.
    let r = request(s.gw.addr, "DELETE", soul, Some(TOKEN), None);
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(s.gw.get(soul, Some(TOKEN)).status, 404);
    assert_eq!(
        request(s.gw.addr, "DELETE", soul, Some(TOKEN), None).status,
        404
    );
    let audit = s.gw.get("/v1/audit?limit=100", Some(TOKEN)).json();
    let actions: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"agent.file.write"), "{actions:?}");
    assert!(actions.contains(&"agent.file.delete"), "{actions:?}");
    assert!(
        !audit.to_string().contains("pirate"),
        "the text is not in the audit log"
    );
}
