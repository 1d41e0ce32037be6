//! Channels' state: the outbox queues a message once per idempotency key,
//! lists due ones oldest first, retries with backoff, dead-letters, and a
//! delivery is marked once (a second sender's mark is refused); inbound ids
//! are seen once; cursors persist; tenants are separate; bad input is
//! refused; a message's file is kept until it is sent or dead-lettered.

use crate::harness::*;
use exoclaw_core::store::channel::{Failure, NewOutbound, OutboxFile, OutboxStatus};
use exoclaw_core::store::{Store, StoreError};
use std::sync::Arc;

contract!(store:
    outbound_is_queued_once_per_key_and_delivered_once,
    failures_back_off_then_dead_letter,
    inbound_ids_are_seen_once_and_cursors_persist,
    channel_state_is_tenant_isolated,
    bad_channel_input_is_refused,
    outbound_files_are_kept_until_sent_or_dead,
);

const NOW: i64 = 1_800_000_000_000;

fn out(key: &str, text: &str) -> NewOutbound {
    NewOutbound {
        channel: "hook".to_owned(),
        peer: "chat-1".to_owned(),
        text: text.to_owned(),
        idempotency_key: key.to_owned(),
        file: None,
    }
}

fn with_file(key: &str, name: &str, bytes: &[u8]) -> NewOutbound {
    NewOutbound {
        file: Some(OutboxFile {
            name: name.to_owned(),
            mime: Some("image/png".to_owned()),
            bytes: bytes.to_vec(),
        }),
        ..out(key, "a caption")
    }
}

async fn outbound_files_are_kept_until_sent_or_dead(store: Arc<dyn Store>) {
    let (t, other) = two_tenants(store.as_ref()).await;
    // Every byte value survives the round trip, NUL included.
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let (m, created) = store
        .enqueue_outbound(&t, &with_file("f1", "chart.png", &bytes), NOW)
        .await
        .unwrap();
    assert!(created);
    assert_eq!(
        (
            m.file_name.as_deref(),
            m.file_mime.as_deref(),
            m.text.as_str()
        ),
        (Some("chart.png"), Some("image/png"), "a caption")
    );
    let due = store.due_outbound(&t, "hook", NOW, 10).await.unwrap();
    assert_eq!(due[0].file_name.as_deref(), Some("chart.png"));
    assert_eq!(
        store.outbound_file(&t, &m.id).await.unwrap(),
        Some(bytes.clone())
    );
    // Another tenant reads nothing.
    assert_eq!(store.outbound_file(&other, &m.id).await.unwrap(), None);
    // Queued again under the same key: the first one, its bytes unchanged.
    let (again, created) = store
        .enqueue_outbound(&t, &with_file("f1", "other.png", b"x"), NOW)
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(again.file_name.as_deref(), Some("chart.png"));
    assert_eq!(store.outbound_file(&t, &m.id).await.unwrap(), Some(bytes));
    // A retry keeps the file; delivery drops its bytes (the name stays).
    let retry = Failure::Retry {
        retry_at: NOW + 10,
        error: "503".to_owned(),
    };
    assert!(store.mark_outbound_failed(&t, &m.id, &retry).await.unwrap());
    assert!(store.outbound_file(&t, &m.id).await.unwrap().is_some());
    assert!(
        store
            .mark_outbound_sent(&t, &m.id, Some("7"), NOW + 20)
            .await
            .unwrap()
    );
    assert_eq!(store.outbound_file(&t, &m.id).await.unwrap(), None);
    let sent = store.get_outbound(&t, &m.id).await.unwrap().unwrap();
    assert_eq!(sent.file_name.as_deref(), Some("chart.png"));
    // Dead-lettered: dropped too.
    let (d, _) = store
        .enqueue_outbound(&t, &with_file("f2", "a.txt", b"abc"), NOW)
        .await
        .unwrap();
    let dead = Failure::Dead {
        error: "400".to_owned(),
    };
    assert!(store.mark_outbound_failed(&t, &d.id, &dead).await.unwrap());
    assert_eq!(store.outbound_file(&t, &d.id).await.unwrap(), None);
    // A text message carries none.
    let (plain, _) = store
        .enqueue_outbound(&t, &out("p", "hi"), NOW)
        .await
        .unwrap();
    assert_eq!(plain.file_name, None);
    assert_eq!(store.outbound_file(&t, &plain.id).await.unwrap(), None);
    // Names that are paths, and empty names, are refused.
    for name in ["../x", "a/b", "", "a\nb"] {
        let e = store
            .enqueue_outbound(&t, &with_file("bad", name, b"x"), NOW)
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::Invalid(_)), "{name:?}: {e:?}");
    }
}

async fn outbound_is_queued_once_per_key_and_delivered_once(store: Arc<dyn Store>) {
    let t = default_tenant();
    let (a, created) = store
        .enqueue_outbound(&t, &out("k1", "hello"), NOW)
        .await
        .unwrap();
    assert!(created);
    assert_eq!(
        (a.status, a.attempts, a.next_attempt_at),
        (OutboxStatus::Pending, 0, NOW)
    );
    let (again, created) = store
        .enqueue_outbound(&t, &out("k1", "other text"), NOW + 5)
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(
        (again.id.as_str(), again.text.as_str()),
        (a.id.as_str(), "hello")
    );
    let (b, _) = store
        .enqueue_outbound(&t, &out("k2", "second"), NOW + 1)
        .await
        .unwrap();
    assert_eq!(store.count_pending_outbound(&t, "hook").await.unwrap(), 2);
    assert_eq!(store.count_pending_outbound(&t, "other").await.unwrap(), 0);
    let due = store.due_outbound(&t, "hook", NOW, 10).await.unwrap();
    assert_eq!(
        due.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        [a.id.as_str()]
    );
    let due = store.due_outbound(&t, "hook", NOW + 1, 10).await.unwrap();
    assert_eq!(due.len(), 2);
    assert_eq!(due[0].id, a.id);
    assert_eq!(
        store
            .due_outbound(&t, "hook", NOW + 1, 1)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(store.next_outbound_at(&t, "hook").await.unwrap(), Some(NOW));

    assert!(
        store
            .mark_outbound_sent(&t, &a.id, Some("m-9"), NOW + 2)
            .await
            .unwrap()
    );
    // A second sender's mark (or failure) of the same message is refused.
    assert!(
        !store
            .mark_outbound_sent(&t, &a.id, Some("m-10"), NOW + 3)
            .await
            .unwrap()
    );
    let fail = Failure::Retry {
        retry_at: NOW + 50,
        error: "late".to_owned(),
    };
    assert!(!store.mark_outbound_failed(&t, &a.id, &fail).await.unwrap());
    let sent = store.get_outbound(&t, &a.id).await.unwrap().unwrap();
    assert_eq!(sent.status, OutboxStatus::Sent);
    assert_eq!(
        (sent.platform_id.as_deref(), sent.sent_at),
        (Some("m-9"), Some(NOW + 2))
    );
    let due = store.due_outbound(&t, "hook", NOW + 10, 10).await.unwrap();
    assert_eq!(
        due.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        [b.id.as_str()]
    );
    assert_eq!(store.count_pending_outbound(&t, "hook").await.unwrap(), 1);
    // A sent message's key still dedups.
    let (third, created) = store
        .enqueue_outbound(&t, &out("k1", "hello"), NOW + 9)
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(third.status, OutboxStatus::Sent);
    assert!(store.get_outbound(&t, "nope").await.unwrap().is_none());
}

async fn failures_back_off_then_dead_letter(store: Arc<dyn Store>) {
    let t = default_tenant();
    let (m, _) = store
        .enqueue_outbound(&t, &out("k", "hi"), NOW)
        .await
        .unwrap();
    let retry = Failure::Retry {
        retry_at: NOW + 1_000,
        error: "http 503".to_owned(),
    };
    assert!(store.mark_outbound_failed(&t, &m.id, &retry).await.unwrap());
    assert!(
        store
            .due_outbound(&t, "hook", NOW + 999, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.next_outbound_at(&t, "hook").await.unwrap(),
        Some(NOW + 1_000)
    );
    let got = store.get_outbound(&t, &m.id).await.unwrap().unwrap();
    assert_eq!(
        (got.attempts, got.last_error.as_deref()),
        (1, Some("http 503"))
    );
    assert_eq!(got.status, OutboxStatus::Pending);
    let dead = Failure::Dead {
        error: "x".repeat(2_000),
    };
    assert!(store.mark_outbound_failed(&t, &m.id, &dead).await.unwrap());
    let got = store.get_outbound(&t, &m.id).await.unwrap().unwrap();
    assert_eq!((got.status, got.attempts), (OutboxStatus::Dead, 2));
    assert!(got.last_error.unwrap().len() <= 512);
    assert!(
        store
            .due_outbound(&t, "hook", NOW + 10_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.count_pending_outbound(&t, "hook").await.unwrap(), 0);
    assert_eq!(store.next_outbound_at(&t, "hook").await.unwrap(), None);
}

async fn inbound_ids_are_seen_once_and_cursors_persist(store: Arc<dyn Store>) {
    let t = default_tenant();
    assert!(store.record_inbound(&t, "hook", "ev-1", NOW).await.unwrap());
    assert!(
        !store
            .record_inbound(&t, "hook", "ev-1", NOW + 1)
            .await
            .unwrap()
    );
    assert!(
        store
            .record_inbound(&t, "other", "ev-1", NOW)
            .await
            .unwrap()
    );
    assert!(
        store
            .record_inbound(&t, "hook", "ev-2", NOW + 100)
            .await
            .unwrap()
    );
    assert_eq!(store.prune_inbound(&t, NOW + 50).await.unwrap(), 2);
    assert!(
        store
            .record_inbound(&t, "hook", "ev-1", NOW + 200)
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_inbound(&t, "hook", "ev-2", NOW + 200)
            .await
            .unwrap()
    );

    assert_eq!(store.get_channel_cursor(&t, "tg").await.unwrap(), None);
    store.set_channel_cursor(&t, "tg", "41", NOW).await.unwrap();
    store
        .set_channel_cursor(&t, "tg", "42", NOW + 1)
        .await
        .unwrap();
    assert_eq!(
        store.get_channel_cursor(&t, "tg").await.unwrap().as_deref(),
        Some("42")
    );
}

async fn channel_state_is_tenant_isolated(store: Arc<dyn Store>) {
    let (a, b) = two_tenants(store.as_ref()).await;
    let (m, _) = store
        .enqueue_outbound(&a, &out("k", "hi"), NOW)
        .await
        .unwrap();
    let (n, created) = store
        .enqueue_outbound(&b, &out("k", "hi"), NOW)
        .await
        .unwrap();
    assert!(created && n.id != m.id);
    assert!(store.get_outbound(&b, &m.id).await.unwrap().is_none());
    assert!(
        !store
            .mark_outbound_sent(&b, &m.id, None, NOW)
            .await
            .unwrap()
    );
    assert_eq!(
        store.due_outbound(&b, "hook", NOW, 10).await.unwrap().len(),
        1
    );
    assert!(store.record_inbound(&a, "hook", "ev", NOW).await.unwrap());
    assert!(store.record_inbound(&b, "hook", "ev", NOW).await.unwrap());
    store.set_channel_cursor(&a, "tg", "7", NOW).await.unwrap();
    assert_eq!(store.get_channel_cursor(&b, "tg").await.unwrap(), None);
}

async fn bad_channel_input_is_refused(store: Arc<dyn Store>) {
    let t = default_tenant();
    let mut bad = vec![out("", "x"), out("k", &"y".repeat(64 * 1024 + 1))];
    let mut m = out("k", "x");
    m.peer = "a\nb".to_owned();
    bad.push(m);
    m = out("k", "x");
    m.channel = "c".repeat(513);
    bad.push(m);
    for m in bad {
        let e = store.enqueue_outbound(&t, &m, NOW).await.unwrap_err();
        assert!(matches!(e, StoreError::Invalid(_)), "{e:?}");
    }
    assert!(
        store
            .due_outbound(&t, "hook", NOW, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let e = store.record_inbound(&t, "hook", "", NOW).await.unwrap_err();
    assert!(matches!(e, StoreError::Invalid(_)), "{e:?}");
    let e = store
        .set_channel_cursor(&t, "tg", "", NOW)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Invalid(_)), "{e:?}");
}
