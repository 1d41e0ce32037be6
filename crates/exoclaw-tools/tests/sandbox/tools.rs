//! `exec` and `process` through the registry (the one path to a tool).

use crate::{Fixture, assert_no_processes};
use exoclaw_core::tool::{ToolContext, ToolError};
use exoclaw_tools::exec::{CommandRunner, MAX_JOBS_PER_SESSION, tools};
use exoclaw_tools::{InvokeMode, ToolPolicy, ToolRegistry};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

struct Setup {
    f: Fixture,
    reg: ToolRegistry,
    ctx: ToolContext,
    policy: ToolPolicy,
}

/// The hook stands in for the shell policy: it refuses `rm`.
fn deny_rm(command: &str) -> Result<(), ToolError> {
    if command.split_whitespace().any(|w| w == "rm") {
        return Err(ToolError::new(
            "security.shell_denied",
            "rule destructive: rm",
        ));
    }
    Ok(())
}

fn setup() -> Setup {
    let f = Fixture::create();
    let runner = Arc::new(CommandRunner::new(
        f.sandbox.clone(),
        f.policy.clone(),
        Arc::new(deny_rm),
    ));
    let reg = ToolRegistry::new(tools(&runner), None);
    let ctx = ToolContext {
        tenant: "default".into(),
        user: "u1".into(),
        agent: "default".into(),
        session: Some("s1".into()),
        workspace: f.ws().to_path_buf(),
        request_id: None,
        run: Default::default(),
        approved: None,
        call_id: None,
        agents: None,
        lineage: Default::default(),
        cancel: Default::default(),
    };
    let policy = ToolPolicy {
        rate_limit_per_hour: 0,
        ..ToolPolicy::default()
    };
    Setup {
        f,
        reg,
        ctx,
        policy,
    }
}

impl Setup {
    async fn call(&self, name: &str, args: Value, mode: InvokeMode) -> Result<Value, ToolError> {
        self.call_as(&self.ctx, name, args, mode).await
    }

    async fn call_as(
        &self,
        ctx: &ToolContext,
        name: &str,
        args: Value,
        mode: InvokeMode,
    ) -> Result<Value, ToolError> {
        let out = self
            .reg
            .invoke(ctx, &self.policy, name, &args, mode)
            .await?;
        Ok(serde_json::from_str(&out.content).unwrap_or(Value::String(out.content)))
    }

    async fn exec(&self, args: Value) -> Result<Value, ToolError> {
        self.call("exec", args, InvokeMode::Execute).await
    }

    async fn process(&self, args: Value) -> Result<Value, ToolError> {
        self.call("process", args, InvokeMode::Execute).await
    }
}

#[tokio::test]
async fn exec_returns_output_exit_code_and_duration() {
    let s = setup();
    let out = s
        .exec(json!({"command": "echo out; echo err >&2; exit 3"}))
        .await
        .unwrap();
    assert_eq!(out["exit_code"], 3);
    assert_eq!(out["stdout"], "out\n");
    assert_eq!(out["stderr"], "err\n");
    assert_eq!(out["stdout_truncated"], false);
    assert_eq!(out["sandboxed"], true);
    assert!(out["duration_ms"].as_u64().is_some());
}

#[tokio::test]
async fn invalid_arguments_name_the_field() {
    let s = setup();
    for (args, field) in [
        (json!({}), "command"),
        (json!({"command": ""}), "command"),
        (json!({"command": "true", "timeout_sec": 0}), "timeout_sec"),
        (
            json!({"command": "true", "timeout_sec": 100_000}),
            "timeout_sec",
        ),
        (json!({"command": "true", "shell": "bash"}), "shell"),
        (json!({"command": "a\u{0}b"}), "command"),
    ] {
        for mode in [InvokeMode::DryRun, InvokeMode::Execute] {
            let e = s.call("exec", args.clone(), mode).await.unwrap_err();
            assert_eq!(e.code, "tool.invalid_args", "{args}");
            assert!(e.message.contains(field), "{args}: {e}");
        }
    }
    let e = s.process(json!({"action": "poll"})).await.unwrap_err();
    assert!(
        e.code == "tool.invalid_args" && e.message.contains("id"),
        "{e}"
    );
    let e = s.process(json!({"action": "start"})).await.unwrap_err();
    assert!(
        e.code == "tool.invalid_args" && e.message.contains("command"),
        "{e}"
    );
}

#[tokio::test]
async fn the_policy_hook_refuses_before_anything_spawns_with_and_without_dry_run() {
    let s = setup();
    let args = json!({"command": "touch ran; rm -rf /workspace"});
    for mode in [InvokeMode::DryRun, InvokeMode::Execute] {
        let e = s.call("exec", args.clone(), mode).await.unwrap_err();
        assert_eq!(e.code, "security.shell_denied");
    }
    let e = s
        .process(json!({"action": "start", "command": "touch ran; rm x"}))
        .await
        .unwrap_err();
    assert_eq!(e.code, "security.shell_denied");
    assert!(!s.f.ws().join("ran").exists());
    // A dry run of an allowed command spawns nothing either.
    let ok = s
        .call("exec", json!({"command": "touch ran"}), InvokeMode::DryRun)
        .await
        .unwrap();
    assert_eq!(ok, "allow");
    assert!(!s.f.ws().join("ran").exists());
}

#[tokio::test]
async fn exec_timeout_is_a_tool_timeout_and_kills_the_tree() {
    let s = setup();
    let tag = format!("sleep 62.{}", std::process::id() % 100_000);
    let e = s
        .exec(json!({"command": format!("echo started; {tag}1 & {tag}2"), "timeout_sec": 1}))
        .await
        .unwrap_err();
    assert_eq!(e.code, "tool.timeout");
    assert!(e.message.contains("started"), "{e}");
    assert_no_processes(&format!("{tag}1")).await;
}

#[tokio::test]
async fn exec_fails_closed_as_sandbox_unavailable() {
    let s = setup();
    let mut ctx = s.ctx.clone();
    ctx.workspace = s.f.ws().join("no-such-workspace");
    let e = s
        .call_as(
            &ctx,
            "exec",
            json!({"command": "true"}),
            InvokeMode::Execute,
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "security.sandbox_unavailable", "{e}");
}

async fn poll_until_done(s: &Setup, id: &str) -> (String, Value) {
    let mut stdout = String::new();
    for _ in 0..200 {
        let p = s
            .process(json!({"action": "poll", "id": id}))
            .await
            .expect("poll");
        stdout.push_str(p["stdout"].as_str().unwrap_or_default());
        if p["status"] != "running" {
            return (stdout, p);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("job {id} did not finish");
}

#[tokio::test]
async fn background_jobs_stream_output_and_report_their_exit() {
    let s = setup();
    let started = s
        .process(json!({"action": "start", "command": "echo one; sleep 0.3; echo two; exit 4"}))
        .await
        .unwrap();
    let id = started["id"].as_str().unwrap().to_owned();
    let list = s.process(json!({"action": "list"})).await.unwrap();
    assert_eq!(list["jobs"][0]["id"], id.as_str());
    let (stdout, last) = poll_until_done(&s, &id).await;
    assert_eq!(stdout, "one\ntwo\n");
    assert_eq!(last["status"], "exited");
    assert_eq!(last["exit_code"], 4);
    // Reaped once its end was reported.
    let e = s
        .process(json!({"action": "poll", "id": id}))
        .await
        .unwrap_err();
    assert_eq!(e.code, "tool.invalid_args");
    // exec with background=true is the same job table.
    let bg = s
        .exec(json!({"command": "echo bg", "background": true}))
        .await
        .unwrap();
    let (stdout, _) = poll_until_done(&s, bg["id"].as_str().unwrap()).await;
    assert_eq!(stdout, "bg\n");
}

#[tokio::test]
async fn kill_ends_the_whole_tree_and_jobs_are_per_session_and_bounded() {
    let s = setup();
    let tag = format!("sleep 63.{}", std::process::id() % 100_000);
    let mut ids = Vec::new();
    for n in 0..MAX_JOBS_PER_SESSION {
        let j = s
            .process(json!({"action": "start", "command": format!("{tag}{n} & {tag}{n}")}))
            .await
            .unwrap();
        ids.push(j["id"].as_str().unwrap().to_owned());
    }
    let e = s
        .process(json!({"action": "start", "command": "true"}))
        .await
        .unwrap_err();
    assert_eq!(e.code, "tool.limit");
    // Another session sees none of them.
    let mut other = s.ctx.clone();
    other.session = Some("s2".into());
    let e = s
        .call_as(
            &other,
            "process",
            json!({"action": "kill", "id": ids[0]}),
            InvokeMode::Execute,
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "tool.invalid_args");
    let listed = s
        .call_as(
            &other,
            "process",
            json!({"action": "list"}),
            InvokeMode::Execute,
        )
        .await
        .unwrap();
    assert_eq!(listed["jobs"], json!([]));
    for (n, id) in ids.iter().enumerate() {
        let k = s
            .process(json!({"action": "kill", "id": id}))
            .await
            .unwrap();
        assert_eq!(k["killed"], true);
        assert_no_processes(&format!("{tag}{n}")).await;
        let p = s
            .process(json!({"action": "poll", "id": id}))
            .await
            .expect("poll");
        assert_eq!(p["status"], "killed");
    }
    s.process(json!({"action": "start", "command": "true"}))
        .await
        .unwrap();
}
