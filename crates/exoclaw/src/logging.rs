//! Structured JSON logs on stderr. The level comes from `--verbose` (debug) or
//! `EXOCLAW_LOG` (an `EnvFilter` directive such as `info,exoclaw=debug`).
//! Inside a request every line carries the request's span fields, so the
//! request id is on each of them.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

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
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_current_span(true)
        .with_span_list(false)
        .with_span_events(FmtSpan::NONE)
        .with_target(true)
        .flatten_event(true)
        .try_init();
}
