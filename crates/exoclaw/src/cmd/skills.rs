//! `exoclaw skills install|list|show|remove|approve|status`: the terminal side of
//! `/v1/skills` (`http::skills`: the same operations, the same JSON with
//! `--json`). The CLI acts on the store directly as the tenant's owner (a
//! running gateway sees the changes at once); `--gateway` lists, shows and
//! approves the gateway's own skills.

use crate::cli::SkillsCommand;
use crate::cli::skills::SkillScope;
use crate::config::Settings;
use crate::http::error::ApiError;
use crate::http::skills::{SkillView, ops};
use crate::serve::refuse_unsafe_home;
use anyhow::{Context as _, bail};
use exoclaw_core::TenantId;
use exoclaw_gateway::clock::rfc3339;
use exoclaw_gateway::db;
use exoclaw_gateway::runtime::Runtime;
use exoclaw_gateway::skills::{Actor, Source};
use std::io::Read as _;
use std::time::Duration;

use super::table::{Table, print_json};

fn refused(e: ApiError) -> anyhow::Error {
    let ApiError { code, message } = e;
    anyhow::anyhow!("{message} [{code}]")
}

pub async fn run(cmd: &SkillsCommand, settings: &Settings) -> anyhow::Result<()> {
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
        let result = command(&rt, cmd).await;
        supervisor.shutdown(Duration::from_secs(1)).await;
        result
    }
    .await;
    db.close().await;
    result
}

fn scope_of(s: &SkillScope) -> Option<TenantId> {
    (!s.gateway).then(|| TenantId::new(&s.tenant))
}

const ACTOR: Actor<'static> = Actor {
    name: "cli",
    request_id: None,
};

fn row(s: &SkillView) -> Vec<String> {
    vec![
        s.name.clone(),
        s.version.clone(),
        s.status.clone(),
        s.scope.clone(),
        s.files.len().to_string(),
        rfc3339(s.installed_at),
        s.description.chars().take(60).collect(),
    ]
}

const HEADER: [&str; 7] = [
    "NAME",
    "VERSION",
    "STATUS",
    "SCOPE",
    "FILES",
    "INSTALLED",
    "DESCRIPTION",
];

fn print_skill(s: &SkillView) {
    crate::outln!("{} {} ({}, {})", s.name, s.version, s.status, s.scope);
    crate::outln!("  {}", s.description);
    crate::outln!("  sha256: {}", s.sha256);
    crate::outln!("  files: {}", s.files.join(", "));
    if !s.tools.is_empty() {
        crate::outln!("  tools: {}", s.tools.join(", "));
    }
    for w in &s.warnings {
        crate::outln!("  warning: {w}");
    }
    if s.status == "quarantined" {
        crate::outln!(
            "  quarantined: not offered, searched or read until approved (exoclaw skills approve {} --sha256 {})",
            s.name,
            s.sha256
        );
    }
}

/// The bytes of an archive file, refusing one over the upload cap without
/// reading it all.
fn read_archive(path: &std::path::Path, max_kb: u32) -> anyhow::Result<Vec<u8>> {
    let cap = u64::from(max_kb) * 1024;
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut bytes = Vec::new();
    f.take(cap + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(bytes)
}

async fn command(rt: &Runtime, cmd: &SkillsCommand) -> anyhow::Result<()> {
    match cmd {
        SkillsCommand::Install { path, json, tenant } => {
            let tenant = TenantId::new(tenant);
            let skill = if path.is_dir() {
                ops::install(rt, Some(&tenant), Source::Folder(path), &ACTOR).await
            } else {
                let bytes = read_archive(path, rt.skills.config().max_archive_kb)?;
                ops::install(rt, Some(&tenant), Source::Archive(&bytes), &ACTOR).await
            }
            .map_err(refused)?;
            if *json {
                return print_json(&skill);
            }
            crate::outln!("installed skill {}", skill.name);
            print_skill(&skill);
            Ok(())
        }
        SkillsCommand::List { json, scope } => {
            let list = ops::list(rt, scope_of(scope).as_ref())
                .await
                .map_err(refused)?;
            if *json {
                return print_json(&list);
            }
            let mut t = Table::new(&HEADER);
            for s in &list.skills {
                t.row(row(s));
            }
            t.print("no skills");
            Ok(())
        }
        SkillsCommand::Show { name, json, scope } => {
            let d = ops::show(rt, scope_of(scope).as_ref(), name)
                .await
                .map_err(refused)?;
            if *json {
                return print_json(&d);
            }
            print_skill(&d.skill);
            crate::outln!("\n{}", d.skill_md);
            Ok(())
        }
        SkillsCommand::Remove { name, tenant } => {
            ops::remove(rt, Some(&TenantId::new(tenant)), name, &ACTOR)
                .await
                .map_err(refused)?;
            crate::outln!("removed skill {name}");
            Ok(())
        }
        SkillsCommand::Status { json, scope } => {
            let s = rt
                .skills
                .status(scope_of(scope).as_ref())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if *json {
                return print_json(&s);
            }
            match &s.embedder {
                Some(e) => crate::outln!("embedder: {e}"),
                None => crate::outln!("embedder: none (skill search is full-text only)"),
            }
            crate::outln!(
                "skills: {} ({} with a vector of the current embedder; the others are found by full text until re-embedded)",
                s.total,
                s.embedded
            );
            if let Some(r) = &s.reembed {
                crate::outln!("re-embedding: {r}");
            }
            Ok(())
        }
        SkillsCommand::Approve {
            name,
            sha256,
            scope,
        } => {
            let s = ops::approve(
                rt,
                scope_of(scope).as_ref(),
                name,
                sha256.as_deref(),
                &ACTOR,
            )
            .await
            .map_err(refused)?;
            crate::outln!("approved skill {} ({})", s.name, s.sha256);
            Ok(())
        }
    }
}
