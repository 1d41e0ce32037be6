//! What every connection of ours has beside SQLite's own, registered as
//! auto-extensions once per process, before any of our connections opens:
//! sqlite-vec, compiled in (the `sqlite-vec` crate builds its C source
//! against the SQLite that sqlx links), whose `vec0` tables and `vec_*`
//! functions the memory index's triggers (schema 24) call on every write
//! to `memories`; and the FTS5 ranking function `exoclaw_bm25`
//! ([`super::rank`]), which the memory search ranks with.

use exoclaw_core::store::{StoreError, StoreResult};
use std::ffi::{c_char, c_int};
use std::sync::OnceLock;

/// The entry point SQLite calls on each new connection.
type EntryPoint = unsafe extern "C" fn(
    *mut libsqlite3_sys::sqlite3,
    *mut *mut c_char,
    *const libsqlite3_sys::sqlite3_api_routines,
) -> c_int;

/// Registers sqlite-vec and `exoclaw_bm25` for every connection opened
/// after this call (once per process; later calls return the first
/// outcome). Called by every path that opens a SQLite connection, before it
/// opens it.
pub(crate) fn register() -> StoreResult<()> {
    static DONE: OnceLock<(c_int, c_int)> = OnceLock::new();
    let (vec, rank) = *DONE.get_or_init(|| (auto_extension(), rank_extension()));
    for (rc, what) in [(vec, "the sqlite-vec extension"), (rank, "exoclaw_bm25")] {
        if rc != libsqlite3_sys::SQLITE_OK {
            return Err(StoreError::Unavailable(format!(
                "cannot register {what} with SQLite (code {rc})"
            )));
        }
    }
    Ok(())
}

/// `sqlite3_auto_extension(rank::init)`: SQLite's result code.
#[allow(
    unsafe_code,
    reason = "the one FFI call that registers the ranking function"
)]
fn rank_extension() -> c_int {
    // SAFETY: `rank::init` has the entry point's signature (`EntryPoint`);
    // `sqlite3_auto_extension` is thread-safe and only records the pointer,
    // a static function valid for the life of the process.
    unsafe { libsqlite3_sys::sqlite3_auto_extension(Some(super::rank::init as EntryPoint)) }
}

/// `sqlite3_auto_extension(sqlite3_vec_init)`: SQLite's result code.
#[allow(
    unsafe_code,
    reason = "the one FFI call that registers the compiled-in sqlite-vec"
)]
fn auto_extension() -> c_int {
    let init: unsafe extern "C" fn() = sqlite_vec::sqlite3_vec_init;
    // SAFETY: the crate declares `sqlite3_vec_init` without parameters,
    // but the C function it names is SQLite's extension entry point,
    // `int sqlite3_vec_init(sqlite3 *db, char **pzErrMsg, const
    // sqlite3_api_routines *pApi)` (sqlite-vec.h), which is exactly
    // `EntryPoint`: both are `extern "C"` function pointers of the same
    // size, so the transmute only restores the real signature, and SQLite
    // calls it with those three arguments. It is compiled with SQLITE_CORE,
    // so it calls the linked SQLite (the one libsqlite3-sys bundles for
    // sqlx) and ignores `pApi`. `sqlite3_auto_extension` is thread-safe and
    // only records the pointer, a static function valid for the life of the
    // process.
    unsafe {
        let entry = std::mem::transmute::<unsafe extern "C" fn(), EntryPoint>(init);
        libsqlite3_sys::sqlite3_auto_extension(Some(entry))
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Connection as _;

    #[tokio::test]
    async fn connections_opened_after_registration_answer_vec_version() {
        super::register().unwrap();
        let mut conn = sqlx::sqlite::SqliteConnection::connect("sqlite::memory:")
            .await
            .unwrap();
        let version: String = sqlx::query_scalar("SELECT vec_version()")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert!(version.starts_with("v0.1."), "{version}");
        let bits: Vec<u8> = sqlx::query_scalar(
            "SELECT vec_quantize_binary(vec_f32('[1, -1, 1, -1, -1, -1, -1, 1]'))",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert_eq!(bits, vec![0b1000_0101]);
    }

    /// The bundled SQLite is built as `.cargo/config.toml` asks: without
    /// the shared page-cache LRU, memory statistics and STAT4.
    #[tokio::test]
    async fn sqlite_is_built_without_its_process_wide_mutexes() {
        let mut conn = sqlx::sqlite::SqliteConnection::connect("sqlite::memory:")
            .await
            .unwrap();
        let options: Vec<String> = sqlx::query_scalar("PRAGMA compile_options")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "{options:?}"
        );
        assert!(options.iter().any(|o| o == "ENABLE_FTS5"), "{options:?}");
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "{options:?}"
        );
        assert!(!options.iter().any(|o| o == "ENABLE_STAT4"), "{options:?}");
    }
}
