//! The operator surface of multi-agent orchestration: permission links
//! between agents (`links.rs`), the delegation history (`delegations.rs`)
//! and bindings that pick the agent answering a conversation
//! (`bindings.rs`). Each file holds the public JSON shapes, the operations
//! over the store (checked, audited) and the HTTP handlers; the WebSocket
//! methods (`ws/orchestration.rs`) and the CLI (`cmd/orchestration.rs`) call
//! the same operations and print the same shapes. This file holds what the
//! three share: who acts ([`Actor`]), which surface asks ([`Surface`]), the
//! audit append, field checks and the schemas of the domain's words.

pub mod bindings;
pub mod delegations;
pub mod handoffs;
pub mod links;

use super::error::{ApiError, ErrorCode};
use exoclaw_core::id::is_valid_slug;
use exoclaw_core::model::NewAuditEvent;
use exoclaw_core::store::Store;
use exoclaw_core::{AgentId, TenantId};
use exoclaw_gateway::access::Principal;
use serde_json::Value;
use utoipa::openapi::schema::Object;

/// The longest name-like value (channel, account, peer, user id), in bytes:
/// the store's limit.
pub const NAME_MAX_BYTES: usize = 256;

/// Who makes a change: the tenant it happens in and the actor its audit
/// event names.
#[derive(Clone, Debug)]
pub struct Actor {
    pub tenant: TenantId,
    /// `gateway-token`, `user:<id>`, `device:<id>` or `cli`.
    pub name: String,
    /// The HTTP request (or WebSocket connection) it came in on.
    pub request_id: Option<String>,
}

impl Actor {
    pub fn of(who: &Principal, request_id: Option<String>) -> Self {
        Self {
            tenant: who.tenant.clone(),
            name: who.actor.clone(),
            request_id,
        }
    }

    /// The command line, acting in `tenant`.
    pub fn cli(tenant: TenantId) -> Self {
        Self {
            tenant,
            name: "cli".to_owned(),
            request_id: None,
        }
    }
}

/// Where a request came from: messages that point to another call name it
/// as that surface spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    Http,
    WebSocket,
    Cli,
}

/// Appends the audit event of a change (a failed append is logged; the
/// change has happened).
pub(in crate::http) async fn audit(
    store: &dyn Store,
    actor: &Actor,
    action: &str,
    resource: String,
    agent: Option<&AgentId>,
    detail: Value,
) {
    let mut event = NewAuditEvent::new(
        actor.tenant.clone(),
        actor.name.clone(),
        action,
        resource,
        "allow",
    );
    event.request_id.clone_from(&actor.request_id);
    event.agent_id = agent.cloned();
    event.detail = detail;
    exoclaw_gateway::audit::record(store, &event).await;
}

/// `404 not_found` naming the agent that does not exist (in the caller's
/// tenant: another tenant's agent reads the same).
fn no_agent(id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("no agent {id:?} (GET /v1/agents lists them)"),
    )
}

/// The agent `id` of `tenant`, or [`no_agent`]. An id that is not a slug
/// names no agent.
async fn existing_agent(
    store: &dyn Store,
    tenant: &TenantId,
    id: &str,
) -> Result<AgentId, ApiError> {
    if !is_valid_slug(id) {
        return Err(no_agent(id));
    }
    let id = AgentId::new(id);
    match store.get_agent(tenant, &id).await? {
        Some(_) => Ok(id),
        None => Err(no_agent(id.as_str())),
    }
}

/// A name-like field (`field` as the client spells it): not blank, at most
/// [`NAME_MAX_BYTES`], no control characters.
pub(in crate::http) fn check_name(field: &str, value: &str) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        return Err(ApiError::invalid(format!("{field}: must not be empty")));
    }
    if value.len() > NAME_MAX_BYTES {
        return Err(ApiError::invalid(format!(
            "{field}: at most {NAME_MAX_BYTES} bytes, not {}",
            value.len()
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::invalid(format!(
            "{field}: must not contain control characters"
        )));
    }
    Ok(())
}

/// Whether `id` can name a stored record (ids of delegations and bindings
/// are short printable text): anything else is "not found" without asking
/// the store.
fn is_plausible_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= NAME_MAX_BYTES && !id.chars().any(char::is_control)
}

/// A string that is one of `words`, or `null`.
fn words_or_null(words: &[&str]) -> Object {
    use utoipa::openapi::schema::{SchemaType, Type};
    let mut o = super::schema::words(words);
    o.schema_type = SchemaType::from_iter([Type::String, Type::Null]);
    o.enum_values.get_or_insert_with(Vec::new).push(Value::Null);
    o
}

/// The words of `LinkDirection`.
pub const DIRECTIONS: [&str; 3] = ["outbound", "inbound", "bidirectional"];
/// The words of `DelegationStatus`.
pub const STATUSES: [&str; 5] = ["running", "done", "failed", "cancelled", "interrupted"];
/// The words of `DelegationKind`.
pub const KINDS: [&str; 2] = ["delegate", "spawn"];
/// The words of `DelegationMode`.
pub const MODES: [&str; 2] = ["sync", "async"];

/// `o` with a description (a field whose schema is `schema_with` loses its
/// doc comment).
fn described(mut o: Object, description: &str) -> Object {
    o.description = Some(description.to_owned());
    o
}

const DIRECTION_DOC: &str = "`outbound`: the source may delegate to the target; `inbound`: \
     the target may delegate to the source; `bidirectional`: both";

fn direction() -> Object {
    described(super::schema::words(&DIRECTIONS), DIRECTION_DOC)
}

fn direction_or_null() -> Object {
    let doc = format!("{DIRECTION_DOC} (absent or null: `outbound`)");
    described(words_or_null(&DIRECTIONS), &doc)
}

fn status() -> Object {
    described(
        super::schema::words(&STATUSES),
        "`running`, `done`, `failed`, `cancelled` or `interrupted` (the gateway running it \
         stopped first)",
    )
}

fn kind() -> Object {
    described(
        super::schema::words(&KINDS),
        "`delegate` (to a named agent, over a link) or `spawn` (a subagent of the caller)",
    )
}

fn mode() -> Object {
    described(
        super::schema::words(&MODES),
        "`sync` (the caller waited for the answer) or `async` (the answer was announced into \
         the caller's session)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use exoclaw_core::store::orchestration::{
        DelegationKind, DelegationMode, DelegationStatus, LinkDirection,
    };

    fn word(v: impl serde::Serialize) -> String {
        serde_json::to_value(v)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    #[test]
    fn the_listed_words_are_the_ones_the_domain_serializes() {
        use LinkDirection as D;
        assert_eq!(
            [D::Outbound, D::Inbound, D::Bidirectional].map(word),
            DIRECTIONS
        );
        for d in DIRECTIONS {
            assert_eq!(LinkDirection::parse(d).map(LinkDirection::as_str), Some(d));
        }
        use DelegationStatus as S;
        let statuses = [S::Running, S::Done, S::Failed, S::Cancelled, S::Interrupted];
        assert_eq!(statuses.map(word), STATUSES);
        assert_eq!(statuses.map(S::as_str), STATUSES);
        use DelegationKind as K;
        assert_eq!([K::Delegate, K::Spawn].map(word), KINDS);
        use DelegationMode as M;
        assert_eq!([M::Sync, M::Async].map(word), MODES);
    }

    #[test]
    fn names_are_not_blank_not_long_and_printable() {
        assert!(check_name("peer", "p-1").is_ok());
        assert!(check_name("peer", &"p".repeat(NAME_MAX_BYTES)).is_ok());
        for bad in ["", "  ", "a\0b", "tab\there"] {
            let e = check_name("peer", bad).unwrap_err();
            assert!(e.message.starts_with("peer: "), "{bad:?}: {}", e.message);
        }
        let long = check_name("channel", &"c".repeat(NAME_MAX_BYTES + 1)).unwrap_err();
        assert!(
            long.message.contains("at most 256 bytes"),
            "{}",
            long.message
        );
        assert!(is_plausible_id("0af3"));
        assert!(!is_plausible_id("") && !is_plausible_id("a\0"));
    }
}
