//! [`Timeouts`]: a request timeout until the first stream event (headers
//! and first token) → `Timeout`, then a stall timeout on every gap between
//! events → `Stalled`. Either ends the stream and drops the connection.

use exoclaw_core::provider::{
    ChatRequest, ChatStream, Provider, ProviderError, ProviderInfo, StreamEvent,
};
use futures_util::Stream;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeoutPolicy {
    /// From the call until the first event.
    pub request: Duration,
    /// The longest silence between two events after that.
    pub stall: Duration,
}

impl Default for TimeoutPolicy {
    fn default() -> Self {
        Self {
            request: Duration::from_secs(120),
            stall: Duration::from_secs(60),
        }
    }
}

pub struct Timeouts {
    inner: Arc<dyn Provider>,
    policy: TimeoutPolicy,
}

impl Timeouts {
    pub fn new(inner: Arc<dyn Provider>, policy: TimeoutPolicy) -> Self {
        Self { inner, policy }
    }
}

#[async_trait::async_trait]
impl Provider for Timeouts {
    fn info(&self) -> ProviderInfo {
        self.inner.info()
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream, ProviderError> {
        let deadline = Instant::now() + self.policy.request;
        let stream = tokio::time::timeout_at(deadline, self.inner.stream(request))
            .await
            .map_err(|_| ProviderError::Timeout(self.policy.request))??;
        Ok(Box::pin(Watchdog {
            inner: Some(stream),
            timer: Box::pin(tokio::time::sleep_until(deadline)),
            seen_event: false,
            policy: self.policy,
        }))
    }
}

struct Watchdog {
    /// `None` once the stream has ended or timed out.
    inner: Option<ChatStream>,
    timer: Pin<Box<Sleep>>,
    seen_event: bool,
    policy: TimeoutPolicy,
}

impl Stream for Watchdog {
    type Item = Result<StreamEvent, ProviderError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(item)) => {
                self.seen_event = true;
                let next_deadline = Instant::now() + self.policy.stall;
                self.timer.as_mut().reset(next_deadline);
                Poll::Ready(Some(item))
            }
            Poll::Ready(None) => {
                self.inner = None;
                Poll::Ready(None)
            }
            Poll::Pending => match self.timer.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    // Dropping the inner stream closes the connection.
                    self.inner = None;
                    let err = if self.seen_event {
                        ProviderError::Stalled(self.policy.stall)
                    } else {
                        ProviderError::Timeout(self.policy.request)
                    };
                    Poll::Ready(Some(Err(err)))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use exoclaw_core::provider::next;

    struct Slow {
        before_headers: Duration,
        gaps: Vec<Duration>,
    }

    #[async_trait::async_trait]
    impl Provider for Slow {
        fn info(&self) -> ProviderInfo {
            ProviderInfo {
                name: "slow".into(),
                wire: "openai",
            }
        }
        async fn stream(&self, _: ChatRequest) -> Result<ChatStream, ProviderError> {
            tokio::time::sleep(self.before_headers).await;
            let gaps = self.gaps.clone();
            Ok(Box::pin(futures_util::stream::unfold(
                gaps.into_iter(),
                |mut gaps| async move {
                    let gap = gaps.next()?;
                    tokio::time::sleep(gap).await;
                    Some((Ok(StreamEvent::TextDelta("x".into())), gaps))
                },
            )))
        }
    }

    fn wrap(before_headers: u64, gaps: &[u64]) -> Timeouts {
        Timeouts::new(
            Arc::new(Slow {
                before_headers: Duration::from_secs(before_headers),
                gaps: gaps.iter().map(|s| Duration::from_secs(*s)).collect(),
            }),
            TimeoutPolicy {
                request: Duration::from_secs(10),
                stall: Duration::from_secs(5),
            },
        )
    }

    async fn collect(
        p: &Timeouts,
    ) -> Result<Vec<Result<StreamEvent, ProviderError>>, ProviderError> {
        let mut s = p.stream(ChatRequest::new("m", vec![])).await?;
        let mut got = Vec::new();
        while let Some(item) = next(&mut s).await {
            got.push(item);
        }
        Ok(got)
    }

    #[tokio::test(start_paused = true)]
    async fn request_timeout_covers_headers_and_first_event() {
        assert_eq!(
            collect(&wrap(11, &[])).await.err(),
            Some(ProviderError::Timeout(Duration::from_secs(10)))
        );
        // 6s to headers + 6s to the first event: over 10s in total
        let got = collect(&wrap(6, &[6])).await.unwrap();
        assert_eq!(
            got,
            vec![Err(ProviderError::Timeout(Duration::from_secs(10)))]
        );
        // within budget: the first event may take longer than the stall timeout
        let got = collect(&wrap(1, &[8, 4, 4])).await.unwrap();
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(Result::is_ok));
    }

    #[tokio::test(start_paused = true)]
    async fn stall_ends_the_stream() {
        let got = collect(&wrap(0, &[1, 4, 6, 1])).await.unwrap();
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[2], Err(ProviderError::Stalled(Duration::from_secs(5))));
    }
}
