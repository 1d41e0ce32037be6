//! Who a credential is: the gateway token, a user's API key or a paired
//! device's credential, classified ([`Credential`]: its kind and SHA-256,
//! the form each is stored and looked up by) and authenticated, with the
//! reasons a credential is refused ([`AuthFailure`]). The bearer middleware
//! (`auth.rs`) and the dashboard's sessions (`ui/session.rs`, which keep a
//! `Credential` and re-check it on every request) both come here.

use super::error::{ApiError, ErrorCode};
use super::state::AppState;
use exoclaw_core::model::NewAuditEvent;
use exoclaw_core::model::Role;
use exoclaw_core::now_ms;
use exoclaw_core::{DEFAULT_TENANT, TenantId, UserId};
use exoclaw_gateway::access::{KEY_PREFIX, Principal, digest};

/// The user the gateway token acts as (an owner of the default tenant).
pub const OWNER_USER: &str = "owner";

/// The principal the gateway token acts as.
pub fn gateway_owner() -> Principal {
    Principal {
        actor: "gateway-token".to_owned(),
        role: Role::Owner,
        tenant: TenantId::new(DEFAULT_TENANT),
        user: UserId::new(OWNER_USER),
        scopes: None,
    }
}

/// Why a credential was refused; each has a stable error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    Invalid,
    Expired,
    Revoked,
    Disabled,
    /// The store could not be asked (answered 503, not 401).
    Unavailable,
}

impl AuthFailure {
    pub fn code(self) -> ErrorCode {
        match self {
            AuthFailure::Missing | AuthFailure::Invalid => ErrorCode::AuthUnauthorized,
            AuthFailure::Expired => ErrorCode::AuthKeyExpired,
            AuthFailure::Revoked => ErrorCode::AuthKeyRevoked,
            AuthFailure::Disabled => ErrorCode::AuthUserDisabled,
            AuthFailure::Unavailable => ErrorCode::StoreUnavailable,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Invalid => "invalid",
            AuthFailure::Expired => "expired",
            AuthFailure::Revoked => "revoked",
            AuthFailure::Disabled => "disabled",
            AuthFailure::Unavailable => "unavailable",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            AuthFailure::Missing | AuthFailure::Invalid => "missing or invalid bearer token",
            AuthFailure::Expired => "this API key has expired; create a new one",
            AuthFailure::Revoked => "this credential was revoked",
            AuthFailure::Disabled => "this user is disabled",
            AuthFailure::Unavailable => "the store is unavailable; retry shortly",
        }
    }

    /// Whether the caller audits this refusal; refusals of a known key
    /// (expired, revoked, disabled user) are audited where the key's
    /// tenant is known.
    pub fn audited_here(self) -> bool {
        matches!(self, AuthFailure::Missing | AuthFailure::Invalid)
    }

    /// `401` with the failure's code (`503` when the store is unavailable).
    pub fn into_error(self) -> ApiError {
        ApiError::new(self.code(), self.message())
    }
}

/// What a credential is, without the credential: its kind and SHA-256
/// digest (the form every kind is stored and looked up by). A dashboard
/// session keeps this and re-checks it on every request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Credential {
    pub kind: CredentialKind,
    pub digest: [u8; 32],
}

/// The three kinds of credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialKind {
    /// The gateway token.
    Token,
    /// A user's API key.
    Key,
    /// A paired browser's device credential.
    Device,
}

impl Credential {
    /// Classify a presented token (malformed keys and device credentials
    /// are refused here, before any lookup).
    pub fn of(token: &str) -> Result<Self, AuthFailure> {
        let kind = if let Some(rest) = token.strip_prefix(KEY_PREFIX) {
            if rest.len() != 64 || !rest.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                return Err(AuthFailure::Invalid);
            }
            CredentialKind::Key
        } else if token.starts_with(exoclaw_gateway::pairing::TOKEN_PREFIX) {
            if !exoclaw_gateway::pairing::is_well_formed_token(token) {
                return Err(AuthFailure::Invalid);
            }
            CredentialKind::Device
        } else {
            CredentialKind::Token
        };
        Ok(Self {
            kind,
            digest: digest(token),
        })
    }

    /// `kind:hex`, as stored with a dashboard session.
    pub fn encode(&self) -> String {
        let kind = match self.kind {
            CredentialKind::Token => "token",
            CredentialKind::Key => "key",
            CredentialKind::Device => "device",
        };
        format!("{kind}:{}", hex::encode(self.digest))
    }

    /// The inverse of [`Credential::encode`].
    pub fn decode(text: &str) -> Option<Self> {
        let (kind, hex_digest) = text.split_once(':')?;
        let kind = match kind {
            "token" => CredentialKind::Token,
            "key" => CredentialKind::Key,
            "device" => CredentialKind::Device,
            _ => return None,
        };
        let mut digest = [0u8; 32];
        hex::decode_to_slice(hex_digest, &mut digest).ok()?;
        Some(Self { kind, digest })
    }
}

/// Establish who presents `token`: the gateway token (an owner), or a user's
/// API key (looked up by digest; expiry, revocation and a disabled user are
/// refused with their own codes), or a paired device.
pub async fn authenticate(
    state: &AppState,
    token: Option<&str>,
    rid: Option<&str>,
) -> Result<Principal, AuthFailure> {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Err(AuthFailure::Missing);
    };
    authenticate_credential(state, &Credential::of(token)?, rid).await
}

/// [`authenticate`] by what a credential is (see [`Credential`]).
pub async fn authenticate_credential(
    state: &AppState,
    credential: &Credential,
    rid: Option<&str>,
) -> Result<Principal, AuthFailure> {
    let hash = hex::encode(credential.digest);
    match credential.kind {
        CredentialKind::Key => authenticate_key(state, &hash, rid).await,
        CredentialKind::Device => {
            let found =
                exoclaw_gateway::pairing::authenticate_device_hash(state.store.as_ref(), &hash)
                    .await
                    .map_err(|e| {
                        tracing::error!(error = %e, "cannot look up a device credential");
                        AuthFailure::Unavailable
                    })?;
            // Unknown, revoked or of a disabled user: the browser pairs again.
            let Some((device, user)) = found else {
                return Err(AuthFailure::Invalid);
            };
            Ok(Principal {
                actor: format!("device:{}", device.id),
                role: exoclaw_gateway::access::effective_role(
                    &state.runtime.settings.owner_ids,
                    &user,
                ),
                tenant: user.tenant_id,
                user: user.id,
                scopes: None,
            })
        }
        CredentialKind::Token => {
            if state.tokens.check_digest(&credential.digest).await {
                Ok(gateway_owner())
            } else {
                Err(AuthFailure::Invalid)
            }
        }
    }
}

async fn authenticate_key(
    state: &AppState,
    key_hash: &str,
    rid: Option<&str>,
) -> Result<Principal, AuthFailure> {
    let found = state.store.find_api_key(key_hash).await.map_err(|e| {
        tracing::error!(error = %e, "cannot look up an API key");
        AuthFailure::Unavailable
    })?;
    let Some((key, user)) = found else {
        return Err(AuthFailure::Invalid);
    };
    let now = now_ms();
    let refused = if key.revoked_at.is_some() {
        Some(AuthFailure::Revoked)
    } else if key.expires_at.is_some_and(|t| t <= now) {
        Some(AuthFailure::Expired)
    } else if user.disabled {
        Some(AuthFailure::Disabled)
    } else {
        None
    };
    if let Some(failure) = refused {
        audit_failure(
            state,
            &key.tenant_id,
            &format!("api_key:{}", key.id),
            failure,
            rid,
        )
        .await;
        return Err(failure);
    }
    let scopes = if key.scopes.is_empty() {
        None
    } else {
        // Unknown words (from a newer binary) grant nothing.
        Some(key.scopes.iter().filter_map(|s| s.parse().ok()).collect())
    };
    state
        .key_uses
        .touch(&state.store, &state.runtime.supervisor, &key.id, now);
    Ok(Principal {
        actor: format!("user:{}", user.id),
        role: exoclaw_gateway::access::effective_role(&state.runtime.settings.owner_ids, &user),
        tenant: user.tenant_id,
        user: user.id,
        scopes,
    })
}

/// An `auth.failure` audit event of a known key (never the key itself).
async fn audit_failure(
    state: &AppState,
    tenant: &TenantId,
    resource: &str,
    failure: AuthFailure,
    rid: Option<&str>,
) {
    let mut event = NewAuditEvent::new(
        tenant.clone(),
        "anonymous",
        "auth.failure",
        resource,
        "deny",
    );
    failure.reason().clone_into(&mut event.reason);
    event.request_id = rid.map(str::to_owned);
    event.detail = serde_json::json!({ "code": failure.code() });
    exoclaw_gateway::audit::record(state.store.as_ref(), &event).await;
}
