//! The fake server itself: echo mode, non-streaming JSON in both formats,
//! the thread-hosted variant for synchronous tests.

use crate::support::{both, client, request};
use exoclaw_egress::Method;
use exoclaw_providers::fake::{FakeProvider, Reply, WireFormat};
use serde_json::{Value, json};

#[tokio::test]
async fn echoes_the_last_user_message_when_nothing_is_queued() {
    let fake = FakeProvider::start().await.unwrap();
    for (wire, provider) in both(&fake) {
        let response = provider.complete(request("repeat after me")).await.unwrap();
        assert_eq!(response.text, "repeat after me", "{wire}");
        assert!(
            response.usage.input_tokens > 0 && response.usage.output_tokens > 0,
            "{wire}"
        );
    }
    assert_eq!(fake.completed(), 2);
    assert_eq!(fake.disconnects(), 0);
}

#[tokio::test]
async fn non_streaming_json_in_both_formats() {
    let fake = FakeProvider::start().await.unwrap();
    let call = exoclaw_core::provider::ToolCall {
        id: "c".into(),
        name: "f".into(),
        arguments: json!({"a": 1}),
    };
    fake.push_all([
        Reply::tool_calls([call.clone()]).with_text("hi"),
        Reply::tool_calls([call]).with_text("hi"),
    ]);
    let body = json!({"model": "m", "max_tokens": 10, "stream": false, "messages": [{"role": "user", "content": "x"}]});
    let http = client(&fake.base_url());
    let a: Value = http
        .request(Method::POST, &format!("{}/v1/messages", fake.base_url()))
        .unwrap()
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap();
    assert_eq!(a["type"], "message");
    assert_eq!(a["content"][0], json!({"type": "text", "text": "hi"}));
    assert_eq!(
        a["content"][1],
        json!({"type": "tool_use", "id": "c", "name": "f", "input": {"a": 1}})
    );
    assert_eq!(a["stop_reason"], "tool_use");
    let o: Value = http
        .request(
            Method::POST,
            &format!("{}/v1/chat/completions", fake.base_url()),
        )
        .unwrap()
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap();
    assert_eq!(o["object"], "chat.completion");
    assert_eq!(
        o["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
        "{\"a\":1}"
    );
    assert_eq!(o["choices"][0]["finish_reason"], "tool_calls");
    let wires: Vec<WireFormat> = fake.requests().iter().map(|r| r.wire).collect();
    assert_eq!(wires, [WireFormat::Anthropic, WireFormat::OpenAi]);
}

#[test]
fn runs_from_a_plain_thread() {
    let (fake, base_url) = FakeProvider::start_in_thread().unwrap();
    assert_eq!(base_url, fake.base_url());
    fake.push(Reply::text("from a thread"));
    // a caller with its own runtime, as the binary's end-to-end tests have
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let response = runtime.block_on(async {
        let provider = crate::support::openai(&fake);
        provider.complete(request("x")).await.unwrap()
    });
    assert_eq!(response.text, "from a thread");
    drop(fake); // stops and joins the server thread
    let refused = runtime.block_on(async {
        client(&base_url)
            .request(Method::POST, &format!("{base_url}/v1/chat/completions"))
            .unwrap()
            .body("{}")
            .send()
            .await
    });
    assert!(refused.is_err(), "the server is gone");
}

#[tokio::test]
async fn bad_json_and_missing_key() {
    let fake = FakeProvider::start().await.unwrap();
    let http = client(&fake.base_url());
    let status = http
        .request(Method::POST, &format!("{}/v1/messages", fake.base_url()))
        .unwrap()
        .body("{nope")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 400);
    fake.require_api_key(Some("right"));
    let status = http
        .request(
            Method::POST,
            &format!("{}/chat/completions", fake.base_url()),
        )
        .unwrap()
        .header("authorization", "Bearer wrong")
        .body("{}")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);
}
