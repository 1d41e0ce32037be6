//! Scheduled job occurrences, written once for both backends (see
//! [`crate::port`]): a claim is an `INSERT ... ON CONFLICT DO NOTHING` on the
//! primary key `(tenant_id, job, due_at)`, so exactly one claimer of an
//! occurrence inserts its row, also across processes sharing one database;
//! finishing updates that row; runs are listed newest occurrence first; a
//! restarted instance marks the runs it left `running` as interrupted.

macro_rules! ports {
    ($store:ident, $d:ident) => {
        use $crate::{row, rule};
        use async_trait::async_trait;
        use exoclaw_core::store::{JobRun, JobStore, StoreResult};
        use exoclaw_core::{TenantId, UnixMillis};

        #[async_trait]
        impl JobStore for $store {
            async fn claim_job_run(
                &self,
                tenant: &TenantId,
                job: &str,
                due_at: UnixMillis,
                owner: &str,
                now: UnixMillis,
            ) -> StoreResult<bool> {
                rule::check_job_claim(job, owner)?;
                let done = sqlx::query($d::sql!(
                    "INSERT INTO job_runs (tenant_id, job, due_at, owner, started_at, status) \
                     VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, job, due_at) DO NOTHING"
                ))
                .bind(tenant.as_str())
                .bind(job)
                .bind(due_at)
                .bind(owner)
                .bind(now)
                .bind(rule::JOB_RUNNING)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn finish_job_run(
                &self,
                tenant: &TenantId,
                job: &str,
                due_at: UnixMillis,
                status: &str,
                detail: Option<&str>,
                now: UnixMillis,
            ) -> StoreResult<()> {
                rule::check_job_outcome(status)?;
                let done = sqlx::query($d::sql!(
                    "UPDATE job_runs SET status = ?, detail = ?, finished_at = ? \
                     WHERE tenant_id = ? AND job = ? AND due_at = ?"
                ))
                .bind(status)
                .bind(detail)
                .bind(now)
                .bind(tenant.as_str())
                .bind(job)
                .bind(due_at)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                rule::found(done.rows_affected())
            }

            async fn interrupt_job_runs(&self, owner: &str, now: UnixMillis) -> StoreResult<u64> {
                // A restart with nothing left running writes nothing: the
                // check reads, so the write connection stays closed.
                let running: i64 = sqlx::query_scalar($d::sql!(
                    "SELECT count(*) FROM (SELECT 1 FROM job_runs WHERE owner = ? \
                     AND status = ? LIMIT 1) AS running"
                ))
                .bind(owner)
                .bind(rule::JOB_RUNNING)
                .fetch_one(&self.pool)
                .await
                .map_err($d::err)?;
                if running == 0 {
                    return Ok(0);
                }
                let done = sqlx::query($d::sql!(
                    "UPDATE job_runs SET status = 'failed', detail = 'error=interrupted', \
                     finished_at = ? WHERE owner = ? AND status = ?"
                ))
                .bind(now)
                .bind(owner)
                .bind(rule::JOB_RUNNING)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                Ok(done.rows_affected())
            }

            async fn list_job_runs(
                &self,
                tenant: &TenantId,
                job: &str,
                limit: u32,
            ) -> StoreResult<Vec<JobRun>> {
                let rows = sqlx::query($d::sql!(
                    "SELECT tenant_id, job, due_at, owner, started_at, status, detail, \
                     finished_at FROM job_runs WHERE tenant_id = ? AND job = ? \
                     ORDER BY due_at DESC LIMIT ",
                    $d::limit!("?3")
                ))
                .bind(tenant.as_str())
                .bind(job)
                .bind(rule::page_limit(limit))
                .fetch_all(&self.pool)
                .await
                .map_err($d::err)?;
                row::all(&rows, row::job_run)
            }
        }
    };
}

pub(crate) use ports;
