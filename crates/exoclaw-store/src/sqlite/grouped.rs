//! Group commit of the small single-row writes of `port::grouped` (an
//! inbound id seen, a user, a channel sender's mapping, an outbox message,
//! its mark as sent): writes queued at the same moment go to one task,
//! which commits them in one transaction and one round trip to the writer
//! connection.
//!
//! A channel message from a new sender made five such writes besides its
//! turn's, each a transaction of its own and a turn of its own on the one
//! writer (held until its task ran again); at 1,000 webhook messages a
//! second the writer was the limit (`cargo xtask bench channels`,
//! BENCHMARKS.md). Each kind is one statement of fixed text reading its
//! rows from a JSON array (`json_each`), so a group is always the same
//! text, `BEGIN IMMEDIATE; <five statements>; COMMIT`, with an empty array
//! for a kind that has no write in it; each statement's `RETURNING` names
//! its kind first, so the rows are told apart.
//!
//! Each write keeps its own statement's outcome: within a group rows are
//! inserted in queue order, so of two writes of one key the first inserts
//! and the second is told it conflicted, as if they had run one after the
//! other. When a group fails as a whole (a foreign key, a full disk) it is
//! rolled back and each write runs again alone, so one caller's error is
//! never another's. The task owns the transaction: a caller that goes away
//! cannot leave it half-done.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};

use exoclaw_core::store::{StoreError, StoreResult};
use serde_json::{Value, json};
use sqlx::Row as _;
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use tokio::sync::{mpsc, oneshot};

use super::writer::Writer;
use crate::error;
use crate::port::channel::outbox_cols;
use crate::port::grouped::{Done, Small};

/// Writes in one group at most.
const MAX_GROUP: usize = 64;
/// Writes waiting for the task at most; callers beyond wait to enqueue.
const QUEUE: usize = 1024;

/// Each kind's statement, one `?`: a JSON array of rows, each an array of
/// the kind's values in order (see [`row_of`]).
const INBOUND: &str = "INSERT INTO channel_inbound (tenant_id, channel, platform_id, seen_at) \
     SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each(?) WHERE true \
     ON CONFLICT (tenant_id, channel, platform_id) DO NOTHING \
     RETURNING 'inbound' AS kind, tenant_id, channel, platform_id";
const USER: &str = "INSERT INTO users (id, tenant_id, name, role, disabled, created_at) \
     SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, FALSE, value ->> 4 \
     FROM json_each(?) WHERE true ON CONFLICT DO NOTHING RETURNING 'user' AS kind, id";
const SENDER: &str = "INSERT INTO channel_senders (tenant_id, channel, sender_id, user_id, \
     created_at) SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4 \
     FROM json_each(?) WHERE true ON CONFLICT (tenant_id, channel, sender_id) DO NOTHING";
const OUTBOX: &str = concat!(
    "INSERT INTO channel_outbox (",
    outbox_cols!(),
    ", file_bytes) SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, \
     value ->> 5, 'pending', 0, value ->> 6, NULL, NULL, value ->> 6, NULL, NULL, NULL, NULL, \
     NULL, NULL FROM json_each(?) WHERE true \
     ON CONFLICT (tenant_id, channel, idempotency_key) DO NOTHING RETURNING 'outbox' AS kind, ",
    outbox_cols!()
);
const SENT: &str = "UPDATE channel_outbox SET status = 'sent', platform_id = j.value ->> 2, \
     sent_at = j.value ->> 3, file_bytes = NULL, claimed_by = NULL, claimed_until = NULL \
     FROM json_each(?) AS j WHERE channel_outbox.tenant_id = j.value ->> 0 \
     AND channel_outbox.id = j.value ->> 1 AND channel_outbox.status = 'pending' \
     RETURNING 'sent' AS kind, tenant_id, id";

/// The statements in the order a group runs them (and binds their arrays).
const KINDS: [&str; 5] = [INBOUND, USER, SENDER, OUTBOX, SENT];

/// A group: every kind's statement in one transaction.
static GROUP: LazyLock<String> = LazyLock::new(|| {
    let mut sql = String::from("BEGIN IMMEDIATE;");
    for statement in KINDS {
        sql.push(' ');
        sql.push_str(statement);
        sql.push(';');
    }
    sql.push_str(" COMMIT;");
    sql
});

struct Job {
    write: Small,
    reply: oneshot::Sender<StoreResult<Done>>,
}

/// The handle the store keeps (clones share the task); the task ends when
/// the last handle is dropped.
#[derive(Clone)]
pub(crate) struct Grouped {
    jobs: mpsc::Sender<Job>,
    /// Groups of more than one write committed as one transaction.
    #[cfg_attr(not(test), expect(dead_code, reason = "read by the tests"))]
    pub(crate) groups: Arc<AtomicU64>,
}

impl Grouped {
    /// Starts the grouping task on the current runtime.
    pub(crate) fn start(writer: Arc<Writer>) -> Self {
        let (jobs, rx) = mpsc::channel(QUEUE);
        let groups = Arc::new(AtomicU64::new(0));
        #[expect(
            clippy::disallowed_methods,
            reason = "owned by the handles: it ends when the last Grouped is dropped, and every job's caller gets its outcome"
        )]
        tokio::spawn(run(writer, rx, groups.clone()));
        Self { jobs, groups }
    }

    /// Queues `write` and waits for what it did.
    pub(crate) async fn write(&self, write: Small) -> StoreResult<Done> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { write, reply })
            .await
            .map_err(|_| StoreError::Unavailable("the store is closed".to_owned()))?;
        answer
            .await
            .map_err(|_| StoreError::Other("the store's grouped-write task stopped".to_owned()))?
    }
}

async fn run(writer: Arc<Writer>, mut rx: mpsc::Receiver<Job>, groups: Arc<AtomicU64>) {
    let mut jobs = Vec::with_capacity(MAX_GROUP);
    while rx.recv_many(&mut jobs, MAX_GROUP).await > 0 {
        let writes: Vec<&Small> = jobs.iter().map(|j| &j.write).collect();
        let mut outcomes = write(&writer, &writes, &groups).await.into_iter();
        for job in jobs.drain(..) {
            let outcome = outcomes.next().unwrap_or_else(|| {
                Err(StoreError::Other(
                    "a grouped write got no outcome".to_owned(),
                ))
            });
            let _ = job.reply.send(outcome);
        }
    }
}

/// Writes `writes` in one transaction; when that fails (or there is only
/// one), each alone. One outcome per write, in order.
async fn write(writer: &Writer, writes: &[&Small], groups: &AtomicU64) -> Vec<StoreResult<Done>> {
    if writes.len() > 1 {
        match writer.acquire().await {
            Ok(mut conn) => match group(&mut conn, writes).await {
                Ok(rows) => {
                    groups.fetch_add(1, Ordering::Relaxed);
                    return outcomes(writes, rows);
                }
                Err(e) => {
                    tracing::debug!(error = %e, writes = writes.len(), "grouped write failed; writing one by one");
                }
            },
            Err(e) => {
                tracing::debug!(error = %e, "writer unavailable for a group; writing one by one");
            }
        }
    }
    let mut out = Vec::with_capacity(writes.len());
    for w in writes {
        out.push(alone(writer, w).await);
    }
    out
}

/// Every write of `writes` in one transaction; rolled back when any
/// statement fails. The rows the statements returned.
async fn group(conn: &mut SqliteConnection, writes: &[&Small]) -> StoreResult<Vec<SqliteRow>> {
    let mut arrays: [Vec<Value>; 5] = Default::default();
    // An update that matches several source rows takes any one of them: a
    // message marked twice keeps only its first mark (the later ones are
    // then told it was not pending, as they would have been one by one).
    let mut marked = HashSet::new();
    for w in writes {
        if let Small::Sent { tenant, id, .. } = w
            && !marked.insert((tenant, id))
        {
            continue;
        }
        let (kind, row) = row_of(w);
        arrays[kind].push(row);
    }
    let mut query = sqlx::query(GROUP.as_str());
    for rows in arrays {
        query = query.bind(Value::Array(rows).to_string());
    }
    match query.fetch_all(&mut *conn).await {
        Ok(rows) => Ok(rows),
        Err(e) => {
            // Whatever ran of it is undone before the connection is reused.
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            Err(error::sqlite(e))
        }
    }
}

/// One write in a transaction of its own (its kind's statement alone).
async fn alone(writer: &Writer, write: &Small) -> StoreResult<Done> {
    let (kind, row) = row_of(write);
    let rows = sqlx::query(KINDS[kind])
        .bind(Value::Array(vec![row]).to_string())
        .fetch_all(&mut *writer.acquire().await?)
        .await
        .map_err(error::sqlite)?;
    outcomes(&[write], rows)
        .pop()
        .unwrap_or_else(|| Err(StoreError::Other("a write got no outcome".to_owned())))
}

/// The index of `write`'s statement in [`KINDS`] and its row there.
fn row_of(write: &Small) -> (usize, Value) {
    match write {
        Small::Inbound {
            tenant,
            channel,
            platform_id,
            now,
        } => (0, json!([tenant, channel, platform_id, now])),
        Small::User {
            id,
            tenant,
            name,
            role,
            now,
        } => (1, json!([id, tenant, name, role, now])),
        Small::Sender {
            tenant,
            channel,
            sender_id,
            user,
            now,
        } => (2, json!([tenant, channel, sender_id, user, now])),
        Small::Outbox {
            tenant,
            id,
            channel,
            peer,
            text,
            idempotency_key,
            now,
        } => (
            3,
            json!([tenant, id, channel, peer, text, idempotency_key, now]),
        ),
        Small::Sent {
            tenant,
            id,
            platform_id,
            now,
        } => (4, json!([tenant, id, platform_id, now])),
    }
}

/// What each of `writes` did, given the rows their statements returned:
/// a returned key (the row's text columns, its kind first) goes to the
/// first write of that key, in order.
fn outcomes(writes: &[&Small], rows: Vec<SqliteRow>) -> Vec<StoreResult<Done>> {
    let mut returned: HashSet<Vec<String>> = HashSet::new();
    let mut outbox: HashMap<String, SqliteRow> = HashMap::new();
    for r in rows {
        let text = |i: usize| r.try_get::<String, _>(i).map_err(error::sqlite);
        let read = match text(0) {
            Ok(kind) if kind == "outbox" => text(2).map(|id| {
                outbox.insert(id, r);
            }),
            Ok(_) => (0..r.len())
                .map(text)
                .collect::<StoreResult<Vec<_>>>()
                .map(|key| {
                    returned.insert(key);
                }),
            Err(e) => Err(e),
        };
        if let Err(e) = read {
            let message = e.to_string();
            return writes
                .iter()
                .map(|_| Err(StoreError::Other(message.clone())))
                .collect();
        }
    }
    let mut take =
        |key: &[&str]| returned.remove(&key.iter().map(|k| (*k).to_owned()).collect::<Vec<_>>());
    writes
        .iter()
        .map(|w| match w {
            Small::Inbound {
                tenant,
                channel,
                platform_id,
                ..
            } => Ok(Done::Inbound(take(&[
                "inbound",
                tenant,
                channel,
                platform_id,
            ]))),
            Small::User { id, .. } => Ok(Done::User(take(&["user", id]))),
            Small::Sender { .. } => Ok(Done::Sender),
            Small::Outbox { id, .. } => outbox
                .remove(id)
                .map(|r| crate::row::outbox_message(&r).map(Box::new))
                .transpose()
                .map(Done::Outbox),
            Small::Sent { tenant, id, .. } => Ok(Done::Sent(take(&["sent", tenant, id]))),
        })
        .collect()
}

#[cfg(test)]
#[path = "grouped_tests.rs"]
mod tests;
