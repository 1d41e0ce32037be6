//! Tests of [`super`]: writes queued together (one group, one transaction)
//! each get their own statement's outcome, and a group that fails is
//! replayed write by write.

use std::sync::atomic::Ordering;

use exoclaw_core::TenantId;
use exoclaw_core::model::{NewUser, Role};
use exoclaw_core::store::channel::NewOutbound;
use exoclaw_core::store::{ChannelStore, PairingStore, SchemaStore, StoreError, UserStore};
use futures_util::future::join_all;

use crate::SqliteOptions;
use crate::sqlite::SqliteStore;

async fn store(dir: &tempfile::TempDir) -> SqliteStore {
    let store = SqliteStore::open(SqliteOptions::new(dir.path().join("db.sqlite")))
        .await
        .unwrap();
    store
        .migrate_to(crate::migrate::SQLITE.latest())
        .await
        .unwrap();
    store
}

fn tenant() -> TenantId {
    TenantId::new("default")
}

fn outbound(key: &str, text: &str) -> NewOutbound {
    NewOutbound {
        channel: "hook".to_owned(),
        peer: "p".to_owned(),
        text: text.to_owned(),
        idempotency_key: key.to_owned(),
        file: None,
    }
}

fn user(name: &str) -> NewUser {
    NewUser {
        name: name.to_owned(),
        role: Role::User,
    }
}

#[tokio::test]
async fn writes_queued_together_each_get_their_own_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    let t = tenant();
    let groups = s.grouped.groups.load(Ordering::Relaxed);

    // The same inbound id twice and another: the first of the pair is new.
    let seen = join_all([
        s.record_inbound(&t, "hook", "e1", 1),
        s.record_inbound(&t, "hook", "e1", 2),
        s.record_inbound(&t, "hook", "e2", 3),
    ])
    .await;
    let seen: Vec<bool> = seen.into_iter().map(Result::unwrap).collect();
    assert_eq!(seen, [true, false, true]);
    assert!(!s.record_inbound(&t, "hook", "e2", 4).await.unwrap());
    assert!(
        s.grouped.groups.load(Ordering::Relaxed) > groups,
        "the three were not written as a group"
    );

    // Two users of one name: one is created, the other conflicts.
    let (one, two) = (user("telegram:1"), user("telegram:2"));
    let (a, b, c) = tokio::join!(
        s.create_user(&t, &one),
        s.create_user(&t, &one),
        s.create_user(&t, &two),
    );
    let created = a.unwrap();
    assert!(
        matches!(b, Err(StoreError::Conflict(ref m)) if m.contains("telegram:1")),
        "{b:?}"
    );
    let other = c.unwrap();
    assert_eq!(
        s.find_user_by_name(&t, "telegram:1")
            .await
            .unwrap()
            .unwrap()
            .id,
        created.id
    );

    // One idempotency key queued twice at once: one row, the second told so.
    let (m1, m1_again, m2) = (
        outbound("k1", "one"),
        outbound("k1", "one again"),
        outbound("k2", "two"),
    );
    let (first, again, third) = tokio::join!(
        s.enqueue_outbound(&t, &m1, 10),
        s.enqueue_outbound(&t, &m1_again, 11),
        s.enqueue_outbound(&t, &m2, 12),
    );
    let (first, inserted) = first.unwrap();
    assert!(inserted);
    assert_eq!(first.text, "one");
    let (again, inserted) = again.unwrap();
    assert!(!inserted);
    assert_eq!(again.id, first.id);
    assert_eq!(again.text, "one");
    let (third, _) = third.unwrap();
    assert_eq!(s.count_pending_outbound(&t, "hook").await.unwrap(), 2);

    // Marked sent twice at once and an unknown id: only the first mark counts.
    let marks = join_all([
        s.mark_outbound_sent(&t, &first.id, Some("m-1"), 20),
        s.mark_outbound_sent(&t, &first.id, Some("m-2"), 21),
        s.mark_outbound_sent(&t, "no-such-id", None, 22),
        s.mark_outbound_sent(&t, &third.id, None, 23),
    ])
    .await;
    let marks: Vec<bool> = marks.into_iter().map(Result::unwrap).collect();
    assert_eq!(marks, [true, false, false, true]);
    let sent = s.get_outbound(&t, &first.id).await.unwrap().unwrap();
    assert_eq!(sent.platform_id.as_deref(), Some("m-1"));
    assert_eq!(sent.sent_at, Some(20));
    assert_eq!(s.count_pending_outbound(&t, "hook").await.unwrap(), 0);

    // Two senders mapped at once, one to each user; a second mapping of a
    // mapped sender keeps the first.
    let (x, y) = tokio::join!(
        s.map_channel_sender(&t, "telegram", "1", &created.id, 30),
        s.map_channel_sender(&t, "telegram", "2", &other.id, 31),
    );
    assert_eq!(x.unwrap().user_id, created.id);
    assert_eq!(y.unwrap().user_id, other.id);
    let kept = s
        .map_channel_sender(&t, "telegram", "1", &other.id, 32)
        .await
        .unwrap();
    assert_eq!(kept.user_id, created.id);
}

#[tokio::test]
async fn a_failing_group_is_written_again_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    let t = tenant();
    let u = s.create_user(&t, &user("discord:9")).await.unwrap();
    // A mapping to a user that does not exist breaks its group's
    // transaction (a foreign key); the others in the group still land.
    let missing = exoclaw_core::UserId::from("no-such-user".to_owned());
    let hello = outbound("k", "hello");
    let (bad, good, seen, queued) = tokio::join!(
        s.map_channel_sender(&t, "discord", "8", &missing, 1),
        s.map_channel_sender(&t, "discord", "9", &u.id, 2),
        s.record_inbound(&t, "discord", "d1", 3),
        s.enqueue_outbound(&t, &hello, 4),
    );
    assert!(matches!(bad, Err(StoreError::NotFound)), "{bad:?}");
    assert_eq!(good.unwrap().user_id, u.id);
    assert!(seen.unwrap());
    assert!(queued.unwrap().1);
    assert!(
        s.get_channel_sender(&t, "discord", "8")
            .await
            .unwrap()
            .is_none()
    );
    assert!(!s.record_inbound(&t, "discord", "d1", 5).await.unwrap());
    assert_eq!(s.count_pending_outbound(&t, "hook").await.unwrap(), 1);
}

#[tokio::test]
async fn many_callers_at_once_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    let t = tenant();
    // 200 distinct ids and 50 repeats of one, from as many callers at once.
    let ids: Vec<String> = (0..200).map(|i| format!("id-{i}")).collect();
    let mut calls = Vec::new();
    for (at, id) in (0..).zip(&ids) {
        calls.push(s.record_inbound(&t, "hook", id, at));
    }
    for i in 0..50 {
        calls.push(s.record_inbound(&t, "hook", "same", 1000 + i));
    }
    let seen: Vec<bool> = join_all(calls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(seen[..200].iter().all(|new| *new));
    assert_eq!(seen[200..].iter().filter(|new| **new).count(), 1);
}

#[tokio::test]
async fn text_goes_through_the_json_array_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    let t = tenant();
    let texts = [
        "plain",
        "quotes \" and \\ backslashes, a tab\tand a newline\n",
        "non-ASCII: héllo, 日本語, 🙂 and a NUL \u{0} inside",
        "[\"looks\", \"like\", \"json\"]",
        "",
    ];
    let messages: Vec<NewOutbound> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| outbound(&format!("key-{i}-\u{e9}\"'"), text))
        .collect();
    let queued = join_all(messages.iter().map(|m| s.enqueue_outbound(&t, m, 1))).await;
    for (q, text) in queued.into_iter().zip(texts) {
        let (q, inserted) = q.unwrap();
        assert!(inserted);
        assert_eq!(q.text, text, "as returned");
        let stored = s.get_outbound(&t, &q.id).await.unwrap().unwrap();
        assert_eq!(stored.text, text, "as stored");
        assert_eq!(stored.idempotency_key, q.idempotency_key);
    }
    let ids = ["é\"x", "id with spaces", "🙂"];
    let seen = join_all(ids.iter().map(|id| s.record_inbound(&t, "hook", id, 2))).await;
    assert!(seen.into_iter().all(|new| new.unwrap()));
    for id in ids {
        assert!(!s.record_inbound(&t, "hook", id, 3).await.unwrap(), "{id}");
    }
}
