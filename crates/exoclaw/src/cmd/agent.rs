//! `exoclaw agent list|add|delete|chat` (and `link|links|unlink`, handed to
//! `cmd/orchestration.rs`). `chat` runs the agent loop in this
//! process against the same store and providers the gateway uses, as the
//! owner, on the `cli` channel.

use crate::cli::AgentCommand;
use crate::config::Settings;
use crate::http::auth::{OWNER_USER, Principal};
use crate::serve::refuse_unsafe_home;
use anyhow::{Context as _, bail};
use exoclaw_core::agent::{AgentEvent, Finish};
use exoclaw_core::id::is_valid_slug;
use exoclaw_core::model::{AgentType, NewAgent, Role};
use exoclaw_core::{AgentId, DEFAULT_TENANT, TenantId, UserId};
use exoclaw_gateway::db;
use exoclaw_gateway::runtime::turn::Inbound;
use exoclaw_gateway::runtime::{Runtime, TurnEnd};
use std::io::{BufRead as _, Write as _};
use std::sync::Arc;
use std::time::Duration;

pub async fn run(cmd: &AgentCommand, settings: Settings, verbose: bool) -> anyhow::Result<()> {
    refuse_unsafe_home(&settings.home)?;
    let inspection = db::inspect(&settings).await?;
    if !inspection.status.is_current() {
        bail!(
            "the store schema is not current (version {} of {}); start `exoclaw serve` once or run `exoclaw upgrade`",
            inspection.status.current,
            inspection.status.latest
        );
    }
    let db = db::open(&settings).await?;
    let store = db.store();
    let tenant = TenantId::new(DEFAULT_TENANT);
    let result = async {
        match cmd {
            AgentCommand::List { json } => {
                let agents = store.list_agents(&tenant).await?;
                if *json {
                    return crate::cmd::table::print_json(&crate::http::AgentList::of(&agents));
                }
                let mut table =
                    crate::cmd::table::Table::new(&["ID", "TYPE", "NAME", "MODEL", "DESCRIPTION"]);
                for a in &agents {
                    let s = exoclaw_gateway::runtime::agent_settings::AgentSettings::from_stored(
                        a.id.as_str(),
                        &a.config,
                    );
                    let model = s.model.unwrap_or_else(|| "(the default)".to_owned());
                    let description = if s.disabled {
                        format!("[disabled] {}", s.description.unwrap_or_default())
                    } else {
                        s.description.unwrap_or_default()
                    };
                    table.row([
                        a.id.to_string(),
                        a.agent_type.as_str().to_owned(),
                        a.display_name.clone(),
                        model,
                        description,
                    ]);
                }
                table.print("no agents");
            }
            AgentCommand::Add {
                id,
                name,
                r#type,
                provider,
                model,
            } => {
                if !is_valid_slug(id) {
                    bail!("agent ids are 1-64 lowercase letters, digits, '-' or '_'");
                }
                let agent_type: AgentType = r#type.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
                let mut config = serde_json::Map::new();
                if let Some(p) = provider {
                    config.insert("provider".into(), p.clone().into());
                }
                if let Some(m) = model {
                    config.insert("model".into(), m.clone().into());
                }
                store
                    .create_agent(
                        &tenant,
                        &NewAgent {
                            id: AgentId::new(id.clone()),
                            display_name: name.clone().unwrap_or_else(|| id.clone()),
                            agent_type,
                            config: config.into(),
                        },
                    )
                    .await?;
                crate::outln!("added agent {id}");
            }
            AgentCommand::Delete { id } => {
                store
                    .delete_agent(&tenant, &AgentId::new(id.clone()))
                    .await?;
                crate::outln!("deleted agent {id} and its sessions");
            }
            AgentCommand::Link { .. }
            | AgentCommand::Links { .. }
            | AgentCommand::Unlink { .. } => {
                super::orchestration::run_links(cmd, store.as_ref()).await?;
            }
            AgentCommand::Chat { agent } => {
                // Log lines would land in the conversation: they go to the
                // data dir's log file unless --verbose asks for them here.
                if !verbose {
                    let path = settings.home.log_path("chat.log");
                    crate::logging::to_file(&path)?;
                    eprintln!("(logs: {})", path.display());
                }
                let (runtime, supervisor) = local_runtime(&settings, store.clone()).await?;
                let result = chat(&runtime, agent).await;
                runtime.flush_queues(Duration::from_secs(5)).await;
                supervisor.shutdown(Duration::from_secs(1)).await;
                result?;
            }
        }
        Ok(())
    }
    .await;
    db.close().await;
    result
}

/// A runtime in this process on the data dir's store, with the providers
/// the gateway uses (keys stored in the vault need the vault key) and an
/// owner of its own (`cli-<pid>`: the gateway's restart must not take this
/// process's runs for its own). Flush its queues and shut the supervisor
/// down when done.
pub(crate) async fn local_runtime(
    settings: &Settings,
    store: Arc<dyn exoclaw_core::store::Store>,
) -> anyhow::Result<(Arc<Runtime>, exoclaw_gateway::supervisor::Supervisor)> {
    let vault = match &settings.secrets.encryption_key {
        Some(hex) => {
            let key = exoclaw_store::vault::VaultKey::from_hex(hex.expose())
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let old = crate::serve::old_key(settings)?;
            Some(exoclaw_store::vault::SecretVault::new(
                store.clone(),
                exoclaw_store::vault::Vault::new(key, old),
            ))
        }
        None => None,
    };
    let supervisor = exoclaw_gateway::supervisor::Supervisor::new();
    let runtime = Runtime::build(
        Arc::new(settings.clone()),
        store,
        vault.as_ref(),
        Arc::new(exoclaw_gateway::metrics::Metrics::new()),
        None,
        supervisor.clone(),
        format!("cli-{}", std::process::id()),
    )
    .await?;
    Ok((runtime, supervisor))
}

async fn chat(runtime: &Runtime, agent: &str) -> anyhow::Result<()> {
    let who = Principal {
        actor: "cli".to_owned(),
        role: Role::Owner,
        tenant: TenantId::new(DEFAULT_TENANT),
        user: UserId::new(OWNER_USER),
        scopes: None,
    };
    let found = runtime
        .agent(&who, agent)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    eprintln!("chatting with {agent}; /reset starts a new session, /exit or Ctrl-D leaves");
    let unpriced = runtime.unpriced_models(&who, &found);
    if !unpriced.is_empty() {
        eprintln!(
            "(no price is known for {}: usage is recorded at cost 0 and budgets cannot count it; set models.pricing in config.json to count it)",
            unpriced.join(", ")
        );
    }
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    loop {
        eprint!("> ");
        let mut line = String::new();
        if stdin
            .lock()
            .read_line(&mut line)
            .context("cannot read standard input")?
            == 0
        {
            break;
        }
        let line = line.trim();
        match line {
            "" => continue,
            "/exit" | "/quit" => break,
            "/reset" => {
                let sessions = runtime
                    .store
                    .list_sessions(
                        &who.tenant,
                        &exoclaw_core::model::SessionFilter {
                            agent_id: Some(AgentId::new(agent)),
                            user_id: Some(who.user.clone()),
                            ..Default::default()
                        },
                    )
                    .await?;
                for s in sessions.iter().filter(|s| s.channel == "cli") {
                    runtime.store.delete_session(&who.tenant, &s.id).await?;
                }
                eprintln!("(new session)");
                continue;
            }
            _ => {}
        }
        let inbound = runtime
            .receive(&who, agent, "cli", "terminal", line.to_owned(), None)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut turn = match inbound {
            Inbound::Turn(t) => t,
            Inbound::Stopped(stopped) => {
                eprintln!("({})", stopped.message());
                continue;
            }
            Inbound::Replied(text) => {
                eprintln!("({text})");
                continue;
            }
        };
        while let Some(event) = turn.events.recv().await {
            match event {
                AgentEvent::TextDelta(d) => {
                    crate::out!("{d}");
                    out.flush().ok();
                }
                AgentEvent::ToolStarted { name, .. } => eprintln!("\n[tool {name} ...]"),
                AgentEvent::ToolFinished {
                    name,
                    ok,
                    error_code,
                    ..
                } => {
                    if ok {
                        eprintln!("[tool {name} done]");
                    } else {
                        eprintln!("[tool {name} failed: {}]", error_code.unwrap_or_default());
                    }
                }
                AgentEvent::Notice { message, .. } => eprintln!("\n({message})"),
            }
        }
        crate::outln!();
        match turn.end().await {
            TurnEnd::Ran(o) => match o.finish {
                Finish::Complete => {}
                Finish::Cancelled => eprintln!("(cancelled)"),
                Finish::Failed { code, message } => eprintln!("error [{code}]: {message}"),
            },
            TurnEnd::Broken { code, message } => eprintln!("error [{code}]: {message}"),
        }
    }
    runtime.drain(std::time::Duration::from_secs(5)).await;
    Ok(())
}
