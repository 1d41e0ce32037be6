//! `exoclaw sandbox explain [AGENT]`: the effective sandbox for an agent,
//! probed for real (a network connection, writes outside the workspace,
//! the data dir and provider keys), one line per guarantee.

use crate::cli::SandboxCommand;
use crate::config::Settings;
use exoclaw_core::tool::ToolContext;
use exoclaw_core::{DEFAULT_TENANT, TenantId, UserId};
use exoclaw_gateway::runtime::context::user_workspace;
use exoclaw_gateway::runtime::tools::{role_of, sandbox};

pub async fn run(cmd: &SandboxCommand, settings: &Settings) -> anyhow::Result<bool> {
    let SandboxCommand::Explain { agent } = cmd;
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
