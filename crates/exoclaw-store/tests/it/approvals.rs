//! Exec approvals: one pending request per command hash, decided once,
//! bound to the hash, tenant-isolated.

use exoclaw_core::TenantId;
use exoclaw_core::store::{ApprovalStatus, NewApproval, Store, StoreError};
use std::sync::Arc;

contract!(store: requests_dedupe_and_decide_once, approvals_are_tenant_isolated);

const NOW: i64 = 1_800_000_000_000;

fn request(tenant: &str, hash: &str) -> NewApproval {
    NewApproval {
        tenant_id: tenant.into(),
        agent_id: "default".into(),
        user_id: "u1".into(),
        session_id: Some("s1".into()),
        command: "rm -rf ./build".into(),
        cwd: "/workspace".into(),
        command_hash: hash.into(),
        rule: "destructive".into(),
    }
}

async fn requests_dedupe_and_decide_once(store: Arc<dyn Store>) {
    let t = TenantId::new("default");
    let a = store
        .request_approval(&request("default", "h1"), NOW)
        .await
        .unwrap();
    assert_eq!(a.status, ApprovalStatus::Pending);
    let again = store
        .request_approval(&request("default", "h1"), NOW + 5)
        .await
        .unwrap();
    assert_eq!(again.id, a.id, "one pending request per hash");
    let other = store
        .request_approval(&request("default", "h2"), NOW + 6)
        .await
        .unwrap();
    assert_ne!(other.id, a.id);
    assert_eq!(
        store
            .list_approvals(&t, Some(ApprovalStatus::Pending))
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(!store.is_approved(&t, "h1", NOW - 1).await.unwrap());

    let decided = store
        .decide_approval(&t, &a.id, ApprovalStatus::Approved, "cli", NOW + 10)
        .await
        .unwrap();
    assert_eq!(decided.status, ApprovalStatus::Approved);
    assert_eq!(decided.decided_by.as_deref(), Some("cli"));
    assert!(store.is_approved(&t, "h1", NOW).await.unwrap());
    assert!(
        !store.is_approved(&t, "h1", NOW + 11).await.unwrap(),
        "approvals age out"
    );
    assert!(
        !store.is_approved(&t, "h2", NOW).await.unwrap(),
        "bound to the hash"
    );
    // Decided once: a second decision conflicts, whatever it is.
    let e = store
        .decide_approval(&t, &a.id, ApprovalStatus::Denied, "api", NOW + 12)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e}");
    // After a decision, a new request for the same hash is a new approval.
    let fresh = store
        .request_approval(&request("default", "h1"), NOW + 20)
        .await
        .unwrap();
    assert_ne!(fresh.id, a.id);
    store
        .decide_approval(&t, &other.id, ApprovalStatus::Expired, "system", NOW + 30)
        .await
        .unwrap();
    let all = store.list_approvals(&t, None).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].id, fresh.id, "newest first");
}

async fn approvals_are_tenant_isolated(store: Arc<dyn Store>) {
    store
        .create_tenant(&TenantId::new("other"), "Other")
        .await
        .unwrap();
    let a = store
        .request_approval(&request("default", "h"), NOW)
        .await
        .unwrap();
    let other = TenantId::new("other");
    assert!(store.get_approval(&other, &a.id).await.unwrap().is_none());
    assert!(store.list_approvals(&other, None).await.unwrap().is_empty());
    let e = store
        .decide_approval(&other, &a.id, ApprovalStatus::Approved, "x", NOW)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::NotFound), "{e}");
    store
        .decide_approval(
            &TenantId::new("default"),
            &a.id,
            ApprovalStatus::Approved,
            "cli",
            NOW,
        )
        .await
        .unwrap();
    assert!(
        !store.is_approved(&other, "h", 0).await.unwrap(),
        "another tenant's approval does not count"
    );
}
