//! Teams and their task boards, written once for both backends (see
//! [`crate::port`]).
//!
//! - A team and its members are written in one transaction; an update that
//!   would leave the lead among the members is rolled back (`Invalid`).
//! - A claim is one conditional UPDATE (`... AND status = 'pending'`): of
//!   concurrent claimers, also through other stores on the same database,
//!   exactly one changes the row.
//! - Creating a task and finishing one run under the board's lock (SQLite:
//!   the write lock; PostgreSQL: an advisory lock per team, also across
//!   gateways), so a new task's `blocked` status and the unblocking of
//!   dependents when a task is done never miss each other. Finishing and
//!   unblocking share one transaction.
//! - Dependencies are rows of `team_task_deps` (both ends tasks of the same
//!   team, named only when the dependent task is created, so they cannot
//!   loop); a task is unblocked when no dependency of it is not `done`.
//! - Who may act on a team (membership) is the gateway's decision; the board
//!   records the agent ids it is given.

macro_rules! ports {
    ($store:ident, $d:ident) => {
        use async_trait::async_trait;
        use exoclaw_core::store::teams::{
            NewTask, NewTeam, Task, TaskComment, TaskFilter, TaskOutcome, TaskStatus, Team,
            TeamUpdate,
        };
        use exoclaw_core::store::{StoreError, StoreResult, TaskStore, TeamStore};
        use exoclaw_core::{AgentId, TenantId, UnixMillis};
        use sqlx::Connection as _;
        use $crate::error::conflict;
        use $crate::rule::orchestration as orch;
        use $crate::{now_millis, row, rule};

        /// A team joined with its members, one row per member (one row of
        /// NULL `member` for a team without members).
        macro_rules! team_select {
            () => {
                "SELECT t.tenant_id, t.id, t.name, t.lead, t.created_at, t.updated_at, \
                 m.agent AS member FROM teams t LEFT JOIN team_members m \
                 ON m.tenant_id = t.tenant_id AND m.team_id = t.id "
            };
        }

        /// The columns of a task (not its search text), from a relation `t`.
        macro_rules! task_cols {
            () => {
                "t.id, t.tenant_id, t.team_id, t.title, t.description, t.status, t.owner, \
                 t.result, t.created_by, t.created_at, t.updated_at"
            };
        }

        /// Joins tasks `t` with their dependencies (column `dep`).
        macro_rules! deps_join {
            () => {
                " LEFT JOIN team_task_deps d ON d.tenant_id = t.tenant_id \
                 AND d.team_id = t.team_id AND d.task_id = t.id "
            };
        }

        /// The members of a team, inserted (the team's old ones deleted
        /// first by the caller when they are replaced).
        async fn insert_members(
            conn: &mut $d::Conn,
            tenant: &TenantId,
            team: &str,
            members: &[AgentId],
        ) -> StoreResult<()> {
            for member in members {
                sqlx::query($d::sql!(
                    "INSERT INTO team_members (tenant_id, team_id, agent) VALUES (?, ?, ?)"
                ))
                .bind(tenant.as_str())
                .bind(team)
                .bind(member.as_str())
                .execute(&mut *conn)
                .await
                .map_err($d::err)?;
            }
            Ok(())
        }

        /// `NotFound` unless the team exists in the tenant (also used by
        /// the mail ports).
        pub(super) async fn require_team(conn: &mut $d::Conn, tenant: &TenantId, team: &str) -> StoreResult<()> {
            let n: i64 = sqlx::query_scalar($d::sql!(
                "SELECT count(*) FROM teams WHERE tenant_id = ? AND id = ?"
            ))
            .bind(tenant.as_str())
            .bind(team)
            .fetch_one(&mut *conn)
            .await
            .map_err($d::err)?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        }

        /// The key of a team board's lock.
        fn board(tenant: &TenantId, team: &str) -> String {
            format!("team-board/{tenant}/{team}")
        }

        #[async_trait]
        impl TeamStore for $store {
            async fn create_team(&self, tenant: &TenantId, team: &NewTeam) -> StoreResult<Team> {
                orch::check_new_team(team)?;
                let now = now_millis();
                let mut conn = self.write_conn().await?;
                let mut tx = conn.begin_with($d::BEGIN_WRITE).await.map_err($d::err)?;
                sqlx::query($d::sql!(
                    "INSERT INTO teams (tenant_id, id, name, lead, created_at, updated_at) \
                     VALUES (?, ?, ?, ?, ?, ?)"
                ))
                .bind(tenant.as_str())
                .bind(&team.id)
                .bind(&team.name)
                .bind(team.lead.as_str())
                .bind(now)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err($d::err)
                .map_err(conflict(|| format!("team {} in tenant {tenant}", team.id)))?;
                insert_members(&mut tx, tenant, &team.id, &team.members).await?;
                tx.commit().await.map_err($d::err)?;
                let mut members = team.members.clone();
                members.sort();
                Ok(Team {
                    id: team.id.clone(),
                    tenant_id: tenant.clone(),
                    name: team.name.clone(),
                    lead: team.lead.clone(),
                    members,
                    created_at: now,
                    updated_at: now,
                })
            }

            async fn get_team(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<Team>> {
                let rows = sqlx::query($d::sql!(
                    team_select!(),
                    "WHERE t.tenant_id = ? AND t.id = ? ORDER BY m.agent"
                ))
                .bind(tenant.as_str())
                .bind(id)
                .fetch_all(&self.pool)
                .await
                .map_err($d::err)?;
                Ok(row::teams(&rows)?.pop())
            }

            async fn list_teams(&self, tenant: &TenantId) -> StoreResult<Vec<Team>> {
                let rows = sqlx::query($d::sql!(
                    team_select!(),
                    "WHERE t.tenant_id = ? ORDER BY t.id, m.agent"
                ))
                .bind(tenant.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err($d::err)?;
                row::teams(&rows)
            }

            async fn update_team(
                &self,
                tenant: &TenantId,
                id: &str,
                update: &TeamUpdate,
            ) -> StoreResult<Team> {
                orch::check_team_update(update)?;
                let mut conn = self.write_conn().await?;
                let mut tx = conn.begin_with($d::BEGIN_WRITE).await.map_err($d::err)?;
                let done = sqlx::query($d::sql!(
                    "UPDATE teams SET name = COALESCE(?, name), lead = COALESCE(?, lead), \
                     updated_at = ? WHERE tenant_id = ? AND id = ?"
                ))
                .bind(update.name.as_deref())
                .bind(update.lead.as_ref().map(AgentId::as_str))
                .bind(now_millis())
                .bind(tenant.as_str())
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err($d::err)?;
                rule::found(done.rows_affected())?;
                if let Some(members) = &update.members {
                    sqlx::query($d::sql!(
                        "DELETE FROM team_members WHERE tenant_id = ? AND team_id = ?"
                    ))
                    .bind(tenant.as_str())
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err($d::err)?;
                    insert_members(&mut tx, tenant, id, members).await?;
                }
                // A new lead that stays a member: refused, the transaction
                // rolled back (dropped uncommitted).
                let lead_member: Option<String> = sqlx::query_scalar($d::sql!(
                    "SELECT t.lead FROM teams t JOIN team_members m ON m.tenant_id = t.tenant_id \
                     AND m.team_id = t.id AND m.agent = t.lead WHERE t.tenant_id = ? AND t.id = ?"
                ))
                .bind(tenant.as_str())
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err($d::err)?;
                if let Some(lead) = lead_member {
                    return Err(StoreError::Invalid(format!(
                        "the lead {lead} is listed as a member of its own team {id}"
                    )));
                }
                tx.commit().await.map_err($d::err)?;
                drop(conn);
                self.get_team(tenant, id).await?.ok_or(StoreError::NotFound)
            }

            async fn delete_team(&self, tenant: &TenantId, id: &str) -> StoreResult<()> {
                let done =
                    sqlx::query($d::sql!("DELETE FROM teams WHERE tenant_id = ? AND id = ?"))
                        .bind(tenant.as_str())
                        .bind(id)
                        .execute(&mut *self.write_conn().await?)
                        .await
                        .map_err($d::err)?;
                rule::found(done.rows_affected())
            }
        }

        #[async_trait]
        impl TaskStore for $store {
            async fn create_task(
                &self,
                tenant: &TenantId,
                team: &str,
                task: &NewTask,
                now: UnixMillis,
            ) -> StoreResult<Task> {
                orch::check_new_task(task)?;
                let mut conn = self.write_conn().await?;
                let mut tx = conn.begin_with($d::BEGIN_WRITE).await.map_err($d::err)?;
                $d::lock(&mut tx, || board(tenant, team)).await?;
                require_team(&mut tx, tenant, team).await?;
                let mut blocked = false;
                for dep in &task.blocked_by {
                    let status: Option<String> = sqlx::query_scalar($d::sql!(
                        "SELECT status FROM team_tasks \
                         WHERE tenant_id = ? AND team_id = ? AND id = ?"
                    ))
                    .bind(tenant.as_str())
                    .bind(team)
                    .bind(dep)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err($d::err)?;
                    let Some(status) = status else {
                        return Err(StoreError::Invalid(format!(
                            "task blocked_by names {dep:?}, which is not a task of team {team}"
                        )));
                    };
                    blocked |= status != TaskStatus::Done.as_str();
                }
                let status = if blocked {
                    TaskStatus::Blocked
                } else {
                    TaskStatus::Pending
                };
                let id = $crate::new_id()?;
                sqlx::query($d::sql!(
                    "INSERT INTO team_tasks (id, tenant_id, team_id, title, description, search, \
                     status, owner, result, created_by, created_at, updated_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?, ?)"
                ))
                .bind(&id)
                .bind(tenant.as_str())
                .bind(team)
                .bind(&task.title)
                .bind(&task.description)
                .bind(orch::task_search(&task.title, &task.description))
                .bind(status.as_str())
                .bind(task.created_by.as_str())
                .bind(now)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err($d::err)?;
                for dep in &task.blocked_by {
                    sqlx::query($d::sql!(
                        "INSERT INTO team_task_deps (tenant_id, team_id, task_id, blocked_by) \
                         VALUES (?, ?, ?, ?)"
                    ))
                    .bind(tenant.as_str())
                    .bind(team)
                    .bind(&id)
                    .bind(dep)
                    .execute(&mut *tx)
                    .await
                    .map_err($d::err)?;
                }
                tx.commit().await.map_err($d::err)?;
                let mut blocked_by = task.blocked_by.clone();
                blocked_by.sort();
                Ok(Task {
                    id,
                    tenant_id: tenant.clone(),
                    team_id: team.to_owned(),
                    title: task.title.clone(),
                    description: task.description.clone(),
                    status,
                    owner: None,
                    blocked_by,
                    result: None,
                    created_by: task.created_by.clone(),
                    created_at: now,
                    updated_at: now,
                    comments: Vec::new(),
                })
            }

            async fn get_task(
                &self,
                tenant: &TenantId,
                team: &str,
                id: &str,
            ) -> StoreResult<Option<Task>> {
                // One snapshot for the task and its comments.
                let mut tx = self
                    .pool
                    .begin_with($d::BEGIN_SNAPSHOT)
                    .await
                    .map_err($d::err)?;
                let rows = sqlx::query($d::sql!(
                    "SELECT ",
                    task_cols!(),
                    ", d.blocked_by AS dep FROM team_tasks t",
                    deps_join!(),
                    "WHERE t.tenant_id = ? AND t.team_id = ? AND t.id = ? ORDER BY d.blocked_by"
                ))
                .bind(tenant.as_str())
                .bind(team)
                .bind(id)
                .fetch_all(&mut *tx)
                .await
                .map_err($d::err)?;
                let Some(mut task) = row::tasks(&rows)?.pop() else {
                    return Ok(None);
                };
                let comments = sqlx::query($d::sql!(
                    "SELECT author, text, at FROM team_task_comments \
                     WHERE tenant_id = ? AND team_id = ? AND task_id = ? ORDER BY at, seq"
                ))
                .bind(tenant.as_str())
                .bind(team)
                .bind(id)
                .fetch_all(&mut *tx)
                .await
                .map_err($d::err)?;
                tx.rollback().await.map_err($d::err)?;
                task.comments = row::all(&comments, row::task_comment)?;
                Ok(Some(task))
            }

            async fn list_tasks(
                &self,
                tenant: &TenantId,
                team: &str,
                filter: &TaskFilter,
            ) -> StoreResult<Vec<Task>> {
                let words = orch::task_query(filter.query.as_deref())?;
                let mut conn = self.pool.acquire().await.map_err($d::err)?;
                require_team(&mut conn, tenant, team).await?;
                // The page of tasks first, then their dependencies, so the
                // limit counts tasks.
                let rows = sqlx::query($d::sql!(
                    "SELECT ",
                    task_cols!(),
                    ", d.blocked_by AS dep FROM (SELECT ",
                    task_cols!(),
                    " FROM team_tasks t WHERE t.tenant_id = ?1 AND t.team_id = ?2 \
                     AND (?3 IS NULL OR t.status = ?3) AND (?4 IS NULL OR t.owner = ?4) \
                     AND (?5 IS NULL OR t.search LIKE ?5 ESCAPE '\\') \
                     AND (?6 IS NULL OR t.search LIKE ?6 ESCAPE '\\') \
                     AND (?7 IS NULL OR t.search LIKE ?7 ESCAPE '\\') \
                     AND (?8 IS NULL OR t.search LIKE ?8 ESCAPE '\\') \
                     AND (?9 IS NULL OR t.search LIKE ?9 ESCAPE '\\') \
                     AND (?10 IS NULL OR t.search LIKE ?10 ESCAPE '\\') \
                     AND (?11 IS NULL OR t.search LIKE ?11 ESCAPE '\\') \
                     AND (?12 IS NULL OR t.search LIKE ?12 ESCAPE '\\') \
                     AND (?14 IS NULL OR t.created_at > ?14 \
                       OR (t.created_at = ?14 AND t.id > ?15)) \
                     ORDER BY t.created_at, t.id LIMIT ",
                    $d::limit!("?13"),
                    ") t",
                    deps_join!(),
                    "ORDER BY t.created_at, t.id, d.blocked_by"
                ))
                .bind(tenant.as_str())
                .bind(team)
                .bind(filter.status.map(TaskStatus::as_str))
                .bind(filter.owner.as_ref().map(AgentId::as_str));
                let rows = words
                    .iter()
                    .fold(rows, |q, word| q.bind(word.as_deref()))
                    .bind(rule::page_limit(filter.limit))
                    .bind(filter.after.as_ref().map(|(at, _)| *at))
                    .bind(filter.after.as_ref().map(|(_, id)| id.as_str()))
                    .fetch_all(&mut *conn)
                    .await
                    .map_err($d::err)?;
                row::tasks(&rows)
            }

            async fn claim_task(
                &self,
                tenant: &TenantId,
                team: &str,
                id: &str,
                agent: &AgentId,
                now: UnixMillis,
            ) -> StoreResult<Task> {
                rule::check_slug("claiming agent", agent.as_str())?;
                // The one statement the claim is: only the claimer whose
                // UPDATE still finds the task pending changes it.
                let done = sqlx::query($d::sql!(
                    "UPDATE team_tasks SET status = 'in_progress', owner = ?, updated_at = ? \
                     WHERE tenant_id = ? AND team_id = ? AND id = ? AND status = 'pending'"
                ))
                .bind(agent.as_str())
                .bind(now)
                .bind(tenant.as_str())
                .bind(team)
                .bind(id)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                let current = self
                    .get_task(tenant, team, id)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                if done.rows_affected() == 0 {
                    return Err(orch::claim_conflict(&current));
                }
                Ok(current)
            }

            async fn finish_task(
                &self,
                tenant: &TenantId,
                team: &str,
                id: &str,
                outcome: &TaskOutcome,
                now: UnixMillis,
            ) -> StoreResult<Task> {
                orch::check_task_outcome(outcome)?;
                let mut conn = self.write_conn().await?;
                let mut tx = conn.begin_with($d::BEGIN_WRITE).await.map_err($d::err)?;
                $d::lock(&mut tx, || board(tenant, team)).await?;
                let done = sqlx::query($d::sql!(
                    "UPDATE team_tasks SET status = ?, result = ?, updated_at = ? \
                     WHERE tenant_id = ? AND team_id = ? AND id = ? AND status = 'in_progress' \
                     AND owner = ?"
                ))
                .bind(outcome.status.as_str())
                .bind(&outcome.result)
                .bind(now)
                .bind(tenant.as_str())
                .bind(team)
                .bind(id)
                .bind(outcome.agent.as_str())
                .execute(&mut *tx)
                .await
                .map_err($d::err)?;
                if done.rows_affected() == 0 {
                    drop(tx);
                    drop(conn);
                    let current = self
                        .get_task(tenant, team, id)
                        .await?
                        .ok_or(StoreError::NotFound)?;
                    return Err(orch::finish_conflict(&current, &outcome.agent));
                }
                if outcome.status == TaskStatus::Done {
                    // Every blocked dependent of this task none of whose
                    // dependencies is still not done.
                    sqlx::query($d::sql!(
                        "UPDATE team_tasks AS t SET status = 'pending', updated_at = ?1 \
                         WHERE t.tenant_id = ?2 AND t.team_id = ?3 AND t.status = 'blocked' \
                         AND t.id IN (SELECT task_id FROM team_task_deps \
                           WHERE tenant_id = ?2 AND team_id = ?3 AND blocked_by = ?4) \
                         AND NOT EXISTS (SELECT 1 FROM team_task_deps d JOIN team_tasks b \
                           ON b.tenant_id = d.tenant_id AND b.team_id = d.team_id \
                           AND b.id = d.blocked_by \
                           WHERE d.tenant_id = t.tenant_id AND d.team_id = t.team_id \
                           AND d.task_id = t.id AND b.status <> 'done')"
                    ))
                    .bind(now)
                    .bind(tenant.as_str())
                    .bind(team)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err($d::err)?;
                }
                tx.commit().await.map_err($d::err)?;
                drop(conn);
                self.get_task(tenant, team, id)
                    .await?
                    .ok_or(StoreError::NotFound)
            }

            async fn comment_task(
                &self,
                tenant: &TenantId,
                team: &str,
                id: &str,
                comment: &TaskComment,
            ) -> StoreResult<()> {
                orch::check_comment(comment)?;
                // The task is the comment's foreign key: an unknown one (or
                // another tenant's or team's) is `NotFound`.
                sqlx::query($d::sql!(
                    "INSERT INTO team_task_comments (tenant_id, team_id, task_id, author, text, \
                     at) VALUES (?, ?, ?, ?, ?, ?)"
                ))
                .bind(tenant.as_str())
                .bind(team)
                .bind(id)
                .bind(comment.author.as_str())
                .bind(&comment.text)
                .bind(comment.at)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                Ok(())
            }
        }
    };
}

pub(crate) use ports;
