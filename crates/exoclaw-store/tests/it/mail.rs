//! Team mailboxes and handoffs. Mail: a direct message reaches its
//! recipient, a broadcast every member but the sender; each reader takes
//! each message once, oldest first, in pages; concurrent takers for one
//! agent (also through two stores on one database) never share a message.
//! Handoffs: one per conversation, set, replaced, read, renewed, cleared
//! and listed most recently active first; they go with either agent and
//! with the user. Another tenant's or team's mail and handoffs are not
//! found. Refused input changes nothing.

use crate::harness::*;
use crate::links::agents;
use crate::teams::{core_team, team};
use exoclaw_core::store::teams::{Handoff, Mail};
use exoclaw_core::store::{Store, StoreError};
use exoclaw_core::{AgentId, TenantId, UserId};
use exoclaw_store::{PgStore, SqliteOptions, SqliteStore};
use std::collections::BTreeSet;
use std::sync::Arc;

contract!(store:
    direct_and_broadcast_mail_is_read_once,
    mail_is_taken_in_pages_oldest_first,
    mail_is_checked,
    concurrent_takers_never_share_a_message,
    mail_is_tenant_and_team_isolated,
    handoffs_set_replace_touch_clear_and_list,
    handoffs_go_with_their_agents_and_user,
    handoffs_are_tenant_isolated,
);
contract!(db: takers_on_two_stores_never_share_a_message);

fn id(agent: &str) -> AgentId {
    AgentId::new(agent)
}

async fn send(
    store: &dyn Store,
    t: &TenantId,
    from: &str,
    to: Option<&str>,
    text: &str,
    at: i64,
) -> Mail {
    let to = to.map(id);
    store
        .send_mail(t, "core", &id(from), to.as_ref(), text, at)
        .await
        .unwrap()
}

async fn take(store: &dyn Store, t: &TenantId, agent: &str, limit: u32) -> Vec<String> {
    store
        .take_unread(t, "core", &id(agent), limit)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.text)
        .collect()
}

async fn unread(store: &dyn Store, t: &TenantId, agent: &str) -> u64 {
    store.count_unread(t, "core", &id(agent)).await.unwrap()
}

async fn direct_and_broadcast_mail_is_read_once(store: Arc<dyn Store>) {
    let t = default_tenant();
    core_team(&*store, &t).await;
    let all = send(&*store, &t, "lead", None, "to all", 10).await;
    assert_eq!(
        (
            all.from.as_str(),
            all.to.as_ref(),
            all.team_id.as_str(),
            all.sent_at
        ),
        ("lead", None, "core", 10)
    );
    send(&*store, &t, "lead", Some("m1"), "to m1", 11).await;
    send(&*store, &t, "m2", Some("lead"), "to lead", 12).await;
    assert_eq!(
        [
            unread(&*store, &t, "lead").await,
            unread(&*store, &t, "m1").await,
            unread(&*store, &t, "m2").await
        ],
        [1, 2, 1],
        "counting reads nothing"
    );
    assert_eq!(unread(&*store, &t, "m1").await, 2);

    let got = store.take_unread(&t, "core", &id("m1"), 0).await.unwrap();
    assert_eq!(got[0], all, "the message as sent");
    assert_eq!(
        got.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
        ["to all", "to m1"]
    );
    assert!(take(&*store, &t, "m1", 0).await.is_empty(), "read once");
    assert_eq!(unread(&*store, &t, "m1").await, 0);
    // m1's reading is its own: m2 still has the broadcast (not m1's mail),
    // the lead m2's message (not its own broadcast).
    assert_eq!(take(&*store, &t, "m2", 0).await, ["to all"]);
    assert_eq!(take(&*store, &t, "lead", 0).await, ["to lead"]);
    // A broadcast reaches anyone but its sender, also an agent named later.
    assert_eq!(take(&*store, &t, "m3", 0).await, ["to all"]);
    // New mail after reading is unread again.
    send(&*store, &t, "m1", None, "m1 to all", 13).await;
    assert_eq!(take(&*store, &t, "m2", 0).await, ["m1 to all"]);
    assert_eq!(take(&*store, &t, "lead", 0).await, ["m1 to all"]);
    assert!(take(&*store, &t, "m1", 0).await.is_empty());
}

async fn mail_is_taken_in_pages_oldest_first(store: Arc<dyn Store>) {
    let t = default_tenant();
    core_team(&*store, &t).await;
    // Sent out of clock order, and three in one millisecond.
    for (text, at) in [
        ("c", 30),
        ("a", 10),
        ("d1", 40),
        ("d2", 40),
        ("d3", 40),
        ("b", 20),
    ] {
        send(&*store, &t, "lead", Some("m1"), text, at).await;
    }
    assert_eq!(take(&*store, &t, "m1", 2).await, ["a", "b"]);
    assert_eq!(unread(&*store, &t, "m1").await, 4);
    assert_eq!(take(&*store, &t, "m1", 3).await, ["c", "d1", "d2"]);
    assert_eq!(take(&*store, &t, "m1", 3).await, ["d3"]);
    // 0 is a page of 100, and at most 1,000 whatever is asked.
    for i in 0..101 {
        send(&*store, &t, "lead", Some("m2"), &format!("n{i}"), 100 + i).await;
    }
    assert_eq!(take(&*store, &t, "m2", 0).await.len(), 100);
    assert_eq!(take(&*store, &t, "m2", u32::MAX).await, ["n100"]);
}

async fn mail_is_checked(store: Arc<dyn Store>) {
    let t = default_tenant();
    core_team(&*store, &t).await;
    let long = "x".repeat(16 * 1024 + 1);
    let cases: [(&str, Option<&str>, &str, &str); 5] = [
        ("m1", Some("m1"), "hi", "cannot mail itself"),
        ("m1", None, " \n", "mail text"),
        ("m1", Some("m2"), &long, "mail text"),
        ("M1", None, "hi", "mail sender agent"),
        ("m1", Some("m 2"), "hi", "mail recipient agent"),
    ];
    for (from, to, text, what) in cases {
        let to = to.map(id);
        let err = store
            .send_mail(&t, "core", &id(from), to.as_ref(), text, 1)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Invalid(m) if m.contains(what)),
            "{what}: {err}"
        );
    }
    let longest = "é".repeat(8 * 1024);
    store
        .send_mail(&t, "core", &id("m1"), None, &longest, 1)
        .await
        .unwrap();
    for agent in ["lead", "m2"] {
        assert_eq!(unread(&*store, &t, agent).await, 1, "only the one allowed");
    }
    let err = store
        .send_mail(&t, "nope", &id("m1"), None, "hi", 1)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
    for err in [
        store
            .take_unread(&t, "nope", &id("m1"), 0)
            .await
            .unwrap_err(),
        store.count_unread(&t, "nope", &id("m1")).await.unwrap_err(),
    ] {
        assert!(matches!(err, StoreError::NotFound), "{err}");
    }
    let err = store
        .take_unread(&t, "core", &id("M1"), 0)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
}

const MESSAGES: usize = 60;
const TAKERS: usize = 12;

/// `TAKERS` tasks, spread over `stores`, take m1's mail in small pages at
/// once until none is left: every message is taken, by exactly one.
async fn take_race(stores: &[Arc<dyn Store>]) {
    let t = default_tenant();
    core_team(&*stores[0], &t).await;
    for i in 0..MESSAGES {
        let to = if i % 3 == 0 { None } else { Some("m1") };
        let at = i64::try_from(i).unwrap();
        send(&*stores[0], &t, "lead", to, &format!("msg {i}"), at).await;
    }
    let go = Arc::new(tokio::sync::Barrier::new(TAKERS));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..TAKERS {
        let (store, t, go) = (stores[i % stores.len()].clone(), t.clone(), go.clone());
        tasks.spawn(async move {
            go.wait().await;
            let mut got = Vec::new();
            loop {
                let page = store.take_unread(&t, "core", &id("m1"), 3).await.unwrap();
                if page.is_empty() && store.count_unread(&t, "core", &id("m1")).await.unwrap() == 0
                {
                    return got;
                }
                got.extend(page.into_iter().map(|m| m.id));
            }
        });
    }
    let mut taken = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        taken.extend(joined.unwrap());
    }
    let distinct: BTreeSet<_> = taken.iter().collect();
    assert_eq!(distinct.len(), taken.len(), "a message taken twice");
    assert_eq!(taken.len(), MESSAGES, "every message taken");
    // m2 reads the broadcasts independently.
    assert_eq!(take(&*stores[0], &t, "m2", 0).await.len(), MESSAGES / 3);
}

async fn concurrent_takers_never_share_a_message(store: Arc<dyn Store>) {
    take_race(&[store]).await;
}

async fn takers_on_two_stores_never_share_a_message(db: &TestDb) {
    if let Some(sqlite) = db.sqlite_store() {
        let second = SqliteStore::open(SqliteOptions::new(sqlite.path()))
            .await
            .unwrap();
        take_race(&[db.store.clone(), Arc::new(second.clone())]).await;
        second.close().await;
    } else {
        let options = db.pg_options().expect("a PostgreSQL test db");
        let second = PgStore::connect(options).await.unwrap();
        take_race(&[db.store.clone(), Arc::new(second.clone())]).await;
        second.close().await;
    }
}

async fn mail_is_tenant_and_team_isolated(store: Arc<dyn Store>) {
    let (a, b) = two_tenants(&*store).await;
    core_team(&*store, &a).await;
    core_team(&*store, &b).await;
    store
        .create_team(&a, &team("side", "m3", &["m1"]))
        .await
        .unwrap();
    send(&*store, &a, "lead", Some("m1"), "a core", 1).await;
    store
        .send_mail(&a, "side", &id("m3"), None, "a side", 2)
        .await
        .unwrap();
    send(&*store, &b, "lead", Some("m1"), "b core", 3).await;
    assert_eq!(take(&*store, &b, "m1", 0).await, ["b core"]);
    assert_eq!(take(&*store, &a, "m1", 0).await, ["a core"]);
    let side = store.take_unread(&a, "side", &id("m1"), 0).await.unwrap();
    assert_eq!(side.len(), 1);
    assert_eq!(
        (side[0].text.as_str(), side[0].team_id.as_str()),
        ("a side", "side")
    );
    let err = store
        .count_unread(&tid("nope"), "core", &id("m1"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
}

fn handoff(peer: &str, user: &str, from: &str, to: &str, at: i64) -> Handoff {
    Handoff {
        tenant_id: default_tenant(),
        channel: "telegram".to_owned(),
        peer: peer.to_owned(),
        user_id: UserId::new(user),
        from_agent: from.into(),
        to_agent: to.into(),
        reason: "needs billing".to_owned(),
        created_at: at,
        last_active_at: at,
    }
}

async fn get(store: &dyn Store, h: &Handoff) -> Option<Handoff> {
    store
        .get_handoff(&h.tenant_id, &h.channel, &h.peer, &h.user_id)
        .await
        .unwrap()
}

async fn handoffs_set_replace_touch_clear_and_list(store: Arc<dyn Store>) {
    let t = default_tenant();
    agents(&*store, &t, &["front", "billing", "legal"]).await;
    let first = handoff("p1", "alice", "front", "billing", 100);
    store.set_handoff(&first).await.unwrap();
    assert_eq!(get(&*store, &first).await, Some(first.clone()));
    // Another conversation differs by any of channel, peer and user.
    let other_peer = handoff("p2", "alice", "front", "legal", 200);
    let other_user = handoff("p1", "bob", "front", "legal", 150);
    let other_channel = Handoff {
        channel: "ws".to_owned(),
        ..handoff("p1", "alice", "front", "legal", 50)
    };
    for h in [&other_peer, &other_user, &other_channel] {
        store.set_handoff(h).await.unwrap();
    }
    assert_eq!(get(&*store, &first).await, Some(first.clone()));
    // Setting again replaces: still one per conversation.
    let replaced = Handoff {
        reason: String::new(),
        ..handoff("p1", "alice", "billing", "legal", 300)
    };
    store.set_handoff(&replaced).await.unwrap();
    assert_eq!(get(&*store, &first).await, Some(replaced.clone()));
    store
        .touch_handoff(&t, "telegram", "p1", &UserId::new("alice"), 400)
        .await
        .unwrap();
    let touched = Handoff {
        last_active_at: 400,
        ..replaced.clone()
    };
    assert_eq!(get(&*store, &first).await, Some(touched.clone()));
    assert_eq!(
        store.list_handoffs(&t).await.unwrap(),
        [
            touched.clone(),
            other_peer.clone(),
            other_user.clone(),
            other_channel.clone()
        ],
        "most recently active first"
    );

    // Refused: to itself, unknown agents, names and sizes.
    let cases = [
        (handoff("p9", "u", "front", "front", 1), "itself"),
        (handoff("", "u", "front", "legal", 1), "handoff peer"),
        (handoff("p9", "", "front", "legal", 1), "handoff user id"),
        (
            Handoff {
                channel: String::new(),
                ..handoff("p9", "u", "front", "legal", 1)
            },
            "handoff channel",
        ),
        (
            Handoff {
                reason: "r".repeat(16 * 1024 + 1),
                ..handoff("p9", "u", "front", "legal", 1)
            },
            "handoff reason",
        ),
        (
            handoff("p9", "u", "Front", "legal", 1),
            "handoff from agent",
        ),
    ];
    for (bad, what) in cases {
        let err = store.set_handoff(&bad).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Invalid(m) if m.contains(what)),
            "{what}: {err}"
        );
    }
    for bad in [
        handoff("p9", "u", "front", "ghost", 1),
        handoff("p9", "u", "ghost", "front", 1),
        Handoff {
            tenant_id: tid("nope"),
            ..handoff("p9", "u", "front", "legal", 1)
        },
    ] {
        let err = store.set_handoff(&bad).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err}");
    }
    assert_eq!(store.list_handoffs(&t).await.unwrap().len(), 4);

    assert!(
        store
            .clear_handoff(&t, "telegram", "p1", &UserId::new("alice"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .clear_handoff(&t, "telegram", "p1", &UserId::new("alice"))
            .await
            .unwrap()
    );
    assert_eq!(get(&*store, &first).await, None);
    let err = store
        .touch_handoff(&t, "telegram", "p1", &UserId::new("alice"), 500)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
    assert_eq!(
        store.list_handoffs(&t).await.unwrap(),
        [other_peer, other_user, other_channel]
    );
}

async fn handoffs_go_with_their_agents_and_user(store: Arc<dyn Store>) {
    let t = default_tenant();
    agents(&*store, &t, &["front", "billing", "legal"]).await;
    let carol = store.create_user(&t, &new_user("carol")).await.unwrap();
    let to_billing = handoff("p1", "alice", "front", "billing", 1);
    let from_billing = handoff("p2", "alice", "billing", "legal", 2);
    let kept = handoff("p3", "alice", "front", "legal", 3);
    let carols = handoff("p4", carol.id.as_str(), "front", "legal", 4);
    for h in [&to_billing, &from_billing, &kept, &carols] {
        store.set_handoff(h).await.unwrap();
    }
    store.delete_agent(&t, &id("billing")).await.unwrap();
    assert_eq!(
        store.list_handoffs(&t).await.unwrap(),
        [carols, kept.clone()]
    );
    store.delete_user(&t, &carol.id).await.unwrap();
    assert_eq!(store.list_handoffs(&t).await.unwrap(), [kept]);
}

async fn handoffs_are_tenant_isolated(store: Arc<dyn Store>) {
    let (a, b) = two_tenants(&*store).await;
    agents(&*store, &a, &["front", "billing"]).await;
    agents(&*store, &b, &["front", "legal"]).await;
    let in_a = handoff("p1", "alice", "front", "billing", 1);
    store.set_handoff(&in_a).await.unwrap();
    // b has no billing agent; b's own handoff of the same conversation is
    // b's.
    let err = store
        .set_handoff(&Handoff {
            tenant_id: b.clone(),
            ..in_a.clone()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
    let in_b = Handoff {
        tenant_id: b.clone(),
        ..handoff("p1", "alice", "front", "legal", 2)
    };
    store.set_handoff(&in_b).await.unwrap();
    let alice = UserId::new("alice");
    assert_eq!(get(&*store, &in_a).await, Some(in_a.clone()));
    assert_eq!(get(&*store, &in_b).await, Some(in_b.clone()));
    store
        .touch_handoff(&b, "telegram", "p1", &alice, 99)
        .await
        .unwrap();
    assert!(
        store
            .clear_handoff(&b, "telegram", "p1", &alice)
            .await
            .unwrap()
    );
    assert_eq!(
        get(&*store, &in_a).await,
        Some(in_a.clone()),
        "a's untouched"
    );
    assert_eq!(store.list_handoffs(&a).await.unwrap(), [in_a]);
    assert!(store.list_handoffs(&b).await.unwrap().is_empty());
    let err = store
        .touch_handoff(&b, "telegram", "p1", &alice, 100)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
}
