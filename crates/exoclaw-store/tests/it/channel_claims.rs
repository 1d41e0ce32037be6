//! Several gateways on one database: an outbox message is claimed by one
//! holder at a time (another holder's claim is passed over until it
//! lapses; a holder takes its own claims back at once; a send or a failure
//! clears the claim), concurrent claimers never take one message twice,
//! and a channel's receive lease is held by one gateway until it lapses or
//! is released (per tenant; bad holders refused).

use crate::harness::*;
use exoclaw_core::store::channel::{Failure, NewOutbound};
use exoclaw_core::store::{Store, StoreError};
use std::collections::BTreeSet;
use std::sync::Arc;

contract!(store:
    a_claim_is_exclusive_until_it_lapses_or_ends,
    concurrent_claimers_never_take_one_message_twice,
    a_receive_lease_has_one_holder_at_a_time,
);

const NOW: i64 = 1_800_000_000_000;
const LEASE: i64 = 60_000;

fn out(key: &str) -> NewOutbound {
    NewOutbound {
        channel: "tg".to_owned(),
        peer: "chat-1".to_owned(),
        text: format!("text of {key}"),
        idempotency_key: key.to_owned(),
        file: None,
    }
}

fn keys(ms: &[exoclaw_core::store::channel::OutboxMessage]) -> Vec<String> {
    ms.iter().map(|m| m.idempotency_key.clone()).collect()
}

async fn a_claim_is_exclusive_until_it_lapses_or_ends(store: Arc<dyn Store>) {
    let (t, other) = two_tenants(store.as_ref()).await;
    for (i, k) in ["m1", "m2", "m3", "m4", "m5"].iter().enumerate() {
        let at = NOW + i64::try_from(i).unwrap();
        store.enqueue_outbound(&t, &out(k), at).await.unwrap();
    }
    let now = NOW + 10;
    let a = store
        .claim_outbound(&t, "tg", "gw-a", now, now + LEASE, 3)
        .await
        .unwrap();
    assert_eq!(keys(&a), ["m1", "m2", "m3"], "oldest first");
    assert!(
        a.iter().all(
            |m| m.claimed_by.as_deref() == Some("gw-a") && m.claimed_until == Some(now + LEASE)
        )
    );
    // Another holder gets only what is not claimed.
    let b = store
        .claim_outbound(&t, "tg", "gw-b", now, now + LEASE, 10)
        .await
        .unwrap();
    assert_eq!(keys(&b), ["m4", "m5"]);
    assert!(
        store
            .claim_outbound(&t, "tg", "gw-c", now + 1, now + 1 + LEASE, 10)
            .await
            .unwrap()
            .is_empty(),
        "everything is claimed"
    );
    // Another tenant's claimer sees nothing of these.
    assert!(
        store
            .claim_outbound(&other, "tg", "gw-b", now, now + LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // A holder takes its own claims back at once (its restart).
    let again = store
        .claim_outbound(&t, "tg", "gw-a", now + 2, now + 2 + LEASE, 10)
        .await
        .unwrap();
    assert_eq!(keys(&again), ["m1", "m2", "m3"]);
    // Queue depth counts claimed messages; the soonest time a message may go
    // is the end of its claim.
    assert_eq!(store.count_pending_outbound(&t, "tg").await.unwrap(), 5);
    assert_eq!(
        store.next_outbound_at(&t, "tg").await.unwrap(),
        Some(now + LEASE),
        "b's claims end first"
    );
    // A sent message's claim is cleared; a failed one's too, and it is due
    // again at its retry time for anyone.
    assert!(
        store
            .mark_outbound_sent(&t, &again[0].id, Some("p1"), now + 3)
            .await
            .unwrap()
    );
    let sent = store.get_outbound(&t, &again[0].id).await.unwrap().unwrap();
    assert_eq!((sent.claimed_by, sent.claimed_until), (None, None));
    let retry_at = now + 100;
    assert!(
        store
            .mark_outbound_failed(
                &t,
                &again[1].id,
                &Failure::Retry {
                    retry_at,
                    error: "502".to_owned()
                }
            )
            .await
            .unwrap()
    );
    let failed = store.get_outbound(&t, &again[1].id).await.unwrap().unwrap();
    assert_eq!((failed.claimed_by, failed.claimed_until), (None, None));
    let b = store
        .claim_outbound(&t, "tg", "gw-b", retry_at, retry_at + LEASE, 10)
        .await
        .unwrap();
    assert_eq!(keys(&b), ["m4", "m5", "m2"], "its own, and the failed one");
    // A crashed holder's claims lapse: b takes a's and its own back.
    let lapsed = now + 2 + LEASE;
    let b = store
        .claim_outbound(&t, "tg", "gw-b", lapsed, lapsed + LEASE, 10)
        .await
        .unwrap();
    assert_eq!(keys(&b), ["m3", "m4", "m5", "m2"]);
    assert!(
        store
            .claim_outbound(&t, "tg", "gw-a", lapsed, lapsed + LEASE, 10)
            .await
            .unwrap()
            .is_empty(),
        "a no longer holds anything"
    );
    // A message not yet due is not claimed.
    store
        .enqueue_outbound(&t, &out("late"), lapsed + 5)
        .await
        .unwrap();
    assert!(
        store
            .claim_outbound(&t, "tg", "gw-a", lapsed, lapsed + LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store
            .claim_outbound(&t, "tg", "", now, now + LEASE, 10)
            .await,
        Err(StoreError::Invalid(_))
    ));
}

async fn concurrent_claimers_never_take_one_message_twice(store: Arc<dyn Store>) {
    let t = default_tenant();
    const N: usize = 60;
    for i in 0..N {
        store
            .enqueue_outbound(&t, &out(&format!("k{i:02}")), NOW)
            .await
            .unwrap();
    }
    let mut tasks = tokio::task::JoinSet::new();
    for g in 0..6 {
        let store = store.clone();
        let t = t.clone();
        tasks.spawn(async move {
            let holder = format!("gw-{g}");
            let mut got = Vec::new();
            loop {
                let batch = store
                    .claim_outbound(&t, "tg", &holder, NOW + 1, NOW + 1 + LEASE, 4)
                    .await
                    .unwrap();
                if batch.is_empty() {
                    return got;
                }
                // Like a sender: each claimed message is sent and marked.
                for m in &batch {
                    assert!(
                        store
                            .mark_outbound_sent(&t, &m.id, None, NOW + 2)
                            .await
                            .unwrap()
                    );
                }
                got.extend(keys(&batch));
            }
        });
    }
    let mut all = Vec::new();
    while let Some(got) = tasks.join_next().await {
        all.extend(got.unwrap());
    }
    let unique: BTreeSet<&String> = all.iter().collect();
    assert_eq!(all.len(), N, "each message claimed exactly once: {all:?}");
    assert_eq!(unique.len(), N);
}

async fn a_receive_lease_has_one_holder_at_a_time(store: Arc<dyn Store>) {
    let (t, other) = two_tenants(store.as_ref()).await;
    assert!(
        store
            .hold_channel_lease(&t, "tg", "gw-a", NOW, NOW + LEASE)
            .await
            .unwrap()
    );
    assert!(
        !store
            .hold_channel_lease(&t, "tg", "gw-b", NOW + 1, NOW + 1 + LEASE)
            .await
            .unwrap(),
        "a holds it"
    );
    // Another channel, another tenant: their own leases.
    assert!(
        store
            .hold_channel_lease(&t, "dc", "gw-b", NOW, NOW + LEASE)
            .await
            .unwrap()
    );
    assert!(
        store
            .hold_channel_lease(&other, "tg", "gw-b", NOW, NOW + LEASE)
            .await
            .unwrap()
    );
    // a renews; b still waits; once a stops renewing, b takes over.
    let renewed = NOW + LEASE - 1;
    assert!(
        store
            .hold_channel_lease(&t, "tg", "gw-a", renewed, renewed + LEASE)
            .await
            .unwrap()
    );
    assert!(
        !store
            .hold_channel_lease(&t, "tg", "gw-b", NOW + LEASE, NOW + 2 * LEASE)
            .await
            .unwrap()
    );
    let lapsed = renewed + LEASE;
    assert!(
        store
            .hold_channel_lease(&t, "tg", "gw-b", lapsed, lapsed + LEASE)
            .await
            .unwrap()
    );
    assert!(
        !store
            .hold_channel_lease(&t, "tg", "gw-a", lapsed + 1, lapsed + 1 + LEASE)
            .await
            .unwrap()
    );
    // Only the holder's release frees it; then anyone takes it at once.
    store.release_channel_lease(&t, "tg", "gw-a").await.unwrap();
    assert!(
        !store
            .hold_channel_lease(&t, "tg", "gw-a", lapsed + 2, lapsed + 2 + LEASE)
            .await
            .unwrap()
    );
    store.release_channel_lease(&t, "tg", "gw-b").await.unwrap();
    assert!(
        store
            .hold_channel_lease(&t, "tg", "gw-a", lapsed + 3, lapsed + 3 + LEASE)
            .await
            .unwrap()
    );
    assert!(matches!(
        store
            .hold_channel_lease(&t, "tg", "", NOW, NOW + LEASE)
            .await,
        Err(StoreError::Invalid(_))
    ));
}
