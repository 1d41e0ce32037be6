//! The egress forward proxy: an HTTP proxy on loopback (or a unix socket)
//! for programs that cannot use the [`crate::EgressClient`], such as
//! sandboxed commands with their network enabled. It speaks `CONNECT
//! host:port` (a TLS tunnel) and absolute-URI plain HTTP
//! (`GET http://host/path HTTP/1.1`), and enforces the same policy as the
//! client: URL syntax, address class of literals and of every resolved
//! answer (resolved once, the connection goes to a vetted address), explicit
//! origins, domain lists, and ports (80 and 443 unless configured). Every
//! attempt is logged (target `exoclaw::egress`; refusals at warn as
//! `security.ssrf_blocked` / `security.egress_denied`) and a refusal answers
//! `403` with the code, rule and reason. Connections are bounded (a full
//! proxy answers `503`) and idle tunnels are closed.

use crate::classify::{self, Host, Target};
use crate::error::Refusal;
use crate::policy::{Admission, EgressPolicy};
use crate::resolve::{LookupError, Pinner, Resolver, SystemResolver};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream, UnixListener};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Largest request head (request line and headers) accepted.
const MAX_HEAD: usize = 16 * 1024;

/// Told of every refused request (after it is logged), e.g. to audit it.
/// Runs on the refused connection's task, before the `403` is sent.
#[async_trait::async_trait]
pub trait RefusalSink: Send + Sync {
    /// `client` is the peer (`unix` for the socket), `dest` the target
    /// `host:port` as requested.
    async fn refused(&self, client: &str, dest: &str, refusal: &Refusal);
}

/// How the proxy decides and how long it waits.
pub struct ProxyConfig {
    on_refusal: Option<Arc<dyn RefusalSink>>,
    policy: EgressPolicy,
    resolver: Arc<dyn Resolver>,
    allowed_ports: Vec<u16>,
    max_connections: usize,
    idle_timeout: Duration,
    connect_timeout: Duration,
    head_timeout: Duration,
    dns_timeout: Duration,
    #[cfg(feature = "testing")]
    dial: std::collections::HashMap<std::net::IpAddr, SocketAddr>,
}

impl ProxyConfig {
    /// Ports 80 and 443, 128 connections, 60 s idle, 10 s connect, head and
    /// DNS timeouts, the system resolver.
    pub fn new(policy: EgressPolicy) -> Self {
        Self {
            on_refusal: None,
            policy,
            resolver: Arc::new(SystemResolver),
            allowed_ports: vec![80, 443],
            max_connections: 128,
            idle_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            head_timeout: Duration::from_secs(10),
            dns_timeout: Duration::from_secs(10),
            #[cfg(feature = "testing")]
            dial: std::collections::HashMap::new(),
        }
    }

    /// Report every refusal to `sink` as well as to the log.
    #[must_use]
    pub fn on_refusal(mut self, sink: Arc<dyn RefusalSink>) -> Self {
        self.on_refusal = Some(sink);
        self
    }

    #[must_use]
    pub fn resolver(mut self, resolver: Arc<dyn Resolver>) -> Self {
        self.resolver = resolver;
        self
    }

    /// Destination ports allowed for public targets (explicit origins name
    /// their own port).
    #[must_use]
    pub fn allowed_ports(mut self, ports: Vec<u16>) -> Self {
        self.allowed_ports = ports;
        self
    }

    #[must_use]
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// A tunnel with no traffic either way for this long is closed.
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Time a client has to send its request head.
    #[must_use]
    pub fn head_timeout(mut self, timeout: Duration) -> Self {
        self.head_timeout = timeout;
        self
    }

    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Tests only: see [`crate::EgressClientBuilder::dial_override`].
    #[cfg(feature = "testing")]
    #[must_use]
    pub fn dial_override(mut self, ip: std::net::IpAddr, to: SocketAddr) -> Self {
        self.dial.insert(ip, to);
        self
    }
}

struct Shared {
    on_refusal: Option<Arc<dyn RefusalSink>>,
    policy: EgressPolicy,
    pinner: Pinner,
    allowed_ports: Vec<u16>,
    permits: Arc<Semaphore>,
    idle_timeout: Duration,
    connect_timeout: Duration,
    head_timeout: Duration,
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

/// The egress forward proxy. Bind, then [`EgressProxy::run`] it as a
/// supervised task.
pub struct EgressProxy {
    listener: Listener,
    shared: Arc<Shared>,
}

impl EgressProxy {
    fn with(listener: Listener, config: ProxyConfig) -> Self {
        let pinner = Pinner::new(
            config.resolver,
            config.policy.explicit_names(),
            config.dns_timeout,
        );
        #[cfg(feature = "testing")]
        let pinner = pinner.with_dial(config.dial);
        Self {
            listener,
            shared: Arc::new(Shared {
                on_refusal: config.on_refusal,
                policy: config.policy,
                pinner,
                allowed_ports: config.allowed_ports,
                permits: Arc::new(Semaphore::new(config.max_connections)),
                idle_timeout: config.idle_timeout,
                connect_timeout: config.connect_timeout,
                head_timeout: config.head_timeout,
            }),
        }
    }

    /// Listen on a TCP address (`127.0.0.1:0` in tests); returns the bound
    /// address.
    pub async fn bind(
        addr: SocketAddr,
        config: ProxyConfig,
    ) -> std::io::Result<(Self, SocketAddr)> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        Ok((Self::with(Listener::Tcp(listener), config), local))
    }

    /// Listen on a unix socket (for bind-mounting into a sandbox). The path
    /// must not exist; it is removed when [`EgressProxy::run`] returns.
    pub fn bind_unix(path: &Path, config: ProxyConfig) -> std::io::Result<Self> {
        let listener = UnixListener::bind(path)?;
        Ok(Self::with(
            Listener::Unix(listener, path.to_owned()),
            config,
        ))
    }

    /// Serve until `shutdown` is cancelled, then close every connection and
    /// wait for them. Connection tasks are owned here: a panic in one is
    /// logged and does not stop the proxy.
    pub async fn run(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let mut tasks = JoinSet::new();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                Some(done) = tasks.join_next(), if !tasks.is_empty() => report(done),
                accepted = accept(&self.listener) => match accepted {
                    Ok(conn) => {
                        let shared = Arc::clone(&self.shared);
                        let token = shutdown.child_token();
                        match conn {
                            Conn::Tcp(stream, peer) => {
                                tasks.spawn(serve(stream, peer.to_string(), shared, token));
                            }
                            Conn::Unix(stream) => {
                                tasks.spawn(serve(stream, "unix".to_owned(), shared, token));
                            }
                        }
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: back off.
                        tracing::warn!(target: "exoclaw::egress", error = %e, "egress proxy accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
        while let Some(done) = tasks.join_next().await {
            report(done);
        }
        if let Listener::Unix(_, path) = &self.listener {
            let _ = std::fs::remove_file(path);
        }
        Ok(())
    }
}

fn report(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done
        && e.is_panic()
    {
        tracing::error!(target: "exoclaw::egress", "egress proxy connection panicked");
    }
}

enum Conn {
    Tcp(TcpStream, SocketAddr),
    Unix(tokio::net::UnixStream),
}

async fn accept(listener: &Listener) -> std::io::Result<Conn> {
    match listener {
        Listener::Tcp(l) => l.accept().await.map(|(s, a)| Conn::Tcp(s, a)),
        Listener::Unix(l, _) => l.accept().await.map(|(s, _)| Conn::Unix(s)),
    }
}

/// One client connection: read the head, decide, tunnel or forward.
async fn serve<S>(mut client: S, peer: String, shared: Arc<Shared>, token: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Ok(_permit) = Arc::clone(&shared.permits).try_acquire_owned() else {
        tracing::warn!(target: "exoclaw::egress", client = %peer, "egress proxy full: connection refused");
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            respond(
                &mut client,
                "503 Service Unavailable",
                None,
                "the egress proxy is busy\n",
            ),
        )
        .await;
        return;
    };
    let (head, rest) = match tokio::time::timeout(shared.head_timeout, read_head(&mut client)).await
    {
        Ok(Ok(Some(h))) => h,
        Ok(Ok(None)) | Err(_) => return,
        Ok(Err(msg)) => {
            let _ = respond(&mut client, "400 Bad Request", None, msg).await;
            return;
        }
    };
    let request = match Request::parse(&head) {
        Ok(r) => r,
        Err(msg) => {
            let _ = respond(&mut client, "400 Bad Request", None, msg).await;
            return;
        }
    };
    let tunnel = request.method.eq_ignore_ascii_case("CONNECT");
    let decided = decide(&shared, &request, tunnel).await;
    let (target, addrs) = match decided {
        Ok(ok) => ok,
        Err(Failure::Refused(dest, r)) => {
            crate::log_refusal(&peer, &dest, &r);
            if let Some(sink) = &shared.on_refusal {
                sink.refused(&peer, &dest, &r).await;
            }
            let body = format!("{r}\n");
            let _ = respond(&mut client, "403 Forbidden", Some(&r), &body).await;
            return;
        }
        Err(Failure::Bad(msg)) => {
            let _ = respond(&mut client, "400 Bad Request", None, &msg).await;
            return;
        }
        Err(Failure::Unavailable(dest, msg)) => {
            tracing::info!(target: "exoclaw::egress", event = "egress.unavailable", client = %peer, dest = %dest, reason = %msg, "egress proxy cannot reach the target");
            let _ = respond(&mut client, "502 Bad Gateway", None, &format!("{msg}\n")).await;
            return;
        }
    };
    let dest = format!("{}:{}", target.host, target.port);
    let Some(mut upstream) = connect_any(&addrs, shared.connect_timeout).await else {
        tracing::info!(target: "exoclaw::egress", event = "egress.unavailable", client = %peer, dest = %dest, "egress proxy cannot connect");
        let _ = respond(
            &mut client,
            "502 Bad Gateway",
            None,
            "cannot connect to the target\n",
        )
        .await;
        return;
    };
    tracing::info!(target: "exoclaw::egress", event = "egress.allowed", client = %peer, dest = %dest, method = %request.method, "egress proxy connection");
    if tunnel {
        if client
            .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            .await
            .is_err()
        {
            return;
        }
        if !rest.is_empty() && upstream.write_all(&rest).await.is_err() {
            return;
        }
    } else {
        let head = request.origin_form(&target);
        if upstream.write_all(head.as_bytes()).await.is_err()
            || upstream.write_all(&rest).await.is_err()
        {
            return;
        }
    }
    pump(client, upstream, shared.idle_timeout, &token).await;
}

enum Failure {
    Refused(String, Refusal),
    Bad(String),
    Unavailable(String, String),
}

/// The policy decision for one request: the target and the vetted
/// addresses to dial.
async fn decide(
    shared: &Shared,
    request: &Request,
    tunnel: bool,
) -> Result<(Target, Vec<SocketAddr>), Failure> {
    let (target, scheme) = if tunnel {
        let authority = &request.target;
        let has_port = authority.rsplit_once(':').is_some_and(|(h, p)| {
            !h.is_empty() && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())
        });
        if !has_port || authority.contains(['/', '?', '#', '\\']) {
            return Err(Failure::Bad("CONNECT needs host:port\n".to_owned()));
        }
        let t = classify::parse(&format!("http://{authority}/"))
            .map_err(|r| Failure::Refused(authority.clone(), r))?;
        (t, None)
    } else {
        let t = classify::parse(&request.target)
            .map_err(|r| Failure::Refused(host_of(&request.target), r))?;
        if t.url.scheme() != "http" {
            return Err(Failure::Bad(
                "only http:// URLs are forwarded; use CONNECT for https\n".to_owned(),
            ));
        }
        (t, Some("http"))
    };
    let dest = format!("{}:{}", target.host, target.port);
    let admission = shared
        .policy
        .check_host(scheme, &target.host, target.port)
        .map_err(|r| Failure::Refused(dest.clone(), r))?;
    if admission == Admission::Public && !shared.allowed_ports.contains(&target.port) {
        return Err(Failure::Refused(
            dest.clone(),
            Refusal::denied(
                "port.not_allowed",
                format!("port {} is not an allowed egress port", target.port),
            ),
        ));
    }
    let ips = match &target.host {
        Host::Ip(ip) => vec![*ip],
        Host::Name(name) => shared.pinner.vetted(name).await.map_err(|e| match e {
            LookupError::Refused(r) => Failure::Refused(dest.clone(), r),
            LookupError::Failed(msg) => Failure::Unavailable(dest.clone(), msg),
        })?,
    };
    let addrs = ips
        .into_iter()
        .map(|ip| shared.pinner.dial(ip, target.port))
        .collect();
    Ok((target, addrs))
}

/// The host of an absolute URL for logs when it does not parse.
fn host_of(raw: &str) -> String {
    let rest = raw.split_once("://").map_or(raw, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    host.rsplit('@')
        .next()
        .unwrap_or("")
        .chars()
        .take(100)
        .collect()
}

async fn connect_any(addrs: &[SocketAddr], timeout: Duration) -> Option<TcpStream> {
    for addr in addrs {
        if let Ok(Ok(s)) = tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            return Some(s);
        }
    }
    None
}

/// Read until the blank line ending the head. `Ok(None)`: the client left.
async fn read_head<S: AsyncRead + Unpin>(
    client: &mut S,
) -> Result<Option<(Vec<u8>, Vec<u8>)>, &'static str> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = client.read(&mut chunk).await.map_err(|_| "read failed\n")?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok(Some((buf, rest)));
        }
        if buf.len() > MAX_HEAD {
            return Err("the request head is too large\n");
        }
    }
}

/// A proxy request head.
struct Request {
    method: String,
    target: String,
    /// Header lines other than hop-by-hop, proxy and `Host` headers.
    headers: Vec<String>,
}

impl Request {
    fn parse(head: &[u8]) -> Result<Self, &'static str> {
        let text = std::str::from_utf8(head).map_err(|_| "the request head is not UTF-8\n")?;
        let mut lines = text.split("\r\n");
        let line = lines.next().unwrap_or("");
        let mut parts = line.split(' ');
        let (Some(method), Some(target), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("malformed request line\n");
        };
        if !version.starts_with("HTTP/1.") || method.is_empty() || target.is_empty() {
            return Err("malformed request line\n");
        }
        let mut headers = Vec::new();
        for h in lines.filter(|l| !l.is_empty()) {
            let Some((name, _)) = h.split_once(':') else {
                return Err("malformed header line\n");
            };
            let name = name.trim().to_ascii_lowercase();
            let hop = matches!(
                name.as_str(),
                "host" | "connection" | "keep-alive" | "te" | "upgrade" | "trailer"
            ) || name.starts_with("proxy-");
            if !hop {
                headers.push(h.to_owned());
            }
        }
        Ok(Self {
            method: method.to_owned(),
            target: target.to_owned(),
            headers,
        })
    }

    /// The head to send upstream: origin-form target, `Host` from the
    /// vetted URL, one request per connection.
    fn origin_form(&self, target: &Target) -> String {
        let mut path = target.url.path().to_owned();
        if let Some(q) = target.url.query() {
            path.push('?');
            path.push_str(q);
        }
        let host = match target.url.port() {
            Some(p) => format!("{}:{p}", target.host),
            None => target.host.to_string(),
        };
        let mut head = format!("{} {path} HTTP/1.1\r\nHost: {host}\r\n", self.method);
        for h in &self.headers {
            head.push_str(h);
            head.push_str("\r\n");
        }
        head.push_str("Connection: close\r\n\r\n");
        head
    }
}

async fn respond<S: AsyncWrite + Unpin>(
    client: &mut S,
    status: &str,
    refusal: Option<&Refusal>,
    body: &str,
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(r) = refusal {
        head.push_str(&format!("X-Exoclaw-Refusal: {} {}\r\n", r.code(), r.rule));
    }
    head.push_str("\r\n");
    client.write_all(head.as_bytes()).await?;
    client.write_all(body.as_bytes()).await?;
    client.shutdown().await
}

/// Copy both ways until both sides finish, the tunnel is idle for
/// `idle`, or shutdown.
async fn pump<A, B>(a: A, b: B, idle: Duration, token: &CancellationToken)
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (mut ar, mut aw) = tokio::io::split(a);
    let (mut br, mut bw) = tokio::io::split(b);
    let mut abuf = vec![0u8; 16 * 1024];
    let mut bbuf = vec![0u8; 16 * 1024];
    let (mut a_open, mut b_open) = (true, true);
    let sleep = tokio::time::sleep(idle);
    tokio::pin!(sleep);
    while a_open || b_open {
        tokio::select! {
            r = ar.read(&mut abuf), if a_open => match r {
                Ok(0) | Err(_) => {
                    a_open = false;
                    let _ = bw.shutdown().await;
                }
                Ok(n) => {
                    if bw.write_all(&abuf[..n]).await.is_err() {
                        return;
                    }
                    sleep.as_mut().reset(tokio::time::Instant::now() + idle);
                }
            },
            r = br.read(&mut bbuf), if b_open => match r {
                Ok(0) | Err(_) => {
                    b_open = false;
                    let _ = aw.shutdown().await;
                }
                Ok(n) => {
                    if aw.write_all(&bbuf[..n]).await.is_err() {
                        return;
                    }
                    sleep.as_mut().reset(tokio::time::Instant::now() + idle);
                }
            },
            () = &mut sleep => return,
            () = token.cancelled() => return,
        }
    }
}
