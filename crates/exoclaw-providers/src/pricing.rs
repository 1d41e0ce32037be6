//! Model prices and call cost in integer micro-dollars.
//!
//! The built-in table holds the vendors' published list prices (USD per
//! million tokens, for prompts under any long-context surcharge) as of late
//! 2025. They are defaults: prices change, so `config.json` can override any
//! entry or add new ones ([`PriceConfig`]). Lookup is by the longest matching
//! prefix of the model name, case-insensitive, with a vendor prefix such as
//! `anthropic/` (OpenRouter) ignored and `.` treated as `-`, so
//! `claude-sonnet-4-5-20250929` and `anthropic/claude-sonnet-4.5` both find
//! `claude-sonnet-4`.
//!
//! Usage is expected in the normalised form (`input_tokens` excludes cached
//! tokens), see [`crate::openai`].

use exoclaw_core::provider::Usage;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// Prices in micro-dollars per million tokens (numerically: USD per token
/// × 10^12, or USD per million tokens × 10^6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelPrice {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

const fn micros(usd: f64) -> u64 {
    (usd * 1_000_000.0 + 0.5) as u64
}

/// A price from USD per million tokens; cache reads and writes at the input
/// price (vendors that do not report cache tokens never use them).
const fn usd(input: f64, output: f64) -> ModelPrice {
    ModelPrice {
        input: micros(input),
        output: micros(output),
        cache_read: micros(input),
        cache_write: micros(input),
    }
}

const fn usd_cached(input: f64, output: f64, cache_read: f64, cache_write: f64) -> ModelPrice {
    ModelPrice {
        input: micros(input),
        output: micros(output),
        cache_read: micros(cache_read),
        cache_write: micros(cache_write),
    }
}

/// The built-in list prices (USD per million tokens: input, output, cache
/// read, cache write).
pub const DEFAULT_PRICES: &[(&str, ModelPrice)] = &[
    // Anthropic: cache writes (5 min) cost 1.25x input, reads 0.1x.
    ("claude-opus-4-5", usd_cached(5.0, 25.0, 0.5, 6.25)),
    ("claude-opus-4", usd_cached(15.0, 75.0, 1.5, 18.75)),
    ("claude-3-opus", usd_cached(15.0, 75.0, 1.5, 18.75)),
    ("claude-sonnet-4", usd_cached(3.0, 15.0, 0.3, 3.75)),
    ("claude-3-7-sonnet", usd_cached(3.0, 15.0, 0.3, 3.75)),
    ("claude-3-5-sonnet", usd_cached(3.0, 15.0, 0.3, 3.75)),
    ("claude-haiku-4-5", usd_cached(1.0, 5.0, 0.1, 1.25)),
    ("claude-3-5-haiku", usd_cached(0.8, 4.0, 0.08, 1.0)),
    ("claude-3-haiku", usd_cached(0.25, 1.25, 0.03, 0.3)),
    // OpenAI: cached input discounted, no charge for writing the cache.
    ("gpt-4o", usd_cached(2.5, 10.0, 1.25, 2.5)),
    ("gpt-4o-mini", usd_cached(0.15, 0.6, 0.075, 0.15)),
    ("gpt-4.1", usd_cached(2.0, 8.0, 0.5, 2.0)),
    ("gpt-4.1-mini", usd_cached(0.4, 1.6, 0.1, 0.4)),
    ("gpt-4.1-nano", usd_cached(0.1, 0.4, 0.025, 0.1)),
    ("gpt-5", usd_cached(1.25, 10.0, 0.125, 1.25)),
    ("gpt-5-mini", usd_cached(0.25, 2.0, 0.025, 0.25)),
    ("gpt-5-nano", usd_cached(0.05, 0.4, 0.005, 0.05)),
    ("o1", usd_cached(15.0, 60.0, 7.5, 15.0)),
    ("o3", usd_cached(2.0, 8.0, 0.5, 2.0)),
    ("o3-mini", usd_cached(1.1, 4.4, 0.55, 1.1)),
    ("o3-pro", usd(20.0, 80.0)),
    ("o4-mini", usd_cached(1.1, 4.4, 0.275, 1.1)),
    // DeepSeek (V3.2 list prices; cache hits 0.1x).
    ("deepseek-chat", usd_cached(0.28, 0.42, 0.028, 0.28)),
    ("deepseek-reasoner", usd_cached(0.28, 0.42, 0.028, 0.28)),
    // Groq
    ("llama-3.3-70b", usd(0.59, 0.79)),
    ("llama-3.1-8b", usd(0.05, 0.08)),
    ("gpt-oss-120b", usd(0.15, 0.75)),
    ("gpt-oss-20b", usd(0.1, 0.5)),
    // Google Gemini (prompts up to 200k tokens)
    ("gemini-2.5-pro", usd_cached(1.25, 10.0, 0.31, 1.25)),
    ("gemini-2.5-flash", usd_cached(0.3, 2.5, 0.075, 0.3)),
    ("gemini-2.5-flash-lite", usd_cached(0.1, 0.4, 0.025, 0.1)),
    ("gemini-2.0-flash", usd_cached(0.1, 0.4, 0.025, 0.1)),
    // Mistral
    ("mistral-large", usd(2.0, 6.0)),
    ("mistral-medium", usd(0.4, 2.0)),
    ("mistral-small", usd(0.1, 0.3)),
    ("codestral", usd(0.3, 0.9)),
    // xAI
    ("grok-4", usd_cached(3.0, 15.0, 0.75, 3.0)),
    ("grok-3", usd_cached(3.0, 15.0, 0.75, 3.0)),
    ("grok-3-mini", usd_cached(0.3, 0.5, 0.075, 0.3)),
    // MiniMax
    ("minimax-m1", usd(0.4, 2.2)),
    ("minimax-m2", usd_cached(0.3, 1.2, 0.03, 0.375)),
    // Cohere
    ("command-a", usd(2.5, 10.0)),
    ("command-r-plus", usd(2.5, 10.0)),
    ("command-r", usd(0.15, 0.6)),
    // Perplexity (token prices only; request fees are not modelled)
    ("sonar", usd(1.0, 1.0)),
    ("sonar-pro", usd(3.0, 15.0)),
    // Alibaba Qwen (international list prices)
    ("qwen-max", usd(1.6, 6.4)),
    ("qwen-plus", usd(0.4, 1.2)),
    ("qwen-turbo", usd(0.05, 0.2)),
    ("qwen3-coder-plus", usd(1.0, 5.0)),
];

/// A price entry in `config.json`, in USD per million tokens. Cache prices
/// default to the input price.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceConfig {
    pub input_usd_per_mtok: f64,
    pub output_usd_per_mtok: f64,
    #[serde(default)]
    pub cache_read_usd_per_mtok: Option<f64>,
    #[serde(default)]
    pub cache_write_usd_per_mtok: Option<f64>,
}

/// One problem in a config section: where, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    pub path: String,
    pub message: String,
}

/// USD (as written in config) to micro-dollars, refusing NaN, negatives and
/// absurd values.
pub fn usd_to_micros(usd: f64) -> Result<u64, String> {
    if !usd.is_finite() || usd < 0.0 {
        return Err(format!(
            "must be a non-negative number of dollars, not {usd}"
        ));
    }
    if usd > 1.0e9 {
        return Err(format!("{usd} dollars is not a plausible amount"));
    }
    // In range by the checks above.
    Ok((usd * 1_000_000.0).round() as u64)
}

impl PriceConfig {
    fn to_price(&self, path: &str, problems: &mut Vec<ConfigProblem>) -> ModelPrice {
        let mut field = |name: &str, value: f64| {
            usd_to_micros(value).unwrap_or_else(|message| {
                problems.push(ConfigProblem {
                    path: format!("{path}.{name}"),
                    message,
                });
                0
            })
        };
        let input = field("input_usd_per_mtok", self.input_usd_per_mtok);
        ModelPrice {
            input,
            output: field("output_usd_per_mtok", self.output_usd_per_mtok),
            cache_read: self
                .cache_read_usd_per_mtok
                .map_or(input, |v| field("cache_read_usd_per_mtok", v)),
            cache_write: self
                .cache_write_usd_per_mtok
                .map_or(input, |v| field("cache_write_usd_per_mtok", v)),
        }
    }
}

/// Prices by model-name prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriceTable {
    /// Normalised prefix and price.
    entries: Vec<(String, ModelPrice)>,
}

impl Default for PriceTable {
    fn default() -> Self {
        Self::defaults()
    }
}

fn normalise(model: &str) -> String {
    let base = model.rsplit('/').next().unwrap_or(model);
    base.to_ascii_lowercase().replace('.', "-")
}

impl PriceTable {
    /// The built-in [`DEFAULT_PRICES`].
    pub fn defaults() -> Self {
        let mut table = Self::empty();
        for (prefix, price) in DEFAULT_PRICES {
            table.set(prefix, *price);
        }
        table
    }

    pub fn empty() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// Add or replace the price for a prefix.
    pub fn set(&mut self, prefix: &str, price: ModelPrice) {
        let key = normalise(prefix);
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some((_, p)) => *p = price,
            None => self.entries.push((key, price)),
        }
    }

    /// The defaults with `overrides` (model prefix → price) applied. `path`
    /// is the config path of the map, for problem reports.
    pub fn with_overrides(
        overrides: &BTreeMap<String, PriceConfig>,
        path: &str,
    ) -> Result<Self, Vec<ConfigProblem>> {
        let mut table = Self::defaults();
        let mut problems = Vec::new();
        for (model, config) in overrides {
            let entry_path = format!("{path}.{model}");
            if normalise(model).is_empty() {
                problems.push(ConfigProblem {
                    path: entry_path.clone(),
                    message: "the model name is empty".into(),
                });
            }
            let price = config.to_price(&entry_path, &mut problems);
            table.set(model, price);
        }
        if problems.is_empty() {
            Ok(table)
        } else {
            Err(problems)
        }
    }

    /// The price of the longest matching prefix.
    pub fn price(&self, model: &str) -> Option<ModelPrice> {
        let name = normalise(model);
        self.entries
            .iter()
            .filter(|(prefix, _)| name.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, price)| *price)
    }

    /// The cost of a call in micro-dollars (rounded to the nearest), `None`
    /// when the model has no price.
    pub fn cost_micros(&self, model: &str, usage: &Usage) -> Option<i64> {
        self.price(model).map(|p| cost_with(&p, usage))
    }
}

fn cost_with(price: &ModelPrice, usage: &Usage) -> i64 {
    let part = |tokens: u64, per_mtok: u64| u128::from(tokens) * u128::from(per_mtok);
    let total = part(usage.input_tokens, price.input)
        + part(usage.output_tokens, price.output)
        + part(usage.cache_read_tokens, price.cache_read)
        + part(usage.cache_write_tokens, price.cache_write);
    i64::try_from((total + 500_000) / 1_000_000).unwrap_or(i64::MAX)
}

static DEFAULT_TABLE: LazyLock<PriceTable> = LazyLock::new(PriceTable::defaults);

/// The cost under the built-in prices; `None` for an unknown model.
pub fn cost_micros(model: &str, usage: &Usage) -> Option<i64> {
    DEFAULT_TABLE.cost_micros(model, usage)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(input: u64, output: u64, read: u64, write: u64) -> Usage {
        Usage {
            input_tokens: input,
            output_tokens: output,
            cache_read_tokens: read,
            cache_write_tokens: write,
            estimated: false,
        }
    }

    #[test]
    fn longest_prefix_wins() {
        let t = PriceTable::defaults();
        let p = |m: &str| t.price(m).map(|p| (p.input, p.output));
        assert_eq!(p("gpt-4o-mini-2024-07-18"), Some((150_000, 600_000)));
        assert_eq!(p("gpt-4o-2024-08-06"), Some((2_500_000, 10_000_000)));
        assert_eq!(
            p("claude-sonnet-4-5-20250929"),
            Some((3_000_000, 15_000_000))
        );
        assert_eq!(
            p("anthropic/claude-sonnet-4.5"),
            Some((3_000_000, 15_000_000))
        );
        assert_eq!(
            p("claude-opus-4-1-20250805"),
            Some((15_000_000, 75_000_000))
        );
        assert_eq!(p("claude-opus-4-5"), Some((5_000_000, 25_000_000)));
        assert_eq!(p("o3-mini"), Some((1_100_000, 4_400_000)));
        assert_eq!(p("o4-mini-2025-04-16"), Some((1_100_000, 4_400_000)));
        assert_eq!(p("GPT-4.1-MINI"), Some((400_000, 1_600_000)));
        assert_eq!(p("llama-3.3-70b-versatile"), Some((590_000, 790_000)));
        assert_eq!(p("MiniMax-M1"), Some((400_000, 2_200_000)));
        assert_eq!(p("my-local-model"), None);
    }

    #[test]
    fn costs_are_exact_micros() {
        // 1M input + 1M output of Sonnet: $3 + $15
        assert_eq!(
            cost_micros("claude-sonnet-4-5", &usage(1_000_000, 1_000_000, 0, 0)),
            Some(18_000_000)
        );
        // 10k cache reads at $0.30/M = $0.003; 2k writes at $3.75/M = $0.0075
        assert_eq!(
            cost_micros("claude-sonnet-4", &usage(0, 0, 10_000, 2_000)),
            Some(3_000 + 7_500)
        );
        // rounding to the nearest micro-dollar: 1 token of gpt-4o-mini = 0.15 µ$
        assert_eq!(cost_micros("gpt-4o-mini", &usage(1, 0, 0, 0)), Some(0));
        assert_eq!(cost_micros("gpt-4o-mini", &usage(4, 0, 0, 0)), Some(1));
        assert_eq!(cost_micros("unknown", &usage(1, 1, 1, 1)), None);
        let huge = usage(u64::MAX, u64::MAX, u64::MAX, u64::MAX);
        assert_eq!(cost_micros("claude-opus-4", &huge), Some(i64::MAX));
    }

    #[test]
    fn overrides_from_config() {
        let overrides: BTreeMap<String, PriceConfig> = serde_json::from_value(serde_json::json!({
            "gpt-4o": {"input_usd_per_mtok": 1.0, "output_usd_per_mtok": 2.0},
            "my-local": {"input_usd_per_mtok": 0.0, "output_usd_per_mtok": 0.0, "cache_read_usd_per_mtok": 0.0},
        }))
        .unwrap();
        let t = PriceTable::with_overrides(&overrides, "providers.prices").unwrap();
        assert_eq!(
            t.price("gpt-4o"),
            Some(ModelPrice {
                input: 1_000_000,
                output: 2_000_000,
                cache_read: 1_000_000,
                cache_write: 1_000_000
            })
        );
        assert_eq!(
            t.cost_micros("my-local-7b", &usage(1000, 1000, 0, 0)),
            Some(0)
        );
        assert!(
            t.price("gpt-4o-mini").is_some_and(|p| p.input == 150_000),
            "more specific default kept"
        );

        let bad: BTreeMap<String, PriceConfig> = serde_json::from_value(serde_json::json!({
            "x": {"input_usd_per_mtok": -1.0, "output_usd_per_mtok": 1.0, "cache_write_usd_per_mtok": 1e300},
        }))
        .unwrap();
        let problems = PriceTable::with_overrides(&bad, "prices").unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "prices.x.input_usd_per_mtok",
                "prices.x.cache_write_usd_per_mtok"
            ]
        );
        assert!(serde_json::from_value::<PriceConfig>(serde_json::json!({"input_usd_per_mtok": 1.0, "output_usd_per_mtok": 1.0, "typo": 1})).is_err());
    }
}
