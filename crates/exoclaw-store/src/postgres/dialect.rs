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

/// The `to_tsquery` text for `words` (letters and digits only, so none
/// is an operator): any of them, or all when `all`. The namespace is in
/// the statements (`_tokens` are SQLite's).
pub(crate) fn fts_query(words: &[String], all: bool, _tokens: &[String]) -> String {
    words.join(if all { " & " } else { " | " })
}

/// How many memories of `scope` match each `to_tsquery` text of
/// `queries` (one word each), each counted up to `cap`, in one statement:
/// read from schema 26's per-namespace lexeme counts, not the GIN index
/// (which builds a bitmap of all of a common word's matches to count
/// them). A word that is several lexemes counts as its rarest; a stop word
/// matches nothing.
pub(crate) async fn count_matches(
    conn: &mut Conn,
    queries: &[String],
    scope: &crate::rule::memory::Scope<'_>,
    cap: i64,
) -> StoreResult<Vec<i64>> {
    sqlx::query_scalar(
        "SELECT least(coalesce((SELECT min(c.n) FROM (SELECT coalesce(sum(t.n), 0) AS n \
         FROM unnest(tsvector_to_array(to_tsvector('english', u.q))) AS l (lexeme) \
         LEFT JOIN memory_terms t ON t.tenant_id = $2 AND t.agent_id = $3 \
         AND (t.user_key = $4 OR ($5 AND t.user_key = '')) AND t.lexeme = l.lexeme \
         GROUP BY l.lexeme) c), 0), $6)::bigint \
         FROM unnest($1::text[]) WITH ORDINALITY AS u (q, i) ORDER BY u.i",
    )
    .bind(queries)
    .bind(scope.tenant)
    .bind(scope.agent)
    .bind(scope.user)
    .bind(scope.has_shared())
    .bind(cap)
    .fetch_all(conn)
    .await
    .map_err(err)
}

/// A full-text list: the memory columns `$cols` (aliased `m`) of the
/// newest `?6` memories matching the `to_tsquery` text `?1` in tenant
/// `?2`, agent `?3`, user `?4` (the shared ones when `?5`), best
/// (`ts_rank_cd` over the stored `tsv`) first, `?7` of them. The same
/// statement for `newest;` and `any;` (see SQLite's).
macro_rules! text_candidates {
    ($order:ident; $($cols:tt)+) => {
        concat!(
            "SELECT ",
            $($cols)+,
            " FROM (SELECT ",
            $($cols)+,
            ", m.tsv FROM memories m WHERE m.tsv @@ to_tsquery('english', ?1) \
             AND m.tenant_id = ?2 AND m.agent_id = ?3 \
             AND (m.user_id = ?4 OR (?5 AND m.user_id IS NULL)) \
             ORDER BY m.updated_at DESC LIMIT ?6) m \
             ORDER BY ts_rank_cd(m.tsv, to_tsquery('english', ?1)) DESC, m.importance DESC, \
             m.updated_at DESC LIMIT ?7"
        )
    };
}

/// A query vector as bound: pgvector's text form, cast in the statement.
pub(crate) fn vector_param(v: &[f32]) -> String {
    let mut out = String::with_capacity(v.len() * 12 + 2);
    out.push('[');
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&x.to_string());
    }
    out.push(']');
    out
}

/// In the search's transaction: let the HNSW scan go on past its first
/// `ef_search` candidates until the namespace filters leave enough rows
/// (pgvector 0.8's iterative scan), and look at more candidates at first.
pub(crate) async fn prepare_vector_search(conn: &mut Conn) -> StoreResult<()> {
    sqlx::query("SET LOCAL hnsw.iterative_scan = relaxed_order")
        .execute(&mut *conn)
        .await
        .map_err(err)?;
    sqlx::query("SET LOCAL hnsw.ef_search = 200")
        .execute(conn)
        .await
        .map_err(err)?;
    Ok(())
}

/// The candidates of a vector list: on PostgreSQL the HNSW scan takes
/// them in the statement, `k` of them.
pub(crate) async fn vector_candidates(
    _store: &super::PgStore,
    _conn: &mut Conn,
    _dims: usize,
    _scope: &crate::rule::memory::Scope<'_>,
    _model: &str,
    _v: &[f32],
    k: i64,
) -> StoreResult<i64> {
    Ok(k)
}

/// A vector list through the HNSW index of dimension `$dims`: the `?6`
/// nearest (cosine) memories of tenant `?2`, agent `?3`, user `?4` or
/// shared, embedder `?5`, to `?1` (relaxed order), ordered exactly, `?7` of
/// them; the memory columns `$cols` (aliased `m`).
macro_rules! vector_knn {
    ($dims:literal, $($cols:tt)+) => {
        concat!(
            "SELECT ",
            $($cols)+,
            " FROM (SELECT ",
            $($cols)+,
            ", m.embedding_v::vector(",
            $dims,
            ") <=> ?1::vector(",
            $dims,
            ") AS distance FROM memories m WHERE m.tenant_id = ?2 AND m.agent_id = ?3 \
             AND (m.user_id IS NULL OR m.user_id = ?4) AND m.embedder = ?5 \
             AND vector_dims(m.embedding_v) = ",
            $dims,
            " ORDER BY m.embedding_v::vector(",
            $dims,
            ") <=> ?1::vector(",
            $dims,
            ") LIMIT ?6) m ORDER BY m.distance, m.id LIMIT ?7"
        )
    };
}

/// The `to_tsquery` text for a skill search's `words` (letters and digits
/// only, so none is an operator): any of them.
pub(crate) fn skill_fts_query(words: &[String]) -> String {
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
    for_update, json_arg, json_col, limit, skill_fts_from, skill_fts_order, skip_locked, sql,
    summary_covered, text_candidates, vector_knn,
};
