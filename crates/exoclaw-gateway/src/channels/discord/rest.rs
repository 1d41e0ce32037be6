//! Discord's REST API as the adapter calls it, through the channel's egress
//! client with `Authorization: Bot <token>`: JSON calls, the multipart
//! upload of a file, attachment downloads under a cap, and every failure
//! mapped to what the outbox can do ([`ChannelError`]): 429 with its
//! `retry_after` (JSON, seconds as a float) is `RateLimited`, 401 `Auth`,
//! other 4xx `Rejected`, 5xx and transport failures `Unavailable`.
//!
//! The token is in a header, never in a URL, and no URL or transport error
//! text is logged or returned (an error names the call, the status and
//! Discord's own message).

use super::bot::DiscordChannel;
use exoclaw_core::channel::ChannelError;
use exoclaw_egress::{EgressError, FetchLimits, Method, header};
use serde_json::Value;
use std::time::Duration;

const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The User-Agent Discord asks bots to send.
const USER_AGENT: &str = concat!(
    "DiscordBot (https://github.com/exoclaw/exoclaw, ",
    env!("CARGO_PKG_VERSION"),
    ")"
);
/// The longest `retry_after` honoured as given.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// A request body.
pub(super) enum Body<'a> {
    None,
    Json(&'a Value),
    /// `multipart/form-data` with this boundary.
    Multipart {
        boundary: &'a str,
        bytes: Vec<u8>,
    },
}

/// A failed call's status and body as the error to act on.
pub(super) fn status_error(
    what: &str,
    status: u16,
    body: &[u8],
    retry_header: Option<&str>,
) -> ChannelError {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    match status {
        429 => {
            let secs = v["retry_after"]
                .as_f64()
                .or_else(|| retry_header.and_then(|h| h.trim().parse::<f64>().ok()))
                .filter(|s| s.is_finite() && *s >= 0.0)
                .unwrap_or(1.0);
            ChannelError::RateLimited {
                retry_after: Duration::from_secs_f64(secs).min(MAX_RETRY_AFTER),
            }
        }
        401 => ChannelError::Auth,
        400..=499 => {
            let message: String = v["message"]
                .as_str()
                .unwrap_or_default()
                .chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect();
            ChannelError::Rejected(format!("{what}: {status} {message}").trim_end().to_owned())
        }
        _ => ChannelError::Unavailable(format!("{what} answered {status}")),
    }
}

/// A random boundary or key: 32 hex characters.
pub(super) fn random_hex() -> String {
    crate::home::random_hex_32()
        .map(|h| h.chars().take(32).collect())
        .unwrap_or_else(|_| format!("{:032x}", exoclaw_core::now_ms()))
}

/// A file name safe in a `Content-Disposition` header and on Discord: no
/// directories, quotes or control characters, at most 100 characters.
pub(super) fn safe_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let clean: String = base
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | ';'))
        .take(100)
        .collect();
    let clean = clean.trim().trim_start_matches('.').to_owned();
    if clean.is_empty() {
        "file".to_owned()
    } else {
        clean
    }
}

/// The body of a message with one file: `payload_json` (the message) and
/// `files[0]` (the bytes).
pub(super) fn multipart(
    boundary: &str,
    payload: &Value,
    name: &str,
    mime: &str,
    bytes: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 512);
    out.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"payload_json\"\r\n\
             Content-Type: application/json\r\n\r\n{payload}\r\n"
        )
        .as_bytes(),
    );
    out.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"files[0]\"; \
             filename=\"{name}\"\r\nContent-Type: {mime}\r\n\r\n"
        )
        .as_bytes(),
    );
    out.extend_from_slice(bytes);
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

impl DiscordChannel {
    /// One REST call (`path` under `api_base`): the JSON answer (`Null`
    /// for 204), or the error by what to do. `what` names it in errors.
    pub(super) async fn call(
        &self,
        what: &str,
        method: Method,
        path: &str,
        body: Body<'_>,
    ) -> Result<Value, ChannelError> {
        let token = self.token().await?;
        let url = format!("{}{path}", self.config.api_base.trim_end_matches('/'));
        let request = self.client.request(method, &url).map_err(|r| {
            ChannelError::Rejected(format!("refused by the egress policy ({})", r.rule))
        })?;
        let mut request = request
            .header(header::AUTHORIZATION, format!("Bot {}", token.expose()))
            .header(header::USER_AGENT, USER_AGENT)
            .timeout(CALL_TIMEOUT);
        request = match body {
            Body::None => request.header(header::CONTENT_LENGTH, "0"),
            Body::Json(v) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(v.to_string()),
            Body::Multipart { boundary, bytes } => request
                .header(
                    header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(bytes),
        };
        let resp = request.send().await.map_err(|e| {
            ChannelError::Unavailable(if e.is_timeout() {
                format!("{what} timed out")
            } else {
                format!("cannot reach the Discord API ({what})")
            })
        })?;
        let status = resp.status().as_u16();
        let retry = resp
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned);
        let bytes = resp
            .bytes()
            .await
            .map_err(|_| ChannelError::Unavailable(format!("{what}: the answer was cut off")))?;
        if (200..300).contains(&status) {
            return Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null));
        }
        Err(status_error(what, status, &bytes, retry.as_deref()))
    }

    /// Download an attachment (no token sent: Discord's CDN URLs are
    /// signed) under `max_bytes`, through the egress client (a URL outside
    /// the configured origins and Discord's names is refused).
    pub(super) async fn download(
        &self,
        url: &str,
        max_bytes: u64,
    ) -> Result<Vec<u8>, ChannelError> {
        let limits = FetchLimits {
            max_bytes: usize::try_from(max_bytes).unwrap_or(usize::MAX),
            timeout: Duration::from_secs(120),
            ..FetchLimits::default()
        };
        let got = self
            .client
            .fetch(url, header::HeaderMap::new(), &limits)
            .await
            .map_err(|e| match e {
                EgressError::TooLarge { limit } => {
                    ChannelError::Rejected(format!("the file is larger than {limit} bytes"))
                }
                EgressError::Refused(r) => {
                    ChannelError::Rejected(format!("refused by the egress policy ({})", r.rule))
                }
                EgressError::Timeout => {
                    ChannelError::Unavailable("the download timed out".to_owned())
                }
                _ => ChannelError::Unavailable("cannot download the file".to_owned()),
            })?;
        let status = got.status.as_u16();
        if !(200..300).contains(&status) {
            return Err(status_error("download", status, &[], None));
        }
        Ok(got.body.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_what_the_outbox_can_do() {
        let e = status_error(
            "send",
            429,
            br#"{"message": "You are being rate limited.", "retry_after": 1.5, "global": false}"#,
            None,
        );
        assert!(
            matches!(e, ChannelError::RateLimited { retry_after } if retry_after == Duration::from_millis(1500))
        );
        let e = status_error("send", 429, b"", Some("3"));
        assert!(
            matches!(e, ChannelError::RateLimited { retry_after } if retry_after == Duration::from_secs(3))
        );
        let e = status_error("send", 429, br#"{"retry_after": 1e9}"#, None);
        assert!(
            matches!(e, ChannelError::RateLimited { retry_after } if retry_after == MAX_RETRY_AFTER)
        );
        assert!(matches!(
            status_error("send", 401, b"{}", None),
            ChannelError::Auth
        ));
        let e = status_error(
            "send",
            403,
            br#"{"message": "Missing Permissions\n", "code": 50013}"#,
            None,
        );
        assert_eq!(
            e.to_string(),
            "refused by the platform: send: 403 Missing Permissions"
        );
        assert!(!e.is_retryable());
        let e = status_error("edit", 502, b"<html>", None);
        assert!(e.is_retryable(), "{e}");
    }

    #[test]
    fn file_names_and_multipart_bodies_are_safe() {
        assert_eq!(safe_file_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_file_name("a\"b;c\r\n.txt"), "abc.txt");
        assert_eq!(safe_file_name("C:\\x\\..\\.hidden"), "hidden");
        assert_eq!(safe_file_name(""), "file");
        let body = multipart(
            "B",
            &serde_json::json!({"content": "hi"}),
            "a.txt",
            "text/plain",
            b"abc",
        );
        let text = String::from_utf8(body).unwrap();
        assert_eq!(
            text,
            "--B\r\nContent-Disposition: form-data; name=\"payload_json\"\r\nContent-Type: application/json\r\n\r\n{\"content\":\"hi\"}\r\n\
             --B\r\nContent-Disposition: form-data; name=\"files[0]\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nabc\r\n--B--\r\n"
        );
    }
}
