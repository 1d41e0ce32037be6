//! Wiring of the store: which backend the settings choose, read-only
//! inspection before anything is written, opening, and the schema rules
//! `serve` applies.

use crate::config::Settings;
use anyhow::{Context as _, bail};
use exoclaw_core::store::{SchemaStatus, Store, StoreError};
use exoclaw_store::{
    Inspection, PgOptions, PgStore, SqliteOptions, SqliteStore, Synchronous, inspect_postgres,
    inspect_sqlite,
};
use std::sync::Arc;
use std::time::Duration;

/// The opened store, keeping the concrete type for an orderly close.
#[derive(Clone)]
pub enum Db {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PgStore>),
}

impl Db {
    pub fn store(&self) -> Arc<dyn Store> {
        match self {
            Db::Sqlite(s) => s.clone(),
            Db::Postgres(s) => s.clone(),
        }
    }

    /// Gives back what the store's idle connections hold (SQLite: see
    /// `SqliteStore::release_memory`; PostgreSQL's pool keeps its own).
    pub async fn release_memory(&self) {
        if let Db::Sqlite(s) = self {
            s.release_memory().await;
        }
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite(s) => s.close().await,
            Db::Postgres(s) => s.close().await,
        }
    }
}

fn sqlite_options(settings: &Settings) -> SqliteOptions {
    let db = &settings.config.database;
    SqliteOptions {
        path: settings.home.db_path(),
        synchronous: match db.sqlite_synchronous {
            crate::config::file::SqliteSynchronous::Normal => Synchronous::Normal,
            crate::config::file::SqliteSynchronous::Full => Synchronous::Full,
        },
        busy_timeout: Duration::from_millis(db.busy_timeout_ms),
        max_connections: db.max_connections.min(4),
    }
}

fn pg_options(settings: &Settings) -> Option<PgOptions> {
    let dsn = settings.secrets.postgres_dsn.clone()?;
    Some(PgOptions {
        dsn,
        max_connections: settings.config.database.max_connections,
        connect_timeout: Duration::from_secs(5),
    })
}

pub fn backend_name(settings: &Settings) -> &'static str {
    if settings.secrets.postgres_dsn.is_some() {
        "postgres"
    } else {
        "sqlite"
    }
}

/// Read-only look at the store: creates and changes nothing.
pub async fn inspect(settings: &Settings) -> anyhow::Result<Inspection> {
    let result = match pg_options(settings) {
        Some(opts) => inspect_postgres(&opts).await,
        None => inspect_sqlite(&settings.home.db_path()).await,
    };
    result.map_err(|e| store_error(settings, e))
}

/// Open (creating the SQLite file when missing). Does not migrate.
pub async fn open(settings: &Settings) -> anyhow::Result<Db> {
    match pg_options(settings) {
        Some(opts) => PgStore::connect(opts)
            .await
            .map(|s| Db::Postgres(Arc::new(s)))
            .map_err(|e| store_error(settings, e)),
        None => SqliteStore::open(sqlite_options(settings))
            .await
            .map(|s| Db::Sqlite(Arc::new(s)))
            .map_err(|e| store_error(settings, e)),
    }
}

/// Open for reading only: SQLite changes nothing on disk (see
/// `SqliteStore::open_read_only`); PostgreSQL connects as usual (the
/// caller only reads).
pub async fn open_read_only(settings: &Settings) -> anyhow::Result<Db> {
    match pg_options(settings) {
        Some(_) => open(settings).await,
        None => SqliteStore::open_read_only(settings.home.db_path())
            .await
            .map(|s| Db::Sqlite(Arc::new(s)))
            .map_err(|e| store_error(settings, e)),
    }
}

/// Word a store error for the operator, naming the store and the fix.
pub fn store_error(settings: &Settings, e: StoreError) -> anyhow::Error {
    let what = match settings.secrets.postgres_dsn {
        Some(_) => "PostgreSQL store (EXOCLAW_POSTGRES_DSN)".to_owned(),
        None => format!("SQLite store {}", settings.home.db_path().display()),
    };
    match e {
        // The store already words damage with the file and the fix.
        StoreError::Corrupt(m) => anyhow::anyhow!("{m}"),
        StoreError::Unavailable(m) => anyhow::anyhow!(
            "{what} is unreachable ({m}); check that the database is running and the DSN is right"
        ),
        other => anyhow::anyhow!("{what}: {other}"),
    }
}

/// What `serve` does about the schema it found.
#[derive(Debug, PartialEq, Eq)]
pub enum SchemaPlan {
    /// Schema is current: nothing to do.
    Ready,
    /// Empty database: create the schema (no data at risk).
    Initialize,
    /// Older schema and `EXOCLAW_AUTO_UPGRADE=true`.
    AutoUpgrade,
}

pub fn schema_plan(status: SchemaStatus, auto_upgrade: bool) -> anyhow::Result<SchemaPlan> {
    if status.dirty {
        bail!(
            "the database schema is dirty at version {} (a migration failed half-way); repair it, then run `exoclaw migrate force N` with the version it is really at",
            status.current
        );
    }
    if status.is_newer_than_binary() {
        bail!(
            "the database schema is version {}, newer than this exoclaw supports ({}); run a newer exoclaw or restore a backup taken with this version",
            status.current,
            status.latest
        );
    }
    if status.is_current() {
        return Ok(SchemaPlan::Ready);
    }
    if status.is_fresh() {
        return Ok(SchemaPlan::Initialize);
    }
    if auto_upgrade {
        return Ok(SchemaPlan::AutoUpgrade);
    }
    bail!(
        "the database schema is version {}, this exoclaw needs {}: run `exoclaw upgrade` (or set EXOCLAW_AUTO_UPGRADE=true)",
        status.current,
        status.latest
    )
}

/// Migrate to the latest version, logging each step.
pub async fn migrate_latest(store: &dyn Store) -> anyhow::Result<Vec<i64>> {
    let latest = store
        .migrations()
        .last()
        .map(|m| m.version)
        .unwrap_or_default();
    let steps = store
        .migrate_to(latest)
        .await
        .context("schema migration failed")?;
    for v in &steps {
        tracing::info!(version = v, "applied migration");
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(current: i64, latest: i64, dirty: bool) -> SchemaStatus {
        SchemaStatus {
            current,
            latest,
            dirty,
        }
    }

    #[test]
    fn schema_rules() {
        assert_eq!(
            schema_plan(status(3, 3, false), false).unwrap(),
            SchemaPlan::Ready
        );
        assert_eq!(
            schema_plan(status(0, 3, false), false).unwrap(),
            SchemaPlan::Initialize
        );
        assert_eq!(
            schema_plan(status(2, 3, false), true).unwrap(),
            SchemaPlan::AutoUpgrade
        );
        let outdated = schema_plan(status(2, 3, false), false)
            .unwrap_err()
            .to_string();
        assert!(outdated.contains("run `exoclaw upgrade`"), "{outdated}");
        let newer = schema_plan(status(4, 3, false), true)
            .unwrap_err()
            .to_string();
        assert!(newer.contains("newer than this exoclaw"), "{newer}");
        let dirty = schema_plan(status(2, 3, true), true)
            .unwrap_err()
            .to_string();
        assert!(dirty.contains("exoclaw migrate force N"), "{dirty}");
    }
}
