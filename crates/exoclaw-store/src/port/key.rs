//! Users' API keys, written once for both backends (see [`crate::port`]):
//! digests only; a key is created only for a user of its tenant, found by
//! digest together with its user.

macro_rules! ports {
    ($store:ident, $d:ident) => {
        use $crate::{error, new_id, row, rule};
        use async_trait::async_trait;
        use exoclaw_core::model::User;
        use exoclaw_core::store::{ApiKey, ApiKeyStore, NewApiKey, StoreError, StoreResult};
        use exoclaw_core::{TenantId, UnixMillis, UserId};

        /// A key joined with its user (key columns `k_`-prefixed, see
        /// `row::api_key`).
        macro_rules! key_select {
            () => {
                "SELECT k.id AS k_id, k.tenant_id AS k_tenant_id, k.user_id AS k_user_id, \
                 k.name AS k_name, k.prefix AS k_prefix, k.scopes AS k_scopes, \
                 k.created_at AS k_created_at, k.expires_at AS k_expires_at, \
                 k.revoked_at AS k_revoked_at, k.last_used_at AS k_last_used_at, \
                 u.id, u.tenant_id, u.name, u.role, u.disabled, u.created_at \
                 FROM api_keys k JOIN users u ON u.id = k.user_id AND u.tenant_id = k.tenant_id "
            };
        }

        #[async_trait]
        impl ApiKeyStore for $store {
            async fn create_api_key(&self, key: &NewApiKey, now: UnixMillis) -> StoreResult<ApiKey> {
                let scopes = serde_json::to_string(&key.scopes)
                    .map_err(|e| StoreError::Invalid(format!("scopes: {e}")))?;
                let id = new_id()?;
                // Inserts nothing unless the user is the tenant's.
                let inserted = sqlx::query($d::sql!(
                    "INSERT INTO api_keys (id, tenant_id, user_id, name, key_hash, prefix, \
                     scopes, created_at, expires_at) \
                     SELECT ?, tenant_id, id, ?, ?, ?, ?, ?, ? FROM users \
                     WHERE tenant_id = ? AND id = ?"
                ))
                .bind(&id)
                .bind(&key.name)
                .bind(&key.key_hash)
                .bind(&key.prefix)
                .bind(&scopes)
                .bind(now)
                .bind(key.expires_at)
                .bind(key.tenant_id.as_str())
                .bind(key.user_id.as_str())
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)
                .map_err(error::conflict(|| "an API key with this digest".to_owned()))?;
                rule::found(inserted.rows_affected())?;
                Ok(ApiKey {
                    id,
                    tenant_id: key.tenant_id.clone(),
                    user_id: key.user_id.clone(),
                    name: key.name.clone(),
                    prefix: key.prefix.clone(),
                    scopes: key.scopes.clone(),
                    created_at: now,
                    expires_at: key.expires_at,
                    revoked_at: None,
                    last_used_at: None,
                })
            }

            async fn find_api_key(&self, key_hash: &str) -> StoreResult<Option<(ApiKey, User)>> {
                let r = sqlx::query($d::sql!(key_select!(), "WHERE k.key_hash = ?"))
                    .bind(key_hash)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err($d::err)?;
                r.map(|r| Ok((row::api_key(&r)?, row::user(&r)?)))
                    .transpose()
            }

            async fn list_api_keys(
                &self,
                tenant: &TenantId,
                user: Option<&UserId>,
            ) -> StoreResult<Vec<ApiKey>> {
                let rows = sqlx::query($d::sql!(
                    key_select!(),
                    "WHERE k.tenant_id = ?1 AND (?2 IS NULL OR k.user_id = ?2) \
                     ORDER BY k.created_at DESC, k.id"
                ))
                .bind(tenant.as_str())
                .bind(user.map(UserId::as_str))
                .fetch_all(&self.pool)
                .await
                .map_err($d::err)?;
                row::all(&rows, row::api_key)
            }

            async fn revoke_api_key(
                &self,
                tenant: &TenantId,
                user: Option<&UserId>,
                id: &str,
                now: UnixMillis,
            ) -> StoreResult<()> {
                let done = sqlx::query($d::sql!(
                    "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?1) \
                     WHERE tenant_id = ?2 AND id = ?3 AND (?4 IS NULL OR user_id = ?4)"
                ))
                .bind(now)
                .bind(tenant.as_str())
                .bind(id)
                .bind(user.map(UserId::as_str))
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                rule::found(done.rows_affected())
            }

            async fn touch_api_key(&self, id: &str, now: UnixMillis) -> StoreResult<()> {
                sqlx::query($d::sql!("UPDATE api_keys SET last_used_at = ? WHERE id = ?"))
                    .bind(now)
                    .bind(id)
                    .execute(&mut *self.write_conn().await?)
                    .await
                    .map_err($d::err)?;
                Ok(())
            }
        }
    };
}

pub(crate) use ports;
