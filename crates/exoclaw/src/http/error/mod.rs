//! The one error type of the HTTP edge: an [`ErrorCode`] (which fixes the
//! status, see `code.rs`) and a public message, answered as
//! `{"error": {"code", "message"}}` ([`ErrorBody`]). Internal detail goes to
//! the log, never to the client. The WebSocket answers the same codes in
//! its `res` frames.

mod code;

pub use code::ErrorCode;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use exoclaw_core::store::StoreError;
use exoclaw_store::vault::VaultError;
use serde::Serialize;

#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

/// The body of every error answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// A stable code and a message for people (scrubbed of secrets).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    pub fn unauthorized() -> Self {
        Self::new(
            ErrorCode::AuthUnauthorized,
            "missing or invalid bearer token",
        )
    }

    pub fn not_found() -> Self {
        Self::new(ErrorCode::NotFound, "no such resource")
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::RequestInvalid, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::AuthForbidden, message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::RequestTooLarge, message)
    }

    /// Log the detail; tell the client only that it was our fault.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            ErrorCode::Internal,
            "internal error; see the gateway log for this request id",
        )
    }

    /// The body, its message scrubbed of every secret the gateway knows
    /// (the request's tenant's too).
    pub fn body(&self) -> ErrorBody {
        // A message can quote what a client or upstream sent; no secret the
        // gateway knows (or any credential-shaped text) leaves in it.
        let scrubber = exoclaw_guard::scrub::global();
        let message = SCRUB_TENANT
            .try_with(|t| scrubber.scrub_for(t.as_str(), &self.message).into_owned())
            .unwrap_or_else(|_| scrubber.scrub(&self.message).into_owned());
        ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message,
            },
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::not_found(),
            StoreError::Conflict(what) => {
                Self::new(ErrorCode::Conflict, format!("already exists: {what}"))
            }
            StoreError::Invalid(m) => Self::invalid(m),
            StoreError::Unavailable(m) => {
                tracing::warn!(error = %m, "store unavailable");
                Self::new(
                    ErrorCode::StoreUnavailable,
                    "the store is unavailable; retry later",
                )
            }
            other => Self::internal(other),
        }
    }
}

impl From<exoclaw_gateway::runtime::teams::TeamError> for ApiError {
    fn from(e: exoclaw_gateway::runtime::teams::TeamError) -> Self {
        let code = ErrorCode::from_wire(e.code()).unwrap_or(ErrorCode::Internal);
        Self::new(code, e.to_string())
    }
}

impl From<VaultError> for ApiError {
    fn from(e: VaultError) -> Self {
        match e {
            VaultError::Store(e) => e.into(),
            VaultError::Encrypt(_) => Self::too_large("the secret value is too large"),
            other => {
                tracing::error!(error = %other, "vault error");
                Self::new(
                    ErrorCode::VaultUnavailable,
                    "the secret vault cannot serve this request; see the gateway log",
                )
            }
        }
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(r: axum::extract::rejection::JsonRejection) -> Self {
        use axum::extract::rejection::JsonRejection as R;
        let code = match &r {
            R::JsonDataError(_) => ErrorCode::RequestJsonMismatch,
            R::MissingJsonContentType(_) => ErrorCode::RequestJsonContentType,
            _ if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Self::too_large("request body is too large");
            }
            _ => ErrorCode::RequestInvalidJson,
        };
        Self::new(code, r.body_text())
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
        let status = self.status();
        let mut resp = (status, Json(self.body())).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        // Busy for now: a client may try again in a second.
        if self.code == ErrorCode::ServerBusy {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}
