//! `cargo xtask bench mcp`: what the gateway adds to an MCP tool call (issue 16).
//!
//! The reference server `@modelcontextprotocol/server-everything` (npm, see [`crate::npm`])
//! answers `echo`, closed-loop at concurrency 1, three ways per transport:
//!
//! - the server's own time: JSON-RPC straight to it (stdio: over its pipes from this process;
//!   HTTP: `POST /mcp` in its session);
//! - through the gateway: `POST /v1/tools/invoke` of `<server>__echo`, the whole policy path
//!   (lookup, grant, schema, rate limit, timeout, scrubbing, untrusted screening, audit), the
//!   stdio server in the sandbox, the HTTP one through the egress client.
//!
//! The overhead is the gateway's p50 minus the server's own p50.

use std::fs;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::gateway::Gateway;
use super::http::{Conn, post_json};
use super::{Context, Summary, create_parent, ms};
use crate::error::{Context as _, Result, bail};

/// Calls measured per path (after as many warm-up calls).
const CALLS: usize = 300;
const ECHO: &str = r#"{"message":"bench"}"#;

pub fn run(ctx: &Context) -> Result<String> {
    let npm = crate::npm::ensure()?;
    let modules = npm.join("node_modules");
    let everything = modules.join("@modelcontextprotocol/server-everything/dist/index.js");
    let stdio_own = stdio_direct(&everything)?;
    let (mut upstream, upstream_addr) = http_server(&everything)?;
    let http_own = http_direct(upstream_addr);
    let gateway = start(ctx, &modules, upstream_addr);
    let result = gateway.and_then(|gateway| {
        let token = ctx.binary.token().to_owned();
        setup(&gateway, &token, upstream_addr)?;
        let stdio = through(&gateway, &token, "everything__echo")?;
        let http = through(&gateway, &token, "remote__echo")?;
        gateway.stop()?;
        Ok((stdio, http))
    });
    let _ = upstream.kill();
    let _ = upstream.wait();
    let (stdio, http) = result?;
    let http_own = http_own?;
    let mut out = String::from(
        "## MCP tool calls\n\n`echo` of server-everything, closed loop, concurrency 1, \
         p50 over 300 calls each. \"Server\" is the server's own round trip without the \
         gateway; \"through the gateway\" is `POST /v1/tools/invoke` of the namespaced tool \
         (the whole policy path; stdio server in the sandbox, HTTP through the egress client).\n\n\
         | transport | server p50 (ms) | through the gateway p50 (ms) | added by the gateway (ms) |\n|---|---|---|---|\n",
    );
    for (name, own, gw) in [
        ("stdio", &stdio_own, &stdio),
        ("streamable HTTP", &http_own, &http),
    ] {
        out.push_str(&format!(
            "| {name} | {} | {} | {} |\n",
            ms(own.p50),
            ms(gw.p50),
            ms(gw.p50.saturating_sub(own.p50)),
        ));
    }
    Ok(out)
}

fn summary(samples: &[Duration]) -> Result<Summary> {
    Summary::of(samples).context("no samples")
}

/// The server over its own pipes: initialize, then `echo` calls.
fn stdio_direct(script: &std::path::Path) -> Result<Summary> {
    let mut child = Command::new("node")
        .arg(script)
        .arg("stdio")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start node (is nodejs installed?)")?;
    let result = (|| {
        let mut stdin = child.stdin.take().context("stdin")?;
        let mut stdout = BufReader::new(child.stdout.take().context("stdout")?);
        ask(
            &mut stdin,
            &mut stdout,
            0,
            r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#,
        )?;
        writeln!(
            stdin,
            r#"{{"jsonrpc":"2.0","method":"notifications/initialized"}}"#
        )
        .context("writing to the server")?;
        let mut samples = Vec::with_capacity(CALLS);
        for i in 1..=2 * CALLS {
            let line = format!(
                r#"{{"jsonrpc":"2.0","id":{i},"method":"tools/call","params":{{"name":"echo","arguments":{ECHO}}}}}"#
            );
            let took = ask(&mut stdin, &mut stdout, i, &line)?;
            if i > CALLS {
                samples.push(took);
            }
        }
        summary(&samples)
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// One request over the pipes and the time until its answer.
fn ask(
    stdin: &mut std::process::ChildStdin,
    stdout: &mut BufReader<std::process::ChildStdout>,
    id: usize,
    line: &str,
) -> Result<Duration> {
    let started = Instant::now();
    writeln!(stdin, "{line}").context("writing to the server")?;
    let want = format!("\"id\":{id}");
    let mut answer = String::new();
    loop {
        answer.clear();
        if stdout
            .read_line(&mut answer)
            .context("reading the server")?
            == 0
        {
            bail!("the server closed its stdout");
        }
        if answer.contains(&want) {
            return Ok(started.elapsed());
        }
    }
}

/// server-everything over streamable HTTP on a free loopback port.
fn http_server(script: &std::path::Path) -> Result<(Child, SocketAddr)> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("no free port")?
        .port();
    let child = Command::new("node")
        .arg(script)
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start node")?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(addr).is_err() {
        if Instant::now() > deadline {
            bail!("server-everything did not listen on {addr}");
        }
        thread::sleep(Duration::from_millis(50));
    }
    Ok((child, addr))
}

fn mcp_post(addr: SocketAddr, session: Option<&str>, body: &str) -> Vec<u8> {
    let session = session.map_or_else(String::new, |s| format!("Mcp-Session-Id: {s}\r\n"));
    format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\n{session}Accept: application/json, text/event-stream\r\nContent-Type: application/json\r\nMCP-Protocol-Version: 2025-06-18\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The server's own time over HTTP, in one session.
fn http_direct(addr: SocketAddr) -> Result<Summary> {
    let mut conn = Conn::new(addr, Duration::from_secs(30));
    let init = conn
        .send(&mcp_post(
            addr,
            None,
            r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#,
        ))
        .context("initialize")?;
    let session = init
        .head
        .header("mcp-session-id")
        .context("no Mcp-Session-Id from the server")?
        .to_owned();
    conn.send(&mcp_post(
        addr,
        Some(&session),
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    ))
    .context("initialized")?;
    let mut samples = Vec::with_capacity(CALLS);
    for i in 1..=2 * CALLS {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{i},"method":"tools/call","params":{{"name":"echo","arguments":{ECHO}}}}}"#
        );
        let started = Instant::now();
        let r = conn
            .send(&mcp_post(addr, Some(&session), &body))
            .context("tools/call")?;
        let took = started.elapsed();
        if r.status != 200 || !String::from_utf8_lossy(&r.body).contains("bench") {
            bail!("tools/call answered {}", r.status);
        }
        if i > CALLS {
            samples.push(took);
        }
    }
    summary(&samples)
}

fn start(ctx: &Context, modules: &std::path::Path, upstream: SocketAddr) -> Result<Gateway> {
    let workdir = ctx.scratch.join("mcp");
    let home = workdir.join("home");
    create_parent(&home)?;
    // The stdio server sees only its own directory (`/workspace`): the packages go there.
    let dir = home.join("mcp/default/everything");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    {
        use std::os::unix::fs::PermissionsExt as _;
        // The gateway refuses a data dir others can read.
        for d in [&home, &home.join("mcp"), &home.join("mcp/default"), &dir] {
            fs::set_permissions(d, fs::Permissions::from_mode(0o700))
                .with_context(|| format!("chmod {}", d.display()))?;
        }
    }
    let copied = Command::new("cp")
        .arg("-r")
        .arg(modules)
        .arg(dir.join("node_modules"))
        .status()
        .context("cp")?;
    if !copied.success() {
        bail!("cannot copy the npm packages");
    }
    let config = workdir.join("config.json");
    fs::write(
        &config,
        format!(
            r#"{{"gateway": {{"rate_limit_rpm": 0}}, "tools": {{"rate_limit_per_hour": 0, "mcp": {{"allow_private_origins": ["http://{upstream}"]}}}}}}"#
        ),
    )
    .with_context(|| format!("writing {}", config.display()))?;
    let config = config.to_str().context("the scratch path is not UTF-8")?;
    let mut env = vec![("EXOCLAW_CONFIG", config)];
    env.extend(
        ctx.gateway_env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    let mut gateway = ctx.binary.start_with(&home, &env)?;
    gateway.wait_ready()?;
    Ok(gateway)
}

fn setup(gateway: &Gateway, token: &str, upstream: SocketAddr) -> Result<()> {
    let mut conn = Conn::new(gateway.addr(), Duration::from_secs(10));
    let mut post = |path: &str, body: &str, want: u16| -> Result<()> {
        let r = conn
            .send(&post_json(gateway.addr(), path, Some(token), body))
            .with_context(|| format!("POST {path}"))?;
        if r.status != want {
            bail!(
                "POST {path}: {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            );
        }
        Ok(())
    };
    post(
        "/v1/mcp/servers",
        r#"{"name":"everything","transport":"stdio","command":["node","/workspace/node_modules/@modelcontextprotocol/server-everything/dist/index.js","stdio"]}"#,
        200,
    )?;
    post(
        "/v1/mcp/servers",
        &format!(r#"{{"name":"remote","transport":"http","url":"http://{upstream}/mcp"}}"#),
        200,
    )?;
    for server in ["everything", "remote"] {
        post(
            "/v1/mcp/grants",
            &format!(r#"{{"server":"{server}","agent":"default"}}"#),
            204,
        )?;
    }
    Ok(())
}

/// `POST /v1/tools/invoke` of `tool`, once it is offered.
fn through(gateway: &Gateway, token: &str, tool: &str) -> Result<Summary> {
    let mut conn = Conn::new(gateway.addr(), Duration::from_secs(30));
    let request = post_json(
        gateway.addr(),
        "/v1/tools/invoke",
        Some(token),
        &format!(r#"{{"tool":"{tool}","args":{ECHO}}}"#),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = conn.send(&request).context("invoke")?;
        if r.status == 200 {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "{tool} never answered: {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            );
        }
        thread::sleep(Duration::from_millis(200));
    }
    let mut samples = Vec::with_capacity(CALLS);
    for i in 0..2 * CALLS {
        let started = Instant::now();
        let r = conn.send(&request).context("invoke")?;
        let took = started.elapsed();
        if r.status != 200 {
            bail!("{tool}: {} {}", r.status, String::from_utf8_lossy(&r.body));
        }
        if i >= CALLS {
            samples.push(took);
        }
    }
    summary(&samples)
}
