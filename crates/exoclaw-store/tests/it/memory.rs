//! Long-term memory: a user's memories are never returned to another user
//! and shared ones are seen by every user of the agent; exact and near
//! duplicates merge; retention by age and by count per namespace; full-text
//! ranking and its fusion with vector ranking; tenants are separate;
//! refused input (empty, oversized, importance out of range) writes
//! nothing.

use crate::harness::*;
use exoclaw_core::store::memory::{
    Embedding, MAX_CONTENT_BYTES, MemoryFilter, MemoryQuery, NewMemory, Retention,
};
use exoclaw_core::store::{Store, StoreError};
use exoclaw_core::{AgentId, UserId};
use std::sync::Arc;

contract!(store:
    a_users_memories_are_theirs_and_shared_ones_everyones,
    duplicates_merge_exact_and_near,
    retention_by_age_and_count_per_namespace,
    hybrid_ranking_fuses_text_and_vectors,
    memories_are_tenant_isolated,
    bad_memories_are_refused,
    reembedding_finds_and_updates_stale_vectors,
);

const NOW: i64 = 1_800_000_000_000;

pub(super) fn mem(agent: &str, user: Option<&str>, content: &str) -> NewMemory {
    NewMemory {
        agent_id: AgentId::new(agent),
        user_id: user.map(UserId::new),
        content: content.to_owned(),
        untrusted: false,
        importance: 5,
        embedding: None,
    }
}

pub(super) fn query(agent: &str, user: Option<&str>, text: &str) -> MemoryQuery {
    MemoryQuery {
        agent: AgentId::new(agent),
        user: user.map(UserId::new),
        text: text.to_owned(),
        embedding: None,
        limit: 10,
    }
}

/// The contents of what `q` finds, best first.
pub(super) async fn contents(store: &dyn Store, q: &MemoryQuery) -> Vec<String> {
    store
        .search_memories(&default_tenant(), q)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.memory.content)
        .collect()
}

async fn a_users_memories_are_theirs_and_shared_ones_everyones(store: Arc<dyn Store>) {
    let t = default_tenant();
    let none = Retention::default();
    let alice = store
        .save_memory(
            &t,
            &mem("a1", Some("alice"), "alice owns a red bicycle"),
            &none,
            NOW,
        )
        .await
        .unwrap();
    assert!(!alice.merged && !alice.memory.is_shared());
    store
        .save_memory(
            &t,
            &mem("a1", Some("bob"), "bob owns a blue bicycle"),
            &none,
            NOW,
        )
        .await
        .unwrap();
    let shared = store
        .save_memory(
            &t,
            &mem("a1", None, "the shop repairs every bicycle on mondays"),
            &none,
            NOW,
        )
        .await
        .unwrap();
    assert!(shared.memory.is_shared());
    store
        .save_memory(
            &t,
            &mem("a2", Some("alice"), "alice rides a bicycle for agent two"),
            &none,
            NOW,
        )
        .await
        .unwrap();

    let seen = contents(store.as_ref(), &query("a1", Some("alice"), "bicycle")).await;
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen.iter().any(|c| c.starts_with("alice owns")));
    assert!(seen.iter().any(|c| c.starts_with("the shop")));
    let seen = contents(store.as_ref(), &query("a1", Some("bob"), "bicycle")).await;
    assert!(seen.iter().all(|c| !c.contains("alice")), "{seen:?}");
    let seen = contents(store.as_ref(), &query("a1", None, "bicycle")).await;
    assert_eq!(seen, ["the shop repairs every bicycle on mondays"]);

    let listed = store
        .list_memories(
            &t,
            &MemoryFilter {
                agent: Some(AgentId::new("a1")),
                user: Some(UserId::new("bob")),
                limit: 0,
            },
        )
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
    let all = store
        .list_memories(&t, &MemoryFilter::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
    let got = store
        .get_memory(&t, &alice.memory.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, alice.memory);
    assert!(!got.is_visible_to(&UserId::new("bob")) && got.is_visible_to(&UserId::new("alice")));

    store.delete_memory(&t, &alice.memory.id).await.unwrap();
    assert!(
        store
            .get_memory(&t, &alice.memory.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        store.delete_memory(&t, &alice.memory.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(
        contents(store.as_ref(), &query("a1", Some("alice"), "red"))
            .await
            .is_empty()
    );
}

async fn duplicates_merge_exact_and_near(store: Arc<dyn Store>) {
    let t = default_tenant();
    let none = Retention::default();
    let first = store
        .save_memory(
            &t,
            &mem(
                "a1",
                Some("u"),
                "The user prefers green tea in the morning.",
            ),
            &none,
            NOW,
        )
        .await
        .unwrap();
    let mut again = mem("a1", Some("u"), "the user prefers GREEN tea in the morning");
    again.importance = 8;
    again.untrusted = true;
    let exact = store.save_memory(&t, &again, &none, NOW + 1).await.unwrap();
    assert!(exact.merged);
    assert_eq!(exact.memory.id, first.memory.id);
    assert_eq!((exact.memory.importance, exact.memory.untrusted), (8, true));
    assert_eq!(exact.memory.updated_at, NOW + 1);
    let near = store
        .save_memory(
            &t,
            &mem(
                "a1",
                Some("u"),
                "The user prefers green tea in the morning, always.",
            ),
            &none,
            NOW + 2,
        )
        .await
        .unwrap();
    assert!(near.merged, "a near duplicate merges");
    assert_eq!(near.memory.id, first.memory.id);
    assert_eq!(
        near.memory.content,
        "The user prefers green tea in the morning, always."
    );
    assert_eq!(near.memory.importance, 8, "the higher importance stays");
    // Another namespace is not a duplicate.
    let other = store
        .save_memory(
            &t,
            &mem(
                "a1",
                Some("v"),
                "The user prefers green tea in the morning.",
            ),
            &none,
            NOW,
        )
        .await
        .unwrap();
    assert!(!other.merged);
    let different = store
        .save_memory(
            &t,
            &mem("a1", Some("u"), "The user dislikes coffee."),
            &none,
            NOW,
        )
        .await
        .unwrap();
    assert!(!different.merged);
    // Vectors of one embedder close enough merge different words.
    let e = |v: Vec<f32>| {
        Some(Embedding {
            model: "m1".to_owned(),
            vector: v,
        })
    };
    let mut a = mem("a1", Some("w"), "meeting moved to friday afternoon");
    a.embedding = e(vec![1.0, 0.0, 0.0]);
    let a = store.save_memory(&t, &a, &none, NOW).await.unwrap();
    let mut b = mem("a1", Some("w"), "friday afternoon is the new meeting slot");
    b.embedding = e(vec![0.99, 0.05, 0.0]);
    let b = store.save_memory(&t, &b, &none, NOW + 1).await.unwrap();
    assert!(b.merged && b.memory.id == a.memory.id);
    assert_eq!(
        store
            .list_memories(&t, &MemoryFilter::default())
            .await
            .unwrap()
            .len(),
        4
    );
}

async fn retention_by_age_and_count_per_namespace(store: Arc<dyn Store>) {
    let t = default_tenant();
    let none = Retention::default();
    for (i, when) in [NOW - 10_000, NOW - 5_000, NOW - 1_000]
        .into_iter()
        .enumerate()
    {
        store
            .save_memory(
                &t,
                &mem("a1", Some("u"), &format!("fact number {i} zebra{i}")),
                &none,
                when,
            )
            .await
            .unwrap();
    }
    store
        .save_memory(
            &t,
            &mem("a1", Some("v"), "old fact of another user"),
            &none,
            NOW - 10_000,
        )
        .await
        .unwrap();
    let aged = Retention {
        max_age_ms: Some(6_000),
        max_count: None,
    };
    let s = store
        .save_memory(&t, &mem("a1", Some("u"), "a new fact"), &aged, NOW)
        .await
        .unwrap();
    assert_eq!(
        s.pruned, 1,
        "only the namespace's memory older than the age"
    );
    let count = |u: &'static str| {
        let store = store.clone();
        async move {
            store
                .list_memories(
                    &default_tenant(),
                    &MemoryFilter {
                        agent: Some(AgentId::new("a1")),
                        user: None,
                        limit: 0,
                    },
                )
                .await
                .unwrap()
                .into_iter()
                .filter(|m| m.user_id.as_ref().map(UserId::as_str) == Some(u))
                .count()
        }
    };
    assert_eq!((count("u").await, count("v").await), (3, 1));
    let mut important = mem("a1", Some("u"), "fact number 0 zebra0 was important");
    important.importance = 9;
    store
        .save_memory(&t, &important, &none, NOW + 1)
        .await
        .unwrap();
    let counted = Retention {
        max_age_ms: None,
        max_count: Some(2),
    };
    let mut low = mem("a1", Some("u"), "a trivial fact");
    low.importance = 0;
    let s = store
        .save_memory(&t, &low, &counted, NOW + 2)
        .await
        .unwrap();
    assert_eq!(s.pruned, 3);
    let left: Vec<String> = store
        .list_memories(
            &t,
            &MemoryFilter {
                agent: None,
                user: Some(UserId::new("u")),
                limit: 0,
            },
        )
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.content)
        .collect();
    assert_eq!(
        left,
        ["a trivial fact", "fact number 0 zebra0 was important"],
        "the one just saved and the most important stay"
    );
    assert_eq!(count("v").await, 1);
}

async fn hybrid_ranking_fuses_text_and_vectors(store: Arc<dyn Store>) {
    let t = default_tenant();
    let none = Retention::default();
    let e = |v: Vec<f32>| {
        Some(Embedding {
            model: "m1".to_owned(),
            vector: v,
        })
    };
    let mut a = mem("a1", None, "the cat sleeps on the sofa");
    a.embedding = e(vec![0.0, 1.0, 0.0]);
    let mut b = mem("a1", None, "kittens nap on couches");
    b.embedding = e(vec![0.9, 0.1, 0.0]);
    let mut c = mem("a1", None, "a cat eats fish");
    c.embedding = e(vec![0.8, 0.0, 0.2]);
    let mut d = mem("a1", None, "stock prices fell");
    d.embedding = Some(Embedding {
        model: "other".to_owned(),
        vector: vec![1.0, 0.0, 0.0],
    });
    for m in [&a, &b, &c, &d] {
        store.save_memory(&t, m, &none, NOW).await.unwrap();
    }
    // Full text alone: the two with "cat".
    let text = contents(store.as_ref(), &query("a1", None, "cat")).await;
    assert_eq!(text.len(), 2, "{text:?}");
    // With a vector: "a cat eats fish" is in both lists and comes first;
    // the other embedder's vector is never compared.
    let mut q = query("a1", None, "cat");
    q.embedding = e(vec![1.0, 0.0, 0.0]);
    let hits = store.search_memories(&t, &q).await.unwrap();
    let got: Vec<&str> = hits.iter().map(|h| h.memory.content.as_str()).collect();
    assert_eq!(got[0], "a cat eats fish", "{got:?}");
    assert!(hits[0].text_rank.is_some() && hits[0].vector_rank.is_some());
    assert!(got.contains(&"kittens nap on couches"), "{got:?}");
    assert!(!got.contains(&"stock prices fell"), "{got:?}");
    // Importance breaks a tie in full text.
    let mut hi = mem("a2", None, "alpha beta");
    hi.importance = 9;
    let mut lo = mem("a2", None, "beta alpha gamma delta epsilon");
    lo.importance = 1;
    store.save_memory(&t, &lo, &none, NOW).await.unwrap();
    store.save_memory(&t, &hi, &none, NOW).await.unwrap();
    let got = contents(store.as_ref(), &query("a2", None, "zeta")).await;
    assert!(got.is_empty());
    let got = contents(store.as_ref(), &query("a2", None, "alpha")).await;
    assert_eq!(got.len(), 2);
    // Punctuation and operators in a query are plain words.
    let got = contents(store.as_ref(), &query("a2", None, "\"alpha\" AND (NEAR) *")).await;
    assert_eq!(got.len(), 2);
    assert!(
        contents(store.as_ref(), &query("a2", None, "?!"))
            .await
            .is_empty()
    );
}

async fn memories_are_tenant_isolated(store: Arc<dyn Store>) {
    let (a, b) = two_tenants(store.as_ref()).await;
    let s = store
        .save_memory(
            &a,
            &mem("a1", None, "tenant a secret plan"),
            &Retention::default(),
            NOW,
        )
        .await
        .unwrap();
    assert!(store.get_memory(&b, &s.memory.id).await.unwrap().is_none());
    assert!(matches!(
        store.delete_memory(&b, &s.memory.id).await,
        Err(StoreError::NotFound)
    ));
    let hits = store
        .search_memories(&b, &query("a1", None, "plan"))
        .await
        .unwrap();
    assert!(hits.is_empty());
    assert!(
        store
            .list_memories(&b, &MemoryFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.memory_stats(Some(&b), None).await.unwrap().total, 0);
    assert_eq!(store.memory_stats(None, None).await.unwrap().total, 1);
}

async fn bad_memories_are_refused(store: Arc<dyn Store>) {
    let t = default_tenant();
    let none = Retention::default();
    let big = "x".repeat(MAX_CONTENT_BYTES + 1);
    let e = store
        .save_memory(&t, &mem("a1", None, &big), &none, NOW)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, StoreError::Invalid(m) if m.contains(&MAX_CONTENT_BYTES.to_string())),
        "{e}"
    );
    assert!(
        store
            .save_memory(&t, &mem("a1", None, "  "), &none, NOW)
            .await
            .is_err()
    );
    assert!(
        store
            .save_memory(&t, &mem("Bad Agent", None, "x"), &none, NOW)
            .await
            .is_err()
    );
    let mut m = mem("a1", None, "x");
    m.importance = 11;
    assert!(store.save_memory(&t, &m, &none, NOW).await.is_err());
    let mut q = query("a1", None, "x");
    q.limit = 0;
    assert!(store.search_memories(&t, &q).await.is_err());
    assert!(
        store
            .list_memories(&t, &MemoryFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
}

async fn reembedding_finds_and_updates_stale_vectors(store: Arc<dyn Store>) {
    let t = default_tenant();
    let none = Retention::default();
    let plain = store
        .save_memory(&t, &mem("a1", None, "no vector yet"), &none, NOW)
        .await
        .unwrap();
    let mut old = mem("a1", None, "an old model's vector");
    old.embedding = Some(Embedding {
        model: "old".to_owned(),
        vector: vec![1.0],
    });
    store.save_memory(&t, &old, &none, NOW + 1).await.unwrap();
    let todo = store.memories_to_embed("new", 10).await.unwrap();
    assert_eq!(todo.len(), 2);
    assert_eq!(todo[0].id, plain.memory.id, "oldest first");
    let stats = store.memory_stats(None, Some("new")).await.unwrap();
    assert_eq!((stats.total, stats.embedded), (2, 0));
    let e = Embedding {
        model: "new".to_owned(),
        vector: vec![0.5, 0.5],
    };
    for m in &todo {
        assert!(store.set_memory_embedding(m, &e).await.unwrap());
    }
    assert!(store.memories_to_embed("new", 10).await.unwrap().is_empty());
    assert_eq!(
        store
            .memory_stats(None, Some("new"))
            .await
            .unwrap()
            .embedded,
        2
    );
    // A memory changed since it was read keeps its (new) state.
    let mut stale = todo[0].clone();
    stale.updated_at -= 1;
    assert!(!store.set_memory_embedding(&stale, &e).await.unwrap());
}
