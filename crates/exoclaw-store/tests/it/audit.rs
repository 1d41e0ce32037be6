//! The audit log: appends, newest-first listing with filters and paging,
//! and that the table rejects UPDATE and DELETE.

use crate::harness::*;
use exoclaw_core::TenantId;
use exoclaw_core::model::{AuditFilter, NewAuditEvent};
use exoclaw_core::store::{Store, StoreError};
use std::sync::Arc;

contract!(store: audit_appends_and_lists_newest_first, audit_filters_and_pages, audit_needs_an_existing_tenant);
contract!(db: audit_rows_cannot_be_updated_or_deleted);

fn event(tenant: &TenantId, action: &str) -> NewAuditEvent {
    NewAuditEvent {
        tenant_id: tenant.clone(),
        actor: "user:1".into(),
        action: action.into(),
        resource: "secret:tenant/x".into(),
        decision: "allow".into(),
        reason: "owner".into(),
        request_id: Some("req-1".into()),
        agent_id: Some("a1".into()),
        session_id: Some("s1".into()),
        detail: serde_json::json!({"ip": "127.0.0.1", "n": [1, 2]}),
    }
}

fn actions(events: &[exoclaw_core::model::AuditEvent]) -> Vec<&str> {
    events.iter().map(|e| e.action.as_str()).collect()
}

async fn audit_appends_and_lists_newest_first(store: Arc<dyn Store>) {
    let t = default_tenant();
    let first = store.append_audit(&event(&t, "auth.login")).await.unwrap();
    let mut no_request = event(&t, "secret.put");
    no_request.request_id = None;
    let second = store.append_audit(&no_request).await.unwrap();
    assert_eq!(first.id.len(), 32);
    assert!(second.seq > first.seq);
    assert!(first.at > 0);
    assert_eq!(
        first.detail,
        serde_json::json!({"ip": "127.0.0.1", "n": [1, 2]})
    );
    let listed = store.list_audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(listed, vec![second.clone(), first.clone()]);
    assert_eq!(listed[0].request_id, None);
    assert_eq!(listed[1].request_id.as_deref(), Some("req-1"));
}

async fn audit_filters_and_pages(store: Arc<dyn Store>) {
    let (a, b) = two_tenants(&*store).await;
    for action in [
        "auth.login",
        "auth.failure",
        "authz.deny",
        "auth_xlogin",
        "security.ssrf_blocked",
    ] {
        store.append_audit(&event(&a, action)).await.unwrap();
    }
    store.append_audit(&event(&b, "auth.login")).await.unwrap();

    let all = store.list_audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(all.len(), 6);
    assert!(all.windows(2).all(|w| w[0].seq > w[1].seq), "newest first");

    let only_a = AuditFilter {
        tenant_id: Some(a.clone()),
        ..AuditFilter::default()
    };
    let got = store.list_audit(&only_a).await.unwrap();
    assert_eq!(
        actions(&got),
        [
            "security.ssrf_blocked",
            "auth_xlogin",
            "authz.deny",
            "auth.failure",
            "auth.login"
        ]
    );
    assert!(got.iter().all(|e| e.tenant_id == a));

    // a prefix, not a pattern: "auth." matches neither "authz." nor "auth_x"
    let auth = AuditFilter {
        action_prefix: Some("auth.".into()),
        ..AuditFilter::default()
    };
    assert_eq!(
        actions(&store.list_audit(&auth).await.unwrap()),
        ["auth.login", "auth.failure", "auth.login"]
    );
    let auth_a = AuditFilter {
        tenant_id: Some(a.clone()),
        action_prefix: Some("auth.".into()),
        ..AuditFilter::default()
    };
    assert_eq!(
        actions(&store.list_audit(&auth_a).await.unwrap()),
        ["auth.failure", "auth.login"]
    );
    let upper = AuditFilter {
        action_prefix: Some("AUTH.".into()),
        ..AuditFilter::default()
    };
    assert!(
        store.list_audit(&upper).await.unwrap().is_empty(),
        "case-sensitive"
    );
    let wildcard = AuditFilter {
        action_prefix: Some("auth%".into()),
        ..AuditFilter::default()
    };
    assert!(
        store.list_audit(&wildcard).await.unwrap().is_empty(),
        "no LIKE wildcards"
    );

    let page1 = store
        .list_audit(&AuditFilter {
            limit: 2,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(page1.len(), 2);
    let page2 = store
        .list_audit(&AuditFilter {
            limit: 2,
            before_seq: Some(page1[1].seq),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(page2.len(), 2);
    assert!(page2[0].seq < page1[1].seq);
    assert_eq!(
        [&page1[..], &page2[..]].concat(),
        all[..4].to_vec(),
        "pages continue where the last ended"
    );
    let tail = AuditFilter {
        before_seq: Some(all[5].seq),
        ..AuditFilter::default()
    };
    assert!(store.list_audit(&tail).await.unwrap().is_empty());

    // limit 0 means the default page of 100
    for _ in 0..100 {
        store.append_audit(&event(&b, "bulk.event")).await.unwrap();
    }
    assert_eq!(
        store
            .list_audit(&AuditFilter::default())
            .await
            .unwrap()
            .len(),
        100
    );
}

async fn audit_needs_an_existing_tenant(store: Arc<dyn Store>) {
    let err = store
        .append_audit(&event(&tid("ghost"), "auth.login"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
}

async fn audit_rows_cannot_be_updated_or_deleted(db: &TestDb) {
    let t = default_tenant();
    let kept = db
        .store
        .append_audit(&event(&t, "auth.login"))
        .await
        .unwrap();
    let update = db
        .raw
        .exec(
            "UPDATE audit_events SET decision = 'deny'",
            "UPDATE audit_events SET decision = 'deny'",
        )
        .await
        .unwrap_err();
    assert!(update.to_string().contains("append-only"), "{update}");
    let delete = db
        .raw
        .exec("DELETE FROM audit_events", "DELETE FROM audit_events")
        .await
        .unwrap_err();
    assert!(delete.to_string().contains("append-only"), "{delete}");
    if let Raw::Postgres(_) = db.raw {
        let truncate = db.raw.exec("", "TRUNCATE audit_events").await.unwrap_err();
        assert!(truncate.to_string().contains("append-only"), "{truncate}");
    }
    assert_eq!(
        db.store.list_audit(&AuditFilter::default()).await.unwrap(),
        vec![kept]
    );
}
