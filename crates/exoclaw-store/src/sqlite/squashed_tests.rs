//! The squashed schema (`migrations/sqlite/schema.sql`) against the
//! migrations it stands for. It is generated from them (`UPDATE_SCHEMA=1
//! cargo nextest run -p exoclaw-store squashed`) and must stay what they
//! leave behind: the same `sqlite_master`, shadow tables and all, and the
//! same seed rows. A new migration without a regenerated file fails here.

use super::*;
use exoclaw_core::store::{MigrationInfo, SchemaStore as _};
use sqlx::Row as _;
use std::collections::HashSet;

const SCHEMA_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite/schema.sql");

/// A seed row's `created_at` is when the database was made, as in the
/// migration that inserted it.
const NOW_MS: &str = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";

#[expect(
    clippy::disallowed_methods,
    reason = "the regeneration switch is the developer's variable"
)]
fn updating() -> bool {
    std::env::var("UPDATE_SCHEMA").as_deref() == Ok("1")
}

async fn fresh(dir: &Path, name: &str) -> SqliteStore {
    SqliteStore::open(SqliteOptions::new(dir.join(name)))
        .await
        .unwrap()
}

/// The real migrations, applied one by one.
fn stepwise() -> Migrations {
    Migrations::for_tests(SQLITE.infos, SQLITE.downs)
}

fn latest() -> i64 {
    SQLITE.latest()
}

/// Tables a virtual table made for itself: those SQLite knows as shadow
/// tables (FTS5's), and those named after a virtual table (vec0's vector
/// chunks, which its module does not declare).
async fn shadow_tables(conn: &mut SqliteConnection) -> HashSet<String> {
    let listed: Vec<(String, String)> =
        sqlx::query_as("SELECT name, type FROM pragma_table_list WHERE schema = 'main'")
            .fetch_all(conn)
            .await
            .unwrap();
    let virtual_prefixes: Vec<String> = listed
        .iter()
        .filter(|(_, kind)| kind == "virtual")
        .map(|(name, _)| format!("{name}_"))
        .collect();
    listed
        .into_iter()
        .filter(|(name, kind)| {
            kind == "shadow"
                || virtual_prefixes
                    .iter()
                    .any(|p| name.starts_with(p.as_str()))
        })
        .map(|(name, _)| name)
        .collect()
}

/// Our ordinary tables in creation order: not SQLite's, not shadow tables,
/// not the version table (the runner makes it before any step).
async fn ordinary_tables(conn: &mut SqliteConnection) -> Vec<String> {
    let shadow = shadow_tables(conn).await;
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT m.name FROM sqlite_master m JOIN pragma_table_list l ON l.name = m.name \
         WHERE m.type = 'table' AND l.type = 'table' AND l.schema = 'main' ORDER BY m.rowid",
    )
    .fetch_all(conn)
    .await
    .unwrap();
    names
        .into_iter()
        .filter(|n| !n.starts_with("sqlite_") && n != "schema_migrations" && !shadow.contains(n))
        .collect()
}

/// A table's rows as SQL literals (`quote()`), columns in order.
async fn rows(conn: &mut SqliteConnection, table: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let columns: Vec<String> =
        sqlx::query_scalar("SELECT name FROM pragma_table_info(?) ORDER BY cid")
            .bind(table)
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    let quoted: Vec<String> = columns.iter().map(|c| format!("quote(\"{c}\")")).collect();
    let order: Vec<String> = (1..=columns.len()).map(|i| i.to_string()).collect();
    let select = format!(
        "SELECT {} FROM \"{table}\" ORDER BY {}",
        quoted.join(", "),
        order.join(", ")
    );
    // Names from sqlite_master, quoted: the test's own tables.
    let rows = sqlx::query(sqlx::AssertSqlSafe(select))
        .fetch_all(&mut *conn)
        .await
        .unwrap()
        .iter()
        .map(|row| {
            (0..columns.len())
                .map(|i| row.get::<String, _>(i))
                .collect()
        })
        .collect();
    (columns, rows)
}

/// What `schema.sql` must hold for the database behind `conn`.
async fn render(conn: &mut SqliteConnection) -> String {
    let shadow = shadow_tables(conn).await;
    let entries: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let mut out = format!(
        "-- The SQLite schema at version {}: every migration in this folder applied in\n\
         -- order, as SQLite keeps it (sqlite_master in creation order), then their seed\n\
         -- rows. A new database is made from this one script instead of step by step\n\
         -- (src/migrate.rs); src/sqlite/squashed_tests.rs checks both give the same.\n\
         -- Generated, do not edit: UPDATE_SCHEMA=1 cargo nextest run -p exoclaw-store squashed\n\n",
        latest()
    );
    for (name, table, sql) in entries {
        let ours = !name.starts_with("sqlite_") && name != "schema_migrations";
        if ours && !shadow.contains(&name) && !shadow.contains(&table) {
            out.push_str(&sql);
            out.push_str(";\n\n");
        }
    }
    for table in ordinary_tables(conn).await {
        let (columns, rows) = rows(conn, &table).await;
        for row in rows {
            let values: Vec<&str> = columns
                .iter()
                .zip(&row)
                .map(|(c, v)| if c == "created_at" { NOW_MS } else { v })
                .collect();
            out.push_str(&format!(
                "INSERT INTO {table} ({}) VALUES ({});\n",
                columns.join(", "),
                values.join(", ")
            ));
        }
    }
    out
}

#[tokio::test]
async fn schema_sql_is_the_migrations_applied_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = fresh(dir.path(), "stepwise.sqlite").await;
    let passed = store.run_migrations(&stepwise(), latest()).await.unwrap();
    assert_eq!(passed, (1..=latest()).collect::<Vec<_>>());
    let rendered = render(&mut store.write_conn().await.unwrap()).await;
    if updating() {
        std::fs::write(SCHEMA_FILE, &rendered).unwrap();
        eprintln!("wrote {SCHEMA_FILE}");
        return;
    }
    assert!(
        std::fs::read_to_string(SCHEMA_FILE).unwrap() == rendered,
        "migrations/sqlite/schema.sql is not what the migrations leave behind: regenerate it \
         with `UPDATE_SCHEMA=1 cargo nextest run -p exoclaw-store squashed` and commit it"
    );
}

#[tokio::test]
async fn a_new_database_from_the_squashed_schema_equals_a_migrated_one() {
    let dir = tempfile::tempdir().unwrap();
    let migrated = fresh(dir.path(), "stepwise.sqlite").await;
    migrated
        .run_migrations(&stepwise(), latest())
        .await
        .unwrap();
    let squashed = fresh(dir.path(), "squashed.sqlite").await;
    assert_eq!(
        squashed.migrate_to(latest()).await.unwrap(),
        (1..=latest()).collect::<Vec<_>>(),
        "reported as every version applied"
    );
    let status = squashed.schema_status().await.unwrap();
    assert!(status.is_current(), "{status:?}");

    let mut a = migrated.write_conn().await.unwrap();
    let mut b = squashed.write_conn().await.unwrap();
    let master = "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master \
                  ORDER BY type, name";
    let a_master: Vec<(String, String, String, String)> =
        sqlx::query_as(master).fetch_all(&mut *a).await.unwrap();
    let b_master: Vec<(String, String, String, String)> =
        sqlx::query_as(master).fetch_all(&mut *b).await.unwrap();
    assert!(a_master.len() > 100, "{}", a_master.len());
    for entry in &a_master {
        assert!(
            b_master.contains(entry),
            "the squashed schema lacks {entry:?}"
        );
    }
    for entry in &b_master {
        assert!(
            a_master.contains(entry),
            "the squashed schema adds {entry:?}"
        );
    }
    assert_eq!(a_master.len(), b_master.len());
    let tables = ordinary_tables(&mut a).await;
    assert_eq!(tables, ordinary_tables(&mut b).await);
    let mut seeded = 0;
    for table in &tables {
        let without_time = |(columns, rows): (Vec<String>, Vec<Vec<String>>)| -> Vec<Vec<String>> {
            rows.into_iter()
                .map(|row| {
                    columns
                        .iter()
                        .zip(row)
                        .filter(|(c, _)| *c != "created_at")
                        .map(|(_, v)| v)
                        .collect()
                })
                .collect()
        };
        let a_rows = without_time(rows(&mut a, table).await);
        assert_eq!(a_rows, without_time(rows(&mut b, table).await), "{table}");
        seeded += a_rows.len();
    }
    assert!(seeded >= 1, "the default tenant is seeded");
    drop((a, b));

    // The made database is an ordinary one at the latest version: the last
    // migration reverts and applies again, one step at a time.
    assert_eq!(
        squashed.migrate_to(latest() - 1).await.unwrap(),
        vec![latest() - 1]
    );
    assert_eq!(squashed.migrate_to(latest()).await.unwrap(), vec![latest()]);
}

static TWO: [MigrationInfo; 2] = [
    MigrationInfo {
        version: 1,
        name: "one",
        up_sql: "CREATE TABLE one (x INTEGER)",
    },
    MigrationInfo {
        version: 2,
        name: "two",
        up_sql: "CREATE TABLE two (x INTEGER)",
    },
];

fn two(squashed: &'static str) -> Migrations {
    Migrations {
        squashed: Some(squashed),
        ..Migrations::for_tests(&TWO, &["DROP TABLE one", "DROP TABLE two"])
    }
}

#[tokio::test]
async fn the_squashed_schema_is_used_only_from_nothing_to_the_latest_version() {
    let table = two(
        "CREATE TABLE one (x INTEGER); CREATE TABLE two (x INTEGER); CREATE TABLE marker (x INTEGER);",
    );
    let dir = tempfile::tempdir().unwrap();

    let partial = fresh(dir.path(), "partial.sqlite").await;
    assert_eq!(partial.run_migrations(&table, 1).await.unwrap(), vec![1]);
    assert_eq!(partial.run_migrations(&table, 2).await.unwrap(), vec![2]);
    let mut conn = partial.pool.acquire().await.unwrap();
    assert!(dialect::has_table(&mut conn, "two").await.unwrap());
    assert!(!dialect::has_table(&mut conn, "marker").await.unwrap());

    let whole = fresh(dir.path(), "whole.sqlite").await;
    assert_eq!(whole.run_migrations(&table, 2).await.unwrap(), vec![1, 2]);
    let mut conn = whole.pool.acquire().await.unwrap();
    assert!(dialect::has_table(&mut conn, "marker").await.unwrap());
    assert_eq!(read_version(&mut conn).await.unwrap(), (2, false));
}

#[tokio::test]
async fn a_failing_squashed_schema_leaves_an_empty_database_at_version_0() {
    let table = two("CREATE TABLE one (x INTEGER); SELECT * FROM missing_table;");
    let dir = tempfile::tempdir().unwrap();
    let store = fresh(dir.path(), "db.sqlite").await;
    let err = store.run_migrations(&table, 2).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("creating the schema of version 2") && text.contains("left at version 0"),
        "{text}"
    );
    let mut conn = store.pool.acquire().await.unwrap();
    assert_eq!(read_version(&mut conn).await.unwrap(), (0, false));
    assert!(
        !dialect::has_table(&mut conn, "one").await.unwrap(),
        "rolled back"
    );
}
