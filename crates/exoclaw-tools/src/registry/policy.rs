//! What the policy path is configured with: a run's allow/deny lists, rate
//! limit, timeout and output cap ([`ToolPolicy`], from the agent's and the
//! gateway's settings), and the gateway-wide guards ([`Guards`]): the
//! prompt-injection scanner's action, the provenance gate's policy, and the
//! approvals port.

use exoclaw_core::tool::Approvals;
use std::sync::Arc;
use std::time::Duration;

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
    (
        "orchestration",
        &[
            "spawn",
            "delegate",
            "delegate_search",
            "evaluate_loop",
            "handoff",
        ],
    ),
    ("automation", &["cron"]),
];

/// Whether `name` belongs to a tool group: every built-in tool does, so
/// where no registry is at hand (the CLI) this says a name is taken.
pub fn is_builtin_name(name: &str) -> bool {
    GROUPS.iter().any(|(_, members)| members.contains(&name))
}

fn entry_matches(entry: &str, tool: &str) -> bool {
    if entry == tool || entry == "*" {
        return true;
    }
    entry.strip_prefix("group:").is_some_and(|g| {
        GROUPS
            .iter()
            .any(|(name, members)| *name == g && members.contains(&tool))
            // `group:<server>` covers the tools `<server>__*` that an MCP
            // server or another source registers under its prefix.
            || tool
                .strip_prefix(g)
                .is_some_and(|rest| rest.starts_with("__"))
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

/// What the scanner does with prompt-injection patterns in untrusted tool
/// output (`gateway.injection_action`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectionMode {
    /// Log and audit, pass the output on (marked untrusted).
    Warn,
    /// Withhold the output (`security.injection_blocked`).
    Block,
    /// Do not scan.
    Off,
}

/// What happens to a side-effecting or external call once untrusted content
/// entered the run (`tools.untrusted_content_policy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UntrustedPolicy {
    /// An operator approves the exact call (through [`Guards::approvals`]).
    Ask,
    /// Refused (`security.untrusted_content`).
    Deny,
    /// Runs.
    Allow,
}

/// The gateway-wide guards of the policy path.
#[derive(Clone)]
pub struct Guards {
    pub injection: InjectionMode,
    pub untrusted: UntrustedPolicy,
    /// Where approvals are asked and found; without it, a call that needs
    /// one is refused (`security.approval_unavailable`).
    pub approvals: Option<Arc<dyn Approvals>>,
    /// How long a call waits for an operator.
    pub approval_wait: Duration,
}

impl Default for Guards {
    fn default() -> Self {
        Self {
            injection: InjectionMode::Warn,
            untrusted: UntrustedPolicy::Ask,
            approvals: None,
            approval_wait: Duration::from_secs(300),
        }
    }
}

impl std::fmt::Debug for Guards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guards")
            .field("injection", &self.injection)
            .field("untrusted", &self.untrusted)
            .field("approvals", &self.approvals.is_some())
            .field("approval_wait", &self.approval_wait)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_prefixes_match() {
        assert!(entry_matches("group:fs", "read_file"));
        assert!(!entry_matches("group:fs", "exec"));
        assert!(entry_matches("group:files", "files__read"));
        assert!(!entry_matches("group:files", "filesystem__read"));
        assert!(entry_matches("*", "anything"));
        let p = ToolPolicy {
            allow: vec!["group:fs".into()],
            deny: vec!["write_file".into()],
            ..ToolPolicy::default()
        };
        assert!(p.permits("read_file") && !p.permits("write_file") && !p.permits("exec"));
    }
}
