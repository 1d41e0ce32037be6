//! A snapshot of the environment the process started with (the `EXOCLAW_*`
//! variables, `HOME`, `CI`) layered over the data dir's `.env`. The binary
//! takes it once (`config::env` there is the only reader of the process
//! environment); everything else receives an [`Env`].
//!
//! Precedence: the process environment wins over the data dir's `.env` file.

use std::collections::BTreeMap;

/// Where a variable's value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Process,
    DotEnv,
}

#[derive(Clone, Debug, Default)]
pub struct Env {
    vars: BTreeMap<String, (String, Origin)>,
}

impl Env {
    /// An environment from explicit pairs (the process's, or a test's).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let vars = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), (v.into(), Origin::Process)))
            .collect();
        Self { vars }
    }

    /// Only what the process environment set (to layer a changed `.env`
    /// under it again).
    pub fn process_only(&self) -> Self {
        Self {
            vars: self
                .vars
                .iter()
                .filter(|(_, (_, o))| *o == Origin::Process)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    /// Add `key` from `.env` unless the process environment set it.
    pub fn layer_dotenv(&mut self, key: String, value: String) {
        self.vars.entry(key).or_insert((value, Origin::DotEnv));
    }

    /// The value, with surrounding whitespace trimmed; empty counts as unset.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(|(v, _)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Names of the variables that are set (non-empty).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.vars
            .iter()
            .filter(|(_, (v, _))| !v.trim().is_empty())
            .map(|(k, _)| k.as_str())
    }

    pub fn origin(&self, key: &str) -> Option<Origin> {
        self.get(key)?;
        self.vars.get(key).map(|(_, o)| *o)
    }

    /// `true`/`1`/`yes`/`on` (any case) is true; anything else false.
    pub fn flag(&self, key: &str) -> bool {
        self.get(key)
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
    }
}
