//! Group commit of message appends and new sessions: concurrent turns'
//! writes are queued to one task, which writes everything queued so far in a
//! single transaction and a single round trip to the writer connection.
//!
//! Every turn appends its user message and its answer through the one
//! writer connection, and a conversation's first turn creates its session
//! there too; one at a time, each write paid its own transaction, its own
//! trips between the async tasks and the connection's thread, and its own
//! turn in the writer's queue, and at concurrency 64 that queue limited
//! completions per second (`cargo xtask bench proxy`). A batch is
//! `BEGIN IMMEDIATE; (INSERT session .. RETURNING) x S; (INSERT message ..
//! RETURNING; UPDATE ..) x A; COMMIT`: each message still gets `max(seq) + 1`
//! of its session in order, an append to a missing session still inserts
//! nothing (`NotFound` for that caller only), a session whose scope exists
//! already inserts nothing (`None`: the caller reads the existing one), and
//! when a batch fails as a whole it is rolled back and every write in it
//! runs again on its own, so one caller's error is never another's.
//!
//! The task owns the batch: a caller that goes away cannot leave a
//! transaction half-done on the connection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use exoclaw_core::UnixMillis;
use exoclaw_core::model::Session;
use exoclaw_core::store::{StoreError, StoreResult};
use sqlx::Row as _;
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use tokio::sync::{mpsc, oneshot};

use super::writer::Writer;
use crate::error;
use crate::port::SessionRow;
use crate::port::data::insert_session_sql;

/// Writes in one batch at most (10 parameters per append, 8 per session).
const MAX_BATCH: usize = 16;
/// Writes waiting for the task at most; callers beyond wait to enqueue.
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

enum Job {
    Append {
        append: Append,
        reply: oneshot::Sender<StoreResult<i64>>,
    },
    Session {
        session: SessionRow,
        reply: oneshot::Sender<StoreResult<Option<Session>>>,
    },
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
        self.ask(|reply| Job::Append { append, reply }).await
    }

    /// Inserts a session; the row, or `None` when a session of its scope
    /// exists already (nothing is written then).
    pub(crate) async fn insert_session(&self, session: SessionRow) -> StoreResult<Option<Session>> {
        self.ask(|reply| Job::Session { session, reply }).await
    }

    /// Queues the job `make` builds around its reply channel, and waits for
    /// the reply.
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<StoreResult<T>>) -> Job,
    ) -> StoreResult<T> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(make(reply))
            .await
            .map_err(|_| StoreError::Unavailable("the store is closed".to_owned()))?;
        answer
            .await
            .map_err(|_| StoreError::Other("the store's batched-write task stopped".to_owned()))?
    }
}

async fn run(writer: Arc<Writer>, mut rx: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        // Sessions first: the statement text depends only on the counts.
        jobs.sort_by_key(|j| matches!(j, Job::Append { .. }));
        let mut work = Work::default();
        for job in &jobs {
            match job {
                Job::Session { session, .. } => work.sessions.push(session),
                Job::Append { append, .. } => work.appends.push(append),
            }
        }
        let mut rows = write(&writer, &work).await;
        drop(work);
        for job in jobs.drain(..) {
            match job {
                Job::Session { session, reply } => {
                    let _ = reply.send(
                        take(&mut rows, &session.id)
                            .and_then(|row| row.map(|r| crate::row::session(&r)).transpose()),
                    );
                }
                Job::Append { append, reply } => {
                    let _ = reply.send(take(&mut rows, &append.id).and_then(|row| {
                        row.ok_or(StoreError::NotFound)?
                            .try_get::<i64, _>(1)
                            .map_err(error::sqlite)
                    }));
                }
            }
        }
    }
}

/// One batch's writes, sessions before appends.
#[derive(Default)]
struct Work<'a> {
    sessions: Vec<&'a SessionRow>,
    appends: Vec<&'a Append>,
}

/// What the writes of a batch returned, by the id each write inserted: the
/// row, or nothing when the write inserted nothing; or the error of the
/// write (when it was written alone).
type Outcomes = HashMap<String, StoreResult<Option<SqliteRow>>>;

/// The outcome of the write that inserts `id`.
fn take(rows: &mut Outcomes, id: &str) -> StoreResult<Option<SqliteRow>> {
    rows.remove(id).unwrap_or(Ok(None))
}

/// Writes `work` in one transaction; when that fails, each write alone.
async fn write(writer: &Writer, work: &Work<'_>) -> Outcomes {
    if work.sessions.len() + work.appends.len() > 1 {
        match writer.acquire().await {
            Ok(mut conn) => match batch(&mut conn, &work.sessions, &work.appends).await {
                Ok(rows) => return rows.into_iter().map(|(id, r)| (id, Ok(Some(r)))).collect(),
                Err(e) => {
                    tracing::debug!(error = %e, sessions = work.sessions.len(), appends = work.appends.len(), "batched write failed; writing one by one");
                }
            },
            Err(e) => {
                tracing::debug!(error = %e, "writer unavailable for a batch; writing one by one");
            }
        }
    }
    let mut out = Outcomes::new();
    for s in &work.sessions {
        out.insert(s.id.clone(), alone(writer, &[s], &[], &s.id).await);
    }
    for a in &work.appends {
        out.insert(a.id.clone(), alone(writer, &[], &[a], &a.id).await);
    }
    out
}

/// One write in a transaction of its own: the row it returned, if any.
async fn alone(
    writer: &Writer,
    sessions: &[&SessionRow],
    appends: &[&Append],
    id: &str,
) -> StoreResult<Option<SqliteRow>> {
    let mut conn = writer.acquire().await?;
    Ok(batch(&mut conn, sessions, appends).await?.remove(id))
}

/// One transaction for all of `sessions` and `appends`; rolled back when
/// any statement fails (then the error is the batch's). The rows returned,
/// by their first column (the id each write inserted).
async fn batch(
    conn: &mut SqliteConnection,
    sessions: &[&SessionRow],
    appends: &[&Append],
) -> StoreResult<HashMap<String, SqliteRow>> {
    let sql = batch_sql(sessions.len(), appends.len());
    let mut query = sqlx::query(sql);
    for s in sessions {
        query = query
            .bind(&s.id)
            .bind(&s.tenant)
            .bind(&s.agent)
            .bind(&s.user)
            .bind(&s.channel)
            .bind(&s.peer)
            .bind(s.now)
            .bind(s.now);
    }
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
        Ok(rows) => rows
            .into_iter()
            .map(|r| Ok((r.try_get::<String, _>(0).map_err(error::sqlite)?, r)))
            .collect(),
        Err(e) => {
            // Whatever ran of it is undone before the connection is reused.
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            Err(error::sqlite(e))
        }
    }
}

/// The statement text for `sessions` new sessions and `appends` appends,
/// built once per pair of counts and kept for the process's life (at most
/// one per pair whose sum is at most `MAX_BATCH`: 152 texts).
fn batch_sql(sessions: usize, appends: usize) -> &'static str {
    static SQL: OnceLock<Mutex<HashMap<(usize, usize), &'static str>>> = OnceLock::new();
    let mut built = SQL
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    built
        .entry((sessions, appends))
        .or_insert_with(|| build_sql(sessions, appends).leak())
}

/// Plain `?` parameters, bound in order (8 per session, 10 per append):
/// sqlx numbers `?NNN` per statement, and a statement whose first parameter
/// is not ?1 would be bound wrongly.
fn build_sql(sessions: usize, appends: usize) -> String {
    const SESSION: &str = concat!(" ", insert_session_sql!(), ";");
    const APPEND: &str = " INSERT INTO messages (id, tenant_id, session_id, seq, role, content, meta, \
         created_at) \
         SELECT ?, s.tenant_id, s.id, \
         COALESCE((SELECT MAX(m.seq) FROM messages m WHERE m.session_id = s.id), 0) + 1, \
         ?, ?, ?, ? FROM sessions s WHERE s.tenant_id = ? AND s.id = ? \
         RETURNING id, seq; \
         UPDATE sessions SET updated_at = ? WHERE tenant_id = ? AND id = ?;";
    const BEGIN: &str = "BEGIN IMMEDIATE;";
    const END: &str = " COMMIT;";
    // Built at its final size: the text is kept for the process's life, and
    // is often first needed amid a burst, so no room beyond it stays (a
    // doubled String kept up to twice the text).
    let mut sql = String::with_capacity(
        BEGIN.len() + sessions * SESSION.len() + appends * APPEND.len() + END.len(),
    );
    sql.push_str(BEGIN);
    for _ in 0..sessions {
        sql.push_str(SESSION);
    }
    for _ in 0..appends {
        sql.push_str(APPEND);
    }
    sql.push_str(END);
    debug_assert_eq!(sql.len(), sql.capacity());
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
            "CREATE TABLE sessions (id TEXT PRIMARY KEY, tenant_id TEXT, agent_id TEXT, \
             user_id TEXT, channel TEXT, peer TEXT, title TEXT, created_at INTEGER, \
             updated_at INTEGER, UNIQUE (tenant_id, agent_id, user_id, channel, peer)); \
             CREATE TABLE messages (id TEXT PRIMARY KEY, tenant_id TEXT, session_id TEXT, \
             seq INTEGER, role TEXT, content TEXT, meta TEXT, created_at INTEGER, \
             UNIQUE (session_id, seq)); \
             INSERT INTO sessions VALUES ('s', 't', 'a', 'u', 'api', 'p0', NULL, 0, 0);",
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

    fn session(id: &str, peer: &str) -> SessionRow {
        SessionRow {
            id: id.to_owned(),
            tenant: "t".to_owned(),
            agent: "a".to_owned(),
            user: "u".to_owned(),
            channel: "api".to_owned(),
            peer: peer.to_owned(),
            now: 5,
        }
    }

    fn seq(outcome: StoreResult<Option<SqliteRow>>) -> Option<i64> {
        outcome.unwrap().map(|r| r.try_get(1).unwrap())
    }

    #[tokio::test]
    async fn a_batch_gives_each_write_its_own_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let w = writer_with_schema(&dir).await;
        let (new, taken) = (session("s1", "p1"), session("s2", "p0"));
        let (a, b, c) = (
            append("m1", "s"),
            append("m2", "missing"),
            append("m3", "s"),
        );
        let work = Work {
            sessions: vec![&new, &taken],
            appends: vec![&a, &b, &c],
        };
        let mut out = write(&w, &work).await;
        let row = take(&mut out, "s1")
            .unwrap()
            .expect("the new session's row");
        let created = crate::row::session(&row).unwrap();
        assert_eq!((created.id.as_str(), created.peer.as_str()), ("s1", "p1"));
        assert_eq!(created.created_at, 5);
        // Its scope is session `s`'s: nothing inserted, no row.
        assert!(take(&mut out, "s2").unwrap().is_none());
        assert_eq!(seq(take(&mut out, "m1")), Some(1));
        assert_eq!(seq(take(&mut out, "m2")), None);
        assert_eq!(seq(take(&mut out, "m3")), Some(2));
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions")
            .fetch_one(&mut *w.acquire().await.unwrap())
            .await
            .unwrap();
        assert_eq!(n, 2);
    }

    #[tokio::test]
    async fn a_failing_batch_is_replayed_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        let w = writer_with_schema(&dir).await;
        // The same id twice: the batch fails on the primary key, is rolled
        // back, and each write runs alone: only the duplicate fails.
        let new = session("s1", "p1");
        let (a, dup, c) = (append("m1", "s"), append("m1", "s"), append("m3", "s"));
        let work = Work {
            sessions: vec![&new],
            appends: vec![&a, &dup, &c],
        };
        let mut out = write(&w, &work).await;
        assert!(take(&mut out, "s1").unwrap().is_some());
        assert_eq!(seq(take(&mut out, "m3")), Some(2));
        let rows: Vec<(String, i64)> = sqlx::query_as("SELECT id, seq FROM messages ORDER BY seq")
            .fetch_all(&mut *w.acquire().await.unwrap())
            .await
            .unwrap();
        assert_eq!(rows, [("m1".to_owned(), 1), ("m3".to_owned(), 2)]);
        let updated: i64 = sqlx::query_scalar("SELECT updated_at FROM sessions WHERE id = 's'")
            .fetch_one(&mut *w.acquire().await.unwrap())
            .await
            .unwrap();
        assert_eq!(updated, 7);
    }

    #[tokio::test]
    async fn racing_creators_through_the_task_get_one_session() {
        let dir = tempfile::tempdir().unwrap();
        let appender = Appender::start(writer_with_schema(&dir).await);
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..8 {
            let appender = appender.clone();
            tasks.spawn(async move {
                appender
                    .insert_session(session(&format!("n{i}"), "same"))
                    .await
                    .unwrap()
            });
        }
        let mut won = 0;
        while let Some(done) = tasks.join_next().await {
            won += usize::from(done.unwrap().is_some());
        }
        assert_eq!(won, 1);
        assert_eq!(appender.append(append("m1", "s")).await.unwrap(), 1);
        assert!(matches!(
            appender.append(append("m2", "missing")).await,
            Err(StoreError::NotFound)
        ));
    }

    #[test]
    fn batch_sql_has_the_parameters_of_each_write() {
        let sql = batch_sql(1, 2);
        assert!(sql.starts_with("BEGIN IMMEDIATE;") && sql.ends_with(" COMMIT;"));
        assert_eq!(sql.matches("INSERT INTO sessions").count(), 1);
        assert_eq!(sql.matches("INSERT INTO messages").count(), 2);
        assert_eq!(sql.matches('?').count(), 8 + 20);
        assert!(sql.find("INSERT INTO sessions") < sql.find("INSERT INTO messages"));
        assert!(std::ptr::eq(sql, batch_sql(1, 2)), "built once");
        let built = build_sql(3, 5);
        assert_eq!(
            built.capacity(),
            built.len(),
            "no room kept beyond the text"
        );
        assert_eq!(
            batch_sql(0, MAX_BATCH).matches("RETURNING id, seq").count(),
            MAX_BATCH
        );
    }
}
