//! Stores for the unit tests of this crate: a migrated SQLite store in a temp
//! dir, and a migrated PostgreSQL store in a fresh database on the test
//! cluster named by `EXOCLAW_TEST_POSTGRES_DSN` (skipped without it, unless
//! `REQUIRE_POSTGRES=1`). The database is dropped by [`TestStore::finish`].

use exoclaw_core::Secret;
use exoclaw_core::store::Store;
use exoclaw_store::{PgOptions, PgStore, SqliteOptions, SqliteStore};
use sqlx::Connection as _;
use std::sync::Arc;

pub struct TestStore {
    pub name: &'static str,
    pub store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
    drop_db: Option<(String, String)>,
}

#[expect(
    clippy::disallowed_methods,
    reason = "the test harness is configured by the environment, like `cargo xtask test` sets it"
)]
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

async fn migrate(store: &dyn Store) {
    let latest = store.schema_status().await.expect("status").latest;
    store.migrate_to(latest).await.expect("migrate");
}

pub async fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(SqliteOptions::new(dir.path().join("exoclaw.db")))
        .await
        .expect("open sqlite");
    migrate(&store).await;
    TestStore {
        name: "sqlite",
        store: Arc::new(store),
        _dir: Some(dir),
        drop_db: None,
    }
}

pub async fn postgres() -> Option<TestStore> {
    let Some(admin) = env("EXOCLAW_TEST_POSTGRES_DSN") else {
        assert!(
            env("REQUIRE_POSTGRES").as_deref() != Some("1"),
            "REQUIRE_POSTGRES=1 but EXOCLAW_TEST_POSTGRES_DSN is unset"
        );
        eprintln!("skipping PostgreSQL: EXOCLAW_TEST_POSTGRES_DSN not set");
        return None;
    };
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("random");
    let db = format!("exoclaw_unit_{}", hex::encode(b));
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .expect("connect to the test cluster");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    let _ = conn.close().await;
    let mut url = url::Url::parse(&admin).expect("DSN is a URL");
    url.set_path(&db);
    let store = PgStore::connect(PgOptions::new(Secret::new(url.to_string())))
        .await
        .expect("connect");
    migrate(&store).await;
    Some(TestStore {
        name: "postgres",
        store: Arc::new(store),
        _dir: None,
        drop_db: Some((admin, db)),
    })
}

/// SQLite, and PostgreSQL when the cluster is given.
pub async fn all() -> Vec<TestStore> {
    let mut v = vec![sqlite().await];
    v.extend(postgres().await);
    v
}

impl TestStore {
    /// Drops the PostgreSQL database (best effort).
    pub async fn finish(self) {
        let Self { store, drop_db, .. } = self;
        drop(store);
        if let Some((admin, db)) = drop_db
            && let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await;
        }
    }
}
