//! A team's task board: `GET|POST /v1/teams/{id}/tasks`, `GET
//! /v1/teams/{id}/tasks/{task}` and `POST .../{task}/claim|complete|fail|comments`.
//! The operator acts for an agent of the team, named in the body (`agent`,
//! `author`, `created_by`): the same operations the agents' `team_tasks`
//! tool calls (`exoclaw_gateway::runtime::teams`), with the same refusals
//! and codes: `team.not_found`, `team.not_member` (the agent is not in the
//! team), `team.task_not_found`, `team.task_conflict` (a claim of a task
//! that is not pending; a finish by another agent than the owner, or of a
//! task not in progress), `team.invalid_dependency` (`blocked_by` names a
//! task not on the board). A claim is atomic: of concurrent claimers,
//! also on other gateways of one database, exactly one wins.

use super::super::error::{ApiError, ErrorBody};
use super::super::extract::{Body, Path, Query};
use super::super::state::AppState;
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use exoclaw_core::id::is_valid_slug;
use exoclaw_core::store::Store;
use exoclaw_core::store::teams::{NewTask, Task, TaskFilter, TaskOutcome, TaskStatus};
use exoclaw_core::{AgentId, TenantId};
use exoclaw_gateway::access::Principal;
use exoclaw_gateway::runtime::Runtime;
use exoclaw_gateway::runtime::teams as ops;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// The words of `TaskStatus`.
pub const STATUSES: [&str; 5] = ["pending", "blocked", "in_progress", "done", "failed"];
/// A listing's default and largest page.
pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;
/// Longest title; longest description, result or comment.
pub const MAX_TITLE_BYTES: usize = 512;
pub const MAX_TEXT_BYTES: usize = 32 * 1024;

/// A comment on a task.
#[derive(Serialize, ToSchema)]
pub struct CommentView {
    #[schema(value_type = String)]
    pub author: AgentId,
    pub text: String,
    /// Unix milliseconds.
    pub at: i64,
}

/// A task of a team's board.
#[derive(Serialize, ToSchema)]
pub struct TaskView {
    pub id: String,
    pub team_id: String,
    pub title: String,
    pub description: String,
    /// `pending`, `blocked` (waiting for `blocked_by`), `in_progress`,
    /// `done` or `failed`.
    #[schema(value_type = String)]
    pub status: &'static str,
    /// The agent that claimed it.
    #[schema(value_type = Option<String>)]
    pub owner: Option<AgentId>,
    /// Tasks of the same team that must be done first.
    pub blocked_by: Vec<String>,
    /// What the owner reported when done, or why it failed.
    pub result: Option<String>,
    #[schema(value_type = String)]
    pub created_by: AgentId,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
    /// Oldest first (empty in listings).
    pub comments: Vec<CommentView>,
}

impl From<Task> for TaskView {
    fn from(t: Task) -> Self {
        Self {
            id: t.id,
            team_id: t.team_id,
            title: t.title,
            description: t.description,
            status: t.status.as_str(),
            owner: t.owner,
            blocked_by: t.blocked_by,
            result: t.result,
            created_by: t.created_by,
            created_at: t.created_at,
            updated_at: t.updated_at,
            comments: t
                .comments
                .into_iter()
                .map(|c| CommentView {
                    author: c.author,
                    text: c.text,
                    at: c.at,
                })
                .collect(),
        }
    }
}

/// A page of the board, oldest first.
#[derive(Serialize, ToSchema)]
pub struct TaskList {
    pub tasks: Vec<TaskView>,
    /// When more tasks follow: pass it as `cursor` for the next page.
    /// `null`: this is the last page.
    pub next_cursor: Option<String>,
}

/// Which tasks to list. Unknown parameters are refused.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TasksQuery {
    /// Only tasks in this state (`pending`, `blocked`, `in_progress`,
    /// `done`, `failed`).
    pub status: Option<String>,
    /// Only tasks this agent claimed.
    pub owner: Option<String>,
    /// Words that must all occur in the title or description.
    pub q: Option<String>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// At most this many (1-1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// A new task.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTask {
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// Ids of tasks of this board that must be done first.
    #[serde(default)]
    pub blocked_by: Vec<String>,
    /// The member it is created for; absent: the team's lead.
    pub created_by: Option<String>,
}

/// `claim`: the member that takes the task.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimTask {
    pub agent: String,
}

/// `complete`, `fail`: the owner and its result (or reason).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FinishTask {
    pub agent: String,
    pub result: String,
}

/// A comment by a member.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentTask {
    pub author: String,
    pub text: String,
}

fn agent(field: &str, id: &str) -> Result<AgentId, ApiError> {
    if !is_valid_slug(id) {
        return Err(ApiError::invalid(format!(
            "{field}: an agent id, not {id:?}"
        )));
    }
    Ok(AgentId::new(id))
}

fn text(field: &str, value: &str, max: usize, required: bool) -> Result<(), ApiError> {
    if required && value.trim().is_empty() {
        return Err(ApiError::invalid(format!("{field}: must not be empty")));
    }
    if value.len() > max {
        return Err(ApiError::invalid(format!("{field}: at most {max} bytes")));
    }
    Ok(())
}

/// `created_at:id` of the last task of a page.
fn cursor_of(t: &Task) -> String {
    format!("{}:{}", t.created_at, t.id)
}

fn parse_cursor(c: &str) -> Result<(i64, String), ApiError> {
    c.split_once(':')
        .and_then(|(at, id)| Some((at.parse().ok()?, id.to_owned())))
        .filter(|(_, id)| !id.is_empty())
        .ok_or_else(|| ApiError::invalid("cursor: a `next_cursor` of an earlier page"))
}

/// The filter of a listing, checked naming the parameter.
pub fn filter(q: TasksQuery) -> Result<TaskFilter, ApiError> {
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(TaskStatus::parse(s).ok_or_else(|| {
            ApiError::invalid(format!(
                "status: expected one of {}, not {s:?}",
                STATUSES.join(", ")
            ))
        })?),
    };
    let owner = q.owner.as_deref().map(|o| agent("owner", o)).transpose()?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "limit: from 1 to {MAX_LIMIT}, not {limit}"
        )));
    }
    if let Some(q) = &q.q {
        text("q", q, 512, false)?;
    }
    Ok(TaskFilter {
        status,
        owner,
        query: q.q.filter(|q| !q.trim().is_empty()),
        limit,
        after: q.cursor.as_deref().map(parse_cursor).transpose()?,
    })
}

/// A page of `team`'s board.
pub async fn board(
    store: &dyn Store,
    tenant: &TenantId,
    team: &str,
    q: TasksQuery,
) -> Result<TaskList, ApiError> {
    let mut filter = filter(q)?;
    let limit = filter.limit;
    let t = ops::team(store, tenant, team).await?;
    // One more than the page: whether another follows.
    filter.limit = limit + 1;
    let mut tasks = ops::list_tasks(store, tenant, &t.id, &filter).await?;
    let more = tasks.len() > limit as usize;
    tasks.truncate(limit as usize);
    let next_cursor = if more {
        tasks.last().map(cursor_of)
    } else {
        None
    };
    Ok(TaskList {
        tasks: tasks.into_iter().map(TaskView::from).collect(),
        next_cursor,
    })
}

/// A new task for a member (the lead when `created_by` is absent).
pub async fn add(
    store: &dyn Store,
    tenant: &TenantId,
    team: &str,
    body: CreateTask,
) -> Result<TaskView, ApiError> {
    text("title", &body.title, MAX_TITLE_BYTES, true)?;
    text("description", &body.description, MAX_TEXT_BYTES, false)?;
    if body.blocked_by.len() > 50 {
        return Err(ApiError::invalid("blocked_by: at most 50 tasks"));
    }
    let t = ops::team(store, tenant, team).await?;
    let created_by = match body.created_by.as_deref() {
        Some(a) => agent("created_by", a)?,
        None => t.lead.clone(),
    };
    let task = NewTask {
        title: body.title,
        description: body.description,
        blocked_by: body.blocked_by,
        created_by,
    };
    Ok(ops::create_task(store, tenant, &t.id, &task).await?.into())
}

/// One task with its comments.
pub async fn one(
    store: &dyn Store,
    tenant: &TenantId,
    team: &str,
    id: &str,
) -> Result<TaskView, ApiError> {
    let t = ops::team(store, tenant, team).await?;
    Ok(ops::get_task(store, tenant, &t.id, id).await?.into())
}

/// `agent` claims a pending task.
pub async fn claim(
    store: &dyn Store,
    tenant: &TenantId,
    team: &str,
    id: &str,
    body: ClaimTask,
) -> Result<TaskView, ApiError> {
    let who = agent("agent", &body.agent)?;
    Ok(ops::claim_task(store, tenant, team, id, &who).await?.into())
}

/// The owner ends its task as `status` (done or failed).
pub async fn finish(
    rt: &Arc<Runtime>,
    who: &Principal,
    team: &str,
    id: &str,
    body: FinishTask,
    status: TaskStatus,
) -> Result<TaskView, ApiError> {
    text("result", &body.result, MAX_TEXT_BYTES, true)?;
    let outcome = TaskOutcome {
        agent: agent("agent", &body.agent)?,
        status,
        result: body.result,
    };
    Ok(
        ops::finish_task(rt, &who.tenant, &who.user, team, id, &outcome)
            .await?
            .into(),
    )
}

/// A member comments on a task; answers the task with its comments.
pub async fn comment(
    store: &dyn Store,
    tenant: &TenantId,
    team: &str,
    id: &str,
    body: CommentTask,
) -> Result<TaskView, ApiError> {
    text("text", &body.text, MAX_TEXT_BYTES, true)?;
    let author = agent("author", &body.author)?;
    ops::comment_task(store, tenant, team, id, &author, &body.text).await?;
    one(store, tenant, team, id).await
}

/// The team's tasks, filtered, a page at a time (oldest first).
#[utoipa::path(get, path = "/v1/teams/{id}/tasks", tag = "teams",
    params(("id" = String, Path, description = "The team's id"), TasksQuery),
    responses(
        (status = 200, description = "A page of the board", body = TaskList),
        (status = 400, description = "A bad filter, limit or cursor", body = ErrorBody),
        (status = 404, description = "No such team (`team.not_found`)", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Query(q): Query<TasksQuery>,
) -> Result<Json<TaskList>, ApiError> {
    Ok(Json(
        board(state.store.as_ref(), &who.tenant, &id, q).await?,
    ))
}

/// Put a task on the board (`blocked` while a task of `blocked_by` is not done).
#[utoipa::path(post, path = "/v1/teams/{id}/tasks", tag = "teams", request_body = CreateTask,
    params(("id" = String, Path, description = "The team's id")),
    responses(
        (status = 201, description = "The new task", body = TaskView),
        (status = 400, description = "A bad title or description", body = ErrorBody),
        (status = 403, description = "`created_by` is not in the team (`team.not_member`)", body = ErrorBody),
        (status = 404, description = "No such team (`team.not_found`)", body = ErrorBody),
        (status = 422, description = "`blocked_by` names a task not on the board (`team.invalid_dependency`)", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    Body(b): Body<CreateTask>,
) -> Result<(StatusCode, Json<TaskView>), ApiError> {
    let task = add(state.store.as_ref(), &who.tenant, &id, b).await?;
    Ok((StatusCode::CREATED, Json(task)))
}

/// One task with its comments.
#[utoipa::path(get, path = "/v1/teams/{id}/tasks/{task}", tag = "teams",
    params(("id" = String, Path, description = "The team's id"),
        ("task" = String, Path, description = "The task's id")),
    responses(
        (status = 200, description = "The task", body = TaskView),
        (status = 404, description = "No such team or task", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path((id, task)): Path<(String, String)>,
) -> Result<Json<TaskView>, ApiError> {
    Ok(Json(
        one(state.store.as_ref(), &who.tenant, &id, &task).await?,
    ))
}

/// Claim a pending task for a member (atomic: one claimer wins).
#[utoipa::path(post, path = "/v1/teams/{id}/tasks/{task}/claim", tag = "teams", request_body = ClaimTask,
    params(("id" = String, Path, description = "The team's id"),
        ("task" = String, Path, description = "The task's id")),
    responses(
        (status = 200, description = "The task, now in progress", body = TaskView),
        (status = 403, description = "The agent is not in the team (`team.not_member`)", body = ErrorBody),
        (status = 404, description = "No such team or task", body = ErrorBody),
        (status = 409, description = "Not pending: claimed, blocked or finished (`team.task_conflict`)", body = ErrorBody),
    ))]
pub async fn claim_route(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path((id, task)): Path<(String, String)>,
    Body(b): Body<ClaimTask>,
) -> Result<Json<TaskView>, ApiError> {
    Ok(Json(
        claim(state.store.as_ref(), &who.tenant, &id, &task, b).await?,
    ))
}

/// Complete a task for its owner (unblocks the tasks that waited only on it).
#[utoipa::path(post, path = "/v1/teams/{id}/tasks/{task}/complete", tag = "teams", request_body = FinishTask,
    params(("id" = String, Path, description = "The team's id"),
        ("task" = String, Path, description = "The task's id")),
    responses(
        (status = 200, description = "The task, done", body = TaskView),
        (status = 403, description = "The agent is not in the team (`team.not_member`)", body = ErrorBody),
        (status = 404, description = "No such team or task", body = ErrorBody),
        (status = 409, description = "Not in progress, or another agent's (`team.task_conflict`)", body = ErrorBody),
    ))]
pub async fn complete(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path((id, task)): Path<(String, String)>,
    Body(b): Body<FinishTask>,
) -> Result<Json<TaskView>, ApiError> {
    Ok(Json(
        finish(&state.runtime, &who, &id, &task, b, TaskStatus::Done).await?,
    ))
}

/// Fail a task for its owner.
#[utoipa::path(post, path = "/v1/teams/{id}/tasks/{task}/fail", tag = "teams", request_body = FinishTask,
    params(("id" = String, Path, description = "The team's id"),
        ("task" = String, Path, description = "The task's id")),
    responses(
        (status = 200, description = "The task, failed", body = TaskView),
        (status = 403, description = "The agent is not in the team (`team.not_member`)", body = ErrorBody),
        (status = 404, description = "No such team or task", body = ErrorBody),
        (status = 409, description = "Not in progress, or another agent's (`team.task_conflict`)", body = ErrorBody),
    ))]
pub async fn fail(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path((id, task)): Path<(String, String)>,
    Body(b): Body<FinishTask>,
) -> Result<Json<TaskView>, ApiError> {
    Ok(Json(
        finish(&state.runtime, &who, &id, &task, b, TaskStatus::Failed).await?,
    ))
}

/// Comment on a task for a member.
#[utoipa::path(post, path = "/v1/teams/{id}/tasks/{task}/comments", tag = "teams", request_body = CommentTask,
    params(("id" = String, Path, description = "The team's id"),
        ("task" = String, Path, description = "The task's id")),
    responses(
        (status = 201, description = "The task with its comments", body = TaskView),
        (status = 403, description = "The author is not in the team (`team.not_member`)", body = ErrorBody),
        (status = 404, description = "No such team or task", body = ErrorBody),
    ))]
pub async fn comment_route(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path((id, task)): Path<(String, String)>,
    Body(b): Body<CommentTask>,
) -> Result<(StatusCode, Json<TaskView>), ApiError> {
    let task = comment(state.store.as_ref(), &who.tenant, &id, &task, b).await?;
    Ok((StatusCode::CREATED, Json(task)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_cursors_are_checked_naming_the_parameter() {
        let f = filter(TasksQuery::default()).unwrap();
        assert_eq!(f.limit, DEFAULT_LIMIT);
        let f = filter(TasksQuery {
            cursor: Some("12:ab:c".into()),
            ..TasksQuery::default()
        })
        .unwrap();
        assert_eq!(f.after, Some((12, "ab:c".to_owned())));
        for (q, field) in [
            (
                TasksQuery {
                    status: Some("open".into()),
                    ..TasksQuery::default()
                },
                "status: ",
            ),
            (
                TasksQuery {
                    owner: Some("Not Id".into()),
                    ..TasksQuery::default()
                },
                "owner: ",
            ),
            (
                TasksQuery {
                    limit: Some(0),
                    ..TasksQuery::default()
                },
                "limit: ",
            ),
            (
                TasksQuery {
                    limit: Some(1001),
                    ..TasksQuery::default()
                },
                "limit: ",
            ),
            (
                TasksQuery {
                    cursor: Some("x".into()),
                    ..TasksQuery::default()
                },
                "cursor: ",
            ),
            (
                TasksQuery {
                    cursor: Some("1:".into()),
                    ..TasksQuery::default()
                },
                "cursor: ",
            ),
        ] {
            let e = filter(q).unwrap_err();
            assert!(e.message.starts_with(field), "{}", e.message);
        }
    }

    #[test]
    fn the_listed_words_are_the_statuses() {
        for s in STATUSES {
            assert_eq!(TaskStatus::parse(s).map(TaskStatus::as_str), Some(s));
        }
    }
}
