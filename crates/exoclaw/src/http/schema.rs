//! OpenAPI schemas of the domain's words that appear in the public JSON
//! (roles, agent types, statuses): the domain types stay free of OpenAPI,
//! and the HTTP types name these with `#[schema(schema_with = ...)]`. Each
//! lists the words the domain type serializes as.

use exoclaw_core::model::{PairingStatus, Role};
use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};

/// A string that is one of `words`.
pub fn words(words: &[&str]) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(words.iter().copied()))
        .build()
}

/// `o`, or `null` (an optional field of a request: serde takes `null` as
/// absent).
fn or_null(mut o: Object) -> Object {
    o.schema_type = SchemaType::from_iter([Type::String, Type::Null]);
    o.enum_values
        .get_or_insert_with(Vec::new)
        .push(serde_json::Value::Null);
    o
}

pub fn role_or_null() -> Object {
    or_null(role())
}

pub fn agent_type_or_null() -> Object {
    or_null(agent_type())
}

pub fn role() -> Object {
    words(&Role::ALL.map(Role::as_str))
}

pub fn agent_type() -> Object {
    words(&["open", "predefined"])
}

pub fn approval_status() -> Object {
    words(&["pending", "approved", "denied", "expired"])
}

pub fn pairing_status() -> Object {
    words(&PairingStatus::ALL.map(PairingStatus::as_str))
}

pub fn pairing_kind() -> Object {
    words(&["device", "channel"])
}

pub fn span_kind() -> Object {
    words(&["llm", "tool"])
}

#[cfg(test)]
mod tests {
    use super::*;
    use exoclaw_core::model::{AgentType, PairingKind};
    use exoclaw_core::store::ApprovalStatus;
    use exoclaw_core::trace::SpanKind;

    fn listed(o: &Object) -> Vec<String> {
        o.enum_values
            .iter()
            .flatten()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect()
    }

    fn json(v: impl serde::Serialize) -> String {
        serde_json::to_value(v)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    #[test]
    fn the_listed_words_are_the_ones_the_domain_serializes() {
        let agent = [AgentType::Open, AgentType::Predefined].map(json);
        assert_eq!(listed(&agent_type()), agent);
        let approval = [
            ApprovalStatus::Pending,
            ApprovalStatus::Approved,
            ApprovalStatus::Denied,
            ApprovalStatus::Expired,
        ]
        .map(json);
        assert_eq!(listed(&approval_status()), approval);
        assert_eq!(listed(&pairing_status()), PairingStatus::ALL.map(json));
        let kinds = [PairingKind::Device, PairingKind::Channel].map(json);
        assert_eq!(listed(&pairing_kind()), kinds);
        assert_eq!(
            listed(&span_kind()),
            [SpanKind::Llm, SpanKind::Tool].map(json)
        );
        assert_eq!(listed(&role()), Role::ALL.map(json));
    }
}
