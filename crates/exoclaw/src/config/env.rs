//! The environment, read once. This is the only module that reads process
//! environment variables (enforced by `clippy.toml`); everything else receives
//! an [`Env`] snapshot, which also makes configuration testable.
//!
//! Precedence: the process environment wins over the data dir's `.env` file.

use anyhow::Context as _;
pub use exoclaw_gateway::config::env::{Env, Origin};
use std::path::Path;

/// Snapshot the `EXOCLAW_*` variables (plus `HOME` and `CI`) of this
/// process.
#[allow(
    clippy::disallowed_methods,
    reason = "the one place that reads the process environment"
)]
pub fn from_process() -> Env {
    Env::from_pairs(
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| k.starts_with("EXOCLAW_") || k == "HOME" || k == "CI"),
    )
}

/// Layer a `.env` file under `env`. A missing file is not an error; a
/// malformed one is (with its position, never its text).
pub fn with_dotenv(mut env: Env, path: &Path) -> anyhow::Result<Env> {
    let iter = match dotenvy::from_path_iter(path) {
        Ok(iter) => iter,
        Err(dotenvy::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(env);
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
        env.layer_dotenv(k, v);
    }
    Ok(env)
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
        let env = with_dotenv(Env::from_pairs([("EXOCLAW_PORT", "2")]), &path).unwrap();
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
        let err = with_dotenv(Env::default(), &path).unwrap_err();
        let msg = format!("{err:#}");
        assert!(!msg.contains("supersecretvalue"), "{msg}");
        assert!(msg.contains("malformed"), "{msg}");
    }

    #[test]
    fn missing_dotenv_is_fine_and_empty_is_unset() {
        let env = with_dotenv(
            Env::from_pairs([("EXOCLAW_MODEL", "  ")]),
            Path::new("/nonexistent/.env"),
        )
        .unwrap();
        assert_eq!(env.get("EXOCLAW_MODEL"), None);
        assert!(!env.flag("EXOCLAW_AUTO_UPGRADE"));
    }
}
