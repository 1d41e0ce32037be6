//! `cargo xtask bench proxy`: what the gateway adds on top of an LLM provider (issue 3).
//!
//! The std-only fake provider ([`FakeLlm`]) answers on loopback at once. The same closed-loop
//! load ([`load`]) runs against it directly (streaming, the request the gateway itself makes)
//! and through the gateway (`POST /v1/chat/completions`, non-streaming, no tools, each request a
//! fresh `user` and so a new session persisted on SQLite), at concurrency 1 and 64. Added
//! latency is gateway minus direct, per percentile. The load generator, the fake provider and
//! the gateway share the machine's cores, which the report says.

use std::time::Duration;

use super::fake_llm::{API_KEY, FakeLlm, start_gateway};
use super::gateway::Gateway;
use super::http::{Response, post_json};
use super::load::{self, Latency, Load, Outcome, delta_ms, ms3};
use super::{Context, cpu, filesystem_of, mib};
use crate::error::{Context as _, Result, bail};

/// Concurrency levels of the issue.
const CONCURRENCY: [usize; 2] = [1, 64];
/// Warm-up before every measurement window.
pub const WARM_UP: Duration = Duration::from_secs(2);
/// The issue's targets.
const TARGET_ADDED_P50_MS: f64 = 1.0;
const TARGET_PER_SECOND: f64 = 2000.0;

/// The answer the fake gives, as the gateway returns it.
const ANSWER: &str = "Hello from the fake provider.";

pub fn run(ctx: &Context) -> Result<String> {
    let fake = FakeLlm::start()?;
    let mut gateway = start_gateway(ctx, &fake, "proxy")?;
    let rss_before = gateway.rss_kib()?;
    let mut rows = Vec::new();
    let pid = gateway.pid().context("the gateway is not running")?;
    for concurrency in CONCURRENCY {
        let before = cpu::Snapshot::take(pid)?;
        let direct = measure_direct(&fake, concurrency, ctx.seconds);
        let between = cpu::Snapshot::take(pid)?;
        let calls_before = fake.completions();
        let through = measure_gateway(
            &gateway,
            ctx.binary.token(),
            concurrency,
            ctx.seconds,
            &format!("c{concurrency}"),
        );
        let provider_calls = fake.completions() - calls_before;
        if !gateway.is_running() {
            bail!("the gateway died under load{}", gateway.log_tail());
        }
        let after = cpu::Snapshot::take(pid)?;
        rows.push(Row {
            direct,
            through,
            provider_calls,
            direct_cpu: between.since(&before),
            gateway_cpu: after.since(&between),
        });
    }
    let rss_after = gateway.rss_kib()?;
    let hwm = gateway.status_kib("VmHWM")?;
    let log = gateway.log_lines(20);
    gateway.stop()?;
    Ok(report(ctx, &rows, [rss_before, rss_after, hwm], &log))
}

/// The load against the fake provider itself: the streaming request the gateway makes.
pub fn measure_direct(fake: &FakeLlm, concurrency: usize, seconds: u64) -> Outcome {
    let body = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}"#;
    measure_direct_with(fake, concurrency, seconds, body)
}

/// [`measure_direct`] with `body` as the request (such as the one the gateway last sent).
pub fn measure_direct_with(
    fake: &FakeLlm,
    concurrency: usize,
    seconds: u64,
    body: &str,
) -> Outcome {
    let addr = fake.addr();
    let request = post_json(addr, "/v1/chat/completions", Some(API_KEY), body);
    let make = move |_worker: usize, _i: u64| request.clone();
    eprintln!("xtask: proxy: direct, concurrency {concurrency}, {seconds} s");
    let outcome = load::run(
        &Load {
            addr,
            concurrency,
            warm_up: WARM_UP,
            measure: Duration::from_secs(seconds),
            request: &make,
            check: check_sse,
        },
        &mut |_| {},
    );
    progress("direct", &outcome);
    outcome
}

/// The load through the gateway: `request` builds each request (see [`completion_request`]).
pub fn gateway_load<'a>(
    gateway: &Gateway,
    concurrency: usize,
    warm_up: Duration,
    measure: Duration,
    request: &'a (dyn Fn(usize, u64) -> Vec<u8> + Sync),
) -> Load<'a> {
    Load {
        addr: gateway.addr(),
        concurrency,
        warm_up,
        measure,
        request,
        check: check_completion,
    }
}

/// Request `i` of worker `worker` through the gateway: a fresh `user`, so a new session
/// (`tag` keeps users unique across the measurements of one gateway).
pub fn completion_request(
    gateway: &Gateway,
    token: &str,
    tag: &str,
    worker: usize,
    i: u64,
) -> Vec<u8> {
    let body = format!(
        r#"{{"model":"default","messages":[{{"role":"user","content":"hi"}}],"user":"bench-{tag}-{worker}-{i}"}}"#
    );
    post_json(gateway.addr(), "/v1/chat/completions", Some(token), &body)
}

fn measure_gateway(
    gateway: &Gateway,
    token: &str,
    concurrency: usize,
    seconds: u64,
    tag: &str,
) -> Outcome {
    let make = |worker: usize, i: u64| completion_request(gateway, token, tag, worker, i);
    eprintln!("xtask: proxy: gateway, concurrency {concurrency}, {seconds} s");
    let load = gateway_load(
        gateway,
        concurrency,
        WARM_UP,
        Duration::from_secs(seconds),
        &make,
    );
    let outcome = load::run(&load, &mut |_| {});
    progress("gateway", &outcome);
    outcome
}

fn progress(label: &str, outcome: &Outcome) {
    let p50 = outcome
        .latency()
        .map_or_else(|| "-".to_owned(), |l| ms3(l.p50));
    eprintln!(
        "xtask: proxy:   {label}: {:.0}/s, p50 {p50} ms, {} errors",
        outcome.per_second(),
        outcome.errors
    );
}

/// A streamed answer is complete when it ends with `[DONE]`.
pub fn check_sse(response: &Response) -> Result<(), String> {
    if response.body.ends_with(b"data: [DONE]\n\n") {
        Ok(())
    } else {
        Err("the stream did not end with data: [DONE]".to_owned())
    }
}

/// The gateway's JSON answer carries the fake's text.
pub fn check_completion(response: &Response) -> Result<(), String> {
    let body = String::from_utf8_lossy(&response.body);
    if body.contains(r#""object":"chat.completion""#) && body.contains(ANSWER) {
        Ok(())
    } else {
        Err(format!(
            "unexpected answer: {}",
            body.chars().take(200).collect::<String>()
        ))
    }
}

struct Row {
    direct: Outcome,
    through: Outcome,
    /// Requests the fake provider answered during the gateway measurement (warm-up included).
    provider_calls: u64,
    /// CPU use during each measurement (warm-up included).
    direct_cpu: cpu::Usage,
    gateway_cpu: cpu::Usage,
}

fn report(ctx: &Context, rows: &[Row], [before, after, hwm]: [u64; 3], log: &str) -> String {
    let mut text = String::from("### Proxy latency and throughput\n\n");
    text.push_str(&format!(
        "Fake OpenAI-compatible provider (std, thread per connection, chunked SSE) and the gateway \
         on loopback; closed-loop load, one keep-alive connection per worker, {} s warm-up then \
         {} s measured per row. Through the gateway: `POST /v1/chat/completions`, non-streaming, \
         no tools, a fresh `user` per request (a new session persisted on SQLite under `{}`, {}). \
         Direct: the same load against the fake provider, streaming. **The load generator, the \
         fake provider and the gateway share the same {} cores.**\n\n",
        WARM_UP.as_secs(),
        ctx.seconds,
        ctx.scratch.display(),
        filesystem_of(&ctx.scratch),
        std::thread::available_parallelism().map_or(0, usize::from),
    ));
    if !ctx.gateway_env.is_empty() {
        let vars: Vec<String> = ctx
            .gateway_env
            .iter()
            .map(|(k, v)| format!("`{k}={v}`"))
            .collect();
        text.push_str(&format!("Gateway started with {}.\n\n", vars.join(", ")));
    }
    text.push_str(
        "| concurrency | direct p50 | direct p99 | gateway p50 | gateway p99 | added p50 | added p99 | completions/s | errors |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in rows {
        let (d, g) = (row.direct.latency(), row.through.latency());
        let added = |pick: fn(&Latency) -> Duration| match (d, g) {
            (Some(d), Some(g)) => format!("{:+.3}", delta_ms(pick(&g), pick(&d))),
            _ => "-".to_owned(),
        };
        let cell = |l: Option<Latency>, pick: fn(&Latency) -> Duration| {
            l.map_or_else(|| "-".to_owned(), |l| ms3(pick(&l)))
        };
        text.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.0} | {} |\n",
            row.through.concurrency,
            cell(d, |l| l.p50),
            cell(d, |l| l.p99),
            cell(g, |l| l.p50),
            cell(g, |l| l.p99),
            added(|l| l.p50),
            added(|l| l.p99),
            row.through.per_second(),
            errors_cell(&row.direct, &row.through),
        ));
    }
    text.push_str("\nLatencies in ms (nearest-rank percentiles of the requests completed in the window); errors are direct / gateway over the whole run, warm-up included.\n\n");
    text.push_str(&details(rows));
    text.push_str("\nCPU from `/proc` (10 ms ticks) over warm-up and window: the gateway's time per request sent, and cores kept busy by the gateway, by xtask (load generator and fake provider) and by every other process on the machine (a non-zero last figure means something else was running).\n");
    text.push_str(&targets(rows));
    text.push_str(&format!(
        "\n| gateway memory | value |\n|---|---:|\n| RSS after ready, before the load | {} |\n| RSS after the load | {} |\n| peak RSS (VmHWM) | {} |\n",
        mib(before * 1024),
        mib(after * 1024),
        mib(hwm * 1024)
    ));
    let errors: Vec<String> = rows
        .iter()
        .flat_map(|row| [("direct", &row.direct), ("gateway", &row.through)])
        .filter_map(|(label, o)| {
            o.first_error.as_ref().map(|e| {
                format!(
                    "- {label}, concurrency {}: {} errors, first: {e}\n",
                    o.concurrency, o.errors
                )
            })
        })
        .collect();
    if !errors.is_empty() {
        text.push_str("\n**Errors**\n\n");
        text.push_str(&errors.concat());
    }
    if !log.trim().is_empty() {
        text.push_str(&format!(
            "\nThe gateway logged (tail):\n\n```\n{}\n```\n",
            log.trim()
        ));
    }
    text
}

fn errors_cell(direct: &Outcome, through: &Outcome) -> String {
    let cell = format!("{} / {}", direct.errors, through.errors);
    if direct.errors + through.errors > 0 {
        format!("**{cell}**")
    } else {
        cell
    }
}

/// The second table: every percentile, rates, connections; for the gateway the provider calls
/// and CPU time per request (warm-up included); for both who kept the CPUs busy.
fn details(rows: &[Row]) -> String {
    let mut text = String::from(
        "| run | concurrency | requests/s | p50 | p90 | p99 | max | connections | provider calls per request | gateway CPU per request | CPU use in cores: gateway / xtask / others |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in rows {
        let direct = format!("- | - | {}", row.direct_cpu.split());
        text.push_str(&detail_row("direct", &row.direct, &direct));
        let o = &row.through;
        let requests = o.requests.max(1) as f64;
        let gateway = format!(
            "{:.2} | {:.3} ms | {}",
            row.provider_calls as f64 / requests,
            row.gateway_cpu.gateway.as_secs_f64() * 1000.0 / requests,
            row.gateway_cpu.split(),
        );
        text.push_str(&detail_row("gateway", o, &gateway));
    }
    text
}

fn detail_row(label: &str, o: &Outcome, tail: &str) -> String {
    let Some(l) = o.latency() else {
        return format!(
            "| {label} | {} | 0 | - | - | - | - | {} | {tail} |\n",
            o.concurrency, o.connections
        );
    };
    format!(
        "| {label} | {} | {:.0} | {} | {} | {} | {} | {} | {tail} |\n",
        o.concurrency,
        o.per_second(),
        ms3(l.p50),
        ms3(l.p90),
        ms3(l.p99),
        ms3(l.max),
        o.connections,
    )
}

fn targets(rows: &[Row]) -> String {
    let find = |c: usize| rows.iter().find(|row| row.through.concurrency == c);
    let mut text = String::from("\n| target (issue 3, 2 cores) | result | |\n|---|---|---|\n");
    if let Some(row) = find(1) {
        let (result, verdict) = match (row.direct.latency(), row.through.latency()) {
            (Some(d), Some(g)) => {
                let added = delta_ms(g.p50, d.p50);
                let met = added <= TARGET_ADDED_P50_MS && row.through.errors == 0;
                (format!("{added:+.3} ms"), super::verdict(met))
            }
            _ => ("no successful requests".to_owned(), super::verdict(false)),
        };
        text.push_str(&format!(
            "| added p50 ≤ 1 ms at concurrency 1 | {result} | {verdict} |\n"
        ));
    }
    if let Some(row) = find(64) {
        let rate = row.through.per_second();
        let met = rate >= TARGET_PER_SECOND && row.through.errors == 0;
        text.push_str(&format!(
            "| ≥ 2,000 completions/s at concurrency 64 | {rate:.0}/s | {} |\n",
            super::verdict(met)
        ));
    }
    text.push_str("| memory flat over a 10-minute run | `cargo xtask bench soak` | see there |\n");
    text
}
