//! Shared test helpers: an egress client that reaches a fake, providers
//! pointed at a fake, stream collection, and an in-memory usage ledger with
//! a settable clock.

use async_trait::async_trait;
use exoclaw_core::provider::{
    ChatMessage, ChatRequest, ChatStream, Provider, ProviderError, StreamEvent, next,
};
use exoclaw_core::store::{StoreResult, UsageStore};
use exoclaw_core::trace::{
    BudgetUnit, BudgetWindow, NewReservation, Reserved, SpendScope, UsageEntry,
};
use exoclaw_core::{Secret, TenantId, UnixMillis};
use exoclaw_egress::EgressClient;
use exoclaw_providers::fake::FakeProvider;
use exoclaw_providers::{AnthropicProvider, OpenAiCompatProvider};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

pub const KEY: &str = "sk-test-0123456789abcdef-secret";

/// The egress client the binary would build for a provider configured
/// explicitly at `base` (a fake on loopback): only that origin is
/// reachable. No connection pool, so no pool timers: paused-time tests then
/// see only the timers under test.
pub fn client(base: &str) -> EgressClient {
    EgressClient::builder()
        .provider_profile(&[base])
        .unwrap()
        .allow_origin(base)
        .unwrap()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

pub fn anthropic(fake: &FakeProvider) -> Arc<dyn Provider> {
    let base = fake.base_url();
    Arc::new(AnthropicProvider::new(client(&base), &base, Some(Secret::new(KEY))).unwrap())
}

pub fn openai(fake: &FakeProvider) -> Arc<dyn Provider> {
    let base = format!("{}/v1", fake.base_url());
    Arc::new(OpenAiCompatProvider::new(client(&base), &base, Some(Secret::new(KEY))).unwrap())
}

/// Both wire formats, for tests that must hold for each.
pub fn both(fake: &FakeProvider) -> [(&'static str, Arc<dyn Provider>); 2] {
    [("anthropic", anthropic(fake)), ("openai", openai(fake))]
}

pub fn request(text: &str) -> ChatRequest {
    ChatRequest::new("claude-sonnet-4-5", vec![ChatMessage::user(text)])
}

pub async fn collect(mut stream: ChatStream) -> Vec<Result<StreamEvent, ProviderError>> {
    let mut out = Vec::new();
    while let Some(item) = next(&mut stream).await {
        out.push(item);
    }
    out
}

/// The concatenated text deltas.
pub fn text_of(events: &[Result<StreamEvent, ProviderError>]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            Ok(StreamEvent::TextDelta(t)) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

/// 2025-03-15T12:00:00Z
pub const NOON: UnixMillis = 1_742_040_000_000;
pub const DAY: UnixMillis = 86_400_000;

/// An in-memory `UsageStore`; entries are stamped with `clock`.
#[derive(Default)]
pub struct Ledger {
    pub clock: Arc<AtomicI64>,
    entries: Mutex<Vec<(UnixMillis, UsageEntry)>>,
    /// Live reservations by id, and the next id.
    reservations: Mutex<(u64, Vec<(String, NewReservation)>)>,
}

impl Ledger {
    pub fn at(now: UnixMillis) -> Arc<Self> {
        let ledger = Self::default();
        ledger.clock.store(now, Ordering::SeqCst);
        Arc::new(ledger)
    }

    pub fn now(&self) -> UnixMillis {
        self.clock.load(Ordering::SeqCst)
    }

    /// Spend already made at `at`.
    pub fn seed(&self, at: UnixMillis, entry: UsageEntry) {
        self.entries.lock().unwrap().push((at, entry));
    }

    /// The reservations not yet settled.
    pub fn live_reservations(&self) -> usize {
        self.reservations.lock().unwrap().1.len()
    }

    pub fn entries(&self) -> Vec<UsageEntry> {
        self.entries
            .lock()
            .unwrap()
            .iter()
            .map(|(_, e)| e.clone())
            .collect()
    }
}

#[async_trait]
impl UsageStore for Ledger {
    async fn record_usage(&self, entry: &UsageEntry) -> StoreResult<()> {
        let now = self.now();
        self.entries.lock().unwrap().push((now, entry.clone()));
        Ok(())
    }

    async fn spend_since(
        &self,
        tenant: &TenantId,
        scope: &SpendScope,
        since: UnixMillis,
    ) -> StoreResult<i64> {
        let entries = self.entries.lock().unwrap();
        Ok(entries
            .iter()
            .filter(|(at, e)| *at >= since && &e.tenant_id == tenant)
            .filter(|(_, e)| in_scope(scope, &e.model, &e.agent_id, &e.user_id))
            .map(|(_, e)| e.cost_micros)
            .sum())
    }

    async fn reserve(&self, r: &NewReservation, windows: &[BudgetWindow]) -> StoreResult<Reserved> {
        let entries = self.entries.lock().unwrap();
        let mut held = self.reservations.lock().unwrap();
        for (i, w) in windows.iter().enumerate() {
            let pick = |micros: i64, tokens: i64| match w.unit {
                BudgetUnit::Micros => micros,
                BudgetUnit::Tokens => tokens,
            };
            let spent: i64 = entries
                .iter()
                .filter(|(at, e)| *at >= w.since && e.tenant_id == r.tenant_id)
                .filter(|(_, e)| in_scope(&w.scope, &e.model, &e.agent_id, &e.user_id))
                .map(|(_, e)| {
                    pick(
                        e.cost_micros,
                        (e.usage.input_tokens + e.usage.output_tokens) as i64,
                    )
                })
                .sum();
            let reserved: i64 = held
                .1
                .iter()
                .filter(|(_, h)| h.tenant_id == r.tenant_id && h.at >= w.since)
                .filter(|(_, h)| in_scope(&w.scope, &h.model, &h.agent_id, &h.user_id))
                .map(|(_, h)| pick(h.cost_micros, h.tokens))
                .sum();
            let used = spent + reserved;
            if used + pick(r.cost_micros, r.tokens) > w.limit {
                return Ok(Reserved::Refused { window: i, used });
            }
        }
        held.0 += 1;
        let id = format!("r{}", held.0);
        held.1.push((id.clone(), r.clone()));
        Ok(Reserved::Held(id))
    }

    async fn settle(
        &self,
        _tenant: &TenantId,
        id: &str,
        entry: Option<&UsageEntry>,
    ) -> StoreResult<()> {
        let now = self.now();
        let mut entries = self.entries.lock().unwrap();
        self.reservations.lock().unwrap().1.retain(|(i, _)| i != id);
        if let Some(entry) = entry {
            entries.push((now, entry.clone()));
        }
        Ok(())
    }
}

fn in_scope(
    scope: &SpendScope,
    model: &str,
    agent: &Option<exoclaw_core::AgentId>,
    user: &Option<exoclaw_core::UserId>,
) -> bool {
    match scope {
        SpendScope::Model(m) => model == m,
        SpendScope::Agent(a) => agent.as_ref() == Some(a),
        SpendScope::User(u) => user.as_ref() == Some(u),
        SpendScope::Tenant => true,
    }
}
