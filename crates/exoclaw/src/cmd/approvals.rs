//! `exoclaw approvals list|approve|deny`: decide flagged commands from the
//! terminal (the same decisions as `/v1/approvals` and the WebSocket).

use crate::cli::ApprovalsCommand;
use crate::config::Settings;
use crate::serve::refuse_unsafe_home;
use anyhow::bail;
use exoclaw_core::store::{ApprovalStatus, StoreError};
use exoclaw_core::{DEFAULT_TENANT, TenantId};
use exoclaw_gateway::db;

pub async fn run(cmd: &ApprovalsCommand, settings: &Settings) -> anyhow::Result<()> {
    refuse_unsafe_home(&settings.home)?;
    let inspection = db::inspect(settings).await?;
    if !inspection.status.is_current() {
        bail!("the store schema is not current; run `exoclaw upgrade` first");
    }
    let db = db::open(settings).await?;
    let store = db.store();
    let tenant = TenantId::new(DEFAULT_TENANT);
    let result = async {
        let (id, to) = match cmd {
            ApprovalsCommand::List { all, json } => {
                let status = (!all).then_some(ApprovalStatus::Pending);
                let items = store.list_approvals(&tenant, status).await?;
                if *json {
                    return crate::cmd::table::print_json(&crate::http::ApprovalList::of(items));
                }
                let mut table = crate::cmd::table::Table::new(&[
                    "ID", "STATUS", "RULE", "AGENT", "USER", "COMMAND",
                ]);
                for a in items {
                    table.row([
                        a.id,
                        a.status.as_str().to_owned(),
                        a.rule,
                        a.agent_id.to_string(),
                        a.user_id.to_string(),
                        a.command,
                    ]);
                }
                table.print(if *all {
                    "no approvals"
                } else {
                    "no pending approvals"
                });
                return Ok(());
            }
            ApprovalsCommand::Approve { id } => (id, ApprovalStatus::Approved),
            ApprovalsCommand::Deny { id } => (id, ApprovalStatus::Denied),
        };
        match exoclaw_gateway::runtime::approval::decide(
            store.as_ref(),
            &tenant,
            id,
            to,
            "cli",
            None,
        )
        .await
        {
            Ok(a) => crate::outln!("{} {}", a.status.as_str(), a.id),
            Err(StoreError::NotFound) => {
                bail!("no approval {id}; `exoclaw approvals list` shows the pending ones")
            }
            Err(StoreError::Conflict(m)) => bail!("{m}"),
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }
    .await;
    db.close().await;
    result
}
