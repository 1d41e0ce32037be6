//! The accept loop: hyper's HTTP/1.1 server under our own control instead of
//! `axum::serve`, so that every connection has a slot in the
//! [`ConnTable`](super::conn::ConnTable) (total, per-address and
//! unauthenticated limits), a header read timeout that also bounds idle
//! keep-alive connections (`gateway.header_timeout_sec`; a connection that
//! sends no complete request head in that time is closed, whether it is new,
//! stalled half-way through its headers or idle between requests), and a
//! header size limit (`gateway.max_header_bytes`, `431` beyond it).
//!
//! [`run`] serves until `shutdown` resolves, then stops accepting, asks
//! every connection to finish its request in flight (WebSockets are told
//! "going away") and returns when all have; the caller bounds that wait.

use super::conn::{Closing, ConnSlot, ConnTable};
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tower::ServiceExt as _;

/// How each connection is served.
#[derive(Clone, Debug)]
pub struct ConnConfig {
    pub header_timeout: Duration,
    pub max_header_bytes: usize,
    /// How long a write may stay blocked before the connection is closed
    /// (see [`StallGuard`](super::stall::StallGuard)).
    pub write_stall_timeout: Duration,
}

/// Serve `app` on `listener` until `shutdown` resolves (see the module docs).
pub async fn run(
    listener: TcpListener,
    app: Router,
    table: Arc<ConnTable>,
    config: ConnConfig,
    metrics: Arc<exoclaw_gateway::metrics::Metrics>,
    shutdown: impl Future<Output = ()>,
) {
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept:
                    // back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            Some(done) = connections.join_next(), if !connections.is_empty() => {
                if let Err(e) = done
                    && e.is_panic()
                {
                    tracing::error!(error = %e, "a connection task panicked");
                }
                continue;
            }
            () = &mut shutdown => break,
        };
        let slot = match table.admit(peer.ip()) {
            Ok((slot, admission)) => {
                for limit in admission.evicted {
                    metrics
                        .connections_displaced
                        .get_or_create(&exoclaw_gateway::metrics::ConnLimitLabels {
                            limit: limit.as_str().to_owned(),
                        })
                        .inc();
                }
                slot
            }
            Err(limit) => {
                metrics
                    .connections_refused
                    .get_or_create(&exoclaw_gateway::metrics::ConnLimitLabels {
                        limit: limit.as_str().to_owned(),
                    })
                    .inc();
                tracing::warn!(
                    event = "security.connection_refused",
                    limit = limit.as_str(),
                    peer = %peer.ip(),
                    "connection refused: the limit is filled by authenticated connections"
                );
                connections.spawn(refuse(stream));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        connections.spawn(serve_connection(
            stream,
            peer,
            slot,
            app.clone(),
            config.clone(),
            metrics.clone(),
        ));
    }
    drop(listener);
    table.shut_down();
    while let Some(done) = connections.join_next().await {
        if let Err(e) = done
            && e.is_panic()
        {
            tracing::error!(error = %e, "a connection task panicked");
        }
    }
}

/// Answer `503` on a connection that gets no slot, then close it: the
/// write side first, reading what the client still sends for at most a
/// second, so its request does not turn the close into a reset that would
/// discard the answer.
/// The whole answer of a refused connection: written before any HTTP is
/// read, so by hand; its body is an `ApiError` of `server.busy` (tested).
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
    content-type: application/json\r\nretry-after: 1\r\nconnection: close\r\n\
    content-length: 80\r\n\r\n\
    {\"error\":{\"code\":\"server.busy\",\"message\":\"too many connections; retry shortly\"}}";

async fn refuse(mut stream: TcpStream) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        if stream.write_all(BUSY).await.is_ok() && stream.shutdown().await.is_ok() {
            let mut sink = [0u8; 1024];
            while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
        }
    })
    .await;
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    slot: Arc<ConnSlot>,
    app: Router,
    config: ConnConfig,
    metrics: Arc<exoclaw_gateway::metrics::Metrics>,
) {
    let stream = super::stall::StallGuard::new(stream, config.write_stall_timeout, metrics);
    let holder = slot.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req.extensions_mut().insert(holder.clone());
        app.clone().oneshot(req.map(axum::body::Body::new))
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout)
        .max_header_size(config.max_header_bytes)
        .keep_alive(true);
    let conn = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        }
        closing = slot.closing() => match closing {
            // Dropping the connection closes it.
            Closing::Displaced => {}
            Closing::Shutdown => {
                conn.as_mut().graceful_shutdown();
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::error::{ApiError, ErrorCode};

    #[test]
    fn the_busy_answer_is_the_error_body_of_server_busy() {
        let text = std::str::from_utf8(super::BUSY).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let e = ApiError::new(ErrorCode::ServerBusy, "too many connections; retry shortly");
        assert_eq!(body, serde_json::to_string(&e.body()).unwrap());
        assert!(head.starts_with(&format!("HTTP/1.1 {}", e.status().as_u16())));
        assert!(head.contains(&format!("content-length: {}", body.len())));
    }
}
