//! The environment, read once. This is the only module that reads process
//! environment variables (enforced by `clippy.toml`); everything else receives
//! an [`Env`] snapshot, which also makes configuration testable.
//!
//! Precedence: the process environment wins over the data dir's `.env` file.

use anyhow::Context as _;
use std::collections::BTreeMap;
use std::path::Path;

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
    /// Snapshot the `EXOCLAW_*` variables (plus `HOME`) of this process.
    #[allow(
        clippy::disallowed_methods,
        reason = "the one place that reads the process environment"
    )]
    pub fn from_process() -> Self {
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| k.starts_with("EXOCLAW_") || k == "HOME" || k == "CI")
            .map(|(k, v)| (k, (v, Origin::Process)))
            .collect();
        Self { vars }
    }

    /// An environment from explicit pairs (tests).
    #[cfg(test)]
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let vars = pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), (v.to_owned(), Origin::Process)))
            .collect();
        Self { vars }
    }

    /// Layer a `.env` file under the process environment. A missing file is
    /// not an error; a malformed one is (with its line).
    pub fn with_dotenv(mut self, path: &Path) -> anyhow::Result<Self> {
        let iter = match dotenvy::from_path_iter(path) {
            Ok(iter) => iter,
            Err(dotenvy::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(self);
            }
            Err(e) => {
                return Err(anyhow::anyhow!("{}", dotenv_error(&e)))
                    .with_context(|| format!("cannot read {}", path.display()));
            }
        };
        for item in iter {
            let (k, v) = item
                .map_err(|e| anyhow::anyhow!("{}", dotenv_error(&e)))
                .with_context(|| format!("cannot parse {}", path.display()))?;
            self.vars.entry(k).or_insert((v, Origin::DotEnv));
        }
        Ok(self)
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

/// dotenvy's errors can quote the offending line, which may hold a secret:
/// keep only the position.
fn dotenv_error(e: &dotenvy::Error) -> String {
    match e {
        dotenvy::Error::LineParse(_, index) => {
            format!("malformed line near byte {index} (expected KEY=VALUE)")
        }
        dotenvy::Error::Io(io) => io.to_string(),
        _ => "malformed file".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_wins_over_dotenv() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(&path, "EXOCLAW_PORT=1\nEXOCLAW_HOST=10.0.0.1\n").unwrap();
        let env = Env::from_pairs([("EXOCLAW_PORT", "2")])
            .with_dotenv(&path)
            .unwrap();
        assert_eq!(env.get("EXOCLAW_PORT"), Some("2"));
        assert_eq!(env.origin("EXOCLAW_PORT"), Some(Origin::Process));
        assert_eq!(env.get("EXOCLAW_HOST"), Some("10.0.0.1"));
        assert_eq!(env.origin("EXOCLAW_HOST"), Some(Origin::DotEnv));
    }

    #[test]
    fn malformed_dotenv_never_echoes_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(&path, "EXOCLAW_GATEWAY_TOKEN supersecretvalue\n").unwrap();
        let err = Env::default().with_dotenv(&path).unwrap_err();
        let msg = format!("{err:#}");
        assert!(!msg.contains("supersecretvalue"), "{msg}");
        assert!(msg.contains("malformed"), "{msg}");
    }

    #[test]
    fn missing_dotenv_is_fine_and_empty_is_unset() {
        let env = Env::from_pairs([("EXOCLAW_MODEL", "  ")])
            .with_dotenv(Path::new("/nonexistent/.env"))
            .unwrap();
        assert_eq!(env.get("EXOCLAW_MODEL"), None);
        assert!(!env.flag("EXOCLAW_AUTO_UPGRADE"));
    }
}
