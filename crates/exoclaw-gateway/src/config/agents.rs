//! The `agents` section of `config.json` (and the tool lists and sandbox
//! settings it shares with the gateway and tool sections): defaults every
//! agent starts from, subagent, delegation and handoff limits, and the
//! history window cache. Re-exported by [`super::file`].

use serde::{Deserialize, Serialize};

/// Tool allow/deny lists (tool names or `group:<name>`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ToolListConfig {
    pub allow: Vec<String>,
    pub deny: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentsConfig {
    pub defaults: AgentDefaults,
    /// Memory for hot sessions' history windows kept between turns, in MiB
    /// (0: read every turn's window from the store).
    pub window_cache_mib: u64,
    /// Seconds a session's window stays cached without a turn before it is
    /// dropped (its memory given back).
    pub window_cache_idle_sec: u64,
}

impl Default for AgentsConfig {
    fn default() -> Self {
        Self {
            defaults: AgentDefaults::default(),
            window_cache_mib: 96,
            window_cache_idle_sec: 600,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentDefaults {
    /// Provider name for agents that do not set one. Env: `EXOCLAW_PROVIDER`.
    pub provider: Option<String>,
    /// Model for agents that do not set one. Env: `EXOCLAW_MODEL`.
    pub model: Option<String>,
    /// Upper bound on think-act-observe iterations per run.
    pub max_iterations: u32,
    /// Estimated tokens of session history above which older turns are
    /// summarised by the model (auto-compaction).
    pub max_history_tokens: u64,
    /// Messages kept verbatim when history is compacted.
    pub keep_recent_messages: u32,
    /// `max_tokens` sent to the model; unset = the provider's default.
    pub max_tokens: Option<u32>,
    /// Anchor every file access at the (per-user) workspace root.
    pub restrict_to_workspace: bool,
    pub sandbox: SandboxConfig,
    pub tools: ToolListConfig,
    /// Subagents: the `spawn` tool.
    pub subagents: SubagentConfig,
    /// Delegation to named agents: the `delegate` tool.
    pub delegation: DelegationConfig,
    /// Handoff of a conversation to another agent: the `handoff` tool.
    pub handoff: HandoffConfig,
}

/// Handoffs (`handoff`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HandoffConfig {
    /// A handed-over conversation with no message for this long goes back
    /// to its original agent (seconds).
    pub idle_sec: u64,
}

impl Default for HandoffConfig {
    fn default() -> Self {
        Self { idle_sec: 3600 }
    }
}

/// Subagents (anonymous clones of the calling agent, `spawn`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SubagentConfig {
    /// How deep spawns may nest (1: a subagent cannot spawn).
    pub max_depth: u32,
    /// Subagents one run may have going at once; more wait (up to
    /// `agents.defaults.delegation.wait_sec`), then fail. The gateway-wide
    /// bound is `scheduler.lanes.subagent.concurrency`.
    pub max_concurrent: u32,
    /// Tools a subagent may not use, on top of its parent's policy.
    pub deny: Vec<String>,
    /// A subagent's run is stopped after this long (seconds).
    pub timeout_sec: u64,
}

impl Default for SubagentConfig {
    fn default() -> Self {
        Self {
            max_depth: 1,
            max_concurrent: 4,
            deny: Vec::new(),
            timeout_sec: 600,
        }
    }
}

/// Delegation to named agents over permission links (`delegate`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DelegationConfig {
    /// Hops in a chain of delegations (A → B → C is 2); a cycle stops here.
    pub max_depth: u32,
    /// How long a delegation waits for a free slot of its link
    /// (`max_concurrent`) or its target (`max_delegation_load`) before it
    /// fails (seconds).
    pub wait_sec: u64,
    /// A delegated run is stopped after this long (seconds).
    pub timeout_sec: u64,
}

impl Default for DelegationConfig {
    fn default() -> Self {
        Self {
            max_depth: 3,
            wait_sec: 30,
            timeout_sec: 600,
        }
    }
}

impl Default for AgentDefaults {
    fn default() -> Self {
        Self {
            provider: None,
            model: None,
            max_iterations: 20,
            max_history_tokens: 60_000,
            keep_recent_messages: 8,
            max_tokens: None,
            restrict_to_workspace: true,
            sandbox: SandboxConfig::default(),
            tools: ToolListConfig::default(),
            subagents: SubagentConfig::default(),
            delegation: DelegationConfig::default(),
            handoff: HandoffConfig::default(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SandboxConfig {
    /// `all` (every agent's exec is sandboxed), `non-main` or `off`.
    pub mode: SandboxMode,
    /// Network inside the sandbox; when on, only through the egress proxy.
    pub network_enabled: bool,
    pub memory_mb: u32,
    pub cpus: u32,
    pub timeout_sec: u64,
    pub max_pids: u32,
    pub max_open_files: u32,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            mode: SandboxMode::All,
            network_enabled: false,
            memory_mb: 512,
            cpus: 1,
            timeout_sec: 300,
            max_pids: 64,
            max_open_files: 256,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SandboxMode {
    All,
    NonMain,
    Off,
}
