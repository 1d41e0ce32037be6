//! `cargo xtask bench history`: a turn's cost as sessions grow (issue 17, point 8).
//!
//! The proxy benchmark's setup (std fake provider, the release gateway on SQLite, closed-loop
//! load over keep-alive connections), but every request continues an existing session (the
//! OpenAI API's `user` field names it) instead of opening a fresh one. The store is filled
//! through the gateway itself, then each case is measured at concurrency 1 and 64 against a fresh
//! session per request as the baseline:
//!
//! - 1,024 sessions of 10 turns;
//! - 1,000 sessions of 100 turns (100,000 stored turns across 1,000 sessions);
//! - 64 sessions of 1,000 turns.
//!
//! The measured requests add turns too, so the report gives each case's session length at the
//! start and at the end of its measurements. Added latency is the case's p50 minus the direct
//! p50 of the fake provider (the same request the gateway makes for a fresh session).
//!
//! Then each case is compared with a fresh store at concurrency 64 (see [`paired`]): a second
//! gateway on a new data dir, both pinned to one core and the harness to the other, measured in
//! alternating slices.

use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::fake_llm::{FakeLlm, start_gateway_with};
use super::gateway::Gateway;
use super::http::{Conn, post_json};
use super::load::{self, Latency, Load, Outcome, delta_ms, ms3};
use super::proxy::{
    WARM_UP, check_completion, completion_request, measure_direct, measure_direct_with,
};
use super::{Context, cpu, mib};
use crate::error::{Context as _, Result, bail};

/// (turns per session, sessions) of each case.
const CASES: [(u64, usize); 3] = [(10, 1024), (100, 1000), (1000, 64)];
const CONCURRENCY: [usize; 2] = [1, 64];
/// Threads that fill the store.
const FILLERS: usize = 64;
/// The issue's targets.
const TARGET_ADDED_P50_MS: f64 = 1.0;
const TARGET_PER_SECOND: f64 = 2000.0;
const TARGET_RATE_VS_FRESH: f64 = 0.9;
/// `agents.window_cache_mib` of both gateways. The 100-turn case's 1,000 sessions grow to about
/// 190 turns while measured, some 130 MiB of windows by the cache's estimate: more than the
/// default 96 MiB (sized for about 1,300 sessions of 100 short turns), and a session whose
/// window is not cached reads it from the store at every turn.
const WINDOW_CACHE_MIB: u64 = 256;

/// The benchmarks' gateway config with a window cache for every case's sessions.
fn config() -> String {
    super::fake_llm::GATEWAY_CONFIG.replace(
        r#""agents": {"#,
        &format!(r#""agents": {{"window_cache_mib": {WINDOW_CACHE_MIB}, "#),
    )
}

pub fn run(ctx: &Context) -> Result<String> {
    let fake = FakeLlm::start()?;
    let mut gateway = start_gateway_with(ctx, &fake, "history", &config(), &[])?;
    let pid = gateway.pid().context("the gateway is not running")?;
    let token = ctx.binary.token().to_owned();
    let rss_ready = gateway.rss_kib()?;

    let mut direct = Vec::new();
    for c in CONCURRENCY {
        direct.push(measure_direct(&fake, c, ctx.seconds));
    }
    let mut rows = Vec::new();
    for c in CONCURRENCY {
        let make =
            |w: usize, i: u64| completion_request(&gateway, &token, &format!("fresh{c}"), w, i);
        let before = cpu::Snapshot::take(pid)?;
        let outcome = measure(&gateway, c, ctx.seconds, &make, "fresh sessions");
        let after = cpu::Snapshot::take(pid)?;
        rows.push(Row {
            case: "fresh session per request".to_owned(),
            turns: None,
            same: same_request(&fake, c, ctx.seconds),
            outcome,
            cpu: after.since(&before),
        });
    }

    let mut fill_report = Vec::new();
    let mut pairs = Vec::new();
    for (turns, sessions) in CASES {
        let tag = format!("n{turns}");
        let started = Instant::now();
        fill(&gateway, &token, &tag, sessions, turns)?;
        fill_report.push((turns, sessions, started.elapsed()));
        if !gateway.is_running() {
            bail!("the gateway died while filling{}", gateway.log_tail());
        }
        // First the comparison with a fresh store, while the sessions are as filled: every
        // measured request adds a turn, and the 1,000-turn case's 64 sessions grow by some 30
        // turns a second each at concurrency 64.
        let pair = paired(ctx, &fake, &gateway, &token, &tag, (turns, sessions))?;
        let sent = AtomicU64::new(pair.sent);
        pairs.push(pair);
        for c in CONCURRENCY {
            let started = sent.load(Ordering::Relaxed);
            // Worker w of c takes sessions w, w + c, w + 2c, ... in turn, so no two workers
            // share a session (one turn at a time per session would make them queue).
            let per_worker = (sessions / c).max(1);
            let make = |w: usize, i: u64| {
                sent.fetch_add(1, Ordering::Relaxed);
                let session = w + c * (i as usize % per_worker);
                session_request(&gateway, &token, &tag, session)
            };
            let before = cpu::Snapshot::take(pid)?;
            let outcome = measure(
                &gateway,
                c,
                ctx.seconds,
                &make,
                &format!("{sessions} sessions of {turns} turns"),
            );
            let after = cpu::Snapshot::take(pid)?;
            let same = same_request(&fake, c, ctx.seconds);
            rows.push(Row {
                case: format!("{sessions} sessions of {turns} turns"),
                same,
                turns: Some((
                    turns + started / sessions as u64,
                    turns + sent.load(Ordering::Relaxed).div_ceil(sessions as u64),
                )),
                outcome,
                cpu: after.since(&before),
            });
        }
        if !gateway.is_running() {
            bail!("the gateway died under load{}", gateway.log_tail());
        }
    }
    let rss_after = gateway.rss_kib()?;
    let hwm = gateway.status_kib("VmHWM")?;
    gateway.stop()?;
    Ok(report(
        ctx,
        &direct,
        &rows,
        &fill_report,
        &pairs,
        [rss_ready, rss_after, hwm],
    ))
}

/// The cores of the paired comparison: both gateways on the first, this process (the load
/// generator and the fake provider) on the second.
const GATEWAY_CORE: &str = "0";
const HARNESS_CORE: &str = "1";
/// The paired slices, `true` for the case: fresh store, case, case, fresh store, then the
/// other way round, so that a steady drift of the machine's speed cancels out and each side
/// has four slices.
const ABBA: [bool; 8] = [false, true, true, false, true, false, false, true];

/// One case against a fresh store at concurrency 64, each gateway on its own core.
struct Pair {
    case: String,
    /// Completions/s of the fresh store's slices and of the case's, in [`ABBA`] order.
    fresh_rates: Vec<f64>,
    case_rates: Vec<f64>,
    /// Gateway CPU per request (ms), over each side's slices.
    fresh_cpu_ms: f64,
    case_cpu_ms: f64,
    errors: u64,
    /// Turns per session as filled, the sessions, and the requests sent to them (each added
    /// a turn).
    filled: u64,
    session_count: usize,
    sent: u64,
}

impl Pair {
    fn ratio(&self) -> f64 {
        self.case_rates.iter().sum::<f64>() / self.fresh_rates.iter().sum::<f64>().max(1e-9)
    }
}

/// The case's sessions against a gateway on a fresh store (a new data dir, a fresh session per
/// request) at concurrency 64, in [`ABBA`] slices, with both gateways pinned to one core and
/// this process to the other. On shared cores the harness's own work grows with the session:
/// the fake provider reads the longer request the gateway sends it (0.2 ms at 1,000 turns
/// against 0.06 for a fresh session's), and that time is taken from the gateway's cores. On
/// its own core the gateway's rate is limited by its own cost per turn only.
fn paired(
    ctx: &Context,
    fake: &FakeLlm,
    case: &Gateway,
    token: &str,
    tag: &str,
    (turns, sessions): (u64, usize),
) -> Result<Pair> {
    let c = 64;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if cores < 2 {
        bail!("the paired comparison needs 2 cores, this machine gives {cores}");
    }
    let all = format!("0-{}", cores - 1);
    let fresh = start_gateway_with(
        ctx,
        fake,
        &format!("history-fresh-store-{tag}"),
        &config(),
        &[],
    )?;
    let (case_pid, fresh_pid) = (
        case.pid().context("the gateway is not running")?,
        fresh
            .pid()
            .context("the fresh store's gateway is not running")?,
    );
    let own = std::process::id();
    pin(case_pid, GATEWAY_CORE)?;
    pin(fresh_pid, GATEWAY_CORE)?;
    pin(own, HARNESS_CORE)?;
    let measured = (|| -> Result<Pair> {
        let label = format!("{sessions} sessions of {turns}");
        let per_worker = (sessions / c).max(1);
        let mut pair = Pair {
            case: format!("{label} turns"),
            fresh_rates: Vec::new(),
            case_rates: Vec::new(),
            fresh_cpu_ms: 0.0,
            case_cpu_ms: 0.0,
            errors: 0,
            filled: turns,
            session_count: sessions,
            sent: 0,
        };
        let (mut fresh_cpu, mut case_cpu) = (Duration::ZERO, Duration::ZERO);
        let (mut fresh_requests, mut case_requests) = (0, 0);
        for (slice, is_case) in ABBA.into_iter().enumerate() {
            let (gateway, pid) = if is_case {
                (case, case_pid)
            } else {
                (&fresh, fresh_pid)
            };
            let store_tag = format!("store-{tag}-{slice}");
            let make = |w: usize, i: u64| {
                if is_case {
                    session_request(gateway, token, tag, w + c * (i as usize % per_worker))
                } else {
                    completion_request(gateway, token, &store_tag, w, i)
                }
            };
            let name = if is_case {
                format!("{label} turns, own core")
            } else {
                "a fresh store, own core".to_owned()
            };
            let before = cpu::Snapshot::take(pid)?;
            let outcome = measure(gateway, c, ctx.seconds, &make, &name);
            let used = cpu::Snapshot::take(pid)?.since(&before).gateway;
            pair.errors += outcome.errors;
            if is_case {
                pair.case_rates.push(outcome.per_second());
                case_cpu += used;
                case_requests += outcome.requests;
            } else {
                pair.fresh_rates.push(outcome.per_second());
                fresh_cpu += used;
                fresh_requests += outcome.requests;
            }
        }
        let per = |cpu: Duration, n: u64| cpu.as_secs_f64() * 1000.0 / n.max(1) as f64;
        pair.fresh_cpu_ms = per(fresh_cpu, fresh_requests);
        pair.case_cpu_ms = per(case_cpu, case_requests);
        pair.sent = case_requests;
        Ok(pair)
    })();
    let unpinned = pin(own, &all).and(pin(case_pid, &all));
    fresh.stop()?;
    unpinned?;
    measured
}

/// Every thread of process `pid` on `cores` (`taskset -a -p -c`).
fn pin(pid: u32, cores: &str) -> Result<()> {
    let out = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", cores, &pid.to_string()])
        .output()
        .context("running taskset (util-linux)")?;
    if !out.status.success() {
        bail!(
            "taskset -a -p -c {cores} {pid}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// At concurrency 1, the provider's own time for the request the gateway
/// sent it last (the same bytes, straight to the fake): what a turn costs
/// the provider, so the gateway's share is the difference. A long session's
/// request is long, and reading it is the provider's work, not the
/// gateway's.
fn same_request(fake: &FakeLlm, concurrency: usize, seconds: u64) -> Option<Outcome> {
    (concurrency == 1).then(|| {
        let body = String::from_utf8_lossy(&fake.last_request_body()).into_owned();
        eprintln!(
            "xtask: history: direct with the gateway's last request ({} bytes)",
            body.len()
        );
        measure_direct_with(fake, 1, seconds, &body)
    })
}

/// A turn in session `session` of case `tag`.
fn session_request(gateway: &Gateway, token: &str, tag: &str, session: usize) -> Vec<u8> {
    let body = format!(
        r#"{{"model":"default","messages":[{{"role":"user","content":"hi"}}],"user":"hist-{tag}-{session}"}}"#
    );
    post_json(gateway.addr(), "/v1/chat/completions", Some(token), &body)
}

/// `turns` turns in each of `sessions` sessions, through the gateway, by [`FILLERS`] threads
/// (each session is filled by one thread, so its turns run one after another).
pub fn fill(gateway: &Gateway, token: &str, tag: &str, sessions: usize, turns: u64) -> Result<()> {
    eprintln!("xtask: history: filling {sessions} sessions with {turns} turns each");
    let failures = AtomicU64::new(0);
    let first_error = std::sync::Mutex::new(None::<String>);
    thread::scope(|scope| {
        for filler in 0..FILLERS {
            let (failures, first_error) = (&failures, &first_error);
            scope.spawn(move || {
                let mut conn = Conn::new(gateway.addr(), load::REQUEST_TIMEOUT);
                for session in (filler..sessions).step_by(FILLERS) {
                    let request = session_request(gateway, token, tag, session);
                    for _ in 0..turns {
                        let outcome =
                            conn.send(&request)
                                .map_err(|e| e.to_string())
                                .and_then(|response| {
                                    if response.status == 200 {
                                        check_completion(&response)
                                    } else {
                                        Err(format!("status {}", response.status))
                                    }
                                });
                        if let Err(e) = outcome {
                            failures.fetch_add(1, Ordering::Relaxed);
                            if let Ok(mut first) = first_error.lock() {
                                first.get_or_insert(e);
                            }
                            conn = Conn::new(gateway.addr(), load::REQUEST_TIMEOUT);
                        }
                    }
                }
            });
        }
    });
    let failed = failures.load(Ordering::Relaxed);
    if failed > 0 {
        let first = first_error
            .lock()
            .ok()
            .and_then(|f| f.clone())
            .unwrap_or_default();
        bail!("{failed} turns failed while filling the store, first: {first}");
    }
    Ok(())
}

fn measure(
    gateway: &Gateway,
    concurrency: usize,
    seconds: u64,
    request: &(dyn Fn(usize, u64) -> Vec<u8> + Sync),
    label: &str,
) -> Outcome {
    eprintln!("xtask: history: {label}, concurrency {concurrency}, {seconds} s");
    let outcome = load::run(
        &Load {
            addr: gateway.addr(),
            concurrency,
            warm_up: WARM_UP,
            measure: Duration::from_secs(seconds),
            request,
            check: check_completion,
        },
        &mut |_| {},
    );
    eprintln!(
        "xtask: history:   {:.0}/s, p50 {} ms, {} errors",
        outcome.per_second(),
        outcome
            .latency()
            .map_or_else(|| "-".to_owned(), |l| ms3(l.p50)),
        outcome.errors
    );
    outcome
}

struct Row {
    case: String,
    /// Session length (turns) at the start and the end of the case's measurements.
    turns: Option<(u64, u64)>,
    /// At concurrency 1: the fake provider's own latency for the request
    /// the gateway last sent it (see [`same_request`]).
    same: Option<Outcome>,
    outcome: Outcome,
    cpu: cpu::Usage,
}

fn report(
    ctx: &Context,
    direct: &[Outcome],
    rows: &[Row],
    fills: &[(u64, usize, Duration)],
    pairs: &[Pair],
    [ready, after, hwm]: [u64; 3],
) -> String {
    let mut text = String::from("### A turn's cost as sessions grow\n\n");
    text.push_str(&format!(
        "The proxy benchmark's fake provider, load generator and gateway (SQLite under the scratch \
         dir), but each request continues an existing session (`user` names it): `POST \
         /v1/chat/completions`, non-streaming, no tools, {} s warm-up then {} s measured per row. \
         The store is filled through the gateway first ({} threads, each session by one of them); \
         the measured requests add turns as well, so the session length is given at the start and \
         end of each case. Added p50 is the row's p50 minus the direct p50 at the same \
         concurrency (direct, a one-message request: {}); at concurrency 1, the gateway's share \
         is the row's p50 minus the fake provider's p50 for the very request the gateway last \
         sent it (the same bytes, sent straight to the fake: a long session's request takes the \
         provider longer to read, which is not the gateway's cost). `agents.window_cache_mib` is \
         {WINDOW_CACHE_MIB} (96 by default): the 100-turn case's sessions grow to about 190 turns \
         while measured, more windows than the default holds. **Load generator, fake provider \
         and gateway share the same {} cores.**\n\n",
        WARM_UP.as_secs(),
        ctx.seconds,
        FILLERS,
        direct
            .iter()
            .map(|o| format!(
                "c={} p50 {} ms",
                o.concurrency,
                o.latency().map_or_else(|| "-".to_owned(), |l| ms3(l.p50))
            ))
            .collect::<Vec<_>>()
            .join(", "),
        std::thread::available_parallelism().map_or(0, usize::from),
    ));
    text.push_str(
        "| case | turns per session | concurrency | p50 | p99 | added p50 | provider p50, same request | gateway's share of p50 | completions/s | vs fresh | gateway CPU per turn | errors |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let fresh_rate = |c: usize| {
        rows.iter()
            .find(|r| r.turns.is_none() && r.outcome.concurrency == c)
            .map_or(0.0, |r| r.outcome.per_second())
    };
    let direct_p50 = |c: usize| {
        direct
            .iter()
            .find(|o| o.concurrency == c)
            .and_then(Outcome::latency)
    };
    let mut verdicts = Vec::new();
    for row in rows {
        let o = &row.outcome;
        let c = o.concurrency;
        let latency = o.latency();
        let added = match (latency, direct_p50(c)) {
            (Some(g), Some(d)) => Some(delta_ms(g.p50, d.p50)),
            _ => None,
        };
        let same = row.same.as_ref().and_then(Outcome::latency);
        let share = match (latency, same) {
            (Some(g), Some(d)) => Some(delta_ms(g.p50, d.p50)),
            _ => None,
        };
        let ratio = o.per_second() / fresh_rate(c).max(1e-9);
        let turns = row
            .turns
            .map_or_else(|| "0".to_owned(), |(a, b)| format!("{a} → {b}"));
        text.push_str(&format!(
            "| {} | {turns} | {c} | {} | {} | {} | {} | {} | {:.0} | {} | {:.3} ms | {} |\n",
            row.case,
            cell(latency, |l| l.p50),
            cell(latency, |l| l.p99),
            added.map_or_else(|| "-".to_owned(), |a| format!("{a:+.3}")),
            cell(same, |l| l.p50),
            share.map_or_else(|| "-".to_owned(), |a| format!("{a:+.3}")),
            o.per_second(),
            if row.turns.is_some() {
                format!("{:.0}%", ratio * 100.0)
            } else {
                "-".to_owned()
            },
            row.cpu.gateway.as_secs_f64() * 1000.0 / (o.requests.max(1) as f64),
            o.errors,
        ));
        if c == 1 {
            verdicts.push((
                format!("gateway's share of p50 ≤ 1 ms, {}", row.case),
                share.is_some_and(|a| a <= TARGET_ADDED_P50_MS) && o.errors == 0,
                share.map_or_else(|| "-".to_owned(), |a| format!("{a:+.3} ms")),
            ));
        } else {
            verdicts.push((
                format!("≥ 2,000 completions/s at c=64, {}", row.case),
                o.per_second() >= TARGET_PER_SECOND && o.errors == 0,
                format!("{:.0}/s", o.per_second()),
            ));
        }
    }
    text.push_str(&format!(
        "\nThe same cases at concurrency 64 against a fresh store (a second gateway on a new data \
         dir, a fresh session per request), **both gateways pinned to core {GATEWAY_CORE} and the \
         load generator and fake provider to core {HARNESS_CORE}**, in slices of {} s (after {} s \
         of warm-up) in the order fresh store, case, case, fresh store, case, fresh store, fresh \
         store, case; the ratio is the case's completions over the fresh store's. The \"vs fresh\" column \
         above shares the cores with the harness, whose own work grows with the session (the fake \
         provider reads the longer request); here each gateway's rate is bounded by its own cost \
         per turn.\n\n\
         | case | turns per session | fresh store, completions/s | the case, completions/s | case vs fresh store | gateway CPU per turn, fresh store / case | errors |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
        ctx.seconds,
        WARM_UP.as_secs(),
    ));
    let list = |v: &[f64]| {
        v.iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for pair in pairs {
        let ratio = pair.ratio();
        text.push_str(&format!(
            "| {} | {} → {} | {} | {} | {:.0}% | {:.3} / {:.3} ms | {} |\n",
            pair.case,
            pair.filled,
            pair.filled + pair.sent.div_ceil(pair.session_count as u64),
            list(&pair.fresh_rates),
            list(&pair.case_rates),
            ratio * 100.0,
            pair.fresh_cpu_ms,
            pair.case_cpu_ms,
            pair.errors,
        ));
        verdicts.push((
            format!(
                "completions/s within 10% of a fresh store at c=64, {} (own core)",
                pair.case
            ),
            ratio >= TARGET_RATE_VS_FRESH && pair.errors == 0,
            format!("{:.0}%", ratio * 100.0),
        ));
    }
    text.push_str("\n| filling | time | turns/s |\n|---|---:|---:|\n");
    for (turns, sessions, took) in fills {
        let total = *turns as f64 * *sessions as f64;
        text.push_str(&format!(
            "| {sessions} sessions × {turns} turns | {:.1} s | {:.0} |\n",
            took.as_secs_f64(),
            total / took.as_secs_f64().max(1e-9)
        ));
    }
    text.push_str("\n| target (issue 17.8, 2 cores) | result | |\n|---|---|---|\n");
    for (what, met, result) in verdicts {
        text.push_str(&format!(
            "| {what} | {result} | {} |\n",
            super::verdict(met)
        ));
    }
    text.push_str(&format!(
        "\n| gateway memory | value |\n|---|---:|\n| RSS after ready | {} |\n| RSS after the load | {} |\n| peak RSS (VmHWM) | {} |\n",
        mib(ready * 1024),
        mib(after * 1024),
        mib(hwm * 1024)
    ));
    text
}

fn cell(l: Option<Latency>, pick: fn(&Latency) -> Duration) -> String {
    l.map_or_else(|| "-".to_owned(), |l| ms3(pick(&l)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_config_sizes_the_window_cache() {
        let c = super::config();
        assert!(c.contains(r#""agents": {"window_cache_mib": 256, "defaults""#));
        assert_eq!(c.matches('{').count(), c.matches('}').count());
    }
}
