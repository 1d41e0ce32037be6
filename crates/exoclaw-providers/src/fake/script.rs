//! The script of the fake provider: [`Reply`], one queued answer (a
//! message, or an HTTP error) with optional faults and pacing.

use exoclaw_core::provider::{StopReason, ToolCall, Usage};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ReplyBody {
    Message {
        text: String,
        tool_calls: Vec<ToolCall>,
    },
    /// Answer with the last user message's text.
    Echo,
    Status {
        status: u16,
        retry_after: Option<String>,
        /// Overrides the vendor-shaped error body.
        body: Option<String>,
    },
}

/// What a fault does after a number of SSE events have been sent.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Fault {
    /// An `error` event (Anthropic) or an `{"error": ...}` chunk (OpenAI),
    /// then the end of the body.
    Error { kind: String, message: String },
    /// A `data:` line that is not JSON; the rest of the stream follows.
    Malformed,
    /// The body simply ends (connection closed mid-answer).
    Cut,
}

/// One scripted answer. Build with [`Reply::text`], [`Reply::tool_calls`],
/// [`Reply::echo`] or [`Reply::status`], then adjust.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub(crate) body: ReplyBody,
    pub(crate) deltas: usize,
    pub(crate) usage: Option<Usage>,
    pub(crate) stop: Option<StopReason>,
    pub(crate) chunk_sizes: Vec<usize>,
    pub(crate) pings: bool,
    pub(crate) crlf: bool,
    pub(crate) stall: Option<(usize, Duration)>,
    pub(crate) fault: Option<(usize, Fault)>,
    pub(crate) delay: Option<Duration>,
}

impl Reply {
    fn with_body(body: ReplyBody) -> Self {
        Self {
            body,
            deltas: 3,
            usage: None,
            stop: None,
            chunk_sizes: Vec::new(),
            pings: false,
            crlf: false,
            stall: None,
            fault: None,
            delay: None,
        }
    }

    /// A text answer, streamed in 3 deltas unless [`Reply::deltas`] says
    /// otherwise.
    pub fn text(text: impl Into<String>) -> Self {
        Self::with_body(ReplyBody::Message {
            text: text.into(),
            tool_calls: Vec::new(),
        })
    }

    /// Tool calls (several = parallel calls), each streamed as fragments of
    /// its JSON arguments; combine with [`Reply::with_text`] for a preamble.
    pub fn tool_calls(calls: impl IntoIterator<Item = ToolCall>) -> Self {
        Self::with_body(ReplyBody::Message {
            text: String::new(),
            tool_calls: calls.into_iter().collect(),
        })
    }

    /// Echo the last user message (the default when the queue is empty).
    pub fn echo() -> Self {
        Self::with_body(ReplyBody::Echo)
    }

    /// An HTTP error with the vendor's error body shape.
    pub fn status(status: u16) -> Self {
        Self::with_body(ReplyBody::Status {
            status,
            retry_after: None,
            body: None,
        })
    }

    /// Text before the tool calls (or replacing the text).
    pub fn with_text(mut self, new: impl Into<String>) -> Self {
        if let ReplyBody::Message { text, .. } = &mut self.body {
            *text = new.into();
        }
        self
    }

    /// Split the text into `n` deltas (at least 1).
    pub fn deltas(mut self, n: usize) -> Self {
        self.deltas = n.max(1);
        self
    }

    /// Usage to report; by default it is estimated from the sizes.
    pub fn usage(mut self, usage: Usage) -> Self {
        self.usage = Some(usage);
        self
    }

    /// The stop reason to report (default: tool use when there are tool
    /// calls, else end of turn).
    pub fn stop(mut self, stop: StopReason) -> Self {
        self.stop = Some(stop);
        self
    }

    /// Write the body in chunks of these byte sizes, cycling (e.g.
    /// `&[1, 2, 3, 4, 5, 6, 7]`), to split events, lines and characters.
    pub fn chunked(mut self, sizes: &[usize]) -> Self {
        self.chunk_sizes = sizes.iter().map(|s| (*s).max(1)).collect();
        self
    }

    /// Interleave keep-alives: `ping` events (Anthropic), `: keep-alive`
    /// comments (OpenAI).
    pub fn pings(mut self) -> Self {
        self.pings = true;
        self
    }

    /// End lines with CRLF instead of LF.
    pub fn crlf(mut self) -> Self {
        self.crlf = true;
        self
    }

    /// After `events` SSE events, go silent for `pause`, then continue.
    pub fn stall_after(mut self, events: usize, pause: Duration) -> Self {
        self.stall = Some((events, pause));
        self
    }

    /// After `events` SSE events, send an error event and end the body.
    /// Anthropic kinds: `overloaded_error`, `api_error`, ...
    pub fn error_after(mut self, events: usize, kind: &str, message: &str) -> Self {
        self.fault = Some((
            events,
            Fault::Error {
                kind: kind.to_owned(),
                message: message.to_owned(),
            },
        ));
        self
    }

    /// After `events` SSE events, send a `data:` line of broken JSON.
    pub fn malformed_after(mut self, events: usize) -> Self {
        self.fault = Some((events, Fault::Malformed));
        self
    }

    /// After `events` SSE events, end the body without the final events.
    pub fn cut_after(mut self, events: usize) -> Self {
        self.fault = Some((events, Fault::Cut));
        self
    }

    /// Wait this long before sending the response headers.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// For [`Reply::status`]: the `retry-after` header, in seconds.
    pub fn retry_after(mut self, secs: u64) -> Self {
        if let ReplyBody::Status { retry_after, .. } = &mut self.body {
            *retry_after = Some(secs.to_string());
        }
        self
    }

    /// For [`Reply::status`]: a body instead of the vendor-shaped one.
    pub fn error_body(mut self, text: impl Into<String>) -> Self {
        if let ReplyBody::Status { body, .. } = &mut self.body {
            *body = Some(text.into());
        }
        self
    }
}
