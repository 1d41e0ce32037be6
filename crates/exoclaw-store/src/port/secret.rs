//! Sealed secrets and the vault check, written once for both backends (see
//! [`crate::port`]). Only ciphertext reaches these statements.

macro_rules! ports {
    ($store:ident, $d:ident) => {
        use $crate::row;
        use async_trait::async_trait;
        use exoclaw_core::TenantId;
        use exoclaw_core::model::{SecretMeta, SecretRecord, VaultCheck};
        use exoclaw_core::store::{SecretStore, StoreResult};
        use sqlx::Connection as _;

        /// The columns of a `secrets` row.
        macro_rules! secret_cols {
            () => {
                "tenant_id, owner, name, key_id, nonce, ciphertext, created_at, updated_at"
            };
        }

        async fn upsert_secret(conn: &mut $d::Conn, r: &SecretRecord) -> StoreResult<()> {
            sqlx::query($d::sql!(
                "INSERT INTO secrets (",
                secret_cols!(),
                ") VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (tenant_id, owner, name) DO UPDATE SET key_id = excluded.key_id, \
                 nonce = excluded.nonce, ciphertext = excluded.ciphertext, \
                 updated_at = excluded.updated_at"
            ))
            .bind(r.tenant_id.as_str())
            .bind(&r.owner)
            .bind(&r.name)
            .bind(&r.key_id)
            .bind(&r.nonce)
            .bind(&r.ciphertext)
            .bind(r.created_at)
            .bind(r.updated_at)
            .execute(conn)
            .await
            .map_err($d::err)?;
            Ok(())
        }

        async fn upsert_check(conn: &mut $d::Conn, check: &VaultCheck) -> StoreResult<()> {
            sqlx::query($d::sql!(
                "INSERT INTO vault_check (id, key_id, nonce, ciphertext) VALUES (1, ?, ?, ?) \
                 ON CONFLICT (id) DO UPDATE SET key_id = excluded.key_id, \
                 nonce = excluded.nonce, ciphertext = excluded.ciphertext"
            ))
            .bind(&check.key_id)
            .bind(&check.nonce)
            .bind(&check.ciphertext)
            .execute(conn)
            .await
            .map_err($d::err)?;
            Ok(())
        }

        #[async_trait]
        impl SecretStore for $store {
            async fn put_secret(&self, record: &SecretRecord) -> StoreResult<()> {
                upsert_secret(&mut *self.write_conn().await?, record).await
            }

            async fn get_secret(
                &self,
                tenant: &TenantId,
                owner: &str,
                name: &str,
            ) -> StoreResult<Option<SecretRecord>> {
                sqlx::query($d::sql!(
                    "SELECT ",
                    secret_cols!(),
                    " FROM secrets WHERE tenant_id = ? AND owner = ? AND name = ?"
                ))
                .bind(tenant.as_str())
                .bind(owner)
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err($d::err)?
                .as_ref()
                .map(row::secret_record)
                .transpose()
            }

            async fn list_secrets(
                &self,
                tenant: &TenantId,
                owner: Option<&str>,
            ) -> StoreResult<Vec<SecretMeta>> {
                let rows = sqlx::query($d::sql!(
                    "SELECT tenant_id, owner, name, key_id, created_at, updated_at FROM secrets \
                     WHERE tenant_id = ?1 AND (?2 IS NULL OR owner = ?2) ORDER BY owner, name"
                ))
                .bind(tenant.as_str())
                .bind(owner)
                .fetch_all(&self.pool)
                .await
                .map_err($d::err)?;
                row::all(&rows, row::secret_meta)
            }

            async fn delete_secret(
                &self,
                tenant: &TenantId,
                owner: &str,
                name: &str,
            ) -> StoreResult<()> {
                let done = sqlx::query($d::sql!(
                    "DELETE FROM secrets WHERE tenant_id = ? AND owner = ? AND name = ?"
                ))
                .bind(tenant.as_str())
                .bind(owner)
                .bind(name)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                $crate::rule::found(done.rows_affected())
            }

            async fn all_secrets(&self) -> StoreResult<Vec<SecretRecord>> {
                let rows = sqlx::query($d::sql!(
                    "SELECT ",
                    secret_cols!(),
                    " FROM secrets ORDER BY tenant_id, owner, name"
                ))
                .fetch_all(&self.pool)
                .await
                .map_err($d::err)?;
                row::all(&rows, row::secret_record)
            }

            async fn replace_secrets(
                &self,
                records: &[SecretRecord],
                check: &VaultCheck,
            ) -> StoreResult<()> {
                let mut conn = self.write_conn().await?;
                let mut tx = conn.begin_with($d::BEGIN_WRITE).await.map_err($d::err)?;
                for record in records {
                    upsert_secret(&mut tx, record).await?;
                }
                upsert_check(&mut tx, check).await?;
                tx.commit().await.map_err($d::err)
            }

            async fn vault_check(&self) -> StoreResult<Option<VaultCheck>> {
                sqlx::query($d::sql!(
                    "SELECT key_id, nonce, ciphertext FROM vault_check WHERE id = 1"
                ))
                .fetch_optional(&self.pool)
                .await
                .map_err($d::err)?
                .as_ref()
                .map(row::vault_check)
                .transpose()
            }

            async fn set_vault_check(&self, check: &VaultCheck) -> StoreResult<()> {
                upsert_check(&mut *self.write_conn().await?, check).await
            }
        }
    };
}

pub(crate) use ports;
