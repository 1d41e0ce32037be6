//! The gateway's configuration as the components receive it: the
//! validated [`Settings`] (the `config.json` sections of [`file`] with
//! their defaults, the secrets, the data dir, the environment snapshot).
//! Reading and validating it (the file, the process environment, `.env`)
//! is the binary's job; nothing here reads a file or the environment.

pub mod agents;
pub mod channels;
pub mod env;
pub mod file;
pub mod mcp_server;
pub mod memory;
pub mod providers;
pub mod skills;

use crate::home::Home;
use env::Env;
use exoclaw_core::Secret;
pub use file::FileConfig;
use std::net::IpAddr;
use std::path::PathBuf;

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
    "EXOCLAW_TELEGRAM_BOT_TOKEN",
    "EXOCLAW_DISCORD_BOT_TOKEN",
];

impl Settings {
    /// Settings assembled in code, without the loader's validation or its
    /// secrets (unset): for tests and tools that build a configuration
    /// directly. The process uses the binary's loader.
    pub fn from_config(home: Home, config: FileConfig, env: Env) -> Self {
        let bind_ip = config
            .gateway
            .host
            .parse()
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        Self {
            config_path: home.config_path(),
            home,
            config_file_exists: false,
            config,
            bind_ip,
            secrets: SecretSettings::default(),
            auto_upgrade: false,
            owner_ids: Vec::new(),
            env,
        }
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
