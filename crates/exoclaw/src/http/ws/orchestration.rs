//! The WebSocket methods of multi-agent orchestration (docs/protocol.md):
//! `agents.links.*`, `delegations.*` and `bindings.*`. Each calls the
//! operation its HTTP route calls (`http/orchestration/`), with the same
//! checks, visibility and audit events, and answers the same JSON shapes.
//! Their permissions are listed with the others in `dispatch.rs`.

use super::super::error::ApiError;
use super::super::orchestration::bindings::{self, CreateBinding};
use super::super::orchestration::delegations::{self, DelegationsQuery, Visibility};
use super::super::orchestration::links::{self, CreateLink};
use super::super::orchestration::{Actor, Surface};
use super::super::state::AppState;
use super::frame::{self, Request};
use axum::extract::ws::Message;
use exoclaw_gateway::access::Principal;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Whether `method` is one of this file's.
pub fn handles(method: &str) -> bool {
    method.starts_with("agents.links.")
        || method.starts_with("delegations.")
        || method.starts_with("bindings.")
}

/// `agents.links.list`: one agent's links, or (without `agent`) the
/// tenant's.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinksOf {
    agent: Option<String>,
}

/// `agents.links.delete`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Pair {
    source: String,
    target: String,
}

/// `delegations.get`, `bindings.delete`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ById {
    id: String,
}

/// `bindings.list`: no parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Nothing {}

/// The request's parameters as `T`; absent or `null` parameters are `{}`.
fn params<T: DeserializeOwned>(params: &Value) -> Result<T, ApiError> {
    let params = match params {
        Value::Null => Value::Object(serde_json::Map::new()),
        other => other.clone(),
    };
    serde_json::from_value(params).map_err(|e| ApiError::invalid(format!("params: {e}")))
}

/// `agents.links.create`: `source` and the fields of `POST
/// /v1/agents/{id}/links`.
fn link_params(p: &Value) -> Result<(String, CreateLink), ApiError> {
    let mut p = match p {
        Value::Object(m) => m.clone(),
        Value::Null => serde_json::Map::new(),
        _ => return Err(ApiError::invalid("params: expected an object")),
    };
    let source = match p.remove("source") {
        Some(Value::String(s)) => s,
        Some(_) => return Err(ApiError::invalid("source: expected an agent id")),
        None => return Err(ApiError::invalid("params: missing field `source`")),
    };
    Ok((source, params(&Value::Object(p))?))
}

/// Answers one of this file's methods (the caller checked its permission).
pub async fn answer(
    state: &AppState,
    who: &Principal,
    req: &Request,
    id: &Value,
) -> Result<Message, ApiError> {
    let store = state.store.as_ref();
    // The connection's requests share no HTTP request id.
    let actor = || Actor::of(who, None);
    match req.method.as_str() {
        "agents.links.list" => {
            let p: LinksOf = params(&req.params)?;
            let list = links::links_of(store, &who.tenant, p.agent.as_deref()).await?;
            Ok(frame::ok(id, &list))
        }
        "agents.links.create" => {
            let (source, body) = link_params(&req.params)?;
            let link = links::link(store, &actor(), &source, body).await?;
            Ok(frame::ok(id, &link))
        }
        "agents.links.delete" => {
            let p: Pair = params(&req.params)?;
            links::unlink(store, &actor(), &p.source, &p.target, Surface::WebSocket).await?;
            Ok(frame::ok(id, &frame::Empty {}))
        }
        "delegations.list" => {
            let q: DelegationsQuery = params(&req.params)?;
            let vis = Visibility::of(who);
            let page = delegations::history(store, &who.tenant, &vis, q).await?;
            Ok(frame::ok(id, &page))
        }
        "delegations.get" => {
            let p: ById = params(&req.params)?;
            let vis = Visibility::of(who);
            let one = delegations::one(store, &who.tenant, &vis, &p.id).await?;
            Ok(frame::ok(id, &one))
        }
        "bindings.list" => {
            let Nothing {} = params(&req.params)?;
            Ok(frame::ok(
                id,
                &bindings::bindings_of(store, &who.tenant).await?,
            ))
        }
        "bindings.create" => {
            let body: CreateBinding = params(&req.params)?;
            let binding = bindings::bind(store, &actor(), body).await?;
            Ok(frame::ok(id, &binding))
        }
        "bindings.delete" => {
            let p: ById = params(&req.params)?;
            bindings::unbind(store, &actor(), &p.id).await?;
            Ok(frame::ok(id, &frame::Empty {}))
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
    fn link_params_take_the_source_and_refuse_unknown_fields() {
        let (source, body) =
            link_params(&json!({"source": "a", "target": "b", "direction": "inbound"})).unwrap();
        assert_eq!((source.as_str(), body.target.as_str()), ("a", "b"));
        assert_eq!(body.direction.as_deref(), Some("inbound"));
        for (p, want) in [
            (json!({"target": "b"}), "missing field `source`"),
            (json!({"source": 1, "target": "b"}), "source: "),
            (json!({"source": "a"}), "missing field `target`"),
            (
                json!({"source": "a", "target": "b", "colour": 1}),
                "unknown field",
            ),
            (json!([]), "expected an object"),
        ] {
            let e = link_params(&p).unwrap_err();
            assert!(e.message.contains(want), "{p}: {}", e.message);
        }
    }

    #[test]
    fn absent_parameters_are_empty_and_unknown_ones_refused() {
        let p: LinksOf = params(&Value::Null).unwrap();
        assert!(p.agent.is_none());
        let q: DelegationsQuery = params(&json!({"limit": 5, "before": 10})).unwrap();
        assert_eq!((q.limit, q.before), (Some(5), Some(10)));
        assert!(params::<DelegationsQuery>(&json!({"stauts": "done"})).is_err());
        assert!(params::<Nothing>(&json!({"x": 1})).is_err());
        assert!(handles("bindings.list") && handles("agents.links.create"));
        assert!(!handles("agents.list"));
    }
}
