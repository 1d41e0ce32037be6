//! The wire shape of requests as the server receives them: headers, cache
//! breakpoints (system, last tool, history prefix), tool calls and results,
//! `stream_options`.

use crate::support::{anthropic, openai};
use exoclaw_core::provider::{ChatMessage, ChatRequest, ChatRole, ContentPart, ToolCall, ToolSpec};
use exoclaw_providers::fake::{FakeProvider, Reply};
use serde_json::json;

fn conversation() -> ChatRequest {
    let mut req = ChatRequest::new(
        "model-x",
        vec![
            ChatMessage::user("find flights to Oslo"),
            ChatMessage::new(
                ChatRole::Assistant,
                vec![
                    ContentPart::Text {
                        text: "Searching.".into(),
                    },
                    ContentPart::ToolCall(ToolCall {
                        id: "call_1".into(),
                        name: "flights".into(),
                        arguments: json!({"to": "OSL"}),
                    }),
                ],
            ),
            ChatMessage::new(
                ChatRole::Tool,
                vec![ContentPart::ToolResult {
                    call_id: "call_1".into(),
                    content: "[{\"flight\":\"SK123\"}]".into(),
                    is_error: false,
                }],
            ),
            ChatMessage::assistant("SK123 leaves at 9:00."),
            ChatMessage::user("book it"),
        ],
    );
    req.system = Some("You are a travel agent.".into());
    req.tools = vec![
        ToolSpec {
            name: "flights".into(),
            description: "search flights".into(),
            parameters: json!({"type": "object", "properties": {"to": {"type": "string"}}}),
        },
        ToolSpec {
            name: "book".into(),
            description: "book a flight".into(),
            parameters: json!({"type": "object"}),
        },
    ]
    .into();
    req.max_tokens = Some(1024);
    req.temperature = Some(0.25);
    req.cache_prefix_len = 4;
    req
}

#[tokio::test]
async fn anthropic_request_on_the_wire() {
    let fake = FakeProvider::start().await.unwrap();
    fake.push(Reply::text("ok"));
    anthropic(&fake).complete(conversation()).await.unwrap();
    let got = fake.last_request().unwrap();
    assert_eq!(got.path, "/v1/messages");
    assert_eq!(got.headers["x-api-key"], "***");
    assert_eq!(got.headers["anthropic-version"], "2023-06-01");
    assert_eq!(got.headers["content-type"], "application/json");
    assert_eq!(got.headers["accept"], "text/event-stream");
    assert!(!got.headers.contains_key("authorization"));
    let eph = json!({"type": "ephemeral"});
    assert_eq!(
        got.body,
        json!({
            "model": "model-x",
            "max_tokens": 1024,
            "temperature": 0.25,
            "stream": true,
            "system": [{"type": "text", "text": "You are a travel agent.", "cache_control": eph}],
            "tools": [
                {"name": "flights", "description": "search flights",
                 "input_schema": {"type": "object", "properties": {"to": {"type": "string"}}}},
                {"name": "book", "description": "book a flight", "input_schema": {"type": "object"}, "cache_control": eph},
            ],
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "find flights to Oslo"}]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Searching."},
                    {"type": "tool_use", "id": "call_1", "name": "flights", "input": {"to": "OSL"}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "[{\"flight\":\"SK123\"}]"},
                ]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "SK123 leaves at 9:00.", "cache_control": eph},
                ]},
                {"role": "user", "content": [{"type": "text", "text": "book it"}]},
            ],
        })
    );
    let breakpoints = got.body.to_string().matches("cache_control").count();
    assert!(breakpoints <= 4, "Anthropic allows at most 4 breakpoints");
}

#[tokio::test]
async fn openai_request_on_the_wire() {
    let fake = FakeProvider::start().await.unwrap();
    fake.push(Reply::text("ok"));
    openai(&fake).complete(conversation()).await.unwrap();
    let got = fake.last_request().unwrap();
    assert_eq!(got.path, "/v1/chat/completions");
    assert_eq!(got.headers["authorization"], "***");
    assert!(!got.headers.contains_key("x-api-key"));
    assert_eq!(
        got.body,
        json!({
            "model": "model-x",
            "max_tokens": 1024,
            "temperature": 0.25,
            "stream": true,
            "stream_options": {"include_usage": true},
            "tool_choice": "auto",
            "tools": [
                {"type": "function", "function": {"name": "flights", "description": "search flights",
                 "parameters": {"type": "object", "properties": {"to": {"type": "string"}}}}},
                {"type": "function", "function": {"name": "book", "description": "book a flight", "parameters": {"type": "object"}}},
            ],
            "messages": [
                {"role": "system", "content": "You are a travel agent."},
                {"role": "user", "content": "find flights to Oslo"},
                {"role": "assistant", "content": "Searching.", "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "flights", "arguments": "{\"to\":\"OSL\"}"}},
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "[{\"flight\":\"SK123\"}]"},
                {"role": "assistant", "content": "SK123 leaves at 9:00."},
                {"role": "user", "content": "book it"},
            ],
        })
    );
}
