//! Providers send through the egress client: a base URL whose name resolves
//! to a private or metadata address, a private literal that was not allowed
//! explicitly, and an origin outside the provider profile are refused before
//! any connection (canaries prove it) and never retried; a 3xx is returned as
//! an error, not followed.

use crate::support::{KEY, request};
use exoclaw_core::Secret;
use exoclaw_core::provider::{EgressRefusal, Provider, ProviderError};
use exoclaw_egress::EgressClient;
use exoclaw_egress::testing::{Canary, FakeHttp, FakeResponse, StaticResolver};
use exoclaw_providers::{
    AnthropicProvider, Jitter, OpenAiCompatProvider, Retry, RetryPolicy, preset,
};
use std::sync::Arc;
use std::time::Duration;

/// Both wire formats at `base`, sending through `client`.
fn providers(client: &EgressClient, base: &str) -> [Arc<dyn Provider>; 2] {
    let key = || Some(Secret::new(KEY));
    [
        Arc::new(AnthropicProvider::new(client.clone(), base, key()).unwrap()),
        Arc::new(OpenAiCompatProvider::new(client.clone(), base, key()).unwrap()),
    ]
}

fn refusal(e: &ProviderError) -> (EgressRefusal, &'static str) {
    match e {
        ProviderError::EgressRefused { kind, rule, .. } => (*kind, rule),
        other => panic!("expected an egress refusal, got {other:?}"),
    }
}

fn retry_three_times(p: Arc<dyn Provider>) -> Retry {
    Retry::new(
        p,
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(1),
            max_retry_after: Duration::from_secs(1),
            jitter: Jitter::None,
        },
    )
}

#[tokio::test]
async fn a_base_url_resolving_to_a_private_address_is_refused_without_a_connection() {
    let canary = Canary::start().await;
    for (name, answer) in [
        ("api.openai.com", "127.0.0.1"),
        ("rebind.example", "169.254.169.254"),
        ("private.example", "10.0.0.7"),
    ] {
        let dns = Arc::new(StaticResolver::new().with(name, &[answer]));
        // The base URL is in the provider profile but not allowed
        // explicitly (a preset's default), so its answers must be public.
        let base = format!("http://{name}:{}/v1", canary.port());
        let client = EgressClient::builder()
            .provider_profile(&[&base])
            .unwrap()
            .resolver(dns.clone())
            .build()
            .unwrap();
        for p in providers(&client, &base) {
            let wire = p.info().wire;
            let err = retry_three_times(p)
                .complete(request("x"))
                .await
                .unwrap_err();
            let (kind, rule) = refusal(&err);
            assert_eq!(kind, EgressRefusal::SsrfBlocked, "{wire} {name}");
            assert!(rule.starts_with("addr."), "{wire} {name}: {rule}");
            assert_eq!(err.code(), "security.ssrf_blocked");
            assert!(!err.is_retryable());
            let shown = err.to_string();
            assert!(!shown.contains(KEY), "{shown}");
        }
        // One lookup per wire: the refusal was not retried.
        assert_eq!(dns.lookups(name), 2, "{name}");
    }
    assert_eq!(canary.connections(), 0);
}

#[tokio::test]
async fn a_preset_overridden_to_a_private_literal_is_refused_unless_allowed_explicitly() {
    let canary = Canary::start().await;
    let base = format!("http://127.0.0.1:{}/v1", canary.port());
    // In the profile but not explicit: loopback stays blocked.
    let client = EgressClient::builder()
        .provider_profile(&[&base])
        .unwrap()
        .build()
        .unwrap();
    let p = preset("openai")
        .unwrap()
        .provider(client, Some(&base), Some(Secret::new(KEY)))
        .unwrap();
    let err = p.complete(request("x")).await.unwrap_err();
    assert_eq!(refusal(&err), (EgressRefusal::SsrfBlocked, "addr.loopback"));
    // Metadata by literal, whatever the profile says.
    let metadata = "http://169.254.169.254/latest";
    let client = EgressClient::builder()
        .provider_profile(&[metadata])
        .unwrap()
        .build()
        .unwrap();
    let err = providers(&client, metadata)[1]
        .complete(request("x"))
        .await
        .unwrap_err();
    assert_eq!(refusal(&err).0, EgressRefusal::SsrfBlocked);
    assert_eq!(canary.connections(), 0);
}

#[tokio::test]
async fn an_origin_outside_the_provider_profile_is_denied() {
    let server = FakeHttp::start(|_| FakeResponse::status(500)).await;
    // The profile holds the presets' origins; the fake is explicit for
    // another provider's port only.
    let client = EgressClient::builder()
        .provider_profile(&["https://api.openai.com/v1", &server.origin()])
        .unwrap()
        .allow_origin(&server.origin())
        .unwrap()
        .build()
        .unwrap();
    let elsewhere = "https://api.example.com/v1";
    for p in providers(&client, elsewhere) {
        let err = p.complete(request("x")).await.unwrap_err();
        assert_eq!(
            refusal(&err),
            (EgressRefusal::EgressDenied, "origin.not_allowed")
        );
        assert_eq!(err.code(), "security.egress_denied");
    }
    // Same host, other port: the explicit origin is exact.
    let other_port = format!("http://127.0.0.1:{}", server.port().wrapping_add(1));
    let err = providers(&client, &other_port)[0]
        .complete(request("x"))
        .await
        .unwrap_err();
    assert_eq!(refusal(&err).0, EgressRefusal::SsrfBlocked);
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn a_redirect_from_the_provider_is_not_followed() {
    let canary = Canary::start().await;
    let target = format!("http://{}/v1/chat/completions", canary.addr());
    for status in [301, 302, 303, 307, 308] {
        let location = target.clone();
        let server = FakeHttp::start(move |_| FakeResponse::redirect(status, &location)).await;
        // The canary is even allowed explicitly: a redirect is still not
        // followed, wherever it points.
        let client = EgressClient::builder()
            .allow_origin(&server.origin())
            .unwrap()
            .allow_origin(&format!("http://{}", canary.addr()))
            .unwrap()
            .build()
            .unwrap();
        for p in providers(&client, &server.origin()) {
            let wire = p.info().wire;
            let err = retry_three_times(p)
                .complete(request("x"))
                .await
                .unwrap_err();
            let ProviderError::Rejected {
                status: got,
                message,
            } = &err
            else {
                panic!("{wire} {status}: {err:?}");
            };
            assert_eq!(*got, status);
            assert!(message.contains("redirect"), "{message}");
            assert!(!err.is_retryable());
        }
        assert_eq!(server.requests().len(), 2, "one request per wire, no retry");
        assert!(server.requests().iter().all(|r| r.method == "POST"));
    }
    assert_eq!(canary.connections(), 0);
}
