//! The Anthropic Messages API over loopback: streaming text and parallel
//! tool calls, usage with cache tokens, pings, error events, HTTP errors.

use crate::support::{anthropic, collect, request, text_of};
use exoclaw_core::provider::{ProviderError, StopReason, StreamEvent, ToolCall, Usage};
use exoclaw_providers::fake::{FakeProvider, Reply};
use serde_json::json;
use std::time::Duration;

fn call(id: &str, name: &str, args: serde_json::Value) -> ToolCall {
    ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: args,
    }
}

#[tokio::test]
async fn streams_text_then_parallel_tool_calls_with_usage() {
    let fake = FakeProvider::start().await.unwrap();
    let usage = Usage {
        input_tokens: 12,
        output_tokens: 34,
        cache_read_tokens: 1000,
        cache_write_tokens: 200,
        estimated: false,
    };
    fake.push(
        Reply::tool_calls([
            call("toolu_a", "weather", json!({"city": "Paris", "days": 3})),
            call("toolu_b", "time", json!({"tz": "Europe/Paris"})),
        ])
        .with_text("Let me check both.")
        .deltas(4)
        .usage(usage),
    );
    let events = collect(anthropic(&fake).stream(request("weather?")).await.unwrap()).await;
    assert_eq!(text_of(&events), "Let me check both.");
    let deltas = events
        .iter()
        .filter(|e| matches!(e, Ok(StreamEvent::TextDelta(_))))
        .count();
    assert_eq!(deltas, 4);
    let calls: Vec<&ToolCall> = events
        .iter()
        .filter_map(|e| match e {
            Ok(StreamEvent::ToolCall(c)) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(
        calls,
        [
            &call("toolu_a", "weather", json!({"city": "Paris", "days": 3})),
            &call("toolu_b", "time", json!({"tz": "Europe/Paris"}))
        ]
    );
    assert_eq!(
        events.last(),
        Some(&Ok(StreamEvent::Done(StopReason::ToolUse)))
    );

    // the collected form merges the usage reports
    fake.push(Reply::text("hi").usage(usage));
    let response = anthropic(&fake).complete(request("again")).await.unwrap();
    assert_eq!(response.usage, usage);
    assert_eq!(response.text, "hi");
    assert_eq!(response.stop, StopReason::EndTurn);
}

#[tokio::test]
async fn pings_are_ignored_and_stop_reasons_map() {
    let fake = FakeProvider::start().await.unwrap();
    fake.push(Reply::text("pong").pings().stop(StopReason::MaxTokens));
    let response = anthropic(&fake).complete(request("ping")).await.unwrap();
    assert_eq!(response.text, "pong");
    assert_eq!(response.stop, StopReason::MaxTokens);
}

#[tokio::test]
async fn error_event_mid_stream() {
    let fake = FakeProvider::start().await.unwrap();
    // message_start, content_block_start, one delta, then the error
    fake.push(Reply::text("partial answer").deltas(2).error_after(
        3,
        "overloaded_error",
        "Overloaded",
    ));
    let events = collect(anthropic(&fake).stream(request("x")).await.unwrap()).await;
    assert_eq!(text_of(&events), "partial");
    assert!(
        matches!(events.last(), Some(Err(ProviderError::Unavailable(m))) if m.contains("Overloaded")),
        "{events:?}"
    );

    fake.push(Reply::text("x").error_after(1, "api_error", "Internal server error"));
    let err = anthropic(&fake).complete(request("x")).await.unwrap_err();
    assert_eq!(
        err,
        ProviderError::Stream("api_error: Internal server error".into())
    );
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn http_errors_map_to_what_the_caller_can_do() {
    let fake = FakeProvider::start().await.unwrap();
    fake.push_all([
        Reply::status(429).retry_after(7),
        Reply::status(529),
        Reply::status(500),
        Reply::status(401),
        Reply::status(400),
    ]);
    let p = anthropic(&fake);
    let err = |e: Result<_, ProviderError>| e.err().unwrap();
    assert_eq!(
        err(p.stream(request("x")).await),
        ProviderError::RateLimited {
            retry_after: Some(Duration::from_secs(7))
        }
    );
    assert_eq!(
        err(p.stream(request("x")).await),
        ProviderError::Unavailable("529: Overloaded".into())
    );
    assert!(
        matches!(err(p.stream(request("x")).await), ProviderError::Unavailable(m) if m.starts_with("500"))
    );
    assert_eq!(
        err(p.stream(request("x")).await),
        ProviderError::Auth("401: invalid x-api-key".into())
    );
    assert_eq!(
        err(p.stream(request("x")).await),
        ProviderError::Rejected {
            status: 400,
            message: "the request is invalid".into()
        }
    );
}

#[tokio::test]
async fn unparsable_tool_arguments_arrive_as_a_string() {
    let fake = FakeProvider::start().await.unwrap();
    fake.push(Reply::tool_calls([call("t", "f", json!("{\"a\": [1, 2"))]));
    let response = anthropic(&fake).complete(request("x")).await.unwrap();
    assert_eq!(
        response.tool_calls,
        [call("t", "f", json!("{\"a\": [1, 2"))]
    );
}

#[tokio::test]
async fn cut_stream_is_unavailable() {
    let fake = FakeProvider::start().await.unwrap();
    fake.push(Reply::text("abc").cut_after(3));
    let err = anthropic(&fake).complete(request("x")).await.unwrap_err();
    assert!(
        matches!(&err, ProviderError::Unavailable(m) if m.contains("message_stop")),
        "{err}"
    );
}
