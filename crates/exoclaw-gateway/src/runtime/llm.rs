//! Which LLM an agent talks to. Built once at start-up from the presets, the
//! keys in the environment (`EXOCLAW_<PROVIDER>_API_KEY`), base URLs
//! (`EXOCLAW_<PROVIDER>_BASE_URL` or `providers.<name>.base_url`) and the
//! `models`/`budgets`/`retry` sections; every provider is wrapped in the
//! decorator stack (retry, rate limit, timeouts, budget) and aliases become
//! fallback chains.
//!
//! Resolution for an agent: its `config.provider`/`config.model`, else
//! `EXOCLAW_PROVIDER`/`EXOCLAW_MODEL` (or `agents.defaults.*`), else the first
//! key found in the reference's priority order with its preset's model.

use super::agent_settings::AgentSettings;
use crate::config::Settings;
use exoclaw_core::Secret;
use exoclaw_core::provider::Provider;
use exoclaw_core::store::UsageStore;
use exoclaw_providers::{
    BudgetPolicy, Budgets, ChainBuilder, Jitter, Preset, PriceTable, RateLimiter, RetryPolicy,
    TimeoutPolicy, Wire,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

pub struct Resolved {
    pub provider: Arc<dyn Provider>,
    pub provider_name: String,
    pub model: String,
}

pub struct Llm {
    /// Decorated providers by configured name.
    providers: BTreeMap<String, Arc<dyn Provider>>,
    /// Default model per provider name.
    default_models: BTreeMap<String, String>,
    aliases: BTreeMap<String, Arc<dyn Provider>>,
    default_provider: Option<String>,
    default_model: Option<String>,
    pub prices: Arc<PriceTable>,
}

impl Llm {
    /// `stored_keys`: provider keys from the vault, by provider name. For the
    /// gateway's own providers a key in the environment wins over a stored
    /// one; a tenant's providers (`prefer_stored`) use the tenant's keys
    /// first, so a tenant that brings its own key pays with it.
    pub fn build(
        settings: &Settings,
        client: &exoclaw_egress::EgressClient,
        usage: Arc<dyn UsageStore>,
        stored_keys: &BTreeMap<String, Secret>,
        prefer_stored: bool,
        alerts: Option<&crate::alerts::Alerts>,
        tenant_budgets: Option<exoclaw_providers::TenantBudgets>,
    ) -> anyhow::Result<Self> {
        let c = &settings.config;
        let prices = Arc::new(
            PriceTable::with_overrides(&c.models.pricing, "models.pricing")
                .map_err(|ps| anyhow::anyhow!("models.pricing: {}", join(ps)))?,
        );
        let budgets = Budgets::from_config(&c.budgets, "budgets")
            .map_err(|ps| anyhow::anyhow!("budgets: {}", join(ps)))?;
        if !prefer_stored {
            for problem in unenforceable_budgets(settings) {
                tracing::warn!("{problem}");
            }
        }
        let limits: HashMap<String, exoclaw_providers::ModelRate> = c
            .models
            .limits
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let mut chain = ChainBuilder::new()
            .retry(RetryPolicy {
                max_attempts: c.retry.max_attempts,
                base_delay: Duration::from_millis(c.retry.base_delay_ms),
                max_delay: Duration::from_millis(c.retry.max_delay_ms),
                max_retry_after: Duration::from_secs(c.retry.max_retry_after_sec),
                jitter: Jitter::Full,
            })
            .budget(Arc::new(budget_policy(
                budgets,
                usage,
                &prices,
                alerts,
                tenant_budgets,
            )));
        if !limits.is_empty() {
            chain = chain.rate_limiter(Arc::new(RateLimiter::new(limits, Duration::from_secs(30))));
        }

        let mut providers = BTreeMap::new();
        let mut default_models = BTreeMap::new();
        let env = &settings.env;
        let custom: Vec<(String, Preset)> = c
            .providers
            .keys()
            .filter(|n| exoclaw_providers::preset(n).is_none())
            .map(|n| (n.clone(), custom_preset(n)))
            .collect();
        let presets = exoclaw_providers::PRESETS
            .iter()
            .map(|p| (p.name.to_owned(), *p));
        for (name, preset) in presets.chain(custom) {
            let key_env = format!(
                "EXOCLAW_{}_API_KEY",
                crate::config::providers::env_name(&name)
            );
            let from_env = env.get(&key_env).map(Secret::new);
            let stored = stored_keys.get(&name).cloned();
            let key = if prefer_stored {
                stored.or(from_env)
            } else {
                from_env.or(stored)
            };
            let base =
                crate::config::providers::configured_base_url(settings, &name).map(|b| b.url);
            let configured = key.is_some() || (!preset.key_required && base.is_some());
            if !configured {
                continue;
            }
            let p = c.providers.get(&name);
            let compat = p.map(|p| p.compat).unwrap_or_default().settings();
            let concrete: Arc<dyn Provider> = if preset.name == name {
                preset
                    .provider_with(client.clone(), base.as_deref(), key, compat)
                    .map_err(|e| anyhow::anyhow!("provider {name}: {e}"))?
            } else {
                // A custom name: OpenAI-compatible at the configured URL.
                let base = base.as_deref().unwrap_or_default();
                Arc::new(
                    exoclaw_providers::OpenAiCompatProvider::new(client.clone(), base, key)
                        .map_err(|e| anyhow::anyhow!("provider {name}: {e}"))?
                        .with_name(name.clone())
                        .with_compat(compat),
                )
            };
            let timeouts = TimeoutPolicy {
                request: Duration::from_secs(p.and_then(|p| p.timeout_sec).unwrap_or(120)),
                stall: Duration::from_secs(p.and_then(|p| p.stall_timeout_sec).unwrap_or(60)),
            };
            providers.insert(
                name.clone(),
                chain.clone().timeouts(timeouts).wrap(concrete),
            );
            if let Some(m) = preset.default_model {
                default_models.insert(name.clone(), m.to_owned());
            }
        }

        let mut aliases = BTreeMap::new();
        for (alias, routes) in &c.models.aliases {
            let mut chain_routes = Vec::new();
            for r in routes {
                // Build the bare route again: the alias's Fallback wraps each
                // route in its own decorator stack.
                let Some(p) = providers.get(&r.provider) else {
                    tracing::warn!(alias, provider = %r.provider, "alias route skipped: provider not configured");
                    continue;
                };
                chain_routes.push((p.clone(), r.model.clone()));
            }
            if !chain_routes.is_empty() {
                let fallback: Arc<dyn Provider> = Arc::new(exoclaw_providers::Fallback::new(
                    alias.clone(),
                    chain_routes
                        .into_iter()
                        .map(|(provider, model)| exoclaw_providers::Route { provider, model })
                        .collect(),
                ));
                aliases.insert(alias.clone(), fallback);
            }
        }

        let default_provider = c
            .agents
            .defaults
            .provider
            .clone()
            .or_else(|| {
                exoclaw_providers::detect_default(|var| env.get(var).is_some())
                    .map(|p| p.name.to_owned())
            })
            .or_else(|| {
                (providers.len() == 1)
                    .then(|| providers.keys().next().cloned())
                    .flatten()
            });
        Ok(Self {
            providers,
            default_models,
            aliases,
            default_provider,
            default_model: c.agents.defaults.model.clone(),
            prices,
        })
    }

    /// Names of the configured providers.
    pub fn provider_names(&self) -> Vec<String> {
        self.providers.keys().cloned().collect()
    }

    pub fn resolve(&self, settings: &AgentSettings) -> Result<Resolved, String> {
        let model = settings
            .model
            .clone()
            .or_else(|| self.default_model.clone());
        if let Some(m) = &model
            && let Some(alias) = self.aliases.get(m)
        {
            return Ok(Resolved {
                provider: alias.clone(),
                provider_name: format!("alias:{m}"),
                model: m.clone(),
            });
        }
        let name = settings.provider.clone().or_else(|| self.default_provider.clone()).ok_or_else(|| {
            "no LLM provider is configured: set a key such as EXOCLAW_OPENAI_API_KEY or EXOCLAW_ANTHROPIC_API_KEY".to_owned()
        })?;
        let provider = self.providers.get(&name).ok_or_else(|| {
            format!(
                "provider {name:?} is not configured: set EXOCLAW_{}_API_KEY (or its base URL)",
                crate::config::providers::env_name(&name)
            )
        })?;
        let model = model
            .or_else(|| self.default_models.get(&name).cloned())
            .ok_or_else(|| {
                format!("no model for provider {name:?}: set the agent's model or EXOCLAW_MODEL")
            })?;
        Ok(Resolved {
            provider: provider.clone(),
            provider_name: name,
            model,
        })
    }
}

/// The price table as the agent loop's pricing port (unknown models cost 0
/// and are logged once per call at debug level).
pub struct Prices(pub Arc<PriceTable>);

impl exoclaw_core::agent::Pricing for Prices {
    fn cost_micros(&self, model: &str, usage: &exoclaw_core::provider::Usage) -> i64 {
        self.0.cost_micros(model, usage).unwrap_or_else(|| {
            tracing::debug!(model, "no price for this model; counted as 0");
            0
        })
    }
}

/// A configured provider that is not a preset: OpenAI-compatible, key
/// optional (the name is set on the provider when it is built).
fn custom_preset(_name: &str) -> Preset {
    let mut p = exoclaw_providers::preset("custom")
        .copied()
        .unwrap_or(Preset {
            name: "custom",
            wire: Wire::OpenAi,
            base_url: "",
            key_env: "EXOCLAW_CUSTOM_API_KEY",
            base_url_env: "EXOCLAW_CUSTOM_BASE_URL",
            default_model: None,
            key_required: false,
            max_tokens_field: exoclaw_providers::MaxTokensField::MaxTokens,
        });
    p.key_required = false;
    p
}

fn join(ps: Vec<exoclaw_providers::ConfigProblem>) -> String {
    ps.into_iter()
        .map(|p| format!("{}: {}", p.path, p.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The budget policy, reporting every window it reads to the alerts, and
/// holding each call also to its tenant's own budget.
fn budget_policy(
    budgets: Budgets,
    usage: Arc<dyn UsageStore>,
    prices: &Arc<PriceTable>,
    alerts: Option<&crate::alerts::Alerts>,
    tenant_budgets: Option<exoclaw_providers::TenantBudgets>,
) -> BudgetPolicy {
    let mut policy = BudgetPolicy::new(budgets, usage, prices.clone());
    if let Some(lookup) = tenant_budgets {
        policy = policy.with_tenant_budgets(lookup);
    }
    match alerts {
        Some(a) => {
            let a = a.clone();
            policy.with_observer(Arc::new(move |r| a.budget_reading(r)))
        }
        None => policy,
    }
}

/// The USD budgets that cannot bind because a model they apply to has no
/// price (its calls cost $0), one sentence with the fix per model. The
/// models are those the configuration names: `agents.defaults.model`, the
/// aliases' routes and the keys of `budgets.models`.
pub fn unenforceable_budgets(settings: &Settings) -> Vec<String> {
    let c = &settings.config;
    let Ok(prices) = PriceTable::with_overrides(&c.models.pricing, "models.pricing") else {
        return Vec::new();
    };
    let Ok(budgets) = Budgets::from_config(&c.budgets, "budgets") else {
        return Vec::new();
    };
    let mut models: std::collections::BTreeSet<String> = c
        .models
        .aliases
        .values()
        .flatten()
        .map(|r| r.model.clone())
        .collect();
    if let Some(m) = &c.agents.defaults.model
        && !c.models.aliases.contains_key(m)
    {
        models.insert(m.clone());
    }
    models.extend(c.budgets.models.keys().filter(|k| *k != "*").cloned());
    models
        .into_iter()
        .filter_map(|model| {
            let paths = budgets.unenforceable_usd(&model, &prices);
            (!paths.is_empty()).then(|| {
                format!(
                    "USD budget not enforceable for model {model}: it has no price, so its calls cost $0 against {}; set models.pricing.\"{model}\" or a token budget (daily_tokens, monthly_tokens)",
                    paths.join(", ")
                )
            })
        })
        .collect()
}
