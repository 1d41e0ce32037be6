//! A closed-loop, std-only load generator: N worker threads (N = concurrency), each with its own
//! keep-alive connection ([`Conn`]), issue requests back to back for a warm-up and then a fixed
//! measurement window. A request counts when it *completes* inside the window; its latency
//! (send to last body byte, [`Instant`]) goes into the worker's own `Vec`, merged at the end.
//!
//! Anything but the expected answer is an error: a non-200 status, a body the check rejects,
//! or an IO failure (reset, timeout, close). Errors are counted over the whole run, warm-up
//! included, so a run with errors is never silently reported as clean.

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use super::http::{Conn, Response};
use super::percentile;

/// How long one request may take before it counts as failed (and the connection is dropped).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause after an IO error, so a dead server is not hammered in a tight loop.
const ERROR_BACKOFF: Duration = Duration::from_millis(20);
/// How often [`run`] calls its observer.
const TICK: Duration = Duration::from_millis(250);

/// What to send and how long.
pub struct Load<'a> {
    pub addr: SocketAddr,
    pub concurrency: usize,
    pub warm_up: Duration,
    pub measure: Duration,
    /// The bytes of worker `w`'s `i`-th request.
    pub request: &'a (dyn Fn(usize, u64) -> Vec<u8> + Sync),
    /// Accepts a 200 response's body, or says what is wrong with it.
    pub check: fn(&Response) -> Result<(), String>,
}

/// What one [`run`] measured.
pub struct Outcome {
    pub concurrency: usize,
    /// Latencies of the successful requests completed in the window, sorted.
    pub latencies: Vec<Duration>,
    /// The measurement window (workers run until its end, so it is always covered).
    pub window: Duration,
    /// Failed requests over the whole run (warm-up included).
    pub errors: u64,
    /// The first failure, for the report.
    pub first_error: Option<String>,
    /// Requests sent over the whole run, and connections opened for them.
    pub requests: u64,
    pub connections: u64,
}

impl Outcome {
    /// Successful completions per second in the window.
    pub fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.window.as_secs_f64().max(1e-9)
    }

    pub fn latency(&self) -> Option<Latency> {
        Latency::of_sorted(&self.latencies)
    }
}

/// Latency order statistics (nearest rank).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    pub count: usize,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Latency {
    /// `None` for no samples; `sorted` must be sorted ascending.
    pub fn of_sorted(sorted: &[Duration]) -> Option<Self> {
        Some(Self {
            count: sorted.len(),
            max: *sorted.last()?,
            p50: percentile(sorted, 50),
            p90: percentile(sorted, 90),
            p99: percentile(sorted, 99),
        })
    }
}

struct WorkerResult {
    latencies: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
    requests: u64,
    connections: u64,
}

/// Runs the load; `observe(elapsed)` is called from this thread about every 250 ms until the
/// workers stop (the soak samples memory there). Every worker stops at the window's end; a
/// request still in flight then is bounded by [`REQUEST_TIMEOUT`].
pub fn run(load: &Load<'_>, observe: &mut dyn FnMut(Duration)) -> Outcome {
    let started = Instant::now();
    let window_start = started + load.warm_up;
    let end = window_start + load.measure;
    let results: Vec<WorkerResult> = thread::scope(|scope| {
        let workers: Vec<_> = (0..load.concurrency)
            .map(|worker| scope.spawn(move || work(load, worker, window_start, end)))
            .collect();
        while workers.iter().any(|handle| !handle.is_finished()) {
            observe(started.elapsed());
            let to_end = end.saturating_duration_since(Instant::now());
            thread::sleep(TICK.min(to_end).max(Duration::from_millis(5)));
        }
        workers
            .into_iter()
            .map(|handle| handle.join().expect("a load worker panicked"))
            .collect()
    });
    let mut latencies = Vec::new();
    let mut outcome = Outcome {
        concurrency: load.concurrency,
        latencies: Vec::new(),
        window: load.measure,
        errors: 0,
        first_error: None,
        requests: 0,
        connections: 0,
    };
    for result in results {
        latencies.extend(result.latencies);
        outcome.errors += result.errors;
        outcome.requests += result.requests;
        outcome.connections += result.connections;
        if outcome.first_error.is_none() {
            outcome.first_error = result.first_error;
        }
    }
    latencies.sort_unstable();
    outcome.latencies = latencies;
    outcome
}

fn work(load: &Load<'_>, worker: usize, window_start: Instant, end: Instant) -> WorkerResult {
    let mut conn = Conn::new(load.addr, REQUEST_TIMEOUT);
    let mut result = WorkerResult {
        latencies: Vec::with_capacity(4096),
        errors: 0,
        first_error: None,
        requests: 0,
        connections: 0,
    };
    let mut i = 0u64;
    while Instant::now() < end {
        let request = (load.request)(worker, i);
        i += 1;
        result.requests += 1;
        let sent = Instant::now();
        let answer = conn.send(&request);
        let done = Instant::now();
        let verdict = match &answer {
            Ok(response) if response.status == 200 => (load.check)(response),
            Ok(response) => Err(format!(
                "status {}: {}",
                response.status,
                excerpt(&response.body)
            )),
            Err(err) => Err(format!("{}: {err}", kind_name(err.kind()))),
        };
        match verdict {
            Ok(()) if done >= window_start && done <= end => result.latencies.push(done - sent),
            Ok(()) => {}
            Err(message) => {
                result.errors += 1;
                result.first_error.get_or_insert(message);
                if answer.is_err() {
                    thread::sleep(ERROR_BACKOFF);
                }
            }
        }
    }
    result.connections = conn.connections;
    result
}

fn kind_name(kind: std::io::ErrorKind) -> String {
    format!("{kind:?}")
}

/// The start of a body, on one line, for error messages.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    text.replace(['\r', '\n'], " ")
}

/// Milliseconds with three decimals: loopback latencies are well under a millisecond.
pub fn ms3(duration: Duration) -> String {
    format!("{:.3}", duration.as_secs_f64() * 1000.0)
}

/// `after - before` in milliseconds with three decimals and a sign.
pub fn delta_ms(after: Duration, before: Duration) -> f64 {
    (after.as_secs_f64() - before.as_secs_f64()) * 1000.0
}

#[cfg(test)]
mod tests {
    use super::super::fake_llm::FakeLlm;
    use super::super::http::post_json;
    use super::*;

    fn micros(values: impl IntoIterator<Item = u64>) -> Vec<Duration> {
        values.into_iter().map(Duration::from_micros).collect()
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let latency = Latency::of_sorted(&micros(1..=1000)).unwrap();
        assert_eq!(latency.count, 1000);
        assert_eq!(latency.p50, Duration::from_micros(500));
        assert_eq!(latency.p90, Duration::from_micros(900));
        assert_eq!(latency.p99, Duration::from_micros(990));
        assert_eq!(latency.max, Duration::from_micros(1000));

        // 10 samples: p99 is the largest (rank ceil(9.9) = 10), p90 the 9th, p50 the 5th.
        let latency = Latency::of_sorted(&micros(1..=10)).unwrap();
        let us = Duration::from_micros;
        assert_eq!(
            (latency.p50, latency.p90, latency.p99),
            (us(5), us(9), us(10))
        );
        // 101 samples: p99 is rank ceil(99.99) = 100, not the maximum.
        let latency = Latency::of_sorted(&micros(1..=101)).unwrap();
        assert_eq!((latency.p99, latency.max), (us(100), us(101)));

        assert!(Latency::of_sorted(&[]).is_none());
    }

    #[test]
    fn delta_is_signed_milliseconds() {
        let us = Duration::from_micros;
        assert!((delta_ms(us(1500), us(250)) - 1.25).abs() < 1e-9);
        assert!((delta_ms(us(250), us(1500)) + 1.25).abs() < 1e-9);
        assert_eq!(ms3(us(1234)), "1.234");
    }

    #[test]
    fn drives_the_fake_provider_and_counts_errors() {
        let fake = FakeLlm::start().unwrap();
        let addr = fake.addr();
        let request = move |worker: usize, i: u64| {
            let path = if worker == 1 && i % 2 == 1 {
                "/missing"
            } else {
                "/v1/chat/completions"
            };
            post_json(addr, path, None, r#"{"stream":true}"#)
        };
        let load = Load {
            addr,
            concurrency: 2,
            warm_up: Duration::from_millis(50),
            measure: Duration::from_millis(200),
            request: &request,
            check: |response| {
                response
                    .body
                    .ends_with(b"data: [DONE]\n\n")
                    .then_some(())
                    .ok_or_else(|| "no [DONE]".to_owned())
            },
        };
        let mut ticks = 0;
        let outcome = run(&load, &mut |_| ticks += 1);
        assert!(ticks > 0);
        assert!(!outcome.latencies.is_empty());
        assert!(outcome.errors > 0);
        assert!(
            outcome
                .first_error
                .as_deref()
                .unwrap()
                .starts_with("status 404")
        );
        assert_eq!(outcome.connections, 2, "keep-alive held");
        assert_eq!(outcome.window, Duration::from_millis(200));
        assert!(outcome.per_second() > 0.0);
    }
}
