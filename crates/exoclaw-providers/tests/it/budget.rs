//! Budgets: refused before the call when the spend is already at the limit
//! (daily since 00:00 UTC, monthly since the 1st), recorded after it with
//! the computed cost, also when the stream fails or is dropped.

use crate::support::{DAY, Ledger, NOON, anthropic, collect, openai, request};
use exoclaw_core::provider::{CallScope, Provider, ProviderError, StreamEvent, Usage, next};
use exoclaw_core::trace::UsageEntry;
use exoclaw_core::{AgentId, TenantId, UserId};
use exoclaw_providers::fake::{FakeProvider, Reply};
use exoclaw_providers::{Budget, BudgetConfig, BudgetPolicy, Budgets, ChainBuilder, PriceTable};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const MODEL: &str = "claude-sonnet-4-5";

fn policy(ledger: &Arc<Ledger>, config: serde_json::Value) -> Arc<BudgetPolicy> {
    let config: BudgetConfig = serde_json::from_value(config).unwrap();
    let budgets = Budgets::from_config(&config, "budgets").unwrap();
    let clock = ledger.clock.clone();
    Arc::new(
        BudgetPolicy::new(budgets, ledger.clone(), Arc::new(PriceTable::defaults())).with_clock(
            Arc::new(move || clock.load(std::sync::atomic::Ordering::SeqCst)),
        ),
    )
}

fn spent(tenant: &str, model: &str, agent: Option<&str>, micros: i64) -> UsageEntry {
    UsageEntry {
        tenant_id: TenantId::new(tenant),
        provider: "anthropic".into(),
        model: model.into(),
        agent_id: agent.map(AgentId::new),
        user_id: None,
        usage: Usage::default(),
        cost_micros: micros,
    }
}

fn scoped(tenant: &str, agent: &str, user: &str) -> exoclaw_core::provider::ChatRequest {
    let mut req = request("x");
    req.scope = CallScope {
        tenant: Some(TenantId::new(tenant)),
        agent: Some(AgentId::new(agent)),
        user: Some(UserId::new(user)),
    };
    req
}

#[tokio::test]
async fn refuses_before_the_call_when_the_daily_budget_is_spent() {
    let fake = FakeProvider::start().await.unwrap();
    let ledger = Ledger::at(NOON);
    ledger.seed(NOON - 3_600_000, spent("default", MODEL, None, 4_000_000));
    ledger.seed(NOON - 60_000, spent("default", MODEL, None, 1_000_000));
    ledger.seed(NOON - DAY, spent("default", MODEL, None, 50_000_000)); // yesterday
    ledger.seed(NOON, spent("other-tenant", MODEL, None, 50_000_000));
    let budget = Budget::new(
        anthropic(&fake),
        policy(&ledger, json!({"models": {MODEL: {"daily_usd": 5}}})),
    );
    let err = budget.stream(request("x")).await.err().unwrap();
    assert_eq!(
        err,
        ProviderError::Budget(format!(
            "daily budget of $5.00 for model {MODEL} is spent ($5.00 used); \
             raise budgets.models.{MODEL}.daily_usd or wait until 00:00 UTC"
        ))
    );
    assert_eq!(err.code(), "budget.exceeded");
    assert!(fake.requests().is_empty(), "refused before any request");

    // under the limit by more than the call's worst case ($0.06: 4,096
    // output tokens at $15 per million, reserved when max_tokens is unset)
    // the call goes through
    let ledger = Ledger::at(NOON);
    ledger.seed(NOON - 1, spent("default", MODEL, None, 4_900_000));
    let budget = Budget::new(
        anthropic(&fake),
        policy(&ledger, json!({"models": {MODEL: {"daily_usd": 5}}})),
    );
    budget.complete(request("x")).await.unwrap();
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn monthly_agent_budget_names_the_reset_date() {
    let fake = FakeProvider::start().await.unwrap();
    let ledger = Ledger::at(NOON); // 2025-03-15
    ledger.seed(
        NOON - 10 * DAY,
        spent("acme", "any-model", Some("research"), 100_000_000),
    ); // 2025-03-05
    let policy = policy(&ledger, json!({"agents": {"*": {"monthly_usd": 100.0}}}));
    let budget = Budget::new(anthropic(&fake), policy.clone());
    let err = budget
        .stream(scoped("acme", "research", "u1"))
        .await
        .err()
        .unwrap();
    assert_eq!(
        err,
        ProviderError::Budget(
            "monthly budget of $100.00 for agent research is spent ($100.00 used); \
             raise budgets.agents.\"*\".monthly_usd or wait until 2025-04-01 00:00 UTC"
                .into()
        )
    );
    // another agent, and last month's spend, do not count
    budget
        .complete(scoped("acme", "writer", "u1"))
        .await
        .unwrap();
    ledger
        .clock
        .store(NOON + 20 * DAY, std::sync::atomic::Ordering::SeqCst); // 2025-04-04
    budget
        .complete(scoped("acme", "research", "u1"))
        .await
        .unwrap();
}

#[tokio::test]
async fn records_usage_and_cost_after_the_stream() {
    let fake = FakeProvider::start().await.unwrap();
    let ledger = Ledger::at(NOON);
    let usage = Usage {
        input_tokens: 1000,
        output_tokens: 500,
        cache_read_tokens: 2000,
        cache_write_tokens: 100,
        estimated: false,
    };
    fake.push(Reply::text("priced").usage(usage));
    let budget = Budget::new(anthropic(&fake), policy(&ledger, json!({})));
    let response = budget
        .complete(scoped("acme", "research", "u1"))
        .await
        .unwrap();
    assert_eq!(response.usage, usage);
    // Sonnet: 1000 x $3 + 500 x $15 + 2000 x $0.30 + 100 x $3.75 per million
    assert_eq!(
        ledger.entries(),
        [UsageEntry {
            tenant_id: TenantId::new("acme"),
            provider: "anthropic".into(),
            model: MODEL.into(),
            agent_id: Some(AgentId::new("research")),
            user_id: Some(UserId::new("u1")),
            usage,
            cost_micros: 3_000 + 7_500 + 600 + 375,
        }]
    );
}

#[tokio::test]
async fn records_usage_when_the_stream_fails_or_is_dropped() {
    let fake = FakeProvider::start().await.unwrap();
    let ledger = Ledger::at(NOON);
    let budget = Budget::new(anthropic(&fake), policy(&ledger, json!({})));
    // (Anthropic reports at least one output token)
    let usage = Usage {
        input_tokens: 1_000_000,
        output_tokens: 10,
        cache_read_tokens: 0,
        cache_write_tokens: 0,
        estimated: false,
    };

    // usage arrived in message_start, then an error event
    fake.push(
        Reply::text("abc")
            .usage(usage)
            .error_after(3, "api_error", "boom"),
    );
    let events = collect(budget.stream(request("x")).await.unwrap()).await;
    assert!(matches!(events.last(), Some(Err(ProviderError::Stream(_)))));
    assert_eq!(ledger.entries().len(), 1);
    // 1M input, and the 1 output token message_start reports
    assert_eq!(ledger.entries()[0].cost_micros, 3_000_015);

    // the consumer walks away after the first event
    fake.push(
        Reply::text("abc")
            .usage(usage)
            .stall_after(2, Duration::from_secs(1)),
    );
    let mut stream = budget.stream(request("x")).await.unwrap();
    assert!(matches!(
        next(&mut stream).await,
        Some(Ok(StreamEvent::Usage(_)))
    ));
    drop(stream);
    for _ in 0..100 {
        if ledger.entries().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(ledger.entries().len(), 2, "recorded by the drop");

    // an error before any usage records nothing
    fake.push(Reply::status(503));
    assert!(budget.stream(request("x")).await.is_err());
    assert_eq!(ledger.entries().len(), 2);
}

#[tokio::test]
async fn every_attempt_is_checked_and_counted() {
    let fake = FakeProvider::start().await.unwrap();
    let ledger = Ledger::at(NOON);
    // each answer costs 1M input tokens x $3 = $3; the budget is $5 a day
    let usage = Usage {
        input_tokens: 1_000_000,
        output_tokens: 10,
        ..Usage::default()
    };
    fake.push_all([
        Reply::text("one").usage(usage),
        Reply::text("two").usage(usage),
        Reply::text("three").usage(usage),
    ]);
    let chain =
        ChainBuilder::new().budget(policy(&ledger, json!({"users": {"u1": {"daily_usd": 5}}})));
    let provider = chain.build("default", [(anthropic(&fake), MODEL.to_owned())]);
    provider.complete(scoped("acme", "a", "u1")).await.unwrap();
    provider.complete(scoped("acme", "a", "u1")).await.unwrap(); // $3 < $5: allowed, overshoots
    let err = provider
        .complete(scoped("acme", "a", "u1"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::Budget(m) if m.contains("for user u1") && m.contains("($6.0003 used)")),
        "{err}"
    );
    assert_eq!(fake.requests().len(), 2);
    assert_eq!(ledger.entries().len(), 2);
    // a budget refusal is final: not retried, no fallback
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn a_call_whose_worst_case_does_not_fit_is_refused_and_says_what_to_lower() {
    let fake = FakeProvider::start().await.unwrap();
    let ledger = Ledger::at(NOON);
    ledger.seed(NOON - 1, spent("default", MODEL, None, 4_999_999));
    let budget = Budget::new(
        anthropic(&fake),
        policy(&ledger, json!({"models": {MODEL: {"daily_usd": 5}}})),
    );
    let err = budget.stream(request("x")).await.err().unwrap();
    let ProviderError::Budget(message) = &err else {
        panic!("{err}")
    };
    assert!(
        message.contains("has $0.000001 left") && message.contains("lower max_tokens"),
        "{message}"
    );
    assert!(fake.requests().is_empty());
    assert_eq!(ledger.live_reservations(), 0);
}

#[tokio::test]
async fn concurrent_calls_cannot_overshoot_a_reserved_budget() {
    let fake = FakeProvider::start().await.unwrap();
    let ledger = Ledger::at(NOON);
    // Each call reserves 108 tokens (its input estimated at 8: 3 to prime
    // the reply, 4 around the message, 1 for "xxxx"; max_tokens 100) and
    // reports exactly that; the tenant's budget holds 10 such calls.
    let policy = policy(
        &ledger,
        json!({"tenants": {"acme": {"daily_tokens": 1080}}}),
    );
    let budget = Arc::new(Budget::new(anthropic(&fake), policy));
    fake.push_all((0..50).map(|_| {
        Reply::text("a")
            .delay(Duration::from_millis(20))
            .usage(Usage {
                input_tokens: 8,
                output_tokens: 100,
                ..Usage::default()
            })
    }));
    let calls = (0..50).map(|_| {
        let budget = budget.clone();
        async move {
            let mut req = scoped("acme", "a", "u");
            req.max_tokens = Some(100);
            req.messages = vec![exoclaw_core::provider::ChatMessage::user("xxxx")].into();
            budget.complete(req).await
        }
    });
    let results = futures_util::future::join_all(calls).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(ProviderError::Budget(_))))
        .count();
    assert_eq!(ok + refused, 50);
    assert_eq!(ok, 10, "exactly the budget's worth went through");
    assert_eq!(ledger.live_reservations(), 0, "every reservation settled");
    let tokens: u64 = ledger
        .entries()
        .iter()
        .map(|e| e.usage.input_tokens + e.usage.output_tokens)
        .sum();
    assert_eq!(tokens, 1080);
}

#[tokio::test]
async fn a_failed_call_releases_its_reservation() {
    let fake = FakeProvider::start().await.unwrap();
    let ledger = Ledger::at(NOON);
    let budget = Budget::new(
        anthropic(&fake),
        policy(&ledger, json!({"models": {"*": {"daily_tokens": 100000}}})),
    );
    fake.push(Reply::status(400));
    assert!(budget.stream(request("x")).await.is_err());
    assert_eq!(ledger.live_reservations(), 0);
    assert!(ledger.entries().is_empty(), "nothing was used");
}

#[tokio::test]
async fn a_provider_without_usage_is_counted_with_an_estimate() {
    let fake = FakeProvider::start().await.unwrap();
    fake.llama_cpp_python_like();
    let ledger = Ledger::at(NOON);
    let chain = ChainBuilder::new().budget(policy(
        &ledger,
        json!({"models": {"*": {"daily_tokens": 100000}}}),
    ));
    let provider = chain.build("local", [(openai(&fake), "local-model".to_owned())]);
    fake.push(Reply::text("four words of text"));
    let response = provider.complete(request("hello there")).await.unwrap();
    assert!(response.usage.estimated, "{:?}", response.usage);
    assert!(response.usage.input_tokens > 0 && response.usage.output_tokens > 0);
    let entries = ledger.entries();
    assert_eq!(entries.len(), 1);
    assert!(entries[0].usage.estimated);
    assert_eq!(ledger.live_reservations(), 0);
}
