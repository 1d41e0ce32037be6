//! The keep-alive pool's bound: after a burst of concurrent calls a client
//! keeps at most `pool_max_idle_per_host` idle connections; the rest are
//! closed as their calls end, and the kept ones are reused by the next
//! burst. Against a loopback server that keeps connections alive and
//! answers slowly enough that every call of a burst has its own.

use crate::support::{PUBLIC, builder};
use exoclaw_egress::header::HeaderMap;
use exoclaw_egress::testing::StaticResolver;
use exoclaw_egress::{EgressClient, FetchLimits};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

const BURST: usize = 6;

/// A keep-alive HTTP/1.1 server answering every request after 200 ms;
/// counts the connections it accepts and those still open.
struct SlowKeepAlive {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
    _tasks: JoinSet<()>,
}

impl SlowKeepAlive {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let mut tasks = JoinSet::new();
        let (a, o) = (accepted.clone(), open.clone());
        tasks.spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((mut sock, _)) = listener.accept().await {
                a.fetch_add(1, Ordering::SeqCst);
                o.fetch_add(1, Ordering::SeqCst);
                let o = o.clone();
                conns.spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    loop {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            buf.drain(..end + 4);
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                            if sock.write_all(reply).await.is_err() {
                                break;
                            }
                        }
                    }
                    o.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Self {
            addr,
            accepted,
            open,
            _tasks: tasks,
        }
    }

    /// Waits (bounded) until the open count settles at `want`; returns it.
    async fn open_settled(&self, want: usize) -> usize {
        for _ in 0..100 {
            if self.open.load(Ordering::SeqCst) == want {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.open.load(Ordering::SeqCst)
    }
}

fn client(server: &SlowKeepAlive, max_idle: usize) -> EgressClient {
    let dns = Arc::new(StaticResolver::new().with("slow.test", &[PUBLIC]));
    builder(&dns)
        .dial_override(PUBLIC.parse().unwrap(), server.addr)
        .pool_max_idle_per_host(max_idle)
        .build()
        .unwrap()
}

/// `BURST` concurrent calls, all answered.
async fn burst(client: &EgressClient) {
    let mut calls = JoinSet::new();
    for _ in 0..BURST {
        let c = client.clone();
        calls.spawn(async move {
            let limits = FetchLimits {
                timeout: Duration::from_secs(5),
                ..FetchLimits::default()
            };
            c.fetch("http://slow.test/", HeaderMap::new(), &limits)
                .await
                .map(|f| f.status.as_u16())
        });
    }
    while let Some(r) = calls.join_next().await {
        assert_eq!(r.unwrap().unwrap(), 200);
    }
}

#[tokio::test]
async fn a_burst_keeps_at_most_the_idle_bound_and_the_next_burst_reuses_them() {
    let server = SlowKeepAlive::start().await;
    let c = client(&server, 2);
    burst(&c).await;
    assert_eq!(server.accepted.load(Ordering::SeqCst), BURST);
    // The calls past the bound closed their connections.
    assert_eq!(server.open_settled(2).await, 2);
    burst(&c).await;
    // Two reused, four new.
    assert_eq!(server.accepted.load(Ordering::SeqCst), BURST + BURST - 2);
}

#[tokio::test]
async fn under_the_bound_every_connection_is_kept_and_reused() {
    let server = SlowKeepAlive::start().await;
    let c = client(&server, BURST);
    burst(&c).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.open_settled(BURST).await, BURST);
    burst(&c).await;
    assert_eq!(server.accepted.load(Ordering::SeqCst), BURST);
}
