//! Dashboard sign-ins: a session is found by its digest with the credential
//! it stands for, only in an existing tenant, touched forward only, signed
//! out once, and purged by idle and absolute expiry.

use crate::harness::*;
use exoclaw_core::store::{DashboardSession, Store, StoreError};
use std::sync::Arc;

contract!(store:
    a_session_is_found_by_digest_and_signed_out_once,
    a_session_needs_its_tenant,
    expired_sessions_are_purged,
);

const NOW: i64 = 1_800_000_000_000;

fn session(
    tenant: &exoclaw_core::TenantId,
    user: &exoclaw_core::UserId,
    id: &str,
) -> DashboardSession {
    DashboardSession {
        id_hash: id.to_owned(),
        tenant_id: tenant.clone(),
        user_id: user.clone(),
        credential: "key:00ff".to_owned(),
        created_at: NOW,
        last_seen_at: NOW,
        expires_at: NOW + 3_600_000,
    }
}

async fn a_session_is_found_by_digest_and_signed_out_once(store: Arc<dyn Store>) {
    let (t, _) = two_tenants(store.as_ref()).await;
    let alice = store.create_user(&t, &new_user("alice")).await.unwrap();
    let s = session(&t, &alice.id, "h1");
    store.create_dashboard_session(&s).await.unwrap();
    assert_eq!(
        store.dashboard_session("h1").await.unwrap(),
        Some(s.clone())
    );
    assert_eq!(store.dashboard_session("h2").await.unwrap(), None);
    assert!(matches!(
        store.create_dashboard_session(&s).await,
        Err(StoreError::Conflict(_))
    ));
    // Activity moves forward only.
    store.touch_dashboard_session("h1", NOW + 10).await.unwrap();
    store.touch_dashboard_session("h1", NOW + 5).await.unwrap();
    let seen = store.dashboard_session("h1").await.unwrap().unwrap();
    assert_eq!(seen.last_seen_at, NOW + 10);
    assert!(store.delete_dashboard_session("h1").await.unwrap());
    assert!(!store.delete_dashboard_session("h1").await.unwrap());
    assert_eq!(store.dashboard_session("h1").await.unwrap(), None);
}

async fn a_session_needs_its_tenant(store: Arc<dyn Store>) {
    let (t, other) = two_tenants(store.as_ref()).await;
    let owner = exoclaw_core::UserId::new("owner");
    let wrong = session(&exoclaw_core::TenantId::new("nowhere"), &owner, "h1");
    assert!(matches!(
        store.create_dashboard_session(&wrong).await,
        Err(StoreError::NotFound)
    ));
    // The gateway token's owner has no user row.
    store
        .create_dashboard_session(&session(&t, &owner, "h2"))
        .await
        .unwrap();
    store
        .create_dashboard_session(&session(&other, &owner, "h3"))
        .await
        .unwrap();
    assert_eq!(
        store
            .dashboard_session("h3")
            .await
            .unwrap()
            .unwrap()
            .tenant_id,
        other
    );
}

async fn expired_sessions_are_purged(store: Arc<dyn Store>) {
    let (t, _) = two_tenants(store.as_ref()).await;
    let alice = store.create_user(&t, &new_user("alice")).await.unwrap();
    let mut idle = session(&t, &alice.id, "idle");
    idle.last_seen_at = NOW - 100;
    let mut old = session(&t, &alice.id, "old");
    old.expires_at = NOW;
    let live = session(&t, &alice.id, "live");
    for s in [&idle, &old, &live] {
        store.create_dashboard_session(s).await.unwrap();
    }
    assert_eq!(
        store.purge_dashboard_sessions(NOW - 50, NOW).await.unwrap(),
        2
    );
    assert!(store.dashboard_session("live").await.unwrap().is_some());
    assert!(store.dashboard_session("idle").await.unwrap().is_none());
    assert!(store.dashboard_session("old").await.unwrap().is_none());
}
