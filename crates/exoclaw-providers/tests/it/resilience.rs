//! Retry, fallback and timeouts against the fake: `retry-after` honoured
//! (paused time), a 5xx storm (retry, then fallback, then one clear error),
//! no retry once output was forwarded, malformed SSE, stalls and request
//! timeouts.

use crate::support::{anthropic, both, collect, openai, request, text_of};
use exoclaw_core::provider::{Provider, ProviderError, StreamEvent};
use exoclaw_providers::fake::{FakeProvider, Reply};
use exoclaw_providers::{ChainBuilder, Jitter, Retry, RetryPolicy, TimeoutPolicy, Timeouts};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

fn quick_retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
        max_retry_after: Duration::from_secs(10),
        jitter: Jitter::None,
    }
}

// The fake runs on its own thread in real time; the client's clock is
// paused, so the retry's sleeps complete at once but are measured.
#[tokio::test(start_paused = true)]
async fn rate_limit_retry_after_is_honoured() {
    let (fake, _) = FakeProvider::start_in_thread().unwrap();
    fake.push_all([Reply::status(429).retry_after(2), Reply::text("finally")]);
    let retry = Retry::new(anthropic(&fake), quick_retry(3));
    let start = Instant::now();
    let response = retry.complete(request("x")).await.unwrap();
    let waited = start.elapsed();
    assert_eq!(response.text, "finally");
    assert!(waited >= Duration::from_secs(2), "{waited:?}");
    assert!(
        waited < Duration::from_millis(2500),
        "backoff was not added on top: {waited:?}"
    );
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn retry_after_beyond_the_cap_is_returned_at_once() {
    let (fake, _) = FakeProvider::start_in_thread().unwrap();
    fake.push(Reply::status(429).retry_after(3600));
    let retry = Retry::new(openai(&fake), quick_retry(3));
    let start = Instant::now();
    let err = retry.complete(request("x")).await.unwrap_err();
    assert_eq!(
        err,
        ProviderError::RateLimited {
            retry_after: Some(Duration::from_secs(3600))
        }
    );
    assert!(start.elapsed() < Duration::from_secs(1));
    assert_eq!(fake.requests().len(), 1);
}

// Real time: the chain includes Timeouts, and a paused clock would jump
// ahead to their deadlines while the client waits on the socket.
#[tokio::test]
async fn five_xx_storm_retries_then_falls_back_then_fails_clearly() {
    let first = FakeProvider::start().await.unwrap();
    let second = FakeProvider::start().await.unwrap();
    let chain = ChainBuilder::new().retry(quick_retry(3));

    // every attempt everywhere fails: one error naming both routes
    first.push_all([Reply::status(503), Reply::status(529), Reply::status(500)]);
    second.push_all([Reply::status(500), Reply::status(502), Reply::status(503)]);
    let smart = chain.build(
        "smart",
        [
            (anthropic(&first), "claude-x".to_owned()),
            (openai(&second), "gpt-x".to_owned()),
        ],
    );
    let err = smart.complete(request("x")).await.unwrap_err();
    let ProviderError::Unavailable(message) = &err else {
        panic!("{err:?}")
    };
    assert!(
        message.starts_with("all 2 routes for model \"smart\" failed: "),
        "{message}"
    );
    assert!(
        message.contains("anthropic (claude-x): provider unavailable: 500"),
        "{message}"
    );
    assert!(
        message.contains("openai (gpt-x): provider unavailable: 503"),
        "{message}"
    );
    assert_eq!(first.requests().len(), 3, "retried on the first route");
    assert_eq!(second.requests().len(), 3, "then on the second");

    // the second route recovers: the answer comes from it, with its model
    first.push_all([Reply::status(503), Reply::status(503), Reply::status(503)]);
    second.push_all([Reply::status(500), Reply::text("from the fallback")]);
    let response = smart.complete(request("x")).await.unwrap();
    assert_eq!(response.text, "from the fallback");
    assert_eq!(second.last_request().unwrap().body["model"], "gpt-x");
    assert_eq!(first.requests()[3].body["model"], "claude-x");

    // a non-retryable error stops the chain at once
    first.push(Reply::status(400));
    let before = second.requests().len();
    let err = smart.complete(request("x")).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::Rejected { status: 400, .. }),
        "{err:?}"
    );
    assert_eq!(second.requests().len(), before);
}

#[tokio::test]
async fn no_retry_once_output_was_forwarded() {
    let fake = FakeProvider::start().await.unwrap();
    fake.push(Reply::text("half an answer").deltas(2).error_after(
        3,
        "overloaded_error",
        "Overloaded",
    ));
    let retry = Retry::new(anthropic(&fake), quick_retry(3));
    let events = collect(retry.stream(request("x")).await.unwrap()).await;
    assert_eq!(text_of(&events), "half an");
    assert!(matches!(
        events.last(),
        Some(Err(ProviderError::Unavailable(_)))
    ));
    assert_eq!(fake.requests().len(), 1);

    // but an error before the first event is retried
    fake.push_all([
        Reply::text("x").error_after(0, "overloaded_error", "Overloaded"),
        Reply::text("second try"),
    ]);
    let response = retry.complete(request("x")).await.unwrap();
    assert_eq!(response.text, "second try");
}

#[tokio::test]
async fn malformed_sse_is_an_error_not_a_hang() {
    let fake = FakeProvider::start().await.unwrap();
    for (wire, provider) in both(&fake) {
        for after in [0, 2] {
            fake.push(Reply::text("abc").malformed_after(after).chunked(&[3]));
            let result =
                tokio::time::timeout(Duration::from_secs(10), provider.complete(request("x")))
                    .await;
            let err = result.expect("no hang").unwrap_err();
            assert!(
                matches!(err, ProviderError::Malformed(_)),
                "{wire} after {after}: {err:?}"
            );
        }
    }
}

#[tokio::test]
async fn stall_mid_stream_is_detected_and_the_connection_dropped() {
    let (fake, _) = FakeProvider::start_in_thread().unwrap();
    let policy = TimeoutPolicy {
        request: Duration::from_secs(5),
        stall: Duration::from_millis(300),
    };
    for (i, (wire, provider)) in both(&fake).into_iter().enumerate() {
        fake.push(Reply::text("one two three").stall_after(3, Duration::from_secs(3)));
        let timed = Timeouts::new(provider, policy);
        let events = collect(timed.stream(request("x")).await.unwrap()).await;
        assert!(
            !text_of(&events).is_empty(),
            "{wire}: deltas before the stall"
        );
        assert_eq!(
            events.last(),
            Some(&Err(ProviderError::Stalled(Duration::from_millis(300)))),
            "{wire}"
        );
        assert!(!events.iter().any(|e| matches!(e, Ok(StreamEvent::Done(_)))));
        assert!(
            fake.wait_for_disconnects(i + 1, Duration::from_secs(10))
                .await,
            "{wire}: the server saw the client leave"
        );
    }
}

#[tokio::test]
async fn slow_headers_time_out_and_are_retried() {
    let fake = FakeProvider::start().await.unwrap();
    let policy = TimeoutPolicy {
        request: Duration::from_secs(1),
        stall: Duration::from_secs(5),
    };
    fake.push(Reply::text("late").delay(Duration::from_secs(5)));
    let timed: Arc<dyn Provider> = Arc::new(Timeouts::new(openai(&fake), policy));
    let err = timed.stream(request("x")).await.err().unwrap();
    assert_eq!(err, ProviderError::Timeout(Duration::from_secs(1)));

    fake.push_all([
        Reply::text("late").delay(Duration::from_secs(5)),
        Reply::text("on time"),
    ]);
    let response = Retry::new(timed, quick_retry(2))
        .complete(request("x"))
        .await
        .unwrap();
    assert_eq!(response.text, "on time");
}
