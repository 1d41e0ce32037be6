//! SQLite's `write_traces`: a write-behind batch of trace starts, spans,
//! ends and usage entries in one transaction and one round trip to the
//! writer connection, whatever its size.
//!
//! Written statement by statement, a batch held the writer for a trip
//! between the flusher task and the connection's thread per row, four rows
//! per turn, and each trip back waited for the runtime to poll the flusher
//! again; at concurrency 64 those holds were the largest share of the
//! writer's time, and completions/s with trace writes switched off went from
//! about 1,400 to 2,500 (`cargo xtask bench proxy`, BENCHMARKS.md). Here
//! each kind of row is one JSON array, bound once and read by `json_each`:
//! four statements of fixed text, so SQLite prepares them once.
//!
//! The outcome is the statement-by-statement one, which the PostgreSQL
//! backend still runs (the contract suite checks both): starts go first, so
//! a span or end of a trace started in the same batch finds it; a span or
//! end whose trace is not its tenant's is skipped, as is a write that cannot
//! be stored (a negative cost, a token count over `BIGINT`); when one trace
//! is ended twice in a batch the later end is the one kept; and any other
//! error fails the whole batch, rolled back.

use std::collections::{HashMap, HashSet};

use exoclaw_core::store::{StoreError, StoreResult};
use exoclaw_core::trace::TraceWrite;
use serde::Serialize;
use sqlx::Row as _;
use sqlx::sqlite::SqliteConnection;

use crate::error;
use crate::trace::{Tokens, check_cost};

/// The batch's four statements, one JSON array parameter each (plain `?`,
/// bound in order). The spans' and ends' rows come back tagged 0 and 1.
const SQL: &str = "BEGIN IMMEDIATE; \
    INSERT INTO traces (id, tenant_id, agent_id, user_id, session_id, name, status, started_at, \
    owner) SELECT j.value->>0, j.value->>1, j.value->>2, j.value->>3, j.value->>4, j.value->>5, \
    j.value->>6, j.value->>7, j.value->>8 FROM json_each(?) j ORDER BY j.key; \
    INSERT INTO spans (id, trace_id, tenant_id, kind, name, provider, status, error, started_at, \
    latency_ms, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_micros, \
    attributes) SELECT j.value->>0, t.id, t.tenant_id, j.value->>1, j.value->>2, j.value->>3, \
    j.value->>4, j.value->>5, j.value->>6, j.value->>7, j.value->>8, j.value->>9, j.value->>10, \
    j.value->>11, j.value->>12, j.value->>13 FROM json_each(?) j \
    JOIN traces t ON t.tenant_id = j.value->>14 AND t.id = j.value->>15 ORDER BY j.key \
    RETURNING 0, tenant_id, id; \
    UPDATE traces SET status = j.value->>0, error = j.value->>1, ended_at = j.value->>2, \
    input_tokens = j.value->>3, output_tokens = j.value->>4, cache_read_tokens = j.value->>5, \
    cache_write_tokens = j.value->>6, cost_micros = j.value->>7 FROM json_each(?) j \
    WHERE traces.tenant_id = j.value->>8 AND traces.id = j.value->>9 \
    RETURNING 1, tenant_id, id; \
    INSERT INTO usage_ledger (id, tenant_id, at, provider, model, agent_id, user_id, \
    input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_micros) \
    SELECT j.value->>0, j.value->>1, j.value->>2, j.value->>3, j.value->>4, j.value->>5, \
    j.value->>6, j.value->>7, j.value->>8, j.value->>9, j.value->>10, j.value->>11 \
    FROM json_each(?) j ORDER BY j.key; \
    COMMIT;";

type Start<'a> = (
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    &'a str,
    &'a str,
    i64,
    Option<&'a str>,
);
type SpanRow<'a> = (
    &'a str,
    &'static str,
    &'a str,
    Option<&'a str>,
    &'a str,
    Option<&'a str>,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    String,
    &'a str,
    &'a str,
);
type End<'a> = (
    &'a str,
    Option<&'a str>,
    i64,
    i64,
    i64,
    i64,
    i64,
    i64,
    &'a str,
    &'a str,
);
type Usage<'a> = (
    String,
    &'a str,
    i64,
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    i64,
    i64,
    i64,
    i64,
    i64,
);

/// The rows of a batch by kind, as their JSON arrays will say them.
#[derive(Default)]
struct Rows<'a> {
    starts: Vec<Start<'a>>,
    spans: Vec<SpanRow<'a>>,
    /// One per trace (the last end given), and how many ends it stands for.
    ends: Vec<(End<'a>, usize)>,
    usage: Vec<Usage<'a>>,
    /// Writes refused before sending (they cannot be stored).
    unstorable: usize,
}

/// A batch ready to send: its four JSON arrays and what is needed to count
/// the writes skipped. Built before the writer is taken, so the writer is
/// held only for the round trip.
pub(crate) struct Prepared<'a> {
    rows: Rows<'a>,
    params: [String; 4],
}

/// Sorts and encodes `writes`.
pub(crate) fn prepare(writes: &[TraceWrite]) -> StoreResult<Prepared<'_>> {
    let rows = rows(writes)?;
    let params = [
        json(&rows.starts)?,
        json(&rows.spans)?,
        json(&rows.ends.iter().map(|(end, _)| end).collect::<Vec<_>>())?,
        json(&rows.usage)?,
    ];
    Ok(Prepared { rows, params })
}

impl Prepared<'_> {
    /// Writes the batch in one transaction; how many writes were skipped.
    pub(crate) async fn write(self, conn: &mut SqliteConnection) -> StoreResult<usize> {
        let Prepared { rows, params } = self;
        let mut query = sqlx::query(SQL);
        for param in params {
            query = query.bind(param);
        }
        let returned = match query.fetch_all(&mut *conn).await {
            Ok(returned) => returned,
            Err(e) => {
                // Whatever ran of it is undone before the connection is reused.
                let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                return Err(error::sqlite(e));
            }
        };
        let mut spans_written = 0;
        let mut ended = HashSet::new();
        for row in &returned {
            let tag: i64 = row.try_get(0).map_err(error::sqlite)?;
            if tag == 0 {
                spans_written += 1;
            } else {
                let tenant: String = row.try_get(1).map_err(error::sqlite)?;
                let id: String = row.try_get(2).map_err(error::sqlite)?;
                ended.insert((tenant, id));
            }
        }
        let ends_skipped: usize = rows
            .ends
            .iter()
            .filter(|((.., tenant, id), _)| {
                !ended.contains(&((*tenant).to_owned(), (*id).to_owned()))
            })
            .map(|(_, n)| n)
            .sum();
        Ok(rows.unstorable + rows.spans.len().saturating_sub(spans_written) + ends_skipped)
    }
}

fn json<T: Serialize>(rows: &T) -> StoreResult<String> {
    serde_json::to_string(rows).map_err(|e| StoreError::Invalid(format!("unstorable JSON: {e}")))
}

/// Sorts `writes` by kind, keeping their order within each; a write that
/// cannot be stored is counted, not kept.
fn rows(writes: &[TraceWrite]) -> StoreResult<Rows<'_>> {
    let mut rows = Rows::default();
    let mut end_at: HashMap<(&str, &str), usize> = HashMap::new();
    for write in writes {
        let kept = match write {
            TraceWrite::Start(t) => {
                rows.starts.push((
                    &t.id,
                    t.tenant_id.as_str(),
                    t.agent_id.as_ref().map(|a| a.as_str()),
                    t.user_id.as_ref().map(|u| u.as_str()),
                    t.session_id.as_ref().map(|s| s.as_str()),
                    &t.name,
                    &t.status,
                    t.started_at,
                    t.owner.as_deref(),
                ));
                Ok(())
            }
            TraceWrite::Span(s) => span(s).map(|row| rows.spans.push(row)),
            TraceWrite::Finish {
                tenant_id,
                id,
                end,
                ended_at,
            } => Tokens::of(&end.usage).and_then(|tokens| {
                let row = (
                    end.status.as_str(),
                    end.error.as_deref(),
                    *ended_at,
                    tokens.input,
                    tokens.output,
                    tokens.cache_read,
                    tokens.cache_write,
                    check_cost(end.cost_micros)?,
                    tenant_id.as_str(),
                    id.as_str(),
                );
                match end_at.get(&(tenant_id.as_str(), id.as_str())) {
                    Some(&i) => {
                        if let Some(kept) = rows.ends.get_mut(i) {
                            *kept = (row, kept.1 + 1);
                        }
                    }
                    None => {
                        end_at.insert((tenant_id.as_str(), id.as_str()), rows.ends.len());
                        rows.ends.push((row, 1));
                    }
                }
                Ok(())
            }),
            TraceWrite::Usage { entry, at } => Tokens::of(&entry.usage).and_then(|tokens| {
                rows.usage.push((
                    crate::new_id()?,
                    entry.tenant_id.as_str(),
                    *at,
                    &entry.provider,
                    &entry.model,
                    entry.agent_id.as_ref().map(|a| a.as_str()),
                    entry.user_id.as_ref().map(|u| u.as_str()),
                    tokens.input,
                    tokens.output,
                    tokens.cache_read,
                    tokens.cache_write,
                    check_cost(entry.cost_micros)?,
                ));
                Ok(())
            }),
        };
        match kept {
            Ok(()) => {}
            Err(StoreError::Invalid(_)) => rows.unstorable += 1,
            Err(e) => return Err(e),
        }
    }
    Ok(rows)
}

fn span(s: &exoclaw_core::trace::Span) -> StoreResult<SpanRow<'_>> {
    let tokens = Tokens::of(&s.usage)?;
    Ok((
        &s.id,
        s.kind.as_str(),
        &s.name,
        s.provider.as_deref(),
        &s.status,
        s.error.as_deref(),
        s.started_at,
        s.latency_ms,
        tokens.input,
        tokens.output,
        tokens.cache_read,
        tokens.cache_write,
        check_cost(s.cost_micros)?,
        crate::json_text(&s.attributes)?,
        s.tenant_id.as_str(),
        &s.trace_id,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statement_binds_one_array_per_kind() {
        assert_eq!(SQL.matches('?').count(), 4);
        assert_eq!(SQL.matches("json_each(?)").count(), 4);
        assert!(SQL.starts_with("BEGIN IMMEDIATE;") && SQL.ends_with("COMMIT;"));
    }
}
