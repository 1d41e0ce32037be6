//! The owner of every background task of a running gateway: the server, the
//! write-behind flusher, alert delivery, the OTLP export, the daily backup
//! schedule, the egress proxy, memory trimming (and, later, channel
//! adapters and cron). Nothing else in this crate or the binary spawns a
//! free-standing task (`clippy.toml` refuses `tokio::spawn` elsewhere).
//!
//! Every task has a name and a [`Policy`]:
//! - [`Policy::Critical`]: when it ends on its own (an error, a panic, or
//!   just returning), the gateway stops with a non-zero exit
//!   ([`Supervisor::failed`] resolves);
//! - [`Policy::Restart`] ([`Supervisor::start_restarting`]): an error or
//!   panic is logged and the task is started again after a backoff (1 s,
//!   doubling to 60 s; reset after a minute of running), until it is
//!   stopped;
//! - [`Policy::Background`]: an error or panic is logged, nothing more.
//!
//! A task is stopped through its [`Task`] handle (its stop token, then a
//! bounded wait, then abort), in the order the owner needs; whatever is
//! still running at the end is stopped by [`Supervisor::shutdown`]. Panics
//! never cross into the caller: they are caught and reported with the task's
//! name.

use futures_util::FutureExt as _;
use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// What happens when a task ends on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    Critical,
    Restart,
    Background,
}

/// How a task run ended.
type Outcome = anyhow::Result<()>;

/// First wait before a restart, and its cap.
const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Running this long resets the backoff.
const HEALTHY_AFTER: Duration = Duration::from_secs(60);

/// The state of one task, as [`Supervisor::tasks`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskInfo {
    pub name: &'static str,
    pub policy: Policy,
    /// Times it was started again after a failure.
    pub restarts: u64,
}

struct Entry {
    policy: Policy,
    stop: CancellationToken,
    restarts: Arc<AtomicU64>,
}

struct Inner {
    tasks: Mutex<BTreeMap<u64, (&'static str, Entry)>>,
    next: AtomicU64,
    /// Set once by the first critical task that ends.
    failed: watch::Sender<Option<String>>,
}

/// The owner (one per running gateway; cheap to clone).
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

impl Default for Supervisor {
    fn default() -> Self {
        Self {
            inner: Arc::new(Inner {
                tasks: Mutex::new(BTreeMap::new()),
                next: AtomicU64::new(0),
                failed: watch::channel(None).0,
            }),
        }
    }
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("tasks", &self.tasks().len())
            .finish()
    }
}

/// A started task: stop it with [`Task::stop`].
pub struct Task {
    name: &'static str,
    stop: CancellationToken,
    handle: tokio::task::JoinHandle<()>,
}

impl Task {
    /// Signal the task to stop and wait up to `grace` for it; abort it
    /// after that. `true` when it finished within the grace period.
    pub async fn stop(self, grace: Duration) -> bool {
        self.stop.cancel();
        let mut handle = self.handle;
        match tokio::time::timeout(grace, &mut handle).await {
            Ok(_) => true,
            Err(_) => {
                tracing::warn!(
                    task = self.name,
                    grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
                    "a task did not stop within its grace period; aborting it"
                );
                handle.abort();
                let _ = handle.await;
                false
            }
        }
    }

    /// The token the task watches (cancel it to ask the task to stop).
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl Supervisor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Start `name` once. `run` builds the task from the stop token, which
    /// the task must watch (it is cancelled by [`Task::stop`] and
    /// [`Supervisor::shutdown`]). `policy` is `Critical` or `Background`
    /// (`Restart` needs [`Supervisor::start_restarting`] and counts as
    /// `Background` here).
    pub fn start<R, F>(&self, name: &'static str, policy: Policy, run: R) -> Task
    where
        R: FnOnce(CancellationToken) -> F + Send + 'static,
        F: Future<Output = Outcome> + Send + 'static,
    {
        let once = Mutex::new(Some(run));
        let policy = if policy == Policy::Restart {
            Policy::Background
        } else {
            policy
        };
        self.spawn(name, policy, move |stop| {
            let run = once.lock().unwrap_or_else(PoisonError::into_inner).take();
            async move {
                match run {
                    Some(run) => run(stop).await,
                    None => Ok(()),
                }
            }
        })
    }

    /// Start `name`, and start it again after it fails or panics (with
    /// backoff) until it is stopped. `make` builds one run from the stop
    /// token.
    pub fn start_restarting<M, F>(&self, name: &'static str, make: M) -> Task
    where
        M: Fn(CancellationToken) -> F + Send + Sync + 'static,
        F: Future<Output = Outcome> + Send + 'static,
    {
        self.spawn(name, Policy::Restart, make)
    }

    fn spawn<M, F>(&self, name: &'static str, policy: Policy, make: M) -> Task
    where
        M: Fn(CancellationToken) -> F + Send + Sync + 'static,
        F: Future<Output = Outcome> + Send + 'static,
    {
        let stop = CancellationToken::new();
        let restarts = Arc::new(AtomicU64::new(0));
        let id = self.inner.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(
            id,
            (
                name,
                Entry {
                    policy,
                    stop: stop.clone(),
                    restarts: restarts.clone(),
                },
            ),
        );
        let inner = self.inner.clone();
        let token = stop.clone();
        #[expect(
            clippy::disallowed_methods,
            reason = "the supervisor is the one place that spawns free-standing tasks"
        )]
        let handle = tokio::spawn(async move {
            supervise(name, policy, &make, &token, &restarts, &inner).await;
            inner
                .tasks
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&id);
        });
        Task { name, stop, handle }
    }

    /// A one-off task with no stop protocol of its own (a short write, a
    /// blocking job's waiter): panics and errors are logged with its name.
    pub fn detach<F>(&self, name: &'static str, fut: F)
    where
        F: Future<Output = Outcome> + Send + 'static,
    {
        #[expect(
            clippy::disallowed_methods,
            reason = "the supervisor is the one place that spawns free-standing tasks"
        )]
        tokio::spawn(async move {
            match AssertUnwindSafe(fut).catch_unwind().await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(task = name, error = %format!("{e:#}"), "a task failed")
                }
                Err(panic) => tracing::error!(
                    task = name,
                    panic = %panic_message(panic.as_ref()),
                    "a task panicked"
                ),
            }
        });
    }

    /// Resolves with the reason once a critical task has ended; never
    /// otherwise.
    pub async fn failed(&self) -> String {
        let mut rx = self.inner.failed.subscribe();
        loop {
            if let Some(reason) = rx.borrow_and_update().clone() {
                return reason;
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// The tasks running now, oldest first.
    pub fn tasks(&self) -> Vec<TaskInfo> {
        self.lock()
            .values()
            .map(|(name, e)| TaskInfo {
                name,
                policy: e.policy,
                restarts: e.restarts.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Stop every task still running: signal all, wait up to `grace`, then
    /// the stragglers are left to be aborted by their handles' owners or the
    /// runtime's shutdown. Returns the names of those still running.
    pub async fn shutdown(&self, grace: Duration) -> Vec<&'static str> {
        for (_, e) in self.lock().values() {
            e.stop.cancel();
        }
        let deadline = Instant::now() + grace;
        loop {
            let left: Vec<&'static str> = self.lock().values().map(|(n, _)| *n).collect();
            if left.is_empty() || Instant::now() >= deadline {
                if !left.is_empty() {
                    tracing::warn!(tasks = ?left, "tasks still running at the end of shutdown");
                }
                return left;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, (&'static str, Entry)>> {
        self.inner
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Run `make`'s task per `policy` until it is stopped (or, for a critical
/// task, until it ends).
async fn supervise<M, F>(
    name: &'static str,
    policy: Policy,
    make: &M,
    stop: &CancellationToken,
    restarts: &AtomicU64,
    inner: &Inner,
) where
    M: Fn(CancellationToken) -> F,
    F: Future<Output = Outcome>,
{
    let mut backoff = BACKOFF_START;
    loop {
        let started = Instant::now();
        let ended = AssertUnwindSafe(make(stop.clone())).catch_unwind().await;
        let why = match &ended {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("{e:#}")),
            Err(panic) => Some(format!("panicked: {}", panic_message(panic.as_ref()))),
        };
        if stop.is_cancelled() {
            if let Some(why) = why {
                tracing::warn!(task = name, error = %why, "a task failed while stopping");
            }
            return;
        }
        match policy {
            Policy::Critical => {
                let reason = format!(
                    "the {name} task {}",
                    why.as_deref()
                        .map_or("stopped unexpectedly".to_owned(), |w| format!(
                            "failed: {w}"
                        ))
                );
                tracing::error!(task = name, "{reason}");
                inner.failed.send_if_modified(|f| {
                    if f.is_none() {
                        *f = Some(reason);
                        true
                    } else {
                        false
                    }
                });
                return;
            }
            Policy::Background => {
                if let Some(why) = why {
                    tracing::error!(task = name, error = %why, "a background task failed");
                }
                return;
            }
            Policy::Restart => {
                if started.elapsed() >= HEALTHY_AFTER {
                    backoff = BACKOFF_START;
                }
                tracing::warn!(
                    task = name,
                    error = %why.as_deref().unwrap_or("returned"),
                    restart_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                    "a task ended; restarting it"
                );
                restarts.fetch_add(1, Ordering::Relaxed);
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = stop.cancelled() => return,
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text panic".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test(start_paused = true)]
    async fn a_failing_task_is_restarted_with_backoff_until_stopped() {
        let sup = Supervisor::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        let task = sup.start_restarting("flaky", move |stop| {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 3 {
                    anyhow::bail!("attempt {n} failed");
                }
                stop.cancelled().await;
                Ok(())
            }
        });
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            4,
            "three failures, then it stays up"
        );
        assert_eq!(sup.tasks()[0].restarts, 3);
        assert!(task.stop(Duration::from_secs(1)).await, "stops when asked");
        assert!(sup.tasks().is_empty());
    }

    #[tokio::test]
    async fn a_critical_task_that_panics_fails_the_gateway_and_nothing_else() {
        let sup = Supervisor::new();
        let _keep = sup.start("server", Policy::Critical, |_stop| async {
            panic!("boom");
        });
        let reason = tokio::time::timeout(Duration::from_secs(5), sup.failed())
            .await
            .expect("the failure is reported");
        assert!(
            reason.contains("server") && reason.contains("boom"),
            "{reason}"
        );
    }

    #[tokio::test]
    async fn shutdown_stops_what_is_left_and_names_stragglers() {
        let sup = Supervisor::new();
        let _polite = sup.start("polite", Policy::Background, |stop| async move {
            stop.cancelled().await;
            Ok(())
        });
        let _stubborn = sup.start("stubborn", Policy::Background, |_stop| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        });
        let left = sup.shutdown(Duration::from_millis(200)).await;
        assert_eq!(left, vec!["stubborn"]);
        let no_failure = tokio::time::timeout(Duration::from_millis(50), sup.failed()).await;
        assert!(no_failure.is_err(), "stopping is not a failure");
    }

    #[tokio::test]
    async fn a_detached_panic_is_contained() {
        let sup = Supervisor::new();
        sup.detach("oops", async { panic!("inside") });
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Still here, and the supervisor still works.
        let t = sup.start("after", Policy::Background, |stop| async move {
            stop.cancelled().await;
            Ok(())
        });
        assert!(t.stop(Duration::from_secs(1)).await);
    }
}
