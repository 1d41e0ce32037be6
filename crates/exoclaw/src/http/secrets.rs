//! `/v1/secrets`: write-only secret storage in the encrypted vault. Values go
//! in and are never returned; listings show names and metadata only. Every
//! change is audited (without the value).

use super::error::ApiError;
use super::extract::{Body, Path, Query};
use super::state::{AppState, RequestId};
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse as _;
use exoclaw_core::Secret;
use exoclaw_core::model::NewAuditEvent;
use exoclaw_gateway::access::Principal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

/// A secret to store (the value is never returned).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutBody {
    /// Not empty.
    #[schema(min_length = 1)]
    value: String,
    /// Scopes the name (default `tenant`): lowercase letters, digits and
    /// `_ - : .`, at most 128.
    #[serde(default)]
    #[schema(pattern = "^[a-z0-9_:.-]{1,128}$")]
    owner: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OwnerQuery {
    /// The owner the secret was stored under (default `tenant`).
    #[param(pattern = "^[a-z0-9_:.-]{1,128}$")]
    owner: Option<String>,
}

/// A stored secret's metadata (never its value).
#[derive(Serialize, ToSchema)]
pub struct SecretView {
    pub owner: String,
    pub name: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct SecretList {
    pub secrets: Vec<SecretView>,
}

/// Stored, with a warning.
#[derive(Serialize, ToSchema)]
pub struct StoredWithWarning {
    pub warning: Warning,
}

/// Why the stored value is not scrubbed from outputs.
#[derive(Serialize, ToSchema)]
pub struct Warning {
    /// `secret.not_scrubbed`.
    #[schema(schema_with = warning_words)]
    pub code: &'static str,
    pub message: String,
}

fn warning_words() -> utoipa::openapi::schema::Object {
    super::schema::words(&["secret.not_scrubbed"])
}

pub fn is_valid_secret_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

pub fn is_valid_owner(owner: &str) -> bool {
    !owner.is_empty()
        && owner.len() <= 128
        && owner.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b':' | b'.')
        })
}

fn owner_of(owner: Option<String>) -> Result<String, ApiError> {
    let owner = owner.unwrap_or_else(|| "tenant".to_owned());
    if is_valid_owner(&owner) {
        Ok(owner)
    } else {
        Err(ApiError::invalid(
            "owner: lowercase letters, digits and _ - : . (at most 128)",
        ))
    }
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if is_valid_secret_name(name) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "name: letters, digits and _ - . (1 to 128 characters)",
        ))
    }
}

/// The tenant's secrets: names and metadata, never values.
#[utoipa::path(get, path = "/v1/secrets", tag = "secrets",
    responses((status = 200, description = "The secrets' metadata", body = SecretList)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<SecretList>, ApiError> {
    let metas = state.vault.list(&who.tenant, None).await?;
    let secrets = metas
        .into_iter()
        .map(|m| SecretView {
            owner: m.owner,
            name: m.name,
            created_at: m.created_at,
            updated_at: m.updated_at,
        })
        .collect();
    Ok(Json(SecretList { secrets }))
}

/// Store a secret, encrypted (audited as `secret.put`, without the value).
#[utoipa::path(put, path = "/v1/secrets/{name}", tag = "secrets", request_body = PutBody,
    params(("name" = String, Path, description = "Letters, digits and `_ - .` (1 to 128)",
        pattern = "^[A-Za-z0-9_.-]{1,128}$")),
    responses(
        (status = 204, description = "Stored"),
        (status = 200, description = "Stored, but the value is too short or common to be \
            scrubbed from outputs", body = StoredWithWarning),
    ))]
pub async fn put(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(rid): Extension<RequestId>,
    Path(name): Path<String>,
    body: Result<Body<PutBody>, ApiError>,
) -> Result<axum::response::Response, ApiError> {
    check_name(&name)?;
    let Body(body) = body?;
    let owner = owner_of(body.owner)?;
    if body.value.is_empty() {
        return Err(ApiError::invalid("value: must not be empty"));
    }
    let value = Secret::new(body.value);
    state.vault.put(&who.tenant, &owner, &name, &value).await?;
    // The tenant's outputs (and the operator's logs) are scrubbed of it;
    // other tenants' never are (that would confirm a guess).
    let registered = exoclaw_guard::scrub::global().register_for(
        who.tenant.as_str(),
        &scrub_name(&owner, &name),
        value.expose(),
    );
    audit(&state, &who, &rid, "secret.put", &owner, &name).await;
    reload_if_provider_key(&state, &who.tenant, &owner, &name).await;
    Ok(match registered {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(refused) => Json(StoredWithWarning {
            warning: Warning {
                code: "secret.not_scrubbed",
                message: format!(
                    "stored, but not scrubbed from outputs: the value is {refused}; \
                     use a long random value for a secret"
                ),
            },
        })
        .into_response(),
    })
}

pub use exoclaw_gateway::runtime::guard::scrub_name;

/// Delete a secret (audited as `secret.delete`).
#[utoipa::path(delete, path = "/v1/secrets/{name}", tag = "secrets", params(
        ("name" = String, Path, description = "The secret's name",
            pattern = "^[A-Za-z0-9_.-]{1,128}$"),
        OwnerQuery,
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such secret", body = super::error::ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(rid): Extension<RequestId>,
    Path(name): Path<String>,
    Query(q): Query<OwnerQuery>,
) -> Result<StatusCode, ApiError> {
    check_name(&name)?;
    let owner = owner_of(q.owner)?;
    state.vault.delete(&who.tenant, &owner, &name).await?;
    exoclaw_guard::scrub::global().unregister_for(who.tenant.as_str(), &scrub_name(&owner, &name));
    audit(&state, &who, &rid, "secret.delete", &owner, &name).await;
    reload_if_provider_key(&state, &who.tenant, &owner, &name).await;
    Ok(StatusCode::NO_CONTENT)
}

/// A stored provider key (`provider:<name>` / `api_key`) takes effect at once.
pub async fn reload_if_provider_key(
    state: &AppState,
    tenant: &exoclaw_core::TenantId,
    owner: &str,
    name: &str,
) {
    if owner.starts_with("provider:")
        && name == exoclaw_gateway::runtime::PROVIDER_KEY_NAME
        && let Err(e) = state
            .runtime
            .reload_tenant_providers(tenant, &state.vault)
            .await
    {
        tracing::error!(error = %e, "cannot reload the providers");
    }
}

async fn audit(
    state: &AppState,
    who: &Principal,
    rid: &RequestId,
    action: &str,
    owner: &str,
    name: &str,
) {
    let event = NewAuditEvent {
        tenant_id: who.tenant.clone(),
        actor: who.actor.clone(),
        action: action.to_owned(),
        resource: format!("secret:{owner}/{name}"),
        decision: "allow".to_owned(),
        reason: String::new(),
        request_id: Some(rid.0.clone()),
        agent_id: None,
        session_id: None,
        detail: json!({}),
    };
    exoclaw_gateway::audit::record(state.store.as_ref(), &event).await;
}
