//! Codes, credentials and the pairing decisions on real stores (SQLite and,
//! when the test cluster is given, PostgreSQL).

use super::*;
use crate::test_store;
use exoclaw_core::DEFAULT_TENANT;
use exoclaw_core::store::Store;
use std::sync::Arc;

fn tenant() -> TenantId {
    TenantId::new(DEFAULT_TENANT)
}

#[test]
fn codes_use_the_alphabet_without_modulo_bias() {
    // Every byte value maps to one symbol, each symbol from exactly 8 bytes.
    let mut hits = [0u32; 32];
    for b in 0..=255u8 {
        let code = code_from_bytes([b; CODE_LEN]);
        let i = ALPHABET
            .iter()
            .position(|a| char::from(*a) == code.chars().next().unwrap())
            .unwrap();
        hits[i] += 1;
    }
    assert!(hits.iter().all(|h| *h == 8), "{hits:?}");
    // Loosely: 4,000 real codes spread over all 32 symbols near evenly.
    let mut seen = [0u32; 32];
    for _ in 0..4000 {
        let code = new_code().unwrap();
        assert_eq!(code.expose().len(), CODE_LEN);
        assert_eq!(
            normalize_code(code.expose()).as_deref(),
            Some(code.expose())
        );
        for c in code.expose().bytes() {
            seen[ALPHABET.iter().position(|a| *a == c).unwrap()] += 1;
        }
    }
    // 32,000 symbols, 1,000 expected each; 6 sigma is about 190.
    assert!(seen.iter().all(|n| (800..1200).contains(n)), "{seen:?}");
}

#[test]
fn codes_are_normalized_as_typed() {
    assert_eq!(normalize_code("abcd-efgh").as_deref(), Some("ABCDEFGH"));
    assert_eq!(normalize_code(" ABCD EFGH ").as_deref(), Some("ABCDEFGH"));
    for bad in [
        "",
        "ABCDEFG",
        "ABCDEFGHJ",
        "ABCDEFG0",
        "ABCDEFGI",
        "ABCDÉFGH",
        "ABCD_EFG",
    ] {
        assert_eq!(normalize_code(bad), None, "{bad}");
    }
}

#[test]
fn device_tokens_are_prefixed_base64url_of_32_bytes() {
    assert_eq!(base64url(b""), "");
    assert_eq!(base64url(b"f"), "Zg");
    assert_eq!(base64url(b"fo"), "Zm8");
    assert_eq!(base64url(b"foo"), "Zm9v");
    assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    let t = new_device_token().unwrap();
    assert!(t.expose().starts_with("exd_"));
    assert_eq!(t.expose().len(), 4 + 43);
    assert!(is_well_formed_token(t.expose()));
    assert_ne!(t.expose(), new_device_token().unwrap().expose());
    assert_eq!(token_hash(t.expose()).len(), 64);
    for bad in ["", "exd_", "exd_short", "Bearer exd_x", &t.expose()[1..]] {
        assert!(!is_well_formed_token(bad), "{bad}");
    }
    assert!(!is_well_formed_token(&format!("{}=", &t.expose()[..46])));
}

async fn user(store: &dyn Store, name: &str) -> UserId {
    store
        .create_user(
            &tenant(),
            &NewUser {
                name: name.to_owned(),
                role: Role::User,
            },
        )
        .await
        .unwrap()
        .id
}

async fn request_code(store: &dyn Store, user: &UserId) -> (PairingRequest, Secret) {
    match request(
        store,
        &tenant(),
        &Requester::Device { user },
        MAX_PENDING_PER_USER,
        Duration::from_secs(600),
    )
    .await
    .unwrap()
    {
        Requested::Created { request, code } => (request, code),
        Requested::TooManyPending { .. } => panic!("capped"),
    }
}

async fn browser_flow(store: Arc<dyn Store>) {
    let t = tenant();
    let alice = user(&*store, "alice").await;
    let (req, code) = request_code(&*store, &alice).await;
    assert_eq!(req.code_hash, code_hash(code.expose()));
    assert!(matches!(
        poll(&*store, &t, &req.id, "Firefox").await.unwrap(),
        Some(Poll::Pending { .. })
    ));
    let approved = decide(
        &*store,
        &t,
        &code.expose().to_lowercase(),
        Verdict::Approve,
        &Approver::owner("cli", &[]),
        None,
    )
    .await
    .unwrap();
    assert_eq!(approved.status, PairingStatus::Approved);
    let Some(Poll::Approved { token, device }) =
        poll(&*store, &t, &req.id, "Firefox").await.unwrap()
    else {
        panic!("not issued");
    };
    assert_eq!(device.label, "Firefox");
    assert!(matches!(
        poll(&*store, &t, &req.id, "Firefox").await.unwrap(),
        Some(Poll::Issued)
    ));
    assert!(poll(&*store, &t, "nope", "x").await.unwrap().is_none());
    let (found, _) = authenticate_device(&*store, token.expose())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, device.id);
    assert_eq!(found.user_id, alice);
    let seen = store
        .find_device_by_token_hash(&token_hash(token.expose()))
        .await
        .unwrap()
        .unwrap()
        .last_seen_at;
    assert!(seen.is_some(), "first use is recorded");
    // Within the minute, no second write.
    authenticate_device(&*store, token.expose())
        .await
        .unwrap()
        .unwrap();
    let again = store
        .find_device_by_token_hash(&token_hash(token.expose()))
        .await
        .unwrap()
        .unwrap()
        .last_seen_at;
    assert_eq!(seen, again);
    // Malformed and unknown credentials are no device.
    assert!(
        authenticate_device(&*store, "exd_nope")
            .await
            .unwrap()
            .is_none()
    );
    let other = new_device_token().unwrap();
    assert!(
        authenticate_device(&*store, other.expose())
            .await
            .unwrap()
            .is_none()
    );
    // A disabled user's device does not authenticate; re-enabled it does.
    store.set_user_disabled(&t, &alice, true).await.unwrap();
    assert!(
        authenticate_device(&*store, token.expose())
            .await
            .unwrap()
            .is_none()
    );
    store.set_user_disabled(&t, &alice, false).await.unwrap();
    assert!(
        authenticate_device(&*store, token.expose())
            .await
            .unwrap()
            .is_some()
    );
    // Revoked: gone for good.
    store.revoke_device(&t, &device.id, now_ms()).await.unwrap();
    assert!(
        authenticate_device(&*store, token.expose())
            .await
            .unwrap()
            .is_none()
    );
    // The code is single use.
    let e = decide(
        &*store,
        &t,
        code.expose(),
        Verdict::Approve,
        &Approver::owner("cli", &[]),
        None,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(e, PairingError::AlreadyDecided(PairingStatus::Issued)),
        "{e}"
    );
}

async fn approval_needs_an_enabled_user(store: Arc<dyn Store>) {
    let t = tenant();
    let (_, code) = request_code(&*store, &UserId::new("ghost")).await;
    let e = decide(
        &*store,
        &t,
        code.expose(),
        Verdict::Approve,
        &Approver::owner("cli", &[]),
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, PairingError::UserUnavailable(_)), "{e}");
    let bob = user(&*store, "bob").await;
    store.set_user_disabled(&t, &bob, true).await.unwrap();
    let (_, code) = request_code(&*store, &bob).await;
    let e = decide(
        &*store,
        &t,
        code.expose(),
        Verdict::Approve,
        &Approver::owner("cli", &[]),
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, PairingError::UserUnavailable(_)), "{e}");
    // Not a brute-force failure, and the request can still be denied.
    assert!(store.pairing_failures(&t, 0).await.unwrap().is_empty());
    let denied = decide(
        &*store,
        &t,
        code.expose(),
        Verdict::Deny,
        &Approver::owner("cli", &[]),
        None,
    )
    .await
    .unwrap();
    assert_eq!(denied.status, PairingStatus::Denied);
}

async fn brute_force_locks_out(store: Arc<dyn Store>) {
    let t = tenant();
    let carol = user(&*store, "carol").await;
    let (_, real) = request_code(&*store, &carol).await;
    for guess in ["AAAAAAAA", "BBBBBBBB", "not a code", "CCCCCCCC", "DDDDDDDD"] {
        let e = decide(
            &*store,
            &t,
            guess,
            Verdict::Approve,
            &Approver::owner("mallory", &[]),
            None,
        )
        .await
        .unwrap_err();
        assert!(matches!(e, PairingError::InvalidCode), "{e}");
    }
    // Locked now, even with the right code; for everyone in the tenant.
    for actor in ["mallory", "cli"] {
        let e = decide(
            &*store,
            &t,
            real.expose(),
            Verdict::Approve,
            &Approver::owner(actor, &[]),
            None,
        )
        .await
        .unwrap_err();
        let PairingError::Locked { retry_after } = e else {
            panic!("{e}")
        };
        assert!(
            retry_after > Duration::from_secs(14 * 60),
            "{retry_after:?}"
        );
        assert!(retry_after <= LOCKOUT_WINDOW);
    }
    // Failures are audited without the code.
    let audit = store
        .list_audit(&exoclaw_core::model::AuditFilter {
            tenant_id: Some(t.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let failures: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "pairing.approve_failed")
        .collect();
    assert_eq!(failures.len(), 5);
    let all = serde_json::to_string(&audit).unwrap();
    for guess in ["AAAAAAAA", "BBBBBBBB", real.expose()] {
        assert!(!all.contains(guess), "a code reached the audit log");
    }
}

async fn concurrent_approvals_succeed_once(store: Arc<dyn Store>) {
    let t = tenant();
    let dave = user(&*store, "dave").await;
    let (_, code) = request_code(&*store, &dave).await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        let t = t.clone();
        let code = code.expose().to_owned();
        #[expect(
            clippy::disallowed_methods,
            reason = "a test's own concurrent load, awaited by the test"
        )]
        tasks.push(tokio::spawn(async move {
            decide(
                &*store,
                &t,
                &code,
                Verdict::Approve,
                &Approver::owner(&format!("admin{i}"), &[]),
                None,
            )
            .await
        }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(PairingError::AlreadyDecided(PairingStatus::Approved)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(ok, 1);
}

async fn pending_requests_are_capped(store: Arc<dyn Store>) {
    let erin = UserId::new("erin");
    for _ in 0..MAX_PENDING_PER_USER {
        request_code(&*store, &erin).await;
    }
    assert!(matches!(
        request(
            &*store,
            &tenant(),
            &Requester::Device { user: &erin },
            MAX_PENDING_PER_USER,
            Duration::from_secs(600),
        )
        .await
        .unwrap(),
        Requested::TooManyPending { .. }
    ));
}

macro_rules! on_every_store {
    ($($name:ident),+ $(,)?) => {
        mod every_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    for ts in crate::test_store::all().await {
                        eprintln!("{} on {}", stringify!($name), ts.name);
                        super::$name(ts.store.clone()).await;
                        ts.finish().await;
                    }
                }
            )+
        }
    };
}

/// Approving obeys the rank rule on every path: a device for an owner (by
/// role or by `EXOCLAW_OWNER_IDS`) and a channel sender whose user is
/// listed as an owner both need an owner to approve.
async fn approvals_never_grant_above_the_approver(store: Arc<dyn Store>) {
    let t = tenant();
    let admin = |owners: &'static [String]| Approver {
        actor: "user:admin",
        role: Role::Admin,
        owner_ids: owners,
    };
    let root = store
        .create_user(
            &t,
            &NewUser {
                name: "root".to_owned(),
                role: Role::Owner,
            },
        )
        .await
        .unwrap()
        .id;
    let (req, code) = request_code(&*store, &root).await;
    let e = decide(
        &*store,
        &t,
        code.expose(),
        Verdict::Approve,
        &admin(&[]),
        None,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            e,
            PairingError::Forbidden {
                paired: Role::Owner,
                ..
            }
        ),
        "{e}"
    );
    let still = store
        .get_pairing_request(&t, &req.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(still.status_at(now_ms()), PairingStatus::Pending);
    let ok = decide(
        &*store,
        &t,
        code.expose(),
        Verdict::Approve,
        &Approver::owner("cli", &[]),
        None,
    )
    .await
    .unwrap();
    assert_eq!(ok.status, PairingStatus::Approved);

    // A channel sender mapped to a listed owner name.
    static OWNERS: std::sync::LazyLock<Vec<String>> =
        std::sync::LazyLock::new(|| vec!["telegram:42".to_owned()]);
    let code = match request(
        &*store,
        &t,
        &Requester::Channel {
            channel: "telegram",
            sender_id: "42",
        },
        1,
        Duration::from_secs(600),
    )
    .await
    .unwrap()
    {
        Requested::Created { code, .. } => code,
        Requested::TooManyPending { .. } => panic!("capped"),
    };
    let e = decide(
        &*store,
        &t,
        code.expose(),
        Verdict::Approve,
        &admin(&OWNERS),
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, PairingError::Forbidden { .. }), "{e}");
    // The same admin pairs an ordinary sender.
    let code = match request(
        &*store,
        &t,
        &Requester::Channel {
            channel: "telegram",
            sender_id: "7",
        },
        1,
        Duration::from_secs(600),
    )
    .await
    .unwrap()
    {
        Requested::Created { code, .. } => code,
        Requested::TooManyPending { .. } => panic!("capped"),
    };
    let ok = decide(
        &*store,
        &t,
        code.expose(),
        Verdict::Approve,
        &admin(&OWNERS),
        None,
    )
    .await
    .unwrap();
    assert_eq!(ok.status, PairingStatus::Approved);
}

on_every_store!(
    browser_flow,
    approval_needs_an_enabled_user,
    approvals_never_grant_above_the_approver,
    brute_force_locks_out,
    concurrent_approvals_succeed_once,
    pending_requests_are_capped,
);

#[tokio::test]
async fn expired_codes_are_failures() {
    let ts = test_store::sqlite().await;
    let store = ts.store.clone();
    let t = tenant();
    let frank = user(&*store, "frank").await;
    let Requested::Created { request: req, code } = request(
        &*store,
        &t,
        &Requester::Device { user: &frank },
        3,
        Duration::from_millis(1),
    )
    .await
    .unwrap() else {
        panic!("capped")
    };
    tokio::time::sleep(Duration::from_millis(5)).await;
    let e = decide(
        &*store,
        &t,
        code.expose(),
        Verdict::Approve,
        &Approver::owner("cli", &[]),
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, PairingError::InvalidCode), "{e}");
    assert_eq!(store.pairing_failures(&t, 0).await.unwrap().len(), 1);
    assert!(matches!(
        poll(&*store, &t, &req.id, "x").await.unwrap(),
        Some(Poll::Expired)
    ));
    ts.finish().await;
}
