//! Pairing: requests capped per requester, expiry, decided once (also under
//! 16 concurrent approvals), credentials issued once, devices found by
//! credential hash and revoked once, channel senders mapped first-wins,
//! failed attempts counted, everything tenant-isolated.

use crate::harness::{default_tenant, new_user, two_tenants};
use exoclaw_core::TenantId;
use exoclaw_core::model::{
    NewDevice, NewPairingRequest, PairingCreated, PairingDecision, PairingKind, PairingRequest,
    PairingStatus,
};
use exoclaw_core::store::{Store, StoreError};
use std::sync::Arc;

contract!(
    store: requests_are_capped_per_user_and_expire,
    approval_succeeds_once_under_concurrency,
    expired_and_denied_requests_cannot_be_approved,
    credentials_are_issued_once,
    devices_are_found_by_hash_and_revoked_once,
    channel_requests_map_the_sender_on_approval,
    channel_senders_map_first_wins,
    failures_are_counted_per_window,
    pairing_is_tenant_isolated,
);

const NOW: i64 = 1_800_000_000_000;
const TTL: i64 = 600_000;

fn device_request(tenant: &TenantId, user: &str, code_hash: &str, now: i64) -> NewPairingRequest {
    NewPairingRequest {
        tenant_id: tenant.clone(),
        kind: PairingKind::Device,
        user_id: Some(user.into()),
        channel: None,
        sender_id: None,
        code_hash: code_hash.to_owned(),
        expires_at: now + TTL,
    }
}

fn channel_request(tenant: &TenantId, sender: &str, code_hash: &str) -> NewPairingRequest {
    NewPairingRequest {
        tenant_id: tenant.clone(),
        kind: PairingKind::Channel,
        user_id: None,
        channel: Some("telegram".to_owned()),
        sender_id: Some(sender.to_owned()),
        code_hash: code_hash.to_owned(),
        expires_at: NOW + TTL,
    }
}

async fn create(store: &dyn Store, new: &NewPairingRequest, now: i64) -> PairingRequest {
    match store.create_pairing_request(new, 3, now).await.unwrap() {
        PairingCreated::Created(r) => r,
        PairingCreated::TooManyPending { .. } => panic!("unexpected cap"),
    }
}

fn hash(n: u32) -> String {
    format!("{n:064x}")
}

async fn requests_are_capped_per_user_and_expire(store: Arc<dyn Store>) {
    let t = default_tenant();
    let a = create(&*store, &device_request(&t, "u1", &hash(1), NOW), NOW).await;
    assert_eq!(a.status, PairingStatus::Pending);
    assert_eq!(a.kind, PairingKind::Device);
    assert_eq!(a.user_id.as_ref().map(|u| u.as_str()), Some("u1"));
    assert_eq!(a.expires_at, NOW + TTL);
    assert_eq!(
        store.get_pairing_request(&t, &a.id).await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(
        store
            .find_pairing_request_by_code(&t, &hash(1))
            .await
            .unwrap(),
        Some(a.clone())
    );
    assert!(
        store
            .find_pairing_request_by_code(&t, &hash(99))
            .await
            .unwrap()
            .is_none()
    );
    create(
        &*store,
        &device_request(&t, "u1", &hash(2), NOW + 1),
        NOW + 1,
    )
    .await;
    create(
        &*store,
        &device_request(&t, "u1", &hash(3), NOW + 2),
        NOW + 2,
    )
    .await;
    // The fourth pending request of one user is refused; the soonest to expire is named.
    match store
        .create_pairing_request(&device_request(&t, "u1", &hash(4), NOW + 3), 3, NOW + 3)
        .await
        .unwrap()
    {
        PairingCreated::TooManyPending { oldest } => assert_eq!(oldest.id, a.id),
        PairingCreated::Created(_) => panic!("the cap did not hold"),
    }
    // Another user is not affected.
    create(
        &*store,
        &device_request(&t, "u2", &hash(5), NOW + 3),
        NOW + 3,
    )
    .await;
    // A code hash is unique.
    let e = store
        .create_pairing_request(&device_request(&t, "u3", &hash(5), NOW + 3), 3, NOW + 3)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e}");
    // Malformed requests are refused.
    let mut bad = device_request(&t, "u3", &hash(6), NOW);
    bad.user_id = None;
    assert!(matches!(
        store.create_pairing_request(&bad, 3, NOW).await,
        Err(StoreError::Invalid(_))
    ));
    // Once the first ones expire, they stop counting and are marked expired.
    let later = NOW + TTL + 2;
    assert_eq!(a.status_at(later), PairingStatus::Expired);
    create(&*store, &device_request(&t, "u1", &hash(7), later), later).await;
    let a_now = store.get_pairing_request(&t, &a.id).await.unwrap().unwrap();
    assert_eq!(a_now.status, PairingStatus::Expired);
    let pending = store
        .list_pairing_requests(&t, Some(PairingStatus::Pending))
        .await
        .unwrap();
    assert_eq!(pending.len(), 2, "u2's and the new one");
    assert_eq!(pending[0].code_hash, hash(7), "newest first");
    assert_eq!(
        store.list_pairing_requests(&t, None).await.unwrap().len(),
        5
    );
}

async fn approval_succeeds_once_under_concurrency(store: Arc<dyn Store>) {
    let t = default_tenant();
    let user = store.create_user(&t, &new_user("alice")).await.unwrap();
    let r = create(
        &*store,
        &device_request(&t, user.id.as_str(), &hash(1), NOW),
        NOW,
    )
    .await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        let t = t.clone();
        let id = r.id.clone();
        let user = user.id.clone();
        #[expect(
            clippy::disallowed_methods,
            reason = "a test's own concurrent load, awaited by the test"
        )]
        tasks.push(tokio::spawn(async move {
            store
                .decide_pairing_request(
                    &t,
                    &id,
                    &PairingDecision::Approve { user },
                    &format!("admin{i}"),
                    NOW + 10,
                )
                .await
        }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(decided) => {
                ok += 1;
                assert_eq!(decided.status, PairingStatus::Approved);
                assert_eq!(decided.approved_at, Some(NOW + 10));
                assert!(decided.approved_by.unwrap().starts_with("admin"));
            }
            Err(StoreError::Conflict(m)) => assert!(m.contains("approved"), "{m}"),
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(ok, 1, "exactly one approval wins");
    let e = store
        .decide_pairing_request(&t, &r.id, &PairingDecision::Deny, "late", NOW + 20)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e}");
}

async fn expired_and_denied_requests_cannot_be_approved(store: Arc<dyn Store>) {
    let t = default_tenant();
    let user = store.create_user(&t, &new_user("bob")).await.unwrap();
    let approve = PairingDecision::Approve {
        user: user.id.clone(),
    };
    let r = create(
        &*store,
        &device_request(&t, user.id.as_str(), &hash(1), NOW),
        NOW,
    )
    .await;
    let e = store
        .decide_pairing_request(&t, &r.id, &approve, "admin", NOW + TTL)
        .await
        .unwrap_err();
    match e {
        StoreError::Conflict(m) => assert!(m.contains("expired"), "{m}"),
        other => panic!("unexpected {other}"),
    }
    let d = create(
        &*store,
        &device_request(&t, user.id.as_str(), &hash(2), NOW),
        NOW,
    )
    .await;
    let denied = store
        .decide_pairing_request(&t, &d.id, &PairingDecision::Deny, "admin", NOW + 1)
        .await
        .unwrap();
    assert_eq!(denied.status, PairingStatus::Denied);
    assert!(matches!(
        store
            .decide_pairing_request(&t, &d.id, &approve, "admin", NOW + 2)
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .decide_pairing_request(&t, "no-such-id", &approve, "admin", NOW + 2)
            .await,
        Err(StoreError::NotFound)
    ));
    // Neither can be issued.
    for id in [&r.id, &d.id] {
        let dev = NewDevice {
            user_id: user.id.clone(),
            token_hash: hash(50),
            label: "x".into(),
        };
        assert!(
            store
                .issue_device(&t, id, &dev, NOW + 3)
                .await
                .unwrap()
                .is_none()
        );
    }
}

async fn credentials_are_issued_once(store: Arc<dyn Store>) {
    let t = default_tenant();
    let user = store.create_user(&t, &new_user("carol")).await.unwrap();
    let r = create(
        &*store,
        &device_request(&t, user.id.as_str(), &hash(1), NOW),
        NOW,
    )
    .await;
    let dev = |n: u32| NewDevice {
        user_id: user.id.clone(),
        token_hash: hash(100 + n),
        label: "Firefox on Linux".into(),
    };
    assert!(
        store
            .issue_device(&t, &r.id, &dev(0), NOW)
            .await
            .unwrap()
            .is_none(),
        "not before approval"
    );
    store
        .decide_pairing_request(
            &t,
            &r.id,
            &PairingDecision::Approve {
                user: user.id.clone(),
            },
            "admin",
            NOW + 1,
        )
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for n in 1..=8 {
        let store = store.clone();
        let t = t.clone();
        let id = r.id.clone();
        let d = dev(n);
        #[expect(
            clippy::disallowed_methods,
            reason = "a test's own concurrent load, awaited by the test"
        )]
        tasks.push(tokio::spawn(async move {
            store.issue_device(&t, &id, &d, NOW + 2).await
        }));
    }
    let mut issued = Vec::new();
    for task in tasks {
        if let Some(d) = task.await.unwrap().unwrap() {
            issued.push(d);
        }
    }
    assert_eq!(issued.len(), 1, "one credential per approval");
    let device = &issued[0];
    assert_eq!(device.user_id, user.id);
    assert_eq!(device.label, "Firefox on Linux");
    assert_eq!(device.revoked_at, None);
    let after = store.get_pairing_request(&t, &r.id).await.unwrap().unwrap();
    assert_eq!(after.status, PairingStatus::Issued);
    assert!(
        store
            .issue_device(&t, &r.id, &dev(20), NOW + 3)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.list_devices(&t).await.unwrap().len(), 1);
}

async fn devices_are_found_by_hash_and_revoked_once(store: Arc<dyn Store>) {
    let t = default_tenant();
    let user = store.create_user(&t, &new_user("dave")).await.unwrap();
    let mut devices = Vec::new();
    for n in 1..=2 {
        let r = create(
            &*store,
            &device_request(&t, user.id.as_str(), &hash(n), NOW),
            NOW,
        )
        .await;
        store
            .decide_pairing_request(
                &t,
                &r.id,
                &PairingDecision::Approve {
                    user: user.id.clone(),
                },
                "admin",
                NOW,
            )
            .await
            .unwrap();
        let d = NewDevice {
            user_id: user.id.clone(),
            token_hash: hash(200 + n),
            label: format!("browser {n}"),
        };
        devices.push(
            store
                .issue_device(&t, &r.id, &d, NOW + i64::from(n))
                .await
                .unwrap()
                .unwrap(),
        );
    }
    let found = store
        .find_device_by_token_hash(&hash(201))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, devices[0]);
    assert!(
        store
            .find_device_by_token_hash(&hash(299))
            .await
            .unwrap()
            .is_none()
    );
    store
        .touch_device(&t, &found.id, NOW + 60_000)
        .await
        .unwrap();
    let seen = store
        .find_device_by_token_hash(&hash(201))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.last_seen_at, Some(NOW + 60_000));
    let listed = store.list_devices(&t).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].id, devices[1].id, "newest first");
    let revoked = store
        .revoke_device(&t, &found.id, NOW + 70_000)
        .await
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(NOW + 70_000));
    assert!(matches!(
        store.revoke_device(&t, &found.id, NOW + 80_000).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.revoke_device(&t, "nope", NOW).await,
        Err(StoreError::NotFound)
    ));
    let still = store
        .find_device_by_token_hash(&hash(201))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        still.revoked_at,
        Some(NOW + 70_000),
        "revoked, still findable"
    );
    // Deleting the user deletes its devices.
    store.delete_user(&t, &user.id).await.unwrap();
    assert!(
        store
            .find_device_by_token_hash(&hash(202))
            .await
            .unwrap()
            .is_none()
    );
}

async fn channel_requests_map_the_sender_on_approval(store: Arc<dyn Store>) {
    let t = default_tenant();
    let r = create(&*store, &channel_request(&t, "42", &hash(1)), NOW).await;
    assert_eq!(r.kind, PairingKind::Channel);
    assert_eq!(r.user_id, None);
    // One pending request per sender when the caller asks for that cap.
    match store
        .create_pairing_request(&channel_request(&t, "42", &hash(2)), 1, NOW + 1)
        .await
        .unwrap()
    {
        PairingCreated::TooManyPending { oldest } => assert_eq!(oldest.id, r.id),
        PairingCreated::Created(_) => panic!("the cap did not hold"),
    }
    assert!(
        store
            .get_channel_sender(&t, "telegram", "42")
            .await
            .unwrap()
            .is_none()
    );
    let user = store
        .create_user(&t, &new_user("telegram:42"))
        .await
        .unwrap();
    let approved = store
        .decide_pairing_request(
            &t,
            &r.id,
            &PairingDecision::Approve {
                user: user.id.clone(),
            },
            "cli",
            NOW + 2,
        )
        .await
        .unwrap();
    assert_eq!(approved.user_id, Some(user.id.clone()));
    let mapped = store
        .get_channel_sender(&t, "telegram", "42")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(mapped.user_id, user.id);
    assert_eq!(mapped.created_at, NOW + 2);
    // A channel request is never issued a device.
    let d = NewDevice {
        user_id: user.id.clone(),
        token_hash: hash(300),
        label: "x".into(),
    };
    assert!(
        store
            .issue_device(&t, &r.id, &d, NOW + 3)
            .await
            .unwrap()
            .is_none()
    );
    // A denied channel request maps nothing.
    let other = create(&*store, &channel_request(&t, "43", &hash(3)), NOW).await;
    store
        .decide_pairing_request(&t, &other.id, &PairingDecision::Deny, "cli", NOW + 4)
        .await
        .unwrap();
    assert!(
        store
            .get_channel_sender(&t, "telegram", "43")
            .await
            .unwrap()
            .is_none()
    );
}

async fn channel_senders_map_first_wins(store: Arc<dyn Store>) {
    let t = default_tenant();
    let u1 = store.create_user(&t, &new_user("one")).await.unwrap();
    let u2 = store.create_user(&t, &new_user("two")).await.unwrap();
    let mut tasks = Vec::new();
    for (i, u) in [&u1, &u2, &u1, &u2].into_iter().enumerate() {
        let store = store.clone();
        let t = t.clone();
        let u = u.id.clone();
        #[expect(
            clippy::disallowed_methods,
            reason = "a test's own concurrent load, awaited by the test"
        )]
        tasks.push(tokio::spawn(async move {
            store
                .map_channel_sender(&t, "discord", "abc", &u, NOW + i as i64)
                .await
        }));
    }
    let mut users = Vec::new();
    for task in tasks {
        users.push(task.await.unwrap().unwrap().user_id);
    }
    assert!(users.windows(2).all(|w| w[0] == w[1]), "{users:?}");
    let again = store
        .map_channel_sender(&t, "discord", "abc", &u2.id, NOW + 100)
        .await
        .unwrap();
    assert_eq!(again.user_id, users[0], "an existing mapping is kept");
    // The same sender id on another channel is another sender.
    let other = store
        .map_channel_sender(&t, "slack", "abc", &u2.id, NOW)
        .await
        .unwrap();
    assert_eq!(other.user_id, u2.id);
    // A mapping to a user that does not exist is refused.
    assert!(matches!(
        store
            .map_channel_sender(&t, "slack", "zzz", &"ghost".into(), NOW)
            .await,
        Err(StoreError::NotFound)
    ));
}

async fn failures_are_counted_per_window(store: Arc<dyn Store>) {
    let t = default_tenant();
    for (i, actor) in ["cli", "cli", "gateway-token"].into_iter().enumerate() {
        store
            .record_pairing_failure(&t, actor, NOW + i as i64 * 1000)
            .await
            .unwrap();
    }
    let all = store.pairing_failures(&t, NOW).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].actor, "cli");
    assert_eq!(all[0].at, NOW, "oldest first");
    assert_eq!(
        store.pairing_failures(&t, NOW + 1000).await.unwrap().len(),
        2
    );
    // Old failures are forgotten on the next record.
    let next_day = NOW + 25 * 3600 * 1000;
    store
        .record_pairing_failure(&t, "cli", next_day)
        .await
        .unwrap();
    assert_eq!(store.pairing_failures(&t, 0).await.unwrap().len(), 1);
}

async fn pairing_is_tenant_isolated(store: Arc<dyn Store>) {
    let (a, b) = two_tenants(&*store).await;
    let user = store.create_user(&a, &new_user("erin")).await.unwrap();
    let r = create(
        &*store,
        &device_request(&a, user.id.as_str(), &hash(1), NOW),
        NOW,
    )
    .await;
    assert!(
        store
            .get_pairing_request(&b, &r.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .find_pairing_request_by_code(&b, &hash(1))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .list_pairing_requests(&b, None)
            .await
            .unwrap()
            .is_empty()
    );
    let approve = PairingDecision::Approve {
        user: user.id.clone(),
    };
    assert!(matches!(
        store
            .decide_pairing_request(&b, &r.id, &approve, "x", NOW)
            .await,
        Err(StoreError::NotFound)
    ));
    // The requester's cap is per tenant too.
    for n in 2..=4 {
        create(
            &*store,
            &device_request(&b, user.id.as_str(), &hash(n), NOW),
            NOW,
        )
        .await;
    }
    store
        .decide_pairing_request(&a, &r.id, &approve, "x", NOW)
        .await
        .unwrap();
    let d = NewDevice {
        user_id: user.id.clone(),
        token_hash: hash(400),
        label: "x".into(),
    };
    assert!(
        store
            .issue_device(&b, &r.id, &d, NOW)
            .await
            .unwrap()
            .is_none()
    );
    let device = store
        .issue_device(&a, &r.id, &d, NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(device.tenant_id, a);
    assert!(store.list_devices(&b).await.unwrap().is_empty());
    assert!(matches!(
        store.revoke_device(&b, &device.id, NOW).await,
        Err(StoreError::NotFound)
    ));
    store.record_pairing_failure(&a, "cli", NOW).await.unwrap();
    assert!(store.pairing_failures(&b, 0).await.unwrap().is_empty());
    store
        .map_channel_sender(&a, "telegram", "1", &user.id, NOW)
        .await
        .unwrap();
    assert!(
        store
            .get_channel_sender(&b, "telegram", "1")
            .await
            .unwrap()
            .is_none()
    );
}
