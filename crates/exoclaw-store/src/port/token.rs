//! Gateway tokens, written once for both backends (see [`crate::port`]):
//! digests only; seeding and rotation each in one writing transaction (the
//! seed's read locks the row it finds on PostgreSQL).

macro_rules! ports {
    ($store:ident, $d:ident) => {
        use async_trait::async_trait;
        use exoclaw_core::store::{GatewayToken, GatewayTokenStore, SeedOutcome, StoreResult};
        use exoclaw_core::{DEFAULT_TENANT, UnixMillis};
        use sqlx::Connection as _;
        use $crate::row::Columns as _;
        use $crate::{new_id, rule};

        #[async_trait]
        impl GatewayTokenStore for $store {
            async fn gateway_tokens(&self) -> StoreResult<Vec<GatewayToken>> {
                let rows = sqlx::query($d::sql!(
                    "SELECT id, token_hash, created_at, expires_at FROM gateway_tokens \
                     ORDER BY created_at, id"
                ))
                .fetch_all(&self.pool)
                .await
                .map_err($d::err)?;
                rows.iter()
                    .map(|r| {
                        Ok(GatewayToken {
                            id: r.text("id")?,
                            token_hash: r.text("token_hash")?,
                            created_at: r.int("created_at")?,
                            expires_at: r.opt_int("expires_at")?,
                        })
                    })
                    .collect()
            }

            async fn seed_gateway_token(
                &self,
                token_hash: &str,
                now: UnixMillis,
            ) -> StoreResult<SeedOutcome> {
                let mut conn = self.write_conn().await?;
                let mut tx = conn.begin_with($d::BEGIN_WRITE).await.map_err($d::err)?;
                let existing: Option<Option<i64>> = sqlx::query_scalar($d::sql!(
                    "SELECT expires_at FROM gateway_tokens WHERE token_hash = ?",
                    $d::for_update!()
                ))
                .bind(token_hash)
                .fetch_optional(&mut *tx)
                .await
                .map_err($d::err)?;
                let outcome = match rule::seed_outcome(existing, now) {
                    Some(known) => known,
                    None => {
                        sqlx::query($d::sql!(
                            "INSERT INTO gateway_tokens (id, tenant_id, token_hash, created_at) \
                             VALUES (?, ?, ?, ?) ON CONFLICT (token_hash) DO NOTHING"
                        ))
                        .bind(new_id()?)
                        .bind(DEFAULT_TENANT)
                        .bind(token_hash)
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err($d::err)?;
                        SeedOutcome::Inserted
                    }
                };
                tx.commit().await.map_err($d::err)?;
                Ok(outcome)
            }

            async fn rotate_gateway_token(
                &self,
                new_hash: &str,
                old_valid_until: UnixMillis,
                now: UnixMillis,
            ) -> StoreResult<()> {
                let mut conn = self.write_conn().await?;
                let mut tx = conn.begin_with($d::BEGIN_WRITE).await.map_err($d::err)?;
                sqlx::query($d::sql!(
                    "UPDATE gateway_tokens SET expires_at = ?1 \
                     WHERE expires_at IS NULL OR expires_at > ?1"
                ))
                .bind(old_valid_until)
                .execute(&mut *tx)
                .await
                .map_err($d::err)?;
                sqlx::query($d::sql!(
                    "INSERT INTO gateway_tokens (id, tenant_id, token_hash, created_at) \
                     VALUES (?, ?, ?, ?)"
                ))
                .bind(new_id()?)
                .bind(DEFAULT_TENANT)
                .bind(new_hash)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err($d::err)?;
                tx.commit().await.map_err($d::err)?;
                Ok(())
            }
        }
    };
}

pub(crate) use ports;
