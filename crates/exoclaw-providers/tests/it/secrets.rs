//! Keys never show: not in `Debug`, not in errors (even when the vendor
//! echoes them), not in what the server records; vendor text is truncated.

use crate::support::{KEY, client, request};
use exoclaw_core::Secret;
use exoclaw_core::provider::{Provider, ProviderError};
use exoclaw_providers::fake::{FakeProvider, Reply};
use exoclaw_providers::{AnthropicProvider, OpenAiCompatProvider};

#[tokio::test]
async fn keys_never_in_debug_errors_or_recordings() {
    let fake = FakeProvider::start().await.unwrap();
    let a = AnthropicProvider::new(
        client(&fake.base_url()),
        &fake.base_url(),
        Some(Secret::new(KEY)),
    )
    .unwrap();
    let o = OpenAiCompatProvider::new(
        client(&fake.base_url()),
        &fake.base_url(),
        Some(Secret::new(KEY)),
    )
    .unwrap();
    for shown in [format!("{a:?}"), format!("{o:?}"), format!("{a:#?}")] {
        assert!(!shown.contains(KEY), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }

    fake.require_api_key(Some("the-right-key"));
    let mut errors: Vec<ProviderError> = Vec::new();
    errors.push(a.stream(request("x")).await.err().unwrap());
    errors.push(o.stream(request("x")).await.err().unwrap());
    assert!(matches!(errors[0], ProviderError::Auth(_)));
    assert!(matches!(errors[1], ProviderError::Auth(_)));
    fake.require_api_key(None);

    // a vendor that echoes the key (and another key-like token) in its error
    let echo = format!(
        r#"{{"error": {{"message": "key {KEY} is invalid; try sk-proj-abcdefghijklmnop1234 instead"}}}}"#
    );
    fake.push_all([
        Reply::status(400).error_body(echo.clone()),
        Reply::status(500).error_body(echo),
    ]);
    errors.push(o.stream(request("x")).await.err().unwrap());
    errors.push(a.stream(request("x")).await.err().unwrap());
    // and a huge body is cut
    fake.push(Reply::status(400).error_body("x".repeat(100_000)));
    let long = o.stream(request("x")).await.err().unwrap();
    let ProviderError::Rejected { message, .. } = &long else {
        panic!("{long:?}")
    };
    assert!(message.chars().count() <= 300, "{}", message.len());

    for e in &errors {
        let text = format!("{e} {e:?}");
        assert!(!text.contains(KEY), "{text}");
        assert!(!text.contains("sk-proj-abcdefghijklmnop1234"), "{text}");
    }
    assert!(
        errors[2].to_string().contains("key *** is invalid"),
        "{}",
        errors[2]
    );

    for r in fake.requests() {
        let all = format!("{:?}", r.headers);
        assert!(!all.contains(KEY), "{all}");
    }
}
