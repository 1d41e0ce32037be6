//! Alerts without extra scripts: conditions an operator must hear about are
//! raised as `alert.*` events, logged at warn and, with `alerts.webhook_url`,
//! POSTed as JSON through the egress client.
//!
//! | event | raised when |
//! |---|---|
//! | `alert.budget_threshold` | a budget window is past `alerts.budget_threshold` of its limit (seen before an LLM call, by the budget decorator's observer) |
//! | `alert.security_burst` | `alerts.security_burst.count` `security.*` warnings within `window_sec` ([`SecurityWatch`], a `tracing` layer) |
//! | `alert.provider_failure` | `alerts.provider_failures` LLM calls of one provider in a row failed after retries and fallbacks ([`AlertingTraces`]) |
//! | `alert.channel_failure` | a channel reports a failure ([`Alerts::channel_failure`]) |
//! | `alert.backup_failed` | a scheduled backup failed ([`Alerts::backup_failed`]) |
//!
//! [`Alerts::raise`] never blocks and never logs itself (it is called from
//! inside a `tracing` layer): it throttles (the same kind and subject at
//! most once per `alerts.throttle_sec`; repeats are counted and reported
//! with the next one) and puts the alert on a bounded queue. The task that
//! [`Alerts::start`] spawns (owned by `serve`) logs each alert and POSTs it
//! (`{"event","severity","summary","detail","at","instance"}`), retrying
//! twice; a full queue drops alerts with a counted warning. Payloads carry
//! names, codes and numbers only: no secrets, no message text, no URLs.

use crate::config::file::AlertsConfig;
use exoclaw_core::TenantId;
use exoclaw_core::store::{StoreResult, TraceStore};
use exoclaw_core::trace::{NewSpan, NewTrace, Span, SpanKind, Trace, TraceEnd, TraceFilter};
use exoclaw_egress::{EgressClient, Method, header};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Alerts waiting to be logged and sent; past this, alerts are dropped.
const QUEUE: usize = 256;
/// Attempts per webhook delivery.
const ATTEMPTS: u32 = 3;
/// One webhook request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AlertKind {
    BudgetThreshold,
    SecurityBurst,
    ProviderFailure,
    #[allow(dead_code, reason = "raised by the channel adapters, which come later")]
    ChannelFailure,
    BackupFailed,
}

impl AlertKind {
    /// The stable event name.
    pub fn event(self) -> &'static str {
        match self {
            Self::BudgetThreshold => "alert.budget_threshold",
            Self::SecurityBurst => "alert.security_burst",
            Self::ProviderFailure => "alert.provider_failure",
            Self::ChannelFailure => "alert.channel_failure",
            Self::BackupFailed => "alert.backup_failed",
        }
    }

    pub fn severity(self) -> &'static str {
        match self {
            Self::BudgetThreshold | Self::ChannelFailure => "warning",
            Self::SecurityBurst | Self::ProviderFailure | Self::BackupFailed => "critical",
        }
    }
}

/// One alert. `subject` tells alerts of one kind apart for throttling (the
/// budget window, the provider, the channel).
#[derive(Clone, Debug)]
pub struct Alert {
    pub kind: AlertKind,
    pub subject: String,
    pub summary: String,
    pub detail: Value,
}

struct Inner {
    config: AlertsConfig,
    throttle: Duration,
    queue: mpsc::Sender<(Alert, u64, u64)>,
    /// Per (kind, subject): when last sent, and repeats suppressed since.
    sent: Mutex<HashMap<(AlertKind, String), (Instant, u64)>>,
    dropped: AtomicU64,
    security: Mutex<VecDeque<(Instant, String)>>,
    provider_failures: Mutex<HashMap<String, u32>>,
    /// The last [`RECENT`] alerts raised (past the throttle), newest last,
    /// for the dashboard's overview.
    recent: Mutex<VecDeque<Recent>>,
}

/// Alerts kept for [`Alerts::recent`].
const RECENT: usize = 20;

/// An alert as the dashboard lists it: when, what, about what.
#[derive(Clone, Debug)]
pub struct Recent {
    pub at_ms: i64,
    pub event: &'static str,
    pub severity: &'static str,
    pub subject: String,
    pub summary: String,
}

/// The alert handle: cheap to clone, never blocks.
#[derive(Clone)]
pub struct Alerts {
    inner: Arc<Inner>,
}

/// The task that logs and delivers alerts; owned by `serve`.
pub struct AlertTask {
    task: crate::supervisor::Task,
}

impl Alerts {
    /// Start the delivery task. `webhook` is the egress client for
    /// `alerts.webhook_url` (None: log only).
    pub fn start(
        config: &AlertsConfig,
        webhook: Option<EgressClient>,
        instance: String,
        supervisor: &crate::supervisor::Supervisor,
    ) -> (Self, AlertTask) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let alerts = Self {
            inner: Arc::new(Inner {
                config: config.clone(),
                throttle: Duration::from_secs(config.throttle_sec),
                queue: tx,
                sent: Mutex::new(HashMap::new()),
                dropped: AtomicU64::new(0),
                security: Mutex::new(VecDeque::new()),
                provider_failures: Mutex::new(HashMap::new()),
                recent: Mutex::new(VecDeque::new()),
            }),
        };
        let url = config.webhook_url.clone();
        let delivery = match (webhook, url) {
            (Some(client), Some(url)) => Some(Webhook { client, url }),
            _ => None,
        };
        let task = supervisor.start(
            "alerts.delivery",
            crate::supervisor::Policy::Background,
            move |stop| async move {
                deliver(rx, delivery, instance, stop).await;
                Ok(())
            },
        );
        (alerts, AlertTask { task })
    }

    /// Raise an alert (throttled). Never blocks, never logs.
    pub fn raise(&self, alert: Alert) {
        let now = Instant::now();
        let suppressed = {
            let mut sent = self
                .inner
                .sent
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let key = (alert.kind, alert.subject.clone());
            match sent.get_mut(&key) {
                Some((last, repeats)) if now.duration_since(*last) < self.inner.throttle => {
                    *repeats += 1;
                    return;
                }
                Some((last, repeats)) => {
                    *last = now;
                    std::mem::take(repeats)
                }
                None => {
                    sent.insert(key, (now, 0));
                    0
                }
            }
        };
        {
            let mut recent = self
                .inner
                .recent
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if recent.len() == RECENT {
                recent.pop_front();
            }
            recent.push_back(Recent {
                at_ms: exoclaw_core::now_ms(),
                event: alert.kind.event(),
                severity: alert.kind.severity(),
                subject: alert.subject.clone(),
                summary: alert.summary.clone(),
            });
        }
        let dropped = self.inner.dropped.swap(0, Ordering::Relaxed);
        if let Err(mpsc::error::TrySendError::Full(_) | mpsc::error::TrySendError::Closed(_)) =
            self.inner.queue.try_send((alert, suppressed, dropped))
        {
            self.inner.dropped.fetch_add(dropped + 1, Ordering::Relaxed);
        }
    }

    /// The alerts raised lately (past the throttle), newest first.
    pub fn recent(&self) -> Vec<Recent> {
        let recent = self
            .inner
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        recent.iter().rev().cloned().collect()
    }

    /// A channel failed to receive or deliver: the hook for the channel
    /// adapters (`code` is a stable error code, never message text).
    #[allow(dead_code, reason = "the channel adapters, which come later, call it")]
    pub fn channel_failure(&self, channel: &str, code: &str) {
        self.raise(Alert {
            kind: AlertKind::ChannelFailure,
            subject: channel.to_owned(),
            summary: format!("channel {channel} failed ({code})"),
            detail: json!({"channel": channel, "code": code}),
        });
    }

    /// A scheduled backup failed. `error` must hold no secret (backup
    /// errors name paths and causes).
    pub fn backup_failed(&self, error: &str) {
        self.raise(Alert {
            kind: AlertKind::BackupFailed,
            subject: String::new(),
            summary: "a scheduled backup failed".to_owned(),
            detail: json!({"error": error}),
        });
    }

    /// The budget decorator read a window: alert past the threshold.
    pub fn budget_reading(&self, r: &exoclaw_providers::BudgetReading<'_>) {
        if r.limit_micros <= 0 {
            return;
        }
        #[allow(clippy::cast_precision_loss, reason = "a ratio")]
        let ratio = r.spent_micros as f64 / r.limit_micros as f64;
        if ratio < self.inner.config.budget_threshold {
            return;
        }
        #[allow(clippy::cast_precision_loss, reason = "dollars for people")]
        let usd = |m: i64| (m as f64 / 1e6 * 100.0).round() / 100.0;
        self.raise(Alert {
            kind: AlertKind::BudgetThreshold,
            subject: format!("{}/{}", r.scope, r.window),
            summary: format!(
                "{} budget of {} is {:.0}% used (${:.2} of ${:.2})",
                r.window,
                r.scope,
                ratio * 100.0,
                usd(r.spent_micros),
                usd(r.limit_micros)
            ),
            detail: json!({
                "scope": r.scope,
                "window": r.window,
                "config": r.path,
                "ratio": (ratio * 1000.0).round() / 1000.0,
                "spent_usd": usd(r.spent_micros),
                "limit_usd": usd(r.limit_micros),
                "threshold": self.inner.config.budget_threshold,
            }),
        });
    }

    /// One `security.*` warning was logged.
    fn security_event(&self, name: &str) {
        let burst = &self.inner.config.security_burst;
        let window = Duration::from_secs(burst.window_sec);
        let now = Instant::now();
        let events: Vec<(Instant, String)> = {
            let mut q = self
                .inner
                .security
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            while q
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) > window)
            {
                q.pop_front();
            }
            q.push_back((now, name.to_owned()));
            if q.len() < usize::try_from(burst.count).unwrap_or(usize::MAX) {
                return;
            }
            q.drain(..).collect()
        };
        let mut by_event: HashMap<String, u32> = HashMap::new();
        for (_, e) in &events {
            *by_event.entry(e.clone()).or_default() += 1;
        }
        self.raise(Alert {
            kind: AlertKind::SecurityBurst,
            subject: String::new(),
            summary: format!(
                "{} security warnings within {} s",
                events.len(),
                burst.window_sec
            ),
            detail: json!({"count": events.len(), "window_sec": burst.window_sec, "events": by_event}),
        });
    }

    /// An LLM call ended (after retries and fallbacks).
    fn llm_call(&self, provider: &str, status: &str, code: Option<&str>) {
        let failed = status == "error"
            && code.is_some_and(|c| {
                c.starts_with("provider.")
                    && c != "provider.local_rate_limit"
                    && c != "provider.not_configured"
            });
        let mut counts = self
            .inner
            .provider_failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !failed {
            if status == "ok" {
                counts.remove(provider);
            }
            return;
        }
        let n = counts.entry(provider.to_owned()).or_default();
        *n += 1;
        let n = *n;
        drop(counts);
        if n >= self.inner.config.provider_failures {
            self.raise(Alert {
                kind: AlertKind::ProviderFailure,
                subject: provider.to_owned(),
                summary: format!("{n} calls to provider {provider} failed in a row"),
                detail: json!({"provider": provider, "consecutive_failures": n, "last_error": code}),
            });
        }
    }
}

impl AlertTask {
    /// Stop after logging and delivering what is queued, within `grace`.
    pub async fn stop(self, grace: Duration) {
        if !self.task.stop(grace).await {
            tracing::warn!("alerts still queued at the end of the grace period were not sent");
        }
    }
}

struct Webhook {
    client: EgressClient,
    url: String,
}

async fn deliver(
    mut rx: mpsc::Receiver<(Alert, u64, u64)>,
    webhook: Option<Webhook>,
    instance: String,
    stop: CancellationToken,
) {
    loop {
        let item = tokio::select! {
            biased;
            i = rx.recv() => i,
            () = stop.cancelled() => { rx.close(); rx.recv().await }
        };
        let Some((alert, suppressed, dropped)) = item else {
            return;
        };
        if dropped > 0 {
            tracing::warn!(
                event = "alert.dropped",
                dropped,
                "alerts were dropped: the alert queue was full"
            );
        }
        tracing::warn!(
            event = alert.kind.event(),
            severity = alert.kind.severity(),
            detail = %alert.detail,
            suppressed,
            "{}",
            alert.summary
        );
        if let Some(w) = &webhook {
            let mut detail = alert.detail.clone();
            if suppressed > 0
                && let Value::Object(m) = &mut detail
            {
                m.insert("suppressed_repeats".to_owned(), json!(suppressed));
            }
            let body = json!({
                "event": alert.kind.event(),
                "severity": alert.kind.severity(),
                "summary": alert.summary,
                "detail": detail,
                "at": rfc3339_now(),
                "instance": instance,
            });
            w.post(&body, alert.kind.event()).await;
        }
    }
}

impl Webhook {
    async fn post(&self, body: &Value, event: &str) {
        let bytes = body.to_string();
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            let request = match self.client.request(Method::POST, &self.url) {
                Ok(r) => r,
                Err(r) => {
                    last = format!("refused by the egress policy ({})", r.rule);
                    break;
                }
            };
            match request
                .header(header::CONTENT_TYPE, "application/json")
                .timeout(REQUEST_TIMEOUT)
                .body(bytes.clone())
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => return,
                Ok(r) if r.status().is_client_error() && r.status().as_u16() != 429 => {
                    last = format!("the webhook answered {}", r.status().as_u16());
                    break;
                }
                Ok(r) => last = format!("the webhook answered {}", r.status().as_u16()),
                Err(e) if e.is_timeout() => last = "the webhook timed out".to_owned(),
                Err(_) => last = "cannot reach the webhook".to_owned(),
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
            }
        }
        tracing::warn!(
            event = "alert.webhook_failed",
            alert = event,
            reason = %last,
            "cannot deliver an alert to alerts.webhook_url"
        );
    }
}

fn rfc3339_now() -> String {
    crate::clock::utc_stamp(crate::clock::unix_secs(std::time::SystemTime::now()), false)
}

/// The process's alert handle, for the [`SecurityWatch`] layer (installed
/// before any alert handle exists).
static WATCHED: RwLock<Option<Alerts>> = RwLock::new(None);

/// Route `security.*` warnings to `alerts` (None: stop).
pub fn watch_security(alerts: Option<Alerts>) {
    *WATCHED
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = alerts;
}

/// A `tracing` layer counting warn events whose `event` field starts with
/// `security.` into bursts (see [`watch_security`]).
pub struct SecurityWatch;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for SecurityWatch {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if *event.metadata().level() != tracing::Level::WARN {
            return;
        }
        let mut name = EventName(None);
        event.record(&mut name);
        let Some(name) = name.0.filter(|n| n.starts_with("security.")) else {
            return;
        };
        let alerts = WATCHED
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(a) = alerts {
            a.security_event(&name);
        }
    }
}

struct EventName(Option<String>);

impl tracing::field::Visit for EventName {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "event" {
            self.0 = Some(value.to_owned());
        }
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "event" {
            self.0 = Some(format!("{value:?}").trim_matches('"').to_owned());
        }
    }
}

/// The trace store that also watches LLM calls for provider failures.
pub struct AlertingTraces {
    pub inner: Arc<dyn TraceStore>,
    pub alerts: Alerts,
}

#[async_trait::async_trait]
impl TraceStore for AlertingTraces {
    async fn create_trace(&self, trace: &NewTrace) -> StoreResult<Trace> {
        self.inner.create_trace(trace).await
    }
    async fn finish_trace(&self, tenant: &TenantId, id: &str, end: &TraceEnd) -> StoreResult<()> {
        self.inner.finish_trace(tenant, id, end).await
    }
    async fn add_span(&self, span: &NewSpan) -> StoreResult<Span> {
        if span.kind == SpanKind::Llm {
            let code = span.attributes.get("error_code").and_then(Value::as_str);
            self.alerts.llm_call(
                span.provider.as_deref().unwrap_or_default(),
                &span.status,
                code,
            );
        }
        self.inner.add_span(span).await
    }
    async fn list_traces(
        &self,
        tenant: &TenantId,
        filter: &TraceFilter,
    ) -> StoreResult<Vec<Trace>> {
        self.inner.list_traces(tenant, filter).await
    }
    async fn get_trace(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> StoreResult<Option<(Trace, Vec<Span>)>> {
        self.inner.get_trace(tenant, id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AlertsConfig {
        AlertsConfig {
            security_burst: crate::config::file::SecurityBurstConfig {
                count: 3,
                window_sec: 60,
            },
            provider_failures: 2,
            ..AlertsConfig::default()
        }
    }

    /// Alerts whose queue the test reads directly (no task).
    fn alerts(config: &AlertsConfig) -> (Alerts, mpsc::Receiver<(Alert, u64, u64)>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let a = Alerts {
            inner: Arc::new(Inner {
                config: config.clone(),
                throttle: Duration::from_secs(config.throttle_sec),
                queue: tx,
                sent: Mutex::new(HashMap::new()),
                dropped: AtomicU64::new(0),
                security: Mutex::new(VecDeque::new()),
                provider_failures: Mutex::new(HashMap::new()),
                recent: Mutex::new(VecDeque::new()),
            }),
        };
        (a, rx)
    }

    #[test]
    fn the_same_alert_is_throttled_and_repeats_are_counted() {
        let (a, mut rx) = alerts(&config());
        for _ in 0..3 {
            a.channel_failure("telegram", "channel.unavailable");
        }
        a.channel_failure("discord", "channel.unavailable");
        let (first, suppressed, _) = rx.try_recv().unwrap();
        assert_eq!(first.kind.event(), "alert.channel_failure");
        assert_eq!(suppressed, 0);
        let (other, _, _) = rx.try_recv().unwrap();
        assert_eq!(other.subject, "discord", "another subject is not throttled");
        assert!(rx.try_recv().is_err());
        let inner = &a.inner;
        let sent = inner.sent.lock().unwrap();
        assert_eq!(
            sent[&(AlertKind::ChannelFailure, "telegram".to_owned())].1,
            2
        );
        // The dashboard's list: what was raised past the throttle, newest first.
        let recent: Vec<String> = a.recent().into_iter().map(|r| r.subject).collect();
        assert_eq!(recent, ["discord", "telegram"]);
    }

    #[test]
    fn the_recent_list_keeps_the_last_twenty() {
        let (a, _rx) = alerts(&config());
        for i in 0..30 {
            a.channel_failure(&format!("channel-{i}"), "channel.unavailable");
        }
        let recent = a.recent();
        assert_eq!(recent.len(), RECENT);
        assert_eq!(recent[0].subject, "channel-29");
        assert_eq!(recent[RECENT - 1].subject, "channel-10");
    }

    #[test]
    fn security_warnings_alert_in_bursts() {
        let (a, mut rx) = alerts(&config());
        a.security_event("security.auth_failure");
        a.security_event("security.auth_failure");
        assert!(rx.try_recv().is_err());
        a.security_event("security.ssrf_blocked");
        let (alert, _, _) = rx.try_recv().unwrap();
        assert_eq!(alert.kind, AlertKind::SecurityBurst);
        assert_eq!(alert.detail["events"]["security.auth_failure"], 2);
        assert_eq!(alert.detail["count"], 3);
    }

    #[test]
    fn consecutive_provider_failures_alert_and_success_resets() {
        let (a, mut rx) = alerts(&config());
        a.llm_call("openai", "error", Some("provider.unavailable"));
        a.llm_call("openai", "ok", None);
        a.llm_call("openai", "error", Some("provider.unavailable"));
        a.llm_call("openai", "error", Some("budget.exceeded"));
        assert!(
            rx.try_recv().is_err(),
            "reset by a success; budgets do not count"
        );
        a.llm_call("openai", "error", Some("provider.timeout"));
        let (alert, _, _) = rx.try_recv().unwrap();
        assert_eq!(alert.kind, AlertKind::ProviderFailure);
        assert_eq!(alert.detail["consecutive_failures"], 2);
        assert_eq!(alert.detail["last_error"], "provider.timeout");
    }

    #[test]
    fn budget_readings_alert_past_the_threshold() {
        let (a, mut rx) = alerts(&config());
        let reading = |spent| exoclaw_providers::BudgetReading {
            scope: "model gpt-4o",
            path: "budgets.models.gpt-4o",
            window: "daily",
            spent_micros: spent,
            limit_micros: 1_000_000,
        };
        a.budget_reading(&reading(790_000));
        assert!(rx.try_recv().is_err());
        a.budget_reading(&reading(850_000));
        let (alert, _, _) = rx.try_recv().unwrap();
        assert_eq!(alert.kind, AlertKind::BudgetThreshold);
        assert_eq!(
            alert.summary,
            "daily budget of model gpt-4o is 85% used ($0.85 of $1.00)"
        );
    }
}
