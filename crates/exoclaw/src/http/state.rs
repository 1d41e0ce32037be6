//! What every handler shares: the [`AppState`], the [`RequestId`] of the
//! request being served, and the one way a rate limit refuses
//! ([`rate_limited`], [`note_rate_limited`]). Handlers import from here, the
//! router (`mod.rs`) from the handlers, so the two never name each other.

use axum::http::HeaderValue;
use axum::response::{IntoResponse as _, Response};
use exoclaw_core::store::Store;
use exoclaw_store::vault::SecretVault;
use std::sync::Arc;
use std::time::Instant;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub vault: Arc<SecretVault>,
    pub tokens: Arc<exoclaw_gateway::credentials::GatewayTokens>,
    pub started: Instant,
    pub runtime: Arc<exoclaw_gateway::runtime::Runtime>,
    pub limits: Arc<super::limit::RateLimits>,
    pub key_uses: Arc<exoclaw_gateway::credentials::KeyUses>,
    /// Credentials whose successful use was audited within the hour.
    pub auth_seen: Arc<exoclaw_gateway::audit::AuthSeen>,
    /// The per-IP limit on new pairing requests.
    pub pairing_limit: Arc<super::limit::RequestLimit>,
    /// Announces revoked credentials to open connections.
    pub revocations: Arc<exoclaw_gateway::revocation::Revocations>,
    /// Every open client connection (limits, and the counts `/metrics`
    /// shows).
    pub conns: Arc<super::conn::ConnTable>,
    /// The running messaging channels.
    pub channels: Arc<exoclaw_gateway::channels::Channels>,
    /// What a user, address or tenant may hold at once.
    pub quotas: Arc<super::quota::Quotas>,
}

/// The id of the request being served, for handlers that record it.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// `429` with `Retry-After`, counted and logged.
pub fn rate_limited(state: &AppState, scope: &str, wait: std::time::Duration) -> Response {
    let secs = note_rate_limited(state, scope, wait);
    let mut resp = super::error::ApiError::new(
        super::error::ErrorCode::RateLimited,
        format!("too many requests (gateway.rate_limit_rpm); retry in {secs}s"),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        resp.headers_mut()
            .insert(axum::http::header::RETRY_AFTER, v);
    }
    resp
}

/// Count and log a refusal by a rate limit (any entry point); the seconds
/// to wait.
pub fn note_rate_limited(state: &AppState, scope: &str, wait: std::time::Duration) -> u64 {
    let secs = super::limit::retry_after_secs(wait);
    state
        .runtime
        .metrics
        .rate_limited
        .get_or_create(&exoclaw_gateway::metrics::LimitLabels {
            scope: scope.to_owned(),
        })
        .inc();
    tracing::warn!(
        event = "security.rate_limited",
        scope,
        retry_after_sec = secs,
        "rate limit reached"
    );
    secs
}

/// `429` for a full quota (`connection.limit` or `tenant.busy`), with
/// `Retry-After: 1`, counted and logged.
pub fn quota_refused(state: &AppState, quota: &super::quota::Quota) -> super::error::ApiError {
    note_quota_refused(state, quota);
    let (code, message) = quota_error(quota);
    super::error::ApiError::new(code, message)
}

/// The code and message of a full quota.
pub fn quota_error(quota: &super::quota::Quota) -> (super::error::ErrorCode, String) {
    use super::error::ErrorCode;
    match quota.name() {
        "ws_per_user" => (
            ErrorCode::ConnectionLimit,
            "too many WebSocket connections for this user (gateway.max_ws_per_user)".to_owned(),
        ),
        "ws_per_ip" => (
            ErrorCode::ConnectionLimit,
            "too many WebSocket connections from this address (gateway.max_ws_per_ip)".to_owned(),
        ),
        "runs_per_tenant" => (
            ErrorCode::TenantBusy,
            "too many runs in progress for this tenant (gateway.max_runs_per_tenant); retry when one ends".to_owned(),
        ),
        _ => (
            ErrorCode::TenantBusy,
            "too many requests in progress for this tenant (gateway.max_requests_per_tenant); retry shortly".to_owned(),
        ),
    }
}

/// Count and log a refusal by a quota.
pub fn note_quota_refused(state: &AppState, quota: &super::quota::Quota) {
    state
        .runtime
        .metrics
        .connections_refused
        .get_or_create(&exoclaw_gateway::metrics::ConnLimitLabels {
            limit: quota.name().to_owned(),
        })
        .inc();
    tracing::warn!(
        event = "security.quota_refused",
        limit = quota.name(),
        "a concurrency quota is full"
    );
}

/// A [`quota_refused`] answer with `Retry-After: 1`.
pub fn quota_response(state: &AppState, quota: &super::quota::Quota) -> Response {
    let mut resp = quota_refused(state, quota).into_response();
    resp.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        HeaderValue::from_static("1"),
    );
    resp
}
