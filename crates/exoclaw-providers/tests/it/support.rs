//! Shared test helpers: an egress client that reaches a fake, providers
//! pointed at a fake, stream collection, and an in-memory usage ledger with
//! a settable clock.

use async_trait::async_trait;
use exoclaw_core::provider::{
    ChatMessage, ChatRequest, ChatStream, Provider, ProviderError, StreamEvent, next,
};
use exoclaw_core::store::{StoreResult, UsageStore};
use exoclaw_core::trace::{SpendScope, UsageEntry};
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
            .filter(|(_, e)| match scope {
                SpendScope::Model(m) => &e.model == m,
                SpendScope::Agent(a) => e.agent_id.as_ref() == Some(a),
                SpendScope::User(u) => e.user_id.as_ref() == Some(u),
            })
            .map(|(_, e)| e.cost_micros)
            .sum())
    }
}
