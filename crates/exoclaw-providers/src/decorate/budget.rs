//! [`Budget`]: spend and token limits reserved before every call, and the
//! usage ledger written after it.
//!
//! Limits are kept per scope (the model, the agent, the user, the tenant),
//! daily (since 00:00 UTC) and monthly (since the 1st), in USD and in
//! tokens; every limit that applies must hold, so a tenant's budget only
//! ever narrows what the others allow. Before a call under any limit, its
//! worst case is reserved in the store ([`UsageStore::reserve`]): the input
//! tokens estimated ([`super::estimate::input_tokens`]) plus `max_tokens`
//! of output (or [`DEFAULT_RESERVED_OUTPUT`] when the request leaves it
//! open), priced. The store adds the ledger and the live reservations of
//! every window in one locked transaction, so concurrent calls, also from
//! other gateways on one PostgreSQL, cannot together pass a limit. A call
//! that does not fit is refused with `ProviderError::Budget`, saying what to
//! raise or how long to wait. After the call (also when it fails after
//! usage arrived, or is dropped mid-stream) the reservation is replaced by
//! the `UsageEntry` with the real (or estimated) usage and its cost, in one
//! transaction; a call that fails before any usage releases it. A call
//! under no limit is only recorded.
//!
//! The reservation bounds what a call may cost as far as its output is
//! capped; a provider that reports more input than estimated can still
//! overshoot by that difference.

use crate::calendar;
use crate::pricing::{ConfigProblem, PriceTable, usd_to_micros};
use exoclaw_core::provider::{
    CallScope, ChatRequest, ChatStream, Provider, ProviderError, ProviderInfo, StreamEvent, Usage,
    merge_usage, next,
};
use exoclaw_core::store::UsageStore;
use exoclaw_core::trace::{
    BudgetUnit, BudgetWindow, NewReservation, Reserved, SpendScope, UsageEntry,
};
use exoclaw_core::{DEFAULT_TENANT, TenantId, UnixMillis};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Output tokens reserved for a call that sets no `max_tokens` (the
/// Anthropic default cap; OpenAI-compatible servers have no fixed one).
pub const DEFAULT_RESERVED_OUTPUT: u32 = crate::anthropic::DEFAULT_MAX_TOKENS;

/// How long a reservation holds when its call is never settled (the
/// gateway died mid-call).
const RESERVATION_TTL_MS: i64 = 30 * 60 * 1000;

/// Limits of one scope as written in `config.json`: USD and tokens (input
/// plus output, reported or estimated), per UTC day and calendar month.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetLimits {
    /// Spend allowed per UTC day.
    pub daily_usd: Option<f64>,
    /// Spend allowed per calendar month (UTC).
    pub monthly_usd: Option<f64>,
    /// Tokens allowed per UTC day (binds also for models without a price).
    pub daily_tokens: Option<u64>,
    /// Tokens allowed per calendar month (UTC).
    pub monthly_tokens: Option<u64>,
}

/// The `budgets` section. Keys are model names, agent ids, user ids and
/// tenant ids; `"*"` applies to every model, agent, user or tenant without
/// its own entry.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetConfig {
    pub models: BTreeMap<String, BudgetLimits>,
    pub agents: BTreeMap<String, BudgetLimits>,
    pub users: BTreeMap<String, BudgetLimits>,
    pub tenants: BTreeMap<String, BudgetLimits>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Limits {
    daily: Option<i64>,
    monthly: Option<i64>,
    daily_tokens: Option<i64>,
    monthly_tokens: Option<i64>,
}

impl Limits {
    fn has_usd(&self) -> bool {
        self.daily.is_some() || self.monthly.is_some()
    }
}

/// A validated [`BudgetConfig`]: limits in micro-dollars, and the config
/// path to name in refusals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Budgets {
    path: String,
    models: HashMap<String, Limits>,
    agents: HashMap<String, Limits>,
    users: HashMap<String, Limits>,
    tenants: HashMap<String, Limits>,
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
                let tokens = |n: Option<u64>| n.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
                out.insert(
                    key.clone(),
                    Limits {
                        daily,
                        monthly,
                        daily_tokens: tokens(limits.daily_tokens),
                        monthly_tokens: tokens(limits.monthly_tokens),
                    },
                );
            }
            out
        };
        let models = section("models", &config.models);
        let agents = section("agents", &config.agents);
        let users = section("users", &config.users);
        let tenants = section("tenants", &config.tenants);
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Self {
            path: path.to_owned(),
            models,
            agents,
            users,
            tenants,
        })
    }

    /// No limits at all (calls are still recorded).
    pub fn none() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
            && self.agents.is_empty()
            && self.users.is_empty()
            && self.tenants.is_empty()
    }

    /// Whether any limit applies to `model` (to warn when it has no price).
    pub fn limits_model(&self, model: &str) -> bool {
        self.models.contains_key(model) || self.models.contains_key("*")
    }

    /// The USD limits that cannot bind for `model` because it has no price
    /// (its calls cost $0): the config paths, e.g. `budgets.models."*"`,
    /// `budgets.agents.research`. Empty when the model is priced.
    pub fn unenforceable_usd(&self, model: &str, prices: &PriceTable) -> Vec<String> {
        if prices.price(model).is_some() {
            return Vec::new();
        }
        let mut paths = Vec::new();
        if let Some((key, limits)) = lookup(&self.models, model)
            && limits.has_usd()
        {
            paths.push(key_path(&self.path, "models", key));
        }
        for (section, map) in [
            ("agents", &self.agents),
            ("users", &self.users),
            ("tenants", &self.tenants),
        ] {
            let mut keys: Vec<&String> = map
                .iter()
                .filter(|(_, l)| l.has_usd())
                .map(|(k, _)| k)
                .collect();
            keys.sort();
            paths.extend(keys.into_iter().map(|k| key_path(&self.path, section, k)));
        }
        paths
    }
}

fn lookup<'a>(map: &'a HashMap<String, Limits>, key: &'a str) -> Option<(&'a str, Limits)> {
    map.get(key)
        .map(|l| (key, *l))
        .or_else(|| map.get("*").map(|l| ("*", *l)))
}

/// One limit's window, with what a refusal says about it.
struct Window {
    store: BudgetWindow,
    /// `model gpt-4o`, `tenant acme`.
    label: String,
    /// The config path of the limits (`budgets.models.gpt-4o`).
    path: String,
    /// `daily` or `monthly`.
    window: &'static str,
    /// When the window starts again.
    reset: String,
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

/// A tenant's own budget (its settings), looked up per call without IO:
/// one more limit that must hold, so it only ever narrows the configured
/// ones. `None`: the tenant set none.
pub type TenantBudgets = Arc<dyn Fn(&TenantId) -> Option<BudgetLimits> + Send + Sync>;

/// What every [`Budget`] decorator shares: limits, the ledger, prices.
pub struct BudgetPolicy {
    budgets: Budgets,
    /// Tenants' own budgets (see [`TenantBudgets`]).
    tenant_budgets: Option<TenantBudgets>,
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

/// A scope's limits as [`expand`] takes them: the scope, its label, its
/// config path, its limits.
type Scoped = (SpendScope, String, String, Limits);

/// A tenant's own budget (its settings) as one more scope. Validated when
/// the settings were written; a value that does not convert binds at
/// nothing rather than at zero.
fn own_scope(tenant: &TenantId, own: &BudgetLimits) -> Scoped {
    let usd = |v: Option<f64>| {
        v.and_then(|v| usd_to_micros(v).ok())
            .map(|m| i64::try_from(m).unwrap_or(i64::MAX))
    };
    let tokens = |n: Option<u64>| n.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
    (
        SpendScope::Tenant,
        format!("tenant {tenant} (its own settings)"),
        format!("tenants.{tenant}.settings.budgets"),
        Limits {
            daily: usd(own.daily_usd),
            monthly: usd(own.monthly_usd),
            daily_tokens: tokens(own.daily_tokens),
            monthly_tokens: tokens(own.monthly_tokens),
        },
    )
}

/// Every limit of `scopes` as a window of the day or month of `now`.
fn expand(scopes: Vec<Scoped>, now: UnixMillis) -> Vec<Window> {
    let day = calendar::day_start(now);
    let month = calendar::month_start(now);
    let next_month = format!(
        "{} 00:00 UTC",
        calendar::format_date(calendar::next_month_start(now))
    );
    let mut out = Vec::new();
    for (scope, label, path, l) in scopes {
        for (window, since, unit, limit) in [
            ("daily", day, BudgetUnit::Micros, l.daily),
            ("monthly", month, BudgetUnit::Micros, l.monthly),
            ("daily", day, BudgetUnit::Tokens, l.daily_tokens),
            ("monthly", month, BudgetUnit::Tokens, l.monthly_tokens),
        ] {
            let Some(limit) = limit else { continue };
            out.push(Window {
                store: BudgetWindow {
                    scope: scope.clone(),
                    since,
                    unit,
                    limit,
                },
                label: label.clone(),
                path: path.clone(),
                window,
                reset: if window == "daily" {
                    "00:00 UTC".to_owned()
                } else {
                    next_month.clone()
                },
            });
        }
    }
    out
}

/// The keys of a tenant's calls this month (from its usage), which
/// `"*"` budget entries are reported for.
#[derive(Clone, Debug, Default)]
pub struct SeenKeys {
    pub models: Vec<String>,
    pub agents: Vec<String>,
    pub users: Vec<String>,
}

/// One configured limit as it applies to one key of one tenant: what a
/// budget report shows (`GET /v1/budgets`), with the window the store
/// sums for it ([`exoclaw_core::store::UsageReportStore::budget_used`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BudgetLine {
    /// `model gpt-4o`, `agent default`, `tenant acme (its own settings)`.
    pub label: String,
    /// The config path of the limit (`budgets.models.gpt-4o`).
    pub path: String,
    /// `daily` or `monthly`.
    pub window: &'static str,
    /// When the window starts again.
    pub reset: String,
    pub store: BudgetWindow,
}

impl Budgets {
    /// Every limit that applies to `tenant` at `now`: each entry of the
    /// configuration (a `"*"` entry once per key of `seen` without its own
    /// entry, or once as `*` when there is none), then the tenant's own
    /// budget.
    pub fn lines(
        &self,
        tenant: &TenantId,
        own: Option<&BudgetLimits>,
        seen: &SeenKeys,
        now: UnixMillis,
    ) -> Vec<BudgetLine> {
        let mut scopes: Vec<Scoped> = Vec::new();
        let mut section = |name: &str,
                           map: &HashMap<String, Limits>,
                           seen: &[String],
                           scope: &dyn Fn(&str) -> SpendScope| {
            let mut keys: Vec<&String> = map.keys().filter(|k| *k != "*").collect();
            keys.sort();
            for key in keys {
                scopes.push((
                    scope(key),
                    format!("{name} {key}"),
                    key_path(&self.path, &format!("{name}s"), key),
                    map[key],
                ));
            }
            if let Some(any) = map.get("*") {
                let mut others: Vec<&String> =
                    seen.iter().filter(|k| !map.contains_key(*k)).collect();
                others.sort();
                others.dedup();
                if others.is_empty() {
                    scopes.push((
                        scope("*"),
                        format!("every {name} (none used this month)"),
                        key_path(&self.path, &format!("{name}s"), "*"),
                        *any,
                    ));
                }
                for key in others {
                    scopes.push((
                        scope(key),
                        format!("{name} {key}"),
                        key_path(&self.path, &format!("{name}s"), "*"),
                        *any,
                    ));
                }
            }
        };
        section("model", &self.models, &seen.models, &|k| {
            SpendScope::Model(k.to_owned())
        });
        section("agent", &self.agents, &seen.agents, &|k| {
            SpendScope::Agent(exoclaw_core::AgentId::new(k))
        });
        section("user", &self.users, &seen.users, &|k| {
            SpendScope::User(exoclaw_core::UserId::new(k))
        });
        if let Some((key, limits)) = lookup(&self.tenants, tenant.as_str()) {
            scopes.push((
                SpendScope::Tenant,
                format!("tenant {tenant}"),
                key_path(&self.path, "tenants", key),
                limits,
            ));
        }
        if let Some(own) = own {
            scopes.push(own_scope(tenant, own));
        }
        expand(scopes, now)
            .into_iter()
            .map(|w| BudgetLine {
                label: w.label,
                path: w.path,
                window: w.window,
                reset: w.reset,
                store: w.store,
            })
            .collect()
    }
}

impl BudgetPolicy {
    pub fn new(budgets: Budgets, store: Arc<dyn UsageStore>, prices: Arc<PriceTable>) -> Self {
        Self {
            budgets,
            tenant_budgets: None,
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

    /// Hold every call also to its tenant's own budget.
    pub fn with_tenant_budgets(mut self, lookup: TenantBudgets) -> Self {
        self.tenant_budgets = Some(lookup);
        self
    }

    /// Replace the wall clock (tests).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The windows of every limit that applies to `request`, each with
    /// what a refusal names.
    fn windows(&self, request: &ChatRequest, tenant: &TenantId, now: UnixMillis) -> Vec<Window> {
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
        if let Some((key, limits)) = lookup(&b.tenants, tenant.as_str()) {
            scopes.push((
                SpendScope::Tenant,
                format!("tenant {tenant}"),
                key_path(&b.path, "tenants", key),
                limits,
            ));
        }
        if let Some(own) = self.tenant_budgets.as_ref().and_then(|f| f(tenant)) {
            scopes.push(own_scope(tenant, &own));
        }
        expand(scopes, now)
    }

    /// Reserve the worst case of `request` against every limit that
    /// applies: `None` when none does, the reservation's id otherwise, or
    /// the refusal.
    pub async fn reserve(&self, request: &ChatRequest) -> Result<Option<String>, ProviderError> {
        if self.budgets.is_empty() && self.tenant_budgets.is_none() {
            return Ok(None);
        }
        let tenant = tenant_of(&request.scope);
        let now = (self.clock)();
        let windows = self.windows(request, &tenant, now);
        if windows.is_empty() {
            return Ok(None);
        }
        if let Some(observe) = &self.observer {
            for w in windows
                .iter()
                .filter(|w| w.store.unit == BudgetUnit::Micros)
            {
                let spent = self
                    .store
                    .spend_since(&tenant, &w.store.scope, w.store.since)
                    .await
                    .map_err(|e| {
                        ProviderError::Unavailable(format!(
                            "cannot check the {} budget for {}: {e}",
                            w.window, w.label
                        ))
                    })?;
                observe(&BudgetReading {
                    scope: &w.label,
                    path: &w.path,
                    window: w.window,
                    spent_micros: spent,
                    limit_micros: w.store.limit,
                });
            }
        }
        let output = request.max_tokens.unwrap_or(DEFAULT_RESERVED_OUTPUT);
        let worst = Usage {
            input_tokens: super::estimate::input_tokens(request),
            output_tokens: u64::from(output),
            ..Usage::default()
        };
        let cost_micros = self.prices.cost_micros(&request.model, &worst).unwrap_or(0);
        let tokens = i64::try_from(worst.input_tokens + worst.output_tokens).unwrap_or(i64::MAX);
        let reservation = NewReservation {
            tenant_id: tenant.clone(),
            model: request.model.clone(),
            agent_id: request.scope.agent.clone(),
            user_id: request.scope.user.clone(),
            cost_micros,
            tokens,
            at: now,
            expires_at: now.saturating_add(RESERVATION_TTL_MS),
        };
        let store_windows: Vec<BudgetWindow> = windows.iter().map(|w| w.store.clone()).collect();
        let reserved = self
            .store
            .reserve(&reservation, &store_windows)
            .await
            .map_err(|e| ProviderError::Unavailable(format!("cannot reserve the budget: {e}")))?;
        match reserved {
            Reserved::Held(id) => Ok(Some(id)),
            Reserved::Refused { window, used } => {
                let w = windows.get(window).unwrap_or(&windows[0]);
                let limit = w.store.limit;
                let (unit_key, amount) = match w.store.unit {
                    BudgetUnit::Micros => ("usd", cost_micros),
                    BudgetUnit::Tokens => ("tokens", tokens),
                };
                let show = |v: i64| match w.store.unit {
                    BudgetUnit::Micros => dollars(v),
                    BudgetUnit::Tokens => format!("{v} tokens"),
                };
                tracing::warn!(tenant = %tenant, scope = %w.label, window = w.window, limit, used, amount, "budget would be exceeded; call refused");
                let message = if used >= limit {
                    format!(
                        "{} budget of {} for {} is spent ({} used); raise {}.{}_{unit_key} or wait until {}",
                        w.window,
                        show(limit),
                        w.label,
                        show(used),
                        w.path,
                        w.window,
                        w.reset,
                    )
                } else {
                    format!(
                        "{} budget of {} for {} has {} left ({} used, counting calls in flight) and this call may use up to {} (its input and max_tokens {output}); lower max_tokens, raise {}.{}_{unit_key} or wait until {}",
                        w.window,
                        show(limit),
                        w.label,
                        show(limit - used),
                        show(used),
                        show(amount),
                        w.path,
                        w.window,
                        w.reset,
                    )
                };
                Err(ProviderError::Budget(message))
            }
        }
    }

    /// Release a reservation and record `entry` in its place.
    pub async fn settle(&self, tenant: &TenantId, id: &str, entry: Option<&UsageEntry>) {
        if let Err(e) = self.store.settle(tenant, id, entry).await {
            tracing::error!(error = %e, "cannot settle a budget reservation");
        }
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
        let hold = self.policy.reserve(&request).await?;
        let provider = self.inner.info().name;
        // What the ledger entry needs, not a copy of the whole request.
        let model = request.model.clone();
        let scope = request.scope.clone();
        let stream = match self.inner.stream(request).await {
            Ok(stream) => stream,
            Err(e) => {
                if let Some(id) = hold {
                    self.policy.settle(&tenant_of(&scope), &id, None).await;
                }
                return Err(e);
            }
        };
        Ok(Box::pin(recording(
            stream,
            self.policy.clone(),
            Call {
                provider,
                model,
                scope,
                hold,
            },
        )))
    }
}

/// What the end of a call records.
struct Call {
    provider: String,
    model: String,
    scope: CallScope,
    /// The reservation to settle, when a limit applied.
    hold: Option<String>,
}

impl Call {
    /// The ledger write for the end of the call with `usage` (none seen:
    /// only the reservation is released); `None` when there is nothing to
    /// write.
    fn finish(&mut self, policy: &Arc<BudgetPolicy>, usage: Option<Usage>) -> Option<Finish> {
        let entry = usage.map(|u| policy.entry(&self.provider, &self.model, &self.scope, u));
        match (self.hold.take(), entry) {
            (None, None) => None,
            (hold, entry) => Some(Finish {
                tenant: tenant_of(&self.scope),
                hold,
                entry,
            }),
        }
    }
}

/// A ledger write at the end of a call.
struct Finish {
    tenant: TenantId,
    hold: Option<String>,
    entry: Option<UsageEntry>,
}

impl Finish {
    async fn write(self, policy: &BudgetPolicy) {
        match (self.hold, self.entry) {
            (Some(id), entry) => policy.settle(&self.tenant, &id, entry.as_ref()).await,
            (None, Some(entry)) => policy.record(&entry).await,
            (None, None) => {}
        }
    }
}

/// Forward the stream; when it ends (done, failed or exhausted), record its
/// usage (settling its reservation) before yielding that last item. If the
/// consumer drops it early, the usage seen so far is recorded by a task on
/// the current runtime.
fn recording(
    stream: ChatStream,
    policy: Arc<BudgetPolicy>,
    call: Call,
) -> impl futures_util::Stream<Item = Result<StreamEvent, ProviderError>> + Send {
    struct State {
        stream: ChatStream,
        policy: Arc<BudgetPolicy>,
        call: Call,
        /// `None` until usage arrives.
        usage: Option<Usage>,
        ended: bool,
    }

    impl State {
        fn take_finish(&mut self) -> Option<Finish> {
            let usage = self.usage.take();
            self.call.finish(&self.policy, usage)
        }
    }

    impl Drop for State {
        fn drop(&mut self) {
            let Some(finish) = self.take_finish() else {
                return;
            };
            let policy = self.policy.clone();
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => {
                    handle.spawn(async move { finish.write(&policy).await });
                }
                Err(_) => {
                    tracing::error!(model = %self.call.model, "usage of a dropped call not recorded: no runtime");
                }
            }
        }
    }

    let state = State {
        stream,
        policy,
        call,
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
            if let Some(finish) = st.take_finish() {
                finish.write(&st.policy).await;
            }
        }
        item.map(|i| (i, st))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_list_every_limit_and_expand_wildcards_per_key_used() {
        let config: BudgetConfig = serde_json::from_value(serde_json::json!({
            "models": {"gpt-4o": {"daily_usd": 1.5}, "*": {"monthly_tokens": 1000}},
            "agents": {"*": {"daily_usd": 2.0}},
            "tenants": {"acme": {"monthly_usd": 10.0}},
        }))
        .unwrap();
        let budgets = Budgets::from_config(&config, "budgets").unwrap();
        let acme = TenantId::new("acme");
        let seen = SeenKeys {
            models: vec!["gpt-4o".into(), "small".into(), "small".into()],
            agents: Vec::new(),
            users: vec!["u1".into()],
        };
        let own = BudgetLimits {
            daily_tokens: Some(500),
            ..BudgetLimits::default()
        };
        let now = 1_764_979_200_000 + 3_600_000; // 2025-12-06 01:00 UTC
        let lines = budgets.lines(&acme, Some(&own), &seen, now);
        let got: Vec<(&str, &str, &str, i64)> = lines
            .iter()
            .map(|l| (l.label.as_str(), l.path.as_str(), l.window, l.store.limit))
            .collect();
        assert_eq!(
            got,
            vec![
                ("model gpt-4o", "budgets.models.gpt-4o", "daily", 1_500_000),
                ("model small", "budgets.models.\"*\"", "monthly", 1000),
                (
                    "every agent (none used this month)",
                    "budgets.agents.\"*\"",
                    "daily",
                    2_000_000
                ),
                ("tenant acme", "budgets.tenants.acme", "monthly", 10_000_000),
                (
                    "tenant acme (its own settings)",
                    "tenants.acme.settings.budgets",
                    "daily",
                    500
                ),
            ]
        );
        assert_eq!(lines[0].store.scope, SpendScope::Model("gpt-4o".into()));
        assert_eq!(lines[0].store.since, 1_764_979_200_000);
        assert_eq!(lines[1].store.unit, BudgetUnit::Tokens);
        assert_eq!(lines[1].reset, "2026-01-01 00:00 UTC");
        // Another tenant gets no tenant line.
        let other = budgets.lines(&TenantId::new("b"), None, &SeenKeys::default(), now);
        assert_eq!(other.len(), 3);
    }

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
