//! The WebSocket methods of cron jobs (docs/protocol.md): `cron.list`,
//! `cron.create`, `cron.get`, `cron.update`, `cron.delete`, `cron.run` and
//! `cron.runs`. Each calls the operation its HTTP route calls
//! (`http/cron.rs`) and answers the same JSON shape. Their permissions are
//! listed with the others in `dispatch.rs`.

use super::super::cron::{CreateCronJob, UpdateCronJob, ops};
use super::super::error::ApiError;
use super::super::state::AppState;
use super::frame::{self, Request};
use axum::extract::ws::Message;
use exoclaw_gateway::access::Principal;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Whether `method` is one of this file's.
pub fn handles(method: &str) -> bool {
    method.starts_with("cron.")
}

/// `cron.list`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    agent: Option<String>,
}

/// `cron.get`, `cron.delete`, `cron.run`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ById {
    id: String,
}

/// `cron.runs`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunsParams {
    id: String,
    limit: Option<u32>,
}

/// The request's parameters as `T`; absent or `null` parameters are `{}`.
fn params<T: DeserializeOwned>(params: &Value) -> Result<T, ApiError> {
    let params = match params {
        Value::Null => Value::Object(serde_json::Map::new()),
        other => other.clone(),
    };
    serde_json::from_value(params).map_err(|e| ApiError::invalid(format!("params: {e}")))
}

/// `cron.update`: `id` and the fields of `PATCH /v1/cron/{id}`.
fn update_params(p: &Value) -> Result<(String, UpdateCronJob), ApiError> {
    let mut p = match p {
        Value::Object(m) => m.clone(),
        _ => return Err(ApiError::invalid("params: expected an object")),
    };
    let id = match p.remove("id") {
        Some(Value::String(s)) => s,
        Some(_) => return Err(ApiError::invalid("id: expected a cron job id")),
        None => return Err(ApiError::invalid("params: missing field `id`")),
    };
    Ok((id, params(&Value::Object(p))?))
}

/// Answers one of this file's methods (the caller checked its permission).
pub async fn answer(
    state: &AppState,
    who: &Principal,
    req: &Request,
    id: &Value,
) -> Result<Message, ApiError> {
    let rt = &state.runtime;
    match req.method.as_str() {
        "cron.list" => {
            let p: ListParams = params(&req.params)?;
            Ok(frame::ok(
                id,
                &ops::list(rt, who, p.agent.as_deref()).await?,
            ))
        }
        "cron.create" => {
            let body: CreateCronJob = params(&req.params)?;
            Ok(frame::ok(id, &ops::create(rt, who, body, "ws").await?))
        }
        "cron.get" => {
            let p: ById = params(&req.params)?;
            Ok(frame::ok(id, &ops::get(rt, who, &p.id).await?))
        }
        "cron.update" => {
            let (job, body) = update_params(&req.params)?;
            Ok(frame::ok(id, &ops::update(rt, who, &job, body).await?))
        }
        "cron.delete" => {
            let p: ById = params(&req.params)?;
            ops::delete(rt, who, &p.id).await?;
            Ok(frame::ok(id, &frame::Empty {}))
        }
        "cron.run" => {
            let p: ById = params(&req.params)?;
            Ok(frame::ok(id, &ops::run(rt, who, &p.id).await?))
        }
        "cron.runs" => {
            let p: RunsParams = params(&req.params)?;
            Ok(frame::ok(
                id,
                &ops::runs(rt, who, &p.id, p.limit.unwrap_or(0)).await?,
            ))
        }
        other => Err(ApiError::new(
            super::super::error::ErrorCode::RequestUnknownMethod,
            format!("no method {other:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn update_params_take_the_id_and_refuse_unknown_fields() {
        let (job, body) = update_params(&json!({"id": "j1", "enabled": false})).unwrap();
        assert_eq!((job.as_str(), body.enabled), ("j1", Some(false)));
        for (p, want) in [
            (json!({"enabled": true}), "missing field `id`"),
            (json!({"id": 1}), "id: "),
            (json!({"id": "j", "colour": 1}), "unknown field"),
            (json!([]), "expected an object"),
        ] {
            let e = update_params(&p).unwrap_err();
            assert!(e.message.contains(want), "{p}: {}", e.message);
        }
        assert!(handles("cron.list") && !handles("chat.send"));
    }
}
