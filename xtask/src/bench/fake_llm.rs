//! A std-only fake OpenAI-compatible provider for the proxy benchmarks: `POST /chat/completions`
//! (also under `/v1`) answers at once with a short streaming answer in OpenAI's exact chunk
//! format, so what is measured around it is HTTP, JSON and the gateway, never a model.
//!
//! For the delegation benchmark, a request for one of the [`SCRIPTED`] models that carries no
//! tool result yet is answered with that model's tool call instead (a `delegate`, or a cheap
//! `list_files` for the baseline), so one gateway turn makes the calls it would make with a
//! real model. Announcements of async results are counted ([`FakeLlm::announcements`]).
//!
//! One thread per connection, HTTP/1.1 keep-alive, `Transfer-Encoding: chunked` SSE (what real
//! providers send). The request body is read by `Content-Length` (or chunked) and discarded.
//! Every read has a timeout, idle connections are closed after [`IDLE_CLOSE`] (longer than the
//! gateway's 90 s pool idle timeout, so the gateway, not the fake, retires them), and dropping
//! the [`FakeLlm`] stops the accept loop and, within a second, every connection thread.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::http::{dechunk, parse_head};
use crate::error::{Context, Result};

/// How often a connection thread wakes up to check for shutdown.
const POLL: Duration = Duration::from_secs(1);
/// An idle keep-alive connection is closed after this long.
const IDLE_CLOSE: Duration = Duration::from_secs(120);
/// A request must arrive completely within this long once it started.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_REQUEST_BODY: usize = 8 * 1024 * 1024;
/// The model name in every chunk.
const MODEL: &str = "gpt-4o-mini";
/// The answer, one content delta per piece.
const DELTAS: [&str; 3] = ["Hello", " from the", " fake provider."];

/// Models whose first call in a turn asks for a tool: the model, the tool, its arguments.
pub const SCRIPTED: &[(&str, &str, &str)] = &[
    (
        "bench-delegate-sync",
        "delegate",
        r#"{\"agent\":\"bench-helper\",\"task\":\"say hi\",\"mode\":\"sync\"}"#,
    ),
    (
        "bench-delegate-async",
        "delegate",
        r#"{\"agent\":\"bench-helper\",\"task\":\"say hi\",\"mode\":\"async\"}"#,
    ),
    ("bench-tool", "list_files", r#"{}"#),
];

/// What an announcement turn's input says (see the gateway's `delegation/announce.rs`).
/// A request whose body holds this is answered slowly: the response is written in
/// [`SLOW_PIECES`] pieces [`SLOW_STEP`] apart (`cargo xtask bench ws`'s streams).
pub const SLOW_MARKER: &str = "stream-slowly";
const SLOW_PIECES: usize = 10;
const SLOW_STEP: Duration = Duration::from_millis(100);
const ANNOUNCED: &str = "This is an automatic message, not from the user.";

/// A running fake provider.
pub struct FakeLlm {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

struct Shared {
    stop: AtomicBool,
    /// Completions answered so far.
    completions: AtomicU64,
    /// Requests that carried an announcement of an async result.
    announcements: AtomicU64,
    /// `team_tasks` calls the team benchmark's models asked for, by action.
    team_creates: AtomicU64,
    team_lists: AtomicU64,
    team_claims: AtomicU64,
    team_completes: AtomicU64,
    /// The body of the last completion request answered (moved in, not
    /// copied), so a benchmark can send the provider exactly what the
    /// gateway sent it.
    last_body: std::sync::Mutex<Vec<u8>>,
    /// When the last completion request had fully arrived and when its answer was ready to
    /// write (the provider's own time, for the channel benchmark's turns one at a time).
    last_timing: std::sync::Mutex<Option<(Instant, Instant)>>,
}

impl FakeLlm {
    /// Listens on `127.0.0.1:0` and serves until dropped.
    pub fn start() -> Result<Self> {
        let listener =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding the fake provider")?;
        let addr = listener.local_addr().context("binding the fake provider")?;
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            completions: AtomicU64::new(0),
            announcements: AtomicU64::new(0),
            team_creates: AtomicU64::new(0),
            team_lists: AtomicU64::new(0),
            team_claims: AtomicU64::new(0),
            team_completes: AtomicU64::new(0),
            last_body: std::sync::Mutex::new(Vec::new()),
            last_timing: std::sync::Mutex::new(None),
        });
        let accept_shared = shared.clone();
        let accept = thread::Builder::new()
            .name("fake-llm-accept".to_owned())
            .spawn(move || accept_loop(&listener, &accept_shared))
            .context("starting the fake provider")?;
        Ok(Self {
            addr,
            shared,
            accept: Some(accept),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL a gateway is given (`/chat/completions` is appended to it).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The body of the last completion request it answered.
    pub fn last_request_body(&self) -> Vec<u8> {
        self.shared
            .last_body
            .lock()
            .map(|b| b.clone())
            .unwrap_or_default()
    }

    /// When the last request had fully arrived and when its whole answer was ready to write.
    pub fn last_timing(&self) -> Option<(Instant, Instant)> {
        self.shared.last_timing.lock().ok().and_then(|t| *t)
    }

    pub fn completions(&self) -> u64 {
        self.shared.completions.load(Ordering::Relaxed)
    }

    /// Requests that announced an async delegation's result to its caller.
    pub fn announcements(&self) -> u64 {
        self.shared.announcements.load(Ordering::Relaxed)
    }

    /// The `team_tasks` calls asked for so far: create, list, claim, complete.
    pub fn team_calls(&self) -> [u64; 4] {
        [
            &self.shared.team_creates,
            &self.shared.team_lists,
            &self.shared.team_claims,
            &self.shared.team_completes,
        ]
        .map(|c| c.load(Ordering::Relaxed))
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let shared = shared.clone();
        let spawned = thread::Builder::new()
            .name("fake-llm-conn".to_owned())
            .spawn(move || {
                let _ = serve_connection(stream, &shared);
            });
        if spawned.is_err() {
            // Out of threads: the connection is dropped (closed) and the client sees an error.
            thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Answers requests on one connection until the client closes it, it idles out, or we stop.
fn serve_connection(mut stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(POLL))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut last_activity = Instant::now();
    loop {
        // Parse whatever is buffered before reading more (a pipelined request may be waiting).
        if let Some((request, used)) = parse_request(&buf)? {
            let arrived = Instant::now();
            buf.drain(..used);
            let response = respond(&request, shared);
            // Before the write: once written, the gateway may run before this thread does.
            if let Ok(mut timing) = shared.last_timing.lock() {
                *timing = Some((arrived, Instant::now()));
            }
            if String::from_utf8_lossy(&request.body).contains(SLOW_MARKER) {
                for piece in response.chunks(response.len().div_ceil(SLOW_PIECES).max(1)) {
                    stream.write_all(piece)?;
                    thread::sleep(SLOW_STEP);
                }
            } else {
                stream.write_all(&response)?;
            }
            last_activity = Instant::now();
            let close = request.close;
            if let Ok(mut last) = shared.last_body.lock() {
                *last = request.body;
            }
            if close {
                break;
            }
            continue;
        }
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let limit = if buf.is_empty() {
            IDLE_CLOSE
        } else {
            REQUEST_TIMEOUT
        };
        if last_activity.elapsed() > limit {
            break;
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                if buf.is_empty() {
                    last_activity = Instant::now();
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(err) => return Err(err),
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
    Ok(())
}

struct Request {
    method: String,
    path: String,
    close: bool,
    body: Vec<u8>,
}

/// The request at the start of `buf` (body read and dropped) and its length; `None` while
/// incomplete. A malformed request is an error, which closes the connection.
fn parse_request(buf: &[u8]) -> io::Result<Option<(Request, usize)>> {
    let invalid = |message: String| io::Error::new(io::ErrorKind::InvalidData, message);
    let Some(head) = parse_head(buf).map_err(invalid)? else {
        return Ok(None);
    };
    let mut parts = head.start_line.split(' ');
    let (Some(method), Some(path), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid(format!("bad request line {:?}", head.start_line)));
    };
    let close = head.has_token("connection", "close")
        || (version == "HTTP/1.0" && !head.has_token("connection", "keep-alive"));
    let rest = &buf[head.len..];
    let (body, used) = if head.has_token("transfer-encoding", "chunked") {
        match dechunk(rest).map_err(invalid)? {
            Some((body, used)) => (body, used),
            None => return Ok(None),
        }
    } else {
        let len = head.content_length().map_err(invalid)?.unwrap_or(0);
        if len > MAX_REQUEST_BODY {
            return Err(invalid(format!("request body of {len} bytes")));
        }
        if rest.len() < len {
            return Ok(None);
        }
        (rest[..len].to_vec(), len)
    };
    Ok(Some((
        Request {
            method: method.to_owned(),
            path: path.to_owned(),
            close,
            body,
        },
        head.len + used,
    )))
}

/// The whole HTTP response to `request`, ready to write.
fn respond(request: &Request, shared: &Shared) -> Vec<u8> {
    let path = request.path.split('?').next().unwrap_or_default();
    let connection = if request.close {
        "Connection: close\r\n"
    } else {
        ""
    };
    if request.method != "POST" || !matches!(path, "/chat/completions" | "/v1/chat/completions") {
        let body = r#"{"error":{"message":"the fake provider serves POST /chat/completions only","type":"invalid_request_error"}}"#;
        return format!(
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{connection}\r\n{body}",
            body.len()
        )
        .into_bytes();
    }
    let n = shared.completions.fetch_add(1, Ordering::Relaxed) + 1;
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n{connection}\r\n"
    )
    .into_bytes();
    let body = String::from_utf8_lossy(&request.body);
    if body.contains(ANNOUNCED) {
        shared.announcements.fetch_add(1, Ordering::Relaxed);
    }
    let id = format!("chatcmpl-fake-{n}");
    let team_call = team_call_of(&body);
    if let Some((_, arguments)) = &team_call {
        let counter = match team_action(arguments) {
            "list" => &shared.team_lists,
            "claim" => &shared.team_claims,
            "complete" => &shared.team_completes,
            _ => &shared.team_creates,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
    let events = match (tool_call_of(&body), team_call) {
        (Some((name, arguments)), _) => tool_call_events(&id, unix_now(), n, name, arguments),
        (None, Some((name, arguments))) => tool_call_events(&id, unix_now(), n, name, &arguments),
        (None, None) => sse_events(&id, unix_now()),
    };
    for event in events {
        out.extend_from_slice(format!("{:x}\r\n{event}\r\n", event.len()).as_bytes());
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// The SSE events of one answer, each `data: ...\n\n`: the role chunk, the content deltas,
/// the finish chunk, the usage chunk (`stream_options.include_usage`), `[DONE]`.
pub fn sse_events(id: &str, created: u64) -> Vec<String> {
    let chunk = |delta: &str, finish: &str| {
        format!(
            r#"{{"id":"{id}","object":"chat.completion.chunk","created":{created},"model":"{MODEL}","choices":[{{"index":0,"delta":{delta},"finish_reason":{finish}}}]}}"#
        )
    };
    let mut data = vec![chunk(r#"{"role":"assistant","content":""}"#, "null")];
    for piece in DELTAS {
        data.push(chunk(&format!(r#"{{"content":"{piece}"}}"#), "null"));
    }
    data.push(chunk("{}", r#""stop""#));
    data.push(format!(
        r#"{{"id":"{id}","object":"chat.completion.chunk","created":{created},"model":"{MODEL}","choices":[],"usage":{{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}}}"#
    ));
    data.push("[DONE]".to_owned());
    data.into_iter()
        .map(|data| format!("data: {data}\n\n"))
        .collect()
}

/// The tool call a scripted model asks for: only in a turn's first call (no tool result in
/// the request yet).
fn tool_call_of(body: &str) -> Option<(&'static str, &'static str)> {
    if body.contains(r#""role":"tool""#) {
        return None;
    }
    SCRIPTED
        .iter()
        .find(|(model, _, _)| body.contains(&format!(r#""model":"{model}""#)))
        .map(|(_, name, arguments)| (*name, *arguments))
}

/// The team benchmark's lead model: each turn puts one task on the board.
pub const TEAM_LEAD_MODEL: &str = "bench-team-lead";
/// The team benchmark's member models, `bench-team-member-<i>`: each turn lists the pending
/// tasks, claims the `i`-th (modulo how many are listed), completes it, and ends; a refused
/// claim (another member was first) or an empty board ends the turn at once.
pub const TEAM_MEMBER_MODEL: &str = "bench-team-member-";
/// The team the benchmark's models work in.
pub const TEAM: &str = "bench";

/// The `team_tasks` call a team benchmark model asks for next, from the last tool result in
/// the request (read textually: the bench is std only).
fn team_call_of(body: &str) -> Option<(&'static str, String)> {
    let args = |s: String| Some(("team_tasks", s));
    if body.contains(&format!(r#""model":"{TEAM_LEAD_MODEL}""#)) {
        if body.contains(r#""role":"tool""#) {
            return None;
        }
        return args(format!(
            r#"{{\"action\":\"create\",\"team\":\"{TEAM}\",\"title\":\"bench task\",\"description\":\"a task of the team benchmark\"}}"#
        ));
    }
    let at = body.find(&format!(r#""model":"{TEAM_MEMBER_MODEL}"#))?;
    let index: usize = body[at + TEAM_MEMBER_MODEL.len() + 9..]
        .split('"')
        .next()?
        .parse()
        .ok()?;
    let Some(last) = body.rfind(r#""role":"tool""#) else {
        return args(format!(
            r#"{{\"action\":\"list\",\"team\":\"{TEAM}\",\"status\":\"pending\",\"limit\":10}}"#
        ));
    };
    // The tool message: its content follows (or precedes) the role in the same object.
    let message = &body[body[..last].rfind('{').unwrap_or(0)..];
    let message = &message[..message.find('}').unwrap_or(message.len())];
    if let Some(rest) = message.split("You claimed task ").nth(1) {
        let id = rest.split(':').next()?;
        return args(format!(
            r#"{{\"action\":\"complete\",\"team\":\"{TEAM}\",\"id\":\"{id}\",\"result\":\"done by member {index}\"}}"#
        ));
    }
    let pending: Vec<&str> = message
        .split("- ")
        .skip(1)
        .filter(|line| line.contains(" [pending] "))
        .filter_map(|line| line.split(' ').next())
        .collect();
    if pending.is_empty() {
        return None;
    }
    let id = pending[index % pending.len()];
    args(format!(
        r#"{{\"action\":\"claim\",\"team\":\"{TEAM}\",\"id\":\"{id}\"}}"#
    ))
}

/// The action of a `team_tasks` call's (escaped) arguments.
fn team_action(arguments: &str) -> &'static str {
    ["list", "claim", "complete"]
        .into_iter()
        .find(|a| arguments.contains(&format!(r#"action\":\"{a}\""#)))
        .unwrap_or("create")
}

/// A streamed answer that asks for one tool call, in OpenAI's chunk format.
fn tool_call_events(id: &str, created: u64, n: u64, name: &str, arguments: &str) -> Vec<String> {
    let chunk = |delta: &str, finish: &str| {
        format!(
            r#"{{"id":"{id}","object":"chat.completion.chunk","created":{created},"model":"{MODEL}","choices":[{{"index":0,"delta":{delta},"finish_reason":{finish}}}]}}"#
        )
    };
    [
        chunk(r#"{"role":"assistant","content":null}"#, "null"),
        chunk(
            &format!(
                r#"{{"tool_calls":[{{"index":0,"id":"call_{n}","type":"function","function":{{"name":"{name}","arguments":"{arguments}"}}}}]}}"#
            ),
            "null",
        ),
        chunk("{}", r#""tool_calls""#),
        format!(
            r#"{{"id":"{id}","object":"chat.completion.chunk","created":{created},"model":"{MODEL}","choices":[],"usage":{{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}}}"#
        ),
        "[DONE]".to_owned(),
    ]
    .into_iter()
    .map(|data| format!("data: {data}\n\n"))
    .collect()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// The config of a gateway benchmarked against [`FakeLlm`]: no rate limits
/// (all the load comes from one address and one user), no tool-call limit,
/// the fake's model by default.
pub const GATEWAY_CONFIG: &str = r#"{"gateway": {"rate_limit_rpm": 0}, "tools": {"rate_limit_per_hour": 0}, "agents": {"defaults": {"model": "gpt-4o-mini"}}}"#;
/// The provider key the gateway sends to the fake.
pub const API_KEY: &str = "sk-bench-0000000000000000";

/// The gateway of benchmark `name` (data dir and config under the
/// scratch dir), pointed at `fake`, ready.
pub fn start_gateway(
    ctx: &super::Context,
    fake: &FakeLlm,
    name: &str,
) -> Result<super::gateway::Gateway> {
    start_gateway_with(ctx, fake, name, GATEWAY_CONFIG, &[])
}

/// [`GATEWAY_CONFIG`] with `agents.window_cache_idle_sec` set: sessions' cached history
/// windows dropped after that long idle (10 minutes by default), so a benchmark can sample
/// memory after they are gone.
pub fn config_with_window_idle(seconds: u64) -> String {
    GATEWAY_CONFIG.replace(
        r#""agents": {"#,
        &format!(r#""agents": {{"window_cache_idle_sec": {seconds}, "#),
    )
}

/// [`GATEWAY_CONFIG`] with `channels` (a JSON object) as its `channels` section.
pub fn config_with_channels(channels: &str) -> String {
    let base = GATEWAY_CONFIG.strip_suffix('}').unwrap_or(GATEWAY_CONFIG);
    format!(r#"{base}, "channels": {channels}}}"#)
}

/// [`start_gateway`] with `config` (JSON text) and more environment.
pub fn start_gateway_with(
    ctx: &super::Context,
    fake: &FakeLlm,
    name: &str,
    config: &str,
    extra_env: &[(&str, &str)],
) -> Result<super::gateway::Gateway> {
    let workdir = ctx.scratch.join(name);
    let home = workdir.join("home");
    super::create_parent(&home)?;
    let path = workdir.join("config.json");
    std::fs::write(&path, config).with_context(|| format!("writing {}", path.display()))?;
    let path = path.to_str().context("the scratch path is not UTF-8")?;
    let base_url = fake.base_url();
    let mut env = vec![
        ("EXOCLAW_CONFIG", path),
        ("EXOCLAW_OPENAI_API_KEY", API_KEY),
        ("EXOCLAW_OPENAI_BASE_URL", base_url.as_str()),
    ];
    env.extend_from_slice(extra_env);
    env.extend(
        ctx.gateway_env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    let mut gateway = ctx.binary.start_with(&home, &env)?;
    gateway.wait_ready()?;
    Ok(gateway)
}

/// `POST path` with a JSON `body` that must answer `201 Created`.
pub fn post_created(
    conn: &mut super::http::Conn,
    gateway: &super::gateway::Gateway,
    token: &str,
    path: &str,
    body: &str,
) -> Result<()> {
    let r = conn
        .send(&super::http::post_json(
            gateway.addr(),
            path,
            Some(token),
            body,
        ))
        .with_context(|| format!("POST {path}"))?;
    if r.status != 201 {
        crate::error::bail!(
            "POST {path}: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::http::{Conn, post_json};
    use super::*;

    #[test]
    fn answers_with_openai_chunks_over_keep_alive() {
        let fake = FakeLlm::start().unwrap();
        let mut conn = Conn::new(fake.addr(), Duration::from_secs(5));
        for path in ["/chat/completions", "/v1/chat/completions"] {
            let request = post_json(fake.addr(), path, Some("sk"), r#"{"stream":true}"#);
            let response = conn.send(&request).unwrap();
            assert_eq!(response.status, 200);
            assert_eq!(
                response.head.header("content-type"),
                Some("text/event-stream")
            );
            let body = String::from_utf8(response.body).unwrap();
            let events: Vec<&str> = body.split("\n\n").filter(|e| !e.is_empty()).collect();
            assert_eq!(events.len(), 7, "{body}");
            assert!(events[0].contains(r#""delta":{"role":"assistant","content":""}"#));
            assert!(events[4].contains(r#""finish_reason":"stop""#));
            assert!(events[5].contains(r#""choices":[],"usage":{"prompt_tokens":10"#));
            assert_eq!(events[6], "data: [DONE]");
        }
        let response = conn
            .send(&post_json(fake.addr(), "/nope", None, "{}"))
            .unwrap();
        assert_eq!(response.status, 404);
        assert_eq!((conn.connections, fake.completions()), (1, 2));
    }

    #[test]
    fn team_models_list_then_claim_then_complete_then_stop() {
        let member = |tool: Option<&str>| {
            let tool = tool.map_or_else(String::new, |c| {
                format!(r#",{{"role":"tool","tool_call_id":"c","content":"{c}"}}"#)
            });
            format!(
                r#"{{"model":"bench-team-member-1","messages":[{{"role":"user","content":"work"}}{tool}]}}"#
            )
        };
        let (_, args) = team_call_of(&member(None)).unwrap();
        assert_eq!(team_action(&args), "list");
        let listed = r"- aa [pending] bench task\n- bb [pending] bench task";
        let (_, args) = team_call_of(&member(Some(listed))).unwrap();
        assert_eq!(team_action(&args), "claim");
        assert!(
            args.contains(r#"\"id\":\"bb\""#),
            "member 1 takes the second: {args}"
        );
        let claimed = "You claimed task bb: bench task. Work on it.";
        let (_, args) = team_call_of(&member(Some(claimed))).unwrap();
        assert_eq!(team_action(&args), "complete");
        assert!(args.contains(r#"\"id\":\"bb\""#), "{args}");
        assert!(team_call_of(&member(Some("Task bb is done."))).is_none());
        assert!(team_call_of(&member(Some("No tasks."))).is_none());
        let lead = r#"{"model":"bench-team-lead","messages":[]}"#;
        assert_eq!(team_action(&team_call_of(lead).unwrap().1), "create");
        assert!(team_call_of(r#"{"model":"gpt-4o-mini"}"#).is_none());
    }

    #[test]
    fn channels_join_the_gateway_config() {
        let config = config_with_channels(r#"{"hook": {"type": "webhook"}}"#);
        assert!(
            config.starts_with(GATEWAY_CONFIG.trim_end_matches('}')),
            "{config}"
        );
        assert!(
            config.ends_with(r#", "channels": {"hook": {"type": "webhook"}}}"#),
            "{config}"
        );
        assert_eq!(config.matches('{').count(), config.matches('}').count());
    }

    #[test]
    fn every_event_is_valid_looking_json() {
        for event in sse_events("chatcmpl-x", 1) {
            let data = event.strip_prefix("data: ").unwrap().trim_end();
            assert!(data == "[DONE]" || (data.starts_with('{') && data.ends_with('}')));
            assert_eq!(data.matches('{').count(), data.matches('}').count());
        }
    }
}
