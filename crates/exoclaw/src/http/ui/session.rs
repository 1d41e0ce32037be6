//! Dashboard sign-in: a credential (the gateway token, an API key, a paired
//! device's credential) traded for a session cookie, and that cookie turned
//! back into the credential's principal on every request.
//!
//! - The cookie holds 32 random bytes; the store keeps their SHA-256 and
//!   the credential's kind and digest ([`super::super::credential::Credential`]),
//!   which is re-checked on every request: revoking the key or device,
//!   disabling the user or rotating the token out ends the session.
//! - `HttpOnly`, `SameSite=Strict`, `Path=/`, `Secure` when the request came
//!   through a trusted proxy that says `X-Forwarded-Proto: https`; idle
//!   expiry [`IDLE_MS`], absolute [`ABSOLUTE_MS`].
//! - Requests that change something (any method but GET/HEAD) made with the
//!   cookie carry the session's CSRF token, in `X-CSRF-Token` (scripts) or a
//!   form's `csrf` field (read here, before any handler, so no handler can
//!   forget it), and an `Origin`, when sent, naming this host.

use super::super::credential::{AuthFailure, Credential, authenticate, authenticate_credential};
use super::super::error::{ApiError, ErrorCode};
use super::super::state::AppState;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse as _, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use exoclaw_core::now_ms;
use exoclaw_core::store::DashboardSession;
use exoclaw_gateway::access::Principal;

/// The cookie's name.
pub const COOKIE: &str = "exoclaw_ui";
/// A session unused this long is over.
pub const IDLE_MS: i64 = 30 * 60 * 1000;
/// A session is over this long after sign-in, however active.
pub const ABSOLUTE_MS: i64 = 12 * 60 * 60 * 1000;
/// Activity is written at most this often per session.
const TOUCH_EVERY_MS: i64 = 60 * 1000;
/// A form body read for its `csrf` field is at most this large.
const MAX_FORM_BYTES: usize = 256 * 1024;

/// The signed-in browser's session, for the pages (its CSRF token).
#[derive(Clone, Debug)]
pub struct UiSession {
    pub id_hash: String,
    pub csrf: String,
}

fn sha256_hex(text: &str) -> String {
    hex::encode(exoclaw_gateway::access::digest(text))
}

/// The CSRF token of a session: derived from the cookie's secret, so only
/// someone holding the cookie's value can know it.
fn csrf_of(secret: &str) -> String {
    sha256_hex(&format!("exoclaw-ui-csrf\0{secret}"))
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value)
}

/// The session cookie's value, if the request carries one of the right
/// shape (43 base64url characters).
pub fn cookie_secret(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, COOKIE).filter(|v| {
        v.len() == 43
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// Who the session cookie `secret` stands for, re-checking its credential.
/// Expired sessions are deleted and refused as `Expired`; unknown ones as
/// `Invalid`.
pub async fn resume(
    state: &AppState,
    secret: &str,
    rid: Option<&str>,
) -> Result<(Principal, Credential, UiSession), AuthFailure> {
    let id_hash = sha256_hex(secret);
    let session = state
        .store
        .dashboard_session(&id_hash)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cannot look up a dashboard session");
            AuthFailure::Unavailable
        })?
        .ok_or(AuthFailure::Invalid)?;
    let now = now_ms();
    if now >= session.expires_at || now - session.last_seen_at >= IDLE_MS {
        if let Err(e) = state.store.delete_dashboard_session(&id_hash).await {
            tracing::warn!(error = %e, "cannot delete an expired dashboard session");
        }
        return Err(AuthFailure::Expired);
    }
    let credential = Credential::decode(&session.credential).ok_or(AuthFailure::Invalid)?;
    let who = authenticate_credential(state, &credential, rid).await?;
    if who.tenant != session.tenant_id || who.user != session.user_id {
        return Err(AuthFailure::Invalid);
    }
    if now - session.last_seen_at >= TOUCH_EVERY_MS
        && let Err(e) = state.store.touch_dashboard_session(&id_hash, now).await
    {
        tracing::warn!(error = %e, "cannot record dashboard activity");
    }
    Ok((
        who,
        credential,
        UiSession {
            id_hash,
            csrf: csrf_of(secret),
        },
    ))
}

/// Whether the method changes something (and so needs the CSRF token).
fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether an `Origin` header, when present, names the host the request
/// was sent to (a cross-site form or script never does).
pub fn origin_matches(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, rest)| rest);
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

fn csrf_refused() -> Response {
    ApiError::new(
        ErrorCode::AuthCsrf,
        "this request lacks the dashboard's CSRF token or comes from another site; reload the page",
    )
    .into_response()
}

/// Check a cookie-authenticated request's CSRF token (see the module docs);
/// the request comes back whole when it passes.
pub async fn check_csrf(req: Request, session: &UiSession) -> Result<Request, Response> {
    if !is_unsafe(req.method()) {
        return Ok(req);
    }
    if !origin_matches(req.headers()) {
        return Err(csrf_refused());
    }
    let expected = session.csrf.as_bytes();
    let same =
        |presented: &[u8]| -> bool { subtle::ConstantTimeEq::ct_eq(presented, expected).into() };
    if let Some(v) = req.headers().get("x-csrf-token") {
        return if same(v.as_bytes()) {
            Ok(req)
        } else {
            Err(csrf_refused())
        };
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(csrf_refused());
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
        return Err(ApiError::too_large(format!(
            "a dashboard form is at most {MAX_FORM_BYTES} bytes"
        ))
        .into_response());
    };
    let presented = url::form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.into_owned());
    if !presented.is_some_and(|p| same(p.as_bytes())) {
        return Err(csrf_refused());
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// A new session for `who`, signed in with `credential`: the cookie to set.
pub async fn create(
    state: &AppState,
    who: &Principal,
    credential: &Credential,
    secure: bool,
) -> Result<HeaderValue, ApiError> {
    let now = now_ms();
    if let Err(e) = state
        .store
        .purge_dashboard_sessions(now - IDLE_MS, now)
        .await
    {
        tracing::warn!(error = %e, "cannot purge expired dashboard sessions");
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|_| ApiError::internal("the system's random source failed"))?;
    let secret = URL_SAFE_NO_PAD.encode(bytes);
    state
        .store
        .create_dashboard_session(&DashboardSession {
            id_hash: sha256_hex(&secret),
            tenant_id: who.tenant.clone(),
            user_id: who.user.clone(),
            credential: credential.encode(),
            created_at: now,
            last_seen_at: now,
            expires_at: now + ABSOLUTE_MS,
        })
        .await?;
    let cookie = format!(
        "{COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        ABSOLUTE_MS / 1000,
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&cookie).map_err(|_| ApiError::internal("cannot write the cookie"))
}

/// The `Set-Cookie` that makes the browser forget the session.
pub fn cleared(secure: bool) -> HeaderValue {
    let cookie = format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&cookie)
        .unwrap_or_else(|_| HeaderValue::from_static("exoclaw_ui=; Max-Age=0"))
}

/// Whether the browser reached us over TLS (through a trusted proxy).
pub fn is_secure(state: &AppState, peer: std::net::IpAddr, headers: &HeaderMap) -> bool {
    state.limits.is_trusted(peer)
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// Sign in with a presented credential: who it is and what it is.
pub async fn sign_in(
    state: &AppState,
    token: &str,
    rid: Option<&str>,
) -> Result<(Principal, Credential), AuthFailure> {
    let token = token.trim();
    let who = authenticate(state, Some(token), rid).await?;
    Ok((who, Credential::of(token)?))
}

/// End the session (sign-out).
pub async fn end(state: &AppState, session: &UiSession) -> Result<(), ApiError> {
    state
        .store
        .delete_dashboard_session(&session.id_hash)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_cookie_is_found_among_others_and_must_be_well_formed() {
        let secret = URL_SAFE_NO_PAD.encode([7u8; 32]);
        assert_eq!(secret.len(), 43);
        let good = headers(&[("cookie", &format!("a=b; {COOKIE}={secret}; c=d"))]);
        assert_eq!(cookie_secret(&good), Some(secret.as_str()));
        let bad = headers(&[("cookie", &format!("{COOKIE}=short"))]);
        assert_eq!(cookie_secret(&bad), None);
        let other = headers(&[("cookie", &format!("x{COOKIE}={secret}"))]);
        assert_eq!(cookie_secret(&other), None);
    }

    #[test]
    fn origin_must_name_this_host_when_sent() {
        assert!(origin_matches(&headers(&[("host", "127.0.0.1:9")])));
        assert!(origin_matches(&headers(&[
            ("host", "127.0.0.1:9"),
            ("origin", "http://127.0.0.1:9")
        ])));
        assert!(!origin_matches(&headers(&[
            ("host", "127.0.0.1:9"),
            ("origin", "http://evil.example")
        ])));
        assert!(!origin_matches(&headers(&[
            ("host", "a"),
            ("origin", "null")
        ])));
    }

    #[test]
    fn csrf_tokens_differ_per_session() {
        assert_ne!(csrf_of("a"), csrf_of("b"));
        assert_eq!(csrf_of("a").len(), 64);
    }
}
