//! Custom tools at run time (`/v1/tools/custom`, `exoclaw tools custom`):
//! a tenant's definitions in the store (`tool_sources`, kind `custom`),
//! their secret environment values in the vault (owner
//! `custom_tool:<name>`), and the grants that offer each to agents (deny
//! by default: a tool without a grant is offered to nobody). A granted
//! tool is registered in the agent's scope of the one tool registry (`*`:
//! the tenant's scope), so every call takes the same policy path as a
//! built-in. Loaded at start-up; a definition that cannot be loaded is
//! logged and skipped, never stops the gateway.

use exoclaw_core::store::{EVERY_AGENT, Store, StoreError, ToolGrant, ToolSource, ToolSourceKind};
use exoclaw_core::{AgentId, Secret, TenantId, UnixMillis};
use exoclaw_store::vault::{SecretVault, VaultError};
use exoclaw_tools::ToolRegistry;
use exoclaw_tools::custom::{CustomTool, CustomToolDef};
use exoclaw_tools::exec::CommandRunner;
use exoclaw_tools::registry::Scope;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Custom tools one tenant may have.
pub const MAX_PER_TENANT: usize = 64;

/// The vault owner of a custom tool's secret environment.
pub fn secret_owner(tool: &str) -> String {
    format!("custom_tool:{tool}")
}

/// Why a change was refused.
#[derive(Debug, thiserror::Error)]
pub enum CustomToolError {
    /// A bad definition, with the reason.
    #[error("{0}")]
    Invalid(String),
    /// The name is a built-in tool's.
    #[error("{0}")]
    NameTaken(String),
    #[error("no custom tool named {0:?}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Vault(#[from] VaultError),
}

/// A custom tool as listed: its definition and the agents it is granted to.
#[derive(Clone, Debug)]
pub struct CustomToolView {
    pub def: CustomToolDef,
    pub agents: Vec<AgentId>,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

/// The custom tools of every tenant, over the registry and the runner
/// `exec` uses; or, for the CLI ([`CustomTools::offline`]), over the store
/// and the vault only (a running gateway offers the change after its next
/// start).
pub struct CustomTools {
    store: Arc<dyn Store>,
    live: Option<(Arc<ToolRegistry>, Arc<CommandRunner>)>,
    /// One change at a time (store, vault and registry together).
    changing: tokio::sync::Mutex<()>,
}

fn scopes(tenant: &TenantId, agents: &[AgentId]) -> Vec<Scope> {
    if agents.iter().any(|a| a.as_str() == EVERY_AGENT) {
        return vec![Scope::Tenant(tenant.clone())];
    }
    agents
        .iter()
        .map(|a| Scope::Agent(tenant.clone(), a.clone()))
        .collect()
}

fn parse_def(source: &ToolSource) -> Result<CustomToolDef, String> {
    let def: CustomToolDef =
        serde_json::from_value(source.spec.clone()).map_err(|e| e.to_string())?;
    def.validate()?;
    Ok(def)
}

impl CustomTools {
    pub fn new(
        store: Arc<dyn Store>,
        registry: Arc<ToolRegistry>,
        runner: Arc<CommandRunner>,
    ) -> Self {
        Self {
            store,
            live: Some((registry, runner)),
            changing: tokio::sync::Mutex::new(()),
        }
    }

    /// Definitions, grants and secrets without a registry (the CLI).
    pub fn offline(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            live: None,
            changing: tokio::sync::Mutex::new(()),
        }
    }

    /// Register every tenant's granted custom tools (start-up). Without a
    /// vault, tools that need secrets are skipped. Returns how many were
    /// registered.
    pub async fn load(&self, vault: Option<&SecretVault>) -> usize {
        let (sources, grants) = match tokio::try_join!(
            self.store.list_tool_sources(None, ToolSourceKind::Custom),
            self.store.list_tool_grants(None, ToolSourceKind::Custom)
        ) {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the custom tools; none is offered");
                return 0;
            }
        };
        let mut loaded = 0;
        for source in sources {
            let agents: Vec<AgentId> = grants
                .iter()
                .filter(|g| g.tenant_id == source.tenant_id && g.source == source.name)
                .map(|g| g.agent.clone())
                .collect();
            if agents.is_empty() {
                continue;
            }
            match self.build(vault, &source).await {
                Ok(tool) => {
                    self.register(&source.tenant_id, &agents, &tool);
                    loaded += 1;
                }
                Err(why) => tracing::warn!(
                    tenant = %source.tenant_id,
                    tool = %source.name,
                    reason = %why,
                    "custom tool not loaded"
                ),
            }
        }
        loaded
    }

    async fn build(
        &self,
        vault: Option<&SecretVault>,
        source: &ToolSource,
    ) -> Result<Arc<CustomTool>, String> {
        let def = parse_def(source)?;
        let mut secrets = Vec::new();
        for name in &def.secret_env {
            let vault = vault.ok_or("no vault key is configured for its secret environment")?;
            let value = vault
                .get(&source.tenant_id, &secret_owner(&def.name), name)
                .await
                .map_err(|e| format!("secret_env {name}: {e}"))?
                .ok_or_else(|| format!("secret_env {name}: not in the vault"))?;
            secrets.push((name.clone(), value));
        }
        let (_, runner) = self.live.as_ref().ok_or("no tool registry here")?;
        Ok(Arc::new(CustomTool::new(def, secrets, runner.clone())))
    }

    fn register(&self, tenant: &TenantId, agents: &[AgentId], tool: &Arc<CustomTool>) {
        let Some((registry, _)) = &self.live else {
            return;
        };
        for scope in scopes(tenant, agents) {
            if let Err(e) = registry.register(scope, tool.clone()) {
                tracing::warn!(tenant = %tenant, tool = %tool.def().name, error = %e, "custom tool not registered");
            }
        }
    }

    fn unregister(&self, tenant: &TenantId, name: &str, grants: &[ToolGrant]) {
        let agents: Vec<AgentId> = grants
            .iter()
            .filter(|g| g.source == name)
            .map(|g| g.agent.clone())
            .collect();
        if let Some((registry, _)) = &self.live {
            for scope in scopes(tenant, &agents) {
                registry.unregister(&scope, name);
            }
        }
    }

    /// Create or replace `def` for `tenant`, store `secrets` (the values of
    /// `def.secret_env`; a name already stored may be left out) and grant
    /// it to exactly `agents` (`*`: every agent).
    pub async fn put(
        &self,
        vault: &SecretVault,
        tenant: &TenantId,
        def: CustomToolDef,
        secrets: BTreeMap<String, Secret>,
        agents: Vec<AgentId>,
        now: UnixMillis,
    ) -> Result<CustomToolView, CustomToolError> {
        def.validate().map_err(CustomToolError::Invalid)?;
        if self
            .live
            .as_ref()
            .is_some_and(|(registry, _)| registry.is_builtin(&def.name))
            || exoclaw_tools::is_builtin_name(&def.name)
        {
            return Err(CustomToolError::NameTaken(format!(
                "name: {:?} is a built-in tool",
                def.name
            )));
        }
        if let Some(extra) = secrets.keys().find(|k| !def.secret_env.contains(k)) {
            return Err(CustomToolError::Invalid(format!(
                "secrets: {extra:?} is not in secret_env"
            )));
        }
        for a in &agents {
            let valid = a.as_str() == EVERY_AGENT
                || (!a.as_str().is_empty() && self.store.get_agent(tenant, a).await?.is_some());
            if !valid {
                return Err(CustomToolError::Invalid(format!(
                    "agents: no agent {:?}",
                    a.as_str()
                )));
            }
        }
        let _one = self.changing.lock().await;
        let existing = self
            .store
            .list_tool_sources(Some(tenant), ToolSourceKind::Custom)
            .await?;
        if existing.len() >= MAX_PER_TENANT && !existing.iter().any(|s| s.name == def.name) {
            return Err(CustomToolError::Invalid(format!(
                "a tenant has at most {MAX_PER_TENANT} custom tools; remove one first"
            )));
        }
        let owner = secret_owner(&def.name);
        for name in &def.secret_env {
            if !secrets.contains_key(name) && vault.get(tenant, &owner, name).await?.is_none() {
                return Err(CustomToolError::Invalid(format!(
                    "secrets: no value for {name:?} (in secret_env)"
                )));
            }
        }
        let old = self
            .store
            .get_tool_source(tenant, ToolSourceKind::Custom, &def.name)
            .await?;
        let grants = self
            .store
            .list_tool_grants(Some(tenant), ToolSourceKind::Custom)
            .await?;
        for (name, value) in &secrets {
            vault.put(tenant, &owner, name, value).await?;
            // Scrubbed from this tenant's outputs like any stored secret.
            let _ = exoclaw_guard::scrub::global().register_for(
                tenant.as_str(),
                &crate::runtime::guard::scrub_name(&owner, name),
                value.expose(),
            );
        }
        let source = ToolSource {
            tenant_id: tenant.clone(),
            kind: ToolSourceKind::Custom,
            name: def.name.clone(),
            spec: serde_json::to_value(&def)
                .map_err(|e| CustomToolError::Invalid(e.to_string()))?,
            created_at: old.as_ref().map_or(now, |o| o.created_at),
            updated_at: now,
        };
        self.store.put_tool_source(&source).await?;
        for g in grants.iter().filter(|g| g.source == def.name) {
            if !agents.contains(&g.agent) {
                self.store.delete_tool_grant(g).await?;
            }
        }
        for agent in &agents {
            let grant = ToolGrant {
                tenant_id: tenant.clone(),
                kind: ToolSourceKind::Custom,
                source: def.name.clone(),
                agent: agent.clone(),
                user: None,
            };
            self.store.put_tool_grant(&grant, now).await?;
        }
        self.unregister(tenant, &def.name, &grants);
        if self.live.is_some() {
            let tool = self
                .build(Some(vault), &source)
                .await
                .map_err(CustomToolError::Invalid)?;
            self.register(tenant, &agents, &tool);
        }
        Ok(CustomToolView {
            def,
            agents,
            created_at: source.created_at,
            updated_at: now,
        })
    }

    /// The tenant's custom tools, by name.
    pub async fn list(&self, tenant: &TenantId) -> Result<Vec<CustomToolView>, CustomToolError> {
        let sources = self
            .store
            .list_tool_sources(Some(tenant), ToolSourceKind::Custom)
            .await?;
        let grants = self
            .store
            .list_tool_grants(Some(tenant), ToolSourceKind::Custom)
            .await?;
        let mut out = Vec::new();
        for s in sources {
            let def = match parse_def(&s) {
                Ok(d) => d,
                Err(why) => {
                    tracing::warn!(tool = %s.name, reason = %why, "a stored custom tool is unreadable");
                    continue;
                }
            };
            out.push(CustomToolView {
                agents: grants
                    .iter()
                    .filter(|g| g.source == s.name)
                    .map(|g| g.agent.clone())
                    .collect(),
                def,
                created_at: s.created_at,
                updated_at: s.updated_at,
            });
        }
        Ok(out)
    }

    /// Stop offering `name`, delete it, its grants and its secrets.
    pub async fn remove(
        &self,
        vault: &SecretVault,
        tenant: &TenantId,
        name: &str,
    ) -> Result<(), CustomToolError> {
        let _one = self.changing.lock().await;
        let Some(source) = self
            .store
            .get_tool_source(tenant, ToolSourceKind::Custom, name)
            .await?
        else {
            return Err(CustomToolError::NotFound(name.to_owned()));
        };
        let grants = self
            .store
            .list_tool_grants(Some(tenant), ToolSourceKind::Custom)
            .await?;
        self.unregister(tenant, name, &grants);
        self.store
            .delete_tool_source(tenant, ToolSourceKind::Custom, name)
            .await?;
        let owner = secret_owner(name);
        if let Ok(def) = parse_def(&source) {
            for secret in def.secret_env {
                match vault.delete(tenant, &owner, &secret).await {
                    Ok(()) | Err(VaultError::Store(StoreError::NotFound)) => {}
                    Err(e) => return Err(e.into()),
                }
                exoclaw_guard::scrub::global().unregister_for(
                    tenant.as_str(),
                    &crate::runtime::guard::scrub_name(&owner, &secret),
                );
            }
        }
        Ok(())
    }
}
