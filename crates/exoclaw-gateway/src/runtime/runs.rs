//! The owner of every agent run: runs are spawned here, tracked so that
//! shutdown can drain them, cancellable by session (`chat.stop`), serialised
//! per session so two turns never interleave their messages, and guarded so
//! that a panicking run is reported, never lost and never fatal.

use exoclaw_core::SessionId;
use futures_util::FutureExt as _;
use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Clone, Default)]
pub struct Runs {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    tracker: TaskTracker,
    /// Cancel tokens of the runs in progress, per session, by run number.
    active: Mutex<HashMap<SessionId, Vec<(u64, CancellationToken)>>>,
    next_run: std::sync::atomic::AtomicU64,
    /// One lock per session with a run in progress or queued.
    locks: Mutex<HashMap<SessionId, Arc<tokio::sync::Mutex<()>>>>,
}

impl Runs {
    /// Spawn `work` for `session`; its result (or a panic, as `Err`) arrives
    /// on the returned receiver. The run starts after earlier runs of the
    /// same session finished.
    pub fn spawn<T, F>(
        &self,
        session: SessionId,
        cancel: CancellationToken,
        work: F,
    ) -> oneshot::Receiver<Result<T, String>>
    where
        T: Send + 'static,
        F: Future<Output = T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let inner = self.inner.clone();
        let lock = {
            let mut locks = lock_map(&inner.locks);
            locks.entry(session.clone()).or_default().clone()
        };
        let run = inner
            .next_run
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        lock_map(&inner.active)
            .entry(session.clone())
            .or_default()
            .push((run, cancel));
        self.inner.tracker.spawn(async move {
            let result = {
                let _turn = lock.lock().await;
                AssertUnwindSafe(work).catch_unwind().await
            };
            // Our clone must be gone before the map's entry can be seen as
            // unused (strong count 1), or every session would leak an entry.
            drop(lock);
            let result = result.map_err(|panic| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_owned());
                tracing::error!(session = %session, panic = %what, "an agent run panicked; the gateway continues");
                "internal error: the run failed unexpectedly".to_owned()
            });
            {
                let mut active = lock_map(&inner.active);
                if let Some(tokens) = active.get_mut(&session) {
                    tokens.retain(|(id, _)| *id != run);
                    if tokens.is_empty() {
                        active.remove(&session);
                    }
                }
                let mut locks = lock_map(&inner.locks);
                if locks.get(&session).is_some_and(|l| Arc::strong_count(l) == 1) {
                    locks.remove(&session);
                }
            }
            let _ = tx.send(result);
        });
        rx
    }

    /// Cancel every run of `session`; returns how many were running.
    pub fn stop(&self, session: &SessionId) -> usize {
        let active = lock_map(&self.inner.active);
        active.get(session).map_or(0, |tokens| {
            tokens.iter().for_each(|(_, t)| t.cancel());
            tokens.len()
        })
    }

    pub fn active(&self) -> usize {
        self.inner.tracker.len()
    }

    /// Sessions with a lock entry (runs in progress or queued).
    #[cfg(test)]
    fn tracked_sessions(&self) -> usize {
        lock_map(&self.inner.locks).len()
    }

    /// Shutdown: let runs finish for up to `grace`, then cancel the rest
    /// (their partial answers are persisted) and wait briefly for them.
    pub async fn drain(&self, grace: Duration) {
        self.inner.tracker.close();
        if tokio::time::timeout(grace, self.inner.tracker.wait())
            .await
            .is_err()
        {
            let n = self.inner.tracker.len();
            tracing::warn!(runs = n, "grace period over; cancelling agent runs");
            for tokens in lock_map(&self.inner.active).values() {
                tokens.iter().for_each(|(_, t)| t.cancel());
            }
            let _ = tokio::time::timeout(Duration::from_secs(5), self.inner.tracker.wait()).await;
        }
    }
}

fn lock_map<K, V>(m: &Mutex<HashMap<K, V>>) -> std::sync::MutexGuard<'_, HashMap<K, V>> {
    // A poisoned map only means a panic elsewhere while holding it; the data
    // (tokens, locks) stays valid.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn finished_runs_leave_no_bookkeeping_behind() {
        let runs = Runs::default();
        let mut done = Vec::new();
        for i in 0..200 {
            let session = SessionId::new(format!("s{}", i % 50));
            done.push(runs.spawn(session, CancellationToken::new(), async move { i }));
        }
        for rx in done {
            rx.await.unwrap().unwrap();
        }
        tokio::task::yield_now().await;
        assert_eq!(runs.tracked_sessions(), 0, "a lock entry leaked");
        assert_eq!(
            lock_map(&runs.inner.active).len(),
            0,
            "a cancel token leaked"
        );
    }

    #[tokio::test]
    async fn a_panicking_run_is_reported_not_fatal() {
        let runs = Runs::default();
        let rx = runs.spawn(SessionId::new("s"), CancellationToken::new(), async {
            panic!("boom");
        });
        let got: Result<(), String> = rx.await.unwrap();
        assert!(got.unwrap_err().contains("internal error"));
        let ok = runs.spawn(SessionId::new("s"), CancellationToken::new(), async { 7 });
        assert_eq!(ok.await.unwrap().unwrap(), 7, "the session still works");
    }
}
