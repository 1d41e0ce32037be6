//! `exoclaw memory list|search|forget|status`: the terminal side of
//! `/v1/memory` (`http::memory`: the same operations, the same JSON with
//! `--json`). The CLI acts as an owner of the tenant it names, on the store
//! directly (a running gateway sees the changes at once); `search` takes
//! the view of `--user`.

use crate::cli::MemoryCommand;
use crate::config::Settings;
use crate::http::auth::OWNER_USER;
use crate::http::error::ApiError;
use crate::http::memory::{MemoryView, ops};
use crate::serve::refuse_unsafe_home;
use anyhow::bail;
use exoclaw_core::model::Role;
use exoclaw_core::{TenantId, UserId};
use exoclaw_gateway::access::Principal;
use exoclaw_gateway::clock::rfc3339;
use exoclaw_gateway::db;
use exoclaw_gateway::runtime::Runtime;
use std::time::Duration;

use super::table::{Table, print_json};

fn refused(e: ApiError) -> anyhow::Error {
    let ApiError { code, message } = e;
    anyhow::anyhow!("{message} [{code}]")
}

fn tenant_of(cmd: &MemoryCommand) -> &str {
    match cmd {
        MemoryCommand::List { tenant, .. }
        | MemoryCommand::Search { tenant, .. }
        | MemoryCommand::Forget { tenant, .. }
        | MemoryCommand::Status { tenant, .. } => tenant,
    }
}

pub async fn run(cmd: &MemoryCommand, settings: &Settings) -> anyhow::Result<()> {
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
    let store = db.store();
    let result = async {
        let (rt, supervisor) = super::agent::local_runtime(settings, store.clone()).await?;
        let user = match cmd {
            MemoryCommand::Search { user: Some(u), .. } => u.clone(),
            _ => OWNER_USER.to_owned(),
        };
        let who = Principal {
            actor: "cli".to_owned(),
            role: Role::Owner,
            tenant: TenantId::new(tenant_of(cmd)),
            user: UserId::new(user),
            scopes: None,
        };
        let result = command(&rt, &who, cmd).await;
        supervisor.shutdown(Duration::from_secs(1)).await;
        result
    }
    .await;
    db.close().await;
    result
}

fn one_line(s: &str, max: usize) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() <= max {
        return s;
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn memory_row(m: &MemoryView) -> Vec<String> {
    vec![
        m.id.clone(),
        m.agent.clone(),
        m.user.clone().unwrap_or_else(|| "(shared)".to_owned()),
        m.importance.to_string(),
        if m.untrusted { "untrusted" } else { "" }.to_owned(),
        rfc3339(m.updated_at),
        one_line(&m.content, 60),
    ]
}

const HEADER: [&str; 7] = [
    "ID",
    "AGENT",
    "USER",
    "IMPORTANCE",
    "SOURCE",
    "UPDATED",
    "CONTENT",
];

async fn command(rt: &Runtime, who: &Principal, cmd: &MemoryCommand) -> anyhow::Result<()> {
    match cmd {
        MemoryCommand::List {
            agent, limit, json, ..
        } => {
            let list = ops::list(rt, who, agent.as_deref(), None, *limit)
                .await
                .map_err(refused)?;
            if *json {
                return print_json(&list);
            }
            let mut t = Table::new(&HEADER);
            for m in &list.memories {
                t.row(memory_row(m));
            }
            t.print("no memories");
            Ok(())
        }
        MemoryCommand::Search {
            query,
            agent,
            limit,
            json,
            ..
        } => {
            let list = ops::list(rt, who, Some(agent), Some(query), *limit)
                .await
                .map_err(refused)?;
            if *json {
                return print_json(&list);
            }
            let mut t = Table::new(&HEADER);
            for m in &list.memories {
                t.row(memory_row(m));
            }
            t.print("no memory matches");
            if list.full_text_only == Some(true) {
                crate::outln!(
                    "(ranked by full text only: no embedder configured or it did not answer)"
                );
            }
            Ok(())
        }
        MemoryCommand::Forget { id, .. } => {
            ops::forget(rt, who, id).await.map_err(refused)?;
            crate::outln!("forgot memory {id}");
            Ok(())
        }
        MemoryCommand::Status { json, .. } => {
            let s = ops::status(rt, who).await.map_err(refused)?;
            if *json {
                return print_json(&s);
            }
            match &s.embedder {
                Some(e) => crate::outln!("embedder: {e}"),
                None => crate::outln!("embedder: none (search is full-text only)"),
            }
            crate::outln!(
                "memories: {} ({} with a vector of the current embedder)",
                s.total,
                s.embedded
            );
            if let Some(r) = &s.reembed {
                crate::outln!(
                    "re-embedding: {}",
                    exoclaw_gateway::memory::reembed::Progress::from(r)
                );
            }
            Ok(())
        }
    }
}
