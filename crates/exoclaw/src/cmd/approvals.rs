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
            ApprovalsCommand::List { all } => {
                let status = (!all).then_some(ApprovalStatus::Pending);
                for a in store.list_approvals(&tenant, status).await? {
                    crate::outln!(
                        "{}\t{}\t{}\t{}\t{}\t{}",
                        a.id,
                        a.status.as_str(),
                        a.rule,
                        a.agent_id,
                        a.user_id,
                        a.command.replace(['\n', '\t'], " ")
                    );
                }
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
