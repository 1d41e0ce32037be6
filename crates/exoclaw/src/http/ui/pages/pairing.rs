//! Browser pairing, both sides.
//!
//! - Signing in by pairing (public): the sign-in page asks for a user name,
//!   `POST /ui/pair` opens a pairing request (`POST /v1/pairing/request`,
//!   with its per-address limits) and shows its 8-character code; the
//!   request's id and code wait in an `HttpOnly` cookie scoped to
//!   `/ui/pair`. `GET /ui/pair/wait` polls the request; once an admin
//!   approves the code, the device credential it yields is traded for a
//!   dashboard session at once, on the server: the credential never
//!   reaches the page.
//! - The admins' page (`pairing.manage`): pending requests, approving or
//!   denying a code (`POST /v1/pairing/approve|deny`), devices and their
//!   revocation (`DELETE /v1/pairing/devices/{id}`).

use super::super::super::error::{ApiError, ErrorCode};
use super::super::super::extract::{Body, Path};
use super::super::super::limit::ClientIp;
use super::super::super::pairing::{self, CodeBody, DeviceView, RequestBody, RequestView};
use super::super::super::state::{AppState, RequestId};
use super::super::form::{api, field};
use super::super::session;
use super::super::{SIGN_IN, Shell, UiError, json_of, render, when};
use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde_json::json;
use std::net::SocketAddr;

/// The cookie holding the waiting request's id and code.
const COOKIE: &str = "exoclaw_pair";

/// The waiting request (`id.code`) from its cookie.
fn waiting(headers: &HeaderMap) -> Option<(String, String)> {
    session::cookie(headers, COOKIE)
        .and_then(|v| v.split_once('.'))
        .filter(|(id, code)| {
            id.len() == 32
                && id.bytes().all(|b| b.is_ascii_hexdigit())
                && !code.is_empty()
                && code.len() <= 16
                && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        .map(|(id, code)| (id.to_owned(), code.to_owned()))
}

fn pair_cookie(value: &str, max_age: i64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/ui/pair; HttpOnly; SameSite=Strict; Max-Age={max_age}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("exoclaw_pair=; Max-Age=0"))
}

#[derive(Template)]
#[template(path = "ui/pair.html")]
struct WaitPage<'a> {
    code: &'a str,
}

pub async fn request(
    state: State<AppState>,
    ip: Extension<ClientIp>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, UiError> {
    if !session::origin_matches(&headers) {
        return Err(
            ApiError::new(ErrorCode::AuthCsrf, "pair from the dashboard's own page").into(),
        );
    }
    let ask: RequestBody = api(json!({ "user": field(&body, "user") }))?;
    let created = json_of(pairing::request(state, Some(ip), Ok(Body(ask))).await).await?;
    let (Some(id), Some(code), Some(expires)) = (
        created["request_id"].as_str(),
        created["code"].as_str(),
        created["expires_at"].as_i64(),
    ) else {
        return Err(ApiError::internal("a pairing request without its id or code").into());
    };
    let max_age = ((expires - exoclaw_core::now_ms()) / 1000).max(1);
    let mut resp = render(&WaitPage { code })?.into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        pair_cookie(&format!("{id}.{code}"), max_age),
    );
    Ok(resp)
}

/// Where the waiting request stands; `?poll=1` (the page's script) answers
/// `{"status"}`, otherwise the browser is sent on (or shown the code again).
pub async fn wait(
    state: State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(RequestId(rid)): Extension<RequestId>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    let poll = uri
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "poll=1"));
    let Some((id, code)) = waiting(&headers) else {
        return Ok(finished(poll, "expired", None));
    };
    let polled = json_of(pairing::status(state.clone(), headers.clone(), Path(id)).await).await?;
    match polled["status"].as_str().unwrap_or_default() {
        "pending" => Ok(if poll {
            axum::Json(json!({ "status": "pending" })).into_response()
        } else {
            render(&WaitPage { code: &code })?.into_response()
        }),
        "approved" => {
            let token = polled["token"].as_str().unwrap_or_default();
            let (who, credential) = session::sign_in(&state, token, Some(&rid))
                .await
                .map_err(|f| UiError(f.into_error()))?;
            let secure = session::is_secure(&state, peer.ip(), &headers);
            let cookie = session::create(&state, &who, &credential, secure).await?;
            Ok(finished(poll, "approved", Some(cookie)))
        }
        other => Ok(finished(poll, other, None)),
    }
}

/// The end of a wait: the pairing cookie cleared, the session cookie set
/// when approved; the script gets the status, a browser a redirect.
fn finished(poll: bool, status: &str, session: Option<HeaderValue>) -> Response {
    let mut resp = if poll {
        axum::Json(json!({ "status": status })).into_response()
    } else if session.is_some() {
        Redirect::to(super::super::PREFIX).into_response()
    } else {
        Redirect::to(&format!("{SIGN_IN}?error=pairing_{status}")).into_response()
    };
    let h = resp.headers_mut();
    h.append(header::SET_COOKIE, pair_cookie("", 0));
    if let Some(cookie) = session {
        h.append(header::SET_COOKIE, cookie);
    }
    resp
}

/// A device as the admins' page lists it.
struct DeviceRow {
    id: String,
    user: String,
    label: String,
    created: String,
    seen: String,
    revoked: bool,
}

impl From<&DeviceView> for DeviceRow {
    fn from(d: &DeviceView) -> Self {
        Self {
            id: d.id.clone(),
            user: d.user_id.to_string(),
            label: d.label.clone(),
            created: when(d.created_at),
            seen: d.last_seen_at.map(when).unwrap_or_default(),
            revoked: d.revoked_at.is_some(),
        }
    }
}

/// A pending request as the admins' page lists it (never its code).
struct PendingRow {
    who: String,
    created: String,
    expires: String,
}

impl From<&RequestView> for PendingRow {
    fn from(r: &RequestView) -> Self {
        let who = match (&r.user_id, &r.channel, &r.sender_id) {
            (Some(user), _, _) => format!("browser of {user}"),
            (None, Some(channel), Some(sender)) => format!("{sender} on {channel}"),
            _ => "unknown".to_owned(),
        };
        Self {
            who,
            created: when(r.created_at),
            expires: when(r.expires_at),
        }
    }
}

#[derive(Template)]
#[template(path = "ui/pairing.html")]
struct AdminPage {
    shell: Shell,
    pending: Vec<PendingRow>,
    devices: Vec<DeviceRow>,
    done: String,
}

pub async fn page(
    shell: Shell,
    state: State<AppState>,
    uri: axum::http::Uri,
) -> Result<Html<String>, UiError> {
    let overview = pairing::list(state, Extension(shell.who.clone())).await?.0;
    let done = url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "done")
        .map(|(_, v)| match v.as_ref() {
            "approved" => "Approved: the browser signs in now.",
            "denied" => "Denied.",
            "revoked" => "Device revoked.",
            _ => "",
        })
        .unwrap_or_default()
        .to_owned();
    render(&AdminPage {
        pending: overview.pending.iter().map(PendingRow::from).collect(),
        devices: overview.devices.iter().map(DeviceRow::from).collect(),
        shell,
        done,
    })
}

pub async fn decide(
    shell: Shell,
    state: State<AppState>,
    rid: Extension<RequestId>,
    body: Bytes,
) -> Result<Redirect, UiError> {
    let code: CodeBody = api(json!({ "code": field(&body, "code") }))?;
    let who = Extension(shell.who);
    let (resp, done) = if field(&body, "verdict") == "deny" {
        (
            pairing::deny(state, who, rid, Ok(Body(code))).await,
            "denied",
        )
    } else {
        (
            pairing::approve(state, who, rid, Ok(Body(code))).await,
            "approved",
        )
    };
    json_of(resp).await?;
    Ok(Redirect::to(&format!("/ui/pairing?done={done}")))
}

pub async fn revoke(
    shell: Shell,
    state: State<AppState>,
    rid: Extension<RequestId>,
    id: Path<String>,
) -> Result<Redirect, UiError> {
    let _revoked = pairing::revoke(state, Extension(shell.who), rid, id).await?;
    Ok(Redirect::to("/ui/pairing?done=revoked"))
}
