//! The delegation history: a delegation starts running and ends once (of
//! concurrent ends exactly one stands), is announced once (of twenty
//! concurrent callers exactly one is told to announce), lists newest first
//! with every filter and page, an instance's running delegations (and only
//! its own) are interrupted across tenants, and another tenant's
//! delegations are not found. Refused input changes nothing.

use crate::harness::*;
use exoclaw_core::store::orchestration::{
    Delegation, DelegationEnd, DelegationFilter, DelegationKind, DelegationMode, DelegationStatus,
    NewDelegation,
};
use exoclaw_core::store::{Store, StoreError};
use exoclaw_core::{SessionId, TenantId, UserId};
use std::sync::Arc;

contract!(store:
    delegations_start_running_and_end_once,
    new_delegations_and_ends_are_checked,
    delegations_list_newest_first_with_filters,
    announcements_are_taken_once,
    interrupt_running_takes_only_its_owners_running_ones,
    delegations_are_tenant_isolated,
);

const T0: i64 = 1_800_000_000_000;
const DIGEST: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn new(caller: &str, target: &str, owner: &str) -> NewDelegation {
    NewDelegation {
        kind: DelegationKind::Delegate,
        mode: DelegationMode::Async,
        caller_agent: caller.into(),
        user_id: UserId::new("alice"),
        caller_session: Some(SessionId::new("s-caller")),
        target_agent: target.into(),
        parent_id: None,
        task_digest: DIGEST.to_owned(),
        parent_trace_id: Some("trace-parent".to_owned()),
        owner: owner.to_owned(),
    }
}

fn end(status: DelegationStatus) -> DelegationEnd {
    DelegationEnd {
        status,
        child_trace_id: Some("trace-child".to_owned()),
        child_session: Some(SessionId::new("s-child")),
        input_tokens: 120,
        output_tokens: 45,
        cost_micros: 3_300,
        error_code: None,
    }
}

async fn start(store: &dyn Store, t: &TenantId, new: &NewDelegation, at: i64) -> Delegation {
    store.create_delegation(t, new, at).await.unwrap()
}

async fn delegations_start_running_and_end_once(store: Arc<dyn Store>) {
    let t = default_tenant();
    let created = start(&*store, &t, &new("lead", "coder", "gw-1"), T0).await;
    let expected = Delegation {
        id: created.id.clone(),
        tenant_id: t.clone(),
        kind: DelegationKind::Delegate,
        mode: DelegationMode::Async,
        caller_agent: "lead".into(),
        user_id: UserId::new("alice"),
        caller_session: Some(SessionId::new("s-caller")),
        target_agent: "coder".into(),
        parent_id: None,
        task_digest: DIGEST.to_owned(),
        status: DelegationStatus::Running,
        parent_trace_id: Some("trace-parent".to_owned()),
        child_trace_id: None,
        child_session: None,
        owner: "gw-1".to_owned(),
        started_at: T0,
        finished_at: None,
        input_tokens: 0,
        output_tokens: 0,
        cost_micros: 0,
        error_code: None,
        announced: false,
    };
    assert_eq!(created, expected);
    assert_eq!(
        store.get_delegation(&t, &created.id).await.unwrap(),
        Some(expected.clone())
    );

    // A spawn of a chain: its parent named, answered by its caller.
    let spawn = start(
        &*store,
        &t,
        &NewDelegation {
            kind: DelegationKind::Spawn,
            mode: DelegationMode::Sync,
            parent_id: Some(created.id.clone()),
            caller_session: None,
            parent_trace_id: None,
            ..new("coder", "coder", "gw-1")
        },
        T0 + 1,
    )
    .await;
    assert_eq!(
        (
            spawn.kind,
            spawn.mode,
            spawn.parent_id.as_deref(),
            spawn.caller_session
        ),
        (
            DelegationKind::Spawn,
            DelegationMode::Sync,
            Some(created.id.as_str()),
            None
        )
    );

    // Twelve ends at once: exactly one stands, the others are conflicts.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..12 {
        let store = store.clone();
        let (t, id) = (t.clone(), created.id.clone());
        tasks.spawn(async move {
            let status = if i % 2 == 0 {
                DelegationStatus::Done
            } else {
                DelegationStatus::Failed
            };
            store
                .finish_delegation(&t, &id, &end(status), T0 + 100 + i)
                .await
        });
    }
    let mut won = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined.unwrap() {
            Ok(d) => won.push(d),
            Err(StoreError::Conflict(m)) => assert!(m.contains("already ended"), "{m}"),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(won.len(), 1, "{won:?}");
    let ended = won.remove(0);
    assert_eq!(
        (
            ended.child_trace_id.as_deref(),
            ended.child_session.as_ref().map(SessionId::as_str),
            ended.input_tokens,
            ended.output_tokens,
            ended.cost_micros,
            ended.announced
        ),
        (Some("trace-child"), Some("s-child"), 120, 45, 3_300, false)
    );
    assert!(ended.finished_at.is_some_and(|f| f >= T0 + 100));
    assert!(matches!(
        ended.status,
        DelegationStatus::Done | DelegationStatus::Failed
    ));
    assert_eq!(
        store.get_delegation(&t, &created.id).await.unwrap(),
        Some(ended.clone())
    );

    // A later end, of any kind, changes nothing.
    let err = store
        .finish_delegation(&t, &created.id, &end(DelegationStatus::Cancelled), T0 + 500)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert_eq!(
        store.get_delegation(&t, &created.id).await.unwrap(),
        Some(ended)
    );

    // A failure carries its code.
    let failed = store
        .finish_delegation(
            &t,
            &spawn.id,
            &DelegationEnd {
                error_code: Some("delegation.timeout".to_owned()),
                ..end(DelegationStatus::Failed)
            },
            T0 + 600,
        )
        .await
        .unwrap();
    assert_eq!(
        (
            failed.status,
            failed.error_code.as_deref(),
            failed.finished_at
        ),
        (
            DelegationStatus::Failed,
            Some("delegation.timeout"),
            Some(T0 + 600)
        )
    );

    let err = store
        .finish_delegation(&t, "nope", &end(DelegationStatus::Done), T0)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
    assert_eq!(store.get_delegation(&t, "nope").await.unwrap(), None);
}

async fn new_delegations_and_ends_are_checked(store: Arc<dyn Store>) {
    let t = default_tenant();
    let cases: Vec<(NewDelegation, &str)> = vec![
        (
            NewDelegation {
                kind: DelegationKind::Spawn,
                ..new("lead", "coder", "gw")
            },
            "spawn",
        ),
        (
            NewDelegation {
                task_digest: DIGEST.to_uppercase(),
                ..new("lead", "coder", "gw")
            },
            "task digest",
        ),
        (
            NewDelegation {
                task_digest: "abc".to_owned(),
                ..new("lead", "coder", "gw")
            },
            "task digest",
        ),
        (new("lead", "coder", ""), "delegation owner"),
        (new("Lead", "coder", "gw"), "delegation caller agent"),
        (new("lead", "co der", "gw"), "delegation target agent"),
        (
            NewDelegation {
                user_id: UserId::new(""),
                ..new("lead", "coder", "gw")
            },
            "delegation user id",
        ),
        (
            NewDelegation {
                parent_trace_id: Some("x".repeat(257)),
                ..new("lead", "coder", "gw")
            },
            "delegation parent trace id",
        ),
    ];
    for (bad, what) in cases {
        let err = store.create_delegation(&t, &bad, T0).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Invalid(m) if m.contains(what)),
            "{what}: {err}"
        );
    }
    let none = DelegationFilter::default();
    assert!(store.list_delegations(&t, &none).await.unwrap().is_empty());

    let running = start(&*store, &t, &new("lead", "coder", "gw"), T0).await;
    let ends = [
        (end(DelegationStatus::Running), "not running"),
        (
            DelegationEnd {
                input_tokens: -1,
                ..end(DelegationStatus::Done)
            },
            "input_tokens",
        ),
        (
            DelegationEnd {
                cost_micros: -5,
                ..end(DelegationStatus::Done)
            },
            "cost_micros",
        ),
        (
            DelegationEnd {
                error_code: Some(String::new()),
                ..end(DelegationStatus::Failed)
            },
            "error code",
        ),
    ];
    for (bad, what) in ends {
        let err = store
            .finish_delegation(&t, &running.id, &bad, T0 + 1)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Invalid(m) if m.contains(what)),
            "{what}: {err}"
        );
    }
    assert_eq!(
        store.get_delegation(&t, &running.id).await.unwrap(),
        Some(running)
    );
    // An unknown tenant has nothing to start under.
    let err = store
        .create_delegation(&tid("nope"), &new("lead", "coder", "gw"), T0)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
}

async fn delegations_list_newest_first_with_filters(store: Arc<dyn Store>) {
    let t = default_tenant();
    // 0 lead->coder, 1 lead->writer, 2 coder->writer (bob), 3 spawn of
    // writer, 4 lead->coder finished; started a second apart.
    let specs = [
        new("lead", "coder", "gw"),
        new("lead", "writer", "gw"),
        NewDelegation {
            user_id: UserId::new("bob"),
            ..new("coder", "writer", "gw")
        },
        NewDelegation {
            kind: DelegationKind::Spawn,
            ..new("writer", "writer", "gw")
        },
        new("lead", "coder", "gw"),
    ];
    let mut ids = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let at = T0 + 1_000 * i64::try_from(i).unwrap();
        ids.push(start(&*store, &t, spec, at).await.id);
    }
    store
        .finish_delegation(&t, &ids[4], &end(DelegationStatus::Done), T0 + 9_000)
        .await
        .unwrap();
    let list = |filter: DelegationFilter| {
        let store = store.clone();
        let t = t.clone();
        let ids = ids.clone();
        async move {
            store
                .list_delegations(&t, &filter)
                .await
                .unwrap()
                .iter()
                .map(|d| ids.iter().position(|i| *i == d.id).unwrap())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list(DelegationFilter::default()).await, [4, 3, 2, 1, 0]);
    let by = |f: fn(&mut DelegationFilter)| {
        let mut filter = DelegationFilter::default();
        f(&mut filter);
        filter
    };
    assert_eq!(
        list(by(|f| f.caller_agent = Some("lead".into()))).await,
        [4, 1, 0]
    );
    assert_eq!(
        list(by(|f| f.target_agent = Some("writer".into()))).await,
        [3, 2, 1]
    );
    assert_eq!(
        list(by(|f| f.user_id = Some(UserId::new("bob")))).await,
        [2]
    );
    assert_eq!(
        list(by(|f| f.status = Some(DelegationStatus::Done))).await,
        [4]
    );
    assert_eq!(
        list(by(|f| f.status = Some(DelegationStatus::Running))).await,
        [3, 2, 1, 0]
    );
    assert_eq!(
        list(by(|f| f.kind = Some(DelegationKind::Spawn))).await,
        [3]
    );
    assert_eq!(
        list(by(|f| f.before = Some(T0 + 2_000))).await,
        [1, 0],
        "started before"
    );
    assert_eq!(list(by(|f| f.limit = 2)).await, [4, 3]);
    assert_eq!(
        list(by(|f| {
            f.caller_agent = Some("lead".into());
            f.target_agent = Some("coder".into());
            f.status = Some(DelegationStatus::Running);
        }))
        .await,
        [0],
        "filters combine"
    );
    // Paging backwards: each page starts before the last one's oldest.
    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .list_delegations(
                &t,
                &DelegationFilter {
                    before,
                    limit: 2,
                    ..DelegationFilter::default()
                },
            )
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        before = Some(last.started_at);
        pages.push(page.len());
    }
    assert_eq!(pages, [2, 2, 1]);

    // 0 is a page of 100.
    for i in 0..101 {
        start(&*store, &t, &new("bulk", "coder", "gw"), T0 + 100_000 + i).await;
    }
    assert_eq!(
        store
            .list_delegations(&t, &DelegationFilter::default())
            .await
            .unwrap()
            .len(),
        100
    );
    let all = store
        .list_delegations(
            &t,
            &DelegationFilter {
                limit: u32::MAX,
                ..DelegationFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(all.len(), 106);

    // Seven in one millisecond: paging by (started_at, id) skips none.
    let mut tied = Vec::new();
    for _ in 0..7 {
        tied.push(
            start(&*store, &t, &new("tie", "coder", "gw"), T0 + 500_000)
                .await
                .id,
        );
    }
    let mut seen = Vec::new();
    let mut cursor: Option<(i64, String)> = None;
    loop {
        let page = store
            .list_delegations(
                &t,
                &DelegationFilter {
                    caller_agent: Some("tie".into()),
                    before: cursor.as_ref().map(|c| c.0),
                    before_id: cursor.as_ref().map(|c| c.1.clone()),
                    limit: 3,
                    ..DelegationFilter::default()
                },
            )
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        cursor = Some((last.started_at, last.id.clone()));
        seen.extend(page.into_iter().map(|d| d.id));
    }
    tied.sort();
    seen.sort();
    assert_eq!(seen, tied, "each once");
}

async fn announcements_are_taken_once(store: Arc<dyn Store>) {
    let (a, b) = two_tenants(&*store).await;
    for round in 0..3 {
        let d = start(&*store, &a, &new("lead", "coder", "gw"), T0 + round).await;
        store
            .finish_delegation(&a, &d.id, &end(DelegationStatus::Done), T0 + 10)
            .await
            .unwrap();
        let go = Arc::new(tokio::sync::Barrier::new(20));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let (store, a, id, go) = (store.clone(), a.clone(), d.id.clone(), go.clone());
            tasks.spawn(async move {
                go.wait().await;
                store.mark_announced(&a, &id).await.unwrap()
            });
        }
        let mut marked = 0;
        while let Some(joined) = tasks.join_next().await {
            marked += usize::from(joined.unwrap());
        }
        assert_eq!(marked, 1, "round {round}");
        assert!(!store.mark_announced(&a, &d.id).await.unwrap(), "once only");
        assert!(
            store
                .get_delegation(&a, &d.id)
                .await
                .unwrap()
                .unwrap()
                .announced
        );
        // Another tenant cannot mark (or see) it.
        let err = store.mark_announced(&b, &d.id).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound), "{err}");
    }
    let err = store.mark_announced(&a, "nope").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
}

async fn interrupt_running_takes_only_its_owners_running_ones(store: Arc<dyn Store>) {
    let (a, b) = two_tenants(&*store).await;
    let mine_a = start(&*store, &a, &new("lead", "coder", "gw-1"), T0).await;
    let mine_b = start(&*store, &b, &new("lead", "coder", "gw-1"), T0 + 1).await;
    let finished = start(&*store, &a, &new("lead", "coder", "gw-1"), T0 + 2).await;
    store
        .finish_delegation(&a, &finished.id, &end(DelegationStatus::Done), T0 + 3)
        .await
        .unwrap();
    let theirs = start(&*store, &a, &new("lead", "coder", "gw-2"), T0 + 4).await;
    let prefix = start(&*store, &a, &new("lead", "coder", "gw-10"), T0 + 5).await;

    let interrupted = store.interrupt_running("gw-1", T0 + 50).await.unwrap();
    let got: Vec<_> = interrupted
        .iter()
        .map(|d| (d.tenant_id.as_str(), d.id.as_str(), d.status, d.finished_at))
        .collect();
    assert_eq!(
        got,
        [
            (
                "default",
                mine_a.id.as_str(),
                DelegationStatus::Interrupted,
                Some(T0 + 50)
            ),
            (
                "other",
                mine_b.id.as_str(),
                DelegationStatus::Interrupted,
                Some(T0 + 50)
            ),
        ]
    );
    assert_eq!(
        store.get_delegation(&b, &mine_b.id).await.unwrap().as_ref(),
        Some(&interrupted[1])
    );
    // Another owner's, and a finished one, are untouched.
    for (t, d) in [(&a, &theirs), (&a, &prefix)] {
        assert_eq!(
            store.get_delegation(t, &d.id).await.unwrap().as_ref(),
            Some(d)
        );
    }
    assert_eq!(
        store
            .get_delegation(&a, &finished.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        DelegationStatus::Done
    );
    // Nothing left to interrupt; an interrupted one does not end again.
    assert!(
        store
            .interrupt_running("gw-1", T0 + 60)
            .await
            .unwrap()
            .is_empty()
    );
    let err = store
        .finish_delegation(&a, &mine_a.id, &end(DelegationStatus::Done), T0 + 70)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert!(
        store
            .interrupt_running("gw-9", T0)
            .await
            .unwrap()
            .is_empty()
    );
    let err = store.interrupt_running("", T0).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    assert_eq!(
        store
            .get_delegation(&a, &theirs.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        DelegationStatus::Running
    );
}

async fn delegations_are_tenant_isolated(store: Arc<dyn Store>) {
    let (a, b) = two_tenants(&*store).await;
    let in_a = start(&*store, &a, &new("lead", "coder", "gw"), T0).await;
    let in_b = start(&*store, &b, &new("lead", "coder", "gw"), T0).await;
    assert_eq!(store.get_delegation(&b, &in_a.id).await.unwrap(), None);
    let err = store
        .finish_delegation(&b, &in_a.id, &end(DelegationStatus::Done), T0 + 1)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
    assert_eq!(
        store.get_delegation(&a, &in_a.id).await.unwrap(),
        Some(in_a.clone())
    );
    let ids = |list: Vec<Delegation>| list.into_iter().map(|d| d.id).collect::<Vec<_>>();
    let all = DelegationFilter::default();
    assert_eq!(
        ids(store.list_delegations(&a, &all).await.unwrap()),
        [in_a.id]
    );
    assert_eq!(
        ids(store.list_delegations(&b, &all).await.unwrap()),
        [in_b.id]
    );
    assert!(
        store
            .list_delegations(&tid("nope"), &all)
            .await
            .unwrap()
            .is_empty()
    );
}
