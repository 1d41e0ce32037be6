//! Exec approvals, written once for both backends (see [`crate::port`]):
//! requests deduplicated per command hash (one creation per tenant and hash
//! at a time, also across gateways on one PostgreSQL), decisions taken once
//! (a conditional UPDATE on `status = 'pending'`).

macro_rules! ports {
    ($store:ident, $d:ident) => {
        use async_trait::async_trait;
        use exoclaw_core::store::{
            Approval, ApprovalStatus, ApprovalStore, NewApproval, StoreError, StoreResult,
        };
        use exoclaw_core::{SessionId, TenantId, UnixMillis};
        use sqlx::Connection as _;
        use $crate::{new_id, row, rule};

        /// The columns of an `approvals` row, in insert order.
        macro_rules! cols {
            () => {
                "id, tenant_id, agent_id, user_id, session_id, command, cwd, command_hash, \
                 rule, status, requested_at, decided_at, decided_by"
            };
        }

        #[async_trait]
        impl ApprovalStore for $store {
            async fn request_approval(
                &self,
                new: &NewApproval,
                now: UnixMillis,
            ) -> StoreResult<Approval> {
                let mut conn = self.write_conn().await?;
                let mut tx = conn.begin_with($d::BEGIN_WRITE).await.map_err($d::err)?;
                $d::lock(&mut tx, || {
                    format!("{}/{}", new.tenant_id, new.command_hash)
                })
                .await?;
                let existing = sqlx::query($d::sql!(
                    "SELECT ",
                    cols!(),
                    " FROM approvals WHERE tenant_id = ? AND command_hash = ? \
                     AND status = 'pending' ORDER BY requested_at DESC LIMIT 1"
                ))
                .bind(new.tenant_id.as_str())
                .bind(&new.command_hash)
                .fetch_optional(&mut *tx)
                .await
                .map_err($d::err)?;
                if let Some(r) = existing {
                    tx.commit().await.map_err($d::err)?;
                    return row::approval(&r);
                }
                let id = new_id()?;
                sqlx::query($d::sql!(
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
                .map_err($d::err)?;
                tx.commit().await.map_err($d::err)?;
                drop(conn);
                self.get_approval(&new.tenant_id, &id)
                    .await?
                    .ok_or(StoreError::NotFound)
            }

            async fn get_approval(
                &self,
                tenant: &TenantId,
                id: &str,
            ) -> StoreResult<Option<Approval>> {
                sqlx::query($d::sql!(
                    "SELECT ",
                    cols!(),
                    " FROM approvals WHERE tenant_id = ? AND id = ?"
                ))
                .bind(tenant.as_str())
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err($d::err)?
                .as_ref()
                .map(row::approval)
                .transpose()
            }

            async fn list_approvals(
                &self,
                tenant: &TenantId,
                status: Option<ApprovalStatus>,
            ) -> StoreResult<Vec<Approval>> {
                let rows = sqlx::query($d::sql!(
                    "SELECT ",
                    cols!(),
                    " FROM approvals WHERE tenant_id = ?1 AND (?2 IS NULL OR status = ?2) \
                     ORDER BY requested_at DESC, id LIMIT 500"
                ))
                .bind(tenant.as_str())
                .bind(status.map(ApprovalStatus::as_str))
                .fetch_all(&self.pool)
                .await
                .map_err($d::err)?;
                row::all(&rows, row::approval)
            }

            async fn decide_approval(
                &self,
                tenant: &TenantId,
                id: &str,
                to: ApprovalStatus,
                by: &str,
                now: UnixMillis,
            ) -> StoreResult<Approval> {
                rule::check_approval_decision(to)?;
                let done = sqlx::query($d::sql!(
                    "UPDATE approvals SET status = ?, decided_at = ?, decided_by = ? \
                     WHERE tenant_id = ? AND id = ? AND status = 'pending'"
                ))
                .bind(to.as_str())
                .bind(now)
                .bind(by)
                .bind(tenant.as_str())
                .bind(id)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
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
                let n: i64 = sqlx::query_scalar($d::sql!(
                    "SELECT COUNT(*) FROM approvals WHERE tenant_id = ? AND command_hash = ? \
                     AND status = 'approved' AND decided_at >= ?"
                ))
                .bind(tenant.as_str())
                .bind(hash)
                .bind(since)
                .fetch_one(&self.pool)
                .await
                .map_err($d::err)?;
                Ok(n > 0)
            }
        }
    };
}

pub(crate) use ports;
