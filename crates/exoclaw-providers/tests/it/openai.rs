//! OpenAI-compatible chat completions over loopback: text, parallel tool
//! calls assembled by index, usage with cached tokens, `[DONE]`, errors.

use crate::support::{collect, openai, request, text_of};
use exoclaw_core::provider::{ProviderError, StopReason, StreamEvent, ToolCall, Usage};
use exoclaw_providers::fake::{FakeProvider, Reply};
use serde_json::json;

fn call(id: &str, name: &str, args: serde_json::Value) -> ToolCall {
    ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: args,
    }
}

#[tokio::test]
async fn parallel_tool_calls_are_assembled_by_index() {
    let fake = FakeProvider::start().await.unwrap();
    let calls = [
        call(
            "call_1",
            "weather",
            json!({"city": "Oslo", "unit": "celsius"}),
        ),
        call("call_2", "time", json!({"tz": "UTC"})),
        call("call_3", "noop", json!({})),
    ];
    fake.push(Reply::tool_calls(calls.clone()).with_text("Three calls."));
    let events = collect(openai(&fake).stream(request("x")).await.unwrap()).await;
    assert_eq!(text_of(&events), "Three calls.");
    let got: Vec<ToolCall> = events
        .iter()
        .filter_map(|e| match e {
            Ok(StreamEvent::ToolCall(c)) => Some(c.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(got, calls);
    assert_eq!(
        events.last(),
        Some(&Ok(StreamEvent::Done(StopReason::ToolUse)))
    );
}

#[tokio::test]
async fn usage_with_cached_tokens_is_normalised() {
    let fake = FakeProvider::start().await.unwrap();
    let usage = Usage {
        input_tokens: 50,
        output_tokens: 7,
        cache_read_tokens: 1024,
        cache_write_tokens: 0,
        estimated: false,
    };
    fake.push(Reply::text("cached").usage(usage));
    let response = openai(&fake).complete(request("x")).await.unwrap();
    // the wire said prompt_tokens = 1074 with cached_tokens = 1024
    assert_eq!(response.usage, usage);
    assert_eq!(response.text, "cached");
    assert_eq!(response.stop, StopReason::EndTurn);
}

#[tokio::test]
async fn keep_alive_comments_and_length_stop() {
    let fake = FakeProvider::start().await.unwrap();
    fake.push(
        Reply::text("truncated answ")
            .pings()
            .stop(StopReason::MaxTokens),
    );
    let response = openai(&fake).complete(request("x")).await.unwrap();
    assert_eq!(response.text, "truncated answ");
    assert_eq!(response.stop, StopReason::MaxTokens);
}

#[tokio::test]
async fn error_chunk_mid_stream() {
    let fake = FakeProvider::start().await.unwrap();
    fake.push(Reply::text("some text").error_after(2, "server_error", "upstream failed"));
    let events = collect(openai(&fake).stream(request("x")).await.unwrap()).await;
    assert!(!text_of(&events).is_empty());
    assert_eq!(
        events.last(),
        Some(&Err(ProviderError::Unavailable("upstream failed".into())))
    );
}

#[tokio::test]
async fn http_errors_and_root_path() {
    let fake = FakeProvider::start().await.unwrap();
    fake.push_all([
        Reply::status(429).retry_after(3),
        Reply::status(503),
        Reply::status(404),
    ]);
    // a base URL without /v1 (llama.cpp, some proxies) is served too
    let p = exoclaw_providers::OpenAiCompatProvider::new(
        crate::support::client(&fake.base_url()),
        &fake.base_url(),
        None,
    )
    .unwrap();
    use exoclaw_core::provider::Provider;
    let err = |e: Result<_, ProviderError>| e.err().unwrap();
    assert!(
        matches!(err(p.stream(request("x")).await), ProviderError::RateLimited { retry_after: Some(d) } if d.as_secs() == 3)
    );
    assert!(matches!(
        err(p.stream(request("x")).await),
        ProviderError::Unavailable(_)
    ));
    assert_eq!(
        err(p.stream(request("x")).await),
        ProviderError::Rejected {
            status: 404,
            message: "model not found".into()
        }
    );
    let paths: Vec<String> = fake.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/chat/completions"; 3]);
    assert!(
        !fake
            .last_request()
            .unwrap()
            .headers
            .contains_key("authorization"),
        "no key, no header"
    );
}
