//! Time of the guard on the hot path: `cargo bench -p exoclaw-guard --bench
//! guard`. Scanner + scrubber on a 4 KB ordinary message, on a 4 KB message
//! full of secrets, and scrub + scan of 1 MB of mixed log output with 20
//! registered secrets; the scrubber's scopes (one tenant's, every tenant's
//! with 100 tenants of 5 secrets) and JSON log lines, clean and with a
//! secret. Prints p50/p95/max in microseconds; BENCHMARKS.md records the
//! figures.

#![allow(
    clippy::disallowed_macros,
    reason = "tests and benchmarks print what they measure"
)]
use exoclaw_guard::{Scanner, Scrubber};
use std::hint::black_box;
use std::time::{Duration, Instant};

const PROSE: &str = "Hi team, thanks for the review yesterday. I went through the comments on the \
storage migration and updated the PR: the index on sessions(tenant_id, updated_at) is now created \
concurrently, and the backfill runs in batches of 500 rows so it never holds a lock for long. \
Could someone double-check the rollback path? I tested it on a copy of the staging database \
(about 2.3 GB) and it took 41 seconds. Also, the dashboard at https://grafana.example.com/d/abc \
shows the p95 latency dropped from 180 ms to 95 ms after the cache change. Next week I plan to \
look at the retry logic in the provider client; see the design doc for details. Cheers, Alice.\n";

const SECRETS: &[&str] = &[
    "export ANTHROPIC_API_KEY=sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-AbCdEfGhIjKlMnOpQrSt\n",
    "OPENAI_API_KEY=sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_AbCdEfGhIjKl-MnOp\n",
    "git remote set-url origin https://bot:ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789@github.com/o/r\n",
    "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
    "SLACK_BOT_TOKEN=xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx\n",
    "curl https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw_/getMe\n",
    "Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U\n",
    "DATABASE_URL=postgres://app:s3cr3tpassw0rd@db.internal:5432/app\n",
    "{\"password\": \"hunter22hunter22\", \"api_key\": \"abcdef0123456789\"}\n",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi\n-----END RSA PRIVATE KEY-----\n",
];

const LOG_LINES: &[&str] = &[
    "2026-11-21T22:05:13.412Z INFO  http request method=GET path=/v1/models status=200 took_ms=3 request_id=7f3a9c\n",
    "2026-11-21T22:05:13.419Z DEBUG store query=\"SELECT id, name FROM agents WHERE tenant_id = $1\" rows=4 took_us=212\n",
    "2026-11-21T22:05:13.501Z WARN  provider retry attempt=2 status=529 retry_after_ms=800 model=claude-sonnet\n",
    "   Compiling serde_json v1.0.145\n   Compiling tokio v1.48.0 (features: rt, net, time)\n",
    "error[E0308]: mismatched types --> src/main.rs:42:17 | expected `String`, found `&str`\n",
    "drwxr-xr-x  5 user user  4096 Nov 21 22:05 target\n-rw-r--r--  1 user user 12873 Nov 21 22:04 Cargo.lock\n",
    "{\"level\":\"info\",\"msg\":\"token usage\",\"input_tokens\":1532,\"output_tokens\":211,\"max_tokens\":4096}\n",
    "GET https://example.com/search?q=rust+regex&page=2 -> 200 (12873 bytes)\n",
];

fn message_4k() -> String {
    let mut text = String::new();
    while text.len() < 4096 {
        text.push_str(PROSE);
    }
    text.truncate(4096);
    text
}

fn secrets_4k() -> String {
    let mut text = String::new();
    for s in SECRETS.iter().cycle() {
        if text.len() + s.len() > 4096 {
            break;
        }
        text.push_str(s);
    }
    text
}

fn registered() -> Vec<String> {
    (0..20)
        .map(|i| format!("registered-secret-{i:02}-Zq8xP4vL"))
        .collect()
}

/// `tenants` tenants of 5 secrets each, as the vault would load them.
fn register_tenants(scrubber: &Scrubber, tenants: usize) {
    for t in 0..tenants {
        let secrets: Vec<(String, String)> = (0..5)
            .map(|i| {
                (
                    format!("user:{i}/secret"),
                    format!("tenant-{t:04}-secret-{i}-Kd3wR7nT"),
                )
            })
            .collect();
        assert!(
            scrubber
                .replace_tenant(&format!("tenant-{t:04}"), secrets)
                .is_empty()
        );
    }
}

const LOG_LINE: &str = "{\"timestamp\":\"2026-11-21T22:05:13.412Z\",\"level\":\"INFO\",\"message\":\"request\",\"method\":\"GET\",\"path\":\"/v1/models\",\"status\":200,\"took_ms\":3,\"target\":\"exoclaw::http\",\"span\":{\"request_id\":\"7f3a9c0e5b2d4a61\",\"tenant\":\"tenant-0042\",\"name\":\"request\"}}\n";
const LOG_LINE_SECRET: &str = "{\"timestamp\":\"2026-11-21T22:05:13.412Z\",\"level\":\"WARN\",\"event\":\"provider.error\",\"message\":\"upstream rejected key tenant-0042-secret-3-Kd3wR7nT\",\"status\":401,\"target\":\"exoclaw::providers\",\"span\":{\"request_id\":\"7f3a9c0e5b2d4a61\",\"name\":\"request\"}}\n";

fn tool_output_1m(secrets: &[String]) -> String {
    let mut text = String::with_capacity(1 << 20);
    let mut i = 0usize;
    while text.len() < (1 << 20) {
        text.push_str(LOG_LINES[i % LOG_LINES.len()]);
        if i.is_multiple_of(97) {
            text.push_str(SECRETS[(i / 97) % SECRETS.len()]);
        }
        if i.is_multiple_of(251) {
            text.push_str(&format!("env SECRET_{i}={}\n", secrets[i % secrets.len()]));
        }
        i += 1;
    }
    text
}

fn measure(runs: usize, warmup: usize, mut f: impl FnMut()) -> Vec<Duration> {
    let mut times = Vec::with_capacity(runs);
    for i in 0..warmup + runs {
        let started = Instant::now();
        f();
        let took = started.elapsed();
        if i >= warmup {
            times.push(took);
        }
    }
    times.sort();
    times
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn report(name: &str, times: &[Duration]) {
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "{name:<44} n={:<5} p50={:>9.1} µs p95={:>9.1} µs max={:>9.1} µs",
        times.len(),
        us(at(0.50)),
        us(at(0.95)),
        us(at(1.0)),
    );
}

fn main() {
    let built = Instant::now();
    let scanner = Scanner::new();
    let scrubber = Scrubber::new();
    let secrets = registered();
    for s in &secrets {
        scrubber.register(s);
    }
    println!(
        "Scanner::new + Scrubber::new + 20 registrations: {:.1} ms",
        us(built.elapsed()) / 1e3
    );

    let started = Instant::now();
    register_tenants(&scrubber, 100);
    black_box(scrubber.scrub_all("warm the union"));
    println!(
        "100 tenants x 5 secrets: registered and every-scope automaton built in {:.1} ms",
        us(started.elapsed()) / 1e3
    );
    let many = Scrubber::new();
    let started = Instant::now();
    register_tenants(&many, 1000);
    black_box(many.scrub_all("warm the union"));
    println!(
        "1000 tenants x 5 secrets: registered and every-scope automaton built in {:.1} ms",
        us(started.elapsed()) / 1e3
    );
    drop(many);

    let ordinary = message_4k();
    let secretful = secrets_4k();
    let output = tool_output_1m(&secrets);
    assert!(scanner.scan(&ordinary).is_empty());
    assert!(!scrubber.scrub(&ordinary).contains("[REDACTED"));
    let scrubbed = scrubber.scrub(&secretful);
    for s in SECRETS {
        assert!(!scrubbed.contains(s.trim_end()), "{s}");
    }
    assert!(!scrubber.scrub(&output).contains("registered-secret-"));
    assert!(scrubber.scrub_log_line(LOG_LINE) == LOG_LINE);
    assert!(
        scrubber
            .scrub_log_line(LOG_LINE_SECRET)
            .contains("[REDACTED:registered]")
    );

    let both = |text: &str| {
        black_box(scanner.scan(black_box(text)));
        black_box(scrubber.scrub(black_box(text)));
    };
    let model = exoclaw_guard::inject::classifier::builtin();
    let short = exoclaw_guard::normalize(&ordinary[..500]);
    let long = exoclaw_guard::normalize(&ordinary);
    let runs = [
        (
            "injection classifier alone, 500 B message",
            measure(2000, 200, || {
                black_box(model.score_normal(black_box(&short)));
            }),
        ),
        (
            "injection classifier alone, 4 KB message",
            measure(2000, 200, || {
                black_box(model.score_normal(black_box(&long)));
            }),
        ),
        (
            "scan + scrub, 4 KB ordinary message",
            measure(2000, 200, || both(&ordinary)),
        ),
        (
            "scan + scrub, 4 KB message of secrets",
            measure(2000, 200, || both(&secretful)),
        ),
        (
            "scan only, 4 KB ordinary message",
            measure(2000, 200, || {
                black_box(scanner.scan(black_box(&ordinary)));
            }),
        ),
        (
            "scrub only, 4 KB ordinary message",
            measure(2000, 200, || {
                black_box(scrubber.scrub(black_box(&ordinary)));
            }),
        ),
        (
            "scan only, 4 KB message of secrets",
            measure(2000, 200, || {
                black_box(scanner.scan(black_box(&secretful)));
            }),
        ),
        (
            "scrub only, 4 KB message of secrets",
            measure(2000, 200, || {
                black_box(scrubber.scrub(black_box(&secretful)));
            }),
        ),
        (
            "scrub_for, 4 KB ordinary message",
            measure(2000, 200, || {
                black_box(scrubber.scrub_for("tenant-0042", black_box(&ordinary)));
            }),
        ),
        (
            "scrub_all, 4 KB ordinary message",
            measure(2000, 200, || {
                black_box(scrubber.scrub_all(black_box(&ordinary)));
            }),
        ),
        (
            "scrub as text, clean JSON log line",
            measure(20000, 2000, || {
                black_box(scrubber.scrub(black_box(LOG_LINE)));
            }),
        ),
        (
            "scrub_log_line, clean JSON log line",
            measure(20000, 2000, || {
                black_box(scrubber.scrub_log_line(black_box(LOG_LINE)));
            }),
        ),
        (
            "scrub_log_line, JSON log line with a secret",
            measure(20000, 2000, || {
                black_box(scrubber.scrub_log_line(black_box(LOG_LINE_SECRET)));
            }),
        ),
        (
            "scrub + scan, 1 MB tool output, 20 registered",
            measure(30, 3, || {
                let clean = scrubber.scrub(black_box(&output));
                black_box(scanner.scan(&clean));
            }),
        ),
        (
            "scrub only, 1 MB tool output",
            measure(30, 3, || {
                black_box(scrubber.scrub(black_box(&output)));
            }),
        ),
        (
            "scan only, 1 MB tool output",
            measure(30, 3, || {
                black_box(scanner.scan(black_box(&output)));
            }),
        ),
    ];
    println!(
        "sizes: ordinary {} B, secrets {} B, tool output {} B, log lines {} B and {} B",
        ordinary.len(),
        secretful.len(),
        output.len(),
        LOG_LINE.len(),
        LOG_LINE_SECRET.len()
    );
    for (name, times) in &runs {
        report(name, times);
    }
}
