//! Identity endpoints: `/v1/me`, users and their keys (admins), one's own
//! keys (`/v1/keys`), and tenants (owners). A user or key of another tenant
//! answers 404, like one that does not exist.

use super::error::{ApiError, ErrorBody};
use super::extract::{Body, Path, Query};
use super::state::AppState;
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use exoclaw_core::id::is_valid_slug;
use exoclaw_core::model::{NewAuditEvent, Role, Tenant, User};
use exoclaw_core::store::ApiKey;
use exoclaw_core::{TenantId, UserId};
use exoclaw_gateway::access::Permission;
use exoclaw_gateway::access::Principal;
use exoclaw_gateway::users::{self, KeySpec, UserError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

impl From<UserError> for ApiError {
    fn from(e: UserError) -> Self {
        match e {
            UserError::Store(e) => e.into(),
            UserError::Scope(e) => ApiError::invalid(e.to_string()),
            UserError::Invalid(m) => ApiError::invalid(m),
            UserError::Forbidden(m) => ApiError::forbidden(m),
        }
    }
}

/// A user.
#[derive(Serialize, ToSchema)]
pub struct UserView {
    #[schema(value_type = String)]
    pub id: UserId,
    pub name: String,
    /// The effective role (`EXOCLAW_OWNER_IDS` makes owners).
    #[schema(schema_with = super::schema::role)]
    pub role: Role,
    #[schema(value_type = String)]
    pub tenant: TenantId,
    pub disabled: bool,
    /// Unix milliseconds.
    pub created_at: i64,
}

impl UserView {
    pub fn of(u: &User, owner_ids: &[String]) -> Self {
        Self {
            id: u.id.clone(),
            name: u.name.clone(),
            role: exoclaw_gateway::access::effective_role(owner_ids, u),
            tenant: u.tenant_id.clone(),
            disabled: u.disabled,
            created_at: u.created_at,
        }
    }
}

/// The public JSON of a user (also `exoclaw users list --json`).
pub fn user_json(u: &User, owner_ids: &[String]) -> Value {
    serde_json::to_value(UserView::of(u, owner_ids)).unwrap_or(Value::Null)
}

/// An API key (never the key itself, only its prefix).
#[derive(Serialize, ToSchema)]
pub struct KeyView {
    pub id: String,
    #[schema(value_type = String)]
    pub user_id: UserId,
    pub name: String,
    /// The key's first characters, to recognise it.
    pub prefix: String,
    /// The permissions the key is limited to; empty: all its user's role has.
    pub scopes: Vec<String>,
    /// Unix milliseconds.
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

impl From<&ApiKey> for KeyView {
    fn from(k: &ApiKey) -> Self {
        Self {
            id: k.id.clone(),
            user_id: k.user_id.clone(),
            name: k.name.clone(),
            prefix: k.prefix.clone(),
            scopes: k.scopes.clone(),
            created_at: k.created_at,
            expires_at: k.expires_at,
            revoked_at: k.revoked_at,
            last_used_at: k.last_used_at,
        }
    }
}

/// The public JSON of an API key (also `exoclaw keys list --json`).
pub fn key_json(k: &ApiKey) -> Value {
    serde_json::to_value(KeyView::from(k)).unwrap_or(Value::Null)
}

/// A new key, with the key itself: shown this once.
#[derive(Serialize, ToSchema)]
pub struct IssuedKey {
    #[serde(flatten)]
    pub key: KeyView,
    /// The bearer token (`exo_...`); not retrievable later.
    pub api_key: String,
}

#[derive(Serialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeyView>,
}

impl KeyList {
    pub fn of(keys: &[ApiKey]) -> Self {
        Self {
            keys: keys.iter().map(KeyView::from).collect(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct UserList {
    pub users: Vec<UserView>,
}

/// A new user and their first key, shown once.
#[derive(Serialize, ToSchema)]
pub struct CreatedUser {
    #[schema(value_type = String)]
    pub id: UserId,
    pub name: String,
    #[schema(schema_with = super::schema::role)]
    pub role: Role,
    #[schema(value_type = String)]
    pub tenant: TenantId,
    /// The bearer token (`exo_...`); not retrievable later.
    pub api_key: String,
    pub key_id: String,
}

/// Who the credential is and what it may do.
#[derive(Serialize, ToSchema)]
pub struct Me {
    /// `gateway-token`, `user:<id>` or `device:<id>`.
    pub actor: String,
    #[schema(value_type = String)]
    pub user_id: UserId,
    #[schema(value_type = String)]
    pub tenant: TenantId,
    #[schema(schema_with = super::schema::role)]
    pub role: Role,
    /// Every permission the credential holds (its role's, narrowed by the
    /// key's scopes).
    pub permissions: Vec<&'static str>,
}

/// A tenant.
#[derive(Serialize, ToSchema)]
pub struct TenantView {
    #[schema(value_type = String)]
    pub id: TenantId,
    pub name: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

impl From<Tenant> for TenantView {
    fn from(t: Tenant) -> Self {
        Self {
            id: t.id,
            name: t.name,
            created_at: t.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TenantList {
    pub tenants: Vec<TenantView>,
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
#[utoipa::path(get, path = "/v1/me", tag = "users",
    responses((status = 200, description = "The caller", body = Me)))]
pub async fn me(Extension(who): Extension<Principal>) -> Json<Me> {
    let permissions = Permission::ALL
        .into_iter()
        .filter(|p| who.can(*p))
        .map(Permission::as_str)
        .collect();
    Json(Me {
        actor: who.actor,
        user_id: who.user,
        tenant: who.tenant,
        role: who.role,
        permissions,
    })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TenantQuery {
    /// Another tenant (owners only); default the caller's.
    tenant: Option<String>,
}

impl TenantQuery {
    /// The tenant asked for, if any.
    pub fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }
}

/// The tenant's users.
#[utoipa::path(get, path = "/v1/users", tag = "users", params(TenantQuery),
    responses((status = 200, description = "The users", body = UserList)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(q): Query<TenantQuery>,
) -> Result<Json<UserList>, ApiError> {
    let tenant = users::target_tenant(&who, q.tenant.as_deref())?;
    let owners = &state.runtime.settings.owner_ids;
    let list = state.store.list_users(&tenant).await?;
    Ok(Json(UserList {
        users: list.iter().map(|u| UserView::of(u, owners)).collect(),
    }))
}

/// A new user (and their first key).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Unique in the tenant.
    #[schema(example = "alice")]
    name: String,
    /// Default `user`; at most the caller's own.
    #[serde(default)]
    #[schema(schema_with = super::schema::role_or_null)]
    role: Option<Role>,
    /// Another tenant (owners only).
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    key: Option<KeyBody>,
}

/// A new API key.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyBody {
    #[serde(default)]
    name: Option<String>,
    /// Days until it expires; none: never.
    #[serde(default)]
    #[schema(value_type = Option<u64>, maximum = 4294967295_u64)]
    expires_days: Option<u32>,
    /// Permissions to limit the key to (`exoclaw routes` lists them); empty:
    /// all its user's role has.
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
#[utoipa::path(post, path = "/v1/users", tag = "users", request_body = CreateUser,
    responses(
        (status = 201, description = "The user and their key", body = CreatedUser),
        (status = 409, description = "A user of this name exists", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Body(body): Body<CreateUser>,
) -> Result<(StatusCode, Json<CreatedUser>), ApiError> {
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
        Json(CreatedUser {
            role: exoclaw_gateway::access::effective_role(owners, &user),
            id: user.id,
            name: user.name,
            tenant: user.tenant_id,
            api_key: issued.plaintext.expose().to_owned(),
            key_id: issued.key.id,
        }),
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

/// A user, by id or name.
#[utoipa::path(get, path = "/v1/users/{id}", tag = "users",
    params(("id" = String, Path, description = "The user's id or name"), TenantQuery),
    responses(
        (status = 200, description = "The user", body = UserView),
        (status = 404, description = "No such user", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Query(q): Query<TenantQuery>,
) -> Result<Json<UserView>, ApiError> {
    let tenant = users::target_tenant(&who, q.tenant.as_deref())?;
    let user = visible_user(&state, &tenant, &id).await?;
    Ok(Json(UserView::of(&user, &state.runtime.settings.owner_ids)))
}

/// The fields to change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    /// Disable (their credentials stop working at once) or enable.
    disabled: Option<bool>,
}

/// Disable or enable a user (audited).
#[utoipa::path(patch, path = "/v1/users/{id}", tag = "users", request_body = UpdateUser,
    params(("id" = String, Path, description = "The user's id or name"), TenantQuery),
    responses(
        (status = 200, description = "The user", body = UserView),
        (status = 404, description = "No such user", body = ErrorBody),
    ))]
pub async fn update(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Query(q): Query<TenantQuery>,
    Body(body): Body<UpdateUser>,
) -> Result<Json<UserView>, ApiError> {
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
    Ok(Json(UserView::of(&user, &state.runtime.settings.owner_ids)))
}

/// Delete a user (audited; their credentials stop working at once).
#[utoipa::path(delete, path = "/v1/users/{id}", tag = "users",
    params(("id" = String, Path, description = "The user's id or name"), TenantQuery),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such user", body = ErrorBody),
    ))]
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

/// A user's API keys.
#[utoipa::path(get, path = "/v1/users/{id}/keys", tag = "users",
    params(("id" = String, Path, description = "The user's id or name"), TenantQuery),
    responses(
        (status = 200, description = "The keys", body = KeyList),
        (status = 404, description = "No such user", body = ErrorBody),
    ))]
pub async fn user_keys(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Query(q): Query<TenantQuery>,
) -> Result<Json<KeyList>, ApiError> {
    let tenant = users::target_tenant(&who, q.tenant.as_deref())?;
    let user = visible_user(&state, &tenant, &id).await?;
    let keys = state.store.list_api_keys(&tenant, Some(&user.id)).await?;
    Ok(Json(KeyList::of(&keys)))
}

/// A new API key for a user (audited), shown once.
#[utoipa::path(post, path = "/v1/users/{id}/keys", tag = "users", request_body = KeyBody,
    params(("id" = String, Path, description = "The user's id or name"), TenantQuery),
    responses(
        (status = 201, description = "The key", body = IssuedKey),
        (status = 404, description = "No such user", body = ErrorBody),
    ))]
pub async fn create_user_key(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Query(q): Query<TenantQuery>,
    Body(body): Body<KeyBody>,
) -> Result<(StatusCode, Json<IssuedKey>), ApiError> {
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
) -> Result<(StatusCode, Json<IssuedKey>), ApiError> {
    let issued = users::issue_key(state.store.as_ref(), tenant, &user.id, &body.spec()).await?;
    audit(
        state,
        who,
        tenant,
        "key.create",
        format!("api_key:{}", issued.key.id),
    )
    .await;
    let out = IssuedKey {
        key: KeyView::from(&issued.key),
        api_key: issued.plaintext.expose().to_owned(),
    };
    Ok((StatusCode::CREATED, Json(out)))
}

/// `GET /v1/keys`: the caller's own keys.
#[utoipa::path(get, path = "/v1/keys", tag = "users",
    responses((status = 200, description = "The caller's keys", body = KeyList)))]
pub async fn my_keys(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<KeyList>, ApiError> {
    let keys = state
        .store
        .list_api_keys(&who.tenant, Some(&who.user))
        .await?;
    Ok(Json(KeyList::of(&keys)))
}

/// `POST /v1/keys`: a new key for the caller (not for the gateway token,
/// which has no user row).
#[utoipa::path(post, path = "/v1/keys", tag = "users", request_body = KeyBody,
    responses((status = 201, description = "The key", body = IssuedKey)))]
pub async fn create_my_key(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Body(body): Body<KeyBody>,
) -> Result<(StatusCode, Json<IssuedKey>), ApiError> {
    let Some(user) = state.store.get_user(&who.tenant, &who.user).await? else {
        return Err(ApiError::invalid(
            "the gateway token has no user; create a user with POST /v1/users",
        ));
    };
    issue(&state, &who, &who.tenant.clone(), &user, body).await
}

/// `DELETE /v1/keys/{id}`: revoke one of the caller's keys; user managers
/// may revoke any key of their tenant.
#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "users",
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such key (or not the caller's)", body = ErrorBody),
    ))]
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

/// Every tenant.
#[utoipa::path(get, path = "/v1/tenants", tag = "users",
    responses((status = 200, description = "The tenants", body = TenantList)))]
pub async fn tenants(State(state): State<AppState>) -> Result<Json<TenantList>, ApiError> {
    let list = state.store.list_tenants().await?;
    Ok(Json(TenantList {
        tenants: list.into_iter().map(TenantView::from).collect(),
    }))
}

/// A new tenant.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// Lowercase letters, digits, `-` and `_` (1-64), starting with a letter
    /// or digit.
    #[schema(pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")]
    id: String,
    /// Default: the id.
    name: Option<String>,
}

/// Create a tenant (with its `default` agent; audited).
#[utoipa::path(post, path = "/v1/tenants", tag = "users", request_body = CreateTenant,
    responses(
        (status = 201, description = "The tenant", body = TenantView),
        (status = 409, description = "A tenant with this id exists", body = ErrorBody),
    ))]
pub async fn create_tenant(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Body(body): Body<CreateTenant>,
) -> Result<(StatusCode, Json<TenantView>), ApiError> {
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
    Ok((StatusCode::CREATED, Json(t.into())))
}
