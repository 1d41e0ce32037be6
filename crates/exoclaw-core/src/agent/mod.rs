//! The agent loop: think -> act -> observe. One call of [`run_turn`] handles
//! one user message: it loads the session's history (compacting it when it
//! outgrows the budget), streams the model's answer, runs the tools it asks
//! for in parallel through the policy path, feeds the results back, and
//! repeats until the model answers or `max_iterations` is reached.
//!
//! Failures are data: a tool error goes back to the model as a tool result; a
//! provider failure or a cancellation ends the run with the partial answer
//! persisted and marked. Only a store failure is `Err`.

pub mod history;
pub mod window;

use crate::model::NewMessage;
use crate::provider::{
    ChatMessage, ChatRequest, ChatRole, ContentPart, Provider, ProviderError, StreamEvent,
    ToolCall, ToolSpec, Usage, merge_usage, next,
};
use crate::store::{SessionStore, StoreError, TraceStore};
use crate::tool::{ToolContext, ToolRunner};
use crate::trace::{NewSpan, NewTrace, SpanKind, TraceEnd};
use crate::{AgentId, SessionId, TenantId, UnixMillis, UserId};
use history::{History, SUMMARY_ROLE, split_point, transcript};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use window::{Window, Windows};

/// Prices an LLM call (implemented by the providers' pricing table).
pub trait Pricing: Send + Sync {
    /// Cost in micro-dollars; 0 for unknown models.
    fn cost_micros(&self, model: &str, usage: &Usage) -> i64;
}

/// What the loop needs from the rest of the system.
#[derive(Clone)]
pub struct AgentDeps {
    pub provider: Arc<dyn Provider>,
    pub tools: Arc<dyn ToolRunner>,
    pub sessions: Arc<dyn SessionStore>,
    pub traces: Arc<dyn TraceStore>,
    pub pricing: Arc<dyn Pricing>,
    /// Hot sessions' windows between turns ([`window`]).
    pub windows: Arc<Windows>,
}

/// One turn's settings, resolved by the caller from agent and config.
#[derive(Clone, Debug)]
pub struct RunSpec {
    pub tenant: TenantId,
    pub agent: AgentId,
    pub user: UserId,
    pub session: SessionId,
    /// The provider's configured name, for traces.
    pub provider_name: String,
    pub model: String,
    /// Assembled from the agent's and the user's context files.
    pub system_prompt: String,
    pub max_iterations: u32,
    /// Estimated tokens of history above which older turns are summarised.
    pub max_history_tokens: usize,
    /// Messages kept verbatim when compacting.
    pub keep_recent_messages: usize,
    pub max_tokens: Option<u32>,
    pub tool_ctx: ToolContext,
    /// The trace's name: `chat`, `delegate`, `spawn`, `announce`, ...
    pub trace_name: String,
    /// Stored with the input message (`{}` for a person's message; an
    /// announcement says whose result it carries).
    pub input_meta: serde_json::Value,
    /// The gateway instance running the turn (recorded on its trace).
    pub owner: Option<String>,
}

/// What the loop streams while it runs.
#[derive(Clone, Debug, PartialEq)]
pub enum AgentEvent {
    TextDelta(String),
    ToolStarted {
        id: String,
        name: String,
    },
    ToolFinished {
        id: String,
        name: String,
        ok: bool,
        error_code: Option<String>,
    },
    /// Something the user should know that is not part of the answer
    /// (history compacted, compaction failed).
    Notice {
        code: String,
        message: String,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Finish {
    Complete,
    Cancelled,
    Failed { code: String, message: String },
}

#[derive(Clone, Debug)]
pub struct RunOutcome {
    /// Everything the assistant said this turn (partial if not complete).
    pub text: String,
    pub usage: Usage,
    pub cost_micros: i64,
    pub iterations: u32,
    pub trace_id: String,
    pub finish: Finish,
}

use crate::now_ms;

fn elapsed_ms(t: Instant) -> i64 {
    i64::try_from(t.elapsed().as_millis()).unwrap_or(i64::MAX)
}

struct Turn<'a> {
    deps: &'a AgentDeps,
    spec: &'a RunSpec,
    events: &'a mpsc::Sender<AgentEvent>,
    trace_id: String,
    usage: Usage,
    cost: i64,
    text: String,
    /// The highest `seq` the history holds or skipped, and whether the
    /// messages this turn kept followed one another with nobody else writing
    /// in between (else the window is not cached: see [`window`]).
    last_seq: i64,
    intact: bool,
}

impl Turn<'_> {
    async fn emit(&self, e: AgentEvent) {
        // A gone receiver (client disconnected) does not stop the run.
        let _ = self.events.send(e).await;
    }

    async fn append(
        &self,
        role: &str,
        content: &[ContentPart],
        meta: serde_json::Value,
    ) -> Result<i64, StoreError> {
        let message = NewMessage {
            role: role.to_owned(),
            content: serde_json::to_value(content)
                .map_err(|e| StoreError::Invalid(e.to_string()))?,
            meta,
        };
        self.deps
            .sessions
            .append_message(&self.spec.tenant, &self.spec.session, &message)
            .await
            .map(|m| m.seq)
    }

    /// Append a message the model sees from now on, and add it to `hist`.
    async fn keep(
        &mut self,
        hist: &mut History,
        role: ChatRole,
        content: Vec<ContentPart>,
        meta: serde_json::Value,
    ) -> Result<(), StoreError> {
        let stored_role = match role {
            ChatRole::User => "user",
            ChatRole::Assistant => "assistant",
            ChatRole::Tool => "tool",
        };
        let seq = self.append(stored_role, &content, meta).await?;
        self.seen(seq);
        hist.push(seq, role, content);
        Ok(())
    }

    /// This turn stored `seq` and the history holds (or deliberately
    /// skips) it.
    fn seen(&mut self, seq: i64) {
        if seq != self.last_seq + 1 {
            self.intact = false;
        }
        self.last_seq = self.last_seq.max(seq);
    }

    /// A span of this trace, started at `started`, finished now.
    fn span(&self, kind: SpanKind, name: &str, started: (UnixMillis, Instant)) -> NewSpan {
        NewSpan {
            trace_id: self.trace_id.clone(),
            tenant_id: self.spec.tenant.clone(),
            kind,
            name: name.to_owned(),
            provider: (kind == SpanKind::Llm).then(|| self.spec.provider_name.clone()),
            status: "ok".to_owned(),
            error: None,
            started_at: started.0,
            latency_ms: elapsed_ms(started.1),
            usage: Usage::default(),
            cost_micros: 0,
            attributes: serde_json::Value::Null,
        }
    }

    async fn record(&self, span: NewSpan) {
        if let Err(e) = self.deps.traces.add_span(&span).await {
            tracing::warn!(error = %e, "cannot record a span");
        }
    }
}

/// Run one turn. See the module docs.
pub async fn run_turn(
    deps: &AgentDeps,
    spec: &RunSpec,
    input: &str,
    events: &mpsc::Sender<AgentEvent>,
    cancel: &CancellationToken,
) -> Result<RunOutcome, StoreError> {
    let trace = deps
        .traces
        .create_trace(&NewTrace {
            tenant_id: spec.tenant.clone(),
            agent_id: Some(spec.agent.clone()),
            user_id: Some(spec.user.clone()),
            session_id: Some(spec.session.clone()),
            name: spec.trace_name.clone(),
            owner: spec.owner.clone(),
        })
        .await?;
    spec.tool_ctx.run.set_trace(&trace.id);
    let mut turn = Turn {
        deps,
        spec,
        events,
        trace_id: trace.id.clone(),
        usage: Usage::default(),
        cost: 0,
        text: String::new(),
        last_seq: 0,
        intact: false,
    };
    let result = turn_body(&mut turn, input, cancel).await;
    let (finish, iterations) = match result {
        Ok(done) => done,
        Err(e) => {
            let end = TraceEnd {
                status: "error".into(),
                error: Some(e.to_string()),
                usage: turn.usage,
                cost_micros: turn.cost,
            };
            let _ = deps
                .traces
                .finish_trace(&spec.tenant, &trace.id, &end)
                .await;
            return Err(e);
        }
    };
    let (status, error) = match &finish {
        Finish::Complete => ("ok", None),
        Finish::Cancelled => ("cancelled", None),
        Finish::Failed { code, message } => ("error", Some(format!("{code}: {message}"))),
    };
    let end = TraceEnd {
        status: status.into(),
        error,
        usage: turn.usage,
        cost_micros: turn.cost,
    };
    deps.traces
        .finish_trace(&spec.tenant, &trace.id, &end)
        .await?;
    Ok(RunOutcome {
        text: turn.text,
        usage: turn.usage,
        cost_micros: turn.cost,
        iterations,
        trace_id: trace.id,
        finish,
    })
}

/// The session's window as this gateway last left it: the cached one, or
/// an empty one for a session it does not hold. Not read from the store
/// yet: the turn's first append tells whether anything was written since
/// ([`keep_input`]), and only then is the difference read. A session that
/// nobody else writes to (nearly every turn) costs no read at all, a new
/// session neither.
fn load_window(t: &mut Turn<'_>) -> History {
    let (history, last_seq) = match t.deps.windows.take(&t.spec.session) {
        Some(Window { history, last_seq }) => (history, last_seq),
        None => (History::default(), 0),
    };
    t.last_seq = last_seq;
    t.intact = true;
    history
}

/// Append the person's message and bring `hist` up to date with it: when
/// its `seq` does not follow the window's last one, someone wrote to the
/// session since (another gateway, an announcement, or this gateway before
/// it held the window) and the messages in between are read and put before
/// it; when they include a summary, the window is read again whole.
async fn keep_input(
    t: &mut Turn<'_>,
    hist: &mut History,
    content: Vec<ContentPart>,
    meta: serde_json::Value,
) -> Result<(), StoreError> {
    let seq = t.append("user", &content, meta).await?;
    let spec = t.spec;
    if seq != t.last_seq + 1 {
        let sessions = &t.deps.sessions;
        // Held: read what was written since.
        if t.last_seq > 0 {
            let newer = sessions
                .list_messages(&spec.tenant, &spec.session, t.last_seq, 0)
                .await?;
            let before: Vec<_> = newer.into_iter().filter(|m| m.seq < seq).collect();
            if hist.extend_stored(&before) {
                t.last_seq = seq;
                hist.push(seq, ChatRole::User, content);
                return Ok(());
            }
        }
        // Not held, or a summary was written meanwhile: the window is read
        // whole. It includes this message, and maybe messages after it,
        // which keep the window out of the cache after this turn.
        let stored = sessions.list_window(&spec.tenant, &spec.session).await?;
        *hist = history::from_stored(&stored);
        t.last_seq = stored.last().map_or(seq, |m| m.seq.max(seq));
        t.intact = t.last_seq == seq;
        return Ok(());
    }
    t.last_seq = seq;
    hist.push(seq, ChatRole::User, content);
    Ok(())
}

async fn turn_body(
    t: &mut Turn<'_>,
    input: &str,
    cancel: &CancellationToken,
) -> Result<(Finish, u32), StoreError> {
    let mut hist = load_window(t);
    let result = turn_steps(t, &mut hist, input, cancel).await;
    if result.is_ok() && t.intact {
        t.deps.windows.put(
            t.spec.session.clone(),
            Window {
                history: hist,
                last_seq: t.last_seq,
            },
        );
    }
    result
}

async fn turn_steps(
    t: &mut Turn<'_>,
    hist: &mut History,
    input: &str,
    cancel: &CancellationToken,
) -> Result<(Finish, u32), StoreError> {
    let spec = t.spec;
    keep_input(
        t,
        hist,
        vec![ContentPart::Text {
            text: input.to_owned(),
        }],
        if spec.input_meta.is_null() {
            json!({})
        } else {
            spec.input_meta.clone()
        },
    )
    .await?;
    let tools: Arc<[ToolSpec]> = t.deps.tools.specs();

    if hist.estimate_tokens(&spec.system_prompt, &tools) > spec.max_history_tokens
        && let Err(finish) = compact(t, hist).await?
    {
        return Ok((finish, 0));
    }

    let mut iteration = 0;
    loop {
        if iteration >= spec.max_iterations {
            let message = format!(
                "stopped after {} iterations without a final answer (agents.defaults.max_iterations)",
                spec.max_iterations
            );
            t.append(
                "assistant",
                &[ContentPart::Text {
                    text: t.text.clone(),
                }],
                json!({"partial": true, "reason": "max_iterations"}),
            )
            .await?;
            return Ok((
                Finish::Failed {
                    code: "agent.max_iterations".into(),
                    message,
                },
                iteration,
            ));
        }
        iteration += 1;
        let mut system = spec.system_prompt.clone();
        if let Some(s) = &hist.summary {
            system.push_str("\n\n## Summary of the earlier conversation\n");
            system.push_str(s);
        }
        let request = ChatRequest {
            model: spec.model.clone(),
            system: Some(system),
            messages: hist.messages.clone(),
            tools: tools.clone(),
            max_tokens: spec.max_tokens,
            temperature: None,
            cache_prefix_len: hist.messages.len().saturating_sub(1),
            scope: crate::provider::CallScope {
                tenant: Some(spec.tenant.clone()),
                agent: Some(spec.agent.clone()),
                user: Some(spec.user.clone()),
            },
            prefix: hist.prefix.clone(),
        };
        let step = think(t, request, cancel, iteration).await;
        let step = match step {
            Step::Answer { text, calls } => (text, calls),
            Step::Stopped { text, finish } => {
                let reason = if finish == Finish::Cancelled {
                    "cancelled"
                } else {
                    "error"
                };
                let code = match &finish {
                    Finish::Failed { code, .. } => Some(code.clone()),
                    _ => None,
                };
                if !text.is_empty() || !t.text.is_empty() {
                    t.append(
                        "assistant",
                        &[ContentPart::Text { text }],
                        json!({"partial": true, "reason": reason, "error_code": code}),
                    )
                    .await?;
                }
                return Ok((finish, iteration));
            }
        };
        let (text, calls) = step;
        let mut parts = Vec::new();
        if !text.is_empty() {
            parts.push(ContentPart::Text { text });
        }
        parts.extend(calls.iter().cloned().map(ContentPart::ToolCall));
        t.keep(
            hist,
            ChatRole::Assistant,
            parts,
            json!({"model": spec.model}),
        )
        .await?;
        if calls.is_empty() {
            return Ok((Finish::Complete, iteration));
        }
        if cancel.is_cancelled() {
            return Ok((Finish::Cancelled, iteration));
        }
        let results = act(t, &calls).await;
        t.keep(hist, ChatRole::Tool, results, json!({})).await?;
    }
}

enum Step {
    Answer { text: String, calls: Vec<ToolCall> },
    Stopped { text: String, finish: Finish },
}

/// One LLM call, streamed: deltas go out as they arrive.
async fn think(
    t: &mut Turn<'_>,
    request: ChatRequest,
    cancel: &CancellationToken,
    iteration: u32,
) -> Step {
    let started = (now_ms(), Instant::now());
    let model = request.model.clone();
    let mut usage = Usage::default();
    let mut text = String::new();
    let mut calls = Vec::new();
    let mut stop = None;
    let separator = !t.text.is_empty();
    let mut error: Option<ProviderError> = None;
    let mut cancelled = false;
    tokio::select! {
        biased;
        () = cancel.cancelled() => cancelled = true,
        r = t.deps.provider.stream(request) => match r {
            Err(e) => error = Some(e),
            Ok(mut stream) => loop {
                let item = tokio::select! {
                    biased;
                    () = cancel.cancelled() => { cancelled = true; break; }
                    item = next(&mut stream) => item,
                };
                match item {
                    None => break,
                    Some(Err(e)) => { error = Some(e); break; }
                    Some(Ok(StreamEvent::TextDelta(d))) => {
                        if text.is_empty() && separator && !d.is_empty() {
                            t.text.push_str("\n\n");
                            t.emit(AgentEvent::TextDelta("\n\n".into())).await;
                        }
                        text.push_str(&d);
                        t.text.push_str(&d);
                        t.emit(AgentEvent::TextDelta(d)).await;
                    }
                    Some(Ok(StreamEvent::ToolCall(c))) => calls.push(c),
                    Some(Ok(StreamEvent::Usage(u))) => merge_usage(&mut usage, u),
                    Some(Ok(StreamEvent::Done(s))) => { stop = Some(s); }
                }
            },
        },
    }
    if error.is_none() && !cancelled && stop.is_none() {
        error = Some(ProviderError::Malformed(
            "the stream ended without a final event".into(),
        ));
    }
    let cost = t.deps.pricing.cost_micros(&model, &usage);
    t.usage.add(usage);
    t.cost += cost;
    let (status, err_text) = match (&error, cancelled) {
        (Some(e), _) => ("error", Some(e.to_string())),
        (None, true) => ("cancelled", None),
        _ => ("ok", None),
    };
    let mut span = t.span(SpanKind::Llm, &model, started);
    span.status = status.to_owned();
    span.error = err_text;
    span.usage = usage;
    span.cost_micros = cost;
    span.attributes = json!({
        "iteration": iteration,
        "stop": stop.map(|s| format!("{s:?}")),
        "error_code": error.as_ref().map(ProviderError::code),
    });
    if usage.estimated {
        // The provider reported no usage: the counts are the gateway's.
        span.attributes["usage_estimated"] = json!(true);
    }
    t.record(span).await;
    if cancelled {
        return Step::Stopped {
            text,
            finish: Finish::Cancelled,
        };
    }
    if let Some(e) = error {
        return Step::Stopped {
            text,
            finish: Finish::Failed {
                code: e.code().to_owned(),
                message: e.to_string(),
            },
        };
    }
    Step::Answer { text, calls }
}

/// Run the requested tools in parallel through the policy path.
async fn act(t: &Turn<'_>, calls: &[ToolCall]) -> Vec<ContentPart> {
    let runs = calls.iter().map(|c| async move {
        t.emit(AgentEvent::ToolStarted {
            id: c.id.clone(),
            name: c.name.clone(),
        })
        .await;
        let started = (now_ms(), Instant::now());
        let mut ctx = t.spec.tool_ctx.clone();
        ctx.call_id = Some(c.id.clone());
        let result = t.deps.tools.run(&ctx, &c.name, &c.arguments).await;
        let (status, code) = match &result {
            Ok(_) => ("ok", None),
            Err(e) if e.code.starts_with("security.") => ("denied", Some(e.code.clone())),
            Err(e) => ("error", Some(e.code.clone())),
        };
        let mut span = t.span(SpanKind::Tool, &c.name, started);
        span.status = status.to_owned();
        span.error = code.clone();
        span.attributes = json!({"error_code": code});
        t.record(span).await;
        t.emit(AgentEvent::ToolFinished {
            id: c.id.clone(),
            name: c.name.clone(),
            ok: result.is_ok(),
            error_code: code,
        })
        .await;
        match result {
            Ok(out) => ContentPart::ToolResult {
                call_id: c.id.clone(),
                content: out.content,
                is_error: false,
            },
            Err(e) => ContentPart::ToolResult {
                call_id: c.id.clone(),
                content: format!("error [{}]: {}", e.code, e.message),
                is_error: true,
            },
        }
    });
    futures_util::future::join_all(runs).await
}

/// Summarise the older part of the history. `Ok(Err(finish))` ends the turn
/// (compaction failed: reported, never retried in a loop, never a silent
/// reset); `Ok(Ok(()))` continues.
async fn compact(t: &mut Turn<'_>, hist: &mut History) -> Result<Result<(), Finish>, StoreError> {
    let spec = t.spec;
    // The new user message (last) always stays.
    let Some(split) = split_point(&hist.messages, spec.keep_recent_messages.max(1)) else {
        return Ok(Ok(()));
    };
    let old = &hist.messages[..split];
    let through = hist.seqs[..split].iter().copied().max().unwrap_or(0);
    let mut request = ChatRequest::new(
        spec.model.clone(),
        vec![ChatMessage::user(transcript(hist.summary.as_deref(), old))],
    );
    request.system = Some("You compress conversations. Summarise the conversation below for your own future reference: keep facts, decisions, names, numbers, file paths and open tasks; drop pleasantries. Answer with the summary only.".into());
    request.max_tokens = Some(2048);
    request.scope = crate::provider::CallScope {
        tenant: Some(spec.tenant.clone()),
        agent: Some(spec.agent.clone()),
        user: Some(spec.user.clone()),
    };
    let started = (now_ms(), Instant::now());
    let result = t.deps.provider.complete(request).await;
    let (usage, status, err) = match &result {
        Ok(r) => (r.usage, "ok", None),
        Err(e) => (Usage::default(), "error", Some(e.to_string())),
    };
    let error_code = result.as_ref().err().map(ProviderError::code);
    let cost = t.deps.pricing.cost_micros(&spec.model, &usage);
    t.usage.add(usage);
    t.cost += cost;
    let mut span = t.span(SpanKind::Llm, &spec.model, started);
    span.status = status.to_owned();
    span.error = err;
    span.usage = usage;
    span.cost_micros = cost;
    span.attributes = json!({"purpose": "compaction", "error_code": error_code});
    t.record(span).await;
    match result {
        Ok(r) if !r.text.trim().is_empty() => {
            let seq = t
                .append(
                    SUMMARY_ROLE,
                    &[ContentPart::Text {
                        text: r.text.clone(),
                    }],
                    json!({"compacted_through": through}),
                )
                .await?;
            t.seen(seq);
            hist.summary = Some(r.text);
            hist.drop_oldest(split);
            t.emit(AgentEvent::Notice {
                code: "agent.compacted".into(),
                message: format!(
                    "summarised {split} earlier messages to stay within the history budget"
                ),
            })
            .await;
            Ok(Ok(()))
        }
        other => {
            let why = match other {
                Err(e) => e.to_string(),
                Ok(_) => "the summary was empty".into(),
            };
            let message = format!(
                "the conversation is too long for the model and summarising it failed ({why}); nothing was deleted: retry, or start a new session"
            );
            t.emit(AgentEvent::Notice {
                code: "agent.compaction_failed".into(),
                message: message.clone(),
            })
            .await;
            Ok(Err(Finish::Failed {
                code: "agent.compaction_failed".into(),
                message,
            }))
        }
    }
}

#[cfg(test)]
mod tests;
