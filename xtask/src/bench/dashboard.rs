//! `cargo xtask bench dashboard`: the dashboard's pages as a browser gets them, with 10,000
//! sessions and 100,000 messages stored (issue 22: every page's server time p50 at most 20 ms,
//! the first load at most 150 KB).
//!
//! The store is filled through the gateway itself (5 turns in each of 10,000 sessions, with the
//! fake provider: a user and an assistant message a turn), then the bench signs in like the
//! sign-in form does and times each page over a keep-alive connection, one request at a time:
//! what a person clicking through sees, less the browser's rendering. The first load is the
//! overview's HTML plus the stylesheet, the script and the icon, as sent (uncompressed: the
//! gateway does not compress, so the compressed size could only be smaller).

use std::time::{Duration, Instant};

use super::fake_llm::FakeLlm;
use super::fake_llm::start_gateway;
use super::gateway::Gateway;
use super::history::fill;
use super::http::Conn;
use super::load::{self, Latency};
use super::{Context, mib};
use crate::error::{Context as _, Result, bail};

const SESSIONS: usize = 10_000;
const TURNS: u64 = 5;
/// Timed requests per page (after a warm-up of a tenth as many).
const SAMPLES: usize = 200;
const TARGET_P50_MS: f64 = 20.0;
const TARGET_FIRST_LOAD: usize = 150 * 1024;

pub fn run(ctx: &Context) -> Result<String> {
    let fake = FakeLlm::start()?;
    let gateway = start_gateway(ctx, &fake, "dashboard")?;
    let token = ctx.binary.token().to_owned();
    let rss_ready = gateway.rss_kib()?;
    let filling = Instant::now();
    fill(&gateway, &token, "dash", SESSIONS, TURNS)?;
    let filled_in = filling.elapsed();
    let mut conn = Conn::new(gateway.addr(), load::REQUEST_TIMEOUT);
    let cookie = sign_in(&mut conn, &gateway, &token)?;

    // Pages with an id: the newest session and run.
    let sessions = get(&mut conn, &gateway, &cookie, "/ui/sessions")?;
    let session = first_link(&sessions.body, "/ui/sessions/").context("no session listed")?;
    let traces = get(&mut conn, &gateway, &cookie, "/ui/traces")?;
    let trace = first_link(&traces.body, "/ui/traces/").context("no run listed")?;
    let mut pages: Vec<String> = [
        "/ui/",
        "/ui/chat",
        "/ui/agents",
        "/ui/sessions",
        "/ui/sessions?q=dash-9999",
        "/ui/traces",
        "/ui/approvals",
        "/ui/teams",
        "/ui/delegations",
        "/ui/memory",
        "/ui/skills",
        "/ui/cron",
        "/ui/mcp",
        "/ui/channels",
        "/ui/pairing",
        "/ui/users",
        "/ui/audit",
        "/ui/audit?verify=1",
    ]
    .map(str::to_owned)
    .to_vec();
    pages.insert(5, session);
    pages.insert(7, trace);

    let mut rows = Vec::new();
    for page in &pages {
        for _ in 0..SAMPLES / 10 {
            get(&mut conn, &gateway, &cookie, page)?;
        }
        let mut samples = Vec::with_capacity(SAMPLES);
        let mut bytes = 0;
        for _ in 0..SAMPLES {
            let started = Instant::now();
            let response = get(&mut conn, &gateway, &cookie, page)?;
            samples.push(started.elapsed());
            bytes = response.body.len();
        }
        samples.sort_unstable();
        let latency = Latency::of_sorted(&samples).context("no samples")?;
        rows.push((page.clone(), latency, bytes));
    }
    let mut first_load = get(&mut conn, &gateway, &cookie, "/ui/")?.body.len();
    for asset in ["app.css", "app.js", "favicon.svg"] {
        first_load += get(&mut conn, &gateway, &cookie, &format!("/ui/assets/{asset}"))?
            .body
            .len();
    }
    let rss_after = gateway.rss_kib()?;
    Ok(report(&rows, first_load, filled_in, rss_ready, rss_after))
}

fn sign_in(conn: &mut Conn, gateway: &Gateway, token: &str) -> Result<String> {
    let host = gateway.addr();
    let body = format!("token={token}&next=%2Fui%2F");
    let request = format!(
        "POST /ui/signin HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let response = conn.send(request.as_bytes()).context("signing in")?;
    let cookie = response
        .head
        .header("set-cookie")
        .and_then(|c| c.strip_prefix("exoclaw_ui="))
        .and_then(|c| c.split(';').next())
        .map(str::to_owned);
    match (response.status, cookie) {
        (303, Some(cookie)) => Ok(cookie),
        (status, _) => bail!("signing in answered {status}, without a session cookie"),
    }
}

fn get(
    conn: &mut Conn,
    gateway: &Gateway,
    cookie: &str,
    path: &str,
) -> Result<super::http::Response> {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nCookie: exoclaw_ui={cookie}\r\n\r\n",
        gateway.addr()
    );
    let response = conn
        .send(request.as_bytes())
        .with_context(|| format!("GET {path}"))?;
    if response.status != 200 {
        bail!("GET {path} answered {}", response.status);
    }
    Ok(response)
}

/// The first `href="PREFIX..."` of a page.
fn first_link(body: &[u8], prefix: &str) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let needle = format!("href=\"{prefix}");
    let at = text.find(&needle)? + "href=\"".len();
    let end = text[at..].find('"')?;
    Some(text[at..at + end].to_owned())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn report(
    rows: &[(String, Latency, usize)],
    first_load: usize,
    filled_in: Duration,
    rss_ready: u64,
    rss_after: u64,
) -> String {
    let mut out = format!(
        "### Dashboard pages ({SESSIONS} sessions, {} messages)\n\n\
         Filled through the gateway in {:.1} s. Each page {SAMPLES} times over one keep-alive \
         connection, one at a time, after {} warm-up requests; time from the request's first \
         byte sent to the response's last byte read. RSS {} after start-up, {} after the \
         measurements.\n\n| page | p50 | p99 | bytes |\n|---|---:|---:|---:|\n",
        SESSIONS as u64 * TURNS * 2,
        filled_in.as_secs_f64(),
        SAMPLES / 10,
        mib(rss_ready * 1024),
        mib(rss_after * 1024),
    );
    let mut worst = 0.0_f64;
    for (page, latency, bytes) in rows {
        let p50 = ms(latency.p50);
        worst = worst.max(p50);
        out.push_str(&format!(
            "| `{page}` | {p50:.2} ms | {:.2} ms | {bytes} |\n",
            ms(latency.p99)
        ));
    }
    out.push_str(&format!(
        "\nSlowest page p50: {worst:.2} ms (target at most {TARGET_P50_MS} ms: {}). First load \
         (the overview, stylesheet, script, icon; uncompressed): {:.1} KB (target at most {} KB: {}).\n",
        super::verdict(worst <= TARGET_P50_MS),
        first_load as f64 / 1024.0,
        TARGET_FIRST_LOAD / 1024,
        super::verdict(first_load <= TARGET_FIRST_LOAD),
    ));
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_first_link_of_a_kind_is_found() {
        let page =
            br#"<a href="/ui/">x</a><a href="/ui/sessions/abc">t</a><a href="/ui/sessions/def">"#;
        assert_eq!(
            super::first_link(page, "/ui/sessions/").as_deref(),
            Some("/ui/sessions/abc")
        );
        assert_eq!(super::first_link(page, "/ui/traces/"), None);
    }
}
