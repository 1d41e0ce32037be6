//! The trace and usage ports of [`SqliteStore`]: traces with their spans, and
//! the usage ledger budgets are summed from. Every statement filters on
//! `tenant_id`; a span is only ever inserted by a statement that finds its
//! trace in the span's tenant.

use super::SqliteStore;
use crate::trace::{Tokens, check_cost, new_span_row, new_trace_row, trace_limit};
use crate::{error, json_text, new_id, now_millis, row};
use async_trait::async_trait;
use exoclaw_core::store::{StoreError, StoreResult, TraceBatchStore, TraceStore, UsageStore};
use exoclaw_core::trace::{
    NewSpan, NewTrace, Span, SpendScope, Trace, TraceEnd, TraceFilter, TraceWrite, UsageEntry,
};
use exoclaw_core::{AgentId, SessionId, TenantId, UnixMillis, UserId};
use sqlx::Connection as _;
use sqlx::sqlite::SqliteConnection;

// Column lists as macros so that `concat!` can build static SQL from them.
macro_rules! trace_cols {
    () => {
        "id, tenant_id, agent_id, user_id, session_id, name, status, error, started_at, \
         ended_at, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, \
         cost_micros"
    };
}
macro_rules! span_cols {
    () => {
        "id, trace_id, tenant_id, kind, name, provider, status, error, started_at, latency_ms, \
         input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_micros, \
         attributes"
    };
}
/// The spend of one scope: `$col` is the scope's column.
macro_rules! spend_sql {
    ($col:literal) => {
        concat!(
            "SELECT COALESCE(SUM(cost_micros), 0) FROM usage_ledger \
             WHERE tenant_id = ? AND ",
            $col,
            " = ? AND at >= ?"
        )
    };
}

/// Inserts a started trace.
async fn insert_trace(conn: &mut SqliteConnection, t: &Trace) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO traces (id, tenant_id, agent_id, user_id, session_id, name, status, \
         started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&t.id)
    .bind(t.tenant_id.as_str())
    .bind(t.agent_id.as_ref().map(AgentId::as_str))
    .bind(t.user_id.as_ref().map(UserId::as_str))
    .bind(t.session_id.as_ref().map(SessionId::as_str))
    .bind(&t.name)
    .bind(&t.status)
    .bind(t.started_at)
    .execute(conn)
    .await
    .map_err(error::sqlite)?;
    Ok(())
}

/// Ends a trace; `false` when it is not the tenant's.
async fn end_trace(
    conn: &mut SqliteConnection,
    tenant: &TenantId,
    id: &str,
    end: &TraceEnd,
    ended_at: UnixMillis,
) -> StoreResult<bool> {
    let tokens = Tokens::of(&end.usage)?;
    let done = sqlx::query(
        "UPDATE traces SET status = ?, error = ?, ended_at = ?, input_tokens = ?, \
         output_tokens = ?, cache_read_tokens = ?, cache_write_tokens = ?, cost_micros = ? \
         WHERE tenant_id = ? AND id = ?",
    )
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
    .map_err(error::sqlite)?;
    Ok(done.rows_affected() > 0)
}

/// Inserts a span; `false` when its trace is not the span's tenant's.
async fn insert_span(conn: &mut SqliteConnection, span: &Span) -> StoreResult<bool> {
    let tokens = Tokens::of(&span.usage)?;
    // One statement: the row is inserted only if the trace is the
    // span's tenant's (and the foreign key says so too).
    let done = sqlx::query(concat!(
        "INSERT INTO spans (",
        span_cols!(),
        ") SELECT ?1, t.id, t.tenant_id, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, \
         ?14 FROM traces t WHERE t.tenant_id = ?15 AND t.id = ?16"
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
    .map_err(error::sqlite)?;
    Ok(done.rows_affected() > 0)
}

/// Inserts a usage ledger entry recorded at `at`.
async fn insert_usage(
    conn: &mut SqliteConnection,
    entry: &UsageEntry,
    at: UnixMillis,
) -> StoreResult<()> {
    let tokens = Tokens::of(&entry.usage)?;
    sqlx::query(
        "INSERT INTO usage_ledger (id, tenant_id, at, provider, model, agent_id, user_id, \
         input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_micros) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
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
    .map_err(error::sqlite)?;
    Ok(())
}

#[async_trait]
impl TraceStore for SqliteStore {
    async fn create_trace(&self, trace: &NewTrace) -> StoreResult<Trace> {
        let created = new_trace_row(trace)?;
        let mut conn = self.writer.acquire().await?;
        insert_trace(&mut conn, &created).await?;
        Ok(created)
    }

    async fn finish_trace(&self, tenant: &TenantId, id: &str, end: &TraceEnd) -> StoreResult<()> {
        let mut conn = self.writer.acquire().await?;
        if end_trace(&mut conn, tenant, id, end, now_millis()).await? {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    async fn add_span(&self, span: &NewSpan) -> StoreResult<Span> {
        let span = new_span_row(span)?;
        let mut conn = self.writer.acquire().await?;
        if insert_span(&mut conn, &span).await? {
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
        let rows = sqlx::query(concat!(
            "SELECT ",
            trace_cols!(),
            " FROM traces WHERE tenant_id = ?1 AND (?2 IS NULL OR agent_id = ?2) \
             AND (?3 IS NULL OR user_id = ?3) AND (?4 IS NULL OR session_id = ?4) \
             AND (?5 IS NULL OR started_at < ?5) \
             ORDER BY started_at DESC, id DESC LIMIT CAST(?6 AS INTEGER)"
        ))
        .bind(tenant.as_str())
        .bind(filter.agent_id.as_ref().map(AgentId::as_str))
        .bind(filter.user_id.as_ref().map(UserId::as_str))
        .bind(filter.session_id.as_ref().map(SessionId::as_str))
        .bind(filter.before)
        .bind(trace_limit(filter.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(error::sqlite)?;
        row::all(&rows, row::trace)
    }

    async fn get_trace(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> StoreResult<Option<(Trace, Vec<Span>)>> {
        let mut conn = self.pool.acquire().await.map_err(error::sqlite)?;
        let r = sqlx::query(concat!(
            "SELECT ",
            trace_cols!(),
            " FROM traces WHERE tenant_id = ? AND id = ?"
        ))
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(error::sqlite)?;
        let Some(trace) = r.as_ref().map(row::trace).transpose()? else {
            return Ok(None);
        };
        let rows = sqlx::query(concat!(
            "SELECT ",
            span_cols!(),
            " FROM spans WHERE tenant_id = ? AND trace_id = ? ORDER BY started_at, id"
        ))
        .bind(tenant.as_str())
        .bind(id)
        .fetch_all(&mut *conn)
        .await
        .map_err(error::sqlite)?;
        Ok(Some((trace, row::all(&rows, row::span)?)))
    }
}

#[async_trait]
impl UsageStore for SqliteStore {
    async fn record_usage(&self, entry: &UsageEntry) -> StoreResult<()> {
        let mut conn = self.writer.acquire().await?;
        insert_usage(&mut conn, entry, now_millis()).await
    }

    async fn spend_since(
        &self,
        tenant: &TenantId,
        scope: &SpendScope,
        since: UnixMillis,
    ) -> StoreResult<i64> {
        // One static statement per scope, so each uses its own index.
        let (sql, key) = match scope {
            SpendScope::Model(model) => (spend_sql!("model"), model.as_str()),
            SpendScope::Agent(agent) => (spend_sql!("agent_id"), agent.as_str()),
            SpendScope::User(user) => (spend_sql!("user_id"), user.as_str()),
        };
        sqlx::query_scalar(sql)
            .bind(tenant.as_str())
            .bind(key)
            .bind(since)
            .fetch_one(&self.pool)
            .await
            .map_err(error::sqlite)
    }
}

#[async_trait]
impl TraceBatchStore for SqliteStore {
    async fn write_traces(&self, writes: &[TraceWrite]) -> StoreResult<usize> {
        if writes.is_empty() {
            return Ok(0);
        }
        let mut writer = self.writer.acquire().await?;
        let mut tx = writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(error::sqlite)?;
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
        tx.commit().await.map_err(error::sqlite)?;
        Ok(skipped)
    }
}
