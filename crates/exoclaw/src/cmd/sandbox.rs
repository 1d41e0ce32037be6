//! `exoclaw sandbox explain [AGENT]`: the effective sandbox for an agent,
//! probed for real (a network connection, writes outside the workspace,
//! the data dir and provider keys), one line per guarantee; with `--rules`
//! or `--rule ID` the shell policy's rules, each with why it refuses and an
//! example. `exoclaw sandbox check COMMAND`: the shell policy's dry run.

use crate::cli::SandboxCommand;
use crate::cmd::table::Table;
use crate::config::Settings;
use exoclaw_core::tool::ToolContext;
use exoclaw_core::{DEFAULT_TENANT, TenantId, UserId};
use exoclaw_gateway::runtime::context::user_workspace;
use exoclaw_gateway::runtime::tools::{role_of, sandbox};
use exoclaw_tools::shell::{self, Explanation, RuleGroup, ShellPolicyContext, explanations};
use serde::Serialize;

pub async fn run(cmd: &SandboxCommand, settings: &Settings) -> anyhow::Result<bool> {
    let agent = match cmd {
        SandboxCommand::Check { command, json } => return check(command, *json, settings),
        SandboxCommand::Explain {
            rules: true, json, ..
        } => return rules(None, *json),
        SandboxCommand::Explain {
            rule: Some(id),
            json,
            ..
        } => return rules(Some(id), *json),
        SandboxCommand::Explain { agent, .. } => agent,
    };
    let (sandbox, mut policy) = sandbox(settings)?;
    // Probe in a scratch workspace, never a user's.
    let scratch = tempfile::Builder::new()
        .prefix("exoclaw-explain-")
        .tempdir()?;
    policy.workspace = scratch.path().to_path_buf();
    let ctx = ToolContext {
        tenant: TenantId::new(DEFAULT_TENANT),
        user: UserId::new(crate::http::auth::OWNER_USER),
        agent: agent.as_str().into(),
        session: None,
        workspace: user_workspace(
            settings.home.root(),
            DEFAULT_TENANT,
            crate::http::auth::OWNER_USER,
        ),
        request_id: None,
        run: Default::default(),
        approved: None,
        call_id: None,
        agents: None,
        lineage: Default::default(),
        cancel: Default::default(),
    };
    let role = role_of(&ctx);
    crate::outln!(
        "sandbox for agent {agent} ({:?} role), data dir {} hidden",
        role,
        settings.home.root().display()
    );
    let lines = exoclaw_tools::sandbox::explain(&sandbox, &policy, role).await;
    let mut all_ok = true;
    for l in &lines {
        all_ok &= l.ok;
        crate::outln!(
            "{}  {:<28} {}",
            if l.ok { "ok  " } else { "FAIL" },
            l.guarantee,
            l.detail
        );
    }
    Ok(all_ok)
}

#[derive(Serialize)]
struct RuleList {
    rules: Vec<RuleView>,
}

#[derive(Serialize)]
struct RuleView {
    id: &'static str,
    group: RuleGroup,
    why: &'static str,
    example: &'static str,
}

impl From<Explanation> for RuleView {
    fn from(e: Explanation) -> Self {
        RuleView {
            id: e.rule.as_str(),
            group: e.rule.group(),
            why: e.why,
            example: e.example,
        }
    }
}

/// The shell policy's rules (or one of them), explained.
fn rules(only: Option<&str>, json: bool) -> anyhow::Result<bool> {
    let all: Vec<RuleView> = explanations()
        .into_iter()
        .filter(|e| only.is_none_or(|id| e.rule.as_str() == id))
        .map(RuleView::from)
        .collect();
    if let Some(id) = only
        && all.is_empty()
    {
        anyhow::bail!("no shell-policy rule {id}; `exoclaw sandbox explain --rules` lists them");
    }
    if json {
        crate::cmd::table::print_json(&RuleList { rules: all })?;
        return Ok(true);
    }
    let mut table = Table::new(&["RULE", "GROUP", "WHY", "EXAMPLE"]);
    for r in &all {
        let group = serde_json::to_value(r.group)?
            .as_str()
            .unwrap_or_default()
            .to_owned();
        table.row([
            r.id.to_owned(),
            group,
            r.why.to_owned(),
            r.example.to_owned(),
        ]);
    }
    table.print("no rules");
    Ok(true)
}

#[derive(Serialize)]
struct CheckView {
    allowed: bool,
    findings: Vec<FindingView>,
}

#[derive(Serialize)]
struct FindingView {
    rule: &'static str,
    detail: String,
    why: &'static str,
}

/// The shell policy's decision on `command` in the owner's workspace, as
/// the exec tools would take it; nothing runs.
fn check(command: &str, json: bool, settings: &Settings) -> anyhow::Result<bool> {
    let ctx = ShellPolicyContext {
        data_dir: Some(settings.home.root().to_path_buf()),
        workspace: Some(user_workspace(
            settings.home.root(),
            DEFAULT_TENANT,
            crate::http::auth::OWNER_USER,
        )),
        home: None,
        gateway_port: Some(settings.config.gateway.port),
    };
    let findings: Vec<FindingView> = match shell::check(command, &ctx) {
        Ok(_) => Vec::new(),
        Err(d) => d
            .findings
            .into_iter()
            .map(|f| FindingView {
                rule: f.rule.as_str(),
                why: f.rule.explain().why,
                detail: f.detail,
            })
            .collect(),
    };
    let allowed = findings.is_empty();
    if json {
        crate::cmd::table::print_json(&CheckView { allowed, findings })?;
        return Ok(allowed);
    }
    if allowed {
        crate::outln!("allowed: the shell policy finds nothing to refuse");
    }
    for f in &findings {
        crate::outln!("refused by {}: {}\n    why: {}", f.rule, f.detail, f.why);
    }
    Ok(allowed)
}

/// Whether the sandbox's guarantees hold for the main agent under
/// `settings`, probed in a scratch workspace (for `security audit --fix`
/// before it turns the sandbox on): `Err` names the first that does not.
pub async fn probe(settings: &Settings) -> Result<(), String> {
    crate::security::plan::probe_sandbox(settings).await
}
