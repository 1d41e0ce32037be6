//! The agent runtime of the gateway: resolves an agent to a provider and a
//! model, assembles its system prompt and tool policy, and starts turns of
//! the core agent loop under the run owner ([`runs::Runs`]). HTTP, WebSocket
//! and the CLI chat all start turns here.

pub mod agent_settings;
pub mod approval;
pub mod bindings;
pub mod context;
pub mod cron;
pub mod custom_tools;
pub mod delegation;
pub mod directory;
pub mod gates;
pub mod guard;
pub mod handoff;
pub mod lanes;
mod launch;
pub mod llm;
pub mod recover;
pub mod runs;
pub mod teams;
pub mod tools;
pub mod turn;
pub mod write_behind;

use agent_settings::AgentSettings;

use crate::access::Principal;
use crate::config::Settings;
use exoclaw_core::agent::{AgentEvent, Pricing, RunOutcome};
use exoclaw_core::model::{Agent, Session};
use exoclaw_core::store::{Store, StoreError};
use exoclaw_core::tool::{ToolContext, ToolError, ToolOutput};
use exoclaw_core::{AgentId, SessionId};
use exoclaw_store::vault::SecretVault;
use exoclaw_tools::{InvokeMode, ToolPolicy, ToolRegistry};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Why a turn could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("no agent {0:?}")]
    NoAgent(String),
    #[error("{0}")]
    NoProvider(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot prepare the workspace: {0}")]
    Workspace(String),
    /// `gateway.injection_action = block` and the message matched these rules.
    #[error("the message was refused: it contains prompt-injection patterns ({})", .0.join(", "))]
    InjectionBlocked(Vec<&'static str>),
    /// The agent's `disabled` setting is on.
    #[error("agent {0:?} is disabled")]
    Disabled(String),
}

/// One tool call requested through the API.
pub struct ToolCallRequest<'a> {
    pub agent: &'a str,
    pub session: Option<SessionId>,
    pub tool: &'a str,
    pub args: &'a serde_json::Value,
    pub mode: InvokeMode,
}

/// A started turn: read `events` until they end, then [`Turn::end`].
pub struct Turn {
    pub session: Session,
    pub events: mpsc::Receiver<AgentEvent>,
    outcome: oneshot::Receiver<runs::RunEnd<Result<RunOutcome, StoreError>>>,
    pub cancel: CancellationToken,
    /// The run's state (whether it read untrusted content).
    pub run: Arc<exoclaw_core::tool::RunState>,
}

/// How a turn ended, as its callers report it.
#[derive(Debug)]
pub enum TurnEnd {
    /// The agent loop ran to an end: completed, cancelled or failed as the
    /// loop saw it (`RunOutcome::finish`).
    Ran(RunOutcome),
    /// The run did not run to an end of its own: the scheduler refused it
    /// (`server.busy`), it was stopped while it waited (`cancelled`), or the
    /// gateway broke it (`internal`: a store failure, a panic, a lost task;
    /// the cause is in the gateway log). `message` is what the user may
    /// see.
    Broken { code: &'static str, message: String },
}

impl Turn {
    /// Wait for the run's end and flatten its layers (scheduler, task,
    /// panic, store) into one answer.
    pub async fn end(&mut self) -> TurnEnd {
        use runs::RunEnd;
        let broken = |code, message: &str| TurnEnd::Broken {
            code,
            message: message.to_owned(),
        };
        match (&mut self.outcome).await {
            Ok(RunEnd::Done(Ok(o))) => TurnEnd::Ran(o),
            Ok(RunEnd::Done(Err(e))) => {
                tracing::error!(error = %e, session = %self.session.id, "store failure during a run");
                broken("internal", "internal error; see the gateway log")
            }
            // Logged with the panic's text where it was caught (`runs`).
            Ok(RunEnd::Panicked(message)) => broken("internal", &message),
            Ok(RunEnd::Refused(r @ lanes::Refused::Cancelled { .. })) => broken(
                "cancelled",
                &format!("the run was stopped before it started ({r})"),
            ),
            Ok(RunEnd::Refused(r)) => broken("server.busy", &r.to_string()),
            Err(_) => broken("internal", "the run ended without a result"),
        }
    }
}

/// The runtime, for what is built before it and needs it later (the tools
/// that start runs): filled once the runtime exists, empty while it stops.
pub type Late = Arc<std::sync::OnceLock<std::sync::Weak<Runtime>>>;

/// The gateway's channels as `channel_send_file` reaches them: filled once
/// they exist (`channels::Channels::build`); empty in a gateway without
/// channels, where the tool says there is no channel.
pub type LateChannels =
    Arc<std::sync::OnceLock<std::sync::Weak<dyn exoclaw_core::tool::ChannelFiles>>>;

pub struct Runtime {
    /// This runtime, for the delegation port its runs carry.
    me: std::sync::Weak<Runtime>,
    /// Delegations and subagents in flight, their limits and their
    /// announcements.
    pub delegations: delegation::Delegations,
    pub store: Arc<dyn Store>,
    /// The store's traces, counted into the metrics on the way.
    traces: Arc<dyn exoclaw_core::store::TraceStore>,
    /// Trace, span and usage rows on their way to the store (under `traces`,
    /// and the usage store of the budgets); flushed by [`Self::flush_queues`].
    writes: Arc<write_behind::WriteBehind>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Rebuilt when a provider key is stored or deleted through the vault.
    llm: std::sync::RwLock<Arc<llm::Llm>>,
    /// Providers of tenants that stored their own keys (`/v1/providers`);
    /// other tenants use the gateway's.
    tenant_llms:
        std::sync::RwLock<std::collections::HashMap<exoclaw_core::TenantId, Arc<llm::Llm>>>,
    /// The providers' egress client (see `crate::egress::provider_client`).
    client: exoclaw_egress::EgressClient,
    pub tools: Arc<ToolRegistry>,
    /// What the users' and tenants' workspaces hold, against their quotas:
    /// one ledger for the file tools, `exec` and the files channels save.
    pub workspace_quota: Arc<exoclaw_tools::quota::QuotaLedger>,
    /// Tools tenants define at run time (`/v1/tools/custom`).
    pub custom_tools: custom_tools::CustomTools,
    /// MCP servers as tool sources (`/v1/mcp/servers`).
    pub mcp: crate::mcp::McpServers,
    pub pricing: Arc<dyn Pricing>,
    /// The tenants' agents, links and teams as of their directory version.
    directories: directory::Directories,
    /// Hot sessions' history windows (`agents.window_cache_mib`).
    pub windows: Arc<exoclaw_core::agent::window::Windows>,
    pub runs: runs::Runs,
    pub home: PathBuf,
    pub settings: Arc<Settings>,
    /// Budget, provider-failure and other alerts (None: not watched).
    alerts: Option<crate::alerts::Alerts>,
    /// The OTLP export task, flushed by [`Self::flush_queues`].
    #[cfg(feature = "otel")]
    telemetry: std::sync::Mutex<Option<crate::telemetry::ExportTask>>,
    /// The owner of the gateway's background tasks.
    pub supervisor: crate::supervisor::Supervisor,
    /// Cron jobs' scheduler wake-up and webhook client.
    pub cron: cron::CronState,
    /// Notified when something outside a channel (a cron job) queued an
    /// outbound message: the channels' senders look at once.
    pub outbox_queued: Arc<tokio::sync::Notify>,
    /// Long-term memory (the memory tools, recall, `/v1/memory`).
    pub memory: Arc<crate::memory::MemoryBank>,
    /// Every tenant's own limits, narrowing the configured ones (read per
    /// call by the exec and web tools and the budget decorator; made
    /// current by [`Self::directory`]).
    pub tenant_limits: Arc<crate::tenants::TenantLimits>,
    /// Skills (the skill tools, the prompt's offer, `/v1/skills`).
    pub skills: Arc<crate::skills::SkillLibrary>,
    /// The channels, for `channel_send_file` (set by `Channels::build`).
    pub channel_files: LateChannels,
}

impl Runtime {
    /// The alerts handle, when alerts are watched (the dashboard lists the
    /// recent ones).
    pub fn alerts(&self) -> Option<&crate::alerts::Alerts> {
        self.alerts.as_ref()
    }

    /// Wire the runtime from settings: the providers' egress client, the providers and
    /// their decorators (keys from the environment, else from `vault`), the
    /// tool registry, and the trace store decorators (OTLP export with
    /// `telemetry.enabled`, provider-failure alerts, metrics).
    pub async fn build(
        settings: Arc<Settings>,
        store: Arc<dyn Store>,
        vault: Option<&SecretVault>,
        metrics: Arc<crate::metrics::Metrics>,
        alerts: Option<crate::alerts::Alerts>,
        supervisor: crate::supervisor::Supervisor,
        owner: String,
    ) -> anyhow::Result<Arc<Self>> {
        let client = crate::egress::provider_client(&settings)?;
        let tenant_limits = crate::tenants::TenantLimits::new(settings.clone());
        if settings.config.agents.defaults.sandbox.network_enabled {
            tenant_limits.set_proxies(tools::tenant_proxies(
                settings.clone(),
                store.clone(),
                supervisor.clone(),
            ));
        }
        let default_tenant = exoclaw_core::TenantId::new(exoclaw_core::DEFAULT_TENANT);
        let keys = stored_provider_keys(&settings, vault, &default_tenant).await;
        let writes = write_behind::WriteBehind::start(store.clone(), &supervisor);
        let llm = llm::Llm::build(
            &settings,
            &client,
            writes.clone(),
            &keys,
            false,
            alerts.as_ref(),
            Some(tenant_limits.budgets()),
        )?;
        let mut tenant_llms = std::collections::HashMap::new();
        if let Some(vault) = vault {
            for tenant in store.list_tenants().await? {
                if tenant.id == default_tenant {
                    continue;
                }
                let keys = stored_provider_keys(&settings, Some(vault), &tenant.id).await;
                if !keys.is_empty() {
                    let own = llm::Llm::build(
                        &settings,
                        &client,
                        writes.clone(),
                        &keys,
                        true,
                        alerts.as_ref(),
                        Some(tenant_limits.budgets()),
                    )?;
                    tenant_llms.insert(tenant.id, Arc::new(own));
                }
            }
        }
        let pricing: Arc<dyn Pricing> = Arc::new(llm::Prices(llm.prices.clone()));
        let late: Late = Arc::default();
        let memory = crate::memory::MemoryBank::new(
            store.clone(),
            crate::memory::embedder(&settings, &client)?,
            settings.config.memory.clone(),
        );
        if crate::memory::reembed::start(&memory, &supervisor) {
            tracing::info!("memory re-embedding job started");
        }
        let skills = crate::skills::SkillLibrary::new(
            store.clone(),
            memory.embedder().cloned(),
            settings.config.skills.clone(),
        );
        let gateway_skills = skills
            .load_gateway_skills(&settings.home.root().join("skills"))
            .await;
        if gateway_skills > 0 {
            tracing::info!(skills = gateway_skills, "gateway skills loaded");
        }
        if crate::skills::reembed::start(&skills, &supervisor) {
            tracing::info!("skills re-embedding job started");
        }
        let channel_files: LateChannels = Arc::default();
        let (tools, runner, workspace_quota) = tools::registry(
            &settings,
            store.clone(),
            &late,
            &memory,
            &tenant_limits,
            &skills,
            &channel_files,
        )?;
        let custom_tools = custom_tools::CustomTools::new(store.clone(), tools.clone(), runner);
        let loaded = custom_tools.load(vault).await;
        if loaded > 0 {
            tracing::info!(tools = loaded, "custom tools offered");
        }
        let (sandbox, policy) = tools::sandbox(&settings)?;
        let mcp = crate::mcp::McpServers::new(
            store.clone(),
            tools.clone(),
            crate::mcp::Launcher {
                sandbox: Arc::new(sandbox),
                policy,
                egress: crate::egress::mcp_client(&settings)?,
            },
            supervisor.clone(),
            settings.home.root(),
        );
        let servers = mcp.load(vault, &settings.config.tools.mcp.servers).await;
        if servers > 0 {
            tracing::info!(servers, "mcp servers starting");
        }
        tracing::info!(providers = ?llm.provider_names(), "LLM providers configured");
        let mut traces: Arc<dyn exoclaw_core::store::TraceStore> =
            Arc::new(guard::ScrubbedTraces(writes.clone()));
        #[cfg(feature = "otel")]
        let mut telemetry = None;
        #[cfg(feature = "otel")]
        if let (true, Some(endpoint)) = (
            settings.config.telemetry.enabled,
            settings.config.telemetry.endpoint.as_deref(),
        ) {
            let client = crate::egress::endpoint_client(
                &settings,
                "telemetry.endpoint",
                &crate::telemetry::traces_url(endpoint),
            )?;
            let (exporter, task) = crate::telemetry::start(
                &settings.config.telemetry,
                client,
                metrics.telemetry.clone(),
                &supervisor,
            )?;
            telemetry = Some(task);
            traces = Arc::new(crate::telemetry::ExportedTraces {
                inner: traces,
                exporter,
            });
        }
        if let Some(a) = &alerts {
            traces = Arc::new(crate::alerts::AlertingTraces {
                inner: traces,
                alerts: a.clone(),
            });
        }
        let traces: Arc<dyn exoclaw_core::store::TraceStore> =
            Arc::new(crate::metrics::MeteredTraces {
                inner: traces,
                metrics: metrics.clone(),
            });
        let delegations = delegation::Delegations::new(owner);
        let runs = runs::Runs::new(lanes::Lanes::new(&settings.config.scheduler, &metrics));
        let cron = cron::CronState::new(&settings)?;
        let windows = Arc::new(exoclaw_core::agent::window::Windows::new(
            usize::try_from(
                settings
                    .config
                    .agents
                    .window_cache_mib
                    .saturating_mul(1 << 20),
            )
            .unwrap_or(usize::MAX),
            Duration::from_secs(settings.config.agents.window_cache_idle_sec),
        ));
        Ok(Arc::new_cyclic(|me| {
            let _ = late.set(me.clone());
            Self {
                me: me.clone(),
                delegations,
                traces,
                writes,
                metrics,
                store,
                llm: std::sync::RwLock::new(Arc::new(llm)),
                tenant_llms: std::sync::RwLock::new(tenant_llms),
                client,
                tools,
                workspace_quota,
                custom_tools,
                mcp,
                pricing,
                windows,
                directories: directory::Directories::default(),
                runs,
                home: settings.home.root().to_path_buf(),
                settings,
                alerts,
                #[cfg(feature = "otel")]
                telemetry: std::sync::Mutex::new(telemetry),
                supervisor,
                cron,
                outbox_queued: Arc::default(),
                memory,
                tenant_limits,
                skills,
                channel_files,
            }
        }))
    }

    /// Commit the trace, span and usage rows still queued, then send the
    /// spans still queued for the collector (with `telemetry.enabled`),
    /// within `grace` each. Call it after the runs drained and before the
    /// store closes; rows written later go to the store at once.
    pub async fn flush_queues(&self, grace: Duration) {
        self.writes.shutdown(grace).await;
        #[cfg(feature = "otel")]
        {
            let task = self
                .telemetry
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            if let Some(task) = task {
                task.flush(grace).await;
            }
        }
        #[cfg(not(feature = "otel"))]
        let _ = grace;
    }

    /// The memory recall section of `agent`'s prompt for `input`, when
    /// the agent recalls (its `memory_recall`, else `memory.recall.enabled`).
    pub(crate) async fn recall(
        &self,
        who: &Principal,
        agent: &AgentId,
        settings: &AgentSettings,
        input: &str,
    ) -> String {
        let on = settings
            .memory_recall
            .unwrap_or(self.settings.config.memory.recall.enabled);
        if !on {
            return String::new();
        }
        let reader = crate::memory::Reader {
            tenant: &who.tenant,
            agent,
            user: Some(&who.user),
        };
        crate::memory::recall::section(&self.memory, &reader, input).await
    }

    /// The tool policy for `agent`: gateway and agent-default lists from the
    /// config plus the agent's own lists.
    pub fn tool_policy(&self, agent: &Agent) -> ToolPolicy {
        let c = &self.settings.config;
        let own = AgentSettings::from_stored(agent.id.as_str(), &agent.config).tools;
        let mut deny = c.gateway.tools.deny.clone();
        deny.extend(c.agents.defaults.tools.deny.iter().cloned());
        deny.extend(own.deny);
        let mut allow = own.allow;
        if allow.is_empty() {
            allow = c.agents.defaults.tools.allow.clone();
        }
        ToolPolicy {
            allow,
            deny,
            rate_limit_per_hour: c.tools.rate_limit_per_hour,
            // Long enough for a sandboxed command (and an approval wait) to
            // end on its own terms.
            timeout: Duration::from_secs(
                c.agents.defaults.sandbox.timeout_sec + tools::APPROVAL_WAIT.as_secs() + 30,
            ),
            ..ToolPolicy::default()
        }
    }

    /// The tool context of `who` using `agent` (creates the workspace).
    pub fn tool_context(
        &self,
        who: &Principal,
        agent: &Agent,
        session: Option<SessionId>,
        request_id: Option<String>,
    ) -> Result<ToolContext, StartError> {
        let workspace = context::user_workspace(&self.home, who.tenant.as_str(), who.user.as_str());
        create_private_dirs(&workspace).map_err(|e| StartError::Workspace(e.to_string()))?;
        Ok(ToolContext {
            tenant: who.tenant.clone(),
            user: who.user.clone(),
            agent: agent.id.clone(),
            session,
            workspace,
            request_id,
            run: Default::default(),
            approved: None,
            call_id: None,
            agents: None,
            lineage: Default::default(),
            cancel: Default::default(),
        })
    }

    /// The traces as the agent loop writes them; reads wait for the rows
    /// still queued, so they see every finished turn.
    pub fn traces(&self) -> &Arc<dyn exoclaw_core::store::TraceStore> {
        &self.traces
    }

    /// The usage ledger as the budgets see it: stored plus still queued.
    pub fn usage(&self) -> Arc<dyn exoclaw_core::store::UsageStore> {
        self.writes.clone()
    }

    /// Usage reports, with what is still queued committed first.
    pub fn usage_report(&self) -> Arc<dyn exoclaw_core::store::UsageReportStore> {
        self.writes.clone()
    }

    pub async fn agent(&self, who: &Principal, id: &str) -> Result<Agent, StartError> {
        self.store
            .get_agent(&who.tenant, &AgentId::new(id))
            .await?
            .ok_or_else(|| StartError::NoAgent(id.to_owned()))
    }

    /// The tenant's directory as of now (see [`directory`]).
    pub async fn directory(
        &self,
        tenant: &exoclaw_core::TenantId,
    ) -> Result<directory::Directory, exoclaw_core::store::StoreError> {
        let dir = self.directories.current(&self.store, tenant).await?;
        // The tenant's limits move with the same version (schema 19's
        // trigger): read again only when it changed.
        self.tenant_limits
            .sync(&*self.store, tenant, dir.version())
            .await?;
        Ok(dir)
    }

    /// The models `agent` would call (its model, or each route of its
    /// alias) that have no price: their usage is recorded at cost 0 and no
    /// budget can count it. The terminal chat says so once, in words.
    pub fn unpriced_models(&self, who: &Principal, agent: &Agent) -> Vec<String> {
        let llm = self.llm_for(&who.tenant);
        let Ok(resolved) = llm.resolve(&AgentSettings::from_stored(
            agent.id.as_str(),
            &agent.config,
        )) else {
            return Vec::new();
        };
        let models = match self.settings.config.models.aliases.get(&resolved.model) {
            Some(routes) => routes.iter().map(|r| r.model.clone()).collect(),
            None => vec![resolved.model],
        };
        models
            .into_iter()
            .filter(|m| llm.prices.price(m).is_none())
            .collect()
    }

    /// Scan a user's message (`gateway.injection_action`): hits are logged
    /// and audited; with `block` the turn does not start.
    pub(crate) async fn screen_input(
        &self,
        ctx: &exoclaw_core::tool::ToolContext,
        input: &str,
    ) -> Result<(), StartError> {
        let action = self.settings.config.gateway.injection_action;
        if action == crate::config::file::InjectionAction::Off {
            return Ok(());
        }
        let rules = guard::injection_rules(input);
        if rules.is_empty() {
            return Ok(());
        }
        let block = action == crate::config::file::InjectionAction::Block;
        guard::report_injection(self.store.as_ref(), ctx, "user", &rules, block).await;
        if block {
            return Err(StartError::InjectionBlocked(rules));
        }
        Ok(())
    }

    /// `/v1/tools/invoke`: one call through exactly the agent's policy path.
    pub async fn invoke_tool(
        &self,
        who: &Principal,
        call: ToolCallRequest<'_>,
        request_id: Option<String>,
    ) -> Result<Result<ToolOutput, ToolError>, StartError> {
        let agent = self.agent(who, call.agent).await?;
        // Outside a turn: make the tenant's own limits current first.
        self.directory(&who.tenant).await?;
        if let Some(s) = &call.session {
            let visible = self
                .store
                .get_session(&who.tenant, s)
                .await?
                .is_some_and(|s| s.user_id == who.user || who.sees_all_users());
            if !visible {
                return Ok(Err(ToolError::new(
                    "not_found",
                    format!(
                        "no session {s} of yours; `session` must name an existing session (GET /v1/sessions), or leave it out to call the tool outside any session"
                    ),
                )));
            }
        }
        let mut ctx = self.tool_context(who, &agent, call.session, request_id)?;
        ctx.run = Arc::new(exoclaw_core::tool::RunState::direct());
        let policy = self.tool_policy(&agent);
        // The path scrubs what the caller reads like what a model reads.
        Ok(self
            .tools
            .invoke(&ctx, &policy, call.tool, call.args, call.mode)
            .await)
    }

    pub fn llm(&self) -> Arc<llm::Llm> {
        self.llm
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Rebuild the providers after a provider key changed in the vault.
    /// Runs in progress keep the providers they started with.
    /// The providers `tenant` uses: its own when it stored keys, else the
    /// gateway's.
    pub fn llm_for(&self, tenant: &exoclaw_core::TenantId) -> Arc<llm::Llm> {
        let own = self
            .tenant_llms
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(tenant)
            .cloned();
        own.unwrap_or_else(|| self.llm())
    }

    /// Rebuild `tenant`'s providers after one of its provider keys changed.
    pub async fn reload_tenant_providers(
        &self,
        tenant: &exoclaw_core::TenantId,
        vault: &SecretVault,
    ) -> anyhow::Result<()> {
        if tenant.as_str() == exoclaw_core::DEFAULT_TENANT {
            return self.reload_providers(vault).await;
        }
        let keys = stored_provider_keys(&self.settings, Some(vault), tenant).await;
        let own = if keys.is_empty() {
            None
        } else {
            Some(Arc::new(llm::Llm::build(
                &self.settings,
                &self.client,
                self.writes.clone(),
                &keys,
                true,
                self.alerts.as_ref(),
                Some(self.tenant_limits.budgets()),
            )?))
        };
        let mut map = self
            .tenant_llms
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match own {
            Some(l) => {
                map.insert(tenant.clone(), l);
            }
            None => {
                map.remove(tenant);
            }
        }
        tracing::info!(tenant = %tenant, "tenant providers reloaded");
        Ok(())
    }

    pub async fn reload_providers(&self, vault: &SecretVault) -> anyhow::Result<()> {
        let tenant = exoclaw_core::TenantId::new(exoclaw_core::DEFAULT_TENANT);
        let keys = stored_provider_keys(&self.settings, Some(vault), &tenant).await;
        let llm = llm::Llm::build(
            &self.settings,
            &self.client,
            self.writes.clone(),
            &keys,
            false,
            self.alerts.as_ref(),
            Some(self.tenant_limits.budgets()),
        )?;
        tracing::info!(providers = ?llm.provider_names(), "LLM providers reloaded");
        *self
            .llm
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(llm);
        Ok(())
    }

    pub async fn drain(&self, grace: Duration) {
        self.delegations.begin_shutdown();
        self.runs.drain(grace).await;
    }
}

/// The `default` agent exists in every tenant (recreated if deleted): run
/// at every start.
pub async fn ensure_default_agents(store: &dyn Store) -> Result<(), StoreError> {
    for tenant in store.list_tenants().await? {
        ensure_default_agent_of(store, &tenant.id).await?;
    }
    Ok(())
}

/// The `default` agent of `tenant` (created with the tenant).
pub async fn ensure_default_agent_of(
    store: &dyn Store,
    tenant: &exoclaw_core::TenantId,
) -> Result<(), StoreError> {
    use exoclaw_core::model::{AgentType, NewAgent};
    let id = exoclaw_core::AgentId::new("default");
    if store.get_agent(tenant, &id).await?.is_some() {
        return Ok(());
    }
    let agent = NewAgent {
        id,
        display_name: "exoclaw".to_owned(),
        agent_type: AgentType::Open,
        config: serde_json::json!({}),
    };
    match store.create_agent(tenant, &agent).await {
        Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Vault owner and name of a provider's stored key.
pub const PROVIDER_KEY_NAME: &str = "api_key";
pub fn provider_key_owner(provider: &str) -> String {
    format!("provider:{provider}")
}

/// Provider keys `tenant` stored in the vault, by provider name. A key that
/// cannot be read is logged and skipped.
pub async fn stored_provider_keys(
    settings: &Settings,
    vault: Option<&SecretVault>,
    tenant: &exoclaw_core::TenantId,
) -> std::collections::BTreeMap<String, exoclaw_core::Secret> {
    let mut keys = std::collections::BTreeMap::new();
    let Some(vault) = vault else { return keys };
    for name in crate::config::providers::known_names(settings) {
        match vault
            .get(tenant, &provider_key_owner(&name), PROVIDER_KEY_NAME)
            .await
        {
            Ok(Some(k)) => {
                register_provider_key(tenant, &name, &k);
                keys.insert(name, k);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(provider = %name, error = %e, "cannot read a stored provider key")
            }
        }
    }
    keys
}

/// Register a stored provider key with the scrubber: the default tenant's
/// serve every tenant without keys of its own, so they are the gateway's
/// (every output); another tenant's only scrub that tenant's outputs.
pub fn register_provider_key(
    tenant: &exoclaw_core::TenantId,
    provider: &str,
    key: &exoclaw_core::Secret,
) {
    let scrubber = exoclaw_guard::scrub::global();
    if tenant.as_str() == exoclaw_core::DEFAULT_TENANT {
        scrubber.register(key.expose());
    }
    let name = format!("{}/{PROVIDER_KEY_NAME}", provider_key_owner(provider));
    if let Err(refused) = scrubber.register_for(tenant.as_str(), &name, key.expose()) {
        tracing::warn!(
            tenant = %tenant,
            provider,
            reason = %refused,
            "a stored provider key is not registered for scrubbing"
        );
    }
}

fn create_private_dirs(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}
