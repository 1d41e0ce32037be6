//! The owner of every agent run: runs are spawned here once the lane
//! scheduler admits them (`lanes`: a bounded number per lane, fair across
//! tenants, one at a time per direct session so two turns never interleave
//! their messages), tracked so that shutdown can drain them, cancellable by
//! session (`chat.stop`), queued or running, and guarded so that a
//! panicking run is reported, never lost and never fatal.

use super::lanes::{Admission, Lanes, Refused};
use exoclaw_core::SessionId;
use exoclaw_core::sparse::ShrinkWhenSparse as _;
use futures_util::FutureExt as _;
use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Clone)]
pub struct Runs {
    inner: Arc<Inner>,
}

struct Inner {
    tracker: TaskTracker,
    /// Cancel tokens of the runs in progress or queued, per session, by run
    /// number.
    active: Mutex<HashMap<SessionId, Vec<(u64, CancellationToken)>>>,
    next_run: std::sync::atomic::AtomicU64,
    /// Every run waits here for its lane and session slots.
    lanes: Lanes,
}

/// How a spawned run ended.
#[derive(Debug)]
pub enum RunEnd<T> {
    /// It ran; its own result.
    Done(T),
    /// It panicked (logged with the panic's text).
    Panicked(String),
    /// It never started: the scheduler refused it (a timeout, or the run
    /// was stopped while it waited).
    Refused(Refused),
}

impl Runs {
    pub fn new(lanes: Lanes) -> Self {
        Self {
            inner: Arc::new(Inner {
                tracker: TaskTracker::new(),
                active: Mutex::default(),
                next_run: std::sync::atomic::AtomicU64::new(0),
                lanes,
            }),
        }
    }

    /// The scheduler the runs wait in.
    pub fn lanes(&self) -> &Lanes {
        &self.inner.lanes
    }

    /// Spawn `work` once the scheduler admits it (`admission`: its lane,
    /// tenant and session; the session's earlier runs finish first); its end
    /// arrives on the returned receiver. `cancel` stops it, queued or
    /// running.
    pub fn spawn<T, F>(
        &self,
        admission: Admission,
        cancel: CancellationToken,
        work: F,
    ) -> oneshot::Receiver<RunEnd<T>>
    where
        T: Send + 'static,
        F: Future<Output = T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let inner = self.inner.clone();
        let session = admission.session.clone();
        let run = inner
            .next_run
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        lock_map(&inner.active)
            .entry(session.clone())
            .or_default()
            .push((run, cancel.clone()));
        self.inner.tracker.spawn(async move {
            let end = match inner.lanes.admit(admission, &cancel).await {
                Err(refused) => RunEnd::Refused(refused),
                Ok(permit) => {
                    let result = AssertUnwindSafe(work).catch_unwind().await;
                    drop(permit);
                    match result {
                        Ok(v) => RunEnd::Done(v),
                        Err(panic) => {
                            let what = panic
                                .downcast_ref::<&str>()
                                .map(|s| (*s).to_owned())
                                .or_else(|| panic.downcast_ref::<String>().cloned())
                                .unwrap_or_else(|| "unknown panic".to_owned());
                            tracing::error!(session = %session, panic = %what, "an agent run panicked; the gateway continues");
                            RunEnd::Panicked("internal error: the run failed unexpectedly".to_owned())
                        }
                    }
                }
            };
            {
                let mut active = lock_map(&inner.active);
                if let Some(tokens) = active.get_mut(&session) {
                    tokens.retain(|(id, _)| *id != run);
                    if tokens.is_empty() {
                        active.remove(&session);
                        active.shrink_when_sparse();
                    }
                }
            }
            let _ = tx.send(end);
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
    use super::super::lanes::{Lane, SessionKind};
    use super::*;

    fn runs() -> Runs {
        Runs::new(Lanes::new(
            &crate::config::file::SchedulerConfig::default(),
            &crate::metrics::Metrics::new(),
        ))
    }

    fn admission(session: &str) -> Admission {
        Admission {
            lane: Lane::Main,
            tenant: "t".into(),
            session: SessionId::new(session),
            kind: SessionKind::Direct,
        }
    }

    fn done<T: std::fmt::Debug>(end: RunEnd<T>) -> T {
        match end {
            RunEnd::Done(v) => v,
            other => panic!("not done: {other:?}"),
        }
    }

    #[tokio::test]
    async fn finished_runs_leave_no_bookkeeping_behind() {
        let runs = runs();
        let mut all = Vec::new();
        for i in 0..200 {
            let session = format!("s{}", i % 50);
            all.push(runs.spawn(
                admission(&session),
                CancellationToken::new(),
                async move { i },
            ));
        }
        for rx in all {
            done(rx.await.unwrap());
        }
        tokio::task::yield_now().await;
        assert_eq!(
            lock_map(&runs.inner.active).len(),
            0,
            "a cancel token leaked"
        );
        assert!(
            runs.lanes()
                .snapshot()
                .iter()
                .all(|l| l.running == 0 && l.queued == 0)
        );
    }

    #[tokio::test]
    async fn the_table_of_running_sessions_gives_back_the_room_of_a_burst() {
        let runs = runs();
        let all: Vec<_> = (0..1_000)
            .map(|i| {
                runs.spawn(
                    admission(&format!("s{i}")),
                    CancellationToken::new(),
                    async move { i },
                )
            })
            .collect();
        assert!(lock_map(&runs.inner.active).capacity() >= 1_000);
        for rx in all {
            done(rx.await.unwrap());
        }
        tokio::task::yield_now().await;
        let active = lock_map(&runs.inner.active);
        assert!(active.is_empty());
        assert!(
            active.capacity() <= 4 * exoclaw_core::sparse::KEEP_CAPACITY,
            "{}",
            active.capacity()
        );
    }

    #[tokio::test]
    async fn turns_of_one_session_run_one_at_a_time_in_order() {
        let runs = runs();
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut all = Vec::new();
        for i in 0..20 {
            let log = log.clone();
            all.push(
                runs.spawn(admission("one"), CancellationToken::new(), async move {
                    log.lock().unwrap().push(("start", i));
                    tokio::task::yield_now().await;
                    log.lock().unwrap().push(("end", i));
                }),
            );
        }
        for rx in all {
            done(rx.await.unwrap());
        }
        let log = log.lock().unwrap();
        for (k, pair) in log.chunks(2).enumerate() {
            assert_eq!(pair, [("start", k), ("end", k)], "interleaved: {log:?}");
        }
    }

    #[tokio::test]
    async fn a_run_stopped_while_queued_never_starts() {
        let runs = runs();
        let (hold, release) = oneshot::channel::<()>();
        let first = runs.spawn(admission("s"), CancellationToken::new(), async move {
            let _ = release.await;
        });
        let cancel = CancellationToken::new();
        let second = runs.spawn(admission("s"), cancel.clone(), async { unreachable!() });
        tokio::task::yield_now().await;
        assert_eq!(runs.stop(&SessionId::new("s")), 2);
        assert!(matches!(second.await.unwrap(), RunEnd::Refused(_)));
        drop(hold);
        done(first.await.unwrap());
    }

    #[tokio::test]
    async fn a_panicking_run_is_reported_not_fatal() {
        let runs = runs();
        let rx = runs.spawn(admission("s"), CancellationToken::new(), async {
            panic!("boom");
        });
        let got: RunEnd<()> = rx.await.unwrap();
        assert!(matches!(got, RunEnd::Panicked(m) if m.contains("internal error")));
        let ok = runs.spawn(admission("s"), CancellationToken::new(), async { 7 });
        assert_eq!(done(ok.await.unwrap()), 7, "the session still works");
    }
}
