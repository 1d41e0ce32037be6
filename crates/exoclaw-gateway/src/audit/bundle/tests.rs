//! Bundles built by hand (a real hash chain, real signatures) and changed
//! the ways an attacker or an accident would change them.

use super::*;
use serde_json::json;

fn digest(s: &str) -> String {
    sha256_hex(s.as_bytes())
}

/// A chain of `n` events of tenant `t`, every third a tool call with its
/// digests; returns the events and their receipts.
fn chain(t: &str, n: i64) -> (Vec<AuditEvent>, Vec<Receipt>) {
    let mut prev = GENESIS;
    let mut events = Vec::new();
    let mut receipts = Vec::new();
    for i in 1..=n {
        let tool_call = i % 3 == 0;
        let args = json!({"path": format!("notes/{i}.md"), "limit": 10});
        let output = format!("contents of note {i}");
        let detail = if tool_call {
            json!({
                "args_sha256": digest(&exoclaw_core::canonical::to_string(&args)),
                "output_sha256": digest(&output),
                "call_id": format!("call_{i}"),
                "duration_ms": 3,
            })
        } else {
            json!({})
        };
        let mut e = AuditEvent {
            id: format!("ev{i}"),
            seq: i * 2,
            tenant_seq: i,
            tenant_id: TenantId::new(t),
            at: 1_700_000_000_000 + i,
            actor: "user:u1".into(),
            action: if tool_call {
                "tool.call"
            } else {
                "auth.success"
            }
            .into(),
            resource: if tool_call {
                "tool:read_file"
            } else {
                "key:k1"
            }
            .into(),
            decision: "allow".into(),
            reason: String::new(),
            request_id: None,
            agent_id: None,
            session_id: None,
            detail,
            prev_hash: Some(hex::encode(prev)),
            hash: None,
        };
        let h = chain_hash(&prev, &ChainFields::of(&e));
        e.hash = Some(hex::encode(h));
        prev = h;
        if tool_call {
            receipts.push(Receipt {
                tenant_id: TenantId::new(t),
                tenant_seq: i,
                call_id: format!("call_{i}"),
                tool: "read_file".into(),
                args,
                output: Some(output),
            });
        }
        events.push(e);
    }
    (events, receipts)
}

fn bundle(events: Vec<AuditEvent>, receipts: Vec<Receipt>) -> Bundle {
    let last = events.last().cloned();
    Bundle {
        format: FORMAT.into(),
        exported_at: 1_700_000_100_000,
        since: None,
        until: None,
        chains: vec![ChainRun {
            tenant_id: TenantId::new("acme"),
            head_seq: last.as_ref().map_or(0, |e| e.tenant_seq),
            head_hash: last.and_then(|e| e.hash),
            anchor: events
                .first()
                .and_then(|e| e.prev_hash.clone())
                .unwrap_or_else(|| hex::encode(GENESIS)),
            events,
        }],
        receipts,
    }
}

fn key(byte: u8) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[byte; 32])
}

fn text(f: &BundleFile) -> String {
    serde_json::to_string_pretty(f).unwrap()
}

fn unsigned(b: Bundle) -> String {
    text(&BundleFile {
        bundle: b,
        signature: None,
    })
}

#[test]
fn an_intact_signed_bundle_verifies_with_its_key() {
    let (events, receipts) = chain("acme", 9);
    let file = sign(bundle(events, receipts), &key(7)).unwrap();
    let public = hex::encode(key(7).verifying_key().as_bytes());
    let r = verify(&text(&file), Some(&public));
    assert!(r.is_ok(), "{:?}", r.problems);
    assert_eq!(r.signature, "valid");
    assert_eq!((r.tool_calls, r.receipts_matched), (3, 3));
    assert!(r.chains[0].from_genesis && r.chains[0].to_head);
    assert_eq!(
        r.key_fingerprint.as_deref(),
        Some(fingerprint(&public).as_str())
    );
}

#[test]
fn a_run_from_the_middle_verifies_against_its_anchor() {
    let (events, receipts) = chain("acme", 9);
    let tail: Vec<_> = events[4..].to_vec();
    let receipts = receipts.into_iter().filter(|r| r.tenant_seq > 4).collect();
    let r = verify(&unsigned(bundle(tail, receipts)), None);
    assert!(r.is_ok(), "{:?}", r.problems);
    assert!(!r.chains[0].from_genesis);
    assert_eq!(r.receipts_matched, 2);
}

#[test]
fn an_edited_event_is_found() {
    let (mut events, receipts) = chain("acme", 6);
    events[3].decision = "deny".into();
    let r = verify(&unsigned(bundle(events, receipts)), None);
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("event 4 does not match its hash")),
        "{:?}",
        r.problems
    );
}

#[test]
fn an_edited_digest_is_found_by_the_chain_and_the_receipt() {
    let (mut events, receipts) = chain("acme", 6);
    events[2].detail["output_sha256"] = json!(digest("something else"));
    let r = verify(&unsigned(bundle(events, receipts)), None);
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("event 3 does not match"))
    );
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("output does not match the audited digest"))
    );
}

#[test]
fn a_removed_event_is_found() {
    let (mut events, receipts) = chain("acme", 6);
    events.remove(2);
    let receipts = receipts.into_iter().filter(|r| r.tenant_seq != 3).collect();
    let r = verify(&unsigned(bundle(events, receipts)), None);
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("events 3 to 3 are missing")),
        "{:?}",
        r.problems
    );
}

#[test]
fn cutting_off_the_newest_events_is_found() {
    let (events, receipts) = chain("acme", 6);
    let mut b = bundle(events.clone(), receipts);
    b.chains[0].events.truncate(4);
    b.receipts.retain(|r| r.tenant_seq <= 4);
    let r = verify(&unsigned(b.clone()), None);
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("events 5 to 6 (the newest) are missing")),
        "{:?}",
        r.problems
    );
    // Asked for with `until`, a run may end before the head.
    b.until = Some(events[4].at);
    assert!(verify(&unsigned(b), None).is_ok());
}

#[test]
fn a_forged_receipt_is_found() {
    let (events, mut receipts) = chain("acme", 6);
    receipts[0].args = json!({"path": "/etc/shadow", "limit": 10});
    receipts[1].output = Some("nothing to see".into());
    let r = verify(&unsigned(bundle(events, receipts)), None);
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("event 3: the arguments do not match"))
    );
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("event 6: the output does not match"))
    );
    assert_eq!(r.receipts_matched, 0);
}

#[test]
fn receipt_arguments_digest_in_any_key_order() {
    let (events, mut receipts) = chain("acme", 3);
    receipts[0].args = serde_json::from_str(r#"{"limit": 10.0, "path": "notes/3.md"}"#).unwrap();
    let r = verify(&unsigned(bundle(events, receipts)), None);
    assert!(r.is_ok(), "{:?}", r.problems);
    assert_eq!(r.receipts_matched, 1);
}

#[test]
fn a_change_after_signing_breaks_the_signature() {
    let (events, receipts) = chain("acme", 6);
    let mut file = sign(bundle(events, receipts), &key(7)).unwrap();
    file.bundle.exported_at += 1;
    let r = verify(&text(&file), None);
    assert_eq!(r.signature, "invalid");
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("changed after it was signed"))
    );
}

#[test]
fn the_required_key_is_enforced() {
    let (events, receipts) = chain("acme", 3);
    let b = bundle(events, receipts);
    let other = hex::encode(key(8).verifying_key().as_bytes());
    // Signed by another key: a valid signature, but not the one required.
    let r = verify(&text(&sign(b.clone(), &key(7)).unwrap()), Some(&other));
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("not by the required key"))
    );
    // Re-signed by an attacker with their own key after a change: valid
    // against the key it names, refused against the required one.
    let mut forged = b.clone();
    forged.chains[0].events[0].actor = "user:mallory".into();
    let r = verify(&text(&sign(forged, &key(9)).unwrap()), Some(&other));
    assert!(!r.is_ok());
    // Unsigned, with a key required.
    let r = verify(&unsigned(b), Some(&other));
    assert!(r.problems.iter().any(|p| p.contains("not signed")));
}

#[test]
fn garbage_is_refused_clearly() {
    let r = verify("{\"bundle\": 3}", None);
    assert!(r.problems[0].starts_with("not an exoclaw audit bundle"));
    let (events, receipts) = chain("acme", 1);
    let mut b = bundle(events, receipts);
    b.format = "something.else".into();
    assert!(verify(&unsigned(b), None).problems[0].contains("unknown bundle format"));
}
