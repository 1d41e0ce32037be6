//! SQLite-only behaviour of `SqliteStore::open`: the file's mode, no
//! migration on open, and a damaged file refused as `Corrupt`.

use exoclaw_core::store::{SchemaStore, StoreError, TenantStore};
use exoclaw_store::{SqliteOptions, SqliteStore, Synchronous};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn the_database_and_its_wal_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exoclaw.db");
    let store = SqliteStore::open(SqliteOptions::new(&path)).await.unwrap();
    assert_eq!(mode(&path), 0o600);
    store.migrate_to(1).await.unwrap();
    store.create_tenant(&"acme".into(), "Acme").await.unwrap();
    for suffix in ["-wal", "-shm"] {
        let side = dir.path().join(format!("exoclaw.db{suffix}"));
        assert!(side.exists(), "{suffix} exists while open");
        assert_eq!(mode(&side), 0o600, "{suffix}");
    }
    store.close().await;
}

#[tokio::test]
async fn an_existing_file_keeps_its_data_and_open_does_not_migrate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exoclaw.db");
    let mut options = SqliteOptions::new(&path);
    options.synchronous = Synchronous::Full;
    options.max_connections = 1;
    let store = SqliteStore::open(options.clone()).await.unwrap();
    assert_eq!(
        store.schema_status().await.unwrap().current,
        0,
        "open does not migrate"
    );
    let latest = store.schema_status().await.unwrap().latest;
    store.migrate_to(latest).await.unwrap();
    store.create_tenant(&"acme".into(), "Acme").await.unwrap();
    store.close().await;
    assert!(store.ping().await.unwrap_err().is_retryable(), "closed");

    let reopened = SqliteStore::open(options).await.unwrap();
    assert_eq!(reopened.path(), path);
    assert!(reopened.get_tenant(&"acme".into()).await.unwrap().is_some());
    reopened.close().await;
}

#[tokio::test]
async fn open_refuses_a_corrupt_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exoclaw.db");
    std::fs::write(&path, [0x5a_u8; 8192]).unwrap();
    let err = SqliteStore::open(SqliteOptions::new(&path))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Corrupt(_)), "{msg}");
    assert!(msg.contains("damaged") && msg.contains("backup"), "{msg}");
    assert!(msg.contains("exoclaw.db"), "names the file: {msg}");
}

#[tokio::test]
async fn open_in_a_missing_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("exoclaw.db");
    let err = SqliteStore::open(SqliteOptions::new(&path))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no-such-dir"), "{err}");
}
