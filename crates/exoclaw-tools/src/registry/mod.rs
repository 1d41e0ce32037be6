//! The tool registry: the one path to a tool, for the built-in tools and for
//! tools registered at run time (per tenant or per agent: MCP servers,
//! custom tools). [`ToolRegistry::invoke`] runs every call through one
//! ordered list of layers:
//!
//! 1. lookup (the agent's tools, then the tenant's, then the built-ins);
//! 2. allow/deny ([`ToolPolicy`]);
//! 3. the argument schema (`schema`: a JSON object that satisfies the
//!    tool's declared schema);
//! 4. the tool's own check, and an operator's approval when it asks for one
//!    (`gate`, through the [`Approvals`](exoclaw_core::tool::Approvals)
//!    port);
//! 5. the provenance gate (`gate`: side-effecting and external calls after
//!    untrusted content entered the run);
//! 6. the per-session rate limit (`limit`);
//! 7. the call, under a timeout;
//! 8. scrubbing for the tenant, truncation, and for untrusted output the
//!    injection scan, the markers and the run's taint (`screen`);
//! 9. an audit event with the arguments and output as digests (`audit`).
//!
//! A dry run stops after step 5 with `allow`, never waiting for anyone.
//! Nothing calls a `Tool` another way.

mod audit;
mod call;
mod gate;
mod limit;
mod policy;
mod schema;
mod screen;
mod spec_cache;

pub use audit::{args_digest, output_digest};
pub use policy::{Guards, InjectionMode, ToolPolicy, UntrustedPolicy, is_builtin_name};
pub use screen::injection_rules;

use async_trait::async_trait;
use call::Call;
use exoclaw_core::provider::ToolSpec;
use exoclaw_core::store::AuditStore;
use exoclaw_core::tool::{Check, Tool, ToolContext, ToolEffect, ToolError, ToolOutput, ToolRunner};
use exoclaw_core::{AgentId, TenantId};
use gate::Stage;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvokeMode {
    Execute,
    /// The whole policy path and the tool's checks, without acting.
    DryRun,
}

/// Where a tool registered at run time is offered.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every agent of the tenant.
    Tenant(TenantId),
    /// One agent of a tenant.
    Agent(TenantId, AgentId),
}

/// Longest tool name (providers allow 64 characters).
const MAX_NAME: usize = 64;

struct Entry {
    tool: Arc<dyn Tool>,
    /// The tool's spec, read once: specs are fixed for a tool's life.
    spec: ToolSpec,
    schema: schema::ArgSchema,
}

impl Entry {
    fn new(tool: Arc<dyn Tool>) -> Self {
        Self {
            spec: tool.spec(),
            tool,
            schema: schema::ArgSchema::default(),
        }
    }
}

pub struct ToolRegistry {
    builtin: BTreeMap<String, Arc<Entry>>,
    added: RwLock<HashMap<Scope, BTreeMap<String, Arc<Entry>>>>,
    /// The spec lists handed out, by the entries they list (see
    /// [`spec_cache`]).
    spec_lists: spec_cache::SpecLists,
    audit: Option<Arc<dyn AuditStore>>,
    limit: limit::SessionLimit,
    guards: Guards,
}

impl ToolRegistry {
    /// The built-in tools, audited to `audit`, with the default guards
    /// (injection `warn`, untrusted content `ask` with no approvals: such
    /// calls are refused until [`ToolRegistry::with_guards`] gives a port).
    pub fn new(tools: Vec<Arc<dyn Tool>>, audit: Option<Arc<dyn AuditStore>>) -> Self {
        let builtin = tools
            .into_iter()
            .map(|t| {
                let entry = Entry::new(t);
                (entry.spec.name.clone(), Arc::new(entry))
            })
            .collect();
        Self {
            builtin,
            added: RwLock::new(HashMap::new()),
            spec_lists: spec_cache::SpecLists::default(),
            audit,
            limit: limit::SessionLimit::default(),
            guards: Guards::default(),
        }
    }

    pub fn with_guards(mut self, guards: Guards) -> Self {
        self.guards = guards;
        self
    }

    /// Offer `tool` in `scope` from now on, through the same path as the
    /// built-ins. Its name must be a plain identifier (letters, digits,
    /// `_`, `-`; at most 64) and may not shadow a built-in or another tool
    /// of the scope (`tool.name_taken`); registering it again in its scope
    /// replaces it.
    pub fn register(&self, scope: Scope, tool: Arc<dyn Tool>) -> Result<(), ToolError> {
        let name = tool.spec().name;
        let valid = !name.is_empty()
            && name.len() <= MAX_NAME
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return Err(ToolError::new(
                "tool.invalid_name",
                format!("{name:?}: a tool name is 1-{MAX_NAME} letters, digits, '_' and '-'"),
            ));
        }
        if self.builtin.contains_key(&name) {
            return Err(ToolError::new(
                "tool.name_taken",
                format!("{name:?} is a built-in tool"),
            ));
        }
        let mut added = self.added.write().unwrap_or_else(PoisonError::into_inner);
        if let Scope::Agent(tenant, _) = &scope
            && added
                .get(&Scope::Tenant(tenant.clone()))
                .is_some_and(|t| t.contains_key(&name))
        {
            return Err(ToolError::new(
                "tool.name_taken",
                format!("{name:?} is already a tool of the tenant"),
            ));
        }
        added
            .entry(scope)
            .or_default()
            .insert(name, Arc::new(Entry::new(tool)));
        self.spec_lists.changed();
        Ok(())
    }

    /// Whether `name` is a built-in tool (no tool added at run time may
    /// take its name).
    pub fn is_builtin(&self, name: &str) -> bool {
        self.builtin.contains_key(name)
    }

    /// Stop offering `name` in `scope`; `false` when it was not there.
    pub fn unregister(&self, scope: &Scope, name: &str) -> bool {
        let mut added = self.added.write().unwrap_or_else(PoisonError::into_inner);
        let removed = added.get_mut(scope).and_then(|t| t.remove(name)).is_some();
        if added.get(scope).is_some_and(BTreeMap::is_empty) {
            added.remove(scope);
        }
        self.spec_lists.changed();
        removed
    }

    /// The tool `name` as `tenant`'s `agent` sees it.
    fn lookup(&self, tenant: &TenantId, agent: &AgentId, name: &str) -> Option<Arc<Entry>> {
        if let Some(e) = self.builtin.get(name) {
            return Some(e.clone());
        }
        let added = self.added.read().unwrap_or_else(PoisonError::into_inner);
        [
            Scope::Agent(tenant.clone(), agent.clone()),
            Scope::Tenant(tenant.clone()),
        ]
        .iter()
        .find_map(|s| added.get(s).and_then(|t| t.get(name)).cloned())
    }

    /// Specs of the tools `tenant`'s `agent` may use under `policy`, in
    /// name order; the same list (a pointer copy) for every run that may
    /// use the same tools.
    pub fn specs_for(
        &self,
        tenant: &TenantId,
        agent: &AgentId,
        policy: &ToolPolicy,
    ) -> Arc<[ToolSpec]> {
        let added = self.added.read().unwrap_or_else(PoisonError::into_inner);
        let mut all: BTreeMap<&str, &Arc<Entry>> =
            self.builtin.iter().map(|(n, e)| (n.as_str(), e)).collect();
        for scope in [
            Scope::Tenant(tenant.clone()),
            Scope::Agent(tenant.clone(), agent.clone()),
        ] {
            if let Some(tools) = added.get(&scope) {
                for (n, e) in tools {
                    all.entry(n.as_str()).or_insert(e);
                }
            }
        }
        let entries: Vec<&Arc<Entry>> = all
            .into_iter()
            .filter(|(name, _)| policy.permits(name))
            .map(|(_, e)| e)
            .collect();
        self.spec_lists.get_or_make(&entries, |e| e.spec.clone())
    }

    /// Specs of the built-in tools `policy` allows, in name order.
    pub fn specs(&self, policy: &ToolPolicy) -> Vec<ToolSpec> {
        self.builtin
            .iter()
            .filter(|(name, _)| policy.permits(name))
            .map(|(_, e)| e.spec.clone())
            .collect()
    }

    /// One tool call through the policy path. In `DryRun` mode the result is
    /// `ToolOutput { content: "allow" }` when the call would be allowed.
    pub async fn invoke(
        &self,
        ctx: &ToolContext,
        policy: &ToolPolicy,
        name: &str,
        args: &Value,
        mode: InvokeMode,
    ) -> Result<ToolOutput, ToolError> {
        let started = Instant::now();
        let span = tracing::info_span!("tool", tool = name, dry_run = mode == InvokeMode::DryRun);
        let result = tracing::Instrument::instrument(
            self.decide_and_run(ctx, policy, name, args, mode),
            span,
        )
        .await
        .map_err(|e| screen::error(ctx, e));
        audit::call(
            self.audit.as_ref(),
            ctx,
            name,
            args,
            mode == InvokeMode::DryRun,
            &result,
            started.elapsed(),
        )
        .await;
        result
    }

    async fn decide_and_run(
        &self,
        ctx: &ToolContext,
        policy: &ToolPolicy,
        name: &str,
        args: &Value,
        mode: InvokeMode,
    ) -> Result<ToolOutput, ToolError> {
        let entry = self
            .lookup(&ctx.tenant, &ctx.agent, name)
            .ok_or_else(|| ToolError::new("tool.not_found", format!("no tool named {name:?}")))?;
        let tool = entry.tool.as_ref();
        if !policy.permits(name) {
            return Err(ToolError::new(
                "security.tool_denied",
                format!("tool {name:?} is not allowed for this agent"),
            ));
        }
        entry.schema.check(|| entry.spec.clone(), args)?;
        let stage = match mode {
            InvokeMode::DryRun => Stage::DryRun,
            InvokeMode::Execute => Stage::Act,
        };
        let mut ctx = ctx.clone();
        if mode == InvokeMode::DryRun || tool.asks_approval() {
            // A real call repeats its own checks as it acts; the check here
            // is for the dry run and for the approval a tool asks for.
            if let Check::NeedsApproval(need) = tool.check(&ctx, args).await? {
                ctx.approved = Some(gate::approve(&self.guards, &ctx, &need, stage).await?);
            }
        }
        let call = Call {
            ctx: &ctx,
            name,
            tool,
            args,
        };
        gate::provenance(&self.guards, self.audit.as_ref(), call, stage).await?;
        if mode == InvokeMode::DryRun {
            return Ok(ToolOutput::text("allow"));
        }
        self.limit.take(&ctx, policy.rate_limit_per_hour)?;
        let destination = (tool.effect() == ToolEffect::External && !ctx.run.is_tainted())
            .then(|| tool.destination(args))
            .flatten();
        let output = tokio::time::timeout(policy.timeout, tool.call(&ctx, args))
            .await
            .map_err(|_| {
                ToolError::new(
                    "tool.timeout",
                    format!("{name} did not finish within {}s", policy.timeout.as_secs()),
                )
            })??;
        if let Some(d) = destination {
            // Reached before any untrusted content: not new later.
            ctx.run.see(d);
        }
        let call = Call {
            ctx: &ctx,
            name,
            tool,
            args,
        };
        screen::output(
            call,
            output,
            policy.max_output_bytes,
            self.guards.injection,
            self.audit.as_ref(),
        )
        .await
    }
}

/// The registry bound to one run's policy and agent: what the agent loop
/// calls.
pub struct BoundTools {
    pub registry: Arc<ToolRegistry>,
    pub policy: ToolPolicy,
    pub tenant: TenantId,
    pub agent: AgentId,
}

#[async_trait]
impl ToolRunner for BoundTools {
    fn specs(&self) -> Arc<[ToolSpec]> {
        self.registry
            .specs_for(&self.tenant, &self.agent, &self.policy)
    }

    async fn run(
        &self,
        ctx: &ToolContext,
        name: &str,
        args: &Value,
    ) -> Result<ToolOutput, ToolError> {
        self.registry
            .invoke(ctx, &self.policy, name, args, InvokeMode::Execute)
            .await
    }
}

#[cfg(test)]
mod tests;
