//! The PostgreSQL side of the dialect layer (the table in `crate::dialect`):
//! placeholders rewritten to `$N` once per statement, JSONB bound as text
//! and cast, read back as `::text` (so both backends share one row shape),
//! row locks and advisory locks where several connections or gateways may
//! write at once.

use crate::migrate::{Migrations, POSTGRES};
use exoclaw_core::store::{Backend, StoreError, StoreResult};

pub(crate) type Conn = sqlx::postgres::PgConnection;

pub(crate) const BACKEND: Backend = Backend::Postgres;

/// The migrations of this dialect.
pub(crate) static MIGRATIONS: &Migrations = &POSTGRES;

/// Starts every transaction that writes.
pub(crate) const BEGIN_WRITE: &str = "BEGIN";
/// One snapshot for every statement of the transaction.
pub(crate) const BEGIN_SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";
/// `LIMIT NULL` is "no limit".
pub(crate) const NO_LIMIT: Option<i64> = None;

/// Maps an error of the PostgreSQL driver.
pub(crate) fn err(e: sqlx::Error) -> StoreError {
    crate::error::postgres(e)
}

/// Whether table `name` exists (in the search path). Read-only.
pub(crate) async fn has_table(conn: &mut Conn, name: &str) -> StoreResult<bool> {
    sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(name)
        .fetch_one(conn)
        .await
        .map_err(err)
}

/// Key of the advisory lock migrations hold ("exoclaw" + 1).
const MIGRATION_LOCK: i64 = 0x6578_6f63_6c61_7701;

/// Serialises migrators until the transaction ends, also across gateways
/// starting at once.
pub(crate) async fn lock_migrations(conn: &mut Conn) -> StoreResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(conn)
        .await
        .map_err(err)?;
    Ok(())
}

/// Serialises transactions that name the same `key` until they end, also
/// across connections and processes sharing the database.
pub(crate) async fn lock(conn: &mut Conn, key: impl FnOnce() -> String + Send) -> StoreResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
        .bind(key())
        .execute(conn)
        .await
        .map_err(err)?;
    Ok(())
}

/// The statement text: the parts with `?`/`?N` rewritten to `$N`, once (the
/// text is kept in a `static` per statement; every call after the first
/// gets the same `&'static str`).
macro_rules! sql {
    ($($part:tt)+) => {{
        static SQL: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| $crate::dialect::numbered(concat!($($part)+)));
        SQL.as_str()
    }};
}

/// A JSONB column as selected: as text, under its own name.
/// The last `seq` the summary message `x` replaces: `compacted_through` in
/// its meta when that is a number, else its own `seq` (as
/// `exoclaw_core::agent::history::covered_by`).
macro_rules! summary_covered {
    () => {
        "COALESCE(CASE WHEN jsonb_typeof(x.meta -> 'compacted_through') = 'number' \
         THEN (x.meta ->> 'compacted_through')::numeric::bigint END, x.seq)"
    };
}

macro_rules! json_col {
    ($col:literal) => {
        concat!($col, "::text AS ", $col)
    };
    ($table:literal, $col:literal) => {
        concat!($table, $col, "::text AS ", $col)
    };
}

/// A JSONB parameter: bound as text, cast.
macro_rules! json_arg {
    ($param:literal) => {
        concat!($param, "::jsonb")
    };
}

/// A `LIMIT` parameter, as it is (NULL is no limit).
macro_rules! limit {
    ($param:literal) => {
        $param
    };
}

/// Locks the selected rows, passing over rows another transaction holds
/// (a claim by several gateways at once).
macro_rules! skip_locked {
    () => {
        " FOR UPDATE SKIP LOCKED"
    };
}

/// Locks the selected rows until the transaction ends.
macro_rules! for_update {
    () => {
        " FOR UPDATE"
    };
}

/// Memories matching the full-text query `?1` (`to_tsquery`, over the
/// expression index on `to_tsvector('english', content)`), aliased `m`, for
/// `WHERE` to go on with `AND`.
macro_rules! fts_from {
    () => {
        "memories m WHERE to_tsvector('english', m.content) @@ to_tsquery('english', ?1)"
    };
}

/// Best full-text match first.
macro_rules! fts_order {
    () => {
        "ts_rank_cd(to_tsvector('english', m.content), to_tsquery('english', ?1)) DESC"
    };
}

/// The `to_tsquery` text for `words` (letters and digits only, so none
/// is an operator): any of them.
pub(crate) fn fts_query(words: &[String]) -> String {
    words.join(" | ")
}

/// Skills matching the full-text query `?1` (aliased `s`), for `WHERE`
/// to go on with `AND`.
macro_rules! skill_fts_from {
    () => {
        "skills s WHERE to_tsvector('english', s.search_text) @@ to_tsquery('english', ?1)"
    };
}

/// Best full-text match of a skill first.
macro_rules! skill_fts_order {
    () => {
        "ts_rank_cd(to_tsvector('english', s.search_text), to_tsquery('english', ?1)) DESC"
    };
}

pub(crate) use {
    for_update, fts_from, fts_order, json_arg, json_col, limit, skill_fts_from, skill_fts_order,
    skip_locked, sql, summary_covered,
};
