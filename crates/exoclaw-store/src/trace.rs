//! The dialect-free part of the trace and usage ports: page sizes, and the
//! checks and conversions that turn token counts (`u64`) and costs into the
//! `BIGINT` columns both backends store.

use exoclaw_core::provider::Usage;
use exoclaw_core::store::{StoreError, StoreResult};
use exoclaw_core::trace::{NewSpan, NewTrace, Span, Trace};

/// The status of a trace that has not finished.
pub(crate) const RUNNING: &str = "running";

/// The trace `create_trace` inserts for `trace`: a new id, started now
/// (also for callers that queue it for `write_traces`).
pub fn new_trace_row(trace: &NewTrace) -> StoreResult<Trace> {
    Ok(Trace {
        id: crate::new_id()?,
        tenant_id: trace.tenant_id.clone(),
        agent_id: trace.agent_id.clone(),
        user_id: trace.user_id.clone(),
        session_id: trace.session_id.clone(),
        name: trace.name.clone(),
        status: RUNNING.to_owned(),
        error: None,
        started_at: crate::now_millis(),
        ended_at: None,
        usage: Usage::default(),
        cost_micros: 0,
        owner: trace.owner.clone(),
    })
}

/// The span `add_span` inserts for `span`: a new id.
pub fn new_span_row(span: &NewSpan) -> StoreResult<Span> {
    Ok(Span {
        id: crate::new_id()?,
        trace_id: span.trace_id.clone(),
        tenant_id: span.tenant_id.clone(),
        kind: span.kind,
        name: span.name.clone(),
        provider: span.provider.clone(),
        status: span.status.clone(),
        error: span.error.clone(),
        started_at: span.started_at,
        latency_ms: span.latency_ms,
        usage: span.usage,
        cost_micros: span.cost_micros,
        attributes: span.attributes.clone(),
    })
}

/// The page size of `list_traces` when the filter says 0.
pub(crate) const DEFAULT_TRACE_LIMIT: u32 = 50;
/// The largest page `list_traces` returns, whatever the filter asks for.
pub(crate) const MAX_TRACE_LIMIT: u32 = 1000;

/// The `LIMIT` for a `TraceFilter::limit`.
pub(crate) fn trace_limit(limit: u32) -> i64 {
    let limit = if limit == 0 {
        DEFAULT_TRACE_LIMIT
    } else {
        limit.min(MAX_TRACE_LIMIT)
    };
    i64::from(limit)
}

/// The four token counts of a [`Usage`] as stored, in column order
/// (`input_tokens, output_tokens, cache_read_tokens, cache_write_tokens`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tokens {
    pub(crate) input: i64,
    pub(crate) output: i64,
    pub(crate) cache_read: i64,
    pub(crate) cache_write: i64,
}

impl Tokens {
    /// `Invalid` when a count does not fit a `BIGINT`.
    pub(crate) fn of(usage: &Usage) -> StoreResult<Self> {
        Ok(Self {
            input: count(usage.input_tokens, "input")?,
            output: count(usage.output_tokens, "output")?,
            cache_read: count(usage.cache_read_tokens, "cache read")?,
            cache_write: count(usage.cache_write_tokens, "cache write")?,
        })
    }
}

fn count(n: u64, what: &str) -> StoreResult<i64> {
    i64::try_from(n).map_err(|_| {
        StoreError::Invalid(format!("the {what} token count {n} is too large to store"))
    })
}

/// `Invalid` for a negative cost: a ledger entry must never lower spend.
pub(crate) fn check_cost(cost_micros: i64) -> StoreResult<i64> {
    if cost_micros < 0 {
        return Err(StoreError::Invalid(format!(
            "a cost must not be negative (got {cost_micros} micro-dollars)"
        )));
    }
    Ok(cost_micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_default_and_cap() {
        assert_eq!(trace_limit(0), 50);
        assert_eq!(trace_limit(7), 7);
        assert_eq!(trace_limit(1000), 1000);
        assert_eq!(trace_limit(1001), 1000);
        assert_eq!(trace_limit(u32::MAX), 1000);
    }

    #[test]
    fn token_counts_must_fit_a_bigint() {
        let usage = Usage {
            input_tokens: 1,
            output_tokens: 2,
            cache_read_tokens: 3,
            cache_write_tokens: i64::MAX as u64,
            estimated: false,
        };
        let tokens = Tokens::of(&usage).unwrap();
        assert_eq!(
            (
                tokens.input,
                tokens.output,
                tokens.cache_read,
                tokens.cache_write
            ),
            (1, 2, 3, i64::MAX)
        );
        let too_big = Usage {
            output_tokens: u64::MAX,
            ..usage
        };
        let err = Tokens::of(&too_big).unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        assert!(err.to_string().contains("output token count"), "{err}");
    }

    #[test]
    fn negative_costs_are_refused() {
        assert_eq!(check_cost(0).unwrap(), 0);
        assert_eq!(check_cost(1_500_000).unwrap(), 1_500_000);
        assert!(matches!(check_cost(-1), Err(StoreError::Invalid(_))));
    }
}
