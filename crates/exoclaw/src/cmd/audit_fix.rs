//! Applying what `exoclaw security audit --fix` plans
//! ([`crate::security::plan`]): each remedy only after confirmation (a
//! prompt in a terminal, or `--yes`). Configuration edits are validated as
//! `serve` would load them before the file is written (atomically, its mode
//! kept; the previous text kept as `<config>.bak`); the gateway token is
//! generated into `.env`, or rotated (the store's token and `.env`, as
//! `exoclaw token rotate --grace 0`), never printed.

use crate::config::Settings;

use crate::security::plan::{Action, Remedy};
use anyhow::Context as _;
use exoclaw_gateway::home;
use serde_json::{Value, json};
use std::io::{BufRead as _, IsTerminal as _, Write as _};

/// How changes are confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Confirm {
    /// `--yes`: apply every remedy.
    Yes,
    /// Ask on the terminal, one remedy at a time.
    Ask,
    /// No terminal and no `--yes`: apply nothing, say how.
    No,
}

impl Confirm {
    pub fn from_flags(yes: bool, json: bool) -> Self {
        if yes {
            Confirm::Yes
        } else if !json && std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
            Confirm::Ask
        } else {
            Confirm::No
        }
    }
}

/// Applies what `confirm` allows; returns (changed, left).
pub async fn apply(
    s: &Settings,
    remedies: Vec<Remedy>,
    confirm: Confirm,
) -> (Vec<String>, Vec<String>) {
    let mut changed = Vec::new();
    let mut left = Vec::new();
    let mut edits: Vec<(String, Value)> = Vec::new();
    let mut edited: Vec<&'static str> = Vec::new();
    let mut token = None;
    for r in remedies {
        let yes = match confirm {
            Confirm::Yes => true,
            Confirm::Ask => ask(&r),
            Confirm::No => {
                left.push(format!(
                    "{}: would {} (re-run with --yes, or in a terminal to confirm each)",
                    r.id, r.what
                ));
                continue;
            }
        };
        if !yes {
            left.push(format!("{}: declined ({})", r.id, r.what));
            continue;
        }
        match r.action {
            Action::Config(e) => {
                edits.extend(e);
                edited.push(r.id);
            }
            Action::NewToken | Action::RotateToken => token = Some(r),
        }
    }
    if !edits.is_empty() {
        match edit_config(s, &edits) {
            Ok(()) => changed.extend(edits.iter().map(|(p, v)| {
                format!(
                    "{}: {} = {v}",
                    s.config_path.display(),
                    p.trim_start_matches('/').replace('/', ".")
                )
            })),
            Err(e) => left.extend(
                edited
                    .iter()
                    .map(|id| format!("{id}: cannot edit the config: {e:#}")),
            ),
        }
    }
    if let Some(r) = token {
        let result = match r.action {
            Action::RotateToken => rotate_token(s).await,
            _ => new_token(s),
        };
        match result {
            Ok(what) => changed.push(what),
            Err(e) => left.push(format!("{}: {e:#}", r.id)),
        }
    }
    (changed, left)
}

fn ask(r: &Remedy) -> bool {
    eprint!("fix {}: {}? [y/N] ", r.id, r.what);
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes")
}

/// Applies `edits` to `config.json` (created when missing), after checking
/// the result loads as `serve` would load it; the old text is kept beside
/// it as `.bak`.
fn edit_config(s: &Settings, edits: &[(String, Value)]) -> anyhow::Result<()> {
    let path = &s.config_path;
    let old = if s.config_file_exists {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?
    } else {
        String::new()
    };
    let mut root: Value = if old.trim().is_empty() {
        json!({})
    } else {
        serde_json::from_str(&old).with_context(|| format!("{} is not JSON", path.display()))?
    };
    for (pointer, value) in edits {
        set(&mut root, pointer, value.clone())?;
    }
    let mut text = serde_json::to_string_pretty(&root)?;
    text.push('\n');
    crate::config::from_parts(s.home.clone(), path.clone(), &text, true, s.env.clone())
        .map_err(|e| anyhow::anyhow!("the edited config would not load: {e}"))?;
    let path = std::path::absolute(path)?;
    let mode = std::fs::metadata(&path)
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
        .unwrap_or(0o600);
    if s.config_file_exists {
        let bak = path.with_file_name(format!(
            "{}.bak",
            path.file_name().unwrap_or_default().to_string_lossy()
        ));
        home::write_private_file(&bak, old.as_bytes())?;
    }
    home::write_private_file(&path, text.as_bytes())?;
    if mode != 0o600 {
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode))?;
    }
    Ok(())
}

/// Sets `pointer` in `root`, creating objects on the way.
fn set(root: &mut Value, pointer: &str, value: Value) -> anyhow::Result<()> {
    let mut at = root;
    let parts: Vec<String> = pointer
        .trim_start_matches('/')
        .split('/')
        .map(|p| p.replace("~1", "/").replace("~0", "~"))
        .collect();
    let Some((last, path)) = parts.split_last() else {
        anyhow::bail!("empty pointer");
    };
    for p in path {
        let Value::Object(map) = at else {
            anyhow::bail!("{pointer}: {p} is not an object");
        };
        at = map.entry(p.clone()).or_insert_with(|| json!({}));
    }
    let Value::Object(map) = at else {
        anyhow::bail!("{pointer}: not inside an object");
    };
    map.insert(last.clone(), value);
    Ok(())
}

fn new_token(s: &Settings) -> anyhow::Result<String> {
    s.home.ensure_layout()?;
    let token = home::random_hex_32()?;
    let path = s.home.dotenv_path();
    home::update_dotenv(&path, &[("EXOCLAW_GATEWAY_TOKEN", Some(&token))])?;
    Ok(format!(
        "generated a gateway token into {} (read it there; it is not printed)",
        path.display()
    ))
}

async fn rotate_token(s: &Settings) -> anyhow::Result<String> {
    let inspection = exoclaw_gateway::db::inspect(s).await?;
    if !inspection.exists {
        // Never started: the store has no token yet, `.env` is all there is.
        return new_token(s).map(|m| m.replace("generated", "replaced the weak token with"));
    }
    crate::cmd::token::rotate(s, std::time::Duration::ZERO).await?;
    Ok(format!(
        "rotated the gateway token (store and {}; running gateways follow; read it there, it is not printed)",
        s.home.dotenv_path().display()
    ))
}
