//! What every turn reads about its tenant's agents — the agent, its links,
//! the tenant's teams, whether any conversation is handed over — kept in
//! memory per tenant while the store's directory version stays the same.
//!
//! A turn asks the store for the version once ([`Runtime::directory`]: one
//! indexed read instead of four) and reads through the [`Directory`] it gets:
//! rows already read at that version come from memory, the others from the
//! store (and are kept). The version is bumped by triggers in the store on
//! every change to those rows, whoever makes it — this gateway, another one
//! on the same PostgreSQL, the CLI on the same SQLite file — so nothing is
//! served from memory after a change has committed. Rows read after a
//! change but kept under the older version are newer than it, never older,
//! and the next turn sees the new version and starts afresh.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use exoclaw_core::model::Agent;
use exoclaw_core::store::orchestration::AgentLink;
use exoclaw_core::store::teams::Team;
use exoclaw_core::store::{Store, StoreResult};
use exoclaw_core::{AgentId, TenantId};

/// Tenants kept at most; past it the map starts over (each tenant then
/// reads its rows once more).
const MAX_TENANTS: usize = 4096;

/// The rows of one tenant at one version.
#[derive(Default)]
struct Snapshot {
    version: i64,
    agents: Mutex<HashMap<AgentId, Option<Agent>>>,
    links: Mutex<HashMap<AgentId, Vec<AgentLink>>>,
    teams: OnceLock<Vec<Team>>,
    any_handoff: OnceLock<bool>,
}

/// Every tenant's snapshot (see the module docs).
#[derive(Default)]
pub struct Directories {
    tenants: Mutex<HashMap<TenantId, Arc<Snapshot>>>,
}

impl Directories {
    /// The tenant's directory as of now: one read of its version.
    pub async fn current(
        &self,
        store: &Arc<dyn Store>,
        tenant: &TenantId,
    ) -> StoreResult<Directory> {
        let snapshot = match store.directory_version(tenant).await? {
            None => None,
            Some(version) => {
                let mut tenants = lock(&self.tenants);
                let fresh = || {
                    Arc::new(Snapshot {
                        version,
                        ..Snapshot::default()
                    })
                };
                let snap = match tenants.get(tenant) {
                    Some(s) if s.version == version => s.clone(),
                    _ => {
                        if tenants.len() >= MAX_TENANTS {
                            tenants.clear();
                        }
                        let s = fresh();
                        tenants.insert(tenant.clone(), s.clone());
                        s
                    }
                };
                Some(snap)
            }
        };
        Ok(Directory {
            tenant: tenant.clone(),
            store: store.clone(),
            snapshot,
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section leaves the map whole: keep using it after a
    // panic elsewhere.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A tenant's directory checked against the store's version once; reads
/// through it are served from memory where they can be.
#[derive(Clone)]
pub struct Directory {
    tenant: TenantId,
    store: Arc<dyn Store>,
    /// `None`: the backend keeps no version, every read goes to the store.
    snapshot: Option<Arc<Snapshot>>,
}

impl Directory {
    /// The store's directory version this was read at (`None`: the
    /// backend keeps none).
    pub fn version(&self) -> Option<i64> {
        self.snapshot.as_ref().map(|s| s.version)
    }

    pub async fn agent(&self, id: &AgentId) -> StoreResult<Option<Agent>> {
        if let Some(s) = &self.snapshot
            && let Some(agent) = lock(&s.agents).get(id)
        {
            return Ok(agent.clone());
        }
        let agent = self.store.get_agent(&self.tenant, id).await?;
        if let Some(s) = &self.snapshot {
            lock(&s.agents).insert(id.clone(), agent.clone());
        }
        Ok(agent)
    }

    /// The links with `agent` at either end.
    pub async fn links(&self, agent: &AgentId) -> StoreResult<Vec<AgentLink>> {
        if let Some(s) = &self.snapshot
            && let Some(links) = lock(&s.links).get(agent)
        {
            return Ok(links.clone());
        }
        let links = self.store.list_links(&self.tenant, Some(agent)).await?;
        if let Some(s) = &self.snapshot {
            lock(&s.links).insert(agent.clone(), links.clone());
        }
        Ok(links)
    }

    pub async fn teams(&self) -> StoreResult<Vec<Team>> {
        if let Some(teams) = self.snapshot.as_ref().and_then(|s| s.teams.get()) {
            return Ok(teams.clone());
        }
        let teams = self.store.list_teams(&self.tenant).await?;
        if let Some(s) = &self.snapshot {
            let _ = s.teams.set(teams.clone());
        }
        Ok(teams)
    }

    /// Whether any of the tenant's conversations is handed over.
    pub async fn any_handoff(&self) -> StoreResult<bool> {
        if let Some(any) = self.snapshot.as_ref().and_then(|s| s.any_handoff.get()) {
            return Ok(*any);
        }
        let any = self.store.any_handoff(&self.tenant).await?;
        if let Some(s) = &self.snapshot {
            let _ = s.any_handoff.set(any);
        }
        Ok(any)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exoclaw_core::model::{AgentUpdate, NewAgent};

    fn rename(name: &str) -> AgentUpdate {
        AgentUpdate {
            display_name: Some(name.into()),
            agent_type: None,
            config: None,
        }
    }

    /// A directory serves what it read at its version; a change by anyone
    /// moves the version and the next directory reads it afresh.
    #[tokio::test]
    async fn a_directory_serves_its_version_and_sees_every_change_after() {
        for db in [crate::test_store::sqlite().await]
            .into_iter()
            .chain(crate::test_store::postgres().await)
        {
            let store = db.store.clone();
            let t = TenantId::new("default");
            let a1 = AgentId::new("a1");
            let new = NewAgent {
                id: a1.clone(),
                display_name: "First".into(),
                agent_type: exoclaw_core::model::AgentType::Open,
                config: serde_json::json!({}),
            };
            store.create_agent(&t, &new).await.unwrap();
            let dirs = Directories::default();
            let before = dirs.current(&store, &t).await.unwrap();
            assert_eq!(
                before.agent(&a1).await.unwrap().unwrap().display_name,
                "First"
            );
            assert!(before.links(&a1).await.unwrap().is_empty());
            assert!(before.teams().await.unwrap().is_empty());
            assert!(!before.any_handoff().await.unwrap());
            // Another writer (the CLI, another gateway) renames it.
            store
                .update_agent(&t, &a1, &rename("Second"))
                .await
                .unwrap();
            assert_eq!(
                before.agent(&a1).await.unwrap().unwrap().display_name,
                "First",
                "a directory is pinned to the version it was checked at ({})",
                db.name
            );
            let after = dirs.current(&store, &t).await.unwrap();
            assert_eq!(
                after.agent(&a1).await.unwrap().unwrap().display_name,
                "Second"
            );
            store.delete_agent(&t, &a1).await.unwrap();
            let gone = dirs.current(&store, &t).await.unwrap();
            assert!(gone.agent(&a1).await.unwrap().is_none(), "{}", db.name);
            db.finish().await;
        }
    }
}
