//! `exoclaw doctor`: one line per check, read-only, non-zero exit on any
//! failure. Safe to run against a live gateway.

use crate::config::Settings;
use crate::config::env::Env;
use crate::serve::plan_vault_key;
use exoclaw_gateway::db;
use std::path::Path;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    Warn,
    Fail,
}

struct Report {
    failed: bool,
}

impl Report {
    fn line(&mut self, level: Level, check: &str, detail: &str) {
        let tag = match level {
            Level::Ok => "ok  ",
            Level::Warn => "warn",
            Level::Fail => {
                self.failed = true;
                "FAIL"
            }
        };
        crate::outln!("{tag}  {check:<12} {detail}");
    }
}

/// Returns `Ok(true)` when every check passed (warnings allowed).
pub async fn run(config_flag: Option<&Path>, env: Env) -> anyhow::Result<bool> {
    let mut r = Report { failed: false };
    let settings = match crate::config::load(config_flag, env) {
        Ok(s) => {
            let src = if s.config_file_exists {
                s.config_path.display().to_string()
            } else {
                format!("{} absent, defaults in use", s.config_path.display())
            };
            r.line(Level::Ok, "config", &format!("valid ({src})"));
            s
        }
        Err(e) => {
            r.line(Level::Fail, "config", &format!("{e:#}"));
            return Ok(false);
        }
    };
    check_home(&mut r, &settings);
    check_secrets(&mut r, &settings);
    check_security_defaults(&mut r, &settings);
    check_memory(&mut r, &settings);
    match db::inspect(&settings).await {
        Ok(inspection) => {
            let backend = db::backend_name(&settings);
            if inspection.exists {
                r.line(Level::Ok, "store", &format!("{backend} reachable"));
            } else {
                r.line(
                    Level::Fail,
                    "store",
                    &format!("{backend} store not created yet; run `exoclaw upgrade` or start `exoclaw serve` once"),
                );
            }
            let s = inspection.status;
            match db::schema_plan(s, false) {
                Ok(db::SchemaPlan::Ready) => {
                    r.line(
                        Level::Ok,
                        "schema",
                        &format!("version {} (current)", s.current),
                    );
                    check_cron(&mut r, &settings).await;
                }
                Ok(_) if inspection.exists && s.is_fresh() => r.line(
                    Level::Fail,
                    "schema",
                    &format!("empty (needs version {}); run `exoclaw upgrade`", s.latest),
                ),
                Ok(_) => {}
                Err(e) => r.line(Level::Fail, "schema", &format!("{e:#}")),
            }
            if settings.secrets.encryption_key.is_some() {
                match plan_vault_key(&settings, inspection.vault_key_id.as_deref()) {
                    Ok(_) if inspection.vault_key_id.is_some() => {
                        r.line(Level::Ok, "vault", "encryption key matches the store");
                    }
                    Ok(_) => r.line(
                        Level::Ok,
                        "vault",
                        "encryption key valid (store not sealed yet)",
                    ),
                    Err(e) => r.line(Level::Fail, "vault", &format!("{e:#}")),
                }
            }
        }
        Err(e) => r.line(Level::Fail, "store", &format!("{e:#}")),
    }
    Ok(!r.failed)
}

/// Which embedder memory search uses; none configured is said (not a
/// warning: the default install has none, and memory works, ranked by
/// full text alone).
fn check_memory(r: &mut Report, settings: &Settings) {
    use exoclaw_gateway::config::memory::EmbedderConfig;
    match settings.config.memory.embedder.resolve() {
        EmbedderConfig::None => r.line(
            Level::Ok,
            "memory",
            "no embedder configured (memory.embedder): memory search is full-text only",
        ),
        EmbedderConfig::Local { model_dir } => {
            let missing: Vec<&str> = ["model.safetensors", "tokenizer.json", "config.json"]
                .into_iter()
                .filter(|f| !model_dir.join(f).is_file())
                .collect();
            if missing.is_empty() {
                r.line(
                    Level::Ok,
                    "memory",
                    &format!("local embedder, model in {}", model_dir.display()),
                );
            } else {
                r.line(
                    Level::Fail,
                    "memory",
                    &format!(
                        "memory.embedder.model_dir {} lacks {}",
                        model_dir.display(),
                        missing.join(", ")
                    ),
                );
            }
        }
        EmbedderConfig::Openai { provider, model } => r.line(
            Level::Ok,
            "memory",
            &format!("embedder {model} of provider {provider}"),
        ),
    }
}

/// Cron jobs the gateway disabled (their agent was deleted), as a warning
/// naming them; the store is opened read-only.
async fn check_cron(r: &mut Report, settings: &Settings) {
    let disabled = async {
        let db = db::open_read_only(settings).await?;
        let store = db.store();
        let mut found = Vec::new();
        for tenant in store.list_tenants().await? {
            for j in store.list_cron_jobs(&tenant.id, None).await? {
                if let Some(reason) = j.disabled_reason {
                    found.push(format!(
                        "{}/{} ({reason}, agent {})",
                        tenant.id, j.id, j.agent_id
                    ));
                }
            }
        }
        db.close().await;
        anyhow::Ok(found)
    }
    .await;
    match disabled {
        Ok(found) if found.is_empty() => {}
        Ok(found) => r.line(
            Level::Warn,
            "cron",
            &format!(
                "{} cron job(s) disabled by the gateway: {}; delete them (`exoclaw cron remove`) or recreate their agent and enable them",
                found.len(),
                found.join(", ")
            ),
        ),
        Err(e) => r.line(Level::Warn, "cron", &format!("cannot read the cron jobs: {e:#}")),
    }
}

/// Every security default this configuration turned off, as a warning
/// with its fix; `security audit` holds the full list of checks.
fn check_security_defaults(r: &mut Report, settings: &Settings) {
    let off = crate::security::checks::defaults_turned_off(settings);
    if off.is_empty() {
        r.line(
            Level::Ok,
            "security",
            "every security default is on (`exoclaw security audit` checks the rest)",
        );
        return;
    }
    for f in &off {
        r.line(
            Level::Warn,
            "security",
            &format!("{} [{}]: {}", f.reason, f.id, f.fix),
        );
    }
    r.line(
        Level::Warn,
        "security",
        &format!(
            "{} security default(s) off; `exoclaw security audit` lists every check",
            off.len()
        ),
    );
}

fn check_home(r: &mut Report, settings: &Settings) {
    let home = &settings.home;
    if !home.exists() {
        r.line(
            Level::Fail,
            "data dir",
            &format!(
                "{} does not exist; `exoclaw serve` creates it",
                home.root().display()
            ),
        );
        return;
    }
    let problems = home.permission_problems();
    if problems.is_empty() {
        r.line(
            Level::Ok,
            "permissions",
            &format!("{} is 0700, secret files 0600", home.root().display()),
        );
    } else {
        for p in problems {
            r.line(Level::Fail, "permissions", &p);
        }
    }
}

fn check_secrets(r: &mut Report, settings: &Settings) {
    match &settings.secrets.gateway_token {
        Some(_) => r.line(Level::Ok, "token", "EXOCLAW_GATEWAY_TOKEN set"),
        None => r.line(
            Level::Fail,
            "token",
            "EXOCLAW_GATEWAY_TOKEN missing; start `exoclaw serve` once to generate it, or set it",
        ),
    }
    match &settings.secrets.encryption_key {
        Some(_) => r.line(Level::Ok, "key", "EXOCLAW_ENCRYPTION_KEY set"),
        None => r.line(
            Level::Fail,
            "key",
            "EXOCLAW_ENCRYPTION_KEY missing; start `exoclaw serve` once to generate it, or set it",
        ),
    }
    if settings.secrets.encryption_key_old.is_some() {
        r.line(
            Level::Warn,
            "key",
            "EXOCLAW_ENCRYPTION_KEY_OLD is set; finish with `exoclaw secrets rotate-key`, then remove it",
        );
    }
}
