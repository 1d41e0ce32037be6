//! `/v1/secrets`: write-only secret storage in the encrypted vault. Values go
//! in and are never returned; listings show names and metadata only. Every
//! change is audited (without the value).

use super::error::ApiError;
use super::state::{AppState, RequestId};
use axum::Extension;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse as _;
use exoclaw_core::Secret;
use exoclaw_core::model::NewAuditEvent;
use exoclaw_gateway::access::Principal;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutBody {
    value: String,
    #[serde(default)]
    owner: Option<String>,
}

#[derive(Deserialize)]
pub struct OwnerQuery {
    owner: Option<String>,
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

pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<Value>, ApiError> {
    let metas = state.vault.list(&who.tenant, None).await?;
    let items: Vec<Value> = metas
        .into_iter()
        .map(|m| {
            json!({
                "owner": m.owner,
                "name": m.name,
                "created_at": m.created_at,
                "updated_at": m.updated_at,
            })
        })
        .collect();
    Ok(Json(json!({ "secrets": items })))
}

pub async fn put(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(rid): Extension<RequestId>,
    Path(name): Path<String>,
    body: Result<Json<PutBody>, JsonRejection>,
) -> Result<axum::response::Response, ApiError> {
    check_name(&name)?;
    let Json(body) = body?;
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
        Err(refused) => Json(json!({
            "warning": {
                "code": "secret.not_scrubbed",
                "message": format!(
                    "stored, but not scrubbed from outputs: the value is {refused}; \
                     use a long random value for a secret"
                ),
            }
        }))
        .into_response(),
    })
}

pub use exoclaw_gateway::runtime::guard::scrub_name;

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
