//! OpenTelemetry export (cargo feature `otel`): the traces the gateway
//! already records (an agent turn, its LLM calls and tool calls) are also
//! sent to an OTLP collector, as OTLP/HTTP protobuf through the egress
//! client.
//!
//! [`ExportedTraces`] is a [`TraceStore`] decorator: every span written to
//! the store is converted ([`llm_or_tool_span`], [`turn_span`]) and put on a
//! bounded queue; a background task batches the queue and POSTs
//! `ExportTraceServiceRequest`s. A full queue or a collector that is down
//! drops spans (counted in `exoclaw_telemetry_spans_dropped_total`, warned
//! about at most once a minute): export never blocks or fails a turn.
//! [`ExportTask::flush`] sends what is queued on shutdown, within the grace
//! period.
//!
//! Ids are derived, not random: the OTLP trace id is SHA-256 of our trace
//! id (first 16 bytes), span ids SHA-256 of our span ids (first 8 bytes),
//! so the same trace always has the same ids. The turn is the root span
//! (`invoke_agent {agent}`); LLM calls (`chat {model}`) and tool calls
//! (`execute_tool {name}`) are its children. Attributes follow the
//! OpenTelemetry GenAI semantic conventions. No message text, tool
//! argument or provider error text is ever exported: errors are codes.

use crate::config::file::TelemetryConfig;
use exoclaw_core::store::{StoreResult, TraceStore};
use exoclaw_core::trace::{NewSpan, NewTrace, Span, SpanKind, Trace, TraceEnd, TraceFilter};
use exoclaw_core::{TenantId, UnixMillis};
use exoclaw_egress::{EgressClient, Method, header};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span as OtlpSpan, Status, span, status,
};
use prometheus_client::metrics::counter::Counter;
use prost::Message as _;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Spans waiting for export; past this, new spans are dropped.
const QUEUE: usize = 2048;
/// Most spans per export request.
const MAX_BATCH: usize = 512;
/// How long a batch waits for more spans after its first.
const BATCH_DELAY: Duration = Duration::from_secs(1);
/// One export request, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Turns remembered between their start and end (a turn that never ends is
/// forgotten when this many are open; its root span is then rebuilt from
/// the store).
const MAX_OPEN: usize = 10_000;
/// At most one warning per this long about dropped spans.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Counters shared with `/metrics`.
#[derive(Clone, Default)]
pub struct ExportCounters {
    pub exported: Counter,
    pub dropped: Counter,
}

/// The sending side: converts and queues spans, never waits.
pub struct Exporter {
    queue: mpsc::Sender<OtlpSpan>,
    counters: ExportCounters,
    last_warn: Mutex<Option<Instant>>,
    open: Mutex<HashMap<(TenantId, String), OpenTurn>>,
}

#[derive(Clone)]
struct OpenTurn {
    name: String,
    agent: Option<String>,
    session: Option<String>,
    started_at: UnixMillis,
}

/// The background task; owned by `serve`.
pub struct ExportTask {
    task: crate::supervisor::Task,
}

/// The URL spans are POSTed to: the endpoint, with `/v1/traces` appended
/// when it has no path (OTLP/HTTP convention for a base endpoint).
pub fn traces_url(endpoint: &str) -> String {
    let trimmed = endpoint.trim_end_matches('/');
    match url::Url::parse(trimmed) {
        Ok(u) if u.path().is_empty() || u.path() == "/" => format!("{trimmed}/v1/traces"),
        _ => endpoint.to_owned(),
    }
}

/// Start the export task for `config` (enabled and validated).
pub fn start(
    config: &TelemetryConfig,
    client: EgressClient,
    counters: ExportCounters,
    supervisor: &crate::supervisor::Supervisor,
) -> anyhow::Result<(Arc<Exporter>, ExportTask)> {
    let endpoint = config
        .endpoint
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("telemetry.endpoint is not set"))?;
    let url = traces_url(endpoint);
    let (tx, rx) = mpsc::channel(QUEUE);
    let exporter = Arc::new(Exporter {
        queue: tx,
        counters,
        last_warn: Mutex::new(None),
        open: Mutex::new(HashMap::new()),
    });
    let sender = Sender {
        client,
        url,
        resource: resource(&config.service_name),
        exporter: exporter.clone(),
    };
    let task = supervisor.start(
        "telemetry.export",
        crate::supervisor::Policy::Background,
        move |stop| async move {
            sender.run(rx, stop).await;
            Ok(())
        },
    );
    tracing::info!(
        protocol = "http/protobuf",
        service_name = %config.service_name,
        "OpenTelemetry trace export enabled"
    );
    Ok((exporter, ExportTask { task }))
}

impl ExportTask {
    /// Stop taking spans and send what is queued, for at most `grace`.
    pub async fn flush(self, grace: Duration) {
        if !self.task.stop(grace).await {
            tracing::warn!(
                event = "telemetry.flush_incomplete",
                grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
                "telemetry: spans still queued at the end of the grace period were dropped"
            );
        }
    }
}

impl Exporter {
    fn enqueue(&self, span: OtlpSpan) {
        if self.queue.try_send(span).is_err() {
            self.dropped(1, "the export queue is full");
        }
    }

    fn dropped(&self, n: u64, why: &str) {
        self.counters.dropped.inc_by(n);
        let now = Instant::now();
        let mut last = self
            .last_warn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_none_or(|t| now.duration_since(t) >= WARN_EVERY) {
            *last = Some(now);
            drop(last);
            tracing::warn!(
                event = "telemetry.spans_dropped",
                dropped = n,
                dropped_total = self.counters.dropped.get(),
                reason = why,
                "telemetry: spans dropped (see exoclaw_telemetry_spans_dropped_total)"
            );
        }
    }

    fn opened(&self, trace: &Trace) {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if open.len() < MAX_OPEN {
            open.insert(
                (trace.tenant_id.clone(), trace.id.clone()),
                OpenTurn {
                    name: trace.name.clone(),
                    agent: trace.agent_id.as_ref().map(|a| a.as_str().to_owned()),
                    session: trace.session_id.as_ref().map(|s| s.as_str().to_owned()),
                    started_at: trace.started_at,
                },
            );
        }
    }

    fn closed(&self, tenant: &TenantId, id: &str) -> Option<OpenTurn> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&(tenant.clone(), id.to_owned()))
    }
}

struct Sender {
    client: EgressClient,
    url: String,
    resource: Resource,
    exporter: Arc<Exporter>,
}

impl Sender {
    async fn run(self, mut rx: mpsc::Receiver<OtlpSpan>, stop: CancellationToken) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        loop {
            let first = tokio::select! {
                biased;
                () = stop.cancelled() => break,
                s = rx.recv() => match s { Some(s) => s, None => break },
            };
            batch.push(first);
            let until = Instant::now() + BATCH_DELAY;
            while batch.len() < MAX_BATCH {
                tokio::select! {
                    biased;
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep_until(until) => break,
                    s = rx.recv() => match s { Some(s) => batch.push(s), None => break },
                }
            }
            self.send(std::mem::take(&mut batch)).await;
        }
        // Shutdown: send everything already queued.
        rx.close();
        while let Ok(s) = rx.try_recv() {
            batch.push(s);
            if batch.len() == MAX_BATCH {
                self.send(std::mem::take(&mut batch)).await;
            }
        }
        if !batch.is_empty() {
            self.send(batch).await;
        }
    }

    async fn send(&self, spans: Vec<OtlpSpan>) {
        let n = spans.len() as u64;
        let body = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(self.resource.clone()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "exoclaw".to_owned(),
                        version: crate::version::VERSION.to_owned(),
                        ..InstrumentationScope::default()
                    }),
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
        .encode_to_vec();
        let request = match self.client.request(Method::POST, &self.url) {
            Ok(r) => r,
            Err(r) => {
                self.exporter
                    .dropped(n, &format!("the collector URL is refused: {}", r.rule));
                return;
            }
        };
        let sent = request
            .header(header::CONTENT_TYPE, "application/x-protobuf")
            .timeout(REQUEST_TIMEOUT)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {
                self.exporter.counters.exported.inc_by(n);
            }
            Ok(r) => self.exporter.dropped(
                n,
                &format!("the collector answered {}", r.status().as_u16()),
            ),
            Err(e) => {
                let why = if e.is_timeout() {
                    "the collector timed out"
                } else if e.is_connect() {
                    "cannot connect to the collector"
                } else {
                    "the export request failed"
                };
                self.exporter.dropped(n, why);
            }
        }
    }
}

/// The trace store that also exports what it records.
pub struct ExportedTraces {
    pub inner: Arc<dyn TraceStore>,
    pub exporter: Arc<Exporter>,
}

#[async_trait::async_trait]
impl TraceStore for ExportedTraces {
    async fn create_trace(&self, trace: &NewTrace) -> StoreResult<Trace> {
        let t = self.inner.create_trace(trace).await?;
        self.exporter.opened(&t);
        Ok(t)
    }
    async fn finish_trace(&self, tenant: &TenantId, id: &str, end: &TraceEnd) -> StoreResult<()> {
        self.inner.finish_trace(tenant, id, end).await?;
        let turn = match self.exporter.closed(tenant, id) {
            Some(t) => Some(t),
            None => self
                .inner
                .get_trace(tenant, id)
                .await
                .ok()
                .flatten()
                .map(|(t, _)| OpenTurn {
                    name: t.name,
                    agent: t.agent_id.map(|a| a.as_str().to_owned()),
                    session: t.session_id.map(|s| s.as_str().to_owned()),
                    started_at: t.started_at,
                }),
        };
        if let Some(turn) = turn {
            self.exporter
                .enqueue(turn_span(tenant, id, &turn, end, now_ms()));
        }
        Ok(())
    }
    async fn add_span(&self, span: &NewSpan) -> StoreResult<Span> {
        let stored = self.inner.add_span(span).await?;
        self.exporter.enqueue(llm_or_tool_span(&stored));
        Ok(stored)
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

use exoclaw_core::now_ms;

fn digest<const N: usize>(kind: &str, tenant: &TenantId, id: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    for part in ["exoclaw", kind, tenant.as_str(), id] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let mut out = h.finalize()[..N].to_vec();
    // All-zero ids are invalid in OTLP.
    if out.iter().all(|b| *b == 0) {
        out[N - 1] = 1;
    }
    out
}

/// The OTLP trace id of our trace `id`.
pub fn trace_id(tenant: &TenantId, id: &str) -> Vec<u8> {
    digest::<16>("trace", tenant, id)
}

/// The OTLP span id of the turn (root span) of trace `id`.
pub fn root_span_id(tenant: &TenantId, id: &str) -> Vec<u8> {
    digest::<8>("turn", tenant, id)
}

fn span_id(tenant: &TenantId, id: &str) -> Vec<u8> {
    digest::<8>("span", tenant, id)
}

fn nanos(ms: UnixMillis) -> u64 {
    u64::try_from(ms).unwrap_or(0).saturating_mul(1_000_000)
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

fn string(key: &str, v: impl Into<String>) -> KeyValue {
    kv(key, any_value::Value::StringValue(v.into()))
}

fn int(key: &str, v: u64) -> KeyValue {
    kv(
        key,
        any_value::Value::IntValue(i64::try_from(v).unwrap_or(i64::MAX)),
    )
}

fn resource(service_name: &str) -> Resource {
    Resource {
        attributes: vec![
            string("service.name", service_name),
            string("service.version", crate::version::VERSION),
            string("telemetry.sdk.name", "exoclaw"),
            string("telemetry.sdk.language", "rust"),
        ],
        ..Resource::default()
    }
}

/// The error code of an error text: the part before `": "` when it looks
/// like a code (`provider.timeout: ...`), else a generic `error`.
fn error_code(text: &str) -> String {
    let head = text.split(": ").next().unwrap_or_default();
    if !head.is_empty()
        && head.len() <= 64
        && head
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_')
    {
        head.to_owned()
    } else {
        "error".to_owned()
    }
}

fn status_of(status: &str, code: Option<&str>) -> Status {
    match status {
        "ok" => Status {
            code: status::StatusCode::Ok as i32,
            message: String::new(),
        },
        "error" | "denied" => Status {
            code: status::StatusCode::Error as i32,
            message: code.unwrap_or("error").to_owned(),
        },
        _ => Status::default(),
    }
}

/// The finish reason of a stop reason as our spans record it.
fn finish_reason(stop: &str) -> &'static str {
    match stop {
        "EndTurn" => "stop",
        "ToolUse" => "tool_calls",
        "MaxTokens" => "length",
        _ => "other",
    }
}

/// A recorded LLM or tool span as an OTLP child of its turn.
pub fn llm_or_tool_span(s: &Span) -> OtlpSpan {
    let attr = |k: &str| s.attributes.get(k).and_then(serde_json::Value::as_str);
    let code = attr("error_code")
        .map(str::to_owned)
        .or_else(|| s.error.as_deref().map(error_code));
    let mut attributes = Vec::new();
    let (name, kind) = match s.kind {
        SpanKind::Llm => {
            let provider = s.provider.clone().unwrap_or_default();
            attributes.extend([
                string("gen_ai.operation.name", "chat"),
                string("gen_ai.provider.name", provider.clone()),
                string("gen_ai.system", provider),
                string("gen_ai.request.model", s.name.clone()),
                int("gen_ai.usage.input_tokens", s.usage.input_tokens),
                int("gen_ai.usage.output_tokens", s.usage.output_tokens),
                int(
                    "gen_ai.usage.cache_read.input_tokens",
                    s.usage.cache_read_tokens,
                ),
                int(
                    "gen_ai.usage.cache_creation.input_tokens",
                    s.usage.cache_write_tokens,
                ),
            ]);
            if let Some(model) = attr("response_model") {
                attributes.push(string("gen_ai.response.model", model));
            }
            if let Some(stop) = attr("stop") {
                attributes.push(kv(
                    "gen_ai.response.finish_reasons",
                    any_value::Value::ArrayValue(ArrayValue {
                        values: vec![AnyValue {
                            value: Some(any_value::Value::StringValue(
                                finish_reason(stop).to_owned(),
                            )),
                        }],
                    }),
                ));
            }
            if let Some(purpose) = attr("purpose") {
                attributes.push(string("exoclaw.purpose", purpose));
            }
            if let Some(i) = s.attributes.get("iteration").and_then(|v| v.as_u64()) {
                attributes.push(int("exoclaw.iteration", i));
            }
            (format!("chat {}", s.name), span::SpanKind::Client)
        }
        SpanKind::Tool => {
            attributes.extend([
                string("gen_ai.operation.name", "execute_tool"),
                string("gen_ai.tool.name", s.name.clone()),
            ]);
            (format!("execute_tool {}", s.name), span::SpanKind::Internal)
        }
        SpanKind::Agent => {
            attributes.extend([
                string("gen_ai.operation.name", "invoke_agent"),
                string("gen_ai.agent.name", s.name.clone()),
            ]);
            for key in ["kind", "mode", "delegation_id", "child_trace_id"] {
                if let Some(v) = attr(key) {
                    attributes.push(string(&format!("exoclaw.delegation.{key}"), v));
                }
            }
            (format!("invoke_agent {}", s.name), span::SpanKind::Internal)
        }
    };
    if let Some(c) = &code {
        attributes.push(string("error.type", c.clone()));
    }
    if s.cost_micros > 0 {
        #[allow(clippy::cast_precision_loss, reason = "dollars for a dashboard")]
        attributes.push(kv(
            "exoclaw.cost_usd",
            any_value::Value::DoubleValue(s.cost_micros as f64 / 1e6),
        ));
    }
    attributes.push(string("exoclaw.status", s.status.clone()));
    OtlpSpan {
        trace_id: trace_id(&s.tenant_id, &s.trace_id),
        span_id: span_id(&s.tenant_id, &s.id),
        parent_span_id: root_span_id(&s.tenant_id, &s.trace_id),
        name,
        kind: kind as i32,
        start_time_unix_nano: nanos(s.started_at),
        end_time_unix_nano: nanos(s.started_at.saturating_add(s.latency_ms.max(0))),
        attributes,
        status: Some(status_of(&s.status, code.as_deref())),
        ..OtlpSpan::default()
    }
}

/// The turn (root span) of trace `id`, ended at `ended_at`.
fn turn_span(
    tenant: &TenantId,
    id: &str,
    turn: &OpenTurn,
    end: &TraceEnd,
    ended_at: UnixMillis,
) -> OtlpSpan {
    let agent = turn.agent.clone().unwrap_or_default();
    let code = end.error.as_deref().map(error_code);
    let mut attributes = vec![
        string("gen_ai.operation.name", "invoke_agent"),
        string("gen_ai.agent.name", agent.clone()),
        string("gen_ai.agent.id", agent.clone()),
        int("gen_ai.usage.input_tokens", end.usage.input_tokens),
        int("gen_ai.usage.output_tokens", end.usage.output_tokens),
        string("exoclaw.trace_id", id),
        string("exoclaw.trace.name", turn.name.clone()),
        string("exoclaw.status", end.status.clone()),
    ];
    if let Some(s) = &turn.session {
        attributes.push(string("gen_ai.conversation.id", s.clone()));
    }
    if let Some(c) = &code {
        attributes.push(string("error.type", c.clone()));
    }
    if end.cost_micros > 0 {
        #[allow(clippy::cast_precision_loss, reason = "dollars for a dashboard")]
        attributes.push(kv(
            "exoclaw.cost_usd",
            any_value::Value::DoubleValue(end.cost_micros as f64 / 1e6),
        ));
    }
    OtlpSpan {
        trace_id: trace_id(tenant, id),
        span_id: root_span_id(tenant, id),
        name: format!("invoke_agent {agent}").trim_end().to_owned(),
        kind: span::SpanKind::Internal as i32,
        start_time_unix_nano: nanos(turn.started_at),
        end_time_unix_nano: nanos(ended_at.max(turn.started_at)),
        attributes,
        status: Some(status_of(&end.status, code.as_deref())),
        ..OtlpSpan::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exoclaw_core::provider::Usage;

    fn attrs(s: &OtlpSpan) -> HashMap<String, any_value::Value> {
        s.attributes
            .iter()
            .filter_map(|kv| Some((kv.key.clone(), kv.value.clone()?.value?)))
            .collect()
    }

    fn text(v: &any_value::Value) -> &str {
        match v {
            any_value::Value::StringValue(s) => s,
            _ => panic!("not a string: {v:?}"),
        }
    }

    fn stored(kind: SpanKind, name: &str, status: &str, attributes: serde_json::Value) -> Span {
        Span {
            id: "sp-1".into(),
            trace_id: "tr-1".into(),
            tenant_id: TenantId::new("default"),
            kind,
            name: name.into(),
            provider: (kind == SpanKind::Llm).then(|| "openai".to_owned()),
            status: status.into(),
            error: (status != "ok").then(|| "provider.timeout: the secret body".to_owned()),
            started_at: 1_700_000_000_000,
            latency_ms: 250,
            usage: Usage {
                input_tokens: 10,
                output_tokens: 5,
                cache_read_tokens: 3,
                cache_write_tokens: 2,
                estimated: false,
            },
            cost_micros: 42,
            attributes,
        }
    }

    #[test]
    fn ids_are_deterministic_and_well_sized() {
        let t = TenantId::new("default");
        assert_eq!(trace_id(&t, "a"), trace_id(&t, "a"));
        assert_ne!(trace_id(&t, "a"), trace_id(&t, "b"));
        assert_ne!(trace_id(&t, "a"), trace_id(&TenantId::new("other"), "a"));
        assert_eq!(trace_id(&t, "a").len(), 16);
        assert_eq!(root_span_id(&t, "a").len(), 8);
        assert_ne!(root_span_id(&t, "a"), span_id(&t, "a"));
    }

    #[test]
    fn llm_spans_follow_the_genai_conventions_without_error_text() {
        let s = stored(
            SpanKind::Llm,
            "gpt-4o",
            "error",
            serde_json::json!({"iteration": 1, "stop": "ToolUse", "error_code": "provider.timeout"}),
        );
        let o = llm_or_tool_span(&s);
        assert_eq!(o.name, "chat gpt-4o");
        assert_eq!(o.kind, span::SpanKind::Client as i32);
        assert_eq!(o.parent_span_id, root_span_id(&s.tenant_id, "tr-1"));
        assert_eq!(o.end_time_unix_nano - o.start_time_unix_nano, 250_000_000);
        let a = attrs(&o);
        assert_eq!(text(&a["gen_ai.operation.name"]), "chat");
        assert_eq!(text(&a["gen_ai.provider.name"]), "openai");
        assert_eq!(text(&a["gen_ai.system"]), "openai");
        assert_eq!(text(&a["gen_ai.request.model"]), "gpt-4o");
        assert_eq!(
            a["gen_ai.usage.input_tokens"],
            any_value::Value::IntValue(10)
        );
        assert_eq!(
            a["gen_ai.usage.cache_creation.input_tokens"],
            any_value::Value::IntValue(2)
        );
        assert_eq!(text(&a["error.type"]), "provider.timeout");
        let status = o.status.unwrap();
        assert_eq!(status.code, status::StatusCode::Error as i32);
        assert_eq!(status.message, "provider.timeout");
        let bytes = format!("{:?}", o.attributes);
        assert!(!bytes.contains("secret body"), "{bytes}");
    }

    #[test]
    fn tool_spans_and_turns() {
        let s = stored(
            SpanKind::Tool,
            "read_file",
            "denied",
            serde_json::json!({"error_code": "security.path_denied"}),
        );
        let o = llm_or_tool_span(&s);
        assert_eq!(o.name, "execute_tool read_file");
        let a = attrs(&o);
        assert_eq!(text(&a["gen_ai.tool.name"]), "read_file");
        assert_eq!(text(&a["error.type"]), "security.path_denied");

        let turn = OpenTurn {
            name: "chat".into(),
            agent: Some("default".into()),
            session: Some("s-1".into()),
            started_at: 1_000,
        };
        let end = TraceEnd {
            status: "error".into(),
            error: Some("Provider said: I saw your password hunter2".into()),
            usage: Usage::default(),
            cost_micros: 0,
        };
        let t = TenantId::new("default");
        let o = turn_span(&t, "tr-1", &turn, &end, 2_000);
        assert_eq!(o.name, "invoke_agent default");
        assert!(o.parent_span_id.is_empty());
        assert_eq!(o.span_id, root_span_id(&t, "tr-1"));
        let a = attrs(&o);
        assert_eq!(text(&a["gen_ai.agent.name"]), "default");
        assert_eq!(text(&a["error.type"]), "error", "free text is not a code");
        assert!(!format!("{o:?}").contains("hunter2"));
    }

    #[test]
    fn the_traces_path_is_appended_to_a_bare_endpoint() {
        assert_eq!(
            traces_url("http://127.0.0.1:4318"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://127.0.0.1:4318/"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            traces_url("https://otel.example/custom/v1/traces"),
            "https://otel.example/custom/v1/traces"
        );
    }
}
