//! Provider presets: for each known vendor its wire format, default base
//! URL, the environment variables the binary reads (`EXOCLAW_<NAME>_API_KEY`,
//! `EXOCLAW_<NAME>_BASE_URL`) and a default model; plus `custom` for any
//! OpenAI-compatible server (Ollama, vLLM, llama.cpp, LiteLLM, ...).
//!
//! This module never reads the environment: the binary passes what it found.

use crate::ConfigError;
use crate::anthropic::AnthropicProvider;
use crate::openai::{MaxTokensField, OpenAiCompatProvider};
use exoclaw_core::Secret;
use exoclaw_core::provider::Provider;
use exoclaw_egress::EgressClient;
use std::sync::Arc;

/// The wire format a provider speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    /// The Anthropic Messages API.
    Anthropic,
    /// OpenAI chat completions.
    OpenAi,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preset {
    /// The provider name in config and on the command line.
    pub name: &'static str,
    pub wire: Wire,
    /// Empty for `custom`, which has no default.
    pub base_url: &'static str,
    pub key_env: &'static str,
    pub base_url_env: &'static str,
    /// `None` for `custom`: the model must be configured.
    pub default_model: Option<&'static str>,
    /// Whether a call without a key can work at all.
    pub key_required: bool,
    pub max_tokens_field: MaxTokensField,
}

const fn openai_compat(
    name: &'static str,
    base_url: &'static str,
    key_env: &'static str,
    base_url_env: &'static str,
    default_model: &'static str,
) -> Preset {
    Preset {
        name,
        wire: Wire::OpenAi,
        base_url,
        key_env,
        base_url_env,
        default_model: Some(default_model),
        key_required: true,
        max_tokens_field: MaxTokensField::MaxTokens,
    }
}

/// Every preset, in auto-detect priority order, `custom` last.
pub const PRESETS: &[Preset] = &[
    openai_compat(
        "openrouter",
        "https://openrouter.ai/api/v1",
        "EXOCLAW_OPENROUTER_API_KEY",
        "EXOCLAW_OPENROUTER_BASE_URL",
        "anthropic/claude-sonnet-4.5",
    ),
    Preset {
        name: "anthropic",
        wire: Wire::Anthropic,
        base_url: "https://api.anthropic.com",
        key_env: "EXOCLAW_ANTHROPIC_API_KEY",
        base_url_env: "EXOCLAW_ANTHROPIC_BASE_URL",
        default_model: Some("claude-sonnet-4-5-20250929"),
        key_required: true,
        max_tokens_field: MaxTokensField::MaxTokens,
    },
    Preset {
        max_tokens_field: MaxTokensField::MaxCompletionTokens,
        ..openai_compat(
            "openai",
            "https://api.openai.com/v1",
            "EXOCLAW_OPENAI_API_KEY",
            "EXOCLAW_OPENAI_BASE_URL",
            "gpt-4.1",
        )
    },
    openai_compat(
        "groq",
        "https://api.groq.com/openai/v1",
        "EXOCLAW_GROQ_API_KEY",
        "EXOCLAW_GROQ_BASE_URL",
        "llama-3.3-70b-versatile",
    ),
    openai_compat(
        "deepseek",
        "https://api.deepseek.com/v1",
        "EXOCLAW_DEEPSEEK_API_KEY",
        "EXOCLAW_DEEPSEEK_BASE_URL",
        "deepseek-chat",
    ),
    openai_compat(
        "gemini",
        "https://generativelanguage.googleapis.com/v1beta/openai",
        "EXOCLAW_GEMINI_API_KEY",
        "EXOCLAW_GEMINI_BASE_URL",
        "gemini-2.5-flash",
    ),
    openai_compat(
        "mistral",
        "https://api.mistral.ai/v1",
        "EXOCLAW_MISTRAL_API_KEY",
        "EXOCLAW_MISTRAL_BASE_URL",
        "mistral-large-latest",
    ),
    openai_compat(
        "xai",
        "https://api.x.ai/v1",
        "EXOCLAW_XAI_API_KEY",
        "EXOCLAW_XAI_BASE_URL",
        "grok-3",
    ),
    openai_compat(
        "minimax",
        "https://api.minimax.io/v1",
        "EXOCLAW_MINIMAX_API_KEY",
        "EXOCLAW_MINIMAX_BASE_URL",
        "MiniMax-M1",
    ),
    openai_compat(
        "cohere",
        "https://api.cohere.ai/compatibility/v1",
        "EXOCLAW_COHERE_API_KEY",
        "EXOCLAW_COHERE_BASE_URL",
        "command-a-03-2025",
    ),
    openai_compat(
        "perplexity",
        "https://api.perplexity.ai",
        "EXOCLAW_PERPLEXITY_API_KEY",
        "EXOCLAW_PERPLEXITY_BASE_URL",
        "sonar",
    ),
    openai_compat(
        "dashscope",
        "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
        "EXOCLAW_DASHSCOPE_API_KEY",
        "EXOCLAW_DASHSCOPE_BASE_URL",
        "qwen-plus",
    ),
    openai_compat(
        "bailian",
        "https://dashscope.aliyuncs.com/compatible-mode/v1",
        "EXOCLAW_BAILIAN_API_KEY",
        "EXOCLAW_BAILIAN_BASE_URL",
        "qwen3-coder-plus",
    ),
    Preset {
        name: "custom",
        wire: Wire::OpenAi,
        base_url: "",
        key_env: "EXOCLAW_CUSTOM_API_KEY",
        base_url_env: "EXOCLAW_CUSTOM_BASE_URL",
        default_model: None,
        key_required: false,
        max_tokens_field: MaxTokensField::MaxTokens,
    },
];

/// The preset called `name` (exact, lowercase).
pub fn preset(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}

/// The first preset, in priority order (OpenRouter, Anthropic, OpenAI, Groq,
/// DeepSeek, Gemini, Mistral, xAI, MiniMax, Cohere, Perplexity, DashScope,
/// Bailian), whose key variable `keys_present` reports as set. `custom` is
/// never detected: it needs a base URL.
pub fn detect_default(keys_present: impl Fn(&str) -> bool) -> Option<&'static Preset> {
    PRESETS
        .iter()
        .filter(|p| p.key_required)
        .find(|p| keys_present(p.key_env))
}

impl Preset {
    /// Build the concrete provider. `base_url` overrides the preset's (and is
    /// required for `custom`); a missing required key is an error naming the
    /// variable.
    pub fn provider(
        &self,
        client: EgressClient,
        base_url: Option<&str>,
        api_key: Option<Secret>,
    ) -> Result<Arc<dyn Provider>, ConfigError> {
        self.provider_with(client, base_url, api_key, crate::openai::Compat::default())
    }

    /// [`Preset::provider`] with the compatibility settings of an
    /// OpenAI-compatible server (ignored for the Anthropic wire).
    pub fn provider_with(
        &self,
        client: EgressClient,
        base_url: Option<&str>,
        api_key: Option<Secret>,
        compat: crate::openai::Compat,
    ) -> Result<Arc<dyn Provider>, ConfigError> {
        let base = match base_url.filter(|b| !b.is_empty()) {
            Some(b) => b,
            None if self.base_url.is_empty() => {
                return Err(ConfigError::MissingBaseUrl {
                    provider: self.name.to_owned(),
                    env: self.base_url_env,
                });
            }
            None => self.base_url,
        };
        let api_key = api_key.filter(|k| !k.is_empty());
        if self.key_required && api_key.is_none() {
            return Err(ConfigError::MissingKey {
                provider: self.name.to_owned(),
                env: self.key_env,
            });
        }
        Ok(match self.wire {
            Wire::Anthropic => {
                Arc::new(AnthropicProvider::new(client, base, api_key)?.with_name(self.name))
            }
            Wire::OpenAi => Arc::new(
                OpenAiCompatProvider::new(client, base, api_key)?
                    .with_name(self.name)
                    .with_max_tokens_field(self.max_tokens_field)
                    .with_compat(compat),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_variables_follow_the_pattern() {
        assert_eq!(PRESETS.len(), 14);
        for p in PRESETS {
            let upper = p.name.to_uppercase();
            assert_eq!(p.key_env, format!("EXOCLAW_{upper}_API_KEY"));
            assert_eq!(p.base_url_env, format!("EXOCLAW_{upper}_BASE_URL"));
            assert!(
                p.base_url.is_empty() || p.base_url.starts_with("https://"),
                "{}",
                p.name
            );
            assert!(!p.base_url.ends_with('/'), "{}", p.name);
            assert_eq!(preset(p.name), Some(p));
        }
        assert_eq!(preset("anthropic").map(|p| p.wire), Some(Wire::Anthropic));
        assert_eq!(preset("nope"), None);
    }

    #[test]
    fn detection_priority() {
        let order: Vec<&str> = PRESETS
            .iter()
            .filter(|p| p.key_required)
            .map(|p| p.name)
            .collect();
        assert_eq!(
            order,
            [
                "openrouter",
                "anthropic",
                "openai",
                "groq",
                "deepseek",
                "gemini",
                "mistral",
                "xai",
                "minimax",
                "cohere",
                "perplexity",
                "dashscope",
                "bailian"
            ]
        );
        assert_eq!(detect_default(|_| false), None);
        let set = [
            "EXOCLAW_GROQ_API_KEY",
            "EXOCLAW_OPENAI_API_KEY",
            "EXOCLAW_CUSTOM_API_KEY",
        ];
        assert_eq!(
            detect_default(|v| set.contains(&v)).map(|p| p.name),
            Some("openai")
        );
        assert_eq!(
            detect_default(|v| v == "EXOCLAW_BAILIAN_API_KEY").map(|p| p.name),
            Some("bailian")
        );
        assert_eq!(detect_default(|v| v == "EXOCLAW_CUSTOM_API_KEY"), None);
    }

    #[test]
    fn building() {
        let client = EgressClient::builder().build().unwrap();
        let err = preset("openai")
            .unwrap()
            .provider(client.clone(), None, None)
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "provider openai needs an API key: set EXOCLAW_OPENAI_API_KEY"
        );
        let err = preset("custom")
            .unwrap()
            .provider(client.clone(), None, None)
            .err()
            .unwrap();
        assert!(err.to_string().contains("EXOCLAW_CUSTOM_BASE_URL"), "{err}");
        let p = preset("custom")
            .unwrap()
            .provider(client.clone(), Some("http://127.0.0.1:11434/v1"), None)
            .unwrap();
        assert_eq!(p.info().name, "custom");
        let p = preset("anthropic")
            .unwrap()
            .provider(client, None, Some(Secret::new("k")))
            .unwrap();
        assert_eq!(p.info().wire, "anthropic");
    }
}
