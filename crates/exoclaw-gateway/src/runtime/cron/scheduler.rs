//! The cron scheduler: one supervised task per gateway. It reads every
//! tenant's enabled jobs by next occurrence, sleeps until the soonest one
//! is due (plus its jitter), and is woken early when a job is created or
//! changed on this gateway; it looks again at least every
//! `cron.rescan_sec` for jobs other gateways on the same database changed,
//! and after a changed wall clock.
//!
//! Each due occurrence is claimed in the job store before anything runs
//! (`claim_job_run` under the job's run key and the occurrence's time):
//! exactly one of several gateways sharing a PostgreSQL wins it. Every
//! gateway then advances the job to its next occurrence (idempotent, never
//! backwards), and the winner starts the run ([`super::fire`]); runs go on
//! concurrently inside this task while it waits for the next one.
//!
//! Missed runs: an occurrence first seen more than [`MISSED_AFTER`] past its
//! time (plus the job's jitter) was missed while no gateway ran. The job's
//! policy decides: `skip` records the latest missed occurrence as `skipped`
//! (`error=missed:<n>`) and waits for the next; `run_once` runs the latest
//! missed occurrence once, now. Either way the job continues from the first
//! occurrence after now.
//!
//! At start, the runs this instance left `running` (it was killed) are
//! recorded as failed with `error=interrupted`.
//!
//! Jitter: an occurrence runs at a delay in `[0, jitter)` after its time,
//! derived from the job id and the occurrence, so every gateway computes
//! the same instant (no coordination needed, and the claim is still per
//! occurrence).

use super::super::Runtime;
use exoclaw_core::schedule::{Schedule, jittered};
use exoclaw_core::store::cron::CronJob;
use exoclaw_core::{UnixMillis, now_ms};
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt as _, StreamExt as _};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How late an occurrence may be noticed before it counts as missed: the
/// scheduler wakes within milliseconds of a due time, so a minute late
/// means no gateway was running then.
pub const MISSED_AFTER: Duration = Duration::from_secs(60);

/// The most jobs read per look (the soonest ones).
const BATCH: u32 = 1000;
/// The most missed occurrences counted for one job.
const MISSED_CAP: u32 = 10_000;

type Running = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Start the scheduler under the runtime's supervisor. Stopping the task
/// starts no further run and waits (within the stop's grace) for the runs
/// going to be recorded.
pub fn start(rt: &Arc<Runtime>) -> crate::supervisor::Task {
    let weak = Arc::downgrade(rt);
    let rescan = Duration::from_secs(rt.settings.config.cron.rescan_sec);
    // Restarted (with backoff) should it ever fail or panic: occurrences
    // it missed meanwhile are late, and their jobs' policy applies.
    rt.supervisor
        .start_restarting("cron.scheduler", move |stop| {
            let weak = weak.clone();
            async move {
                run(weak, rescan, stop).await;
                Ok(())
            }
        })
}

async fn run(rt: std::sync::Weak<Runtime>, rescan: Duration, stop: CancellationToken) {
    let mut running: FuturesUnordered<Running> = FuturesUnordered::new();
    let Some(first) = rt.upgrade() else { return };
    let wake = first.cron.wake.clone();
    // Runs this instance left `running` (a kill, or this task's restart)
    // will not be finished by anyone: their record says so.
    match first
        .store
        .interrupt_job_runs(first.delegations.owner(), now_ms())
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            runs = n,
            "scheduled runs interrupted by the last stop were marked"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "cannot mark the scheduled runs the last stop interrupted")
        }
    }
    drop(first);
    loop {
        let Some(rt_now) = rt.upgrade() else { break };
        let wait = tick(&rt_now, &mut running, rescan).await;
        drop(rt_now);
        tokio::select! {
            () = stop.cancelled() => break,
            () = wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
            Some(()) = running.next(), if !running.is_empty() => {}
        }
    }
    while running.next().await.is_some() {}
}

/// One look: start what is due, and say how long to sleep.
async fn tick(
    rt: &Arc<Runtime>,
    running: &mut FuturesUnordered<Running>,
    rescan: Duration,
) -> Duration {
    let now = now_ms();
    let jobs = match rt.store.due_cron_jobs(BATCH).await {
        Ok(j) => j,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the cron jobs; trying again later");
            return rescan;
        }
    };
    let mut wake_at = now.saturating_add(millis(rescan));
    for job in jobs {
        let Some(due) = job.next_run_at else { continue };
        let at = fire_at(&job, due);
        if at > now {
            wake_at = wake_at.min(at);
            continue;
        }
        if let Some(fut) = handle(rt, job, due, now).await {
            running.push(fut);
        }
    }
    Duration::from_millis(u64::try_from(wake_at.saturating_sub(now_ms())).unwrap_or(0))
}

/// When occurrence `due` of `job` runs: its time plus the job's jitter.
pub fn fire_at(job: &CronJob, due: UnixMillis) -> UnixMillis {
    let max = Duration::from_millis(u64::try_from(job.jitter_ms).unwrap_or(0));
    jittered(due, max, unit(&job.id, due))
}

/// A value in `[0, 1)` from the job id and the occurrence (FNV-1a).
fn unit(id: &str, due: UnixMillis) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes().chain(due.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h >> 11) as f64 / (1u64 << 53) as f64
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// What the scheduler does with an occurrence it found due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The occurrence to claim (and run, or record as skipped).
    pub occurrence: UnixMillis,
    /// The job's next occurrence after this one.
    pub next: Option<UnixMillis>,
    /// Set when `due` was missed while no gateway ran: how many occurrences
    /// were (`occurrence` is the latest of them).
    pub missed: Option<u32>,
}

/// The plan for occurrence `due` of `schedule` (a job with `jitter_ms`),
/// found due at `now`: on time (at most [`MISSED_AFTER`] past its jittered
/// time) it is the occurrence and the next follows it; later, the
/// occurrences in `[due, now]` were missed, the latest stands for them and
/// the next is the first after `now`.
pub fn plan(schedule: &Schedule, jitter_ms: i64, due: UnixMillis, now: UnixMillis) -> Plan {
    if now.saturating_sub(due) <= millis(MISSED_AFTER).saturating_add(jitter_ms) {
        return Plan {
            occurrence: due,
            next: schedule.next_after(due),
            missed: None,
        };
    }
    let m = schedule.missed_runs(due - 1, now, MISSED_CAP);
    Plan {
        occurrence: m.latest.unwrap_or(due),
        next: schedule.next_after(now),
        missed: Some(m.count),
    }
}

/// What to do with due occurrence `due` of `job`: claim (the occurrence, or
/// the latest missed one), advance the job, and the run to start if this
/// gateway won it.
async fn handle(
    rt: &Arc<Runtime>,
    job: CronJob,
    due: UnixMillis,
    now: UnixMillis,
) -> Option<Running> {
    let schedule = match super::parse_schedule(&job.schedule) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(job = %job.id, error = %e, "a stored cron schedule does not parse; disabling the job");
            let _ = rt
                .store
                .disable_cron_job(&job.tenant_id, &job.id, "invalid_schedule", now)
                .await;
            return None;
        }
    };
    let Plan {
        occurrence,
        next,
        missed,
    } = plan(&schedule, job.jitter_ms, due, now);
    let owner = rt.delegations.owner().to_owned();
    let key = job.run_key();
    let won = match rt
        .store
        .claim_job_run(&job.tenant_id, &key, occurrence, &owner, now)
        .await
    {
        Ok(won) => won,
        Err(e) => {
            tracing::warn!(error = %e, job = %job.id, "cannot claim a cron occurrence; trying again later");
            return None;
        }
    };
    if let Err(e) = rt
        .store
        .advance_cron_job(&job.tenant_id, &job.id, occurrence, next, now)
        .await
    {
        tracing::warn!(error = %e, job = %job.id, "cannot advance a cron job");
    }
    if !won {
        tracing::debug!(job = %job.id, due_at = occurrence, "another gateway took this cron occurrence");
        return None;
    }
    if let Some(count) = missed
        && job.missed == exoclaw_core::store::cron::MissedPolicy::Skip
    {
        tracing::info!(
            event = "cron.missed",
            job = %job.id,
            missed = count,
            "cron occurrences missed while no gateway ran; skipped by the job's policy"
        );
        let detail = super::detail(None, Some(&format!("missed:{count}")));
        if let Err(e) = rt
            .store
            .finish_job_run(
                &job.tenant_id,
                &key,
                occurrence,
                "skipped",
                detail.as_deref(),
                now,
            )
            .await
        {
            tracing::warn!(error = %e, job = %job.id, "cannot record a skipped cron occurrence");
        }
        return None;
    }
    let rt = rt.clone();
    Some(Box::pin(async move {
        // A panic of one run is that run's failure, not the scheduler's.
        let ran = AssertUnwindSafe(super::fire::fire(&rt, &job, occurrence))
            .catch_unwind()
            .await;
        if ran.is_err() {
            tracing::error!(job = %job.id, due_at = occurrence, "a cron run panicked");
            let detail = super::detail(None, Some("internal"));
            let _ = rt
                .store
                .finish_job_run(
                    &job.tenant_id,
                    &job.run_key(),
                    occurrence,
                    "failed",
                    detail.as_deref(),
                    now_ms(),
                )
                .await;
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An RFC 3339 instant in milliseconds: the fake clock of these tables
    /// (read by the schedule parser, as `at <t>`).
    fn ms(t: &str) -> UnixMillis {
        match schedule(&format!("at {t}")).kind() {
            exoclaw_core::schedule::Kind::At(at) => *at,
            other => panic!("{other:?}"),
        }
    }

    fn schedule(text: &str) -> Schedule {
        super::super::parse_schedule(text).unwrap()
    }

    fn check(
        text: &str,
        jitter_ms: i64,
        due: &str,
        now: &str,
        want: (&str, Option<&str>, Option<u32>),
    ) {
        let got = plan(&schedule(text), jitter_ms, ms(due), ms(now));
        let (occurrence, next, missed) = want;
        assert_eq!(
            got,
            Plan {
                occurrence: ms(occurrence),
                next: next.map(ms),
                missed,
            },
            "{text} due {due} at {now}"
        );
    }

    #[test]
    fn on_time_runs_are_the_occurrence_and_the_next_follows_it() {
        // Found a few seconds late (a busy machine): still on time.
        check(
            "every 15m",
            0,
            "2026-05-01T09:00:00Z",
            "2026-05-01T09:00:07Z",
            ("2026-05-01T09:00:00Z", Some("2026-05-01T09:15:00Z"), None),
        );
        // Up to a minute plus the jitter late is on time too.
        check(
            "every 1h",
            300_000,
            "2026-05-01T09:00:00Z",
            "2026-05-01T09:05:59Z",
            ("2026-05-01T09:00:00Z", Some("2026-05-01T10:00:00Z"), None),
        );
        // A one-shot has no next.
        check(
            "at 2026-05-01T09:00:00Z",
            0,
            "2026-05-01T09:00:00Z",
            "2026-05-01T09:00:00Z",
            ("2026-05-01T09:00:00Z", None, None),
        );
    }

    #[test]
    fn downtime_across_dst_month_ends_and_leap_days_is_missed_runs() {
        // Berlin springs forward on 2026-03-29: 02:30 does not exist that
        // night; the fixed-time job runs once at 03:00 CEST (01:00 UTC).
        // Down from the 28th to the 30th: the 28th and the 29th missed.
        check(
            "cron 30 2 * * * in Europe/Berlin",
            0,
            "2026-03-28T01:30:00Z",
            "2026-03-30T12:00:00Z",
            (
                "2026-03-30T00:30:00Z",
                Some("2026-03-31T00:30:00Z"),
                Some(3),
            ),
        );
        // Falling back on 2026-10-25: 02:30 happens twice, the job runs at
        // the first only.
        check(
            "cron 30 2 * * * in Europe/Berlin",
            0,
            "2026-10-24T00:30:00Z",
            "2026-10-25T06:00:00Z",
            (
                "2026-10-25T00:30:00Z",
                Some("2026-10-26T01:30:00Z"),
                Some(2),
            ),
        );
        // The 31st, down from January to April: January and March missed
        // (February and April have no 31st).
        check(
            "cron 0 9 31 * *",
            0,
            "2026-01-31T09:00:00Z",
            "2026-04-01T00:00:00Z",
            (
                "2026-03-31T09:00:00Z",
                Some("2026-05-31T09:00:00Z"),
                Some(2),
            ),
        );
        // The last day of the month (`L`) in a leap February.
        check(
            "cron 0 12 L * *",
            0,
            "2028-01-31T12:00:00Z",
            "2028-03-01T00:00:00Z",
            (
                "2028-02-29T12:00:00Z",
                Some("2028-03-31T12:00:00Z"),
                Some(2),
            ),
        );
        // 29 February: a day late, then four years to the next (2100 is no
        // leap year; 2032 is).
        check(
            "cron 0 0 29 2 *",
            0,
            "2028-02-29T00:00:00Z",
            "2028-03-01T00:00:00Z",
            (
                "2028-02-29T00:00:00Z",
                Some("2032-02-29T00:00:00Z"),
                Some(1),
            ),
        );
        // An interval: the count is arithmetic, the grid is kept.
        check(
            "every 1h",
            0,
            "2026-05-01T09:00:00Z",
            "2026-05-02T09:30:00Z",
            (
                "2026-05-02T09:00:00Z",
                Some("2026-05-02T10:00:00Z"),
                Some(25),
            ),
        );
        // A one-shot missed: it stands alone, nothing follows.
        check(
            "at 2026-05-01T09:00:00Z",
            0,
            "2026-05-01T09:00:00Z",
            "2026-05-03T00:00:00Z",
            ("2026-05-01T09:00:00Z", None, Some(1)),
        );
    }

    #[test]
    fn jitter_is_the_same_on_every_gateway_and_within_bounds() {
        let mut job = CronJob {
            tenant_id: "default".into(),
            id: "j1".to_owned(),
            agent_id: "default".into(),
            user_id: "admin".into(),
            name: "n".to_owned(),
            schedule: "every 1h".to_owned(),
            message: "m".to_owned(),
            delivery: exoclaw_core::store::cron::Delivery::Session { session: None },
            missed: Default::default(),
            jitter_ms: 0,
            enabled: true,
            disabled_reason: None,
            next_run_at: None,
            last_run_at: None,
            created_by: "api".to_owned(),
            created_at: 0,
            updated_at: 0,
        };
        assert_eq!(fire_at(&job, 1_000), 1_000, "no jitter, no delay");
        job.jitter_ms = 30_000;
        let mut delays = std::collections::BTreeSet::new();
        for k in 0..50 {
            let due = 3_600_000 * k;
            let at = fire_at(&job, due);
            assert_eq!(at, fire_at(&job, due), "deterministic");
            assert!((due..due + 30_000).contains(&at), "{k}: {at}");
            delays.insert(at - due);
        }
        assert!(delays.len() > 40, "spread out: {delays:?}");
    }
}
