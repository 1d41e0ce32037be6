//! The WebSocket methods of agent teams (docs/protocol.md): `teams.list`,
//! `teams.get`, `teams.create`, `teams.update`, `teams.delete` and the task
//! board's `teams.tasks.list|get|create|claim|complete|fail|comment`. Each
//! calls the operation its HTTP route calls (`http/teams/`), with the same
//! checks, codes and audit events, and answers the same JSON shapes. Their
//! permissions are listed with the others in `dispatch.rs`.

use super::super::error::{ApiError, ErrorCode};
use super::super::orchestration::Actor;
use super::super::state::AppState;
use super::super::teams::{self, tasks};
use super::frame::{self, Request};
use axum::extract::ws::Message;
use exoclaw_core::store::teams::TaskStatus;
use exoclaw_gateway::access::Principal;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Whether `method` is one of this file's.
pub fn handles(method: &str) -> bool {
    method.starts_with("teams.")
}

/// The parameters as an object (absent or `null`: empty).
fn object(params: &Value) -> Result<Map<String, Value>, ApiError> {
    match params {
        Value::Object(m) => Ok(m.clone()),
        Value::Null => Ok(Map::new()),
        _ => Err(ApiError::invalid("params: expected an object")),
    }
}

/// Takes the string field `name` out of `p`.
fn take(p: &mut Map<String, Value>, name: &str) -> Result<String, ApiError> {
    match p.remove(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ApiError::invalid(format!("{name}: expected a string"))),
        None => Err(ApiError::invalid(format!("params: missing field `{name}`"))),
    }
}

/// What is left of `p` as `T`.
fn rest<T: DeserializeOwned>(p: Map<String, Value>) -> Result<T, ApiError> {
    serde_json::from_value(Value::Object(p)).map_err(|e| ApiError::invalid(format!("params: {e}")))
}

/// No more parameters than those taken.
fn nothing_else(p: &Map<String, Value>) -> Result<(), ApiError> {
    match p.keys().next() {
        Some(k) => Err(ApiError::invalid(format!("params: unknown field `{k}`"))),
        None => Ok(()),
    }
}

/// Answers one of this file's methods (the caller checked its permission).
pub async fn answer(
    state: &AppState,
    who: &Principal,
    req: &Request,
    id: &Value,
) -> Result<Message, ApiError> {
    let store = state.store.as_ref();
    let tenant = &who.tenant;
    let actor = || Actor::of(who, None);
    let mut p = object(&req.params)?;
    match req.method.as_str() {
        "teams.list" => {
            nothing_else(&p)?;
            Ok(frame::ok(id, &teams::teams_of(store, tenant).await?))
        }
        "teams.get" => {
            let team = take(&mut p, "id")?;
            nothing_else(&p)?;
            Ok(frame::ok(id, &teams::one(store, tenant, &team).await?))
        }
        "teams.create" => {
            let body = rest(p)?;
            Ok(frame::ok(id, &teams::create(store, &actor(), body).await?))
        }
        "teams.update" => {
            let team = take(&mut p, "id")?;
            let body = rest(p)?;
            Ok(frame::ok(
                id,
                &teams::update(store, &actor(), &team, body).await?,
            ))
        }
        "teams.delete" => {
            let team = take(&mut p, "id")?;
            nothing_else(&p)?;
            teams::delete_team(store, &actor(), &team).await?;
            Ok(frame::ok(id, &frame::Empty {}))
        }
        "teams.tasks.list" => {
            let team = take(&mut p, "team")?;
            let q = rest(p)?;
            Ok(frame::ok(id, &tasks::board(store, tenant, &team, q).await?))
        }
        "teams.tasks.create" => {
            let team = take(&mut p, "team")?;
            let body = rest(p)?;
            Ok(frame::ok(
                id,
                &tasks::add(store, tenant, &team, body).await?,
            ))
        }
        "teams.tasks.get" => {
            let team = take(&mut p, "team")?;
            let task = take(&mut p, "id")?;
            nothing_else(&p)?;
            Ok(frame::ok(
                id,
                &tasks::one(store, tenant, &team, &task).await?,
            ))
        }
        "teams.tasks.claim" => {
            let team = take(&mut p, "team")?;
            let task = take(&mut p, "id")?;
            let body = rest(p)?;
            Ok(frame::ok(
                id,
                &tasks::claim(store, tenant, &team, &task, body).await?,
            ))
        }
        "teams.tasks.complete" | "teams.tasks.fail" => {
            let status = if req.method == "teams.tasks.complete" {
                TaskStatus::Done
            } else {
                TaskStatus::Failed
            };
            let team = take(&mut p, "team")?;
            let task = take(&mut p, "id")?;
            let body = rest(p)?;
            Ok(frame::ok(
                id,
                &tasks::finish(&state.runtime, who, &team, &task, body, status).await?,
            ))
        }
        "teams.tasks.comment" => {
            let team = take(&mut p, "team")?;
            let task = take(&mut p, "id")?;
            let body = rest(p)?;
            Ok(frame::ok(
                id,
                &tasks::comment(store, tenant, &team, &task, body).await?,
            ))
        }
        other => Err(ApiError::new(
            ErrorCode::RequestUnknownMethod,
            format!("no method {other:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parameters_are_taken_by_name_and_unknown_ones_refused() {
        let mut p = object(&json!({"team": "core", "id": "t1", "agent": "a"})).unwrap();
        assert_eq!(take(&mut p, "team").unwrap(), "core");
        assert_eq!(take(&mut p, "id").unwrap(), "t1");
        let body: tasks::ClaimTask = rest(p).unwrap();
        assert_eq!(body.agent, "a");
        let mut p = object(&json!({"team": 1})).unwrap();
        assert!(
            take(&mut p, "team")
                .unwrap_err()
                .message
                .contains("expected a string")
        );
        assert!(
            take(&mut p, "id")
                .unwrap_err()
                .message
                .contains("missing field `id`")
        );
        let p = object(&json!({"colour": 1})).unwrap();
        assert!(
            nothing_else(&p)
                .unwrap_err()
                .message
                .contains("unknown field")
        );
        assert!(rest::<tasks::ClaimTask>(object(&json!({"agent": "a", "x": 1})).unwrap()).is_err());
        assert!(object(&json!([])).is_err());
        assert!(handles("teams.tasks.claim") && !handles("agents.list"));
    }
}
