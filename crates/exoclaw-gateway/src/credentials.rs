//! Credentials the gateway checks on every request, with their caches: the
//! gateway tokens (SHA-256 digests from the store, compared in constant
//! time, re-read so a rotation takes effect without a restart) and the
//! throttled record of API key use.

use crate::access::digest;
use exoclaw_core::store::{GatewayTokenStore, Store, StoreError};
use exoclaw_core::{UnixMillis, now_ms};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

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
        self.check_digest(&digest(presented)).await
    }

    /// Whether a token of this SHA-256 digest is live (a dashboard session
    /// re-checks the token it was exchanged for by its digest).
    pub async fn check_digest(&self, d: &[u8; 32]) -> bool {
        let (ok, stale) = self.matches_cached(d);
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
        self.matches_cached(d).0
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

/// Records key use (`last_used_at`) at most once a minute per key, off the
/// request path.
#[derive(Default)]
pub struct KeyUses(std::sync::Mutex<std::collections::HashMap<String, UnixMillis>>);

impl KeyUses {
    pub fn touch(
        &self,
        store: &Arc<dyn Store>,
        supervisor: &crate::supervisor::Supervisor,
        id: &str,
        now: UnixMillis,
    ) {
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
        let store = store.clone();
        let id = id.to_owned();
        supervisor.detach("auth.key_use", async move {
            store
                .touch_api_key(&id, now)
                .await
                .map_err(|e| anyhow::anyhow!("cannot record an API key's use: {e}"))
        });
    }
}
