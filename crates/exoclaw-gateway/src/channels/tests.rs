//! The sender policy driven by a fake inbound source (a scripted sequence of
//! messages, as an adapter would receive them) on real stores: SQLite, and
//! PostgreSQL when the test cluster is given.

use super::*;
use crate::channels::{Chat, Inbound};
use crate::config::file::GroupsConfig;
use crate::pairing::{PairingError, Verdict};
use exoclaw_core::DEFAULT_TENANT;

/// A fake channel: messages go through the gate one by one, in order.
struct FakeSource {
    channel: &'static str,
}

impl FakeSource {
    fn dm(&self, sender: &str) -> Inbound {
        Inbound {
            channel: self.channel.to_owned(),
            sender_id: sender.to_owned(),
            sender_name: format!("Sender {sender}"),
            chat: Chat::Direct,
            mentioned: false,
            text: "hello".to_owned(),
        }
    }

    fn group(&self, sender: &str, group: &str, mentioned: bool) -> Inbound {
        Inbound {
            chat: Chat::Group {
                id: group.to_owned(),
            },
            mentioned,
            ..self.dm(sender)
        }
    }
}

async fn drive(gate: &ChannelGate, messages: &[Inbound]) -> Vec<Admission> {
    let mut out = Vec::new();
    for m in messages {
        out.push(gate.admit(m).await.unwrap());
    }
    out
}

fn tenant() -> TenantId {
    TenantId::new(DEFAULT_TENANT)
}

fn gate(store: &Arc<dyn Store>, config: &[(&str, ChannelConfig)], ttl: Duration) -> ChannelGate {
    ChannelGate::new(
        store.clone(),
        tenant(),
        config
            .iter()
            .map(|(n, c)| ((*n).to_owned(), c.clone()))
            .collect(),
        ttl,
    )
}

fn policy(dm_policy: DmPolicy, allow_from: &[&str]) -> ChannelConfig {
    ChannelConfig {
        dm_policy,
        allow_from: allow_from.iter().map(|s| (*s).to_owned()).collect(),
        groups: GroupsConfig::default(),
        ..ChannelConfig::default()
    }
}

const TTL: Duration = Duration::from_secs(600);

#[track_caller]
fn delivered(a: &Admission) -> UserId {
    match a {
        Admission::Deliver { user, tenant: t } => {
            assert_eq!(t, &tenant());
            user.clone()
        }
        other => panic!("not delivered: {other:?}"),
    }
}

#[track_caller]
fn ignored(a: &Admission) -> IgnoreReason {
    match a {
        Admission::Ignore { reason } => *reason,
        other => panic!("not ignored: {other:?}"),
    }
}

async fn user_name(store: &dyn Store, id: &UserId) -> String {
    store.get_user(&tenant(), id).await.unwrap().unwrap().name
}

async fn pairing_then_approval_then_delivery(store: Arc<dyn Store>) {
    let src = FakeSource {
        channel: "telegram",
    };
    let g = gate(&store, &[("telegram", ChannelConfig::default())], TTL);
    let out = drive(&g, &[src.dm("42"), src.dm("42"), src.dm("42")]).await;
    let Admission::PairingCode { code, .. } = &out[0] else {
        panic!("{:?}", out[0])
    };
    assert!(matches!(out[1], Admission::PairingPending { .. }));
    assert!(matches!(out[2], Admission::PairingPending { .. }));
    assert!(
        store.list_users(&tenant()).await.unwrap().is_empty(),
        "no user before approval"
    );
    // The admin approves with the same command as for browsers.
    let approved = pairing::decide(
        store.as_ref(),
        &tenant(),
        code.expose(),
        Verdict::Approve,
        &pairing::Approver::owner("cli", &[]),
        None,
    )
    .await
    .unwrap();
    let out = drive(&g, &[src.dm("42"), src.dm("42")]).await;
    let first = delivered(&out[0]);
    assert_eq!(
        delivered(&out[1]),
        first,
        "the same sender is the same user"
    );
    assert_eq!(approved.user_id.as_ref(), Some(&first));
    assert_eq!(user_name(&*store, &first).await, "telegram:42");
    let u = store.get_user(&tenant(), &first).await.unwrap().unwrap();
    assert_eq!(u.role, exoclaw_core::model::Role::User);
    // The code is spent.
    let e = pairing::decide(
        store.as_ref(),
        &tenant(),
        code.expose(),
        Verdict::Approve,
        &pairing::Approver::owner("cli", &[]),
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, PairingError::AlreadyDecided(_)), "{e}");
    // Disabling the user silences the sender.
    store
        .set_user_disabled(&tenant(), &first, true)
        .await
        .unwrap();
    assert_eq!(
        ignored(&g.admit(&src.dm("42")).await.unwrap()),
        IgnoreReason::UserDisabled
    );
    // Another sender on the same channel pairs separately; a denial maps
    // nothing and a new message after the denial gets a new code.
    let Admission::PairingCode { code: other, .. } = g.admit(&src.dm("43")).await.unwrap() else {
        panic!("no code")
    };
    pairing::decide(
        store.as_ref(),
        &tenant(),
        other.expose(),
        Verdict::Deny,
        &pairing::Approver::owner("cli", &[]),
        None,
    )
    .await
    .unwrap();
    assert!(matches!(
        g.admit(&src.dm("43")).await.unwrap(),
        Admission::PairingCode { .. }
    ));
}

async fn a_fresh_code_only_after_expiry(store: Arc<dyn Store>) {
    let src = FakeSource { channel: "discord" };
    let g = gate(
        &store,
        &[("discord", ChannelConfig::default())],
        Duration::from_millis(300),
    );
    let Admission::PairingCode { code: first, .. } = g.admit(&src.dm("7")).await.unwrap() else {
        panic!("no code")
    };
    assert!(matches!(
        g.admit(&src.dm("7")).await.unwrap(),
        Admission::PairingPending { .. }
    ));
    tokio::time::sleep(Duration::from_millis(350)).await;
    let Admission::PairingCode { code: second, .. } = g.admit(&src.dm("7")).await.unwrap() else {
        panic!("no fresh code after expiry")
    };
    assert_ne!(first.expose(), second.expose());
    // The expired code no longer approves.
    let e = pairing::decide(
        store.as_ref(),
        &tenant(),
        first.expose(),
        Verdict::Approve,
        &pairing::Approver::owner("cli", &[]),
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, PairingError::InvalidCode), "{e}");
}

async fn allowlist_admits_only_listed_senders(store: Arc<dyn Store>) {
    let src = FakeSource { channel: "slack" };
    let g = gate(
        &store,
        &[("slack", policy(DmPolicy::Allowlist, &["U1"]))],
        TTL,
    );
    let out = drive(&g, &[src.dm("U1"), src.dm("U2"), src.dm("U1")]).await;
    let u1 = delivered(&out[0]);
    assert_eq!(ignored(&out[1]), IgnoreReason::NotAllowed);
    assert_eq!(delivered(&out[2]), u1);
    assert_eq!(user_name(&*store, &u1).await, "slack:U1");
    assert!(
        store
            .list_pairing_requests(&tenant(), None)
            .await
            .unwrap()
            .is_empty(),
        "no pairing under allowlist"
    );
    // A sender paired earlier but not listed is still refused.
    let paired = pairing::channel_user(store.as_ref(), &tenant(), "slack", "U3")
        .await
        .unwrap();
    store
        .map_channel_sender(&tenant(), "slack", "U3", &paired, 0)
        .await
        .unwrap();
    assert_eq!(
        ignored(&g.admit(&src.dm("U3")).await.unwrap()),
        IgnoreReason::NotAllowed
    );
    // Under pairing, allow_from admits without a code.
    let g = gate(
        &store,
        &[("slack", policy(DmPolicy::Pairing, &["U9"]))],
        TTL,
    );
    let u9 = delivered(&g.admit(&src.dm("U9")).await.unwrap());
    assert_eq!(user_name(&*store, &u9).await, "slack:U9");
}

async fn open_maps_every_sender_to_its_own_user(store: Arc<dyn Store>) {
    let src = FakeSource { channel: "webhook" };
    let g = gate(&store, &[("webhook", policy(DmPolicy::Open, &[]))], TTL);
    let out = drive(&g, &[src.dm("a"), src.dm("b"), src.dm("a"), src.dm("b")]).await;
    let (a, b) = (delivered(&out[0]), delivered(&out[1]));
    assert_ne!(a, b);
    assert_eq!(delivered(&out[2]), a);
    assert_eq!(delivered(&out[3]), b);
    assert_eq!(user_name(&*store, &a).await, "webhook:a");
    // Concurrent first messages of one sender still make one user.
    let g = Arc::new(g);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let g = g.clone();
        let m = src.dm("c");
        #[expect(
            clippy::disallowed_methods,
            reason = "a test's own concurrent load, awaited by the test"
        )]
        tasks.push(tokio::spawn(async move { g.admit(&m).await.unwrap() }));
    }
    let mut users = Vec::new();
    for t in tasks {
        users.push(delivered(&t.await.unwrap()));
    }
    assert!(users.windows(2).all(|w| w[0] == w[1]), "{users:?}");
}

async fn disabled_ignores_direct_messages(store: Arc<dyn Store>) {
    let src = FakeSource {
        channel: "telegram",
    };
    let g = gate(
        &store,
        &[("telegram", policy(DmPolicy::Disabled, &[]))],
        TTL,
    );
    assert_eq!(
        ignored(&g.admit(&src.dm("1")).await.unwrap()),
        IgnoreReason::DmDisabled
    );
    // Unknown channels and impossible sender ids are ignored too.
    let other = FakeSource { channel: "irc" };
    assert_eq!(
        ignored(&g.admit(&other.dm("1")).await.unwrap()),
        IgnoreReason::ChannelNotConfigured
    );
    let g = gate(&store, &[("telegram", ChannelConfig::default())], TTL);
    for bad in ["", " ", "a\nb", &"x".repeat(257)] {
        assert_eq!(
            ignored(&g.admit(&src.dm(bad)).await.unwrap()),
            IgnoreReason::InvalidSender
        );
    }
    assert!(
        store
            .list_pairing_requests(&tenant(), None)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn groups_need_an_allowed_group_and_a_mention(store: Arc<dyn Store>) {
    let src = FakeSource {
        channel: "telegram",
    };
    let mut cfg = ChannelConfig::default();
    cfg.groups.allow = vec!["g1".to_owned()];
    let g = gate(&store, &[("telegram", cfg.clone())], TTL);
    let out = drive(
        &g,
        &[
            src.group("5", "g2", true),
            src.group("5", "g1", false),
            src.group("5", "g1", true),
        ],
    )
    .await;
    assert_eq!(ignored(&out[0]), IgnoreReason::GroupNotAllowed);
    assert_eq!(ignored(&out[1]), IgnoreReason::NotMentioned);
    assert_eq!(
        ignored(&out[2]),
        IgnoreReason::UnpairedSender,
        "no code in a group"
    );
    assert!(
        store
            .list_pairing_requests(&tenant(), None)
            .await
            .unwrap()
            .is_empty()
    );
    // Once paired by direct message, the sender is heard in the group.
    let Admission::PairingCode { code, .. } = g.admit(&src.dm("5")).await.unwrap() else {
        panic!("no code")
    };
    pairing::decide(
        store.as_ref(),
        &tenant(),
        code.expose(),
        Verdict::Approve,
        &pairing::Approver::owner("cli", &[]),
        None,
    )
    .await
    .unwrap();
    let in_group = delivered(&g.admit(&src.group("5", "g1", true)).await.unwrap());
    assert_eq!(delivered(&g.admit(&src.dm("5")).await.unwrap()), in_group);
    assert_eq!(
        ignored(&g.admit(&src.group("5", "g1", false)).await.unwrap()),
        IgnoreReason::NotMentioned
    );
    // require_mention off, any group.
    cfg.groups = GroupsConfig {
        require_mention: false,
        allow: vec!["*".to_owned()],
    };
    let g = gate(&store, &[("telegram", cfg)], TTL);
    assert_eq!(
        delivered(&g.admit(&src.group("5", "g9", false)).await.unwrap()),
        in_group
    );
    // Under open, group senders are mapped like direct ones.
    let mut open = policy(DmPolicy::Open, &[]);
    open.groups.allow = vec!["g1".to_owned()];
    let g = gate(&store, &[("telegram", open)], TTL);
    let u = delivered(&g.admit(&src.group("77", "g1", true)).await.unwrap());
    assert_eq!(user_name(&*store, &u).await, "telegram:77");
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

on_every_store!(
    pairing_then_approval_then_delivery,
    a_fresh_code_only_after_expiry,
    allowlist_admits_only_listed_senders,
    open_maps_every_sender_to_its_own_user,
    disabled_ignores_direct_messages,
    groups_need_an_allowed_group_and_a_mention,
);
