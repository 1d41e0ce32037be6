//! `GET /v1/audit`: the caller's tenant's audit log, newest first, with the
//! filters of `exoclaw audit list` as query parameters and paging by
//! `before_seq`. Also the audit events of authentication itself (failures
//! always, successes once per credential per hour over HTTP and on every
//! WebSocket connect), and the public JSON shape of an event.

use super::error::ApiError;
use super::state::AppState;
use axum::Extension;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use exoclaw_core::model::{AuditEvent, AuditFilter, NewAuditEvent};
use exoclaw_core::{DEFAULT_TENANT, TenantId};
use exoclaw_gateway::access::Principal;
use serde::Deserialize;
use serde_json::{Value, json};
use std::net::IpAddr;

/// Largest page `GET /v1/audit` returns.
pub const MAX_LIMIT: u32 = 1000;

/// The public JSON of one audit event (also `exoclaw audit list --json`).
pub fn event_json(e: &AuditEvent) -> Value {
    json!({
        "seq": e.seq,
        "tenant_seq": e.tenant_seq,
        "id": e.id,
        "tenant": e.tenant_id,
        "at": exoclaw_gateway::clock::rfc3339(e.at),
        "at_ms": e.at,
        "actor": e.actor,
        "action": e.action,
        "resource": e.resource,
        "decision": e.decision,
        "reason": e.reason,
        "request_id": e.request_id,
        "agent": e.agent_id,
        "session": e.session_id,
        "detail": e.detail,
        "prev_hash": e.prev_hash,
        "hash": e.hash,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    action: Option<String>,
    actor: Option<String>,
    decision: Option<String>,
    since: Option<String>,
    until: Option<String>,
    before_seq: Option<i64>,
    limit: Option<u32>,
}

pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::invalid(e.body_text()))?;
    // The route requires `audit.read` (admins and owners), checked by the
    // route table; the tenant is always the caller's own.
    let now = exoclaw_gateway::runtime::approval::now_ms();
    let time = |v: Option<String>| {
        v.map(|s| exoclaw_gateway::audit::parse_time(&s, now).map_err(ApiError::invalid))
            .transpose()
    };
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::invalid(format!("limit must be 1 to {MAX_LIMIT}")));
    }
    let filter = AuditFilter {
        tenant_id: Some(who.tenant.clone()),
        action_prefix: q.action,
        actor: q.actor,
        decision: q.decision,
        since: time(q.since)?,
        until: time(q.until)?,
        before_seq: q.before_seq,
        limit,
    };
    let events = state.store.list_audit(&filter).await?;
    let next = (events.len() == limit as usize)
        .then(|| events.last().map(|e| e.seq))
        .flatten();
    Ok(Json(json!({
        "events": events.iter().map(event_json).collect::<Vec<_>>(),
        "next_before_seq": next,
    })))
}

/// Where an authentication happened.
#[derive(Clone, Copy, Debug)]
pub enum Channel {
    Http,
    WebSocket,
}

impl Channel {
    fn as_str(self) -> &'static str {
        match self {
            Channel::Http => "http",
            Channel::WebSocket => "ws",
        }
    }
}

/// The path as an audit resource, bounded (it is the client's text).
fn resource(path: &str) -> String {
    format!("route:{}", exoclaw_gateway::audit::bounded(path, 200))
}

/// Audits a WebSocket upgrade refused for its `Origin` (warns as
/// `security.origin_refused`).
pub async fn origin_refused(
    state: &AppState,
    origin: &str,
    peer: IpAddr,
    request_id: Option<String>,
) {
    let mut event = NewAuditEvent::new(
        TenantId::new(DEFAULT_TENANT),
        "anonymous",
        "security.origin_refused",
        "route:/ws",
        "deny",
    );
    "origin not in gateway.allowed_origins".clone_into(&mut event.reason);
    event.request_id = request_id;
    let origin = exoclaw_gateway::audit::bounded(origin, 200);
    event.detail = json!({"origin": origin, "peer": peer.to_string()});
    exoclaw_gateway::audit::record(state.store.as_ref(), &event).await;
}

/// Audits a refused authentication: `missing` or `invalid` credentials,
/// never the presented token. Warns as `security.auth_failure`.
pub async fn auth_failure(
    state: &AppState,
    channel: Channel,
    reason: &str,
    path: &str,
    peer: IpAddr,
    request_id: Option<String>,
) {
    let mut event = NewAuditEvent::new(
        TenantId::new(DEFAULT_TENANT),
        "anonymous",
        "auth.failure",
        resource(path),
        "deny",
    );
    reason.clone_into(&mut event.reason);
    event.request_id = request_id;
    event.detail = json!({"channel": channel.as_str(), "peer": peer.to_string()});
    exoclaw_gateway::audit::record(state.store.as_ref(), &event).await;
}

/// Audits a successful authentication. Over HTTP only the first use of a
/// credential per hour is recorded (see [`exoclaw_gateway::audit::AuthSeen`]); a
/// WebSocket connect is recorded every time.
pub async fn auth_success(
    state: &AppState,
    channel: Channel,
    who: &Principal,
    credential: &[u8; 32],
    peer: Option<IpAddr>,
    request_id: Option<String>,
) {
    if matches!(channel, Channel::Http) && !state.auth_seen.should_record(credential) {
        return;
    }
    let mut event = NewAuditEvent::new(
        who.tenant.clone(),
        who.actor.clone(),
        "auth.success",
        "gateway",
        "allow",
    );
    event.request_id = request_id;
    event.detail = json!({
        "channel": channel.as_str(),
        "credential": exoclaw_gateway::audit::credential_id(credential),
        "peer": peer.map(|p| p.to_string()),
    });
    exoclaw_gateway::audit::record(state.store.as_ref(), &event).await;
}
