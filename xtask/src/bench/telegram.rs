//! The Telegram half of `cargo xtask bench channels`: from an update handed out by a long poll
//! to the first streamed output in the chat, and the gateway's share of it.
//!
//! A std fake Bot API ([`FakeBot`]) answers `getMe`, holds `getUpdates` long polls until an
//! update is queued (and notes when each update was handed out: when the poll's answer was
//! made, just before it is written), and records `sendMessage`, `editMessageText`,
//! `sendChatAction` and `setMessageReaction` with the instant each request had fully arrived.
//! The fake provider answers at once (its whole stream in one write) and notes when each
//! request arrived and when its answer was ready to write (the write itself is left out: once
//! written, the gateway may run before the fake's thread does): the provider's own time to
//! first token, taken per turn.
//!
//! One update at a time (so each measures the gateway, not a queue): [`SAMPLES`] private chats
//! each send a first message (a new sender: a user and a session are made), then each sends a
//! second (a known sender, an existing session). A turn ends with the final edit.
//!
//! The first streamed output is the placeholder `sendMessage` (the answer so far, `… `-ended),
//! sent at the first text delta: `progress.rs` does not throttle it. `edit_interval_ms` (kept
//! at its default) only spaces the edits between the placeholder and the end, and the final
//! edit is sent at the end whatever the interval; with an answer streamed at once there are no
//! edits in between, so the throttle is no part of the figures.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::fake_llm::{FakeLlm, config_with_channels, start_gateway_with};
use super::fake_server::{self, FakeServer, json_int};
use super::load::{Latency, ms3};
use super::{Context, cpu};
use crate::error::{Context as _, Result, bail};

/// Chats, each sending two messages.
pub const SAMPLES: u64 = 100;
const TOKEN: &str = "4242:bench-bot-token-0123456789abcdef";
const BOT_ID: i64 = 4242;
const BOT_NAME: &str = "bench_bot";
/// The first chat id (chat `FIRST_CHAT + k` is sample `k`'s).
const FIRST_CHAT: i64 = 1000;
const TURN_TIMEOUT: Duration = Duration::from_secs(30);
/// The target: the gateway's share of update → first streamed output, p50.
const TARGET_P50_MS: f64 = 5.0;

/// What the fake Bot API saw.
#[derive(Default)]
struct Bot {
    /// Queued updates: id and JSON.
    updates: Vec<(i64, String)>,
    /// When each update was first handed out.
    handed: HashMap<i64, Instant>,
    /// `getUpdates` calls waiting now.
    polling: usize,
    calls: Vec<Call>,
    next_message_id: i64,
}

#[derive(Clone)]
struct Call {
    method: String,
    chat: Option<i64>,
    at: Instant,
}

struct FakeBot {
    state: Arc<(Mutex<Bot>, Condvar)>,
    server: FakeServer,
}

impl FakeBot {
    fn start() -> Result<Self> {
        let state = Arc::new((Mutex::new(Bot::default()), Condvar::new()));
        let shared = state.clone();
        let server = FakeServer::start(
            "telegram",
            Arc::new(move |r: &fake_server::Request| answer(&shared, r)),
        )?;
        Ok(Self { state, server })
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Bot>> {
        self.state
            .0
            .lock()
            .map_err(|_| crate::error::Error::msg("the fake Bot API's state is poisoned"))
    }

    fn push(&self, id: i64, chat: i64) -> Result<()> {
        self.lock()?.updates.push((id, update(id, chat)));
        self.state.1.notify_all();
        Ok(())
    }

    /// Waits until `ready` holds of the state (or the timeout).
    fn wait(&self, timeout: Duration, ready: impl Fn(&Bot) -> bool) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        loop {
            if ready(&*self.lock()?) {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

/// The JSON of update `id`: a private message from chat `chat`.
fn update(id: i64, chat: i64) -> String {
    format!(
        r#"{{"update_id":{id},"message":{{"message_id":{id},"date":0,"text":"hi","chat":{{"id":{chat},"type":"private"}},"from":{{"id":{chat},"is_bot":false,"first_name":"Bench"}}}}}}"#
    )
}

/// The Bot API method of a request path `/bot<token>/<method>`, if the token is ours.
fn method_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/bot")?;
    let (token, method) = rest.split_once('/')?;
    (token == TOKEN).then_some(method)
}

fn ok(result: &str) -> Vec<u8> {
    fake_server::response(200, &format!(r#"{{"ok":true,"result":{result}}}"#))
}

fn answer(state: &(Mutex<Bot>, Condvar), r: &fake_server::Request) -> Vec<u8> {
    let Some(method) = method_of(&r.path) else {
        return fake_server::response(
            401,
            r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#,
        );
    };
    let body = String::from_utf8_lossy(&r.body);
    let Ok(mut bot) = state.0.lock() else {
        return fake_server::response(500, "");
    };
    match method {
        "getMe" => ok(&format!(
            r#"{{"id":{BOT_ID},"is_bot":true,"username":"{BOT_NAME}"}}"#
        )),
        "getUpdates" => {
            let offset = json_int(&body, "offset").unwrap_or(0);
            let wait = Duration::from_secs(json_int(&body, "timeout").unwrap_or(0).max(0) as u64);
            let deadline = Instant::now() + wait;
            bot.polling += 1;
            loop {
                let due: Vec<&(i64, String)> =
                    bot.updates.iter().filter(|(id, _)| *id >= offset).collect();
                let now = Instant::now();
                if !due.is_empty() || now >= deadline {
                    let list: Vec<&str> = due.iter().map(|(_, json)| json.as_str()).collect();
                    let ids: Vec<i64> = due.iter().map(|(id, _)| *id).collect();
                    let result = format!("[{}]", list.join(","));
                    for id in ids {
                        bot.handed.entry(id).or_insert(now);
                    }
                    bot.polling -= 1;
                    return ok(&result);
                }
                bot = match state.1.wait_timeout(bot, deadline - now) {
                    Ok((bot, _)) => bot,
                    Err(_) => return fake_server::response(500, ""),
                };
            }
        }
        "sendMessage" | "editMessageText" | "sendChatAction" | "setMessageReaction" => {
            bot.calls.push(Call {
                method: method.to_owned(),
                chat: json_int(&body, "chat_id"),
                at: r.arrived,
            });
            if method == "sendMessage" {
                bot.next_message_id += 1;
                let chat = json_int(&body, "chat_id").unwrap_or_default();
                ok(&format!(
                    r#"{{"message_id":{},"date":0,"chat":{{"id":{chat},"type":"private"}}}}"#,
                    bot.next_message_id + 1_000_000
                ))
            } else {
                ok("true")
            }
        }
        _ => ok("true"),
    }
}

/// One turn's timeline, from the update's handing out.
#[derive(Clone, Copy, Default)]
struct Turn {
    /// The 👀 reaction, the typing indicator, the provider's request, the placeholder, the
    /// final edit (each the first of its kind in the chat after the update).
    reaction: Option<Duration>,
    typing: Option<Duration>,
    provider_request: Option<Duration>,
    placeholder: Option<Duration>,
    final_edit: Option<Duration>,
    /// The provider's own time: request arrived to answer ready.
    provider: Option<Duration>,
    /// The provider's answer ready to the placeholder's arrival.
    after_provider: Option<Duration>,
}

impl Turn {
    /// The gateway's share: update → placeholder minus the provider's own time.
    fn overhead(&self) -> Option<Duration> {
        Some(self.placeholder?.saturating_sub(self.provider?))
    }
}

/// The timeline of the turn of update `id` in chat `chat`, once its final edit arrived.
fn timeline(bot: &Bot, id: i64, chat: i64, provider: Option<(Instant, Instant)>) -> Turn {
    let Some(&handed) = bot.handed.get(&id) else {
        return Turn::default();
    };
    let first = |method: &str| {
        bot.calls
            .iter()
            .filter(|c| c.method == method && c.chat == Some(chat) && c.at >= handed)
            .map(|c| c.at)
            .min()
    };
    let since = |at: Option<Instant>| at.map(|at| at.saturating_duration_since(handed));
    let placeholder = first("sendMessage");
    let provider = provider.filter(|(arrived, _)| *arrived >= handed);
    Turn {
        reaction: since(first("setMessageReaction")),
        typing: since(first("sendChatAction")),
        provider_request: since(provider.map(|(arrived, _)| arrived)),
        placeholder: since(placeholder),
        final_edit: since(first("editMessageText")),
        provider: provider.map(|(arrived, written)| written.saturating_duration_since(arrived)),
        after_provider: match (provider, placeholder) {
            (Some((_, written)), Some(p)) => Some(p.saturating_duration_since(written)),
            _ => None,
        },
    }
}

pub fn run(ctx: &Context) -> Result<String> {
    let bot = FakeBot::start()?;
    let fake = FakeLlm::start()?;
    let channel = format!(
        r#"{{"tg": {{"type": "telegram", "dm_policy": "open", "telegram": {{"api_base": "{}", "poll_timeout_sec": 30}}}}}}"#,
        bot.server.base_url()
    );
    let gateway = start_gateway_with(
        ctx,
        &fake,
        "channels-telegram",
        &config_with_channels(&channel),
        &[("EXOCLAW_TELEGRAM_BOT_TOKEN", TOKEN)],
    )?;
    let pid = gateway.pid().context("the gateway is not running")?;
    if !bot.wait(Duration::from_secs(20), |b| b.polling > 0)? {
        bail!(
            "the gateway never polled the fake Bot API{}",
            gateway.log_tail()
        );
    }
    eprintln!("xtask: channels: telegram, {SAMPLES} chats × 2 messages, one at a time");
    let before = cpu::Snapshot::take(pid)?;
    let mut rounds = [Vec::new(), Vec::new()];
    let mut id = 0;
    for (round, turns) in rounds.iter_mut().enumerate() {
        for k in 0..SAMPLES {
            id += 1;
            let chat = FIRST_CHAT + k as i64;
            // The adapter is waiting in its next long poll: the update is handed out at once.
            if !bot.wait(TURN_TIMEOUT, |b| b.polling > 0)? {
                bail!("the gateway stopped polling{}", gateway.log_tail());
            }
            bot.push(id, chat)?;
            let done = bot.wait(TURN_TIMEOUT, |b| {
                b.handed.get(&id).is_some_and(|&handed| {
                    b.calls.iter().any(|c| {
                        c.method == "editMessageText" && c.chat == Some(chat) && c.at >= handed
                    })
                })
            })?;
            if !done {
                bail!(
                    "update {id} (round {}) got no final edit within {} s{}",
                    round + 1,
                    TURN_TIMEOUT.as_secs(),
                    gateway.log_tail()
                );
            }
            turns.push(timeline(&*bot.lock()?, id, chat, fake.last_timing()));
        }
    }
    let usage = cpu::Snapshot::take(pid)?.since(&before);
    let log = gateway.log_lines(5);
    gateway.stop()?;
    Ok(report(&rounds, usage, &log))
}

fn report(rounds: &[Vec<Turn>; 2], usage: cpu::Usage, log: &str) -> String {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let mut text = format!(
        "#### Telegram: update to first streamed output\n\n\
         A std fake Bot API (long-polled `getUpdates`; `sendMessage`, `editMessageText`, \
         `sendChatAction`, `setMessageReaction` recorded as they arrive) and the fake provider, \
         which answers at once. {SAMPLES} private chats send a first message each (new sender: \
         a user and a session are made), then a second each (known sender); one update at a \
         time, each handed out to a waiting long poll. Times are from the update's handing out. \
         The first streamed output is the placeholder `sendMessage` (the answer so far), sent at \
         the first text delta and not throttled; the final `editMessageText` is sent when the \
         turn ends, also not throttled; `progress.edit_interval_ms` (default 1000) only spaces \
         edits in between, of which an answer streamed at once has none. The gateway's share is \
         update → placeholder minus the provider's own time (its request fully arrived to its \
         answer ready to write, taken per turn at the fake). Gateway on SQLite; **fakes and gateway \
         share the same {cores} cores.**\n\n"
    );
    text.push_str(
        "| message | turns | 👀 reaction | typing | provider request | provider's own time | provider answer → placeholder | **placeholder (first output)** | final edit | **gateway's share** p50 | p99 |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut verdicts = Vec::new();
    for (name, turns) in ["first of a new sender", "second, known sender"]
        .iter()
        .zip(rounds)
    {
        let p50 = |pick: fn(&Turn) -> Option<Duration>| {
            let mut v: Vec<Duration> = turns.iter().filter_map(pick).collect();
            v.sort_unstable();
            Latency::of_sorted(&v)
        };
        let cell = |l: Option<Latency>| l.map_or_else(|| "-".to_owned(), |l| ms3(l.p50));
        let share = p50(Turn::overhead);
        text.push_str(&format!(
            "| {name} | {} | {} | {} | {} | {} | {} | **{}** | {} | **{}** | {} |\n",
            turns.len(),
            cell(p50(|t| t.reaction)),
            cell(p50(|t| t.typing)),
            cell(p50(|t| t.provider_request)),
            cell(p50(|t| t.provider)),
            cell(p50(|t| t.after_provider)),
            cell(p50(|t| t.placeholder)),
            cell(p50(|t| t.final_edit)),
            cell(share),
            share.map_or_else(|| "-".to_owned(), |l| ms3(l.p99)),
        ));
        let value = share.map(|l| l.p50.as_secs_f64() * 1000.0);
        verdicts.push((
            *name,
            value.is_some_and(|v| v <= TARGET_P50_MS),
            value.map_or_else(|| "-".to_owned(), |v| format!("{v:.3} ms")),
        ));
    }
    text.push_str("\nColumns are p50 in ms (the last p99), each from the update's handing out except the provider's own time and provider answer → placeholder.\n");
    text.push_str(&format!(
        "CPU over the {} turns, gateway / bench / others: {} cores.\n",
        rounds.iter().map(Vec::len).sum::<usize>(),
        usage.split()
    ));
    text.push_str("\n| target (issue 15) | result | |\n|---|---|---|\n");
    for (name, met, value) in verdicts {
        text.push_str(&format!(
            "| gateway overhead, update → first streamed output, p50 ≤ 5 ms ({name}) | {value} | {} |\n",
            super::verdict(met)
        ));
    }
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
    use super::super::fake_server::json_str;
    use super::*;

    #[test]
    fn the_bot_api_path_names_the_method_under_our_token_only() {
        assert_eq!(
            method_of(&format!("/bot{TOKEN}/getUpdates")),
            Some("getUpdates")
        );
        assert_eq!(method_of("/bot1:other/getUpdates"), None);
        assert_eq!(method_of("/getUpdates"), None);
        let u = update(7, 1001);
        assert_eq!(json_int(&u, "update_id"), Some(7));
        assert_eq!(json_str(&u, "text"), Some("hi"));
    }

    #[test]
    fn a_turn_is_timed_from_its_handing_out() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let call = |method: &str, chat: i64, ms: u64| Call {
            method: method.to_owned(),
            chat: Some(chat),
            at: at(ms),
        };
        let mut bot = Bot::default();
        bot.handed.insert(2, at(10));
        bot.calls = vec![
            // An earlier turn of the same chat, and another chat: not this turn's.
            call("sendMessage", 1000, 5),
            call("sendMessage", 1001, 12),
            call("setMessageReaction", 1000, 11),
            call("sendChatAction", 1000, 12),
            call("sendMessage", 1000, 16),
            call("editMessageText", 1000, 18),
            call("sendMessage", 1000, 19),
        ];
        let t = timeline(&bot, 2, 1000, Some((at(13), at(14))));
        let ms = |n: u64| Some(Duration::from_millis(n));
        assert_eq!(t.reaction, ms(1));
        assert_eq!(t.typing, ms(2));
        assert_eq!(t.provider_request, ms(3));
        assert_eq!(t.provider, ms(1));
        assert_eq!(t.placeholder, ms(6));
        assert_eq!(t.after_provider, ms(2));
        assert_eq!(t.final_edit, ms(8));
        assert_eq!(t.overhead(), ms(5));
        // A provider call from before the update is not this turn's.
        let t = timeline(&bot, 2, 1000, Some((at(9), at(9))));
        assert_eq!((t.provider, t.overhead()), (None, None));
        assert!(timeline(&bot, 3, 1000, None).placeholder.is_none());
    }
}
