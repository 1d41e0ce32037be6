//! An agent's own settings (the `config` object of `/v1/agents`), typed: the
//! runtime reads these fields and nothing else from an agent. Input is
//! checked strictly ([`AgentSettings::parse`]: unknown keys, wrong types and
//! values out of range are refused with the field named); stored settings
//! are read leniently ([`AgentSettings::from_stored`]: what cannot be read
//! is logged and left at its default), so an agent written by an older
//! gateway still runs.

use crate::config::file::AgentDefaults;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Bounds of the numeric settings (inclusive).
const ITERATIONS: (u32, u32) = (1, 200);
const HISTORY_TOKENS: (u64, u64) = (1_000, 2_000_000);
const RECENT_MESSAGES: (u32, u32) = (1, 1_000);
/// Longest system prompt and description, in bytes.
const MAX_PROMPT: usize = 64 * 1024;
const MAX_DESCRIPTION: usize = 1024;

/// See the module docs. Every field is optional: unset means the gateway's
/// default (`agents.defaults.*`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSettings {
    /// Provider name (a preset or `providers.<name>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Model, or a `models.aliases` name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Replaces the default opening of the system prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// What the agent is for, in a sentence (other agents see it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_iterations: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_history_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_recent_messages: Option<u32>,
    /// The agent's own tool lists (added to the gateway's).
    #[serde(default, skip_serializing_if = "ToolLists::is_empty")]
    pub tools: ToolLists,
    /// Delegations this agent answers at once, over every link; more wait,
    /// then fail. Unset: no limit of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delegation_load: Option<u32>,
    /// A disabled agent answers nothing: no chat, no delegation.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
    /// Automatic memory recall for this agent (unset: `memory.recall.enabled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_recall: Option<bool>,
    /// Quality gates on the agent's outputs (`runtime::gates`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<GateSpec>,
}

/// When a gate runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GateEvent {
    /// An answer of the agent (the end of one of its turns).
    #[serde(rename = "run.completed")]
    RunCompleted,
    /// An answer the agent got from a delegation it made.
    #[serde(rename = "delegation.completed")]
    DelegationCompleted,
    /// A team task the agent completes.
    #[serde(rename = "team_task.completed")]
    TeamTaskCompleted,
}

impl GateEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            GateEvent::RunCompleted => "run.completed",
            GateEvent::DelegationCompleted => "delegation.completed",
            GateEvent::TeamTaskCompleted => "team_task.completed",
        }
    }
}

/// What checks the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateKind {
    /// A shell command in the sandbox, the output on stdin; exit 0 passes.
    Command,
    /// A reviewer agent: APPROVED or REJECTED with feedback.
    Agent,
}

/// One quality gate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateSpec {
    /// What it is called in feedback and logs (default: event and position).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub event: GateEvent,
    #[serde(rename = "type")]
    pub kind: GateKind,
    /// For `command`: what runs (`sh -c`, cwd the user's workspace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// For `agent`: the reviewer's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// For `agent`: what the reviewer checks against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub criteria: Option<String>,
    /// Hold a failing output back and have the producer revise it.
    #[serde(default)]
    pub block_on_failure: bool,
    /// Revisions before a held-back output fails (0-5).
    #[serde(default = "one")]
    pub max_retries: u32,
}

fn one() -> u32 {
    1
}

/// Tool names or `group:<name>`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolLists {
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
}

impl ToolLists {
    fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }
}

/// A refused setting: the field (a JSON path such as `tools.allow[2]`) and
/// why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("config.{field}: {message}")]
pub struct SettingError {
    pub field: String,
    pub message: String,
}

fn refuse(field: &str, message: impl Into<String>) -> SettingError {
    SettingError {
        field: field.to_owned(),
        message: message.into(),
    }
}

impl AgentSettings {
    /// Settings from input (the API, the CLI): every problem is an error
    /// naming its field.
    pub fn parse(value: &Value) -> Result<Self, SettingError> {
        if !value.is_object() {
            return Err(SettingError {
                field: String::new(),
                message: "must be a JSON object".to_owned(),
            });
        }
        let settings: Self = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let message = e.into_inner().to_string();
            // An unknown key is named by serde's message, not the path.
            let field = if path == "." {
                message
                    .split('`')
                    .nth(1)
                    .filter(|_| message.starts_with("unknown field"))
                    .unwrap_or_default()
                    .to_owned()
            } else {
                path
            };
            SettingError { field, message }
        })?;
        settings.check()?;
        Ok(settings)
    }

    /// Settings as stored: fields that cannot be read are logged and left
    /// unset (the gateway's default applies), never fatal to a turn.
    pub fn from_stored(agent: &str, value: &Value) -> Self {
        if let Ok(s) = Self::parse(value) {
            return s;
        }
        let Value::Object(map) = value else {
            return Self::default();
        };
        let mut out = Self::default();
        for (key, v) in map {
            let one = serde_json::json!({ key: v });
            match Self::parse(&one) {
                Ok(s) => out.merge(s),
                Err(e) => tracing::warn!(
                    agent,
                    setting = %key,
                    error = %e.message,
                    "an agent setting cannot be read; its default applies"
                ),
            }
        }
        out
    }

    fn merge(&mut self, other: Self) {
        self.provider = other.provider.or(self.provider.take());
        self.model = other.model.or(self.model.take());
        self.system_prompt = other.system_prompt.or(self.system_prompt.take());
        self.description = other.description.or(self.description.take());
        self.max_iterations = other.max_iterations.or(self.max_iterations);
        self.max_history_tokens = other.max_history_tokens.or(self.max_history_tokens);
        self.keep_recent_messages = other.keep_recent_messages.or(self.keep_recent_messages);
        if !other.tools.is_empty() {
            self.tools = other.tools;
        }
        self.max_delegation_load = other.max_delegation_load.or(self.max_delegation_load);
        self.disabled |= other.disabled;
        if !other.gates.is_empty() {
            self.gates = other.gates;
        }
    }

    /// Ranges and sizes.
    fn check(&self) -> Result<(), SettingError> {
        let range = |field: &str, v: Option<u64>, (lo, hi): (u64, u64)| match v {
            Some(v) if v < lo || v > hi => Err(refuse(
                field,
                format!("must be between {lo} and {hi} (got {v})"),
            )),
            _ => Ok(()),
        };
        let widen = |(lo, hi): (u32, u32)| (u64::from(lo), u64::from(hi));
        range(
            "max_iterations",
            self.max_iterations.map(u64::from),
            widen(ITERATIONS),
        )?;
        range(
            "max_history_tokens",
            self.max_history_tokens,
            HISTORY_TOKENS,
        )?;
        range(
            "keep_recent_messages",
            self.keep_recent_messages.map(u64::from),
            widen(RECENT_MESSAGES),
        )?;
        range(
            "max_delegation_load",
            self.max_delegation_load.map(u64::from),
            (1, 10_000),
        )?;
        for (field, text, max) in [
            ("system_prompt", &self.system_prompt, MAX_PROMPT),
            ("description", &self.description, MAX_DESCRIPTION),
        ] {
            if text.as_ref().is_some_and(|t| t.len() > max) {
                return Err(refuse(field, format!("at most {max} bytes")));
            }
        }
        for (field, name) in [("provider", &self.provider), ("model", &self.model)] {
            if name
                .as_ref()
                .is_some_and(|n| n.trim().is_empty() || n.len() > 200)
            {
                return Err(refuse(field, "1 to 200 characters"));
            }
        }
        if self.gates.len() > 8 {
            return Err(refuse("gates", "at most 8 gates"));
        }
        for (i, g) in self.gates.iter().enumerate() {
            let field = |f: &str| format!("gates[{i}].{f}");
            match g.kind {
                GateKind::Command => {
                    let ok = g.command.as_ref().is_some_and(|c| {
                        !c.trim().is_empty() && c.len() <= 4096 && !c.contains('\0')
                    });
                    if !ok {
                        return Err(refuse(
                            &field("command"),
                            "a command (1 to 4096 bytes) for a command gate",
                        ));
                    }
                }
                GateKind::Agent => {
                    if !g
                        .agent
                        .as_deref()
                        .is_some_and(exoclaw_core::id::is_valid_slug)
                    {
                        return Err(refuse(
                            &field("agent"),
                            "the reviewer's agent id for an agent gate",
                        ));
                    }
                }
            }
            if g.max_retries > 5 {
                return Err(refuse(&field("max_retries"), "at most 5"));
            }
            for (f, v) in [("name", &g.name), ("criteria", &g.criteria)] {
                if v.as_ref().is_some_and(|v| v.len() > 2048) {
                    return Err(refuse(&field(f), "at most 2048 bytes"));
                }
            }
        }
        for (list, entries) in [("allow", &self.tools.allow), ("deny", &self.tools.deny)] {
            if let Some(i) = entries
                .iter()
                .position(|e| e.is_empty() || e.len() > 128 || e.chars().any(char::is_whitespace))
            {
                return Err(refuse(
                    &format!("tools.{list}[{i}]"),
                    "a tool name or group:<name>, without spaces",
                ));
            }
        }
        Ok(())
    }

    /// The numbers a run uses, with the gateway's defaults filled in.
    pub fn limits(&self, d: &AgentDefaults) -> RunLimits {
        RunLimits {
            max_iterations: self.max_iterations.unwrap_or(d.max_iterations),
            max_history_tokens: usize::try_from(
                self.max_history_tokens.unwrap_or(d.max_history_tokens),
            )
            .unwrap_or(usize::MAX),
            keep_recent_messages: usize::try_from(
                self.keep_recent_messages.unwrap_or(d.keep_recent_messages),
            )
            .unwrap_or(8),
        }
    }
}

/// The bounds of one run, resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunLimits {
    pub max_iterations: u32,
    pub max_history_tokens: usize,
    pub keep_recent_messages: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn input_is_checked_with_the_field_named() {
        let ok = AgentSettings::parse(&json!({
            "model": "gpt-4o", "max_iterations": 5, "tools": {"deny": ["exec"]}
        }))
        .unwrap();
        assert_eq!(ok.max_iterations, Some(5));
        assert_eq!(ok.tools.deny, ["exec"]);
        for (input, field, words) in [
            (
                json!({"max_iterations": 0}),
                "max_iterations",
                "between 1 and 200",
            ),
            (
                json!({"max_iterations": "five"}),
                "max_iterations",
                "invalid type",
            ),
            (
                json!({"max_iteratons": 5}),
                "max_iteratons",
                "unknown field",
            ),
            (
                json!({"tools": {"allow": ["ok", "has space"]}}),
                "tools.allow[1]",
                "without spaces",
            ),
            (json!({"model": " "}), "model", "1 to 200"),
            (json!([1, 2]), "", "JSON object"),
        ] {
            let e = AgentSettings::parse(&input).unwrap_err();
            assert_eq!(e.field, field, "{input}");
            assert!(e.to_string().contains(words), "{input}: {e}");
        }
    }

    #[test]
    fn stored_settings_keep_what_can_be_read() {
        let s = AgentSettings::from_stored(
            "a",
            &json!({"model": "m", "max_iterations": "bad", "legacy": true}),
        );
        assert_eq!(s.model.as_deref(), Some("m"));
        assert_eq!(s.max_iterations, None, "unreadable: the default applies");
        let d = AgentDefaults::default();
        assert_eq!(s.limits(&d).max_iterations, d.max_iterations);
    }
}
