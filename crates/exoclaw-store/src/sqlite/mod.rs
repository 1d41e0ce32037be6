//! [`SqliteStore`]: the single-file backend. WAL journal, foreign keys on, a
//! small pool, the database file created `0600`. Also [`inspect_sqlite`], the
//! read-only look used by `doctor` and the start-up checks.
//!
//! Every write goes through one connection of its own (`writer`), so the
//! gateway's writers queue in the process, in order, instead of in SQLite's
//! busy handler (which sleeps 1, 2, 5 ... 100 ms between tries and made
//! concurrent turns wait tens of ms for the write lock); the writer's page
//! cache also stays valid, since no other connection of ours writes. Reads
//! use the pool. Writers that read before they write use `BEGIN IMMEDIATE`,
//! so a writer from another process (the CLI) still queues on SQLite's write
//! lock (with `busy_timeout`) instead of failing with `SQLITE_BUSY` when a
//! read transaction tries to upgrade.

mod appends;
mod backup;
mod dialect;
pub(crate) mod extensions;
mod grouped;
mod rank;
mod script;
#[cfg(test)]
mod squashed_tests;
mod traces;
mod vectors;
mod writer;

crate::port::expand!(SqliteStore);
crate::port::schema::version_table!(SqliteStore, dialect);

pub use backup::check_sqlite_snapshot;

use crate::migrate::{Migrations, SQLITE, dirty_error};
use crate::port::{MessageRow, SessionRow};
use crate::{Inspection, error};
use exoclaw_core::model::Session;
use exoclaw_core::store::{StoreError, StoreResult};
use sqlx::Connection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How hard SQLite pushes each commit to disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// In WAL mode: durable against a crash of the process (every commit is in
    /// the WAL before it returns); on power loss or an OS crash the last few
    /// commits may be lost, but the database stays consistent.
    #[default]
    Normal,
    /// Also survives power loss: each commit is synced to disk, at some write
    /// cost.
    Full,
}

/// Settings for [`SqliteStore::open`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqliteOptions {
    /// The database file; created (mode 0600) when missing. Its directory must exist.
    pub path: PathBuf,
    pub synchronous: Synchronous,
    /// How long a statement waits for SQLite's write lock before giving up
    /// with `Unavailable`.
    pub busy_timeout: Duration,
    /// Reading connections in the pool (at least 1), besides the one writing
    /// connection. Idle ones are closed after a minute.
    pub max_connections: u32,
}

impl SqliteOptions {
    pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
    pub const DEFAULT_MAX_CONNECTIONS: u32 = 4;

    /// The defaults: `Normal` sync, 5 s busy timeout, 4 connections.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            synchronous: Synchronous::default(),
            busy_timeout: Self::DEFAULT_BUSY_TIMEOUT,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Page cache per connection, in KiB (SQLite's default is about 2 MiB); kept
/// small because the gateway aims for a few MB of RSS when idle.
const CACHE_SIZE_KIB: u32 = 1024;
/// Trim the WAL file back to this size after checkpoints.
const JOURNAL_SIZE_LIMIT_BYTES: u64 = 16 * 1024 * 1024;
/// Checkpoint when the WAL holds this many pages (SQLite's default is 1000,
/// 4 MiB). A turn rewrites the same few hot pages (the tails of the message,
/// session and trace tables and their indexes) again and again; a longer WAL
/// lets one checkpoint copy each of them once, and checkpoints (two `fsync`s
/// each, under the write lock) come 4 times less often.
const WAL_AUTOCHECKPOINT_PAGES: u32 = 4000;
/// Prepared statements the writer connection keeps (a reading connection
/// keeps 32). Every write goes through the one writer, so it runs every
/// kind of write statement, and the appender's batches add one text per
/// pair of counts that occurs (`appends`); with 32 kept, a busy gateway's
/// writer prepared the same texts again and again, each batch text's dozens
/// of statements on the thread every write waits for.
const WRITER_STATEMENTS: usize = 512;
/// Close connections idle for this long, so an idle gateway holds none.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The SQLite backend. Cheap to clone (a pool handle).
#[derive(Clone)]
pub struct SqliteStore {
    /// Reads.
    pub(crate) pool: SqlitePool,
    /// Writes: one connection, so writers queue here in order.
    pub(crate) writer: Arc<writer::Writer>,
    /// Message appends and new sessions, committed in batches through
    /// `writer`.
    pub(crate) appender: appends::Appender,
    /// Channels' small writes, committed in groups through `writer`.
    pub(crate) grouped: grouped::Grouped,
    /// Namespaces' vector sign bits between searches.
    pub(crate) vectors: Arc<vectors::VectorCache>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens the database, creating the file (mode 0600) when it is missing.
    /// Does not migrate: check
    /// [`exoclaw_core::store::SchemaStore::schema_status`] and call
    /// [`exoclaw_core::store::SchemaStore::migrate_to`] as the caller sees
    /// fit.
    pub async fn open(options: SqliteOptions) -> StoreResult<Self> {
        extensions::register()?;
        let path = options.path.clone();
        create_private_file(&path)?;
        let connect = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(false)
            .foreign_keys(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match options.synchronous {
                Synchronous::Normal => SqliteSynchronous::Normal,
                Synchronous::Full => SqliteSynchronous::Full,
            })
            .busy_timeout(options.busy_timeout)
            .pragma("cache_size", format!("-{CACHE_SIZE_KIB}"))
            .pragma("journal_size_limit", JOURNAL_SIZE_LIMIT_BYTES.to_string())
            .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES.to_string())
            .statement_cache_capacity(32);
        // No ping before each use: a connection to a local file does not go
        // stale, and with SQLite the ping is a round trip to the
        // connection's thread that doubled the hops of every statement.
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .min_connections(0)
            .test_before_acquire(false)
            .idle_timeout(IDLE_TIMEOUT)
            .acquire_timeout(options.busy_timeout + Duration::from_secs(5))
            .connect_with(connect.clone())
            .await
            .map_err(|e| at_path(&path, e))?;
        // Writers wait for this connection in a fair queue; the timeout
        // bounds that wait like `busy_timeout` bounds a wait for SQLite's
        // lock.
        let writer = writer::Writer::new(
            connect.statement_cache_capacity(WRITER_STATEMENTS),
            options.busy_timeout + Duration::from_secs(5),
            IDLE_TIMEOUT,
        );
        // `connect_with` opened one connection (which switched on WAL); prove
        // the file is a database before handing the store out.
        sqlx::query("SELECT count(*) FROM sqlite_master")
            .execute(&pool)
            .await
            .map_err(|e| at_path(&path, e))?;
        let appender = appends::Appender::start(writer.clone());
        let grouped = grouped::Grouped::start(writer.clone());
        Ok(Self {
            pool,
            writer,
            appender,
            grouped,
            vectors: Arc::default(),
            path,
        })
    }

    /// Opens an existing database for reading only, changing nothing on
    /// disk (no WAL switch; `immutable` when there is no WAL file, like
    /// [`inspect_sqlite`]): for checks such as `exoclaw security audit`.
    /// Every write through this store fails.
    pub async fn open_read_only(path: impl AsRef<Path>) -> StoreResult<Self> {
        extensions::register()?;
        let path = path.as_ref().to_path_buf();
        let has_wal = sibling(&path, "-wal").exists();
        let connect = SqliteConnectOptions::new()
            .filename(&path)
            .read_only(true)
            .immutable(!has_wal)
            .create_if_missing(false)
            .foreign_keys(true)
            .statement_cache_capacity(32);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .connect_with(connect.clone())
            .await
            .map_err(|e| at_path(&path, e))?;
        let writer = writer::Writer::new(connect, Duration::from_secs(5), IDLE_TIMEOUT);
        Ok(Self {
            appender: appends::Appender::start(writer.clone()),
            grouped: grouped::Grouped::start(writer.clone()),
            vectors: Arc::default(),
            writer,
            pool,
            path,
        })
    }

    /// The connection every write goes through, when it is this writer's
    /// turn.
    pub(crate) async fn write_conn(&self) -> StoreResult<writer::WriterGuard<'_>> {
        self.writer.acquire().await
    }

    /// Appends a message: batched with other turns' appends (see
    /// `appends`), in order, `max(seq) + 1` of the session under the write
    /// lock.
    pub(crate) async fn insert_message(&self, m: MessageRow<'_>) -> StoreResult<i64> {
        self.appender
            .append(appends::Append {
                id: m.id.to_owned(),
                role: m.role.to_owned(),
                content: m.content,
                meta: m.meta,
                now: m.now,
                tenant: m.tenant.as_str().to_owned(),
                session: m.session.as_str().to_owned(),
            })
            .await
    }

    /// Inserts a session unless one of its scope exists: batched with
    /// other turns' writes (see `appends`).
    pub(crate) async fn insert_session(&self, s: SessionRow) -> StoreResult<Option<Session>> {
        self.appender.insert_session(s).await
    }

    /// A small write committed with the others queued at the same moment
    /// (see `grouped`); always `Some`.
    pub(crate) async fn write_grouped(
        &self,
        write: impl FnOnce() -> crate::port::grouped::Small + Send,
    ) -> StoreResult<Option<crate::port::grouped::Done>> {
        self.grouped.write(write()).await.map(Some)
    }

    /// A write-behind batch of trace rows in one round trip (see `traces`);
    /// always `Some`: the port's statement-by-statement loop is not needed.
    pub(crate) async fn write_traces_at_once(
        &self,
        writes: &[exoclaw_core::trace::TraceWrite],
    ) -> StoreResult<Option<usize>> {
        let batch = traces::prepare(writes)?;
        Ok(Some(batch.write(&mut *self.write_conn().await?).await?))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Gives back what idle connections hold: every idle reading connection
    /// but one is closed (start-up's reads, or a burst, may have opened
    /// several: a connection handed back is checked on another thread
    /// before it is idle again, so a read right after another opens a new
    /// one), and SQLite frees the page caches of the one kept and of the
    /// writer when nobody holds it. Busy connections are left alone. For an
    /// idle gateway's memory trim; the next burst reopens what it needs.
    pub async fn release_memory(&self) {
        let mut idle = Vec::new();
        while let Some(conn) = self.pool.try_acquire() {
            idle.push(conn);
        }
        let kept = idle.pop();
        tracing::debug!(
            open = self.pool.size(),
            closing = idle.len(),
            "releasing idle SQLite connections"
        );
        for conn in idle {
            let _ = conn.close().await;
        }
        if let Some(mut conn) = kept {
            let _ = sqlx::query("PRAGMA shrink_memory")
                .execute(&mut *conn)
                .await;
        }
        self.writer.release_memory().await;
        self.vectors.release_idle();
    }

    /// Vector searches answered from the store's copy of their namespace's
    /// sign bits, and those that read the index's table (for tests and
    /// benchmarks).
    pub fn vector_cache_counts(&self) -> (u64, u64) {
        self.vectors.counts()
    }

    /// Reading connections open now, idle or busy (the writer's is not
    /// counted).
    pub fn reading_connections(&self) -> u32 {
        self.pool.size()
    }

    /// Whether the write connection is open (it opens at the first write
    /// and closes after a minute unused).
    pub fn writing_connection_open(&self) -> bool {
        self.writer.is_open()
    }

    /// Closes every connection (checkpointing the WAL); later calls fail with
    /// `Unavailable`.
    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }

    async fn run_migrations(&self, table: &Migrations, target: i64) -> StoreResult<Vec<i64>> {
        table.check_target(target)?;
        let mut passed = Vec::new();
        loop {
            let mut writer = self.writer.acquire().await?;
            let mut tx = writer
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(error::sqlite)?;
            create_version_table(&mut tx).await?;
            let (current, dirty) = read_version(&mut tx).await?;
            if dirty {
                return Err(dirty_error(current));
            }
            let Some(step) = table.next_step(current, target)? else {
                tx.commit().await.map_err(error::sqlite)?;
                return Ok(passed);
            };
            tracing::debug!(
                from = step.from,
                to = step.to,
                name = step.name,
                "sqlite migration"
            );
            if step.is_transactional() {
                script::run(&mut tx, step.sql)
                    .await
                    .map_err(|e| step.failed(e))?;
                write_version(&mut tx, step.to, false).await?;
                tx.commit()
                    .await
                    .map_err(|e| step.failed(error::sqlite(e)))?;
            } else {
                write_version(&mut tx, step.to, true).await?;
                tx.commit().await.map_err(error::sqlite)?;
                // The step runs outside a transaction: let go of the writer
                // first (the step takes it again).
                drop(writer);
                script::run(&mut *self.writer.acquire().await?, step.sql)
                    .await
                    .map_err(|e| step.failed(e))?;
                let mut writer = self.writer.acquire().await?;
                let mut tx = writer
                    .begin_with("BEGIN IMMEDIATE")
                    .await
                    .map_err(error::sqlite)?;
                write_version(&mut tx, step.to, false).await?;
                tx.commit().await.map_err(error::sqlite)?;
            }
            passed.extend(step.versions());
        }
    }
}

/// Creates an empty file readable by its owner only, unless it exists. SQLite
/// gives the `-wal` and `-shm` files the database file's mode.
fn create_private_file(path: &Path) -> StoreResult<()> {
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        open.mode(0o600);
    }
    match open.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Unavailable(format!(
            "cannot create the database file {}: {e}",
            path.display()
        ))),
    }
}

/// An error opening or reading the file at `path`, naming it.
fn at_path(path: &Path, err: sqlx::Error) -> StoreError {
    let what = format!("the database file {}", path.display());
    match error::sqlite_in(&what, err) {
        StoreError::Unavailable(m) => StoreError::Unavailable(format!("{m} ({})", path.display())),
        other => other,
    }
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

/// Looks at an SQLite database without creating or changing any file: a
/// missing file is reported as `exists: false`, a damaged one as `Corrupt`.
///
/// The file is opened read-only; when no `-wal` file exists it is also
/// opened `immutable`, which keeps SQLite from creating `-wal`/`-shm` files.
/// When a `-wal` exists (exoclaw is running, or crashed) the WAL is read
/// through the existing `-shm`, so recent commits are seen.
pub async fn inspect_sqlite(path: impl AsRef<Path>) -> StoreResult<Inspection> {
    let path = path.as_ref();
    let missing = Inspection {
        exists: false,
        status: SQLITE.status(0, false),
        vault_key_id: None,
    };
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(missing),
        Err(e) => {
            return Err(StoreError::Unavailable(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    if !meta.is_file() {
        return Err(StoreError::Invalid(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    if meta.len() == 0 {
        // SQLite treats an empty file as an empty database.
        return Ok(Inspection {
            exists: true,
            ..missing
        });
    }
    let has_wal = sibling(path, "-wal").exists();
    check_header(path, meta.len(), has_wal)?;
    extensions::register()?;
    let connect = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .immutable(!has_wal)
        .create_if_missing(false);
    let mut conn = SqliteConnection::connect_with(&connect)
        .await
        .map_err(|e| at_path(path, e))?;
    let result = read_inspection(&mut conn).await;
    if let Err(e) = conn.close().await {
        tracing::debug!(error = %e, "closing the inspection connection");
    }
    result.map_err(|e| match e {
        StoreError::Corrupt(m) => StoreError::Corrupt(m.replace(
            error::SQLITE_DATABASE,
            &format!("the database file {}", path.display()),
        )),
        other => other,
    })
}

/// Checks the 100-byte header: the magic string, and (when there is no WAL
/// that could hold more pages) that the file is as long as the header says.
fn check_header(path: &Path, len: u64, has_wal: bool) -> StoreResult<()> {
    let what = format!("the database file {}", path.display());
    let mut header = [0u8; 100];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut header));
    match read {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(StoreError::Corrupt(error::damaged(
                &what,
                "shorter than an SQLite header",
            )));
        }
        Err(e) => {
            return Err(StoreError::Unavailable(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    }
    if &header[..16] != b"SQLite format 3\0" {
        return Err(StoreError::Corrupt(error::damaged(
            &what,
            "not an SQLite database",
        )));
    }
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        n => u64::from(n),
    };
    let pages = u64::from(u32::from_be_bytes([
        header[28], header[29], header[30], header[31],
    ]));
    let size_is_valid = pages > 0 && header[24..28] == header[92..96];
    if size_is_valid && !has_wal && len < page_size * pages {
        return Err(StoreError::Corrupt(error::damaged(
            &what,
            &format!(
                "truncated: the header promises {pages} pages of {page_size} bytes, the file has {len} bytes"
            ),
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use exoclaw_core::store::MigrationInfo;

    static FAILING_OUTSIDE_TX: Migrations = Migrations::for_tests(
        &[
            MigrationInfo {
                version: 1,
                name: "one",
                up_sql: "CREATE TABLE one (x INTEGER)",
            },
            MigrationInfo {
                version: 2,
                name: "two",
                up_sql: "-- exoclaw:no-transaction\nCREATE TABLE two (x INTEGER); SELECT * FROM missing_table;",
            },
        ],
        &["DROP TABLE one", "DROP TABLE two"],
    );

    #[tokio::test]
    async fn a_step_failing_outside_a_transaction_leaves_the_schema_dirty() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(SqliteOptions::new(dir.path().join("db.sqlite")))
            .await
            .unwrap();
        let err = store
            .run_migrations(&FAILING_OUTSIDE_TX, 2)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("dirty at version 2"), "{err}");
        let (version, dirty) = read_version(&mut store.pool.acquire().await.unwrap())
            .await
            .unwrap();
        assert_eq!((version, dirty), (2, true));
        let again = store
            .run_migrations(&FAILING_OUTSIDE_TX, 2)
            .await
            .unwrap_err();
        assert!(
            again.to_string().contains("exoclaw migrate force"),
            "{again}"
        );
    }

    #[tokio::test]
    async fn a_failing_transactional_step_leaves_the_previous_version() {
        static FAILING: Migrations = Migrations::for_tests(
            &[MigrationInfo {
                version: 1,
                name: "broken",
                up_sql: "CREATE TABLE t (x INTEGER); SELECT * FROM missing_table;",
            }],
            &["DROP TABLE t"],
        );
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(SqliteOptions::new(dir.path().join("db.sqlite")))
            .await
            .unwrap();
        let err = store.run_migrations(&FAILING, 1).await.unwrap_err();
        assert!(err.to_string().contains("left at version 0"), "{err}");
        let mut conn = store.pool.acquire().await.unwrap();
        assert_eq!(read_version(&mut conn).await.unwrap(), (0, false));
        assert!(
            !dialect::has_table(&mut conn, "t").await.unwrap(),
            "rolled back"
        );
    }
}
