//! `exoclaw tools custom add|list|remove`: custom tools from the terminal,
//! through the same checks as `/v1/tools/custom` (the definition validated
//! before anything is stored, secret values sealed in the vault, an audit
//! event with the actor `cli`). The CLI writes the store directly; a
//! running gateway offers the change after its next start.

use crate::cli::{CustomToolsCommand, ToolsCommand};
use crate::config::Settings;
use crate::http::custom_tools::{self, CustomToolBody, CustomToolList};
use crate::http::error::ApiError;
use crate::serve::{old_key, refuse_unsafe_home};
use anyhow::{Context as _, bail};
use exoclaw_core::TenantId;
use exoclaw_core::model::NewAuditEvent;
use exoclaw_gateway::db;
use exoclaw_gateway::runtime::custom_tools::CustomTools;
use exoclaw_store::vault::{SecretVault, Vault, VaultKey};
use std::io::Read as _;

use super::table::{Table, print_json};

fn refused(e: impl Into<ApiError>) -> anyhow::Error {
    let ApiError { code, message } = e.into();
    anyhow::anyhow!("{message} [{code}]")
}

pub async fn run(cmd: &ToolsCommand, settings: &Settings) -> anyhow::Result<()> {
    let ToolsCommand::Custom(cmd) = cmd;
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
    let result = custom(cmd, settings, &db).await;
    db.close().await;
    result
}

pub async fn open_vault(settings: &Settings, db: &db::Db) -> anyhow::Result<SecretVault> {
    let Some(key_hex) = &settings.secrets.encryption_key else {
        bail!(
            "EXOCLAW_ENCRYPTION_KEY is not set; start `exoclaw serve` once to generate it into the data dir's .env, or set it"
        );
    };
    let key = VaultKey::from_hex(key_hex.expose()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let vault = SecretVault::new(db.store(), Vault::new(key, old_key(settings)?));
    vault
        .ensure_check()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(vault)
}

/// Runs with the store open and its schema current.
async fn custom(cmd: &CustomToolsCommand, settings: &Settings, db: &db::Db) -> anyhow::Result<()> {
    let tools = CustomTools::offline(db.store());
    match cmd {
        CustomToolsCommand::Add { file, tenant } => {
            let text = if file == "-" {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("cannot read the definition from standard input")?;
                text
            } else {
                std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?
            };
            let body: CustomToolBody = serde_json::from_str(&text).map_err(|e| {
                anyhow::anyhow!(
                    "the definition is not the document POST /v1/tools/custom takes: line {}, column {}: {}",
                    e.line(),
                    e.column(),
                    json_problem(&e)
                )
            })?;
            let (def, secrets, agents) = custom_tools::parts(body);
            let vault = open_vault(settings, db).await?;
            let tenant = TenantId::new(tenant);
            let stored = tools
                .put(
                    &vault,
                    &tenant,
                    def,
                    secrets,
                    agents,
                    exoclaw_core::now_ms(),
                )
                .await
                .map_err(refused)?;
            let agents: Vec<&str> = stored.agents.iter().map(|a| a.as_str()).collect();
            audit(db, &tenant, "tool.custom.put", &stored.def.name).await;
            crate::outln!(
                "stored custom tool {} (offered to: {}); a running gateway offers it after its next start",
                stored.def.name,
                if agents.is_empty() {
                    "no agent yet".to_owned()
                } else {
                    agents.join(", ")
                }
            );
        }
        CustomToolsCommand::List { json, tenant } => {
            let list = tools.list(&TenantId::new(tenant)).await.map_err(refused)?;
            let list = CustomToolList {
                tools: list.into_iter().map(custom_tools::view).collect(),
            };
            if *json {
                return print_json(&list);
            }
            let mut t = Table::new(&["NAME", "COMMAND", "AGENTS", "DESCRIPTION"]);
            for tool in list.tools {
                t.row([
                    tool.name,
                    tool.command.join(" "),
                    tool.agents.join(","),
                    tool.description,
                ]);
            }
            t.print("no custom tools");
        }
        CustomToolsCommand::Remove { name, tenant } => {
            let vault = open_vault(settings, db).await?;
            let tenant = TenantId::new(tenant);
            tools.remove(&vault, &tenant, name).await.map_err(refused)?;
            audit(db, &tenant, "tool.custom.delete", name).await;
            crate::outln!("removed custom tool {name}");
        }
    }
    Ok(())
}

/// What is wrong with a document, without quoting it (it may hold secrets).
pub fn json_problem(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "cannot read it",
        serde_json::error::Category::Syntax => "not valid JSON",
        serde_json::error::Category::Data => "a field is missing, unknown or of the wrong type",
        serde_json::error::Category::Eof => "it ends too early",
    }
}

async fn audit(db: &db::Db, tenant: &TenantId, action: &str, name: &str) {
    let event = NewAuditEvent {
        tenant_id: tenant.clone(),
        actor: "cli".to_owned(),
        action: action.to_owned(),
        resource: format!("tool:custom/{name}"),
        decision: "allow".to_owned(),
        reason: String::new(),
        request_id: None,
        agent_id: None,
        session_id: None,
        detail: serde_json::json!({}),
    };
    exoclaw_gateway::audit::record(db.store().as_ref(), &event).await;
}
