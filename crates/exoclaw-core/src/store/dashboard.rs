//! Dashboard sign-ins ([`DashboardStore`]): a browser exchanges a gateway
//! token, an API key or a paired device's credential for a session cookie.
//! The store keeps only the SHA-256 of the cookie's secret and which
//! credential it stands for (its kind and digest, never the credential), so
//! every request re-checks that credential: revoking the key or the device,
//! disabling the user or rotating the token out ends its sessions too.
//!
//! Like API keys and devices, a session is found by its digest before the
//! tenant is known (it is how the tenant becomes known). It goes with its
//! tenant; a deleted user's sessions fail their credential's re-check (the
//! gateway token's act as the tenant's `owner`, who has no user row).

use super::error::StoreResult;
use crate::{TenantId, UnixMillis, UserId};
use async_trait::async_trait;

/// One signed-in browser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DashboardSession {
    /// SHA-256 (hex) of the cookie's random secret.
    pub id_hash: String,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    /// The credential it was exchanged for: `<kind>:<SHA-256 hex>`
    /// (`token`, `key` or `device`).
    pub credential: String,
    pub created_at: UnixMillis,
    pub last_seen_at: UnixMillis,
    /// Absolute expiry, whatever the activity.
    pub expires_at: UnixMillis,
}

#[async_trait]
pub trait DashboardStore: Send + Sync {
    /// Record a new sign-in (`NotFound` without such a tenant, `Conflict`
    /// should the digest exist already).
    async fn create_dashboard_session(&self, session: &DashboardSession) -> StoreResult<()>;

    /// The session whose secret hashes to `id_hash`, expired or not (the
    /// caller judges expiry, so it can tell the browser why).
    async fn dashboard_session(&self, id_hash: &str) -> StoreResult<Option<DashboardSession>>;

    /// Note activity (the idle expiry counts from `now`).
    async fn touch_dashboard_session(&self, id_hash: &str, now: UnixMillis) -> StoreResult<()>;

    /// Sign out; whether there was such a session.
    async fn delete_dashboard_session(&self, id_hash: &str) -> StoreResult<bool>;

    /// Forget sessions past their absolute expiry or idle since before
    /// `idle_before`; how many went.
    async fn purge_dashboard_sessions(
        &self,
        idle_before: UnixMillis,
        now: UnixMillis,
    ) -> StoreResult<u64>;
}
