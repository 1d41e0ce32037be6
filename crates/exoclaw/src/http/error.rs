//! The one error type of the HTTP edge: a status, a stable machine code and a
//! public message. Internal detail goes to the log, never to the client.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use exoclaw_core::store::StoreError;
use exoclaw_store::vault::VaultError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "auth.unauthorized",
            "missing or invalid bearer token",
        )
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "request.invalid", message)
    }

    /// Log the detail; tell the client only that it was our fault.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the gateway log for this request id",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::not_found(),
            StoreError::Conflict(what) => Self::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("already exists: {what}"),
            ),
            StoreError::Invalid(m) => Self::invalid(m),
            StoreError::Unavailable(m) => {
                tracing::warn!(error = %m, "store unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store.unavailable",
                    "the store is unavailable; retry later",
                )
            }
            other => Self::internal(other),
        }
    }
}

impl From<VaultError> for ApiError {
    fn from(e: VaultError) -> Self {
        match e {
            VaultError::Store(e) => e.into(),
            VaultError::Encrypt(_) => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request.too_large",
                "the secret value is too large",
            ),
            other => {
                tracing::error!(error = %other, "vault error");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "vault.unavailable",
                    "the secret vault cannot serve this request; see the gateway log",
                )
            }
        }
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(r: axum::extract::rejection::JsonRejection) -> Self {
        let status = r.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            Self::new(status, "request.too_large", "request body is too large")
        } else {
            Self::new(status, "request.invalid_json", r.body_text())
        }
    }
}

tokio::task_local! {
    /// The tenant of the authenticated request being served (set by the
    /// authentication middleware): its errors are scrubbed of that tenant's
    /// secrets as well as the gateway's, never of another tenant's.
    pub static SCRUB_TENANT: exoclaw_core::TenantId;
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // A message can quote what a client or upstream sent; no secret the
        // gateway knows (or any credential-shaped text) leaves in it.
        let scrubber = exoclaw_guard::scrub::global();
        let message = SCRUB_TENANT
            .try_with(|t| scrubber.scrub_for(t.as_str(), &self.message).into_owned())
            .unwrap_or_else(|_| scrubber.scrub(&self.message).into_owned());
        let body = serde_json::json!({
            "error": { "code": self.code, "message": message }
        });
        let mut resp = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}
