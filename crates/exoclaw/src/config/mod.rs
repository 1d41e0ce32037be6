//! Configuration: `config.json` (non-secret settings) plus the environment and
//! the data dir's `.env` (secrets and overrides), read once at start-up into
//! validated [`Settings`]. Nothing else in the process reads either.
//!
//! Stages: JSON text -> [`file::FileConfig`] (serde, unknown keys collected)
//! -> environment overrides -> semantic validation. Every problem is reported
//! at once, each with its JSON path (or the env var it came from).

pub mod env;
pub mod file;
mod validate;

use crate::home::Home;
use env::Env;
use exoclaw_core::Secret;
pub use file::FileConfig;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
pub use validate::{Problem, parse_config_text};

/// Minimum length of a gateway token.
pub const MIN_TOKEN_LEN: usize = 32;

/// The validated, effective configuration the process runs on.
#[derive(Clone, Debug)]
pub struct Settings {
    pub home: Home,
    pub config_path: PathBuf,
    pub config_file_exists: bool,
    pub config: FileConfig,
    /// `gateway.host` resolved to an address.
    pub bind_ip: IpAddr,
    pub secrets: SecretSettings,
    /// `EXOCLAW_AUTO_UPGRADE`: migrate an outdated schema at start-up.
    pub auto_upgrade: bool,
    /// `EXOCLAW_OWNER_IDS`.
    pub owner_ids: Vec<String>,
    pub env: Env,
}

/// Secrets, only ever from the environment or `.env`.
#[derive(Clone, Debug, Default)]
pub struct SecretSettings {
    pub gateway_token: Option<Secret>,
    pub encryption_key: Option<Secret>,
    pub encryption_key_old: Option<Secret>,
    /// `EXOCLAW_BACKUP_KEY`: encrypts backups; without it, the backup key
    /// is derived from the vault key.
    pub backup_key: Option<Secret>,
    pub postgres_dsn: Option<Secret>,
}

/// The names of the secret variables, as `config show` lists them.
pub const SECRET_VARS: &[&str] = &[
    "EXOCLAW_GATEWAY_TOKEN",
    "EXOCLAW_ENCRYPTION_KEY",
    "EXOCLAW_ENCRYPTION_KEY_OLD",
    "EXOCLAW_POSTGRES_DSN",
    "EXOCLAW_BACKUP_KEY",
    "EXOCLAW_BRAVE_API_KEY",
];

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

impl Settings {
    /// Load from the process environment (snapshot taken by the caller).
    pub fn load(config_flag: Option<&Path>, process_env: Env) -> anyhow::Result<Self> {
        let home = Home::resolve(&process_env)?;
        let env = process_env.with_dotenv(&home.dotenv_path())?;
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
        Self::from_parts(home, config_path, &text, config_file_exists, env)
            .map_err(anyhow::Error::new)
    }

    /// Build from already-read parts (tests use this directly).
    pub fn from_parts(
        home: Home,
        config_path: PathBuf,
        text: &str,
        config_file_exists: bool,
        env: Env,
    ) -> Result<Self, ConfigError> {
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
        Ok(Self {
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

    /// The effective configuration for `config show`: every setting with its
    /// default filled in, and secrets only as `***` (or null when unset).
    pub fn show(&self) -> serde_json::Value {
        let mut secrets = serde_json::Map::new();
        let provider_keys = self.env.names().filter(|n| n.ends_with("_API_KEY"));
        for name in SECRET_VARS.iter().copied().chain(provider_keys) {
            let v = if self.env.get(name).is_some() {
                serde_json::Value::String(Secret::REDACTED.to_owned())
            } else {
                serde_json::Value::Null
            };
            secrets.insert(name.to_owned(), v);
        }
        serde_json::json!({
            "paths": {
                "home": self.home.root(),
                "config": self.config_path,
                "config_file_exists": self.config_file_exists,
            },
            "storage": if self.secrets.postgres_dsn.is_some() { "postgres" } else { "sqlite" },
            "owner_ids": self.owner_ids,
            "auto_upgrade": self.auto_upgrade,
            "config": self.config,
            "secrets": secrets,
        })
    }
}

#[cfg(test)]
mod tests;
