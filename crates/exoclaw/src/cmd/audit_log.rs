//! `exoclaw audit list|verify`: read the audit log and check its hash chain
//! from the terminal (the gateway may be running). `exoclaw security audit`
//! (`cmd/audit.rs`) is the hardening checker; it runs [`verify`] as its
//! `audit.chain` check.

use crate::cli::AuditCommand;
use crate::config::Settings;
use crate::serve::refuse_unsafe_home;
use anyhow::{Context as _, bail};
use exoclaw_core::TenantId;
use exoclaw_core::model::{AuditEvent, AuditFilter, AuditVerify};
use exoclaw_gateway::db;

pub async fn run(cmd: &AuditCommand, settings: &Settings) -> anyhow::Result<bool> {
    refuse_unsafe_home(&settings.home)?;
    let inspection = db::inspect(settings).await?;
    if !inspection.exists {
        bail!("there is no store yet (start `exoclaw serve` once); no audit log to read");
    }
    if !inspection.status.is_current() {
        bail!(
            "the store schema is not current (version {} of {}); run `exoclaw upgrade` first",
            inspection.status.current,
            inspection.status.latest
        );
    }
    // Reading only: the gateway may be running, and nothing here writes.
    let db = db::open_read_only(settings).await?;
    let store = db.store();
    let result = async {
        match cmd {
            AuditCommand::List {
                tenant,
                action,
                actor,
                decision,
                since,
                until,
                before_seq,
                limit,
                json,
            } => {
                if *limit == 0 {
                    bail!("--limit must be at least 1");
                }
                let now = exoclaw_gateway::runtime::approval::now_ms();
                let time = |flag: &str, v: &Option<String>| {
                    v.as_deref()
                        .map(|s| {
                            exoclaw_gateway::audit::parse_time(s, now)
                                .map_err(|e| anyhow::anyhow!("{flag}: {e}"))
                        })
                        .transpose()
                };
                let filter = AuditFilter {
                    tenant_id: tenant.as_deref().map(TenantId::new),
                    action_prefix: action.clone(),
                    actor: actor.clone(),
                    decision: decision.clone(),
                    since: time("--since", since)?,
                    until: time("--until", until)?,
                    before_seq: *before_seq,
                    limit: *limit,
                };
                let events = store
                    .list_audit(&filter)
                    .await
                    .context("cannot read the audit log")?;
                // A full page may have more behind it: say how to get it.
                let next_before_seq = (events.len() == *limit as usize)
                    .then(|| events.last().map(|e| e.seq))
                    .flatten();
                if *json {
                    let page = crate::http::AuditPage {
                        events: events
                            .iter()
                            .map(crate::http::AuditEventView::from)
                            .collect(),
                        next_before_seq,
                    };
                    crate::cmd::table::print_json(&page)?;
                    return Ok(true);
                }
                let mut table = crate::cmd::table::Table::new(&[
                    "TIME", "SEQ", "TENANT#", "ACTOR", "ACTION", "RESOURCE", "DECISION", "REASON",
                    "REQUEST",
                ]);
                for e in &events {
                    table.row(fields(e));
                }
                table.print("no audit events match");
                if let Some(seq) = next_before_seq {
                    eprintln!("(more: add --before-seq {seq})");
                }
                Ok(true)
            }
            AuditCommand::Verify { tenant, json } => {
                let tenant = tenant.as_deref().map(TenantId::new);
                let v = store
                    .verify_audit(tenant.as_ref())
                    .await
                    .context("cannot read the audit log")?;
                if *json {
                    crate::outln!(
                        "{}",
                        serde_json::json!({"intact": v.is_intact(), "chains": v.chains})
                    );
                } else {
                    print_verify(&v);
                }
                Ok(v.is_intact())
            }
        }
    }
    .await;
    db.close().await;
    result
}

/// One event's columns.
fn fields(e: &AuditEvent) -> [String; 9] {
    [
        crate::cmd::token::rfc3339(e.at),
        e.seq.to_string(),
        format!("{}#{}", e.tenant_id, e.tenant_seq),
        e.actor.clone(),
        e.action.clone(),
        e.resource.clone(),
        e.decision.clone(),
        e.reason.clone(),
        e.request_id.clone().unwrap_or_default(),
    ]
}

fn print_verify(v: &AuditVerify) {
    if v.chains.is_empty() {
        crate::outln!("the audit log is empty");
    }
    for c in &v.chains {
        match &c.broken {
            None => crate::outln!(
                "tenant {}: {} events intact, head {} {}",
                c.tenant_id,
                c.checked,
                c.head_seq,
                c.head_hash.as_deref().unwrap_or("-")
            ),
            Some(b) => crate::outln!(
                "tenant {}: BROKEN at seq {} ({}): {}",
                c.tenant_id,
                b.seq,
                b.kind.as_str(),
                b.reason
            ),
        }
        if c.unchained > 0 {
            crate::outln!(
                "tenant {}: {} events from before the hash chain (schema 6) cannot be verified",
                c.tenant_id,
                c.unchained
            );
        }
    }
    if let Some((t, b)) = v.first_break() {
        crate::outln!(
            "audit chain broken: tenant {t}, first bad seq {} ({})",
            b.seq,
            b.kind.as_str()
        );
    }
}

/// Verifies every chain, for `exoclaw security audit`: `None` when there
/// is no store or its schema is not current (other checks report that).
pub async fn verify(settings: &Settings) -> anyhow::Result<Option<AuditVerify>> {
    if !settings.home.exists() && settings.secrets.postgres_dsn.is_none() {
        return Ok(None);
    }
    let inspection = db::inspect(settings).await?;
    if !inspection.exists || !inspection.status.is_current() {
        return Ok(None);
    }
    let db = db::open_read_only(settings).await?;
    let result = db.store().verify_audit(None).await;
    db.close().await;
    Ok(Some(result?))
}
