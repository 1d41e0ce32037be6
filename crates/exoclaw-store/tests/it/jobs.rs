//! Scheduled job occurrences: exactly one of twenty concurrent claimers wins
//! an occurrence, also when they claim through two stores on one database
//! (as two gateways would); finishing records the outcome; runs list newest
//! first; tenants are separate; an occurrence never claimed is not found,
//! and refused input changes nothing.

use crate::harness::*;
use exoclaw_core::TenantId;
use exoclaw_core::store::{JobRun, Store, StoreError};
use exoclaw_store::{PgStore, SqliteOptions, SqliteStore};
use std::sync::Arc;

contract!(store:
    one_of_twenty_claimers_wins,
    runs_finish_and_list_newest_first,
    job_runs_are_tenant_isolated,
    unclaimed_runs_and_bad_input_are_refused,
);
contract!(db: claimers_on_two_stores_win_once);

const JOB: &str = "backup.daily";
const DUE: i64 = 1_800_000_000_000;
const CLAIMERS: usize = 20;

/// `CLAIMERS` tasks, spread over `stores`, claim one occurrence at once;
/// the owners that won.
async fn race(stores: &[Arc<dyn Store>], tenant: &TenantId, due_at: i64) -> Vec<String> {
    let start = Arc::new(tokio::sync::Barrier::new(CLAIMERS));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..CLAIMERS {
        let store = stores[i % stores.len()].clone();
        let start = start.clone();
        let tenant = tenant.clone();
        tasks.spawn(async move {
            let owner = format!("gw-{i}");
            start.wait().await;
            let won = store
                .claim_job_run(&tenant, JOB, due_at, &owner, due_at + 5)
                .await
                .unwrap();
            won.then_some(owner)
        });
    }
    let mut winners = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        winners.extend(joined.unwrap());
    }
    winners
}

/// Races several occurrences and checks each has one winner, recorded as
/// the owner of its running row.
async fn race_rounds(stores: &[Arc<dyn Store>]) {
    let t = default_tenant();
    for round in 0..5 {
        let due_at = DUE + round * 60_000;
        let winners = race(stores, &t, due_at).await;
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let runs = stores[0].list_job_runs(&t, JOB, 1).await.unwrap();
        assert_eq!(
            runs,
            [JobRun {
                tenant_id: t.clone(),
                job: JOB.to_owned(),
                due_at,
                owner: winners[0].clone(),
                started_at: due_at + 5,
                status: "running".to_owned(),
                detail: None,
                finished_at: None,
            }]
        );
    }
    assert_eq!(stores[0].list_job_runs(&t, JOB, 0).await.unwrap().len(), 5);
}

async fn one_of_twenty_claimers_wins(store: Arc<dyn Store>) {
    race_rounds(&[store]).await;
}

async fn claimers_on_two_stores_win_once(db: &TestDb) {
    if let Some(sqlite) = db.sqlite_store() {
        // A second store on the same file: its own writer connection, like
        // the CLI or a second process.
        let second = SqliteStore::open(SqliteOptions::new(sqlite.path()))
            .await
            .unwrap();
        race_rounds(&[db.store.clone(), Arc::new(second.clone())]).await;
        second.close().await;
    } else {
        let options = db.pg_options().expect("a PostgreSQL test db");
        let second = PgStore::connect(options).await.unwrap();
        race_rounds(&[db.store.clone(), Arc::new(second.clone())]).await;
        second.close().await;
    }
}

async fn runs_finish_and_list_newest_first(store: Arc<dyn Store>) {
    let t = default_tenant();
    for (i, due_at) in [DUE, DUE + 1_000, DUE + 2_000].into_iter().enumerate() {
        let owner = format!("gw-{i}");
        assert!(
            store
                .claim_job_run(&t, JOB, due_at, &owner, due_at + 1)
                .await
                .unwrap()
        );
    }
    store
        .finish_job_run(&t, JOB, DUE, "ok", Some("trace-1"), DUE + 50)
        .await
        .unwrap();
    store
        .finish_job_run(
            &t,
            JOB,
            DUE + 1_000,
            "failed",
            Some("E_TIMEOUT"),
            DUE + 1_070,
        )
        .await
        .unwrap();

    let runs = store.list_job_runs(&t, JOB, 0).await.unwrap();
    let summary: Vec<_> = runs
        .iter()
        .map(|r| {
            (
                r.due_at,
                r.owner.as_str(),
                r.started_at,
                r.status.as_str(),
                r.detail.as_deref(),
                r.finished_at,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (DUE + 2_000, "gw-2", DUE + 2_001, "running", None, None),
            (
                DUE + 1_000,
                "gw-1",
                DUE + 1_001,
                "failed",
                Some("E_TIMEOUT"),
                Some(DUE + 1_070)
            ),
            (DUE, "gw-0", DUE + 1, "ok", Some("trace-1"), Some(DUE + 50)),
        ],
        "newest occurrence first"
    );
    let newest = store.list_job_runs(&t, JOB, 2).await.unwrap();
    assert_eq!(newest, runs[..2]);
    // A finished occurrence is never claimed again.
    assert!(
        !store
            .claim_job_run(&t, JOB, DUE, "gw-late", DUE + 100)
            .await
            .unwrap()
    );
    assert_eq!(store.list_job_runs(&t, JOB, 0).await.unwrap(), runs);
    // Another job's runs are its own.
    assert!(
        store
            .list_job_runs(&t, "cron.other", 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .claim_job_run(&t, "cron.other", DUE, "gw-0", DUE)
            .await
            .unwrap()
    );
    assert_eq!(store.list_job_runs(&t, JOB, 0).await.unwrap().len(), 3);
}

async fn job_runs_are_tenant_isolated(store: Arc<dyn Store>) {
    let (a, b) = two_tenants(&*store).await;
    assert!(
        store
            .claim_job_run(&a, JOB, DUE, "gw-a", DUE)
            .await
            .unwrap()
    );
    // The same job and occurrence in another tenant is another run.
    assert!(
        store
            .claim_job_run(&b, JOB, DUE, "gw-b", DUE)
            .await
            .unwrap()
    );
    assert!(
        !store
            .claim_job_run(&b, JOB, DUE, "gw-c", DUE)
            .await
            .unwrap()
    );
    store
        .finish_job_run(&b, JOB, DUE, "skipped", None, DUE + 1)
        .await
        .unwrap();
    let in_a = store.list_job_runs(&a, JOB, 0).await.unwrap();
    let in_b = store.list_job_runs(&b, JOB, 0).await.unwrap();
    assert_eq!(
        (
            in_a.len(),
            in_a[0].tenant_id.as_str(),
            in_a[0].owner.as_str()
        ),
        (1, "default", "gw-a")
    );
    assert_eq!(in_a[0].status, "running", "b's finish left a's run alone");
    assert_eq!(
        (
            in_b.len(),
            in_b[0].tenant_id.as_str(),
            in_b[0].status.as_str()
        ),
        (1, "other", "skipped")
    );
    // A run only another tenant claimed is not found here.
    assert!(
        store
            .claim_job_run(&a, JOB, DUE + 1, "gw-a", DUE)
            .await
            .unwrap()
    );
    let err = store
        .finish_job_run(&b, JOB, DUE + 1, "ok", None, DUE + 2)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
    // A tenant that does not exist has no runs to claim.
    let err = store
        .claim_job_run(&tid("nope"), JOB, DUE, "gw", DUE)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
    assert!(
        store
            .list_job_runs(&tid("nope"), JOB, 0)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn unclaimed_runs_and_bad_input_are_refused(store: Arc<dyn Store>) {
    let t = default_tenant();
    let err = store
        .finish_job_run(&t, JOB, DUE, "ok", None, DUE)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
    for (job, owner) in [("", "gw"), (" ", "gw"), (JOB, "")] {
        let err = store
            .claim_job_run(&t, job, DUE, owner, DUE)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Invalid(_)),
            "{job:?} {owner:?}: {err}"
        );
    }
    assert!(store.list_job_runs(&t, JOB, 0).await.unwrap().is_empty());
    assert!(store.claim_job_run(&t, JOB, DUE, "gw", DUE).await.unwrap());
    let before = store.list_job_runs(&t, JOB, 0).await.unwrap();
    for status in ["running", "done", ""] {
        let err = store
            .finish_job_run(&t, JOB, DUE, status, Some("x"), DUE + 1)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{status:?}: {err}");
    }
    assert_eq!(store.list_job_runs(&t, JOB, 0).await.unwrap(), before);
}
