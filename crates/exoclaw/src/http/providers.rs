//! `/v1/providers`: a tenant's own provider keys, stored encrypted in the
//! vault (`provider:<name>` / `api_key` of the tenant) and never returned.
//! A tenant with its own key uses it before the gateway's; without one it
//! uses the gateway's providers.

use super::error::{ApiError, ErrorBody};
use super::extract::{Body, Path};
use super::state::AppState;
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use exoclaw_core::Secret;
use exoclaw_core::model::NewAuditEvent;
use exoclaw_gateway::access::Principal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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

/// A provider the gateway knows.
#[derive(Serialize, ToSchema)]
pub struct ProviderView {
    pub name: String,
    /// Whether the tenant stored its own key.
    pub tenant_key: bool,
    /// Whether the gateway has a key of its own for it.
    pub gateway_configured: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ProviderList {
    pub providers: Vec<ProviderView>,
}

/// `GET /v1/providers`: every known provider, whether the tenant stored a
/// key for it and whether the gateway has one; never a key.
#[utoipa::path(get, path = "/v1/providers", tag = "providers",
    responses((status = 200, description = "The known providers", body = ProviderList)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<ProviderList>, ApiError> {
    let settings = &state.runtime.settings;
    let stored =
        exoclaw_gateway::runtime::stored_provider_keys(settings, Some(&state.vault), &who.tenant)
            .await;
    let gateway = state.runtime.llm().provider_names();
    let providers = exoclaw_gateway::config::providers::known_names(settings)
        .into_iter()
        .map(|name| ProviderView {
            tenant_key: stored.contains_key(&name),
            gateway_configured: gateway.contains(&name),
            name,
        })
        .collect();
    Ok(Json(ProviderList { providers }))
}

/// The tenant's key for a provider.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutBody {
    /// 1-4096 printable characters.
    api_key: String,
}

/// `PUT /v1/providers/{name}` `{"api_key"}`: store the tenant's key.
#[utoipa::path(put, path = "/v1/providers/{name}", tag = "providers", request_body = PutBody,
    params(("name" = String, Path, description = "A provider's name (`GET /v1/providers`)")),
    responses(
        (status = 204, description = "Stored; used at once"),
        (status = 404, description = "No such provider", body = ErrorBody),
    ))]
pub async fn put(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    body: Result<Body<PutBody>, ApiError>,
) -> Result<StatusCode, ApiError> {
    known(&state, &name)?;
    let Body(body) = body?;
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
#[utoipa::path(delete, path = "/v1/providers/{name}", tag = "providers",
    params(("name" = String, Path, description = "A provider's name (`GET /v1/providers`)")),
    responses(
        (status = 204, description = "Forgotten"),
        (status = 404, description = "No such provider, or no key stored", body = ErrorBody),
    ))]
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
