//! The lane scheduler's rules, each on a scenario. Waiting admissions are
//! boxed futures polled by hand (`poll`), so every test decides exactly when
//! a waiter looks again; time is paused and moved with `advance`.

use super::*;
use crate::config::file::{LaneConfig, SchedulerConfig};
use exoclaw_core::TenantId;
use futures_util::FutureExt as _;
use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::time::advance;

type Asked<'a> = Pin<Box<dyn Future<Output = Result<Permit, Refused>> + 'a>>;

fn config(main: u32, group: u32, timeout_sec: u64) -> SchedulerConfig {
    let mut c = SchedulerConfig::default();
    c.lanes.main = LaneConfig { concurrency: main };
    c.group_concurrency = group;
    c.queue_timeout_sec = timeout_sec;
    c
}

fn scheduler(c: &SchedulerConfig) -> (Lanes, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    (Lanes::new(c, &metrics), metrics)
}

fn direct(tenant: &str, session: &str) -> Admission {
    Admission {
        lane: Lane::Main,
        tenant: TenantId::new(tenant),
        session: SessionId::new(session),
        kind: SessionKind::Direct,
    }
}

fn group(tenant: &str, session: &str) -> Admission {
    Admission {
        kind: SessionKind::Group,
        ..direct(tenant, session)
    }
}

fn ask<'a>(lanes: &'a Lanes, a: Admission, cancel: &'a CancellationToken) -> Asked<'a> {
    Box::pin(lanes.admit(a, cancel))
}

/// Poll once: `None` while it waits.
fn poll(f: &mut Asked<'_>) -> Option<Result<Permit, Refused>> {
    f.as_mut().now_or_never()
}

#[track_caller]
fn granted(f: &mut Asked<'_>) -> Permit {
    match poll(f) {
        Some(Ok(p)) => p,
        Some(Err(r)) => panic!("refused: {r}"),
        None => panic!("still waiting"),
    }
}

#[track_caller]
fn waits(f: &mut Asked<'_>) {
    assert!(poll(f).is_none(), "admitted or refused, expected to wait");
}

#[track_caller]
fn refused(f: &mut Asked<'_>) -> Refused {
    match poll(f) {
        Some(Err(r)) => r,
        Some(Ok(_)) => panic!("admitted, expected a refusal"),
        None => panic!("still waiting, expected a refusal"),
    }
}

fn main_lane(lanes: &Lanes) -> LaneState {
    lanes.snapshot()[Lane::Main.index()]
}

fn assert_nothing_left(lanes: &Lanes) {
    assert!(lanes.with_book(|b| b.is_empty()), "bookkeeping left behind");
    for s in lanes.snapshot() {
        assert_eq!((s.running, s.queued), (0, 0), "{s:?}");
    }
}

/// The value of one series in the OpenMetrics text.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lane_limit_holds_under_200_concurrent_admissions() {
    let (lanes, _) = scheduler(&config(8, 3, 120));
    let held = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let per_session = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200_usize {
        let (lanes, held, most, per_session) = (
            lanes.clone(),
            held.clone(),
            most.clone(),
            per_session.clone(),
        );
        tasks.spawn(async move {
            let s = i % 40;
            let (session, a) = (format!("s{s}"), format!("t{}", i % 7));
            let a = if s % 2 == 0 {
                group(&a, &session)
            } else {
                direct(&a, &session)
            };
            let cap = if s % 2 == 0 { 3 } else { 1 };
            let permit = lanes.admit(a, &CancellationToken::new()).await.unwrap();
            let now = held.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            {
                let mut m = per_session.lock().unwrap();
                let n = m.entry(session.clone()).or_default();
                *n += 1;
                assert!(*n <= cap, "session {session} ran {n} at once (cap {cap})");
            }
            for _ in 0..3 {
                tokio::task::yield_now().await;
            }
            *per_session.lock().unwrap().get_mut(&session).unwrap() -= 1;
            held.fetch_sub(1, Ordering::SeqCst);
            drop(permit);
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let most = most.load(Ordering::SeqCst);
    assert!((1..=8).contains(&most), "{most} permits held at once");
    assert_nothing_left(&lanes);
}

#[tokio::test(start_paused = true)]
async fn a_full_lane_admits_exactly_its_limit() {
    let (lanes, _) = scheduler(&config(3, 3, 120));
    let never = CancellationToken::new();
    let mut asked: Vec<Asked<'_>> = (0..5)
        .map(|i| ask(&lanes, direct("t", &format!("s{i}")), &never))
        .collect();
    let mut permits: Vec<Permit> = asked[..3].iter_mut().map(granted).collect();
    waits(&mut asked[3]);
    waits(&mut asked[4]);
    assert_eq!(
        (main_lane(&lanes).running, main_lane(&lanes).queued),
        (3, 2)
    );
    drop(permits.remove(0));
    permits.push(granted(&mut asked[3]));
    waits(&mut asked[4]);
    assert_eq!(main_lane(&lanes).running, 3);
    drop(permits);
    drop(granted(&mut asked[4]));
    assert_nothing_left(&lanes);
}

#[tokio::test(start_paused = true)]
async fn a_direct_session_runs_one_at_a_time_in_arrival_order_across_lanes() {
    let (lanes, _) = scheduler(&config(10, 3, 120));
    let never = CancellationToken::new();
    let mut asked: Vec<Asked<'_>> = (0..10)
        .map(|i| {
            let lane = [Lane::Main, Lane::Subagent, Lane::Cron][i % 3];
            ask(
                &lanes,
                Admission {
                    lane,
                    ..direct("t", "s")
                },
                &never,
            )
        })
        .collect();
    let mut current = granted(&mut asked[0]);
    for next in 1..10 {
        for later in &mut asked[next..] {
            waits(later);
        }
        drop(current);
        current = granted(&mut asked[next]);
        assert_eq!(
            current.lane(),
            [Lane::Main, Lane::Subagent, Lane::Cron][next % 3]
        );
        let running: usize = lanes.snapshot().iter().map(|s| s.running).sum();
        assert_eq!(running, 1, "two turns of one session at once");
    }
    drop(current);
    assert_nothing_left(&lanes);
}

#[tokio::test(start_paused = true)]
async fn a_group_session_runs_up_to_its_allowance() {
    let (lanes, _) = scheduler(&config(30, 3, 120));
    let never = CancellationToken::new();
    let mut asked: Vec<Asked<'_>> = (0..5)
        .map(|_| ask(&lanes, group("t", "g"), &never))
        .collect();
    let mut permits: Vec<Permit> = asked[..3].iter_mut().map(granted).collect();
    waits(&mut asked[3]);
    waits(&mut asked[4]);
    assert_eq!(lanes.allowance(&SessionId::new("g")), Some(3));
    drop(permits.pop());
    permits.push(granted(&mut asked[3]));
    waits(&mut asked[4]);
    drop(permits);
    drop(granted(&mut asked[4]));
    assert_nothing_left(&lanes);
}

#[tokio::test(start_paused = true)]
async fn overload_halves_a_group_allowance_and_successes_give_it_back() {
    let (lanes, _) = scheduler(&config(30, 4, 120));
    let never = CancellationToken::new();
    let g = SessionId::new("g");
    let mut asked: Vec<Asked<'_>> = (0..5)
        .map(|_| ask(&lanes, group("t", "g"), &never))
        .collect();
    let mut permits: Vec<Permit> = asked[..4].iter_mut().map(granted).collect();
    waits(&mut asked[4]);

    lanes.pressure(&g, Pressure::Overloaded);
    assert_eq!(lanes.allowance(&g), Some(2));
    // Runs already going keep going; the waiter needs fewer than 2 running.
    drop(permits.pop());
    waits(&mut asked[4]);
    drop(permits.pop());
    waits(&mut asked[4]);
    drop(permits.pop());
    permits.push(granted(&mut asked[4]));

    lanes.pressure(&g, Pressure::Overloaded);
    assert_eq!(lanes.allowance(&g), Some(1));
    lanes.pressure(&g, Pressure::Overloaded);
    assert_eq!(lanes.allowance(&g), Some(1), "never below one");

    // Two running, allowance 1: a newcomer waits until a raise.
    let mut more = ask(&lanes, group("t", "g"), &never);
    waits(&mut more);
    let mut steps = Vec::new();
    for signal in [Pressure::Ok, Pressure::Ok, Pressure::Overloaded] {
        lanes.pressure(&g, signal);
    }
    steps.push(lanes.allowance(&g));
    for _ in 0..3 {
        lanes.pressure(&g, Pressure::Ok);
    }
    steps.push(lanes.allowance(&g));
    waits(&mut more);
    for _ in 0..3 {
        lanes.pressure(&g, Pressure::Ok);
    }
    steps.push(lanes.allowance(&g));
    // A raise to 3 with 2 running lets the waiter in at once.
    permits.push(granted(&mut more));
    for _ in 0..6 {
        lanes.pressure(&g, Pressure::Ok);
    }
    steps.push(lanes.allowance(&g));
    assert_eq!(
        steps,
        [Some(1), Some(2), Some(3), Some(4)],
        "an overload restarts the streak; three successes give one back, up to the maximum"
    );
    drop(permits);
    assert_nothing_left(&lanes);
}

#[tokio::test(start_paused = true)]
async fn a_lowered_allowance_outlives_the_burst_then_is_forgotten() {
    let (lanes, _) = scheduler(&config(30, 3, 120));
    let never = CancellationToken::new();
    let g = SessionId::new("g");
    let first = granted(&mut ask(&lanes, group("t", "g"), &never));
    lanes.pressure(&g, Pressure::Overloaded);
    drop(first);
    assert_eq!(lanes.allowance(&g), Some(1), "remembered while idle");

    advance(Duration::from_secs(60)).await;
    let next = granted(&mut ask(&lanes, group("t", "g"), &never));
    let mut second = ask(&lanes, group("t", "g"), &never);
    waits(&mut second);
    drop(next);
    drop(granted(&mut second));

    advance(queue::THROTTLE_MEMORY).await;
    // Any admission forgets what is due.
    drop(granted(&mut ask(&lanes, direct("t", "other"), &never)));
    assert_eq!(lanes.allowance(&g), None);
    assert_nothing_left(&lanes);

    lanes.pressure(&SessionId::new("unknown"), Pressure::Overloaded);
    assert_eq!(lanes.allowance(&SessionId::new("unknown")), None, "ignored");
    lanes.with_book(|b| b.forget_idle_at(Instant::now()));
    assert_nothing_left(&lanes);
}

#[tokio::test(start_paused = true)]
async fn a_lone_run_of_another_tenant_is_not_starved_by_a_long_queue() {
    let (lanes, _) = scheduler(&config(1, 3, 120));
    let never = CancellationToken::new();
    let mut holder = Some(granted(&mut ask(&lanes, direct("a", "a-hold"), &never)));
    let mut asked: Vec<(String, Asked<'_>)> = (0..100)
        .map(|i| {
            let s = format!("a{i}");
            let f = ask(&lanes, direct("a", &s), &never);
            (s, f)
        })
        .collect();
    asked.push(("b0".to_owned(), ask(&lanes, direct("b", "b0"), &never)));
    for (_, f) in &mut asked {
        waits(f);
    }
    let mut order = Vec::new();
    while !asked.is_empty() {
        drop(holder.take());
        let ready: Vec<usize> = (0..asked.len())
            .filter(|&i| {
                let (s, f) = &mut asked[i];
                match poll(f) {
                    Some(Ok(p)) => {
                        order.push(s.clone());
                        holder = Some(p);
                        true
                    }
                    Some(Err(r)) => panic!("{r}"),
                    None => false,
                }
            })
            .collect();
        assert_eq!(ready.len(), 1, "one slot, one admission per release");
        drop(asked.remove(ready[0]));
    }
    drop(holder);
    let b_at = order.iter().position(|s| s == "b0").unwrap();
    assert!(b_at <= 1, "b admitted after {b_at} of a's runs");
    let a_order: Vec<&String> = order.iter().filter(|s| s.starts_with('a')).collect();
    let want: Vec<String> = (0..100).map(|i| format!("a{i}")).collect();
    assert!(
        a_order.iter().zip(&want).all(|(g, w)| *g == w),
        "a's runs in order"
    );
    assert_nothing_left(&lanes);
}

#[tokio::test(start_paused = true)]
async fn a_busy_session_does_not_hold_up_its_tenants_other_sessions() {
    let (lanes, _) = scheduler(&config(2, 3, 120));
    let never = CancellationToken::new();
    let s1 = granted(&mut ask(&lanes, direct("a", "s1"), &never));
    let mut s1_next = ask(&lanes, direct("a", "s1"), &never);
    waits(&mut s1_next);
    // The waiter of s1 holds no lane slot: s2 gets the second one.
    let s2 = granted(&mut ask(&lanes, direct("a", "s2"), &never));
    assert_eq!(
        (main_lane(&lanes).running, main_lane(&lanes).queued),
        (2, 1)
    );

    let mut s3 = ask(&lanes, direct("b", "s3"), &never);
    waits(&mut s3);
    drop(s1);
    // s1's next turn now waits for the lane, behind b who waited there first.
    waits(&mut s1_next);
    let s3 = granted(&mut s3);
    drop(s2);
    let s1_next = granted(&mut s1_next);
    drop((s3, s1_next));
    assert_nothing_left(&lanes);
}

#[tokio::test(start_paused = true)]
async fn a_session_s_first_waiter_giving_up_lets_the_next_one_on() {
    let (lanes, _) = scheduler(&config(1, 3, 120));
    let never = CancellationToken::new();
    let other = granted(&mut ask(&lanes, direct("b", "x"), &never));
    // The first holds the session's slot while it waits for the lane.
    let mut first = ask(&lanes, direct("a", "s"), &never);
    let mut second = ask(&lanes, direct("a", "s"), &never);
    waits(&mut first);
    waits(&mut second);
    drop(first);
    drop(other);
    drop(granted(&mut second));
    assert_nothing_left(&lanes);
}

#[tokio::test(start_paused = true)]
async fn a_timeout_refuses_and_says_what_held_it_up_and_what_to_raise() {
    let (lanes, _) = scheduler(&config(1, 3, 5));
    let never = CancellationToken::new();
    let held = granted(&mut ask(&lanes, direct("a", "s1"), &never));
    let mut lane_wait = ask(&lanes, direct("b", "s2"), &never);
    let mut session_wait = ask(&lanes, direct("a", "s1"), &never);
    waits(&mut lane_wait);
    waits(&mut session_wait);
    advance(Duration::from_millis(4_999)).await;
    waits(&mut lane_wait);
    advance(Duration::from_millis(1)).await;

    let r = refused(&mut lane_wait);
    assert_eq!(
        r,
        Refused::Timeout {
            lane: Lane::Main,
            waited: Duration::from_secs(5),
            blocked: Blocked::Lane
        }
    );
    assert!(r.is_retryable());
    assert_eq!(
        r.to_string(),
        "no slot in the main lane after 5.0s: every one was taken; raise \
         scheduler.lanes.main.concurrency, or scheduler.queue_timeout_sec to wait longer"
    );

    let r = refused(&mut session_wait);
    assert!(matches!(
        r,
        Refused::Timeout {
            blocked: Blocked::Session,
            ..
        }
    ));
    let msg = r.to_string();
    assert!(msg.contains("main lane") && msg.contains("scheduler.queue_timeout_sec"));
    assert!(!msg.contains("lanes.main.concurrency"), "{msg}");
    drop(held);
    assert_nothing_left(&lanes);
}

#[tokio::test(start_paused = true)]
async fn cancellation_refuses_and_names_the_lane() {
    let mut c = config(30, 3, 120);
    c.lanes.subagent = LaneConfig { concurrency: 1 };
    let (lanes, _) = scheduler(&c);
    let never = CancellationToken::new();
    let sub = |s: &str| Admission {
        lane: Lane::Subagent,
        ..direct("t", s)
    };
    let held = granted(&mut ask(&lanes, sub("s1"), &never));
    let stop = CancellationToken::new();
    let mut waiting = ask(&lanes, sub("s2"), &stop);
    waits(&mut waiting);
    advance(Duration::from_secs(2)).await;
    stop.cancel();
    let r = refused(&mut waiting);
    assert_eq!(
        r,
        Refused::Cancelled {
            lane: Lane::Subagent,
            waited: Duration::from_secs(2)
        }
    );
    assert!(!r.is_retryable());
    assert_eq!(
        r.to_string(),
        "cancelled after 2.0s waiting for a slot in the subagent lane (its size is \
         scheduler.lanes.subagent.concurrency)"
    );
    drop(held);

    // Already cancelled: refused even with slots free.
    let r = refused(&mut ask(&lanes, sub("s3"), &stop));
    assert_eq!(r.reason(), "cancelled");
    assert_nothing_left(&lanes);
}

#[tokio::test(start_paused = true)]
async fn a_grant_at_the_deadline_is_kept_and_one_to_a_dropped_admission_is_passed_on() {
    let (lanes, _) = scheduler(&config(1, 3, 5));
    let never = CancellationToken::new();
    let held = granted(&mut ask(&lanes, direct("a", "s1"), &never));
    let mut at_deadline = ask(&lanes, direct("a", "s2"), &never);
    waits(&mut at_deadline);
    advance(Duration::from_secs(5)).await;
    drop(held);
    let held = granted(&mut at_deadline);

    let mut gone = ask(&lanes, direct("b", "s3"), &never);
    let mut next = ask(&lanes, direct("c", "s4"), &never);
    waits(&mut gone);
    waits(&mut next);
    drop(held);
    // `gone` holds the slot now but is dropped before it looks.
    drop(gone);
    drop(granted(&mut next));
    assert_nothing_left(&lanes);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_permit_frees_its_slots_also_when_its_holder_panics() {
    let (lanes, _) = scheduler(&config(1, 3, 120));
    let never = CancellationToken::new();
    let permit = granted(&mut ask(&lanes, direct("a", "s1"), &never));
    let mut next = ask(&lanes, direct("a", "s1"), &never);
    waits(&mut next);
    let run = AssertUnwindSafe(async move {
        let _permit = permit;
        tokio::task::yield_now().await;
        panic!("the run fails");
    })
    .catch_unwind()
    .await;
    assert!(run.is_err());
    let permit = granted(&mut next);
    assert_eq!(main_lane(&lanes).running, 1);
    drop(permit);
    assert_nothing_left(&lanes);
}

#[tokio::test(start_paused = true)]
async fn ten_thousand_admissions_cancellations_and_timeouts_leave_nothing_behind() {
    let (lanes, _) = scheduler(&config(1, 2, 1));
    let never = CancellationToken::new();
    for i in 0..10_000 {
        let (t, s) = (format!("t{}", i % 13), format!("s{i}"));
        let other = format!("o{i}");
        let holder = granted(&mut ask(&lanes, direct(&t, &s), &never));
        match i % 7 {
            0 => {}
            // Dropped while behind its own session.
            1 => waits(&mut ask(&lanes, direct(&t, &s), &never)),
            // Dropped while waiting for the lane.
            2 => waits(&mut ask(&lanes, group(&t, &other), &never)),
            3 => {
                let stop = CancellationToken::new();
                let mut f = ask(&lanes, direct(&t, &other), &stop);
                waits(&mut f);
                stop.cancel();
                refused(&mut f);
            }
            4 => {
                let mut f = ask(&lanes, direct(&t, &s), &never);
                waits(&mut f);
                advance(Duration::from_secs(1)).await;
                refused(&mut f);
            }
            5 => {
                // Granted, then dropped before it looks.
                let mut f = ask(&lanes, group(&t, &other), &never);
                waits(&mut f);
                drop(holder);
                drop(f);
                continue;
            }
            _ => {
                let mut f = ask(&lanes, group(&t, &s), &never);
                waits(&mut f);
                drop(holder);
                drop(granted(&mut f));
                continue;
            }
        }
        drop(holder);
    }
    assert_nothing_left(&lanes);
}

#[tokio::test]
async fn the_book_gives_back_the_room_of_a_burst() {
    let (lanes, _) = scheduler(&config(1, 2, 60));
    let never = CancellationToken::new();
    let holder = granted(&mut ask(&lanes, direct("t0", "held"), &never));
    let mut burst = Vec::new();
    for i in 0..1_000 {
        let mut f = ask(
            &lanes,
            direct(&format!("t{}", i % 300), &format!("s{i}")),
            &never,
        );
        waits(&mut f);
        burst.push(f);
    }
    assert!(lanes.with_book(|b| b.room()) >= 2_000);
    drop(burst);
    drop(holder);
    assert_nothing_left(&lanes);
    let room = lanes.with_book(|b| b.room());
    assert!(room < 1_000, "the book kept room for {room} entries");
    // And it admits again.
    drop(granted(&mut ask(&lanes, direct("t1", "after"), &never)));
}

#[tokio::test(start_paused = true)]
async fn metrics_count_by_lane_and_reason_only() {
    let (lanes, metrics) = scheduler(&config(1, 3, 3));
    let never = CancellationToken::new();
    let first = granted(&mut ask(&lanes, direct("tenant-x", "session-y"), &never));
    let mut second = ask(&lanes, direct("tenant-x", "session-z"), &never);
    waits(&mut second);
    advance(Duration::from_secs(2)).await;
    drop(first);
    let second = granted(&mut second);

    let mut late = ask(&lanes, direct("tenant-x", "session-w"), &never);
    waits(&mut late);
    advance(Duration::from_secs(3)).await;
    refused(&mut late);
    let stop = CancellationToken::new();
    let mut stopped = ask(&lanes, direct("tenant-x", "session-v"), &stop);
    waits(&mut stopped);
    stop.cancel();
    refused(&mut stopped);
    let mut queued = ask(&lanes, direct("tenant-x", "session-u"), &never);
    waits(&mut queued);

    let t = metrics.encode();
    assert_eq!(value(&t, r#"exoclaw_lane_running{lane="main"}"#), 1.0);
    assert_eq!(value(&t, r#"exoclaw_lane_queued{lane="main"}"#), 1.0);
    assert_eq!(value(&t, r#"exoclaw_lane_running{lane="cron"}"#), 0.0);
    assert_eq!(
        value(&t, r#"exoclaw_lane_wait_seconds_count{lane="main"}"#),
        2.0
    );
    assert_eq!(
        value(&t, r#"exoclaw_lane_wait_seconds_sum{lane="main"}"#),
        2.0
    );
    assert_eq!(
        value(
            &t,
            r#"exoclaw_lane_refusals_total{lane="main",reason="timeout"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &t,
            r#"exoclaw_lane_refusals_total{lane="main",reason="cancelled"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &t,
            r#"exoclaw_lane_refusals_total{lane="delegate",reason="timeout"}"#
        ),
        0.0
    );
    assert!(
        !t.contains("tenant-x") && !t.contains("session-"),
        "ids in labels"
    );

    drop(queued);
    drop(second);
    let t = metrics.encode();
    assert_eq!(value(&t, r#"exoclaw_lane_running{lane="main"}"#), 0.0);
    assert_eq!(value(&t, r#"exoclaw_lane_queued{lane="main"}"#), 0.0);
    assert_nothing_left(&lanes);
}

#[test]
fn a_permit_and_a_waiting_admission_can_move_between_threads() {
    fn send<T: Send>(_: &T) {}
    fn send_static<T: Send + 'static>() {}
    send_static::<Permit>();
    send_static::<Lanes>();
    let (lanes, _) = scheduler(&SchedulerConfig::default());
    let never = CancellationToken::new();
    send(&lanes.admit(direct("t", "s"), &never));
}
