//! Overhead of the lane scheduler: `cargo bench -p exoclaw-gateway --bench
//! lanes`. Admit + release uncontended (one caller, a new direct session
//! each time: the session entry is made and removed every time), and with
//! 64 concurrent admitters on a 2-worker runtime in the `main` lane at its
//! default 30 slots, each holding its permit across one yield so that the
//! lane is full and waiters queue (8 tenants, one direct session each).
//! Prints p50/p95/max; BENCHMARKS.md records the figures.

#![allow(
    clippy::disallowed_macros,
    reason = "tests and benchmarks print what they measure"
)]
use exoclaw_core::{SessionId, TenantId};
use exoclaw_gateway::config::file::SchedulerConfig;
use exoclaw_gateway::metrics::Metrics;
use exoclaw_gateway::runtime::lanes::{Admission, Lane, Lanes, SessionKind};
use std::hint::black_box;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const BATCH: usize = 1_000;
const BATCHES: usize = 200;
const WARMUP: usize = 20;
const ADMITTERS: usize = 64;
const PER_ADMITTER: usize = 2_000;

fn admission(tenant: usize, session: usize) -> Admission {
    Admission {
        lane: Lane::Main,
        tenant: TenantId::new(format!("tenant-{tenant}")),
        session: SessionId::new(format!("session-{session}")),
        kind: SessionKind::Direct,
    }
}

fn ns(d: Duration) -> f64 {
    d.as_secs_f64() * 1e9
}

fn report(name: &str, unit: &str, scale: f64, times: &mut [Duration]) {
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "{name:<52} n={:<7} p50={:>9.1} {unit} p95={:>9.1} {unit} max={:>10.1} {unit}",
        times.len(),
        ns(at(0.50)) / scale,
        ns(at(0.95)) / scale,
        ns(at(1.0)) / scale,
    );
}

fn uncontended() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let lanes = Lanes::new(&SchedulerConfig::default(), &Metrics::new());
    let never = CancellationToken::new();
    let mut times = Vec::with_capacity(BATCHES);
    rt.block_on(async {
        for b in 0..WARMUP + BATCHES {
            let batch: Vec<Admission> = (0..BATCH).map(|i| admission(i % 8, i)).collect();
            let started = Instant::now();
            for a in batch {
                let permit = lanes.admit(a, &never).await.expect("a free lane");
                black_box(&permit);
            }
            if b >= WARMUP {
                times.push(started.elapsed());
            }
        }
    });
    report(
        "admit + release, uncontended (per admission)",
        "ns",
        BATCH as f64,
        &mut times,
    );
}

fn contended() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("a runtime");
    let lanes = Lanes::new(&SchedulerConfig::default(), &Metrics::new());
    let started = Instant::now();
    let mut waits = rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..ADMITTERS {
            let lanes = lanes.clone();
            tasks.spawn(async move {
                let never = CancellationToken::new();
                let mut waits = Vec::with_capacity(PER_ADMITTER);
                for _ in 0..PER_ADMITTER {
                    let a = admission(n % 8, n);
                    let asked = Instant::now();
                    let permit = lanes.admit(a, &never).await.expect("no timeout");
                    waits.push(asked.elapsed());
                    tokio::task::yield_now().await;
                    drop(permit);
                }
                waits
            });
        }
        let mut all = Vec::with_capacity(ADMITTERS * PER_ADMITTER);
        while let Some(done) = tasks.join_next().await {
            all.extend(done.expect("an admitter"));
        }
        all
    });
    let took = started.elapsed();
    let total = waits.len();
    println!(
        "{ADMITTERS} admitters x {PER_ADMITTER}, 30 slots, 2 workers: {total} admissions in {:.1} ms \
         = {:.0} ns per admit + yield + release, {:.2} M admissions/s",
        took.as_secs_f64() * 1e3,
        ns(took) / total as f64,
        total as f64 / took.as_secs_f64() / 1e6,
    );
    report(
        "  time in admit() (queueing included)",
        "µs",
        1e3,
        &mut waits,
    );
    let left: usize = lanes.snapshot().iter().map(|s| s.running + s.queued).sum();
    assert_eq!(left, 0, "every permit released");
}

fn main() {
    uncontended();
    contended();
}
