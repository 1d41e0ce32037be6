//! `/v1/providers`: a tenant's own provider keys, stored encrypted in the
//! vault (`provider:<name>` / `api_key` of the tenant) and never returned.
//! A tenant with its own key uses it before the gateway's; without one it
//! uses the gateway's providers.

use super::error::ApiError;
use super::state::AppState;
use axum::Extension;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use exoclaw_core::Secret;
use exoclaw_core::model::NewAuditEvent;
use exoclaw_gateway::access::Principal;
use serde::Deserialize;
use serde_json::{Value, json};

use exoclaw_gateway::runtime::{PROVIDER_KEY_NAME, provider_key_owner};

fn known(state: &AppState, name: &str) -> Result<(), ApiError> {
    if exoclaw_gateway::config::providers::known_names(&state.runtime.settings)
        .iter()
        .any(|n| n == name)
    {
        Ok(())
    } else {
        Err(ApiError::not_found())
    }
}

/// `GET /v1/providers`: every known provider, whether the tenant stored a
/// key for it and whether the gateway has one; never a key.
pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<Value>, ApiError> {
    let settings = &state.runtime.settings;
    let stored =
        exoclaw_gateway::runtime::stored_provider_keys(settings, Some(&state.vault), &who.tenant)
            .await;
    let gateway = state.runtime.llm().provider_names();
    let items: Vec<Value> = exoclaw_gateway::config::providers::known_names(settings)
        .into_iter()
        .map(|name| {
            json!({
                "name": name,
                "tenant_key": stored.contains_key(&name),
                "gateway_configured": gateway.contains(&name),
            })
        })
        .collect();
    Ok(Json(json!({ "providers": items })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutBody {
    api_key: String,
}

/// `PUT /v1/providers/{name}` `{"api_key"}`: store the tenant's key.
pub async fn put(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    body: Result<Json<PutBody>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    known(&state, &name)?;
    let Json(body) = body?;
    let key = body.api_key.trim();
    if key.is_empty() || key.len() > 4096 || key.chars().any(char::is_control) {
        return Err(ApiError::invalid("api_key: 1-4096 printable characters"));
    }
    let owner = provider_key_owner(&name);
    let key = Secret::new(key);
    state
        .vault
        .put(&who.tenant, &owner, PROVIDER_KEY_NAME, &key)
        .await?;
    exoclaw_gateway::runtime::register_provider_key(&who.tenant, &name, &key);
    audit(&state, &who, "provider.key_put", &name).await;
    super::secrets::reload_if_provider_key(&state, &who.tenant, &owner, PROVIDER_KEY_NAME).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v1/providers/{name}`: forget the tenant's key.
pub async fn delete(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    known(&state, &name)?;
    let owner = provider_key_owner(&name);
    state
        .vault
        .delete(&who.tenant, &owner, PROVIDER_KEY_NAME)
        .await?;
    exoclaw_guard::scrub::global()
        .unregister_for(who.tenant.as_str(), &format!("{owner}/{PROVIDER_KEY_NAME}"));
    audit(&state, &who, "provider.key_delete", &name).await;
    super::secrets::reload_if_provider_key(&state, &who.tenant, &owner, PROVIDER_KEY_NAME).await;
    Ok(StatusCode::NO_CONTENT)
}

async fn audit(state: &AppState, who: &Principal, action: &str, name: &str) {
    let event = NewAuditEvent::new(
        who.tenant.clone(),
        who.actor.clone(),
        action,
        format!("provider:{name}"),
        "allow",
    );
    exoclaw_gateway::audit::record_logged(state.store.as_ref(), &event).await;
}
