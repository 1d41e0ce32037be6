//! Dashboard sign-ins, written once for both backends (see [`crate::port`]):
//! digests only; a session is created only in an existing tenant and is
//! found by the digest of its cookie's secret.

macro_rules! ports {
    ($store:ident, $d:ident) => {
        use async_trait::async_trait;
        use exoclaw_core::store::{DashboardSession, DashboardStore, StoreResult};
        use exoclaw_core::{TenantId, UnixMillis, UserId};
        use $crate::row::Columns as _;
        use $crate::{error, rule};

        #[async_trait]
        impl DashboardStore for $store {
            async fn create_dashboard_session(
                &self,
                session: &DashboardSession,
            ) -> StoreResult<()> {
                // Inserts nothing unless the tenant exists.
                let inserted = sqlx::query($d::sql!(
                    "INSERT INTO dashboard_sessions (id_hash, tenant_id, user_id, credential, \
                     created_at, last_seen_at, expires_at) \
                     SELECT ?, id, ?, ?, ?, ?, ? FROM tenants WHERE id = ?"
                ))
                .bind(&session.id_hash)
                .bind(session.user_id.as_str())
                .bind(&session.credential)
                .bind(session.created_at)
                .bind(session.last_seen_at)
                .bind(session.expires_at)
                .bind(session.tenant_id.as_str())
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)
                .map_err(error::conflict(|| {
                    "a dashboard session with this digest".to_owned()
                }))?;
                rule::found(inserted.rows_affected())
            }

            async fn dashboard_session(
                &self,
                id_hash: &str,
            ) -> StoreResult<Option<DashboardSession>> {
                let r = sqlx::query($d::sql!(
                    "SELECT id_hash, tenant_id, user_id, credential, created_at, last_seen_at, \
                     expires_at FROM dashboard_sessions WHERE id_hash = ?"
                ))
                .bind(id_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err($d::err)?;
                r.map(|r| {
                    Ok(DashboardSession {
                        id_hash: r.text("id_hash")?,
                        tenant_id: TenantId::new(r.text("tenant_id")?),
                        user_id: UserId::new(r.text("user_id")?),
                        credential: r.text("credential")?,
                        created_at: r.int("created_at")?,
                        last_seen_at: r.int("last_seen_at")?,
                        expires_at: r.int("expires_at")?,
                    })
                })
                .transpose()
            }

            async fn touch_dashboard_session(
                &self,
                id_hash: &str,
                now: UnixMillis,
            ) -> StoreResult<()> {
                sqlx::query($d::sql!(
                    "UPDATE dashboard_sessions SET last_seen_at = ?1 \
                     WHERE id_hash = ?2 AND last_seen_at < ?1"
                ))
                .bind(now)
                .bind(id_hash)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                Ok(())
            }

            async fn delete_dashboard_session(&self, id_hash: &str) -> StoreResult<bool> {
                let done =
                    sqlx::query($d::sql!("DELETE FROM dashboard_sessions WHERE id_hash = ?"))
                        .bind(id_hash)
                        .execute(&mut *self.write_conn().await?)
                        .await
                        .map_err($d::err)?;
                Ok(done.rows_affected() > 0)
            }

            async fn purge_dashboard_sessions(
                &self,
                idle_before: UnixMillis,
                now: UnixMillis,
            ) -> StoreResult<u64> {
                let done = sqlx::query($d::sql!(
                    "DELETE FROM dashboard_sessions WHERE expires_at <= ? OR last_seen_at < ?"
                ))
                .bind(now)
                .bind(idle_before)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                Ok(done.rows_affected())
            }
        }
    };
}

pub(crate) use ports;
