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
use exoclaw_core::model::Role;
use exoclaw_core::store::{GatewayTokenStore, StoreError};
use exoclaw_core::{DEFAULT_TENANT, Secret, TenantId, UserId};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
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

pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

pub fn digest_hex(token: &Secret) -> String {
    hex::encode(digest(token.expose()))
}

fn now_ms() -> UnixMillis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

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
    if PUBLIC_PATHS.contains(&path)
        || SELF_AUTHENTICATING_PATHS.contains(&path)
        || super::pairing::is_public(path)
    {
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
        Some(token) if state.tokens.check(token).await => {
            let who = Principal {
                actor: "gateway-token".to_owned(),
                role: Role::Owner,
                tenant: TenantId::new(DEFAULT_TENANT),
                user: UserId::new(OWNER_USER),
            };
            if let Err(wait) = state
                .limits
                .check_user(&format!("{}/{}", who.tenant, who.user))
            {
                return super::rate_limited(&state, "user", wait);
            }
            req.extensions_mut().insert(who);
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
                peer = %req.extensions().get::<super::limit::ClientIp>().map_or(peer.ip(), |c| c.0),
                "authentication failed"
            );
            ApiError::unauthorized().into_response()
        }
    }
}
