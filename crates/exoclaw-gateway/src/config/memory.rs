//! The `memory` section of `config.json`: long-term memory (`crate::memory`).
//! Which embedder ranks memories by meaning (none: full text alone), how
//! long and how many memories a namespace keeps, and automatic recall.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Long-term memory.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryConfig {
    /// What turns text into vectors: `{"type": "none"}` (the default:
    /// full-text search alone, and `doctor` says so), `{"type": "local",
    /// "model_dir": "..."}` (the built-in BERT embedder over a directory
    /// with `model.safetensors`, `tokenizer.json` and `config.json`, loaded
    /// on first use) or `{"type": "openai", "provider": "openai", "model":
    /// "text-embedding-3-small"}` (an OpenAI-compatible `/v1/embeddings`
    /// of a configured provider, with its key and base URL).
    pub embedder: EmbedderSection,
    pub retention: RetentionConfig,
    /// Automatic recall: before each turn, the memories most relevant to
    /// the user's message go into the system prompt.
    pub recall: RecallConfig,
}

/// Which embedder (see [`MemoryConfig::embedder`]): a flat object with
/// `type` and the fields of that type.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EmbedderSection {
    #[serde(rename = "type")]
    pub kind: EmbedderKind,
    /// `local`: the model directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_dir: Option<PathBuf>,
    /// `openai`: a preset or `providers.<name>` (default `openai`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// `openai`: the embedding model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmbedderKind {
    #[default]
    None,
    Local,
    Openai,
}

/// The embedder as the gateway builds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EmbedderConfig {
    None,
    Local { model_dir: PathBuf },
    Openai { provider: String, model: String },
}

impl EmbedderSection {
    /// The embedder it names (checked by [`MemoryConfig::problems`]).
    pub fn resolve(&self) -> EmbedderConfig {
        match self.kind {
            EmbedderKind::None => EmbedderConfig::None,
            EmbedderKind::Local => EmbedderConfig::Local {
                model_dir: self.model_dir.clone().unwrap_or_default(),
            },
            EmbedderKind::Openai => EmbedderConfig::Openai {
                provider: self.provider.clone().unwrap_or_else(|| "openai".to_owned()),
                model: self.model.clone().unwrap_or_default(),
            },
        }
    }
}

/// How long and how many memories each namespace (an agent's user, or
/// the agent's shared memory) keeps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RetentionConfig {
    /// Days a memory not saved again is kept (0: forever; at most 36500).
    pub max_age_days: u32,
    /// Memories per namespace; beyond it the least important and oldest
    /// go (1 to 1000000, default 10000).
    pub max_per_namespace: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            max_age_days: 0,
            max_per_namespace: 10_000,
        }
    }
}

/// Automatic recall (per agent it is switched on by the agent's
/// `memory_recall` setting, or for every agent here).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecallConfig {
    /// Recall for every agent (default false: only agents whose settings
    /// say `"memory_recall": true`).
    pub enabled: bool,
    /// Memories recalled at most (1 to 20, default 5).
    pub top_k: u32,
    /// Tokens the recalled memories may take in the prompt (estimated at
    /// four bytes a token; 50 to 8000, default 500).
    pub max_tokens: u32,
}

impl Default for RecallConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            top_k: 5,
            max_tokens: 500,
        }
    }
}

impl MemoryConfig {
    /// Range problems, each as (JSON path, what to do).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        let mut range = |path: &str, n: u32, lo: u32, hi: u32| {
            if !(lo..=hi).contains(&n) {
                p.push((
                    path.to_owned(),
                    format!("must be between {lo} and {hi} (got {n})"),
                ));
            }
        };
        range(
            "memory.retention.max_age_days",
            self.retention.max_age_days,
            0,
            36_500,
        );
        range(
            "memory.retention.max_per_namespace",
            self.retention.max_per_namespace,
            1,
            1_000_000,
        );
        range("memory.recall.top_k", self.recall.top_k, 1, 20);
        range("memory.recall.max_tokens", self.recall.max_tokens, 50, 8000);
        match &self.embedder.resolve() {
            EmbedderConfig::Local { model_dir } if model_dir.as_os_str().is_empty() => p.push((
                "memory.embedder.model_dir".to_owned(),
                "name the directory with model.safetensors, tokenizer.json and config.json"
                    .to_owned(),
            )),
            EmbedderConfig::Openai { model, .. } if model.trim().is_empty() => p.push((
                "memory.embedder.model".to_owned(),
                "name the embedding model (text-embedding-3-small)".to_owned(),
            )),
            _ => {}
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedders_parse_by_type() {
        let c: MemoryConfig = serde_json::from_str(
            r#"{"embedder": {"type": "local", "model_dir": "/m"}, "recall": {"enabled": true}}"#,
        )
        .expect("valid");
        assert_eq!(
            c.embedder.resolve(),
            EmbedderConfig::Local {
                model_dir: PathBuf::from("/m")
            }
        );
        assert!(c.recall.enabled && c.problems().is_empty());
        let c: MemoryConfig =
            serde_json::from_str(r#"{"embedder": {"type": "openai", "model": "e3"}}"#)
                .expect("valid");
        assert!(
            matches!(c.embedder.resolve(), EmbedderConfig::Openai { ref provider, .. } if provider == "openai")
        );
        assert!(
            serde_json::from_str::<MemoryConfig>(r#"{"embedder": {"type": "magic"}}"#).is_err()
        );
        let c: MemoryConfig =
            serde_json::from_str(r#"{"embedder": {"type": "local"}}"#).expect("valid");
        assert_eq!(c.problems().len(), 1);
        let mut c = MemoryConfig::default();
        c.recall.top_k = 0;
        assert_eq!(c.problems().len(), 1);
    }
}
