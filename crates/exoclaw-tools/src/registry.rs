//! The tool registry: the one path to a tool. [`ToolRegistry::invoke`] runs,
//! in order: lookup, allow/deny policy, argument shape, then either the
//! tool's own checks (dry run) or the per-session rate limit and the call
//! (which repeats those checks as it acts) under a timeout,
//! output truncation with a marker, and an audit event with the arguments
//! hashed (never stored raw). Nothing calls a `Tool` another way.

use async_trait::async_trait;
use exoclaw_core::model::NewAuditEvent;
use exoclaw_core::provider::ToolSpec;
use exoclaw_core::store::AuditStore;
use exoclaw_core::tool::{Tool, ToolContext, ToolError, ToolOutput, ToolRunner};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Tool groups usable in allow/deny lists as `group:<name>`.
const GROUPS: &[(&str, &[&str])] = &[
    (
        "fs",
        &[
            "read_file",
            "write_file",
            "edit_file",
            "list_files",
            "search",
            "glob",
        ],
    ),
    ("runtime", &["exec", "process"]),
    ("web", &["web_search", "web_fetch"]),
];

fn entry_matches(entry: &str, tool: &str) -> bool {
    if entry == tool || entry == "*" {
        return true;
    }
    entry.strip_prefix("group:").is_some_and(|g| {
        GROUPS
            .iter()
            .any(|(name, members)| *name == g && members.contains(&tool))
    })
}

/// The effective policy of one run: config lists merged by the caller.
#[derive(Clone, Debug)]
pub struct ToolPolicy {
    /// Empty means every registered tool is allowed (subject to `deny`).
    pub allow: Vec<String>,
    /// Gateway, agent and user deny lists, concatenated. Deny wins.
    pub deny: Vec<String>,
    /// Calls per session per hour; 0 = no limit.
    pub rate_limit_per_hour: u32,
    pub timeout: Duration,
    pub max_output_bytes: usize,
}

impl Default for ToolPolicy {
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            deny: Vec::new(),
            rate_limit_per_hour: 150,
            timeout: Duration::from_secs(60),
            max_output_bytes: 64 * 1024,
        }
    }
}

impl ToolPolicy {
    pub fn permits(&self, tool: &str) -> bool {
        let allowed = self.allow.is_empty() || self.allow.iter().any(|e| entry_matches(e, tool));
        allowed && !self.deny.iter().any(|e| entry_matches(e, tool))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvokeMode {
    Execute,
    /// The whole policy path and the tool's checks, without acting.
    DryRun,
}

pub struct ToolRegistry {
    tools: BTreeMap<String, Arc<dyn Tool>>,
    audit: Option<Arc<dyn AuditStore>>,
    /// Call times per session, for the hourly limit.
    calls: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl ToolRegistry {
    pub fn new(tools: Vec<Arc<dyn Tool>>, audit: Option<Arc<dyn AuditStore>>) -> Self {
        let tools = tools.into_iter().map(|t| (t.spec().name, t)).collect();
        Self {
            tools,
            audit,
            calls: Mutex::new(HashMap::new()),
        }
    }

    /// Specs of the tools `policy` allows, in name order.
    pub fn specs(&self, policy: &ToolPolicy) -> Vec<ToolSpec> {
        self.tools
            .iter()
            .filter(|(name, _)| policy.permits(name))
            .map(|(_, t)| t.spec())
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
        let _enter = span.enter();
        let result = self.decide_and_run(ctx, policy, name, args, mode).await;
        drop(_enter);
        self.audit(ctx, name, args, mode, &result, started.elapsed())
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
        let tool = self
            .tools
            .get(name)
            .ok_or_else(|| ToolError::new("tool.not_found", format!("no tool named {name:?}")))?;
        if !policy.permits(name) {
            return Err(ToolError::new(
                "security.tool_denied",
                format!("tool {name:?} is not allowed for this agent"),
            ));
        }
        match args {
            Value::Object(_) => {}
            Value::String(_) => {
                return Err(ToolError::invalid_args("arguments are not valid JSON"));
            }
            _ => return Err(ToolError::invalid_args("arguments must be a JSON object")),
        }
        if mode == InvokeMode::DryRun {
            // The tool's own checks, without acting. A real call makes the
            // same checks itself, at the moment it acts (so, for instance,
            // an exec waiting for an operator's approval waits in `call`).
            tool.check(ctx, args).await?;
            return Ok(ToolOutput::text("allow"));
        }
        self.take_rate_slot(ctx, policy)?;
        let output = tokio::time::timeout(policy.timeout, tool.call(ctx, args))
            .await
            .map_err(|_| {
                ToolError::new(
                    "tool.timeout",
                    format!("{name} did not finish within {}s", policy.timeout.as_secs()),
                )
            })??;
        Ok(truncate(output, policy.max_output_bytes))
    }

    fn take_rate_slot(&self, ctx: &ToolContext, policy: &ToolPolicy) -> Result<(), ToolError> {
        if policy.rate_limit_per_hour == 0 {
            return Ok(());
        }
        let key = match &ctx.session {
            Some(s) => format!("{}/{}", ctx.tenant, s),
            None => format!("{}/user:{}", ctx.tenant, ctx.user),
        };
        let now = Instant::now();
        let hour = Duration::from_secs(3600);
        let mut calls = self
            .calls
            .lock()
            .map_err(|_| ToolError::failed("rate limiter unavailable"))?;
        // Forget sessions idle for an hour, now and then, so the map stays
        // as small as the set of active sessions.
        if calls.len() > 1024 && calls.len().is_power_of_two() {
            prune_idle(&mut calls, now);
        }
        let window = calls.entry(key).or_default();
        while window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= hour)
        {
            window.pop_front();
        }
        if window.len() >= policy.rate_limit_per_hour as usize {
            return Err(ToolError::new(
                "tool.rate_limited",
                format!(
                    "this session made {} tool calls in the last hour (limit tools.rate_limit_per_hour)",
                    window.len()
                ),
            ));
        }
        window.push_back(now);
        Ok(())
    }

    async fn audit(
        &self,
        ctx: &ToolContext,
        name: &str,
        args: &Value,
        mode: InvokeMode,
        result: &Result<ToolOutput, ToolError>,
        took: Duration,
    ) {
        let Some(audit) = &self.audit else { return };
        let digest = hex::encode(Sha256::digest(args.to_string().as_bytes()));
        let (decision, reason) = match result {
            Ok(_) => ("allow", String::new()),
            Err(e) if e.code.starts_with("security.") || e.code == "tool.rate_limited" => {
                ("deny", e.code.clone())
            }
            Err(e) => ("allow", e.code.clone()),
        };
        let event = NewAuditEvent {
            tenant_id: ctx.tenant.clone(),
            actor: format!("user:{}", ctx.user),
            action: if mode == InvokeMode::DryRun {
                "tool.dry_run".into()
            } else {
                "tool.call".into()
            },
            resource: format!("tool:{name}"),
            decision: decision.into(),
            reason,
            request_id: ctx.request_id.clone(),
            agent_id: Some(ctx.agent.clone()),
            session_id: ctx.session.clone(),
            detail: json!({
                "args_sha256": digest,
                "duration_ms": u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
            }),
        };
        if let Err(e) = audit.append_audit(&event).await {
            tracing::error!(error = %e, "cannot write the tool audit event");
        }
    }
}

/// Drop the windows of sessions with no call in the last hour.
fn prune_idle(calls: &mut HashMap<String, VecDeque<Instant>>, now: Instant) {
    let hour = Duration::from_secs(3600);
    calls.retain(|_, w| {
        w.back()
            .is_some_and(|t| now.saturating_duration_since(*t) < hour)
    });
}

fn truncate(mut out: ToolOutput, max: usize) -> ToolOutput {
    if out.content.len() <= max {
        return out;
    }
    let total = out.content.len();
    let mut cut = max;
    while !out.content.is_char_boundary(cut) {
        cut -= 1;
    }
    out.content.truncate(cut);
    out.content.push_str(&format!(
        "\n[output truncated: {cut} of {total} bytes shown]"
    ));
    out
}

/// The registry bound to one run's policy: what the agent loop calls.
pub struct BoundTools {
    pub registry: Arc<ToolRegistry>,
    pub policy: ToolPolicy,
}

#[async_trait]
impl ToolRunner for BoundTools {
    fn specs(&self) -> Vec<ToolSpec> {
        self.registry.specs(&self.policy)
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
