//! Shared test helpers: clients wired to a stub resolver and dial
//! overrides, and a log capture for the `exoclaw::egress` target.

use exoclaw_egress::testing::StaticResolver;
use exoclaw_egress::{EgressClient, EgressClientBuilder, EgressError};
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// A "public" address the stub resolver hands out; the dial override sends
/// it to a loopback server.
pub const PUBLIC: &str = "93.184.216.34";
pub const PUBLIC2: &str = "93.184.216.35";

/// A builder with the stub resolver and short timeouts.
pub fn builder(resolver: &Arc<StaticResolver>) -> EgressClientBuilder {
    EgressClient::builder()
        .resolver(Arc::clone(resolver) as _)
        .connect_timeout(Duration::from_secs(2))
        .dns_timeout(Duration::from_secs(2))
}

/// A client whose vetted addresses are dialled as `dials` says.
pub fn client(resolver: &Arc<StaticResolver>, dials: &[(&str, SocketAddr)]) -> EgressClient {
    let mut b = builder(resolver);
    for (ip, to) in dials {
        b = b.dial_override(ip.parse().unwrap(), *to);
    }
    b.build().unwrap()
}

/// The rule of a refusal, or panic with what happened instead.
pub fn refused_rule<T: std::fmt::Debug>(r: Result<T, EgressError>) -> &'static str {
    match r {
        Err(EgressError::Refused(refusal)) => refusal.rule,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Every log line of the test binary: one global subscriber, installed on
/// first use (a per-thread default loses events to tracing's callsite
/// interest cache when tests run in parallel). Tests find their own lines
/// by a marker only they log.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

static LOGS: OnceLock<Logs> = OnceLock::new();

impl Logs {
    pub fn capture() -> Self {
        LOGS.get_or_init(|| {
            let logs = Self::default();
            let writer = logs.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(move || writer.clone())
                .with_max_level(tracing::Level::INFO)
                .with_ansi(false)
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("the only global subscriber");
            logs
        })
        .clone()
    }

    /// The lines containing `marker`.
    pub fn lines_with(&self, marker: &str) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter(|l| l.contains(marker))
            .map(str::to_owned)
            .collect()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
