//! `exoclaw token rotate`: a new gateway token with an overlap window. The
//! tokens live hashed in the store, so running gateways (several, on one
//! PostgreSQL) pick the change up within a second, without a restart. When
//! the token came from the data dir's `.env`, the file is updated too.

use crate::cli::TokenCommand;
use crate::config::Settings;
use crate::config::env::Origin;
use crate::serve::refuse_unsafe_home;
use anyhow::{Context as _, bail};
use exoclaw_core::model::NewAuditEvent;
use exoclaw_core::{DEFAULT_TENANT, Secret, TenantId};
use exoclaw_gateway::access::digest_hex;
use exoclaw_gateway::db;
use exoclaw_gateway::home;
use std::time::Duration;

pub async fn run(cmd: &TokenCommand, settings: &Settings) -> anyhow::Result<()> {
    let TokenCommand::Rotate { grace, json } = cmd;
    let grace = parse_duration(grace)?;
    let Rotated {
        token,
        old_valid_until: until,
        in_dotenv,
    } = rotate(settings, grace).await?;
    let until_text = rfc3339(until);
    if *json {
        crate::outln!(
            "{}",
            serde_json::json!({"token": token.expose(), "old_valid_until": until_text})
        );
    } else {
        crate::outln!(
            "new gateway token (shown once):\n\n    {}\n\nthe old token is accepted until {until_text}{}",
            token.expose(),
            if in_dotenv {
                format!("; {} was updated", settings.home.dotenv_path().display())
            } else {
                "; update EXOCLAW_GATEWAY_TOKEN where you set it".to_owned()
            }
        );
    }
    Ok(())
}

/// A rotation's outcome.
pub struct Rotated {
    pub token: Secret,
    pub old_valid_until: exoclaw_core::UnixMillis,
    /// The data dir's `.env` holds the new token (it did not come from the
    /// process environment).
    pub in_dotenv: bool,
}

/// Replaces the gateway token in the store (the old one valid for `grace`)
/// and in `.env` unless the process environment sets it; audited as
/// `token.rotate`. Running gateways follow the store.
pub async fn rotate(settings: &Settings, grace: Duration) -> anyhow::Result<Rotated> {
    refuse_unsafe_home(&settings.home)?;
    let inspection = db::inspect(settings).await?;
    if !inspection.status.is_current() {
        bail!(
            "the store schema is not current (version {} of {}); run `exoclaw upgrade` first",
            inspection.status.current,
            inspection.status.latest
        );
    }
    let db = db::open(settings).await?;
    let store = db.store();
    let result = async {
        let token = Secret::new(home::random_hex_32()?);
        let now = now_ms();
        let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
        let until = now.saturating_add(grace_ms);
        store
            .rotate_gateway_token(&digest_hex(&token), until, now)
            .await
            .context("cannot store the new token")?;
        let in_dotenv = settings.env.origin("EXOCLAW_GATEWAY_TOKEN") != Some(Origin::Process);
        if in_dotenv && settings.home.exists() {
            home::update_dotenv(
                &settings.home.dotenv_path(),
                &[("EXOCLAW_GATEWAY_TOKEN", Some(token.expose()))],
            )?;
        }
        let event = NewAuditEvent {
            tenant_id: TenantId::new(DEFAULT_TENANT),
            actor: "cli".to_owned(),
            action: "token.rotate".to_owned(),
            resource: "gateway-token".to_owned(),
            decision: "allow".to_owned(),
            reason: String::new(),
            request_id: None,
            agent_id: None,
            session_id: None,
            detail: serde_json::json!({"grace_sec": grace.as_secs(), "old_valid_until": until}),
        };
        store.append_audit(&event).await?;
        Ok(Rotated {
            token,
            old_valid_until: until,
            in_dotenv,
        })
    }
    .await;
    db.close().await;
    result
}

use exoclaw_core::now_ms;

/// `0`, `45s`, `10m`, `2h`, `1d` (a bare number is seconds).
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("--grace {s:?}: expected a number with s, m, h or d"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => bail!("--grace {s:?}: the unit must be s, m, h or d"),
    };
    if secs > 30 * 86_400 {
        bail!("--grace {s:?}: at most 30 days");
    }
    Ok(Duration::from_secs(secs))
}

pub use exoclaw_gateway::clock::rfc3339;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_dates() {
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("31d").is_err());
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000_000), "2023-11-14T22:13:20Z");
    }
}
