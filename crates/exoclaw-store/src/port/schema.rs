//! The schema bookkeeping both backends share, written once (see
//! [`crate::port`]): the golang-migrate style version table
//! `schema_migrations (version, dirty)`, the read-only inspection, and the
//! `SchemaStore` port around each backend's own migration runner
//! (`run_migrations`, which locks differently in each).

/// Expands, in a backend module with a `dialect` module: the functions
/// `create_version_table`, `read_version`, `write_version` and
/// `read_inspection` (imported into that module), and `SchemaStore` for
/// `$store` (which must have `pool`, `write_conn()` and `run_migrations()`).
macro_rules! version_table {
    ($store:ident, $d:ident) => {
        mod schema_port {
            use super::{$d, $store};
            use exoclaw_core::store::{
                Backend, MigrationInfo, SchemaStatus, SchemaStore, StoreResult,
            };
            use sqlx::Connection as _;

            #[async_trait::async_trait]
            impl SchemaStore for $store {
                fn backend(&self) -> Backend {
                    $d::BACKEND
                }

                async fn ping(&self) -> StoreResult<()> {
                    sqlx::query("SELECT 1")
                        .execute(&self.pool)
                        .await
                        .map_err($d::err)?;
                    Ok(())
                }

                async fn schema_status(&self) -> StoreResult<SchemaStatus> {
                    let mut conn = self.pool.acquire().await.map_err($d::err)?;
                    let (current, dirty) = read_version(&mut conn).await?;
                    Ok($d::MIGRATIONS.status(current, dirty))
                }

                fn migrations(&self) -> &'static [MigrationInfo] {
                    $d::MIGRATIONS.infos
                }

                async fn migrate_to(&self, target: i64) -> StoreResult<Vec<i64>> {
                    self.run_migrations($d::MIGRATIONS, target).await
                }

                async fn force_version(&self, version: i64) -> StoreResult<()> {
                    $d::MIGRATIONS.check_target(version)?;
                    let mut conn = self.write_conn().await?;
                    let mut tx = conn.begin_with($d::BEGIN_WRITE).await.map_err($d::err)?;
                    $d::lock_migrations(&mut tx).await?;
                    create_version_table(&mut tx).await?;
                    write_version(&mut tx, version, false).await?;
                    tx.commit().await.map_err($d::err)
                }
            }

            pub(super) async fn create_version_table(conn: &mut $d::Conn) -> StoreResult<()> {
                sqlx::query(
                    "CREATE TABLE IF NOT EXISTS schema_migrations \
                     (version BIGINT NOT NULL, dirty BOOLEAN NOT NULL)",
                )
                .execute(conn)
                .await
                .map_err($d::err)?;
                Ok(())
            }

            /// `(version, dirty)`; `(0, false)` when nothing was ever
            /// migrated. Read-only.
            pub(super) async fn read_version(conn: &mut $d::Conn) -> StoreResult<(i64, bool)> {
                if !$d::has_table(conn, "schema_migrations").await? {
                    return Ok((0, false));
                }
                let row: Option<(i64, bool)> =
                    sqlx::query_as("SELECT version, dirty FROM schema_migrations LIMIT 1")
                        .fetch_optional(conn)
                        .await
                        .map_err($d::err)?;
                Ok(row.unwrap_or((0, false)))
            }

            pub(super) async fn write_version(
                conn: &mut $d::Conn,
                version: i64,
                dirty: bool,
            ) -> StoreResult<()> {
                sqlx::query("DELETE FROM schema_migrations")
                    .execute(&mut *conn)
                    .await
                    .map_err($d::err)?;
                sqlx::query($d::sql!(
                    "INSERT INTO schema_migrations (version, dirty) VALUES (?, ?)"
                ))
                .bind(version)
                .bind(dirty)
                .execute(conn)
                .await
                .map_err($d::err)?;
                Ok(())
            }

            /// The schema version and the vault key id, creating and
            /// changing nothing.
            pub(super) async fn read_inspection(
                conn: &mut $d::Conn,
            ) -> StoreResult<$crate::Inspection> {
                let (current, dirty) = read_version(conn).await?;
                let vault_key_id = if $d::has_table(conn, "vault_check").await? {
                    sqlx::query_scalar("SELECT key_id FROM vault_check WHERE id = 1")
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err($d::err)?
                } else {
                    None
                };
                Ok($crate::Inspection {
                    exists: true,
                    status: $d::MIGRATIONS.status(current, dirty),
                    vault_key_id,
                })
            }
        }

        use schema_port::{create_version_table, read_inspection, read_version, write_version};
    };
}

pub(crate) use version_table;
