//! Cron jobs, written once for both backends (see [`crate::port`]): a job is
//! created under a per-agent lock after counting the agent's jobs (the bound
//! holds across gateways); advancing a job after an occurrence never moves
//! it back (a slower gateway finishing an older occurrence leaves the newer
//! state alone); the scheduler reads every tenant's enabled jobs by next
//! occurrence. Rules (sizes) are in `crate::rule::cron`.

macro_rules! ports {
    ($store:ident, $d:ident) => {
        use async_trait::async_trait;
        use exoclaw_core::store::cron::{CronJob, CronJobUpdate, NewCronJob};
        use exoclaw_core::store::{CronStore, StoreError, StoreResult};
        use exoclaw_core::{AgentId, TenantId, UnixMillis};
        use sqlx::Connection as _;
        use $crate::error::conflict;
        use $crate::{new_id, row, rule};

        /// The columns of a `cron_jobs` row, in insert order.
        macro_rules! cron_cols {
            () => {
                "tenant_id, id, agent_id, user_id, name, schedule, message, delivery, target, \
                 missed, jitter_ms, enabled, disabled_reason, next_run_at, last_run_at, \
                 created_by, created_at, updated_at"
            };
        }

        #[async_trait]
        impl CronStore for $store {
            async fn create_cron_job(
                &self,
                tenant: &TenantId,
                job: &NewCronJob,
                max_per_agent: u32,
                now: UnixMillis,
            ) -> StoreResult<CronJob> {
                rule::cron::check_new_job(job)?;
                let id = new_id()?;
                let mut conn = self.write_conn().await?;
                let mut tx = conn.begin_with($d::BEGIN_WRITE).await.map_err($d::err)?;
                $d::lock(&mut tx, || format!("cron/{tenant}/{}", job.agent_id)).await?;
                let count: i64 = sqlx::query_scalar($d::sql!(
                    "SELECT COUNT(*) FROM cron_jobs WHERE tenant_id = ? AND agent_id = ?"
                ))
                .bind(tenant.as_str())
                .bind(job.agent_id.as_str())
                .fetch_one(&mut *tx)
                .await
                .map_err($d::err)?;
                if count >= i64::from(max_per_agent) {
                    return Err(StoreError::Conflict(format!(
                        "agent {} already has {count} cron jobs, the most allowed (cron.max_jobs_per_agent = {max_per_agent})",
                        job.agent_id
                    )));
                }
                let r = sqlx::query($d::sql!(
                    "INSERT INTO cron_jobs (",
                    cron_cols!(),
                    ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, TRUE, NULL, ?, NULL, ?, ?, ?) \
                     RETURNING ",
                    cron_cols!()
                ))
                .bind(tenant.as_str())
                .bind(&id)
                .bind(job.agent_id.as_str())
                .bind(job.user_id.as_str())
                .bind(&job.name)
                .bind(&job.schedule)
                .bind(&job.message)
                .bind(job.delivery.kind())
                .bind(job.delivery.target())
                .bind(job.missed.as_str())
                .bind(job.jitter_ms)
                .bind(job.next_run_at)
                .bind(&job.created_by)
                .bind(now)
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err($d::err)
                .map_err(conflict(|| format!("cron job {id}")))?;
                let created = row::cron_job(&r)?;
                tx.commit().await.map_err($d::err)?;
                Ok(created)
            }

            async fn get_cron_job(
                &self,
                tenant: &TenantId,
                id: &str,
            ) -> StoreResult<Option<CronJob>> {
                sqlx::query($d::sql!(
                    "SELECT ",
                    cron_cols!(),
                    " FROM cron_jobs WHERE tenant_id = ? AND id = ?"
                ))
                .bind(tenant.as_str())
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err($d::err)?
                .as_ref()
                .map(row::cron_job)
                .transpose()
            }

            async fn list_cron_jobs(
                &self,
                tenant: &TenantId,
                agent: Option<&AgentId>,
            ) -> StoreResult<Vec<CronJob>> {
                let rows = sqlx::query($d::sql!(
                    "SELECT ",
                    cron_cols!(),
                    " FROM cron_jobs WHERE tenant_id = ?1 AND (?2 IS NULL OR agent_id = ?2) \
                     ORDER BY created_at, id"
                ))
                .bind(tenant.as_str())
                .bind(agent.map(AgentId::as_str))
                .fetch_all(&self.pool)
                .await
                .map_err($d::err)?;
                row::all(&rows, row::cron_job)
            }

            async fn update_cron_job(
                &self,
                tenant: &TenantId,
                id: &str,
                u: &CronJobUpdate,
                now: UnixMillis,
            ) -> StoreResult<CronJob> {
                rule::cron::check_update(u)?;
                let (set_next, next) = match u.next_run_at {
                    Some(next) => (true, next),
                    None => (false, None),
                };
                let r = sqlx::query($d::sql!(
                    "UPDATE cron_jobs SET name = COALESCE(?1, name), \
                     schedule = COALESCE(?2, schedule), message = COALESCE(?3, message), \
                     delivery = COALESCE(?4, delivery), \
                     target = CASE WHEN ?4 IS NULL THEN target ELSE ?5 END, \
                     missed = COALESCE(?6, missed), jitter_ms = COALESCE(?7, jitter_ms), \
                     enabled = COALESCE(?8, enabled), \
                     disabled_reason = CASE WHEN ?8 IS NULL THEN disabled_reason ELSE NULL END, \
                     next_run_at = CASE WHEN ?9 THEN ?10 ELSE next_run_at END, \
                     updated_at = ?11 WHERE tenant_id = ?12 AND id = ?13 RETURNING ",
                    cron_cols!()
                ))
                .bind(u.name.as_deref())
                .bind(u.schedule.as_deref())
                .bind(u.message.as_deref())
                .bind(u.delivery.as_ref().map(|d| d.kind()))
                .bind(u.delivery.as_ref().and_then(|d| d.target()))
                .bind(u.missed.map(|m| m.as_str()))
                .bind(u.jitter_ms)
                .bind(u.enabled)
                .bind(set_next)
                .bind(next)
                .bind(now)
                .bind(tenant.as_str())
                .bind(id)
                .fetch_optional(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?
                .ok_or(StoreError::NotFound)?;
                row::cron_job(&r)
            }

            async fn delete_cron_job(&self, tenant: &TenantId, id: &str) -> StoreResult<()> {
                let done = sqlx::query($d::sql!(
                    "DELETE FROM cron_jobs WHERE tenant_id = ? AND id = ?"
                ))
                .bind(tenant.as_str())
                .bind(id)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                rule::found(done.rows_affected())
            }

            async fn advance_cron_job(
                &self,
                tenant: &TenantId,
                id: &str,
                handled: UnixMillis,
                next: Option<UnixMillis>,
                now: UnixMillis,
            ) -> StoreResult<()> {
                // Every right-hand side reads the row as it was.
                let done = sqlx::query($d::sql!(
                    "UPDATE cron_jobs SET \
                     next_run_at = CASE WHEN last_run_at IS NULL OR last_run_at <= ?1 \
                     THEN ?2 ELSE next_run_at END, \
                     last_run_at = CASE WHEN last_run_at IS NULL OR last_run_at < ?1 \
                     THEN ?1 ELSE last_run_at END, \
                     updated_at = ?3 WHERE tenant_id = ?4 AND id = ?5"
                ))
                .bind(handled)
                .bind(next)
                .bind(now)
                .bind(tenant.as_str())
                .bind(id)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                rule::found(done.rows_affected())
            }

            async fn disable_cron_job(
                &self,
                tenant: &TenantId,
                id: &str,
                reason: &str,
                now: UnixMillis,
            ) -> StoreResult<()> {
                let done = sqlx::query($d::sql!(
                    "UPDATE cron_jobs SET enabled = FALSE, disabled_reason = ?, updated_at = ? \
                     WHERE tenant_id = ? AND id = ?"
                ))
                .bind(reason)
                .bind(now)
                .bind(tenant.as_str())
                .bind(id)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                rule::found(done.rows_affected())
            }

            async fn due_cron_jobs(&self, limit: u32) -> StoreResult<Vec<CronJob>> {
                let rows = sqlx::query($d::sql!(
                    "SELECT ",
                    cron_cols!(),
                    " FROM cron_jobs WHERE enabled AND next_run_at IS NOT NULL \
                     ORDER BY next_run_at, tenant_id, id LIMIT ",
                    $d::limit!("?1")
                ))
                .bind(rule::page_limit(limit))
                .fetch_all(&self.pool)
                .await
                .map_err($d::err)?;
                row::all(&rows, row::cron_job)
            }
        }
    };
}

pub(crate) use ports;
