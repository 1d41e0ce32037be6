//! Secret ciphertext storage: upsert, listing, deletion, tenant isolation,
//! the vault check, and the all-or-nothing `replace_secrets`.

use crate::harness::*;
use exoclaw_core::TenantId;
use exoclaw_core::model::{SecretRecord, VaultCheck};
use exoclaw_core::store::{Store, StoreError};
use std::sync::Arc;

contract!(store:
    secrets_put_replace_list_delete,
    secrets_are_tenant_isolated,
    secrets_need_an_existing_tenant,
    vault_check_is_set_and_replaced,
    replace_secrets_replaces_all_and_the_check,
    replace_secrets_is_all_or_nothing,
);

fn record(tenant: &TenantId, owner: &str, name: &str, byte: u8, at: i64) -> SecretRecord {
    SecretRecord {
        tenant_id: tenant.clone(),
        owner: owner.to_owned(),
        name: name.to_owned(),
        key_id: format!("key-{byte}"),
        nonce: vec![byte; 12],
        // every byte value, to prove binary columns round-trip
        ciphertext: (0..=255u8).map(|b| b ^ byte).collect(),
        created_at: at,
        updated_at: at,
    }
}

fn check(byte: u8) -> VaultCheck {
    VaultCheck {
        key_id: format!("key-{byte}"),
        nonce: vec![byte; 12],
        ciphertext: vec![byte, 0, 255, byte],
    }
}

async fn secrets_put_replace_list_delete(store: Arc<dyn Store>) {
    let t = default_tenant();
    let first = record(&t, "provider:anthropic", "api_key", 1, 1_000);
    store.put_secret(&first).await.unwrap();
    assert_eq!(
        store
            .get_secret(&t, "provider:anthropic", "api_key")
            .await
            .unwrap(),
        Some(first.clone())
    );
    let replacement = record(&t, "provider:anthropic", "api_key", 2, 2_000);
    store.put_secret(&replacement).await.unwrap();
    let got = store
        .get_secret(&t, "provider:anthropic", "api_key")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.ciphertext, replacement.ciphertext);
    assert_eq!(got.key_id, "key-2");
    assert_eq!(
        (got.created_at, got.updated_at),
        (1_000, 2_000),
        "created_at kept on replace"
    );

    store
        .put_secret(&record(&t, "tenant", "webhook", 3, 3_000))
        .await
        .unwrap();
    store
        .put_secret(&record(&t, "provider:openai", "api_key", 4, 4_000))
        .await
        .unwrap();
    let listed: Vec<_> = store
        .list_secrets(&t, None)
        .await
        .unwrap()
        .into_iter()
        .map(|m| format!("{}/{}", m.owner, m.name))
        .collect();
    assert_eq!(
        listed,
        [
            "provider:anthropic/api_key",
            "provider:openai/api_key",
            "tenant/webhook"
        ]
    );
    let meta = store.list_secrets(&t, Some("tenant")).await.unwrap();
    assert_eq!(meta.len(), 1);
    assert_eq!(
        (
            meta[0].name.as_str(),
            meta[0].key_id.as_str(),
            meta[0].updated_at
        ),
        ("webhook", "key-3", 3_000)
    );
    assert!(
        store
            .list_secrets(&t, Some("nobody"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.get_secret(&t, "tenant", "missing").await.unwrap(),
        None
    );

    store.delete_secret(&t, "tenant", "webhook").await.unwrap();
    assert_eq!(
        store.get_secret(&t, "tenant", "webhook").await.unwrap(),
        None
    );
    let err = store
        .delete_secret(&t, "tenant", "webhook")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
    assert_eq!(store.all_secrets().await.unwrap().len(), 2);
}

async fn secrets_are_tenant_isolated(store: Arc<dyn Store>) {
    let (a, b) = two_tenants(&*store).await;
    let mine = record(&a, "tenant", "token", 1, 1);
    store.put_secret(&mine).await.unwrap();
    store
        .put_secret(&record(&b, "tenant", "token", 2, 2))
        .await
        .unwrap();
    assert_eq!(
        store.get_secret(&a, "tenant", "token").await.unwrap(),
        Some(mine.clone())
    );
    assert_eq!(
        store
            .get_secret(&b, "tenant", "token")
            .await
            .unwrap()
            .unwrap()
            .key_id,
        "key-2"
    );
    store.delete_secret(&b, "tenant", "token").await.unwrap();
    assert_eq!(
        store.get_secret(&a, "tenant", "token").await.unwrap(),
        Some(mine)
    );
    assert!(store.list_secrets(&b, None).await.unwrap().is_empty());
    let err = store
        .delete_secret(&b, "tenant", "token")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
    // all_secrets spans tenants (for rotation)
    let all = store.all_secrets().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].tenant_id, a);
}

async fn secrets_need_an_existing_tenant(store: Arc<dyn Store>) {
    let err = store
        .put_secret(&record(&tid("ghost"), "tenant", "x", 1, 1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
}

async fn vault_check_is_set_and_replaced(store: Arc<dyn Store>) {
    assert_eq!(store.vault_check().await.unwrap(), None);
    store.set_vault_check(&check(1)).await.unwrap();
    assert_eq!(store.vault_check().await.unwrap(), Some(check(1)));
    store.set_vault_check(&check(2)).await.unwrap();
    assert_eq!(store.vault_check().await.unwrap(), Some(check(2)));
}

async fn replace_secrets_replaces_all_and_the_check(store: Arc<dyn Store>) {
    let (a, b) = two_tenants(&*store).await;
    store.set_vault_check(&check(1)).await.unwrap();
    store
        .put_secret(&record(&a, "tenant", "x", 1, 10))
        .await
        .unwrap();
    store
        .put_secret(&record(&b, "tenant", "y", 1, 10))
        .await
        .unwrap();
    let rotated = [
        record(&a, "tenant", "x", 9, 20),
        record(&b, "tenant", "y", 9, 20),
    ];
    store.replace_secrets(&rotated, &check(9)).await.unwrap();
    let all = store.all_secrets().await.unwrap();
    assert_eq!(all.len(), 2);
    for r in &all {
        assert_eq!(r.key_id, "key-9");
        assert_eq!((r.created_at, r.updated_at), (10, 20));
    }
    assert_eq!(store.vault_check().await.unwrap(), Some(check(9)));
    // an empty batch still replaces the check
    store.replace_secrets(&[], &check(7)).await.unwrap();
    assert_eq!(store.vault_check().await.unwrap(), Some(check(7)));
}

async fn replace_secrets_is_all_or_nothing(store: Arc<dyn Store>) {
    let t = default_tenant();
    store.set_vault_check(&check(1)).await.unwrap();
    let original = record(&t, "tenant", "x", 1, 10);
    store.put_secret(&original).await.unwrap();
    let batch = [
        record(&t, "tenant", "x", 9, 20),
        // a record for a tenant that does not exist: the foreign key fails
        record(&tid("ghost"), "tenant", "x", 9, 20),
    ];
    let err = store.replace_secrets(&batch, &check(9)).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
    assert_eq!(store.all_secrets().await.unwrap(), vec![original]);
    assert_eq!(
        store.vault_check().await.unwrap(),
        Some(check(1)),
        "check untouched"
    );
}
