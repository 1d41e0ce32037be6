//! Permission links between agents: `GET|POST /v1/agents/{id}/links` and
//! `DELETE /v1/agents/{id}/links/{target}`. A link from a source to a
//! target lets delegation go the way its direction says (`outbound`: the
//! source delegates to the target; `inbound`: the target to the source;
//! `bidirectional`: both), optionally for some users only and with a limit
//! of its own on delegations at once. One link per ordered pair: a link
//! from `b` to `a` is another link than one from `a` to `b`. An unknown
//! agent of the path is `404 not_found`; an unknown `target` (named by the
//! body) is `422 agent.unknown`. Changes are audited as `agent.link` and
//! `agent.unlink`.

use super::super::error::{ApiError, ErrorBody, ErrorCode};
use super::super::extract::{Body, Path};
use super::super::state::{AppState, RequestId};
use super::{Actor, Surface, audit, check_name, existing_agent};
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use exoclaw_core::id::is_valid_slug;
use exoclaw_core::store::orchestration::{AgentLink, LinkDirection, LinkUsers, NewAgentLink};
use exoclaw_core::store::{Store, StoreError};
use exoclaw_core::{AgentId, TenantId, UserId};
use exoclaw_gateway::access::Principal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

/// The most delegations a link's own limit may allow at once.
pub const MAX_CONCURRENT_LIMIT: i64 = 10_000;

/// Whose conversations may use a link: nobody in `deny`; when `allow` is
/// not empty, only those in it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkUsersView {
    /// User ids; empty: everyone not denied.
    #[serde(default)]
    pub allow: Vec<String>,
    /// User ids refused even when allowed.
    #[serde(default)]
    pub deny: Vec<String>,
}

/// A permission link between two agents of the tenant.
#[derive(Serialize, ToSchema)]
pub struct LinkView {
    #[schema(value_type = String)]
    pub source: AgentId,
    #[schema(value_type = String)]
    pub target: AgentId,
    /// `outbound`: the source may delegate to the target; `inbound`: the
    /// target to the source; `bidirectional`: both.
    #[schema(schema_with = super::direction)]
    pub direction: LinkDirection,
    /// Delegations over this link at once; `null`: no limit of its own.
    pub max_concurrent: Option<u32>,
    pub users: LinkUsersView,
    /// Unix milliseconds.
    pub created_at: i64,
}

impl From<&AgentLink> for LinkView {
    fn from(l: &AgentLink) -> Self {
        let ids = |v: &[UserId]| v.iter().map(|u| u.as_str().to_owned()).collect();
        Self {
            source: l.source.clone(),
            target: l.target.clone(),
            direction: l.direction,
            max_concurrent: l.max_concurrent,
            users: LinkUsersView {
                allow: ids(&l.users.allow),
                deny: ids(&l.users.deny),
            },
            created_at: l.created_at,
        }
    }
}

/// Links, ordered by source, then target. Never paged: a tenant's links
/// are all here.
#[derive(Serialize, ToSchema)]
pub struct LinkList {
    pub links: Vec<LinkView>,
}

impl LinkList {
    pub fn of(links: &[AgentLink]) -> Self {
        Self {
            links: links.iter().map(LinkView::from).collect(),
        }
    }
}

/// A new link from the agent of the path to `target`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateLink {
    /// The agent at the other end.
    #[schema(example = "research")]
    pub target: String,
    /// `outbound` (the default): the agent of the path may delegate to the
    /// target; `inbound`: the target may delegate to it; `bidirectional`:
    /// both.
    #[schema(schema_with = super::direction_or_null)]
    pub direction: Option<String>,
    /// 1-10000 delegations over this link at once; absent or `null`: no
    /// limit of its own (the target's and the gateway's still apply).
    #[schema(minimum = 1, maximum = 10000)]
    pub max_concurrent: Option<i64>,
    /// Whose conversations may use the link; absent: everyone.
    pub users: Option<LinkUsersView>,
}

/// The links `agent` is the source or target of; without `agent`, all of
/// the tenant's. An unknown agent is `not_found`.
pub async fn links_of(
    store: &dyn Store,
    tenant: &TenantId,
    agent: Option<&str>,
) -> Result<LinkList, ApiError> {
    let agent = match agent {
        Some(id) => Some(existing_agent(store, tenant, id).await?),
        None => None,
    };
    let links = store.list_links(tenant, agent.as_ref()).await?;
    Ok(LinkList::of(&links))
}

/// The users of a new link, each a user id (see `check_name`), none both
/// allowed and denied.
fn link_users(users: Option<LinkUsersView>) -> Result<LinkUsers, ApiError> {
    let users = users.unwrap_or_default();
    for (list, ids) in [("allow", &users.allow), ("deny", &users.deny)] {
        for (i, id) in ids.iter().enumerate() {
            check_name(&format!("users.{list}[{i}]"), id)?;
        }
    }
    if let Some(both) = users.allow.iter().find(|u| users.deny.contains(u)) {
        return Err(ApiError::invalid(format!(
            "users: {both:?} is both allowed and denied"
        )));
    }
    let ids = |v: Vec<String>| v.into_iter().map(UserId::new).collect();
    Ok(LinkUsers {
        allow: ids(users.allow),
        deny: ids(users.deny),
    })
}

/// Parses a direction word; `field` names it in the refusal.
pub fn parse_direction(field: &str, word: Option<&str>) -> Result<LinkDirection, ApiError> {
    match word {
        None => Ok(LinkDirection::Outbound),
        Some(w) => LinkDirection::parse(w).ok_or_else(|| {
            ApiError::invalid(format!(
                "{field}: expected outbound, inbound or bidirectional, not {w:?}"
            ))
        }),
    }
}

/// Creates the link from `source` (audited as `agent.link`): `request.invalid`
/// for a bad direction, limit or user list or a link to itself,
/// `not_found` for an unknown source (the path's agent), `agent.unknown`
/// (422) for an unknown target (the body's), `conflict` when the pair is
/// linked already.
pub async fn link(
    store: &dyn Store,
    actor: &Actor,
    source: &str,
    body: CreateLink,
) -> Result<LinkView, ApiError> {
    let direction = parse_direction("direction", body.direction.as_deref())?;
    let max_concurrent = match body.max_concurrent {
        None => None,
        Some(n) if (1..=MAX_CONCURRENT_LIMIT).contains(&n) => {
            Some(u32::try_from(n).expect("at most 10000 fits a u32"))
        }
        Some(n) => {
            return Err(ApiError::invalid(format!(
                "max_concurrent: from 1 to {MAX_CONCURRENT_LIMIT} (or null for no limit of its own), not {n}"
            )));
        }
    };
    let users = link_users(body.users)?;
    if source == body.target {
        return Err(ApiError::invalid(format!(
            "target: a link joins two agents; {source:?} cannot link to itself"
        )));
    }
    let source = existing_agent(store, &actor.tenant, source).await?;
    // The path names the source: an unknown target is the body's fault.
    let target = existing_agent(store, &actor.tenant, &body.target)
        .await
        .map_err(|e| match e.code {
            ErrorCode::NotFound => {
                ApiError::new(ErrorCode::AgentUnknown, format!("target: {}", e.message))
            }
            _ => e,
        })?;
    let new = NewAgentLink {
        source,
        target,
        direction,
        max_concurrent,
        users,
    };
    let link = store.create_link(&actor.tenant, &new).await?;
    let detail = json!({
        "target": link.target,
        "direction": link.direction.as_str(),
        "max_concurrent": link.max_concurrent,
        "users": {"allow": link.users.allow, "deny": link.users.deny},
    });
    let resource = format!("agent:{}", link.source);
    audit(
        store,
        actor,
        "agent.link",
        resource,
        Some(&link.source),
        detail,
    )
    .await;
    Ok(LinkView::from(&link))
}

/// How `surface` deletes the link from `source` to `target`.
fn unlink_call(surface: Surface, tenant: &TenantId, source: &AgentId, target: &AgentId) -> String {
    match surface {
        Surface::Http => format!("DELETE /v1/agents/{source}/links/{target}"),
        Surface::WebSocket => format!(
            "agents.links.delete {}",
            json!({"source": source, "target": target})
        ),
        Surface::Cli if tenant.as_str() == exoclaw_core::DEFAULT_TENANT => {
            format!("exoclaw agent unlink {source} {target}")
        }
        Surface::Cli => format!("exoclaw agent unlink {source} {target} --tenant {tenant}"),
    }
}

/// Deletes the link whose source is `source` and target `target` (audited
/// as `agent.unlink`). `not_found` otherwise; when only the reverse link
/// exists, the message says so and how to delete that one.
pub async fn unlink(
    store: &dyn Store,
    actor: &Actor,
    source: &str,
    target: &str,
    surface: Surface,
) -> Result<(), ApiError> {
    let source = existing_agent(store, &actor.tenant, source).await?;
    let target_id = AgentId::new(target);
    // A target that is not an agent id names no link.
    let deleted = if is_valid_slug(target) {
        store.delete_link(&actor.tenant, &source, &target_id).await
    } else {
        Err(StoreError::NotFound)
    };
    match deleted {
        Ok(()) => {
            let detail = json!({"target": target_id});
            let resource = format!("agent:{source}");
            audit(
                store,
                actor,
                "agent.unlink",
                resource,
                Some(&source),
                detail,
            )
            .await;
            Ok(())
        }
        Err(StoreError::NotFound) => {
            let links = store.list_links(&actor.tenant, Some(&source)).await?;
            let reverse = links
                .iter()
                .any(|l| l.source == target_id && l.target == source);
            let message = if reverse {
                format!(
                    "no link from {source} to {target_id}; the link between them goes from \
                     {target_id} to {source}: delete it with {}",
                    unlink_call(surface, &actor.tenant, &target_id, &source)
                )
            } else {
                format!("no link from {source} to {target_id}")
            };
            Err(ApiError::new(ErrorCode::NotFound, message))
        }
        Err(e) => Err(e.into()),
    }
}

/// The links the agent is the source or target of.
#[utoipa::path(get, path = "/v1/agents/{id}/links", tag = "agents",
    params(("id" = String, Path, description = "The agent's id")),
    responses(
        (status = 200, description = "The agent's links, ordered by source, then target", body = LinkList),
        (status = 404, description = "No such agent", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<LinkList>, ApiError> {
    Ok(Json(
        links_of(state.store.as_ref(), &who.tenant, Some(&id)).await?,
    ))
}

/// Link the agent to another (audited as `agent.link`).
#[utoipa::path(post, path = "/v1/agents/{id}/links", tag = "agents", request_body = CreateLink,
    params(("id" = String, Path, description = "The source agent's id")),
    responses(
        (status = 201, description = "The new link", body = LinkView),
        (status = 400, description = "A bad direction, limit or user list, or a link to itself", body = ErrorBody),
        (status = 404, description = "No such agent (the path's, the link's source)", body = ErrorBody),
        (status = 409, description = "The pair is linked already", body = ErrorBody),
        (status = 422, description = "No such target agent (`agent.unknown`), or not this route's shape", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<String>,
    Body(b): Body<CreateLink>,
) -> Result<(StatusCode, Json<LinkView>), ApiError> {
    let actor = Actor::of(&who, Some(rid.0));
    let link = link(state.store.as_ref(), &actor, &id, b).await?;
    Ok((StatusCode::CREATED, Json(link)))
}

/// Delete the link from the agent to `target` (audited as `agent.unlink`).
#[utoipa::path(delete, path = "/v1/agents/{id}/links/{target}", tag = "agents",
    params(
        ("id" = String, Path, description = "The link's source agent"),
        ("target" = String, Path, description = "The link's target agent"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such agent, or no link from it to the target (the \
            message names the reverse link's path when only that one exists)", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Extension(rid): Extension<RequestId>,
    Path((id, target)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let actor = Actor::of(&who, Some(rid.0));
    unlink(state.store.as_ref(), &actor, &id, &target, Surface::Http).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directions_default_to_outbound_and_a_bad_one_names_its_field() {
        assert_eq!(
            parse_direction("direction", None).unwrap(),
            LinkDirection::Outbound
        );
        assert_eq!(
            parse_direction("direction", Some("inbound")).unwrap(),
            LinkDirection::Inbound
        );
        let e = parse_direction("direction", Some("sideways")).unwrap_err();
        assert_eq!(e.code, ErrorCode::RequestInvalid);
        assert!(e.message.starts_with("direction: "), "{}", e.message);
    }

    #[test]
    fn link_users_are_names_and_never_both_allowed_and_denied() {
        let users = |allow: &[&str], deny: &[&str]| {
            link_users(Some(LinkUsersView {
                allow: allow.iter().map(|s| (*s).to_owned()).collect(),
                deny: deny.iter().map(|s| (*s).to_owned()).collect(),
            }))
        };
        assert_eq!(link_users(None).unwrap(), LinkUsers::default());
        assert!(users(&["alice"], &["eve"]).is_ok());
        let e = users(&["alice", ""], &[]).unwrap_err();
        assert!(e.message.starts_with("users.allow[1]: "), "{}", e.message);
        let e = users(&["bob"], &["bob"]).unwrap_err();
        assert!(
            e.message.contains("both allowed and denied"),
            "{}",
            e.message
        );
    }

    #[test]
    fn each_surface_names_its_own_way_to_unlink() {
        let (a, b) = (AgentId::new("a"), AgentId::new("b"));
        let default = TenantId::new("default");
        assert_eq!(
            unlink_call(Surface::Http, &default, &a, &b),
            "DELETE /v1/agents/a/links/b"
        );
        assert_eq!(
            unlink_call(Surface::WebSocket, &default, &a, &b),
            r#"agents.links.delete {"source":"a","target":"b"}"#
        );
        assert_eq!(
            unlink_call(Surface::Cli, &default, &a, &b),
            "exoclaw agent unlink a b"
        );
        assert_eq!(
            unlink_call(Surface::Cli, &TenantId::new("acme"), &a, &b),
            "exoclaw agent unlink a b --tenant acme"
        );
    }
}
