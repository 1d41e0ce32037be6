//! SQLite-only behaviour of `SqliteStore::open`: the file's mode, no
//! migration on open, and a damaged file refused as `Corrupt`; and
//! `release_memory`, which closes idle reading connections but one; and a
//! restart's recovery, which opens no write connection when nothing was
//! left running.

use exoclaw_core::store::{
    DelegationStore, JobStore, RecoveryStore, SchemaStore, StoreError, TenantStore, TraceStore,
};
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

/// Concurrent reads open several reading connections; `release_memory`
/// closes the idle ones but one, and the store still reads and writes (the
/// next burst opens what it needs again).
#[tokio::test]
async fn release_memory_keeps_one_idle_reading_connection_and_the_store_works() {
    let db = crate::harness::TestDb::sqlite(true).await;
    let store = db.sqlite_store().unwrap();
    store.create_tenant(&"acme".into(), "Acme").await.unwrap();
    burst(store).await;
    // A connection handed back is checked before it is idle again.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(
        store.reading_connections() > 1,
        "the burst opened {} reading connections",
        store.reading_connections()
    );
    store.release_memory().await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(store.reading_connections(), 1);
    store.create_tenant(&"beta".into(), "Beta").await.unwrap();
    assert!(store.get_tenant(&"beta".into()).await.unwrap().is_some());
    burst(store).await;
    db.finish().await;
}

/// 16 concurrent reads.
async fn burst(store: &SqliteStore) {
    let acme = exoclaw_core::TenantId::new("acme");
    let reads = (0..16).map(|_| store.get_tenant(&acme));
    for found in futures_util::future::join_all(reads).await {
        assert!(found.unwrap().is_some());
    }
}

#[tokio::test]
async fn a_restart_with_nothing_running_opens_no_write_connection() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exoclaw.db");
    let store = SqliteStore::open(SqliteOptions::new(&path)).await.unwrap();
    let latest = store.schema_status().await.unwrap().latest;
    store.migrate_to(latest).await.unwrap();
    store.close().await;

    let restarted = SqliteStore::open(SqliteOptions::new(&path)).await.unwrap();
    assert!(!restarted.writing_connection_open());
    assert!(
        restarted
            .interrupt_running_traces("gw", 1)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        restarted
            .interrupt_running("gw", 1)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(restarted.interrupt_job_runs("gw", 1).await.unwrap(), 0);
    assert!(
        !restarted.writing_connection_open(),
        "nothing to interrupt, nothing written"
    );

    // A run left going is still interrupted (which writes).
    let tenant = exoclaw_core::TenantId::from("default");
    let trace = restarted
        .create_trace(&exoclaw_core::trace::NewTrace {
            tenant_id: tenant,
            agent_id: None,
            user_id: None,
            session_id: None,
            name: "chat".to_owned(),
            owner: Some("gw".to_owned()),
        })
        .await
        .unwrap();
    restarted.close().await;
    let again = SqliteStore::open(SqliteOptions::new(&path)).await.unwrap();
    let interrupted = again.interrupt_running_traces("gw", 2).await.unwrap();
    assert_eq!(interrupted.len(), 1);
    assert_eq!(interrupted[0].id, trace.id);
    assert!(again.writing_connection_open());
    again.close().await;
}
