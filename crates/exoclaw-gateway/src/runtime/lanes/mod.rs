//! The lane scheduler: every agent run waits here for its slot before it
//! starts, so that the gateway runs a bounded number of runs at once, shares
//! them fairly between tenants, and keeps the turns of a conversation in
//! order. [`Lanes::admit`] waits and returns a [`Permit`]; dropping the
//! permit (also while its holder panics) frees the slot.
//!
//! The rules:
//!
//! - **Lanes.** A run belongs to one [`Lane`]: `main` (runs a person
//!   started), `subagent`, `delegate`, `cron`. Each has
//!   `scheduler.lanes.<lane>.concurrency` slots (30, 50, 100, 30), so a
//!   flood of one kind never takes the slots of another.
//! - **Sessions.** A [`SessionKind::Direct`] session has one run at a time,
//!   in arrival order, whatever the lane: its turns never interleave. A
//!   [`SessionKind::Group`] session has up to its allowance at once
//!   (`scheduler.group_concurrency`, 3), also started in arrival order. A
//!   run first waits for its session and only then, holding its session
//!   slot, for a lane slot: a run held up by its own session never sits on
//!   a lane slot another session could use.
//! - **Fairness.** In a full lane, a freed slot goes to the tenants with
//!   waiting runs in turn (round robin), first come first served within a
//!   tenant. A tenant with a thousand queued runs delays another tenant's
//!   run by at most one handover per tenant ahead of it in the turn.
//! - **Bounded waiting.** A run waits at most `scheduler.queue_timeout_sec`
//!   (120; at least 1, never forever) for both slots together, then is
//!   refused with [`Refused::Timeout`], which says whether the lane or the
//!   session held it up; a cancelled token refuses with
//!   [`Refused::Cancelled`]. A refused, cancelled or dropped admission
//!   leaves nothing behind in the queues.
//! - **Adaptive throttle.** [`Lanes::pressure`] feeds back what the
//!   provider said to a group session's run. [`Pressure::Overloaded`] (429,
//!   "overloaded") halves the session's allowance, rounding down, to no
//!   less than 1, and restarts the count of successes; three
//!   [`Pressure::Ok`] in a row raise it by one, up to
//!   `scheduler.group_concurrency`. Runs already going are never stopped;
//!   new ones wait until fewer than the allowance run. A lowered allowance
//!   outlives the session's last run by ten minutes, so the next burst of
//!   messages does not start at full speed against a provider that just
//!   refused; then it is forgotten. Signal while the run's permit is held:
//!   a session the scheduler holds nothing for is ignored.
//!
//! Metrics, labelled by lane only (refusals also by reason; never a tenant
//! or a session): `exoclaw_lane_running`, `exoclaw_lane_queued`,
//! `exoclaw_lane_wait_seconds` (from asking to holding, for every
//! admission) and `exoclaw_lane_refusals_total` (`timeout`, `cancelled`).
//!
//! The scheduler has no tasks of its own: a waiter waits in its own future
//! on a oneshot that whoever frees a slot fills, under one mutex over the
//! bookkeeping (`queue.rs`).

mod lane;
mod queue;

pub use lane::{Admission, Lane, LaneState, Pressure, SessionKind};

use crate::config::file::SchedulerConfig;
use crate::metrics::{LaneLabels, LaneRefusalLabels, Metrics};
use exoclaw_core::SessionId;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use queue::{Book, Entry, Stage, WaiterId};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The longest queue timeout taken from an unvalidated configuration (a
/// deadline must not overflow); validation allows an hour.
const MAX_TIMEOUT_SEC: u64 = 365 * 86_400;

/// What held up a run that timed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blocked {
    /// Earlier runs of its own session were still going.
    Session,
    /// Every slot of its lane was taken.
    Lane,
}

/// Why [`Lanes::admit`] gave no permit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    /// No slot within `scheduler.queue_timeout_sec`.
    Timeout {
        lane: Lane,
        waited: Duration,
        blocked: Blocked,
    },
    /// The run's cancel token fired while it waited.
    Cancelled { lane: Lane, waited: Duration },
}

impl Refused {
    /// A timeout may succeed later; a cancellation is what the caller asked.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Refused::Timeout { .. })
    }

    /// The `reason` label of `exoclaw_lane_refusals_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Refused::Timeout { .. } => "timeout",
            Refused::Cancelled { .. } => "cancelled",
        }
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Timeout {
                lane,
                waited,
                blocked: Blocked::Lane,
            } => write!(
                f,
                "no slot in the {lane} lane after {:.1}s: every one was taken; raise \
                 scheduler.lanes.{lane}.concurrency, or scheduler.queue_timeout_sec to wait longer",
                waited.as_secs_f64()
            ),
            Refused::Timeout {
                lane,
                waited,
                blocked: Blocked::Session,
            } => write!(
                f,
                "the session's earlier runs were still going after {:.1}s (waiting in the {lane} \
                 lane); raise scheduler.queue_timeout_sec to wait longer (group sessions: also \
                 scheduler.group_concurrency)",
                waited.as_secs_f64()
            ),
            Refused::Cancelled { lane, waited } => write!(
                f,
                "cancelled after {:.1}s waiting for a slot in the {lane} lane (its size is \
                 scheduler.lanes.{lane}.concurrency)",
                waited.as_secs_f64()
            ),
        }
    }
}

impl std::error::Error for Refused {}

/// The lane scheduler; cheap to clone (one shared state).
#[derive(Clone)]
pub struct Lanes {
    shared: Arc<Shared>,
}

struct Shared {
    book: Mutex<Book>,
    timeout: Duration,
    /// By [`Lane::index`].
    meters: [Meters; 4],
}

/// One lane's metrics, resolved once.
struct Meters {
    running: Gauge,
    queued: Gauge,
    wait: Histogram,
    timeouts: Counter,
    cancels: Counter,
}

impl Meters {
    fn new(metrics: &Metrics, lane: Lane) -> Self {
        let labels = LaneLabels {
            lane: lane.as_str().to_owned(),
        };
        let refusals = |reason: &str| {
            metrics
                .lane_refusals
                .get_or_create(&LaneRefusalLabels {
                    lane: lane.as_str().to_owned(),
                    reason: reason.to_owned(),
                })
                .clone()
        };
        Self {
            running: metrics.lane_running.get_or_create(&labels).clone(),
            queued: metrics.lane_queued.get_or_create(&labels).clone(),
            wait: metrics.lane_wait.get_or_create(&labels).clone(),
            timeouts: refusals("timeout"),
            cancels: refusals("cancelled"),
        }
    }

    fn refused(&self, r: Refused) -> Refused {
        match r {
            Refused::Timeout { .. } => self.timeouts.inc(),
            Refused::Cancelled { .. } => self.cancels.inc(),
        };
        r
    }
}

impl Shared {
    /// Change the bookkeeping, then publish the lanes' gauges.
    fn with_book<T>(&self, change: impl FnOnce(&mut Book) -> T) -> T {
        // A poisoned lock only means a panic elsewhere while holding it;
        // every change keeps the counts consistent before it can panic.
        let mut book = self.book.lock().unwrap_or_else(PoisonError::into_inner);
        let out = change(&mut book);
        for lane in Lane::ALL {
            let state = book.state(lane);
            let m = &self.meters[lane.index()];
            m.running
                .set(i64::try_from(state.running).unwrap_or(i64::MAX));
            m.queued
                .set(i64::try_from(state.queued).unwrap_or(i64::MAX));
        }
        out
    }
}

impl Lanes {
    /// The lane metrics are registered in `metrics` (handles are kept, not
    /// the registry). A configuration that skipped validation is made
    /// safe: limits below 1 count as 1, the timeout is at least a second
    /// and at most a year.
    pub fn new(config: &SchedulerConfig, metrics: &Metrics) -> Self {
        let l = &config.lanes;
        let limits = [
            l.main.concurrency,
            l.subagent.concurrency,
            l.delegate.concurrency,
            l.cron.concurrency,
        ]
        .map(|c| usize::try_from(c).unwrap_or(usize::MAX));
        let group_max = usize::try_from(config.group_concurrency).unwrap_or(usize::MAX);
        let shared = Shared {
            book: Mutex::new(Book::new(limits, group_max)),
            timeout: Duration::from_secs(config.queue_timeout_sec.clamp(1, MAX_TIMEOUT_SEC)),
            meters: Lane::ALL.map(|lane| Meters::new(metrics, lane)),
        };
        shared.with_book(|_| ());
        Self {
            shared: Arc::new(shared),
        }
    }

    /// Wait for a slot of `a.lane` and of `a.session` (see the module doc
    /// for the order, the fairness and the limits). Dropping the future
    /// while it waits leaves the queues as if it had never asked.
    pub async fn admit(&self, a: Admission, cancel: &CancellationToken) -> Result<Permit, Refused> {
        let started = Instant::now();
        let meters = &self.shared.meters[a.lane.index()];
        if cancel.is_cancelled() {
            return Err(meters.refused(Refused::Cancelled {
                lane: a.lane,
                waited: Duration::ZERO,
            }));
        }
        let (id, rx) = match self.shared.with_book(|b| b.enter(&a, started)) {
            Entry::Granted => {
                meters.wait.observe(0.0);
                return Ok(self.permit(a));
            }
            Entry::Queued(id, rx) => (id, rx),
        };
        let waiting = Waiting {
            shared: &self.shared,
            id,
            admission: Some(a),
        };
        enum End {
            Granted,
            Cancelled,
            TimedOut,
        }
        let end = tokio::select! {
            biased;
            got = rx => match got {
                Ok(()) => End::Granted,
                // Cannot happen: a sender goes unsent only in this future's
                // own abandon. Fail closed, as a timeout.
                Err(_) => End::TimedOut,
            },
            () = cancel.cancelled() => End::Cancelled,
            () = tokio::time::sleep_until(started + self.shared.timeout) => End::TimedOut,
        };
        let waited = started.elapsed();
        let (id, a) = waiting.disarm();
        let lane = a.lane;
        let outcome = match end {
            End::Granted => Ok(()),
            End::Cancelled => {
                // Granted meanwhile or not: the caller asked to stop.
                self.shared.with_book(|b| {
                    if b.abandon(id, Instant::now()).is_none() {
                        b.release(a.lane, &a.session, a.kind, Instant::now());
                    }
                });
                Err(Refused::Cancelled { lane, waited })
            }
            End::TimedOut => match self.shared.with_book(|b| b.abandon(id, Instant::now())) {
                // Granted at the deadline: take it.
                None => Ok(()),
                Some(stage) => Err(Refused::Timeout {
                    lane,
                    waited,
                    blocked: match stage {
                        Stage::Session => Blocked::Session,
                        Stage::Lane => Blocked::Lane,
                    },
                }),
            },
        };
        match outcome {
            Ok(()) => {
                meters.wait.observe(waited.as_secs_f64());
                Ok(self.permit(a))
            }
            Err(r) => Err(meters.refused(r)),
        }
    }

    /// Feed back what the provider said to a run of a group session (see
    /// the module doc). Call it while the run's permit is held.
    pub fn pressure(&self, session: &SessionId, signal: Pressure) {
        self.shared
            .with_book(|b| b.pressure(session, signal, Instant::now()));
    }

    /// The group allowance of a session the scheduler holds something for
    /// (runs, waiters or a remembered throttle).
    pub fn allowance(&self, session: &SessionId) -> Option<usize> {
        self.shared.with_book(|b| b.allowance(session))
    }

    /// Every lane's limit, permits held and admissions waiting.
    pub fn snapshot(&self) -> Vec<LaneState> {
        self.shared
            .with_book(|b| Lane::ALL.map(|lane| b.state(lane)).to_vec())
    }

    fn permit(&self, a: Admission) -> Permit {
        Permit {
            shared: self.shared.clone(),
            lane: a.lane,
            session: a.session,
            kind: a.kind,
        }
    }

    #[cfg(test)]
    fn with_book<T>(&self, f: impl FnOnce(&mut Book) -> T) -> T {
        self.shared.with_book(f)
    }
}

impl fmt::Debug for Lanes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lanes")
            .field("timeout", &self.shared.timeout)
            .field("lanes", &self.snapshot())
            .finish()
    }
}

/// A run's lane slot and session slot, released on drop.
#[must_use = "the run's slots are released when the permit is dropped"]
pub struct Permit {
    shared: Arc<Shared>,
    lane: Lane,
    session: SessionId,
    kind: SessionKind,
}

impl Permit {
    pub fn lane(&self) -> Lane {
        self.lane
    }

    pub fn session(&self) -> &SessionId {
        &self.session
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.shared
            .with_book(|b| b.release(self.lane, &self.session, self.kind, Instant::now()));
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("lane", &self.lane)
            .field("session", &self.session)
            .field("kind", &self.kind)
            .finish()
    }
}

/// A queued admission; dropped while armed (the admit future dropped
/// mid-wait), it takes the waiter out of the queues, or releases the slots
/// it was granted meanwhile.
struct Waiting<'a> {
    shared: &'a Shared,
    id: WaiterId,
    admission: Option<Admission>,
}

impl Waiting<'_> {
    fn disarm(mut self) -> (WaiterId, Admission) {
        let a = self.admission.take();
        // `admission` is `Some` until here: `disarm` consumes the guard.
        (self.id, a.expect("a waiting admission is disarmed once"))
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let Some(a) = self.admission.take() else {
            return;
        };
        let id = self.id;
        self.shared.with_book(|b| {
            if b.abandon(id, Instant::now()).is_none() {
                b.release(a.lane, &a.session, a.kind, Instant::now());
            }
        });
    }
}

#[cfg(test)]
mod tests;
