//! API keys: stored by digest, bound to a user of the tenant, listed per
//! tenant and user, revoked idempotently and only inside their tenant,
//! deleted with their user.

use exoclaw_core::model::{NewUser, Role};
use exoclaw_core::store::{NewApiKey, Store, StoreError};
use exoclaw_core::{TenantId, UserId};
use std::sync::Arc;

contract!(store: keys_round_trip_by_digest, keys_stay_in_their_tenant, keys_go_with_their_user);

const NOW: i64 = 1_800_000_000_000;

fn new_key(tenant: &TenantId, user: &UserId, hash: &str) -> NewApiKey {
    NewApiKey {
        tenant_id: tenant.clone(),
        user_id: user.clone(),
        name: "laptop".into(),
        key_hash: hash.into(),
        prefix: "exk_abcd".into(),
        scopes: vec!["chat".into(), "sessions.read".into()],
        expires_at: Some(NOW + 86_400_000),
    }
}

async fn user(store: &Arc<dyn Store>, tenant: &TenantId, name: &str) -> UserId {
    store
        .create_user(
            tenant,
            &NewUser {
                name: name.into(),
                role: Role::User,
            },
        )
        .await
        .unwrap()
        .id
}

async fn keys_round_trip_by_digest(store: Arc<dyn Store>) {
    let t = TenantId::new("default");
    let alice = user(&store, &t, "alice").await;
    let created = store
        .create_api_key(&new_key(&t, &alice, "h-alice"), NOW)
        .await
        .unwrap();
    let (found, owner) = store.find_api_key("h-alice").await.unwrap().unwrap();
    assert_eq!(found, created);
    assert_eq!(owner.name, "alice");
    assert_eq!(found.scopes, ["chat", "sessions.read"]);
    assert!(store.find_api_key("h-nobody").await.unwrap().is_none());
    // The same digest twice is a conflict, never a second row.
    let again = store
        .create_api_key(&new_key(&t, &alice, "h-alice"), NOW)
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");

    store.touch_api_key(&created.id, NOW + 5).await.unwrap();
    store
        .revoke_api_key(&t, None, &created.id, NOW + 10)
        .await
        .unwrap();
    // Revoking twice keeps the first time.
    store
        .revoke_api_key(&t, None, &created.id, NOW + 20)
        .await
        .unwrap();
    let (found, _) = store.find_api_key("h-alice").await.unwrap().unwrap();
    assert_eq!(found.revoked_at, Some(NOW + 10));
    assert_eq!(found.last_used_at, Some(NOW + 5));
}

async fn keys_stay_in_their_tenant(store: Arc<dyn Store>) {
    let a = TenantId::new("default");
    let b = TenantId::new("tenant-b");
    store.create_tenant(&b, "B").await.unwrap();
    let alice = user(&store, &a, "alice").await;
    let bob = user(&store, &b, "bob").await;
    let carol = user(&store, &a, "carol").await;
    // A key for a user of another tenant cannot be created.
    let foreign = store.create_api_key(&new_key(&b, &alice, "h-x"), NOW).await;
    assert!(matches!(foreign, Err(StoreError::NotFound)), "{foreign:?}");
    let ka = store
        .create_api_key(&new_key(&a, &alice, "h-a"), NOW)
        .await
        .unwrap();
    store
        .create_api_key(&new_key(&a, &carol, "h-c"), NOW + 1)
        .await
        .unwrap();
    store
        .create_api_key(&new_key(&b, &bob, "h-b"), NOW)
        .await
        .unwrap();
    let in_a = store.list_api_keys(&a, None).await.unwrap();
    assert_eq!(in_a.len(), 2);
    assert_eq!(in_a[0].user_id, carol, "newest first");
    let alices = store.list_api_keys(&a, Some(&alice)).await.unwrap();
    assert_eq!(alices.len(), 1);
    assert_eq!(alices[0].id, ka.id);
    // Tenant B cannot revoke A's key, nor carol alice's.
    let r = store.revoke_api_key(&b, None, &ka.id, NOW).await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
    let r = store.revoke_api_key(&a, Some(&carol), &ka.id, NOW).await;
    assert!(matches!(r, Err(StoreError::NotFound)), "{r:?}");
    let (k, _) = store.find_api_key("h-a").await.unwrap().unwrap();
    assert_eq!(k.revoked_at, None);
    store
        .revoke_api_key(&a, Some(&alice), &ka.id, NOW)
        .await
        .unwrap();
}

async fn keys_go_with_their_user(store: Arc<dyn Store>) {
    let t = TenantId::new("default");
    let alice = user(&store, &t, "alice").await;
    store
        .create_api_key(&new_key(&t, &alice, "h-alice"), NOW)
        .await
        .unwrap();
    store.delete_user(&t, &alice).await.unwrap();
    assert!(store.find_api_key("h-alice").await.unwrap().is_none());
    assert!(store.list_api_keys(&t, None).await.unwrap().is_empty());
}
