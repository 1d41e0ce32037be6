//! Write-behind for the trace, span and usage rows of agent runs: the
//! [`TraceStore`] and [`UsageStore`] the runtime hands to the agent loop and
//! the budget decorator. Writes go into a bounded queue and return at once;
//! one task (the flusher) commits them in order, many per transaction
//! ([`TraceBatchStore::write_traces`]), every [`LINGER`] or [`MAX_BATCH`]
//! writes. A completion then waits for 3 write transactions (session, user
//! message, assistant message) instead of 7, and the 4 rows of many turns
//! share one commit.
//!
//! What stays true:
//! - **Reads see every write made before them**: `list_traces` and
//!   `get_trace` first wait until the queue is committed up to that point;
//!   `spend_since` adds the usage still queued (or being committed) to the
//!   stored sum, under a lock the flusher holds from commit to forgetting
//!   those entries, so a budget check never misses an entry nor counts it
//!   twice.
//! - **Nothing is dropped under load**: a full queue makes the writer wait
//!   (back-pressure); a write after [`WriteBehind::shutdown`] is written at
//!   once.
//! - **Nothing is lost on shutdown**: [`WriteBehind::shutdown`] commits the
//!   queue within the grace period before the store closes.
//! - A failed batch is retried, then written one write at a time, so one bad
//!   row costs only itself; a row that still cannot be written is logged at
//!   error level.
//!
//! What changes: `finish_trace` and `add_span` cannot say `NotFound` (the
//! write happens later; a span or end of another tenant's trace is skipped by
//! the store and logged), and `create_trace` fails only when the random
//! number generator does. The agent loop only names traces it created.

use crate::supervisor::{Policy, Supervisor, Task};
use async_trait::async_trait;
use exoclaw_core::sparse::ShrinkWhenSparse as _;
use exoclaw_core::store::{
    Store, StoreError, StoreResult, TraceStore, UsageReportStore, UsageStore,
};
use exoclaw_core::trace::{
    BudgetWindow, NewReservation, NewSpan, NewTrace, Reserved, Span, SpendScope, Trace, TraceEnd,
    TraceFilter, TraceWrite, UsageBucket, UsageEntry, UsageQuery,
};
use exoclaw_core::{TenantId, UnixMillis};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{RwLock, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Writes waiting to be committed, at most; a writer finding the queue full
/// waits for room.
pub const QUEUE_CAPACITY: usize = 8192;
/// Writes committed in one transaction, at most.
pub const MAX_BATCH: usize = 1024;
/// The batch buffer kept between bursts, at most (in `Op`s); a larger one is
/// released when the queue runs empty.
const IDLE_BATCH_CAPACITY: usize = 64;
/// How long the flusher waits for more writes after the first of a batch:
/// the longest a row stays only in memory when nobody reads it.
pub const LINGER: Duration = Duration::from_millis(5);
/// Pauses before retrying a failed batch (then it is written one by one).
const RETRY_PAUSES: [Duration; 2] = [Duration::from_millis(50), Duration::from_millis(500)];

#[expect(
    clippy::large_enum_variant,
    reason = "writes are nearly all ops; boxing them would allocate once more per write"
)]
enum Op {
    /// `usage`: the key of the entry in [`Shared::pending`].
    Write {
        write: TraceWrite,
        usage: Option<u64>,
    },
    /// Answered once every op before it is committed.
    Flush(oneshot::Sender<()>),
}

#[derive(Default)]
struct Pending {
    next: u64,
    entries: HashMap<u64, (UsageEntry, UnixMillis)>,
}

struct Shared {
    store: Arc<dyn Store>,
    /// Usage queued or being committed, counted into `spend_since`.
    pending: Mutex<Pending>,
    /// Read by `spend_since`, written by the flusher from a commit with
    /// usage in it until those entries left `pending`.
    spend: RwLock<()>,
}

/// The write-behind decorator; see the module docs. Owns its flusher task.
pub struct WriteBehind {
    shared: Arc<Shared>,
    queue: mpsc::Sender<Op>,
    task: Mutex<Option<Task>>,
}

impl WriteBehind {
    /// Starts the flusher (a critical task of `supervisor`: losing it would
    /// silently lose traces and the usage budgets count).
    pub fn start(store: Arc<dyn Store>, supervisor: &Supervisor) -> Arc<Self> {
        Self::with_capacity(store, QUEUE_CAPACITY, supervisor)
    }

    /// [`Self::start`] with a queue of `capacity` writes.
    fn with_capacity(store: Arc<dyn Store>, capacity: usize, supervisor: &Supervisor) -> Arc<Self> {
        let shared = Arc::new(Shared {
            store,
            pending: Mutex::new(Pending::default()),
            spend: RwLock::new(()),
        });
        let (queue, rx) = mpsc::channel(capacity.max(1));
        let flushing = shared.clone();
        let task = supervisor.start(
            "trace.write_behind",
            Policy::Critical,
            move |stop| async move {
                flusher(flushing, rx, stop).await;
                Ok(())
            },
        );
        Arc::new(Self {
            shared,
            queue,
            task: Mutex::new(Some(task)),
        })
    }

    /// Waits until every write queued before this call is committed (or
    /// given up on).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.queue.send(Op::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Commits the queue and stops the flusher, within `grace`; later
    /// writes are written at once. Call it before closing the store.
    pub async fn shutdown(&self, grace: Duration) {
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(task) = task else { return };
        if !task.stop(grace).await {
            tracing::error!(
                grace_ms = grace.as_millis(),
                "trace and usage rows still queued at the end of the grace period were not written"
            );
        }
    }

    async fn push(&self, write: TraceWrite, usage: Option<u64>) {
        if let Err(mpsc::error::SendError(Op::Write { write, usage })) =
            self.queue.send(Op::Write { write, usage }).await
        {
            // The flusher has stopped (shutdown): write it now.
            commit(&self.shared, vec![write], usage.into_iter().collect()).await;
        }
    }
}

#[async_trait]
impl TraceStore for WriteBehind {
    async fn create_trace(&self, trace: &NewTrace) -> StoreResult<Trace> {
        let created = exoclaw_store::new_trace_row(trace)?;
        self.push(TraceWrite::Start(created.clone()), None).await;
        Ok(created)
    }

    async fn finish_trace(&self, tenant: &TenantId, id: &str, end: &TraceEnd) -> StoreResult<()> {
        let write = TraceWrite::Finish {
            tenant_id: tenant.clone(),
            id: id.to_owned(),
            end: end.clone(),
            ended_at: exoclaw_store::now_millis(),
        };
        self.push(write, None).await;
        Ok(())
    }

    async fn add_span(&self, span: &NewSpan) -> StoreResult<Span> {
        let span = exoclaw_store::new_span_row(span)?;
        self.push(TraceWrite::Span(span.clone()), None).await;
        Ok(span)
    }

    async fn list_traces(
        &self,
        tenant: &TenantId,
        filter: &TraceFilter,
    ) -> StoreResult<Vec<Trace>> {
        self.flush().await;
        self.shared.store.list_traces(tenant, filter).await
    }

    async fn get_trace(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> StoreResult<Option<(Trace, Vec<Span>)>> {
        self.flush().await;
        self.shared.store.get_trace(tenant, id).await
    }
}

#[async_trait]
impl UsageStore for WriteBehind {
    async fn record_usage(&self, entry: &UsageEntry) -> StoreResult<()> {
        let at = exoclaw_store::now_millis();
        let key = {
            let mut p = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let key = p.next;
            p.next += 1;
            p.entries.insert(key, (entry.clone(), at));
            key
        };
        let write = TraceWrite::Usage {
            entry: entry.clone(),
            at,
        };
        self.push(write, Some(key)).await;
        Ok(())
    }

    async fn spend_since(
        &self,
        tenant: &TenantId,
        scope: &SpendScope,
        since: UnixMillis,
    ) -> StoreResult<i64> {
        let _reading = self.shared.spend.read().await;
        let queued: i64 = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entries
            .values()
            .filter(|(e, at)| *at >= since && &e.tenant_id == tenant && in_scope(e, scope))
            .map(|(e, _)| e.cost_micros.max(0))
            .fold(0i64, i64::saturating_add);
        let stored = self.shared.store.spend_since(tenant, scope, since).await?;
        Ok(stored.saturating_add(queued))
    }

    /// Straight to the store: a call under a budget reserves and settles
    /// there, in transactions of their own (never queued), so every
    /// gateway on the database sees the same sums.
    async fn reserve(
        &self,
        reservation: &NewReservation,
        windows: &[BudgetWindow],
    ) -> StoreResult<Reserved> {
        self.shared.store.reserve(reservation, windows).await
    }

    async fn settle(
        &self,
        tenant: &TenantId,
        id: &str,
        entry: Option<&UsageEntry>,
    ) -> StoreResult<()> {
        self.shared.store.settle(tenant, id, entry).await
    }
}

fn in_scope(e: &UsageEntry, scope: &SpendScope) -> bool {
    match scope {
        SpendScope::Model(m) => &e.model == m,
        SpendScope::Agent(a) => e.agent_id.as_ref() == Some(a),
        SpendScope::User(u) => e.user_id.as_ref() == Some(u),
        SpendScope::Tenant => true,
    }
}

/// Takes batches off the queue until stopped, then commits what is left.
/// Reports read what is queued too: the queue is committed first.
#[async_trait]
impl UsageReportStore for WriteBehind {
    async fn usage_by_day(
        &self,
        tenant: &TenantId,
        q: &UsageQuery,
    ) -> StoreResult<Vec<UsageBucket>> {
        self.flush().await;
        self.shared.store.usage_by_day(tenant, q).await
    }

    async fn budget_used(
        &self,
        tenant: &TenantId,
        window: &BudgetWindow,
        now: UnixMillis,
    ) -> StoreResult<i64> {
        self.flush().await;
        self.shared.store.budget_used(tenant, window, now).await
    }
}

async fn flusher(shared: Arc<Shared>, mut rx: mpsc::Receiver<Op>, stop: CancellationToken) {
    // Grown as a burst fills it, and dropped again once the queue is empty: a
    // full batch of `Op`s is about 300 KiB an idle gateway need not hold.
    let mut ops = Vec::new();
    loop {
        let stopping = tokio::select! {
            biased;
            n = rx.recv_many(&mut ops, MAX_BATCH) => {
                if n == 0 {
                    return;
                }
                false
            }
            () = stop.cancelled() => true,
        };
        if stopping {
            rx.close();
            while let Some(op) = rx.recv().await {
                ops.push(op);
                if ops.len() >= MAX_BATCH {
                    apply(&shared, &mut ops).await;
                }
            }
            apply(&shared, &mut ops).await;
            return;
        }
        let flush_asked = ops.iter().any(|op| matches!(op, Op::Flush(_)));
        if ops.len() < MAX_BATCH && !flush_asked {
            tokio::select! {
                biased;
                () = stop.cancelled() => {}
                () = tokio::time::sleep(LINGER) => {}
            }
            while ops.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(op) => ops.push(op),
                    Err(_) => break,
                }
            }
        }
        apply(&shared, &mut ops).await;
        if rx.is_empty() && ops.capacity() > IDLE_BATCH_CAPACITY {
            ops = Vec::new();
        }
    }
}

/// Commits the writes of `ops` (emptying it), then answers its flushes.
async fn apply(shared: &Shared, ops: &mut Vec<Op>) {
    let mut writes = Vec::with_capacity(ops.len());
    let mut keys = Vec::new();
    let mut flushes = Vec::new();
    for op in ops.drain(..) {
        match op {
            Op::Write { write, usage } => {
                writes.push(write);
                keys.extend(usage);
            }
            Op::Flush(tx) => flushes.push(tx),
        }
    }
    commit(shared, writes, keys).await;
    for tx in flushes {
        let _ = tx.send(());
    }
}

/// Writes `writes` in one batch (retried, then one by one), and forgets the
/// pending usage `keys` in the same critical section as the commit.
async fn commit(shared: &Shared, writes: Vec<TraceWrite>, keys: Vec<u64>) {
    if writes.is_empty() {
        return;
    }
    let _writing = if keys.is_empty() {
        None
    } else {
        Some(shared.spend.write().await)
    };
    let mut result = shared.store.write_traces(&writes).await;
    for pause in RETRY_PAUSES {
        match &result {
            Err(e) if e.is_retryable() => {
                tokio::time::sleep(pause).await;
                result = shared.store.write_traces(&writes).await;
            }
            _ => break,
        }
    }
    match result {
        Ok(0) => {}
        Ok(skipped) => log_skipped(skipped),
        Err(e) => {
            tracing::warn!(error = %e, writes = writes.len(), "a batch of trace and usage rows failed; writing them one by one");
            for write in &writes {
                match shared.store.write_traces(std::slice::from_ref(write)).await {
                    Ok(0) => {}
                    Ok(skipped) => log_skipped(skipped),
                    Err(e) => lost(write, &e),
                }
            }
        }
    }
    let mut p = shared
        .pending
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    for key in keys {
        p.entries.remove(&key);
    }
    p.entries.shrink_when_sparse();
}

fn log_skipped(skipped: usize) {
    tracing::warn!(
        skipped,
        "trace writes skipped: a span or end of another tenant's or no trace, or an unstorable value"
    );
}

fn lost(write: &TraceWrite, e: &StoreError) {
    match write {
        TraceWrite::Usage { entry, .. } => tracing::error!(
            model = %entry.model,
            cost_micros = entry.cost_micros,
            error = %e,
            "cannot record usage"
        ),
        TraceWrite::Start(t) => tracing::error!(trace = %t.id, error = %e, "cannot record a trace"),
        TraceWrite::Span(s) => {
            tracing::error!(trace = %s.trace_id, error = %e, "cannot record a span")
        }
        TraceWrite::Finish { id, .. } => {
            tracing::error!(trace = %id, error = %e, "cannot record the end of a trace")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_store;
    use exoclaw_core::provider::Usage;
    use exoclaw_core::trace::SpanKind;
    use exoclaw_core::{AgentId, UserId};

    fn tenant() -> TenantId {
        TenantId::new(exoclaw_core::DEFAULT_TENANT)
    }

    fn new_trace() -> NewTrace {
        NewTrace {
            tenant_id: tenant(),
            agent_id: Some(AgentId::new("a1")),
            user_id: Some(UserId::new("u1")),
            session_id: None,
            name: "chat".to_owned(),
            owner: None,
        }
    }

    fn span(trace: &Trace) -> NewSpan {
        NewSpan {
            trace_id: trace.id.clone(),
            tenant_id: trace.tenant_id.clone(),
            kind: SpanKind::Llm,
            name: "m1".to_owned(),
            provider: Some("openai".to_owned()),
            status: "ok".to_owned(),
            error: None,
            started_at: trace.started_at,
            latency_ms: 3,
            usage: Usage::default(),
            cost_micros: 5,
            attributes: serde_json::Value::Null,
        }
    }

    fn entry(cost_micros: i64) -> UsageEntry {
        UsageEntry {
            tenant_id: tenant(),
            provider: "openai".to_owned(),
            model: "m1".to_owned(),
            agent_id: Some(AgentId::new("a1")),
            user_id: Some(UserId::new("u1")),
            usage: Usage::default(),
            cost_micros,
        }
    }

    fn ok_end() -> TraceEnd {
        TraceEnd {
            status: "ok".to_owned(),
            error: None,
            usage: Usage::default(),
            cost_micros: 5,
        }
    }

    fn model() -> SpendScope {
        SpendScope::Model("m1".to_owned())
    }

    #[tokio::test]
    async fn reads_see_every_write_made_before_them() {
        for t in test_store::all().await {
            let wb = WriteBehind::start(t.store.clone(), &Supervisor::new());
            let trace = wb.create_trace(&new_trace()).await.unwrap();
            let s = wb.add_span(&span(&trace)).await.unwrap();
            wb.record_usage(&entry(5)).await.unwrap();
            wb.finish_trace(&tenant(), &trace.id, &ok_end())
                .await
                .unwrap();
            assert_eq!(
                wb.spend_since(&tenant(), &model(), 0).await.unwrap(),
                5,
                "{}: queued or stored, counted once",
                t.name
            );
            let (got, spans) = wb.get_trace(&tenant(), &trace.id).await.unwrap().unwrap();
            assert_eq!(
                (got.status.as_str(), got.cost_micros),
                ("ok", 5),
                "{}",
                t.name
            );
            assert_eq!(spans, vec![s], "{}", t.name);
            let listed = wb
                .list_traces(&tenant(), &TraceFilter::default())
                .await
                .unwrap();
            assert_eq!(listed, vec![got], "{}", t.name);
            // After a read everything is in the store itself.
            assert_eq!(
                t.store.spend_since(&tenant(), &model(), 0).await.unwrap(),
                5,
                "{}",
                t.name
            );
            assert_eq!(
                wb.spend_since(&tenant(), &model(), 0).await.unwrap(),
                5,
                "{}",
                t.name
            );
            let other = SpendScope::User(UserId::new("u2"));
            assert_eq!(wb.spend_since(&tenant(), &other, 0).await.unwrap(), 0);
            wb.shutdown(Duration::from_secs(5)).await;
            t.finish().await;
        }
    }

    /// Usage recorded while a commit waits piles up in `pending`; once it is
    /// committed, the table gives back the room it grew to.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pending_usage_gives_back_the_room_of_a_burst() {
        for t in test_store::all().await {
            let wb = WriteBehind::start(t.store.clone(), &Supervisor::new());
            // A budget read in progress holds the flusher's commit back.
            let reading = wb.shared.spend.read().await;
            let mut burst = tokio::task::JoinSet::new();
            for _ in 0..1_000 {
                let wb = wb.clone();
                burst.spawn(async move { wb.record_usage(&entry(1)).await.unwrap() });
            }
            let pending = || wb.shared.pending.lock().unwrap().entries.len();
            for _ in 0..5_000 {
                if pending() == 1_000 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            assert_eq!(pending(), 1_000, "{}", t.name);
            drop(reading);
            while burst.join_next().await.is_some() {}
            wb.flush().await;
            {
                let p = wb.shared.pending.lock().unwrap();
                assert!(p.entries.is_empty(), "{}", t.name);
                assert!(
                    p.entries.capacity() <= 4 * exoclaw_core::sparse::KEEP_CAPACITY,
                    "{}: room for {}",
                    t.name,
                    p.entries.capacity()
                );
            }
            assert_eq!(wb.spend_since(&tenant(), &model(), 0).await.unwrap(), 1_000);
            wb.shutdown(Duration::from_secs(5)).await;
            t.finish().await;
        }
    }

    /// Budget reads while usage is recorded and committed: never less than
    /// what was recorded before the read started, never more than what was
    /// recorded before it ended (so nothing is missed or counted twice).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn spend_is_exact_while_the_queue_commits() {
        for t in test_store::all().await {
            let wb = WriteBehind::start(t.store.clone(), &Supervisor::new());
            let recorded = Arc::new(std::sync::atomic::AtomicI64::new(0));
            let writer = {
                let (wb, recorded) = (wb.clone(), recorded.clone());
                #[expect(
                    clippy::disallowed_methods,
                    reason = "a test's own concurrent load, awaited by the test"
                )]
                tokio::spawn(async move {
                    for _ in 0..300 {
                        wb.record_usage(&entry(1)).await.unwrap();
                        recorded.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        tokio::task::yield_now().await;
                    }
                })
            };
            while !writer.is_finished() {
                let low = recorded.load(std::sync::atomic::Ordering::SeqCst);
                let spent = wb.spend_since(&tenant(), &model(), 0).await.unwrap();
                let high = recorded.load(std::sync::atomic::Ordering::SeqCst);
                assert!(
                    (low..=high).contains(&spent),
                    "{}: {spent} outside {low}..={high}",
                    t.name
                );
            }
            writer.await.unwrap();
            assert_eq!(wb.spend_since(&tenant(), &model(), 0).await.unwrap(), 300);
            wb.shutdown(Duration::from_secs(5)).await;
            assert_eq!(
                t.store.spend_since(&tenant(), &model(), 0).await.unwrap(),
                300
            );
            t.finish().await;
        }
    }

    #[tokio::test]
    async fn shutdown_commits_the_queue_and_later_writes_go_straight_to_the_store() {
        let t = test_store::sqlite().await;
        let wb = WriteBehind::start(t.store.clone(), &Supervisor::new());
        let mut ids = Vec::new();
        for _ in 0..50 {
            let trace = wb.create_trace(&new_trace()).await.unwrap();
            wb.add_span(&span(&trace)).await.unwrap();
            wb.finish_trace(&tenant(), &trace.id, &ok_end())
                .await
                .unwrap();
            ids.push(trace.id);
        }
        wb.record_usage(&entry(7)).await.unwrap();
        wb.shutdown(Duration::from_secs(5)).await;
        for id in &ids {
            let (trace, spans) = t.store.get_trace(&tenant(), id).await.unwrap().unwrap();
            assert_eq!((trace.status.as_str(), spans.len()), ("ok", 1));
        }
        assert_eq!(
            t.store.spend_since(&tenant(), &model(), 0).await.unwrap(),
            7
        );

        let late = wb.create_trace(&new_trace()).await.unwrap();
        wb.record_usage(&entry(1)).await.unwrap();
        assert!(
            t.store
                .get_trace(&tenant(), &late.id)
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(
            t.store.spend_since(&tenant(), &model(), 0).await.unwrap(),
            8
        );
        assert_eq!(wb.spend_since(&tenant(), &model(), 0).await.unwrap(), 8);
        wb.shutdown(Duration::from_secs(1)).await;
        t.finish().await;
    }

    /// Far more concurrent writers than the queue holds: they wait for room,
    /// and every row arrives.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_makes_writers_wait_and_loses_nothing() {
        let t = test_store::sqlite().await;
        let wb = WriteBehind::with_capacity(t.store.clone(), 4, &Supervisor::new());
        let n: i32 = 800;
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let wb = wb.clone();
                #[expect(
                    clippy::disallowed_methods,
                    reason = "a test's own concurrent load, awaited by the test"
                )]
                tokio::spawn(async move {
                    for _ in 0..n / 8 {
                        wb.record_usage(&entry(1)).await.unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        wb.flush().await;
        let total = i64::from(n / 8 * 8);
        assert_eq!(
            t.store.spend_since(&tenant(), &model(), 0).await.unwrap(),
            total
        );
        wb.shutdown(Duration::from_secs(5)).await;
        t.finish().await;
    }
}
