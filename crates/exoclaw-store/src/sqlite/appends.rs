//! Group commit of message appends: concurrent turns' appends are queued to
//! one task, which writes everything queued so far in a single transaction
//! and a single round trip to the writer connection.
//!
//! Every turn appends its user message and its answer through the one
//! writer connection; one at a time, each append paid its own transaction,
//! its own trips between the async tasks and the connection's thread, and
//! its own turn in the writer's queue, and at concurrency 64 that queue
//! limited completions per second (`cargo xtask bench proxy`). A batch is
//! `BEGIN IMMEDIATE; (INSERT .. RETURNING; UPDATE ..) x N; COMMIT`: each
//! message still gets `max(seq) + 1` of its session in order, an append to a
//! missing session still inserts nothing (`NotFound` for that caller only),
//! and when a batch fails as a whole it is rolled back and every append in
//! it runs again on its own, so one caller's error is never another's.
//!
//! The task owns the batch: a caller that goes away cannot leave a
//! transaction half-done on the connection.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use exoclaw_core::UnixMillis;
use exoclaw_core::store::{StoreError, StoreResult};
use sqlx::sqlite::SqliteConnection;
use tokio::sync::{mpsc, oneshot};

use super::writer::Writer;
use crate::error;

/// Appends written together at most (10 parameters each).
const MAX_BATCH: usize = 16;
/// Appends waiting for the task at most; callers beyond wait to enqueue.
const QUEUE: usize = 1024;

/// One message to append, and where its `seq` goes.
pub(crate) struct Append {
    pub id: String,
    pub role: String,
    pub content: String,
    pub meta: String,
    pub now: UnixMillis,
    pub tenant: String,
    pub session: String,
}

struct Job {
    append: Append,
    reply: oneshot::Sender<StoreResult<i64>>,
}

/// The handle the store keeps (clones share the task); the task ends when
/// the last handle is dropped.
#[derive(Clone)]
pub(crate) struct Appender {
    jobs: mpsc::Sender<Job>,
}

impl Appender {
    /// Starts the batching task on the current runtime.
    pub(crate) fn start(writer: Arc<Writer>) -> Self {
        let (jobs, rx) = mpsc::channel(QUEUE);
        #[expect(
            clippy::disallowed_methods,
            reason = "owned by the handles: it ends when the last Appender is dropped, and every job's caller gets its outcome"
        )]
        tokio::spawn(run(writer, rx));
        Self { jobs }
    }

    /// Appends one message; its `seq`, or `NotFound` when the session does
    /// not exist (in that tenant).
    pub(crate) async fn append(&self, append: Append) -> StoreResult<i64> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { append, reply })
            .await
            .map_err(|_| StoreError::Unavailable("the store is closed".to_owned()))?;
        answer
            .await
            .map_err(|_| StoreError::Other("the message append task stopped".to_owned()))?
    }
}

async fn run(writer: Arc<Writer>, mut rx: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let appends: Vec<&Append> = jobs.iter().map(|j| &j.append).collect();
        let results = write(&writer, &appends).await;
        for (job, result) in jobs.drain(..).zip(results) {
            let _ = job.reply.send(result);
        }
    }
}

/// The `seq` of each append, in order.
async fn write(writer: &Writer, appends: &[&Append]) -> Vec<StoreResult<i64>> {
    if appends.len() > 1 {
        match writer.acquire().await {
            Ok(mut conn) => match batch(&mut conn, appends).await {
                Ok(seqs) => return seqs,
                Err(e) => {
                    tracing::debug!(error = %e, appends = appends.len(), "batched append failed; appending one by one");
                }
            },
            Err(e) => {
                tracing::debug!(error = %e, "writer unavailable for a batch; appending one by one");
            }
        }
    }
    let mut out = Vec::with_capacity(appends.len());
    for append in appends {
        out.push(match writer.acquire().await {
            Ok(mut conn) => batch(&mut conn, &[append]).await.and_then(|mut seqs| {
                seqs.pop()
                    .unwrap_or_else(|| Err(StoreError::Other("no append result".to_owned())))
            }),
            Err(e) => Err(e),
        });
    }
    out
}

/// One transaction for all of `appends`; rolled back when any statement
/// fails (then the error is the batch's).
async fn batch(
    conn: &mut SqliteConnection,
    appends: &[&Append],
) -> StoreResult<Vec<StoreResult<i64>>> {
    let mut query = sqlx::query_as::<_, (String, i64)>(batch_sql(appends.len()));
    for a in appends {
        query = query
            .bind(&a.id)
            .bind(&a.role)
            .bind(&a.content)
            .bind(&a.meta)
            .bind(a.now)
            .bind(&a.tenant)
            .bind(&a.session)
            .bind(a.now)
            .bind(&a.tenant)
            .bind(&a.session);
    }
    match query.fetch_all(&mut *conn).await {
        Ok(rows) => {
            let seqs: HashMap<String, i64> = rows.into_iter().collect();
            Ok(appends
                .iter()
                .map(|a| seqs.get(&a.id).copied().ok_or(StoreError::NotFound))
                .collect())
        }
        Err(e) => {
            // Whatever ran of it is undone before the connection is reused.
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            Err(error::sqlite(e))
        }
    }
}

/// The statement text for `n` appends, built once per size.
fn batch_sql(n: usize) -> &'static str {
    static SQL: OnceLock<Vec<String>> = OnceLock::new();
    let all = SQL.get_or_init(|| (1..=MAX_BATCH).map(build_sql).collect());
    all.get(n.clamp(1, MAX_BATCH) - 1)
        .map_or("", String::as_str)
}

/// Plain `?` parameters, bound in order (10 per append): sqlx numbers
/// `?NNN` per statement, and a statement whose first parameter is not ?1
/// would be bound wrongly.
fn build_sql(n: usize) -> String {
    const ONE: &str = " INSERT INTO messages (id, tenant_id, session_id, seq, role, content, meta, \
         created_at) \
         SELECT ?, s.tenant_id, s.id, \
         COALESCE((SELECT MAX(m.seq) FROM messages m WHERE m.session_id = s.id), 0) + 1, \
         ?, ?, ?, ? FROM sessions s WHERE s.tenant_id = ? AND s.id = ? \
         RETURNING id, seq; \
         UPDATE sessions SET updated_at = ? WHERE tenant_id = ? AND id = ?;";
    let mut sql = String::from("BEGIN IMMEDIATE;");
    for _ in 0..n {
        sql.push_str(ONE);
    }
    sql.push_str(" COMMIT;");
    sql
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn writer_with_schema(dir: &tempfile::TempDir) -> Arc<Writer> {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.path().join("a.db"))
            .create_if_missing(true);
        let w = Writer::new(options, Duration::from_secs(5), Duration::from_secs(60));
        sqlx::raw_sql(
            "CREATE TABLE sessions (tenant_id TEXT, id TEXT, updated_at INTEGER); \
             CREATE TABLE messages (id TEXT PRIMARY KEY, tenant_id TEXT, session_id TEXT, \
             seq INTEGER, role TEXT, content TEXT, meta TEXT, created_at INTEGER, \
             UNIQUE (session_id, seq)); \
             INSERT INTO sessions VALUES ('t', 's', 0);",
        )
        .execute(&mut *w.acquire().await.unwrap())
        .await
        .unwrap();
        w
    }

    fn append(id: &str, session: &str) -> Append {
        Append {
            id: id.to_owned(),
            role: "user".to_owned(),
            content: "[]".to_owned(),
            meta: "{}".to_owned(),
            now: 7,
            tenant: "t".to_owned(),
            session: session.to_owned(),
        }
    }

    #[tokio::test]
    async fn a_batch_gives_each_append_its_own_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let w = writer_with_schema(&dir).await;
        let (a, b, c) = (
            append("m1", "s"),
            append("m2", "missing"),
            append("m3", "s"),
        );
        let out = write(&w, &[&a, &b, &c]).await;
        assert!(matches!(out[0], Ok(1)), "{:?}", out[0]);
        assert!(matches!(out[1], Err(StoreError::NotFound)), "{:?}", out[1]);
        assert!(matches!(out[2], Ok(2)), "{:?}", out[2]);
    }

    #[tokio::test]
    async fn a_failing_batch_is_replayed_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        let w = writer_with_schema(&dir).await;
        // The same id twice: the batch fails on the primary key, is rolled
        // back, and each append runs alone: only the duplicate fails.
        let (a, dup, c) = (append("m1", "s"), append("m1", "s"), append("m3", "s"));
        let out = write(&w, &[&a, &dup, &c]).await;
        assert!(matches!(out[0], Ok(1)), "{:?}", out[0]);
        assert!(out[1].is_err(), "{:?}", out[1]);
        assert!(matches!(out[2], Ok(2)), "{:?}", out[2]);
        let rows: Vec<(String, i64)> = sqlx::query_as("SELECT id, seq FROM messages ORDER BY seq")
            .fetch_all(&mut *w.acquire().await.unwrap())
            .await
            .unwrap();
        assert_eq!(rows, [("m1".to_owned(), 1), ("m3".to_owned(), 2)]);
        let updated: i64 = sqlx::query_scalar("SELECT updated_at FROM sessions")
            .fetch_one(&mut *w.acquire().await.unwrap())
            .await
            .unwrap();
        assert_eq!(updated, 7);
    }

    #[test]
    fn batch_sql_has_ten_parameters_per_append() {
        let sql = batch_sql(2);
        assert!(sql.starts_with("BEGIN IMMEDIATE;") && sql.ends_with(" COMMIT;"));
        assert_eq!(sql.matches("INSERT INTO messages").count(), 2);
        assert_eq!(sql.matches('?').count(), 20);
        assert_eq!(
            batch_sql(MAX_BATCH).matches("RETURNING id, seq").count(),
            MAX_BATCH
        );
    }
}
