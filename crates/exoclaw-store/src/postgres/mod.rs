//! [`PgStore`]: the PostgreSQL backend, for multi-user installs. Also
//! [`inspect_postgres`], the read-only look used by `doctor` and start-up.
//!
//! The DSN is a [`Secret`]: it is exposed only to parse it, and every error
//! that could echo it is scrubbed. Migrations serialize on a transaction-level
//! advisory lock, so two gateways starting at once cannot both migrate.

mod backup;
mod dialect;

crate::port::expand!(PgStore);
crate::port::schema::version_table!(PgStore, dialect);

use crate::Inspection;
use crate::error::{self, scrub};
use crate::migrate::{Migrations, POSTGRES, dirty_error};
use crate::port::{MessageRow, SessionRow};
use exoclaw_core::Secret;
use exoclaw_core::model::Session;
use exoclaw_core::store::{StoreError, StoreResult};
use sqlx::Connection;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, Postgres};
use std::str::FromStr;
use std::time::Duration;

/// Settings for [`PgStore::connect`].
#[derive(Clone, Debug)]
pub struct PgOptions {
    /// `postgres://user:password@host:port/database?sslmode=…`
    pub dsn: Secret,
    /// Connections in the pool.
    pub max_connections: u32,
    /// How long connecting, or waiting for a free pooled connection, may take.
    pub connect_timeout: Duration,
}

impl PgOptions {
    pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

    /// The defaults: 10 connections, 5 s connect timeout.
    pub fn new(dsn: Secret) -> Self {
        Self {
            dsn,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// Parsed connection settings. Errors never quote the DSN.
    fn connect_options(&self) -> StoreResult<PgConnectOptions> {
        let options = PgConnectOptions::from_str(self.dsn.expose()).map_err(|e| {
            StoreError::Invalid(format!(
                "the PostgreSQL connection string is not valid: {}",
                scrub(&e.to_string(), &self.secrets())
            ))
        })?;
        Ok(options.application_name("exoclaw"))
    }

    /// The strings no message may contain: the DSN and its password.
    fn secrets(&self) -> Vec<&str> {
        let dsn = self.dsn.expose();
        let mut secrets = vec![dsn];
        if let Some(password) = url_password(dsn) {
            secrets.push(password);
        }
        secrets
    }

    /// An error from connecting, with the DSN and password scrubbed out.
    fn connect_error(&self, err: sqlx::Error) -> StoreError {
        let secrets = self.secrets();
        match error::postgres(err) {
            StoreError::Unavailable(m) => StoreError::Unavailable(scrub(&m, &secrets)),
            StoreError::Other(m) => StoreError::Other(scrub(&m, &secrets)),
            StoreError::Invalid(m) => StoreError::Invalid(scrub(&m, &secrets)),
            StoreError::Schema(m) => StoreError::Schema(scrub(&m, &secrets)),
            StoreError::Corrupt(m) => StoreError::Corrupt(scrub(&m, &secrets)),
            StoreError::Conflict(m) => StoreError::Conflict(scrub(&m, &secrets)),
            StoreError::NotFound => StoreError::NotFound,
        }
    }
}

/// The password of a `scheme://user:password@host/…` DSN.
fn url_password(dsn: &str) -> Option<&str> {
    let rest = &dsn[dsn.find("://")? + 3..];
    let userinfo = &rest[..rest.rfind('@')?];
    let (_, password) = userinfo.split_once(':')?;
    (!password.is_empty()).then_some(password)
}

/// The PostgreSQL backend. Cheap to clone (a pool handle).
#[derive(Clone)]
pub struct PgStore {
    pub(crate) pool: PgPool,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects (one connection is opened and closed to prove the settings
    /// work, so a refused connection or bad credentials are reported as
    /// such). Does not migrate.
    pub async fn connect(options: PgOptions) -> StoreResult<Self> {
        let connect = options.connect_options()?;
        let probe = connect_once(&options, &connect)
            .await?
            .map_err(|e| options.connect_error(e))?;
        if let Err(e) = probe.close().await {
            tracing::debug!(error = %error::postgres(e), "closing the probe connection");
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .min_connections(0)
            .acquire_timeout(options.connect_timeout)
            .idle_timeout(Duration::from_secs(300))
            .connect_lazy_with(connect);
        Ok(Self { pool })
    }

    /// Closes every connection; later calls fail with `Unavailable`.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A connection to write with (any pooled one).
    pub(crate) async fn write_conn(&self) -> StoreResult<PoolConnection<Postgres>> {
        self.pool.acquire().await.map_err(error::postgres)
    }

    /// `None`: the port writes a trace batch statement by statement, in one
    /// transaction (SQLite's one-round-trip batch reads JSON arrays with
    /// `json_each`; here each statement is a trip to the server, but not on
    /// a single writer every turn waits for).
    pub(crate) async fn write_traces_at_once(
        &self,
        _writes: &[exoclaw_core::trace::TraceWrite],
    ) -> StoreResult<Option<usize>> {
        Ok(None)
    }

    /// `None`: the port runs its own statement (`port::grouped`; here each
    /// write is a trip to the server on any pooled connection, not a turn
    /// on one writer).
    pub(crate) async fn write_grouped(
        &self,
        _write: impl FnOnce() -> crate::port::grouped::Small + Send,
    ) -> StoreResult<Option<crate::port::grouped::Done>> {
        Ok(None)
    }

    /// Inserts a session unless one of its scope exists (then `None`).
    pub(crate) async fn insert_session(&self, s: SessionRow) -> StoreResult<Option<Session>> {
        sqlx::query(dialect::sql!(crate::port::data::insert_session_sql!()))
            .bind(&s.id)
            .bind(&s.tenant)
            .bind(&s.agent)
            .bind(&s.user)
            .bind(&s.channel)
            .bind(&s.peer)
            .bind(s.now)
            .bind(s.now)
            .fetch_optional(&self.pool)
            .await
            .map_err(error::postgres)?
            .as_ref()
            .map(crate::row::session)
            .transpose()
    }

    /// Appends a message with `seq` = `max(seq) + 1` of its session: locking
    /// the session row serialises appends to one session (also across
    /// gateways), so the next statement's read of `max(seq)`, under a fresh
    /// snapshot, cannot race.
    pub(crate) async fn insert_message(&self, m: MessageRow<'_>) -> StoreResult<i64> {
        let mut tx = self.pool.begin().await.map_err(error::postgres)?;
        let locked: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM sessions WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
        )
        .bind(m.tenant.as_str())
        .bind(m.session.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(error::postgres)?;
        if locked.is_none() {
            return Err(StoreError::NotFound);
        }
        let seq: i64 = sqlx::query_scalar(
            "INSERT INTO messages (id, tenant_id, session_id, seq, role, content, meta, created_at) \
             VALUES ($1, $2, $3, \
                     (SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE session_id = $3), \
                     $4, $5::jsonb, $6::jsonb, $7) \
             RETURNING seq",
        )
        .bind(m.id)
        .bind(m.tenant.as_str())
        .bind(m.session.as_str())
        .bind(m.role)
        .bind(&m.content)
        .bind(&m.meta)
        .bind(m.now)
        .fetch_one(&mut *tx)
        .await
        .map_err(error::postgres)?;
        sqlx::query("UPDATE sessions SET updated_at = $1 WHERE tenant_id = $2 AND id = $3")
            .bind(m.now)
            .bind(m.tenant.as_str())
            .bind(m.session.as_str())
            .execute(&mut *tx)
            .await
            .map_err(error::postgres)?;
        tx.commit().await.map_err(error::postgres)?;
        Ok(seq)
    }

    async fn run_migrations(&self, table: &Migrations, target: i64) -> StoreResult<Vec<i64>> {
        table.check_target(target)?;
        let mut passed = Vec::new();
        loop {
            let mut tx = self.pool.begin().await.map_err(error::postgres)?;
            dialect::lock_migrations(&mut tx).await?;
            create_version_table(&mut tx).await?;
            let (current, dirty) = read_version(&mut tx).await?;
            if dirty {
                return Err(dirty_error(current));
            }
            let Some(step) = table.next_step(current, target)? else {
                tx.commit().await.map_err(error::postgres)?;
                return Ok(passed);
            };
            tracing::debug!(
                from = step.from,
                to = step.to,
                name = step.name,
                "postgres migration"
            );
            if step.is_transactional() {
                sqlx::raw_sql(step.sql)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| step.failed(error::postgres(e)))?;
                write_version(&mut tx, step.to, false).await?;
                tx.commit()
                    .await
                    .map_err(|e| step.failed(error::postgres(e)))?;
            } else {
                write_version(&mut tx, step.to, true).await?;
                tx.commit().await.map_err(error::postgres)?;
                sqlx::raw_sql(step.sql)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| step.failed(error::postgres(e)))?;
                let mut tx = self.pool.begin().await.map_err(error::postgres)?;
                dialect::lock_migrations(&mut tx).await?;
                write_version(&mut tx, step.to, false).await?;
                tx.commit().await.map_err(error::postgres)?;
            }
            passed.extend(step.versions());
        }
    }
}

/// One connection: `Err` on timeout, else the driver's own result (map it
/// with [`PgOptions::connect_error`], which scrubs the DSN).
async fn connect_once(
    options: &PgOptions,
    connect: &PgConnectOptions,
) -> StoreResult<Result<PgConnection, sqlx::Error>> {
    tokio::time::timeout(options.connect_timeout, PgConnection::connect_with(connect))
        .await
        .map_err(|_| {
            StoreError::Unavailable(format!(
                "timed out connecting to PostgreSQL after {:?}",
                options.connect_timeout
            ))
        })
}

/// Looks at a PostgreSQL database without changing it: one connection whose
/// transactions are all read-only. A database that does not exist is
/// reported as `exists: false`.
pub async fn inspect_postgres(options: &PgOptions) -> StoreResult<Inspection> {
    let connect = options
        .connect_options()?
        .options([("default_transaction_read_only", "on")]);
    let mut conn = match connect_once(options, &connect).await? {
        Ok(conn) => conn,
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("3D000") => {
            return Ok(Inspection {
                exists: false,
                status: POSTGRES.status(0, false),
                vault_key_id: None,
            });
        }
        Err(e) => return Err(options.connect_error(e)),
    };
    let result = read_inspection(&mut conn).await;
    if let Err(e) = conn.close().await {
        tracing::debug!(error = %error::postgres(e), "closing the inspection connection");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_found_in_url_dsns() {
        assert_eq!(url_password("postgres://u:p%40ss@h:5432/d"), Some("p%40ss"));
        assert_eq!(url_password("postgres://u@h/d"), None);
        assert_eq!(url_password("postgres://h/d"), None);
        assert_eq!(url_password("not a url"), None);
    }

    #[test]
    fn invalid_dsns_are_reported_without_the_dsn() {
        let options = PgOptions::new(Secret::new("postgres://user:hunter2@host:notaport/db"));
        let err = options.connect_options().unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, StoreError::Invalid(_)), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
        assert!(!msg.contains("host"), "{msg}");
    }

    #[tokio::test]
    async fn connection_errors_do_not_echo_the_dsn() {
        // port 1 on localhost: nothing listens, the connection is refused
        let mut options = PgOptions::new(Secret::new("postgres://app:hunter2@127.0.0.1:1/exo"));
        options.connect_timeout = Duration::from_secs(2);
        let err = PgStore::connect(options).await.unwrap_err();
        let msg = err.to_string();
        assert!(err.is_retryable(), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
        assert!(!msg.contains("app:"), "{msg}");
    }
}
