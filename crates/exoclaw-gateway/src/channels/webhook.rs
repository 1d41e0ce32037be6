//! The generic webhook channel. A caller POSTs JSON to
//! `/v1/channels/webhook/{name}` with two headers:
//!
//! - `X-Exoclaw-Timestamp`: Unix seconds; refused when further than
//!   `webhook.max_skew_sec` from the gateway's clock;
//! - `X-Exoclaw-Signature`: `sha256=` and the hex HMAC-SHA256, keyed by the
//!   vault's `webhook_secret` of owner `channel:<name>`, of
//!   `"<timestamp>.<body>"`.
//!
//! The body is [`WebhookEvent`]; its `event_id` is seen once (a replay is
//! refused). The reply is the response (`{"status":"replied","reply":..}`),
//! or, with `webhook.callback_url`, queued in the outbox and POSTed there
//! through the egress client, signed the same way, as
//! `{"event_id":<idempotency key>,"conversation_id":..,"text":..}`.

use crate::config::channels::WebhookChannelConfig;
use exoclaw_core::channel::{Channel, ChannelError, ChannelInfo, InboundSink, Outgoing, Sent};
use exoclaw_core::{Secret, TenantId};
use exoclaw_store::vault::SecretVault;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const TIMESTAMP_HEADER: &str = "x-exoclaw-timestamp";
pub const SIGNATURE_HEADER: &str = "x-exoclaw-signature";
/// The vault name of a webhook's secret (owner `channel:<name>`).
pub const SECRET_NAME: &str = "webhook_secret";
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(30);

/// The vault owner of channel `name`'s secrets.
pub fn secret_owner(name: &str) -> String {
    format!("channel:{name}")
}

/// One inbound webhook event.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookEvent {
    /// Unique per event: a second request with it is a replay.
    pub event_id: String,
    pub sender_id: String,
    #[serde(default)]
    pub sender_name: Option<String>,
    /// The conversation (its session, and where replies go); the sender's
    /// id when absent.
    #[serde(default)]
    pub conversation_id: Option<String>,
    pub text: String,
}

/// Why a webhook request was refused (audited as `channel.webhook_refused`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A header is missing or not in its form.
    BadHeaders,
    /// The timestamp is too far from now.
    Skew,
    BadSignature,
    TooLarge,
    Replay,
    /// The body is not a [`WebhookEvent`].
    Malformed,
    /// No secret is stored for this webhook yet.
    NoSecret,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::BadHeaders => "bad_headers",
            Refusal::Skew => "timestamp_skew",
            Refusal::BadSignature => "bad_signature",
            Refusal::TooLarge => "too_large",
            Refusal::Replay => "replay",
            Refusal::Malformed => "malformed",
            Refusal::NoSecret => "no_secret",
        }
    }
}

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut m =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes a key of any length");
    m.update(timestamp.as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// The signature header's value for `body` sent at `timestamp`.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

/// Check a request's timestamp (against `now_sec`) and signature; the
/// comparison takes constant time.
pub fn verify(
    secret: &[u8],
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now_sec: i64,
    max_skew: Duration,
) -> Result<(), Refusal> {
    let ts: i64 = timestamp.trim().parse().map_err(|_| Refusal::BadHeaders)?;
    let skew = i64::try_from(max_skew.as_secs()).unwrap_or(i64::MAX);
    if now_sec.abs_diff(ts) > skew.unsigned_abs() {
        return Err(Refusal::Skew);
    }
    let hex_sig = signature
        .trim()
        .strip_prefix("sha256=")
        .ok_or(Refusal::BadHeaders)?;
    let raw = hex::decode(hex_sig).map_err(|_| Refusal::BadHeaders)?;
    mac(secret, timestamp.trim(), body)
        .verify_slice(&raw)
        .map_err(|_| Refusal::BadSignature)
}

/// The webhook adapter: receiving happens in the HTTP handler, so `run`
/// only waits; `send` POSTs to the callback URL.
pub struct WebhookChannel {
    info: ChannelInfo,
    tenant: TenantId,
    config: WebhookChannelConfig,
    vault: Option<Arc<SecretVault>>,
    client: Option<exoclaw_egress::EgressClient>,
}

impl WebhookChannel {
    pub fn new(
        name: &str,
        tenant: TenantId,
        config: WebhookChannelConfig,
        vault: Option<Arc<SecretVault>>,
        client: Option<exoclaw_egress::EgressClient>,
    ) -> Self {
        Self {
            info: ChannelInfo {
                name: name.to_owned(),
                kind: "webhook",
                can_edit: false,
                can_react: false,
                can_type: false,
                can_files: false,
            },
            tenant,
            config,
            vault,
            client,
        }
    }

    pub fn config(&self) -> &WebhookChannelConfig {
        &self.config
    }

    /// The stored secret, if any.
    pub async fn secret(&self) -> Result<Option<Secret>, String> {
        let Some(v) = &self.vault else {
            return Ok(None);
        };
        v.get(&self.tenant, &secret_owner(&self.info.name), SECRET_NAME)
            .await
            .map_err(|e| e.to_string())
    }
}

#[async_trait::async_trait]
impl Channel for WebhookChannel {
    fn info(&self) -> &ChannelInfo {
        &self.info
    }

    async fn run(
        &self,
        _sink: &dyn InboundSink,
        stop: CancellationToken,
    ) -> Result<(), ChannelError> {
        stop.cancelled().await;
        Ok(())
    }

    async fn send(&self, msg: &Outgoing) -> Result<Sent, ChannelError> {
        let (Some(client), Some(url)) = (&self.client, &self.config.callback_url) else {
            return Err(ChannelError::Rejected("no webhook.callback_url".to_owned()));
        };
        let secret = self
            .secret()
            .await
            .map_err(ChannelError::Unavailable)?
            .ok_or_else(|| ChannelError::Unavailable("no webhook secret stored".to_owned()))?;
        let body = serde_json::json!({
            "event_id": msg.idempotency_key,
            "conversation_id": msg.peer,
            "text": msg.text,
        })
        .to_string();
        let ts = (exoclaw_core::now_ms() / 1000).to_string();
        let sig = sign(secret.expose().as_bytes(), &ts, body.as_bytes());
        let request = client
            .request(exoclaw_egress::Method::POST, url)
            .map_err(|r| {
                ChannelError::Rejected(format!("refused by the egress policy ({})", r.rule))
            })?;
        let resp = request
            .header(exoclaw_egress::header::CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, ts)
            .header(SIGNATURE_HEADER, sig)
            .timeout(CALLBACK_TIMEOUT)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                ChannelError::Unavailable(if e.is_timeout() {
                    "the callback timed out".to_owned()
                } else {
                    "cannot reach the callback".to_owned()
                })
            })?;
        let status = resp.status().as_u16();
        match status {
            200..=299 => Ok(Sent::default()),
            429 => {
                let secs = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(1);
                Err(ChannelError::RateLimited {
                    retry_after: Duration::from_secs(secs.min(3600)),
                })
            }
            401 | 403 => Err(ChannelError::Auth),
            400..=499 => Err(ChannelError::Rejected(format!(
                "the callback answered {status}"
            ))),
            _ => Err(ChannelError::Unavailable(format!(
                "the callback answered {status}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SKEW: Duration = Duration::from_secs(300);

    #[test]
    fn a_signed_request_verifies_and_anything_else_is_refused() {
        let body = br#"{"event_id":"1"}"#;
        let sig = sign(b"s3cret", "1000", body);
        assert_eq!(verify(b"s3cret", "1000", &sig, body, 1000, SKEW), Ok(()));
        assert_eq!(verify(b"s3cret", "1000", &sig, body, 1300, SKEW), Ok(()));
        let check = |secret: &[u8], ts: &str, sig: &str, body: &[u8], now| {
            verify(secret, ts, sig, body, now, SKEW).unwrap_err()
        };
        assert_eq!(
            check(b"other", "1000", &sig, body, 1000),
            Refusal::BadSignature
        );
        assert_eq!(
            check(b"s3cret", "1000", &sig, b"{}", 1000),
            Refusal::BadSignature
        );
        assert_eq!(
            check(b"s3cret", "1001", &sig, body, 1000),
            Refusal::BadSignature
        );
        assert_eq!(check(b"s3cret", "1000", &sig, body, 1301), Refusal::Skew);
        assert_eq!(check(b"s3cret", "1000", &sig, body, 699), Refusal::Skew);
        assert_eq!(check(b"s3cret", "x", &sig, body, 1000), Refusal::BadHeaders);
        assert_eq!(
            check(b"s3cret", "1000", &sig[7..], body, 1000),
            Refusal::BadHeaders
        );
        assert_eq!(
            check(b"s3cret", "1000", "sha256=zz", body, 1000),
            Refusal::BadHeaders
        );
    }
}
