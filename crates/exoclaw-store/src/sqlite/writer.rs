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
//! hang) and closes the connection after [`IDLE_TIMEOUT`] without writes, so
//! an idle gateway holds no writer connection or page cache.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use exoclaw_core::store::{StoreError, StoreResult};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::{Mutex, MutexGuard};

use crate::error;

/// Close the connection after this long without a write.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The writer's connection while it is held: derefs to the connection.
pub(crate) type WriterGuard<'a> = tokio::sync::MappedMutexGuard<'a, SqliteConnection>;

pub(crate) struct Writer {
    conn: Mutex<Option<SqliteConnection>>,
    options: SqliteConnectOptions,
    acquire_timeout: Duration,
    /// When the connection was last handed out, in ms since `epoch`.
    last_used_ms: AtomicU64,
    epoch: Instant,
    /// Set by [`Writer::close`]: every later write fails.
    closed: AtomicBool,
}

impl Writer {
    /// A writer that connects with `options` on first use. Starts the idle
    /// closer on the current runtime (it ends when the writer is dropped).
    pub(crate) fn new(options: SqliteConnectOptions, acquire_timeout: Duration) -> Arc<Self> {
        let writer = Arc::new(Self {
            conn: Mutex::new(None),
            options,
            acquire_timeout,
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

    fn touch(&self) {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_used_ms.store(now, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_used_ms.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(last)
    }
}

/// Every few seconds: close the connection when nobody wrote for
/// [`IDLE_TIMEOUT`] and nobody holds it.
async fn close_when_idle(writer: std::sync::Weak<Writer>) {
    let mut tick = tokio::time::interval(IDLE_TIMEOUT / 4);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(writer) = writer.upgrade() else {
            return;
        };
        if writer.idle_for() < IDLE_TIMEOUT {
            continue;
        }
        let idle = writer.conn.try_lock().ok().and_then(|mut slot| slot.take());
        if let Some(conn) = idle {
            let _ = conn.close().await;
        }
    }
}
