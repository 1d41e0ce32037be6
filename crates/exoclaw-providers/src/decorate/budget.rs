//! [`Budget`]: spend limits checked before every call, and the usage ledger
//! written after it.
//!
//! Before a call, the tenant's spend since 00:00 UTC (daily) and since the
//! 1st of the month (monthly) is summed per configured scope (the model,
//! the agent, the user); a scope already at or over its limit refuses the
//! call with `ProviderError::Budget`, saying what to raise or how long to
//! wait. After the call (also when it fails after usage arrived, or is
//! dropped mid-stream) a `UsageEntry` with the cost is recorded. A call may
//! overshoot a limit by its own cost: we do not know it in advance.

use crate::calendar;
use crate::pricing::{ConfigProblem, PriceTable, usd_to_micros};
use exoclaw_core::provider::{
    CallScope, ChatRequest, ChatStream, Provider, ProviderError, ProviderInfo, StreamEvent, Usage,
    merge_usage, next,
};
use exoclaw_core::store::UsageStore;
use exoclaw_core::trace::{SpendScope, UsageEntry};
use exoclaw_core::{DEFAULT_TENANT, TenantId, UnixMillis};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Limits of one scope, in USD as written in `config.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetLimits {
    /// Spend allowed per UTC day.
    pub daily_usd: Option<f64>,
    /// Spend allowed per calendar month (UTC).
    pub monthly_usd: Option<f64>,
}

/// The `budgets` section. Keys are model names, agent ids and user ids;
/// `"*"` applies to every model, agent or user without its own entry.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetConfig {
    pub models: BTreeMap<String, BudgetLimits>,
    pub agents: BTreeMap<String, BudgetLimits>,
    pub users: BTreeMap<String, BudgetLimits>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Limits {
    daily: Option<i64>,
    monthly: Option<i64>,
}

/// A validated [`BudgetConfig`]: limits in micro-dollars, and the config
/// path to name in refusals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Budgets {
    path: String,
    models: HashMap<String, Limits>,
    agents: HashMap<String, Limits>,
    users: HashMap<String, Limits>,
}

fn key_path(path: &str, section: &str, key: &str) -> String {
    if key.contains(['.', ' ', '"']) || key == "*" {
        format!("{path}.{section}.{key:?}")
    } else {
        format!("{path}.{section}.{key}")
    }
}

impl Budgets {
    /// Validate `config`, found at `path` in `config.json` (e.g. `budgets`),
    /// reporting every problem at once.
    pub fn from_config(config: &BudgetConfig, path: &str) -> Result<Self, Vec<ConfigProblem>> {
        let mut problems = Vec::new();
        let mut section = |name: &str, entries: &BTreeMap<String, BudgetLimits>| {
            let mut out = HashMap::new();
            for (key, limits) in entries {
                let base = key_path(path, name, key);
                let mut convert = |field: &str, usd: Option<f64>| {
                    usd.and_then(|v| match usd_to_micros(v) {
                        Ok(m) => Some(i64::try_from(m).unwrap_or(i64::MAX)),
                        Err(message) => {
                            problems.push(ConfigProblem {
                                path: format!("{base}.{field}"),
                                message,
                            });
                            None
                        }
                    })
                };
                let daily = convert("daily_usd", limits.daily_usd);
                let monthly = convert("monthly_usd", limits.monthly_usd);
                out.insert(key.clone(), Limits { daily, monthly });
            }
            out
        };
        let models = section("models", &config.models);
        let agents = section("agents", &config.agents);
        let users = section("users", &config.users);
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Self {
            path: path.to_owned(),
            models,
            agents,
            users,
        })
    }

    /// No limits at all (calls are still recorded).
    pub fn none() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.models.is_empty() && self.agents.is_empty() && self.users.is_empty()
    }

    /// Whether any limit applies to `model` (to warn when it has no price).
    pub fn limits_model(&self, model: &str) -> bool {
        self.models.contains_key(model) || self.models.contains_key("*")
    }
}

fn lookup<'a>(map: &'a HashMap<String, Limits>, key: &'a str) -> Option<(&'a str, Limits)> {
    map.get(key)
        .map(|l| (key, *l))
        .or_else(|| map.get("*").map(|l| ("*", *l)))
}

/// The clock budgets use: Unix milliseconds.
pub type Clock = Arc<dyn Fn() -> UnixMillis + Send + Sync>;

/// One budget window as read before a call: what [`BudgetObserver`]s see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BudgetReading<'a> {
    /// `model gpt-4o`, `agent default`, `user alice`.
    pub scope: &'a str,
    /// The config path of the limit (`budgets.models.gpt-4o`).
    pub path: &'a str,
    /// `daily` or `monthly`.
    pub window: &'static str,
    pub spent_micros: i64,
    pub limit_micros: i64,
}

/// Sees every budget window read before a call (alerts on usage ratios).
/// Called on the request path: it must not block.
pub type BudgetObserver = Arc<dyn Fn(&BudgetReading<'_>) + Send + Sync>;

/// What every [`Budget`] decorator shares: limits, the ledger, prices.
pub struct BudgetPolicy {
    budgets: Budgets,
    store: Arc<dyn UsageStore>,
    prices: Arc<PriceTable>,
    clock: Clock,
    observer: Option<BudgetObserver>,
    /// Models already warned about having no price.
    unpriced: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// `$1.50`, or more decimals for amounts under a cent.
fn dollars(micros: i64) -> String {
    if micros % 10_000 == 0 || micros.abs() >= 10_000_000 {
        format!("${:.2}", micros as f64 / 1e6)
    } else {
        let s = format!("{:.6}", micros as f64 / 1e6);
        let s = s.trim_end_matches('0');
        format!("${s}")
    }
}

impl BudgetPolicy {
    pub fn new(budgets: Budgets, store: Arc<dyn UsageStore>, prices: Arc<PriceTable>) -> Self {
        Self {
            budgets,
            store,
            prices,
            clock: Arc::new(calendar::now_millis),
            observer: None,
            unpriced: Default::default(),
        }
    }

    /// Report every window read to `observer` (before the refusal check).
    pub fn with_observer(mut self, observer: BudgetObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Replace the wall clock (tests).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Refuse when any applicable scope is at or over its limit.
    pub async fn check(&self, request: &ChatRequest) -> Result<(), ProviderError> {
        if self.budgets.is_empty() {
            return Ok(());
        }
        let tenant = tenant_of(&request.scope);
        let now = (self.clock)();
        let b = &self.budgets;
        let mut scopes: Vec<(SpendScope, String, String, Limits)> = Vec::new();
        if let Some((key, limits)) = lookup(&b.models, &request.model) {
            scopes.push((
                SpendScope::Model(request.model.clone()),
                format!("model {}", request.model),
                key_path(&b.path, "models", key),
                limits,
            ));
        }
        if let Some(agent) = &request.scope.agent
            && let Some((key, limits)) = lookup(&b.agents, agent.as_str())
        {
            scopes.push((
                SpendScope::Agent(agent.clone()),
                format!("agent {agent}"),
                key_path(&b.path, "agents", key),
                limits,
            ));
        }
        if let Some(user) = &request.scope.user
            && let Some((key, limits)) = lookup(&b.users, user.as_str())
        {
            scopes.push((
                SpendScope::User(user.clone()),
                format!("user {user}"),
                key_path(&b.path, "users", key),
                limits,
            ));
        }
        for (scope, label, path, limits) in scopes {
            let windows = [
                (
                    "daily",
                    limits.daily,
                    calendar::day_start(now),
                    "00:00 UTC".to_owned(),
                ),
                (
                    "monthly",
                    limits.monthly,
                    calendar::month_start(now),
                    format!(
                        "{} 00:00 UTC",
                        calendar::format_date(calendar::next_month_start(now))
                    ),
                ),
            ];
            for (window, limit, since, reset) in windows {
                let Some(limit) = limit else { continue };
                let spent = self
                    .store
                    .spend_since(&tenant, &scope, since)
                    .await
                    .map_err(|e| {
                        ProviderError::Unavailable(format!(
                            "cannot check the {window} budget for {label}: {e}"
                        ))
                    })?;
                if let Some(observe) = &self.observer {
                    observe(&BudgetReading {
                        scope: &label,
                        path: &path,
                        window,
                        spent_micros: spent,
                        limit_micros: limit,
                    });
                }
                if spent >= limit {
                    tracing::warn!(tenant = %tenant, scope = %label, window, limit, spent, "budget spent; call refused");
                    return Err(ProviderError::Budget(format!(
                        "{window} budget of {} for {label} is spent ({} used); raise {path}.{window}_usd or wait until {reset}",
                        dollars(limit),
                        dollars(spent),
                    )));
                }
            }
        }
        Ok(())
    }

    /// The ledger entry for a finished call.
    pub fn entry(
        &self,
        provider: &str,
        model: &str,
        scope: &CallScope,
        usage: Usage,
    ) -> UsageEntry {
        let cost_micros = self.prices.cost_micros(model, &usage).unwrap_or_else(|| {
            // Once per model and process: the same warning after every call
            // buries the log.
            let first = self
                .unpriced
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(model.to_owned());
            if first {
                tracing::warn!(model = %model, "no price for this model; its usage is recorded at cost 0 (set models.pricing; said once per model)");
            }
            0
        });
        UsageEntry {
            tenant_id: tenant_of(scope),
            provider: provider.to_owned(),
            model: model.to_owned(),
            agent_id: scope.agent.clone(),
            user_id: scope.user.clone(),
            usage,
            cost_micros,
        }
    }

    /// Write an entry; a failure is logged (the answer is already out).
    pub async fn record(&self, entry: &UsageEntry) {
        if let Err(e) = self.store.record_usage(entry).await {
            tracing::error!(model = %entry.model, cost_micros = entry.cost_micros, error = %e, "cannot record usage");
        }
    }
}

fn tenant_of(scope: &CallScope) -> TenantId {
    scope
        .tenant
        .clone()
        .unwrap_or_else(|| TenantId::new(DEFAULT_TENANT))
}

pub struct Budget {
    inner: Arc<dyn Provider>,
    policy: Arc<BudgetPolicy>,
}

impl Budget {
    pub fn new(inner: Arc<dyn Provider>, policy: Arc<BudgetPolicy>) -> Self {
        Self { inner, policy }
    }
}

#[async_trait::async_trait]
impl Provider for Budget {
    fn info(&self) -> ProviderInfo {
        self.inner.info()
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream, ProviderError> {
        self.policy.check(&request).await?;
        let provider = self.inner.info().name;
        // What the ledger entry needs, not a copy of the whole request.
        let model = request.model.clone();
        let scope = request.scope.clone();
        let stream = self.inner.stream(request).await?;
        Ok(Box::pin(recording(
            stream,
            self.policy.clone(),
            provider,
            model,
            scope,
        )))
    }
}

/// Forward the stream; when it ends (done, failed or exhausted), record its
/// usage before yielding that last item. If the consumer drops it early, the
/// usage seen so far is recorded by a task on the current runtime.
fn recording(
    stream: ChatStream,
    policy: Arc<BudgetPolicy>,
    provider: String,
    model: String,
    scope: CallScope,
) -> impl futures_util::Stream<Item = Result<StreamEvent, ProviderError>> + Send {
    struct State {
        stream: ChatStream,
        policy: Arc<BudgetPolicy>,
        provider: String,
        model: String,
        scope: CallScope,
        /// `None` until usage arrives, and again once it is recorded.
        usage: Option<Usage>,
        ended: bool,
    }

    impl State {
        fn take_entry(&mut self) -> Option<UsageEntry> {
            let usage = self.usage.take()?;
            Some(
                self.policy
                    .entry(&self.provider, &self.model, &self.scope, usage),
            )
        }
    }

    impl Drop for State {
        fn drop(&mut self) {
            let Some(entry) = self.take_entry() else {
                return;
            };
            let policy = self.policy.clone();
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => {
                    handle.spawn(async move { policy.record(&entry).await });
                }
                Err(_) => {
                    tracing::error!(model = %entry.model, "usage of a dropped call not recorded: no runtime");
                }
            }
        }
    }

    let state = State {
        stream,
        policy,
        provider,
        model,
        scope,
        usage: None,
        ended: false,
    };
    futures_util::stream::unfold(state, |mut st| async move {
        if st.ended {
            return None;
        }
        let item = next(&mut st.stream).await;
        if let Some(Ok(StreamEvent::Usage(u))) = &item {
            let mut merged = st.usage.unwrap_or_default();
            merge_usage(&mut merged, *u);
            st.usage = Some(merged);
        }
        let terminal = matches!(item, None | Some(Err(_)) | Some(Ok(StreamEvent::Done(_))));
        if terminal {
            st.ended = true;
            if let Some(entry) = st.take_entry() {
                st.policy.record(&entry).await;
            }
        }
        item.map(|i| (i, st))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollar_formatting() {
        assert_eq!(dollars(5_000_000), "$5.00");
        assert_eq!(dollars(1_230_000), "$1.23");
        assert_eq!(dollars(1_500), "$0.0015");
        assert_eq!(dollars(0), "$0.00");
        assert_eq!(dollars(12_345_678), "$12.35");
    }

    #[test]
    fn config_validation_reports_every_problem() {
        let config: BudgetConfig = serde_json::from_value(serde_json::json!({
            "models": {"gpt-4.1": {"daily_usd": -1.0}, "ok": {"daily_usd": 2.5}},
            "agents": {"*": {"monthly_usd": f64::MAX}},
        }))
        .unwrap();
        let problems = Budgets::from_config(&config, "budgets").unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "budgets.models.\"gpt-4.1\".daily_usd",
                "budgets.agents.\"*\".monthly_usd"
            ]
        );
        assert!(serde_json::from_value::<BudgetConfig>(serde_json::json!({"model": {}})).is_err());
        let ok: BudgetConfig =
            serde_json::from_value(serde_json::json!({"users": {"u1": {"daily_usd": 1}}})).unwrap();
        let b = Budgets::from_config(&ok, "budgets").unwrap();
        assert_eq!(b.users.get("u1").and_then(|l| l.daily), Some(1_000_000));
    }
}
