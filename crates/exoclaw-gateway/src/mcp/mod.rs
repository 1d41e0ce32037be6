//! MCP servers as tool sources (`/v1/mcp/servers`, `/v1/mcp/grants`,
//! `exoclaw mcp`): a tenant's servers are stored (`tool_sources`, kind
//! `mcp`; secrets in the vault under `mcp:<server>`), each kept connected by
//! a restarting supervisor task (a crashed or unreachable server is marked
//! down and tried again with backoff, never blocking start-up), its tools
//! discovered, namespaced `<server>__<tool>`, refreshed on
//! `tools/list_changed`, and registered in the one tool registry for the
//! agents its grants name (deny by default: no grant, no tool). Their
//! output is untrusted content.

pub mod conn;
pub mod def;
pub mod http;
mod tool;

pub use conn::Launcher;
pub use def::{McpServerDef, Transport};

use crate::supervisor::{Supervisor, Task};
use exoclaw_core::provider::ToolSpec;
use exoclaw_core::store::{EVERY_AGENT, Store, StoreError, ToolGrant, ToolSource, ToolSourceKind};
use exoclaw_core::tool::ToolContext;
use exoclaw_core::{Secret, TenantId, UnixMillis};
use exoclaw_store::vault::{SecretVault, VaultError};
use exoclaw_tools::ToolRegistry;
use exoclaw_tools::registry::Scope;
use rmcp::service::{Peer, RoleClient};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;
use tokio::sync::Notify;

/// The vault owner of a server's secrets.
pub fn secret_owner(server: &str) -> String {
    format!("mcp:{server}")
}

/// Servers one tenant may have (each may hold a process and a connection).
pub const MAX_SERVERS_PER_TENANT: usize = 16;

/// How often a live connection is checked for a server that went away.
const WATCH_EVERY: Duration = Duration::from_millis(250);

/// Whether a server is usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerState {
    Starting,
    Up,
    Down,
}

/// A server's state as listed.
#[derive(Clone, Debug)]
pub struct ServerStatus {
    pub state: ServerState,
    /// Why it is down (scrubbed).
    pub error: Option<String>,
    /// Its tools as discovered (`<server>__<tool>`); offered to the agents
    /// its grants name.
    pub tools: Vec<String>,
}

/// Why a change was refused.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error("{0}")]
    Invalid(String),
    #[error("no MCP server named {0:?}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Vault(#[from] VaultError),
}

/// One configured server of one tenant.
pub(crate) struct Server {
    tenant: TenantId,
    def: McpServerDef,
    secrets: Vec<(String, Secret)>,
    status: RwLock<ServerStatus>,
    peer: RwLock<Option<Peer<RoleClient>>>,
    grants: RwLock<Vec<ToolGrant>>,
    /// What is in the registry now, to take out exactly that.
    registered: Mutex<Vec<(Scope, String)>>,
    changed: Arc<Notify>,
}

impl Server {
    fn peer(&self) -> Option<Peer<RoleClient>> {
        self.peer
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether a grant names `ctx`'s agent (or every agent) and user (or
    /// every user).
    fn permits(&self, ctx: &ToolContext) -> bool {
        self.grants
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|g| {
                (g.agent.as_str() == EVERY_AGENT || g.agent == ctx.agent)
                    && g.user.as_ref().is_none_or(|u| *u == ctx.user)
            })
    }

    fn set(&self, state: ServerState, error: Option<String>) {
        let mut s = self.status.write().unwrap_or_else(PoisonError::into_inner);
        s.state = state;
        s.error = error;
    }

    fn status(&self) -> ServerStatus {
        self.status
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Everything a server's task needs besides the server.
struct Shared {
    registry: Arc<ToolRegistry>,
    launcher: Launcher,
    supervisor: Supervisor,
    /// `<data dir>/mcp`: a directory per tenant and stdio server, its
    /// `/workspace`.
    root: PathBuf,
}

/// A server and the task that keeps it connected.
struct Running {
    server: Arc<Server>,
    task: Option<Task>,
}

/// The MCP servers of every tenant; for the CLI ([`McpServers::offline`])
/// only the stored definitions, grants and secrets.
pub struct McpServers {
    store: Arc<dyn Store>,
    shared: Option<Arc<Shared>>,
    running: tokio::sync::Mutex<HashMap<(TenantId, String), Running>>,
    /// One change (put, remove) at a time: a server's old tools leave the
    /// registry before its new ones arrive.
    changing: tokio::sync::Mutex<()>,
}

/// A server as listed: its definition, its grants and (when this process
/// runs it) its state.
#[derive(Clone, Debug)]
pub struct ServerView {
    pub def: McpServerDef,
    pub status: Option<ServerStatus>,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

fn scopes(tenant: &TenantId, grants: &[ToolGrant]) -> Vec<Scope> {
    if grants.iter().any(|g| g.agent.as_str() == EVERY_AGENT) {
        return vec![Scope::Tenant(tenant.clone())];
    }
    let mut out: Vec<Scope> = Vec::new();
    for g in grants {
        let s = Scope::Agent(tenant.clone(), g.agent.clone());
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// Take the server's tools out of the registry.
fn unregister(shared: &Shared, server: &Server) {
    let mut registered = server
        .registered
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    for (scope, name) in registered.drain(..) {
        shared.registry.unregister(&scope, &name);
    }
    server
        .status
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .tools
        .clear();
}

/// Put `tools` (as listed by the server) into the registry for the scopes
/// the grants name, replacing what was there.
fn register(shared: &Shared, server: &Arc<Server>, tools: &[rmcp::model::Tool]) {
    unregister(shared, server);
    let timeout = Duration::from_secs(
        server
            .def
            .timeout_sec
            .unwrap_or(def::DEFAULT_CALL_TIMEOUT_SEC),
    );
    let grants = server
        .grants
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let scopes = scopes(&server.tenant, &grants);
    let mut names = Vec::new();
    let mut registered = Vec::new();
    for t in tools {
        let name = format!("{}__{}", server.def.name, t.name);
        let tool = Arc::new(tool::McpTool {
            server: server.clone(),
            remote: t.name.to_string(),
            spec: ToolSpec {
                name: name.clone(),
                description: t.description.as_deref().unwrap_or_default().to_owned(),
                parameters: serde_json::Value::Object((*t.input_schema).clone()),
            },
            timeout,
        });
        let mut ok = true;
        for scope in &scopes {
            if let Err(e) = shared.registry.register(scope.clone(), tool.clone()) {
                tracing::warn!(server = %server.def.name, tool = %name, error = %e, "mcp tool not registered");
                ok = false;
                break;
            }
            registered.push((scope.clone(), name.clone()));
        }
        if ok {
            names.push(name);
        }
    }
    *server
        .registered
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = registered;
    server
        .status
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .tools = names;
}

/// One connection's life: connect, list and register the tools, follow
/// list changes, and end when the server goes away (an error: the
/// supervisor starts it again after a backoff) or when stopped.
async fn serve(
    shared: Arc<Shared>,
    server: Arc<Server>,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    server.set(ServerState::Starting, None);
    let dir = shared
        .root
        .join(server.tenant.as_str())
        .join(&server.def.name);
    if server.def.transport == Transport::Stdio {
        create_private_dir(&dir)?;
    }
    let log = conn::StderrLog {
        supervisor: shared.supervisor.clone(),
        tenant: server.tenant.as_str().to_owned(),
        server: server.def.name.clone(),
    };
    let connected = tokio::select! {
        () = stop.cancelled() => return Ok(()),
        c = conn::connect(&server.def, &server.secrets, &shared.launcher, &dir, server.changed.clone(), &log) => c,
    };
    let connection = match connected {
        Ok(c) => c,
        Err(why) => {
            server.set(ServerState::Down, Some(why.clone()));
            tracing::warn!(tenant = %server.tenant, server = %server.def.name, reason = %why, "mcp server down");
            anyhow::bail!("mcp server {} is down: {why}", server.def.name);
        }
    };
    let peer = connection.peer().clone();
    match conn::list_tools(&peer).await {
        Ok(tools) => register(&shared, &server, &tools),
        Err(why) => {
            server.set(ServerState::Down, Some(why.clone()));
            connection.close().await;
            anyhow::bail!("mcp server {}: {why}", server.def.name);
        }
    }
    *server.peer.write().unwrap_or_else(PoisonError::into_inner) = Some(peer.clone());
    server.set(ServerState::Up, None);
    tracing::info!(tenant = %server.tenant, server = %server.def.name, tools = server.status().tools.len(), "mcp server up");
    let mut tick = tokio::time::interval(WATCH_EVERY);
    let end = loop {
        tokio::select! {
            () = stop.cancelled() => break None,
            () = server.changed.notified() => match conn::list_tools(&peer).await {
                Ok(tools) => register(&shared, &server, &tools),
                Err(why) => break Some(why),
            },
            _ = tick.tick() => {
                if connection.service.is_closed() || peer.is_transport_closed() {
                    break Some("the server closed the connection".to_owned());
                }
            }
        }
    };
    *server.peer.write().unwrap_or_else(PoisonError::into_inner) = None;
    unregister(&shared, &server);
    connection.close().await;
    match end {
        None => {
            server.set(ServerState::Down, Some("stopped".into()));
            Ok(())
        }
        Some(why) => {
            server.set(ServerState::Down, Some(why.clone()));
            tracing::warn!(tenant = %server.tenant, server = %server.def.name, reason = %why, "mcp server down; restarting");
            anyhow::bail!("mcp server {}: {why}", server.def.name)
        }
    }
}

fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    Ok(())
}

fn parse(source: &ToolSource) -> Result<McpServerDef, String> {
    let def: McpServerDef =
        serde_json::from_value(source.spec.clone()).map_err(|e| e.to_string())?;
    def.validate()?;
    Ok(def)
}

impl McpServers {
    /// Servers that run in this process: stdio ones through `launcher`,
    /// their tasks owned by `supervisor`, their tools in `registry`.
    pub fn new(
        store: Arc<dyn Store>,
        registry: Arc<ToolRegistry>,
        launcher: Launcher,
        supervisor: Supervisor,
        data_dir: &std::path::Path,
    ) -> Self {
        Self {
            store,
            shared: Some(Arc::new(Shared {
                registry,
                launcher,
                supervisor,
                root: data_dir.join("mcp"),
            })),
            running: tokio::sync::Mutex::new(HashMap::new()),
            changing: tokio::sync::Mutex::new(()),
        }
    }

    /// Definitions, grants and secrets only (the CLI).
    pub fn offline(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            shared: None,
            running: tokio::sync::Mutex::new(HashMap::new()),
            changing: tokio::sync::Mutex::new(()),
        }
    }

    /// Start every tenant's servers (start-up): each connects in its own
    /// task, so an unreachable one is marked down without holding anything
    /// up. Returns how many were started.
    pub async fn load(
        &self,
        vault: Option<&SecretVault>,
        configured: &[def::ConfiguredServer],
    ) -> usize {
        self.store_configured(configured).await;
        let (sources, grants) = match tokio::try_join!(
            self.store.list_tool_sources(None, ToolSourceKind::Mcp),
            self.store.list_tool_grants(None, ToolSourceKind::Mcp)
        ) {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the MCP servers; none is started");
                return 0;
            }
        };
        let mut started = 0;
        for source in sources {
            let def = match parse(&source) {
                Ok(d) => d,
                Err(why) => {
                    tracing::warn!(tenant = %source.tenant_id, server = %source.name, reason = %why, "mcp server not loaded");
                    continue;
                }
            };
            let secrets = match read_secrets(vault, &source.tenant_id, &def).await {
                Ok(s) => s,
                Err(why) => {
                    tracing::warn!(tenant = %source.tenant_id, server = %source.name, reason = %why, "mcp server not loaded");
                    continue;
                }
            };
            let mine: Vec<ToolGrant> = grants
                .iter()
                .filter(|g| g.tenant_id == source.tenant_id && g.source == source.name)
                .cloned()
                .collect();
            self.start(&source.tenant_id, def, secrets, mine).await;
            started += 1;
        }
        started
    }

    /// Store the servers of `tools.mcp.servers` for the default tenant and
    /// grant them to their agents (a bad one is logged and skipped).
    async fn store_configured(&self, configured: &[def::ConfiguredServer]) {
        let tenant = TenantId::new(exoclaw_core::DEFAULT_TENANT);
        let now = exoclaw_core::now_ms();
        for c in configured {
            let name = c.server.name.clone();
            let stored = async {
                c.server.validate().map_err(McpError::Invalid)?;
                let old = self
                    .store
                    .get_tool_source(&tenant, ToolSourceKind::Mcp, &name)
                    .await?;
                let spec = serde_json::to_value(&c.server)
                    .map_err(|e| McpError::Invalid(e.to_string()))?;
                if old.as_ref().map(|o| &o.spec) != Some(&spec) {
                    self.store
                        .put_tool_source(&ToolSource {
                            tenant_id: tenant.clone(),
                            kind: ToolSourceKind::Mcp,
                            name: name.clone(),
                            spec,
                            created_at: old.as_ref().map_or(now, |o| o.created_at),
                            updated_at: now,
                        })
                        .await?;
                }
                for agent in &c.agents {
                    let grant = ToolGrant {
                        tenant_id: tenant.clone(),
                        kind: ToolSourceKind::Mcp,
                        source: name.clone(),
                        agent: exoclaw_core::AgentId::from(agent.as_str()),
                        user: None,
                    };
                    self.store.put_tool_grant(&grant, now).await?;
                }
                Ok::<(), McpError>(())
            }
            .await;
            if let Err(e) = stored {
                tracing::warn!(server = %name, error = %e, "tools.mcp.servers: server not stored");
            }
        }
    }

    async fn start(
        &self,
        tenant: &TenantId,
        def: McpServerDef,
        secrets: Vec<(String, Secret)>,
        grants: Vec<ToolGrant>,
    ) {
        let Some(shared) = &self.shared else { return };
        let name = def.name.clone();
        let key = (tenant.clone(), name);
        // The old connection goes first: its tools leave the registry
        // before the new one's arrive under the same names.
        let old = self.running.lock().await.remove(&key);
        if let Some(old) = old {
            stop(shared, old).await;
        }
        let server = Arc::new(Server {
            tenant: tenant.clone(),
            def,
            secrets,
            status: RwLock::new(ServerStatus {
                state: ServerState::Starting,
                error: None,
                tools: Vec::new(),
            }),
            peer: RwLock::new(None),
            grants: RwLock::new(grants),
            registered: Mutex::new(Vec::new()),
            changed: Arc::new(Notify::new()),
        });
        let task = {
            let (shared, server) = (shared.clone(), server.clone());
            shared
                .supervisor
                .clone()
                .start_restarting("mcp.server", move |stop| {
                    serve(shared.clone(), server.clone(), stop)
                })
        };
        let replaced = self.running.lock().await.insert(
            key,
            Running {
                server,
                task: Some(task),
            },
        );
        if let Some(replaced) = replaced {
            // Started concurrently by another change of the same server.
            stop(shared, replaced).await;
        }
    }

    /// Create or replace a server, store `secrets` (values of its
    /// `secret_env` / `secret_headers`; one already stored may be left
    /// out), and (re)start it. Its grants stay.
    pub async fn put(
        &self,
        vault: &SecretVault,
        tenant: &TenantId,
        def: McpServerDef,
        secrets: BTreeMap<String, Secret>,
        now: UnixMillis,
    ) -> Result<ServerView, McpError> {
        def.validate().map_err(McpError::Invalid)?;
        let _one = self.changing.lock().await;
        if let Some(extra) = secrets
            .keys()
            .find(|k| !def.secret_names().any(|n| n == *k))
        {
            return Err(McpError::Invalid(format!(
                "secrets: {extra:?} is not in secret_env or secret_headers"
            )));
        }
        let old = self
            .store
            .get_tool_source(tenant, ToolSourceKind::Mcp, &def.name)
            .await?;
        if old.is_none()
            && self
                .store
                .list_tool_sources(Some(tenant), ToolSourceKind::Mcp)
                .await?
                .len()
                >= MAX_SERVERS_PER_TENANT
        {
            return Err(McpError::Invalid(format!(
                "a tenant has at most {MAX_SERVERS_PER_TENANT} MCP servers; remove one first"
            )));
        }
        let owner = secret_owner(&def.name);
        for name in def.secret_names() {
            if !secrets.contains_key(name) && vault.get(tenant, &owner, name).await?.is_none() {
                return Err(McpError::Invalid(format!("secrets: no value for {name:?}")));
            }
        }
        for (name, value) in &secrets {
            vault.put(tenant, &owner, name, value).await?;
            let _ = exoclaw_guard::scrub::global().register_for(
                tenant.as_str(),
                &format!("{owner}/{name}"),
                value.expose(),
            );
        }
        let source = ToolSource {
            tenant_id: tenant.clone(),
            kind: ToolSourceKind::Mcp,
            name: def.name.clone(),
            spec: serde_json::to_value(&def).map_err(|e| McpError::Invalid(e.to_string()))?,
            created_at: old.as_ref().map_or(now, |o| o.created_at),
            updated_at: now,
        };
        self.store.put_tool_source(&source).await?;
        if self.shared.is_some() {
            let all = self
                .store
                .list_tool_grants(Some(tenant), ToolSourceKind::Mcp)
                .await?;
            let grants = all.into_iter().filter(|g| g.source == def.name).collect();
            let secrets = read_secrets(Some(vault), tenant, &def)
                .await
                .map_err(McpError::Invalid)?;
            self.start(tenant, def.clone(), secrets, grants).await;
        }
        Ok(ServerView {
            status: self.status_of(tenant, &def.name).await,
            def,
            created_at: source.created_at,
            updated_at: now,
        })
    }

    async fn status_of(&self, tenant: &TenantId, name: &str) -> Option<ServerStatus> {
        self.running
            .lock()
            .await
            .get(&(tenant.clone(), name.to_owned()))
            .map(|r| r.server.status())
    }

    /// The tenant's servers, by name.
    pub async fn list(&self, tenant: &TenantId) -> Result<Vec<ServerView>, McpError> {
        let sources = self
            .store
            .list_tool_sources(Some(tenant), ToolSourceKind::Mcp)
            .await?;
        let mut out = Vec::new();
        for s in sources {
            match parse(&s) {
                Ok(def) => out.push(ServerView {
                    status: self.status_of(tenant, &def.name).await,
                    def,
                    created_at: s.created_at,
                    updated_at: s.updated_at,
                }),
                Err(why) => {
                    tracing::warn!(server = %s.name, reason = %why, "a stored MCP server is unreadable");
                }
            }
        }
        Ok(out)
    }

    /// Stop a server, take its tools out, delete it, its grants and its
    /// secrets.
    pub async fn remove(
        &self,
        vault: &SecretVault,
        tenant: &TenantId,
        name: &str,
    ) -> Result<(), McpError> {
        let _one = self.changing.lock().await;
        let Some(source) = self
            .store
            .get_tool_source(tenant, ToolSourceKind::Mcp, name)
            .await?
        else {
            return Err(McpError::NotFound(name.to_owned()));
        };
        let running = self
            .running
            .lock()
            .await
            .remove(&(tenant.clone(), name.to_owned()));
        if let (Some(shared), Some(r)) = (&self.shared, running) {
            stop(shared, r).await;
        }
        self.store
            .delete_tool_source(tenant, ToolSourceKind::Mcp, name)
            .await?;
        if let Ok(def) = parse(&source) {
            let owner = secret_owner(name);
            for secret in def.secret_names() {
                match vault.delete(tenant, &owner, secret).await {
                    Ok(()) | Err(VaultError::Store(StoreError::NotFound)) => {}
                    Err(e) => return Err(e.into()),
                }
                exoclaw_guard::scrub::global()
                    .unregister_for(tenant.as_str(), &format!("{owner}/{secret}"));
            }
        }
        Ok(())
    }

    /// The tenant's grants.
    pub async fn grants(&self, tenant: &TenantId) -> Result<Vec<ToolGrant>, McpError> {
        Ok(self
            .store
            .list_tool_grants(Some(tenant), ToolSourceKind::Mcp)
            .await?)
    }

    /// Grant (`add`) or revoke a server's tools for an agent (and user).
    pub async fn set_grant(&self, grant: &ToolGrant, add: bool) -> Result<(), McpError> {
        if grant.kind != ToolSourceKind::Mcp {
            return Err(McpError::Invalid("kind: must be mcp".into()));
        }
        if add {
            if grant.agent.as_str() != EVERY_AGENT
                && self
                    .store
                    .get_agent(&grant.tenant_id, &grant.agent)
                    .await?
                    .is_none()
            {
                return Err(McpError::Invalid(format!(
                    "agent: no agent {:?}",
                    grant.agent.as_str()
                )));
            }
            match self
                .store
                .put_tool_grant(grant, exoclaw_core::now_ms())
                .await
            {
                Err(StoreError::NotFound) => {
                    return Err(McpError::NotFound(grant.source.clone()));
                }
                r => r?,
            }
        } else {
            self.store.delete_tool_grant(grant).await?;
        }
        let grants: Vec<ToolGrant> = self
            .grants(&grant.tenant_id)
            .await?
            .into_iter()
            .filter(|g| g.source == grant.source)
            .collect();
        let running = self.running.lock().await;
        if let (Some(shared), Some(r)) = (
            &self.shared,
            running.get(&(grant.tenant_id.clone(), grant.source.clone())),
        ) {
            *r.server
                .grants
                .write()
                .unwrap_or_else(PoisonError::into_inner) = grants;
            // Re-register what the server offers now under the new scopes.
            r.server.changed.notify_one();
            if r.server.peer().is_none() {
                unregister(shared, &r.server);
            }
        }
        Ok(())
    }

    /// Connect to a stored server once, list its tools and disconnect
    /// (`exoclaw mcp test`): the tools' names, or why it failed.
    pub async fn test(
        &self,
        vault: Option<&SecretVault>,
        tenant: &TenantId,
        name: &str,
        launcher: &Launcher,
        data_dir: &std::path::Path,
        supervisor: &Supervisor,
    ) -> Result<Result<Vec<String>, String>, McpError> {
        let Some(source) = self
            .store
            .get_tool_source(tenant, ToolSourceKind::Mcp, name)
            .await?
        else {
            return Err(McpError::NotFound(name.to_owned()));
        };
        let def = parse(&source).map_err(McpError::Invalid)?;
        let secrets = read_secrets(vault, tenant, &def)
            .await
            .map_err(McpError::Invalid)?;
        let dir = data_dir.join("mcp").join(tenant.as_str()).join(name);
        if def.transport == Transport::Stdio {
            create_private_dir(&dir).map_err(|e| McpError::Invalid(e.to_string()))?;
        }
        let log = conn::StderrLog {
            supervisor: supervisor.clone(),
            tenant: tenant.as_str().to_owned(),
            server: name.to_owned(),
        };
        let c = match conn::connect(
            &def,
            &secrets,
            launcher,
            &dir,
            Arc::new(Notify::new()),
            &log,
        )
        .await
        {
            Ok(c) => c,
            Err(why) => return Ok(Err(why)),
        };
        let listed = conn::list_tools(c.peer()).await;
        c.close().await;
        Ok(listed.map(|tools| {
            tools
                .iter()
                .map(|t| format!("{name}__{}", t.name))
                .collect()
        }))
    }

    /// Stop every server (shutdown).
    pub async fn stop_all(&self) {
        let Some(shared) = &self.shared else { return };
        let all: Vec<Running> = self.running.lock().await.drain().map(|(_, r)| r).collect();
        for r in all {
            stop(shared, r).await;
        }
    }
}

async fn stop(shared: &Shared, mut r: Running) {
    if let Some(task) = r.task.take() {
        task.stop(Duration::from_secs(5)).await;
    }
    unregister(shared, &r.server);
    *r.server
        .peer
        .write()
        .unwrap_or_else(PoisonError::into_inner) = None;
}

async fn read_secrets(
    vault: Option<&SecretVault>,
    tenant: &TenantId,
    def: &McpServerDef,
) -> Result<Vec<(String, Secret)>, String> {
    let mut out = Vec::new();
    let owner = secret_owner(&def.name);
    for name in def.secret_names() {
        let vault = vault.ok_or("no vault key is configured for its secrets")?;
        let value = vault
            .get(tenant, &owner, name)
            .await
            .map_err(|e| format!("{name}: {e}"))?
            .ok_or_else(|| format!("{name}: not in the vault"))?;
        out.push((name.clone(), value));
    }
    Ok(out)
}
