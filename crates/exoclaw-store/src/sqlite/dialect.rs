//! The SQLite side of the dialect layer (the table in `crate::dialect`): the
//! query texts as written, JSON as `TEXT`, `LIMIT` behind a cast, writers
//! serialised by `BEGIN IMMEDIATE` on the one writer connection, so no row
//! or advisory locks.

use crate::migrate::{Migrations, SQLITE};
use exoclaw_core::store::{Backend, StoreError, StoreResult};

pub(crate) type Conn = sqlx::sqlite::SqliteConnection;

pub(crate) const BACKEND: Backend = Backend::Sqlite;

/// The migrations of this dialect.
pub(crate) static MIGRATIONS: &Migrations = &SQLITE;

/// Starts every transaction that writes (on the writer connection): takes
/// SQLite's write lock first, so a read inside it cannot race another
/// writer, also one of another process (the CLI).
pub(crate) const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";
/// A read transaction sees one snapshot of the WAL.
pub(crate) const BEGIN_SNAPSHOT: &str = "BEGIN";
/// `LIMIT -1` is "no limit".
pub(crate) const NO_LIMIT: Option<i64> = Some(-1);

/// Maps an error of the SQLite driver.
pub(crate) fn err(e: sqlx::Error) -> StoreError {
    crate::error::sqlite(e)
}

/// Whether table `name` exists. Read-only.
pub(crate) async fn has_table(conn: &mut Conn, name: &str) -> StoreResult<bool> {
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?")
            .bind(name)
            .fetch_one(conn)
            .await
            .map_err(err)?;
    Ok(n > 0)
}

/// Nothing to lock: migrators run in writing transactions, which hold
/// SQLite's write lock (`BEGIN_WRITE`).
pub(crate) async fn lock_migrations(_conn: &mut Conn) -> StoreResult<()> {
    Ok(())
}

/// Nothing to lock: every writing transaction already holds SQLite's write
/// lock (`BEGIN_WRITE`). The key is never built.
pub(crate) async fn lock(
    _conn: &mut Conn,
    _key: impl FnOnce() -> String + Send,
) -> StoreResult<()> {
    Ok(())
}

/// The statement text: the parts as written, one literal.
macro_rules! sql {
    ($($part:tt)+) => {
        concat!($($part)+)
    };
}

/// A JSON column as selected: stored as text already.
macro_rules! json_col {
    ($col:literal) => {
        $col
    };
    ($table:literal, $col:literal) => {
        concat!($table, $col)
    };
}

/// The last `seq` the summary message `x` replaces: `compacted_through` in
/// its meta when that is an integer, else its own `seq` (as
/// `exoclaw_core::agent::history::covered_by`).
macro_rules! summary_covered {
    () => {
        "COALESCE(CASE WHEN json_type(x.meta, '$.compacted_through') = 'integer' \
         THEN json_extract(x.meta, '$.compacted_through') END, x.seq)"
    };
}

/// A JSON parameter: bound as text.
macro_rules! json_arg {
    ($param:literal) => {
        $param
    };
}

/// A `LIMIT` parameter. A parameter alone makes SQLite re-compile the
/// statement at every new binding (it plans for the bound value); behind a
/// cast it is an expression, and the cached statement is reused.
macro_rules! limit {
    ($param:literal) => {
        concat!("CAST(", $param, " AS INTEGER)")
    };
}

/// Nothing: SQLite's writer lock serialises claims.
macro_rules! skip_locked {
    () => {
        ""
    };
}

/// No row locks in SQLite (see `BEGIN_WRITE`).
macro_rules! for_update {
    () => {
        ""
    };
}

/// Memories matching the full-text query `?1` (FTS5 over `memories_fts`,
/// aliased `m`), for `WHERE` to go on with `AND`.
macro_rules! fts_from {
    () => {
        "memories_fts JOIN memories m ON m.num = memories_fts.rowid WHERE memories_fts MATCH ?1"
    };
}

/// Best full-text match first (BM25, lower is better).
macro_rules! fts_order {
    () => {
        "bm25(memories_fts)"
    };
}

/// The FTS5 query for `words` (letters and digits only): any of them,
/// each quoted so that none is an operator.
pub(crate) fn fts_query(words: &[String]) -> String {
    words
        .iter()
        .map(|w| format!("\"{w}\""))
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// Skills matching the full-text query `?1` (aliased `s`), for `WHERE`
/// to go on with `AND`.
macro_rules! skill_fts_from {
    () => {
        "skills_fts JOIN skills s ON s.num = skills_fts.rowid WHERE skills_fts MATCH ?1"
    };
}

/// Best full-text match of a skill first.
macro_rules! skill_fts_order {
    () => {
        "bm25(skills_fts)"
    };
}

pub(crate) use {
    for_update, fts_from, fts_order, json_arg, json_col, limit, skill_fts_from, skill_fts_order,
    skip_locked, sql, summary_covered,
};
