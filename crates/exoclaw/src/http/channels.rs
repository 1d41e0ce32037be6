//! `/v1/channels`: the channels' state (`GET`, gateway-level operators),
//! and the signed generic webhook (`POST /v1/channels/webhook/{name}`,
//! public: the HMAC signature is its credential; see
//! `exoclaw_gateway::channels::webhook`). A refused webhook request
//! (signature, timestamp, size, replay, body) is audited as
//! `channel.webhook_refused` with the reason, never the body.

use super::error::{ApiError, ErrorBody, ErrorCode};
use super::extract::Path;
use super::state::AppState;
use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use exoclaw_core::channel::{ChatKind, InboundMessage};
use exoclaw_core::model::NewAuditEvent;
use exoclaw_core::{DEFAULT_TENANT, TenantId};
use exoclaw_gateway::access::Principal;
use exoclaw_gateway::channels::telegram;
use exoclaw_gateway::channels::webhook::{self, Refusal, WebhookEvent};
use exoclaw_gateway::channels::{ChannelStatus, Dedup, Handled};
use serde::Serialize;
use std::time::Duration;
use utoipa::ToSchema;

const WEBHOOK_PREFIX: &str = "/v1/channels/webhook/";

/// The webhook paths of a channel (signed generic webhooks, Telegram's),
/// authenticated by a signature or a secret token rather than a bearer
/// credential.
pub fn is_public(path: &str) -> bool {
    [WEBHOOK_PREFIX, telegram::HOOK_PREFIX]
        .iter()
        .any(|prefix| {
            path.strip_prefix(prefix)
                .is_some_and(|name| !name.is_empty() && !name.contains('/'))
        })
}

/// The largest Telegram update accepted.
const MAX_UPDATE_BYTES: usize = 1 << 20;

/// An update from Telegram to a channel in webhook mode
/// (`telegram.webhook_url`): the secret token the gateway registered must
/// come in `X-Telegram-Bot-Api-Secret-Token`. Answered at once; the reply
/// goes through the outbox.
#[utoipa::path(post, path = "/v1/channels/telegram/{name}", tag = "channels",
    params(("name" = String, Path, description = "The channel (`channels.<name>`)")),
    request_body(content = String, description = "A Telegram `Update` object", content_type = "application/json"),
    responses(
        (status = 200, description = "Taken (or a repeat, or not a text message)"),
        (status = 400, description = "Not an update (`request.invalid`)", body = ErrorBody),
        (status = 401, description = "No or a wrong secret token (`channel.signature_invalid`)", body = ErrorBody),
        (status = 404, description = "No Telegram channel of that name (`channel.unknown`)", body = ErrorBody),
        (status = 413, description = "Larger than 1 MiB (`request.too_large`)", body = ErrorBody),
        (status = 503, description = "The webhook is not registered yet (`channel.not_ready`)", body = ErrorBody),
    ))]
pub async fn telegram_update(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let channels = state.channels.clone();
    let Some(tg) = channels.telegram(&name) else {
        return Err(ApiError::new(
            ErrorCode::ChannelUnknown,
            "no such Telegram channel",
        ));
    };
    if body.len() > MAX_UPDATE_BYTES {
        return Err(refused(&state, &name, Refusal::TooLarge).await);
    }
    let token = headers
        .get(telegram::HOOK_HEADER)
        .and_then(|v| v.to_str().ok());
    let msg = match tg.accept(token, &body) {
        Ok(Some(msg)) => msg,
        Ok(None) => return Ok(StatusCode::OK),
        Err(why) => {
            let why = match why {
                telegram::HookRefusal::NotReady => Refusal::NoSecret,
                telegram::HookRefusal::BadSecret => Refusal::BadSignature,
                telegram::HookRefusal::Malformed => Refusal::Malformed,
            };
            return Err(refused(&state, &name, why).await);
        }
    };
    // Noted before answering: Telegram sends an update again until it gets
    // a 200, and a repeat is dropped here.
    if channels.first_seen(&name, &msg.platform_id).await? {
        channels.answer_later(&name, msg, Dedup::Done);
    }
    Ok(StatusCode::OK)
}

/// One channel's state.
#[derive(Clone, Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ChannelView {
    pub name: String,
    /// The adapter: `webhook`, ...
    pub kind: String,
    /// Its receiver runs.
    pub running: bool,
    /// Unix milliseconds of the last inbound message, if any.
    pub last_inbound_at: Option<i64>,
    /// Unix milliseconds of the last delivered outbound message, if any.
    pub last_outbound_at: Option<i64>,
    /// Times its receiver was started again after it ended.
    pub restarts: u64,
    /// Outbox messages waiting to be sent (-1: the store did not answer).
    pub queue_depth: i64,
    pub inbound: u64,
    /// Inbound messages dropped as repeats of one handled before.
    pub duplicates: u64,
    pub sent: u64,
    /// Failed deliveries (each retried or dead-lettered).
    pub failed: u64,
    /// Messages dead-lettered after `outbox.max_attempts` failures.
    pub dead: u64,
    /// Inbound messages being handled now.
    pub pending: u64,
    /// Webhook requests refused because `webhook.max_pending` were pending.
    pub busy: u64,
    pub last_error: Option<String>,
}

impl From<ChannelStatus> for ChannelView {
    fn from(s: ChannelStatus) -> Self {
        Self {
            name: s.name,
            kind: s.kind.to_owned(),
            running: s.running,
            last_inbound_at: s.last_inbound_at,
            last_outbound_at: s.last_outbound_at,
            restarts: s.restarts,
            queue_depth: s.queue_depth,
            inbound: s.inbound,
            duplicates: s.duplicates,
            sent: s.sent,
            failed: s.failed,
            dead: s.dead,
            pending: s.pending,
            busy: s.busy,
            last_error: s.last_error,
        }
    }
}

#[derive(Clone, Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ChannelList {
    pub channels: Vec<ChannelView>,
}

/// What a webhook request became.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WebhookReply {
    /// `replied` (the answer is `reply`), `accepted` (the answer goes to
    /// the callback URL), `ignored` (the sender policy dropped it).
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
}

/// The configured channels and their state.
#[utoipa::path(get, path = "/v1/channels", tag = "channels",
    responses(
        (status = 200, description = "Every configured channel's state", body = ChannelList),
        (status = 403, description = "Not a gateway-level principal (`auth.forbidden`)", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<ChannelList>, ApiError> {
    if !who.is_gateway_level() {
        return Err(ApiError::forbidden("channels are the gateway's"));
    }
    let channels = state.channels.status().await;
    Ok(Json(ChannelList {
        channels: channels.into_iter().map(ChannelView::from).collect(),
    }))
}

/// A message through a signed webhook channel.
#[utoipa::path(post, path = "/v1/channels/webhook/{name}", tag = "channels",
    params(("name" = String, Path, description = "The channel's configured name")),
    request_body(content = String, description = "JSON: `event_id`, `sender_id`, \
        `sender_name` (optional), `conversation_id` (optional), `text`; signed by the \
        `X-Exoclaw-Timestamp` (Unix seconds) and `X-Exoclaw-Signature` \
        (`sha256=<hex HMAC-SHA256 of \"<timestamp>.<body>\">`) headers", content_type = "application/json"),
    responses(
        (status = 200, description = "Answered (`replied`) or dropped by the sender policy (`ignored`)", body = WebhookReply),
        (status = 202, description = "Accepted; the answer goes to the callback URL", body = WebhookReply),
        (status = 400, description = "The body is not an event (`request.invalid`)", body = ErrorBody),
        (status = 401, description = "Signature or timestamp do not verify (`channel.signature_invalid`)", body = ErrorBody),
        (status = 404, description = "No webhook channel of that name (`channel.unknown`)", body = ErrorBody),
        (status = 409, description = "The event id was seen before (`channel.replay`)", body = ErrorBody),
        (status = 413, description = "Larger than `webhook.max_body_bytes` (`request.too_large`)", body = ErrorBody),
        (status = 503, description = "No webhook secret stored yet (`channel.not_ready`)", body = ErrorBody),
    ))]
pub async fn webhook(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<WebhookReply>), ApiError> {
    let channels = state.channels.clone();
    let Some(hook) = channels.webhook(&name) else {
        return Err(ApiError::new(
            ErrorCode::ChannelUnknown,
            "no such webhook channel",
        ));
    };
    let cfg = hook.config().clone();
    let refuse = |why: Refusal| refused(&state, &name, why);
    if body.len() > cfg.max_body_bytes {
        return Err(refuse(Refusal::TooLarge).await);
    }
    let secret = match hook.secret().await {
        Ok(Some(s)) => s,
        Ok(None) => return Err(refuse(Refusal::NoSecret).await),
        Err(e) => {
            tracing::warn!(error = %e, channel = %name, "cannot read a webhook secret");
            return Err(ApiError::new(
                ErrorCode::VaultUnavailable,
                "cannot read the webhook secret",
            ));
        }
    };
    let header = |h: &str| headers.get(h).and_then(|v| v.to_str().ok()).unwrap_or("");
    let now_sec = exoclaw_core::now_ms() / 1000;
    if let Err(why) = webhook::verify(
        secret.expose().as_bytes(),
        header(webhook::TIMESTAMP_HEADER),
        header(webhook::SIGNATURE_HEADER),
        &body,
        now_sec,
        Duration::from_secs(cfg.max_skew_sec),
    ) {
        return Err(refuse(why).await);
    }
    let Ok(event) = serde_json::from_slice::<WebhookEvent>(&body) else {
        return Err(refuse(Refusal::Malformed).await);
    };
    if event.event_id.is_empty() || event.event_id.len() > 256 {
        return Err(refuse(Refusal::Malformed).await);
    }
    // Bounded before it is noted as seen: a refused event is taken when
    // the sender retries it.
    let Some(held) = channels.admit(&name, cfg.max_pending) else {
        return Err(ApiError::new(
            ErrorCode::ServerBusy,
            format!(
                "{} messages of this channel are being handled (webhook.max_pending); retry shortly",
                cfg.max_pending
            ),
        ));
    };
    match channels.first_seen(&name, &event.event_id).await {
        Ok(true) => {}
        Ok(false) => return Err(refuse(Refusal::Replay).await),
        Err(e) => return Err(ApiError::from(e)),
    }
    let msg = InboundMessage {
        platform_id: event.event_id,
        peer: event
            .conversation_id
            .clone()
            .unwrap_or_else(|| event.sender_id.clone()),
        sender_name: event.sender_name.unwrap_or_default(),
        sender_id: event.sender_id,
        chat: ChatKind::Direct,
        account: None,
        mentioned: true,
        text: event.text,
        message_ref: None,
        files: Vec::new(),
    };
    if cfg.callback_url.is_some() {
        channels.answer_held(&name, msg, Dedup::Done, Some(held));
        return Ok((StatusCode::ACCEPTED, Json(reply("accepted", None))));
    }
    let wait = Duration::from_secs(cfg.reply_timeout_sec);
    let answered = tokio::time::timeout(wait, channels.handle_seen(&name, msg)).await;
    drop(held);
    match answered {
        Ok(Handled::Reply(text)) => Ok((StatusCode::OK, Json(reply("replied", Some(text))))),
        Ok(Handled::Ignored(_) | Handled::Duplicate) => {
            Ok((StatusCode::OK, Json(reply("ignored", None))))
        }
        Ok(Handled::Failed(code)) => Err(ApiError::new(
            ErrorCode::Internal,
            format!("the message could not be handled ({code})"),
        )),
        Err(_) => Err(ApiError::new(
            ErrorCode::ServerBusy,
            "no answer within webhook.reply_timeout_sec",
        )),
    }
}

fn reply(status: &str, text: Option<String>) -> WebhookReply {
    WebhookReply {
        status: status.to_owned(),
        reply: text,
    }
}

/// Audit a refused request and answer it.
async fn refused(state: &AppState, name: &str, why: Refusal) -> ApiError {
    let mut event = NewAuditEvent::new(
        TenantId::new(DEFAULT_TENANT),
        "anonymous",
        "channel.webhook_refused",
        format!("channel:{name}"),
        "deny",
    );
    why.as_str().clone_into(&mut event.reason);
    exoclaw_gateway::audit::record(state.store.as_ref(), &event).await;
    tracing::warn!(event = "channel.webhook_refused", channel = %name, reason = why.as_str(), "a webhook request was refused");
    match why {
        Refusal::TooLarge => ApiError::new(
            ErrorCode::RequestTooLarge,
            "the body is larger than webhook.max_body_bytes",
        ),
        Refusal::Replay => ApiError::new(ErrorCode::ChannelReplay, "this event id was seen before"),
        Refusal::Malformed => {
            ApiError::new(ErrorCode::RequestInvalid, "the body is not a webhook event")
        }
        Refusal::NoSecret => ApiError::new(
            ErrorCode::ChannelNotReady,
            "no webhook secret is stored for this channel",
        ),
        Refusal::BadHeaders | Refusal::Skew | Refusal::BadSignature => ApiError::new(
            ErrorCode::ChannelSignatureInvalid,
            "the signature or timestamp does not verify",
        ),
    }
}

/// A test message to send.
#[derive(Clone, Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelTest {
    /// The chat it goes to, as the adapter names it (a Telegram chat id,
    /// `chat:topic` for a forum topic; a Discord channel or thread id).
    pub to: String,
    /// Default: "exoclaw test message".
    pub text: Option<String>,
}

/// What became of a test message.
#[derive(Clone, Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ChannelTestResult {
    /// `sent`, `pending` (not delivered within 15 s: still retried by the
    /// outbox) or `dead`.
    pub status: String,
    /// The platform's id of the delivered message.
    pub platform_id: Option<String>,
    /// Failed deliveries so far.
    pub attempts: i64,
    /// The last failure, short and without secrets.
    pub last_error: Option<String>,
}

/// Send a test message through a running channel, by its outbox like any
/// reply, and wait up to 15 s for the outcome (audited as `channel.test`).
#[utoipa::path(post, path = "/v1/channels/{name}/test", tag = "channels",
    params(("name" = String, Path, description = "The channel (`channels.<name>`)")),
    request_body = ChannelTest,
    responses(
        (status = 200, description = "Delivered, still pending, or dead-lettered", body = ChannelTestResult),
        (status = 400, description = "No `to`, or a text too long", body = ErrorBody),
        (status = 403, description = "Not a gateway-level principal (`auth.forbidden`)", body = ErrorBody),
        (status = 404, description = "No running channel of that name", body = ErrorBody),
    ))]
pub async fn test(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    super::extract::Body(body): super::extract::Body<ChannelTest>,
) -> Result<Json<ChannelTestResult>, ApiError> {
    if !who.is_gateway_level() {
        return Err(ApiError::forbidden("channels are the gateway's"));
    }
    let to = body.to.trim();
    if to.is_empty() || to.len() > exoclaw_core::store::channel::MAX_KEY_BYTES {
        return Err(ApiError::invalid("to: the chat to send to (1-512 bytes)"));
    }
    let text = body
        .text
        .unwrap_or_else(|| "exoclaw test message".to_owned());
    if text.trim().is_empty() || text.len() > exoclaw_core::store::channel::MAX_OUTBOX_TEXT_BYTES {
        return Err(ApiError::invalid("text: 1 byte to 64 KiB"));
    }
    let m = state
        .channels
        .test(&name, to, &text, Duration::from_secs(15))
        .await?
        .ok_or_else(ApiError::not_found)?;
    let event = NewAuditEvent::new(
        who.tenant.clone(),
        who.actor.clone(),
        "channel.test",
        format!("channel:{name}"),
        "allow",
    );
    exoclaw_gateway::audit::record_logged(state.store.as_ref(), &event).await;
    Ok(Json(ChannelTestResult {
        status: m.status.as_str().to_owned(),
        platform_id: m.platform_id,
        attempts: m.attempts,
        last_error: m.last_error,
    }))
}
