//! What both wire formats share: sending the POST through the egress client,
//! turning egress refusals, HTTP statuses and transport failures into
//! [`ProviderError`]s (with vendor error bodies truncated and key-like
//! strings redacted), reading `retry-after`, and driving an SSE body through
//! a format-specific `Decoder`.

use crate::calendar;
use crate::sse::{self, SseEvent};
use exoclaw_core::Secret;
use exoclaw_core::provider::{ChatStream, EgressRefusal, ProviderError, StreamEvent};
use exoclaw_egress::{EgressClient, EgressError, Method, Refusal, RefusalKind};
use futures_util::StreamExt;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

/// At most this much of an error body is read.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Vendor text quoted in an error message is cut to this many characters.
pub const MAX_QUOTED_CHARS: usize = 300;

/// `base` + `/` + `path`, with exactly one slash between them.
pub(crate) fn join_url(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// Check a base URL at construction so a typo fails at start-up, not on the
/// first call.
pub(crate) fn check_base_url(base: &str) -> Result<String, crate::ConfigError> {
    let url = reqwest::Url::parse(base)
        .map_err(|e| crate::ConfigError::BaseUrl(format!("{}: {e}", display_url(base))))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(crate::ConfigError::BaseUrl(format!(
            "{}: the scheme must be http or https",
            display_url(base)
        )));
    }
    Ok(base.trim_end_matches('/').to_owned())
}

/// A URL for logs and `Debug`: any `user:password@` part is replaced.
pub fn display_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***@{}", &url[..scheme_end + 3], &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// A header value carrying a secret, marked sensitive so that `Debug` of
/// the request hides it.
pub(crate) fn secret_header(value: &str) -> Result<HeaderValue, ProviderError> {
    let mut v = HeaderValue::from_str(value).map_err(|_| {
        ProviderError::Auth("the API key contains characters not allowed in an HTTP header".into())
    })?;
    v.set_sensitive(true);
    Ok(v)
}

/// POST a JSON body through the egress client; a refusal (before any
/// connection, or when the name resolves to a refused address) becomes
/// [`ProviderError::EgressRefused`], a non-success status the matching
/// error. Redirects are not followed.
pub(crate) async fn post_json(
    client: &EgressClient,
    url: &str,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: impl Into<reqwest::Body>,
    key: Option<&Secret>,
) -> Result<reqwest::Response, ProviderError> {
    let mut request = client
        .request(Method::POST, url)
        .map_err(|r| refused(&r))?
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().await.map_err(send_error)?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let headers = response.headers().clone();
    let body = read_limited(response, MAX_ERROR_BODY).await;
    Err(status_error(status.as_u16(), &headers, &body, key))
}

/// Read at most `limit` bytes of a body as (lossy) text; errors end it early.
pub(crate) async fn read_limited(response: reqwest::Response, limit: usize) -> String {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        let room = limit.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= limit {
            break;
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

/// Map an HTTP error status (and the vendor's error body) to an error.
pub fn status_error(
    status: u16,
    headers: &HeaderMap,
    body: &str,
    key: Option<&Secret>,
) -> ProviderError {
    let message = quote(&vendor_message(body), key);
    match status {
        300..=399 => ProviderError::Rejected {
            status,
            message:
                "the provider answered with a redirect, which is not followed: check the base URL"
                    .to_owned(),
        },
        401 | 403 => ProviderError::Auth(format!("{status}: {message}")),
        429 => ProviderError::RateLimited {
            retry_after: retry_after(headers, SystemTime::now()),
        },
        408 | 409 | 425 | 500..=599 => ProviderError::Unavailable(format!("{status}: {message}")),
        _ => ProviderError::Rejected { status, message },
    }
}

/// The `error.message` of a JSON error body, else the raw text.
fn vendor_message(body: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let from_json = parsed.as_ref().and_then(|v| {
        v.pointer("/error/message")
            .or_else(|| v.get("message"))
            .or_else(|| v.get("error").filter(|e| e.is_string()))
            .and_then(|m| m.as_str())
            .map(str::to_owned)
    });
    match from_json {
        Some(m) => m,
        None if body.trim().is_empty() => "(empty body)".to_owned(),
        None => body.trim().to_owned(),
    }
}

/// The wait a 429 asks for: `retry-after-ms`, else `retry-after` as seconds
/// or an HTTP date.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = get("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return duration_from_secs(ms / 1000.0);
    }
    let value = get("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return duration_from_secs(secs);
    }
    let at = calendar::parse_http_date(value)?;
    let now_ms = now.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_millis();
    let now_ms = i64::try_from(now_ms).ok()?;
    let wait = at.saturating_sub(now_ms).max(0);
    Some(Duration::from_millis(u64::try_from(wait).unwrap_or(0)))
}

fn duration_from_secs(secs: f64) -> Option<Duration> {
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

/// An egress refusal as a provider error (never retried).
pub(crate) fn refused(r: &Refusal) -> ProviderError {
    ProviderError::EgressRefused {
        kind: match r.kind {
            RefusalKind::SsrfBlocked => EgressRefusal::SsrfBlocked,
            RefusalKind::EgressDenied => EgressRefusal::EgressDenied,
        },
        rule: r.rule,
        reason: quote(&r.reason, None),
    }
}

/// A transport failure while sending or waiting for headers. A refusal
/// raised by the egress client's pinning resolver travels inside the error.
pub(crate) fn send_error(e: reqwest::Error) -> ProviderError {
    if let EgressError::Refused(r) = EgressError::from_reqwest(&e) {
        return refused(&r);
    }
    let (is_builder, is_timeout, is_connect) = (e.is_builder(), e.is_timeout(), e.is_connect());
    let detail = error_chain(&e.without_url());
    if is_builder {
        return ProviderError::Rejected {
            status: 0,
            message: format!("the request could not be built: {detail}"),
        };
    }
    if is_timeout {
        return ProviderError::Unavailable(format!("the HTTP client timed out: {detail}"));
    }
    if is_connect {
        return ProviderError::Unavailable(format!("cannot connect to the provider: {detail}"));
    }
    ProviderError::Unavailable(format!("the request failed: {detail}"))
}

/// A transport failure while reading the body.
pub(crate) fn body_error(e: reqwest::Error) -> ProviderError {
    ProviderError::Unavailable(format!(
        "the connection broke mid-stream: {}",
        error_chain(&e.without_url())
    ))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    let mut depth = 0;
    while let Some(s) = source {
        if depth == 3 {
            break;
        }
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
        depth += 1;
    }
    quote(&out, None)
}

/// Vendor or transport text made safe to put in an error: the known key and
/// anything that looks like a key are replaced by `***`, and the result is
/// cut to [`MAX_QUOTED_CHARS`] characters.
pub fn quote(text: &str, key: Option<&Secret>) -> String {
    let mut text = text.to_owned();
    if let Some(key) = key.filter(|k| k.len() >= 4) {
        text = text.replace(key.expose(), Secret::REDACTED);
    }
    let redacted = redact_key_like(&text);
    truncate_chars(&redacted, MAX_QUOTED_CHARS)
}

fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn redact_key_like(text: &str) -> String {
    let is_word = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if looks_like_key(word) {
            out.push_str(Secret::REDACTED);
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if is_word(c) {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Known key prefixes, or a long token mixing letters and digits. Request
/// ids (`req_...`) are kept: vendors ask for them in support requests.
fn looks_like_key(word: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "sk-", "sk_", "gsk_", "xai-", "pplx-", "AIza", "key-", "rk_", "pk_", "ghp_", "hf_",
    ];
    if word.starts_with("req_") || word.starts_with("request") {
        return false;
    }
    if word.len() >= 12 && PREFIXES.iter().any(|p| word.starts_with(p)) {
        return true;
    }
    word.len() >= 32
        && word.chars().any(|c| c.is_ascii_alphabetic())
        && word.chars().any(|c| c.is_ascii_digit())
}

/// One wire format's event handling, fed by [`drive`].
pub(crate) trait Decoder: Send + 'static {
    /// Handle one SSE event, pushing what it yields onto `out`. Returns true
    /// when the response is complete (the final event was pushed).
    fn event(
        &mut self,
        event: &SseEvent,
        out: &mut VecDeque<StreamEvent>,
    ) -> Result<bool, ProviderError>;

    /// The body ended before [`Decoder::event`] reported completion.
    fn end(&mut self, out: &mut VecDeque<StreamEvent>) -> Result<(), ProviderError>;
}

/// Turn a successful streaming response into a [`ChatStream`]. The stream
/// ends after the final event, after the first error, or at the end of the
/// body (where the decoder decides whether that was premature).
pub(crate) fn drive<D: Decoder>(response: reqwest::Response, decoder: D) -> ChatStream {
    let body = Box::pin(response.bytes_stream().map(|r| r.map_err(body_error)));
    drive_events(Box::pin(sse::events(body)), decoder)
}

pub(crate) fn drive_events<D, S>(events: S, decoder: D) -> ChatStream
where
    D: Decoder,
    S: futures_util::Stream<Item = Result<SseEvent, ProviderError>> + Send + Unpin + 'static,
{
    struct State<S, D> {
        events: S,
        decoder: D,
        out: VecDeque<StreamEvent>,
        error: Option<ProviderError>,
        finished: bool,
    }
    let state = State {
        events,
        decoder,
        out: VecDeque::new(),
        error: None,
        finished: false,
    };
    Box::pin(futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(event) = st.out.pop_front() {
                return Some((Ok(event), st));
            }
            if let Some(e) = st.error.take() {
                return Some((Err(e), st));
            }
            if st.finished {
                return None;
            }
            match st.events.next().await {
                Some(Ok(event)) => match st.decoder.event(&event, &mut st.out) {
                    Ok(done) => st.finished = done,
                    Err(e) => {
                        st.finished = true;
                        st.error = Some(e);
                    }
                },
                Some(Err(e)) => {
                    st.finished = true;
                    st.error = Some(e);
                }
                None => {
                    st.finished = true;
                    if let Err(e) = st.decoder.end(&mut st.out) {
                        st.error = Some(e);
                    }
                }
            }
        }
    }))
}

/// Parse a data payload as JSON, or fail as `Malformed` quoting a little of it.
pub(crate) fn parse_json(data: &str) -> Result<serde_json::Value, ProviderError> {
    serde_json::from_str(data).map_err(|e| {
        ProviderError::Malformed(format!(
            "invalid JSON in an SSE event ({e}): {}",
            quote(data, None)
        ))
    })
}

/// Tool-call arguments as received: JSON when they parse, else the raw text
/// as a JSON string (the tool layer reports `tool.invalid_args`). Empty
/// arguments are an empty object.
pub(crate) fn parse_arguments(raw: &str) -> serde_json::Value {
    if raw.trim().is_empty() {
        return serde_json::Value::Object(serde_json::Map::new());
    }
    serde_json::from_str(raw).unwrap_or_else(|_| serde_json::Value::String(raw.to_owned()))
}

/// A rough token count for a text: about four characters per token.
pub fn estimate_tokens(chars: usize) -> u64 {
    u64::try_from(chars.div_ceil(4)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            join_url("http://x/v1/", "/chat/completions"),
            "http://x/v1/chat/completions"
        );
        assert_eq!(join_url("http://x", "v1/messages"), "http://x/v1/messages");
        assert_eq!(
            display_url("https://u:p@host:1/v1"),
            "https://***@host:1/v1"
        );
        assert_eq!(display_url("https://host/a@b"), "https://host/a@b");
        assert!(check_base_url("ftp://x").is_err());
        assert!(check_base_url("not a url").is_err());
        assert_eq!(
            check_base_url("http://127.0.0.1:1/v1/").unwrap(),
            "http://127.0.0.1:1/v1"
        );
    }

    #[test]
    fn statuses() {
        let h = HeaderMap::new();
        assert!(matches!(
            status_error(401, &h, "", None),
            ProviderError::Auth(_)
        ));
        assert!(matches!(
            status_error(403, &h, "", None),
            ProviderError::Auth(_)
        ));
        assert!(matches!(
            status_error(529, &h, "", None),
            ProviderError::Unavailable(_)
        ));
        assert!(matches!(
            status_error(503, &h, "", None),
            ProviderError::Unavailable(_)
        ));
        let body = r#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: too big"}}"#;
        assert_eq!(
            status_error(400, &h, body, None),
            ProviderError::Rejected {
                status: 400,
                message: "max_tokens: too big".into()
            }
        );
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h, now), None);
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
        h.insert(
            "retry-after",
            HeaderValue::from_static("Sun, 06 Nov 1994 08:50:07 GMT"),
        );
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(30)));
        h.insert("retry-after-ms", HeaderValue::from_static("1500"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_millis(1500)));
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, now), None);
    }

    #[test]
    fn quoting_redacts_and_truncates() {
        let key = Secret::new("my-custom-key-123");
        let text = "bad key my-custom-key-123, also sk-ant-api03-abcdefghijkl and \
                    Bearer abcdef0123456789abcdef0123456789abcdef req_011CSHoEeqs5C35K2UUqR7Fy0123456";
        let q = quote(text, Some(&key));
        assert!(!q.contains("my-custom-key-123"), "{q}");
        assert!(!q.contains("sk-ant"), "{q}");
        assert!(!q.contains("abcdef0123456789"), "{q}");
        assert!(q.contains("req_011CSHoEeqs5C35K2UUqR7Fy0123456"), "{q}");
        let long = "é".repeat(1000);
        let q = quote(&long, None);
        assert_eq!(q.chars().count(), MAX_QUOTED_CHARS);
        assert!(q.ends_with('…'));
    }

    #[test]
    fn arguments() {
        assert_eq!(parse_arguments(""), serde_json::json!({}));
        assert_eq!(parse_arguments(r#"{"a":1}"#), serde_json::json!({"a": 1}));
        assert_eq!(parse_arguments(r#"{"a":"#), serde_json::json!(r#"{"a":"#));
    }
}
