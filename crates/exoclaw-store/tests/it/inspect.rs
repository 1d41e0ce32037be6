//! Read-only inspection: `inspect_sqlite` must never create or change a
//! file (checked by listing the directory and hashing every file before and
//! after), and reports missing, empty, healthy, newer, corrupt and truncated
//! databases. `inspect_postgres` reads a test database and reports a missing
//! one as `exists: false`.

use crate::harness::{TestDb, latest_version, with_database};
use exoclaw_core::Secret;
use exoclaw_core::model::VaultCheck;
use exoclaw_core::store::{SchemaStore, SecretStore, StoreError, TenantStore};
use exoclaw_store::{
    Inspection, PgOptions, SqliteOptions, SqliteStore, inspect_postgres, inspect_sqlite,
};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// Every file in `dir` with its SHA-256.
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let bytes = std::fs::read(entry.path()).unwrap();
            (
                entry.file_name().to_string_lossy().into_owned(),
                hex::encode(Sha256::digest(&bytes)),
            )
        })
        .collect()
}

/// Inspects `path` and asserts that nothing in its directory changed.
async fn inspect_unchanged(path: &Path) -> Result<Inspection, StoreError> {
    let dir = path.parent().unwrap();
    let before = snapshot(dir);
    let result = inspect_sqlite(path).await;
    assert_eq!(snapshot(dir), before, "inspection changed the directory");
    result
}

fn check() -> VaultCheck {
    VaultCheck {
        key_id: "0123456789abcdef".into(),
        nonce: vec![1; 12],
        ciphertext: vec![2; 40],
    }
}

/// A migrated database with a vault check, closed.
async fn healthy(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("exoclaw.db");
    let store = SqliteStore::open(SqliteOptions::new(&path)).await.unwrap();
    store.migrate_to(latest_version(&store)).await.unwrap();
    store.set_vault_check(&check()).await.unwrap();
    store.close().await;
    path
}

#[tokio::test]
async fn a_missing_file_is_reported_and_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exoclaw.db");
    let got = inspect_unchanged(&path).await.unwrap();
    assert!(!got.exists);
    assert_eq!((got.status.current, got.status.dirty), (0, false));
    assert!(got.status.latest >= 1);
    assert_eq!(got.vault_key_id, None);
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

#[tokio::test]
async fn an_empty_file_is_a_fresh_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exoclaw.db");
    std::fs::write(&path, b"").unwrap();
    let got = inspect_unchanged(&path).await.unwrap();
    assert!(got.exists);
    assert!(got.status.is_fresh());
}

#[tokio::test]
async fn a_healthy_file_is_read_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let path = healthy(dir.path()).await;
    assert!(
        !dir.path().join("exoclaw.db-wal").exists(),
        "closed cleanly"
    );
    let got = inspect_unchanged(&path).await.unwrap();
    assert!(got.exists);
    assert!(got.status.is_current(), "{:?}", got.status);
    assert_eq!(got.vault_key_id.as_deref(), Some("0123456789abcdef"));
    // twice, for good measure
    assert_eq!(inspect_unchanged(&path).await.unwrap(), got);
}

#[tokio::test]
async fn an_unmigrated_database_reports_version_0() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exoclaw.db");
    SqliteStore::open(SqliteOptions::new(&path))
        .await
        .unwrap()
        .close()
        .await;
    let got = inspect_unchanged(&path).await.unwrap();
    assert!(got.exists);
    assert!(got.status.is_fresh());
    assert_eq!(got.vault_key_id, None);
}

#[tokio::test]
async fn a_database_in_use_is_read_through_its_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exoclaw.db");
    let store = SqliteStore::open(SqliteOptions::new(&path)).await.unwrap();
    store.migrate_to(latest_version(&store)).await.unwrap();
    store.set_vault_check(&check()).await.unwrap();
    let wal = dir.path().join("exoclaw.db-wal");
    assert!(wal.exists());
    // the -shm holds reader marks that readers update; the database and the
    // WAL must stay byte for byte, and no file may appear or vanish
    let before = snapshot(dir.path());
    let got = inspect_sqlite(&path).await.unwrap();
    let after = snapshot(dir.path());
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    assert_eq!(before["exoclaw.db"], after["exoclaw.db"]);
    assert_eq!(before["exoclaw.db-wal"], after["exoclaw.db-wal"]);
    assert!(got.status.is_current());
    assert_eq!(
        got.vault_key_id.as_deref(),
        Some("0123456789abcdef"),
        "reads the WAL"
    );
    store
        .create_tenant(&"after".into(), "still writable")
        .await
        .unwrap();
    store.close().await;
}

#[tokio::test]
async fn a_newer_schema_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = healthy(dir.path()).await;
    let raw =
        sqlx::SqlitePool::connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(&path))
            .await
            .unwrap();
    sqlx::query("UPDATE schema_migrations SET version = 99")
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;
    let got = inspect_unchanged(&path).await.unwrap();
    assert_eq!(got.status.current, 99);
    assert!(got.status.is_newer_than_binary());
    assert!(exoclaw_store::require_current_schema(&got.status).is_err());
}

#[tokio::test]
async fn random_bytes_are_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exoclaw.db");
    let noise: Vec<u8> = (0..16_384u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&path, noise).unwrap();
    let err = inspect_unchanged(&path).await.unwrap_err();
    assert_damaged(&err);
}

#[tokio::test]
async fn a_short_file_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exoclaw.db");
    std::fs::write(&path, b"SQLite format 3\0 but cut short").unwrap();
    assert_damaged(&inspect_unchanged(&path).await.unwrap_err());
}

#[tokio::test]
async fn a_truncated_database_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = healthy(dir.path()).await;
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(len > 8 * 4096, "several pages: {len}");
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len / 2).unwrap();
    drop(file);
    let err = inspect_unchanged(&path).await.unwrap_err();
    assert_damaged(&err);
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[tokio::test]
async fn a_damaged_page_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = healthy(dir.path()).await;
    // overwrite page 2 onwards (the schema's b-tree pages) but keep the header
    let mut bytes = std::fs::read(&path).unwrap();
    for b in &mut bytes[4096..] {
        *b = 0xff;
    }
    std::fs::write(&path, &bytes).unwrap();
    assert_damaged(&inspect_unchanged(&path).await.unwrap_err());
}

fn assert_damaged(err: &StoreError) {
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Corrupt(_)), "{msg}");
    assert!(msg.contains("damaged"), "{msg}");
    assert!(msg.contains("restore it from a backup"), "{msg}");
    assert!(msg.contains("exoclaw.db"), "names the file: {msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_inspection_reads_and_reports_missing_databases() {
    let Some(db) = TestDb::postgres("postgres_inspection", true).await else {
        return;
    };
    let options = db.pg_options().unwrap();
    db.store.set_vault_check(&check()).await.unwrap();
    let got = inspect_postgres(&options).await.unwrap();
    assert!(got.exists);
    assert!(got.status.is_current(), "{:?}", got.status);
    assert_eq!(got.vault_key_id.as_deref(), Some("0123456789abcdef"));

    let missing = PgOptions::new(Secret::new(with_database(
        options.dsn.expose(),
        "exoclaw_test_does_not_exist",
    )));
    let got = inspect_postgres(&missing).await.unwrap();
    assert!(!got.exists);
    assert!(got.status.is_fresh());

    db.store.migrate_to(0).await.unwrap();
    let got = inspect_postgres(&options).await.unwrap();
    assert_eq!(
        (got.exists, got.status.current, got.vault_key_id),
        (true, 0, None)
    );
    assert!(db.store.list_tenants().await.is_err());
    db.finish().await;
}
