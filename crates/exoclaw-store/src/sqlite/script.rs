//! A script of many statements (a migration step, the squashed schema) run
//! by SQLite itself, `sqlite3_exec` on the connection's own handle, in one
//! call. sqlx runs a script one statement at a time, each statement's
//! outcome handed from the connection's thread to the caller's task and the
//! next statement asked for: for the squashed schema's 150 statements that
//! hand-over cost as much as the statements themselves (BENCHMARKS.md,
//! issue 11).
//!
//! The call blocks the calling task's thread for as long as the script runs
//! (a few milliseconds for the whole schema); it runs where a migration runs,
//! at start-up or in `exoclaw migrate`, not on a request's path.

use crate::error;
use exoclaw_core::store::{StoreError, StoreResult};
use sqlx::sqlite::SqliteConnection;
use std::ffi::{CStr, CString, c_char};

/// Runs every statement of `sql` on `conn`, in order, in whatever
/// transaction `conn` is in; stops at the first failing statement (its
/// error, mapped as the driver's would be).
pub(crate) async fn run(conn: &mut SqliteConnection, sql: &str) -> StoreResult<()> {
    let script = CString::new(sql)
        .map_err(|_| StoreError::Invalid("an SQL script holds a NUL byte".to_owned()))?;
    let mut handle = conn.lock_handle().await.map_err(error::sqlite)?;
    let db = handle.as_raw_handle().as_ptr();
    exec(db, &script)
}

#[allow(unsafe_code, reason = "the one FFI call that runs a script")]
fn exec(db: *mut libsqlite3_sys::sqlite3, script: &CStr) -> StoreResult<()> {
    let mut message: *mut c_char = std::ptr::null_mut();
    // SAFETY: `db` is an open connection's handle, taken from its worker
    // thread by `lock_handle` for as long as the caller holds the lock, so
    // nothing else uses it meanwhile; `script` is NUL-terminated and
    // outlives the call; there is no callback, so SQLite calls none of our
    // code; `message` is written only by SQLite, with NULL or a string it
    // allocated, freed below with `sqlite3_free` after it is copied.
    unsafe {
        let rc = libsqlite3_sys::sqlite3_exec(
            db,
            script.as_ptr(),
            None,
            std::ptr::null_mut(),
            &mut message,
        );
        if rc == libsqlite3_sys::SQLITE_OK {
            return Ok(());
        }
        let code = i64::from(libsqlite3_sys::sqlite3_extended_errcode(db));
        let text = if message.is_null() {
            CStr::from_ptr(libsqlite3_sys::sqlite3_errstr(rc))
                .to_string_lossy()
                .into_owned()
        } else {
            let text = CStr::from_ptr(message).to_string_lossy().into_owned();
            libsqlite3_sys::sqlite3_free(message.cast());
            text
        };
        Err(error::sqlite_code(code, text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Connection as _;

    async fn conn() -> SqliteConnection {
        SqliteConnection::connect("sqlite::memory:").await.unwrap()
    }

    #[tokio::test]
    async fn every_statement_runs_in_order_in_the_callers_transaction() {
        let mut c = conn().await;
        let mut tx = c.begin().await.unwrap();
        run(
            &mut tx,
            "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);\n\
             CREATE TRIGGER t_double AFTER INSERT ON t WHEN new.x < 10 BEGIN\n\
                 INSERT INTO t VALUES (new.x * 10);\n\
             END;\n\
             INSERT INTO t VALUES (2);",
        )
        .await
        .unwrap();
        let rows: Vec<i64> = sqlx::query_scalar("SELECT x FROM t ORDER BY x")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        assert_eq!(rows, [1, 2, 20]);
        tx.rollback().await.unwrap();
        assert!(
            sqlx::query("SELECT x FROM t")
                .fetch_all(&mut c)
                .await
                .is_err(),
            "rolled back with the transaction"
        );
    }

    #[tokio::test]
    async fn the_first_failing_statement_stops_the_script_with_its_error() {
        let mut c = conn().await;
        let err = run(
            &mut c,
            "CREATE TABLE t (x INTEGER PRIMARY KEY); INSERT INTO t VALUES (1); \
             INSERT INTO t VALUES (1); CREATE TABLE never (x INTEGER);",
        )
        .await
        .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        let err = run(
            &mut c,
            "SELECT * FROM missing_table; CREATE TABLE never (x);",
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&err, StoreError::Other(m) if m.contains("no such table: missing_table")),
            "{err:?}"
        );
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE name = 'never'")
            .fetch_one(&mut c)
            .await
            .unwrap();
        assert_eq!(n, 0);
        let err = run(&mut c, "SELECT 1;\0 SELECT 2;").await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    }
}
