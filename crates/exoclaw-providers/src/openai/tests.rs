//! Unit tests of the chat-completions request mapping and chunk decoder (no
//! HTTP; the wire round trips are in `tests/it`).

use super::*;
use crate::http::drive_events;
use exoclaw_core::provider::{ChatMessage, ChatRole, ContentPart, ToolSpec, next};

#[expect(clippy::needless_pass_by_value, reason = "takes json! temporaries")]
fn data(v: Value) -> Result<SseEvent, ProviderError> {
    Ok(SseEvent {
        event: None,
        data: v.to_string(),
        id: None,
    })
}

fn done() -> Result<SseEvent, ProviderError> {
    Ok(SseEvent {
        event: None,
        data: "[DONE]".into(),
        id: None,
    })
}

async fn decode(
    events: Vec<Result<SseEvent, ProviderError>>,
) -> Vec<Result<StreamEvent, ProviderError>> {
    let mut stream = drive_events(futures_util::stream::iter(events), OpenAiDecoder::new(None));
    let mut got = Vec::new();
    while let Some(item) = next(&mut stream).await {
        got.push(item);
    }
    got
}

#[expect(clippy::needless_pass_by_value, reason = "takes json! temporaries")]
fn chunk(delta: Value, finish: Option<&str>) -> Result<SseEvent, ProviderError> {
    data(
        json!({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o",
        "choices":[{"index":0,"delta":delta,"finish_reason":finish}]}),
    )
}

#[tokio::test]
async fn parallel_tool_calls_assembled_by_index() {
    let got = decode(vec![
        chunk(json!({"role":"assistant","content":""}), None),
        chunk(json!({"content":"On it."}), None),
        chunk(json!({"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"weather","arguments":""}}]}), None),
        chunk(json!({"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"time","arguments":""}}]}), None),
        chunk(json!({"tool_calls":[{"index":1,"function":{"arguments":"{\"tz\":"}}]}), None),
        chunk(json!({"tool_calls":[{"index":0,"function":{"arguments":"{\"city\""}}]}), None),
        chunk(json!({"tool_calls":[{"index":0,"function":{"arguments":":\"Oslo\"}"}}]}), None),
        chunk(json!({"tool_calls":[{"index":1,"function":{"arguments":"\"UTC\"}"}}]}), None),
        chunk(json!({}), Some("tool_calls")),
        data(json!({"id":"chatcmpl-1","choices":[],"usage":{"prompt_tokens":1200,"completion_tokens":30,"total_tokens":1230,"prompt_tokens_details":{"cached_tokens":1024}}})),
        done(),
    ])
    .await;
    let got: Vec<StreamEvent> = got.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        got,
        vec![
            StreamEvent::TextDelta("On it.".into()),
            StreamEvent::ToolCall(ToolCall {
                id: "call_a".into(),
                name: "weather".into(),
                arguments: json!({"city": "Oslo"})
            }),
            StreamEvent::ToolCall(ToolCall {
                id: "call_b".into(),
                name: "time".into(),
                arguments: json!({"tz": "UTC"})
            }),
            StreamEvent::Usage(Usage {
                input_tokens: 176,
                output_tokens: 30,
                cache_read_tokens: 1024,
                cache_write_tokens: 0,
                estimated: false
            }),
            StreamEvent::Done(StopReason::ToolUse),
        ]
    );
}

#[tokio::test]
async fn finish_reasons_and_missing_done() {
    for (reason, stop) in [
        ("stop", StopReason::EndTurn),
        ("length", StopReason::MaxTokens),
        ("content_filter", StopReason::Other),
    ] {
        let got = decode(vec![chunk(json!({"content":"x"}), Some(reason))]).await;
        assert_eq!(got.last(), Some(&Ok(StreamEvent::Done(stop))), "{reason}");
    }
    // no finish_reason and no [DONE]: the connection was cut
    let got = decode(vec![chunk(json!({"content":"x"}), None)]).await;
    assert!(
        matches!(got.last(), Some(Err(ProviderError::Unavailable(_)))),
        "{got:?}"
    );
}

#[tokio::test]
async fn mid_stream_error_and_bad_json() {
    let got = decode(vec![
        chunk(json!({"content":"x"}), None),
        data(json!({"error":{"message":"upstream overloaded","code":502}})),
    ])
    .await;
    assert!(matches!(&got[1], Err(ProviderError::Unavailable(m)) if m.contains("overloaded")));
    let got = decode(vec![data(
        json!({"error":{"message":"bad things","type":"invalid_request_error"}}),
    )])
    .await;
    assert!(matches!(&got[0], Err(ProviderError::Stream(_))));
    let got = decode(vec![Ok(SseEvent {
        event: None,
        data: "{\"choices\": [".into(),
        id: None,
    })])
    .await;
    assert!(
        matches!(&got[..], [Err(ProviderError::Malformed(_))]),
        "{got:?}"
    );
}

#[tokio::test]
async fn calls_without_index_and_bad_arguments() {
    let got = decode(vec![
        chunk(
            json!({"tool_calls":[{"id":"c1","function":{"name":"a","arguments":"{\"x\":1}"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls":[{"id":"c2","function":{"name":"b","arguments":"{oops"}}]}),
            None,
        ),
        chunk(json!({}), Some("stop")),
        done(),
    ])
    .await;
    let got: Vec<StreamEvent> = got.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        got,
        vec![
            StreamEvent::ToolCall(ToolCall {
                id: "c1".into(),
                name: "a".into(),
                arguments: json!({"x": 1})
            }),
            StreamEvent::ToolCall(ToolCall {
                id: "c2".into(),
                name: "b".into(),
                arguments: json!("{oops")
            }),
            StreamEvent::Done(StopReason::ToolUse),
        ]
    );
}

#[test]
fn non_streaming_completion() {
    let v = json!({"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi",
        "tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}],
        "usage":{"prompt_tokens":10,"completion_tokens":2}});
    let got = decode_completion(&v, None).unwrap();
    assert_eq!(got[0], StreamEvent::TextDelta("hi".into()));
    assert!(matches!(&got[2], StreamEvent::ToolCall(c) if c.name == "f"));
    assert_eq!(got.last(), Some(&StreamEvent::Done(StopReason::ToolUse)));
}

/// The body as JSON, streaming, without `tool_choice`.
fn request_body(req: &ChatRequest, max_tokens_field: MaxTokensField) -> Value {
    body_with(req, max_tokens_field, false, true)
}

fn body_with(
    req: &ChatRequest,
    field: MaxTokensField,
    tool_choice_auto: bool,
    stream: bool,
) -> Value {
    let bytes = wire::encode(
        req,
        wire::Options {
            max_tokens_field: field,
            tool_choice_auto,
            stream,
        },
    )
    .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn unstreamed_bodies_tool_choice_and_temperature() {
    let mut req = ChatRequest::new("m", vec![ChatMessage::user("hi")]);
    req.temperature = Some(0.7);
    let plain = body_with(&req, MaxTokensField::MaxTokens, true, false);
    assert_eq!(
        plain,
        json!({"model": "m", "stream": false, "temperature": 0.7,
               "messages": [{"role": "user", "content": "hi"}]}),
        "no tools: no tool_choice; not streaming: no stream_options; f32 written as typed"
    );
    req.tools = vec![ToolSpec {
        name: "t".into(),
        description: "d".into(),
        parameters: json!({"type": "object", "properties": {"a": {"type": "string"}}}),
    }]
    .into();
    let with_tools = body_with(&req, MaxTokensField::MaxTokens, true, true);
    assert_eq!(with_tools["tool_choice"], json!("auto"));
    assert_eq!(with_tools["stream_options"], json!({"include_usage": true}));
    assert_eq!(
        with_tools["tools"][0]["function"]["parameters"]["properties"]["a"],
        json!({"type": "string"})
    );
}

#[test]
fn multi_part_text_and_empty_user_messages() {
    let req = ChatRequest::new(
        "m",
        vec![
            ChatMessage::new(
                ChatRole::User,
                vec![
                    ContentPart::Text {
                        text: "a \"quoted\" ".into(),
                    },
                    ContentPart::Text {
                        text: "line\nbreak ✓".into(),
                    },
                ],
            ),
            ChatMessage::new(ChatRole::User, vec![]),
        ],
    );
    let body = request_body(&req, MaxTokensField::MaxTokens);
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": "a \"quoted\" line\nbreak ✓"},
            {"role": "user", "content": ""},
        ])
    );
}

/// The messages' encoding is kept with the request's history: the next
/// turn's body encodes only its new messages and comes out the same as a
/// body encoded from scratch.
#[test]
fn message_encodings_are_kept_and_reused() {
    use exoclaw_core::derived::Prefix;
    let mut req = ChatRequest::new(
        "m",
        vec![ChatMessage::user("one"), ChatMessage::assistant("two")],
    );
    req.system = Some("be brief".into());
    let first = request_body(&req, MaxTokensField::MaxTokens);
    let (n, kept) = req.prefix.wire("openai-chat", &req.messages).unwrap();
    assert_eq!(n, 2);
    assert_eq!(
        &kept[..],
        br#"{"role":"user","content":"one"},{"role":"assistant","content":"two"}"#
    );
    let mut next = req.clone();
    std::sync::Arc::make_mut(&mut next.messages).push(ChatMessage::user("three"));
    let second = request_body(&next, MaxTokensField::MaxTokens);
    assert_eq!(
        second["messages"].as_array().unwrap()[..3],
        first["messages"].as_array().unwrap()[..3]
    );
    assert_eq!(
        second["messages"][3],
        json!({"role": "user", "content": "three"})
    );
    assert_eq!(
        next.prefix
            .wire("openai-chat", &next.messages)
            .map(|(n, _)| n),
        Some(3)
    );
    // Encoded again from nothing: the same body.
    let mut fresh = next.clone();
    fresh.prefix = Prefix::default();
    assert_eq!(request_body(&fresh, MaxTokensField::MaxTokens), second);
    assert_eq!(request_body(&next, MaxTokensField::MaxTokens), second);
    // The first request kept its two messages (the second copied them on
    // write).
    assert_eq!(req.messages.len(), 2);
    // Messages that encode to nothing (no parts) are left out without a
    // stray comma, kept or not.
    let mut empty = ChatRequest::new("m", vec![ChatMessage::new(ChatRole::Tool, vec![])]);
    assert_eq!(
        request_body(&empty, MaxTokensField::MaxTokens)["messages"],
        json!([])
    );
    std::sync::Arc::make_mut(&mut empty.messages).push(ChatMessage::user("hi"));
    assert_eq!(
        request_body(&empty, MaxTokensField::MaxTokens)["messages"],
        json!([{"role": "user", "content": "hi"}])
    );
}

#[test]
fn request_mapping() {
    let mut req = ChatRequest::new(
        "gpt-4o",
        vec![
            ChatMessage::user("weather?"),
            ChatMessage::new(
                ChatRole::Assistant,
                vec![
                    ContentPart::ToolCall(ToolCall {
                        id: "call_1".into(),
                        name: "weather".into(),
                        arguments: json!({"city": "Oslo"}),
                    }),
                    ContentPart::ToolCall(ToolCall {
                        id: "call_2".into(),
                        name: "weather".into(),
                        arguments: json!("{raw"),
                    }),
                ],
            ),
            ChatMessage::new(
                ChatRole::Tool,
                vec![
                    ContentPart::ToolResult {
                        call_id: "call_1".into(),
                        content: "cold".into(),
                        is_error: false,
                    },
                    ContentPart::ToolResult {
                        call_id: "call_2".into(),
                        content: "bad args".into(),
                        is_error: true,
                    },
                ],
            ),
            ChatMessage::assistant("It is cold."),
        ],
    );
    req.system = Some("Be brief.".into());
    req.tools = vec![ToolSpec {
        name: "weather".into(),
        description: "d".into(),
        parameters: json!({"type": "object"}),
    }]
    .into();
    req.max_tokens = Some(100);
    req.cache_prefix_len = 2; // no effect on this wire
    assert_eq!(
        request_body(&req, MaxTokensField::MaxCompletionTokens),
        json!({
            "model": "gpt-4o",
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_completion_tokens": 100,
            "tools": [{"type": "function", "function": {"name": "weather", "description": "d", "parameters": {"type": "object"}}}],
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "weather", "arguments": "{raw"}},
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "cold"},
                {"role": "tool", "tool_call_id": "call_2", "content": "bad args"},
                {"role": "assistant", "content": "It is cold."},
            ],
        })
    );
    let body = request_body(&req, MaxTokensField::MaxTokens);
    assert_eq!(body["max_tokens"], json!(100));
    assert!(body.get("max_completion_tokens").is_none());
}
