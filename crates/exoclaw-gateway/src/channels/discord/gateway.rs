//! One connection to the Discord Gateway (v10, JSON): the WebSocket is an
//! HTTP/1.1 upgrade through the channel's egress client (so the Gateway's
//! name is checked and pinned like any request's; `wss://` is requested
//! as `https://`), then HELLO, IDENTIFY with the intents (or RESUME with
//! the session id and the last sequence number), heartbeats every
//! `heartbeat_interval` (the first after a random share of it), and
//! dispatches until the connection ends.
//!
//! How it ends decides what comes next ([`End`]): op 7 (reconnect), a
//! heartbeat without its ACK (a zombie connection), a dropped connection
//! and the resumable close codes (4000–4009 but 4004, 4007, 4009) resume
//! at `resume_gateway_url`; op 9 (invalid session) resumes when Discord
//! says it may, else identifies anew after 1–5 s; 4007, 4009 and other
//! codes identify anew; 4004 (authentication failed) is
//! [`ChannelError::Auth`] and 4010–4014 (shards, version, intents) are
//! [`ChannelError::Rejected`]: retrying cannot help. The client closes
//! with code 4900, never 1000 or 1001 (which would end the session).

use super::bot::DiscordChannel;
use super::message::{self, Me};
use exoclaw_core::channel::{ChannelError, InboundSink};
use exoclaw_egress::{Method, header};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use std::sync::PoisonError;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_util::sync::CancellationToken;

/// GUILDS, GUILD_MESSAGES, DIRECT_MESSAGES, MESSAGE_CONTENT.
pub const INTENTS: u64 = (1 << 0) | (1 << 9) | (1 << 12) | (1 << 15);
/// How long the upgrade and HELLO may take.
const HELLO_TIMEOUT: Duration = Duration::from_secs(20);
/// The largest Gateway message read (READY of a bot in many guilds is big).
const MAX_MESSAGE: usize = 16 << 20;
/// The code the client closes with: not 1000/1001, so the session stays
/// resumable.
const CLOSE_KEEP_SESSION: u16 = 4900;

type Socket = WebSocketStream<reqwest::Upgraded>;

/// How a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum End {
    /// The receiver was stopped.
    Stopped,
    /// Connect again and resume.
    Resume,
    /// Forget the session and identify anew (after 1–5 s when `wait`).
    Identify { wait: bool },
}

/// A close code as what to do.
pub(super) fn on_close(code: Option<u16>) -> Result<End, ChannelError> {
    match code {
        Some(4004) => Err(ChannelError::Auth),
        Some(c @ 4010..=4014) => Err(ChannelError::Rejected(format!(
            "the Discord gateway refused the session ({c}): check the bot's intents \
             (MESSAGE_CONTENT is privileged) and settings"
        ))),
        Some(4007 | 4009) => Ok(End::Identify { wait: false }),
        Some(4000..=4009) | None => Ok(End::Resume),
        Some(_) => Ok(End::Identify { wait: false }),
    }
}

/// `url` with the version and encoding asked for, unless it has a query.
pub(super) fn with_query(url: &str) -> String {
    if url.contains('?') {
        url.to_owned()
    } else {
        format!("{}/?v=10&encoding=json", url.trim_end_matches('/'))
    }
}

/// A random fraction in [0, 1).
fn jitter() -> f64 {
    let mut b = [0u8; 2];
    if getrandom::fill(&mut b).is_err() {
        return 0.5;
    }
    f64::from(u16::from_le_bytes(b)) / 65536.0
}

/// The pause before connecting again (100 to 500 ms): prompt, yet never a
/// tight loop against a Gateway that keeps ending connections.
pub(super) fn reconnect_pause() -> Duration {
    Duration::from_millis(100 + (jitter() * 400.0) as u64)
}

/// Discord's wait before identifying again after op 9: 1 to 5 seconds.
pub(super) fn invalid_session_wait() -> Duration {
    Duration::from_millis(1000 + (jitter() * 4000.0) as u64)
}

fn dropped(_: impl std::fmt::Debug) -> ChannelError {
    ChannelError::Unavailable("the Discord gateway connection dropped".to_owned())
}

async fn send(ws: &mut Socket, v: &Value) -> Result<(), ChannelError> {
    ws.send(Message::text(v.to_string())).await.map_err(dropped)
}

/// Close without ending the session, waiting briefly for the peer.
async fn close_keeping_session(ws: &mut Socket) {
    let frame = CloseFrame {
        code: CloseCode::from(CLOSE_KEEP_SESSION),
        reason: "reconnecting".into(),
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(Some(frame))).await;
}

impl DiscordChannel {
    /// The WebSocket upgrade through the egress client.
    async fn connect(&self, url: &str) -> Result<Socket, ChannelError> {
        use tokio_tungstenite::tungstenite::handshake::{client::generate_key, derive_accept_key};
        let http = crate::egress::http_form(&with_query(url));
        let key = generate_key();
        let request = self.client.request(Method::GET, &http).map_err(|r| {
            ChannelError::Rejected(format!("refused by the egress policy ({})", r.rule))
        })?;
        let request = request
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_VERSION, "13")
            .header(header::SEC_WEBSOCKET_KEY, &key);
        let resp = tokio::time::timeout(HELLO_TIMEOUT, request.send())
            .await
            .map_err(|_| ChannelError::Unavailable("the Discord gateway timed out".to_owned()))?
            .map_err(|_| {
                ChannelError::Unavailable("cannot reach the Discord gateway".to_owned())
            })?;
        let status = resp.status().as_u16();
        if status != 101 {
            return Err(ChannelError::Unavailable(format!(
                "the Discord gateway answered {status} instead of a WebSocket"
            )));
        }
        let accept = resp
            .headers()
            .get(header::SEC_WEBSOCKET_ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if accept != derive_accept_key(key.as_bytes()) {
            return Err(ChannelError::Unavailable(
                "the Discord gateway's WebSocket handshake is wrong".to_owned(),
            ));
        }
        let io = resp.upgrade().await.map_err(dropped)?;
        let config = WebSocketConfig::default().max_message_size(Some(MAX_MESSAGE));
        Ok(WebSocketStream::from_raw_socket(io, Role::Client, Some(config)).await)
    }

    fn seq(&self) -> Option<u64> {
        self.session
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .seq
    }

    async fn heartbeat(&self, ws: &mut Socket) -> Result<(), ChannelError> {
        send(ws, &json!({"op": 1, "d": self.seq()})).await
    }

    /// IDENTIFY, or RESUME when `resume` and a session is kept.
    async fn hello_back(&self, ws: &mut Socket, resume: bool) -> Result<(), ChannelError> {
        let token = self.token().await?;
        let kept = self
            .session
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let payload = match (resume, kept.id) {
            (true, Some(id)) => json!({"op": 6, "d": {
                "token": token.expose(), "session_id": id, "seq": kept.seq}}),
            _ => json!({"op": 2, "d": {
                "token": token.expose(),
                "intents": INTENTS,
                "properties": {"os": std::env::consts::OS, "browser": "exoclaw", "device": "exoclaw"}}}),
        };
        send(ws, &payload).await
    }

    /// A dispatch: READY and RESUMED establish the connection (`true`);
    /// MESSAGE_CREATE goes to the sink.
    async fn dispatch(&self, v: &Value, sink: &dyn InboundSink) -> bool {
        let d = &v["d"];
        match v["t"].as_str() {
            Some("READY") => {
                let me = Me {
                    id: d["user"]["id"].as_str().unwrap_or_default().to_owned(),
                    username: d["user"]["username"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                };
                {
                    let mut s = self.session.lock().unwrap_or_else(PoisonError::into_inner);
                    s.id = d["session_id"].as_str().map(str::to_owned);
                    s.resume_url = d["resume_gateway_url"].as_str().map(str::to_owned);
                }
                tracing::info!(channel = %self.info.name, bot = %me.username, "discord channel connected");
                *self.me.write().unwrap_or_else(PoisonError::into_inner) = me;
                true
            }
            Some("RESUMED") => {
                tracing::info!(channel = %self.info.name, "discord session resumed");
                true
            }
            Some("MESSAGE_CREATE") => {
                let me = self
                    .me
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                match message::parse(d, &me) {
                    Some(msg) => sink.deliver(msg).await,
                    None => {
                        tracing::debug!(channel = %self.info.name, "a message not for the bot; skipped")
                    }
                }
                false
            }
            _ => false,
        }
    }

    /// One connection (see the module docs): how it ended, and whether it
    /// got as far as READY or RESUMED.
    pub(super) async fn session(
        &self,
        url: &str,
        resume: bool,
        sink: &dyn InboundSink,
        stop: &CancellationToken,
    ) -> Result<(End, bool), ChannelError> {
        let mut ws = tokio::select! {
            () = stop.cancelled() => return Ok((End::Stopped, false)),
            ws = self.connect(url) => ws?,
        };
        let hello = tokio::select! {
            () = stop.cancelled() => return Ok((End::Stopped, false)),
            h = tokio::time::timeout(HELLO_TIMEOUT, ws.next()) => h,
        };
        let interval = match hello {
            Ok(Some(Ok(Message::Text(t)))) => serde_json::from_str::<Value>(&t)
                .ok()
                .filter(|v| v["op"] == 10)
                .and_then(|v| v["d"]["heartbeat_interval"].as_u64()),
            _ => None,
        };
        let Some(interval) = interval else {
            return Err(ChannelError::Unavailable(
                "the Discord gateway sent no HELLO".to_owned(),
            ));
        };
        let interval = Duration::from_millis(interval.clamp(50, 600_000));
        self.hello_back(&mut ws, resume).await?;
        let mut next_beat = Instant::now() + interval.mul_f64(jitter());
        let mut acked = true;
        let mut established = false;
        loop {
            tokio::select! {
                () = stop.cancelled() => {
                    let frame = CloseFrame { code: CloseCode::Normal, reason: "".into() };
                    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(Some(frame))).await;
                    return Ok((End::Stopped, established));
                }
                () = tokio::time::sleep_until(next_beat) => {
                    if !acked {
                        tracing::warn!(channel = %self.info.name, "no heartbeat ACK from the Discord gateway (a zombie connection); reconnecting to resume");
                        close_keeping_session(&mut ws).await;
                        return Ok((End::Resume, established));
                    }
                    if self.heartbeat(&mut ws).await.is_err() {
                        return Ok((End::Resume, established));
                    }
                    acked = false;
                    next_beat = Instant::now() + interval;
                }
                frame = ws.next() => {
                    let text = match frame {
                        None | Some(Err(_)) => {
                            tracing::info!(channel = %self.info.name, "the Discord gateway connection dropped; resuming");
                            return Ok((End::Resume, established));
                        }
                        Some(Ok(Message::Close(frame))) => {
                            let code = frame.map(|f| u16::from(f.code));
                            tracing::info!(channel = %self.info.name, code, "the Discord gateway closed the connection");
                            return on_close(code).map(|end| (end, established));
                        }
                        Some(Ok(Message::Text(t))) => t,
                        Some(Ok(_)) => continue,
                    };
                    let Ok(v) = serde_json::from_str::<Value>(&text) else {
                        tracing::warn!(channel = %self.info.name, "a malformed Discord gateway payload; skipped");
                        continue;
                    };
                    if let Some(s) = v["s"].as_u64() {
                        self.session.lock().unwrap_or_else(PoisonError::into_inner).seq = Some(s);
                    }
                    match v["op"].as_u64() {
                        Some(0) => established |= self.dispatch(&v, sink).await,
                        Some(1) => {
                            // Asked for one now.
                            let sent = self.heartbeat(&mut ws).await;
                            if sent.is_err() {
                                return Ok((End::Resume, established));
                            }
                        }
                        Some(7) => {
                            tracing::info!(channel = %self.info.name, "the Discord gateway asked to reconnect; resuming");
                            close_keeping_session(&mut ws).await;
                            return Ok((End::Resume, established));
                        }
                        Some(9) => {
                            let resumable = v["d"] == true;
                            tracing::info!(channel = %self.info.name, resumable, "the Discord gateway invalidated the session");
                            close_keeping_session(&mut ws).await;
                            return Ok((if resumable { End::Resume } else { End::Identify { wait: true } }, established));
                        }
                        Some(11) => {
                            acked = true;
                            self.last_ack.store(exoclaw_core::now_ms(), std::sync::atomic::Ordering::Relaxed);
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_resume_identify_or_stop() {
        assert!(matches!(on_close(Some(4004)), Err(ChannelError::Auth)));
        for c in [4010, 4011, 4012, 4013, 4014] {
            assert!(
                matches!(on_close(Some(c)), Err(ChannelError::Rejected(_))),
                "{c}"
            );
        }
        for c in [4000, 4001, 4002, 4003, 4005, 4008] {
            assert_eq!(on_close(Some(c)).unwrap(), End::Resume, "{c}");
        }
        assert_eq!(on_close(None).unwrap(), End::Resume);
        for c in [4007, 4009, 1000, 1001, 1011, 4900] {
            assert_eq!(
                on_close(Some(c)).unwrap(),
                End::Identify { wait: false },
                "{c}"
            );
        }
        assert_eq!(INTENTS, 37377);
        assert_eq!(
            with_query("wss://gateway.discord.gg"),
            "wss://gateway.discord.gg/?v=10&encoding=json"
        );
        assert_eq!(with_query("ws://h/x?v=10"), "ws://h/x?v=10");
        for _ in 0..50 {
            let p = reconnect_pause();
            assert!(p >= Duration::from_millis(100) && p <= Duration::from_millis(500));
            let w = invalid_session_wait();
            assert!(
                w >= Duration::from_secs(1) && w <= Duration::from_secs(5),
                "{w:?}"
            );
        }
    }
}
