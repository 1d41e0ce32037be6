//! Typed identifiers. Each is an opaque string (a UUID-like random id, or a
//! human-chosen slug for tenants and agents); the types keep a session id from
//! being passed where a user id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }
    };
}

string_id!(
    /// A tenant: the unit of isolation. Every stored row belongs to exactly one.
    TenantId
);
string_id!(
    /// A user inside a tenant.
    UserId
);
string_id!(
    /// An agent inside a tenant (a slug such as `default` or `research-bot`).
    AgentId
);
string_id!(
    /// A conversation session (agent x user x channel peer).
    SessionId
);
string_id!(
    /// One message inside a session.
    MessageId
);

/// True when `s` is usable as a slug id: 1-64 chars of `[a-z0-9_-]`, starting
/// with a letter or digit. Used for tenant and agent ids chosen by people.
pub fn is_valid_slug(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for ok in ["default", "research-bot", "a", "x_1", "0day"] {
            assert!(is_valid_slug(ok), "{ok}");
        }
        for bad in ["", "-a", "A", "a b", "a/b", "é", &"a".repeat(65)] {
            assert!(!is_valid_slug(bad), "{bad}");
        }
    }

    #[test]
    fn debug_names_the_kind() {
        assert_eq!(format!("{:?}", TenantId::new("t")), "TenantId(\"t\")");
    }
}
