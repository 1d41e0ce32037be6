//! Tenants and users: the seeded default tenant, uniqueness, tenant
//! isolation, and deleting a user with everything they own.

use crate::harness::*;
use exoclaw_core::UserId;
use exoclaw_core::model::{NewUser, Role, SecretRecord};
use exoclaw_core::store::{Store, StoreError};
use std::sync::Arc;

contract!(store:
    default_tenant_is_seeded,
    tenants_are_created_once,
    tenant_settings_are_replaced_whole_and_versioned,
    user_crud,
    user_names_are_unique_per_tenant,
    users_need_an_existing_tenant,
    users_are_tenant_isolated,
    delete_user_removes_their_sessions_and_secrets,
);

async fn default_tenant_is_seeded(store: Arc<dyn Store>) {
    let t = store.get_tenant(&default_tenant()).await.unwrap().unwrap();
    assert_eq!(t.name, "Default");
    assert!(t.created_at > 0);
    let all = store.list_tenants().await.unwrap();
    assert_eq!(all, vec![t]);
}

async fn tenants_are_created_once(store: Arc<dyn Store>) {
    let acme = store.create_tenant(&tid("acme"), "Acme Inc").await.unwrap();
    assert_eq!(acme.name, "Acme Inc");
    assert_eq!(store.get_tenant(&tid("acme")).await.unwrap(), Some(acme));
    let again = store
        .create_tenant(&tid("acme"), "Again")
        .await
        .unwrap_err();
    assert!(matches!(again, StoreError::Conflict(_)), "{again}");
    assert!(again.to_string().contains("acme"), "{again}");
    for bad in ["", "Upper", "has space", "-lead"] {
        let err = store.create_tenant(&tid(bad), "x").await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{bad}: {err}");
    }
    assert_eq!(store.get_tenant(&tid("nope")).await.unwrap(), None);
    let ids: Vec<_> = store
        .list_tenants()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id.to_string())
        .collect();
    assert_eq!(ids, ["default", "acme"]);
}

async fn tenant_settings_are_replaced_whole_and_versioned(store: Arc<dyn Store>) {
    let acme = store.create_tenant(&tid("acme"), "Acme").await.unwrap();
    assert_eq!(acme.settings, serde_json::json!({}));
    assert_eq!(acme.settings_version, 0);
    let first = serde_json::json!({
        "egress": {"allow_domains": ["example.com", "*.example.org"]},
        "budgets": {"daily_usd": 1.5, "monthly_tokens": 100000},
    });
    let before = store.directory_version(&tid("acme")).await.unwrap();
    let set = store
        .set_tenant_settings(&tid("acme"), &first, Some(0))
        .await
        .unwrap();
    // A change moves the tenant's directory version (what turns read).
    let after = store.directory_version(&tid("acme")).await.unwrap();
    assert!(
        after.is_some() && after != before,
        "{before:?} -> {after:?}"
    );
    assert_eq!(set.settings, first);
    assert_eq!(set.settings_version, 1);
    assert_eq!(set.name, "Acme");
    assert_eq!(store.get_tenant(&tid("acme")).await.unwrap(), Some(set));
    // Replaced whole, not merged; every change bumps the version.
    let second = serde_json::json!({"sandbox": {"network_enabled": false}});
    let set = store
        .set_tenant_settings(&tid("acme"), &second, None)
        .await
        .unwrap();
    assert_eq!(set.settings, second);
    assert_eq!(set.settings_version, 2);
    // Another tenant is untouched, and listed with its own settings.
    let all = store.list_tenants().await.unwrap();
    let default = all.iter().find(|t| t.id == default_tenant()).unwrap();
    assert_eq!(default.settings, serde_json::json!({}));
    assert_eq!(default.settings_version, 0);
    assert_eq!(
        all.iter().find(|t| t.id == tid("acme")).unwrap().settings,
        second
    );
    // Failures change nothing: a stale expected version,
    let err = store
        .set_tenant_settings(&tid("acme"), &first, Some(1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert!(err.to_string().contains("version 2"), "{err}");
    // an unknown tenant, settings that are not an object.
    let err = store
        .set_tenant_settings(&tid("nope"), &first, None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
    let err = store
        .set_tenant_settings(&tid("acme"), &serde_json::json!([1]), None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    let after = store.get_tenant(&tid("acme")).await.unwrap().unwrap();
    assert_eq!((after.settings, after.settings_version), (second, 2));
    assert_eq!(store.get_tenant(&tid("nope")).await.unwrap(), None);
}

async fn user_crud(store: Arc<dyn Store>) {
    let t = default_tenant();
    let bob = store
        .create_user(
            &t,
            &NewUser {
                name: "bob".into(),
                role: Role::Admin,
            },
        )
        .await
        .unwrap();
    let alice = store.create_user(&t, &new_user("alice")).await.unwrap();
    assert_eq!(bob.id.as_str().len(), 32);
    assert_ne!(bob.id, alice.id);
    assert_eq!(
        (bob.role, bob.disabled, &bob.tenant_id),
        (Role::Admin, false, &t)
    );
    assert_eq!(
        store.get_user(&t, &bob.id).await.unwrap(),
        Some(bob.clone())
    );
    assert_eq!(
        store.find_user_by_name(&t, "alice").await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(store.find_user_by_name(&t, "carol").await.unwrap(), None);
    assert_eq!(
        store.get_user(&t, &UserId::new("missing")).await.unwrap(),
        None
    );
    let names: Vec<_> = store
        .list_users(&t)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["alice", "bob"], "sorted by name");

    store.set_user_disabled(&t, &bob.id, true).await.unwrap();
    assert!(store.get_user(&t, &bob.id).await.unwrap().unwrap().disabled);
    store.set_user_disabled(&t, &bob.id, false).await.unwrap();
    assert!(!store.get_user(&t, &bob.id).await.unwrap().unwrap().disabled);
    let err = store
        .set_user_disabled(&t, &UserId::new("missing"), true)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");

    store.delete_user(&t, &bob.id).await.unwrap();
    assert_eq!(store.get_user(&t, &bob.id).await.unwrap(), None);
    let err = store.delete_user(&t, &bob.id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
}

async fn user_names_are_unique_per_tenant(store: Arc<dyn Store>) {
    let (a, b) = two_tenants(&*store).await;
    store.create_user(&a, &new_user("sam")).await.unwrap();
    let err = store.create_user(&a, &new_user("sam")).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert!(err.to_string().contains("sam"), "{err}");
    store
        .create_user(&b, &new_user("sam"))
        .await
        .expect("same name, other tenant");
    let err = store.create_user(&a, &new_user(" ")).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
}

async fn users_need_an_existing_tenant(store: Arc<dyn Store>) {
    let err = store
        .create_user(&tid("ghost"), &new_user("x"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
}

async fn users_are_tenant_isolated(store: Arc<dyn Store>) {
    let (a, b) = two_tenants(&*store).await;
    let u = store.create_user(&a, &new_user("alice")).await.unwrap();
    assert_eq!(store.get_user(&b, &u.id).await.unwrap(), None);
    assert_eq!(store.find_user_by_name(&b, "alice").await.unwrap(), None);
    assert!(store.list_users(&b).await.unwrap().is_empty());
    let err = store.set_user_disabled(&b, &u.id, true).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
    let err = store.delete_user(&b, &u.id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
    let still = store.get_user(&a, &u.id).await.unwrap().unwrap();
    assert!(!still.disabled, "untouched by the other tenant");
}

async fn delete_user_removes_their_sessions_and_secrets(store: Arc<dyn Store>) {
    let t = default_tenant();
    store.create_agent(&t, &new_agent("a1")).await.unwrap();
    let gone = store.create_user(&t, &new_user("gone")).await.unwrap();
    let kept = store.create_user(&t, &new_user("kept")).await.unwrap();
    let s1 = store
        .get_or_create_session(&t, &scope("a1", gone.id.as_str(), "p1"))
        .await
        .unwrap();
    let s2 = store
        .get_or_create_session(&t, &scope("a1", gone.id.as_str(), "p2"))
        .await
        .unwrap();
    let s3 = store
        .get_or_create_session(&t, &scope("a1", kept.id.as_str(), "p1"))
        .await
        .unwrap();
    for s in [&s1, &s2, &s3] {
        store
            .append_message(&t, &s.id, &text_message("hi"))
            .await
            .unwrap();
    }
    let secret = |owner: String| SecretRecord {
        tenant_id: t.clone(),
        owner,
        name: "token".into(),
        key_id: "k".into(),
        nonce: vec![0; 12],
        ciphertext: vec![1; 20],
        created_at: 1,
        updated_at: 1,
    };
    store
        .put_secret(&secret(format!("user:{}", gone.id)))
        .await
        .unwrap();
    store
        .put_secret(&secret(format!("user:{}", kept.id)))
        .await
        .unwrap();

    store.delete_user(&t, &gone.id).await.unwrap();
    assert_eq!(store.get_session(&t, &s1.id).await.unwrap(), None);
    assert_eq!(store.get_session(&t, &s2.id).await.unwrap(), None);
    let err = store.list_messages(&t, &s1.id, 0, 0).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
    assert!(store.get_session(&t, &s3.id).await.unwrap().is_some());
    assert_eq!(
        store.list_messages(&t, &s3.id, 0, 0).await.unwrap().len(),
        1
    );
    let owners: Vec<_> = store
        .list_secrets(&t, None)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.owner)
        .collect();
    assert_eq!(owners, [format!("user:{}", kept.id)]);
}
