//! `/v1/pairing`: browser pairing. A browser asks for a code for a user (a
//! name or an id),
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

use super::error::{ApiError, ErrorBody, ErrorCode};
use super::extract::{Body, Path};
use super::state::{AppState, RequestId};
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use exoclaw_core::model::{Device, PairingKind, PairingRequest, PairingStatus};
use exoclaw_core::{DEFAULT_TENANT, TenantId, UserId};
use exoclaw_gateway::access::Principal;
use exoclaw_gateway::pairing::{self, PairingError, Poll, Requested, Requester, Verdict};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa::ToSchema;

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
fn too_many(code: ErrorCode, message: String, wait: Duration) -> Response {
    let mut resp = ApiError::new(code, message).into_response();
    if let Ok(v) = HeaderValue::from_str(&super::limit::retry_after_secs(wait).to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

fn pairing_error(e: PairingError) -> Response {
    match e {
        PairingError::InvalidCode => ApiError::new(
            ErrorCode::PairingInvalidCode,
            "no pending pairing request has this code (unknown or expired)",
        )
        .into_response(),
        PairingError::AlreadyDecided(s) => ApiError::new(
            ErrorCode::PairingAlreadyDecided,
            format!("this pairing request is already {}", s.as_str()),
        )
        .into_response(),
        PairingError::Locked { retry_after } => too_many(
            ErrorCode::PairingLocked,
            format!(
                "too many failed pairing approvals; retry in {}s",
                super::limit::retry_after_secs(retry_after)
            ),
            retry_after,
        ),
        e @ PairingError::UserAmbiguous(_) => {
            ApiError::new(ErrorCode::PairingUserUnavailable, e.to_string()).into_response()
        }
        PairingError::UserUnavailable(u) => ApiError::new(
            ErrorCode::PairingUserUnavailable,
            format!(
                "user {u} does not exist or is disabled; create or enable it, then approve again"
            ),
        )
        .into_response(),
        e @ PairingError::Forbidden { .. } => ApiError::forbidden(e.to_string()).into_response(),
        PairingError::Store(e) => ApiError::from(e).into_response(),
    }
}

/// A browser asks to be paired for a user: `user` (the user's name or id,
/// as people know it) or `user_id`; one of them.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestBody {
    /// The user's name or id (of the `default` tenant); an admin's approval
    /// resolves it (refused when it is one user's name and another's id).
    #[schema(pattern = "^[A-Za-z0-9._:@-]{1,64}$", example = "alice")]
    user: Option<String>,
    /// The user's id (older clients).
    #[schema(pattern = "^[A-Za-z0-9._:@-]{1,64}$")]
    user_id: Option<String>,
}

/// A new pairing request: show `code` to an admin, poll `request_id`.
#[derive(Serialize, ToSchema)]
pub struct Created {
    /// What the browser polls `GET /v1/pairing/status/{request_id}` with
    /// (32 hex digits; the secret of the poll).
    pub request_id: String,
    /// The code an admin approves.
    pub code: String,
    /// Unix milliseconds.
    pub expires_at: i64,
}

/// `POST /v1/pairing/request` `{"user"}` (a name or an id; `user_id` also)
/// -> `201 {"request_id", "code", "expires_at"}`. Any syntactically valid
/// name or id is accepted: whether the user exists is not revealed (the
/// approval resolves and checks it).
#[utoipa::path(post, path = "/v1/pairing/request", tag = "pairing",
    request_body = RequestBody,
    responses(
        (status = 201, description = "The request and its code", body = Created),
        (status = 429, description = "Too many requests from this address, or pending for this user", body = ErrorBody),
    ))]
pub async fn request(
    State(state): State<AppState>,
    ip: Option<Extension<super::limit::ClientIp>>,
    body: Result<Body<RequestBody>, ApiError>,
) -> Response {
    if let Some(Extension(ip)) = ip
        && let Err(wait) = state.pairing_limit.check(ip.0)
    {
        return super::state::rate_limited(&state, "pairing", wait);
    }
    let Body(body) = match body {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let handle = match (body.user, body.user_id) {
        (Some(h), None) | (None, Some(h)) => h,
        _ => {
            return ApiError::invalid("give `user` (a name or an id) or `user_id`, not both")
                .into_response();
        }
    };
    if exoclaw_gateway::users::validate_name(&handle).is_err() {
        return ApiError::invalid("user: a user name or id (1-64 letters, digits and . _ - : @)")
            .into_response();
    }
    let user = UserId::new(handle);
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
            Json(Created {
                request_id: request.id,
                code: code.expose().to_owned(),
                expires_at: request.expires_at,
            }),
        )
            .into_response(),
        Ok(Requested::TooManyPending { oldest }) => {
            let wait = Duration::from_millis(
                u64::try_from(oldest.expires_at.saturating_sub(pairing::now_ms())).unwrap_or(0),
            );
            too_many(
                ErrorCode::PairingTooManyPending,
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

/// Where a pairing request stands, polled by the waiting browser.
#[derive(Serialize, ToSchema)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum PollView {
    /// Waiting for an admin.
    Pending {
        /// Unix milliseconds.
        expires_at: i64,
        /// The user the request is for, as it was asked (a name or an id):
        /// what the admin will approve.
        user: String,
    },
    /// Approved just now: the device credential, shown this once.
    Approved {
        /// The device credential (`exd_...`): a bearer token.
        token: String,
        #[schema(value_type = String)]
        user_id: UserId,
        device_id: String,
    },
    /// The credential was handed out already.
    Issued,
    Denied,
    Expired,
}

/// `GET /v1/pairing/status/{request_id}`: `pending`, then once `approved`
/// with the credential, then `issued`; or `denied` / `expired`. Unknown ids
/// are 404.
#[utoipa::path(get, path = "/v1/pairing/status/{request_id}", tag = "pairing",
    params(("request_id" = String, Path, description = "The `request_id` of the pairing request")),
    responses(
        (status = 200, description = "Where the request stands", body = PollView),
        (status = 404, description = "No such request", body = ErrorBody),
    ))]
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
        Poll::Pending { expires_at, user } => PollView::Pending { expires_at, user },
        Poll::Approved { token, device } => PollView::Approved {
            token: token.expose().to_owned(),
            user_id: device.user_id,
            device_id: device.id,
        },
        Poll::Issued => PollView::Issued,
        Poll::Denied => PollView::Denied,
        Poll::Expired => PollView::Expired,
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

/// A pairing request as admins see it (never its id, code or hash).
#[derive(Serialize, ToSchema)]
pub struct RequestView {
    #[schema(schema_with = super::schema::pairing_kind)]
    pub kind: PairingKind,
    #[schema(value_type = Option<String>)]
    pub user_id: Option<UserId>,
    pub channel: Option<String>,
    pub sender_id: Option<String>,
    /// The status now (a pending request past its expiry is `expired`).
    #[schema(schema_with = super::schema::pairing_status)]
    pub status: PairingStatus,
    /// Unix milliseconds.
    pub created_at: i64,
    pub expires_at: i64,
    pub approved_by: Option<String>,
    pub approved_at: Option<i64>,
}

impl From<&PairingRequest> for RequestView {
    fn from(r: &PairingRequest) -> Self {
        Self {
            kind: r.kind,
            user_id: r.user_id.clone(),
            channel: r.channel.clone(),
            sender_id: r.sender_id.clone(),
            status: r.status_at(pairing::now_ms()),
            created_at: r.created_at,
            expires_at: r.expires_at,
            approved_by: r.approved_by.clone(),
            approved_at: r.approved_at,
        }
    }
}

/// A paired browser (never its credential or hash).
#[derive(Serialize, ToSchema)]
pub struct DeviceView {
    pub id: String,
    #[schema(value_type = String)]
    pub tenant_id: TenantId,
    #[schema(value_type = String)]
    pub user_id: UserId,
    /// The browser's `User-Agent`, shortened.
    pub label: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub last_seen_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl From<Device> for DeviceView {
    fn from(d: Device) -> Self {
        Self {
            id: d.id,
            tenant_id: d.tenant_id,
            user_id: d.user_id,
            label: d.label,
            created_at: d.created_at,
            last_seen_at: d.last_seen_at,
            revoked_at: d.revoked_at,
        }
    }
}

/// Pending requests and every device of the tenant.
#[derive(Serialize, ToSchema)]
pub struct PairingOverview {
    pub pending: Vec<RequestView>,
    pub devices: Vec<DeviceView>,
}

/// `GET /v1/pairing`: pending requests (without ids or hashes: approval is
/// by code) and every device (without credential hashes).
#[utoipa::path(get, path = "/v1/pairing", tag = "pairing",
    responses((status = 200, description = "Pending requests and devices", body = PairingOverview)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<PairingOverview>, ApiError> {
    let now = pairing::now_ms();
    let pending = state
        .store
        .list_pairing_requests(&who.tenant, Some(PairingStatus::Pending))
        .await?
        .iter()
        .filter(|r| r.status_at(now) == PairingStatus::Pending)
        .map(RequestView::from)
        .collect();
    let devices = state.store.list_devices(&who.tenant).await?;
    Ok(Json(PairingOverview {
        pending,
        devices: devices.into_iter().map(DeviceView::from).collect(),
    }))
}

/// A decided pairing request.
#[derive(Serialize, ToSchema)]
pub struct DecidedRequest {
    pub request: RequestView,
}

/// A revoked device.
#[derive(Serialize, ToSchema)]
pub struct RevokedDevice {
    pub device: DeviceView,
}

/// The code a pairing request showed.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    code: String,
}

/// `POST /v1/pairing/approve` `{"code"}` -> `{"request": {...}}`.
#[utoipa::path(post, path = "/v1/pairing/approve", tag = "pairing", request_body = CodeBody,
    responses(
        (status = 200, description = "The request, approved", body = DecidedRequest),
        (status = 404, description = "No pending request has this code (`pairing.invalid_code`)", body = ErrorBody),
        (status = 409, description = "Already decided, or the user is missing or disabled", body = ErrorBody),
    ))]
pub async fn approve(
    state: State<AppState>,
    who: Extension<Principal>,
    rid: Extension<RequestId>,
    body: Result<Body<CodeBody>, ApiError>,
) -> Response {
    decide(state, who, rid, body, Verdict::Approve).await
}

/// `POST /v1/pairing/deny` `{"code"}` -> `{"request": {...}}`.
#[utoipa::path(post, path = "/v1/pairing/deny", tag = "pairing", request_body = CodeBody,
    responses(
        (status = 200, description = "The request, denied", body = DecidedRequest),
        (status = 404, description = "No pending request has this code (`pairing.invalid_code`)", body = ErrorBody),
        (status = 409, description = "Already decided", body = ErrorBody),
    ))]
pub async fn deny(
    state: State<AppState>,
    who: Extension<Principal>,
    rid: Extension<RequestId>,
    body: Result<Body<CodeBody>, ApiError>,
) -> Response {
    decide(state, who, rid, body, Verdict::Deny).await
}

async fn decide(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(rid): Extension<RequestId>,
    body: Result<Body<CodeBody>, ApiError>,
    verdict: Verdict,
) -> Response {
    let Body(body) = match body {
        Ok(b) => b,
        Err(e) => return e.into_response(),
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
        Ok(r) => Json(DecidedRequest {
            request: RequestView::from(&r),
        })
        .into_response(),
        Err(e) => pairing_error(e),
    }
}

/// `DELETE /v1/pairing/devices/{id}` -> `{"device": {...}}`; the browser
/// falls back to pairing. Audited.
#[utoipa::path(delete, path = "/v1/pairing/devices/{id}", tag = "pairing",
    params(("id" = String, Path, description = "The device's id")),
    responses(
        (status = 200, description = "The device, revoked", body = RevokedDevice),
        (status = 404, description = "No such device", body = ErrorBody),
    ))]
pub async fn revoke(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<String>,
) -> Result<Json<RevokedDevice>, ApiError> {
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
    Ok(Json(RevokedDevice {
        device: device.into(),
    }))
}
