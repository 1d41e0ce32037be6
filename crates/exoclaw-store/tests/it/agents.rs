//! Agents: create/read/update/delete, ids, the cascade to sessions and
//! messages, and tenant isolation.

use crate::harness::*;
use exoclaw_core::AgentId;
use exoclaw_core::model::{AgentType, AgentUpdate};
use exoclaw_core::store::{Store, StoreError};
use std::sync::Arc;

contract!(store:
    agent_crud,
    agent_ids_are_unique_per_tenant_and_valid,
    deleting_an_agent_cascades_sessions_and_messages,
    agents_are_tenant_isolated,
);

async fn agent_crud(store: Arc<dyn Store>) {
    let t = default_tenant();
    let created = store.create_agent(&t, &new_agent("b-agent")).await.unwrap();
    store.create_agent(&t, &new_agent("a-agent")).await.unwrap();
    assert_eq!(created.tenant_id, t);
    assert_eq!(created.created_at, created.updated_at);
    assert_eq!(
        store.get_agent(&t, &AgentId::new("b-agent")).await.unwrap(),
        Some(created.clone())
    );
    let ids: Vec<_> = store
        .list_agents(&t)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id.to_string())
        .collect();
    assert_eq!(ids, ["a-agent", "b-agent"]);

    tick().await;
    let renamed = store
        .update_agent(
            &t,
            &created.id,
            &AgentUpdate {
                display_name: Some("Renamed".into()),
                ..AgentUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.display_name, "Renamed");
    assert_eq!(renamed.config, created.config, "untouched fields stay");
    assert_eq!(renamed.agent_type, AgentType::Open);
    assert_eq!(renamed.created_at, created.created_at);
    assert!(renamed.updated_at > created.updated_at);

    let config = serde_json::json!({"model": "other", "nested": {"list": [1, 2, {"x": null}]}});
    let reconfigured = store
        .update_agent(
            &t,
            &created.id,
            &AgentUpdate {
                agent_type: Some(AgentType::Predefined),
                config: Some(config.clone()),
                ..AgentUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(reconfigured.display_name, "Renamed");
    assert_eq!(reconfigured.agent_type, AgentType::Predefined);
    assert_eq!(reconfigured.config, config);
    assert_eq!(
        store.get_agent(&t, &created.id).await.unwrap(),
        Some(reconfigured)
    );

    let err = store
        .update_agent(&t, &AgentId::new("missing"), &AgentUpdate::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");

    store.delete_agent(&t, &created.id).await.unwrap();
    assert_eq!(store.get_agent(&t, &created.id).await.unwrap(), None);
    let err = store.delete_agent(&t, &created.id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
}

async fn agent_ids_are_unique_per_tenant_and_valid(store: Arc<dyn Store>) {
    let (a, b) = two_tenants(&*store).await;
    store.create_agent(&a, &new_agent("bot")).await.unwrap();
    let err = store.create_agent(&a, &new_agent("bot")).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    store
        .create_agent(&b, &new_agent("bot"))
        .await
        .expect("same id, other tenant");
    for bad in ["", "Bot", "a/b", "x y"] {
        let err = store.create_agent(&a, &new_agent(bad)).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{bad}: {err}");
    }
    let err = store
        .create_agent(&tid("ghost"), &new_agent("bot"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
}

async fn deleting_an_agent_cascades_sessions_and_messages(store: Arc<dyn Store>) {
    let t = default_tenant();
    store.create_agent(&t, &new_agent("doomed")).await.unwrap();
    store.create_agent(&t, &new_agent("kept")).await.unwrap();
    let doomed = store
        .get_or_create_session(&t, &scope("doomed", "u", "p"))
        .await
        .unwrap();
    let kept = store
        .get_or_create_session(&t, &scope("kept", "u", "p"))
        .await
        .unwrap();
    store
        .append_message(&t, &doomed.id, &text_message("1"))
        .await
        .unwrap();
    store
        .append_message(&t, &kept.id, &text_message("1"))
        .await
        .unwrap();

    store
        .delete_agent(&t, &AgentId::new("doomed"))
        .await
        .unwrap();
    assert_eq!(store.get_session(&t, &doomed.id).await.unwrap(), None);
    let err = store.list_messages(&t, &doomed.id, 0, 0).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
    let left = store.list_sessions(&t, &Default::default()).await.unwrap();
    assert_eq!(
        left,
        vec![store.get_session(&t, &kept.id).await.unwrap().unwrap()]
    );
    assert_eq!(
        store.list_messages(&t, &kept.id, 0, 0).await.unwrap().len(),
        1
    );

    // a new agent with the old id starts empty
    store.create_agent(&t, &new_agent("doomed")).await.unwrap();
    let again = store
        .get_or_create_session(&t, &scope("doomed", "u", "p"))
        .await
        .unwrap();
    assert_ne!(again.id, doomed.id);
    assert!(
        store
            .list_messages(&t, &again.id, 0, 0)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn agents_are_tenant_isolated(store: Arc<dyn Store>) {
    let (a, b) = two_tenants(&*store).await;
    let agent = store.create_agent(&a, &new_agent("mine")).await.unwrap();
    assert_eq!(store.get_agent(&b, &agent.id).await.unwrap(), None);
    assert!(store.list_agents(&b).await.unwrap().is_empty());
    let err = store
        .update_agent(
            &b,
            &agent.id,
            &AgentUpdate {
                display_name: Some("stolen".into()),
                ..AgentUpdate::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
    let err = store.delete_agent(&b, &agent.id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
    assert_eq!(store.get_agent(&a, &agent.id).await.unwrap(), Some(agent));
}
