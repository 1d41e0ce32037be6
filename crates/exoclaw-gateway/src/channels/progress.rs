//! What a person on a channel sees while their answer is written, on
//! adapters that can show it (`ChannelInfo::can_type`, `can_react`,
//! `can_edit`) and as `channels.<name>.progress` allows: a typing indicator
//! (renewed every few seconds until text arrives), a reaction on their
//! message (👀 working, 👍 done, 👎 failed) and the answer streamed into a
//! placeholder message, edited at most once per `edit_interval_ms`.
//!
//! All of it is best effort: a refused typing, reaction or edit is logged at
//! debug and never fails the turn. The final answer is delivered by a last
//! edit of the placeholder when it fits one message; otherwise (no
//! placeholder, a long answer, a failed edit) it goes to the durable outbox
//! as before, and a placeholder left behind says so.

use crate::config::channels::ProgressConfig;
use exoclaw_core::agent::AgentEvent;
use exoclaw_core::channel::{Channel, Outgoing};
use std::time::{Duration, Instant};

/// Telegram's typing indicator lasts about five seconds.
pub const TYPING_EVERY: Duration = Duration::from_secs(4);

/// The longest text streamed into (or finally edited into) one message; a
/// longer answer goes through the outbox, which splits it.
const MAX_EDIT_CHARS: usize = 3000;

const WORKING: &str = "👀";
const DONE: &str = "👍";
const FAILED: &str = "👎";

/// One turn's progress on one channel.
pub struct Progress<'a> {
    adapter: &'a dyn Channel,
    peer: String,
    /// The person's message, for reactions.
    message: Option<String>,
    status: bool,
    stream: bool,
    interval: Duration,
    text: String,
    placeholder: Option<String>,
    /// What the placeholder shows now.
    shown: String,
    last_edit: Instant,
    last_typing: Option<Instant>,
}

impl<'a> Progress<'a> {
    pub fn new(
        adapter: &'a dyn Channel,
        config: &ProgressConfig,
        peer: &str,
        message: Option<String>,
    ) -> Self {
        let info = adapter.info();
        Self {
            adapter,
            peer: peer.to_owned(),
            message,
            status: config.status,
            stream: config.stream && info.can_edit,
            interval: Duration::from_millis(config.edit_interval_ms),
            text: String::new(),
            placeholder: None,
            shown: String::new(),
            last_edit: Instant::now(),
            last_typing: None,
        }
    }

    /// The turn started: the working reaction and the typing indicator.
    pub async fn start(&mut self) {
        self.react(WORKING).await;
        self.tick().await;
    }

    /// Renews the typing indicator while nothing is shown yet.
    pub async fn tick(&mut self) {
        if !self.status || !self.adapter.info().can_type || self.placeholder.is_some() {
            return;
        }
        if self.last_typing.is_some_and(|t| t.elapsed() < TYPING_EVERY) {
            return;
        }
        self.last_typing = Some(Instant::now());
        if let Err(e) = self.adapter.typing(&self.peer).await {
            tracing::debug!(error = %e, channel = %self.adapter.info().name, "typing indicator refused");
        }
    }

    /// One event of the turn: text is streamed.
    pub async fn event(&mut self, event: &AgentEvent) {
        if let AgentEvent::TextDelta(delta) = event {
            self.text.push_str(delta);
            self.show().await;
        } else {
            self.tick().await;
        }
    }

    /// Sends the placeholder, or edits it when the interval has passed.
    async fn show(&mut self) {
        if !self.stream || self.text.trim().is_empty() || self.text.chars().count() > MAX_EDIT_CHARS
        {
            return;
        }
        let preview = format!("{} …", self.text.trim_end());
        match &self.placeholder {
            None => {
                let out = Outgoing {
                    peer: self.peer.clone(),
                    text: preview.clone(),
                    idempotency_key: String::new(),
                };
                match self.adapter.send(&out).await {
                    Ok(sent) => {
                        self.placeholder = sent.platform_id;
                        self.shown = preview;
                        self.last_edit = Instant::now();
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, channel = %self.adapter.info().name, "cannot send the streaming placeholder; the answer comes when done");
                        self.stream = false;
                    }
                }
            }
            Some(id) => {
                if self.last_edit.elapsed() < self.interval || preview == self.shown {
                    return;
                }
                let id = id.clone();
                self.last_edit = Instant::now();
                if self.edit(&id, &preview).await {
                    self.shown = preview;
                }
            }
        }
    }

    async fn edit(&self, id: &str, text: &str) -> bool {
        match self.adapter.edit(&self.peer, id, text).await {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(error = %e, channel = %self.adapter.info().name, "an edit of the streamed answer was refused");
                false
            }
        }
    }

    async fn react(&self, emoji: &str) {
        let Some(message) = &self.message else { return };
        if !self.status || !self.adapter.info().can_react {
            return;
        }
        if let Err(e) = self.adapter.react(&self.peer, message, emoji).await {
            tracing::debug!(error = %e, channel = %self.adapter.info().name, "a status reaction was refused");
        }
    }

    /// The turn ended with `answer`: the last edit, the status reaction.
    /// Returns what still has to go through the outbox (empty when the
    /// placeholder now holds the whole answer).
    pub async fn finish(self, answer: String, ok: bool) -> String {
        self.react(if ok { DONE } else { FAILED }).await;
        let Some(id) = self.placeholder.clone() else {
            return answer;
        };
        if !answer.trim().is_empty()
            && answer.chars().count() <= MAX_EDIT_CHARS
            && self.edit(&id, &answer).await
        {
            return String::new();
        }
        // The outbox delivers it; the placeholder must not look like the answer.
        let _ = self.edit(&id, "(the answer follows below)").await;
        answer
    }
}
