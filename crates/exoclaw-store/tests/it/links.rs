//! Permission links and bindings: one link per ordered pair of existing
//! agents (none to itself), one binding per match (missing fields match
//! alike), listings in their documented order, both going with their agent
//! when it is deleted, and tenant isolation. Refused input changes nothing.

use crate::harness::*;
use exoclaw_core::store::orchestration::{
    AgentLink, LinkDirection, LinkUsers, NewAgentLink, NewBinding,
};
use exoclaw_core::store::{Store, StoreError};
use exoclaw_core::{AgentId, TenantId, UserId};
use std::sync::Arc;

contract!(store:
    links_join_two_existing_agents_once,
    bindings_are_unique_per_match,
    links_and_bindings_go_with_their_agent,
    links_and_bindings_are_tenant_isolated,
);

pub fn link(source: &str, target: &str, direction: LinkDirection) -> NewAgentLink {
    NewAgentLink {
        source: source.into(),
        target: target.into(),
        direction,
        max_concurrent: None,
        users: LinkUsers::default(),
    }
}

pub fn binding(
    channel: Option<&str>,
    peer: Option<&str>,
    user: Option<&str>,
    agent: &str,
) -> NewBinding {
    NewBinding {
        channel: channel.map(str::to_owned),
        account: None,
        peer: peer.map(str::to_owned),
        user_id: user.map(UserId::new),
        agent: agent.into(),
    }
}

pub async fn agents(store: &dyn Store, t: &TenantId, ids: &[&str]) {
    for id in ids {
        store.create_agent(t, &new_agent(id)).await.unwrap();
    }
}

fn pairs(links: &[AgentLink]) -> Vec<(&str, &str)> {
    links
        .iter()
        .map(|l| (l.source.as_str(), l.target.as_str()))
        .collect()
}

async fn links_join_two_existing_agents_once(store: Arc<dyn Store>) {
    let t = default_tenant();
    agents(&*store, &t, &["a1", "a2", "a3"]).await;
    let users = LinkUsers {
        allow: vec![UserId::new("alice"), UserId::new("bob")],
        deny: vec![UserId::new("eve")],
    };
    let created = store
        .create_link(
            &t,
            &NewAgentLink {
                max_concurrent: Some(3),
                users: users.clone(),
                ..link("a2", "a1", LinkDirection::Outbound)
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (
            created.tenant_id.as_str(),
            created.source.as_str(),
            created.target.as_str(),
            created.direction,
            created.max_concurrent,
            &created.users
        ),
        (
            "default",
            "a2",
            "a1",
            LinkDirection::Outbound,
            Some(3),
            &users
        )
    );
    assert!(created.created_at > 0);
    assert!(created.permits(&"a2".into(), &"a1".into()));
    assert!(!created.permits(&"a1".into(), &"a2".into()));

    // The same ordered pair again: refused, whatever its direction.
    let err = store
        .create_link(&t, &link("a2", "a1", LinkDirection::Bidirectional))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    // The other order is another pair.
    store
        .create_link(&t, &link("a1", "a2", LinkDirection::Inbound))
        .await
        .unwrap();
    store
        .create_link(&t, &link("a1", "a3", LinkDirection::Bidirectional))
        .await
        .unwrap();
    let before = store.list_links(&t, None).await.unwrap();

    // Refused: a link to itself, a bad or unknown agent.
    for (bad, what) in [
        (link("a1", "a1", LinkDirection::Outbound), "itself"),
        (
            link("A1", "a2", LinkDirection::Outbound),
            "link source agent",
        ),
        (link("a1", "", LinkDirection::Outbound), "link target agent"),
    ] {
        let err = store.create_link(&t, &bad).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Invalid(m) if m.contains(what)),
            "{what}: {err}"
        );
    }
    for bad in [
        link("a1", "ghost", LinkDirection::Outbound),
        link("ghost", "a1", LinkDirection::Outbound),
    ] {
        let err = store.create_link(&t, &bad).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err}");
    }
    assert_eq!(store.list_links(&t, None).await.unwrap(), before);

    assert_eq!(
        pairs(&before),
        [("a1", "a2"), ("a1", "a3"), ("a2", "a1")],
        "by source, then target"
    );
    assert_eq!(before[2], created, "read back as created");
    let of_a2 = store.list_links(&t, Some(&"a2".into())).await.unwrap();
    assert_eq!(
        pairs(&of_a2),
        [("a1", "a2"), ("a2", "a1")],
        "source or target"
    );
    let of_a3 = store.list_links(&t, Some(&"a3".into())).await.unwrap();
    assert_eq!(pairs(&of_a3), [("a1", "a3")]);
    assert!(
        store
            .list_links(&t, Some(&"ghost".into()))
            .await
            .unwrap()
            .is_empty()
    );

    store
        .delete_link(&t, &"a1".into(), &"a2".into())
        .await
        .unwrap();
    let err = store
        .delete_link(&t, &"a1".into(), &"a2".into())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
    assert_eq!(
        pairs(&store.list_links(&t, None).await.unwrap()),
        [("a1", "a3"), ("a2", "a1")]
    );
}

async fn bindings_are_unique_per_match(store: Arc<dyn Store>) {
    let t = default_tenant();
    agents(&*store, &t, &["main", "support", "vip"]).await;
    let by_channel = store
        .create_binding(&t, &binding(Some("telegram"), None, None, "support"))
        .await
        .unwrap();
    tick().await;
    let by_user = store
        .create_binding(&t, &binding(None, None, Some("alice"), "vip"))
        .await
        .unwrap();
    tick().await;
    let by_peer = store
        .create_binding(
            &t,
            &NewBinding {
                account: Some("bot-2".to_owned()),
                ..binding(Some("telegram"), Some("group-9"), None, "main")
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (
            by_peer.channel.as_deref(),
            by_peer.account.as_deref(),
            by_peer.peer.as_deref(),
            by_peer.user_id.as_ref(),
            by_peer.agent.as_str()
        ),
        (
            Some("telegram"),
            Some("bot-2"),
            Some("group-9"),
            None,
            "main"
        )
    );
    let listed = store.list_bindings(&t).await.unwrap();
    assert_eq!(
        listed,
        [by_channel.clone(), by_user, by_peer],
        "oldest first"
    );

    // The same match again (missing fields alike), for any agent: refused.
    for again in [
        binding(Some("telegram"), None, None, "main"),
        binding(None, None, Some("alice"), "support"),
    ] {
        let err = store.create_binding(&t, &again).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    }
    // Refused: an empty match field, a bad or unknown agent.
    for (bad, what) in [
        (binding(Some(""), None, None, "main"), "binding channel"),
        (binding(None, Some(""), None, "main"), "binding peer"),
        (binding(None, None, Some(""), "main"), "binding user id"),
        (binding(Some("x"), None, None, "Main"), "binding agent"),
    ] {
        let err = store.create_binding(&t, &bad).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Invalid(m) if m.contains(what)),
            "{what}: {err}"
        );
    }
    let err = store
        .create_binding(&t, &binding(Some("x"), None, None, "ghost"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
    assert_eq!(store.list_bindings(&t).await.unwrap(), listed);

    // A more specific match is another binding.
    let narrower = store
        .create_binding(&t, &binding(Some("telegram"), None, Some("alice"), "main"))
        .await
        .unwrap();

    // The bindings as stored pick the agent of a conversation (the choice
    // itself is core's).
    let all = store.list_bindings(&t).await.unwrap();
    let pick = |channel: &str, account: Option<&str>, peer: &str, user: &str| {
        all.iter()
            .filter(|b| b.matches(channel, account, peer, &UserId::new(user)))
            .max_by_key(|b| b.specificity())
            .map(|b| b.agent.to_string())
    };
    assert_eq!(
        pick("telegram", None, "p1", "bob").as_deref(),
        Some("support")
    );
    assert_eq!(pick("ws", None, "p1", "alice").as_deref(), Some("vip"));
    assert_eq!(
        pick("telegram", None, "p1", "alice").as_deref(),
        Some("main")
    );
    assert_eq!(
        pick("telegram", Some("bot-2"), "group-9", "bob").as_deref(),
        Some("main")
    );
    assert_eq!(
        pick("telegram", Some("bot-1"), "group-9", "bob").as_deref(),
        Some("support"),
        "another account"
    );
    assert_eq!(pick("ws", None, "p1", "bob"), None, "the default agent");

    store.delete_binding(&t, &narrower.id).await.unwrap();
    let err = store.delete_binding(&t, &narrower.id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
    assert_eq!(store.list_bindings(&t).await.unwrap(), listed);
}

async fn links_and_bindings_go_with_their_agent(store: Arc<dyn Store>) {
    let t = default_tenant();
    agents(&*store, &t, &["a1", "a2", "a3"]).await;
    for (s, d) in [("a1", "a2"), ("a2", "a3"), ("a3", "a1"), ("a1", "a3")] {
        store
            .create_link(&t, &link(s, d, LinkDirection::Outbound))
            .await
            .unwrap();
    }
    store
        .create_binding(&t, &binding(Some("telegram"), None, None, "a2"))
        .await
        .unwrap();
    let kept = store
        .create_binding(&t, &binding(Some("ws"), None, None, "a3"))
        .await
        .unwrap();
    store.delete_agent(&t, &AgentId::new("a2")).await.unwrap();
    assert_eq!(
        pairs(&store.list_links(&t, None).await.unwrap()),
        [("a1", "a3"), ("a3", "a1")]
    );
    assert_eq!(store.list_bindings(&t).await.unwrap(), [kept]);
    // A new agent of the same id starts without them.
    store.create_agent(&t, &new_agent("a2")).await.unwrap();
    assert!(
        store
            .list_links(&t, Some(&"a2".into()))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn links_and_bindings_are_tenant_isolated(store: Arc<dyn Store>) {
    let (a, b) = two_tenants(&*store).await;
    agents(&*store, &a, &["a1", "a2"]).await;
    agents(&*store, &b, &["a1", "b2"]).await;
    store
        .create_link(&a, &link("a1", "a2", LinkDirection::Outbound))
        .await
        .unwrap();
    let bound = store
        .create_binding(&a, &binding(Some("telegram"), None, None, "a1"))
        .await
        .unwrap();
    // b has no a2, a has no b2: a link across tenants names a missing agent.
    for (t, s, d) in [(&b, "a1", "a2"), (&a, "a1", "b2")] {
        let err = store
            .create_link(t, &link(s, d, LinkDirection::Outbound))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err}");
    }
    let err = store
        .create_binding(&a, &binding(None, None, None, "b2"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
    // The same pair and match in b are b's own.
    store
        .create_link(&b, &link("a1", "b2", LinkDirection::Outbound))
        .await
        .unwrap();
    let in_b = store
        .create_binding(&b, &binding(Some("telegram"), None, None, "a1"))
        .await
        .unwrap();
    assert_eq!(
        pairs(&store.list_links(&a, None).await.unwrap()),
        [("a1", "a2")]
    );
    assert_eq!(
        pairs(&store.list_links(&b, None).await.unwrap()),
        [("a1", "b2")]
    );
    assert_eq!(
        store.list_bindings(&a).await.unwrap(),
        std::slice::from_ref(&bound)
    );
    assert_eq!(store.list_bindings(&b).await.unwrap(), [in_b]);
    // a's link and binding are not b's to delete.
    let err = store
        .delete_link(&b, &"a1".into(), &"a2".into())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
    let err = store.delete_binding(&b, &bound.id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
    assert_eq!(store.list_bindings(&a).await.unwrap(), [bound]);
    assert!(
        store
            .list_links(&tid("nope"), None)
            .await
            .unwrap()
            .is_empty()
    );
    // Deleting b's a1 leaves a's links and bindings alone.
    store.delete_agent(&b, &AgentId::new("a1")).await.unwrap();
    assert_eq!(store.list_links(&a, None).await.unwrap().len(), 1);
    assert_eq!(store.list_bindings(&a).await.unwrap().len(), 1);
}
