//! Multi-agent orchestration, written once for both backends (see
//! [`crate::port`]): permission links (one per ordered pair of agents that
//! exist; they go with either agent), the delegation history (an end and an
//! announcement are each taken once by a conditional UPDATE; what an
//! instance left running is interrupted in one UPDATE across tenants), and
//! bindings (one per match, going with their agent). Rules (sizes, what a
//! record must name) are in `crate::rule::orchestration`.

macro_rules! ports {
    ($store:ident, $d:ident) => {
        use async_trait::async_trait;
        use exoclaw_core::store::orchestration::{
            AgentLink, Binding, Delegation, DelegationEnd, DelegationFilter, NewAgentLink,
            NewBinding, NewDelegation,
        };
        use exoclaw_core::store::{
            BindingStore, DelegationStore, LinkStore, StoreError, StoreResult,
        };
        use exoclaw_core::{AgentId, SessionId, TenantId, UnixMillis, UserId};
        use $crate::error::conflict;
        use $crate::rule::orchestration::{self as orch, kind_word, mode_word};
        use $crate::{json_text, new_id, now_millis, row, rule};

        /// The columns of an `agent_links` row, in insert order.
        macro_rules! link_cols {
            () => {
                concat!(
                    "tenant_id, source, target, direction, max_concurrent, ",
                    $d::json_col!("users"),
                    ", created_at"
                )
            };
        }

        /// The columns of a `delegations` row, in insert order.
        macro_rules! delegation_cols {
            () => {
                "id, tenant_id, kind, mode, caller_agent, user_id, caller_session, \
                 target_agent, parent_id, task_digest, status, parent_trace_id, \
                 child_trace_id, child_session, owner, started_at, finished_at, input_tokens, \
                 output_tokens, cost_micros, error_code, announced"
            };
        }

        /// The columns of a `bindings` row, in insert order.
        macro_rules! binding_cols {
            () => {
                "id, tenant_id, channel, account, peer, user_id, agent, created_at"
            };
        }

        #[async_trait]
        impl LinkStore for $store {
            async fn create_link(
                &self,
                tenant: &TenantId,
                link: &NewAgentLink,
            ) -> StoreResult<AgentLink> {
                orch::check_new_link(link)?;
                let users = serde_json::to_value(&link.users)
                    .map_err(|e| StoreError::Invalid(format!("unstorable link users: {e}")))?;
                let r = sqlx::query($d::sql!(
                    "INSERT INTO agent_links (tenant_id, source, target, direction, \
                     max_concurrent, users, created_at) VALUES (?, ?, ?, ?, ?, ",
                    $d::json_arg!("?"),
                    ", ?) RETURNING ",
                    link_cols!()
                ))
                .bind(tenant.as_str())
                .bind(link.source.as_str())
                .bind(link.target.as_str())
                .bind(link.direction.as_str())
                .bind(link.max_concurrent.map(i64::from))
                .bind(json_text(&users)?)
                .bind(now_millis())
                .fetch_one(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)
                .map_err(conflict(|| {
                    format!("a link from {} to {}", link.source, link.target)
                }))?;
                row::agent_link(&r)
            }

            async fn list_links(
                &self,
                tenant: &TenantId,
                agent: Option<&AgentId>,
            ) -> StoreResult<Vec<AgentLink>> {
                let rows = sqlx::query($d::sql!(
                    "SELECT ",
                    link_cols!(),
                    " FROM agent_links WHERE tenant_id = ?1 \
                     AND (?2 IS NULL OR source = ?2 OR target = ?2) ORDER BY source, target"
                ))
                .bind(tenant.as_str())
                .bind(agent.map(AgentId::as_str))
                .fetch_all(&self.pool)
                .await
                .map_err($d::err)?;
                row::all(&rows, row::agent_link)
            }

            async fn delete_link(
                &self,
                tenant: &TenantId,
                source: &AgentId,
                target: &AgentId,
            ) -> StoreResult<()> {
                let done = sqlx::query($d::sql!(
                    "DELETE FROM agent_links WHERE tenant_id = ? AND source = ? AND target = ?"
                ))
                .bind(tenant.as_str())
                .bind(source.as_str())
                .bind(target.as_str())
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                rule::found(done.rows_affected())
            }
        }

        #[async_trait]
        impl DelegationStore for $store {
            async fn create_delegation(
                &self,
                tenant: &TenantId,
                new: &NewDelegation,
                now: UnixMillis,
            ) -> StoreResult<Delegation> {
                orch::check_new_delegation(new)?;
                let r = sqlx::query($d::sql!(
                    "INSERT INTO delegations (",
                    delegation_cols!(),
                    ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, NULL, NULL, ?, ?, \
                     NULL, 0, 0, 0, NULL, FALSE) RETURNING ",
                    delegation_cols!()
                ))
                .bind(new_id()?)
                .bind(tenant.as_str())
                .bind(kind_word(new.kind))
                .bind(mode_word(new.mode))
                .bind(new.caller_agent.as_str())
                .bind(new.user_id.as_str())
                .bind(new.caller_session.as_ref().map(SessionId::as_str))
                .bind(new.target_agent.as_str())
                .bind(new.parent_id.as_deref())
                .bind(&new.task_digest)
                .bind(new.parent_trace_id.as_deref())
                .bind(&new.owner)
                .bind(now)
                .fetch_one(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                row::delegation(&r)
            }

            async fn finish_delegation(
                &self,
                tenant: &TenantId,
                id: &str,
                end: &DelegationEnd,
                now: UnixMillis,
            ) -> StoreResult<Delegation> {
                orch::check_delegation_end(end)?;
                // Only a running delegation ends: of two ends, the second
                // changes no row.
                let ended = sqlx::query($d::sql!(
                    "UPDATE delegations SET status = ?, child_trace_id = ?, child_session = ?, \
                     input_tokens = ?, output_tokens = ?, cost_micros = ?, error_code = ?, \
                     finished_at = ? WHERE tenant_id = ? AND id = ? AND status = 'running' \
                     RETURNING ",
                    delegation_cols!()
                ))
                .bind(end.status.as_str())
                .bind(end.child_trace_id.as_deref())
                .bind(end.child_session.as_ref().map(SessionId::as_str))
                .bind(end.input_tokens)
                .bind(end.output_tokens)
                .bind(end.cost_micros)
                .bind(end.error_code.as_deref())
                .bind(now)
                .bind(tenant.as_str())
                .bind(id)
                .fetch_optional(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                if let Some(r) = ended {
                    return row::delegation(&r);
                }
                let current = self
                    .get_delegation(tenant, id)
                    .await?
                    .ok_or(StoreError::NotFound)?;
                Err(StoreError::Conflict(format!(
                    "delegation {id} has already ended as {}",
                    current.status.as_str()
                )))
            }

            async fn get_delegation(
                &self,
                tenant: &TenantId,
                id: &str,
            ) -> StoreResult<Option<Delegation>> {
                sqlx::query($d::sql!(
                    "SELECT ",
                    delegation_cols!(),
                    " FROM delegations WHERE tenant_id = ? AND id = ?"
                ))
                .bind(tenant.as_str())
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err($d::err)?
                .as_ref()
                .map(row::delegation)
                .transpose()
            }

            async fn list_delegations(
                &self,
                tenant: &TenantId,
                filter: &DelegationFilter,
            ) -> StoreResult<Vec<Delegation>> {
                let rows = sqlx::query($d::sql!(
                    "SELECT ",
                    delegation_cols!(),
                    " FROM delegations WHERE tenant_id = ?1 \
                     AND (?2 IS NULL OR caller_agent = ?2) AND (?3 IS NULL OR target_agent = ?3) \
                     AND (?4 IS NULL OR user_id = ?4) AND (?5 IS NULL OR status = ?5) \
                     AND (?6 IS NULL OR kind = ?6) \
                     AND (?7 IS NULL OR started_at < ?7 OR (started_at = ?7 AND id < ?9)) \
                     ORDER BY started_at DESC, id DESC LIMIT ",
                    $d::limit!("?8")
                ))
                .bind(tenant.as_str())
                .bind(filter.caller_agent.as_ref().map(AgentId::as_str))
                .bind(filter.target_agent.as_ref().map(AgentId::as_str))
                .bind(filter.user_id.as_ref().map(UserId::as_str))
                .bind(filter.status.map(|s| s.as_str()))
                .bind(filter.kind.map(kind_word))
                .bind(filter.before)
                .bind(rule::page_limit(filter.limit))
                .bind(filter.before_id.as_deref())
                .fetch_all(&self.pool)
                .await
                .map_err($d::err)?;
                row::all(&rows, row::delegation)
            }

            async fn mark_announced(&self, tenant: &TenantId, id: &str) -> StoreResult<bool> {
                // Of concurrent callers, the one whose UPDATE flips the flag
                // sees a changed row; the others see none.
                let done = sqlx::query($d::sql!(
                    "UPDATE delegations SET announced = TRUE \
                     WHERE tenant_id = ? AND id = ? AND announced = FALSE"
                ))
                .bind(tenant.as_str())
                .bind(id)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                if done.rows_affected() == 1 {
                    return Ok(true);
                }
                self.get_delegation(tenant, id)
                    .await?
                    .map(|_| false)
                    .ok_or(StoreError::NotFound)
            }

            async fn interrupt_running(
                &self,
                owner: &str,
                now: UnixMillis,
            ) -> StoreResult<Vec<Delegation>> {
                orch::check_name("delegation owner", owner)?;
                // A restart with nothing left running writes nothing: the
                // check reads, so the write connection stays closed.
                let running: i64 = sqlx::query_scalar($d::sql!(
                    "SELECT count(*) FROM (SELECT 1 FROM delegations WHERE owner = ? \
                     AND status = 'running' LIMIT 1) AS running"
                ))
                .bind(owner)
                .fetch_one(&self.pool)
                .await
                .map_err($d::err)?;
                if running == 0 {
                    return Ok(Vec::new());
                }
                // One statement: a delegation ending meanwhile is either
                // ended by its own finish (and not returned) or interrupted
                // here (and its finish gets `Conflict`).
                let rows = sqlx::query($d::sql!(
                    "UPDATE delegations SET status = 'interrupted', finished_at = ? \
                     WHERE owner = ? AND status = 'running' RETURNING ",
                    delegation_cols!()
                ))
                .bind(now)
                .bind(owner)
                .fetch_all(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                let mut interrupted = row::all(&rows, row::delegation)?;
                interrupted.sort_by(|a, b| {
                    (a.tenant_id.as_str(), a.started_at, &a.id).cmp(&(
                        b.tenant_id.as_str(),
                        b.started_at,
                        &b.id,
                    ))
                });
                Ok(interrupted)
            }
        }

        #[async_trait]
        impl BindingStore for $store {
            async fn create_binding(
                &self,
                tenant: &TenantId,
                new: &NewBinding,
            ) -> StoreResult<Binding> {
                orch::check_new_binding(new)?;
                let r = sqlx::query($d::sql!(
                    "INSERT INTO bindings (",
                    binding_cols!(),
                    ") VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING ",
                    binding_cols!()
                ))
                .bind(new_id()?)
                .bind(tenant.as_str())
                .bind(new.channel.as_deref())
                .bind(new.account.as_deref())
                .bind(new.peer.as_deref())
                .bind(new.user_id.as_ref().map(UserId::as_str))
                .bind(new.agent.as_str())
                .bind(now_millis())
                .fetch_one(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)
                .map_err(conflict(|| "a binding with the same match".to_owned()))?;
                row::binding(&r)
            }

            async fn list_bindings(&self, tenant: &TenantId) -> StoreResult<Vec<Binding>> {
                let rows = sqlx::query($d::sql!(
                    "SELECT ",
                    binding_cols!(),
                    " FROM bindings WHERE tenant_id = ? ORDER BY created_at, id"
                ))
                .bind(tenant.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err($d::err)?;
                row::all(&rows, row::binding)
            }

            async fn delete_binding(&self, tenant: &TenantId, id: &str) -> StoreResult<()> {
                let done = sqlx::query($d::sql!(
                    "DELETE FROM bindings WHERE tenant_id = ? AND id = ?"
                ))
                .bind(tenant.as_str())
                .bind(id)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                rule::found(done.rows_affected())
            }
        }
    };
}

pub(crate) use ports;
