//! `exoclaw audit list|verify|export|key`: read the audit log and check its
//! hash chain from the terminal (the gateway may be running); export a
//! verifiable bundle and check one offline (`audit/bundle.rs` in the gateway
//! library holds the format). `exoclaw security audit`
//! (`cmd/audit.rs`) is the hardening checker; it runs [`verify`] as its
//! `audit.chain` check.

use crate::cli::AuditCommand;
use crate::config::Settings;
use crate::serve::refuse_unsafe_home;
use anyhow::{Context as _, bail};
use exoclaw_core::TenantId;
use exoclaw_core::model::{AuditEvent, AuditFilter, AuditVerify};
use exoclaw_gateway::audit::bundle;
use exoclaw_gateway::db;
use std::path::Path;

pub async fn run(cmd: &AuditCommand, settings: &Settings) -> anyhow::Result<bool> {
    refuse_unsafe_home(&settings.home)?;
    match cmd {
        AuditCommand::Export { .. } | AuditCommand::Key { .. } => {
            return export_or_key(cmd, settings).await;
        }
        AuditCommand::Verify {
            bundle: Some(bundle),
            public_key,
            json,
            ..
        } => return verify_bundle(bundle, public_key.as_deref(), *json),
        AuditCommand::List { .. } | AuditCommand::Verify { .. } => {}
    }
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
            AuditCommand::Export { .. } | AuditCommand::Key { .. } => Ok(false),
            AuditCommand::Verify { tenant, json, .. } => {
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
    crate::security::checks::verify_chain(settings).await
}

/// `audit export` and `audit key`: they may create the signing key, so the
/// store is opened for writing (the vault needs the encryption key).
async fn export_or_key(cmd: &AuditCommand, settings: &Settings) -> anyhow::Result<bool> {
    let inspection = db::inspect(settings).await?;
    if !inspection.exists {
        bail!("there is no store yet (start `exoclaw serve` once); no audit log to export");
    }
    if !inspection.status.is_current() {
        bail!(
            "the store schema is not current (version {} of {}); run `exoclaw upgrade` first",
            inspection.status.current,
            inspection.status.latest
        );
    }
    let needs_key = matches!(
        cmd,
        AuditCommand::Key { .. } | AuditCommand::Export { sign: true, .. }
    );
    let db = if needs_key {
        db::open(settings).await?
    } else {
        db::open_read_only(settings).await?
    };
    let result = async {
        let key = if needs_key {
            let create = matches!(
                cmd,
                AuditCommand::Key { create: true } | AuditCommand::Export { .. }
            );
            let vault = crate::cmd::secrets::vault(settings, &db).await?;
            let key = bundle::signing_key(&vault, create).await?;
            if let Some((k, true)) = &key {
                eprintln!(
                    "created the audit signing key {}/{} in the vault; public key {}",
                    bundle::SIGNING_KEY_OWNER,
                    bundle::SIGNING_KEY,
                    hex::encode(k.verifying_key().as_bytes())
                );
            }
            key
        } else {
            None
        };
        match cmd {
            AuditCommand::Key { .. } => {
                let Some((k, _)) = key else {
                    bail!("there is no audit signing key yet; create one with `exoclaw audit key --create` (or `exoclaw audit export --sign`)");
                };
                crate::outln!("{}", hex::encode(k.verifying_key().as_bytes()));
                Ok(true)
            }
            AuditCommand::Export {
                tenant,
                since,
                until,
                out,
                force,
                sign,
                no_contents,
            } => {
                if out.exists() && !*force {
                    bail!(
                        "{} exists; choose another --out or add --force",
                        out.display()
                    );
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
                let filter = bundle::ExportFilter {
                    tenant: tenant.as_deref().map(TenantId::new),
                    since: time("--since", since)?,
                    until: time("--until", until)?,
                    contents: !*no_contents,
                };
                let store = db.store();
                let b = bundle::export(store.as_ref(), &filter, now)
                    .await
                    .context("cannot read the audit log")?;
                let (events, receipts) = (
                    b.chains.iter().map(|c| c.events.len()).sum::<usize>(),
                    b.receipts.len(),
                );
                let file = match (&key, *sign) {
                    (Some((k, _)), true) => bundle::sign(b, k)?,
                    _ => bundle::BundleFile {
                        bundle: b,
                        signature: None,
                    },
                };
                let text = serde_json::to_vec_pretty(&file)?;
                // Beside the file, then renamed over it (0600).
                let path = std::path::absolute(out)
                    .with_context(|| format!("cannot resolve {}", out.display()))?;
                exoclaw_gateway::home::write_private_file(&path, &text)?;
                crate::outln!(
                    "wrote {} ({events} events, {receipts} receipts{})",
                    out.display(),
                    if file.signature.is_some() {
                        ", signed"
                    } else {
                        ""
                    }
                );
                Ok(true)
            }
            AuditCommand::List { .. } | AuditCommand::Verify { .. } => Ok(false),
        }
    }
    .await;
    db.close().await;
    result
}

/// `audit verify --bundle`: offline, from the file alone.
pub fn verify_bundle(path: &Path, public_key: Option<&str>, json: bool) -> anyhow::Result<bool> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let r = bundle::verify(&text, public_key);
    if json {
        let mut v = serde_json::to_value(&r)?;
        v["ok"] = serde_json::Value::Bool(r.is_ok());
        crate::outln!("{v}");
        return Ok(r.is_ok());
    }
    for c in &r.chains {
        match (c.first_seq, c.last_seq) {
            (Some(a), Some(b)) => crate::outln!(
                "tenant {}: events {a} to {b} ({}{}{})",
                c.tenant_id,
                if c.from_genesis {
                    "from the first event"
                } else {
                    "anchored"
                },
                if c.to_head { ", to the head" } else { "" },
                if c.events == 0 { ", empty" } else { "" }
            ),
            _ => crate::outln!("tenant {}: no events in the range", c.tenant_id),
        }
    }
    crate::outln!(
        "tool calls: {}, receipts matching their digests: {}",
        r.tool_calls,
        r.receipts_matched
    );
    match (r.signature, &r.key_fingerprint) {
        ("valid", Some(fp)) => crate::outln!(
            "signature: valid, key {fp}{}",
            if public_key.is_some() {
                " (the required key)"
            } else {
                " (named by the bundle: pass --public-key to require yours)"
            }
        ),
        ("absent", _) => crate::outln!("signature: none"),
        _ => crate::outln!("signature: INVALID"),
    }
    for p in &r.problems {
        crate::outln!("problem: {p}");
    }
    crate::outln!(
        "{}",
        if r.is_ok() {
            "bundle verified"
        } else {
            "bundle FAILED verification"
        }
    );
    Ok(r.is_ok())
}
