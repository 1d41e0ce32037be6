//! Bearer-token authentication for every route except the health probes.
//! Tokens are compared as SHA-256 digests with a constant-time equality, so
//! neither content nor length leaks through timing.

use super::error::{ApiError, ErrorCode};
use super::state::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;

pub use super::credential::{
    AuthFailure, Credential, CredentialKind, OWNER_USER, authenticate, authenticate_credential,
    gateway_owner,
};

/// Paths answered without authentication. Nothing else is.
pub const PUBLIC_PATHS: &[&str] = &["/healthz", "/readyz"];

/// Paths that authenticate themselves: the WebSocket takes its token from the
/// header or from its `connect` frame (browsers cannot set headers), and
/// nothing but `connect` works before that.
pub const SELF_AUTHENTICATING_PATHS: &[&str] = &["/ws"];

pub use exoclaw_gateway::access::{KEY_PREFIX, digest, digest_hex};
pub use exoclaw_gateway::credentials::{GatewayTokens, KeyUses};

pub use exoclaw_gateway::access::Principal;

/// Whether the request carries more than one `Authorization` header. Such
/// a request is refused (`400 auth.ambiguous`): which one a proxy in front
/// and the gateway each read is not defined, so neither may win.
pub fn has_ambiguous_credentials(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .nth(1)
        .is_some()
}

/// `400 auth.ambiguous` (see [`has_ambiguous_credentials`]).
pub fn ambiguous_credentials() -> ApiError {
    ApiError::new(
        ErrorCode::AuthAmbiguous,
        "more than one Authorization header; send exactly one",
    )
}

/// The bearer token of an `Authorization` header, if any.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

pub async fn require_auth(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_owned();
    if PUBLIC_PATHS.contains(&path.as_str())
        || SELF_AUTHENTICATING_PATHS.contains(&path.as_str())
        || super::pairing::is_public(&path)
        || super::channels::is_public(&path)
        || super::ui::is_public(&path)
    {
        return next.run(req).await;
    }
    if has_ambiguous_credentials(req.headers()) {
        return ambiguous_credentials().into_response();
    }
    let rid = req
        .extensions()
        .get::<super::state::RequestId>()
        .map(|r| r.0.clone());
    // A bearer token wins; without one, the dashboard's session cookie.
    let presented = bearer(req.headers());
    let cookie = presented
        .is_none()
        .then(|| super::ui::session::cookie_secret(req.headers()))
        .flatten()
        .map(str::to_owned);
    let outcome = match &cookie {
        Some(secret) => super::ui::session::resume(&state, secret, rid.as_deref())
            .await
            .map(|(who, credential, session)| (who, credential.digest, Some(session))),
        None => authenticate(&state, presented, rid.as_deref())
            .await
            .map(|who| (who, digest(presented.unwrap_or_default()), None)),
    };
    match outcome {
        Ok((who, credential, session)) => {
            if let Some(session) = session {
                req = match super::ui::session::check_csrf(req, &session).await {
                    Ok(req) => req,
                    Err(refused) => return refused,
                };
                req.extensions_mut().insert(session);
            }
            if let Err(wait) = state
                .limits
                .check_user(&format!("{}/{}", who.tenant, who.user))
            {
                return super::state::rate_limited(&state, "user", wait);
            }
            let peer_ip = req
                .extensions()
                .get::<super::limit::ClientIp>()
                .map_or(peer.ip(), |c| c.0);
            let channel = super::audit::Channel::Http;
            super::audit::auth_success(&state, channel, &who, &credential, Some(peer_ip), rid)
                .await;
            if let Some(slot) = req.extensions().get::<Arc<super::conn::ConnSlot>>() {
                slot.mark_authenticated();
            }
            let Some(_in_flight) = state
                .quotas
                .requests_per_tenant
                .try_hold(who.tenant.as_str())
            else {
                return super::state::quota_response(&state, &state.quotas.requests_per_tenant);
            };
            let tenant = who.tenant.clone();
            req.extensions_mut().insert(who);
            super::error::SCRUB_TENANT
                .scope(tenant, next.run(req))
                .await
        }
        Err(failure) => {
            // audited and logged at warn (security.auth_failure), token never
            if failure.audited_here() {
                let peer = req
                    .extensions()
                    .get::<super::limit::ClientIp>()
                    .map_or(peer.ip(), |c| c.0);
                let channel = super::audit::Channel::Http;
                super::audit::auth_failure(&state, channel, failure.reason(), &path, peer, rid)
                    .await;
            }
            if super::ui::is_dashboard(&path) && failure != AuthFailure::Unavailable {
                let target = req
                    .uri()
                    .path_and_query()
                    .map_or(path.as_str(), |p| p.as_str());
                let mut resp = super::ui::to_sign_in(target);
                if cookie.is_some() {
                    resp.headers_mut()
                        .insert(header::SET_COOKIE, super::ui::session::cleared(false));
                }
                return resp;
            }
            failure.into_error().into_response()
        }
    }
}
