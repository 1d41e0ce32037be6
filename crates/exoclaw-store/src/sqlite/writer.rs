//! [`Writer`]: the one connection every write of a [`super::SqliteStore`]
//! goes through, behind a fair async mutex.
//!
//! A mutex rather than a pool of one: releasing a pooled connection spawns a
//! task that hands it back, and the next writer waits for that task to be
//! scheduled, so every write paid an extra trip through the scheduler on the
//! path all writes queue on (`cargo xtask bench proxy`, BENCHMARKS.md).
//! Unlocking hands the connection straight to the next writer in line.
//!
//! Like the pool it replaces, the writer connects on first use, waits at
//! most `acquire_timeout` for its turn (`Unavailable` after that, never a
//! hang) and closes the connection after its idle timeout without writes, so
//! an idle gateway holds no writer connection or page cache.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use exoclaw_core::store::{StoreError, StoreResult};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::{Mutex, MutexGuard};

use crate::error;

/// The writer's connection while it is held: derefs to the connection.
pub(crate) type WriterGuard<'a> = tokio::sync::MappedMutexGuard<'a, SqliteConnection>;

pub(crate) struct Writer {
    conn: Mutex<Option<SqliteConnection>>,
    options: SqliteConnectOptions,
    acquire_timeout: Duration,
    /// Close the connection after this long without a write.
    idle_timeout: Duration,
    /// When the connection was last handed out, in ms since `epoch`.
    last_used_ms: AtomicU64,
    epoch: Instant,
    /// Set by [`Writer::close`]: every later write fails.
    closed: AtomicBool,
}

impl Writer {
    /// A writer that connects with `options` on first use. Starts the idle
    /// closer on the current runtime (it ends when the writer is dropped).
    pub(crate) fn new(
        options: SqliteConnectOptions,
        acquire_timeout: Duration,
        idle_timeout: Duration,
    ) -> Arc<Self> {
        let writer = Arc::new(Self {
            conn: Mutex::new(None),
            options,
            acquire_timeout,
            idle_timeout,
            last_used_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            closed: AtomicBool::new(false),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(close_when_idle(Arc::downgrade(&writer)));
        }
        writer
    }

    /// Waits for the writer's turn (fair: in arrival order), connecting when
    /// no connection is open.
    pub(crate) async fn acquire(&self) -> StoreResult<WriterGuard<'_>> {
        let mut slot = tokio::time::timeout(self.acquire_timeout, self.conn.lock())
            .await
            .map_err(|_| {
                StoreError::Unavailable(format!(
                    "the database writer stayed busy for {} s",
                    self.acquire_timeout.as_secs()
                ))
            })?;
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Unavailable("the store is closed".to_owned()));
        }
        if slot.is_none() {
            *slot = Some(self.options.connect().await.map_err(error::sqlite)?);
        }
        self.touch();
        MutexGuard::try_map(slot, Option::as_mut)
            .map_err(|_| StoreError::Other("the writer connection vanished".to_owned()))
    }

    /// Closes the connection (checkpointing the WAL when it is the last
    /// one); every later write fails with `Unavailable`.
    pub(crate) async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let conn = self.conn.lock().await.take();
        if let Some(conn) = conn {
            let _ = conn.close().await;
        }
    }

    /// Whether the write connection is open now (`false` while a write is
    /// under way counts as open).
    pub(crate) fn is_open(&self) -> bool {
        self.conn.try_lock().map_or(true, |slot| slot.is_some())
    }

    /// Has SQLite free the writer's page cache, unless someone holds the
    /// writer (then it is busy and keeps it).
    pub(crate) async fn release_memory(&self) {
        let Ok(mut slot) = self.conn.try_lock() else {
            return;
        };
        if let Some(conn) = slot.as_mut() {
            let _ = sqlx::query("PRAGMA shrink_memory").execute(conn).await;
        }
    }

    fn touch(&self) {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_used_ms.store(now, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_used_ms.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(last)
    }
}

/// Every quarter of the idle timeout: close the connection when nobody wrote
/// for the whole timeout and nobody holds it.
async fn close_when_idle(writer: std::sync::Weak<Writer>) {
    let Some(period) = writer.upgrade().map(|w| w.idle_timeout / 4) else {
        return;
    };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(writer) = writer.upgrade() else {
            return;
        };
        if writer.idle_for() < writer.idle_timeout {
            continue;
        }
        let idle = writer.conn.try_lock().ok().and_then(|mut slot| slot.take());
        if let Some(conn) = idle {
            let _ = conn.close().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::sqlite::SqliteConnectOptions;

    fn writer(dir: &tempfile::TempDir, timeout: Duration) -> Arc<Writer> {
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("w.db"))
            .create_if_missing(true);
        Writer::new(options, timeout, Duration::from_millis(200))
    }

    #[tokio::test]
    async fn writes_in_turn_and_fails_after_close() {
        let dir = tempfile::tempdir().unwrap();
        let w = writer(&dir, Duration::from_secs(5));
        sqlx::query("CREATE TABLE t (x INTEGER)")
            .execute(&mut *w.acquire().await.unwrap())
            .await
            .unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..20 {
            let w = w.clone();
            tasks.spawn(async move {
                let mut conn = w.acquire().await.unwrap();
                sqlx::query("INSERT INTO t VALUES (?)")
                    .bind(i)
                    .execute(&mut *conn)
                    .await
                    .unwrap();
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(&mut *w.acquire().await.unwrap())
            .await
            .unwrap();
        assert_eq!(n, 20);
        w.close().await;
        assert!(matches!(
            w.acquire().await,
            Err(StoreError::Unavailable(m)) if m.contains("closed")
        ));
    }

    #[tokio::test]
    async fn a_writer_held_too_long_is_unavailable_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let w = writer(&dir, Duration::from_millis(100));
        let held = w.acquire().await.unwrap();
        let err = match w.acquire().await {
            Err(e) => e,
            Ok(_) => panic!("a second writer got the connection"),
        };
        assert!(err.is_retryable(), "{err}");
        drop(held);
        assert!(w.acquire().await.is_ok());
    }

    #[tokio::test]
    async fn an_idle_connection_is_closed_and_reopened_on_demand() {
        let dir = tempfile::tempdir().unwrap();
        let w = writer(&dir, Duration::from_secs(5));
        drop(w.acquire().await.unwrap());
        assert!(w.conn.lock().await.is_some());
        // Idle timeout 200 ms, looked at every 50 ms: closed within 2 s.
        let mut closed = false;
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if w.conn.lock().await.is_none() {
                closed = true;
                break;
            }
        }
        assert!(closed, "the idle connection was not closed");
        let n: i64 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&mut *w.acquire().await.unwrap())
            .await
            .unwrap();
        assert_eq!(n, 1);
    }
}
