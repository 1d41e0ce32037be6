//! Cron jobs: create, read, list (by agent), update (enabling clears the
//! gateway's reason), delete; the per-agent bound holds, also for creators
//! racing on two stores over one database; advancing never moves a job back;
//! the scheduler's listing is every tenant's enabled jobs soonest first;
//! tenants are separate, and refused input changes nothing.

use crate::harness::*;
use exoclaw_core::store::cron::{CronJobUpdate, Delivery, MissedPolicy, NewCronJob};
use exoclaw_core::store::{Store, StoreError};
use exoclaw_core::{AgentId, TenantId, UserId};
use exoclaw_store::{PgStore, SqliteOptions, SqliteStore};
use std::sync::Arc;

contract!(store:
    jobs_are_created_read_listed_updated_and_deleted,
    advancing_never_moves_a_job_back,
    due_jobs_are_enabled_ones_of_every_tenant_soonest_first,
    cron_jobs_are_tenant_isolated,
    bad_cron_input_is_refused,
    a_restart_marks_its_own_running_runs_interrupted,
);
contract!(db: the_bound_holds_for_creators_on_two_stores);

const NOW: i64 = 1_800_000_000_000;

fn job(agent: &str, name: &str, next: Option<i64>) -> NewCronJob {
    NewCronJob {
        agent_id: AgentId::new(agent),
        user_id: UserId::new("admin"),
        name: name.to_owned(),
        schedule: "every 1h".to_owned(),
        message: "summarise the news".to_owned(),
        delivery: Delivery::Session { session: None },
        missed: MissedPolicy::Skip,
        jitter_ms: 0,
        next_run_at: next,
        created_by: "api".to_owned(),
    }
}

async fn jobs_are_created_read_listed_updated_and_deleted(store: Arc<dyn Store>) {
    let t = default_tenant();
    let a = store
        .create_cron_job(&t, &job("default", "news", Some(NOW + 10)), 10, NOW)
        .await
        .unwrap();
    assert!(a.enabled && a.disabled_reason.is_none() && a.last_run_at.is_none());
    assert_eq!((a.next_run_at, a.created_at), (Some(NOW + 10), NOW));
    let mut hook = job("helper", "hook", None);
    hook.delivery = Delivery::Webhook {
        url: "https://example.com/hook".to_owned(),
    };
    hook.missed = MissedPolicy::RunOnce;
    let b = store.create_cron_job(&t, &hook, 10, NOW + 1).await.unwrap();
    let mut peer = job("helper", "peer", None);
    peer.delivery = Delivery::Channel {
        channel: "telegram".to_owned(),
        peer: "12345:67".to_owned(),
    };
    let c = store.create_cron_job(&t, &peer, 10, NOW + 2).await.unwrap();
    assert_eq!(
        store.get_cron_job(&t, &b.id).await.unwrap().as_ref(),
        Some(&b)
    );
    assert_eq!(b.delivery, hook.delivery);
    assert_eq!(b.missed, MissedPolicy::RunOnce);
    assert_eq!(c.delivery, peer.delivery, "a peer with a colon reads back");
    let all = store.list_cron_jobs(&t, None).await.unwrap();
    assert_eq!(all, [a.clone(), b.clone(), c.clone()]);
    let helpers = store
        .list_cron_jobs(&t, Some(&AgentId::new("helper")))
        .await
        .unwrap();
    assert_eq!(helpers, [b.clone(), c.clone()]);

    store
        .disable_cron_job(&t, &a.id, "agent_deleted", NOW + 5)
        .await
        .unwrap();
    let off = store.get_cron_job(&t, &a.id).await.unwrap().unwrap();
    assert_eq!(
        (off.enabled, off.disabled_reason.as_deref()),
        (false, Some("agent_deleted"))
    );
    let on = store
        .update_cron_job(
            &t,
            &a.id,
            &CronJobUpdate {
                enabled: Some(true),
                next_run_at: Some(Some(NOW + 3_600_000)),
                message: Some("new text".to_owned()),
                delivery: Some(Delivery::Session {
                    session: Some("s1".to_owned()),
                }),
                ..CronJobUpdate::default()
            },
            NOW + 6,
        )
        .await
        .unwrap();
    assert_eq!(
        (
            on.enabled,
            on.disabled_reason.as_deref(),
            on.next_run_at,
            on.message.as_str(),
            on.name.as_str(),
            on.updated_at
        ),
        (
            true,
            None,
            Some(NOW + 3_600_000),
            "new text",
            "news",
            NOW + 6
        )
    );
    assert_eq!(
        on.delivery,
        Delivery::Session {
            session: Some("s1".to_owned())
        }
    );
    // An update that names neither enabled nor next leaves them.
    let renamed = store
        .update_cron_job(
            &t,
            &a.id,
            &CronJobUpdate {
                name: Some("renamed".to_owned()),
                ..CronJobUpdate::default()
            },
            NOW + 7,
        )
        .await
        .unwrap();
    assert_eq!(
        (
            renamed.enabled,
            renamed.next_run_at,
            renamed.delivery.clone()
        ),
        (true, on.next_run_at, on.delivery.clone())
    );
    let off = store
        .update_cron_job(
            &t,
            &a.id,
            &CronJobUpdate {
                enabled: Some(false),
                next_run_at: Some(None),
                ..CronJobUpdate::default()
            },
            NOW + 8,
        )
        .await
        .unwrap();
    assert_eq!((off.enabled, off.next_run_at), (false, None));

    store.delete_cron_job(&t, &a.id).await.unwrap();
    assert!(store.get_cron_job(&t, &a.id).await.unwrap().is_none());
    let err = store.delete_cron_job(&t, &a.id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
    let err = store
        .update_cron_job(&t, &a.id, &CronJobUpdate::default(), NOW)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
    assert_eq!(store.list_cron_jobs(&t, None).await.unwrap(), [b, c]);
}

async fn advancing_never_moves_a_job_back(store: Arc<dyn Store>) {
    let t = default_tenant();
    let j = store
        .create_cron_job(&t, &job("default", "hourly", Some(NOW)), 10, NOW)
        .await
        .unwrap();
    store
        .advance_cron_job(&t, &j.id, NOW + 60_000, Some(NOW + 120_000), NOW)
        .await
        .unwrap();
    // A slower gateway finishing the older occurrence changes nothing.
    store
        .advance_cron_job(&t, &j.id, NOW, Some(NOW + 60_000), NOW)
        .await
        .unwrap();
    let got = store.get_cron_job(&t, &j.id).await.unwrap().unwrap();
    assert_eq!(
        (got.last_run_at, got.next_run_at),
        (Some(NOW + 60_000), Some(NOW + 120_000))
    );
    // The last occurrence of a one-shot leaves no next one.
    store
        .advance_cron_job(&t, &j.id, NOW + 120_000, None, NOW)
        .await
        .unwrap();
    let got = store.get_cron_job(&t, &j.id).await.unwrap().unwrap();
    assert_eq!(
        (got.last_run_at, got.next_run_at),
        (Some(NOW + 120_000), None)
    );
    let err = store
        .advance_cron_job(&t, "nope", NOW, None, NOW)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
}

async fn due_jobs_are_enabled_ones_of_every_tenant_soonest_first(store: Arc<dyn Store>) {
    let (a, b) = two_tenants(&*store).await;
    let late = store
        .create_cron_job(&a, &job("default", "late", Some(NOW + 300)), 10, NOW)
        .await
        .unwrap();
    let soon = store
        .create_cron_job(&b, &job("default", "soon", Some(NOW + 100)), 10, NOW)
        .await
        .unwrap();
    store
        .create_cron_job(&a, &job("default", "never", None), 10, NOW)
        .await
        .unwrap();
    let off = store
        .create_cron_job(&a, &job("default", "off", Some(NOW + 1)), 10, NOW)
        .await
        .unwrap();
    store
        .disable_cron_job(&a, &off.id, "agent_deleted", NOW)
        .await
        .unwrap();
    let due = store.due_cron_jobs(0).await.unwrap();
    let ids: Vec<_> = due.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, [soon.id.as_str(), late.id.as_str()]);
    assert_eq!(store.due_cron_jobs(1).await.unwrap().len(), 1);
}

async fn cron_jobs_are_tenant_isolated(store: Arc<dyn Store>) {
    let (a, b) = two_tenants(&*store).await;
    let j = store
        .create_cron_job(&a, &job("default", "mine", Some(NOW)), 10, NOW)
        .await
        .unwrap();
    assert!(store.get_cron_job(&b, &j.id).await.unwrap().is_none());
    assert!(store.list_cron_jobs(&b, None).await.unwrap().is_empty());
    for err in [
        store.delete_cron_job(&b, &j.id).await.unwrap_err(),
        store
            .update_cron_job(
                &b,
                &j.id,
                &CronJobUpdate {
                    enabled: Some(false),
                    ..CronJobUpdate::default()
                },
                NOW,
            )
            .await
            .unwrap_err(),
        store
            .disable_cron_job(&b, &j.id, "agent_deleted", NOW)
            .await
            .unwrap_err(),
        store
            .advance_cron_job(&b, &j.id, NOW, None, NOW)
            .await
            .unwrap_err(),
    ] {
        assert!(matches!(err, StoreError::NotFound), "{err}");
    }
    assert_eq!(store.get_cron_job(&a, &j.id).await.unwrap(), Some(j));
    // The bound counts per tenant: b's agent `default` has none.
    store
        .create_cron_job(&b, &job("default", "theirs", None), 1, NOW)
        .await
        .unwrap();
    // A tenant that does not exist cannot hold jobs.
    assert!(
        store
            .create_cron_job(&tid("nope"), &job("default", "x", None), 10, NOW)
            .await
            .is_err()
    );
}

async fn bad_cron_input_is_refused(store: Arc<dyn Store>) {
    let t = default_tenant();
    let mut bad = Vec::new();
    let mut j = job("default", " ", None);
    bad.push(j.clone());
    j = job("default", "x", None);
    j.message = String::new();
    bad.push(j.clone());
    j = job("default", "x", None);
    j.message = "m".repeat(exoclaw_core::store::cron::MAX_MESSAGE_BYTES + 1);
    bad.push(j.clone());
    j = job("Not A Slug", "x", None);
    bad.push(j.clone());
    j = job("default", "x", None);
    j.jitter_ms = -1;
    bad.push(j.clone());
    j = job("default", "x", None);
    j.delivery = Delivery::Webhook {
        url: "u".repeat(exoclaw_core::store::cron::MAX_TARGET_BYTES + 1),
    };
    bad.push(j);
    for j in bad {
        let err = store.create_cron_job(&t, &j, 10, NOW).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    }
    assert!(store.list_cron_jobs(&t, None).await.unwrap().is_empty());
    // The bound: the second job of an agent allowed one is a conflict.
    store
        .create_cron_job(&t, &job("default", "one", None), 1, NOW)
        .await
        .unwrap();
    let err = store
        .create_cron_job(&t, &job("default", "two", None), 1, NOW)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("cron.max_jobs_per_agent")),
        "{err}"
    );
    assert_eq!(store.list_cron_jobs(&t, None).await.unwrap().len(), 1);
}

const CREATORS: usize = 12;
const BOUND: u32 = 5;

async fn the_bound_holds_for_creators_on_two_stores(db: &TestDb) {
    let second: Arc<dyn Store> = if let Some(sqlite) = db.sqlite_store() {
        Arc::new(
            SqliteStore::open(SqliteOptions::new(sqlite.path()))
                .await
                .unwrap(),
        )
    } else {
        Arc::new(PgStore::connect(db.pg_options().unwrap()).await.unwrap())
    };
    let stores = [db.store.clone(), second];
    let t: TenantId = default_tenant();
    let start = Arc::new(tokio::sync::Barrier::new(CREATORS));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..CREATORS {
        let store = stores[i % 2].clone();
        let start = start.clone();
        let t = t.clone();
        tasks.spawn(async move {
            start.wait().await;
            store
                .create_cron_job(&t, &job("default", &format!("j{i}"), None), BOUND, NOW)
                .await
                .is_ok()
        });
    }
    let mut made = 0;
    while let Some(ok) = tasks.join_next().await {
        made += usize::from(ok.unwrap());
    }
    assert_eq!(made, BOUND as usize);
    assert_eq!(
        stores[0].list_cron_jobs(&t, None).await.unwrap().len(),
        BOUND as usize
    );
}

async fn a_restart_marks_its_own_running_runs_interrupted(store: Arc<dyn Store>) {
    let (a, b) = two_tenants(&*store).await;
    for (t, job, owner) in [
        (&a, "cron:1", "gw-1"),
        (&b, "cron:2", "gw-1"),
        (&a, "cron:3", "gw-2"),
        (&a, "cron:4", "gw-1"),
    ] {
        assert!(store.claim_job_run(t, job, NOW, owner, NOW).await.unwrap());
    }
    store
        .finish_job_run(&a, "cron:4", NOW, "ok", Some("trace=t"), NOW + 1)
        .await
        .unwrap();
    assert_eq!(store.interrupt_job_runs("gw-1", NOW + 5).await.unwrap(), 2);
    let status = |t: &TenantId, job: &'static str| {
        let store = store.clone();
        let t = t.clone();
        async move {
            let r = store.list_job_runs(&t, job, 1).await.unwrap().remove(0);
            (r.status, r.detail, r.finished_at)
        }
    };
    let interrupted = (
        "failed".to_owned(),
        Some("error=interrupted".to_owned()),
        Some(NOW + 5),
    );
    assert_eq!(status(&a, "cron:1").await, interrupted);
    assert_eq!(status(&b, "cron:2").await, interrupted);
    assert_eq!(
        status(&a, "cron:3").await,
        ("running".to_owned(), None, None),
        "another instance's run is left alone"
    );
    assert_eq!(status(&a, "cron:4").await.0, "ok", "a finished run stays");
    assert_eq!(store.interrupt_job_runs("gw-1", NOW + 6).await.unwrap(), 0);
}
