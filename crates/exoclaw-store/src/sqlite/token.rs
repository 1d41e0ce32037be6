//! The gateway-token port of [`SqliteStore`]: digests only, rotation in one
//! `BEGIN IMMEDIATE` transaction.

use super::SqliteStore;
use crate::{error, new_id};
use async_trait::async_trait;
use exoclaw_core::store::{GatewayToken, GatewayTokenStore, SeedOutcome, StoreResult};
use exoclaw_core::{DEFAULT_TENANT, UnixMillis};
use sqlx::Connection as _;
use sqlx::Row;

#[async_trait]
impl GatewayTokenStore for SqliteStore {
    async fn gateway_tokens(&self) -> StoreResult<Vec<GatewayToken>> {
        let rows = sqlx::query(
            "SELECT id, token_hash, created_at, expires_at FROM gateway_tokens \
             ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(error::sqlite)?;
        rows.iter()
            .map(|r| {
                Ok(GatewayToken {
                    id: r.try_get("id").map_err(error::sqlite)?,
                    token_hash: r.try_get("token_hash").map_err(error::sqlite)?,
                    created_at: r.try_get("created_at").map_err(error::sqlite)?,
                    expires_at: r.try_get("expires_at").map_err(error::sqlite)?,
                })
            })
            .collect()
    }

    async fn seed_gateway_token(
        &self,
        token_hash: &str,
        now: UnixMillis,
    ) -> StoreResult<SeedOutcome> {
        let mut writer = self.writer.acquire().await?;
        let mut tx = writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(error::sqlite)?;
        let existing: Option<Option<i64>> =
            sqlx::query_scalar("SELECT expires_at FROM gateway_tokens WHERE token_hash = ?")
                .bind(token_hash)
                .fetch_optional(&mut *tx)
                .await
                .map_err(error::sqlite)?;
        let outcome = match existing {
            Some(Some(until)) if until <= now => SeedOutcome::Retired,
            Some(_) => SeedOutcome::Known,
            None => {
                sqlx::query(
                    "INSERT INTO gateway_tokens (id, tenant_id, token_hash, created_at) \
                     VALUES (?, ?, ?, ?)",
                )
                .bind(new_id()?)
                .bind(DEFAULT_TENANT)
                .bind(token_hash)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(error::sqlite)?;
                SeedOutcome::Inserted
            }
        };
        tx.commit().await.map_err(error::sqlite)?;
        Ok(outcome)
    }

    async fn rotate_gateway_token(
        &self,
        new_hash: &str,
        old_valid_until: UnixMillis,
        now: UnixMillis,
    ) -> StoreResult<()> {
        let mut writer = self.writer.acquire().await?;
        let mut tx = writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(error::sqlite)?;
        sqlx::query(
            "UPDATE gateway_tokens SET expires_at = ? \
             WHERE expires_at IS NULL OR expires_at > ?",
        )
        .bind(old_valid_until)
        .bind(old_valid_until)
        .execute(&mut *tx)
        .await
        .map_err(error::sqlite)?;
        sqlx::query(
            "INSERT INTO gateway_tokens (id, tenant_id, token_hash, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(new_id()?)
        .bind(DEFAULT_TENANT)
        .bind(new_hash)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(error::sqlite)?;
        tx.commit().await.map_err(error::sqlite)?;
        Ok(())
    }
}
