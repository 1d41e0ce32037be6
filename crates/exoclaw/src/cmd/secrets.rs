//! `exoclaw secrets set|list|delete|rotate-key`: the encrypted vault from the
//! command line. Values are read from standard input, never from argv.

use crate::cli::SecretsCommand;
use crate::config::Settings;
use crate::config::env::Origin;
use crate::serve::{old_key, refuse_unsafe_home};
use anyhow::{Context as _, bail};
use exoclaw_core::{DEFAULT_TENANT, Secret, TenantId};
use exoclaw_gateway::db;
use exoclaw_gateway::home;
use exoclaw_store::vault::{SecretVault, Vault, VaultKey};
use std::io::Read as _;

pub async fn run(cmd: &SecretsCommand, settings: &Settings) -> anyhow::Result<()> {
    refuse_unsafe_home(&settings.home)?;
    let inspection = db::inspect(settings).await?;
    if !inspection.status.is_current() {
        bail!(
            "the store schema is not current (version {} of {}); run `exoclaw upgrade` first",
            inspection.status.current,
            inspection.status.latest
        );
    }
    let Some(key_hex) = &settings.secrets.encryption_key else {
        bail!(
            "EXOCLAW_ENCRYPTION_KEY is not set; start `exoclaw serve` once to generate it into the data dir's .env, or set it"
        );
    };
    let key = VaultKey::from_hex(key_hex.expose()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let db = db::open(settings).await?;
    let tenant = TenantId::new(DEFAULT_TENANT);
    let result = async {
        match cmd {
            SecretsCommand::RotateKey => return rotate(settings, key, &db).await,
            SecretsCommand::Set { name, owner } => {
                check(name, owner)?;
                let mut value = String::new();
                std::io::stdin()
                    .read_to_string(&mut value)
                    .context("cannot read the secret from standard input")?;
                let value = value.trim_end_matches(['\n', '\r']);
                if value.is_empty() {
                    bail!("no value on standard input (e.g. `printf %s \"$VALUE\" | exoclaw secrets set NAME`)");
                }
                let vault = open_vault(settings, key, &db).await?;
                vault
                    .put(&tenant, owner, name, &Secret::new(value))
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                crate::outln!("stored secret {owner}/{name}");
            }
            SecretsCommand::List { json } => {
                let vault = open_vault(settings, key, &db).await?;
                let list = vault
                    .list(&tenant, None)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                if *json {
                    let secrets = list
                        .into_iter()
                        .map(|m| crate::http::SecretView {
                            owner: m.owner,
                            name: m.name,
                            created_at: m.created_at,
                            updated_at: m.updated_at,
                        })
                        .collect();
                    return crate::cmd::table::print_json(&crate::http::SecretList {
                        secrets,
                    });
                }
                let mut table = crate::cmd::table::Table::new(&["OWNER", "NAME", "UPDATED"]);
                for m in list {
                    table.row([m.owner, m.name, crate::cmd::token::rfc3339(m.updated_at)]);
                }
                table.print("no secrets");
            }
            SecretsCommand::Delete { name, owner } => {
                check(name, owner)?;
                let vault = open_vault(settings, key, &db).await?;
                vault
                    .delete(&tenant, owner, name)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                crate::outln!("deleted secret {owner}/{name}");
            }
        }
        Ok(())
    }
    .await;
    db.close().await;
    result
}

fn check(name: &str, owner: &str) -> anyhow::Result<()> {
    if !crate::http::is_valid_secret_name(name) {
        bail!("secret names are 1 to 128 letters, digits, '_', '-' or '.'");
    }
    if !crate::http::is_valid_owner(owner) {
        bail!("owners are lowercase letters, digits, '_', '-', ':' or '.'");
    }
    Ok(())
}

async fn open_vault(
    settings: &Settings,
    key: VaultKey,
    db: &db::Db,
) -> anyhow::Result<SecretVault> {
    let vault = SecretVault::new(db.store(), Vault::new(key, old_key(settings)?));
    vault
        .ensure_check()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(vault)
}

/// Re-seal every secret under the current key. With
/// `EXOCLAW_ENCRYPTION_KEY_OLD` set, the current key is already the new one;
/// without it, a new key is generated into `.env` (keeping the old one there
/// as `..._OLD` until the store is re-sealed, so a crash loses nothing).
async fn rotate(settings: &Settings, current: VaultKey, db: &db::Db) -> anyhow::Result<()> {
    let dotenv = settings.home.dotenv_path();
    let (new_key, old) = match old_key(settings)? {
        Some(old) => (current, old),
        None => {
            if settings.env.origin("EXOCLAW_ENCRYPTION_KEY") != Some(Origin::DotEnv) {
                bail!(
                    "EXOCLAW_ENCRYPTION_KEY comes from the process environment, so exoclaw cannot replace it: set the current value as EXOCLAW_ENCRYPTION_KEY_OLD, a new one (openssl rand -hex 32) as EXOCLAW_ENCRYPTION_KEY, and run this again"
                );
            }
            let new_key = VaultKey::generate().map_err(|e| anyhow::anyhow!("{e}"))?;
            home::update_dotenv(
                &dotenv,
                &[
                    ("EXOCLAW_ENCRYPTION_KEY", Some(new_key.to_hex().expose())),
                    (
                        "EXOCLAW_ENCRYPTION_KEY_OLD",
                        Some(current.to_hex().expose()),
                    ),
                ],
            )?;
            (new_key, current)
        }
    };
    let new_id = new_key.key_id();
    let vault = SecretVault::new(db.store(), Vault::new(new_key, Some(old)));
    let report = vault.rotate().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    if settings.env.origin("EXOCLAW_ENCRYPTION_KEY_OLD") != Some(Origin::Process) {
        home::update_dotenv(&dotenv, &[("EXOCLAW_ENCRYPTION_KEY_OLD", None)])?;
    }
    crate::outln!(
        "re-encrypted {} secret(s) under key id {new_id} ({} already current); restart a running gateway to use the new key{}",
        report.rotated,
        report.already_current,
        if settings.env.origin("EXOCLAW_ENCRYPTION_KEY_OLD") == Some(Origin::Process) {
            "; remove EXOCLAW_ENCRYPTION_KEY_OLD from the environment"
        } else {
            ""
        }
    );
    Ok(())
}

/// The vault over `db`, for commands that keep their own secrets in it
/// (the audit signing key): `EXOCLAW_ENCRYPTION_KEY` required.
pub async fn vault(settings: &Settings, db: &db::Db) -> anyhow::Result<SecretVault> {
    let Some(key_hex) = &settings.secrets.encryption_key else {
        bail!(
            "EXOCLAW_ENCRYPTION_KEY is not set; start `exoclaw serve` once to generate it into the data dir's .env, or set it"
        );
    };
    let key = VaultKey::from_hex(key_hex.expose()).map_err(|e| anyhow::anyhow!("{e}"))?;
    open_vault(settings, key, db).await
}
