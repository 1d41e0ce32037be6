//! The directory version (schema 16's triggers): it moves with every change
//! to a tenant's agents, links, teams, members and handoffs, on both
//! backends, and only with those (messages, sessions and other tenants'
//! changes leave it), so a gateway may keep those rows while it stands.

use crate::harness::*;
use crate::links::link;
use crate::teams::team;
use exoclaw_core::model::AgentUpdate;
use exoclaw_core::store::Store;
use exoclaw_core::store::orchestration::LinkDirection;
use exoclaw_core::store::teams::{Handoff, TeamUpdate};
use exoclaw_core::{AgentId, TenantId, UserId};
use std::sync::Arc;

contract!(store: the_directory_version_moves_with_every_change_and_only_then);

async fn version(store: &dyn Store, t: &TenantId) -> i64 {
    store
        .directory_version(t)
        .await
        .unwrap()
        .expect("kept by both backends")
}

async fn the_directory_version_moves_with_every_change_and_only_then(store: Arc<dyn Store>) {
    let (t, other) = two_tenants(store.as_ref()).await;
    let s = store.as_ref();
    let last = std::cell::Cell::new(version(s, &t).await);
    let moved = |now: i64, what: &str| {
        let before = last.get();
        assert!(
            now > before,
            "{what} did not move the version ({before} -> {now})"
        );
        last.set(now);
    };
    store.create_agent(&t, &new_agent("a1")).await.unwrap();
    moved(version(s, &t).await, "creating an agent");
    store.create_agent(&t, &new_agent("a2")).await.unwrap();
    store.create_agent(&t, &new_agent("a3")).await.unwrap();
    moved(version(s, &t).await, "creating agents");
    let update = AgentUpdate {
        display_name: Some("Renamed".into()),
        agent_type: None,
        config: None,
    };
    store
        .update_agent(&t, &AgentId::new("a1"), &update)
        .await
        .unwrap();
    moved(version(s, &t).await, "updating an agent");
    store
        .create_link(&t, &link("a1", "a2", LinkDirection::Outbound))
        .await
        .unwrap();
    moved(version(s, &t).await, "creating a link");
    store
        .create_team(&t, &team("t1", "a1", &["a2"]))
        .await
        .unwrap();
    moved(version(s, &t).await, "creating a team");
    let members = TeamUpdate {
        name: None,
        lead: None,
        members: Some(vec![AgentId::new("a2"), AgentId::new("a3")]),
    };
    store.update_team(&t, "t1", &members).await.unwrap();
    moved(version(s, &t).await, "changing a team's members");
    assert!(!store.any_handoff(&t).await.unwrap());
    let handoff = Handoff {
        tenant_id: t.clone(),
        channel: "api".into(),
        peer: "p".into(),
        user_id: UserId::new("u"),
        from_agent: AgentId::new("a1"),
        to_agent: AgentId::new("a2"),
        reason: "billing".into(),
        created_at: 1,
        last_active_at: 1,
    };
    store.set_handoff(&handoff).await.unwrap();
    moved(version(s, &t).await, "handing a conversation over");
    assert!(store.any_handoff(&t).await.unwrap());
    assert!(!store.any_handoff(&other).await.unwrap(), "tenant isolated");

    // What is not the directory leaves the version.
    let session = store
        .get_or_create_session(&t, &scope("a1", "u", "p"))
        .await
        .unwrap();
    store
        .append_message(&t, &session.id, &text_message("hi"))
        .await
        .unwrap();
    store.create_agent(&other, &new_agent("b1")).await.unwrap();
    assert_eq!(
        version(s, &t).await,
        last.get(),
        "sessions and other tenants"
    );

    // Deleting an agent (and with it its links, membership, handoffs).
    store.delete_team(&t, "t1").await.unwrap();
    moved(version(s, &t).await, "deleting a team");
    store.delete_agent(&t, &AgentId::new("a2")).await.unwrap();
    moved(version(s, &t).await, "deleting an agent");
    assert!(
        !store.any_handoff(&t).await.unwrap(),
        "the cascade cleared it"
    );
}
