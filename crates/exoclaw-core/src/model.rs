//! Stored records. Every record carries the tenant that owns it; the store
//! traits take a tenant on every call so that no query can forget it.

use crate::{AgentId, MessageId, SessionId, TenantId, UnixMillis, UserId};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What a user may do. Ordered from most to least powerful.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Operator,
    User,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Operator, Role::User];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::User => "user",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an unknown enum word (role, agent type, ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?} (expected one of: {expected})")]
pub struct UnknownVariant {
    pub kind: &'static str,
    pub value: String,
    pub expected: &'static str,
}

impl FromStr for Role {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownVariant {
                kind: "role",
                value: s.to_owned(),
                expected: "owner, admin, operator, user",
            })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub created_at: UnixMillis,
    /// The tenant's own limits as stored (a JSON object the gateway
    /// validates and narrows against its configuration; `{}` = none).
    pub settings: serde_json::Value,
    /// Bumped by every settings change (0 = never set).
    pub settings_version: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub tenant_id: TenantId,
    /// Unique inside the tenant.
    pub name: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: UnixMillis,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewUser {
    pub name: String,
    pub role: Role,
}

/// `open` agents keep workspace and context per user; `predefined` agents share
/// one context and keep only sessions per user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentType {
    Open,
    Predefined,
}

impl AgentType {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentType::Open => "open",
            AgentType::Predefined => "predefined",
        }
    }
}

impl FromStr for AgentType {
    type Err = UnknownVariant;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "open" => Ok(AgentType::Open),
            "predefined" => Ok(AgentType::Predefined),
            _ => Err(UnknownVariant {
                kind: "agent type",
                value: s.to_owned(),
                expected: "open, predefined",
            }),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    pub id: AgentId,
    pub tenant_id: TenantId,
    pub display_name: String,
    pub agent_type: AgentType,
    /// Provider, model, tool policy and other per-agent settings (a JSON object).
    pub config: serde_json::Value,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewAgent {
    pub id: AgentId,
    pub display_name: String,
    pub agent_type: AgentType,
    pub config: serde_json::Value,
}

/// A partial update: `None` leaves the field as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AgentUpdate {
    pub display_name: Option<String>,
    pub agent_type: Option<AgentType>,
    pub config: Option<serde_json::Value>,
}

/// What makes a session unique: one conversation per agent x user x channel peer.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SessionScope {
    pub agent_id: AgentId,
    pub user_id: UserId,
    /// `api`, `ws`, `cli`, or a channel name such as `telegram`.
    pub channel: String,
    /// The peer inside the channel (chat id, the OpenAI `user` field, ...).
    pub peer: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: SessionId,
    pub tenant_id: TenantId,
    pub agent_id: AgentId,
    pub user_id: UserId,
    pub channel: String,
    pub peer: String,
    pub title: Option<String>,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionFilter {
    pub agent_id: Option<AgentId>,
    pub user_id: Option<UserId>,
    /// Only sessions whose title or peer contains this (any case).
    pub text: Option<String>,
    /// Only sessions after this one in the order (newest first): its
    /// `updated_at` and id, the previous page's last.
    pub after: Option<(UnixMillis, SessionId)>,
    /// At most this many.
    pub limit: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub id: MessageId,
    pub tenant_id: TenantId,
    pub session_id: SessionId,
    /// 1, 2, 3, ... inside the session, assigned atomically by the store.
    pub seq: i64,
    /// `system`, `user`, `assistant`, `tool` or `summary`.
    pub role: String,
    /// The message body (text, tool calls, tool results) as JSON.
    pub content: serde_json::Value,
    /// Bookkeeping such as `{"partial": true}` or token counts.
    pub meta: serde_json::Value,
    pub created_at: UnixMillis,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewMessage {
    pub role: String,
    pub content: serde_json::Value,
    pub meta: serde_json::Value,
}

/// One encrypted secret as stored: never the plaintext. `owner` scopes the
/// name (`tenant`, `user:<id>`, `provider:<name>`, ...).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretRecord {
    pub tenant_id: TenantId,
    pub owner: String,
    pub name: String,
    /// Fingerprint of the key that sealed it (not the key).
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

impl fmt::Debug for SecretRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretRecord")
            .field("tenant_id", &self.tenant_id)
            .field("owner", &self.owner)
            .field("name", &self.name)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// A secret's metadata, for listings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretMeta {
    pub tenant_id: TenantId,
    pub owner: String,
    pub name: String,
    pub key_id: String,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

/// A known plaintext sealed under the vault key, so that a wrong key is caught
/// at start-up rather than when a secret is first needed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultCheck {
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// One entry of the audit log. Each tenant's events form a hash chain (see
/// `exoclaw_store::audit` for the encoding): `hash` covers every field below
/// but `seq`, plus the previous event's hash.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: String,
    /// Global order of events (strictly increasing).
    pub seq: i64,
    /// Position in the tenant's chain: 1, 2, 3, ... without gaps.
    pub tenant_seq: i64,
    pub tenant_id: TenantId,
    pub at: UnixMillis,
    /// Who acted: `gateway-token`, `user:<id>`, `cli`, `system`, `anonymous`.
    pub actor: String,
    /// Dotted name such as `auth.failure`, `secret.put`, `security.ssrf_blocked`.
    pub action: String,
    pub resource: String,
    /// `allow`, `deny` or `info`.
    pub decision: String,
    pub reason: String,
    pub request_id: Option<String>,
    pub agent_id: Option<AgentId>,
    pub session_id: Option<SessionId>,
    pub detail: serde_json::Value,
    /// The previous event's hash (hex); `None` for events written before the
    /// chain existed (schema 6).
    pub prev_hash: Option<String>,
    /// SHA-256 (hex) over `prev_hash` and this event's fields.
    pub hash: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewAuditEvent {
    pub tenant_id: TenantId,
    pub actor: String,
    pub action: String,
    pub resource: String,
    pub decision: String,
    pub reason: String,
    pub request_id: Option<String>,
    pub agent_id: Option<AgentId>,
    pub session_id: Option<SessionId>,
    /// Never a secret or raw tool arguments (hash them).
    pub detail: serde_json::Value,
}

impl NewAuditEvent {
    /// An event with no request, agent, session or detail.
    pub fn new(
        tenant_id: TenantId,
        actor: impl Into<String>,
        action: impl Into<String>,
        resource: impl Into<String>,
        decision: impl Into<String>,
    ) -> Self {
        Self {
            tenant_id,
            actor: actor.into(),
            action: action.into(),
            resource: resource.into(),
            decision: decision.into(),
            reason: String::new(),
            request_id: None,
            agent_id: None,
            session_id: None,
            detail: serde_json::json!({}),
        }
    }

    /// Whether the event is alert-worthy: a denial or a `security.*` action.
    pub fn is_alert(&self) -> bool {
        self.decision == "deny" || self.action.starts_with("security.")
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub tenant_id: Option<TenantId>,
    /// Events whose action starts with this prefix (`auth.`, `security.`).
    pub action_prefix: Option<String>,
    /// Events of exactly this actor.
    pub actor: Option<String>,
    /// Events with exactly this decision.
    pub decision: Option<String>,
    /// Events at or after this time.
    pub since: Option<UnixMillis>,
    /// Events before this time.
    pub until: Option<UnixMillis>,
    /// Only events with `seq` below this (for paging backwards).
    pub before_seq: Option<i64>,
    /// At most this many, newest first. 0 means the store's default (100).
    pub limit: u32,
}

/// How a tenant's audit chain is broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditBreakKind {
    /// An event's contents (or its link) no longer match its hash.
    Edited,
    /// An event is gone: a gap in the chain, or the newest events.
    Missing,
    /// Events are out of the order they were appended in.
    Reordered,
    /// The chain head disagrees with the newest event.
    HeadMismatch,
}

impl AuditBreakKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditBreakKind::Edited => "edited",
            AuditBreakKind::Missing => "missing",
            AuditBreakKind::Reordered => "reordered",
            AuditBreakKind::HeadMismatch => "head mismatch",
        }
    }
}

/// The first break in a tenant's chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditBreak {
    /// The tenant sequence number where the chain breaks.
    pub seq: i64,
    pub kind: AuditBreakKind,
    /// What was found, for the operator (no event contents).
    pub reason: String,
}

/// The verification of one tenant's chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditChain {
    pub tenant_id: TenantId,
    /// Chained events checked (up to the break, if any).
    pub checked: u64,
    /// Events from before the chain existed: listed, not verifiable.
    pub unchained: u64,
    /// The newest tenant sequence number and hash the head records
    /// (record these elsewhere to detect a rewrite of the whole log).
    pub head_seq: i64,
    pub head_hash: Option<String>,
    pub broken: Option<AuditBreak>,
}

/// The result of verifying the audit log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditVerify {
    /// One entry per tenant with audit events, in tenant id order.
    pub chains: Vec<AuditChain>,
}

impl AuditVerify {
    pub fn is_intact(&self) -> bool {
        self.chains.iter().all(|c| c.broken.is_none())
    }

    /// The first broken chain (in tenant order) and its break.
    pub fn first_break(&self) -> Option<(&TenantId, &AuditBreak)> {
        self.chains
            .iter()
            .find_map(|c| c.broken.as_ref().map(|b| (&c.tenant_id, b)))
    }

    pub fn checked(&self) -> u64 {
        self.chains.iter().map(|c| c.checked).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_round_trips() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        let err = "root".parse::<Role>().unwrap_err();
        assert!(err.to_string().contains("owner, admin, operator, user"));
    }

    #[test]
    fn secret_record_debug_hides_bytes() {
        let rec = SecretRecord {
            tenant_id: "t".into(),
            owner: "tenant".into(),
            name: "n".into(),
            key_id: "k".into(),
            nonce: vec![1, 2],
            ciphertext: vec![3, 4],
            created_at: 0,
            updated_at: 0,
        };
        let dbg = format!("{rec:?}");
        assert!(!dbg.contains("ciphertext"), "{dbg}");
    }
}

/// What a pairing request pairs: a browser (a device credential for a named
/// user) or a messaging-channel sender (mapped to a user on approval).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PairingKind {
    Device,
    Channel,
}

impl PairingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PairingKind::Device => "device",
            PairingKind::Channel => "channel",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Device, Self::Channel]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// Where a pairing request stands. `pending` -> `approved` | `denied` |
/// `expired`; a device request goes on `approved` -> `issued` when its
/// credential is handed out (once).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PairingStatus {
    Pending,
    Approved,
    Issued,
    Denied,
    Expired,
}

impl PairingStatus {
    pub const ALL: [PairingStatus; 5] = [
        Self::Pending,
        Self::Approved,
        Self::Issued,
        Self::Denied,
        Self::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PairingStatus::Pending => "pending",
            PairingStatus::Approved => "approved",
            PairingStatus::Issued => "issued",
            PairingStatus::Denied => "denied",
            PairingStatus::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// One pairing request. Only the SHA-256 of its code is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairingRequest {
    /// 128 random bits: it is what the waiting browser polls with.
    pub id: String,
    pub tenant_id: TenantId,
    pub kind: PairingKind,
    /// The user a device request is for; for a channel request, the user it
    /// was mapped to on approval.
    pub user_id: Option<UserId>,
    pub channel: Option<String>,
    pub sender_id: Option<String>,
    pub code_hash: String,
    /// As stored; see [`PairingRequest::status_at`] for the effective one.
    pub status: PairingStatus,
    pub created_at: UnixMillis,
    pub expires_at: UnixMillis,
    pub approved_by: Option<String>,
    pub approved_at: Option<UnixMillis>,
}

impl PairingRequest {
    /// The status at `now`: a pending request past its expiry is expired even
    /// before a store call marks it so.
    pub fn status_at(&self, now: UnixMillis) -> PairingStatus {
        if self.status == PairingStatus::Pending && self.expires_at <= now {
            PairingStatus::Expired
        } else {
            self.status
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewPairingRequest {
    pub tenant_id: TenantId,
    pub kind: PairingKind,
    /// Required for `device`, `None` for `channel`.
    pub user_id: Option<UserId>,
    /// Required for `channel`, `None` for `device`.
    pub channel: Option<String>,
    pub sender_id: Option<String>,
    pub code_hash: String,
    pub expires_at: UnixMillis,
}

/// The outcome of asking for a pairing request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PairingCreated {
    Created(PairingRequest),
    /// The requester (the user of a device request, the sender of a channel
    /// request) already has the maximum of live pending requests; the
    /// soonest-expiring one is returned.
    TooManyPending {
        oldest: PairingRequest,
    },
}

/// How a pending pairing request is decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PairingDecision {
    /// Approve for this user (a channel request's sender is mapped to it in
    /// the same transaction).
    Approve {
        user: UserId,
    },
    Deny,
}

/// A paired browser. Its credential is stored only as a SHA-256 digest,
/// which this record does not carry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Device {
    pub id: String,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub label: String,
    pub created_at: UnixMillis,
    pub last_seen_at: Option<UnixMillis>,
    pub revoked_at: Option<UnixMillis>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDevice {
    pub user_id: UserId,
    /// SHA-256 hex of the credential.
    pub token_hash: String,
    pub label: String,
}

/// A messaging-channel sender mapped to a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChannelSender {
    pub tenant_id: TenantId,
    pub channel: String,
    pub sender_id: String,
    pub user_id: UserId,
    pub created_at: UnixMillis,
}

/// A failed attempt to approve or deny a pairing code (unknown or expired).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairingFailure {
    pub actor: String,
    pub at: UnixMillis,
}
