//! A client that stops reading must not make the gateway hold its output
//! without bound. Every connection's socket is wrapped in [`StallGuard`]:
//! a write (or flush) that cannot make progress for
//! `gateway.write_stall_timeout_sec` fails with `TimedOut`, which ends the
//! connection (an SSE stream's body, a WebSocket's writer). Until then the
//! gateway buffers only what hyper's or tungstenite's bounded buffers and
//! the bounded event channels hold: a run whose client stops reading waits
//! (backpressure) and its client is disconnected when the timer runs out.
//!
//! The timer is allocated only while a write is blocked, so an idle
//! connection carries none.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use exoclaw_gateway::metrics::{ConnLimitLabels, Metrics};

/// A socket whose writes fail once blocked for longer than `limit`.
pub struct StallGuard<T> {
    inner: T,
    limit: Duration,
    /// Running while a write is blocked; `None` otherwise.
    timer: Option<Pin<Box<Sleep>>>,
    /// Counts the connections closed for it
    /// (`connections_refused{limit="write_stall"}`).
    metrics: Arc<Metrics>,
}

impl<T> StallGuard<T> {
    pub fn new(inner: T, limit: Duration, metrics: Arc<Metrics>) -> Self {
        Self {
            inner,
            limit,
            timer: None,
            metrics,
        }
    }

    /// `Pending` from the socket: start (or check) the timer. `Ready(Err)`
    /// once it has run out.
    fn blocked<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        let limit = self.limit;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.timer = None;
                self.metrics
                    .connections_refused
                    .get_or_create(&ConnLimitLabels {
                        limit: "write_stall".to_owned(),
                    })
                    .inc();
                tracing::info!(
                    event = "http.write_stalled",
                    limit_sec = limit.as_secs(),
                    "closing a connection whose client stopped reading"
                );
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client stopped reading (gateway.write_stall_timeout_sec)",
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn progressed<R>(
        &mut self,
        r: Poll<io::Result<R>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<R>> {
        match r {
            Poll::Pending => self.blocked(cx),
            ready => {
                self.timer = None;
                ready
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for StallGuard<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StallGuard<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.progressed(r, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.progressed(r, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.progressed(r, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.progressed(r, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt as _;

    #[tokio::test]
    async fn a_write_blocked_past_the_limit_fails_and_is_counted() {
        // A pipe whose reader never reads: writes block once it is full.
        let (client, _reader) = tokio::io::duplex(64);
        let metrics = Arc::new(Metrics::new());
        let mut w = StallGuard::new(client, Duration::from_millis(100), metrics.clone());
        w.write_all(&[0u8; 64]).await.unwrap();
        let e = w.write_all(&[1u8; 10]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(
            metrics
                .encode()
                .contains("connections_refused_total{limit=\"write_stall\"} 1"),
            "{}",
            metrics.encode()
        );
    }

    #[tokio::test]
    async fn a_reader_that_keeps_up_is_never_timed_out() {
        use tokio::io::AsyncReadExt as _;
        let (client, mut reader) = tokio::io::duplex(64);
        let metrics = Arc::new(Metrics::new());
        // The whole write takes longer than the limit (128 reads 20 ms
        // apart), each wait far less: the timer restarts on progress.
        let mut w = StallGuard::new(client, Duration::from_secs(1), metrics.clone());
        let drain = async move {
            let mut total = 0;
            let mut buf = [0u8; 16];
            while total < 2048 {
                tokio::time::sleep(Duration::from_millis(20)).await;
                total += reader.read(&mut buf).await.unwrap();
            }
        };
        let (written, ()) = tokio::join!(w.write_all(&[7u8; 2048]), drain);
        written.unwrap();
        assert!(!metrics.encode().contains("write_stall"));
    }
}
