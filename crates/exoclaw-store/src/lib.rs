//! exoclaw storage: [`SqliteStore`] and [`PgStore`] (both implement every
//! store port of `exoclaw_core::store` and are used as `Arc<dyn Store>`), their
//! versioned migrations, read-only inspection for `doctor` and start-up
//! checks, and the secret [`vault`].
//!
//! Invariants:
//! - every query filters on `tenant_id`; another tenant's id reads as
//!   `None`/`NotFound`, never as data;
//! - error messages never contain a connection string or password;
//! - inspection ([`inspect_sqlite`], [`inspect_postgres`]) never creates or
//!   modifies anything;
//! - plaintext secrets never reach a store: the vault seals them first.
//!
//! Backups: [`SqliteStore::snapshot_to`] and [`check_sqlite_snapshot`],
//! [`PgStore::export_jsonl`], [`PgStore::import_jsonl`] and
//! [`backup::check_export`] (see [`backup`]).
//!
//! Layers, lowest first: `dialect` (what differs between the two SQL
//! dialects), `rule` (business rules, no SQL), `row` (row decoding), `port`
//! (every port written once, one query text per operation, expanded in each
//! backend), then `sqlite` and `postgres` (connections, the writer and group
//! commit, row-locked appends, migration runners, backups).

pub mod audit;
pub mod backup;
mod dialect;
mod error;
mod migrate;
mod port;
mod postgres;
mod row;
mod rule;
mod sqlite;
mod trace;
pub mod vault;

pub use migrate::require_current_schema;
pub use postgres::{PgOptions, PgStore, inspect_postgres};
pub use sqlite::{SqliteOptions, SqliteStore, Synchronous, check_sqlite_snapshot, inspect_sqlite};
pub use trace::{new_span_row, new_trace_row};

use exoclaw_core::UnixMillis;
use exoclaw_core::store::{Backend, MigrationInfo, SchemaStatus, StoreError, StoreResult};
use std::time::{SystemTime, UNIX_EPOCH};

/// What a read-only look at a database found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inspection {
    /// SQLite: the database file exists. PostgreSQL: the database exists and
    /// accepted the connection.
    pub exists: bool,
    /// The schema version found (current 0 when there is none yet).
    pub status: SchemaStatus,
    /// The fingerprint of the key the vault check was sealed with, if any.
    pub vault_key_id: Option<String>,
}

/// The migrations a backend ships, oldest first, without opening a store
/// (for `upgrade --dry-run`). The same list as `SchemaStore::migrations`.
pub fn migrations(backend: Backend) -> &'static [MigrationInfo] {
    match backend {
        Backend::Sqlite => migrate::SQLITE.infos,
        Backend::Postgres => migrate::POSTGRES.infos,
    }
}

/// The page size of `list_audit` when the filter says 0.
pub(crate) const DEFAULT_AUDIT_LIMIT: u32 = 100;

/// A fresh id: 32 lowercase hex characters (128 bits), the time of its
/// making in Unix milliseconds (48 bits) and then 80 random bits.
///
/// Time first, so that new rows go to the end of each primary-key index
/// (and of indexes that lead with another such id, as `messages
/// (session_id, seq)` does) instead of to a random page of it: with random
/// ids, every row a commit wrote dirtied a page of its own in each such
/// index, and as the tables grew the writer spent its time writing those
/// pages to the WAL, checkpointing them and reading them back in (`cargo
/// xtask bench proxy`, BENCHMARKS.md). 80 random bits keep ids unique and
/// unguessable, and when a row was made is in the row anyway; an id that is
/// itself the secret of a request comes from [`new_secret_id`].
pub(crate) fn new_id() -> StoreResult<String> {
    let mut bytes = [0u8; 16];
    let millis = u64::try_from(now_millis()).unwrap_or(0).to_be_bytes();
    let (time, random) = bytes.split_at_mut(6);
    time.copy_from_slice(&millis[2..]);
    fill_random(random)?;
    Ok(hex::encode(bytes))
}

/// A fresh id of 128 random bits (32 lowercase hex characters), for an id
/// that is a bearer secret, such as the pairing request id a browser polls
/// with: nothing in it says when it was made.
pub(crate) fn new_secret_id() -> StoreResult<String> {
    let mut bytes = [0u8; 16];
    fill_random(&mut bytes)?;
    Ok(hex::encode(bytes))
}

fn fill_random(bytes: &mut [u8]) -> StoreResult<()> {
    getrandom::fill(bytes)
        .map_err(|e| StoreError::Other(format!("the OS random number generator failed: {e}")))
}

/// Now, in Unix milliseconds.
pub fn now_millis() -> UnixMillis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// JSON to the text stored in a row.
pub(crate) fn json_text(value: &serde_json::Value) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Invalid(format!("unstorable JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_32_hex_chars_and_differ() {
        let a = new_id().unwrap();
        let b = new_id().unwrap();
        assert_eq!(a.len(), 32);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
    }

    #[test]
    fn secret_ids_are_128_random_bits() {
        let ids: Vec<String> = (0..64).map(|_| new_secret_id().unwrap()).collect();
        assert!(ids.iter().all(|id| id.len() == 32));
        // No time prefix: 64 ids do not share their first 12 characters
        // (random ones collide there with probability about 2^-36).
        let prefixes: std::collections::HashSet<&str> = ids.iter().map(|id| &id[..12]).collect();
        assert_eq!(prefixes.len(), 64);
    }

    #[test]
    fn ids_start_with_the_time_so_later_ones_sort_after() {
        let before = now_millis();
        let a = new_id().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_id().unwrap();
        let at = i64::from_str_radix(&a[..12], 16).unwrap();
        assert!(at >= before && at <= now_millis(), "{at} vs {before}");
        assert!(a < b, "{a} then {b}");
        // 80 random bits after the time: two ids of one millisecond differ.
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| new_id().unwrap()).collect();
        assert_eq!(ids.len(), 1000);
    }

    #[test]
    fn migrations_are_listed_per_backend() {
        let sqlite = migrations(Backend::Sqlite);
        let postgres = migrations(Backend::Postgres);
        assert_eq!(sqlite.len(), postgres.len());
        for (s, p) in sqlite.iter().zip(postgres) {
            assert_eq!((s.version, s.name), (p.version, p.name), "dialects in step");
        }
        let audit = |ms: &[MigrationInfo]| {
            ms.iter()
                .find(|m| m.up_sql.contains("CREATE TABLE audit_events"))
                .map(|m| m.up_sql)
                .unwrap_or_default()
        };
        assert!(audit(sqlite).contains("AUTOINCREMENT"));
        assert!(audit(postgres).contains("BIGSERIAL"));
    }

    #[test]
    fn now_is_after_2024() {
        assert!(now_millis() > 1_704_067_200_000);
    }
}
