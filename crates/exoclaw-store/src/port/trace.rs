//! Traces with their spans, the usage ledger budgets are summed from, and
//! the batched writes of both, written once for both backends (see
//! [`crate::port`]). Every statement filters on `tenant_id`; a span is only
//! ever inserted by a statement that finds its trace in the span's tenant.
//! The checks and conversions are in [`crate::trace`].

macro_rules! ports {
    ($store:ident, $d:ident) => {
        use $crate::trace::{Tokens, check_cost, new_span_row, new_trace_row, trace_limit};
        use $crate::{json_text, new_id, now_millis, row};
        use async_trait::async_trait;
        use exoclaw_core::store::{
            StoreError, StoreResult, TraceBatchStore, TraceStore, UsageReportStore, UsageStore,
        };
        use exoclaw_core::trace::{
            BudgetUnit, BudgetWindow, DAY_MS, NewReservation, NewSpan, NewTrace, Reserved, Span,
            SpendScope, Trace, TraceEnd, TraceFilter, TraceWrite, UsageBucket, UsageEntry,
            UsageGroup, UsageQuery,
        };
        use sqlx::Row as _;
        use exoclaw_core::{AgentId, SessionId, TenantId, UnixMillis, UserId};
        use sqlx::Connection as _;

        /// The columns of a `traces` row.
        macro_rules! trace_cols {
            () => {
                "id, tenant_id, agent_id, user_id, session_id, name, status, error, \
                 started_at, ended_at, input_tokens, output_tokens, cache_read_tokens, \
                 cache_write_tokens, cost_micros, owner"
            };
        }

        /// The columns of a `spans` row, in insert order (`attributes` is JSON).
        macro_rules! span_cols {
            () => {
                "id, trace_id, tenant_id, kind, name, provider, status, error, started_at, \
                 latency_ms, input_tokens, output_tokens, cache_read_tokens, \
                 cache_write_tokens, cost_micros, attributes"
            };
        }

        /// The spend of one scope: `$col` is the scope's column. One static
        /// statement per scope, so each uses its own index.
        macro_rules! spend_sql {
            ($col:literal) => {
                $d::sql!(
                    "SELECT CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT) FROM usage_ledger \
                     WHERE tenant_id = ? AND ",
                    $col,
                    " = ? AND at >= ?"
                )
            };
        }

        /// What a budget window has used: ledger entries since its start plus
        /// live reservations, as (micro-dollars, tokens). `$col` is the
        /// scope's column (`tenant_id` again for the whole tenant).
        macro_rules! used_sql {
            ($col:literal) => {
                $d::sql!(
                    "SELECT CAST(COALESCE(SUM(m), 0) AS BIGINT), CAST(COALESCE(SUM(t), 0) AS BIGINT) \
                     FROM (SELECT cost_micros AS m, input_tokens + output_tokens AS t \
                     FROM usage_ledger WHERE tenant_id = ? AND ",
                    $col,
                    " = ? AND at >= ? UNION ALL SELECT cost_micros AS m, tokens AS t \
                     FROM budget_reservations WHERE tenant_id = ? AND ",
                    $col,
                    " = ? AND at >= ? AND expires_at > ?) used"
                )
            };
        }

        /// A usage report's statement: `$col` is the grouping column. One
        /// static statement per grouping. Sums are cast (PostgreSQL sums
        /// `BIGINT`s into `NUMERIC`).
        macro_rules! by_day_sql {
            ($col:literal) => {
                $d::sql!(
                    "SELECT (at / ?5) * ?5 AS day, ",
                    $col,
                    " AS k, CAST(COUNT(*) AS BIGINT) AS calls, \
                     CAST(SUM(input_tokens) AS BIGINT) AS input_tokens, \
                     CAST(SUM(output_tokens) AS BIGINT) AS output_tokens, \
                     CAST(SUM(cache_read_tokens) AS BIGINT) AS cache_read_tokens, \
                     CAST(SUM(cache_write_tokens) AS BIGINT) AS cache_write_tokens, \
                     CAST(SUM(cost_micros) AS BIGINT) AS cost_micros \
                     FROM usage_ledger WHERE tenant_id = ?1 AND at >= ?2 AND at < ?3 \
                     AND (?4 IS NULL OR user_id = ?4) GROUP BY 1, 2"
                )
            };
        }

        /// The used amount of one window, inside the reserving transaction.
        async fn window_used(
            conn: &mut $d::Conn,
            tenant: &TenantId,
            window: &BudgetWindow,
            now: UnixMillis,
        ) -> StoreResult<i64> {
            let (sql, key) = match &window.scope {
                SpendScope::Model(model) => (used_sql!("model"), model.as_str()),
                SpendScope::Agent(agent) => (used_sql!("agent_id"), agent.as_str()),
                SpendScope::User(user) => (used_sql!("user_id"), user.as_str()),
                SpendScope::Tenant => (used_sql!("tenant_id"), tenant.as_str()),
            };
            let (micros, tokens): (i64, i64) = sqlx::query_as(sql)
                .bind(tenant.as_str())
                .bind(key)
                .bind(window.since)
                .bind(tenant.as_str())
                .bind(key)
                .bind(window.since)
                .bind(now)
                .fetch_one(&mut *conn)
                .await
                .map_err($d::err)?;
            Ok(match window.unit {
                BudgetUnit::Micros => micros,
                BudgetUnit::Tokens => tokens,
            })
        }

        /// Inserts a started trace.
        async fn insert_trace(conn: &mut $d::Conn, t: &Trace) -> StoreResult<()> {
            sqlx::query($d::sql!(
                "INSERT INTO traces (id, tenant_id, agent_id, user_id, session_id, name, \
                 status, started_at, owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ))
            .bind(&t.id)
            .bind(t.tenant_id.as_str())
            .bind(t.agent_id.as_ref().map(AgentId::as_str))
            .bind(t.user_id.as_ref().map(UserId::as_str))
            .bind(t.session_id.as_ref().map(SessionId::as_str))
            .bind(&t.name)
            .bind(&t.status)
            .bind(t.started_at)
            .bind(t.owner.as_deref())
            .execute(conn)
            .await
            .map_err($d::err)?;
            Ok(())
        }

        /// Ends a trace; `false` when it is not the tenant's.
        async fn end_trace(
            conn: &mut $d::Conn,
            tenant: &TenantId,
            id: &str,
            end: &TraceEnd,
            ended_at: UnixMillis,
        ) -> StoreResult<bool> {
            let tokens = Tokens::of(&end.usage)?;
            let done = sqlx::query($d::sql!(
                "UPDATE traces SET status = ?, error = ?, ended_at = ?, input_tokens = ?, \
                 output_tokens = ?, cache_read_tokens = ?, cache_write_tokens = ?, \
                 cost_micros = ? WHERE tenant_id = ? AND id = ?"
            ))
            .bind(&end.status)
            .bind(end.error.as_deref())
            .bind(ended_at)
            .bind(tokens.input)
            .bind(tokens.output)
            .bind(tokens.cache_read)
            .bind(tokens.cache_write)
            .bind(check_cost(end.cost_micros)?)
            .bind(tenant.as_str())
            .bind(id)
            .execute(conn)
            .await
            .map_err($d::err)?;
            Ok(done.rows_affected() > 0)
        }

        /// Inserts a span; `false` when its trace is not the span's tenant's.
        async fn insert_span(conn: &mut $d::Conn, span: &Span) -> StoreResult<bool> {
            let tokens = Tokens::of(&span.usage)?;
            // One statement: the row is inserted only if the trace is the
            // span's tenant's (and the foreign key says so too).
            let done = sqlx::query($d::sql!(
                "INSERT INTO spans (",
                span_cols!(),
                ") SELECT ?1, t.id, t.tenant_id, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, \
                 ?12, ?13, ",
                $d::json_arg!("?14"),
                " FROM traces t WHERE t.tenant_id = ?15 AND t.id = ?16"
            ))
            .bind(&span.id)
            .bind(span.kind.as_str())
            .bind(&span.name)
            .bind(span.provider.as_deref())
            .bind(&span.status)
            .bind(span.error.as_deref())
            .bind(span.started_at)
            .bind(span.latency_ms)
            .bind(tokens.input)
            .bind(tokens.output)
            .bind(tokens.cache_read)
            .bind(tokens.cache_write)
            .bind(check_cost(span.cost_micros)?)
            .bind(json_text(&span.attributes)?)
            .bind(span.tenant_id.as_str())
            .bind(&span.trace_id)
            .execute(conn)
            .await
            .map_err($d::err)?;
            Ok(done.rows_affected() > 0)
        }

        /// Inserts a usage ledger entry recorded at `at`.
        async fn insert_usage(
            conn: &mut $d::Conn,
            entry: &UsageEntry,
            at: UnixMillis,
        ) -> StoreResult<()> {
            let tokens = Tokens::of(&entry.usage)?;
            sqlx::query($d::sql!(
                "INSERT INTO usage_ledger (id, tenant_id, at, provider, model, agent_id, \
                 user_id, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, \
                 cost_micros) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ))
            .bind(new_id()?)
            .bind(entry.tenant_id.as_str())
            .bind(at)
            .bind(&entry.provider)
            .bind(&entry.model)
            .bind(entry.agent_id.as_ref().map(AgentId::as_str))
            .bind(entry.user_id.as_ref().map(UserId::as_str))
            .bind(tokens.input)
            .bind(tokens.output)
            .bind(tokens.cache_read)
            .bind(tokens.cache_write)
            .bind(check_cost(entry.cost_micros)?)
            .execute(conn)
            .await
            .map_err($d::err)?;
            Ok(())
        }

        #[async_trait]
        impl TraceStore for $store {
            async fn create_trace(&self, trace: &NewTrace) -> StoreResult<Trace> {
                let created = new_trace_row(trace)?;
                insert_trace(&mut *self.write_conn().await?, &created).await?;
                Ok(created)
            }

            async fn finish_trace(
                &self,
                tenant: &TenantId,
                id: &str,
                end: &TraceEnd,
            ) -> StoreResult<()> {
                let mut conn = self.write_conn().await?;
                if end_trace(&mut conn, tenant, id, end, now_millis()).await? {
                    Ok(())
                } else {
                    Err(StoreError::NotFound)
                }
            }

            async fn add_span(&self, span: &NewSpan) -> StoreResult<Span> {
                let span = new_span_row(span)?;
                if insert_span(&mut *self.write_conn().await?, &span).await? {
                    Ok(span)
                } else {
                    Err(StoreError::NotFound)
                }
            }

            async fn list_traces(
                &self,
                tenant: &TenantId,
                filter: &TraceFilter,
            ) -> StoreResult<Vec<Trace>> {
                let rows = sqlx::query($d::sql!(
                    "SELECT ",
                    trace_cols!(),
                    " FROM traces WHERE tenant_id = ?1 AND (?2 IS NULL OR agent_id = ?2) \
                     AND (?3 IS NULL OR user_id = ?3) AND (?4 IS NULL OR session_id = ?4) \
                     AND (?5 IS NULL OR started_at < ?5 OR (started_at = ?5 AND id < ?7)) \
                     ORDER BY started_at DESC, id DESC LIMIT ",
                    $d::limit!("?6")
                ))
                .bind(tenant.as_str())
                .bind(filter.agent_id.as_ref().map(AgentId::as_str))
                .bind(filter.user_id.as_ref().map(UserId::as_str))
                .bind(filter.session_id.as_ref().map(SessionId::as_str))
                .bind(filter.before)
                .bind(trace_limit(filter.limit))
                .bind(filter.before_id.as_deref())
                .fetch_all(&self.pool)
                .await
                .map_err($d::err)?;
                row::all(&rows, row::trace)
            }

            async fn get_trace(
                &self,
                tenant: &TenantId,
                id: &str,
            ) -> StoreResult<Option<(Trace, Vec<Span>)>> {
                let mut conn = self.pool.acquire().await.map_err($d::err)?;
                let r = sqlx::query($d::sql!(
                    "SELECT ",
                    trace_cols!(),
                    " FROM traces WHERE tenant_id = ? AND id = ?"
                ))
                .bind(tenant.as_str())
                .bind(id)
                .fetch_optional(&mut *conn)
                .await
                .map_err($d::err)?;
                let Some(trace) = r.as_ref().map(row::trace).transpose()? else {
                    return Ok(None);
                };
                let rows = sqlx::query($d::sql!(
                    "SELECT id, trace_id, tenant_id, kind, name, provider, status, error, \
                     started_at, latency_ms, input_tokens, output_tokens, cache_read_tokens, \
                     cache_write_tokens, cost_micros, ",
                    $d::json_col!("attributes"),
                    " FROM spans WHERE tenant_id = ? AND trace_id = ? ORDER BY started_at, id"
                ))
                .bind(tenant.as_str())
                .bind(id)
                .fetch_all(&mut *conn)
                .await
                .map_err($d::err)?;
                Ok(Some((trace, row::all(&rows, row::span)?)))
            }
        }

        #[async_trait]
        impl exoclaw_core::store::RecoveryStore for $store {
            async fn interrupt_running_traces(
                &self,
                owner: &str,
                now: UnixMillis,
            ) -> StoreResult<Vec<Trace>> {
                // A restart with nothing left running writes nothing: the
                // check reads, so the write connection stays closed.
                let running: i64 = sqlx::query_scalar($d::sql!(
                    "SELECT count(*) FROM (SELECT 1 FROM traces WHERE owner = ? \
                     AND status = 'running' LIMIT 1) AS running"
                ))
                .bind(owner)
                .fetch_one(&self.pool)
                .await
                .map_err($d::err)?;
                if running == 0 {
                    return Ok(Vec::new());
                }
                // One statement: a trace that ends meanwhile is either ended
                // by its own finish or interrupted here.
                let rows = sqlx::query($d::sql!(
                    "UPDATE traces SET status = 'interrupted', ended_at = ?, \
                     error = 'the gateway stopped while this run was going' \
                     WHERE owner = ? AND status = 'running' RETURNING ",
                    trace_cols!()
                ))
                .bind(now)
                .bind(owner)
                .fetch_all(&mut *self.write_conn().await?)
                .await
                .map_err($d::err)?;
                let mut traces = row::all(&rows, row::trace)?;
                traces.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
                Ok(traces)
            }
        }

        #[async_trait]
        impl UsageStore for $store {
            async fn record_usage(&self, entry: &UsageEntry) -> StoreResult<()> {
                insert_usage(&mut *self.write_conn().await?, entry, now_millis()).await
            }

            async fn spend_since(
                &self,
                tenant: &TenantId,
                scope: &SpendScope,
                since: UnixMillis,
            ) -> StoreResult<i64> {
                let (sql, key) = match scope {
                    SpendScope::Model(model) => (spend_sql!("model"), model.as_str()),
                    SpendScope::Agent(agent) => (spend_sql!("agent_id"), agent.as_str()),
                    SpendScope::User(user) => (spend_sql!("user_id"), user.as_str()),
                    SpendScope::Tenant => (spend_sql!("tenant_id"), tenant.as_str()),
                };
                sqlx::query_scalar(sql)
                    .bind(tenant.as_str())
                    .bind(key)
                    .bind(since)
                    .fetch_one(&self.pool)
                    .await
                    .map_err($d::err)
            }

            async fn reserve(
                &self,
                r: &NewReservation,
                windows: &[BudgetWindow],
            ) -> StoreResult<Reserved> {
                let tenant = &r.tenant_id;
                let mut conn = self.write_conn().await?;
                let mut tx = conn.begin_with($d::BEGIN_WRITE).await.map_err($d::err)?;
                // Every reservation of the tenant waits here, across gateways.
                $d::lock(&mut tx, || format!("budget:{}", tenant.as_str())).await?;
                sqlx::query($d::sql!(
                    "DELETE FROM budget_reservations WHERE tenant_id = ? AND expires_at <= ?"
                ))
                .bind(tenant.as_str())
                .bind(r.at)
                .execute(&mut *tx)
                .await
                .map_err($d::err)?;
                for (i, window) in windows.iter().enumerate() {
                    let used = window_used(&mut tx, tenant, window, r.at).await?;
                    let amount = match window.unit {
                        BudgetUnit::Micros => r.cost_micros,
                        BudgetUnit::Tokens => r.tokens,
                    };
                    if used.saturating_add(amount) > window.limit {
                        tx.rollback().await.map_err($d::err)?;
                        return Ok(Reserved::Refused { window: i, used });
                    }
                }
                let id = new_id()?;
                sqlx::query($d::sql!(
                    "INSERT INTO budget_reservations (id, tenant_id, at, expires_at, model, \
                     agent_id, user_id, cost_micros, tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ))
                .bind(&id)
                .bind(tenant.as_str())
                .bind(r.at)
                .bind(r.expires_at)
                .bind(&r.model)
                .bind(r.agent_id.as_ref().map(AgentId::as_str))
                .bind(r.user_id.as_ref().map(UserId::as_str))
                .bind(check_cost(r.cost_micros)?)
                .bind(check_cost(r.tokens)?)
                .execute(&mut *tx)
                .await
                .map_err($d::err)?;
                tx.commit().await.map_err($d::err)?;
                Ok(Reserved::Held(id))
            }

            async fn settle(
                &self,
                tenant: &TenantId,
                id: &str,
                entry: Option<&UsageEntry>,
            ) -> StoreResult<()> {
                let mut conn = self.write_conn().await?;
                let mut tx = conn.begin_with($d::BEGIN_WRITE).await.map_err($d::err)?;
                sqlx::query($d::sql!(
                    "DELETE FROM budget_reservations WHERE tenant_id = ? AND id = ?"
                ))
                .bind(tenant.as_str())
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err($d::err)?;
                if let Some(entry) = entry {
                    insert_usage(&mut tx, entry, now_millis()).await?;
                }
                tx.commit().await.map_err($d::err)?;
                Ok(())
            }
        }

        #[async_trait]
        impl UsageReportStore for $store {
            async fn usage_by_day(
                &self,
                tenant: &TenantId,
                q: &UsageQuery,
            ) -> StoreResult<Vec<UsageBucket>> {
                let sql = match q.by {
                    UsageGroup::Model => by_day_sql!("model"),
                    UsageGroup::Agent => by_day_sql!("agent_id"),
                    UsageGroup::User => by_day_sql!("user_id"),
                };
                let rows = sqlx::query(sql)
                    .bind(tenant.as_str())
                    .bind(q.since)
                    .bind(q.until)
                    .bind(q.user.as_ref().map(UserId::as_str))
                    .bind(DAY_MS)
                    .fetch_all(&self.pool)
                    .await
                    .map_err($d::err)?;
                let mut out = rows
                    .iter()
                    .map(|r| -> Result<UsageBucket, sqlx::Error> {
                        Ok(UsageBucket {
                            day: r.try_get("day")?,
                            key: r.try_get("k")?,
                            calls: r.try_get("calls")?,
                            input_tokens: r.try_get("input_tokens")?,
                            output_tokens: r.try_get("output_tokens")?,
                            cache_read_tokens: r.try_get("cache_read_tokens")?,
                            cache_write_tokens: r.try_get("cache_write_tokens")?,
                            cost_micros: r.try_get("cost_micros")?,
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map_err($d::err)?;
                // The dialects order NULLs differently: sorted here.
                out.sort_by(|a, b| (a.day, &a.key).cmp(&(b.day, &b.key)));
                Ok(out)
            }

            async fn budget_used(
                &self,
                tenant: &TenantId,
                window: &BudgetWindow,
                now: UnixMillis,
            ) -> StoreResult<i64> {
                let mut conn = self.pool.acquire().await.map_err($d::err)?;
                window_used(&mut conn, tenant, window, now).await
            }
        }

        #[async_trait]
        impl TraceBatchStore for $store {
            async fn write_traces(&self, writes: &[TraceWrite]) -> StoreResult<usize> {
                if writes.is_empty() {
                    return Ok(0);
                }
                // The backend's one-round-trip batch, where it has one.
                if let Some(skipped) = self.write_traces_at_once(writes).await? {
                    return Ok(skipped);
                }
                let mut conn = self.write_conn().await?;
                let mut tx = conn.begin_with($d::BEGIN_WRITE).await.map_err($d::err)?;
                let mut skipped = 0;
                for write in writes {
                    let applied = match write {
                        TraceWrite::Start(t) => insert_trace(&mut tx, t).await.map(|()| true),
                        TraceWrite::Span(span) => insert_span(&mut tx, span).await,
                        TraceWrite::Finish {
                            tenant_id,
                            id,
                            end,
                            ended_at,
                        } => end_trace(&mut tx, tenant_id, id, end, *ended_at).await,
                        TraceWrite::Usage { entry, at } => {
                            insert_usage(&mut tx, entry, *at).await.map(|()| true)
                        }
                    };
                    match applied {
                        Ok(true) => {}
                        // Refused before anything was sent: the transaction is intact.
                        Ok(false) | Err(StoreError::Invalid(_)) => skipped += 1,
                        Err(e) => return Err(e),
                    }
                }
                tx.commit().await.map_err($d::err)?;
                Ok(skipped)
            }
        }
    };
}

pub(crate) use ports;
