//! What `exoclaw security audit --fix` would repair beyond file
//! permissions: the findings a safe value repairs, as [`Remedy`]s (applied
//! by `cmd/audit_fix.rs` after confirmation), and every other finding left
//! with its reason. The dashboard's security page shows the same plan.
//!
//! What is repaired, and how:
//! - configuration (`config.json`): the rate limits, the injection scanner,
//!   shell checks, the workspace anchor, the sandbox (only when a probe shows
//!   it works on this host), open channels (back to `pairing`, `"*"` removed
//!   from `allow_from`), workspace quotas and connection timeouts (their
//!   defaults), a public bind without a trusted proxy (back to loopback).
//!   A key set by an `EXOCLAW_*` variable is left: editing the file would
//!   change nothing.
//! - the gateway token: a missing one is generated into the data dir's
//!   `.env`; a weak one is rotated. A token from the process environment is
//!   left.

use super::finding::{Finding, Severity};
use crate::config::Settings;
use crate::config::env::Origin;
use crate::config::file::{DmPolicy, InjectionAction, SandboxMode};
use serde_json::{Value, json};

/// One repair.
#[derive(Clone, Debug)]
pub struct Remedy {
    pub id: &'static str,
    /// What it changes, for the prompt and the `changed` list.
    pub what: String,
    pub action: Action,
}

#[derive(Clone, Debug)]
pub enum Action {
    /// `config.json` edits: (JSON pointer, value).
    Config(Vec<(String, Value)>),
    /// Generate a token into `.env` (none configured yet).
    NewToken,
    /// Rotate a weak token (store and `.env`).
    RotateToken,
}

fn config(id: &'static str, what: impl Into<String>, edits: Vec<(String, Value)>) -> Remedy {
    Remedy {
        id,
        what: what.into(),
        action: Action::Config(edits),
    }
}

/// The remedies for `findings`, and what is left (finding id: reason).
pub async fn plan(s: &Settings, findings: &[Finding]) -> (Vec<Remedy>, Vec<String>) {
    let c = &s.config;
    let g = &c.gateway;
    let d = &c.agents.defaults;
    let mut out = Vec::new();
    let mut left = Vec::new();
    let defaults = crate::config::file::FileConfig::default();
    for f in findings.iter().filter(|f| f.severity != Severity::Pass) {
        let remedy = match f.id {
            "fs.permissions" => continue,
            "gateway.rate_limit" => Some(config(
                f.id,
                format!(
                    "set gateway.rate_limit_rpm to {}",
                    defaults.gateway.rate_limit_rpm
                ),
                vec![(
                    "/gateway/rate_limit_rpm".into(),
                    json!(defaults.gateway.rate_limit_rpm),
                )],
            )),
            "gateway.injection" if g.injection_action == InjectionAction::Off => Some(config(
                f.id,
                "set gateway.injection_action to warn",
                vec![("/gateway/injection_action".into(), json!("warn"))],
            )),
            "tools.exec_approval" if f.severity == Severity::Fail => Some(config(
                f.id,
                "set tools.exec_approval.security to full",
                vec![("/tools/exec_approval/security".into(), json!("full"))],
            )),
            "tools.workspace" => Some(config(
                f.id,
                "set agents.defaults.restrict_to_workspace to true",
                vec![("/agents/defaults/restrict_to_workspace".into(), json!(true))],
            )),
            "tools.rate_limit" => Some(config(
                f.id,
                format!(
                    "set tools.rate_limit_per_hour to {}",
                    defaults.tools.rate_limit_per_hour
                ),
                vec![(
                    "/tools/rate_limit_per_hour".into(),
                    json!(defaults.tools.rate_limit_per_hour),
                )],
            )),
            "sandbox.mode" if d.sandbox.mode != SandboxMode::All => match sandbox_works(s).await {
                Ok(()) => Some(config(
                    f.id,
                    "set agents.defaults.sandbox.mode to all (the sandbox probe passed on this host)",
                    vec![("/agents/defaults/sandbox/mode".into(), json!("all"))],
                )),
                Err(why) => {
                    left.push(format!(
                        "{}: the sandbox does not work on this host ({why}); see `exoclaw sandbox explain`",
                        f.id
                    ));
                    continue;
                }
            },
            "channels.dm_open" => {
                let mut edits = Vec::new();
                for (name, ch) in &c.channels {
                    let key = pointer_key(name);
                    if ch.dm_policy == DmPolicy::Open {
                        edits.push((format!("/channels/{key}/dm_policy"), json!("pairing")));
                    }
                    if ch.allow_from.iter().any(|a| a == "*") {
                        let kept: Vec<&String> =
                            ch.allow_from.iter().filter(|a| *a != "*").collect();
                        edits.push((format!("/channels/{key}/allow_from"), json!(kept)));
                    }
                }
                Some(config(
                    f.id,
                    "set open channels' dm_policy to pairing and remove \"*\" from allow_from",
                    edits,
                ))
            }
            "workspace.quota" => {
                let q = &c.tools.workspace_quota;
                let dq = &defaults.tools.workspace_quota;
                let edits: Vec<(String, Value)> = [
                    ("user_mb", q.user_mb, dq.user_mb),
                    ("user_files", q.user_files, dq.user_files),
                    ("tenant_mb", q.tenant_mb, dq.tenant_mb),
                    ("tenant_files", q.tenant_files, dq.tenant_files),
                ]
                .into_iter()
                .filter(|(_, v, _)| *v == 0)
                .map(|(k, _, dv)| (format!("/tools/workspace_quota/{k}"), json!(dv)))
                .collect();
                Some(config(
                    f.id,
                    "set the unlimited tools.workspace_quota.* to their defaults",
                    edits,
                ))
            }
            "gateway.connection_timeouts" => {
                let mut edits = Vec::new();
                if g.header_timeout_sec > 60 {
                    edits.push((
                        "/gateway/header_timeout_sec".into(),
                        json!(defaults.gateway.header_timeout_sec),
                    ));
                }
                if g.write_stall_timeout_sec > 300 {
                    edits.push((
                        "/gateway/write_stall_timeout_sec".into(),
                        json!(defaults.gateway.write_stall_timeout_sec),
                    ));
                }
                Some(config(
                    f.id,
                    "set the connection timeouts over their bounds to their defaults",
                    edits,
                ))
            }
            "gateway.bind" => {
                if s.env.origin("EXOCLAW_HOST").is_some() {
                    left.push(format!(
                        "{}: the address comes from EXOCLAW_HOST; set it to 127.0.0.1 where it is set",
                        f.id
                    ));
                    continue;
                }
                Some(config(
                    f.id,
                    "set gateway.host to 127.0.0.1 (put a TLS reverse proxy in front for remote clients)",
                    vec![("/gateway/host".into(), json!("127.0.0.1"))],
                ))
            }
            "gateway.auth" => Some(Remedy {
                id: f.id,
                what: format!(
                    "generate a gateway token into {}",
                    s.home.dotenv_path().display()
                ),
                action: Action::NewToken,
            }),
            "gateway.token" => {
                if s.env.origin("EXOCLAW_GATEWAY_TOKEN") == Some(Origin::Process) {
                    left.push(format!(
                        "{}: the token comes from the process environment; replace EXOCLAW_GATEWAY_TOKEN there (openssl rand -hex 32)",
                        f.id
                    ));
                    continue;
                }
                Some(Remedy {
                    id: f.id,
                    what: format!(
                        "rotate the gateway token (the old one stops working at once; the new one is in {})",
                        s.home.dotenv_path().display()
                    ),
                    action: Action::RotateToken,
                })
            }
            _ => None,
        };
        match remedy {
            Some(r) => out.push(r),
            None => left.push(format!("{}: not mechanical ({})", f.id, f.fix)),
        }
    }
    (out, left)
}

/// `/` and `~` escaped for a JSON pointer segment.
fn pointer_key(k: &str) -> String {
    k.replace('~', "~0").replace('/', "~1")
}

/// Whether the native sandbox holds on this host, probed as `exoclaw sandbox
/// explain` does.
async fn sandbox_works(s: &Settings) -> Result<(), String> {
    let mut probe = s.clone();
    probe.config.agents.defaults.sandbox.mode = SandboxMode::All;
    probe_sandbox(&probe).await
}

/// Whether the sandbox `settings` configure holds on this host: its
/// guarantees explained over a scratch workspace, the first that fails
/// named.
pub async fn probe_sandbox(settings: &Settings) -> Result<(), String> {
    let (sandbox, mut policy) =
        exoclaw_gateway::runtime::tools::sandbox(settings).map_err(|e| format!("{e:#}"))?;
    let scratch = tempfile::Builder::new()
        .prefix("exoclaw-probe-")
        .tempdir()
        .map_err(|e| format!("no scratch workspace: {e}"))?;
    policy.workspace = scratch.path().to_path_buf();
    let lines =
        exoclaw_tools::sandbox::explain(&sandbox, &policy, exoclaw_tools::sandbox::AgentRole::Main)
            .await;
    match lines.iter().find(|l| !l.ok) {
        Some(l) => Err(format!("{}: {}", l.guarantee, l.detail)),
        None => Ok(()),
    }
}
