//! The egress forward proxy on 127.0.0.1:0 (and a unix socket): refused
//! CONNECTs answer 403 and leave canaries untouched; allowed ones tunnel;
//! plain HTTP is forwarded in origin-form; connections are bounded and
//! idle tunnels closed; every attempt is logged.

use crate::support::{Logs, PUBLIC};
use exoclaw_egress::testing::{Canary, FakeHttp, FakeResponse, StaticResolver};
use exoclaw_egress::{DomainRules, EgressPolicy, EgressProxy, Origin, ProxyConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

struct Proxy {
    addr: SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Proxy {
    async fn start(config: ProxyConfig) -> Self {
        let (proxy, addr) = EgressProxy::bind("127.0.0.1:0".parse().unwrap(), config)
            .await
            .unwrap();
        let stop = CancellationToken::new();
        #[expect(
            clippy::disallowed_methods,
            reason = "a test's own concurrent load, awaited by the test"
        )]
        let task = tokio::spawn(proxy.run(stop.clone()));
        Self { addr, stop, task }
    }

    async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("the proxy stops on shutdown")
            .unwrap()
            .unwrap();
    }
}

fn config(policy: EgressPolicy, dns: &Arc<StaticResolver>) -> ProxyConfig {
    ProxyConfig::new(policy)
        .resolver(Arc::clone(dns) as _)
        .connect_timeout(Duration::from_secs(2))
}

/// Send `request`, read to EOF (bounded).
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, request: &str) -> String {
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

async fn connect(proxy: &Proxy, authority: &str) -> String {
    let s = TcpStream::connect(proxy.addr).await.unwrap();
    exchange(
        s,
        &format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n"),
    )
    .await
}

/// Read until the end of a response head.
async fn read_head<S: AsyncRead + Unpin>(s: &mut S) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut byte))
            .await
            .expect("a response head in time")
            .unwrap();
        assert!(
            n > 0,
            "closed before the head ended: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test]
async fn refused_connects_answer_403_and_never_dial() {
    let canary = Canary::start().await;
    let port = canary.port();
    let dns = Arc::new(
        StaticResolver::new()
            .with("rebind.test", &["127.0.0.1"])
            .with("mixed.test", &[PUBLIC, "127.0.0.1"])
            .with("public.test", &[PUBLIC])
            .with("ads.example.com", &[PUBLIC]),
    );
    let policy = EgressPolicy::new()
        .with_rules(DomainRules::new::<&str>("egress", &[], &["*.example.com"]).unwrap());
    let proxy = Proxy::start(
        config(policy, &dns)
            .allowed_ports(vec![443, port])
            .dial_override("127.0.0.1".parse().unwrap(), canary.addr())
            .dial_override(PUBLIC.parse().unwrap(), canary.addr()),
    )
    .await;
    for (authority, rule) in [
        (format!("127.0.0.1:{port}"), "addr.loopback"),
        (format!("2130706433:{port}"), "addr.loopback"),
        (format!("[::ffff:127.0.0.1]:{port}"), "addr.loopback"),
        (format!("[::1]:{port}"), "addr.loopback"),
        (format!("localhost:{port}"), "host.localhost"),
        ("169.254.169.254:443".to_owned(), "addr.metadata"),
        ("metadata.google.internal:443".to_owned(), "host.metadata"),
        ("rebind.test:443".to_owned(), "addr.loopback"),
        ("mixed.test:443".to_owned(), "dns.mixed"),
        ("public.test:8443".to_owned(), "port.not_allowed"),
        ("public.test:22".to_owned(), "port.not_allowed"),
        ("ads.example.com:443".to_owned(), "domain.denied"),
        (format!("user@public.test:{port}"), "url.userinfo"),
    ] {
        let answer = connect(&proxy, &authority).await;
        assert!(answer.starts_with("HTTP/1.1 403"), "{authority}: {answer}");
        assert!(
            answer.contains(&format!(" {rule}\r\n")),
            "{authority}: {answer}"
        );
        assert!(answer.contains("security."), "{authority}: {answer}");
    }
    assert_eq!(
        dns.lookups("public.test"),
        0,
        "the port is checked before DNS"
    );
    assert_eq!(canary.connections(), 0);
    proxy.stop().await;
}

#[tokio::test]
async fn allowed_connects_tunnel_to_the_vetted_address() {
    let server =
        FakeHttp::start(|r| FakeResponse::ok("text/plain", format!("tunnel {}", r.target))).await;
    let dns = Arc::new(StaticResolver::new().with("public.test", &[PUBLIC]));
    let policy = EgressPolicy::new().with_origin(Origin::parse(&server.origin()).unwrap());
    let proxy =
        Proxy::start(config(policy, &dns).dial_override(PUBLIC.parse().unwrap(), server.addr()))
            .await;
    // The explicit loopback origin, then a public name on 443.
    for authority in [server.addr().to_string(), "public.test:443".to_owned()] {
        let mut s = TcpStream::connect(proxy.addr).await.unwrap();
        s.write_all(format!("CONNECT {authority} HTTP/1.1\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let head = read_head(&mut s).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{authority}: {head}");
        let answer = exchange(s, "GET /inside HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(answer.ends_with("tunnel /inside"), "{authority}: {answer}");
    }
    assert_eq!(server.connections(), 2);
    proxy.stop().await;
}

#[tokio::test]
async fn plain_http_is_forwarded_in_origin_form() {
    let server = FakeHttp::start(|_| FakeResponse::ok("text/plain", "plain")).await;
    let canary = Canary::start().await;
    let dns = Arc::new(StaticResolver::new());
    let policy = EgressPolicy::new().with_origin(Origin::parse(&server.origin()).unwrap());
    let proxy = Proxy::start(config(policy, &dns)).await;
    let s = TcpStream::connect(proxy.addr).await.unwrap();
    let request = format!(
        "POST {}/p?q=1 HTTP/1.1\r\nHost: spoofed\r\nProxy-Authorization: Basic eA==\r\nProxy-Connection: keep-alive\r\nContent-Length: 3\r\nX-Keep: yes\r\n\r\nabc",
        server.origin()
    );
    let answer = exchange(s, &request).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("plain"), "{answer}");
    let seen = &server.requests()[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.target, "/p?q=1");
    assert_eq!(
        seen.header("host"),
        Some(server.addr().to_string().as_str())
    );
    assert_eq!(seen.header("proxy-authorization"), None);
    assert_eq!(seen.header("proxy-connection"), None);
    assert_eq!(seen.header("x-keep"), Some("yes"));
    assert_eq!(seen.body, b"abc");
    // Refused plain HTTP, https in absolute form, and origin-form requests.
    let s = TcpStream::connect(proxy.addr).await.unwrap();
    let refused = exchange(
        s,
        &format!("GET http://127.0.0.1:{}/ HTTP/1.1\r\n\r\n", canary.port()),
    )
    .await;
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
    let s = TcpStream::connect(proxy.addr).await.unwrap();
    let tls = exchange(
        s,
        &format!("GET https://{}/ HTTP/1.1\r\n\r\n", server.addr()),
    )
    .await;
    assert!(tls.starts_with("HTTP/1.1 400"), "{tls}");
    let s = TcpStream::connect(proxy.addr).await.unwrap();
    let origin_form = exchange(s, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(origin_form.starts_with("HTTP/1.1 403"), "{origin_form}");
    let s = TcpStream::connect(proxy.addr).await.unwrap();
    let garbage = exchange(s, "NONSENSE\r\n\r\n").await;
    assert!(garbage.starts_with("HTTP/1.1 400"), "{garbage}");
    assert_eq!(canary.connections(), 0);
    proxy.stop().await;
}

/// Open a tunnel to `to` and wait for the proxy's 200.
async fn tunnel(proxy: &Proxy, to: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(format!("CONNECT {to} HTTP/1.1\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let head = read_head(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    s
}

#[tokio::test]
async fn connections_are_bounded() {
    let server = FakeHttp::start(|_| FakeResponse::ok("text/plain", "x")).await;
    let dns = Arc::new(StaticResolver::new());
    let policy = EgressPolicy::new().with_origin(Origin::parse(&server.origin()).unwrap());
    let proxy = Proxy::start(config(policy, &dns).max_connections(1)).await;
    // An open tunnel holds the only slot.
    let held = tunnel(&proxy, server.addr()).await;
    let busy = connect(&proxy, &server.addr().to_string()).await;
    assert!(busy.starts_with("HTTP/1.1 503"), "{busy}");
    // Closing it frees the slot (bounded wait: the proxy sees the EOF).
    drop(held);
    let mut again = None;
    for _ in 0..100 {
        let answer = connect(&proxy, "127.0.0.1:1").await;
        if !answer.starts_with("HTTP/1.1 503") {
            again = Some(answer);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(again.is_some_and(|a| a.starts_with("HTTP/1.1 403")));
    proxy.stop().await;
}

#[tokio::test]
async fn idle_tunnels_are_closed() {
    let server = FakeHttp::start(|_| FakeResponse::ok("text/plain", "x")).await;
    let dns = Arc::new(StaticResolver::new());
    let policy = EgressPolicy::new().with_origin(Origin::parse(&server.origin()).unwrap());
    let proxy = Proxy::start(config(policy, &dns).idle_timeout(Duration::from_millis(300))).await;
    let mut held = tunnel(&proxy, server.addr()).await;
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), held.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the idle tunnel was closed");
    proxy.stop().await;
}

#[tokio::test]
async fn attempts_are_logged() {
    let logs = Logs::capture();
    let server = FakeHttp::start(|_| FakeResponse::ok("text/plain", "x")).await;
    let dns = Arc::new(StaticResolver::new());
    let policy = EgressPolicy::new().with_origin(Origin::parse(&server.origin()).unwrap());
    let proxy = Proxy::start(config(policy, &dns)).await;
    let _ = connect(&proxy, "10.0.0.1:443").await;
    let s = TcpStream::connect(proxy.addr).await.unwrap();
    let _ = exchange(s, &format!("GET {}/ HTTP/1.1\r\n\r\n", server.origin())).await;
    proxy.stop().await;
    let refused = logs.lines_with("dest=10.0.0.1:443");
    let refused = refused.first().expect("the refusal is logged");
    assert!(
        refused.contains("WARN") && refused.contains("exoclaw::egress"),
        "{refused}"
    );
    assert!(
        refused.contains("event=\"security.ssrf_blocked\""),
        "{refused}"
    );
    assert!(refused.contains("rule=\"addr.private\""), "{refused}");
    assert!(refused.contains("client=127.0.0.1:"), "{refused}");
    let allowed = logs.lines_with(&format!("dest={}", server.addr()));
    assert!(
        allowed.iter().any(|l| l.contains("egress.allowed")),
        "{allowed:?}"
    );
}

#[tokio::test]
async fn a_unix_socket_proxy_serves_and_cleans_up() {
    let server = FakeHttp::start(|_| FakeResponse::ok("text/plain", "via unix")).await;
    let dns = Arc::new(StaticResolver::new());
    let policy = EgressPolicy::new().with_origin(Origin::parse(&server.origin()).unwrap());
    let path = std::env::temp_dir().join(format!("exoclaw-egress-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let proxy = EgressProxy::bind_unix(&path, config(policy, &dns)).unwrap();
    let stop = CancellationToken::new();
    #[expect(
        clippy::disallowed_methods,
        reason = "a test's own concurrent load, awaited by the test"
    )]
    let task = tokio::spawn(proxy.run(stop.clone()));
    let s = tokio::net::UnixStream::connect(&path).await.unwrap();
    let answer = exchange(s, &format!("GET {}/ HTTP/1.1\r\n\r\n", server.origin())).await;
    assert!(answer.ends_with("via unix"), "{answer}");
    let s = tokio::net::UnixStream::connect(&path).await.unwrap();
    let refused = exchange(s, "CONNECT 127.0.0.1:22 HTTP/1.1\r\n\r\n").await;
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(!path.exists(), "the socket file is removed on shutdown");
}
