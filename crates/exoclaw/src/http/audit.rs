//! `GET /v1/audit`: the caller's tenant's audit log, newest first, with the
//! filters of `exoclaw audit list` as query parameters and paging by
//! `before_seq`. Also the audit events of authentication itself (failures
//! always, successes once per credential per hour over HTTP and on every
//! WebSocket connect), and the public JSON shape of an event.

use super::error::ApiError;
use super::extract::Query;
use super::state::AppState;
use axum::Extension;
use axum::Json;
use axum::extract::State;
use exoclaw_core::model::{AuditEvent, AuditFilter, NewAuditEvent};
use exoclaw_core::{AgentId, DEFAULT_TENANT, SessionId, TenantId};
use exoclaw_gateway::access::Principal;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::net::IpAddr;
use utoipa::{IntoParams, ToSchema};

/// Largest page `GET /v1/audit` returns.
pub const MAX_LIMIT: u32 = 1000;

/// One audit event (also `exoclaw audit list --json`).
#[derive(Serialize, ToSchema)]
pub struct AuditEventView {
    /// Global order of events.
    pub seq: i64,
    /// Position in the tenant's hash chain: 1, 2, 3, ...
    pub tenant_seq: i64,
    pub id: String,
    #[schema(value_type = String)]
    pub tenant: TenantId,
    /// RFC 3339.
    pub at: String,
    /// Unix milliseconds.
    pub at_ms: i64,
    /// `gateway-token`, `user:<id>`, `device:<id>`, `cli`, `system`, `anonymous`.
    pub actor: String,
    /// A dotted name such as `auth.failure` or `secret.put`.
    pub action: String,
    pub resource: String,
    /// `allow`, `deny` or `info`.
    pub decision: String,
    pub reason: String,
    pub request_id: Option<String>,
    #[schema(value_type = Option<String>)]
    pub agent: Option<AgentId>,
    #[schema(value_type = Option<String>)]
    pub session: Option<SessionId>,
    #[schema(value_type = Object)]
    pub detail: Value,
    /// The previous event's hash (hex).
    pub prev_hash: Option<String>,
    /// SHA-256 (hex) over `prev_hash` and this event.
    pub hash: Option<String>,
}

impl From<&AuditEvent> for AuditEventView {
    fn from(e: &AuditEvent) -> Self {
        Self {
            seq: e.seq,
            tenant_seq: e.tenant_seq,
            id: e.id.clone(),
            tenant: e.tenant_id.clone(),
            at: exoclaw_gateway::clock::rfc3339(e.at),
            at_ms: e.at,
            actor: e.actor.clone(),
            action: e.action.clone(),
            resource: e.resource.clone(),
            decision: e.decision.clone(),
            reason: e.reason.clone(),
            request_id: e.request_id.clone(),
            agent: e.agent_id.clone(),
            session: e.session_id.clone(),
            detail: e.detail.clone(),
            prev_hash: e.prev_hash.clone(),
            hash: e.hash.clone(),
        }
    }
}

/// The public JSON of one audit event (also `exoclaw audit list --json`).
pub fn event_json(e: &AuditEvent) -> Value {
    serde_json::to_value(AuditEventView::from(e)).unwrap_or(Value::Null)
}

/// A page of events, newest first.
#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub events: Vec<AuditEventView>,
    /// Pass as `before_seq` for the next page; `null` on the last.
    pub next_before_seq: Option<i64>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Actions starting with this (`auth.`, `secret.put`).
    action: Option<String>,
    actor: Option<String>,
    /// `allow`, `deny` or `info`.
    decision: Option<String>,
    /// RFC 3339, a date, or a duration back from now (`24h`, `7d`).
    since: Option<String>,
    /// As `since`.
    until: Option<String>,
    /// Only events before this `seq` (paging).
    before_seq: Option<i64>,
    /// 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// The tenant's audit log, newest first.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(ListQuery),
    responses((status = 200, description = "A page of events", body = AuditPage)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(q): Query<ListQuery>,
) -> Result<Json<AuditPage>, ApiError> {
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
    Ok(Json(AuditPage {
        events: events.iter().map(AuditEventView::from).collect(),
        next_before_seq: next,
    }))
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
