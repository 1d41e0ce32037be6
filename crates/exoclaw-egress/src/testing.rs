//! Test seams (feature `testing`): a scripted [`StaticResolver`] for
//! rebinding and mixed answers, [`Canary`] listeners that prove no
//! connection was made, and [`FakeHttp`], a tiny HTTP/1.1 server on
//! `127.0.0.1:0` that records requests and answers from a handler. Every
//! server task is aborted when its handle drops.

use crate::resolve::Resolver;
use async_trait::async_trait;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Answers from a script: each name has a queue of answers; the last one
/// repeats. Unknown names fail like NXDOMAIN. Counts lookups per name.
#[derive(Default)]
pub struct StaticResolver {
    answers: Mutex<HashMap<String, VecDeque<Vec<IpAddr>>>>,
    lookups: Mutex<HashMap<String, usize>>,
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter()
        .map(|s| s.parse().expect("test addresses are valid"))
        .collect()
}

impl StaticResolver {
    pub fn new() -> Self {
        Self::default()
    }

    /// `name` always answers `addrs`.
    #[must_use]
    pub fn with(self, name: &str, addrs: &[&str]) -> Self {
        self.script(name, &[addrs])
    }

    /// `name` answers each entry in turn, then keeps answering the last.
    #[must_use]
    pub fn script(self, name: &str, answers: &[&[&str]]) -> Self {
        self.answers
            .lock()
            .expect("not poisoned")
            .insert(name.to_owned(), answers.iter().map(|a| ips(a)).collect());
        self
    }

    /// How often `name` was looked up.
    pub fn lookups(&self, name: &str) -> usize {
        self.lookups
            .lock()
            .expect("not poisoned")
            .get(name)
            .copied()
            .unwrap_or(0)
    }
}

#[async_trait]
impl Resolver for StaticResolver {
    async fn lookup(&self, name: &str) -> std::io::Result<Vec<IpAddr>> {
        *self
            .lookups
            .lock()
            .expect("not poisoned")
            .entry(name.to_owned())
            .or_default() += 1;
        let mut answers = self.answers.lock().expect("not poisoned");
        let Some(queue) = answers.get_mut(name) else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such host",
            ));
        };
        let answer = if queue.len() > 1 {
            queue.pop_front().unwrap_or_default()
        } else {
            queue.front().cloned().unwrap_or_default()
        };
        Ok(answer)
    }
}

/// A listener that only counts connections: the proof that a refused
/// target was never contacted.
pub struct Canary {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Canary {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a canary");
        let addr = listener.local_addr().expect("canary address");
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        #[expect(
            clippy::disallowed_methods,
            reason = "a test server: its owner holds the handle and aborts it on drop"
        )]
        let task = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                open.push(stream);
            }
        });
        Self { addr, hits, task }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A request as [`FakeHttp`] saw it.
#[derive(Clone, Debug)]
pub struct FakeRequest {
    pub method: String,
    /// The request target as sent (origin-form `/path?q`).
    pub target: String,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl FakeRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What [`FakeHttp`] answers.
#[derive(Clone, Debug)]
pub struct FakeResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Wait this long before answering.
    pub delay: Option<Duration>,
    /// Send `Content-Length` (otherwise the body ends at connection close).
    pub content_length: bool,
}

impl FakeResponse {
    pub fn ok(content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status: 200,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
            delay: None,
            content_length: true,
        }
    }

    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: None,
            content_length: true,
        }
    }

    pub fn redirect(status: u16, location: &str) -> Self {
        Self::status(status).header("Location", location)
    }

    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    #[must_use]
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    #[must_use]
    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    #[must_use]
    pub fn without_length(mut self) -> Self {
        self.content_length = false;
        self
    }
}

type Handler = dyn Fn(&FakeRequest) -> FakeResponse + Send + Sync;

/// A one-request-per-connection HTTP/1.1 server on `127.0.0.1:0`.
pub struct FakeHttp {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<FakeRequest>>>,
    hits: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl FakeHttp {
    pub async fn start(
        handler: impl Fn(&FakeRequest) -> FakeResponse + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a fake server");
        let addr = listener.local_addr().expect("fake server address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let hits = Arc::new(AtomicUsize::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        let (log, counter) = (Arc::clone(&requests), Arc::clone(&hits));
        #[expect(
            clippy::disallowed_methods,
            reason = "a test server: its owner holds the handle and aborts it on drop"
        )]
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                conns.spawn(answer(stream, Arc::clone(&handler), Arc::clone(&log)));
                while conns.try_join_next().is_some() {}
            }
        });
        Self {
            addr,
            requests,
            hits,
            task,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin())
    }

    pub fn requests(&self) -> Vec<FakeRequest> {
        self.requests.lock().expect("not poisoned").clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for FakeHttp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(mut stream: TcpStream, handler: Arc<Handler>, log: Arc<Mutex<Vec<FakeRequest>>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        if buf.len() > 64 * 1024 {
            return;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_owned();
    let target = first.next().unwrap_or("").to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    let request = FakeRequest {
        method,
        target,
        headers,
        body,
    };
    let response = handler(&request);
    log.lock().expect("not poisoned").push(request);
    if let Some(d) = response.delay {
        tokio::time::sleep(d).await;
    }
    let mut out = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", response.status);
    for (n, v) in &response.headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    if response.content_length {
        out.push_str(&format!("Content-Length: {}\r\n", response.body.len()));
    }
    out.push_str("\r\n");
    let _ = stream.write_all(out.as_bytes()).await;
    let _ = stream.write_all(&response.body).await;
    let _ = stream.shutdown().await;
}
