//! Sessions and messages: race-safe creation, atomic sequence numbers under
//! concurrency, paging, ordering, tenant isolation, and a failed append that
//! leaves nothing behind (no row, no open transaction on the connection).

use crate::harness::*;
use exoclaw_core::model::{NewMessage, SessionFilter};
use exoclaw_core::store::{Store, StoreError};
use exoclaw_core::{AgentId, SessionId, UserId};
use std::collections::HashSet;
use std::sync::Arc;

contract!(store:
    get_or_create_returns_one_session_per_scope,
    sessions_need_an_existing_agent,
    concurrent_get_or_create_makes_one_session,
    concurrent_appends_get_seqs_1_to_50,
    concurrent_appends_to_a_missing_session_fail_alone,
    messages_round_trip_and_bump_the_session,
    list_messages_pages,
    list_window_starts_after_the_latest_summary,
    list_sessions_newest_first_with_filters,
    delete_session_removes_its_messages,
    sessions_are_tenant_isolated,
);
contract!(db: a_failed_append_leaves_no_transaction_behind);

async fn get_or_create_returns_one_session_per_scope(store: Arc<dyn Store>) {
    let t = default_tenant();
    store.create_agent(&t, &new_agent("a1")).await.unwrap();
    let first = store
        .get_or_create_session(&t, &scope("a1", "u1", "chat-1"))
        .await
        .unwrap();
    assert_eq!(first.id.as_str().len(), 32);
    assert_eq!(
        (
            first.agent_id.as_str(),
            first.user_id.as_str(),
            first.channel.as_str(),
            first.peer.as_str()
        ),
        ("a1", "u1", "api", "chat-1")
    );
    assert_eq!(first.title, None);
    let again = store
        .get_or_create_session(&t, &scope("a1", "u1", "chat-1"))
        .await
        .unwrap();
    assert_eq!(again, first);
    let other_peer = store
        .get_or_create_session(&t, &scope("a1", "u1", "chat-2"))
        .await
        .unwrap();
    let other_user = store
        .get_or_create_session(&t, &scope("a1", "u2", "chat-1"))
        .await
        .unwrap();
    let mut other_channel = scope("a1", "u1", "chat-1");
    other_channel.channel = "telegram".into();
    let other_channel = store
        .get_or_create_session(&t, &other_channel)
        .await
        .unwrap();
    let ids: HashSet<_> = [&first, &other_peer, &other_user, &other_channel]
        .map(|s| s.id.clone())
        .into();
    assert_eq!(ids.len(), 4);
    assert_eq!(store.get_session(&t, &first.id).await.unwrap(), Some(first));
}

async fn sessions_need_an_existing_agent(store: Arc<dyn Store>) {
    let err = store
        .get_or_create_session(&default_tenant(), &scope("no-such-agent", "u", "p"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
}

async fn concurrent_get_or_create_makes_one_session(store: Arc<dyn Store>) {
    let t = default_tenant();
    store.create_agent(&t, &new_agent("a1")).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let store = store.clone();
        let t = t.clone();
        tasks.spawn(async move {
            store
                .get_or_create_session(&t, &scope("a1", "u", "p"))
                .await
        });
    }
    let mut ids = HashSet::new();
    while let Some(joined) = tasks.join_next().await {
        ids.insert(joined.unwrap().unwrap().id);
    }
    assert_eq!(ids.len(), 1, "all 16 callers got the same session");
    assert_eq!(
        store
            .list_sessions(&t, &SessionFilter::default())
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn concurrent_appends_get_seqs_1_to_50(store: Arc<dyn Store>) {
    let t = default_tenant();
    store.create_agent(&t, &new_agent("a1")).await.unwrap();
    let session = store
        .get_or_create_session(&t, &scope("a1", "u", "p"))
        .await
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let store = store.clone();
        let t = t.clone();
        let id = session.id.clone();
        tasks.spawn(async move {
            store
                .append_message(&t, &id, &text_message(&i.to_string()))
                .await
        });
    }
    let mut seqs = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        seqs.push(joined.unwrap().unwrap().seq);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=50).collect::<Vec<i64>>());
    let stored: Vec<i64> = store
        .list_messages(&t, &session.id, 0, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(stored, (1..=50).collect::<Vec<i64>>());
}

/// Appends arriving together (SQLite commits them in one batch): the ones
/// for a session that does not exist get `NotFound`, the others their seqs,
/// in order, as if each had been alone.
async fn concurrent_appends_to_a_missing_session_fail_alone(store: Arc<dyn Store>) {
    let t = default_tenant();
    store.create_agent(&t, &new_agent("a1")).await.unwrap();
    let session = store
        .get_or_create_session(&t, &scope("a1", "u", "p"))
        .await
        .unwrap();
    let missing = SessionId::from("no-such-session".to_owned());
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let store = store.clone();
        let t = t.clone();
        let id = if i % 4 == 3 {
            missing.clone()
        } else {
            session.id.clone()
        };
        tasks.spawn(async move {
            let result = store
                .append_message(&t, &id, &text_message(&i.to_string()))
                .await;
            (i, result)
        });
    }
    let mut seqs = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined.unwrap() {
            (i, Ok(m)) if i % 4 != 3 => seqs.push(m.seq),
            (i, Err(StoreError::NotFound)) if i % 4 == 3 => {}
            (i, other) => panic!("append {i}: {other:?}"),
        }
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=30).collect::<Vec<i64>>());
    let stored = store.list_messages(&t, &session.id, 0, 0).await.unwrap();
    assert_eq!(stored.len(), 30);
}

async fn messages_round_trip_and_bump_the_session(store: Arc<dyn Store>) {
    let t = default_tenant();
    store.create_agent(&t, &new_agent("a1")).await.unwrap();
    let session = store
        .get_or_create_session(&t, &scope("a1", "u", "p"))
        .await
        .unwrap();
    tick().await;
    let new = NewMessage {
        role: "assistant".into(),
        content: serde_json::json!([{"type": "text", "text": "héllo \"quoted\" \u{1F600}"}, {"type": "tool_use", "input": {"n": 1.5}}]),
        meta: serde_json::json!({"partial": true, "tokens": {"in": 10, "out": 20}}),
    };
    let appended = store.append_message(&t, &session.id, &new).await.unwrap();
    assert_eq!(appended.seq, 1);
    assert_eq!(appended.id.as_str().len(), 32);
    assert_eq!(
        (appended.content.clone(), appended.meta.clone()),
        (new.content.clone(), new.meta.clone())
    );
    let listed = store.list_messages(&t, &session.id, 0, 0).await.unwrap();
    assert_eq!(listed, vec![appended.clone()]);
    let bumped = store.get_session(&t, &session.id).await.unwrap().unwrap();
    assert_eq!(bumped.updated_at, appended.created_at);
    assert!(bumped.updated_at > session.updated_at);
    assert_eq!(bumped.created_at, session.created_at);
}

async fn list_messages_pages(store: Arc<dyn Store>) {
    let t = default_tenant();
    store.create_agent(&t, &new_agent("a1")).await.unwrap();
    let s = store
        .get_or_create_session(&t, &scope("a1", "u", "p"))
        .await
        .unwrap();
    for i in 1..=10 {
        store
            .append_message(&t, &s.id, &text_message(&format!("m{i}")))
            .await
            .unwrap();
    }
    let seqs = |after, limit| {
        let store = store.clone();
        let (t, id) = (t.clone(), s.id.clone());
        async move {
            store
                .list_messages(&t, &id, after, limit)
                .await
                .unwrap()
                .into_iter()
                .map(|m| m.seq)
                .collect::<Vec<i64>>()
        }
    };
    assert_eq!(seqs(0, 0).await, (1..=10).collect::<Vec<_>>());
    assert_eq!(seqs(0, 3).await, [1, 2, 3]);
    assert_eq!(seqs(3, 3).await, [4, 5, 6]);
    assert_eq!(seqs(9, 5).await, [10]);
    assert!(seqs(10, 0).await.is_empty());
    let texts: Vec<_> = store
        .list_messages(&t, &s.id, 4, 2)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.content["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(texts, ["m5", "m6"]);
    let err = store
        .list_messages(&t, &SessionId::new("missing"), 0, 0)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
}

async fn list_window_starts_after_the_latest_summary(store: Arc<dyn Store>) {
    let t = default_tenant();
    store.create_agent(&t, &new_agent("a1")).await.unwrap();
    let s = store
        .get_or_create_session(&t, &scope("a1", "u", "p"))
        .await
        .unwrap();
    let window = |store: Arc<dyn Store>, t: exoclaw_core::TenantId, id: SessionId| async move {
        store
            .list_window(&t, &id)
            .await
            .unwrap()
            .into_iter()
            .map(|m| (m.seq, m.role))
            .collect::<Vec<_>>()
    };
    let append = |role: &'static str, meta: serde_json::Value| {
        let (store, t, id) = (store.clone(), t.clone(), s.id.clone());
        async move {
            let m = NewMessage {
                role: role.into(),
                content: serde_json::json!([{"type": "text", "text": role}]),
                meta,
            };
            store.append_message(&t, &id, &m).await.unwrap().seq
        }
    };
    // No summary: the whole session (and an empty one is empty, not missing).
    assert!(
        window(store.clone(), t.clone(), s.id.clone())
            .await
            .is_empty()
    );
    for _ in 0..4 {
        append("user", serde_json::json!({})).await;
    }
    assert_eq!(
        window(store.clone(), t.clone(), s.id.clone()).await.len(),
        4
    );
    // A summary of 1..=3 stored at 5: the window is 4 and the summary on.
    append("summary", serde_json::json!({"compacted_through": 3})).await;
    append("user", serde_json::json!({})).await;
    let seqs: Vec<i64> = window(store.clone(), t.clone(), s.id.clone())
        .await
        .into_iter()
        .map(|(seq, _)| seq)
        .collect();
    assert_eq!(seqs, [4, 5, 6]);
    // A later summary (of 1..=5) wins; the older one stays out of the way.
    append("summary", serde_json::json!({"compacted_through": 5})).await;
    let got = window(store.clone(), t.clone(), s.id.clone()).await;
    assert_eq!(
        got,
        [(6, "user".to_owned()), (7, "summary".to_owned())],
        "{got:?}"
    );
    // Another tenant's session and a missing one read as not found.
    let err = store
        .list_window(&two_tenants(store.as_ref()).await.1, &s.id)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
    let err = store
        .list_window(&t, &SessionId::new("missing"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
}

async fn list_sessions_newest_first_with_filters(store: Arc<dyn Store>) {
    let t = default_tenant();
    store.create_agent(&t, &new_agent("a1")).await.unwrap();
    store.create_agent(&t, &new_agent("a2")).await.unwrap();
    let s1 = store
        .get_or_create_session(&t, &scope("a1", "u1", "p"))
        .await
        .unwrap();
    tick().await;
    let s2 = store
        .get_or_create_session(&t, &scope("a2", "u1", "p"))
        .await
        .unwrap();
    tick().await;
    let s3 = store
        .get_or_create_session(&t, &scope("a1", "u2", "p"))
        .await
        .unwrap();
    tick().await;
    store
        .append_message(&t, &s1.id, &text_message("bump"))
        .await
        .unwrap();
    let ids =
        |v: Vec<exoclaw_core::model::Session>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();

    let all = store
        .list_sessions(&t, &SessionFilter::default())
        .await
        .unwrap();
    assert_eq!(ids(all), [s1.id.clone(), s3.id.clone(), s2.id.clone()]);
    let by_agent = SessionFilter {
        agent_id: Some(AgentId::new("a1")),
        user_id: None,
        ..Default::default()
    };
    assert_eq!(
        ids(store.list_sessions(&t, &by_agent).await.unwrap()),
        [s1.id.clone(), s3.id.clone()]
    );
    let by_user = SessionFilter {
        agent_id: None,
        user_id: Some(UserId::new("u1")),
        ..Default::default()
    };
    assert_eq!(
        ids(store.list_sessions(&t, &by_user).await.unwrap()),
        [s1.id.clone(), s2.id.clone()]
    );
    let both = SessionFilter {
        agent_id: Some(AgentId::new("a2")),
        user_id: Some(UserId::new("u1")),
        ..Default::default()
    };
    assert_eq!(
        ids(store.list_sessions(&t, &both).await.unwrap()),
        vec![s2.id.clone()]
    );
    let none = SessionFilter {
        agent_id: Some(AgentId::new("a2")),
        user_id: Some(UserId::new("u2")),
        ..Default::default()
    };
    assert!(store.list_sessions(&t, &none).await.unwrap().is_empty());
    // Pages: newest first, each after the previous page's last.
    let first = SessionFilter {
        limit: Some(2),
        ..Default::default()
    };
    let page = store.list_sessions(&t, &first).await.unwrap();
    assert_eq!(ids(page.clone()), [s1.id.clone(), s3.id.clone()]);
    let last = page.last().unwrap();
    let next = SessionFilter {
        limit: Some(2),
        after: Some((last.updated_at, last.id.clone())),
        ..Default::default()
    };
    assert_eq!(
        ids(store.list_sessions(&t, &next).await.unwrap()),
        vec![s2.id.clone()]
    );
    // Text: in the peer (any case); wildcards are literal.
    let text = |q: &str| SessionFilter {
        text: Some(q.to_owned()),
        ..Default::default()
    };
    assert_eq!(store.list_sessions(&t, &text("P")).await.unwrap().len(), 3);
    assert!(
        store
            .list_sessions(&t, &text("q"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_sessions(&t, &text("%"))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn delete_session_removes_its_messages(store: Arc<dyn Store>) {
    let t = default_tenant();
    store.create_agent(&t, &new_agent("a1")).await.unwrap();
    let s = store
        .get_or_create_session(&t, &scope("a1", "u", "p"))
        .await
        .unwrap();
    store
        .append_message(&t, &s.id, &text_message("x"))
        .await
        .unwrap();
    store.delete_session(&t, &s.id).await.unwrap();
    assert_eq!(store.get_session(&t, &s.id).await.unwrap(), None);
    let err = store.delete_session(&t, &s.id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
    let err = store
        .append_message(&t, &s.id, &text_message("y"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
    // the same scope starts over at seq 1
    let fresh = store
        .get_or_create_session(&t, &scope("a1", "u", "p"))
        .await
        .unwrap();
    assert_ne!(fresh.id, s.id);
    assert_eq!(
        store
            .append_message(&t, &fresh.id, &text_message("z"))
            .await
            .unwrap()
            .seq,
        1
    );
}

async fn sessions_are_tenant_isolated(store: Arc<dyn Store>) {
    let (a, b) = two_tenants(&*store).await;
    store.create_agent(&a, &new_agent("a1")).await.unwrap();
    let s = store
        .get_or_create_session(&a, &scope("a1", "u", "p"))
        .await
        .unwrap();
    store
        .append_message(&a, &s.id, &text_message("secret talk"))
        .await
        .unwrap();

    assert_eq!(store.get_session(&b, &s.id).await.unwrap(), None);
    assert!(
        store
            .list_sessions(&b, &SessionFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    let err = store.list_messages(&b, &s.id, 0, 0).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
    let err = store
        .append_message(&b, &s.id, &text_message("intrude"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
    let err = store.delete_session(&b, &s.id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
    // tenant b cannot open a session on tenant a's agent
    let err = store
        .get_or_create_session(&b, &scope("a1", "u", "p"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");

    assert_eq!(store.list_messages(&a, &s.id, 0, 0).await.unwrap().len(), 1);
    assert!(store.get_session(&a, &s.id).await.unwrap().is_some());
}

async fn a_failed_append_leaves_no_transaction_behind(db: &TestDb) {
    let store = db.store.clone();
    let t = default_tenant();
    store.create_agent(&t, &new_agent("a1")).await.unwrap();
    let session = store
        .get_or_create_session(&t, &scope("a1", "u", "p"))
        .await
        .unwrap();
    store
        .append_message(&t, &session.id, &text_message("first"))
        .await
        .unwrap();
    // A trigger fails the insert of role `boom` half-way through the append.
    db.raw
        .exec(
            "SELECT 1",
            "CREATE FUNCTION boom() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'boom'; END $$ \
             LANGUAGE plpgsql",
        )
        .await
        .unwrap();
    db.raw
        .exec(
            "CREATE TRIGGER boom BEFORE INSERT ON messages WHEN NEW.role = 'boom' \
             BEGIN SELECT RAISE(ABORT, 'boom'); END",
            "CREATE TRIGGER boom BEFORE INSERT ON messages FOR EACH ROW \
             WHEN (NEW.role = 'boom') EXECUTE FUNCTION boom()",
        )
        .await
        .unwrap();
    let mut bad = text_message("never stored");
    bad.role = "boom".to_owned();
    for _ in 0..3 {
        let e = store
            .append_message(&t, &session.id, &bad)
            .await
            .unwrap_err();
        assert!(!matches!(e, StoreError::NotFound), "{e}");
    }
    // Nothing half-done stays open: another connection writes at once, and
    // the next append follows the first.
    tokio::time::timeout(
        std::time::Duration::from_secs(2),
        db.raw.exec_sql("UPDATE tenants SET name = name"),
    )
    .await
    .expect("the write lock is free")
    .unwrap();
    let next = store
        .append_message(&t, &session.id, &text_message("second"))
        .await
        .unwrap();
    assert_eq!(next.seq, 2);
    let texts: Vec<i64> = store
        .list_messages(&t, &session.id, 0, 0)
        .await
        .unwrap()
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(texts, vec![1, 2]);
}
