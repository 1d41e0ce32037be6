//! What the policy path writes to the audit log: one event per call (the
//! arguments and the output as SHA-256 digests, never raw, and the model's
//! call id: together a receipt `exoclaw audit export` can prove against the
//! session), prompt-injection
//! hits in untrusted output, and calls the provenance gate refused. Each
//! `security.*` event is also logged at warn.

use exoclaw_core::model::NewAuditEvent;
use exoclaw_core::store::AuditStore;
use exoclaw_core::tool::{ToolContext, ToolError, ToolOutput};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A call's `args_sha256`: SHA-256 (hex) of the arguments in canonical JSON
/// ([`exoclaw_core::canonical`]), so the arguments stored in the session
/// (and exported in a receipt) digest alike on either backend.
pub fn args_digest(args: &Value) -> String {
    sha256_hex(exoclaw_core::canonical::to_string(args).as_bytes())
}

/// A call's `output_sha256`: SHA-256 (hex) of the output text the model got
/// (after scrubbing and markers: what the session stores).
pub fn output_digest(content: &str) -> String {
    sha256_hex(content.as_bytes())
}

async fn append(store: Option<&Arc<dyn AuditStore>>, event: &NewAuditEvent) {
    if let Some(store) = store
        && let Err(e) = store.append_audit(event).await
    {
        tracing::error!(error = %e, action = %event.action, "cannot write an audit event");
    }
}

fn event(ctx: &ToolContext, action: &str, resource: String, decision: &str) -> NewAuditEvent {
    NewAuditEvent {
        tenant_id: ctx.tenant.clone(),
        actor: format!("user:{}", ctx.user),
        action: action.to_owned(),
        resource,
        decision: decision.to_owned(),
        reason: String::new(),
        request_id: ctx.request_id.clone(),
        agent_id: Some(ctx.agent.clone()),
        session_id: ctx.session.clone(),
        detail: json!({}),
    }
}

/// The event of one call (or dry run): `deny` for what policy refused.
pub(super) async fn call(
    store: Option<&Arc<dyn AuditStore>>,
    ctx: &ToolContext,
    name: &str,
    args: &Value,
    dry_run: bool,
    result: &Result<ToolOutput, ToolError>,
    took: Duration,
) {
    let (decision, reason) = match result {
        Ok(_) => ("allow", String::new()),
        Err(e) if e.code.starts_with("security.") || e.code == "tool.rate_limited" => {
            ("deny", e.code.clone())
        }
        Err(e) => ("allow", e.code.clone()),
    };
    let action = if dry_run { "tool.dry_run" } else { "tool.call" };
    let mut e = event(ctx, action, format!("tool:{name}"), decision);
    e.reason = reason;
    let mut detail = json!({
        "args_sha256": args_digest(args),
        "duration_ms": u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
    });
    if let Some(id) = &ctx.call_id {
        detail["call_id"] = Value::String(id.clone());
    }
    if let Ok(out) = result {
        detail["output_sha256"] = Value::String(output_digest(&out.content));
    }
    e.detail = detail;
    append(store, &e).await;
}

/// Prompt-injection patterns found in `source` (logged at warn as
/// `security.injection`, audited).
pub(super) async fn injection(
    store: Option<&Arc<dyn AuditStore>>,
    ctx: &ToolContext,
    source: &str,
    rules: &[&'static str],
    blocked: bool,
) {
    tracing::warn!(
        event = "security.injection",
        source,
        rules = %rules.join(","),
        blocked,
        "prompt-injection patterns found"
    );
    let mut e = event(
        ctx,
        "security.injection",
        format!("content:{}", bounded(source, 200)),
        if blocked { "deny" } else { "allow" },
    );
    e.reason = rules.join(",");
    append(store, &e).await;
}

/// A call the provenance gate refused (`tools.untrusted_content_policy =
/// deny`).
pub(super) async fn untrusted_denied(
    store: Option<&Arc<dyn AuditStore>>,
    ctx: &ToolContext,
    tool: &str,
) {
    tracing::warn!(
        event = "security.untrusted_content_denied",
        tool,
        "a side-effecting tool was refused after untrusted content entered the run"
    );
    let mut e = event(
        ctx,
        "security.untrusted_content",
        format!("tool:{tool}"),
        "deny",
    );
    "tools.untrusted_content_policy = deny".clone_into(&mut e.reason);
    append(store, &e).await;
}

/// `s` cut to at most `max` bytes on a char boundary.
fn bounded(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}
