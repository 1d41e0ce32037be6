//! The delegation history: `GET /v1/delegations` (filtered, newest first,
//! paged backwards in time with `cursor` = the previous page's
//! `next_cursor`) and `GET /v1/delegations/{id}`. Owners and admins see
//! every delegation of their tenant; everyone else only those of their own
//! conversations: their `user` filter is forced, and asking for another
//! user's answers an empty list (like a filter that matches nothing), one
//! by id `not_found`. The gateway instance that ran a delegation (`owner`)
//! is internal and not shown.

use super::super::error::{ApiError, ErrorBody, ErrorCode};
use super::super::extract::{Path, Query};
use super::super::state::AppState;
use super::is_plausible_id;
use axum::Extension;
use axum::Json;
use axum::extract::State;
use exoclaw_core::id::is_valid_slug;
use exoclaw_core::store::DelegationStore;
use exoclaw_core::store::orchestration::{
    Delegation, DelegationFilter, DelegationKind, DelegationMode, DelegationStatus,
};
use exoclaw_core::{AgentId, SessionId, TenantId, UserId};
use exoclaw_gateway::access::Principal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The page size when none is asked for.
pub const DEFAULT_LIMIT: u32 = 100;
/// The largest page.
pub const MAX_LIMIT: u32 = 1000;

/// One delegation to a named agent, or one subagent spawn.
#[derive(Serialize, ToSchema)]
pub struct DelegationView {
    pub id: String,
    /// `delegate` (to a named agent over a link) or `spawn` (a subagent).
    #[schema(schema_with = super::kind)]
    pub kind: DelegationKind,
    /// `sync` (the caller waited) or `async` (the answer was announced).
    #[schema(schema_with = super::mode)]
    pub mode: DelegationMode,
    /// The agent whose turn asked.
    #[schema(value_type = String)]
    pub caller_agent: AgentId,
    /// The user whose conversation it is.
    #[schema(value_type = String)]
    pub user_id: UserId,
    /// The caller's session (where an async answer is announced).
    #[schema(value_type = Option<String>)]
    pub caller_session: Option<SessionId>,
    /// The agent that answers (a spawn: the caller itself).
    #[schema(value_type = String)]
    pub target_agent: AgentId,
    /// The delegation whose run asked for this one (a chain), if any.
    pub parent_id: Option<String>,
    /// SHA-256 of the task (the text itself is in the sessions).
    pub task_digest: String,
    /// `running`, `done`, `failed`, `cancelled` or `interrupted` (the
    /// gateway running it stopped first).
    #[schema(schema_with = super::status)]
    pub status: DelegationStatus,
    /// The caller's trace (`GET /v1/traces/{id}`).
    pub parent_trace_id: Option<String>,
    /// The answering run's trace.
    pub child_trace_id: Option<String>,
    /// The answering run's session.
    #[schema(value_type = Option<String>)]
    pub child_session: Option<SessionId>,
    /// Unix milliseconds.
    pub started_at: i64,
    /// Unix milliseconds; `null` while running.
    pub finished_at: Option<i64>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    /// Micro-dollars.
    pub cost_micros: i64,
    /// A stable code when it failed (`delegation.timeout`, ...).
    pub error_code: Option<String>,
    /// An async answer was announced into the caller's session.
    pub announced: bool,
}

impl From<Delegation> for DelegationView {
    fn from(d: Delegation) -> Self {
        Self {
            id: d.id,
            kind: d.kind,
            mode: d.mode,
            caller_agent: d.caller_agent,
            user_id: d.user_id,
            caller_session: d.caller_session,
            target_agent: d.target_agent,
            parent_id: d.parent_id,
            task_digest: d.task_digest,
            status: d.status,
            parent_trace_id: d.parent_trace_id,
            child_trace_id: d.child_trace_id,
            child_session: d.child_session,
            started_at: d.started_at,
            finished_at: d.finished_at,
            input_tokens: d.input_tokens,
            output_tokens: d.output_tokens,
            cost_micros: d.cost_micros,
            error_code: d.error_code,
            announced: d.announced,
        }
    }
}

/// A page of the history, newest first.
#[derive(Serialize, ToSchema)]
pub struct DelegationList {
    pub delegations: Vec<DelegationView>,
    /// When the page is full: pass it as `cursor` for the next (older)
    /// page. `null`: this is the last page.
    pub next_cursor: Option<String>,
}

/// What to list. Unknown parameters are refused (a misspelt filter would
/// otherwise list everything).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DelegationsQuery {
    /// Only those the agent asked for.
    pub caller: Option<String>,
    /// Only those the agent answered.
    pub target: Option<String>,
    /// Only this user's conversations (others than admins and owners: only
    /// their own, whatever this says).
    pub user: Option<String>,
    /// Only those in this state.
    #[param(schema_with = super::status)]
    pub status: Option<String>,
    /// Only delegations or only spawns.
    #[param(schema_with = super::kind)]
    pub kind: Option<String>,
    /// Only those started before this (Unix milliseconds).
    pub before: Option<i64>,
    /// The previous page's `next_cursor` (wins over `before`).
    pub cursor: Option<String>,
    /// At most this many (1-1000, default 100), newest first.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// Whose delegations a caller sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Visibility {
    /// Every user's of the tenant (owners, admins, the CLI).
    AllUsers,
    /// Only this user's.
    OwnUser(UserId),
}

impl Visibility {
    pub fn of(who: &Principal) -> Self {
        if who.sees_all_users() {
            Self::AllUsers
        } else {
            Self::OwnUser(who.user.clone())
        }
    }

    fn sees(&self, d: &Delegation) -> bool {
        match self {
            Self::AllUsers => true,
            Self::OwnUser(u) => d.user_id == *u,
        }
    }
}

/// An agent filter: an agent id, or a refusal naming `field`.
fn agent_filter(field: &str, value: Option<String>) -> Result<Option<AgentId>, ApiError> {
    match value {
        None => Ok(None),
        Some(v) if is_valid_slug(&v) => Ok(Some(AgentId::new(v))),
        Some(v) => Err(ApiError::invalid(format!(
            "{field}: {v:?} is not an agent id (1-64 lowercase letters, digits, '-' or '_')"
        ))),
    }
}

/// The store's filter for `q` as `vis` may see it; `None` when nothing it
/// may see can match (another user's, asked for by a user).
pub fn filter(q: DelegationsQuery, vis: &Visibility) -> Result<Option<DelegationFilter>, ApiError> {
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(DelegationStatus::parse(s).ok_or_else(|| {
            ApiError::invalid(format!(
                "status: expected one of {}, not {s:?}",
                super::STATUSES.join(", ")
            ))
        })?),
    };
    let kind = match q.kind.as_deref() {
        None => None,
        Some("delegate") => Some(DelegationKind::Delegate),
        Some("spawn") => Some(DelegationKind::Spawn),
        Some(k) => {
            return Err(ApiError::invalid(format!(
                "kind: expected delegate or spawn, not {k:?}"
            )));
        }
    };
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "limit: from 1 to {MAX_LIMIT}, not {limit}"
        )));
    }
    if let Some(u) = &q.user {
        super::check_name("user", u)?;
    }
    let caller_agent = agent_filter("caller", q.caller)?;
    let target_agent = agent_filter("target", q.target)?;
    let user_id = match (vis, q.user) {
        (Visibility::AllUsers, user) => user.map(UserId::new),
        (Visibility::OwnUser(own), Some(asked)) if asked != own.as_str() => return Ok(None),
        (Visibility::OwnUser(own), _) => Some(own.clone()),
    };
    let (before, before_id) = match q.cursor.as_deref() {
        Some(c) => {
            let (at, id) = c
                .split_once('.')
                .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id)))
                .filter(|(_, id)| !id.is_empty())
                .ok_or_else(|| ApiError::invalid("cursor: pass a next_cursor as it was given"))?;
            (Some(at), Some(id.to_owned()))
        }
        None => (q.before, None),
    };
    Ok(Some(DelegationFilter {
        caller_agent,
        target_agent,
        user_id,
        status,
        kind,
        before,
        before_id,
        limit,
    }))
}

/// A page of the tenant's history as `vis` may see it.
pub async fn history(
    store: &dyn DelegationStore,
    tenant: &TenantId,
    vis: &Visibility,
    q: DelegationsQuery,
) -> Result<DelegationList, ApiError> {
    let Some(filter) = filter(q, vis)? else {
        return Ok(DelegationList {
            delegations: Vec::new(),
            next_cursor: None,
        });
    };
    let rows = store.list_delegations(tenant, &filter).await?;
    let full = rows.len() >= filter.limit as usize;
    let next_cursor = rows
        .last()
        .filter(|_| full)
        .map(|d| format!("{}.{}", d.started_at, d.id));
    Ok(DelegationList {
        delegations: rows.into_iter().map(DelegationView::from).collect(),
        next_cursor,
    })
}

/// One delegation, if `vis` may see it; `not_found` otherwise.
pub async fn one(
    store: &dyn DelegationStore,
    tenant: &TenantId,
    vis: &Visibility,
    id: &str,
) -> Result<DelegationView, ApiError> {
    let missing = || ApiError::new(ErrorCode::NotFound, format!("no delegation {id:?}"));
    if !is_plausible_id(id) {
        return Err(missing());
    }
    let found = store.get_delegation(tenant, id).await?;
    match found {
        Some(d) if vis.sees(&d) => Ok(d.into()),
        _ => Err(missing()),
    }
}

/// The delegation history, newest first.
#[utoipa::path(get, path = "/v1/delegations", tag = "delegations", params(DelegationsQuery),
    responses(
        (status = 200, description = "A page of the history; `next_cursor` asks for the next", body = DelegationList),
        (status = 400, description = "A bad filter, or a limit out of 1-1000", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(q): Query<DelegationsQuery>,
) -> Result<Json<DelegationList>, ApiError> {
    let vis = Visibility::of(&who);
    Ok(Json(
        history(state.store.as_ref(), &who.tenant, &vis, q).await?,
    ))
}

/// One delegation.
#[utoipa::path(get, path = "/v1/delegations/{id}", tag = "delegations",
    params(("id" = String, Path, description = "The delegation's id")),
    responses(
        (status = 200, description = "The delegation", body = DelegationView),
        (status = 404, description = "No such delegation (or not the caller's)", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Json<DelegationView>, ApiError> {
    let vis = Visibility::of(&who);
    Ok(Json(
        one(state.store.as_ref(), &who.tenant, &vis, &id).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(f: impl FnOnce(&mut DelegationsQuery)) -> DelegationsQuery {
        let mut q = DelegationsQuery::default();
        f(&mut q);
        q
    }

    fn refusal(q: DelegationsQuery) -> String {
        let e = filter(q, &Visibility::AllUsers).unwrap_err();
        assert_eq!(e.code, ErrorCode::RequestInvalid);
        e.message
    }

    #[test]
    fn filters_are_checked_naming_the_field() {
        let f = filter(DelegationsQuery::default(), &Visibility::AllUsers)
            .unwrap()
            .unwrap();
        assert_eq!(f.limit, DEFAULT_LIMIT);
        assert_eq!(f.user_id, None);
        for (q, field) in [
            (query(|q| q.status = Some("ok".into())), "status: "),
            (query(|q| q.kind = Some("clone".into())), "kind: "),
            (query(|q| q.limit = Some(0)), "limit: "),
            (query(|q| q.limit = Some(1001)), "limit: "),
            (query(|q| q.caller = Some("Not An Id".into())), "caller: "),
            (query(|q| q.target = Some(String::new())), "target: "),
            (query(|q| q.user = Some("a\0b".into())), "user: "),
        ] {
            let m = refusal(q);
            assert!(m.starts_with(field), "{m}");
        }
        let f = filter(
            query(|q| {
                q.status = Some("interrupted".into());
                q.kind = Some("spawn".into());
                q.limit = Some(1000);
                q.caller = Some("boss".into());
                q.before = Some(7);
            }),
            &Visibility::AllUsers,
        )
        .unwrap()
        .unwrap();
        assert_eq!(f.status, Some(DelegationStatus::Interrupted));
        assert_eq!(f.kind, Some(DelegationKind::Spawn));
        assert_eq!((f.limit, f.before), (1000, Some(7)));
        assert_eq!(f.caller_agent, Some(AgentId::new("boss")));
    }

    #[test]
    fn a_user_sees_only_their_own_and_asking_for_another_matches_nothing() {
        let own = Visibility::OwnUser(UserId::new("alice"));
        let f = filter(DelegationsQuery::default(), &own).unwrap().unwrap();
        assert_eq!(f.user_id, Some(UserId::new("alice")));
        let f = filter(query(|q| q.user = Some("alice".into())), &own)
            .unwrap()
            .unwrap();
        assert_eq!(f.user_id, Some(UserId::new("alice")));
        assert!(
            filter(query(|q| q.user = Some("bob".into())), &own)
                .unwrap()
                .is_none()
        );
        let f = filter(
            query(|q| q.user = Some("bob".into())),
            &Visibility::AllUsers,
        )
        .unwrap()
        .unwrap();
        assert_eq!(f.user_id, Some(UserId::new("bob")));
    }
}
