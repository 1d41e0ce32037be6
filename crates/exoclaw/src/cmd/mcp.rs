//! `exoclaw mcp add|list|remove|test`: MCP servers from the terminal,
//! through the same checks as `/v1/mcp/servers` (the definition validated
//! before anything is stored, secret values sealed in the vault, an audit
//! event with the actor `cli`). The CLI writes the store directly; a
//! running gateway starts the change after its next start. `test` connects
//! once (a stdio server in the sandbox, as the gateway would) and lists the
//! tools.

use crate::cli::McpCommand;
use crate::config::Settings;
use crate::http::error::ApiError;
use crate::http::mcp::{self, ServerBody, ServerList};
use crate::serve::refuse_unsafe_home;
use anyhow::{Context as _, bail};
use exoclaw_core::TenantId;
use exoclaw_core::model::NewAuditEvent;
use exoclaw_gateway::db;
use exoclaw_gateway::mcp::{Launcher, McpServers};
use std::io::Read as _;
use std::sync::Arc;

use super::table::{Table, print_json};
use super::tools::{json_problem, open_vault};

fn refused(e: impl Into<ApiError>) -> anyhow::Error {
    let ApiError { code, message } = e.into();
    anyhow::anyhow!("{message} [{code}]")
}

pub async fn run(cmd: &McpCommand, settings: &Settings) -> anyhow::Result<()> {
    refuse_unsafe_home(&settings.home)?;
    let inspection = db::inspect(settings).await?;
    if !inspection.exists {
        bail!("there is no store yet; start `exoclaw serve` once");
    }
    if !inspection.status.is_current() {
        bail!(
            "the store schema is not current (version {} of {}); run `exoclaw upgrade` first",
            inspection.status.current,
            inspection.status.latest
        );
    }
    let db = db::open(settings).await?;
    let result = servers(cmd, settings, &db).await;
    db.close().await;
    result
}

async fn servers(cmd: &McpCommand, settings: &Settings, db: &db::Db) -> anyhow::Result<()> {
    let servers = McpServers::offline(db.store());
    match cmd {
        McpCommand::Add { file, tenant } => {
            let text = if file == "-" {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("cannot read the definition from standard input")?;
                text
            } else {
                std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?
            };
            let body: ServerBody = serde_json::from_str(&text).map_err(|e| {
                anyhow::anyhow!(
                    "the definition is not the document POST /v1/mcp/servers takes: line {}, column {}: {}",
                    e.line(),
                    e.column(),
                    json_problem(&e)
                )
            })?;
            let (def, secrets) = mcp::parts(body);
            let vault = open_vault(settings, db).await?;
            let tenant = TenantId::new(tenant);
            let stored = servers
                .put(&vault, &tenant, def, secrets, exoclaw_core::now_ms())
                .await
                .map_err(refused)?;
            audit(db, &tenant, "mcp.server.put", &stored.def.name).await;
            crate::outln!(
                "stored MCP server {}; a running gateway starts it after its next start",
                stored.def.name
            );
        }
        McpCommand::List { json, tenant } => {
            let list = servers
                .list(&TenantId::new(tenant))
                .await
                .map_err(refused)?;
            let list = ServerList {
                servers: list.into_iter().map(mcp::view).collect(),
            };
            if *json {
                return print_json(&list);
            }
            let mut t = Table::new(&["NAME", "TRANSPORT", "TARGET"]);
            for s in list.servers {
                let transport = serde_json::to_value(s.transport)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                t.row([
                    s.name,
                    transport,
                    s.url.unwrap_or_else(|| s.command.join(" ")),
                ]);
            }
            t.print("no MCP servers");
        }
        McpCommand::Remove { name, tenant } => {
            let vault = open_vault(settings, db).await?;
            let tenant = TenantId::new(tenant);
            servers
                .remove(&vault, &tenant, name)
                .await
                .map_err(refused)?;
            audit(db, &tenant, "mcp.server.delete", name).await;
            crate::outln!("removed MCP server {name}");
        }
        McpCommand::Test { name, tenant } => {
            let vault = open_vault(settings, db).await.ok();
            let (sandbox, policy) = exoclaw_gateway::runtime::tools::sandbox(settings)?;
            let launcher = Launcher {
                sandbox: Arc::new(sandbox),
                policy,
                egress: exoclaw_gateway::egress::mcp_client(settings)?,
            };
            let supervisor = exoclaw_gateway::supervisor::Supervisor::new();
            let result = servers
                .test(
                    vault.as_ref(),
                    &TenantId::new(tenant),
                    name,
                    &launcher,
                    settings.home.root(),
                    &supervisor,
                )
                .await
                .map_err(refused)?;
            match result {
                Ok(tools) => {
                    crate::outln!("{name}: up, {} tools", tools.len());
                    for t in tools {
                        crate::outln!("  {t}");
                    }
                }
                Err(why) => bail!("{name}: down: {why}"),
            }
        }
    }
    Ok(())
}

async fn audit(db: &db::Db, tenant: &TenantId, action: &str, name: &str) {
    let event = NewAuditEvent {
        tenant_id: tenant.clone(),
        actor: "cli".to_owned(),
        action: action.to_owned(),
        resource: format!("mcp:{name}"),
        decision: "allow".to_owned(),
        reason: String::new(),
        request_id: None,
        agent_id: None,
        session_id: None,
        detail: serde_json::json!({}),
    };
    exoclaw_gateway::audit::record(db.store().as_ref(), &event).await;
}
