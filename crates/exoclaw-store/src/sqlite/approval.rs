//! The approval port of [`SqliteStore`]: requests deduplicated per command
//! hash, decisions taken once (a conditional UPDATE on `status = 'pending'`).

use super::SqliteStore;
use crate::{error, new_id};
use async_trait::async_trait;
use exoclaw_core::store::{
    Approval, ApprovalStatus, ApprovalStore, NewApproval, StoreError, StoreResult,
};
use exoclaw_core::{AgentId, SessionId, TenantId, UnixMillis, UserId};
use sqlx::Connection as _;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

// The column list as a macro so that `concat!` builds static SQL.
macro_rules! cols {
    () => {
        "id, tenant_id, agent_id, user_id, session_id, command, cwd, command_hash, rule, status, \
         requested_at, decided_at, decided_by"
    };
}

fn approval(r: &SqliteRow) -> StoreResult<Approval> {
    let status: String = r.try_get("status").map_err(error::sqlite)?;
    Ok(Approval {
        id: r.try_get("id").map_err(error::sqlite)?,
        tenant_id: TenantId::new(r.try_get::<String, _>("tenant_id").map_err(error::sqlite)?),
        agent_id: AgentId::new(r.try_get::<String, _>("agent_id").map_err(error::sqlite)?),
        user_id: UserId::new(r.try_get::<String, _>("user_id").map_err(error::sqlite)?),
        session_id: r
            .try_get::<Option<String>, _>("session_id")
            .map_err(error::sqlite)?
            .map(SessionId::new),
        command: r.try_get("command").map_err(error::sqlite)?,
        cwd: r.try_get("cwd").map_err(error::sqlite)?,
        command_hash: r.try_get("command_hash").map_err(error::sqlite)?,
        rule: r.try_get("rule").map_err(error::sqlite)?,
        status: ApprovalStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown approval status {status:?}")))?,
        requested_at: r.try_get("requested_at").map_err(error::sqlite)?,
        decided_at: r.try_get("decided_at").map_err(error::sqlite)?,
        decided_by: r.try_get("decided_by").map_err(error::sqlite)?,
    })
}

#[async_trait]
impl ApprovalStore for SqliteStore {
    async fn request_approval(&self, new: &NewApproval, now: UnixMillis) -> StoreResult<Approval> {
        let mut writer = self.writer.acquire().await?;
        let mut tx = writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(error::sqlite)?;
        let existing = sqlx::query(concat!(
            "SELECT ",
            cols!(),
            " FROM approvals WHERE tenant_id = ? AND command_hash = ? \
             AND status = 'pending' ORDER BY requested_at DESC LIMIT 1"
        ))
        .bind(new.tenant_id.as_str())
        .bind(&new.command_hash)
        .fetch_optional(&mut *tx)
        .await
        .map_err(error::sqlite)?;
        if let Some(row) = existing {
            tx.commit().await.map_err(error::sqlite)?;
            return approval(&row);
        }
        let id = new_id()?;
        sqlx::query(concat!(
            "INSERT INTO approvals (",
            cols!(),
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, NULL, NULL)"
        ))
        .bind(&id)
        .bind(new.tenant_id.as_str())
        .bind(new.agent_id.as_str())
        .bind(new.user_id.as_str())
        .bind(new.session_id.as_ref().map(SessionId::as_str))
        .bind(&new.command)
        .bind(&new.cwd)
        .bind(&new.command_hash)
        .bind(&new.rule)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(error::sqlite)?;
        tx.commit().await.map_err(error::sqlite)?;
        self.get_approval(&new.tenant_id, &id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn get_approval(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<Approval>> {
        sqlx::query(concat!(
            "SELECT ",
            cols!(),
            " FROM approvals WHERE tenant_id = ? AND id = ?"
        ))
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(error::sqlite)?
        .as_ref()
        .map(approval)
        .transpose()
    }

    async fn list_approvals(
        &self,
        tenant: &TenantId,
        status: Option<ApprovalStatus>,
    ) -> StoreResult<Vec<Approval>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            cols!(),
            " FROM approvals WHERE tenant_id = ? AND (? IS NULL OR status = ?) \
             ORDER BY requested_at DESC, id LIMIT 500"
        ))
        .bind(tenant.as_str())
        .bind(status.map(ApprovalStatus::as_str))
        .bind(status.map(ApprovalStatus::as_str))
        .fetch_all(&self.pool)
        .await
        .map_err(error::sqlite)?;
        rows.iter().map(approval).collect()
    }

    async fn decide_approval(
        &self,
        tenant: &TenantId,
        id: &str,
        to: ApprovalStatus,
        by: &str,
        now: UnixMillis,
    ) -> StoreResult<Approval> {
        if to == ApprovalStatus::Pending {
            return Err(StoreError::Invalid(
                "an approval cannot be decided back to pending".into(),
            ));
        }
        let done = sqlx::query(
            "UPDATE approvals SET status = ?, decided_at = ?, decided_by = ? \
             WHERE tenant_id = ? AND id = ? AND status = 'pending'",
        )
        .bind(to.as_str())
        .bind(now)
        .bind(by)
        .bind(tenant.as_str())
        .bind(id)
        .execute(&mut *self.writer.acquire().await?)
        .await
        .map_err(error::sqlite)?;
        let current = self
            .get_approval(tenant, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "approval {id} is already {}",
                current.status.as_str()
            )));
        }
        Ok(current)
    }

    async fn is_approved(
        &self,
        tenant: &TenantId,
        hash: &str,
        since: UnixMillis,
    ) -> StoreResult<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM approvals WHERE tenant_id = ? AND command_hash = ? \
             AND status = 'approved' AND decided_at >= ?",
        )
        .bind(tenant.as_str())
        .bind(hash)
        .bind(since)
        .fetch_one(&self.pool)
        .await
        .map_err(error::sqlite)?;
        Ok(n > 0)
    }
}
