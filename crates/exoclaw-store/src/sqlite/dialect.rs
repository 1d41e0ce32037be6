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

/// The FTS5 query over `memories_fts` for `words` (letters and digits
/// only, each quoted so that none is an operator) in the namespaces of
/// `tokens` (see `rule::memory::Scope::tokens`): any word, or every word
/// when `all`. The namespace phrases come first: `text_candidates!`'s
/// `exoclaw_bm25` leaves them out of the score by their position.
pub(crate) fn fts_query(words: &[String], all: bool, tokens: &[String]) -> String {
    let join = |parts: Vec<String>, op: &str| format!("({})", parts.join(op));
    let ns = join(
        tokens.iter().map(|t| format!("ns : \"{t}\"")).collect(),
        " OR ",
    );
    let words = join(
        words.iter().map(|w| format!("content : \"{w}\"")).collect(),
        if all { " AND " } else { " OR " },
    );
    format!("{ns} AND {words}")
}

/// How many memories match each FTS5 query of `queries` (namespace
/// included), each counted up to `cap` (FTS5 stops there), in one
/// statement: one round trip to the connection's thread for all of them.
pub(crate) async fn count_matches(
    conn: &mut Conn,
    queries: &[String],
    _scope: &crate::rule::memory::Scope<'_>,
    cap: i64,
) -> StoreResult<Vec<i64>> {
    let queries = serde_json::to_string(queries)
        .map_err(|e| StoreError::Invalid(format!("a full-text query: {e}")))?;
    sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM (SELECT 1 FROM memories_fts \
         WHERE memories_fts MATCH q.value LIMIT ?2)) FROM json_each(?1) q ORDER BY q.key",
    )
    .bind(queries)
    .bind(cap)
    .fetch_all(conn)
    .await
    .map_err(err)
}

/// A full-text list: the memory columns `$cols` (aliased `m`) of the
/// namespace's newest `?6` matches of the FTS5 query `?1`, best (BM25 of
/// the content: `exoclaw_bm25`, which leaves out the query's first phrases,
/// the namespace tokens, one for the user when `?4` is set and one for the
/// shared memories when `?5`: see [`fts_query`]) first, `?7` of them.
/// `any;` instead of `newest;` when the matches are known to be at most
/// `?6`: the same rows, without walking FTS5's lists backwards (which
/// reads each list's pages from its start). Only
/// the best `?7 * 4` by score are read from `memories` (for the scope and
/// the tie-breakers: importance, then recency), not every candidate: each
/// row read costs its content and vector. The scope again on the rows:
/// tenant `?2`, agent `?3`, user `?4`, the shared ones when `?5`. `CROSS
/// JOIN`: SQLite then keeps the candidates as the outer loop (else it may
/// walk the namespace's index of `memories` and probe the candidates,
/// which reads the namespace).
macro_rules! text_candidates {
    (newest; $($cols:tt)+) => {
        $crate::sqlite::dialect::text_candidates!(@ "ORDER BY rowid DESC "; $($cols)+)
    };
    (any; $($cols:tt)+) => {
        $crate::sqlite::dialect::text_candidates!(@ ""; $($cols)+)
    };
    (@ $order:literal; $($cols:tt)+) => {
        concat!(
            "SELECT ",
            $($cols)+,
            " FROM (SELECT num, score FROM (SELECT rowid AS num, \
             exoclaw_bm25(memories_fts, (?4 IS NOT NULL) + ?5) AS score FROM memories_fts \
             WHERE memories_fts MATCH ?1 ",
            $order,
            "LIMIT ?6) ORDER BY score LIMIT ?7 * 4) f \
             CROSS JOIN memories m ON m.num = f.num WHERE m.tenant_id = ?2 AND m.agent_id = ?3 \
             AND (m.user_id = ?4 OR (?5 AND m.user_id IS NULL)) \
             ORDER BY f.score, m.importance DESC, m.updated_at DESC LIMIT ?7"
        )
    };
}

/// A query vector as bound: little-endian `f32`s (what `vec_f32` reads).
pub(crate) fn vector_param(v: &[f32]) -> Vec<u8> {
    crate::rule::memory::encode_vector(v)
}

/// Nothing to set before a vector search on SQLite.
pub(crate) async fn prepare_vector_search(_conn: &mut Conn) -> StoreResult<()> {
    Ok(())
}

/// The candidates of a vector list through the sqlite-vec table of
/// dimension `dims`, as a JSON array of `memories.num`: the `k` nearest to
/// `v` by the sign bits' Hamming distance among the user's and the shared
/// memories of the tenant, agent and embedder (two partitions). Scored
/// here rather than by the table's `MATCH`: sqlite-vec 0.1.9 picks a
/// chunk's best `k` by `k` passes over the chunk, so its search costs
/// (memories x k), about 60 ms for 100,000 memories and 200 candidates,
/// where this heap costs (memories x log k). The bits come from the
/// store's [`super::vectors::VectorCache`] when the agent's generation
/// (schema 25, read in this same transaction) is the copy's; else from the
/// table's chunks, kept for the next search. The chunk layout
/// (`<table>_chunks`: `partition00..03`, `validity`, `rowids`;
/// `<table>_vector_chunks00`: `vectors`) is that of the pinned version.
pub(crate) async fn vector_candidates(
    store: &super::SqliteStore,
    conn: &mut Conn,
    dims: usize,
    scope: &crate::rule::memory::Scope<'_>,
    model: &str,
    v: &[f32],
    k: i64,
) -> StoreResult<String> {
    use crate::rule::memory::{Nearest, Packed};
    use futures_util::TryStreamExt as _;
    use sqlx::Row as _;
    macro_rules! chunks {
        ($dims:literal) => {
            concat!(
                "SELECT c.validity, c.rowids, v.vectors FROM memories_vec_",
                $dims,
                "_chunks c JOIN memories_vec_",
                $dims,
                "_vector_chunks00 v ON v.rowid = c.chunk_id WHERE c.partition00 = ?1 \
                 AND c.partition01 = ?2 AND c.partition02 IN (coalesce('u:' || ?3, ''), '') \
                 AND c.partition03 = ?4"
            )
        };
    }
    let sql = match dims {
        384 => chunks!(384),
        768 => chunks!(768),
        1024 => chunks!(1024),
        1536 => chunks!(1536),
        _ => {
            return Err(StoreError::Invalid(format!(
                "no vector index for {dims} dimensions"
            )));
        }
    };
    let generation: i64 = sqlx::query_scalar(
        "SELECT coalesce((SELECT generation FROM memory_generations \
         WHERE tenant_id = ?1 AND agent_id = ?2), 0)",
    )
    .bind(scope.tenant)
    .bind(scope.agent)
    .fetch_one(&mut *conn)
    .await
    .map_err(err)?;
    let key = super::vectors::Key {
        tenant: scope.tenant.to_owned(),
        agent: scope.agent.to_owned(),
        user: scope.user.map(str::to_owned),
        model: model.to_owned(),
        dims,
    };
    let packed = match store.vectors.get(&key, generation) {
        Some(p) => p,
        None => {
            let mut packed = Packed::new(dims.div_ceil(8));
            let mut rows = sqlx::query(sql)
                .bind(scope.tenant)
                .bind(scope.agent)
                .bind(scope.user)
                .bind(model)
                .fetch(conn);
            while let Some(r) = rows.try_next().await.map_err(err)? {
                let validity: &[u8] = r.try_get("validity").map_err(err)?;
                let rowids: &[u8] = r.try_get("rowids").map_err(err)?;
                let vectors: &[u8] = r.try_get("vectors").map_err(err)?;
                packed.push_chunk(validity, rowids, vectors)?;
            }
            let packed = std::sync::Arc::new(packed.finish());
            store.vectors.put(key, generation, packed.clone());
            packed
        }
    };
    let mut nearest = Nearest::new(v, usize::try_from(k).unwrap_or(0));
    nearest.scan(&packed)?;
    Ok(nearest.into_json())
}

/// A vector list of dimension `$dims`: the candidates `?6` (a JSON array
/// of `memories.num`, from [`vector_candidates`]) of tenant `?2`, agent
/// `?3`, user `?4` or shared, embedder `?5`, ordered by the exact cosine
/// distance of the stored vectors to `?1`, `?7` of them; the memory columns
/// `$cols` (aliased `m`). `CROSS JOIN` keeps the candidates the outer loop,
/// as in `text_candidates!`. (`$dims` is the caller's dispatch; the
/// candidates carry it.)
macro_rules! vector_knn {
    ($dims:literal, $($cols:tt)+) => {
        concat!(
            "SELECT ",
            $($cols)+,
            " FROM (SELECT value AS num FROM json_each(?6)) c \
             CROSS JOIN memories m ON m.num = c.num WHERE m.tenant_id = ?2 AND m.agent_id = ?3 \
             AND (m.user_id IS NULL OR m.user_id = ?4) AND m.embedder = ?5 \
             ORDER BY vec_distance_cosine(m.embedding, ?1), m.id LIMIT ?7"
        )
    };
}

/// The FTS5 query for a skill search's `words` (letters and digits only):
/// any of them, each quoted so that none is an operator.
pub(crate) fn skill_fts_query(words: &[String]) -> String {
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
    for_update, json_arg, json_col, limit, skill_fts_from, skill_fts_order, skip_locked, sql,
    summary_covered, text_candidates, vector_knn,
};
