//! Signing in and out. The sign-in form takes the gateway token, an API key
//! or a paired device's credential; what it trades them for is in
//! `session.rs`. A failed sign-in is audited like a refused bearer token
//! and sent back to the form, which says why.

use super::super::super::audit;
use super::super::super::credential::AuthFailure;
use super::super::super::error::ApiError;
use super::super::super::limit::ClientIp;
use super::super::super::state::{AppState, RequestId};
use super::super::form::{field, param};
use super::super::session::{self, UiSession};
use super::super::{PREFIX, UiError, render};
use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use std::net::SocketAddr;

#[derive(Template)]
#[template(path = "ui/signin.html")]
struct Page<'a> {
    next: &'a str,
    error: Option<&'a str>,
}

/// Where to go after signing in: a dashboard path of ours, nothing else.
fn safe_next(next: Option<&str>) -> &str {
    next.filter(|n| {
        n.starts_with(PREFIX)
            && !n.contains("//")
            && !n.contains('\\')
            && !n.starts_with(super::super::SIGN_IN)
    })
    .unwrap_or(PREFIX)
}

pub async fn form(uri: axum::http::Uri) -> Result<Html<String>, UiError> {
    let next = param(uri.query(), "next");
    let error = param(uri.query(), "error");
    render(&Page {
        next: safe_next(next.as_deref()),
        error: message(error.as_deref()),
    })
}

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Extension(RequestId(rid)): Extension<RequestId>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, UiError> {
    if !session::origin_matches(&headers) {
        return Err(ApiError::new(
            super::super::super::error::ErrorCode::AuthCsrf,
            "sign in from the dashboard's own page",
        )
        .into());
    }
    let next = field(&body, "next");
    let next = safe_next(Some(&next)).to_owned();
    let token = field(&body, "token");
    match session::sign_in(&state, &token, Some(&rid)).await {
        Ok((who, credential)) => {
            let secure = session::is_secure(&state, peer.ip(), &headers);
            let cookie = session::create(&state, &who, &credential, secure).await?;
            audit::auth_success(
                &state,
                audit::Channel::Http,
                &who,
                &credential.digest,
                Some(ip),
                Some(rid),
            )
            .await;
            let mut resp = Redirect::to(&next).into_response();
            resp.headers_mut().insert(header::SET_COOKIE, cookie);
            Ok(resp)
        }
        Err(failure) => {
            if failure.audited_here() {
                let why = failure.reason();
                audit::auth_failure(
                    &state,
                    audit::Channel::Http,
                    why,
                    "/ui/signin",
                    ip,
                    Some(rid),
                )
                .await;
            }
            // Back to the form (post, redirect, get: a reload sends nothing
            // again, and the browser sees no failed load).
            let next: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
            let to = format!(
                "{}?next={next}&error={}",
                super::super::SIGN_IN,
                failure.reason()
            );
            Ok(Redirect::to(&to).into_response())
        }
    }
}

/// What the form says after a refused sign-in (`?error=` is one of
/// [`AuthFailure::reason`]; anything else says nothing).
fn message(reason: Option<&str>) -> Option<&'static str> {
    Some(match reason? {
        "missing" | "invalid" => "That is not a valid gateway token, API key or device credential.",
        "expired" => AuthFailure::Expired.message(),
        "revoked" => AuthFailure::Revoked.message(),
        "disabled" => AuthFailure::Disabled.message(),
        "unavailable" => AuthFailure::Unavailable.message(),
        "pairing_denied" => "The pairing request was denied.",
        "pairing_expired" | "pairing_issued" => {
            "The pairing request is over (expired, or used); ask for a new code."
        }
        _ => return None,
    })
}

pub async fn sign_out(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    session: Option<Extension<UiSession>>,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    if let Some(Extension(s)) = session {
        session::end(&state, &s).await?;
    }
    let mut resp = Redirect::to(super::super::SIGN_IN).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        session::cleared(session::is_secure(&state, peer.ip(), &headers)),
    );
    Ok(resp)
}
