//! Gateway tokens: seeding never revives a retired token, rotation retires
//! every active token at the overlap deadline and adds the new one
//! atomically, and only digests are stored.

use exoclaw_core::store::{SeedOutcome, Store};
use std::sync::Arc;

contract!(store: seeding_is_idempotent_and_never_revives, rotation_retires_with_an_overlap);

const NOW: i64 = 1_800_000_000_000;

async fn seeding_is_idempotent_and_never_revives(store: Arc<dyn Store>) {
    assert!(store.gateway_tokens().await.unwrap().is_empty());
    assert_eq!(
        store.seed_gateway_token("h1", NOW).await.unwrap(),
        SeedOutcome::Inserted
    );
    assert_eq!(
        store.seed_gateway_token("h1", NOW + 1).await.unwrap(),
        SeedOutcome::Known
    );
    let all = store.gateway_tokens().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].token_hash, "h1");
    assert_eq!(all[0].expires_at, None);

    store
        .rotate_gateway_token("h2", NOW + 600_000, NOW)
        .await
        .unwrap();
    // Inside the overlap window the old token is still known...
    assert_eq!(
        store.seed_gateway_token("h1", NOW + 10).await.unwrap(),
        SeedOutcome::Known
    );
    // ...after it, seeding it again (a stale .env) does not bring it back.
    assert_eq!(
        store.seed_gateway_token("h1", NOW + 600_000).await.unwrap(),
        SeedOutcome::Retired
    );
    let h1 = store
        .gateway_tokens()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.token_hash == "h1")
        .unwrap();
    assert_eq!(h1.expires_at, Some(NOW + 600_000));
}

async fn rotation_retires_with_an_overlap(store: Arc<dyn Store>) {
    store.seed_gateway_token("a", NOW).await.unwrap();
    store
        .rotate_gateway_token("b", NOW + 1000, NOW)
        .await
        .unwrap();
    store
        .rotate_gateway_token("c", NOW + 2000, NOW + 500)
        .await
        .unwrap();
    let all = store.gateway_tokens().await.unwrap();
    let get = |h: &str| all.iter().find(|t| t.token_hash == h).unwrap().expires_at;
    assert_eq!(
        get("a"),
        Some(NOW + 1000),
        "an earlier deadline is never extended"
    );
    assert_eq!(get("b"), Some(NOW + 2000));
    assert_eq!(get("c"), None);
    // A duplicate new token is refused and changes nothing (one transaction).
    assert!(
        store
            .rotate_gateway_token("c", NOW + 3000, NOW + 600)
            .await
            .is_err()
    );
    let again = store.gateway_tokens().await.unwrap();
    assert_eq!(again, all, "a failed rotation leaves everything as it was");
}
