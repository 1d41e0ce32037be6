//! Traces and spans: the create/finish/get/list round trip with usage and
//! cost, spans in start order, list filters and paging, the page-size cap,
//! traces outliving their session, bad values, and tenant isolation for
//! every method; `write_traces` (the batch the write-behind queue commits):
//! order, the same rows as the single calls, skipped foreign and bad writes.

use crate::harness::*;
use exoclaw_core::provider::Usage;
use exoclaw_core::store::{Store, StoreError};
use exoclaw_core::trace::{
    NewSpan, NewTrace, SpanKind, SpendScope, Trace, TraceEnd, TraceFilter, TraceWrite, UsageEntry,
};
use exoclaw_core::{AgentId, SessionId, TenantId, UserId};
use std::sync::Arc;

contract!(store:
    traces_round_trip_with_usage_and_cost,
    a_trace_can_end_in_error,
    spans_come_back_in_start_order,
    traces_list_newest_first_with_filters,
    list_traces_pages_with_before_and_limit,
    a_trace_outlives_its_session,
    traces_refuse_unstorable_values,
    traces_are_tenant_isolated,
    a_batch_writes_traces_spans_ends_and_usage_in_order,
    a_batch_skips_foreign_and_unstorable_writes,
    a_large_batch_writes_every_row,
    a_trace_ended_twice_in_a_batch_keeps_the_later_end,
    a_restart_interrupts_only_its_own_running_traces,
);
contract!(db: list_traces_caps_the_page_at_1000, paging_with_before_id_skips_no_trace_of_one_millisecond);
contract!(fresh: migration_3_adds_and_removes_the_trace_tables);

fn new_trace(tenant: &TenantId, agent: &str, user: &str, session: &str) -> NewTrace {
    NewTrace {
        tenant_id: tenant.clone(),
        agent_id: Some(AgentId::new(agent)),
        user_id: Some(UserId::new(user)),
        session_id: Some(SessionId::new(session)),
        name: "chat".to_owned(),
        owner: None,
    }
}

fn usage(input: u64, output: u64, cache_read: u64, cache_write: u64) -> Usage {
    Usage {
        input_tokens: input,
        output_tokens: output,
        cache_read_tokens: cache_read,
        cache_write_tokens: cache_write,
        estimated: false,
    }
}

fn llm_span(trace: &Trace, started_at: i64) -> NewSpan {
    NewSpan {
        trace_id: trace.id.clone(),
        tenant_id: trace.tenant_id.clone(),
        kind: SpanKind::Llm,
        name: "claude-test".to_owned(),
        provider: Some("anthropic".to_owned()),
        status: "ok".to_owned(),
        error: None,
        started_at,
        latency_ms: 840,
        usage: usage(1200, 300, 1000, 200),
        cost_micros: 4_321,
        attributes: serde_json::json!({"stop_reason": "tool_use", "retries": 1}),
    }
}

fn tool_span(trace: &Trace, started_at: i64) -> NewSpan {
    NewSpan {
        kind: SpanKind::Tool,
        name: "web.fetch".to_owned(),
        provider: None,
        status: "denied".to_owned(),
        error: Some("ssrf: private address".to_owned()),
        latency_ms: 3,
        usage: Usage::default(),
        cost_micros: 0,
        attributes: serde_json::json!({"code": "ssrf_blocked", "nested": {"a": [1, 2]}}),
        ..llm_span(trace, started_at)
    }
}

fn ok_end(cost_micros: i64) -> TraceEnd {
    TraceEnd {
        status: "ok".to_owned(),
        error: None,
        usage: usage(1200, 300, 1000, 200),
        cost_micros,
    }
}

fn ids(traces: &[Trace]) -> Vec<&str> {
    traces.iter().map(|t| t.id.as_str()).collect()
}

async fn traces_round_trip_with_usage_and_cost(store: Arc<dyn Store>) {
    let t = default_tenant();
    let created = store
        .create_trace(&new_trace(&t, "a1", "u1", "s1"))
        .await
        .unwrap();
    assert_eq!(created.id.len(), 32);
    assert_eq!(created.status, "running");
    assert_eq!(created.ended_at, None);
    assert_eq!(created.error, None);
    assert_eq!(created.usage, Usage::default());
    assert_eq!(created.cost_micros, 0);
    assert!(created.started_at > 0);
    let (got, spans) = store.get_trace(&t, &created.id).await.unwrap().unwrap();
    assert_eq!(got, created);
    assert!(spans.is_empty());

    let llm = store
        .add_span(&llm_span(&created, created.started_at))
        .await
        .unwrap();
    let tool = store
        .add_span(&tool_span(&created, created.started_at + 900))
        .await
        .unwrap();
    assert_eq!(llm.id.len(), 32);
    assert_ne!(llm.id, tool.id);
    assert_eq!(
        (llm.trace_id.as_str(), llm.kind, llm.cost_micros),
        (created.id.as_str(), SpanKind::Llm, 4_321)
    );
    assert_eq!(tool.provider, None);

    tick().await;
    // more than 2^53: a float anywhere on the way would round it
    let cost = 9_007_199_254_740_993;
    store
        .finish_trace(&t, &created.id, &ok_end(cost))
        .await
        .unwrap();
    let (finished, spans) = store.get_trace(&t, &created.id).await.unwrap().unwrap();
    assert_eq!(spans, vec![llm, tool]);
    assert_eq!(finished.status, "ok");
    assert_eq!(finished.error, None);
    assert_eq!(finished.usage, usage(1200, 300, 1000, 200));
    assert_eq!(finished.cost_micros, cost);
    let ended = finished.ended_at.unwrap();
    assert!(
        ended > finished.started_at,
        "{ended} after {}",
        finished.started_at
    );
    assert_eq!(
        Trace {
            status: created.status.clone(),
            ended_at: None,
            usage: Usage::default(),
            cost_micros: 0,
            ..finished.clone()
        },
        created,
        "finishing changed only the end fields"
    );
    let listed = store
        .list_traces(&t, &TraceFilter::default())
        .await
        .unwrap();
    assert_eq!(listed, vec![finished]);
}

async fn a_trace_can_end_in_error(store: Arc<dyn Store>) {
    let t = default_tenant();
    let mut new = new_trace(&t, "a1", "u1", "s1");
    new.agent_id = None;
    new.user_id = None;
    new.session_id = None;
    new.name = "compaction".to_owned();
    let trace = store.create_trace(&new).await.unwrap();
    assert_eq!(
        (&trace.agent_id, &trace.user_id, &trace.session_id),
        (&None, &None, &None)
    );
    let end = TraceEnd {
        status: "error".to_owned(),
        error: Some("provider timed out".to_owned()),
        usage: Usage::default(),
        cost_micros: 0,
    };
    store.finish_trace(&t, &trace.id, &end).await.unwrap();
    let (got, _) = store.get_trace(&t, &trace.id).await.unwrap().unwrap();
    assert_eq!(got.name, "compaction");
    assert_eq!(got.status, "error");
    assert_eq!(got.error.as_deref(), Some("provider timed out"));
    assert!(got.ended_at.is_some());
    assert_eq!(got.agent_id, None);
    let missing = store
        .finish_trace(&t, "no-such-trace", &end)
        .await
        .unwrap_err();
    assert!(matches!(missing, StoreError::NotFound), "{missing}");
}

async fn spans_come_back_in_start_order(store: Arc<dyn Store>) {
    let t = default_tenant();
    let trace = store
        .create_trace(&new_trace(&t, "a1", "u1", "s1"))
        .await
        .unwrap();
    let other = store
        .create_trace(&new_trace(&t, "a1", "u1", "s1"))
        .await
        .unwrap();
    let base = trace.started_at;
    // written out of order, and interleaved with another trace's span
    let c = store
        .add_span(&tool_span(&trace, base + 300))
        .await
        .unwrap();
    let a = store.add_span(&llm_span(&trace, base + 100)).await.unwrap();
    store.add_span(&llm_span(&other, base + 150)).await.unwrap();
    let b = store
        .add_span(&tool_span(&trace, base + 200))
        .await
        .unwrap();
    let (_, spans) = store.get_trace(&t, &trace.id).await.unwrap().unwrap();
    assert_eq!(spans, vec![a, b, c.clone()]);
    assert_eq!(
        c.attributes,
        serde_json::json!({"code": "ssrf_blocked", "nested": {"a": [1, 2]}})
    );
    assert_eq!(c.error.as_deref(), Some("ssrf: private address"));
    let (_, others) = store.get_trace(&t, &other.id).await.unwrap().unwrap();
    assert_eq!(others.len(), 1);
}

async fn traces_list_newest_first_with_filters(store: Arc<dyn Store>) {
    let t = default_tenant();
    let mut made = Vec::new();
    for (agent, user, session) in [
        ("a1", "u1", "s1"),
        ("a1", "u2", "s2"),
        ("a2", "u1", "s3"),
        ("a2", "u2", "s1"),
    ] {
        made.push(
            store
                .create_trace(&new_trace(&t, agent, user, session))
                .await
                .unwrap(),
        );
        tick().await;
    }
    let id = |i: usize| made[i].id.as_str();
    let list = |filter: TraceFilter| {
        let store = store.clone();
        let t = t.clone();
        async move { store.list_traces(&t, &filter).await.unwrap() }
    };
    assert_eq!(
        ids(&list(TraceFilter::default()).await),
        [id(3), id(2), id(1), id(0)]
    );
    let by_agent = list(TraceFilter {
        agent_id: Some(AgentId::new("a1")),
        ..TraceFilter::default()
    })
    .await;
    assert_eq!(ids(&by_agent), [id(1), id(0)]);
    let by_user = list(TraceFilter {
        user_id: Some(UserId::new("u1")),
        ..TraceFilter::default()
    })
    .await;
    assert_eq!(ids(&by_user), [id(2), id(0)]);
    let by_session = list(TraceFilter {
        session_id: Some(SessionId::new("s1")),
        ..TraceFilter::default()
    })
    .await;
    assert_eq!(ids(&by_session), [id(3), id(0)]);
    let combined = list(TraceFilter {
        agent_id: Some(AgentId::new("a2")),
        user_id: Some(UserId::new("u2")),
        session_id: Some(SessionId::new("s1")),
        ..TraceFilter::default()
    })
    .await;
    assert_eq!(ids(&combined), [id(3)]);
    let none = list(TraceFilter {
        agent_id: Some(AgentId::new("a3")),
        ..TraceFilter::default()
    })
    .await;
    assert!(none.is_empty());
}

async fn list_traces_pages_with_before_and_limit(store: Arc<dyn Store>) {
    let t = default_tenant();
    let mut made = Vec::new();
    for _ in 0..5 {
        made.push(
            store
                .create_trace(&new_trace(&t, "a1", "u1", "s1"))
                .await
                .unwrap(),
        );
        tick().await;
    }
    let newest_first: Vec<&str> = made.iter().rev().map(|t| t.id.as_str()).collect();
    let page = |before: Option<i64>, limit: u32| {
        let store = store.clone();
        let t = t.clone();
        async move {
            let filter = TraceFilter {
                before,
                limit,
                ..TraceFilter::default()
            };
            store.list_traces(&t, &filter).await.unwrap()
        }
    };
    let first = page(None, 2).await;
    assert_eq!(ids(&first), newest_first[..2]);
    let second = page(Some(first[1].started_at), 2).await;
    assert_eq!(ids(&second), newest_first[2..4]);
    let third = page(Some(second[1].started_at), 2).await;
    assert_eq!(ids(&third), newest_first[4..]);
    assert!(page(Some(third[0].started_at), 2).await.is_empty());
    // `before` is exclusive, and works with the default limit too
    let before_newest = page(Some(made[4].started_at), 0).await;
    assert_eq!(ids(&before_newest), newest_first[1..]);

    // limit 0 is the default page of 50
    for _ in 0..46 {
        store
            .create_trace(&new_trace(&t, "a1", "u1", "s1"))
            .await
            .unwrap();
    }
    assert_eq!(page(None, 0).await.len(), 50);
    assert_eq!(page(None, 51).await.len(), 51);
    assert_eq!(page(None, 1).await.len(), 1);
}

async fn list_traces_caps_the_page_at_1000(db: &TestDb) {
    // 1010 traces in one statement (both dialects accept this SQL)
    let inserted = db
        .raw
        .exec(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1010) \
             INSERT INTO traces (id, tenant_id, name, status, started_at) \
             SELECT 'bulk-' || i, 'default', 'chat', 'ok', 1000 + i FROM n",
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1010) \
             INSERT INTO traces (id, tenant_id, name, status, started_at) \
             SELECT 'bulk-' || i, 'default', 'chat', 'ok', 1000 + i FROM n",
        )
        .await
        .unwrap();
    assert_eq!(inserted, 1010);
    let t = default_tenant();
    for limit in [1000, 1001, u32::MAX] {
        let filter = TraceFilter {
            limit,
            ..TraceFilter::default()
        };
        let page = db.store.list_traces(&t, &filter).await.unwrap();
        assert_eq!(page.len(), 1000, "limit {limit}");
        assert_eq!(page[0].id, "bulk-1010");
        assert_eq!(page[0].usage, Usage::default(), "defaults of the columns");
    }
}

async fn a_trace_outlives_its_session(store: Arc<dyn Store>) {
    let t = default_tenant();
    store.create_agent(&t, &new_agent("a1")).await.unwrap();
    let session = store
        .get_or_create_session(&t, &scope("a1", "u1", "chat-1"))
        .await
        .unwrap();
    let trace = store
        .create_trace(&new_trace(&t, "a1", "u1", session.id.as_str()))
        .await
        .unwrap();
    store
        .add_span(&llm_span(&trace, trace.started_at))
        .await
        .unwrap();
    store.delete_session(&t, &session.id).await.unwrap();
    store.delete_agent(&t, &AgentId::new("a1")).await.unwrap();
    let (kept, spans) = store.get_trace(&t, &trace.id).await.unwrap().unwrap();
    assert_eq!(kept, trace);
    assert_eq!(spans.len(), 1);
    let filter = TraceFilter {
        session_id: Some(session.id.clone()),
        ..TraceFilter::default()
    };
    assert_eq!(
        ids(&store.list_traces(&t, &filter).await.unwrap()),
        [&*trace.id]
    );
}

async fn traces_refuse_unstorable_values(store: Arc<dyn Store>) {
    let t = default_tenant();
    let trace = store
        .create_trace(&new_trace(&t, "a1", "u1", "s1"))
        .await
        .unwrap();
    let mut huge = llm_span(&trace, trace.started_at);
    huge.usage.input_tokens = u64::MAX;
    let err = store.add_span(&huge).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    let mut negative = llm_span(&trace, trace.started_at);
    negative.cost_micros = -1;
    let err = store.add_span(&negative).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    let err = store
        .finish_trace(&t, &trace.id, &ok_end(-5))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    let (got, spans) = store.get_trace(&t, &trace.id).await.unwrap().unwrap();
    assert_eq!((&got, spans.len()), (&trace, 0), "nothing was written");

    let nowhere = store
        .create_trace(&new_trace(&tid("no-such-tenant"), "a1", "u1", "s1"))
        .await
        .unwrap_err();
    assert!(matches!(nowhere, StoreError::NotFound), "{nowhere}");
    let mut orphan = llm_span(&trace, trace.started_at);
    orphan.trace_id = "no-such-trace".to_owned();
    let err = store.add_span(&orphan).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
}

async fn traces_are_tenant_isolated(store: Arc<dyn Store>) {
    let (a, b) = two_tenants(&*store).await;
    let theirs = store
        .create_trace(&new_trace(&a, "a1", "u1", "s1"))
        .await
        .unwrap();
    store
        .add_span(&llm_span(&theirs, theirs.started_at))
        .await
        .unwrap();
    let mine = store
        .create_trace(&new_trace(&b, "a1", "u1", "s1"))
        .await
        .unwrap();

    // b cannot read, finish, list or add to a's trace
    assert_eq!(store.get_trace(&b, &theirs.id).await.unwrap(), None);
    let err = store
        .finish_trace(&b, &theirs.id, &ok_end(1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
    let mut intruding = llm_span(&theirs, theirs.started_at);
    intruding.tenant_id = b.clone();
    let err = store.add_span(&intruding).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
    let same_filters = TraceFilter {
        agent_id: Some(AgentId::new("a1")),
        user_id: Some(UserId::new("u1")),
        session_id: Some(SessionId::new("s1")),
        ..TraceFilter::default()
    };
    for filter in [TraceFilter::default(), same_filters] {
        assert_eq!(
            ids(&store.list_traces(&b, &filter).await.unwrap()),
            [&*mine.id]
        );
        assert_eq!(
            ids(&store.list_traces(&a, &filter).await.unwrap()),
            [&*theirs.id]
        );
    }
    // and b's own trace does not accept a span that claims tenant a
    let mut smuggled = llm_span(&mine, mine.started_at);
    smuggled.tenant_id = a.clone();
    let err = store.add_span(&smuggled).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");

    // nothing changed on either side
    let (got, spans) = store.get_trace(&a, &theirs.id).await.unwrap().unwrap();
    assert_eq!(got, theirs, "still running, no usage");
    assert_eq!(spans.len(), 1);
    let (got, spans) = store.get_trace(&b, &mine.id).await.unwrap().unwrap();
    assert_eq!((got, spans.len()), (mine, 0));
    assert_eq!(store.get_trace(&a, "no-such-trace").await.unwrap(), None);
}

async fn migration_3_adds_and_removes_the_trace_tables(db: &TestDb) {
    let store = &db.store;
    let t = default_tenant();
    store.migrate_to(2).await.unwrap();
    let err = store
        .create_trace(&new_trace(&t, "a1", "u1", "s1"))
        .await
        .unwrap_err();
    assert!(!matches!(err, StoreError::NotFound), "no table yet: {err}");
    store.migrate_to(3).await.unwrap();
    // Today's statements name later columns: the tables are checked as such.
    for table in ["traces", "spans", "usage_ledger"] {
        let count = db.raw.count(&format!("SELECT COUNT(*) FROM {table}")).await;
        assert_eq!(count.unwrap(), 0, "{table} exists at 3");
    }
    assert_eq!(store.migrate_to(2).await.unwrap(), vec![2]);
    for table in ["traces", "spans", "usage_ledger"] {
        let count = db.raw.count(&format!("SELECT COUNT(*) FROM {table}")).await;
        assert!(count.is_err(), "{table} is gone at 2");
    }
    // Today's tenant statements name schema 19's columns: count the rows.
    assert!(
        db.raw.count("SELECT COUNT(*) FROM tenants").await.unwrap() > 0,
        "the rest stays"
    );
    store.migrate_to(latest_version(&**store)).await.unwrap();
    assert!(
        store
            .list_traces(&t, &TraceFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    let trace = store
        .create_trace(&new_trace(&t, "a1", "u1", "s1"))
        .await
        .unwrap();
    store
        .add_span(&llm_span(&trace, trace.started_at))
        .await
        .unwrap();
    assert!(store.get_trace(&t, &trace.id).await.unwrap().is_some());
}

fn ledger_entry(tenant: &TenantId, cost_micros: i64) -> UsageEntry {
    UsageEntry {
        tenant_id: tenant.clone(),
        provider: "anthropic".to_owned(),
        model: "claude-test".to_owned(),
        agent_id: Some(AgentId::new("a1")),
        user_id: Some(UserId::new("u1")),
        usage: usage(10, 2, 0, 0),
        cost_micros,
    }
}

async fn a_batch_writes_traces_spans_ends_and_usage_in_order(store: Arc<dyn Store>) {
    let t = default_tenant();
    assert_eq!(store.write_traces(&[]).await.unwrap(), 0, "nothing to do");
    let first = exoclaw_store::new_trace_row(&new_trace(&t, "a1", "u1", "s1")).unwrap();
    let mut second = exoclaw_store::new_trace_row(&new_trace(&t, "a1", "u2", "s2")).unwrap();
    second.started_at = first.started_at + 1;
    let llm = exoclaw_store::new_span_row(&llm_span(&first, first.started_at)).unwrap();
    let tool = exoclaw_store::new_span_row(&tool_span(&first, first.started_at + 5)).unwrap();
    let ended_at = first.started_at + 900;
    let writes = vec![
        TraceWrite::Start(first.clone()),
        TraceWrite::Span(llm.clone()),
        TraceWrite::Usage {
            entry: ledger_entry(&t, 4_321),
            at: first.started_at + 800,
        },
        TraceWrite::Start(second.clone()),
        TraceWrite::Span(tool.clone()),
        TraceWrite::Finish {
            tenant_id: t.clone(),
            id: first.id.clone(),
            end: ok_end(4_321),
            ended_at,
        },
    ];
    assert_eq!(store.write_traces(&writes).await.unwrap(), 0);

    let (got, spans) = store.get_trace(&t, &first.id).await.unwrap().unwrap();
    assert_eq!(spans, vec![llm, tool], "the spans as built, ids kept");
    assert_eq!(
        got,
        Trace {
            status: "ok".to_owned(),
            ended_at: Some(ended_at),
            usage: usage(1200, 300, 1000, 200),
            cost_micros: 4_321,
            ..first.clone()
        }
    );
    let (running, _) = store.get_trace(&t, &second.id).await.unwrap().unwrap();
    assert_eq!(running, second, "a start without its end stays running");
    let listed = store
        .list_traces(&t, &TraceFilter::default())
        .await
        .unwrap();
    assert_eq!(ids(&listed), vec![second.id.as_str(), first.id.as_str()]);
    let scope = SpendScope::Agent(AgentId::new("a1"));
    assert_eq!(
        store
            .spend_since(&t, &scope, first.started_at + 800)
            .await
            .unwrap(),
        4_321,
        "the entry is at the time it was recorded"
    );
    assert_eq!(
        store
            .spend_since(&t, &scope, first.started_at + 801)
            .await
            .unwrap(),
        0
    );
}

async fn a_batch_skips_foreign_and_unstorable_writes(store: Arc<dyn Store>) {
    let (a, b) = two_tenants(&*store).await;
    let mine = exoclaw_store::new_trace_row(&new_trace(&a, "a1", "u1", "s1")).unwrap();
    store
        .write_traces(&[TraceWrite::Start(mine.clone())])
        .await
        .unwrap();
    // b's span and end naming a's trace, a span of no trace, a negative
    // cost and a token count too large: each skipped, the rest written.
    let mut foreign_span = exoclaw_store::new_span_row(&llm_span(&mine, 1)).unwrap();
    foreign_span.tenant_id = b.clone();
    let mut orphan = exoclaw_store::new_span_row(&llm_span(&mine, 2)).unwrap();
    orphan.trace_id = "no-such-trace".to_owned();
    let mut negative = exoclaw_store::new_span_row(&llm_span(&mine, 3)).unwrap();
    negative.cost_micros = -1;
    let mut huge = ledger_entry(&a, 1);
    huge.usage.input_tokens = u64::MAX;
    let good = exoclaw_store::new_span_row(&llm_span(&mine, 4)).unwrap();
    let writes = vec![
        TraceWrite::Span(foreign_span),
        TraceWrite::Finish {
            tenant_id: b.clone(),
            id: mine.id.clone(),
            end: ok_end(1),
            ended_at: mine.started_at + 1,
        },
        TraceWrite::Span(orphan),
        TraceWrite::Span(negative),
        TraceWrite::Usage { entry: huge, at: 1 },
        TraceWrite::Span(good.clone()),
        TraceWrite::Usage {
            entry: ledger_entry(&a, 7),
            at: 1,
        },
    ];
    assert_eq!(store.write_traces(&writes).await.unwrap(), 5);
    let (got, spans) = store.get_trace(&a, &mine.id).await.unwrap().unwrap();
    assert_eq!(got, mine, "b's end changed nothing");
    assert_eq!(spans, vec![good]);
    assert!(store.get_trace(&b, &mine.id).await.unwrap().is_none());
    let scope = SpendScope::Agent(AgentId::new("a1"));
    assert_eq!(store.spend_since(&a, &scope, 0).await.unwrap(), 7);
    assert_eq!(store.spend_since(&b, &scope, 0).await.unwrap(), 0);
}

/// Many rows of every kind (the SQLite store sends each kind as one
/// array), foreign ones spread through.
async fn a_large_batch_writes_every_row(store: Arc<dyn Store>) {
    let (a, b) = two_tenants(&*store).await;
    let mut writes = Vec::new();
    let mut traces = Vec::new();
    for i in 0..100 {
        let t = exoclaw_store::new_trace_row(&new_trace(&a, "a1", "u1", "s1")).unwrap();
        writes.push(TraceWrite::Start(t.clone()));
        writes.push(TraceWrite::Span(
            exoclaw_store::new_span_row(&llm_span(&t, i)).unwrap(),
        ));
        if i % 20 == 0 {
            let mut foreign = exoclaw_store::new_span_row(&llm_span(&t, i)).unwrap();
            foreign.tenant_id = b.clone();
            writes.push(TraceWrite::Span(foreign));
        }
        writes.push(TraceWrite::Usage {
            entry: ledger_entry(&a, 3),
            at: 10,
        });
        writes.push(TraceWrite::Finish {
            tenant_id: a.clone(),
            id: t.id.clone(),
            end: ok_end(3),
            ended_at: 20,
        });
        traces.push(t);
    }
    assert_eq!(store.write_traces(&writes).await.unwrap(), 5);
    for t in &traces {
        let (got, spans) = store.get_trace(&a, &t.id).await.unwrap().unwrap();
        assert_eq!(
            (got.status.as_str(), got.ended_at, spans.len()),
            ("ok", Some(20), 1)
        );
    }
    let scope = SpendScope::Agent(AgentId::new("a1"));
    assert_eq!(store.spend_since(&a, &scope, 0).await.unwrap(), 300);
}

/// As two ends written one after the other: the later one stays, and a
/// foreign tenant's two ends are both skipped.
async fn a_trace_ended_twice_in_a_batch_keeps_the_later_end(store: Arc<dyn Store>) {
    let (a, b) = two_tenants(&*store).await;
    let t = exoclaw_store::new_trace_row(&new_trace(&a, "a1", "u1", "s1")).unwrap();
    let end = |tenant: &TenantId, cost, ended_at| TraceWrite::Finish {
        tenant_id: tenant.clone(),
        id: t.id.clone(),
        end: ok_end(cost),
        ended_at,
    };
    let writes = vec![
        TraceWrite::Start(t.clone()),
        end(&a, 1, 10),
        end(&b, 2, 20),
        end(&a, 3, 30),
        end(&b, 4, 40),
    ];
    assert_eq!(store.write_traces(&writes).await.unwrap(), 2);
    let (got, _) = store.get_trace(&a, &t.id).await.unwrap().unwrap();
    assert_eq!((got.cost_micros, got.ended_at), (3, Some(30)));
}

async fn a_restart_interrupts_only_its_own_running_traces(store: Arc<dyn Store>) {
    let t = default_tenant();
    let owned = |owner: Option<&str>| NewTrace {
        owner: owner.map(str::to_owned),
        ..new_trace(&t, "a1", "alice", "s1")
    };
    let mine = store.create_trace(&owned(Some("gw-a"))).await.unwrap();
    let done = store.create_trace(&owned(Some("gw-a"))).await.unwrap();
    let theirs = store.create_trace(&owned(Some("gw-b"))).await.unwrap();
    let nobody = store.create_trace(&owned(None)).await.unwrap();
    let end = TraceEnd {
        status: "ok".into(),
        error: None,
        usage: Usage::default(),
        cost_micros: 0,
    };
    store.finish_trace(&t, &done.id, &end).await.unwrap();
    let interrupted = store.interrupt_running_traces("gw-a", 42).await.unwrap();
    assert_eq!(interrupted.len(), 1);
    assert_eq!(interrupted[0].id, mine.id);
    assert_eq!(interrupted[0].status, "interrupted");
    assert_eq!(interrupted[0].ended_at, Some(42));
    assert!(interrupted[0].error.as_deref().unwrap().contains("stopped"));
    let status = |id: String| {
        let store = store.clone();
        let t = t.clone();
        async move { store.get_trace(&t, &id).await.unwrap().unwrap().0.status }
    };
    assert_eq!(status(mine.id).await, "interrupted");
    assert_eq!(status(done.id).await, "ok");
    assert_eq!(status(theirs.id).await, "running", "another instance's run");
    assert_eq!(status(nobody.id).await, "running");
    assert!(
        store
            .interrupt_running_traces("gw-a", 43)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn paging_with_before_id_skips_no_trace_of_one_millisecond(db: &TestDb) {
    // 25 traces, five per millisecond.
    let inserted = db
        .raw
        .exec(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 25) \
             INSERT INTO traces (id, tenant_id, name, status, started_at) \
             SELECT 'tie-' || (100 + i), 'default', 'chat', 'ok', 1000 + (i / 5) FROM n",
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 25) \
             INSERT INTO traces (id, tenant_id, name, status, started_at) \
             SELECT 'tie-' || (100 + i), 'default', 'chat', 'ok', 1000 + (i / 5) FROM n",
        )
        .await
        .unwrap();
    assert_eq!(inserted, 25);
    let t = default_tenant();
    let mut seen = Vec::new();
    let mut cursor: Option<(i64, String)> = None;
    loop {
        let filter = TraceFilter {
            before: cursor.as_ref().map(|c| c.0),
            before_id: cursor.as_ref().map(|c| c.1.clone()),
            limit: 3,
            ..TraceFilter::default()
        };
        let page = db.store.list_traces(&t, &filter).await.unwrap();
        if page.is_empty() {
            break;
        }
        let last = page.last().unwrap();
        cursor = Some((last.started_at, last.id.clone()));
        seen.extend(page.into_iter().map(|t| t.id));
    }
    let mut all: Vec<String> = (101..=125).map(|i| format!("tie-{i}")).collect();
    all.sort_by(|a, b| b.cmp(a));
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen.len(), 25, "every trace exactly once: {seen:?}");
    assert_eq!(sorted, all);
}
