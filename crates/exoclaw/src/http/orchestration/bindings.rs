//! Bindings: which agent answers a conversation that names none.
//! `GET|POST /v1/bindings`, `DELETE /v1/bindings/{id}`. A binding matches
//! a channel, a channel account, a peer and a user, each optional (absent:
//! any); the most specific match wins (a peer outweighs a user, a user an
//! account, an account a channel), then the oldest; with none, the
//! tenant's `default` agent (`exoclaw_gateway::runtime::bindings`).
//! Changes are audited as `binding.create` and `binding.delete`.

use super::super::error::{ApiError, ErrorBody, ErrorCode};
use super::super::extract::{Body, Path};
use super::super::state::{AppState, RequestId};
use super::{Actor, audit, check_name, existing_agent, is_plausible_id};
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use exoclaw_core::store::orchestration::{Binding, NewBinding};
use exoclaw_core::store::{Store, StoreError};
use exoclaw_core::{AgentId, TenantId, UserId};
use exoclaw_gateway::access::Principal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

/// A binding: conversations it matches go to `agent`.
#[derive(Serialize, ToSchema)]
pub struct BindingView {
    pub id: String,
    /// `ws`, `api`, a channel's name; `null`: any channel.
    pub channel: Option<String>,
    /// The channel account (one bot of several); `null`: any.
    pub account: Option<String>,
    /// A peer or group id on the channel; `null`: any.
    pub peer: Option<String>,
    /// A user id; `null`: any user.
    pub user: Option<String>,
    /// The agent that answers.
    #[schema(value_type = String)]
    pub agent: AgentId,
    /// Unix milliseconds.
    pub created_at: i64,
}

impl From<&Binding> for BindingView {
    fn from(b: &Binding) -> Self {
        Self {
            id: b.id.clone(),
            channel: b.channel.clone(),
            account: b.account.clone(),
            peer: b.peer.clone(),
            user: b.user_id.as_ref().map(|u| u.as_str().to_owned()),
            agent: b.agent.clone(),
            created_at: b.created_at,
        }
    }
}

/// The tenant's bindings, oldest first. Never paged: they are all here.
#[derive(Serialize, ToSchema)]
pub struct BindingList {
    pub bindings: Vec<BindingView>,
}

impl BindingList {
    pub fn of(bindings: &[Binding]) -> Self {
        Self {
            bindings: bindings.iter().map(BindingView::from).collect(),
        }
    }
}

/// A new binding. A field left out (or `null`) matches anything; a given
/// one must not be empty.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBinding {
    /// The agent that answers.
    #[schema(example = "support")]
    pub agent: String,
    /// A channel name (`ws`, `api`, `telegram`, ...).
    #[schema(min_length = 1, max_length = 256)]
    pub channel: Option<String>,
    /// A channel account.
    #[schema(min_length = 1, max_length = 256)]
    pub account: Option<String>,
    /// A peer or group id (for `ws`: the `peer` of `chat.send`).
    #[schema(min_length = 1, max_length = 256)]
    pub peer: Option<String>,
    /// A user id.
    #[schema(min_length = 1, max_length = 256)]
    pub user: Option<String>,
}

/// The tenant's bindings.
pub async fn bindings_of(store: &dyn Store, tenant: &TenantId) -> Result<BindingList, ApiError> {
    Ok(BindingList::of(&store.list_bindings(tenant).await?))
}

/// Creates a binding (audited as `binding.create`): `request.invalid` for
/// an empty field, `not_found` for an unknown agent, `conflict` when a
/// binding with the same match exists.
pub async fn bind(
    store: &dyn Store,
    actor: &Actor,
    body: CreateBinding,
) -> Result<BindingView, ApiError> {
    for (field, value) in [
        ("channel", &body.channel),
        ("account", &body.account),
        ("peer", &body.peer),
        ("user", &body.user),
    ] {
        if let Some(v) = value {
            check_name(field, v).map_err(|e| {
                ApiError::new(e.code, format!("{}; leave it out to match any", e.message))
            })?;
        }
    }
    let agent = existing_agent(store, &actor.tenant, &body.agent).await?;
    let new = NewBinding {
        channel: body.channel,
        account: body.account,
        peer: body.peer,
        user_id: body.user.map(UserId::new),
        agent,
    };
    let binding = store
        .create_binding(&actor.tenant, &new)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::new(
                ErrorCode::Conflict,
                "a binding with the same channel, account, peer and user exists \
                 (delete it first)",
            ),
            other => other.into(),
        })?;
    let view = BindingView::from(&binding);
    let detail = json!({
        "channel": view.channel,
        "account": view.account,
        "peer": view.peer,
        "user": view.user,
    });
    let resource = format!("binding:{}", binding.id);
    audit(
        store,
        actor,
        "binding.create",
        resource,
        Some(&binding.agent),
        detail,
    )
    .await;
    Ok(view)
}

/// Deletes a binding (audited as `binding.delete`); `not_found` when the
/// tenant has none with this id.
pub async fn unbind(store: &dyn Store, actor: &Actor, id: &str) -> Result<(), ApiError> {
    let missing = || ApiError::new(ErrorCode::NotFound, format!("no binding {id:?}"));
    if !is_plausible_id(id) {
        return Err(missing());
    }
    let bindings = store.list_bindings(&actor.tenant).await?;
    let Some(binding) = bindings.iter().find(|b| b.id == id) else {
        return Err(missing());
    };
    match store.delete_binding(&actor.tenant, id).await {
        Ok(()) => {}
        Err(StoreError::NotFound) => return Err(missing()),
        Err(e) => return Err(e.into()),
    }
    let resource = format!("binding:{id}");
    let detail = json!({"agent": binding.agent});
    audit(
        store,
        actor,
        "binding.delete",
        resource,
        Some(&binding.agent),
        detail,
    )
    .await;
    Ok(())
}

/// The tenant's bindings.
#[utoipa::path(get, path = "/v1/bindings", tag = "bindings",
    responses((status = 200, description = "Every binding of the tenant, oldest first", body = BindingList)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<Json<BindingList>, ApiError> {
    Ok(Json(bindings_of(state.store.as_ref(), &who.tenant).await?))
}

/// Bind conversations to an agent (audited as `binding.create`).
#[utoipa::path(post, path = "/v1/bindings", tag = "bindings", request_body = CreateBinding,
    responses(
        (status = 201, description = "The new binding", body = BindingView),
        (status = 400, description = "An empty match field", body = ErrorBody),
        (status = 404, description = "No such agent", body = ErrorBody),
        (status = 409, description = "A binding with the same match exists", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(rid): Extension<RequestId>,
    Body(b): Body<CreateBinding>,
) -> Result<(StatusCode, Json<BindingView>), ApiError> {
    let actor = Actor::of(&who, Some(rid.0));
    let binding = bind(state.store.as_ref(), &actor, b).await?;
    Ok((StatusCode::CREATED, Json(binding)))
}

/// Delete a binding (audited as `binding.delete`).
#[utoipa::path(delete, path = "/v1/bindings/{id}", tag = "bindings",
    params(("id" = String, Path, description = "The binding's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such binding", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let actor = Actor::of(&who, Some(rid.0));
    unbind(state.store.as_ref(), &actor, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
