//! SQLite backups: a consistent copy of the live database with `VACUUM INTO`
//! (it reads through one connection inside one read transaction, so writers
//! of a running gateway neither block it for long nor tear it), and the
//! read-only check of such a copy.

use super::{SqliteStore, read_version};
use crate::backup::{SnapshotInfo, sqlite_latest};
use crate::error;
use exoclaw_core::store::{StoreError, StoreResult};
use sqlx::Connection as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use std::path::Path;

impl SqliteStore {
    /// Writes a consistent copy of the database to `dest`, which must not
    /// exist yet (its directory must). The copy is a plain rollback-journal
    /// database file, compacted.
    pub async fn snapshot_to(&self, dest: &Path) -> StoreResult<()> {
        let Some(dest_text) = dest.to_str() else {
            return Err(StoreError::Invalid(format!(
                "the snapshot path {} is not UTF-8",
                dest.display()
            )));
        };
        if dest.exists() {
            return Err(StoreError::Invalid(format!(
                "the snapshot path {} already exists",
                dest.display()
            )));
        }
        sqlx::query("VACUUM INTO ?")
            .bind(dest_text)
            .execute(&self.pool)
            .await
            .map_err(error::sqlite)?;
        Ok(())
    }
}

/// Opens a copy made by [`SqliteStore::snapshot_to`] read-only and checks it:
/// `PRAGMA integrity_check`, `PRAGMA foreign_key_check`, and a schema version
/// this build knows that is not dirty. Creates and changes nothing.
pub async fn check_sqlite_snapshot(path: &Path) -> StoreResult<SnapshotInfo> {
    super::extensions::register()?;
    let what = format!("the database copy {}", path.display());
    let connect = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .immutable(true)
        .create_if_missing(false);
    let mut conn = SqliteConnection::connect_with(&connect)
        .await
        .map_err(|e| error::sqlite_in(&what, e))?;
    let result = check(&mut conn, &what).await;
    if let Err(e) = conn.close().await {
        tracing::debug!(error = %e, "closing the snapshot check connection");
    }
    result
}

async fn check(conn: &mut SqliteConnection, what: &str) -> StoreResult<SnapshotInfo> {
    let problems: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| error::sqlite_in(what, e))?;
    if problems.first().map(String::as_str) != Some("ok") {
        let first: Vec<&str> = problems.iter().take(3).map(String::as_str).collect();
        return Err(StoreError::Corrupt(format!(
            "{what} fails SQLite's integrity check: {}",
            first.join("; ")
        )));
    }
    let orphans = sqlx::query("PRAGMA foreign_key_check")
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| error::sqlite_in(what, e))?;
    if !orphans.is_empty() {
        return Err(StoreError::Corrupt(format!(
            "{what} has {} rows whose foreign keys point nowhere",
            orphans.len()
        )));
    }
    let (version, dirty) = read_version(conn).await?;
    let latest = sqlite_latest();
    if dirty {
        return Err(StoreError::Schema(format!(
            "{what} has a dirty schema (version {version}): a migration had failed half-way \
             when it was taken"
        )));
    }
    if version < 1 {
        return Err(StoreError::Corrupt(format!(
            "{what} holds no exoclaw schema"
        )));
    }
    if version > latest {
        return Err(StoreError::Schema(format!(
            "{what} has schema version {version}; this exoclaw knows versions 1 to {latest} \
             (use the exoclaw release that made it)"
        )));
    }
    Ok(SnapshotInfo {
        schema_version: version,
    })
}
