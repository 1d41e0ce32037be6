//! `GET|PATCH /v1/tenants/{id}`: a tenant with its own settings (sandbox,
//! egress, budgets) and the effective limits after narrowing the gateway's
//! configuration; the shapes are also `exoclaw tenants show --json`.
//!
//! Who: owners of the default tenant (the gateway's operators) read and
//! change every tenant; an owner of another tenant reads only its own
//! (another id answers 404) and changes none, so the limits an operator set
//! cannot be lifted by the tenant they bind.

use super::error::{ApiError, ErrorBody, ErrorCode};
use super::extract::{Body, Path};
use super::state::AppState;
use axum::Extension;
use axum::Json;
use axum::extract::State;
use exoclaw_core::model::{NewAuditEvent, Tenant};
use exoclaw_core::{DEFAULT_TENANT, TenantId};
use exoclaw_gateway::Settings;
use exoclaw_gateway::access::Principal;
use exoclaw_gateway::tenants::{self, Effective, Rejection, UpdateError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// The sandbox the tenant's commands get.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct EffectiveSandbox {
    /// `all`, `non-main` or `off`.
    pub mode: String,
    pub network_enabled: bool,
    /// How the tenant's network is policed, when not by the gateway's
    /// proxy alone (its own egress lists: a proxy of its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_note: Option<String>,
    pub memory_mb: u32,
    pub timeout_sec: u64,
    pub max_pids: u32,
}

/// What the web tools may reach for the tenant (the gateway's SSRF rules
/// and `tools.web_fetch` lists apply on top).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct EffectiveEgress {
    /// Empty: every public host.
    pub allow_domains: Vec<String>,
    pub deny_domains: Vec<String>,
}

/// The lower of `budgets.tenants.<id>` (or `"*"`) and the tenant's own;
/// `null`: no limit.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct EffectiveBudgets {
    pub daily_usd: Option<f64>,
    pub monthly_usd: Option<f64>,
    pub daily_tokens: Option<u64>,
    pub monthly_tokens: Option<u64>,
}

/// The tenant's limits after narrowing.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct EffectiveLimits {
    pub sandbox: EffectiveSandbox,
    pub egress: EffectiveEgress,
    pub budgets: EffectiveBudgets,
}

/// A tenant, its own settings and what applies to it.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct TenantDetail {
    #[schema(value_type = String)]
    pub id: TenantId,
    pub name: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// The tenant's own settings as stored: `sandbox` (`mode`,
    /// `network_enabled`, `memory_mb`, `timeout_sec`, `max_pids`), `egress`
    /// (`allow_domains`, `deny_domains`), `budgets` (`daily_usd`,
    /// `monthly_usd`, `daily_tokens`, `monthly_tokens`); `{}`: none.
    #[schema(value_type = Object)]
    pub settings: Value,
    /// Bumped by every change of `settings`.
    pub settings_version: i64,
    pub effective: EffectiveLimits,
}

impl TenantDetail {
    pub fn of(t: Tenant, e: &Effective) -> Self {
        let mode = match e.sandbox.mode {
            exoclaw_gateway::config::agents::SandboxMode::All => "all",
            exoclaw_gateway::config::agents::SandboxMode::NonMain => "non-main",
            exoclaw_gateway::config::agents::SandboxMode::Off => "off",
        };
        Self {
            id: t.id,
            name: t.name,
            created_at: t.created_at,
            settings: t.settings,
            settings_version: t.settings_version,
            effective: EffectiveLimits {
                sandbox: EffectiveSandbox {
                    mode: mode.to_owned(),
                    network_enabled: e.sandbox.network_enabled,
                    network_note: e.sandbox.network_note.map(str::to_owned),
                    memory_mb: e.sandbox.memory_mb,
                    timeout_sec: e.sandbox.timeout_sec,
                    max_pids: e.sandbox.max_pids,
                },
                egress: EffectiveEgress {
                    allow_domains: e.allow_domains.clone(),
                    deny_domains: e.deny_domains.clone(),
                },
                budgets: EffectiveBudgets {
                    daily_usd: e.budgets.daily_usd,
                    monthly_usd: e.budgets.monthly_usd,
                    daily_tokens: e.budgets.daily_tokens,
                    monthly_tokens: e.budgets.monthly_tokens,
                },
            },
        }
    }

    /// The detail of a stored tenant under `settings`.
    pub fn build(settings: &Settings, t: Tenant) -> Result<Self, ApiError> {
        let e = tenants::effective_of(settings, &t)?;
        Ok(Self::of(t, &e))
    }
}

/// The settings to change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantPatch {
    /// A JSON merge patch on the tenant's settings (`null` resets a field
    /// to the gateway's value). The result may only narrow the gateway's
    /// configuration.
    #[schema(value_type = Object)]
    pub settings: Value,
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        let code = if r.code == tenants::CODE_WIDENS {
            ErrorCode::TenantSettingsWiden
        } else {
            ErrorCode::TenantSettingsInvalid
        };
        ApiError::new(code, r.to_string())
    }
}

/// The tenant `id` as `who` may see it: its own, or any for the default
/// tenant's owners; another answers 404.
fn visible(who: &Principal, id: &str) -> Result<TenantId, ApiError> {
    if who.tenant.as_str() == DEFAULT_TENANT || who.tenant.as_str() == id {
        Ok(TenantId::new(id))
    } else {
        Err(ApiError::not_found())
    }
}

/// A tenant with its settings and effective limits.
#[utoipa::path(get, path = "/v1/tenants/{id}", tag = "users",
    params(("id" = String, Path, description = "The tenant's id")),
    responses(
        (status = 200, description = "The tenant", body = TenantDetail),
        (status = 404, description = "No such tenant (or not yours)", body = ErrorBody),
    ))]
pub async fn show(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<TenantDetail>, ApiError> {
    let tenant = visible(&who, &id)?;
    let t = state
        .store
        .get_tenant(&tenant)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(TenantDetail::build(&state.runtime.settings, t)?))
}

/// Change a tenant's settings (default tenant's owners; audited as
/// `tenant.update`). Takes effect at the tenant's next call on this
/// gateway and its next turn on every other.
#[utoipa::path(patch, path = "/v1/tenants/{id}", tag = "users", request_body = TenantPatch,
    params(("id" = String, Path, description = "The tenant's id")),
    responses(
        (status = 200, description = "The tenant", body = TenantDetail),
        (status = 400, description = "`tenant.settings_widen`: the settings would widen the gateway's (the message names each field and the gateway's value); `tenant.settings_invalid`: not the settings' shape", body = ErrorBody),
        (status = 403, description = "Only the default tenant's owners change settings", body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 409, description = "Another change came in meanwhile (`conflict`); retry", body = ErrorBody),
    ))]
pub async fn update(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Body(body): Body<TenantPatch>,
) -> Result<Json<TenantDetail>, ApiError> {
    let tenant = visible(&who, &id)?;
    if who.tenant.as_str() != DEFAULT_TENANT {
        return Err(ApiError::forbidden(
            "only an owner of the default tenant changes tenant settings",
        ));
    }
    let settings = &state.runtime.settings;
    let t = tenants::update(state.store.as_ref(), settings, &tenant, &body.settings)
        .await
        .map_err(|e| match e {
            UpdateError::NotFound(_) => ApiError::not_found(),
            UpdateError::Rejected(r) => r.into(),
            e @ UpdateError::Conflict(_) => ApiError::new(ErrorCode::Conflict, e.to_string()),
            UpdateError::Store(e) => e.into(),
        })?;
    let effective = state.runtime.tenant_limits.apply(&t)?;
    let mut event = NewAuditEvent::new(
        tenant.clone(),
        who.actor.clone(),
        "tenant.update",
        format!("tenant:{tenant}"),
        "allow",
    );
    event.detail = serde_json::json!({
        "settings_version": t.settings_version,
        "settings": t.settings,
    });
    exoclaw_gateway::audit::record_logged(state.store.as_ref(), &event).await;
    Ok(Json(TenantDetail::of(t, &effective)))
}
