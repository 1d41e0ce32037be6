//! Bearer-token authentication for every route except the health probes.
//! Tokens are compared as SHA-256 digests with a constant-time equality, so
//! neither content nor length leaks through timing.

use super::AppState;
use super::error::ApiError;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use exoclaw_core::model::Role;
use exoclaw_core::{DEFAULT_TENANT, Secret, TenantId, UserId};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use subtle::ConstantTimeEq;

/// Paths answered without authentication. Nothing else is.
pub const PUBLIC_PATHS: &[&str] = &["/healthz", "/readyz"];

/// Paths that authenticate themselves: the WebSocket takes its token from the
/// header or from its `connect` frame (browsers cannot set headers), and
/// nothing but `connect` works before that.
pub const SELF_AUTHENTICATING_PATHS: &[&str] = &["/ws"];

/// The SHA-256 digest of a credential.
#[derive(Clone)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    pub fn of(token: &Secret) -> Self {
        Self(Sha256::digest(token.expose().as_bytes()).into())
    }

    pub fn matches(&self, presented: &str) -> bool {
        let d: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        bool::from(self.0.ct_eq(&d))
    }
}

/// Who is calling, as established by the server (never by the client).
#[derive(Clone, Debug)]
pub struct Principal {
    pub actor: String,
    pub role: Role,
    pub tenant: TenantId,
    /// The user sessions, workspaces and traces belong to.
    pub user: UserId,
}

/// The user the gateway token acts as (an owner of the default tenant).
pub const OWNER_USER: &str = "owner";

pub async fn require_auth(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    if PUBLIC_PATHS.contains(&path) || SELF_AUTHENTICATING_PATHS.contains(&path) {
        return next.run(req).await;
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    match presented {
        Some(token) if state.token.matches(token) => {
            req.extensions_mut().insert(Principal {
                actor: "gateway-token".to_owned(),
                role: Role::Owner,
                tenant: TenantId::new(DEFAULT_TENANT),
                user: UserId::new(OWNER_USER),
            });
            next.run(req).await
        }
        other => {
            let reason = if other.is_some() {
                "invalid"
            } else {
                "missing"
            };
            tracing::warn!(
                event = "security.auth_failed",
                reason,
                peer = %peer.ip(),
                "authentication failed"
            );
            ApiError::unauthorized().into_response()
        }
    }
}
