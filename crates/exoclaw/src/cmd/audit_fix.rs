//! `exoclaw security audit --fix` beyond file permissions: the findings a
//! safe value repairs, each applied only after confirmation (a prompt in a
//! terminal, or `--yes`), and every other finding reported as left with its
//! reason.
//!
//! What is repaired, and how:
//! - configuration (`config.json`): the rate limits, the injection scanner,
//!   shell checks, the workspace anchor, the sandbox (only when a probe shows
//!   it works on this host), open channels (back to `pairing`, `"*"` removed
//!   from `allow_from`), workspace quotas and connection timeouts (their
//!   defaults), a public bind without a trusted proxy (back to loopback).
//!   The edited file is validated as `serve` would load it before it is
//!   written (atomically, its mode kept); the previous text is kept as
//!   `<config>.bak`. A key set by an `EXOCLAW_*` variable is left: editing the
//!   file would change nothing.
//! - the gateway token: a missing one is generated into the data dir's
//!   `.env`; a weak one is rotated (the store's token and `.env`, as
//!   `exoclaw token rotate --grace 0`); never printed, read it from `.env`.
//!   A token from the process environment is left.

use super::finding::{Finding, Severity};
use crate::config::Settings;
use crate::config::env::Origin;
use crate::config::file::{DmPolicy, InjectionAction, SandboxMode};
use anyhow::Context as _;
use exoclaw_gateway::home;
use serde_json::{Value, json};
use std::io::{BufRead as _, IsTerminal as _, Write as _};

/// How changes are confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Confirm {
    /// `--yes`: apply every remedy.
    Yes,
    /// Ask on the terminal, one remedy at a time.
    Ask,
    /// No terminal and no `--yes`: apply nothing, say how.
    No,
}

impl Confirm {
    pub fn from_flags(yes: bool, json: bool) -> Self {
        if yes {
            Confirm::Yes
        } else if !json && std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
            Confirm::Ask
        } else {
            Confirm::No
        }
    }
}

/// One repair.
#[derive(Clone, Debug)]
pub struct Remedy {
    pub id: &'static str,
    /// What it changes, for the prompt and the `changed` list.
    pub what: String,
    action: Action,
}

#[derive(Clone, Debug)]
enum Action {
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
    crate::cmd::sandbox::probe(&probe).await
}

/// Applies what `confirm` allows; returns (changed, left).
pub async fn apply(
    s: &Settings,
    remedies: Vec<Remedy>,
    confirm: Confirm,
) -> (Vec<String>, Vec<String>) {
    let mut changed = Vec::new();
    let mut left = Vec::new();
    let mut edits: Vec<(String, Value)> = Vec::new();
    let mut edited: Vec<&'static str> = Vec::new();
    let mut token = None;
    for r in remedies {
        let yes = match confirm {
            Confirm::Yes => true,
            Confirm::Ask => ask(&r),
            Confirm::No => {
                left.push(format!(
                    "{}: would {} (re-run with --yes, or in a terminal to confirm each)",
                    r.id, r.what
                ));
                continue;
            }
        };
        if !yes {
            left.push(format!("{}: declined ({})", r.id, r.what));
            continue;
        }
        match r.action {
            Action::Config(e) => {
                edits.extend(e);
                edited.push(r.id);
            }
            Action::NewToken | Action::RotateToken => token = Some(r),
        }
    }
    if !edits.is_empty() {
        match edit_config(s, &edits) {
            Ok(()) => changed.extend(edits.iter().map(|(p, v)| {
                format!(
                    "{}: {} = {v}",
                    s.config_path.display(),
                    p.trim_start_matches('/').replace('/', ".")
                )
            })),
            Err(e) => left.extend(
                edited
                    .iter()
                    .map(|id| format!("{id}: cannot edit the config: {e:#}")),
            ),
        }
    }
    if let Some(r) = token {
        let result = match r.action {
            Action::RotateToken => rotate_token(s).await,
            _ => new_token(s),
        };
        match result {
            Ok(what) => changed.push(what),
            Err(e) => left.push(format!("{}: {e:#}", r.id)),
        }
    }
    (changed, left)
}

fn ask(r: &Remedy) -> bool {
    eprint!("fix {}: {}? [y/N] ", r.id, r.what);
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes")
}

/// Applies `edits` to `config.json` (created when missing), after checking
/// the result loads as `serve` would load it; the old text is kept beside
/// it as `.bak`.
fn edit_config(s: &Settings, edits: &[(String, Value)]) -> anyhow::Result<()> {
    let path = &s.config_path;
    let old = if s.config_file_exists {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?
    } else {
        String::new()
    };
    let mut root: Value = if old.trim().is_empty() {
        json!({})
    } else {
        serde_json::from_str(&old).with_context(|| format!("{} is not JSON", path.display()))?
    };
    for (pointer, value) in edits {
        set(&mut root, pointer, value.clone())?;
    }
    let mut text = serde_json::to_string_pretty(&root)?;
    text.push('\n');
    crate::config::from_parts(s.home.clone(), path.clone(), &text, true, s.env.clone())
        .map_err(|e| anyhow::anyhow!("the edited config would not load: {e}"))?;
    let path = std::path::absolute(path)?;
    let mode = std::fs::metadata(&path)
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
        .unwrap_or(0o600);
    if s.config_file_exists {
        let bak = path.with_file_name(format!(
            "{}.bak",
            path.file_name().unwrap_or_default().to_string_lossy()
        ));
        home::write_private_file(&bak, old.as_bytes())?;
    }
    home::write_private_file(&path, text.as_bytes())?;
    if mode != 0o600 {
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode))?;
    }
    Ok(())
}

/// Sets `pointer` in `root`, creating objects on the way.
fn set(root: &mut Value, pointer: &str, value: Value) -> anyhow::Result<()> {
    let mut at = root;
    let parts: Vec<String> = pointer
        .trim_start_matches('/')
        .split('/')
        .map(|p| p.replace("~1", "/").replace("~0", "~"))
        .collect();
    let Some((last, path)) = parts.split_last() else {
        anyhow::bail!("empty pointer");
    };
    for p in path {
        let Value::Object(map) = at else {
            anyhow::bail!("{pointer}: {p} is not an object");
        };
        at = map.entry(p.clone()).or_insert_with(|| json!({}));
    }
    let Value::Object(map) = at else {
        anyhow::bail!("{pointer}: not inside an object");
    };
    map.insert(last.clone(), value);
    Ok(())
}

fn new_token(s: &Settings) -> anyhow::Result<String> {
    s.home.ensure_layout()?;
    let token = home::random_hex_32()?;
    let path = s.home.dotenv_path();
    home::update_dotenv(&path, &[("EXOCLAW_GATEWAY_TOKEN", Some(&token))])?;
    Ok(format!(
        "generated a gateway token into {} (read it there; it is not printed)",
        path.display()
    ))
}

async fn rotate_token(s: &Settings) -> anyhow::Result<String> {
    let inspection = exoclaw_gateway::db::inspect(s).await?;
    if !inspection.exists {
        // Never started: the store has no token yet, `.env` is all there is.
        return new_token(s).map(|m| m.replace("generated", "replaced the weak token with"));
    }
    crate::cmd::token::rotate(s, std::time::Duration::ZERO).await?;
    Ok(format!(
        "rotated the gateway token (store and {}; running gateways follow; read it there, it is not printed)",
        s.home.dotenv_path().display()
    ))
}
