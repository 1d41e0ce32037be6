//! Unit tests of the Anthropic request mapping and event decoder (no HTTP;
//! the wire round trips are in `tests/it`).

use super::*;
use crate::http::drive_events;
use exoclaw_core::provider::{ToolSpec, next};

#[expect(clippy::needless_pass_by_value, reason = "takes json! temporaries")]
fn sse(event: &str, data: Value) -> Result<SseEvent, ProviderError> {
    Ok(SseEvent {
        event: Some(event.to_owned()),
        data: data.to_string(),
        id: None,
    })
}

async fn decode(
    events: Vec<Result<SseEvent, ProviderError>>,
) -> Vec<Result<StreamEvent, ProviderError>> {
    let mut stream = drive_events(
        futures_util::stream::iter(events),
        AnthropicDecoder::new(Some(Secret::new("sk-ant-test-key-000000"))),
    );
    let mut got = Vec::new();
    while let Some(item) = next(&mut stream).await {
        got.push(item);
    }
    got
}

#[tokio::test]
async fn text_and_tool_calls() {
    let got = decode(vec![
        sse("message_start", json!({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":100,"cache_read_input_tokens":2000,"output_tokens":1}}})),
        sse("content_block_start", json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})),
        sse("ping", json!({"type":"ping"})),
        sse("content_block_delta", json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Let me "}})),
        sse("content_block_delta", json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"check."}})),
        sse("content_block_stop", json!({"type":"content_block_stop","index":0})),
        sse("content_block_start", json!({"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}})),
        sse("content_block_delta", json!({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}})),
        sse("content_block_delta", json!({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\": \"Par"}})),
        sse("content_block_delta", json!({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"is\"}"}})),
        sse("content_block_start", json!({"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_2","name":"noop","input":{}}})),
        sse("content_block_stop", json!({"type":"content_block_stop","index":1})),
        sse("content_block_stop", json!({"type":"content_block_stop","index":2})),
        sse("message_delta", json!({"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":42}})),
        sse("message_stop", json!({"type":"message_stop"})),
        sse("message_start", json!({"type":"never read"})),
    ])
    .await;
    let got: Vec<StreamEvent> = got.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        got,
        vec![
            StreamEvent::Usage(Usage {
                input_tokens: 25,
                output_tokens: 1,
                cache_read_tokens: 2000,
                cache_write_tokens: 100,
                estimated: false
            }),
            StreamEvent::TextDelta("Let me ".into()),
            StreamEvent::TextDelta("check.".into()),
            StreamEvent::ToolCall(ToolCall {
                id: "toolu_1".into(),
                name: "get_weather".into(),
                arguments: json!({"city": "Paris"})
            }),
            StreamEvent::ToolCall(ToolCall {
                id: "toolu_2".into(),
                name: "noop".into(),
                arguments: json!({})
            }),
            StreamEvent::Usage(Usage {
                output_tokens: 42,
                ..Usage::default()
            }),
            StreamEvent::Done(StopReason::ToolUse),
        ]
    );
}

#[tokio::test]
async fn unparsable_arguments_become_a_string() {
    let got = decode(vec![
        sse("content_block_start", json!({"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"n","input":{}}})),
        sse("content_block_delta", json!({"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"a\": tru"}})),
        sse("content_block_stop", json!({"type":"content_block_stop","index":0})),
        sse("message_delta", json!({"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":3}})),
        sse("message_stop", json!({"type":"message_stop"})),
    ])
    .await;
    assert_eq!(
        got[0],
        Ok(StreamEvent::ToolCall(ToolCall {
            id: "t".into(),
            name: "n".into(),
            arguments: json!("{\"a\": tru")
        }))
    );
    assert_eq!(
        got.last(),
        Some(&Ok(StreamEvent::Done(StopReason::MaxTokens)))
    );
}

#[tokio::test]
async fn error_events() {
    let start = || {
        sse(
            "content_block_start",
            json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":"hi"}}),
        )
    };
    let got = decode(vec![
        start(),
        sse(
            "error",
            json!({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}),
        ),
        start(),
    ])
    .await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0], Ok(StreamEvent::TextDelta("hi".into())));
    assert!(matches!(&got[1], Err(ProviderError::Unavailable(m)) if m.contains("Overloaded")));

    let got = decode(vec![sse(
        "error",
        json!({"type":"error","error":{"type":"api_error","message":"boom with sk-ant-test-key-000000"}}),
    )])
    .await;
    let Err(ProviderError::Stream(m)) = &got[0] else {
        panic!("{got:?}")
    };
    assert!(m.contains("api_error: boom"), "{m}");
    assert!(!m.contains("sk-ant-test-key"), "{m}");
}

#[tokio::test]
async fn truncated_and_malformed_streams() {
    let got = decode(vec![sse("ping", json!({"type":"ping"}))]).await;
    assert!(
        matches!(&got[..], [Err(ProviderError::Unavailable(_))]),
        "{got:?}"
    );

    let bad = Ok(SseEvent {
        event: Some("content_block_delta".into()),
        data: "{not json".into(),
        id: None,
    });
    let got = decode(vec![
        bad,
        sse("message_stop", json!({"type":"message_stop"})),
    ])
    .await;
    assert!(
        matches!(&got[..], [Err(ProviderError::Malformed(_))]),
        "{got:?}"
    );

    let got = decode(vec![sse(
        "content_block_delta",
        json!({"type":"content_block_delta","index":5,"delta":{"type":"input_json_delta","partial_json":"{}"}}),
    )])
    .await;
    assert!(
        matches!(&got[..], [Err(ProviderError::Malformed(_))]),
        "{got:?}"
    );
}

fn tool(name: &str) -> ToolSpec {
    ToolSpec {
        name: name.into(),
        description: format!("the {name} tool"),
        parameters: json!({"type": "object"}),
    }
}

#[test]
fn request_mapping() {
    let mut req = ChatRequest::new(
        "claude-sonnet-4-5",
        vec![
            ChatMessage::user("what is the weather?"),
            ChatMessage::new(
                ChatRole::Assistant,
                vec![
                    ContentPart::Text {
                        text: String::new(),
                    },
                    ContentPart::ToolCall(ToolCall {
                        id: "toolu_1".into(),
                        name: "weather".into(),
                        arguments: json!({"city": "Paris"}),
                    }),
                    ContentPart::ToolCall(ToolCall {
                        id: "toolu_2".into(),
                        name: "weather".into(),
                        arguments: json!("{broken"),
                    }),
                ],
            ),
            ChatMessage::new(
                ChatRole::Tool,
                vec![
                    ContentPart::ToolResult {
                        call_id: "toolu_1".into(),
                        content: "sunny".into(),
                        is_error: false,
                    },
                    ContentPart::ToolResult {
                        call_id: "toolu_2".into(),
                        content: "invalid arguments".into(),
                        is_error: true,
                    },
                ],
            ),
            ChatMessage::user("thanks, and tomorrow?"),
        ],
    );
    req.system = Some("You are terse.".into());
    req.tools = vec![tool("weather"), tool("search")].into();
    req.temperature = Some(0.5);
    req.cache_prefix_len = 3;
    assert_eq!(
        request_body(&req),
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 4096,
            "stream": true,
            "temperature": 0.5,
            "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
            "tools": [
                {"name": "weather", "description": "the weather tool", "input_schema": {"type": "object"}},
                {"name": "search", "description": "the search tool", "input_schema": {"type": "object"},
                 "cache_control": {"type": "ephemeral"}},
            ],
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "what is the weather?"}]},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "weather", "input": {"invalid_arguments": "{broken"}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "invalid arguments",
                     "is_error": true, "cache_control": {"type": "ephemeral"}},
                    {"type": "text", "text": "thanks, and tomorrow?"},
                ]},
            ],
        })
    );
}

#[test]
fn no_breakpoints_without_system_tools_or_prefix() {
    let req = ChatRequest::new("m", vec![ChatMessage::user("hi")]);
    let body = request_body(&req);
    assert!(!body.to_string().contains("cache_control"), "{body}");
    assert!(body.get("system").is_none());
    assert!(body.get("tools").is_none());

    let mut req = ChatRequest::new(
        "m",
        vec![ChatMessage::user("a"), ChatMessage::assistant("b")],
    );
    req.cache_prefix_len = 99; // clamped to the history
    req.max_tokens = Some(10);
    let body = request_body(&req);
    assert_eq!(body["max_tokens"], json!(10));
    assert_eq!(
        body["messages"][1]["content"][0]["cache_control"],
        ephemeral()
    );
    assert_eq!(body.to_string().matches("cache_control").count(), 1);
}

#[test]
fn debug_hides_the_key() {
    let p = AnthropicProvider::new(
        exoclaw_egress::EgressClient::builder().build().unwrap(),
        "https://user:pw@api.example.com",
        Some(Secret::new("sk-ant-very-secret")),
    )
    .unwrap();
    let shown = format!("{p:?}");
    assert!(!shown.contains("very-secret"), "{shown}");
    assert!(!shown.contains("pw@"), "{shown}");
}
