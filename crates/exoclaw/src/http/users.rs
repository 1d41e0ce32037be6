//! Identity endpoints: `/v1/me`, users and their keys (admins), one's own
//! keys (`/v1/keys`), and tenants (owners). A user or key of another tenant
//! answers 404, like one that does not exist.

use super::error::ApiError;
use super::state::AppState;
use axum::Extension;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use exoclaw_core::TenantId;
use exoclaw_core::id::is_valid_slug;
use exoclaw_core::model::{NewAuditEvent, Role, User};
use exoclaw_core::store::ApiKey;
use exoclaw_gateway::access::Permission;
use exoclaw_gateway::access::Principal;
use exoclaw_gateway::users::{self, KeySpec, UserError};
use serde::Deserialize;
use serde_json::{Value, json};

impl From<UserError> for ApiError {
    fn from(e: UserError) -> Self {
        match e {
            UserError::Store(e) => e.into(),
            UserError::Scope(e) => ApiError::invalid(e.to_string()),
            UserError::Invalid(m) => ApiError::invalid(m),
            UserError::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, "auth.forbidden", m),
        }
    }
}

pub fn user_json(u: &User, owner_ids: &[String]) -> Value {
    json!({
        "id": u.id,
        "name": u.name,
        "role": exoclaw_gateway::access::effective_role(owner_ids, u),
        "tenant": u.tenant_id,
        "disabled": u.disabled,
        "created_at": u.created_at,
    })
}

pub fn key_json(k: &ApiKey) -> Value {
    json!({
        "id": k.id,
        "user_id": k.user_id,
        "name": k.name,
        "prefix": k.prefix,
        "scopes": k.scopes,
        "created_at": k.created_at,
        "expires_at": k.expires_at,
        "revoked_at": k.revoked_at,
        "last_used_at": k.last_used_at,
    })
}

async fn audit(
    state: &AppState,
    who: &Principal,
    tenant: &TenantId,
    action: &str,
    resource: String,
) {
    let event = NewAuditEvent::new(tenant.clone(), who.actor.clone(), action, resource, "allow");
    exoclaw_gateway::audit::record_logged(state.store.as_ref(), &event).await;
}

/// `GET /v1/me`: who the credential is.
pub async fn me(Extension(who): Extension<Principal>) -> Json<Value> {
    let perms: Vec<&str> = Permission::ALL
        .into_iter()
        .filter(|p| who.can(*p))
        .map(Permission::as_str)
        .collect();
    Json(json!({
        "actor": who.actor,
        "user_id": who.user,
        "tenant": who.tenant,
        "role": who.role,
        "permissions": perms,
    }))
}

#[derive(Deserialize)]
pub struct TenantQuery {
    tenant: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(q): Query<TenantQuery>,
) -> Result<Json<Value>, ApiError> {
    let tenant = users::target_tenant(&who, q.tenant.as_deref())?;
    let owners = &state.runtime.settings.owner_ids;
    let list = state.store.list_users(&tenant).await?;
    Ok(Json(json!({
        "users": list.iter().map(|u| user_json(u, owners)).collect::<Vec<_>>()
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    name: String,
    #[serde(default)]
    role: Option<Role>,
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    key: Option<KeyBody>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct KeyBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    expires_days: Option<u32>,
    #[serde(default)]
    scopes: Vec<String>,
}

impl KeyBody {
    fn spec(self) -> KeySpec {
        KeySpec {
            name: self.name.unwrap_or_default(),
            expires_days: self.expires_days,
            scopes: self.scopes,
        }
    }
}

/// `POST /v1/users`: the new user and their first key, shown once.
pub async fn create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: Result<Json<CreateUser>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(body) = body?;
    let tenant = users::target_tenant(&who, body.tenant.as_deref())?;
    let role = body.role.unwrap_or(Role::User);
    let owners = &state.runtime.settings.owner_ids;
    users::check_grant(who.role, role)?;
    if exoclaw_gateway::access::name_is_listed_owner(owners, &tenant, &body.name) {
        // The name makes an owner (EXOCLAW_OWNER_IDS): only an owner may
        // create it, and never silently.
        users::check_grant(who.role, Role::Owner).map_err(|_| {
            UserError::Forbidden(format!(
                "the name {:?} is listed in EXOCLAW_OWNER_IDS and would make an owner; only an owner may create it",
                body.name
            ))
        })?;
        tracing::warn!(
            event = "security.owner_created",
            name = %body.name,
            by = %who.actor,
            "a user listed in EXOCLAW_OWNER_IDS was created: it is an owner of the gateway"
        );
    }
    let (user, issued) = users::create_user(
        state.store.as_ref(),
        &tenant,
        &body.name,
        role,
        &body.key.unwrap_or_default().spec(),
    )
    .await?;
    audit(
        &state,
        &who,
        &tenant,
        "user.create",
        format!("user:{}", user.id),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": user.id,
            "name": user.name,
            "role": exoclaw_gateway::access::effective_role(owners, &user),
            "tenant": user.tenant_id,
            "api_key": issued.plaintext.expose(),
            "key_id": issued.key.id,
        })),
    ))
}

/// Refuse acting on a user who outranks `who` (by the effective role, so an
/// owner through `EXOCLAW_OWNER_IDS` counts as one).
fn check_rank(state: &AppState, who: &Principal, user: &User) -> Result<(), UserError> {
    let role = exoclaw_gateway::access::effective_role(&state.runtime.settings.owner_ids, user);
    users::check_grant(who.role, role)
}

/// The user `id` (or name) of the acting tenant, or 404.
async fn visible_user(state: &AppState, tenant: &TenantId, id: &str) -> Result<User, ApiError> {
    users::find(state.store.as_ref(), tenant, id)
        .await?
        .ok_or_else(ApiError::not_found)
}

pub async fn get(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Query(q): Query<TenantQuery>,
) -> Result<Json<Value>, ApiError> {
    let tenant = users::target_tenant(&who, q.tenant.as_deref())?;
    let user = visible_user(&state, &tenant, &id).await?;
    Ok(Json(user_json(&user, &state.runtime.settings.owner_ids)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    disabled: Option<bool>,
}

pub async fn update(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Query(q): Query<TenantQuery>,
    body: Result<Json<UpdateUser>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body?;
    let tenant = users::target_tenant(&who, q.tenant.as_deref())?;
    let user = visible_user(&state, &tenant, &id).await?;
    check_rank(&state, &who, &user)?;
    if let Some(disabled) = body.disabled {
        state
            .store
            .set_user_disabled(&tenant, &user.id, disabled)
            .await?;
        if disabled {
            state.revocations.announce(&tenant, &user.id);
        }
        let action = if disabled {
            "user.disable"
        } else {
            "user.enable"
        };
        audit(&state, &who, &tenant, action, format!("user:{}", user.id)).await;
    }
    let user = visible_user(&state, &tenant, user.id.as_str()).await?;
    Ok(Json(user_json(&user, &state.runtime.settings.owner_ids)))
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Query(q): Query<TenantQuery>,
) -> Result<StatusCode, ApiError> {
    let tenant = users::target_tenant(&who, q.tenant.as_deref())?;
    let user = visible_user(&state, &tenant, &id).await?;
    check_rank(&state, &who, &user)?;
    state.store.delete_user(&tenant, &user.id).await?;
    state.revocations.announce(&tenant, &user.id);
    audit(
        &state,
        &who,
        &tenant,
        "user.delete",
        format!("user:{}", user.id),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn user_keys(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Query(q): Query<TenantQuery>,
) -> Result<Json<Value>, ApiError> {
    let tenant = users::target_tenant(&who, q.tenant.as_deref())?;
    let user = visible_user(&state, &tenant, &id).await?;
    let keys = state.store.list_api_keys(&tenant, Some(&user.id)).await?;
    Ok(Json(
        json!({"keys": keys.iter().map(key_json).collect::<Vec<_>>()}),
    ))
}

pub async fn create_user_key(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Query(q): Query<TenantQuery>,
    body: Result<Json<KeyBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(body) = body?;
    let tenant = users::target_tenant(&who, q.tenant.as_deref())?;
    let user = visible_user(&state, &tenant, &id).await?;
    check_rank(&state, &who, &user)?;
    issue(&state, &who, &tenant, &user, body).await
}

async fn issue(
    state: &AppState,
    who: &Principal,
    tenant: &TenantId,
    user: &User,
    body: KeyBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let issued = users::issue_key(state.store.as_ref(), tenant, &user.id, &body.spec()).await?;
    audit(
        state,
        who,
        tenant,
        "key.create",
        format!("api_key:{}", issued.key.id),
    )
    .await;
    let mut out = key_json(&issued.key);
    out["api_key"] = Value::String(issued.plaintext.expose().to_owned());
    Ok((StatusCode::CREATED, Json(out)))
}

/// `GET /v1/keys`: the caller's own keys.
pub async fn my_keys(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<Value>, ApiError> {
    let keys = state
        .store
        .list_api_keys(&who.tenant, Some(&who.user))
        .await?;
    Ok(Json(
        json!({"keys": keys.iter().map(key_json).collect::<Vec<_>>()}),
    ))
}

/// `POST /v1/keys`: a new key for the caller (not for the gateway token,
/// which has no user row).
pub async fn create_my_key(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: Result<Json<KeyBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(body) = body?;
    let Some(user) = state.store.get_user(&who.tenant, &who.user).await? else {
        return Err(ApiError::invalid(
            "the gateway token has no user; create a user with POST /v1/users",
        ));
    };
    issue(&state, &who, &who.tenant.clone(), &user, body).await
}

/// `DELETE /v1/keys/{id}`: revoke one of the caller's keys; user managers
/// may revoke any key of their tenant.
pub async fn revoke_key(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let only = (!who.can(Permission::UsersManage)).then_some(&who.user);
    let keys = state.store.list_api_keys(&who.tenant, only).await?;
    let key = keys
        .iter()
        .find(|k| k.id == id)
        .ok_or_else(ApiError::not_found)?;
    if key.user_id != who.user
        && let Some(owner) = state.store.get_user(&who.tenant, &key.user_id).await?
    {
        // A user manager revokes others' keys only below (or at) their own
        // rank, as for disabling or deleting the key's user.
        check_rank(&state, &who, &owner)?;
    }
    let now = exoclaw_core::now_ms();
    state
        .store
        .revoke_api_key(&who.tenant, only, &id, now)
        .await?;
    state.revocations.announce(&who.tenant, &key.user_id);
    audit(
        &state,
        &who,
        &who.tenant,
        "key.revoke",
        format!("api_key:{id}"),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn tenants(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let list = state.store.list_tenants().await?;
    Ok(Json(json!({"tenants": list})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    id: String,
    name: Option<String>,
}

pub async fn create_tenant(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    body: Result<Json<CreateTenant>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(body) = body?;
    if !is_valid_slug(&body.id) {
        return Err(ApiError::invalid(
            "id: use lowercase letters, digits and '-' (1-64 characters)",
        ));
    }
    let tenant = TenantId::new(&body.id);
    let t = state
        .store
        .create_tenant(&tenant, body.name.as_deref().unwrap_or(&body.id))
        .await?;
    exoclaw_gateway::runtime::ensure_default_agent_of(state.store.as_ref(), &tenant)
        .await
        .map_err(ApiError::internal)?;
    audit(
        &state,
        &who,
        &tenant,
        "tenant.create",
        format!("tenant:{}", t.id),
    )
    .await;
    Ok((StatusCode::CREATED, Json(json!(t))))
}
