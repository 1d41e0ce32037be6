//! Tool sources (custom tools, MCP servers) and their grants: a source is
//! created, replaced and listed per tenant and kind; grants need their
//! source, are idempotent, and go with it; another tenant sees nothing.

use crate::harness::*;
use exoclaw_core::store::{Store, StoreError, ToolGrant, ToolSource, ToolSourceKind};
use exoclaw_core::{AgentId, TenantId, UserId};
use serde_json::json;
use std::sync::Arc;

contract!(store: sources_replace_list_and_delete, grants_follow_their_source);

fn source(tenant: &TenantId, kind: ToolSourceKind, name: &str, n: i64) -> ToolSource {
    ToolSource {
        tenant_id: tenant.clone(),
        kind,
        name: name.into(),
        spec: json!({"n": n, "argv": ["echo", "{text}"]}),
        created_at: 1_000 + n,
        updated_at: 1_000 + n,
    }
}

fn grant(tenant: &TenantId, name: &str, agent: &str, user: Option<&str>) -> ToolGrant {
    ToolGrant {
        tenant_id: tenant.clone(),
        kind: ToolSourceKind::Custom,
        source: name.into(),
        agent: AgentId::from(agent),
        user: user.map(UserId::from),
    }
}

async fn sources_replace_list_and_delete(store: Arc<dyn Store>) {
    let (a, b) = two_tenants(store.as_ref()).await;
    store
        .put_tool_source(&source(&a, ToolSourceKind::Custom, "grep", 1))
        .await
        .unwrap();
    store
        .put_tool_source(&source(&a, ToolSourceKind::Mcp, "grep", 2))
        .await
        .unwrap();
    store
        .put_tool_source(&source(&b, ToolSourceKind::Custom, "echo", 3))
        .await
        .unwrap();
    // Replacing keeps the creation time and takes the new definition.
    let mut again = source(&a, ToolSourceKind::Custom, "grep", 4);
    again.created_at = 9_999;
    store.put_tool_source(&again).await.unwrap();
    let got = store
        .get_tool_source(&a, ToolSourceKind::Custom, "grep")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.spec["n"], 4);
    assert_eq!(got.created_at, 1_001);
    assert_eq!(got.updated_at, 1_004);
    // Another tenant's source reads as absent.
    assert!(
        store
            .get_tool_source(&b, ToolSourceKind::Custom, "grep")
            .await
            .unwrap()
            .is_none()
    );
    let mine = store
        .list_tool_sources(Some(&a), ToolSourceKind::Custom)
        .await
        .unwrap();
    assert_eq!(mine.len(), 1);
    let every = store
        .list_tool_sources(None, ToolSourceKind::Custom)
        .await
        .unwrap();
    assert_eq!(
        every.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        if a.as_str() < b.as_str() {
            vec!["grep", "echo"]
        } else {
            vec!["echo", "grep"]
        }
    );
    assert!(matches!(
        store
            .delete_tool_source(&b, ToolSourceKind::Custom, "grep")
            .await,
        Err(StoreError::NotFound)
    ));
    store
        .delete_tool_source(&a, ToolSourceKind::Custom, "grep")
        .await
        .unwrap();
    assert!(
        store
            .list_tool_sources(Some(&a), ToolSourceKind::Custom)
            .await
            .unwrap()
            .is_empty()
    );
    // The MCP server of the same name is another source.
    assert_eq!(
        store
            .list_tool_sources(Some(&a), ToolSourceKind::Mcp)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn grants_follow_their_source(store: Arc<dyn Store>) {
    let (a, b) = two_tenants(store.as_ref()).await;
    assert!(matches!(
        store
            .put_tool_grant(&grant(&a, "grep", "default", None), 1)
            .await,
        Err(StoreError::NotFound)
    ));
    store
        .put_tool_source(&source(&a, ToolSourceKind::Custom, "grep", 1))
        .await
        .unwrap();
    for g in [
        grant(&a, "grep", "default", None),
        grant(&a, "grep", "default", None),
        grant(&a, "grep", "coder", Some("alice")),
    ] {
        store.put_tool_grant(&g, 2).await.unwrap();
    }
    let grants = store
        .list_tool_grants(Some(&a), ToolSourceKind::Custom)
        .await
        .unwrap();
    assert_eq!(
        grants,
        vec![
            grant(&a, "grep", "coder", Some("alice")),
            grant(&a, "grep", "default", None),
        ]
    );
    assert!(
        store
            .list_tool_grants(Some(&b), ToolSourceKind::Custom)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_tool_grants(Some(&a), ToolSourceKind::Mcp)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store
            .delete_tool_grant(&grant(&a, "grep", "coder", None))
            .await,
        Err(StoreError::NotFound)
    ));
    store
        .delete_tool_grant(&grant(&a, "grep", "coder", Some("alice")))
        .await
        .unwrap();
    store
        .delete_tool_source(&a, ToolSourceKind::Custom, "grep")
        .await
        .unwrap();
    assert!(
        store
            .list_tool_grants(None, ToolSourceKind::Custom)
            .await
            .unwrap()
            .is_empty()
    );
}
