//! Bearer-token authentication for every route except the health probes.
//! Tokens are compared as SHA-256 digests with a constant-time equality, so
//! neither content nor length leaks through timing.

use super::AppState;
use super::error::ApiError;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use exoclaw_core::UnixMillis;
use exoclaw_core::model::NewAuditEvent;
use exoclaw_core::model::Role;
use exoclaw_core::store::{GatewayTokenStore, StoreError};
use exoclaw_core::{DEFAULT_TENANT, TenantId, UserId};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// Paths answered without authentication. Nothing else is.
pub const PUBLIC_PATHS: &[&str] = &["/healthz", "/readyz"];

/// Paths that authenticate themselves: the WebSocket takes its token from the
/// header or from its `connect` frame (browsers cannot set headers), and
/// nothing but `connect` works before that.
pub const SELF_AUTHENTICATING_PATHS: &[&str] = &["/ws"];

/// The gateway tokens the server accepts: SHA-256 digests loaded from the
/// store (where `exoclaw token rotate` changes them), re-read on a miss or when a
/// second old, so a rotation takes effect in a running gateway without a
/// restart. Digests are compared in constant time, all of them every time.
pub struct GatewayTokens {
    store: Arc<dyn GatewayTokenStore>,
    cache: RwLock<TokenCache>,
    /// One reload at a time; concurrent misses share it.
    reloading: tokio::sync::Mutex<()>,
}

struct TokenCache {
    tokens: Vec<([u8; 32], Option<UnixMillis>)>,
    loaded: Instant,
}

/// How old the cache may be before a successful check re-reads the store
/// (so an expiry set by a rotation is seen within this time). A miss always
/// re-reads (one tiny indexed query, coalesced across concurrent misses), so
/// a freshly rotated token works at once; the gateway rate limit bounds how
/// often a stranger can make it.
const RELOAD_AFTER: Duration = Duration::from_secs(1);

pub use exoclaw_gateway::access::{KEY_PREFIX, digest, digest_hex};

use exoclaw_core::now_ms;

impl GatewayTokens {
    pub async fn load(store: Arc<dyn GatewayTokenStore>) -> Result<Self, StoreError> {
        let tokens = read(store.as_ref()).await?;
        Ok(Self {
            store,
            cache: RwLock::new(TokenCache {
                tokens,
                loaded: Instant::now(),
            }),
            reloading: tokio::sync::Mutex::new(()),
        })
    }

    fn matches_cached(&self, presented: &[u8; 32]) -> (bool, bool) {
        let cache = self
            .cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = now_ms();
        let mut ok = subtle::Choice::from(0);
        for (d, until) in &cache.tokens {
            let live = until.is_none_or(|u| u > now);
            ok |= d.ct_eq(presented) & subtle::Choice::from(u8::from(live));
        }
        (bool::from(ok), cache.loaded.elapsed() >= RELOAD_AFTER)
    }

    /// Whether `presented` is a live gateway token.
    pub async fn check(&self, presented: &str) -> bool {
        let d = digest(presented);
        let (ok, stale) = self.matches_cached(&d);
        if ok && !stale {
            return true;
        }
        let before = Instant::now();
        let _one_reload = self.reloading.lock().await;
        // Another request may have reloaded while we waited.
        let fresh = self
            .cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .loaded
            >= before;
        if !fresh {
            match read(self.store.as_ref()).await {
                Ok(tokens) => {
                    let mut cache = self
                        .cache
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    cache.tokens = tokens;
                    cache.loaded = Instant::now();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot reload gateway tokens; using the cached ones");
                }
            }
        }
        self.matches_cached(&d).0
    }
}

async fn read(
    store: &dyn GatewayTokenStore,
) -> Result<Vec<([u8; 32], Option<UnixMillis>)>, StoreError> {
    Ok(store
        .gateway_tokens()
        .await?
        .into_iter()
        .filter_map(|t| {
            let bytes = hex::decode(&t.token_hash).ok()?;
            let d: [u8; 32] = bytes.try_into().ok()?;
            Some((d, t.expires_at))
        })
        .collect())
}

pub use exoclaw_gateway::access::Principal;

/// The user the gateway token acts as (an owner of the default tenant).
pub const OWNER_USER: &str = "owner";

/// The principal the gateway token acts as.
pub fn gateway_owner() -> Principal {
    Principal {
        actor: "gateway-token".to_owned(),
        role: Role::Owner,
        tenant: TenantId::new(DEFAULT_TENANT),
        user: UserId::new(OWNER_USER),
        scopes: None,
    }
}

/// Why a credential was refused; each has a stable error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    Invalid,
    Expired,
    Revoked,
    Disabled,
    /// The store could not be asked (answered 503, not 401).
    Unavailable,
}

impl AuthFailure {
    pub fn code(self) -> &'static str {
        match self {
            AuthFailure::Missing | AuthFailure::Invalid => "auth.unauthorized",
            AuthFailure::Expired => "auth.key_expired",
            AuthFailure::Revoked => "auth.key_revoked",
            AuthFailure::Disabled => "auth.user_disabled",
            AuthFailure::Unavailable => "store.unavailable",
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Invalid => "invalid",
            AuthFailure::Expired => "expired",
            AuthFailure::Revoked => "revoked",
            AuthFailure::Disabled => "disabled",
            AuthFailure::Unavailable => "unavailable",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            AuthFailure::Missing | AuthFailure::Invalid => "missing or invalid bearer token",
            AuthFailure::Expired => "this API key has expired; create a new one",
            AuthFailure::Revoked => "this credential was revoked",
            AuthFailure::Disabled => "this user is disabled",
            AuthFailure::Unavailable => "the store is unavailable; retry shortly",
        }
    }

    /// Whether the caller audits this refusal; refusals of a known key
    /// (expired, revoked, disabled user) are audited where the key's
    /// tenant is known.
    pub fn audited_here(self) -> bool {
        matches!(self, AuthFailure::Missing | AuthFailure::Invalid)
    }

    pub fn into_error(self) -> ApiError {
        match self {
            AuthFailure::Unavailable => ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                self.code(),
                self.message(),
            ),
            _ => ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                self.code(),
                self.message(),
            ),
        }
    }
}

/// Establish who presents `token`: the gateway token (an owner), or a user's
/// API key (looked up by digest; expiry, revocation and a disabled user are
/// refused with their own codes).
pub async fn authenticate(
    state: &AppState,
    token: Option<&str>,
    rid: Option<&str>,
) -> Result<Principal, AuthFailure> {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Err(AuthFailure::Missing);
    };
    if let Some(rest) = token.strip_prefix(KEY_PREFIX) {
        if rest.len() != 64 || !rest.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(AuthFailure::Invalid);
        }
        return authenticate_key(state, token, rid).await;
    }
    if token.starts_with(exoclaw_gateway::pairing::TOKEN_PREFIX) {
        let found = exoclaw_gateway::pairing::authenticate_device(state.store.as_ref(), token)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "cannot look up a device credential");
                AuthFailure::Unavailable
            })?;
        // Unknown, revoked or of a disabled user: the browser pairs again.
        let Some((device, user)) = found else {
            return Err(AuthFailure::Invalid);
        };
        return Ok(Principal {
            actor: format!("device:{}", device.id),
            role: exoclaw_gateway::access::effective_role(&state.runtime.settings.owner_ids, &user),
            tenant: user.tenant_id,
            user: user.id,
            scopes: None,
        });
    }
    if state.tokens.check(token).await {
        return Ok(gateway_owner());
    }
    Err(AuthFailure::Invalid)
}

async fn authenticate_key(
    state: &AppState,
    token: &str,
    rid: Option<&str>,
) -> Result<Principal, AuthFailure> {
    let found = state
        .store
        .find_api_key(&hex::encode(digest(token)))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cannot look up an API key");
            AuthFailure::Unavailable
        })?;
    let Some((key, user)) = found else {
        return Err(AuthFailure::Invalid);
    };
    let now = now_ms();
    let refused = if key.revoked_at.is_some() {
        Some(AuthFailure::Revoked)
    } else if key.expires_at.is_some_and(|t| t <= now) {
        Some(AuthFailure::Expired)
    } else if user.disabled {
        Some(AuthFailure::Disabled)
    } else {
        None
    };
    if let Some(failure) = refused {
        audit_failure(
            state,
            &key.tenant_id,
            &format!("api_key:{}", key.id),
            failure,
            rid,
        )
        .await;
        return Err(failure);
    }
    let scopes = if key.scopes.is_empty() {
        None
    } else {
        // Unknown words (from a newer binary) grant nothing.
        Some(key.scopes.iter().filter_map(|s| s.parse().ok()).collect())
    };
    state.key_uses.touch(state, &key.id, now);
    Ok(Principal {
        actor: format!("user:{}", user.id),
        role: exoclaw_gateway::access::effective_role(&state.runtime.settings.owner_ids, &user),
        tenant: user.tenant_id,
        user: user.id,
        scopes,
    })
}

/// Records key use (`last_used_at`) at most once a minute per key, off the
/// request path.
#[derive(Default)]
pub struct KeyUses(std::sync::Mutex<std::collections::HashMap<String, UnixMillis>>);

impl KeyUses {
    fn touch(&self, state: &AppState, id: &str, now: UnixMillis) {
        {
            let mut seen = self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if seen.get(id).is_some_and(|t| now - t < 60_000) {
                return;
            }
            if seen.len() > 10_000 {
                seen.retain(|_, t| now - *t < 60_000);
            }
            seen.insert(id.to_owned(), now);
        }
        let store = state.store.clone();
        let id = id.to_owned();
        state.runtime.supervisor.detach("auth.key_use", async move {
            store
                .touch_api_key(&id, now)
                .await
                .map_err(|e| anyhow::anyhow!("cannot record an API key's use: {e}"))
        });
    }
}

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
        axum::http::StatusCode::BAD_REQUEST,
        "auth.ambiguous",
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
    {
        return next.run(req).await;
    }
    if has_ambiguous_credentials(req.headers()) {
        return ambiguous_credentials().into_response();
    }
    let rid = req
        .extensions()
        .get::<super::RequestId>()
        .map(|r| r.0.clone());
    match authenticate(&state, bearer(req.headers()), rid.as_deref()).await {
        Ok(who) => {
            if let Err(wait) = state
                .limits
                .check_user(&format!("{}/{}", who.tenant, who.user))
            {
                return super::rate_limited(&state, "user", wait);
            }
            let peer_ip = req
                .extensions()
                .get::<super::limit::ClientIp>()
                .map_or(peer.ip(), |c| c.0);
            let credential = digest(bearer(req.headers()).unwrap_or_default());
            let channel = super::audit::Channel::Http;
            super::audit::auth_success(&state, channel, &who, &credential, Some(peer_ip), rid)
                .await;
            if let Some(slot) = req.extensions().get::<Arc<super::conn::ConnSlot>>() {
                slot.mark_authenticated();
            }
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
            failure.into_error().into_response()
        }
    }
}

/// An `auth.failure` audit event of a known key (never the key itself).
async fn audit_failure(
    state: &AppState,
    tenant: &TenantId,
    resource: &str,
    failure: AuthFailure,
    rid: Option<&str>,
) {
    let mut event = NewAuditEvent::new(
        tenant.clone(),
        "anonymous",
        "auth.failure",
        resource,
        "deny",
    );
    failure.reason().clone_into(&mut event.reason);
    event.request_id = rid.map(str::to_owned);
    event.detail = serde_json::json!({ "code": failure.code() });
    exoclaw_gateway::audit::record(state.store.as_ref(), &event).await;
}
