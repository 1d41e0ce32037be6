//! The usage ledger: exact integer sums per budget scope (model, agent,
//! user), the `since` window (inclusive), entries without an agent or user,
//! bad values, and tenant isolation.

use crate::harness::*;
use exoclaw_core::provider::Usage;
use exoclaw_core::store::{Store, StoreError};
use exoclaw_core::trace::{
    BudgetUnit, BudgetWindow, DAY_MS, NewReservation, Reserved, SpendScope, TraceWrite,
    UsageBucket, UsageEntry, UsageGroup, UsageQuery,
};
use exoclaw_core::{AgentId, TenantId, UserId};
use std::sync::Arc;

contract!(store:
    reservations_hold_until_settled_and_never_overshoot,
    spend_is_summed_per_scope,
    spend_counts_only_entries_since,
    usage_refuses_unstorable_values,
    spend_is_tenant_isolated,
    usage_is_reported_per_day_and_key,
    budget_use_counts_the_ledger_and_live_reservations,
);
contract!(db: the_since_bound_is_inclusive_and_sums_are_exact);

fn entry(
    tenant: &TenantId,
    model: &str,
    agent: Option<&str>,
    user: Option<&str>,
    cost: i64,
) -> UsageEntry {
    UsageEntry {
        tenant_id: tenant.clone(),
        provider: "anthropic".to_owned(),
        model: model.to_owned(),
        agent_id: agent.map(AgentId::new),
        user_id: user.map(UserId::new),
        usage: Usage {
            input_tokens: 100,
            output_tokens: 20,
            cache_read_tokens: 5,
            cache_write_tokens: 1,
            estimated: false,
        },
        cost_micros: cost,
    }
}

fn model(m: &str) -> SpendScope {
    SpendScope::Model(m.to_owned())
}

fn agent(a: &str) -> SpendScope {
    SpendScope::Agent(AgentId::new(a))
}

fn user(u: &str) -> SpendScope {
    SpendScope::User(UserId::new(u))
}

async fn spend_is_summed_per_scope(store: Arc<dyn Store>) {
    let t = default_tenant();
    for e in [
        entry(&t, "m1", Some("a1"), Some("u1"), 1_000),
        entry(&t, "m1", Some("a2"), Some("u1"), 20_000),
        entry(&t, "m2", Some("a1"), Some("u2"), 300_000),
        entry(&t, "m2", None, None, 4_000_000),
        entry(&t, "m3", Some("a2"), None, 0),
    ] {
        store.record_usage(&e).await.unwrap();
    }
    let spend = |scope: SpendScope| {
        let store = store.clone();
        let t = t.clone();
        async move { store.spend_since(&t, &scope, 0).await.unwrap() }
    };
    assert_eq!(spend(model("m1")).await, 21_000);
    assert_eq!(spend(model("m2")).await, 4_300_000);
    assert_eq!(spend(model("m3")).await, 0);
    assert_eq!(spend(model("m4")).await, 0, "no entries");
    assert_eq!(spend(agent("a1")).await, 301_000);
    assert_eq!(spend(agent("a2")).await, 20_000);
    assert_eq!(spend(agent("a3")).await, 0);
    assert_eq!(spend(user("u1")).await, 21_000);
    assert_eq!(spend(user("u2")).await, 300_000);
    assert_eq!(
        spend(user("")).await,
        0,
        "no agent/user is not the empty id"
    );
    // scopes do not leak into each other: a model named like an agent
    assert_eq!(spend(model("a1")).await, 0);
}

async fn spend_counts_only_entries_since(store: Arc<dyn Store>) {
    let t = default_tenant();
    let before_first = now_millis();
    store
        .record_usage(&entry(&t, "m1", Some("a1"), Some("u1"), 7))
        .await
        .unwrap();
    tick().await;
    let between = now_millis();
    tick().await;
    store
        .record_usage(&entry(&t, "m1", Some("a1"), Some("u1"), 11))
        .await
        .unwrap();
    tick().await;
    let after_last = now_millis();
    for scope in [model("m1"), agent("a1"), user("u1")] {
        assert_eq!(
            store.spend_since(&t, &scope, before_first).await.unwrap(),
            18
        );
        assert_eq!(store.spend_since(&t, &scope, between).await.unwrap(), 11);
        assert_eq!(store.spend_since(&t, &scope, after_last).await.unwrap(), 0);
        assert_eq!(store.spend_since(&t, &scope, i64::MIN).await.unwrap(), 18);
        assert_eq!(store.spend_since(&t, &scope, i64::MAX).await.unwrap(), 0);
    }
}

async fn the_since_bound_is_inclusive_and_sums_are_exact(db: &TestDb) {
    // Rows at known times; costs around 2^53 that a float sum would round.
    let sql = "INSERT INTO usage_ledger (id, tenant_id, at, provider, model, agent_id, user_id, \
               input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_micros) \
               VALUES \
               ('l1', 'default', 1000, 'p', 'm1', 'a1', 'u1', 0, 0, 0, 0, 9007199254740993), \
               ('l2', 'default', 2000, 'p', 'm1', 'a1', 'u1', 0, 0, 0, 0, 3), \
               ('l3', 'default', 3000, 'p', 'm1', 'a1', 'u1', 0, 0, 0, 0, 9007199254740993)";
    assert_eq!(db.raw.exec(sql, sql).await.unwrap(), 3);
    let t = default_tenant();
    for scope in [model("m1"), agent("a1"), user("u1")] {
        let spend = |since| {
            let store = db.store.clone();
            let (t, scope) = (t.clone(), scope.clone());
            async move { store.spend_since(&t, &scope, since).await.unwrap() }
        };
        assert_eq!(spend(0).await, 18_014_398_509_481_989);
        assert_eq!(spend(1000).await, 18_014_398_509_481_989);
        assert_eq!(spend(1001).await, 9_007_199_254_740_996);
        assert_eq!(
            spend(2000).await,
            9_007_199_254_740_996,
            "at == since counts"
        );
        assert_eq!(spend(2001).await, 9_007_199_254_740_993);
        assert_eq!(spend(3000).await, 9_007_199_254_740_993);
        assert_eq!(spend(3001).await, 0);
    }
}

async fn usage_refuses_unstorable_values(store: Arc<dyn Store>) {
    let t = default_tenant();
    let err = store
        .record_usage(&entry(&t, "m1", Some("a1"), Some("u1"), -1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    let mut huge = entry(&t, "m1", Some("a1"), Some("u1"), 1);
    huge.usage.cache_write_tokens = u64::MAX;
    let err = store.record_usage(&huge).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    let err = store
        .record_usage(&entry(&tid("no-such-tenant"), "m1", None, None, 1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err}");
    assert_eq!(store.spend_since(&t, &model("m1"), 0).await.unwrap(), 0);
}

async fn spend_is_tenant_isolated(store: Arc<dyn Store>) {
    let (a, b) = two_tenants(&*store).await;
    store
        .record_usage(&entry(&a, "m1", Some("a1"), Some("u1"), 500))
        .await
        .unwrap();
    store
        .record_usage(&entry(&b, "m1", Some("a1"), Some("u1"), 70))
        .await
        .unwrap();
    for scope in [model("m1"), agent("a1"), user("u1")] {
        assert_eq!(store.spend_since(&a, &scope, 0).await.unwrap(), 500);
        assert_eq!(store.spend_since(&b, &scope, 0).await.unwrap(), 70);
        assert_eq!(
            store
                .spend_since(&tid("no-such-tenant"), &scope, 0)
                .await
                .unwrap(),
            0
        );
    }
}

/// Now, in Unix milliseconds (the clock the store stamps entries with).
fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .try_into()
        .unwrap()
}

fn reservation(tenant: &TenantId, at: i64, micros: i64, tokens: i64) -> NewReservation {
    NewReservation {
        tenant_id: tenant.clone(),
        model: "m1".to_owned(),
        agent_id: Some(AgentId::new("a1")),
        user_id: Some(UserId::new("u1")),
        cost_micros: micros,
        tokens,
        at,
        expires_at: at + 60_000,
    }
}

/// Reservations count with the ledger in every window, are replaced by the
/// entry when settled, released without one, lapse when expired, and
/// concurrent reservations never pass a limit together.
async fn reservations_hold_until_settled_and_never_overshoot(store: Arc<dyn Store>) {
    let t = default_tenant();
    let now = 1_000_000;
    let windows = [
        BudgetWindow {
            scope: SpendScope::Tenant,
            since: 0,
            unit: BudgetUnit::Tokens,
            limit: 1_000,
        },
        BudgetWindow {
            scope: model("m1"),
            since: 0,
            unit: BudgetUnit::Micros,
            limit: 10_000_000,
        },
    ];
    let held = |r: Reserved| match r {
        Reserved::Held(id) => id,
        Reserved::Refused { window, used } => panic!("refused by {window} at {used}"),
    };
    let a = held(
        store
            .reserve(&reservation(&t, now, 1, 600), &windows)
            .await
            .unwrap(),
    );
    // 600 held + 500 > 1,000 tokens: refused by the tenant window
    assert_eq!(
        store
            .reserve(&reservation(&t, now, 1, 500), &windows)
            .await
            .unwrap(),
        Reserved::Refused {
            window: 0,
            used: 600
        }
    );
    // settled to its real usage (120 tokens): room again
    let e = entry(&t, "m1", Some("a1"), Some("u1"), 7);
    store.settle(&t, &a, Some(&e)).await.unwrap();
    assert_eq!(
        store.spend_since(&t, &SpendScope::Tenant, 0).await.unwrap(),
        7
    );
    let b = held(
        store
            .reserve(&reservation(&t, now, 1, 800), &windows)
            .await
            .unwrap(),
    );
    // released without an entry: only the ledger's 120 remain
    store.settle(&t, &b, None).await.unwrap();
    assert_eq!(
        store
            .reserve(&reservation(&t, now, 1, 881), &windows)
            .await
            .unwrap(),
        Reserved::Refused {
            window: 0,
            used: 120
        }
    );
    // an expired reservation no longer counts
    let stale = reservation(&t, now - 120_000, 1, 880);
    let _ = held(store.reserve(&stale, &windows).await.unwrap());
    let c = held(
        store
            .reserve(&reservation(&t, now, 1, 880), &windows)
            .await
            .unwrap(),
    );
    store.settle(&t, &c, None).await.unwrap();

    // 20 at once, each 100 tokens, 880 left: exactly 8 are held
    let calls = (0..20).map(|_| {
        let store = store.clone();
        let r = reservation(&t, now, 1, 100);
        let windows = windows.clone();
        async move { store.reserve(&r, &windows).await.unwrap() }
    });
    let results = futures_util::future::join_all(calls).await;
    let n = results
        .iter()
        .filter(|r| matches!(r, Reserved::Held(_)))
        .count();
    assert_eq!(n, 8);
}

async fn usage_is_reported_per_day_and_key(store: Arc<dyn Store>) {
    let (t, other) = two_tenants(&*store).await;
    let day = 20_000 * DAY_MS;
    let at = |d: i64, ms: i64| day + d * DAY_MS + ms;
    let writes: Vec<TraceWrite> = [
        (entry(&t, "m1", Some("a1"), Some("u1"), 1_000), at(0, 5)),
        (
            entry(&t, "m1", Some("a2"), Some("u2"), 2_000),
            at(0, DAY_MS - 1),
        ),
        (entry(&t, "m2", None, None, 30_000), at(0, 7)),
        (entry(&t, "m1", Some("a1"), Some("u1"), 400_000), at(1, 0)),
        // Outside the range on both sides, and another tenant's.
        (
            entry(&t, "m1", Some("a1"), Some("u1"), 9),
            at(-1, DAY_MS - 1),
        ),
        (entry(&t, "m1", Some("a1"), Some("u1"), 9), at(2, 0)),
        (entry(&other, "m1", Some("a1"), Some("u1"), 9), at(0, 9)),
    ]
    .into_iter()
    .map(|(entry, at)| TraceWrite::Usage { entry, at })
    .collect();
    assert_eq!(store.write_traces(&writes).await.unwrap(), 0);
    let q = |by, user: Option<&str>| UsageQuery {
        since: day,
        until: day + 2 * DAY_MS,
        by,
        user: user.map(UserId::new),
    };
    let bucket = |d: i64, key: Option<&str>, calls: i64, cost: i64| UsageBucket {
        day: day + d * DAY_MS,
        key: key.map(str::to_owned),
        calls,
        input_tokens: 100 * calls,
        output_tokens: 20 * calls,
        cache_read_tokens: 5 * calls,
        cache_write_tokens: calls,
        cost_micros: cost,
    };
    assert_eq!(
        store
            .usage_by_day(&t, &q(UsageGroup::Model, None))
            .await
            .unwrap(),
        vec![
            bucket(0, Some("m1"), 2, 3_000),
            bucket(0, Some("m2"), 1, 30_000),
            bucket(1, Some("m1"), 1, 400_000),
        ]
    );
    assert_eq!(
        store
            .usage_by_day(&t, &q(UsageGroup::Agent, None))
            .await
            .unwrap(),
        vec![
            bucket(0, None, 1, 30_000),
            bucket(0, Some("a1"), 1, 1_000),
            bucket(0, Some("a2"), 1, 2_000),
            bucket(1, Some("a1"), 1, 400_000),
        ],
        "calls without an agent are their own key, sorted first"
    );
    assert_eq!(
        store
            .usage_by_day(&t, &q(UsageGroup::User, Some("u1")))
            .await
            .unwrap(),
        vec![
            bucket(0, Some("u1"), 1, 1_000),
            bucket(1, Some("u1"), 1, 400_000)
        ],
        "one user's calls only"
    );
    assert_eq!(
        store
            .usage_by_day(&other, &q(UsageGroup::Model, None))
            .await
            .unwrap(),
        vec![bucket(0, Some("m1"), 1, 9)],
        "tenants are apart"
    );
    let empty = UsageQuery {
        since: day + 3 * DAY_MS,
        until: day + 4 * DAY_MS,
        by: UsageGroup::Model,
        user: None,
    };
    assert!(store.usage_by_day(&t, &empty).await.unwrap().is_empty());
}

async fn budget_use_counts_the_ledger_and_live_reservations(store: Arc<dyn Store>) {
    let t = default_tenant();
    let now = now_millis();
    store
        .record_usage(&entry(&t, "m1", Some("a1"), Some("u1"), 5_000))
        .await
        .unwrap();
    let window = |unit| BudgetWindow {
        scope: model("m1"),
        since: now - 60_000,
        unit,
        limit: 1_000_000,
    };
    assert_eq!(
        store
            .budget_used(&t, &window(BudgetUnit::Micros), now)
            .await
            .unwrap(),
        5_000
    );
    assert_eq!(
        store
            .budget_used(&t, &window(BudgetUnit::Tokens), now)
            .await
            .unwrap(),
        120
    );
    let held = store
        .reserve(
            &NewReservation {
                tenant_id: t.clone(),
                model: "m1".to_owned(),
                agent_id: None,
                user_id: None,
                cost_micros: 700,
                tokens: 50,
                at: now,
                expires_at: now + 60_000,
            },
            &[window(BudgetUnit::Micros)],
        )
        .await
        .unwrap();
    assert!(matches!(held, Reserved::Held(_)));
    assert_eq!(
        store
            .budget_used(&t, &window(BudgetUnit::Micros), now)
            .await
            .unwrap(),
        5_700
    );
    assert_eq!(
        store
            .budget_used(&t, &window(BudgetUnit::Tokens), now)
            .await
            .unwrap(),
        170
    );
    assert_eq!(
        store
            .budget_used(&t, &window(BudgetUnit::Micros), now + 60_000)
            .await
            .unwrap(),
        5_000,
        "an expired reservation no longer counts"
    );
    let other_model = BudgetWindow {
        scope: model("m2"),
        ..window(BudgetUnit::Micros)
    };
    assert_eq!(store.budget_used(&t, &other_model, now).await.unwrap(), 0);
}
