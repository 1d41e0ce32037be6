//! `cargo xtask bench soak [--minutes M]`: is the gateway's memory flat under sustained load?
//! (issue 3: "memory flat over a 10-minute run"). Not part of `cargo xtask bench` (all).
//!
//! The proxy benchmark's request (fresh `user`, new session on SQLite, fake provider on
//! loopback) at a constant concurrency of [`CONCURRENCY`] for M minutes (default 10), sampling
//! the gateway's `VmRSS` before the load and every [`SAMPLE_EVERY`] during it.
//!
//! Verdict: memory is "flat" when RSS grew by less than [`FLAT_PERCENT`] % over the second half
//! of the run. The first half is excluded on purpose: RSS rises at the start of any load while
//! the allocator's arenas, the runtime's worker stacks, connection buffers and SQLite's page
//! cache fill up to their working size; a leak keeps growing after that.

use std::fs;
use std::path::Path;
use std::time::Duration;

use super::fake_llm::FakeLlm;
use super::fake_llm::start_gateway;
use super::gateway::Gateway;
use super::load::{self, ms3};
use super::proxy::{completion_request, gateway_load};
use super::{Context, cpu, mib};
use crate::error::{Context as _, Result, bail};

const CONCURRENCY: usize = 16;
const SAMPLE_EVERY: Duration = Duration::from_secs(30);
const FLAT_PERCENT: f64 = 5.0;

/// One RSS sample: time since the load started, KiB.
type Sample = (Duration, u64);
/// What the RSS is made of at a sample, KiB: `RssAnon` (heap, stacks), `RssFile` (the mapped
/// binary and libraries, and SQLite's `-shm` WAL index, a shared file mapping), `RssShmem`.
type Parts = [u64; 3];

/// `VmRSS` and its parts now.
fn sample(gateway: &Gateway) -> Result<(u64, Parts)> {
    Ok((
        gateway.rss_kib()?,
        [
            gateway.status_kib("RssAnon")?,
            gateway.status_kib("RssFile")?,
            gateway.status_kib("RssShmem")?,
        ],
    ))
}

pub fn run(ctx: &Context) -> Result<String> {
    let fake = FakeLlm::start()?;
    let mut gateway = start_gateway(ctx, &fake, "soak")?;
    let (rss, first_parts) = sample(&gateway)?;
    let mut samples: Vec<Sample> = vec![(Duration::ZERO, rss)];
    let mut parts: Vec<Parts> = vec![first_parts];
    let measure = Duration::from_secs(ctx.minutes * 60);
    eprintln!(
        "xtask: soak: concurrency {CONCURRENCY} for {} min, RSS every {} s",
        ctx.minutes,
        SAMPLE_EVERY.as_secs()
    );
    let token = ctx.binary.token();
    let pid = gateway.pid().context("the gateway is not running")?;
    let cpu_before = cpu::Snapshot::take(pid)?;
    let outcome = {
        let gateway = &gateway;
        let make = |worker: usize, i: u64| completion_request(gateway, token, "soak", worker, i);
        let load = gateway_load(gateway, CONCURRENCY, Duration::ZERO, measure, &make);
        let mut next = SAMPLE_EVERY;
        load::run(&load, &mut |elapsed| {
            if elapsed >= next && elapsed <= measure {
                next += SAMPLE_EVERY;
                if let Ok((kib, now)) = sample(gateway) {
                    eprintln!(
                        "xtask: soak: {:>4} s  VmRSS {}",
                        elapsed.as_secs(),
                        mib(kib * 1024)
                    );
                    samples.push((elapsed, kib));
                    parts.push(now);
                }
            }
        })
    };
    if !gateway.is_running() {
        bail!("the gateway died under load{}", gateway.log_tail());
    }
    if samples
        .last()
        .is_some_and(|(t, _)| *t + Duration::from_secs(1) < measure)
    {
        let (kib, now) = sample(&gateway)?;
        samples.push((measure, kib));
        parts.push(now);
    }
    let hwm = gateway.status_kib("VmHWM")?;
    let cpu = cpu::Snapshot::take(pid)?.since(&cpu_before);
    let home = ctx.scratch.join("soak/home");
    let data_dir = dir_size(&home);
    let wal = fs::metadata(home.join("exoclaw.db-wal")).map_or(0, |meta| meta.len());
    let log = gateway.log_lines(20);
    gateway.stop()?;

    let mut text = String::from("### Memory under sustained load (soak)\n\n");
    text.push_str(&format!(
        "Concurrency {CONCURRENCY} for {} min through `POST /v1/chat/completions` (fresh `user` \
         per request, new session on SQLite, fake provider on loopback, load generator on the same \
         cores), gateway `VmRSS` sampled before the load (t = 0) and every {} s.\n\n",
        ctx.minutes,
        SAMPLE_EVERY.as_secs()
    ));
    text.push_str("| t (s) | VmRSS | RssAnon | RssFile | RssShmem |\n|---:|---:|---:|---:|---:|\n");
    for ((t, kib), [anon, file, shmem]) in samples.iter().zip(&parts) {
        text.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            t.as_secs(),
            mib(kib * 1024),
            mib(anon * 1024),
            mib(file * 1024),
            mib(shmem * 1024)
        ));
    }
    text.push('\n');
    text.push_str(&verdict_table(&samples, measure));
    let latency = outcome.latency();
    text.push_str(&format!(
        "| completions/s over the run | {:.0} |\n| completions | {} |\n| latency p50 / p99 / max | {} |\n| errors | {} |\n| gateway CPU per request | {:.3} ms |\n| CPU use in cores: gateway / xtask / others | {} |\n| peak RSS (VmHWM) | {} |\n| data dir at the end (of which WAL) | {} ({}) |\n",
        outcome.per_second(),
        outcome.latencies.len(),
        latency.map_or_else(
            || "-".to_owned(),
            |l| format!("{} / {} / {} ms", ms3(l.p50), ms3(l.p99), ms3(l.max))
        ),
        if outcome.errors > 0 {
            format!("**{}** (first: {})", outcome.errors, outcome.first_error.unwrap_or_default())
        } else {
            "0".to_owned()
        },
        cpu.gateway.as_secs_f64() * 1000.0 / outcome.requests.max(1) as f64,
        cpu.split(),
        mib(hwm * 1024),
        mib(data_dir),
        mib(wal),
    ));
    text.push_str(&format!(
        "\nCriterion: \"flat\" when RSS grew by less than {FLAT_PERCENT} % from the sample at half \
         time to the last one. The first half is left out because RSS rises at the start of any \
         load while allocator arenas, worker stacks, connection buffers and SQLite's page cache \
         fill to their working size; a leak keeps growing after that.\n"
    ));
    if !log.trim().is_empty() {
        text.push_str(&format!(
            "\nThe gateway logged (tail):\n\n```\n{}\n```\n",
            log.trim()
        ));
    }
    Ok(text)
}

/// Growth first-to-last and over the second half, and the verdict, as table rows.
fn verdict_table(samples: &[Sample], measure: Duration) -> String {
    let mut text = String::from("| soak | value |\n|---|---:|\n");
    let Some(growth) = Growth::of(samples, measure) else {
        text.push_str("| verdict | not enough samples |\n");
        return text;
    };
    text.push_str(&format!(
        "| growth, t = 0 to the end | {:+.2} MiB ({:+.1} %) |\n| growth over the second half (t = {} s to {} s) | {:+.2} MiB ({:+.1} %), {:+.3} MiB/min |\n| verdict | {} |\n",
        growth.total_kib as f64 / 1024.0,
        growth.total_percent,
        growth.half_from.as_secs(),
        growth.half_to.as_secs(),
        growth.half_kib as f64 / 1024.0,
        growth.half_percent,
        growth.half_mib_per_min,
        if growth.is_flat() { "flat" } else { "**growing**" },
    ));
    text
}

#[derive(Debug, PartialEq)]
struct Growth {
    total_kib: i64,
    total_percent: f64,
    half_from: Duration,
    half_to: Duration,
    half_kib: i64,
    half_percent: f64,
    half_mib_per_min: f64,
}

impl Growth {
    /// `None` without a sample at or after half time that is not also the last one.
    fn of(samples: &[Sample], measure: Duration) -> Option<Self> {
        let (first, last) = (samples.first()?, samples.last()?);
        let half = samples.iter().find(|(t, _)| *t >= measure / 2)?;
        if half.0 >= last.0 {
            return None;
        }
        let diff = |from: u64, to: u64| {
            i64::try_from(to).unwrap_or(i64::MAX) - i64::try_from(from).unwrap_or(i64::MAX)
        };
        let percent = |kib: i64, base: u64| kib as f64 * 100.0 / base.max(1) as f64;
        let (total_kib, half_kib) = (diff(first.1, last.1), diff(half.1, last.1));
        let minutes = (last.0 - half.0).as_secs_f64() / 60.0;
        Some(Self {
            total_kib,
            total_percent: percent(total_kib, first.1),
            half_from: half.0,
            half_to: last.0,
            half_kib,
            half_percent: percent(half_kib, half.1),
            half_mib_per_min: half_kib as f64 / 1024.0 / minutes,
        })
    }

    fn is_flat(&self) -> bool {
        self.half_percent < FLAT_PERCENT
    }
}

/// Bytes of all files under `dir` (0 if it cannot be read).
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => dir_size(&entry.path()),
            Ok(_) => entry.metadata().map_or(0, |meta| meta.len()),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(list: &[(u64, u64)]) -> Vec<Sample> {
        list.iter()
            .map(|(t, kib)| (Duration::from_secs(*t), *kib))
            .collect()
    }

    #[test]
    fn growth_compares_half_time_with_the_end() {
        let samples = secs(&[
            (0, 8000),
            (30, 20000),
            (60, 20400),
            (90, 20600),
            (120, 21000),
        ]);
        let growth = Growth::of(&samples, Duration::from_secs(120)).unwrap();
        assert_eq!((growth.total_kib, growth.half_kib), (13000, 600));
        assert_eq!(growth.half_from, Duration::from_secs(60));
        assert!((growth.half_percent - 600.0 * 100.0 / 20400.0).abs() < 1e-9);
        assert!((growth.half_mib_per_min - 600.0 / 1024.0).abs() < 1e-9);
        assert!(
            growth.is_flat(),
            "a big first-half rise is warm-up, not a leak"
        );

        let leaking = secs(&[(0, 8000), (60, 10000), (120, 11000)]);
        assert!(
            !Growth::of(&leaking, Duration::from_secs(120))
                .unwrap()
                .is_flat()
        );
    }

    #[test]
    fn growth_needs_a_second_half() {
        assert!(Growth::of(&secs(&[(0, 1)]), Duration::from_secs(60)).is_none());
        assert!(Growth::of(&secs(&[(0, 1), (60, 2)]), Duration::from_secs(60)).is_none());
        assert!(Growth::of(&[], Duration::from_secs(60)).is_none());
    }
}
