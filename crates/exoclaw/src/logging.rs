//! Structured JSON logs on stderr, or in a file once [`to_file`] says so (the
//! terminal chat does, so that log lines never land in the conversation).
//! The level comes from `--verbose` (debug) or `EXOCLAW_LOG` (an `EnvFilter`
//! directive such as `info,exoclaw=debug`).
//! Inside a request every line carries the request's span fields, so the
//! request id is on each of them.
//!
//! Beside the JSON layer (filtered by the level), [`exoclaw_gateway::alerts::SecurityWatch`]
//! sees every warning, whatever the level, to count `security.*` bursts.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Install the global subscriber. `default_level` applies when neither the
/// flag nor `EXOCLAW_LOG` says otherwise.
pub fn init(verbose: bool, directive: Option<&str>, default_level: &str) {
    let filter = if verbose {
        EnvFilter::new("debug,hyper=info,h2=info,sqlx=warn")
    } else {
        directive
            .and_then(|d| EnvFilter::try_new(d).ok())
            .unwrap_or_else(|| EnvFilter::new(default_level))
    };
    let json = tracing_subscriber::fmt::layer()
        .json()
        .with_writer(|| ScrubbedStderr)
        .with_current_span(true)
        .with_span_list(false)
        .with_span_events(FmtSpan::NONE)
        .with_target(true)
        .flatten_event(true)
        .with_filter(filter);
    let _ = tracing_subscriber::registry()
        .with(json)
        .with(exoclaw_gateway::alerts::SecurityWatch.with_filter(LevelFilter::WARN))
        .try_init();
}

/// Where log lines go once [`to_file`] was called; stderr before.
static FILE: std::sync::OnceLock<std::sync::Mutex<std::fs::File>> = std::sync::OnceLock::new();

/// Send every later log line to `path` (appended; created 0600 without
/// following a symlink) instead of stderr.
pub fn to_file(path: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("cannot open the log file {}", path.display()))?;
    let _ = FILE.set(std::sync::Mutex::new(file));
    Ok(())
}

/// stderr (or the log file) with every secret the gateway knows (and every known credential
/// format) scrubbed from each log line before it is written. The JSON
/// formatter writes one whole line per call.
struct ScrubbedStderr;

impl std::io::Write for ScrubbedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        // Values only: a registered secret can never rewrite a key, the
        // level or the event name alerting keys on.
        let clean = exoclaw_guard::scrub::global().scrub_log_line(&text);
        match FILE.get() {
            // A poisoned lock only means a panic mid-write elsewhere; the
            // file is still there to append to.
            Some(file) => file
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .write_all(clean.as_bytes())?,
            None => std::io::stderr().write_all(clean.as_bytes())?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match FILE.get() {
            Some(file) => file
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .flush(),
            None => std::io::stderr().flush(),
        }
    }
}
