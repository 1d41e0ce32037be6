//! `cargo xtask bench memory`: issue 14's figures seen from outside the gateway.
//!
//! - idle RSS 5 s after ready with `memory.embedder` `none`, `local` (the model of
//!   [`crate::model`]) and `openai` (never called while idle), each on a new data dir; for `local`
//!   also RSS after one search, which loads the weights (they must not be loaded before);
//! - where the idle gateway's resident pages are, by mapping (`/proc/PID/smaps`);
//! - `GET /v1/memory?agent=bench&q=...&limit=5` against a data dir holding 100,000 memories,
//!   seeded by the `exoclaw-gateway` `memory` bench (`--seed-into`, built with `--profile dev`:
//!   seeding is not what is timed) with vectors labelled as the local embedder's, so the gateway
//!   embeds each query with the model and ranks by full text and vector, like `memory_search`.

use std::fs;
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::cpu::Snapshot;
use super::gateway::Gateway;
use super::http::Conn;
use super::{Context, Summary, create_parent, mib, ms};
use crate::command::{cargo, run as run_command};
use crate::error::{Context as _, Result, bail};

const IDLE_WAIT: Duration = Duration::from_secs(5);
const SEARCHES: usize = 50;
const MEMORIES: usize = 100_000;
/// Mappings listed by resident size.
const TOP_MAPPINGS: usize = 8;

pub fn run(ctx: &Context) -> Result<String> {
    let model_dir = crate::model::ensure()?;
    let model = model_dir.to_str().context("the model path is not UTF-8")?;
    let local = format!(
        r#"{{"gateway": {{"rate_limit_rpm": 0}}, "memory": {{"embedder": {{"type": "local", "model_dir": "{model}"}}}}}}"#
    );
    let openai = r#"{"gateway": {"rate_limit_rpm": 0}, "memory": {"embedder": {"type": "openai", "provider": "openai", "model": "text-embedding-3-small"}}}"#;
    let mut text = String::from("### Memory: idle RSS by embedder, search from outside\n\n");
    text.push_str(&format!("Binary `{}`.\n\n", ctx.binary.path().display()));
    text.push_str("| `memory.embedder` | idle RSS | after one search |\n|---|---:|---:|\n");
    let mut smaps = String::new();
    for (name, config) in [
        ("none", "{}"),
        ("local", local.as_str()),
        ("openai", openai),
    ] {
        let home = ctx.scratch.join(format!("idle-{name}/home"));
        let gateway = start(ctx, &home, config)?;
        sleep(IDLE_WAIT);
        let idle = gateway.rss_kib()?;
        if name == "none" {
            smaps = by_mapping(&gateway)?;
        }
        let after = if name == "local" {
            let mut conn = Conn::new(gateway.addr(), Duration::from_secs(60));
            search(
                &mut conn,
                ctx.binary.token(),
                "what does the user like for breakfast",
            )?;
            mib(gateway.rss_kib()? * 1024)
        } else {
            "-".to_owned()
        };
        gateway.stop()?;
        eprintln!(
            "xtask: idle RSS with memory.embedder {name}: {}",
            mib(idle * 1024)
        );
        text.push_str(&format!("| {name} | {} | {after} |\n", mib(idle * 1024)));
    }
    text.push_str("\nIdle gateway (`none`), resident pages by mapping:\n\n");
    text.push_str(&smaps);
    text.push_str(&outside_search(ctx, &local, &model_dir)?);
    Ok(text)
}

fn start(ctx: &Context, home: &Path, config: &str) -> Result<Gateway> {
    create_parent(home)?;
    let workdir = home.parent().context("the data dir needs a parent")?;
    let path = workdir.join("config.json");
    fs::write(&path, config).with_context(|| format!("writing {}", path.display()))?;
    let path = path.to_str().context("the scratch path is not UTF-8")?;
    let mut env = vec![("EXOCLAW_CONFIG", path)];
    env.extend(
        ctx.gateway_env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    let mut gateway = ctx.binary.start_with(home, &env)?;
    gateway.wait_ready()?;
    Ok(gateway)
}

/// One search; its time.
fn search(conn: &mut Conn, token: &str, q: &str) -> Result<Duration> {
    let q: String = q
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let request = format!(
        "GET /v1/memory?agent=bench&limit=5&q={q} HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Authorization: Bearer {token}\r\n\r\n"
    );
    let start = Instant::now();
    let response = conn.send(request.as_bytes()).context("GET /v1/memory")?;
    let took = start.elapsed();
    if response.status != 200 {
        bail!(
            "GET /v1/memory answered {}: {}",
            response.status,
            String::from_utf8_lossy(&response.body)
        );
    }
    Ok(took)
}

/// Resident KiB per mapping (file path, `[heap]`, `[stack]`, or anonymous), largest first.
fn by_mapping(gateway: &Gateway) -> Result<String> {
    let pid = gateway.pid().context("the gateway is not running")?;
    let path = format!("/proc/{pid}/smaps");
    let smaps = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let mut sizes: Vec<(String, u64)> = Vec::new();
    let mut current = String::new();
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            // `start-end perms offset dev inode [path]`
            let fields: Vec<&str> = line.split_whitespace().collect();
            let perms = fields.get(1).copied().unwrap_or("");
            let name = fields.get(5..).map_or(String::new(), |p| p.join(" "));
            let name = if name.is_empty() {
                "[anonymous]".to_owned()
            } else {
                name
            };
            current = format!("{name} ({perms})");
        } else if let Some(rest) = line.strip_prefix("Rss:") {
            let kib: u64 = rest
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .unwrap_or(0);
            match sizes.iter_mut().find(|(n, _)| *n == current) {
                Some((_, total)) => *total += kib,
                None => sizes.push((current.clone(), kib)),
            }
        }
    }
    sizes.sort_by_key(|s| std::cmp::Reverse(s.1));
    let total: u64 = sizes.iter().map(|(_, k)| k).sum();
    let mut text = format!(
        "| mapping | RSS |\n|---|---:|\n| all ({} mappings) | {} |\n",
        sizes.len(),
        mib(total * 1024)
    );
    for (name, kib) in sizes.iter().take(TOP_MAPPINGS) {
        let name = name.rsplit('/').next().unwrap_or(name);
        text.push_str(&format!("| `{name}` | {} |\n", mib(kib * 1024)));
    }
    Ok(text)
}

/// `GET /v1/memory?q=` over 100,000 seeded memories with the local embedder.
fn outside_search(ctx: &Context, local: &str, model_dir: &Path) -> Result<String> {
    let home = ctx.scratch.join("search/home");
    start(ctx, &home, local)?.stop()?;
    let name = model_dir
        .file_name()
        .map_or_else(|| "model".to_owned(), |n| n.to_string_lossy().into_owned());
    let model = format!("local:{name}:384");
    let queries = ctx.scratch.join("search/queries.txt");
    eprintln!("xtask: seeding {MEMORIES} memories (the exoclaw-gateway memory bench, dev profile)");
    let mut seed = cargo();
    seed.args([
        "bench",
        "-p",
        "exoclaw-gateway",
        "--bench",
        "memory",
        "--profile",
        "dev",
        "--",
    ])
    .arg("--memories")
    .arg(MEMORIES.to_string())
    .arg("--searches")
    .arg(SEARCHES.to_string())
    .arg("--seed-into")
    .arg(home.join("exoclaw.db"))
    .arg("--queries-into")
    .arg(&queries)
    .arg("--model")
    .arg(&model)
    .stdout(std::io::stderr());
    run_command(&mut seed)?;
    let queries = fs::read_to_string(&queries).context("reading the seeded queries")?;
    let gateway = start(ctx, &home, local)?;
    let mut conn = Conn::new(gateway.addr(), Duration::from_secs(60));
    let token = ctx.binary.token();
    let first = search(
        &mut conn,
        token,
        "warm up: the first search loads the model",
    )?;
    let rss_before = gateway.rss_kib()?;
    let mut times = Vec::with_capacity(SEARCHES);
    let pid = gateway.pid().context("the gateway is not running")?;
    let before = Snapshot::take(pid)?;
    for q in queries.lines().take(SEARCHES) {
        times.push(search(&mut conn, token, q)?);
    }
    let usage = Snapshot::take(pid)?.since(&before);
    let rss_after = gateway.rss_kib()?;
    gateway.stop()?;
    let s = Summary::of(&times).context("no searches")?;
    Ok(format!(
        "\n`GET /v1/memory?agent=bench&limit=5&q=...` over {MEMORIES} memories (one connection, \
         one search at a time; the query embedded by the local model, then full text and vector, \
         fused):\n\n| searches | p50 | p95 | max | gateway CPU per search | first search (loads the \
         model) | RSS | cores: gateway / xtask / others |\n|---:|---:|---:|---:|---:|---:|---:|---|\n\
         | {} | {} ms | {} ms | {} ms | {:.2} ms | {} ms | {} → {} | {} |\n",
        s.runs,
        ms(s.p50),
        ms(s.p95),
        ms(s.max),
        usage.gateway.as_secs_f64() * 1000.0 / s.runs as f64,
        ms(first),
        mib(rss_before * 1024),
        mib(rss_after * 1024),
        usage.split(),
    ))
}
