//! The LLM provider port: one narrow, streaming-first trait. A provider turns
//! a [`ChatRequest`] into a stream of [`StreamEvent`]s; [`Provider::complete`]
//! collects that stream. Retry, fallback, rate limits, timeouts and budgets
//! are decorators around `Arc<dyn Provider>`, never inside a provider.
//!
//! Providers assemble tool calls from their wire deltas themselves, so the
//! agent loop sees only text deltas and whole tool calls.

use crate::{AgentId, TenantId, UserId};
use async_trait::async_trait;
use futures_core::Stream;
use serde::{Deserialize, Serialize};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Who speaks a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatRole {
    User,
    Assistant,
    /// Results of tool calls, answering the previous assistant message.
    Tool,
}

/// A tool call requested by the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id for the call (echoed in the result).
    pub id: String,
    pub name: String,
    /// The arguments as JSON. A provider that receives unparsable arguments
    /// passes them as a JSON string, so the tool layer can report
    /// `tool.invalid_args` to the model instead of the run failing.
    pub arguments: serde_json::Value,
}

/// One part of a message's content.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    Text {
        text: String,
    },
    ToolCall(ToolCall),
    ToolResult {
        call_id: String,
        /// The tool's output as text (JSON outputs are serialized).
        content: String,
        is_error: bool,
    },
}

/// One message of a conversation. Never changed once made (see
/// [`crate::derived`]): make a new one instead.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: ChatRole,
    pub content: Vec<ContentPart>,
    /// What providers computed from it, kept.
    #[serde(skip)]
    pub derived: crate::derived::Derived,
}

impl crate::derived::Holder for ChatMessage {
    fn derived(&self) -> &crate::derived::Derived {
        &self.derived
    }
}

impl ChatMessage {
    pub fn new(role: ChatRole, content: Vec<ContentPart>) -> Self {
        Self {
            role,
            content,
            derived: crate::derived::Derived::default(),
        }
    }

    pub fn user(text: impl Into<String>) -> Self {
        Self::new(
            ChatRole::User,
            vec![ContentPart::Text { text: text.into() }],
        )
    }

    pub fn assistant(text: impl Into<String>) -> Self {
        Self::new(
            ChatRole::Assistant,
            vec![ContentPart::Text { text: text.into() }],
        )
    }

    /// The concatenated text parts.
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|p| match p {
                ContentPart::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// A tool as offered to the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: serde_json::Value,
}

/// The characters of `tools`' definitions (names, descriptions and the
/// schemas' JSON), counted once per shared list ([`crate::memo`]).
pub fn tools_chars(tools: &Arc<[ToolSpec]>) -> usize {
    static MEMO: crate::memo::ListMemo<ToolSpec, usize> = crate::memo::ListMemo::new();
    MEMO.get(tools, |tools| {
        tools
            .iter()
            .map(|t| t.name.len() + t.description.len() + t.parameters.to_string().len())
            .sum()
    })
}

/// Who a call is made for: budgets, rate limits and traces key on this.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CallScope {
    pub tenant: Option<TenantId>,
    pub agent: Option<AgentId>,
    pub user: Option<UserId>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The model name as the provider knows it (after alias resolution).
    pub model: String,
    /// The system prompt (stable across a session: a cache breakpoint).
    pub system: Option<String>,
    /// Shared with the turn's history: a request costs a pointer, not a
    /// copy of the conversation (the history copies on write only while a
    /// request still holds it).
    pub messages: Arc<Vec<ChatMessage>>,
    /// Shared: every iteration of a turn and every decorator's copy of the
    /// request (retry, budget, fallback) points at the same definitions.
    pub tools: Arc<[ToolSpec]>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
    /// Number of leading `messages` that are stable history: providers with
    /// explicit caching (Anthropic) put a cache breakpoint after them, as well
    /// as after the system prompt and the tool definitions.
    pub cache_prefix_len: usize,
    pub scope: CallScope,
    /// What providers keep about the leading `messages` between calls:
    /// shared with the history the request was made from, so its next
    /// turn's request finds it ([`crate::derived::Prefix`]).
    #[serde(skip)]
    pub prefix: crate::derived::Prefix,
}

impl ChatRequest {
    pub fn new(model: impl Into<String>, messages: Vec<ChatMessage>) -> Self {
        Self {
            model: model.into(),
            system: None,
            messages: Arc::new(messages),
            tools: Arc::from([]),
            max_tokens: None,
            temperature: None,
            cache_prefix_len: 0,
            scope: CallScope::default(),
            prefix: crate::derived::Prefix::default(),
        }
    }
}

/// Token counts of one call. Cache counts are zero where a provider does not
/// report them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    /// The provider reported no usage: the counts are the gateway's own
    /// estimate (`exoclaw_providers::estimate`), still counted by budgets.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub estimated: bool,
}

impl Usage {
    pub fn add(&mut self, other: Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_read_tokens += other.cache_read_tokens;
        self.cache_write_tokens += other.cache_write_tokens;
        self.estimated |= other.estimated;
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model finished its answer.
    EndTurn,
    /// The model wants tool results before it continues.
    ToolUse,
    /// `max_tokens` was reached.
    MaxTokens,
    /// Anything else the provider reported (content filter, ...).
    Other,
}

/// One item of a response stream.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamEvent {
    /// A piece of the answer's text.
    TextDelta(String),
    /// A complete tool call (assembled by the provider from its deltas).
    ToolCall(ToolCall),
    /// Token usage; may arrive more than once (the last one wins per field
    /// that is non-zero), typically at the end.
    Usage(Usage),
    /// The stream is complete.
    Done(StopReason),
}

pub type ChatStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, ProviderError>> + Send>>;

/// A collected response.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatResponse {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Usage,
    pub stop: StopReason,
}

/// Which egress control refused a provider call (the codes are the egress
/// client's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EgressRefusal {
    /// `security.ssrf_blocked`: the URL is malformed or tricky, or the host
    /// (by name, literal or resolved address) is not public.
    SsrfBlocked,
    /// `security.egress_denied`: the domain lists or the provider profile
    /// (the configured base URLs) refuse an otherwise public target.
    EgressDenied,
}

impl EgressRefusal {
    /// The stable machine code.
    pub fn code(self) -> &'static str {
        match self {
            Self::SsrfBlocked => "security.ssrf_blocked",
            Self::EgressDenied => "security.egress_denied",
        }
    }
}

/// Why a provider call failed, phrased for what the caller can do.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// 429: slow down; `retry_after` from the header when given.
    #[error("rate limited by the provider{}", retry_after.map(|d| format!(" (retry after {}s)", d.as_secs())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    /// 5xx, connection refused or reset, overloaded: retrying may help.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    /// 4xx other than 401/403/429: the request itself is wrong.
    #[error("provider rejected the request ({status}): {message}")]
    Rejected { status: u16, message: String },
    /// 401/403: the key is missing, wrong or lacks access.
    #[error("provider refused the credentials: {0}")]
    Auth(String),
    /// The egress policy refused the provider's URL, or the addresses its
    /// name resolved to, before any connection: the base URL or the egress
    /// configuration must change, so retrying cannot help. `rule` is the
    /// egress rule that fired (`addr.loopback`, `origin.not_allowed`, ...);
    /// `reason` names the host, never the whole URL.
    #[error("the egress policy refused the provider call: {reason} (rule {rule})")]
    EgressRefused {
        kind: EgressRefusal,
        rule: &'static str,
        reason: String,
    },
    /// No response (headers) within the request timeout.
    #[error("provider timed out after {}s", .0.as_secs())]
    Timeout(Duration),
    /// The stream went silent for longer than the stall timeout.
    #[error("provider stream stalled for {}s", .0.as_secs())]
    Stalled(Duration),
    /// The response could not be parsed (malformed JSON or SSE).
    #[error("malformed response from the provider: {0}")]
    Malformed(String),
    /// An error event inside an otherwise healthy stream.
    #[error("provider reported an error: {0}")]
    Stream(String),
    /// A budget would be exceeded by this call.
    #[error("budget exceeded: {0}")]
    Budget(String),
    /// Our own limiter refused (per-model RPM/TPM) and waiting is not allowed.
    #[error("local rate limit reached for {0}")]
    LocalRateLimit(String),
    /// No provider is configured for the model.
    #[error("no provider configured for model {0:?}")]
    NoProvider(String),
    #[error("the call was cancelled")]
    Cancelled,
}

impl ProviderError {
    /// Whether the same request may succeed if tried again (or elsewhere).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ProviderError::RateLimited { .. }
                | ProviderError::Unavailable(_)
                | ProviderError::Timeout(_)
                | ProviderError::Stalled(_)
        )
    }

    /// A stable machine code for APIs and traces.
    pub fn code(&self) -> &'static str {
        match self {
            ProviderError::RateLimited { .. } => "provider.rate_limited",
            ProviderError::Unavailable(_) => "provider.unavailable",
            ProviderError::Rejected { .. } => "provider.rejected",
            ProviderError::Auth(_) => "provider.auth",
            ProviderError::EgressRefused { kind, .. } => kind.code(),
            ProviderError::Timeout(_) => "provider.timeout",
            ProviderError::Stalled(_) => "provider.stalled",
            ProviderError::Malformed(_) => "provider.malformed",
            ProviderError::Stream(_) => "provider.stream_error",
            ProviderError::Budget(_) => "budget.exceeded",
            ProviderError::LocalRateLimit(_) => "provider.local_rate_limit",
            ProviderError::NoProvider(_) => "provider.not_configured",
            ProviderError::Cancelled => "cancelled",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderInfo {
    /// The configured name (`openai`, `anthropic`, `ollama`, ...).
    pub name: String,
    /// The wire format: `anthropic` or `openai`.
    pub wire: &'static str,
}

#[async_trait]
pub trait Provider: Send + Sync {
    fn info(&self) -> ProviderInfo;

    /// Start a call. Errors before the first byte come back here; errors
    /// during the stream come as `Err` items.
    async fn stream(&self, request: ChatRequest) -> Result<ChatStream, ProviderError>;

    /// The collected response.
    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse, ProviderError> {
        let mut stream = self.stream(request).await?;
        let mut response = ChatResponse {
            text: String::new(),
            tool_calls: Vec::new(),
            usage: Usage::default(),
            stop: StopReason::Other,
        };
        let mut done = false;
        while let Some(event) = next(&mut stream).await {
            match event? {
                StreamEvent::TextDelta(t) => response.text.push_str(&t),
                StreamEvent::ToolCall(c) => response.tool_calls.push(c),
                StreamEvent::Usage(u) => merge_usage(&mut response.usage, u),
                StreamEvent::Done(stop) => {
                    response.stop = stop;
                    done = true;
                }
            }
        }
        if !done {
            return Err(ProviderError::Malformed(
                "the stream ended without a final event".to_owned(),
            ));
        }
        Ok(response)
    }
}

/// Later usage reports replace earlier ones field by field (providers send
/// cumulative counts), except that zero never overwrites a count.
pub fn merge_usage(into: &mut Usage, update: Usage) {
    let pick = |old: u64, new: u64| if new > 0 { new } else { old };
    into.input_tokens = pick(into.input_tokens, update.input_tokens);
    into.output_tokens = pick(into.output_tokens, update.output_tokens);
    into.cache_read_tokens = pick(into.cache_read_tokens, update.cache_read_tokens);
    into.cache_write_tokens = pick(into.cache_write_tokens, update.cache_write_tokens);
    into.estimated |= update.estimated;
}

/// `StreamExt::next` without depending on futures-util.
pub async fn next<S: Stream + Unpin + ?Sized>(stream: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| Pin::new(&mut *stream).poll_next(cx)).await
}
