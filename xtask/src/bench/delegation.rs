//! `cargo xtask bench delegation`: what a delegation costs (issue 12).
//!
//! 1. Overhead: closed-loop turns at concurrency 1 through the release binary against the fake
//!    provider ([`FakeLlm`], whose scripted models ask for a tool in a turn's first call): a
//!    plain turn (one LLM call), a turn with one cheap tool call (`list_files`: two LLM calls),
//!    and a turn with one sync delegation (`delegate` to another agent: the caller's two calls
//!    plus the delegate's whole turn). The overhead is the delegating turn's p50 minus the plain
//!    turn's; the tool-call turn shows how much of it any second LLM call costs.
//! 2. Burst: 1,000 turns at once, each starting one async delegation; the bench waits until
//!    every result was announced into its caller's session, checks the history (1,000 `done`,
//!    each announced) and the fake's count of announcement calls (exactly 1,000, also after a
//!    quiet while), and reads the gateway's memory before, at its peak and once idle again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::fake_llm::FakeLlm;
use super::gateway::{Gateway, window_cache};
use super::http::{Conn, Response, post_json};
use super::load::{self, Load, Outcome, delta_ms, ms3};
use super::{Context, mib};
use crate::error::{Context as _, Result, bail};

/// The issue's target for the overhead.
const TARGET_OVERHEAD_P50_MS: f64 = 2.0;
/// Async delegations started at once.
const BURST: usize = 1000;
/// Bursts, one after the other: the later ones show whether what the first
/// left resident is a plateau (caches, retained pages) or a leak.
const BURSTS: usize = 4;
/// Client threads sending the burst.
const SENDERS: usize = 50;
/// How long the burst may take to be announced.
const BURST_LIMIT: Duration = Duration::from_secs(600);

pub fn run(ctx: &Context) -> Result<String> {
    let fake = FakeLlm::start()?;
    let config = super::fake_llm::config_with_window_idle(WINDOW_IDLE.as_secs());
    let mut gateway = super::fake_llm::start_gateway_with(ctx, &fake, "delegation", &config, &[])?;
    let token = ctx.binary.token().to_owned();
    setup(&gateway, &token)?;
    let mut rows = Vec::new();
    for (label, agent) in [
        ("plain turn (1 LLM call)", "default"),
        ("turn with one tool call (2 LLM calls)", "bench-tool"),
        (
            "turn with one sync delegation (3 LLM calls, 2 runs)",
            "bench-sync",
        ),
    ] {
        rows.push((label, measure(&gateway, &token, agent, ctx.seconds)));
        if !gateway.is_running() {
            bail!("the gateway died under load{}", gateway.log_tail());
        }
    }
    // The timed rows' sessions' windows expire first, so that the bursts' baseline holds none.
    thread::sleep(WINDOW_IDLE);
    let mut bursts = Vec::new();
    for round in 1..=BURSTS {
        bursts.push(burst(&mut gateway, &fake, &token, round)?);
    }
    // Past the windows' idle time (and the trim that drops them).
    thread::sleep(WINDOW_IDLE);
    let end = End {
        rss_kib: gateway.rss_kib()?,
        anon_kib: gateway.status_kib("RssAnon")?,
        windows: window_cache(gateway.addr(), &token)?,
    };
    gateway.stop()?;
    Ok(report(ctx, &rows, &bursts, &end))
}

/// `agents.window_cache_idle_sec` of the benchmark's gateway: a minute (10 by default).
const WINDOW_IDLE: Duration = Duration::from_secs(60);

/// The gateway once every burst's session windows have expired.
struct End {
    rss_kib: u64,
    anon_kib: u64,
    windows: String,
}

/// The agents (each on its scripted model) and the links of the benchmark.
fn setup(gateway: &Gateway, token: &str) -> Result<()> {
    let mut conn = Conn::new(gateway.addr(), Duration::from_secs(10));
    let mut post = |path: &str, body: &str| {
        super::fake_llm::post_created(&mut conn, gateway, token, path, body)
    };
    for (id, model) in [
        ("bench-helper", "gpt-4o-mini"),
        ("bench-tool", "bench-tool"),
        ("bench-sync", "bench-delegate-sync"),
        ("bench-async", "bench-delegate-async"),
    ] {
        post(
            "/v1/agents",
            &format!(r#"{{"id":"{id}","config":{{"model":"{model}"}}}}"#),
        )?;
    }
    for caller in ["bench-sync", "bench-async"] {
        post(
            &format!("/v1/agents/{caller}/links"),
            r#"{"target":"bench-helper"}"#,
        )?;
    }
    Ok(())
}

fn turn(gateway: &Gateway, token: &str, agent: &str, user: &str) -> Vec<u8> {
    let body = format!(
        r#"{{"model":"{agent}","messages":[{{"role":"user","content":"hi"}}],"user":"{user}"}}"#
    );
    post_json(gateway.addr(), "/v1/chat/completions", Some(token), &body)
}

fn check(response: &Response) -> Result<(), String> {
    let body = String::from_utf8_lossy(&response.body);
    if body.contains(r#""object":"chat.completion""#) {
        Ok(())
    } else {
        Err(format!("not a completion: {body}"))
    }
}

fn measure(gateway: &Gateway, token: &str, agent: &str, seconds: u64) -> Outcome {
    // Each request a fresh user: a new session, as a new conversation.
    let make =
        |worker: usize, i: u64| turn(gateway, token, agent, &format!("{agent}-{worker}-{i}"));
    eprintln!("xtask: delegation: {agent}, concurrency 1, {seconds} s");
    let outcome = load::run(
        &Load {
            addr: gateway.addr(),
            concurrency: 1,
            warm_up: Duration::from_secs(2),
            measure: Duration::from_secs(seconds),
            request: &make,
            check,
        },
        &mut |_| {},
    );
    eprintln!(
        "xtask: delegation:   {:.0}/s, p50 {} ms, {} errors",
        outcome.per_second(),
        outcome
            .latency()
            .map_or_else(|| "-".to_owned(), |l| ms3(l.p50)),
        outcome.errors
    );
    outcome
}

struct Burst {
    /// Time to send the 1,000 turns (each answers once its delegation started).
    started: Duration,
    /// Time until the last announcement.
    announced: Duration,
    announcements: u64,
    /// Announcement calls after a quiet while (must equal `announcements`).
    announcements_later: u64,
    done: usize,
    flagged: usize,
    errors: u64,
    rss_before_kib: u64,
    /// Of it, anonymous memory.
    anon_before_kib: u64,
    rss_after_kib: u64,
    /// RSS after one more period of the gateway's memory trim (30 s).
    rss_settled_kib: u64,
    /// Of it, anonymous memory (heaps, stacks).
    anon_settled_kib: u64,
    /// The history window cache then (`/metrics`).
    windows: String,
    hwm_kib: u64,
}

/// Longer than the gateway's `TRIM_EVERY`.
const TRIM_PERIOD: Duration = Duration::from_secs(32);

fn burst(gateway: &mut Gateway, fake: &FakeLlm, token: &str, round: usize) -> Result<Burst> {
    // Settle, then the baseline.
    thread::sleep(Duration::from_secs(3));
    let rss_before_kib = gateway.rss_kib()?;
    let anon_before_kib = gateway.status_kib("RssAnon")?;
    let announced_before = fake.announcements();
    let errors = AtomicU64::new(0);
    let began = Instant::now();
    thread::scope(|s| {
        for sender in 0..SENDERS {
            let errors = &errors;
            let gateway = &*gateway;
            s.spawn(move || {
                let mut conn = Conn::new(gateway.addr(), Duration::from_secs(120));
                for i in 0..BURST / SENDERS {
                    let req = turn(
                        gateway,
                        token,
                        "bench-async",
                        &format!("burst{round}-{sender}-{i}"),
                    );
                    match conn.send(&req) {
                        Ok(r) if r.status == 200 => {}
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    let started = began.elapsed();
    eprintln!(
        "xtask: delegation: {BURST} turns sent in {started:?}; waiting for the announcements"
    );
    let want = announced_before + BURST as u64;
    while fake.announcements() < want {
        if began.elapsed() > BURST_LIMIT {
            bail!(
                "only {} of {BURST} async delegations were announced within {BURST_LIMIT:?}{}",
                fake.announcements() - announced_before,
                gateway.log_tail()
            );
        }
        if !gateway.is_running() {
            bail!("the gateway died during the burst{}", gateway.log_tail());
        }
        thread::sleep(Duration::from_millis(50));
    }
    let announced = began.elapsed();
    // A quiet while: nothing is announced twice, memory settles.
    thread::sleep(Duration::from_secs(10));
    let announcements_later = fake.announcements() - announced_before;
    let (done, flagged) = history(gateway, token)?;
    let rss_after_kib = gateway.rss_kib()?;
    let hwm_kib = gateway.status_kib("VmHWM")?;
    thread::sleep(TRIM_PERIOD);
    let rss_settled_kib = gateway.rss_kib()?;
    let anon_settled_kib = gateway.status_kib("RssAnon")?;
    let windows = window_cache(gateway.addr(), token)?;
    Ok(Burst {
        windows,
        anon_before_kib,
        rss_settled_kib,
        anon_settled_kib,
        started,
        announced,
        announcements: want - announced_before,
        announcements_later,
        done,
        flagged,
        errors: errors.load(Ordering::Relaxed),
        rss_before_kib,
        rss_after_kib,
        hwm_kib,
    })
}

/// Async delegations `done`, and of those marked announced, from `GET /v1/delegations`.
fn history(gateway: &Gateway, token: &str) -> Result<(usize, usize)> {
    let mut conn = Conn::new(gateway.addr(), Duration::from_secs(30));
    let mut cursor: Option<String> = None;
    let (mut done, mut flagged) = (0, 0);
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/delegations?limit=1000&cursor={c}"),
            None => "/v1/delegations?limit=1000".to_owned(),
        };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\r\n",
            gateway.addr()
        );
        let r = conn
            .send(request.as_bytes())
            .context("GET /v1/delegations")?;
        if r.status != 200 {
            bail!("GET {path}: {}", r.status);
        }
        let body = String::from_utf8_lossy(&r.body).into_owned();
        // Counted textually (xtask has no JSON parser): one object per delegation.
        for item in body.split(r#""id":"#).skip(1) {
            if item.contains(r#""mode":"async""#) && item.contains(r#""status":"done""#) {
                done += 1;
                if item.contains(r#""announced":true"#) {
                    flagged += 1;
                }
            }
        }
        match body.split(r#""next_cursor":"#).nth(1).map(|rest| {
            rest.split([',', '}'])
                .next()
                .unwrap_or("null")
                .trim()
                .trim_matches('"')
                .to_owned()
        }) {
            Some(next) if next != "null" => cursor = Some(next),
            _ => break,
        }
    }
    Ok((done, flagged))
}

fn report(ctx: &Context, rows: &[(&str, Outcome)], bursts: &[Burst], end: &End) -> String {
    let mut out = String::new();
    out.push_str("### Delegation\n\n");
    out.push_str(&format!(
        "Binary `{}`; fake provider on loopback; concurrency 1, {} s per row after a 2 s warm-up; \
         each turn a new session on SQLite.\n\n",
        ctx.binary.path().display(),
        ctx.seconds
    ));
    out.push_str(
        "| turn | turns/s | p50 ms | p90 ms | p99 ms | errors |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for (label, o) in rows {
        let l = o.latency();
        let cell = |f: fn(&load::Latency) -> Duration| {
            l.as_ref().map_or_else(|| "-".to_owned(), |l| ms3(f(l)))
        };
        out.push_str(&format!(
            "| {label} | {:.0} | {} | {} | {} | {} |\n",
            o.per_second(),
            cell(|l| l.p50),
            cell(|l| l.p90),
            cell(|l| l.p99),
            o.errors
        ));
    }
    let p50 = |i: usize| rows[i].1.latency().map(|l| l.p50);
    if let (Some(plain), Some(tool), Some(sync)) = (p50(0), p50(1), p50(2)) {
        let overhead = delta_ms(sync, plain);
        let met = super::verdict(overhead <= TARGET_OVERHEAD_P50_MS);
        out.push_str(&format!(
            "\nDelegation overhead over a plain turn, p50: **{overhead:.2} ms** (target ≤ {TARGET_OVERHEAD_P50_MS} ms: {met}); \
             of it, a second LLM call and a tool call cost {:.2} ms (the tool-call turn), the delegate's own turn and the \
             bookkeeping the rest ({:.2} ms).\n",
            delta_ms(tool, plain),
            delta_ms(sync, tool)
        ));
    }
    for (i, b) in bursts.iter().enumerate() {
        out.push_str(&format!(
            "\nBurst {}: {BURST} async delegations started at once ({SENDERS} clients): sent in {:.2} s, all announced after {:.2} s; \
             announcement calls {} (after 10 s more: {}); history so far: {} done, {} announced; {} client errors. \
             Gateway RSS before {} (anonymous {}), peak so far {}, 10 s after {} ({:+.2} MiB), after a memory-trim period {} ({:+.2} MiB; anonymous {}; window cache {}).\n",
            i + 1,
            b.started.as_secs_f64(),
            b.announced.as_secs_f64(),
            b.announcements,
            b.announcements_later,
            b.done,
            b.flagged,
            b.errors,
            mib(b.rss_before_kib * 1024),
            mib(b.anon_before_kib * 1024),
            mib(b.hwm_kib * 1024),
            mib(b.rss_after_kib * 1024),
            (b.rss_after_kib as f64 - b.rss_before_kib as f64) / 1024.0,
            mib(b.rss_settled_kib * 1024),
            (b.rss_settled_kib as f64 - b.rss_before_kib as f64) / 1024.0,
            mib(b.anon_settled_kib * 1024),
            b.windows,
        ));
    }
    if let Some(first) = bursts.first() {
        out.push_str(&format!(
            "\n{} s after the last burst, its sessions' windows idle for longer than \
             `agents.window_cache_idle_sec` ({} s here; window cache {}): RSS {} ({:+.2} MiB against \
             before the first burst), anonymous {} ({:+.2} MiB).\n",
            WINDOW_IDLE.as_secs(),
            WINDOW_IDLE.as_secs(),
            end.windows,
            mib(end.rss_kib * 1024),
            (end.rss_kib as f64 - first.rss_before_kib as f64) / 1024.0,
            mib(end.anon_kib * 1024),
            (end.anon_kib as f64 - first.anon_before_kib as f64) / 1024.0,
        ));
    }
    out
}
