//! `/v1/pairing`: browser pairing. A browser asks for a code for a user id,
//! an admin approves the code (here or `exoclaw pairing approve CODE`), and
//! the browser, polling its request id, receives a device credential once.
//!
//! | route | auth | intended permission |
//! |---|---|---|
//! | `POST /v1/pairing/request` | none; per-IP rate limits (the gateway's and [`REQUESTS_PER_MINUTE`]) | — |
//! | `GET /v1/pairing/status/{request_id}` | none; the gateway's per-IP rate limit; the 128-bit request id is the secret | — |
//! | `GET /v1/pairing` | bearer | `pairing.manage` (admin) |
//! | `POST /v1/pairing/approve` | bearer | `pairing.manage` (admin) |
//! | `POST /v1/pairing/deny` | bearer | `pairing.manage` (admin) |
//! | `DELETE /v1/pairing/devices/{id}` | bearer | `pairing.manage` (admin) |
//!
//! Browser pairing serves users of the `default` tenant (the unauthenticated
//! request names only a user id); users of other tenants get API keys.
//! Admins list and decide only their own tenant's requests. Codes and
//! credentials never appear in logs; the listing never shows hashes or
//! request ids.

use super::error::ApiError;
use super::state::{AppState, RequestId};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, extract::rejection::JsonRejection};
use exoclaw_core::model::{PairingRequest, PairingStatus};
use exoclaw_core::{DEFAULT_TENANT, TenantId, UserId};
use exoclaw_gateway::access::Principal;
use exoclaw_gateway::pairing::{self, PairingError, Poll, Requested, Requester, Verdict};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

/// Unauthenticated paths of this module (see [`is_public`]).
const REQUEST_PATH: &str = "/v1/pairing/request";
const STATUS_PREFIX: &str = "/v1/pairing/status/";

pub use super::limit::REQUESTS_PER_MINUTE;

/// Whether `path` is one of the two unauthenticated pairing routes.
pub fn is_public(path: &str) -> bool {
    path == REQUEST_PATH
        || path
            .strip_prefix(STATUS_PREFIX)
            .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

fn tenant() -> TenantId {
    TenantId::new(DEFAULT_TENANT)
}

fn ttl(state: &AppState) -> Duration {
    Duration::from_secs(state.runtime.settings.config.gateway.pairing_ttl_sec)
}

/// `429` with a stable code and `Retry-After`.
fn too_many(code: &'static str, message: String, wait: Duration) -> Response {
    let mut resp = ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, message).into_response();
    if let Ok(v) = HeaderValue::from_str(&super::limit::retry_after_secs(wait).to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

fn pairing_error(e: PairingError) -> Response {
    match e {
        PairingError::InvalidCode => ApiError::new(
            StatusCode::NOT_FOUND,
            "pairing.invalid_code",
            "no pending pairing request has this code (unknown or expired)",
        )
        .into_response(),
        PairingError::AlreadyDecided(s) => ApiError::new(
            StatusCode::CONFLICT,
            "pairing.already_decided",
            format!("this pairing request is already {}", s.as_str()),
        )
        .into_response(),
        PairingError::Locked { retry_after } => too_many(
            "pairing.locked",
            format!(
                "too many failed pairing approvals; retry in {}s",
                super::limit::retry_after_secs(retry_after)
            ),
            retry_after,
        ),
        PairingError::UserUnavailable(u) => ApiError::new(
            StatusCode::CONFLICT,
            "pairing.user_unavailable",
            format!(
                "user {u} does not exist or is disabled; create or enable it, then approve again"
            ),
        )
        .into_response(),
        e @ PairingError::Forbidden { .. } => {
            ApiError::new(StatusCode::FORBIDDEN, "auth.forbidden", e.to_string()).into_response()
        }
        PairingError::Store(e) => ApiError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestBody {
    user_id: String,
}

/// `POST /v1/pairing/request` `{"user_id"}` -> `201 {"request_id", "code",
/// "expires_at"}`. Any syntactically valid user id is accepted: whether the
/// user exists is not revealed (approval checks it).
pub async fn request(
    State(state): State<AppState>,
    ip: Option<Extension<super::limit::ClientIp>>,
    body: Result<Json<RequestBody>, JsonRejection>,
) -> Response {
    if let Some(Extension(ip)) = ip
        && let Err(wait) = state.pairing_limit.check(ip.0)
    {
        return super::state::rate_limited(&state, "pairing", wait);
    }
    let Json(body) = match body {
        Ok(b) => b,
        Err(r) => return ApiError::from(r).into_response(),
    };
    if !exoclaw_core::id::is_valid_slug(&body.user_id) {
        return ApiError::invalid("user_id: 1-64 characters of a-z, 0-9, '-' and '_'")
            .into_response();
    }
    let user = UserId::new(body.user_id);
    let who = Requester::Device { user: &user };
    match pairing::request(
        state.store.as_ref(),
        &tenant(),
        &who,
        pairing::MAX_PENDING_PER_USER,
        ttl(&state),
    )
    .await
    {
        Ok(Requested::Created { request, code }) => (
            StatusCode::CREATED,
            [(header::CACHE_CONTROL, "no-store")],
            Json(json!({
                "request_id": request.id,
                "code": code.expose(),
                "expires_at": request.expires_at,
            })),
        )
            .into_response(),
        Ok(Requested::TooManyPending { oldest }) => {
            let wait = Duration::from_millis(
                u64::try_from(oldest.expires_at.saturating_sub(pairing::now_ms())).unwrap_or(0),
            );
            too_many(
                "pairing.too_many_pending",
                format!(
                    "this user already has {} pending pairing requests; wait for one to expire",
                    pairing::MAX_PENDING_PER_USER
                ),
                wait,
            )
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// `GET /v1/pairing/status/{request_id}`: `pending`, then once `approved`
/// with the credential, then `issued`; or `denied` / `expired`. Unknown ids
/// are 404.
pub async fn status(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return ApiError::not_found().into_response();
    }
    let label = device_label(&headers);
    let polled = match pairing::poll(state.store.as_ref(), &tenant(), &id, &label).await {
        Ok(Some(p)) => p,
        Ok(None) => return ApiError::not_found().into_response(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let body = match polled {
        Poll::Pending { expires_at } => json!({"status": "pending", "expires_at": expires_at}),
        Poll::Approved { token, device } => json!({
            "status": "approved",
            "token": token.expose(),
            "user_id": device.user_id,
            "device_id": device.id,
        }),
        Poll::Issued => json!({"status": "issued"}),
        Poll::Denied => json!({"status": "denied"}),
        Poll::Expired => json!({"status": "expired"}),
    };
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

/// The device's label: the browser's `User-Agent`, printable and short.
fn device_label(headers: &HeaderMap) -> String {
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let label: String = ua.chars().filter(|c| !c.is_control()).take(120).collect();
    if label.trim().is_empty() {
        "browser".to_owned()
    } else {
        label
    }
}

fn request_json(r: &PairingRequest) -> Value {
    json!({
        "kind": r.kind,
        "user_id": r.user_id,
        "channel": r.channel,
        "sender_id": r.sender_id,
        "status": r.status_at(pairing::now_ms()),
        "created_at": r.created_at,
        "expires_at": r.expires_at,
        "approved_by": r.approved_by,
        "approved_at": r.approved_at,
    })
}

/// `GET /v1/pairing`: pending requests (without ids or hashes: approval is
/// by code) and every device (without credential hashes).
pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<Value>, ApiError> {
    let now = pairing::now_ms();
    let pending: Vec<Value> = state
        .store
        .list_pairing_requests(&who.tenant, Some(PairingStatus::Pending))
        .await?
        .iter()
        .filter(|r| r.status_at(now) == PairingStatus::Pending)
        .map(request_json)
        .collect();
    let devices = state.store.list_devices(&who.tenant).await?;
    Ok(Json(json!({"pending": pending, "devices": devices})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    code: String,
}

/// `POST /v1/pairing/approve` `{"code"}` -> `{"request": {...}}`.
pub async fn approve(
    state: State<AppState>,
    who: Extension<Principal>,
    rid: Extension<RequestId>,
    body: Result<Json<CodeBody>, JsonRejection>,
) -> Response {
    decide(state, who, rid, body, Verdict::Approve).await
}

/// `POST /v1/pairing/deny` `{"code"}` -> `{"request": {...}}`.
pub async fn deny(
    state: State<AppState>,
    who: Extension<Principal>,
    rid: Extension<RequestId>,
    body: Result<Json<CodeBody>, JsonRejection>,
) -> Response {
    decide(state, who, rid, body, Verdict::Deny).await
}

async fn decide(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(rid): Extension<RequestId>,
    body: Result<Json<CodeBody>, JsonRejection>,
    verdict: Verdict,
) -> Response {
    let Json(body) = match body {
        Ok(b) => b,
        Err(r) => return ApiError::from(r).into_response(),
    };
    let approver = pairing::Approver {
        actor: &who.actor,
        role: who.role,
        owner_ids: &state.runtime.settings.owner_ids,
    };
    match pairing::decide(
        state.store.as_ref(),
        &who.tenant,
        &body.code,
        verdict,
        &approver,
        Some(rid.0),
    )
    .await
    {
        Ok(r) => Json(json!({"request": request_json(&r)})).into_response(),
        Err(e) => pairing_error(e),
    }
}

/// `DELETE /v1/pairing/devices/{id}` -> `{"device": {...}}`; the browser
/// falls back to pairing. Audited.
pub async fn revoke(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    // Revoking another person's device follows the rank rule of revoking
    // their keys: not above one's own role.
    let devices = state.store.list_devices(&who.tenant).await?;
    if let Some(d) = devices.iter().find(|d| d.id == id)
        && d.user_id != who.user
        && let Some(user) = state.store.get_user(&who.tenant, &d.user_id).await?
    {
        let role =
            exoclaw_gateway::access::effective_role(&state.runtime.settings.owner_ids, &user);
        exoclaw_gateway::users::check_grant(who.role, role)?;
    }
    let device = pairing::revoke(
        state.store.as_ref(),
        &who.tenant,
        &id,
        &who.actor,
        Some(rid.0),
    )
    .await?;
    state.revocations.announce(&who.tenant, &device.user_id);
    Ok(Json(json!({"device": device})))
}
