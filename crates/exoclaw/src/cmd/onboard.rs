//! `exoclaw onboard`: the set-up wizard. Interactive on a terminal (keys are
//! read without echo), or `--non-interactive` with flags and the environment
//! for scripts. It writes `config.json` (non-secret settings, merged into an
//! existing file) and `.env` (secrets, 0600): the provider key if one was
//! entered, a generated gateway token and vault key unless they exist —
//! existing secrets are never replaced, so the store stays readable.

use crate::cli::OnboardArgs;
use crate::config::Settings;
use anyhow::{Context as _, bail};
use exoclaw_core::Secret;
use exoclaw_gateway::home;
use serde_json::{Value, json};
use std::io::{BufRead as _, IsTerminal as _, Write as _};

struct Answers {
    provider: String,
    model: Option<String>,
    base_url: Option<String>,
    api_key: Option<Secret>,
    host: String,
    port: u16,
    postgres_dsn: Option<Secret>,
}

use exoclaw_gateway::config::providers::env_name;

fn ask(question: &str, default: &str) -> anyhow::Result<String> {
    eprint!("{question} [{default}]: ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the answer")?;
    let line = line.trim();
    Ok(if line.is_empty() {
        default.to_owned()
    } else {
        line.to_owned()
    })
}

/// A secret answer: without echo on a terminal, a plain line otherwise.
fn ask_secret(question: &str) -> anyhow::Result<Option<Secret>> {
    let value = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("{question}: ")).context("cannot read the answer")?
    } else {
        eprint!("{question}: ");
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the answer")?;
        line
    };
    let value = value.trim().to_owned();
    Ok((!value.is_empty()).then(|| Secret::new(value)))
}

async fn collect(args: &OnboardArgs, settings: &Settings) -> anyhow::Result<Answers> {
    let env = &settings.env;
    let detected = exoclaw_providers::detect_default(|v| env.get(v).is_some()).map(|p| p.name);
    let default_provider = args
        .provider
        .clone()
        .or_else(|| settings.config.agents.defaults.provider.clone())
        .or_else(|| detected.map(str::to_owned))
        .unwrap_or_else(|| "openai".to_owned());
    let interactive = !args.non_interactive;
    if interactive {
        eprintln!("exoclaw onboard — press Enter to keep the value in brackets.");
        let names: Vec<&str> = exoclaw_providers::PRESETS.iter().map(|p| p.name).collect();
        eprintln!("providers: {}", names.join(", "));
        eprintln!(
            "or `local` for a model server of your own at a URL (llama.cpp, llama-cpp-python, \
             Ollama, vLLM, LM Studio: see docs/configuration.md)"
        );
    }
    let provider = if interactive {
        ask("LLM provider", &default_provider)?
    } else {
        default_provider
    };
    if !exoclaw_core::id::is_valid_slug(&provider) {
        bail!("provider names are lowercase letters, digits, '-' and '_'");
    }
    let preset = exoclaw_providers::preset(&provider);
    let needs_base = preset.is_none_or(|p| p.base_url.is_empty());
    let mut base_url = args.base_url.clone();
    if needs_base && base_url.is_none() {
        base_url = if interactive {
            Some(ask(
                "base URL of the OpenAI-compatible server",
                "http://127.0.0.1:11434/v1",
            )?)
        } else {
            bail!(
                "provider {provider:?} needs --base-url (e.g. http://127.0.0.1:11434/v1 for Ollama)"
            )
        };
    }
    // A server of the user's own: what it serves, and the default model
    // from that list.
    let served = match &base_url {
        Some(url) => probe_models(settings, url).await,
        None => Vec::new(),
    };
    let default_model = args
        .model
        .clone()
        .or_else(|| settings.config.agents.defaults.model.clone())
        .or_else(|| preset.and_then(|p| p.default_model).map(str::to_owned))
        .or_else(|| served.first().cloned());
    let model = if interactive {
        let m = ask("model", default_model.as_deref().unwrap_or(""))?;
        (!m.is_empty()).then_some(m)
    } else {
        default_model
    };
    let key_var = format!("EXOCLAW_{}_API_KEY", env_name(&provider));
    let api_key = if env.get(&key_var).is_some() {
        None // already configured; not copied
    } else if args.api_key_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the key from standard input")?;
        let line = line.trim().to_owned();
        (!line.is_empty()).then(|| Secret::new(line))
    } else if interactive {
        ask_secret(&format!("{key_var} (empty to set it later)"))?
    } else {
        None
    };
    let host = args
        .host
        .clone()
        .unwrap_or_else(|| settings.config.gateway.host.clone());
    let port = args.port.unwrap_or(settings.config.gateway.port);
    let (host, port) = if interactive {
        let h = ask("bind address (keep 127.0.0.1 behind a TLS proxy)", &host)?;
        let p = ask("port", &port.to_string())?;
        (
            h,
            p.parse()
                .map_err(|_| anyhow::anyhow!("port {p:?} is not a number from 0 to 65535"))?,
        )
    } else {
        (host, port)
    };
    let default_db = args.database.clone().unwrap_or_else(|| {
        if settings.secrets.postgres_dsn.is_some() {
            "postgres"
        } else {
            "sqlite"
        }
        .to_owned()
    });
    let database = if interactive {
        ask("database (sqlite or postgres)", &default_db)?
    } else {
        default_db
    };
    let postgres_dsn = match database.as_str() {
        "sqlite" => None,
        "postgres" if settings.secrets.postgres_dsn.is_some() => None,
        "postgres" if interactive => {
            ask_secret("EXOCLAW_POSTGRES_DSN (postgres://user:pass@host/db)")?
        }
        "postgres" => bail!("--database postgres needs EXOCLAW_POSTGRES_DSN in the environment"),
        other => bail!("--database {other:?}: sqlite or postgres"),
    };
    if interactive {
        eprintln!("channels and memory are configured in later releases; nothing to set now.");
    }
    Ok(Answers {
        provider,
        model,
        base_url,
        api_key,
        host,
        port,
        postgres_dsn,
    })
}

/// The model ids an OpenAI-compatible server lists at `GET {base_url}/models`,
/// said on stderr; empty (with the reason said) when it does not answer: the
/// gateway tries it again when it starts. Through an egress client that
/// reaches exactly that origin (a local server on loopback included).
async fn probe_models(settings: &Settings, base_url: &str) -> Vec<String> {
    let url = format!("{}/models", base_url.trim_end_matches('/'));
    let limits = exoclaw_egress::FetchLimits {
        max_bytes: 1024 * 1024,
        timeout: std::time::Duration::from_secs(5),
        max_redirects: 0,
    };
    let answer = match exoclaw_gateway::egress::endpoint_client(settings, "--base-url", base_url) {
        Ok(client) => client
            .fetch(&url, exoclaw_egress::header::HeaderMap::new(), &limits)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let models = answer.and_then(|fetched| {
        if !fetched.status.is_success() {
            return Err(format!("it answered HTTP {}", fetched.status.as_u16()));
        }
        let body: serde_json::Value = serde_json::from_slice(&fetched.body)
            .map_err(|_| "its answer is not JSON (is this the /v1 base URL?)".to_owned())?;
        Ok(body["data"]
            .as_array()
            .map(|data| {
                data.iter()
                    .filter_map(|m| m["id"].as_str().map(str::to_owned))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default())
    });
    match models {
        Ok(models) if models.is_empty() => {
            eprintln!("the server at the base URL lists no models; name one with --model");
            Vec::new()
        }
        Ok(models) => {
            eprintln!(
                "the server at the base URL serves {} model(s): {}",
                models.len(),
                models.join(", ")
            );
            models
        }
        Err(reason) => {
            eprintln!(
                "warning: no model list from the base URL ({reason}); the gateway tries it when it starts"
            );
            Vec::new()
        }
    }
}

pub async fn run(args: &OnboardArgs, settings: &Settings) -> anyhow::Result<()> {
    crate::serve::refuse_unsafe_home(&settings.home)?;
    let a = collect(args, settings).await?;
    settings.home.ensure_layout()?;

    // config.json: merge into what is there.
    let path = &settings.config_path;
    let mut config: Value = match std::fs::read_to_string(path) {
        Ok(t) if !t.trim().is_empty() => serde_json::from_str(&t).with_context(|| {
            format!("{} is not valid JSON; fix or move it first", path.display())
        })?,
        _ => json!({}),
    };
    let set = |v: &mut Value, keys: &[&str], value: Value| {
        let mut cur = v;
        for k in &keys[..keys.len() - 1] {
            if !cur.get(*k).is_some_and(Value::is_object) {
                cur[*k] = json!({});
            }
            cur = &mut cur[*k];
        }
        cur[keys[keys.len() - 1]] = value;
    };
    set(&mut config, &["gateway", "host"], json!(a.host));
    set(&mut config, &["gateway", "port"], json!(a.port));
    set(
        &mut config,
        &["agents", "defaults", "provider"],
        json!(a.provider),
    );
    if let Some(m) = &a.model {
        set(&mut config, &["agents", "defaults", "model"], json!(m));
    }
    if let Some(b) = &a.base_url {
        set(
            &mut config,
            &["providers", a.provider.as_str(), "base_url"],
            json!(b),
        );
    }
    let text = serde_json::to_string_pretty(&config)? + "\n";
    crate::config::parse_config_text(&text).map_err(|ps| {
        let lines: Vec<String> = ps.iter().map(ToString::to_string).collect();
        anyhow::anyhow!(
            "the resulting config would be invalid: {}",
            lines.join("; ")
        )
    })?;
    home::write_private_file(path, text.as_bytes())?;

    // .env: add what is missing; never replace an existing secret.
    let mut updates: Vec<(String, String)> = Vec::new();
    let mut new_token = None;
    if settings.secrets.gateway_token.is_none() {
        let t = home::random_hex_32()?;
        new_token = Some(t.clone());
        updates.push(("EXOCLAW_GATEWAY_TOKEN".into(), t));
    }
    if settings.secrets.encryption_key.is_none() {
        updates.push(("EXOCLAW_ENCRYPTION_KEY".into(), home::random_hex_32()?));
    }
    if let Some(k) = &a.api_key {
        updates.push((
            format!("EXOCLAW_{}_API_KEY", env_name(&a.provider)),
            k.expose().to_owned(),
        ));
    }
    if let Some(d) = &a.postgres_dsn {
        updates.push(("EXOCLAW_POSTGRES_DSN".into(), d.expose().to_owned()));
    }
    let pairs: Vec<(&str, Option<&str>)> = updates
        .iter()
        .map(|(k, v)| (k.as_str(), Some(v.as_str())))
        .collect();
    home::update_dotenv(&settings.home.dotenv_path(), &pairs)?;

    crate::outln!(
        "wrote {} and {}",
        path.display(),
        settings.home.dotenv_path().display()
    );
    crate::outln!(
        "provider {} model {}, listening on {}:{}",
        a.provider,
        a.model.as_deref().unwrap_or("(provider default)"),
        a.host,
        a.port
    );
    if let Some(t) = new_token {
        crate::outln!("gateway token (shown once; also in .env): {t}");
    }
    crate::outln!("next: exoclaw serve   (then: exoclaw doctor, exoclaw security audit)");
    Ok(())
}
