//! Test databases: a fresh SQLite file in a temp dir, or a fresh PostgreSQL
//! database created on the test cluster and dropped afterwards (best effort,
//! also when the test panics). Plus small builders shared by the tests.

use exoclaw_core::model::{AgentType, NewAgent, NewMessage, NewUser, Role, SessionScope};
use exoclaw_core::store::{SchemaStore, Store};
use exoclaw_core::{AgentId, Secret, TenantId, UserId};
use exoclaw_store::{PgOptions, PgStore, SqliteOptions, SqliteStore};
use sqlx::{AssertSqlSafe, Connection, PgPool, SqlitePool};
use std::sync::Arc;

/// The superuser DSN of a throwaway cluster.
const DSN_VAR: &str = "EXOCLAW_TEST_POSTGRES_DSN";
/// `1` makes a missing DSN a failure instead of a skip.
const REQUIRE_VAR: &str = "REQUIRE_POSTGRES";

#[expect(
    clippy::disallowed_methods,
    reason = "the test harness is configured by the environment, like `cargo xtask test` sets it"
)]
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Direct SQL access beside the store, for what the ports cannot do
/// (tamper with bookkeeping, try forbidden statements).
#[derive(Clone)]
pub enum Raw {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Raw {
    /// Runs the statement for this backend; rows affected.
    pub async fn exec(
        &self,
        sqlite: &'static str,
        postgres: &'static str,
    ) -> Result<u64, sqlx::Error> {
        match self {
            Raw::Sqlite(pool) => Ok(sqlx::query(sqlite).execute(pool).await?.rows_affected()),
            Raw::Postgres(pool) => Ok(sqlx::query(postgres).execute(pool).await?.rows_affected()),
        }
    }

    /// Runs one statement built at run time (the same SQL for both backends).
    pub async fn exec_sql(&self, sql: &str) -> Result<u64, sqlx::Error> {
        let sql = AssertSqlSafe(sql.to_owned());
        match self {
            Raw::Sqlite(pool) => Ok(sqlx::query(sql).execute(pool).await?.rows_affected()),
            Raw::Postgres(pool) => Ok(sqlx::query(sql).execute(pool).await?.rows_affected()),
        }
    }

    /// The one integer a query built at run time answers.
    pub async fn count(&self, sql: &str) -> Result<i64, sqlx::Error> {
        let sql = AssertSqlSafe(sql.to_owned());
        match self {
            Raw::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
            Raw::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        }
    }

    async fn close(&self) {
        match self {
            Raw::Sqlite(pool) => pool.close().await,
            Raw::Postgres(pool) => pool.close().await,
        }
    }
}

enum Backing {
    Sqlite {
        store: SqliteStore,
        _dir: tempfile::TempDir,
    },
    Postgres {
        store: PgStore,
        guard: DropDatabase,
    },
}

/// One test's database.
pub struct TestDb {
    pub store: Arc<dyn Store>,
    pub raw: Raw,
    backing: Backing,
}

impl TestDb {
    pub async fn sqlite(migrate: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exoclaw.db");
        let store = SqliteStore::open(SqliteOptions::new(&path)).await.unwrap();
        if migrate {
            store.migrate_to(latest_version(&store)).await.unwrap();
        }
        let raw =
            SqlitePool::connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(&path))
                .await
                .unwrap();
        Self {
            store: Arc::new(store.clone()),
            raw: Raw::Sqlite(raw),
            backing: Backing::Sqlite { store, _dir: dir },
        }
    }

    /// `None` (after a skip line) when no test cluster is configured.
    pub async fn postgres(test: &str, migrate: bool) -> Option<Self> {
        let Some(admin_dsn) = env(DSN_VAR) else {
            if env(REQUIRE_VAR).as_deref() == Some("1") {
                panic!(
                    "{REQUIRE_VAR}=1 but {DSN_VAR} is not set: run the suite with \
                     `cargo xtask test`, which provisions a throwaway PostgreSQL"
                );
            }
            eprintln!(
                "SKIP postgres contract test {test}: {DSN_VAR} is not set \
                 (run `cargo xtask test` to provision a throwaway PostgreSQL)"
            );
            return None;
        };
        let name = format!("exoclaw_test_{}", random_hex());
        let mut admin = sqlx::PgConnection::connect(&admin_dsn).await.unwrap();
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.unwrap();
        let guard = DropDatabase {
            admin_dsn: admin_dsn.clone(),
            name: name.clone(),
        };
        let dsn = with_database(&admin_dsn, &name);
        let store = PgStore::connect(PgOptions::new(Secret::new(dsn.clone())))
            .await
            .unwrap();
        if migrate {
            store.migrate_to(latest_version(&store)).await.unwrap();
        }
        let raw = PgPool::connect(&dsn).await.unwrap();
        Some(Self {
            store: Arc::new(store.clone()),
            raw: Raw::Postgres(raw),
            backing: Backing::Postgres { store, guard },
        })
    }

    /// The options that reach this test's PostgreSQL database.
    pub fn pg_options(&self) -> Option<PgOptions> {
        match &self.backing {
            Backing::Postgres { guard, .. } => Some(PgOptions::new(Secret::new(with_database(
                &guard.admin_dsn,
                &guard.name,
            )))),
            Backing::Sqlite { .. } => None,
        }
    }

    /// The concrete SQLite store (backup tests need more than the ports).
    pub fn sqlite_store(&self) -> Option<&SqliteStore> {
        match &self.backing {
            Backing::Sqlite { store, .. } => Some(store),
            Backing::Postgres { .. } => None,
        }
    }

    pub async fn finish(self) {
        self.raw.close().await;
        match &self.backing {
            Backing::Sqlite { store, .. } => store.close().await,
            Backing::Postgres { store, .. } => store.close().await,
        }
        // the temp dir and the database are dropped with `self`
    }
}

/// The newest schema version the store ships.
pub fn latest_version(store: &dyn Store) -> i64 {
    store.migrations().last().map_or(0, |m| m.version)
}

fn random_hex() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap();
    hex::encode(bytes)
}

/// `dsn` with its database path replaced by `/name` (query kept).
pub fn with_database(dsn: &str, name: &str) -> String {
    let authority_start = dsn.find("://").expect("a URL DSN") + 3;
    let rest = &dsn[authority_start..];
    let path_start = rest.find(['/', '?']).unwrap_or(rest.len());
    let query = rest[path_start..]
        .find('?')
        .map_or("", |q| &rest[path_start + q..]);
    format!(
        "{}{}/{name}{query}",
        &dsn[..authority_start],
        &rest[..path_start]
    )
}

/// Drops the test database when the test ends, even by panic: on a thread
/// of its own, with a runtime of its own (Drop cannot await).
struct DropDatabase {
    admin_dsn: String,
    name: String,
}

impl Drop for DropDatabase {
    fn drop(&mut self) {
        let admin_dsn = self.admin_dsn.clone();
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for cleanup");
            rt.block_on(async {
                let mut admin = sqlx::PgConnection::connect(&admin_dsn).await?;
                sqlx::query(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await?;
                admin.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {} (left behind)", self.name);
        }
    }
}

// ---- builders ---------------------------------------------------------------

pub fn tid(s: &str) -> TenantId {
    TenantId::new(s)
}

pub fn default_tenant() -> TenantId {
    TenantId::new(exoclaw_core::DEFAULT_TENANT)
}

pub fn new_user(name: &str) -> NewUser {
    NewUser {
        name: name.to_owned(),
        role: Role::User,
    }
}

pub fn new_agent(id: &str) -> NewAgent {
    NewAgent {
        id: AgentId::new(id),
        display_name: format!("Agent {id}"),
        agent_type: AgentType::Open,
        config: serde_json::json!({"model": "test-model", "tools": ["web"]}),
    }
}

pub fn scope(agent: &str, user: &str, peer: &str) -> SessionScope {
    SessionScope {
        agent_id: AgentId::new(agent),
        user_id: UserId::new(user),
        channel: "api".to_owned(),
        peer: peer.to_owned(),
    }
}

pub fn text_message(text: &str) -> NewMessage {
    NewMessage {
        role: "user".to_owned(),
        content: serde_json::json!({"text": text}),
        meta: serde_json::json!({}),
    }
}

/// A second tenant with an agent `a1`, beside the default one.
pub async fn two_tenants(store: &dyn Store) -> (TenantId, TenantId) {
    let a = default_tenant();
    let b = tid("other");
    store.create_tenant(&b, "Other").await.unwrap();
    (a, b)
}

/// Waits long enough for the millisecond clock to move.
pub async fn tick() {
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
}

#[test]
fn dsn_database_is_replaced() {
    assert_eq!(
        with_database("postgres://u:p@h:5432/postgres", "x"),
        "postgres://u:p@h:5432/x"
    );
    assert_eq!(
        with_database("postgres://h/postgres?sslmode=disable", "x"),
        "postgres://h/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h:1", "x"), "postgres://h:1/x");
    assert_eq!(with_database("postgres://h?a=b", "x"), "postgres://h/x?a=b");
}
