//! [`Estimate`]: usage for providers that report none, and the token
//! estimate budgets reserve with.
//!
//! Many OpenAI-compatible local servers (llama-cpp-python, some vLLM and
//! LM Studio versions) send no usage chunk in a stream, and some answers
//! carry no `usage` at all. A call without usage would count as zero tokens
//! and $0, so no budget could ever bind. When a stream ends (`Done`) without
//! a non-zero usage report, this decorator emits an estimated
//! [`Usage`] (with `estimated: true`) just before `Done`.
//!
//! The estimate (no tokenizer ships with the gateway; a wrong one would be
//! as misleading as a heuristic, and the families differ):
//! - a text counts `ceil(ascii / 4) + non_ascii` tokens, and never fewer
//!   than its whitespace-separated words: English BPE vocabularies (GPT,
//!   Llama, SmolLM, Mistral, Qwen) average about four ASCII characters per
//!   token, while CJK and other non-ASCII scripts are about one token per
//!   character or more, so non-ASCII counts one each (an over-estimate for
//!   accented Latin, which is the safe side for a budget);
//! - each message adds 4 tokens of chat template, the reply 3 more;
//! - tool definitions count as their JSON text, tool calls as the name plus
//!   the arguments' JSON.

use exoclaw_core::provider::{
    ChatRequest, ChatStream, ContentPart, Provider, ProviderError, ProviderInfo, StreamEvent, Usage,
};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// Tokens of chat template around each message.
const PER_MESSAGE: u64 = 4;
/// Tokens priming the reply.
const PER_REPLY: u64 = 3;

/// The estimated token count of a text (see the module doc).
pub fn text_tokens(text: &str) -> u64 {
    if text.is_ascii() {
        // The common case, a byte at a time (the general one below decodes
        // every character): a long session's window is counted every turn.
        let bytes = text.as_bytes();
        let mut words = 0u64;
        let mut in_word = false;
        for &b in bytes {
            // `char::is_whitespace` on ASCII: also the vertical tab.
            let space = matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r');
            words += u64::from(!space && !in_word);
            in_word = !space;
        }
        return (bytes.len() as u64).div_ceil(4).max(words);
    }
    let mut ascii = 0u64;
    let mut other = 0u64;
    for c in text.chars() {
        if c.is_ascii() {
            ascii += 1;
        } else {
            other += 1;
        }
    }
    let words = text.split_whitespace().count() as u64;
    (ascii.div_ceil(4) + other).max(words)
}

/// The estimated input tokens of a request: system prompt, messages with
/// their template overhead, and tool definitions.
pub fn input_tokens(request: &ChatRequest) -> u64 {
    let mut total = PER_REPLY;
    if let Some(system) = &request.system {
        total += PER_MESSAGE + text_tokens(system);
    }
    // The sum over the messages counted at the history's last call is kept
    // with it (and each message's count with the message): a long
    // session's window is estimated on every call, twice (budget, usage).
    let messages = request.messages.as_slice();
    let (from, mut sum) = request.prefix.tokens(messages).unwrap_or((0, 0));
    for message in &messages[from..] {
        sum += message.derived.tokens(|| {
            PER_MESSAGE
                + message
                    .content
                    .iter()
                    .map(|part| match part {
                        ContentPart::Text { text } => text_tokens(text),
                        ContentPart::ToolCall(c) => {
                            text_tokens(&c.name) + text_tokens(&c.arguments.to_string())
                        }
                        ContentPart::ToolResult { content, .. } => text_tokens(content),
                    })
                    .sum::<u64>()
        });
    }
    if from < messages.len() {
        request.prefix.keep_tokens(messages, sum);
    }
    total += sum;
    static TOOLS: exoclaw_core::memo::ListMemo<exoclaw_core::provider::ToolSpec, u64> =
        exoclaw_core::memo::ListMemo::new();
    total += TOOLS.get(&request.tools, |tools| {
        tools
            .iter()
            .map(|t| {
                text_tokens(&t.name)
                    + text_tokens(&t.description)
                    + text_tokens(&t.parameters.to_string())
            })
            .sum()
    });
    total
}

/// Adds an estimated usage to streams that end without one.
pub struct Estimate {
    inner: Arc<dyn Provider>,
}

impl Estimate {
    pub fn new(inner: Arc<dyn Provider>) -> Self {
        Self { inner }
    }
}

#[async_trait::async_trait]
impl Provider for Estimate {
    fn info(&self) -> ProviderInfo {
        self.inner.info()
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream, ProviderError> {
        let input = input_tokens(&request);
        let stream = self.inner.stream(request).await?;
        Ok(Box::pin(Estimating {
            inner: stream,
            input,
            output: 0,
            reported: false,
            pending_done: None,
        }))
    }
}

/// The stream of [`Estimate`]: counts what it passes, and puts an estimated
/// usage in front of a `Done` that no usage report came before.
struct Estimating {
    inner: ChatStream,
    input: u64,
    output: u64,
    /// A non-zero usage report was seen.
    reported: bool,
    /// The `Done` held back behind the estimated usage.
    pending_done: Option<StreamEvent>,
}

impl futures_util::Stream for Estimating {
    type Item = Result<StreamEvent, ProviderError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(done) = self.pending_done.take() {
            return Poll::Ready(Some(Ok(done)));
        }
        let polled = self.inner.as_mut().poll_next(cx);
        match polled {
            Poll::Ready(Some(Ok(event))) => {
                match &event {
                    StreamEvent::TextDelta(t) => self.output += text_tokens(t),
                    StreamEvent::ToolCall(c) => {
                        self.output += text_tokens(&c.name) + text_tokens(&c.arguments.to_string());
                    }
                    StreamEvent::Usage(u) => {
                        if u.input_tokens > 0 || u.output_tokens > 0 {
                            self.reported = true;
                        }
                    }
                    StreamEvent::Done(_) if !self.reported => {
                        self.reported = true;
                        let usage = Usage {
                            input_tokens: self.input,
                            output_tokens: self.output.max(1),
                            cache_read_tokens: 0,
                            cache_write_tokens: 0,
                            estimated: true,
                        };
                        self.pending_done = Some(event);
                        return Poll::Ready(Some(Ok(StreamEvent::Usage(usage))));
                    }
                    StreamEvent::Done(_) => {}
                }
                Poll::Ready(Some(Ok(event)))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exoclaw_core::provider::ChatMessage;

    /// The sum kept with the history counts only new messages and agrees
    /// with a count from scratch.
    #[test]
    fn message_sums_are_kept_with_the_history() {
        let mut req = ChatRequest::new(
            "m",
            vec![
                ChatMessage::user("one two"),
                ChatMessage::assistant("three"),
            ],
        );
        let first = input_tokens(&req);
        assert_eq!(req.prefix.tokens(&req.messages).map(|(n, _)| n), Some(2));
        Arc::make_mut(&mut req.messages).push(ChatMessage::user("a longer message here"));
        let second = input_tokens(&req);
        assert_eq!(
            second,
            first + PER_MESSAGE + text_tokens("a longer message here")
        );
        let mut fresh = req.clone();
        fresh.prefix = exoclaw_core::derived::Prefix::default();
        assert_eq!(input_tokens(&fresh), second);
        assert_eq!(input_tokens(&req), second);
    }

    #[test]
    fn text_estimates() {
        assert_eq!(text_tokens(""), 0);
        assert_eq!(text_tokens("abcd"), 1);
        assert_eq!(text_tokens("abcde"), 2);
        // Short words: at least one token each.
        assert_eq!(text_tokens("a b c d e f"), 6);
        // Non-ASCII: one each.
        assert_eq!(text_tokens("日本語"), 3);
    }

    /// The ASCII fast path counts what the general rule counts.
    #[test]
    fn the_ascii_path_agrees_with_the_general_rule() {
        fn general(text: &str) -> u64 {
            let ascii = text.chars().filter(char::is_ascii).count() as u64;
            let other = text.chars().count() as u64 - ascii;
            let words = text.split_whitespace().count() as u64;
            (ascii.div_ceil(4) + other).max(words)
        }
        for text in [
            "",
            " ",
            "a",
            "  lead and trail  ",
            "tabs\tand\nnew\r\nlines",
            "vertical\x0btab\x0cfeed",
            "a b c d e f g h i j k l m n o p",
            "{\"type\":\"object\",\"properties\":{}}",
            "x\x00y\x1fz",
        ] {
            assert_eq!(text_tokens(text), general(text), "{text:?}");
        }
    }
}
