//! Per-tenant limits: a tenant's own settings (sandbox, egress, budgets),
//! validated so they only ever narrow the gateway's configuration, the
//! effective limits after narrowing, and [`TenantLimits`], the in-memory
//! copy the tools and the budget decorator read on every call.
//!
//! Narrowing:
//! - `sandbox.mode` may only be as strict or stricter than
//!   `agents.defaults.sandbox.mode` (`all` > `non-main` > `off`);
//!   `sandbox.network_enabled` may turn network off, never on;
//!   `memory_mb`, `timeout_sec` and `max_pids` may only be lower.
//! - `egress.allow_domains` must lie inside `egress.allow_domains` when the
//!   gateway has one; at run time it is one more layer of domain rules, so a
//!   host the gateway (or `tools.web_fetch`) refuses stays refused.
//!   `egress.deny_domains` adds refusals. A sandbox with network reaches
//!   out only through an egress proxy; a tenant with its own egress lists
//!   gets a proxy of its own with both layers ([`ProxyFor`], started on its
//!   first command), and runs without network where none can be had (fail
//!   closed).
//! - `budgets` may only be lower than `budgets.tenants.<id>` (or `"*"`); both
//!   apply to every call, so the effective budget is the lower of the two.
//!
//! Freshness: writing a tenant's settings bumps its directory version (a
//! store trigger, schema 19), which every turn already reads
//! (`runtime::directory`). [`TenantLimits::sync`] reloads a tenant's
//! settings only when that version moved, so a change made anywhere (this
//! gateway, another one on the same PostgreSQL, the CLI) applies from the
//! tenant's next turn, and a call costs no database read.

use crate::config::Settings;
use crate::config::agents::SandboxMode;
use exoclaw_core::TenantId;
use exoclaw_core::model::Tenant;
use exoclaw_core::store::{StoreError, StoreResult, TenantStore};
use exoclaw_egress::{DomainPattern, DomainRules};
use exoclaw_providers::BudgetLimits;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The stable code of settings that are malformed.
pub const CODE_INVALID: &str = "tenant.settings_invalid";
/// The stable code of settings that would widen the gateway's.
pub const CODE_WIDENS: &str = "tenant.settings_widen";

/// Domain patterns a list may hold.
pub const MAX_DOMAINS: usize = 256;

/// A tenant's own settings as stored (every field optional: unset keeps
/// the gateway's value).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantSettings {
    #[serde(skip_serializing_if = "SandboxSettings::is_empty")]
    pub sandbox: SandboxSettings,
    #[serde(skip_serializing_if = "EgressSettings::is_empty")]
    pub egress: EgressSettings,
    #[serde(skip_serializing_if = "BudgetSettings::is_empty")]
    pub budgets: BudgetSettings,
}

/// Mirrors `agents.defaults.sandbox`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<SandboxMode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_sec: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_pids: Option<u32>,
}

impl SandboxSettings {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Mirrors `egress.allow_domains` and `tools.web_fetch.deny_domains`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EgressSettings {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_domains: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deny_domains: Vec<String>,
}

impl EgressSettings {
    pub fn is_empty(&self) -> bool {
        self.allow_domains.is_empty() && self.deny_domains.is_empty()
    }
}

/// Mirrors `budgets.tenants.<id>`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily_usd: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monthly_usd: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monthly_tokens: Option<u64>,
}

impl BudgetSettings {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    fn limits(self) -> BudgetLimits {
        BudgetLimits {
            daily_usd: self.daily_usd,
            monthly_usd: self.monthly_usd,
            daily_tokens: self.daily_tokens,
            monthly_tokens: self.monthly_tokens,
        }
    }
}

/// Settings refused: the stable code ([`CODE_INVALID`] or
/// [`CODE_WIDENS`]) and every problem, each naming its field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", problems.join("; "))]
pub struct Rejection {
    pub code: &'static str,
    pub problems: Vec<String>,
}

/// How strict a sandbox mode is: `off` < `non-main` < `all`.
fn strictness(mode: SandboxMode) -> u8 {
    match mode {
        SandboxMode::Off => 0,
        SandboxMode::NonMain => 1,
        SandboxMode::All => 2,
    }
}

fn mode_name(mode: SandboxMode) -> &'static str {
    match mode {
        SandboxMode::All => "all",
        SandboxMode::NonMain => "non-main",
        SandboxMode::Off => "off",
    }
}

/// Whether every name `inner` matches is matched by `outer`.
fn covers(outer: &DomainPattern, inner: &DomainPattern) -> bool {
    let (o, i) = (outer.to_string(), inner.to_string());
    match (o.strip_prefix("*."), i.strip_prefix("*.")) {
        (None, None) => o == i,
        (None, Some(_)) => false,
        (Some(suffix), None) => outer.matches(&i) && i.len() > suffix.len(),
        (Some(os), Some(is)) => is == os || is.ends_with(&format!(".{os}")),
    }
}

fn plausible_usd(v: f64) -> bool {
    v.is_finite() && (0.0..=1.0e9).contains(&v)
}

/// The configured budget of `tenant` (`budgets.tenants.<id>`, else
/// `"*"`), with its config path.
fn configured_budget<'a>(
    settings: &'a Settings,
    tenant: &TenantId,
) -> Option<(String, &'a BudgetLimits)> {
    let t = &settings.config.budgets.tenants;
    t.get(tenant.as_str())
        .map(|l| (format!("budgets.tenants.{tenant}"), l))
        .or_else(|| t.get("*").map(|l| ("budgets.tenants.\"*\"".to_owned(), l)))
}

fn show_list(list: &[String]) -> String {
    if list.is_empty() {
        "[] (every public host)".to_owned()
    } else {
        format!("[{}]", list.join(", "))
    }
}

/// Parse `raw` and check that it only narrows the gateway's configuration;
/// every problem is reported at once.
pub fn validate(
    settings: &Settings,
    tenant: &TenantId,
    raw: &serde_json::Value,
) -> Result<TenantSettings, Rejection> {
    let parsed: TenantSettings = serde_json::from_value(raw.clone()).map_err(|e| Rejection {
        code: CODE_INVALID,
        problems: vec![format!("settings: {e}")],
    })?;
    let mut invalid = Vec::new();
    let mut widens = Vec::new();
    let c = &settings.config;
    let g = &c.agents.defaults.sandbox;
    let s = &parsed.sandbox;
    if let Some(mode) = s.mode
        && strictness(mode) < strictness(g.mode)
    {
        widens.push(format!(
            "sandbox.mode: {:?} would widen the gateway's agents.defaults.sandbox.mode ({:?}); a tenant may only keep or tighten it (all > non-main > off)",
            mode_name(mode),
            mode_name(g.mode)
        ));
    }
    if s.network_enabled == Some(true) && !g.network_enabled {
        widens.push("sandbox.network_enabled: true would widen the gateway's agents.defaults.sandbox.network_enabled (false)".to_owned());
    }
    let mut at_most = |field: &str, value: Option<u64>, gateway: u64| {
        match value {
        Some(0) => invalid.push(format!("sandbox.{field}: must be at least 1")),
        Some(v) if v > gateway => widens.push(format!(
            "sandbox.{field}: {v} would widen the gateway's agents.defaults.sandbox.{field} ({gateway}); a tenant may only lower it"
        )),
        _ => {}
    }
    };
    at_most(
        "memory_mb",
        s.memory_mb.map(u64::from),
        u64::from(g.memory_mb),
    );
    at_most("timeout_sec", s.timeout_sec, g.timeout_sec);
    at_most("max_pids", s.max_pids.map(u64::from), u64::from(g.max_pids));

    let gateway_allow: Vec<DomainPattern> = c
        .egress
        .allow_domains
        .iter()
        .filter_map(|p| p.parse().ok())
        .collect();
    for (field, list) in [
        ("allow_domains", &parsed.egress.allow_domains),
        ("deny_domains", &parsed.egress.deny_domains),
    ] {
        if list.len() > MAX_DOMAINS {
            invalid.push(format!(
                "egress.{field}: at most {MAX_DOMAINS} patterns, not {}",
                list.len()
            ));
            continue;
        }
        for p in list {
            match p.parse::<DomainPattern>() {
                Err(e) => invalid.push(format!("egress.{field}: {e}")),
                Ok(pattern) => {
                    if field == "allow_domains"
                        && !gateway_allow.is_empty()
                        && !gateway_allow.iter().any(|g| covers(g, &pattern))
                    {
                        widens.push(format!(
                            "egress.allow_domains: {:?} is outside the gateway's egress.allow_domains {}; a tenant may only allow hosts the gateway allows",
                            pattern.to_string(),
                            show_list(&c.egress.allow_domains)
                        ));
                    }
                }
            }
        }
    }

    let b = parsed.budgets;
    let configured = configured_budget(settings, tenant);
    for (field, value) in [("daily_usd", b.daily_usd), ("monthly_usd", b.monthly_usd)] {
        let Some(v) = value else { continue };
        if !plausible_usd(v) {
            invalid.push(format!(
                "budgets.{field}: must be a non-negative number of dollars (at most 1e9), not {v}"
            ));
            continue;
        }
        let limit = configured.as_ref().and_then(|(_, l)| match field {
            "daily_usd" => l.daily_usd,
            _ => l.monthly_usd,
        });
        if let (Some(limit), Some((path, _))) = (limit, &configured)
            && v > limit
        {
            widens.push(format!(
                "budgets.{field}: {v} would widen the gateway's {path}.{field} ({limit}); a tenant may only lower it"
            ));
        }
    }
    for (field, value) in [
        ("daily_tokens", b.daily_tokens),
        ("monthly_tokens", b.monthly_tokens),
    ] {
        let Some(v) = value else { continue };
        let limit = configured.as_ref().and_then(|(_, l)| match field {
            "daily_tokens" => l.daily_tokens,
            _ => l.monthly_tokens,
        });
        if let (Some(limit), Some((path, _))) = (limit, &configured)
            && v > limit
        {
            widens.push(format!(
                "budgets.{field}: {v} would widen the gateway's {path}.{field} ({limit}); a tenant may only lower it"
            ));
        }
    }
    if !invalid.is_empty() {
        invalid.extend(widens);
        return Err(Rejection {
            code: CODE_INVALID,
            problems: invalid,
        });
    }
    if !widens.is_empty() {
        return Err(Rejection {
            code: CODE_WIDENS,
            problems: widens,
        });
    }
    Ok(parsed)
}

/// Apply a JSON merge patch (RFC 7386) to `target`: objects merge key by
/// key, `null` removes a key, anything else replaces.
pub fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    use serde_json::Value;
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// Why [`update`] changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("no tenant {0}")]
    NotFound(TenantId),
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// Another change came in between the read and the write.
    #[error("the settings of tenant {0} changed meanwhile; read them again and retry")]
    Conflict(TenantId),
    #[error(transparent)]
    Store(StoreError),
}

/// Change a tenant's settings: `patch` is a JSON merge patch on the stored
/// settings (`null` resets a field to the gateway's value); the result must
/// only narrow the gateway's configuration ([`validate`]). Stored in its
/// normal form; the caller audits (`tenant.update`).
pub async fn update(
    store: &(impl TenantStore + ?Sized),
    settings: &Settings,
    tenant: &TenantId,
    patch: &serde_json::Value,
) -> Result<Tenant, UpdateError> {
    let current = store
        .get_tenant(tenant)
        .await
        .map_err(UpdateError::Store)?
        .ok_or_else(|| UpdateError::NotFound(tenant.clone()))?;
    if !patch.is_object() {
        return Err(Rejection {
            code: CODE_INVALID,
            problems: vec!["settings: must be a JSON object (a merge patch)".to_owned()],
        }
        .into());
    }
    let version = current.settings_version;
    let mut merged = current.settings;
    merge_patch(&mut merged, patch);
    let valid = validate(settings, tenant, &merged)?;
    let normal = serde_json::to_value(&valid)
        .map_err(|e| UpdateError::Store(StoreError::Invalid(e.to_string())))?;
    // Written only over what was read: a concurrent change is not lost.
    match store
        .set_tenant_settings(tenant, &normal, Some(version))
        .await
    {
        Ok(t) => Ok(t),
        Err(StoreError::NotFound) => Err(UpdateError::NotFound(tenant.clone())),
        Err(StoreError::Conflict(_)) => Err(UpdateError::Conflict(tenant.clone())),
        Err(e) => Err(UpdateError::Store(e)),
    }
}

/// The sandbox a tenant's commands get.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EffectiveSandbox {
    pub mode: SandboxMode,
    pub network_enabled: bool,
    pub memory_mb: u32,
    pub timeout_sec: u64,
    pub max_pids: u32,
    /// How the tenant's network is policed, when not by the gateway's
    /// proxy alone.
    pub network_note: Option<&'static str>,
}

/// The socket of an egress proxy that applies the gateway's rules and the
/// tenant's `rules` for settings version `version` (started if needed);
/// `None` when there can be none (the tenant's commands then run without
/// network).
pub type ProxyFor =
    Arc<dyn Fn(&TenantId, i64, &DomainRules) -> Option<std::path::PathBuf> + Send + Sync>;

/// A tenant's limits after narrowing: what applies to its calls.
#[derive(Clone, Debug)]
pub struct Effective {
    /// The settings as stored and parsed.
    pub settings: TenantSettings,
    pub settings_version: i64,
    pub sandbox: EffectiveSandbox,
    /// The allowlist that applies to the web tools (the tenant's when it
    /// has one, else the gateway's), and the tenant's deny list.
    pub allow_domains: Vec<String>,
    pub deny_domains: Vec<String>,
    /// The tenant's own lists as one more rule layer (`None`: no lists).
    rules: Option<DomainRules>,
    /// The lower of the configured budget and the tenant's, per limit.
    pub budgets: BudgetSettings,
    /// The tenant's own budget (`None`: no limit of its own).
    own_budgets: Option<BudgetLimits>,
}

fn min_opt<T: PartialOrd + Copy>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if y < x { y } else { x }),
        (x, None) => x,
        (None, y) => y,
    }
}

/// The narrowest of the gateway's configuration and `s` (whatever was
/// stored, also after the gateway's configuration changed since).
pub fn effective(
    settings: &Settings,
    tenant: &TenantId,
    s: TenantSettings,
    settings_version: i64,
) -> Result<Effective, exoclaw_egress::PatternError> {
    let c = &settings.config;
    let g = &c.agents.defaults.sandbox;
    let mode = match s.sandbox.mode {
        Some(m) if strictness(m) > strictness(g.mode) => m,
        _ => g.mode,
    };
    let own_egress = !s.egress.is_empty();
    let wanted = g.network_enabled && s.sandbox.network_enabled != Some(false);
    let sandbox = EffectiveSandbox {
        mode,
        network_enabled: wanted,
        memory_mb: s.sandbox.memory_mb.map_or(g.memory_mb, |m| m.min(g.memory_mb)),
        timeout_sec: s
            .sandbox
            .timeout_sec
            .map_or(g.timeout_sec, |t| t.min(g.timeout_sec)),
        max_pids: s.sandbox.max_pids.map_or(g.max_pids, |p| p.min(g.max_pids)),
        network_note: (wanted && own_egress).then_some(
            "through a proxy of the tenant's own that applies its egress lists on top of the gateway's",
        ),
    };
    let rules = if own_egress {
        Some(DomainRules::new(
            "the tenant's egress settings",
            &s.egress.allow_domains,
            &s.egress.deny_domains,
        )?)
    } else {
        None
    };
    let allow_domains = if s.egress.allow_domains.is_empty() {
        c.egress.allow_domains.clone()
    } else {
        s.egress.allow_domains.clone()
    };
    let configured = configured_budget(settings, tenant).map(|(_, l)| l.clone());
    let conf = configured.unwrap_or_default();
    let own = s.budgets;
    let budgets = BudgetSettings {
        daily_usd: min_opt(conf.daily_usd, own.daily_usd),
        monthly_usd: min_opt(conf.monthly_usd, own.monthly_usd),
        daily_tokens: min_opt(conf.daily_tokens, own.daily_tokens),
        monthly_tokens: min_opt(conf.monthly_tokens, own.monthly_tokens),
    };
    Ok(Effective {
        deny_domains: s.egress.deny_domains.clone(),
        own_budgets: (!own.is_empty()).then(|| own.limits()),
        settings: s,
        settings_version,
        sandbox,
        allow_domains,
        rules,
        budgets,
    })
}

/// [`effective`] of a stored tenant; stored settings that no longer parse
/// are corrupt (the tenant's calls fail rather than run unnarrowed).
pub fn effective_of(settings: &Settings, tenant: &Tenant) -> StoreResult<Effective> {
    let corrupt = |e: &dyn std::fmt::Display| {
        StoreError::Corrupt(format!(
            "the settings of tenant {} are unusable: {e}",
            tenant.id
        ))
    };
    let parsed: TenantSettings =
        serde_json::from_value(tenant.settings.clone()).map_err(|e| corrupt(&e))?;
    effective(settings, &tenant.id, parsed, tenant.settings_version).map_err(|e| corrupt(&e))
}

impl Effective {
    /// Narrow one command's sandbox policy.
    pub fn narrow_sandbox(&self, p: &mut exoclaw_tools::sandbox::SandboxPolicy) {
        use exoclaw_tools::sandbox::SandboxMode as Mode;
        let s = &self.sandbox;
        let rank = |m: Mode| match m {
            Mode::Off => 0,
            Mode::NonMain => 1,
            Mode::All => 2,
        };
        let mine = match s.mode {
            SandboxMode::All => Mode::All,
            SandboxMode::NonMain => Mode::NonMain,
            SandboxMode::Off => Mode::Off,
        };
        if rank(mine) > rank(p.mode) {
            p.mode = mine;
        }
        if !s.network_enabled {
            p.network_enabled = false;
            p.proxy = None;
        }
        p.memory_mb = p.memory_mb.min(u64::from(s.memory_mb));
        p.timeout = p.timeout.min(Duration::from_secs(s.timeout_sec));
        p.max_pids = p.max_pids.min(s.max_pids);
    }
}

struct Entry {
    /// The directory version the settings were read at (`None`: written
    /// here, to be re-read at the next sync).
    directory_version: Option<i64>,
    limits: Arc<Effective>,
}

/// Every tenant's effective limits, in memory (see the module docs).
pub struct TenantLimits {
    settings: Arc<Settings>,
    entries: RwLock<HashMap<TenantId, Entry>>,
    /// Tenants' own egress proxies (unset: tenants with egress lists run
    /// commands without network).
    proxies: std::sync::OnceLock<ProxyFor>,
}

impl TenantLimits {
    pub fn new(settings: Arc<Settings>) -> Arc<Self> {
        Arc::new(Self {
            settings,
            entries: RwLock::default(),
            proxies: std::sync::OnceLock::new(),
        })
    }

    /// Where tenants with egress lists of their own get their proxy.
    pub fn set_proxies(&self, proxies: ProxyFor) {
        let _ = self.proxies.set(proxies);
    }

    /// Narrow one command's sandbox for `tenant`: its sandbox settings and,
    /// when it has egress lists and network, its own proxy (or no network).
    pub fn narrow(&self, tenant: &TenantId, policy: &mut exoclaw_tools::sandbox::SandboxPolicy) {
        let Some(l) = self.get(tenant) else {
            return;
        };
        l.narrow_sandbox(policy);
        if let Some(rules) = &l.rules
            && policy.network_enabled
        {
            let own = self
                .proxies
                .get()
                .and_then(|f| f(tenant, l.settings_version, rules));
            match own {
                Some(socket) => {
                    policy.proxy = Some(exoclaw_tools::sandbox::EgressProxy::Unix(socket));
                }
                None => {
                    policy.network_enabled = false;
                    policy.proxy = None;
                }
            }
        }
    }

    /// The tenant's limits as last read (`None`: none read yet, the
    /// gateway's apply).
    pub fn get(&self, tenant: &TenantId) -> Option<Arc<Effective>> {
        self.entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(tenant)
            .map(|e| e.limits.clone())
    }

    fn put(&self, tenant: &TenantId, directory_version: Option<i64>, limits: Arc<Effective>) {
        // Never emptied: a turn that synced its tenant must find it for
        // every call it makes (an entry dropped in between would apply the
        // gateway's wider limits). One small entry per tenant an owner
        // created.
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.insert(
            tenant.clone(),
            Entry {
                directory_version,
                limits,
            },
        );
    }

    /// Keep `stored` (just written here): it applies at once, and the
    /// next sync reads it again under its directory version.
    pub fn apply(&self, stored: &Tenant) -> StoreResult<Arc<Effective>> {
        let limits = Arc::new(effective_of(&self.settings, stored)?);
        self.put(&stored.id, None, limits.clone());
        Ok(limits)
    }

    /// Make the tenant's limits current as of `directory_version` (read by
    /// the turn): reads the tenant only when the version moved (or the
    /// backend keeps none).
    pub async fn sync(
        &self,
        store: &(impl TenantStore + ?Sized),
        tenant: &TenantId,
        directory_version: Option<i64>,
    ) -> StoreResult<()> {
        if directory_version.is_some() {
            let entries = self
                .entries
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if entries
                .get(tenant)
                .is_some_and(|e| e.directory_version == directory_version)
            {
                return Ok(());
            }
        }
        let Some(stored) = store.get_tenant(tenant).await? else {
            return Ok(());
        };
        let limits = Arc::new(effective_of(&self.settings, &stored)?);
        self.put(tenant, directory_version, limits);
        Ok(())
    }

    /// The exec tools' per-call narrowing.
    pub fn sandbox_narrowing(self: &Arc<Self>) -> exoclaw_tools::exec::Narrowing {
        let me = self.clone();
        Arc::new(
            move |ctx: &exoclaw_core::tool::ToolContext,
                  policy: &mut exoclaw_tools::sandbox::SandboxPolicy| {
                me.narrow(&ctx.tenant, policy);
            },
        )
    }

    /// The web tools' per-call rules.
    pub fn egress_rules(self: &Arc<Self>) -> exoclaw_tools::web::TenantRules {
        let me = self.clone();
        Arc::new(move |tenant: &TenantId| me.get(tenant).and_then(|l| l.rules.clone()))
    }

    /// The budget decorator's per-call lookup.
    pub fn budgets(self: &Arc<Self>) -> exoclaw_providers::TenantBudgets {
        let me = self.clone();
        Arc::new(move |tenant: &TenantId| me.get(tenant).and_then(|l| l.own_budgets.clone()))
    }
}

#[cfg(test)]
mod tests;
