//! `GET|PATCH /v1/channels/{name}`: one channel's settings, for the
//! gateway's admins. `GET` shows them as they apply now (never a secret:
//! only whether the bot token or webhook secret is set); `PATCH` changes the
//! sender policy, `progress` and `files` by a JSON merge patch written to
//! `config.json` (validated as at start-up; compare-and-set by `version`)
//! and applied to the running channel at once, audited as
//! `channel.update`. The adapter's own sections need an edit of the file
//! and a restart.

use super::error::{ApiError, ErrorBody, ErrorCode};
use super::extract::{Body, Path};
use super::state::AppState;
use crate::config::edit::{self, EditError};
use axum::Extension;
use axum::Json;
use axum::extract::State;
use exoclaw_core::model::NewAuditEvent;
use exoclaw_core::{DEFAULT_TENANT, TenantId};
use exoclaw_gateway::access::Principal;
use exoclaw_gateway::channels::telegram;
use exoclaw_gateway::config::channels::ChannelKind;
use exoclaw_gateway::config::file::ChannelConfig;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Whether each secret a channel needs is set (never the value).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ChannelSecrets {
    /// Telegram: `EXOCLAW_TELEGRAM_BOT_TOKEN`, or the vault's `bot_token`
    /// of owner `channel:<name>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bot_token: Option<bool>,
    /// A signed webhook's (or Telegram webhook mode's) `webhook_secret` in
    /// the vault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<bool>,
}

/// One channel's settings.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ChannelSettings {
    pub name: String,
    /// The adapter (`telegram`, `webhook`); none: a sender policy only.
    pub kind: Option<String>,
    /// The settings as they apply now: `dm_policy`, `allow_from`,
    /// `groups`, `progress`, `files`, and the adapter's sections. No
    /// secrets are part of them.
    #[schema(value_type = Object)]
    pub settings: Value,
    /// The digest of the channel's section in `config.json`; give it back
    /// in a `PATCH` to refuse the change if the file changed meanwhile.
    pub version: Option<String>,
    /// The keys a `PATCH` changes without a restart.
    pub live: Vec<String>,
    pub secrets: ChannelSecrets,
}

/// A change of a channel's settings.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelSettingsPatch {
    /// A JSON merge patch of the channel's settings (`null` resets a key to
    /// its default); only `dm_policy`, `allow_from`, `groups`, `progress`
    /// and `files`.
    #[schema(value_type = Object)]
    pub settings: Value,
    /// The `version` the change is based on: refused with 409 if the
    /// channel's section changed since. Omitted: no check.
    #[serde(default)]
    pub version: Option<String>,
}

/// One `PATCH` at a time: each reads, merges and writes the whole file.
static WRITING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn gateway_level(who: &Principal) -> Result<(), ApiError> {
    if who.is_gateway_level() {
        Ok(())
    } else {
        Err(ApiError::forbidden("channels are the gateway's"))
    }
}

fn unknown() -> ApiError {
    ApiError::new(ErrorCode::ChannelUnknown, "no channel of that name")
}

/// Whether the vault holds `secret` of channel `name`.
async fn stored(state: &AppState, name: &str, secret: &str) -> bool {
    let owner = exoclaw_gateway::channels::webhook::secret_owner(name);
    state
        .vault
        .get(&TenantId::new(DEFAULT_TENANT), &owner, secret)
        .await
        .is_ok_and(|s| s.is_some())
}

async fn view(state: &AppState, name: &str, config: &ChannelConfig) -> ChannelSettings {
    let secrets = match config.kind {
        Some(ChannelKind::Telegram) => ChannelSecrets {
            bot_token: Some(
                state
                    .runtime
                    .settings
                    .env
                    .get(telegram::TOKEN_VAR)
                    .is_some()
                    || stored(state, name, telegram::TOKEN_SECRET).await,
            ),
            webhook_secret: config
                .telegram
                .webhook_url
                .is_some()
                .then_some(stored(state, name, "webhook_secret").await),
        },
        Some(ChannelKind::Discord) => ChannelSecrets {
            bot_token: Some(
                state
                    .runtime
                    .settings
                    .env
                    .get(exoclaw_gateway::channels::discord::TOKEN_VAR)
                    .is_some()
                    || stored(
                        state,
                        name,
                        exoclaw_gateway::channels::discord::TOKEN_SECRET,
                    )
                    .await,
            ),
            webhook_secret: None,
        },
        Some(ChannelKind::Webhook) => ChannelSecrets {
            bot_token: None,
            webhook_secret: Some(stored(state, name, "webhook_secret").await),
        },
        None => ChannelSecrets {
            bot_token: None,
            webhook_secret: None,
        },
    };
    let path = state.runtime.settings.config_path.clone();
    let section_name = name.to_owned();
    let version = tokio::task::spawn_blocking(move || edit::read_section(&path, &section_name))
        .await
        .ok()
        .and_then(Result::ok)
        .map(|s| edit::version(&s));
    ChannelSettings {
        name: name.to_owned(),
        kind: config.kind.map(|k| k.as_str().to_owned()),
        settings: serde_json::to_value(config).unwrap_or(Value::Null),
        version,
        live: edit::PATCHABLE.iter().map(|k| (*k).to_owned()).collect(),
        secrets,
    }
}

/// A channel's settings as they apply now (gateway admins).
#[utoipa::path(get, path = "/v1/channels/{name}", tag = "channels",
    params(("name" = String, Path, description = "The channel (`channels.<name>`)")),
    responses(
        (status = 200, description = "The settings; secrets only as set or not", body = ChannelSettings),
        (status = 403, description = "Not a gateway-level admin (`auth.forbidden`)", body = ErrorBody),
        (status = 404, description = "No channel of that name (`channel.unknown`)", body = ErrorBody),
    ))]
pub async fn show(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Json<ChannelSettings>, ApiError> {
    gateway_level(&who)?;
    let config = state.channels.settings_of(&name).ok_or_else(unknown)?;
    Ok(Json(view(&state, &name, &config).await))
}

/// Change a channel's sender policy, `progress` or `files` (gateway admins;
/// audited as `channel.update`). Written to `config.json` and applied to
/// the running channel with its next message; another gateway reading the
/// same file sees the change at its next start.
#[utoipa::path(patch, path = "/v1/channels/{name}", tag = "channels",
    params(("name" = String, Path, description = "The channel (`channels.<name>`)")),
    request_body = ChannelSettingsPatch,
    responses(
        (status = 200, description = "Changed and applied", body = ChannelSettings),
        (status = 400, description = "`channel.settings_invalid`: a value is not valid or the key is not changeable here (the message names each field)", body = ErrorBody),
        (status = 403, description = "Not a gateway-level admin (`auth.forbidden`)", body = ErrorBody),
        (status = 404, description = "No channel of that name (`channel.unknown`)", body = ErrorBody),
        (status = 409, description = "`conflict`: the channel's section changed since `version`; `channel.config_unwritable`: `config.json` cannot be rewritten", body = ErrorBody),
    ))]
pub async fn update(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(name): Path<String>,
    Body(body): Body<ChannelSettingsPatch>,
) -> Result<Json<ChannelSettings>, ApiError> {
    gateway_level(&who)?;
    state.channels.settings_of(&name).ok_or_else(unknown)?;
    let _one = WRITING.lock().await;
    let path = state.runtime.settings.config_path.clone();
    let (patch, version, section) = (body.settings.clone(), body.version.clone(), name.clone());
    let edited = tokio::task::spawn_blocking(move || {
        edit::patch_channel(&path, &section, &patch, version.as_deref())
    })
    .await
    .map_err(|_| ApiError::new(ErrorCode::Internal, "the change did not complete"))?;
    let (config, new_version) = edited.map_err(|e| match e {
        EditError::NotFound => unknown(),
        EditError::Invalid(problems) => ApiError::new(
            ErrorCode::ChannelSettingsInvalid,
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        ),
        EditError::Conflict { current } => ApiError::new(
            ErrorCode::Conflict,
            format!(
                "the channel's settings changed meanwhile (now version {current}); read them again"
            ),
        ),
        EditError::Io(why) => {
            tracing::warn!(channel = %name, error = %why, "cannot rewrite config.json");
            ApiError::new(ErrorCode::ChannelConfigUnwritable, why)
        }
    })?;
    // Apply what was written: the running channel's settings now.
    let live = state.channels.settings_of(&name).map(|mut c| {
        c.dm_policy = config.dm_policy;
        c.allow_from.clone_from(&config.allow_from);
        c.groups = config.groups.clone();
        c.progress = config.progress.clone();
        c.files = config.files.clone();
        c
    });
    let live = live.unwrap_or(config);
    state.channels.reconfigure(&name, &live);
    let mut event = NewAuditEvent::new(
        who.tenant.clone(),
        who.actor.clone(),
        "channel.update",
        format!("channel:{name}"),
        "allow",
    );
    event.detail = serde_json::json!({"settings": body.settings, "version": new_version});
    exoclaw_gateway::audit::record_logged(state.store.as_ref(), &event).await;
    Ok(Json(view(&state, &name, &live).await))
}
