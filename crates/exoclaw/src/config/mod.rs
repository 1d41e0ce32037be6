//! Configuration: `config.json` (non-secret settings) plus the environment and
//! the data dir's `.env` (secrets and overrides), read once at start-up into
//! validated [`Settings`]. Nothing else in the process reads either.
//!
//! Stages: JSON text -> [`file::FileConfig`] (serde, unknown keys collected)
//! -> environment overrides -> semantic validation. Every problem is reported
//! at once, each with its JSON path (or the env var it came from).

pub mod edit;
pub mod env;
mod validate;

pub use env::Env;
pub use exoclaw_gateway::config::file::{self, FileConfig};
pub use exoclaw_gateway::config::{MIN_TOKEN_LEN, SecretSettings, Settings};
use exoclaw_gateway::home::Home;
use std::fmt;
use std::path::{Path, PathBuf};
pub use validate::{Problem, parse_config_text};

/// Every problem found while loading, one per line.
#[derive(Debug)]
pub struct ConfigError {
    pub source_path: PathBuf,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid configuration ({} problem{}, {}): ",
            self.problems.len(),
            if self.problems.len() == 1 { "" } else { "s" },
            self.source_path.display()
        )?;
        let lines: Vec<String> = self.problems.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("; "))
    }
}

impl std::error::Error for ConfigError {}

/// Load from the process environment (snapshot taken by the caller).
pub fn load(config_flag: Option<&Path>, process_env: Env) -> anyhow::Result<Settings> {
    let home = Home::resolve(&process_env)?;
    let env = env::with_dotenv(process_env, &home.dotenv_path())?;
    let config_path = match config_flag {
        Some(p) => p.to_path_buf(),
        None => env
            .get("EXOCLAW_CONFIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.config_path()),
    };
    let (text, config_file_exists) = match std::fs::read_to_string(&config_path) {
        Ok(t) => (t, true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), false),
        Err(e) => anyhow::bail!(
            "cannot read config file {}: {e} (fix its permissions or point --config / EXOCLAW_CONFIG elsewhere)",
            config_path.display()
        ),
    };
    from_parts(home, config_path, &text, config_file_exists, env).map_err(anyhow::Error::new)
}

/// Build from already-read parts (tests use this directly).
pub fn from_parts(
    home: Home,
    config_path: PathBuf,
    text: &str,
    config_file_exists: bool,
    env: Env,
) -> Result<Settings, ConfigError> {
    let fail = |problems| ConfigError {
        source_path: config_path.clone(),
        problems,
    };
    let mut config = if text.trim().is_empty() {
        FileConfig::default()
    } else {
        parse_config_text(text).map_err(fail)?
    };
    let mut problems = validate::apply_env_overrides(&mut config, &env);
    problems.extend(validate::validate(&config));
    let (secrets, secret_problems) = validate::secrets_from_env(&env);
    problems.extend(secret_problems);
    let bind_ip = validate::parse_host(&config.gateway.host);
    if !problems.is_empty() {
        return Err(fail(problems));
    }
    let bind_ip = bind_ip.map_err(|message| {
        fail(vec![Problem {
            path: "gateway.host".into(),
            message,
        }])
    })?;
    let owner_ids = env
        .get("EXOCLAW_OWNER_IDS")
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Ok(Settings {
        home,
        config_path,
        config_file_exists,
        config,
        bind_ip,
        secrets,
        auto_upgrade: env.flag("EXOCLAW_AUTO_UPGRADE"),
        owner_ids,
        env,
    })
}

#[cfg(test)]
mod tests;
