//! The audit log's hash chain: an untouched log verifies (also after
//! concurrent appends), and every kind of tampering through raw SQL (with
//! the append-only triggers dropped first) is caught and named: an edited
//! field, a deleted middle event, a deleted newest event, two events
//! swapped, a rewritten head. Plus the new filters, and events from before
//! the chain existed.

use crate::harness::*;
use exoclaw_core::TenantId;
use exoclaw_core::model::{AuditBreakKind, AuditFilter, NewAuditEvent};
use exoclaw_core::store::Store;
use std::sync::Arc;

contract!(store:
    audit_chain_of_an_untouched_log_verifies,
    audit_filters_by_actor_decision_and_time,
    audit_concurrent_appends_form_one_chain,
);
contract!(db:
    audit_verify_detects_an_edited_event,
    audit_verify_detects_a_deleted_middle_event,
    audit_verify_detects_a_deleted_newest_event,
    audit_verify_detects_swapped_events,
    audit_verify_detects_a_rewritten_head,
);
contract!(fresh: audit_events_from_before_the_chain_are_kept_and_counted);

fn event(tenant: &TenantId, n: usize) -> NewAuditEvent {
    NewAuditEvent {
        tenant_id: tenant.clone(),
        actor: if n.is_multiple_of(2) { "cli" } else { "user:1" }.into(),
        action: format!("test.event{n}"),
        resource: format!("thing:{n}"),
        decision: if n.is_multiple_of(3) { "deny" } else { "allow" }.into(),
        reason: format!("reason {n}"),
        request_id: Some(format!("req-{n}")),
        agent_id: (n % 2 == 1).then(|| "a1".into()),
        session_id: None,
        detail: serde_json::json!({"n": n, "f": 0.5, "nested": {"z": 1, "a": [1.0, "x"]}}),
    }
}

/// Appends events 1..=n to the tenant.
async fn fill(store: &dyn Store, tenant: &TenantId, n: usize) {
    for i in 1..=n {
        store.append_audit(&event(tenant, i)).await.unwrap();
    }
}

/// Drops the append-only triggers, as someone with database access could.
async fn unlock(db: &TestDb) {
    match db.raw {
        Raw::Sqlite(_) => {
            db.raw
                .exec_sql("DROP TRIGGER audit_events_no_update")
                .await
                .unwrap();
            db.raw
                .exec_sql("DROP TRIGGER audit_events_no_delete")
                .await
                .unwrap();
        }
        Raw::Postgres(_) => {
            db.raw
                .exec_sql("ALTER TABLE audit_events DISABLE TRIGGER USER")
                .await
                .unwrap();
        }
    }
}

/// The first break of the default tenant's chain: (kind, seq).
async fn first_break(db: &TestDb) -> (AuditBreakKind, i64) {
    let v = db
        .store
        .verify_audit(Some(&default_tenant()))
        .await
        .unwrap();
    assert!(!v.is_intact(), "tampering went unnoticed: {v:?}");
    let (_, b) = v.first_break().unwrap();
    assert!(!b.reason.is_empty());
    (b.kind, b.seq)
}

async fn audit_chain_of_an_untouched_log_verifies(store: Arc<dyn Store>) {
    let (a, b) = two_tenants(&*store).await;
    let empty = store.verify_audit(None).await.unwrap();
    assert!(empty.is_intact() && empty.chains.is_empty(), "{empty:?}");

    fill(&*store, &a, 5).await;
    fill(&*store, &b, 3).await;
    let first = store.list_audit(&AuditFilter::default()).await.unwrap();
    let newest_a = first.iter().find(|e| e.tenant_id == a).unwrap();
    assert_eq!(newest_a.tenant_seq, 5);
    assert_eq!(newest_a.agent_id.as_ref().unwrap().as_str(), "a1");
    assert_eq!(newest_a.hash.as_ref().unwrap().len(), 64);

    let v = store.verify_audit(None).await.unwrap();
    assert!(v.is_intact(), "{v:?}");
    assert_eq!(v.checked(), 8);
    assert_eq!(v.chains.len(), 2);
    let chain_a = v.chains.iter().find(|c| c.tenant_id == a).unwrap();
    assert_eq!(chain_a.head_seq, 5);
    assert_eq!(chain_a.head_hash, newest_a.hash);
    assert_eq!(chain_a.unchained, 0);

    let only_b = store.verify_audit(Some(&b)).await.unwrap();
    assert_eq!(only_b.chains.len(), 1);
    assert_eq!(only_b.checked(), 3);
    // each event links to the one before it
    let mut listed = store
        .list_audit(&AuditFilter {
            tenant_id: Some(b.clone()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    listed.reverse();
    assert_eq!(listed[0].prev_hash.as_deref(), Some(&*"0".repeat(64)));
    for w in listed.windows(2) {
        assert_eq!(w[1].prev_hash, w[0].hash);
        assert_eq!(w[1].tenant_seq, w[0].tenant_seq + 1);
    }
}

async fn audit_filters_by_actor_decision_and_time(store: Arc<dyn Store>) {
    let t = default_tenant();
    fill(&*store, &t, 6).await;
    let all = store.list_audit(&AuditFilter::default()).await.unwrap();
    let list = |f: AuditFilter| {
        let store = store.clone();
        async move {
            store
                .list_audit(&f)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.tenant_seq)
                .collect::<Vec<_>>()
        }
    };
    let by_actor = list(AuditFilter {
        actor: Some("cli".into()),
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(by_actor, [6, 4, 2]);
    let denied = list(AuditFilter {
        decision: Some("deny".into()),
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(denied, [6, 3]);
    let both = list(AuditFilter {
        actor: Some("cli".into()),
        decision: Some("deny".into()),
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(both, [6]);

    tick().await;
    let mark = all[0].at + 1;
    tick().await;
    fill(&*store, &t, 1).await; // tenant_seq 7, after the mark
    let since = list(AuditFilter {
        since: Some(mark),
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(since, [7]);
    let until = list(AuditFilter {
        until: Some(mark),
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(until, [6, 5, 4, 3, 2, 1]);
    let none = list(AuditFilter {
        actor: Some("nobody".into()),
        ..AuditFilter::default()
    })
    .await;
    assert!(none.is_empty());
}

async fn audit_concurrent_appends_form_one_chain(store: Arc<dyn Store>) {
    let (a, b) = two_tenants(&*store).await;
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..8 {
        let store = store.clone();
        let tenant = if task % 4 == 3 { b.clone() } else { a.clone() };
        tasks.spawn(async move {
            for i in 0..25 {
                store
                    .append_audit(&event(&tenant, task * 100 + i))
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let v = store.verify_audit(None).await.unwrap();
    assert!(v.is_intact(), "{v:?}");
    assert_eq!(v.checked(), 200);
    let heads: Vec<(String, i64)> = v
        .chains
        .iter()
        .map(|c| (c.tenant_id.to_string(), c.head_seq))
        .collect();
    assert_eq!(
        heads,
        [("default".to_owned(), 150), ("other".to_owned(), 50)]
    );
    let seqs: Vec<i64> = store
        .list_audit(&AuditFilter {
            tenant_id: Some(a),
            limit: 1000,
            ..AuditFilter::default()
        })
        .await
        .unwrap()
        .iter()
        .map(|e| e.tenant_seq)
        .collect();
    assert_eq!(seqs, (1..=150).rev().collect::<Vec<_>>());
}

async fn audit_verify_detects_an_edited_event(db: &TestDb) {
    let (a, b) = two_tenants(&*db.store).await;
    fill(&*db.store, &a, 5).await;
    fill(&*db.store, &b, 2).await;
    unlock(db).await;
    let n = db
        .raw
        .exec_sql(
            "UPDATE audit_events SET reason = 'nothing to see' \
             WHERE tenant_id = 'default' AND tenant_seq = 3",
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(first_break(db).await, (AuditBreakKind::Edited, 3));
    // the other tenant's chain is its own
    assert!(db.store.verify_audit(Some(&b)).await.unwrap().is_intact());
    let all = db.store.verify_audit(None).await.unwrap();
    assert_eq!(all.first_break().unwrap().0, &a);

    // the detail (JSON) is covered too
    db.raw
        .exec_sql(
            "UPDATE audit_events SET reason = 'reason 3' \
             WHERE tenant_id = 'default' AND tenant_seq = 3",
        )
        .await
        .unwrap();
    assert!(db.store.verify_audit(Some(&a)).await.unwrap().is_intact());
    let edit_detail = match db.raw {
        Raw::Sqlite(_) => {
            "UPDATE audit_events SET detail = '{\"n\":99}' WHERE tenant_seq = 2 AND tenant_id = 'default'"
        }
        Raw::Postgres(_) => {
            "UPDATE audit_events SET detail = '{\"n\":99}'::jsonb WHERE tenant_seq = 2 AND tenant_id = 'default'"
        }
    };
    db.raw.exec_sql(edit_detail).await.unwrap();
    assert_eq!(first_break(db).await, (AuditBreakKind::Edited, 2));
}

async fn audit_verify_detects_a_deleted_middle_event(db: &TestDb) {
    fill(&*db.store, &default_tenant(), 5).await;
    unlock(db).await;
    db.raw
        .exec_sql("DELETE FROM audit_events WHERE tenant_seq = 3")
        .await
        .unwrap();
    assert_eq!(first_break(db).await, (AuditBreakKind::Missing, 3));
}

async fn audit_verify_detects_a_deleted_newest_event(db: &TestDb) {
    fill(&*db.store, &default_tenant(), 5).await;
    unlock(db).await;
    db.raw
        .exec_sql("DELETE FROM audit_events WHERE tenant_seq = 5")
        .await
        .unwrap();
    assert_eq!(first_break(db).await, (AuditBreakKind::Missing, 5));
    // deleting everything leaves the head behind
    db.raw.exec_sql("DELETE FROM audit_events").await.unwrap();
    assert_eq!(first_break(db).await, (AuditBreakKind::Missing, 1));
}

async fn audit_verify_detects_swapped_events(db: &TestDb) {
    fill(&*db.store, &default_tenant(), 5).await;
    let events = db.store.list_audit(&AuditFilter::default()).await.unwrap();
    let seq_of = |n: i64| events.iter().find(|e| e.tenant_seq == n).unwrap().seq;
    let (s2, s3) = (seq_of(2), seq_of(3));
    unlock(db).await;
    // Row 2's place now holds event 3 and the other way round.
    for sql in [
        format!("UPDATE audit_events SET seq = -1 WHERE seq = {s2}"),
        format!("UPDATE audit_events SET seq = {s2} WHERE seq = {s3}"),
        format!("UPDATE audit_events SET seq = {s3} WHERE seq = -1"),
    ] {
        assert_eq!(db.raw.exec_sql(&sql).await.unwrap(), 1);
    }
    assert_eq!(first_break(db).await, (AuditBreakKind::Reordered, 3));
}

async fn audit_verify_detects_a_rewritten_head(db: &TestDb) {
    fill(&*db.store, &default_tenant(), 3).await;
    db.raw
        .exec_sql(&format!(
            "UPDATE audit_heads SET last_hash = '{}'",
            "ab".repeat(32)
        ))
        .await
        .unwrap();
    assert_eq!(first_break(db).await, (AuditBreakKind::HeadMismatch, 3));
    db.raw.exec_sql("DELETE FROM audit_heads").await.unwrap();
    assert_eq!(first_break(db).await, (AuditBreakKind::HeadMismatch, 3));
}

async fn audit_events_from_before_the_chain_are_kept_and_counted(db: &TestDb) {
    let store = &db.store;
    store.migrate_to(5).await.unwrap();
    for id in ["old1", "old2"] {
        db.raw
            .exec_sql(&format!(
                "INSERT INTO audit_events (id, tenant_id, at, actor, action, resource, decision, \
                 reason, request_id, detail) \
                 VALUES ('{id}', 'default', 1, 'cli', 'secret.put', 'r', 'allow', '', NULL, '{{}}')"
            ))
            .await
            .unwrap();
    }
    store.migrate_to(latest_version(&**store)).await.unwrap();
    let old = store.list_audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(
        old.iter()
            .map(|e| (e.tenant_seq, e.hash.is_none()))
            .collect::<Vec<_>>(),
        [(2, true), (1, true)]
    );
    store
        .append_audit(&event(&default_tenant(), 1))
        .await
        .unwrap();
    let new = store.list_audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(new[0].tenant_seq, 3);
    let v = store.verify_audit(None).await.unwrap();
    assert!(v.is_intact(), "{v:?}");
    assert_eq!((v.chains[0].checked, v.chains[0].unchained), (1, 2));
    // An old event that turns up without a hash inside the chain is caught.
    unlock(db).await;
    db.raw
        .exec_sql("UPDATE audit_events SET hash = NULL WHERE tenant_seq = 3")
        .await
        .unwrap();
    assert_eq!(first_break(db).await, (AuditBreakKind::Edited, 3));

    // Down to schema 5 keeps the events (without the chain columns).
    store.migrate_to(5).await.unwrap();
    let n = db
        .raw
        .count("SELECT COUNT(*) FROM audit_events")
        .await
        .unwrap();
    assert_eq!(n, 3);
    assert!(
        db.raw
            .exec_sql("SELECT hash FROM audit_events")
            .await
            .is_err()
    );
}
