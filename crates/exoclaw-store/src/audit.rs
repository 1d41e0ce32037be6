//! The audit log's hash chain, shared by both backends: the canonical
//! encoding of an event, its hash, and the verifier that walks a tenant's
//! chain and names the first break.
//!
//! # The chain
//!
//! Every tenant has its own chain. Event `n` of a tenant (`tenant_seq = n`,
//! 1, 2, 3, ... without gaps) stores `prev_hash` (the hash of event `n - 1`,
//! or [`GENESIS`] for the first chained event) and
//!
//! ```text
//! hash = SHA-256( prev_hash (32 raw bytes) || encode(event) )
//! ```
//!
//! stored as lowercase hex. A row `audit_heads(tenant_id, chain_start,
//! last_seq, last_hash)` is updated in the same transaction as every append,
//! so deleting the newest events (which leaves a valid but shorter chain) is
//! detected as well. Appends lock the head row, so one tenant's appends are
//! serialised even across gateway processes on one PostgreSQL.
//!
//! # The canonical encoding
//!
//! `encode(event)` is unambiguous because every field is length-prefixed and
//! the fields come in one fixed order:
//!
//! ```text
//! str(x)   = u64 big-endian byte length of x || the UTF-8 bytes of x
//! int(x)   = i64 big-endian (8 bytes)
//! opt(x)   = 0x00                       when absent
//!          | 0x01 || str(x)             when present
//!
//! encode   = str("exoclaw.audit.v1")
//!         || int(tenant_seq) || str(id) || str(tenant_id) || int(at)
//!         || str(actor) || str(action) || str(resource) || str(decision)
//!         || str(reason) || opt(request_id) || opt(agent_id)
//!         || opt(session_id) || str(canonical_json(detail))
//! ```
//!
//! `canonical_json` is compact JSON with object keys sorted by their UTF-8
//! bytes at every level, strings escaped as `serde_json` escapes them, and
//! numbers written as integers whenever their value is integral (so `3.0`
//! and `3` encode alike: PostgreSQL's `jsonb` does not keep the difference)
//! and in `serde_json`'s shortest round-trip form otherwise. Only the
//! global `seq` is left out: it orders events across tenants and is checked
//! separately (it must grow along each tenant's chain).
//!
//! # Events from before the chain
//!
//! Schema 6 added the chain. Events already in the log then were numbered
//! (`tenant_seq`) but not hashed (SQLite has no SHA-256 in SQL); the head's
//! `chain_start` is the first number the chain covers. Those older events
//! are listed and counted as `unchained` by verification, never as intact.

use exoclaw_core::model::{AuditBreak, AuditBreakKind, AuditChain, AuditEvent, NewAuditEvent};
use exoclaw_core::store::{StoreError, StoreResult};
use exoclaw_core::{TenantId, UnixMillis};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `prev_hash` of a chain's first event: 32 zero bytes.
pub const GENESIS: [u8; 32] = [0; 32];

/// Version tag at the start of every encoding.
const TAG: &str = "exoclaw.audit.v1";

/// The fields an event's hash covers (every field but the global `seq`).
#[derive(Clone, Copy, Debug)]
pub struct ChainFields<'a> {
    pub tenant_seq: i64,
    pub id: &'a str,
    pub tenant_id: &'a str,
    pub at: UnixMillis,
    pub actor: &'a str,
    pub action: &'a str,
    pub resource: &'a str,
    pub decision: &'a str,
    pub reason: &'a str,
    pub request_id: Option<&'a str>,
    pub agent_id: Option<&'a str>,
    pub session_id: Option<&'a str>,
    pub detail: &'a Value,
}

impl<'a> ChainFields<'a> {
    pub fn of(e: &'a AuditEvent) -> Self {
        Self {
            tenant_seq: e.tenant_seq,
            id: &e.id,
            tenant_id: e.tenant_id.as_str(),
            at: e.at,
            actor: &e.actor,
            action: &e.action,
            resource: &e.resource,
            decision: &e.decision,
            reason: &e.reason,
            request_id: e.request_id.as_deref(),
            agent_id: e.agent_id.as_ref().map(|a| a.as_str()),
            session_id: e.session_id.as_ref().map(|s| s.as_str()),
            detail: &e.detail,
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_opt(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_str(out, s);
        }
    }
}

/// The canonical encoding of an event (see the module docs).
pub fn encode(f: &ChainFields<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    put_str(&mut out, TAG);
    out.extend_from_slice(&f.tenant_seq.to_be_bytes());
    put_str(&mut out, f.id);
    put_str(&mut out, f.tenant_id);
    out.extend_from_slice(&f.at.to_be_bytes());
    put_str(&mut out, f.actor);
    put_str(&mut out, f.action);
    put_str(&mut out, f.resource);
    put_str(&mut out, f.decision);
    put_str(&mut out, f.reason);
    put_opt(&mut out, f.request_id);
    put_opt(&mut out, f.agent_id);
    put_opt(&mut out, f.session_id);
    let mut json = String::new();
    canonical_json(f.detail, &mut json);
    put_str(&mut out, &json);
    out
}

/// `SHA-256(prev || encode(fields))`.
pub fn chain_hash(prev: &[u8; 32], f: &ChainFields<'_>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(encode(f));
    h.finalize().into()
}

/// A stored hex hash as bytes; `None` when it is not 64 hex digits.
pub fn parse_hash(hex_text: &str) -> Option<[u8; 32]> {
    hex::decode(hex_text).ok()?.try_into().ok()
}

/// Compact JSON with sorted keys and integral numbers as integers
/// ([`exoclaw_core::canonical`]).
pub fn canonical_json(v: &Value, out: &mut String) {
    exoclaw_core::canonical::write(v, out);
}

/// The event an append writes: number `tenant_seq` of its tenant, linked
/// to `prev_hash` (hex; the head's `last_hash`), with its hash computed.
/// `seq` is 0 until the insert assigns it.
pub(crate) fn chained(
    event: &NewAuditEvent,
    id: String,
    at: UnixMillis,
    tenant_seq: i64,
    prev_hash: &str,
) -> StoreResult<AuditEvent> {
    let prev = parse_hash(prev_hash).ok_or_else(|| {
        StoreError::Corrupt(format!(
            "the audit chain head of tenant {} holds an invalid hash; run `exoclaw audit verify`",
            event.tenant_id
        ))
    })?;
    let mut e = AuditEvent {
        id,
        seq: 0,
        tenant_seq,
        tenant_id: event.tenant_id.clone(),
        at,
        actor: event.actor.clone(),
        action: event.action.clone(),
        resource: event.resource.clone(),
        decision: event.decision.clone(),
        reason: event.reason.clone(),
        request_id: event.request_id.clone(),
        agent_id: event.agent_id.clone(),
        session_id: event.session_id.clone(),
        detail: event.detail.clone(),
        prev_hash: Some(hex::encode(prev)),
        hash: None,
    };
    e.hash = Some(hex::encode(chain_hash(&prev, &ChainFields::of(&e))));
    Ok(e)
}

/// Rows a verification reads per query.
pub(crate) const VERIFY_PAGE: i64 = 500;

/// The chain head of a tenant, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// The first `tenant_seq` the chain covers (later than 1 when events
    /// from before schema 6 exist).
    pub chain_start: i64,
    pub last_seq: i64,
    pub last_hash: String,
}

/// Walks one tenant's events in `tenant_seq` order and stops at the first
/// break. Feed every event with [`Verifier::push`], then [`Verifier::finish`].
pub struct Verifier {
    tenant: TenantId,
    head: Option<Head>,
    start: i64,
    expected: i64,
    prev: [u8; 32],
    prev_global: i64,
    checked: u64,
    unchained: u64,
    broken: Option<AuditBreak>,
}

impl Verifier {
    pub fn new(tenant: TenantId, head: Option<Head>) -> Self {
        let start = head.as_ref().map_or(1, |h| h.chain_start.max(1));
        Self {
            tenant,
            head,
            start,
            expected: start,
            prev: GENESIS,
            prev_global: 0,
            checked: 0,
            unchained: 0,
            broken: None,
        }
    }

    /// Whether a break was found (the rest of the chain need not be read).
    pub fn is_broken(&self) -> bool {
        self.broken.is_some()
    }

    fn fail(&mut self, seq: i64, kind: AuditBreakKind, reason: String) {
        self.broken = Some(AuditBreak { seq, kind, reason });
    }

    pub fn push(&mut self, e: &AuditEvent) {
        if self.broken.is_some() {
            return;
        }
        if e.tenant_seq < self.start && e.hash.is_none() {
            self.unchained += 1;
            return;
        }
        let n = e.tenant_seq;
        let (Some(prev), Some(hash)) = (
            e.prev_hash.as_deref().and_then(parse_hash),
            e.hash.as_deref().and_then(parse_hash),
        ) else {
            return self.fail(
                n,
                AuditBreakKind::Edited,
                format!("event {n} has no valid hash"),
            );
        };
        if chain_hash(&prev, &ChainFields::of(e)) != hash {
            return self.fail(
                n,
                AuditBreakKind::Edited,
                format!("event {n} does not match its hash (its contents were changed)"),
            );
        }
        if n > self.expected {
            let expected = self.expected;
            return self.fail(
                expected,
                AuditBreakKind::Missing,
                if n - expected == 1 {
                    format!("event {expected} is missing (the chain goes on at {n})")
                } else {
                    format!(
                        "events {expected} to {} are missing (the chain goes on at {n})",
                        n - 1
                    )
                },
            );
        }
        if n < self.expected || e.seq <= self.prev_global {
            return self.fail(
                n,
                AuditBreakKind::Reordered,
                format!("event {n} is out of the order it was appended in"),
            );
        }
        if prev != self.prev {
            return self.fail(
                n,
                AuditBreakKind::Edited,
                format!("event {n} does not link to event {}", n - 1),
            );
        }
        self.prev = hash;
        self.prev_global = e.seq;
        self.expected = n + 1;
        self.checked += 1;
    }

    pub fn finish(mut self) -> AuditChain {
        let last = self.expected - 1;
        if self.broken.is_none() {
            match &self.head {
                None if self.checked > 0 || self.unchained > 0 => self.fail(
                    last.max(1),
                    AuditBreakKind::HeadMismatch,
                    "the tenant has audit events but no chain head".to_owned(),
                ),
                None => {}
                Some(h) if h.last_seq > last => {
                    let (from, to) = (last + 1, h.last_seq);
                    let reason = if from == to {
                        format!("event {from} is missing (the chain head records {to})")
                    } else {
                        format!("events {from} to {to} are missing (the chain head records {to})")
                    };
                    self.fail(from, AuditBreakKind::Missing, reason);
                }
                Some(h) if h.last_seq < last || parse_hash(&h.last_hash) != Some(self.prev) => {
                    let seq = h.last_seq;
                    self.fail(
                        last,
                        AuditBreakKind::HeadMismatch,
                        format!(
                            "the chain head (event {seq}) does not match the newest event ({last})"
                        ),
                    );
                }
                Some(_) => {}
            }
        }
        AuditChain {
            tenant_id: self.tenant,
            checked: self.checked,
            unchained: self.unchained,
            head_seq: self.head.as_ref().map_or(0, |h| h.last_seq),
            head_hash: self.head.map(|h| h.last_hash),
            broken: self.broken,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(n: i64, prev: &[u8; 32]) -> AuditEvent {
        let mut e = AuditEvent {
            id: format!("id{n}"),
            seq: n * 10,
            tenant_seq: n,
            tenant_id: TenantId::new("t"),
            at: 1000 + n,
            actor: "cli".into(),
            action: "secret.put".into(),
            resource: "secret:x".into(),
            decision: "allow".into(),
            reason: String::new(),
            request_id: None,
            agent_id: None,
            session_id: None,
            detail: json!({"b": 1, "a": [true, null, 2.5]}),
            prev_hash: Some(hex::encode(prev)),
            hash: None,
        };
        e.hash = Some(hex::encode(chain_hash(prev, &ChainFields::of(&e))));
        e
    }

    fn chain(len: i64) -> Vec<AuditEvent> {
        let mut prev = GENESIS;
        (1..=len)
            .map(|n| {
                let e = event(n, &prev);
                prev = parse_hash(e.hash.as_deref().unwrap()).unwrap();
                e
            })
            .collect()
    }

    fn head_of(events: &[AuditEvent]) -> Head {
        let last = events.last().unwrap();
        Head {
            chain_start: 1,
            last_seq: last.tenant_seq,
            last_hash: last.hash.clone().unwrap(),
        }
    }

    fn verify(events: &[AuditEvent], head: Option<Head>) -> AuditChain {
        let mut v = Verifier::new(TenantId::new("t"), head);
        for e in events {
            v.push(e);
        }
        v.finish()
    }

    #[test]
    fn fields_are_length_prefixed_so_boundaries_cannot_shift() {
        let e = event(1, &GENESIS);
        let mut moved = e.clone();
        moved.actor = "clisecret.put".into();
        moved.action = String::new();
        assert_ne!(
            encode(&ChainFields::of(&e)),
            encode(&ChainFields::of(&moved))
        );
        let mut none = e.clone();
        none.request_id = None;
        let mut empty = e;
        empty.request_id = Some(String::new());
        assert_ne!(
            encode(&ChainFields::of(&none)),
            encode(&ChainFields::of(&empty))
        );
    }

    #[test]
    fn canonical_json_sorts_keys_and_normalises_integral_numbers() {
        let check = |v: Value, want: &str| {
            let mut s = String::new();
            canonical_json(&v, &mut s);
            assert_eq!(s, want);
        };
        check(
            json!({"b": 1, "a": {"d": 3.0, "c": "x\"y"}}),
            r#"{"a":{"c":"x\"y","d":3},"b":1}"#,
        );
        check(
            json!([1e16, 0.1, -2, 1.5e300]),
            "[10000000000000000,0.1,-2,1.5e+300]",
        );
        check(
            json!(18_446_744_073_709_551_615_u64),
            "18446744073709551615",
        );
    }

    #[test]
    fn an_intact_chain_verifies() {
        let events = chain(4);
        let c = verify(&events, Some(head_of(&events)));
        assert_eq!(c.broken, None);
        assert_eq!(c.checked, 4);
        assert_eq!(verify(&[], None).broken, None);
    }

    #[test]
    fn each_kind_of_tampering_is_named() {
        let events = chain(5);
        let head = head_of(&events);
        let kind = |evs: &[AuditEvent], head: Option<Head>| {
            let b = verify(evs, head).broken.expect("a break");
            (b.kind, b.seq)
        };
        let mut edited = events.clone();
        edited[2].reason = "changed".into();
        assert_eq!(
            kind(&edited, Some(head.clone())),
            (AuditBreakKind::Edited, 3)
        );

        let mut gap = events.clone();
        gap.remove(1);
        assert_eq!(kind(&gap, Some(head.clone())), (AuditBreakKind::Missing, 2));

        let short = &events[..4];
        assert_eq!(
            kind(short, Some(head.clone())),
            (AuditBreakKind::Missing, 5)
        );

        let mut swapped = events.clone();
        let (a, b) = (swapped[1].seq, swapped[2].seq);
        swapped[1].seq = b;
        swapped[2].seq = a;
        assert_eq!(
            kind(&swapped, Some(head.clone())),
            (AuditBreakKind::Reordered, 3)
        );

        assert_eq!(kind(&events, None), (AuditBreakKind::HeadMismatch, 5));
        let mut wrong = head.clone();
        wrong.last_hash = hex::encode([1u8; 32]);
        assert_eq!(
            kind(&events, Some(wrong)),
            (AuditBreakKind::HeadMismatch, 5)
        );

        // a forged link: recomputed hash over a wrong prev_hash
        let mut forged = events.clone();
        forged[3] = event(4, &[7; 32]);
        assert_eq!(kind(&forged, Some(head)), (AuditBreakKind::Edited, 4));
    }

    #[test]
    fn events_from_before_the_chain_are_counted_not_verified() {
        let mut legacy: Vec<AuditEvent> = chain(2);
        for e in &mut legacy {
            e.prev_hash = None;
            e.hash = None;
        }
        let mut prev = GENESIS;
        let mut events = legacy;
        for n in 3..=4 {
            let e = event(n, &prev);
            prev = parse_hash(e.hash.as_deref().unwrap()).unwrap();
            events.push(e);
        }
        let head = Head {
            chain_start: 3,
            last_seq: 4,
            last_hash: hex::encode(prev),
        };
        let c = verify(&events, Some(head));
        assert_eq!((c.checked, c.unchained, c.broken), (2, 2, None));
    }
}
