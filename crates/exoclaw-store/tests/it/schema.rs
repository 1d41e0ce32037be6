//! Schema administration on a fresh database: status, migrating up and
//! down, going to a version, the dirty flag and `force_version`, targets out
//! of range, a schema newer than the binary, and racing migrators.

use crate::harness::*;
use exoclaw_core::store::{Backend, StoreError};

contract!(fresh:
    schema_status_on_an_empty_database,
    migrate_up_down_and_up_again,
    migrate_goes_to_each_version,
    targets_out_of_range_are_refused,
    a_dirty_schema_refuses_to_migrate_until_forced,
    a_newer_schema_is_reported_and_refused,
    concurrent_migrations_apply_once,
    ping_backend_and_migration_list,
);

async fn schema_status_on_an_empty_database(db: &TestDb) {
    let status = db.store.schema_status().await.unwrap();
    assert_eq!(status.current, 0);
    assert_eq!(status.latest, latest_version(&*db.store));
    assert!(status.latest >= 1);
    assert!(!status.dirty);
    assert!(status.is_fresh());
    assert!(!status.is_current());
    // reading the status created nothing
    assert_eq!(db.store.schema_status().await.unwrap(), status);
    assert!(
        db.raw
            .exec(
                "SELECT 1 FROM schema_migrations",
                "SELECT 1 FROM schema_migrations"
            )
            .await
            .is_err()
    );
}

async fn migrate_up_down_and_up_again(db: &TestDb) {
    let store = &db.store;
    let latest = latest_version(&**store);
    let up: Vec<i64> = (1..=latest).collect();
    assert_eq!(store.migrate_to(latest).await.unwrap(), up);
    assert!(store.schema_status().await.unwrap().is_current());
    assert!(store.get_tenant(&default_tenant()).await.unwrap().is_some());
    assert_eq!(
        store.migrate_to(latest).await.unwrap(),
        Vec::<i64>::new(),
        "already there"
    );

    let down: Vec<i64> = (0..latest).rev().collect();
    assert_eq!(store.migrate_to(0).await.unwrap(), down);
    let status = store.schema_status().await.unwrap();
    assert_eq!((status.current, status.dirty), (0, false));
    assert!(
        store.get_tenant(&default_tenant()).await.is_err(),
        "tables are gone"
    );

    assert_eq!(store.migrate_to(latest).await.unwrap(), up);
    assert!(store.get_tenant(&default_tenant()).await.unwrap().is_some());
    store
        .create_agent(&default_tenant(), &new_agent("a1"))
        .await
        .unwrap();
}

async fn migrate_goes_to_each_version(db: &TestDb) {
    let latest = latest_version(&*db.store);
    for v in 1..=latest {
        db.store.migrate_to(v).await.unwrap();
        assert_eq!(db.store.schema_status().await.unwrap().current, v);
    }
    for v in (0..latest).rev() {
        assert_eq!(db.store.migrate_to(v).await.unwrap(), vec![v]);
        assert_eq!(db.store.schema_status().await.unwrap().current, v);
    }
}

async fn targets_out_of_range_are_refused(db: &TestDb) {
    let latest = latest_version(&*db.store);
    for target in [latest + 1, -1] {
        let err = db.store.migrate_to(target).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        assert!(err.to_string().contains(&format!("0 to {latest}")), "{err}");
    }
    let err = db.store.force_version(latest + 1).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    assert_eq!(db.store.schema_status().await.unwrap().current, 0);
}

async fn a_dirty_schema_refuses_to_migrate_until_forced(db: &TestDb) {
    let latest = latest_version(&*db.store);
    db.store.migrate_to(latest).await.unwrap();
    db.raw
        .exec(
            "UPDATE schema_migrations SET dirty = TRUE",
            "UPDATE schema_migrations SET dirty = TRUE",
        )
        .await
        .unwrap();
    let status = db.store.schema_status().await.unwrap();
    assert!(status.dirty);
    assert!(!status.is_current());
    for target in [0, latest] {
        let err = db.store.migrate_to(target).await.unwrap_err();
        assert!(matches!(err, StoreError::Schema(_)), "{err}");
        assert!(err.to_string().contains("exoclaw migrate force"), "{err}");
    }
    assert_eq!(
        db.store.schema_status().await.unwrap().current,
        latest,
        "nothing ran"
    );

    db.store.force_version(latest).await.unwrap();
    let status = db.store.schema_status().await.unwrap();
    assert_eq!((status.current, status.dirty), (latest, false));
    assert!(db.store.migrate_to(latest).await.unwrap().is_empty());
    assert_eq!(db.store.migrate_to(0).await.unwrap().last(), Some(&0));
}

async fn a_newer_schema_is_reported_and_refused(db: &TestDb) {
    let latest = latest_version(&*db.store);
    db.store.migrate_to(latest).await.unwrap();
    db.raw
        .exec(
            "UPDATE schema_migrations SET version = version + 5",
            "UPDATE schema_migrations SET version = version + 5",
        )
        .await
        .unwrap();
    let status = db.store.schema_status().await.unwrap();
    assert_eq!(status.current, latest + 5);
    assert!(status.is_newer_than_binary());
    let err = db.store.migrate_to(latest).await.unwrap_err();
    assert!(matches!(err, StoreError::Schema(_)), "{err}");
    assert!(err.to_string().contains("newer than this exoclaw"), "{err}");
    let err = exoclaw_store::require_current_schema(&status).unwrap_err();
    assert!(err.to_string().contains("newer"), "{err}");
    // force is the way back once the operator knows better
    db.store.force_version(latest).await.unwrap();
    assert!(db.store.schema_status().await.unwrap().is_current());
}

async fn concurrent_migrations_apply_once(db: &TestDb) {
    let latest = latest_version(&*db.store);
    let (a, b) = tokio::join!(db.store.migrate_to(latest), db.store.migrate_to(latest));
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut applied = [a, b].concat();
    applied.sort_unstable();
    assert_eq!(
        applied,
        (1..=latest).collect::<Vec<_>>(),
        "each step ran exactly once"
    );
    assert!(db.store.schema_status().await.unwrap().is_current());
    assert_eq!(db.store.list_tenants().await.unwrap().len(), 1);
}

async fn ping_backend_and_migration_list(db: &TestDb) {
    db.store.ping().await.unwrap();
    let expected = match db.raw {
        Raw::Sqlite(_) => Backend::Sqlite,
        Raw::Postgres(_) => Backend::Postgres,
    };
    assert_eq!(db.store.backend(), expected);
    let migrations = db.store.migrations();
    assert_eq!(migrations[0].version, 1);
    assert_eq!(migrations[0].name, "init");
    assert!(migrations[0].up_sql.contains("CREATE TABLE tenants"));
    for (i, m) in migrations.iter().enumerate() {
        assert_eq!(m.version, i as i64 + 1);
    }
}
