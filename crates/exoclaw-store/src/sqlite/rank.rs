//! `exoclaw_bm25(fts_table, skip)`: FTS5's own `bm25()` with the weights
//! (1.0, 0.0, ...) (only the first column scores), except that the first
//! `skip` phrases of the query are not counted. `bm25()` counts, once per
//! query, the rows holding each phrase to weigh it, and a memory search's
//! first phrases are the namespace's tokens (`ns : "n...x...x..."`, column
//! 1, weight 0), which every memory of the namespace holds: counting them
//! walked 100,000 rows on every search and was about 40% of the full-text
//! list (BENCHMARKS.md). Those phrases score nothing at weight 0, so
//! leaving their counts out gives the same score as `bm25(t, 1.0, 0.0)` —
//! a test here compares the two.
//!
//! Registered with FTS5 on every connection as an auto-extension (by
//! [`super::extensions::register`]), beside sqlite-vec.

use std::ffi::{c_char, c_int, c_void};
use std::ptr;

use libsqlite3_sys::{
    Fts5Context, Fts5ExtensionApi, SQLITE_ERROR, SQLITE_OK, SQLITE_ROW, fts5_api, sqlite3,
    sqlite3_api_routines, sqlite3_context, sqlite3_value,
};

/// BM25's constants, as FTS5 has them.
const K1: f64 = 1.2;
const B: f64 = 0.75;

/// What a query's rows share: the table's average row length and each
/// phrase's weight (0 for the skipped ones), computed at its first row.
struct Query {
    avgdl: f64,
    idf: Vec<f64>,
    /// Scratch: the current row's count of each phrase in column 0.
    freq: Vec<f64>,
}

/// The auto-extension's entry point: finds the connection's FTS5 API and
/// adds `exoclaw_bm25` to it. SQLite's result code.
#[allow(
    unsafe_code,
    reason = "FTS5's API for auxiliary functions is C only: the pointer to it comes from `SELECT fts5(?1)`"
)]
pub(crate) unsafe extern "C" fn init(
    db: *mut sqlite3,
    _err: *mut *mut c_char,
    _api: *const sqlite3_api_routines,
) -> c_int {
    use libsqlite3_sys::{
        sqlite3_bind_pointer, sqlite3_finalize, sqlite3_prepare_v2, sqlite3_step,
    };
    let mut stmt = ptr::null_mut();
    let mut fts5: *mut fts5_api = ptr::null_mut();
    // SAFETY: `db` is the connection SQLite is opening, valid during this
    // call. The statement is finalised before returning on every path.
    // `sqlite3_bind_pointer` stores a pointer to `fts5`, a local that
    // outlives the statement, under the type name FTS5 documents
    // ("fts5_api_ptr"); `fts5()` writes the API's address through it during
    // the step. The API lives as long as the connection, and
    // `xCreateFunction` is called with it as its first argument, as FTS5
    // requires; the function registered is a static `extern "C"` function
    // with no user data and no destructor.
    unsafe {
        let rc = sqlite3_prepare_v2(
            db,
            c"SELECT fts5(?1)".as_ptr(),
            -1,
            &raw mut stmt,
            ptr::null_mut(),
        );
        if rc != SQLITE_OK {
            return rc;
        }
        let rc = sqlite3_bind_pointer(
            stmt,
            1,
            (&raw mut fts5).cast::<c_void>(),
            c"fts5_api_ptr".as_ptr(),
            None,
        );
        let stepped = if rc == SQLITE_OK {
            sqlite3_step(stmt)
        } else {
            rc
        };
        sqlite3_finalize(stmt);
        if stepped != SQLITE_ROW || fts5.is_null() || (*fts5).iVersion < 2 {
            return SQLITE_ERROR;
        }
        let Some(create) = (*fts5).xCreateFunction else {
            return SQLITE_ERROR;
        };
        create(
            fts5,
            c"exoclaw_bm25".as_ptr(),
            ptr::null_mut(),
            Some(bm25),
            None,
        )
    }
}

/// Counts the rows `xQueryPhrase` visits into the `i64` at `count`.
#[allow(unsafe_code, reason = "an FTS5 callback")]
unsafe extern "C" fn count_row(
    _api: *const Fts5ExtensionApi,
    _fts: *mut Fts5Context,
    count: *mut c_void,
) -> c_int {
    // SAFETY: `count` is the `&mut i64` that `query` passes to
    // `xQueryPhrase`, alive for the whole call.
    unsafe { *count.cast::<i64>() += 1 };
    SQLITE_OK
}

/// Frees a [`Query`] handed to `xSetAuxdata`.
#[allow(unsafe_code, reason = "an FTS5 destructor")]
unsafe extern "C" fn drop_query(p: *mut c_void) {
    // SAFETY: `p` came from `Box::into_raw` in `query`, and SQLite calls
    // this once, when the query ends.
    drop(unsafe { Box::from_raw(p.cast::<Query>()) });
}

/// The query's [`Query`], computed and stored at its first row. `None`
/// with SQLite's error code.
#[allow(unsafe_code, reason = "FTS5's auxiliary-function API")]
unsafe fn query<'a>(
    api: &Fts5ExtensionApi,
    fts: *mut Fts5Context,
    skip: usize,
) -> Result<&'a mut Query, c_int> {
    let (Some(get), Some(set), Some(phrases), Some(rows), Some(total), Some(each)) = (
        api.xGetAuxdata,
        api.xSetAuxdata,
        api.xPhraseCount,
        api.xRowCount,
        api.xColumnTotalSize,
        api.xQueryPhrase,
    ) else {
        return Err(SQLITE_ERROR);
    };
    // SAFETY: every call gets the `fts` context FTS5 passed to the
    // function; out-parameters are locals. The auxiliary data, when set,
    // is a `Box<Query>` of ours (set below with its destructor), valid
    // until the query ends, which is after this row's call returns.
    unsafe {
        let stored = get(fts, 0).cast::<Query>();
        if !stored.is_null() {
            return Ok(&mut *stored);
        }
        let n = usize::try_from(phrases(fts)).unwrap_or(0);
        let (mut nrow, mut ntoken) = (0i64, 0i64);
        let rc = rows(fts, &raw mut nrow);
        if rc != SQLITE_OK {
            return Err(rc);
        }
        let rc = total(fts, -1, &raw mut ntoken);
        if rc != SQLITE_OK {
            return Err(rc);
        }
        let nrow_f = nrow as f64;
        let mut idf = vec![0.0; n];
        for (i, w) in idf.iter_mut().enumerate().skip(skip) {
            let mut hits = 0i64;
            let rc = each(
                fts,
                c_int::try_from(i).unwrap_or(c_int::MAX),
                (&raw mut hits).cast::<c_void>(),
                Some(count_row),
            );
            if rc != SQLITE_OK {
                return Err(rc);
            }
            let hits = hits as f64;
            let v = ((nrow_f - hits + 0.5) / (hits + 0.5)).ln();
            *w = if v <= 0.0 { 1e-6 } else { v };
        }
        let q = Box::into_raw(Box::new(Query {
            avgdl: ntoken as f64 / nrow_f.max(1.0),
            idf,
            freq: vec![0.0; n],
        }));
        let rc = set(fts, q.cast::<c_void>(), Some(drop_query));
        if rc != SQLITE_OK {
            // SQLite has already called the destructor on failure.
            return Err(rc);
        }
        Ok(&mut *q)
    }
}

/// `exoclaw_bm25(table, skip)`: the row's score, lower is better, as
/// `bm25()` returns it.
#[allow(unsafe_code, reason = "an FTS5 auxiliary function")]
unsafe extern "C" fn bm25(
    api: *const Fts5ExtensionApi,
    fts: *mut Fts5Context,
    ctx: *mut sqlite3_context,
    nval: c_int,
    vals: *mut *mut sqlite3_value,
) {
    use libsqlite3_sys::{sqlite3_result_double, sqlite3_result_error_code, sqlite3_value_int64};
    // SAFETY: FTS5 passes its API, the query's context and the SQL
    // function's context, all valid during the call, and `nval` values at
    // `vals`; the one read (`vals[0]`) is checked against `nval` first.
    unsafe {
        let api = &*api;
        let skip = if nval >= 1 {
            usize::try_from(sqlite3_value_int64(*vals)).unwrap_or(0)
        } else {
            0
        };
        match row_score(api, fts, skip) {
            Ok(score) => sqlite3_result_double(ctx, score),
            Err(rc) => sqlite3_result_error_code(ctx, rc),
        }
    }
}

/// The current row's score (see [`bm25`]).
#[allow(unsafe_code, reason = "FTS5's auxiliary-function API")]
unsafe fn row_score(
    api: &Fts5ExtensionApi,
    fts: *mut Fts5Context,
    skip: usize,
) -> Result<f64, c_int> {
    let (Some(count), Some(inst), Some(size)) = (api.xInstCount, api.xInst, api.xColumnSize) else {
        return Err(SQLITE_ERROR);
    };
    // SAFETY: as in `bm25`: the context is FTS5's for this row, and the
    // out-parameters are locals.
    unsafe {
        let q = query(api, fts, skip)?;
        q.freq.iter_mut().for_each(|f| *f = 0.0);
        let mut ninst = 0;
        let rc = count(fts, &raw mut ninst);
        if rc != SQLITE_OK {
            return Err(rc);
        }
        for i in 0..ninst {
            let (mut phrase, mut col, mut off) = (0, 0, 0);
            let rc = inst(fts, i, &raw mut phrase, &raw mut col, &raw mut off);
            if rc != SQLITE_OK {
                return Err(rc);
            }
            if col == 0
                && let Some(f) = usize::try_from(phrase).ok().and_then(|p| q.freq.get_mut(p))
            {
                *f += 1.0;
            }
        }
        let mut ntok = 0;
        let rc = size(fts, -1, &raw mut ntok);
        if rc != SQLITE_OK {
            return Err(rc);
        }
        let d = f64::from(ntok);
        let norm = K1 * (1.0 - B + B * d / q.avgdl);
        let score: f64 = q
            .idf
            .iter()
            .zip(&q.freq)
            .map(|(idf, f)| idf * (f * (K1 + 1.0)) / (f + norm))
            .sum();
        Ok(-score)
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Connection as _;

    /// Scores equal `bm25(t, 1.0, 0.0)` on queries whose first phrases
    /// are in the second column.
    #[tokio::test]
    async fn scores_equal_bm25_with_the_second_column_unweighted() {
        super::super::extensions::register().unwrap();
        let mut conn = sqlx::sqlite::SqliteConnection::connect("sqlite::memory:")
            .await
            .unwrap();
        sqlx::query("CREATE VIRTUAL TABLE t USING fts5 (content, ns)")
            .execute(&mut conn)
            .await
            .unwrap();
        let words = ["apple", "pear", "plum", "fig", "kiwi", "lime", "date"];
        let mut seed = 0x2545_f491_u64;
        for i in 0..200usize {
            let text: Vec<&str> = (0..(3 + i % 9))
                .map(|_| {
                    seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    words[usize::try_from(seed >> 33).unwrap() % words.len()]
                })
                .collect();
            let ns = if i % 3 == 0 { "nsb" } else { "nsa" };
            sqlx::query("INSERT INTO t (rowid, content, ns) VALUES (?, ?, ?)")
                .bind(i64::try_from(i).unwrap() + 1)
                .bind(text.join(" "))
                .bind(ns)
                .execute(&mut conn)
                .await
                .unwrap();
        }
        for (q, skip) in [
            ("(ns : nsa) AND (content : apple OR content : fig)", 1),
            (
                "(ns : nsa OR ns : nsb) AND (content : kiwi OR content : lime OR content : date)",
                2,
            ),
            ("(ns : nsb) AND (content : plum AND content : pear)", 1),
        ] {
            let rows: Vec<(i64, f64, f64)> = sqlx::query_as(
                "SELECT rowid, bm25(t, 1.0, 0.0), exoclaw_bm25(t, ?2) FROM t WHERE t MATCH ?1",
            )
            .bind(q)
            .bind(skip)
            .fetch_all(&mut conn)
            .await
            .unwrap();
            assert!(rows.len() > 5, "{q}: {}", rows.len());
            for (rowid, theirs, ours) in rows {
                assert!(theirs < 0.0, "{q}: row {rowid} scored {theirs}");
                assert!(
                    (theirs - ours).abs() < 1e-9,
                    "{q}: row {rowid}: bm25 {theirs}, exoclaw_bm25 {ours}"
                );
            }
        }
    }
}
