//! Agent-loop tests with a scripted provider, a recording tool runner and
//! in-memory stores: declarative expectations on tools used, persisted
//! messages, trace spans and streamed events.

use super::*;
use crate::model::{Message, Session, SessionFilter, SessionScope};
use crate::provider::{ChatStream, ProviderInfo, StopReason, ToolSpec};
use crate::store::StoreResult;
use crate::tool::{ToolError, ToolOutput};
use crate::trace::{Span, Trace, TraceFilter};
use async_trait::async_trait;
use std::collections::VecDeque;
use std::sync::Mutex;

/// One scripted reply: events, or an error before the stream, or a stream
/// that hangs after its events.
#[derive(Clone)]
enum Reply {
    Events(Vec<Result<StreamEvent, ProviderError>>),
    Refuse(ProviderError),
    Hang(Vec<StreamEvent>),
}

#[derive(Default)]
struct Scripted {
    replies: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<ChatRequest>>,
}

impl Scripted {
    fn new(replies: Vec<Reply>) -> Arc<Self> {
        Arc::new(Self {
            replies: Mutex::new(replies.into()),
            requests: Mutex::default(),
        })
    }
    fn requests(&self) -> Vec<ChatRequest> {
        self.requests.lock().unwrap().clone()
    }
}

fn answer(text: &str) -> Reply {
    let mut ev: Vec<_> = text
        .split_inclusive(' ')
        .map(|w| Ok(StreamEvent::TextDelta(w.into())))
        .collect();
    ev.push(Ok(StreamEvent::Usage(Usage {
        input_tokens: 10,
        output_tokens: 5,
        ..Usage::default()
    })));
    ev.push(Ok(StreamEvent::Done(StopReason::EndTurn)));
    Reply::Events(ev)
}

fn tools(calls: &[(&str, &str, serde_json::Value)]) -> Reply {
    let mut ev: Vec<_> = calls
        .iter()
        .map(|(id, name, args)| {
            Ok(StreamEvent::ToolCall(ToolCall {
                id: (*id).into(),
                name: (*name).into(),
                arguments: args.clone(),
            }))
        })
        .collect();
    ev.push(Ok(StreamEvent::Done(StopReason::ToolUse)));
    Reply::Events(ev)
}

#[async_trait]
impl Provider for Scripted {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            name: "scripted".into(),
            wire: "openai",
        }
    }
    async fn stream(&self, request: ChatRequest) -> Result<ChatStream, ProviderError> {
        self.requests.lock().unwrap().push(request);
        let reply = self
            .replies
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| answer("(script exhausted)"));
        match reply {
            Reply::Refuse(e) => Err(e),
            Reply::Events(ev) => Ok(Box::pin(futures_util::stream::iter(ev))),
            Reply::Hang(ev) => {
                let head = futures_util::stream::iter(ev.into_iter().map(Ok));
                Ok(Box::pin(futures_util::StreamExt::chain(
                    head,
                    futures_util::stream::pending(),
                )))
            }
        }
    }
}

#[derive(Default)]
struct Tools {
    calls: Mutex<Vec<(String, serde_json::Value)>>,
}

#[async_trait]
impl ToolRunner for Tools {
    fn specs(&self) -> Arc<[ToolSpec]> {
        Arc::from([ToolSpec {
            name: "read_file".into(),
            description: "read".into(),
            parameters: json!({"type": "object"}),
        }])
    }
    async fn run(
        &self,
        _: &ToolContext,
        name: &str,
        args: &serde_json::Value,
    ) -> Result<crate::tool::ToolOutput, ToolError> {
        self.calls
            .lock()
            .unwrap()
            .push((name.to_owned(), args.clone()));
        match args["path"].as_str() {
            Some("missing") => Err(ToolError::failed("missing: no such file or directory")),
            Some(p) => Ok(ToolOutput::text(format!("contents of {p}"))),
            None => Err(ToolError::invalid_args("missing field `path`")),
        }
    }
}

#[derive(Default)]
struct Mem {
    messages: Mutex<Vec<Message>>,
    /// Reads of messages (`list_messages`, `list_window`).
    reads: std::sync::atomic::AtomicUsize,
    traces: Mutex<Vec<Trace>>,
    spans: Mutex<Vec<Span>>,
}

#[async_trait]
impl SessionStore for Mem {
    async fn get_or_create_session(&self, _: &TenantId, _: &SessionScope) -> StoreResult<Session> {
        unreachable!("not used by the loop")
    }
    async fn get_session(&self, _: &TenantId, _: &SessionId) -> StoreResult<Option<Session>> {
        Ok(None)
    }
    async fn list_sessions(&self, _: &TenantId, _: &SessionFilter) -> StoreResult<Vec<Session>> {
        Ok(Vec::new())
    }
    async fn delete_session(&self, _: &TenantId, _: &SessionId) -> StoreResult<()> {
        Ok(())
    }
    async fn append_message(
        &self,
        tenant: &TenantId,
        session: &SessionId,
        m: &NewMessage,
    ) -> StoreResult<Message> {
        let mut all = self.messages.lock().unwrap();
        let msg = Message {
            id: format!("m{}", all.len() + 1).into(),
            tenant_id: tenant.clone(),
            session_id: session.clone(),
            seq: all.len() as i64 + 1,
            role: m.role.clone(),
            content: m.content.clone(),
            meta: m.meta.clone(),
            created_at: 0,
        };
        all.push(msg.clone());
        Ok(msg)
    }
    async fn list_messages(
        &self,
        _: &TenantId,
        _: &SessionId,
        after: i64,
        _: u32,
    ) -> StoreResult<Vec<Message>> {
        self.reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(self
            .messages
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.seq > after)
            .cloned()
            .collect())
    }
}

#[async_trait]
impl TraceStore for Mem {
    async fn create_trace(&self, t: &NewTrace) -> StoreResult<Trace> {
        let trace = Trace {
            id: "t1".into(),
            tenant_id: t.tenant_id.clone(),
            agent_id: t.agent_id.clone(),
            user_id: t.user_id.clone(),
            session_id: t.session_id.clone(),
            name: t.name.clone(),
            status: "running".into(),
            error: None,
            started_at: 0,
            ended_at: None,
            usage: Usage::default(),
            cost_micros: 0,
            owner: t.owner.clone(),
        };
        self.traces.lock().unwrap().push(trace.clone());
        Ok(trace)
    }
    async fn finish_trace(&self, _: &TenantId, _: &str, end: &TraceEnd) -> StoreResult<()> {
        let mut t = self.traces.lock().unwrap();
        let last = t.last_mut().unwrap();
        last.status = end.status.clone();
        last.error = end.error.clone();
        last.usage = end.usage;
        last.cost_micros = end.cost_micros;
        Ok(())
    }
    async fn add_span(&self, s: &NewSpan) -> StoreResult<Span> {
        let span = Span {
            id: "s".into(),
            trace_id: s.trace_id.clone(),
            tenant_id: s.tenant_id.clone(),
            kind: s.kind,
            name: s.name.clone(),
            provider: s.provider.clone(),
            status: s.status.clone(),
            error: s.error.clone(),
            started_at: s.started_at,
            latency_ms: s.latency_ms,
            usage: s.usage,
            cost_micros: s.cost_micros,
            attributes: s.attributes.clone(),
        };
        self.spans.lock().unwrap().push(span.clone());
        Ok(span)
    }
    async fn list_traces(&self, _: &TenantId, _: &TraceFilter) -> StoreResult<Vec<Trace>> {
        Ok(self.traces.lock().unwrap().clone())
    }
    async fn get_trace(&self, _: &TenantId, _: &str) -> StoreResult<Option<(Trace, Vec<Span>)>> {
        Ok(None)
    }
}

struct FlatPrice;
impl Pricing for FlatPrice {
    fn cost_micros(&self, _: &str, u: &Usage) -> i64 {
        (u.input_tokens + u.output_tokens) as i64
    }
}

struct Harness {
    provider: Arc<Scripted>,
    tools: Arc<Tools>,
    mem: Arc<Mem>,
    spec: RunSpec,
    windows: Arc<Windows>,
}

fn harness(replies: Vec<Reply>) -> Harness {
    let spec = RunSpec {
        tenant: "default".into(),
        agent: "default".into(),
        user: "u".into(),
        session: "s".into(),
        provider_name: "scripted".into(),
        model: "m".into(),
        system_prompt: "You are helpful.".into(),
        max_iterations: 5,
        max_history_tokens: 100_000,
        keep_recent_messages: 2,
        max_tokens: None,
        tool_ctx: ToolContext {
            tenant: "default".into(),
            user: "u".into(),
            agent: "default".into(),
            session: Some("s".into()),
            workspace: std::path::PathBuf::from("/nonexistent"),
            request_id: None,
            run: Default::default(),
            approved: None,
            call_id: None,
            agents: None,
            lineage: Default::default(),
            cancel: Default::default(),
        },
        trace_name: "chat".into(),
        input_meta: serde_json::Value::Null,
        owner: None,
    };
    Harness {
        provider: Scripted::new(replies),
        tools: Arc::default(),
        mem: Arc::default(),
        spec,
        windows: Arc::new(Windows::new(1 << 20, std::time::Duration::from_secs(600))),
    }
}

impl Harness {
    fn deps(&self) -> AgentDeps {
        AgentDeps {
            provider: self.provider.clone(),
            tools: self.tools.clone(),
            sessions: self.mem.clone(),
            traces: self.mem.clone(),
            pricing: Arc::new(FlatPrice),
            windows: self.windows.clone(),
        }
    }

    async fn turn(&self, input: &str) -> (RunOutcome, Vec<AgentEvent>) {
        self.turn_with(input, &CancellationToken::new()).await
    }

    async fn turn_with(
        &self,
        input: &str,
        cancel: &CancellationToken,
    ) -> (RunOutcome, Vec<AgentEvent>) {
        let (tx, mut rx) = mpsc::channel(1024);
        let out = run_turn(&self.deps(), &self.spec, input, &tx, cancel)
            .await
            .unwrap();
        drop(tx);
        let mut events = Vec::new();
        while let Some(e) = rx.recv().await {
            events.push(e);
        }
        (out, events)
    }

    fn roles(&self) -> Vec<String> {
        self.mem
            .messages
            .lock()
            .unwrap()
            .iter()
            .map(|m| m.role.clone())
            .collect()
    }
}

#[tokio::test]
async fn a_plain_answer_is_streamed_persisted_and_traced() {
    let h = harness(vec![answer("Hello there friend")]);
    let (out, events) = h.turn("hi").await;
    assert_eq!(out.finish, Finish::Complete);
    assert_eq!(out.text, "Hello there friend");
    let deltas: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, AgentEvent::TextDelta(_)))
        .collect();
    assert_eq!(deltas.len(), 3, "streamed as it arrived");
    assert_eq!(h.roles(), ["user", "assistant"]);
    let trace = h.mem.traces.lock().unwrap()[0].clone();
    assert_eq!(trace.status, "ok");
    assert_eq!(trace.usage.input_tokens, 10);
    assert_eq!(trace.cost_micros, 15);
    let spans = h.mem.spans.lock().unwrap();
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].kind, SpanKind::Llm);
    assert_eq!(spans[0].provider.as_deref(), Some("scripted"));
    let req = &h.provider.requests()[0];
    assert_eq!(req.system.as_deref(), Some("You are helpful."));
    assert_eq!(req.tools.len(), 1);
}

#[tokio::test]
async fn parallel_tool_calls_run_and_their_results_go_back_to_the_model() {
    let h = harness(vec![
        tools(&[
            ("c1", "read_file", json!({"path": "a.txt"})),
            ("c2", "read_file", json!({"path": "missing"})),
        ]),
        answer("Done."),
    ]);
    let (out, events) = h.turn("read a and missing").await;
    assert_eq!(out.finish, Finish::Complete);
    assert_eq!(out.iterations, 2);
    assert_eq!(h.tools.calls.lock().unwrap().len(), 2);
    assert_eq!(h.roles(), ["user", "assistant", "tool", "assistant"]);
    let second = &h.provider.requests()[1];
    let results = &second.messages.last().unwrap().content;
    assert!(
        matches!(&results[0], ContentPart::ToolResult { call_id, is_error: false, content } if call_id == "c1" && content == "contents of a.txt")
    );
    assert!(
        matches!(&results[1], ContentPart::ToolResult { is_error: true, content, .. } if content.starts_with("error [tool.failed]")),
        "a tool error is data for the model"
    );
    let started = events
        .iter()
        .filter(|e| matches!(e, AgentEvent::ToolStarted { .. }))
        .count();
    let failed = events
        .iter()
        .filter(|e| matches!(e, AgentEvent::ToolFinished { ok: false, .. }))
        .count();
    assert_eq!((started, failed), (2, 1));
    let spans = h.mem.spans.lock().unwrap();
    assert_eq!(spans.iter().filter(|s| s.kind == SpanKind::Tool).count(), 2);
}

#[tokio::test]
async fn max_iterations_bounds_a_model_that_never_stops_calling_tools() {
    let looping: Vec<Reply> = (0..10)
        .map(|i| tools(&[(&format!("c{i}"), "read_file", json!({"path": "x"}))]))
        .collect();
    let h = harness(looping);
    let (out, _) = h.turn("loop").await;
    assert!(matches!(&out.finish, Finish::Failed { code, .. } if code == "agent.max_iterations"));
    assert_eq!(h.provider.requests().len(), 5);
    assert_eq!(h.mem.traces.lock().unwrap()[0].status, "error");
}

#[tokio::test]
async fn cancellation_mid_stream_persists_the_partial_answer_marked() {
    let h = harness(vec![Reply::Hang(vec![StreamEvent::TextDelta(
        "Partial ans".into(),
    )])]);
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    #[expect(
        clippy::disallowed_methods,
        reason = "a test's own concurrent load, awaited by the test"
    )]
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        c2.cancel();
    });
    let (out, _) = h.turn_with("go", &cancel).await;
    assert_eq!(out.finish, Finish::Cancelled);
    assert_eq!(out.text, "Partial ans");
    let msgs = h.mem.messages.lock().unwrap();
    let last = msgs.last().unwrap();
    assert_eq!(last.role, "assistant");
    assert_eq!(last.meta["partial"], true);
    assert_eq!(last.meta["reason"], "cancelled");
}

#[tokio::test]
async fn a_provider_error_mid_stream_ends_the_run_with_its_code() {
    let h = harness(vec![Reply::Events(vec![
        Ok(StreamEvent::TextDelta("Half".into())),
        Err(ProviderError::Stream("overloaded".into())),
    ])]);
    let (out, _) = h.turn("go").await;
    assert!(matches!(&out.finish, Finish::Failed { code, .. } if code == "provider.stream_error"));
    let last = h.mem.messages.lock().unwrap().last().unwrap().clone();
    assert_eq!(last.meta["error_code"], "provider.stream_error");
    let h = harness(vec![Reply::Refuse(ProviderError::Budget(
        "daily budget spent".into(),
    ))]);
    let (out, _) = h.turn("go").await;
    assert!(
        matches!(&out.finish, Finish::Failed { code, message } if code == "budget.exceeded" && message.contains("daily budget"))
    );
}

#[tokio::test]
async fn long_history_is_summarised_then_reused() {
    let mut h = harness(vec![
        answer("a1"),
        answer("a2"),
        answer("SUMMARY: user asked twice"),
        answer("a3"),
        answer("a4"),
    ]);
    h.turn("first question").await;
    h.turn("second question").await;
    h.spec.max_history_tokens = 10; // now over budget
    h.spec.keep_recent_messages = 1;
    let (out, events) = h.turn("third question").await;
    assert_eq!(out.finish, Finish::Complete);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, AgentEvent::Notice { code, .. } if code == "agent.compacted"))
    );
    let reqs = h.provider.requests();
    assert!(
        reqs[2].system.as_deref().unwrap().contains("compress"),
        "the summariser ran first"
    );
    let answer_req = &reqs[3];
    assert!(
        answer_req
            .system
            .as_deref()
            .unwrap()
            .contains("SUMMARY: user asked twice")
    );
    assert_eq!(
        answer_req.messages.len(),
        1,
        "only the kept tail: {:?}",
        answer_req.messages
    );
    assert!(h.roles().contains(&"summary".to_owned()));
    // Nothing was deleted: all earlier messages are still stored.
    assert_eq!(h.roles().iter().filter(|r| *r == "user").count(), 3);

    // The next turn starts from the summary (no new compaction needed).
    h.spec.max_history_tokens = 100_000;
    h.turn("fourth").await;
    let last = h.provider.requests().last().unwrap().clone();
    assert!(last.system.unwrap().contains("SUMMARY"));
    assert_eq!(
        last.messages.len(),
        3,
        "third question, its answer, the fourth"
    );
}

#[tokio::test]
async fn a_failed_compaction_is_reported_and_not_retried_in_a_loop() {
    let mut h = harness(vec![
        answer("a1"),
        Reply::Refuse(ProviderError::Unavailable("503".into())),
    ]);
    h.turn("first").await;
    h.spec.max_history_tokens = 1;
    h.spec.keep_recent_messages = 1;
    let (out, events) = h.turn("second").await;
    assert!(
        matches!(&out.finish, Finish::Failed { code, .. } if code == "agent.compaction_failed")
    );
    assert!(events.iter().any(
        |e| matches!(e, AgentEvent::Notice { code, .. } if code == "agent.compaction_failed")
    ));
    assert_eq!(
        h.provider.requests().len(),
        2,
        "one compaction attempt, no answer call"
    );
    assert_eq!(
        h.roles(),
        ["user", "assistant", "user"],
        "nothing deleted or reset"
    );
}

/// A conversation with tool calls, a cancelled turn and a compaction: the
/// model gets the same requests whether the windows are cached or read from
/// the store every turn, and a message another writer stored between turns
/// reaches the cached window.
#[tokio::test]
async fn cached_windows_give_the_model_what_the_store_would() {
    let script = || {
        vec![
            answer("a1"),
            tools(&[("c1", "read_file", json!({"path": "x"}))]),
            answer("read it"),
            Reply::Hang(vec![StreamEvent::TextDelta("half an ans".into())]),
            answer("a3"),
            answer("SUMMARY: files were read"),
            answer("a4"),
            answer("a5"),
        ]
    };
    let mut runs = Vec::new();
    for cached in [false, true] {
        let mut h = harness(script());
        if !cached {
            h.windows = Arc::new(Windows::disabled());
        }
        h.turn("first").await;
        h.turn("read x").await;
        let cancel = CancellationToken::new();
        let stop = async {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            cancel.cancel();
        };
        tokio::join!(h.turn_with("interrupted", &cancel), stop);
        // Another writer (an announcement, another gateway) adds a message.
        h.mem
            .append_message(
                &h.spec.tenant,
                &h.spec.session,
                &NewMessage {
                    role: "user".into(),
                    content: json!([{"type": "text", "text": "from elsewhere"}]),
                    meta: json!({}),
                },
            )
            .await
            .unwrap();
        h.turn("third").await;
        h.spec.max_history_tokens = 10;
        h.spec.keep_recent_messages = 2;
        h.turn("compact now").await;
        h.spec.max_history_tokens = 100_000;
        h.turn("after").await;
        assert_eq!(h.windows.usage().0, usize::from(cached));
        runs.push(h.provider.requests());
    }
    assert_eq!(runs[0].len(), 8);
    assert_eq!(runs[0], runs[1], "cached and uncached windows differ");
    let third = &runs[1][4];
    let texts: Vec<String> = third.messages.iter().map(ChatMessage::text).collect();
    assert!(texts.iter().any(|t| t == "from elsewhere"), "{texts:?}");
    assert!(texts.iter().any(|t| t.contains("half an ans")), "{texts:?}");
}

/// The store is read only when the window this gateway holds may be
/// behind: never for a new session or a held window nobody else wrote to;
/// once (from the window's end) after another writer added a message; and
/// the whole window when that writer stored a summary.
#[tokio::test]
async fn windows_are_read_only_when_someone_else_wrote() {
    let h = harness(vec![
        answer("a1"),
        answer("a2"),
        answer("a3"),
        answer("a4"),
        answer("a5"),
    ]);
    let reads = || h.mem.reads.load(std::sync::atomic::Ordering::Relaxed);
    let elsewhere = |role: &str, text: &str, meta: serde_json::Value| NewMessage {
        role: role.into(),
        content: json!([{"type": "text", "text": text}]),
        meta,
    };
    h.turn("first").await;
    h.turn("second").await;
    assert_eq!(reads(), 0, "a new session and a held window need no read");

    h.mem
        .append_message(
            &h.spec.tenant,
            &h.spec.session,
            &elsewhere("user", "from elsewhere", json!({})),
        )
        .await
        .unwrap();
    h.turn("third").await;
    assert_eq!(reads(), 1, "one read of what was written since");
    let texts: Vec<String> = h.provider.requests()[2]
        .messages
        .iter()
        .map(ChatMessage::text)
        .collect();
    assert_eq!(
        texts,
        ["first", "a1", "second", "a2", "from elsewhere", "third"]
    );

    // Another writer compacts the session: everything up to seq 4 is
    // summarised, and the window is read again from the summary.
    h.mem
        .append_message(
            &h.spec.tenant,
            &h.spec.session,
            &elsewhere(
                "summary",
                "SUMMARY: two greetings",
                json!({"compacted_through": 4}),
            ),
        )
        .await
        .unwrap();
    h.turn("fourth").await;
    assert_eq!(reads(), 3, "the difference, then the whole window");
    let request = &h.provider.requests()[3];
    let texts: Vec<String> = request.messages.iter().map(ChatMessage::text).collect();
    assert_eq!(
        texts,
        ["from elsewhere", "third", "a3", "fourth"],
        "{request:?}"
    );
    h.turn("fifth").await;
    assert_eq!(reads(), 3, "held again after the re-read");

    // A gateway that does not hold the window (restarted, evicted) reads it
    // once, whole.
    drop(h.windows.take(&h.spec.session));
    h.turn("sixth").await;
    assert_eq!(reads(), 4);
    assert_eq!(h.windows.usage().0, 1);
}

/// Trace fixtures: `fixtures/*.json`, each a script of model replies and
/// declarative expectations (tools used, reply contains, finish, calls,
/// persisted roles, tool results).
#[tokio::test]
async fn trace_fixtures() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/agent/fixtures");
    let mut ran = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
    {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let f: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let script: Vec<Reply> = f["script"]
            .as_array()
            .unwrap()
            .iter()
            .map(|step| {
                if let Some(t) = step["text"].as_str() {
                    answer(t)
                } else if let Some(calls) = step["tool_calls"].as_array() {
                    let calls: Vec<(String, String, serde_json::Value)> = calls
                        .iter()
                        .map(|c| {
                            (
                                c["id"].as_str().unwrap().to_owned(),
                                c["name"].as_str().unwrap().to_owned(),
                                c["args"].clone(),
                            )
                        })
                        .collect();
                    let refs: Vec<(&str, &str, serde_json::Value)> = calls
                        .iter()
                        .map(|(i, n, a)| (i.as_str(), n.as_str(), a.clone()))
                        .collect();
                    tools(&refs)
                } else {
                    Reply::Refuse(ProviderError::Unavailable(
                        step["error"].as_str().unwrap().to_owned(),
                    ))
                }
            })
            .collect();
        let mut h = harness(script);
        if let Some(n) = f["max_iterations"].as_u64() {
            h.spec.max_iterations = n as u32;
        }
        let (out, _) = h.turn(f["input"].as_str().unwrap()).await;
        let e = &f["expect"];
        let finish = match &out.finish {
            Finish::Complete => "complete".to_owned(),
            Finish::Cancelled => "cancelled".to_owned(),
            Finish::Failed { code, .. } => code.clone(),
        };
        assert_eq!(finish, e["finish"].as_str().unwrap(), "{name}: finish");
        let used: Vec<String> = h
            .tools
            .calls
            .lock()
            .unwrap()
            .iter()
            .map(|(n, _)| n.clone())
            .collect();
        let want: Vec<String> = e["tools_used"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(used, want, "{name}: tools used");
        if let Some(s) = e["reply_contains"].as_str() {
            assert!(
                out.text.contains(s),
                "{name}: reply {:?} lacks {s:?}",
                out.text
            );
        }
        assert_eq!(
            h.provider.requests().len() as u64,
            e["llm_calls"].as_u64().unwrap(),
            "{name}: llm calls"
        );
        if let Some(roles) = e["persisted_roles"].as_array() {
            let want: Vec<&str> = roles.iter().map(|r| r.as_str().unwrap()).collect();
            assert_eq!(h.roles(), want, "{name}: persisted roles");
        }
        if let Some(needles) = e["tool_results_contain"].as_array() {
            let stored = h
                .mem
                .messages
                .lock()
                .unwrap()
                .iter()
                .filter(|m| m.role == "tool")
                .map(|m| m.content.to_string())
                .collect::<String>();
            for n in needles {
                assert!(
                    stored.contains(n.as_str().unwrap()),
                    "{name}: tool results lack {n}"
                );
            }
        }
        ran += 1;
    }
    assert!(ran >= 5, "fixtures found: {ran}");
}
