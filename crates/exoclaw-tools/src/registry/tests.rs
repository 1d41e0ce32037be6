//! The policy path, both sides: what is refused and what still runs.

use super::*;
use crate::fs::builtin;
use exoclaw_core::model::{AuditEvent, AuditFilter, AuditVerify, NewAuditEvent};
use exoclaw_core::store::StoreResult;
use serde_json::json;
use std::sync::Mutex;
use std::time::Duration;

mod pipeline;

#[derive(Default)]
struct MemAudit(Mutex<Vec<NewAuditEvent>>);

#[async_trait]
impl AuditStore for MemAudit {
    async fn append_audit(&self, e: &NewAuditEvent) -> StoreResult<AuditEvent> {
        self.0.lock().unwrap().push(e.clone());
        Ok(AuditEvent {
            id: "x".into(),
            seq: 0,
            tenant_id: e.tenant_id.clone(),
            at: 0,
            actor: e.actor.clone(),
            action: e.action.clone(),
            resource: e.resource.clone(),
            decision: e.decision.clone(),
            reason: e.reason.clone(),
            request_id: e.request_id.clone(),
            agent_id: e.agent_id.clone(),
            session_id: e.session_id.clone(),
            detail: e.detail.clone(),
            tenant_seq: 0,
            prev_hash: None,
            hash: None,
        })
    }
    async fn list_audit(&self, _: &AuditFilter) -> StoreResult<Vec<AuditEvent>> {
        Ok(Vec::new())
    }
    async fn verify_audit(&self, _: Option<&exoclaw_core::TenantId>) -> StoreResult<AuditVerify> {
        Ok(AuditVerify::default())
    }
}

struct Slow;

#[async_trait]
impl Tool for Slow {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "slow".into(),
            description: "sleeps".into(),
            parameters: json!({"type": "object"}),
        }
    }
    fn effect(&self) -> ToolEffect {
        ToolEffect::ReadOnly
    }
    async fn check(&self, _: &ToolContext, _: &Value) -> Result<Check, ToolError> {
        Ok(Check::Allow)
    }
    async fn call(&self, _: &ToolContext, _: &Value) -> Result<ToolOutput, ToolError> {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(ToolOutput::text("late"))
    }
}

fn setup() -> (tempfile::TempDir, ToolRegistry, Arc<MemAudit>, ToolContext) {
    let dir = tempfile::tempdir().unwrap();
    let audit = Arc::new(MemAudit::default());
    let mut tools = builtin();
    tools.push(Arc::new(Slow));
    let reg = ToolRegistry::new(tools, Some(audit.clone()));
    let ctx = ToolContext {
        tenant: "default".into(),
        user: "u1".into(),
        agent: "default".into(),
        session: Some("s1".into()),
        workspace: dir.path().to_path_buf(),
        request_id: Some("r1".into()),
        run: Default::default(),
        approved: None,
        call_id: None,
        agents: None,
        lineage: Default::default(),
        cancel: Default::default(),
    };
    (dir, reg, audit, ctx)
}

async fn call(
    reg: &ToolRegistry,
    ctx: &ToolContext,
    p: &ToolPolicy,
    name: &str,
    args: Value,
) -> Result<ToolOutput, ToolError> {
    reg.invoke(ctx, p, name, &args, InvokeMode::Execute).await
}

#[tokio::test]
async fn write_then_read_through_the_registry() {
    let (_d, reg, audit, ctx) = setup();
    let p = ToolPolicy::default();
    call(
        &reg,
        &ctx,
        &p,
        "write_file",
        json!({"path": "notes/a.txt", "content": "one\ntwo\nthree\n"}),
    )
    .await
    .unwrap();
    let out = call(
        &reg,
        &ctx,
        &p,
        "read_file",
        json!({"path": "notes/a.txt", "start_line": 2, "end_line": 3}),
    )
    .await
    .unwrap();
    // A file's text is untrusted: it reaches the model between markers.
    assert!(
        out.content.contains("\ntwo\nthree\n")
            && out
                .content
                .contains("<<<UNTRUSTED source=\"file:notes/a.txt\""),
        "{}",
        out.content
    );
    assert!(ctx.run.is_tainted(), "and it taints the run");
    let out = call(&reg, &ctx, &p, "list_files", json!({})).await.unwrap();
    assert_eq!(out.content, "notes/");
    let events = audit.0.lock().unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(events[0].action, "tool.call");
    assert_eq!(events[0].resource, "tool:write_file");
    assert!(events[0].detail["args_sha256"].as_str().unwrap().len() == 64);
    assert!(
        !events[0].detail.to_string().contains("three"),
        "arguments are never stored raw"
    );
}

#[tokio::test]
async fn unknown_denied_and_malformed_calls_are_refused_with_stable_codes() {
    let (_d, reg, audit, ctx) = setup();
    let p = ToolPolicy::default();
    assert_eq!(
        call(&reg, &ctx, &p, "nope", json!({}))
            .await
            .unwrap_err()
            .code,
        "tool.not_found"
    );
    let deny = ToolPolicy {
        deny: vec!["group:fs".into()],
        ..ToolPolicy::default()
    };
    assert_eq!(
        call(&reg, &ctx, &deny, "read_file", json!({"path": "x"}))
            .await
            .unwrap_err()
            .code,
        "security.tool_denied"
    );
    assert!(
        !reg.specs(&deny).iter().any(|s| s.name == "read_file"),
        "denied tools are not offered"
    );
    let allow = ToolPolicy {
        allow: vec!["list_files".into()],
        ..ToolPolicy::default()
    };
    assert_eq!(
        call(
            &reg,
            &ctx,
            &allow,
            "write_file",
            json!({"path": "x", "content": ""})
        )
        .await
        .unwrap_err()
        .code,
        "security.tool_denied"
    );
    assert!(
        call(&reg, &ctx, &allow, "list_files", json!({}))
            .await
            .is_ok(),
        "allowed tool still runs"
    );

    let e = call(&reg, &ctx, &p, "read_file", json!({}))
        .await
        .unwrap_err();
    assert_eq!(e.code, "tool.invalid_args");
    assert!(e.message.contains("path"), "names the field: {e}");
    let e = call(
        &reg,
        &ctx,
        &p,
        "read_file",
        json!({"path": "x", "bogus": 1}),
    )
    .await
    .unwrap_err();
    assert!(e.message.contains("bogus"), "{e}");
    let e = call(&reg, &ctx, &p, "read_file", json!("{not json"))
        .await
        .unwrap_err();
    assert_eq!(e.code, "tool.invalid_args");
    let e = call(
        &reg,
        &ctx,
        &p,
        "read_file",
        json!({"path": "../etc/passwd"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "security.path_denied");
    let denials = audit
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.decision == "deny")
        .count();
    assert_eq!(denials, 3, "policy refusals are audited as denials");
}

#[tokio::test]
async fn dry_run_decides_without_acting() {
    let (dir, reg, _a, ctx) = setup();
    let p = ToolPolicy::default();
    let out = reg
        .invoke(
            &ctx,
            &p,
            "write_file",
            &json!({"path": "x.txt", "content": "hi"}),
            InvokeMode::DryRun,
        )
        .await
        .unwrap();
    assert_eq!(out.content, "allow");
    assert!(!dir.path().join("x.txt").exists());
    let e = reg
        .invoke(
            &ctx,
            &p,
            "write_file",
            &json!({"path": "/etc/x", "content": "hi"}),
            InvokeMode::DryRun,
        )
        .await
        .unwrap_err();
    assert_eq!(
        e.code, "security.path_denied",
        "same decision as a real call"
    );
}

#[tokio::test]
async fn rate_limit_per_session() {
    let (_d, reg, _a, mut ctx) = setup();
    let p = ToolPolicy {
        rate_limit_per_hour: 2,
        ..ToolPolicy::default()
    };
    for _ in 0..2 {
        call(&reg, &ctx, &p, "list_files", json!({})).await.unwrap();
    }
    // Dry runs do not count, and the third real call is refused.
    reg.invoke(&ctx, &p, "list_files", &json!({}), InvokeMode::DryRun)
        .await
        .unwrap();
    assert_eq!(
        call(&reg, &ctx, &p, "list_files", json!({}))
            .await
            .unwrap_err()
            .code,
        "tool.rate_limited"
    );
    ctx.session = Some("s2".into());
    assert!(
        call(&reg, &ctx, &p, "list_files", json!({})).await.is_ok(),
        "other sessions unaffected"
    );
    let off = ToolPolicy {
        rate_limit_per_hour: 0,
        ..ToolPolicy::default()
    };
    ctx.session = Some("s1".into());
    assert!(
        call(&reg, &ctx, &off, "list_files", json!({}))
            .await
            .is_ok(),
        "0 turns it off"
    );
}

#[tokio::test(start_paused = true)]
async fn timeout_and_truncation() {
    let (_d, reg, _a, ctx) = setup();
    let p = ToolPolicy {
        timeout: Duration::from_secs(5),
        ..ToolPolicy::default()
    };
    assert_eq!(
        call(&reg, &ctx, &p, "slow", json!({}))
            .await
            .unwrap_err()
            .code,
        "tool.timeout"
    );

    let small = ToolPolicy {
        max_output_bytes: 10,
        ..ToolPolicy::default()
    };
    call(
        &reg,
        &ctx,
        &small,
        "write_file",
        json!({"path": "big.txt", "content": "é".repeat(100)}),
    )
    .await
    .unwrap();
    let out = call(&reg, &ctx, &small, "read_file", json!({"path": "big.txt"}))
        .await
        .unwrap();
    assert!(
        out.content
            .contains("[output truncated: 10 of 201 bytes shown]"),
        "{}",
        out.content
    );
}
