//! The storage contract suite: every test is written once against
//! `Arc<dyn Store>` and instantiated for SQLite (a fresh temp dir) and
//! PostgreSQL (a fresh database on the cluster named by
//! `EXOCLAW_TEST_POSTGRES_DSN`, which `cargo xtask test` provides).
//!
//! Without that variable the PostgreSQL instances print a skip line and
//! pass, unless `REQUIRE_POSTGRES=1`, which turns the skip into a failure.
//!
//! Test names are `<area>::<test>::sqlite` and `<area>::<test>::postgres`.

#![allow(
    clippy::disallowed_macros,
    reason = "tests and benchmarks print what they measure"
)]
#![allow(
    clippy::unwrap_used,
    reason = "the contract tests live in plain async fns that clippy does not see as tests; a panic is the failure report"
)]

/// Instantiates contract tests for both backends.
///
/// - `contract!(store: a, b)` - `async fn a(store: Arc<dyn Store>)`, migrated;
/// - `contract!(db: a, b)` - `async fn a(db: &TestDb)`, migrated (raw SQL access);
/// - `contract!(fresh: a, b)` - `async fn a(db: &TestDb)`, nothing migrated.
macro_rules! contract {
    (store: $($name:ident),+ $(,)?) => {
        $(contract!(@one $name, true, store);)+
    };
    (db: $($name:ident),+ $(,)?) => {
        $(contract!(@one $name, true, db);)+
    };
    (fresh: $($name:ident),+ $(,)?) => {
        $(contract!(@one $name, false, db);)+
    };
    (@call $name:ident, store, $db:ident) => {
        super::$name($db.store.clone()).await
    };
    (@call $name:ident, db, $db:ident) => {
        super::$name(&$db).await
    };
    (@one $name:ident, $migrate:expr, $arg:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::harness::TestDb::sqlite($migrate).await;
                contract!(@call $name, $arg, db);
                db.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(db) = $crate::harness::TestDb::postgres(stringify!($name), $migrate).await
                else {
                    return;
                };
                contract!(@call $name, $arg, db);
                db.finish().await;
            }
        }
    };
}

mod agents;
mod approvals;
mod audit;
mod audit_chain;
mod backup;
mod channel_claims;
mod channels;
mod cron;
mod dashboard;
mod delegations;
mod directory;
mod harness;
mod inspect;
mod jobs;
mod keys;
mod links;
mod mail;
mod memory;
mod memory_index;
mod pairing;
mod schema;
mod secrets;
mod sessions;
mod skills;
mod sqlite_file;
mod tasks;
mod teams;
mod tokens;
mod tool_sources;
mod traces;
mod usage;
mod users;
