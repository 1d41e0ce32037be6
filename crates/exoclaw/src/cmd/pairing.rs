//! `exoclaw pairing approve|deny|list|revoke`: the operator's side of browser
//! and channel pairing (the same decisions, lockout and audit as
//! `/v1/pairing`; the actor is `cli`).

use crate::cli::PairingCommand;
use crate::config::Settings;
use crate::serve::refuse_unsafe_home;
use anyhow::bail;
use exoclaw_core::model::{PairingRequest, PairingStatus};
use exoclaw_core::store::{Store, StoreError};
use exoclaw_core::{DEFAULT_TENANT, TenantId};
use exoclaw_gateway::db;
use exoclaw_gateway::pairing::{self, PairingError, Verdict};
use serde_json::json;

pub async fn run(cmd: &PairingCommand, settings: &Settings) -> anyhow::Result<()> {
    refuse_unsafe_home(&settings.home)?;
    let inspection = db::inspect(settings).await?;
    if !inspection.status.is_current() {
        bail!("the store schema is not current; run `exoclaw upgrade` first");
    }
    let db = db::open(settings).await?;
    let store = db.store();
    let result = dispatch(cmd, store.as_ref(), &settings.owner_ids).await;
    db.close().await;
    result
}

async fn dispatch(
    cmd: &PairingCommand,
    store: &dyn Store,
    owner_ids: &[String],
) -> anyhow::Result<()> {
    // The operator at the CLI holds the data dir: an owner.
    let approver = pairing::Approver::owner("cli", owner_ids);
    let tenant = TenantId::new(DEFAULT_TENANT);
    match cmd {
        PairingCommand::Approve { code, json } => {
            let r = decide(store, &tenant, code, Verdict::Approve, &approver).await?;
            if *json {
                crate::outln!("{}", request_json(&r));
            } else {
                crate::outln!("approved {}", describe(&r));
            }
        }
        PairingCommand::Deny { code } => {
            let r = decide(store, &tenant, code, Verdict::Deny, &approver).await?;
            crate::outln!("denied {}", describe(&r));
        }
        PairingCommand::List { json } => {
            let now = pairing::now_ms();
            let pending: Vec<PairingRequest> = store
                .list_pairing_requests(&tenant, Some(PairingStatus::Pending))
                .await?
                .into_iter()
                .filter(|r| r.status_at(now) == PairingStatus::Pending)
                .collect();
            let devices = store.list_devices(&tenant).await?;
            if *json {
                let pending: Vec<_> = pending.iter().map(request_json).collect();
                crate::outln!("{}", json!({"pending": pending, "devices": devices}));
                return Ok(());
            }
            let mut table = crate::cmd::table::Table::new(&["PENDING", "FOR", "EXPIRES IN"]);
            for r in &pending {
                table.row([
                    r.kind.as_str().to_owned(),
                    who_for(store, &tenant, r).await,
                    format!("{}s", (r.expires_at - now).max(0) / 1000),
                ]);
            }
            table.print("no pending pairing requests");
            let mut table = crate::cmd::table::Table::new(&["DEVICE", "USER", "STATE", "LABEL"]);
            for d in &devices {
                let state = if d.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                table.row([
                    d.id.clone(),
                    d.user_id.to_string(),
                    state.to_owned(),
                    d.label.clone(),
                ]);
            }
            table.print("no paired devices");
        }
        PairingCommand::Revoke { id } => {
            match pairing::revoke(store, &tenant, id, "cli", None).await {
                Ok(d) => crate::outln!("revoked {} ({})", d.id, d.user_id),
                Err(StoreError::NotFound) => {
                    bail!("no device {id}; `exoclaw pairing list` shows the devices")
                }
                Err(StoreError::Conflict(m)) => bail!("{m}"),
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

async fn decide(
    store: &dyn Store,
    tenant: &TenantId,
    code: &str,
    verdict: Verdict,
    approver: &pairing::Approver<'_>,
) -> anyhow::Result<PairingRequest> {
    match pairing::decide(store, tenant, code, verdict, approver, None).await {
        Ok(r) => Ok(r),
        Err(PairingError::InvalidCode) => bail!(
            "no pending pairing request has this code (unknown or expired); \
             `exoclaw pairing list` shows the pending ones"
        ),
        Err(PairingError::Locked { retry_after }) => bail!(
            "pairing approvals are locked after repeated failures; retry in {}s",
            retry_after.as_secs()
        ),
        Err(e) => Err(e.into()),
    }
}

/// Whom a pending request would pair: a browser's user as asked and, when
/// it resolves, the user's name and id; a channel's sender.
async fn who_for(store: &dyn Store, tenant: &TenantId, r: &PairingRequest) -> String {
    match (&r.user_id, r.kind) {
        (Some(handle), exoclaw_core::model::PairingKind::Device) => {
            match pairing::resolve_user(store, tenant, handle.as_str()).await {
                Ok(Some(u)) => format!("user {} (id {})", u.name, u.id),
                Ok(None) => format!("user {handle} (no such user yet)"),
                Err(e) => format!("user {handle} ({e})"),
            }
        }
        _ => describe(r),
    }
}

fn describe(r: &PairingRequest) -> String {
    match (&r.user_id, &r.channel, &r.sender_id) {
        (user, Some(channel), Some(sender)) => format!(
            "{} {channel}:{sender}{}",
            r.kind.as_str(),
            user.as_ref()
                .map(|u| format!(" as user {u}"))
                .unwrap_or_default()
        ),
        (Some(user), _, _) => format!("{} for user {user}", r.kind.as_str()),
        _ => r.kind.as_str().to_owned(),
    }
}

fn request_json(r: &PairingRequest) -> serde_json::Value {
    json!({
        "kind": r.kind,
        "user_id": r.user_id,
        "channel": r.channel,
        "sender_id": r.sender_id,
        "status": r.status_at(pairing::now_ms()),
        "created_at": r.created_at,
        "expires_at": r.expires_at,
        "approved_by": r.approved_by,
        "approved_at": r.approved_at,
    })
}
