//! `cargo xtask bench channels`: the messaging channels under load (issue 15).
//!
//! 1. The signed generic webhook at a fixed offered rate of [`RATE`] messages per second, open
//!    loop: message `i` is due at `start + i / RATE` whatever happened before, sent by whichever
//!    of [`WORKERS`] keep-alive connections is free, signed with HMAC-SHA256 as the gateway's
//!    `channels/webhook.rs` checks it ([`super::hmac`]), each from a sender of its own (a user
//!    and a session each). The channel has a `callback_url`, so the request is answered `202`
//!    once the message is accepted, and the agent's reply (from the fake provider) goes through
//!    the durable outbox to a std receiver here, which checks each reply's signature and matches
//!    it to its message by its `event_id` (`reply:<the message's event_id>`) and conversation.
//!    Accept latency is counted from the message's due time (so a late generator shows). A
//!    warm-up of [`WARM_UP`] at the same rate comes first; its messages must be answered too.
//! 2. Telegram, update to first streamed output: see [`super::telegram`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::fake_llm::{FakeLlm, config_with_channels, start_gateway_with};
use super::fake_server::{self, FakeServer, json_str};
use super::gateway::Gateway;
use super::hmac::sign;
use super::http::{Conn, Response};
use super::load::{Latency, REQUEST_TIMEOUT, ms3};
use super::{Context, cpu, mib, random_hex, telegram};
use crate::error::{Context as _, Result, bail};

/// Offered webhook messages per second (the issue's target).
pub const RATE: u64 = 1000;
/// Client connections sending them (the gateway's default `max_unauthenticated_per_ip` is 100).
const WORKERS: usize = 64;
const WARM_UP: Duration = Duration::from_secs(2);
/// How long the replies may take to arrive after the last message was sent.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);
/// The channel's name.
const HOOK: &str = "hook";

pub fn run(ctx: &Context) -> Result<String> {
    let webhook = webhook(ctx)?;
    let telegram = telegram::run(ctx)?;
    Ok(format!("### Channels (issue 15)\n\n{webhook}\n{telegram}"))
}

/// A callback the receiver got.
struct Callback {
    at: Instant,
    event_id: String,
    conversation: String,
    signed: bool,
    text: bool,
}

/// What one message's request became.
struct Sent {
    index: u64,
    due: Instant,
    /// When the request was written (later than `due` when every worker was busy).
    started: Instant,
    /// `Ok(when the 202 arrived)` or what went wrong.
    outcome: std::result::Result<Instant, String>,
}

fn webhook(ctx: &Context) -> Result<String> {
    let secret = random_hex(16)?;
    let callbacks = Arc::new(Mutex::new(Vec::<Callback>::new()));
    let receiver = {
        let (callbacks, secret) = (callbacks.clone(), secret.clone());
        FakeServer::start(
            "callback",
            Arc::new(move |r: &fake_server::Request| {
                if r.method != "POST" || r.path != "/cb" {
                    return fake_server::response(404, "");
                }
                let body = String::from_utf8_lossy(&r.body);
                let ts = r.head.header("x-exoclaw-timestamp").unwrap_or_default();
                let sig = r.head.header("x-exoclaw-signature").unwrap_or_default();
                let callback = Callback {
                    at: r.arrived,
                    event_id: json_str(&body, "event_id").unwrap_or_default().to_owned(),
                    conversation: json_str(&body, "conversation_id")
                        .unwrap_or_default()
                        .to_owned(),
                    signed: sign(secret.as_bytes(), ts, &r.body) == sig,
                    text: json_str(&body, "text").is_some_and(|t| !t.is_empty()),
                };
                if let Ok(mut all) = callbacks.lock() {
                    all.push(callback);
                }
                fake_server::response(200, "")
            }),
        )?
    };
    let fake = FakeLlm::start()?;
    let channel = format!(
        r#"{{"{HOOK}": {{"type": "webhook", "dm_policy": "open", "webhook": {{"callback_url": "{}/cb"}}}}}}"#,
        receiver.base_url()
    );
    let mut gateway = start_gateway_with(
        ctx,
        &fake,
        "channels-webhook",
        &config_with_channels(&channel),
        &[],
    )?;
    put_secret(&gateway, ctx.binary.token(), &secret)?;
    let pid = gateway.pid().context("the gateway is not running")?;

    let warm = RATE * WARM_UP.as_secs();
    let total = warm + RATE * ctx.seconds;
    eprintln!(
        "xtask: channels: webhook, {RATE}/s offered for {} s after {} s of warm-up, {WORKERS} connections",
        ctx.seconds,
        WARM_UP.as_secs()
    );
    let start = Instant::now() + Duration::from_millis(200);
    let window_start = start + WARM_UP;
    let next = AtomicU64::new(0);
    let mut before = None;
    let sent: Vec<Sent> = thread::scope(|scope| {
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| {
                let (gateway, next, secret) = (&gateway, &next, secret.as_str());
                scope.spawn(move || send_due(gateway.addr(), secret, next, total, start))
            })
            .collect();
        thread::sleep(window_start.saturating_duration_since(Instant::now()));
        before = cpu::Snapshot::take(pid).ok();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    let after = cpu::Snapshot::take(pid).ok();
    let sending_ended = Instant::now();

    // The replies: all of them, or until nothing arrived for a while.
    let deadline = sending_ended + DRAIN_TIMEOUT;
    loop {
        let got = callbacks.lock().map_or(0, |c| c.len());
        if got as u64 >= total || Instant::now() >= deadline || !gateway.is_running() {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    // Anything sent twice would arrive soon after.
    thread::sleep(Duration::from_millis(500));
    let rss = gateway.rss_kib()?;
    let hwm = gateway.status_kib("VmHWM")?;
    let log = gateway.log_lines(5);
    gateway.stop()?;
    let callbacks = std::mem::take(
        &mut *callbacks
            .lock()
            .map_err(|_| crate::error::Error::msg("the callbacks are poisoned"))?,
    );
    let usage = match (before, after) {
        (Some(b), Some(a)) => Some(a.since(&b)),
        _ => None,
    };
    let outcome = tally(&sent, &callbacks, window_start, warm);
    Ok(webhook_report(ctx, &outcome, usage, [rss, hwm], &log))
}

/// `PUT /v1/secrets/webhook_secret` for the channel.
fn put_secret(gateway: &Gateway, token: &str, secret: &str) -> Result<()> {
    let body = format!(r#"{{"owner": "channel:{HOOK}", "value": "{secret}"}}"#);
    let request = format!(
        "PUT /v1/secrets/webhook_secret HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        gateway.addr(),
        body.len()
    );
    let r = Conn::new(gateway.addr(), REQUEST_TIMEOUT)
        .send(request.as_bytes())
        .context("storing the webhook secret")?;
    if r.status >= 300 {
        bail!(
            "storing the webhook secret: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
    }
    Ok(())
}

/// The body of message `i`: its own event id and sender.
pub fn event_body(i: u64) -> String {
    format!(r#"{{"event_id":"e-{i}","sender_id":"s-{i}","text":"hi {i}"}}"#)
}

/// The signed request of message `i` at Unix time `now_sec`.
fn signed_request(addr: std::net::SocketAddr, secret: &str, i: u64, now_sec: u64) -> Vec<u8> {
    let body = event_body(i);
    let ts = now_sec.to_string();
    let sig = sign(secret.as_bytes(), &ts, body.as_bytes());
    format!(
        "POST /v1/channels/webhook/{HOOK} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nX-Exoclaw-Timestamp: {ts}\r\nX-Exoclaw-Signature: {sig}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// One worker: takes the next message, waits for its due time, sends it.
fn send_due(
    addr: std::net::SocketAddr,
    secret: &str,
    next: &AtomicU64,
    total: u64,
    start: Instant,
) -> Vec<Sent> {
    let mut conn = Conn::new(addr, REQUEST_TIMEOUT);
    let mut sent = Vec::new();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= total {
            return sent;
        }
        let due = start + Duration::from_nanos(i * 1_000_000_000 / RATE);
        thread::sleep(due.saturating_duration_since(Instant::now()));
        let started = Instant::now();
        let request = signed_request(addr, secret, i, unix_now());
        let outcome = match conn.send(&request) {
            Ok(r) if r.status == 202 && accepted(&r) => Ok(Instant::now()),
            Ok(r) => Err(format!(
                "status {}: {}",
                r.status,
                String::from_utf8_lossy(&r.body[..r.body.len().min(200)])
            )),
            Err(e) => Err(format!("{:?}: {e}", e.kind())),
        };
        sent.push(Sent {
            index: i,
            due,
            started,
            outcome,
        });
    }
}

fn accepted(r: &Response) -> bool {
    json_str(&String::from_utf8_lossy(&r.body), "status") == Some("accepted")
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The webhook run, counted.
struct Tally {
    sent: u64,
    measured: u64,
    refused: u64,
    first_refusal: Option<String>,
    /// Accept latency (from the due time) of the measured messages, sorted.
    accept: Vec<Duration>,
    /// How late the generator wrote a measured message's request.
    lateness: Vec<Duration>,
    /// Measured messages accepted per second: their count over due time of the first to the
    /// acceptance of the last.
    accept_rate: f64,
    /// Replies matched to a message (once each), duplicates, and replies matching nothing.
    replied: u64,
    duplicates: u64,
    unmatched: u64,
    unsigned: u64,
    wrong_conversation: u64,
    empty: u64,
    /// Reply latency (due time to the callback's arrival) of the measured messages, sorted.
    reply: Vec<Duration>,
    /// Replies to measured messages per second over the same span as `accept_rate`'s start
    /// to the last such reply.
    reply_rate: f64,
    /// From the last message's due time to the last reply.
    drain: Option<Duration>,
}

fn tally(sent: &[Sent], callbacks: &[Callback], window_start: Instant, warm: u64) -> Tally {
    let mut t = Tally {
        sent: sent.len() as u64,
        measured: 0,
        refused: 0,
        first_refusal: None,
        accept: Vec::new(),
        lateness: Vec::new(),
        accept_rate: 0.0,
        replied: 0,
        duplicates: 0,
        unmatched: 0,
        unsigned: 0,
        wrong_conversation: 0,
        empty: 0,
        reply: Vec::new(),
        reply_rate: 0.0,
        drain: None,
    };
    let by_index: HashMap<u64, &Sent> = sent.iter().map(|s| (s.index, s)).collect();
    let mut last_accept = window_start;
    for s in sent {
        let measured = s.index >= warm;
        match &s.outcome {
            Ok(at) => {
                if measured {
                    t.measured += 1;
                    t.accept.push(at.saturating_duration_since(s.due));
                    t.lateness.push(s.started.saturating_duration_since(s.due));
                    last_accept = last_accept.max(*at);
                }
            }
            Err(e) => {
                t.refused += 1;
                t.first_refusal.get_or_insert_with(|| e.clone());
            }
        }
    }
    t.accept.sort_unstable();
    t.lateness.sort_unstable();
    t.accept_rate = t.measured as f64
        / last_accept
            .saturating_duration_since(window_start)
            .as_secs_f64()
            .max(1e-9);
    let mut seen = std::collections::HashSet::new();
    let mut last_reply = window_start;
    let mut measured_replies = 0u64;
    let last_due = sent.iter().map(|s| s.due).max();
    for c in callbacks {
        let Some(i) = reply_index(&c.event_id) else {
            t.unmatched += 1;
            continue;
        };
        let Some(s) = by_index.get(&i) else {
            t.unmatched += 1;
            continue;
        };
        if !seen.insert(i) {
            t.duplicates += 1;
            continue;
        }
        t.replied += 1;
        t.unsigned += u64::from(!c.signed);
        t.empty += u64::from(!c.text);
        t.wrong_conversation += u64::from(c.conversation != format!("s-{i}"));
        if let Some(due) = last_due {
            t.drain = Some(
                t.drain
                    .unwrap_or_default()
                    .max(c.at.saturating_duration_since(due)),
            );
        }
        if i >= warm {
            measured_replies += 1;
            t.reply.push(c.at.saturating_duration_since(s.due));
            last_reply = last_reply.max(c.at);
        }
    }
    t.reply.sort_unstable();
    t.reply_rate = measured_replies as f64
        / last_reply
            .saturating_duration_since(window_start)
            .as_secs_f64()
            .max(1e-9);
    t
}

/// The message index a reply's `event_id` (`reply:e-<i>`) names.
fn reply_index(event_id: &str) -> Option<u64> {
    event_id.strip_prefix("reply:e-")?.parse().ok()
}

fn webhook_report(
    ctx: &Context,
    t: &Tally,
    usage: Option<cpu::Usage>,
    [rss, hwm]: [u64; 2],
    log: &str,
) -> String {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let mut text = format!(
        "#### Webhook: {RATE} messages/s offered, open loop\n\n\
         `POST /v1/channels/webhook/{HOOK}`, each signed (HMAC-SHA256 of `<timestamp>.<body>`), \
         from a sender of its own (`dm_policy: open`: a user and a session each), message `i` due \
         at `start + i/{RATE} s` and sent by whichever of {WORKERS} keep-alive connections is free; \
         {} s of warm-up at the same rate, then {} s measured. The channel has a `callback_url`: \
         the gateway answers `202 accepted` and the reply (the fake provider's answer) goes \
         through the durable outbox, signed, to a std receiver that checks the signature and \
         matches each reply to its message (`event_id` `reply:<id>`, `conversation_id` the \
         sender). Latencies count from the message's due time. Gateway on SQLite under the \
         scratch dir; **load generator, fakes and gateway share the same {cores} cores.**\n\n",
        WARM_UP.as_secs(),
        ctx.seconds,
    );
    let lat = |v: &[Duration]| Latency::of_sorted(v);
    let cell = |l: Option<Latency>, pick: fn(&Latency) -> Duration| {
        l.map_or_else(|| "-".to_owned(), |l| ms3(pick(&l)))
    };
    let (accept, reply, late) = (lat(&t.accept), lat(&t.reply), lat(&t.lateness));
    text.push_str("| | value |\n|---|---:|\n");
    let rows = [
        ("offered rate", format!("{RATE}/s")),
        ("messages sent (warm-up + measured)", t.sent.to_string()),
        ("accepted rate, measured", format!("{:.0}/s", t.accept_rate)),
        (
            "accept latency p50",
            format!("{} ms", cell(accept, |l| l.p50)),
        ),
        (
            "accept latency p99",
            format!("{} ms", cell(accept, |l| l.p99)),
        ),
        (
            "accept latency max",
            format!("{} ms", cell(accept, |l| l.max)),
        ),
        (
            "generator lateness p99 (request written after its due time)",
            format!("{} ms", cell(late, |l| l.p99)),
        ),
        ("refused or failed requests", t.refused.to_string()),
        (
            "replies delivered, matched to their message",
            format!("{} of {}", t.replied, t.sent),
        ),
        ("replies lost", t.sent.saturating_sub(t.replied).to_string()),
        ("replies delivered twice", t.duplicates.to_string()),
        ("replies matching no message", t.unmatched.to_string()),
        (
            "replies with a bad signature / wrong conversation / no text",
            format!("{} / {} / {}", t.unsigned, t.wrong_conversation, t.empty),
        ),
        ("reply rate, measured", format!("{:.0}/s", t.reply_rate)),
        (
            "reply latency p50 (due time to callback)",
            format!("{} ms", cell(reply, |l| l.p50)),
        ),
        (
            "reply latency p99",
            format!("{} ms", cell(reply, |l| l.p99)),
        ),
        (
            "last reply after the last message's due time",
            t.drain
                .map_or_else(|| "-".to_owned(), |d| format!("{} ms", ms3(d))),
        ),
        (
            "CPU while sending, gateway / bench / others (cores)",
            usage.map_or_else(|| "-".to_owned(), |u| u.split()),
        ),
        (
            "gateway RSS after / peak",
            format!("{} / {}", mib(rss * 1024), mib(hwm * 1024)),
        ),
    ];
    for (name, value) in rows {
        text.push_str(&format!("| {name} | {value} |\n"));
    }
    if let Some(e) = &t.first_refusal {
        text.push_str(&format!("\nFirst refusal: `{e}`\n"));
    }
    let target = RATE as f64 * 0.99;
    let lossless = t.replied == t.sent && t.duplicates == 0 && t.unmatched == 0;
    let clean = t.refused == 0 && t.unsigned == 0 && t.wrong_conversation == 0 && t.empty == 0;
    let met = t.accept_rate >= target && t.reply_rate >= target && lossless && clean;
    text.push_str(&format!(
        "\n| target (issue 15) | result | |\n|---|---|---|\n| {RATE} inbound webhook messages/s sustained, no loss, replies delivered | accepted {:.0}/s, replied {:.0}/s, {} lost, {} twice | {} |\n",
        t.accept_rate,
        t.reply_rate,
        t.sent.saturating_sub(t.replied),
        t.duplicates,
        super::verdict(met)
    ));
    if !log.trim().is_empty() {
        text.push_str(&format!(
            "\nThe gateway's log ended with:\n\n```\n{}\n```\n",
            log.trim()
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_matched_to_their_message_once() {
        assert_eq!(reply_index("reply:e-42"), Some(42));
        assert_eq!(reply_index("e-42"), None);
        assert_eq!(reply_index("reply:e-x"), None);
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let sent: Vec<Sent> = (0..4)
            .map(|i| Sent {
                index: i,
                due: at(i * 10),
                started: at(i * 10),
                outcome: if i == 3 {
                    Err("status 500".to_owned())
                } else {
                    Ok(at(i * 10 + 2))
                },
            })
            .collect();
        let callback = |i: &str, ms: u64, conversation: &str| Callback {
            at: at(ms),
            event_id: format!("reply:e-{i}"),
            conversation: conversation.to_owned(),
            signed: true,
            text: true,
        };
        let callbacks = [
            callback("1", 15, "s-1"),
            callback("2", 25, "s-9"),
            callback("2", 26, "s-2"),
            callback("7", 27, "s-7"),
        ];
        // Message 0 is the warm-up.
        let t = tally(&sent, &callbacks, at(10), 1);
        assert_eq!((t.sent, t.measured, t.refused), (4, 2, 1));
        assert_eq!(t.first_refusal.as_deref(), Some("status 500"));
        assert_eq!(t.accept, [Duration::from_millis(2); 2]);
        assert_eq!((t.replied, t.duplicates, t.unmatched), (2, 1, 1));
        assert_eq!(t.wrong_conversation, 1);
        assert_eq!(t.reply, [Duration::from_millis(5); 2]);
        // Two accepted in 12 ms after the window's start; two replies in 15 ms.
        assert!(
            (t.accept_rate - 2.0 / 0.012).abs() < 1e-6,
            "{}",
            t.accept_rate
        );
        assert!(
            (t.reply_rate - 2.0 / 0.015).abs() < 1e-6,
            "{}",
            t.reply_rate
        );
        assert_eq!(t.drain, Some(Duration::ZERO));
    }

    #[test]
    fn requests_are_signed_over_timestamp_and_body() {
        let addr = "127.0.0.1:9".parse().unwrap();
        let raw = signed_request(addr, "k", 7, 1000);
        let head = super::super::http::parse_head(&raw).unwrap().unwrap();
        let body = &raw[head.len..];
        assert_eq!(body, event_body(7).as_bytes());
        assert_eq!(head.header("x-exoclaw-timestamp"), Some("1000"));
        assert_eq!(
            head.header("x-exoclaw-signature"),
            Some(sign(b"k", "1000", body).as_str())
        );
        assert_eq!(head.content_length(), Ok(Some(body.len())));
    }
}
