//! Audit bundles: a slice of the audit log that an auditor checks offline,
//! with no access to the gateway or its store.
//!
//! `exoclaw audit export` writes one ([`export`]); `exoclaw audit verify
//! --bundle` checks it ([`verify`]). A bundle holds, per tenant, a run of
//! consecutive chained events with the hash the first one links to (its
//! *anchor*: 32 zero bytes when the run starts at the chain's first event)
//! and the chain's head when it was exported; and, for tool calls, receipts:
//! the arguments and output as the session stored them, whose SHA-256
//! digests must equal the ones the chained event carries (`args_sha256` over
//! canonical JSON, `output_sha256` over the text). Optionally it is signed
//! with an Ed25519 key kept in the vault ([`SIGNING_KEY`]).
//!
//! What verification proves: every event is unchanged since it was written
//! (each hash recomputed), none is missing, reordered or inserted inside the
//! run (each links to the one before), the run ends at the head when no
//! `until` was asked (nothing newer was cut off), each receipt's contents are
//! the ones the call was audited with, and, when signed, the whole bundle
//! comes from the holder of the key. What it cannot prove alone: that the
//! anchor of a run not starting at the genesis is genuine; compare it (or
//! the head) with a value recorded elsewhere, e.g. an earlier bundle.
//!
//! The file is JSON: `{"bundle": {...}, "signature": {...} | null}`. The
//! signature covers `"exoclaw.audit.bundle.v1\n"` followed by the canonical
//! JSON ([`exoclaw_core::canonical`]) of `bundle`.

use exoclaw_core::model::{AuditEvent, AuditFilter};
use exoclaw_core::provider::ContentPart;
use exoclaw_core::store::{AuditStore, SessionStore, StoreError};
use exoclaw_core::{Secret, SessionId, TenantId, UnixMillis};
use exoclaw_store::audit::{ChainFields, GENESIS, chain_hash, parse_hash};
use exoclaw_store::vault::SecretVault;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};

/// The format tag of a bundle (and the signature's domain separator).
pub const FORMAT: &str = "exoclaw.audit.bundle.v1";

/// Where the signing key lives in the vault: the default tenant, this owner,
/// [`SIGNING_KEY`] (the 32-byte Ed25519 seed, hex).
pub const SIGNING_KEY_OWNER: &str = "gateway";
pub const SIGNING_KEY: &str = "audit.signing_key";

/// Events read per page while exporting.
const PAGE: u32 = 500;

/// A bundle file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BundleFile {
    pub bundle: Bundle,
    pub signature: Option<Signature>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Bundle {
    pub format: String,
    pub exported_at: UnixMillis,
    /// The time range asked for (`since` inclusive, `until` exclusive).
    pub since: Option<UnixMillis>,
    pub until: Option<UnixMillis>,
    pub chains: Vec<ChainRun>,
    pub receipts: Vec<Receipt>,
}

/// Consecutive events of one tenant's chain.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChainRun {
    pub tenant_id: TenantId,
    /// The chain's newest event when the bundle was made.
    pub head_seq: i64,
    pub head_hash: Option<String>,
    /// The hash the first event links to (hex).
    pub anchor: String,
    pub events: Vec<AuditEvent>,
}

/// A tool call's contents, as the session stored them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Receipt {
    pub tenant_id: TenantId,
    pub tenant_seq: i64,
    pub call_id: String,
    pub tool: String,
    pub args: Value,
    /// The output the model got; absent when the call failed.
    pub output: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Signature {
    pub algorithm: String,
    /// Ed25519 public key, hex.
    pub public_key: String,
    /// Over [`signed_bytes`], hex.
    pub signature: String,
}

/// What to export.
#[derive(Clone, Debug, Default)]
pub struct ExportFilter {
    pub tenant: Option<TenantId>,
    pub since: Option<UnixMillis>,
    pub until: Option<UnixMillis>,
    /// Include receipts (tool arguments and outputs); without them the
    /// digests are still chained but cannot be checked against contents.
    pub contents: bool,
}

/// Reads the bundle `filter` asks for. Each chain's head is read first, and
/// events appended after it are left out, so a bundle without `until` ends
/// exactly at the head it records.
pub async fn export<S: AuditStore + SessionStore + ?Sized>(
    store: &S,
    filter: &ExportFilter,
    now: UnixMillis,
) -> Result<Bundle, StoreError> {
    let heads = store.verify_audit(filter.tenant.as_ref()).await?;
    let mut chains = Vec::new();
    let mut receipts = Vec::new();
    for head in heads.chains {
        let mut events = Vec::new();
        let mut before_seq = None;
        loop {
            let page = store
                .list_audit(&AuditFilter {
                    tenant_id: Some(head.tenant_id.clone()),
                    since: filter.since,
                    until: filter.until,
                    before_seq,
                    limit: PAGE,
                    ..AuditFilter::default()
                })
                .await?;
            let full = page.len() == PAGE as usize;
            before_seq = page.last().map(|e| e.seq);
            events.extend(
                page.into_iter()
                    .filter(|e| e.tenant_seq <= head.head_seq && e.hash.is_some()),
            );
            if !full {
                break;
            }
        }
        events.reverse();
        let anchor = events
            .first()
            .and_then(|e| e.prev_hash.clone())
            .unwrap_or_else(|| hex::encode(GENESIS));
        if filter.contents {
            receipts.extend(receipts_for(store, &events).await?);
        }
        chains.push(ChainRun {
            tenant_id: head.tenant_id,
            head_seq: head.head_seq,
            head_hash: head.head_hash,
            anchor,
            events,
        });
    }
    Ok(Bundle {
        format: FORMAT.to_owned(),
        exported_at: now,
        since: filter.since,
        until: filter.until,
        chains,
        receipts,
    })
}

/// Receipts for the tool calls among `events` whose call id is found in
/// their session (a deleted session, or a direct `/v1/tools/invoke` call,
/// has none).
async fn receipts_for<S: AuditStore + SessionStore + ?Sized>(
    store: &S,
    events: &[AuditEvent],
) -> Result<Vec<Receipt>, StoreError> {
    // Per session: call id -> (arguments, output).
    let mut sessions: HashMap<SessionId, HashMap<String, (Value, Option<String>)>> = HashMap::new();
    let mut out = Vec::new();
    for e in events {
        let (Some(session), Some(call_id)) = (
            e.session_id.as_ref(),
            e.detail.get("call_id").and_then(Value::as_str),
        ) else {
            continue;
        };
        if e.action != "tool.call" {
            continue;
        }
        if !sessions.contains_key(session) {
            let calls = match store.list_messages(&e.tenant_id, session, 0, 0).await {
                Ok(messages) => calls_in(&messages),
                Err(StoreError::NotFound) => HashMap::new(),
                Err(err) => return Err(err),
            };
            sessions.insert(session.clone(), calls);
        }
        let Some((args, output)) = sessions.get(session).and_then(|c| c.get(call_id)) else {
            continue;
        };
        out.push(Receipt {
            tenant_id: e.tenant_id.clone(),
            tenant_seq: e.tenant_seq,
            call_id: call_id.to_owned(),
            tool: e
                .resource
                .strip_prefix("tool:")
                .unwrap_or(&e.resource)
                .to_owned(),
            args: args.clone(),
            output: output.clone(),
        });
    }
    Ok(out)
}

/// Call id -> (arguments, output unless it failed) over a session's messages.
fn calls_in(messages: &[exoclaw_core::model::Message]) -> HashMap<String, (Value, Option<String>)> {
    let mut calls: HashMap<String, (Value, Option<String>)> = HashMap::new();
    for m in messages {
        let Ok(parts) = serde_json::from_value::<Vec<ContentPart>>(m.content.clone()) else {
            continue;
        };
        for part in parts {
            match part {
                ContentPart::ToolCall(c) => {
                    calls.entry(c.id).or_insert((Value::Null, None)).0 = c.arguments;
                }
                ContentPart::ToolResult {
                    call_id,
                    content,
                    is_error,
                } => {
                    if !is_error {
                        calls.entry(call_id).or_insert((Value::Null, None)).1 = Some(content);
                    }
                }
                ContentPart::Text { .. } => {}
            }
        }
    }
    calls
}

/// The bytes a signature covers.
pub fn signed_bytes(bundle: &Bundle) -> Result<Vec<u8>, serde_json::Error> {
    let value = serde_json::to_value(bundle)?;
    let mut out = format!("{FORMAT}\n").into_bytes();
    out.extend_from_slice(exoclaw_core::canonical::to_string(&value).as_bytes());
    Ok(out)
}

/// Signs `bundle` with `key`.
pub fn sign(
    bundle: Bundle,
    key: &ed25519_dalek::SigningKey,
) -> Result<BundleFile, serde_json::Error> {
    use ed25519_dalek::Signer as _;
    let sig = key.sign(&signed_bytes(&bundle)?);
    Ok(BundleFile {
        bundle,
        signature: Some(Signature {
            algorithm: "ed25519".to_owned(),
            public_key: hex::encode(key.verifying_key().as_bytes()),
            signature: hex::encode(sig.to_bytes()),
        }),
    })
}

/// The gateway's signing key from the vault; created (and stored) first when
/// `create` and there is none. `Ok(None)`: none, and not asked to create.
pub async fn signing_key(
    vault: &SecretVault,
    create: bool,
) -> anyhow::Result<Option<(ed25519_dalek::SigningKey, bool)>> {
    let tenant = TenantId::new(exoclaw_core::DEFAULT_TENANT);
    if let Some(seed) = vault.get(&tenant, SIGNING_KEY_OWNER, SIGNING_KEY).await? {
        let bytes: [u8; 32] = hex::decode(seed.expose().trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "the vault's {SIGNING_KEY_OWNER}/{SIGNING_KEY} is not a 32-byte hex Ed25519 seed"
                )
            })?;
        return Ok(Some((ed25519_dalek::SigningKey::from_bytes(&bytes), false)));
    }
    if !create {
        return Ok(None);
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness for a key: {e}"))?;
    vault
        .put(
            &tenant,
            SIGNING_KEY_OWNER,
            SIGNING_KEY,
            &Secret::new(hex::encode(seed)),
        )
        .await?;
    Ok(Some((ed25519_dalek::SigningKey::from_bytes(&seed), true)))
}

/// A short, readable name for a public key: the first 16 hex digits of its
/// SHA-256.
pub fn fingerprint(public_key_hex: &str) -> String {
    hex::encode(Sha256::digest(public_key_hex.as_bytes()))[..16].to_owned()
}

/// The outcome of [`verify`]: what was checked, and every problem found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub chains: Vec<ChainReport>,
    /// Tool-call events in the bundle, and how many have a receipt whose
    /// contents match their digests.
    pub tool_calls: u64,
    pub receipts_matched: u64,
    /// `absent`, `valid` or `invalid`.
    pub signature: &'static str,
    pub public_key: Option<String>,
    pub key_fingerprint: Option<String>,
    pub problems: Vec<String>,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ChainReport {
    pub tenant_id: TenantId,
    pub events: u64,
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    /// The run starts at the chain's first event (its anchor is the genesis).
    pub from_genesis: bool,
    /// The run ends at the head recorded at export.
    pub to_head: bool,
}

/// Checks a bundle file's text. `expected_key`: the public key (hex) the
/// bundle must be signed with; without it a signature is checked against
/// the key the bundle names (proving integrity, not origin).
pub fn verify(text: &str, expected_key: Option<&str>) -> Report {
    let mut r = Report {
        signature: "absent",
        ..Report::default()
    };
    let file: BundleFile = match serde_json::from_str(text) {
        Ok(f) => f,
        Err(e) => {
            r.problems
                .push(format!("not an exoclaw audit bundle (cannot read it: {e})"));
            return r;
        }
    };
    let b = &file.bundle;
    if b.format != FORMAT {
        r.problems.push(format!(
            "unknown bundle format {:?} (this exoclaw reads {FORMAT})",
            b.format
        ));
        return r;
    }
    check_signature(&file, expected_key, &mut r);
    let mut by_seq: BTreeMap<(&str, i64), &AuditEvent> = BTreeMap::new();
    for chain in &b.chains {
        let report = check_chain(chain, b.until.is_none(), &mut r.problems);
        r.chains.push(report);
        for e in &chain.events {
            by_seq.insert((chain.tenant_id.as_str(), e.tenant_seq), e);
            if e.action == "tool.call" {
                r.tool_calls += 1;
                check_digest_fields(e, &mut r.problems);
            }
        }
    }
    for receipt in &b.receipts {
        match by_seq.get(&(receipt.tenant_id.as_str(), receipt.tenant_seq)) {
            None => r.problems.push(format!(
                "receipt for tenant {} event {} has no event in the bundle",
                receipt.tenant_id, receipt.tenant_seq
            )),
            Some(e) => match check_receipt(receipt, e) {
                Ok(()) => r.receipts_matched += 1,
                Err(p) => r.problems.push(p),
            },
        }
    }
    r
}

fn check_signature(file: &BundleFile, expected_key: Option<&str>, r: &mut Report) {
    let Some(sig) = &file.signature else {
        if let Some(k) = expected_key {
            r.problems.push(format!(
                "the bundle is not signed, but a signature by key {} was required",
                fingerprint(&k.to_ascii_lowercase())
            ));
        }
        return;
    };
    r.public_key = Some(sig.public_key.clone());
    r.key_fingerprint = Some(fingerprint(&sig.public_key));
    r.signature = "invalid";
    if let Some(k) = expected_key
        && !k.trim().eq_ignore_ascii_case(&sig.public_key)
    {
        r.problems.push(format!(
            "signed by key {}, not by the required key {}",
            fingerprint(&sig.public_key),
            fingerprint(&k.trim().to_ascii_lowercase())
        ));
        return;
    }
    if sig.algorithm != "ed25519" {
        r.problems
            .push(format!("unknown signature algorithm {:?}", sig.algorithm));
        return;
    }
    let key = hex::decode(&sig.public_key)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .and_then(|b| ed25519_dalek::VerifyingKey::from_bytes(&b).ok());
    let signature = hex::decode(&sig.signature)
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b).ok())
        .map(|b| ed25519_dalek::Signature::from_bytes(&b));
    let (Some(key), Some(signature)) = (key, signature) else {
        r.problems
            .push("the signature or its public key is malformed".to_owned());
        return;
    };
    let ok = signed_bytes(&file.bundle)
        .ok()
        .is_some_and(|bytes| key.verify_strict(&bytes, &signature).is_ok());
    if ok {
        r.signature = "valid";
    } else {
        r.problems.push(
            "the signature does not match: the bundle was changed after it was signed".to_owned(),
        );
    }
}

fn check_chain(chain: &ChainRun, open_ended: bool, problems: &mut Vec<String>) -> ChainReport {
    let t = &chain.tenant_id;
    let mut report = ChainReport {
        tenant_id: t.clone(),
        events: chain.events.len() as u64,
        first_seq: chain.events.first().map(|e| e.tenant_seq),
        last_seq: chain.events.last().map(|e| e.tenant_seq),
        from_genesis: false,
        to_head: false,
    };
    let Some(mut prev) = parse_hash(&chain.anchor) else {
        problems.push(format!("tenant {t}: the anchor is not a SHA-256 hash"));
        return report;
    };
    report.from_genesis = prev == GENESIS;
    if report.first_seq == Some(1) && !report.from_genesis {
        problems.push(format!(
            "tenant {t}: the run starts at event 1 but its anchor is not the genesis"
        ));
    }
    let mut expected: Option<i64> = None;
    let mut last_global = i64::MIN;
    for e in &chain.events {
        let n = e.tenant_seq;
        if e.tenant_id != *t {
            problems.push(format!(
                "tenant {t}: event {n} belongs to tenant {}",
                e.tenant_id
            ));
            return report;
        }
        if let Some(x) = expected
            && n != x
        {
            problems.push(if n > x {
                format!("tenant {t}: events {x} to {} are missing", n - 1)
            } else {
                format!("tenant {t}: event {n} is out of order (expected {x})")
            });
            return report;
        }
        if e.seq <= last_global {
            problems.push(format!("tenant {t}: event {n} is out of global order"));
            return report;
        }
        if e.prev_hash.as_deref() != Some(hex::encode(prev).as_str()) {
            problems.push(format!(
                "tenant {t}: event {n} does not link to the event before it (inserted, removed or reordered)"
            ));
            return report;
        }
        let Some(hash) = e.hash.as_deref().and_then(parse_hash) else {
            problems.push(format!("tenant {t}: event {n} has no valid hash"));
            return report;
        };
        if chain_hash(&prev, &ChainFields::of(e)) != hash {
            problems.push(format!(
                "tenant {t}: event {n} does not match its hash (its contents were changed)"
            ));
            return report;
        }
        prev = hash;
        expected = Some(n + 1);
        last_global = e.seq;
    }
    match chain.events.last() {
        Some(last) => {
            report.to_head = last.tenant_seq == chain.head_seq
                && last.hash.as_deref() == chain.head_hash.as_deref();
            if last.tenant_seq == chain.head_seq && !report.to_head {
                problems.push(format!(
                    "tenant {t}: the last event is not the head recorded at export"
                ));
            } else if last.tenant_seq > chain.head_seq {
                problems.push(format!(
                    "tenant {t}: the run goes past the head recorded at export"
                ));
            } else if open_ended && !report.to_head {
                problems.push(format!(
                    "tenant {t}: events {} to {} (the newest) are missing",
                    last.tenant_seq + 1,
                    chain.head_seq
                ));
            }
        }
        None => report.to_head = true,
    }
    report
}

fn is_digest(v: Option<&Value>) -> bool {
    v.and_then(Value::as_str)
        .is_some_and(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn check_digest_fields(e: &AuditEvent, problems: &mut Vec<String>) {
    if !is_digest(e.detail.get("args_sha256")) {
        problems.push(format!(
            "tenant {}: tool call {} has no arguments digest",
            e.tenant_id, e.tenant_seq
        ));
    }
    if let Some(v) = e.detail.get("output_sha256")
        && !is_digest(Some(v))
    {
        problems.push(format!(
            "tenant {}: tool call {} has a malformed output digest",
            e.tenant_id, e.tenant_seq
        ));
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn check_receipt(r: &Receipt, e: &AuditEvent) -> Result<(), String> {
    let at = format!("receipt for tenant {} event {}", r.tenant_id, r.tenant_seq);
    if e.action != "tool.call" {
        return Err(format!("{at}: the event is {}, not a tool call", e.action));
    }
    if e.detail.get("call_id").and_then(Value::as_str) != Some(r.call_id.as_str()) {
        return Err(format!("{at}: its call id is not the event's"));
    }
    if e.resource != format!("tool:{}", r.tool) {
        return Err(format!(
            "{at}: tool {:?} is not the event's {}",
            r.tool, e.resource
        ));
    }
    let args = sha256_hex(exoclaw_core::canonical::to_string(&r.args).as_bytes());
    if e.detail.get("args_sha256").and_then(Value::as_str) != Some(args.as_str()) {
        return Err(format!(
            "{at}: the arguments do not match the audited digest"
        ));
    }
    let audited = e.detail.get("output_sha256").and_then(Value::as_str);
    match (&r.output, audited) {
        (Some(out), Some(d)) if sha256_hex(out.as_bytes()) == d => Ok(()),
        (Some(_), Some(_)) => Err(format!(
            "{at}: the output does not match the audited digest"
        )),
        (Some(_), None) => Err(format!("{at}: an output for a call audited without one")),
        (None, Some(_)) => Err(format!("{at}: the output is missing")),
        (None, None) => Ok(()),
    }
}

#[cfg(test)]
mod tests;
