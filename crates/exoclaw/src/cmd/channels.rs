//! `exoclaw channels list|status|test`: the configured channels from the
//! configuration and the store (`list`: type, sender policy, queued
//! outbound messages), and the running gateway's live state (`status`:
//! `GET /v1/channels` on the configured address with the gateway token;
//! the same JSON with `--json`); `test` sends a message through a running
//! channel (`POST /v1/channels/{name}/test`).

use crate::cli::ChannelsCommand;
use crate::config::Settings;
use crate::http::channels::ChannelList;
use crate::serve::refuse_unsafe_home;
use anyhow::{Context as _, bail};
use exoclaw_core::{DEFAULT_TENANT, TenantId};
use exoclaw_gateway::clock::rfc3339;
use exoclaw_gateway::db;
use serde::Serialize;
use serde_json::Value;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::table::{Table, print_json};

/// One configured channel as `list` shows it.
#[derive(Serialize)]
struct Configured {
    name: String,
    /// The adapter, or `null` for a sender policy alone.
    kind: Option<&'static str>,
    dm_policy: &'static str,
    /// Outbound messages waiting in the outbox (`null`: no store yet).
    queued: Option<i64>,
}

pub async fn run(cmd: &ChannelsCommand, settings: &Settings) -> anyhow::Result<bool> {
    match cmd {
        ChannelsCommand::List { json } => list(settings, *json).await.map(|()| true),
        ChannelsCommand::Status { json } => status(settings, *json).map(|()| true),
        ChannelsCommand::Test {
            name,
            to,
            text,
            json,
        } => test(settings, name, to, text.as_deref(), *json),
    }
}

/// The running gateway's address and token.
fn gateway(settings: &Settings) -> anyhow::Result<(SocketAddr, &str)> {
    let Some(token) = &settings.secrets.gateway_token else {
        bail!("EXOCLAW_GATEWAY_TOKEN is not set; start `exoclaw serve` once to generate it");
    };
    let host = match settings.bind_ip {
        ip if ip.is_unspecified() => std::net::IpAddr::from([127, 0, 0, 1]),
        ip => ip,
    };
    Ok((
        SocketAddr::new(host, settings.config.gateway.port),
        token.expose(),
    ))
}

fn test(
    settings: &Settings,
    name: &str,
    to: &str,
    text: Option<&str>,
    json: bool,
) -> anyhow::Result<bool> {
    let (addr, token) = gateway(settings)?;
    let body = serde_json::json!({"to": to, "text": text}).to_string();
    let path = format!("/v1/channels/{name}/test");
    let (status, answer) = request(addr, "POST", &path, token, Some(&body)).with_context(|| {
        format!("cannot ask the gateway at {addr}; is `exoclaw serve` running?")
    })?;
    match status.as_str() {
        "200" => {}
        "404" => bail!("no running channel named {name:?} (channels.<name>.type in config.json)"),
        other => {
            let message = serde_json::from_str::<Value>(&answer)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                .unwrap_or_default();
            bail!("the gateway answered {other}: {message}");
        }
    }
    if json {
        crate::outln!("{answer}");
    }
    let r: crate::http::channels::ChannelTestResult =
        serde_json::from_str(&answer).context("an unexpected answer")?;
    if !json {
        match r.status.as_str() {
            "sent" => crate::outln!(
                "sent to {to} on {name} (message {})",
                r.platform_id.as_deref().unwrap_or("-")
            ),
            other => crate::outln!(
                "{other} after {} failed attempt(s): {}",
                r.attempts,
                r.last_error.as_deref().unwrap_or("no error yet")
            ),
        }
    }
    Ok(r.status == "sent")
}

async fn list(settings: &Settings, json: bool) -> anyhow::Result<()> {
    refuse_unsafe_home(&settings.home)?;
    let inspection = db::inspect(settings).await?;
    let db = if inspection.exists && inspection.status.is_current() {
        Some(db::open(settings).await?)
    } else {
        None
    };
    let tenant = TenantId::new(DEFAULT_TENANT);
    let mut rows = Vec::new();
    for (name, c) in &settings.config.channels {
        let queued = match &db {
            Some(db) => Some(db.store().count_pending_outbound(&tenant, name).await?),
            None => None,
        };
        rows.push(Configured {
            name: name.clone(),
            kind: c.kind.map(|k| k.as_str()),
            dm_policy: c.dm_policy.as_str(),
            queued,
        });
    }
    if let Some(db) = db {
        db.close().await;
    }
    if json {
        return print_json(&serde_json::json!({ "channels": rows }));
    }
    let mut table = Table::new(&["NAME", "TYPE", "DM_POLICY", "QUEUED"]);
    for r in rows {
        table.row([
            r.name,
            r.kind.unwrap_or("-").to_owned(),
            r.dm_policy.to_owned(),
            r.queued.map_or_else(|| "-".to_owned(), |q| q.to_string()),
        ]);
    }
    table.print("no channels configured (channels.<name> in config.json)");
    Ok(())
}

fn status(settings: &Settings, json: bool) -> anyhow::Result<()> {
    let (addr, token) = gateway(settings)?;
    let (code, body) = request(addr, "GET", "/v1/channels", token, None).with_context(|| {
        format!("cannot ask the gateway at {addr}; is `exoclaw serve` running?")
    })?;
    if code != "200" {
        bail!("the gateway answered {code}");
    }
    if json {
        crate::outln!("{body}");
        return Ok(());
    }
    let list: ChannelList = serde_json::from_value(serde_json::from_str::<Value>(&body)?)
        .context("an unexpected answer")?;
    let mut table = Table::new(&[
        "NAME", "TYPE", "RUNNING", "LAST_IN", "LAST_OUT", "QUEUED", "RESTARTS", "SENT", "FAILED",
        "DEAD",
    ]);
    let at = |t: Option<i64>| t.map_or_else(|| "-".to_owned(), rfc3339);
    for c in list.channels {
        table.row([
            c.name,
            c.kind,
            if c.running { "yes" } else { "no" }.to_owned(),
            at(c.last_inbound_at),
            at(c.last_outbound_at),
            c.queue_depth.to_string(),
            c.restarts.to_string(),
            c.sent.to_string(),
            c.failed.to_string(),
            c.dead.to_string(),
        ]);
    }
    table.print("no channel runs (channels.<name>.type in config.json)");
    Ok(())
}

/// One request to the gateway: the status code and the body.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&str>,
) -> anyhow::Result<(String, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    s.take(4 << 20).read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).unwrap_or("?").to_owned();
    Ok((status, body.to_owned()))
}
