//! The Discord bot's state: its configuration, egress client and token,
//! the Gateway session kept between connections to resume, who the bot is
//! (from READY) and when the Gateway last acknowledged a heartbeat. The
//! adapter's behaviour lives beside it (`mod.rs` the port, `gateway.rs`,
//! `rest.rs`).

use super::message::Me;
use crate::config::channels::DiscordChannelConfig;
use exoclaw_core::channel::{ChannelError, ChannelInfo};
use exoclaw_core::{Secret, TenantId};
use exoclaw_store::vault::SecretVault;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

/// The token's variable, read through the settings' environment snapshot.
pub const TOKEN_VAR: &str = "EXOCLAW_DISCORD_BOT_TOKEN";
/// The vault name of a bot token (owner `channel:<name>`).
pub const TOKEN_SECRET: &str = "bot_token";

/// What is kept between connections to resume.
#[derive(Clone, Debug, Default)]
pub(super) struct Session {
    pub id: Option<String>,
    pub resume_url: Option<String>,
    pub seq: Option<u64>,
}

/// A Discord channel (see the module docs of `channels::discord`).
pub struct DiscordChannel {
    pub(super) info: ChannelInfo,
    pub(super) tenant: TenantId,
    pub(super) config: DiscordChannelConfig,
    pub(super) env_token: Option<Secret>,
    pub(super) vault: Option<Arc<SecretVault>>,
    pub(super) client: exoclaw_egress::EgressClient,
    pub(super) session: Mutex<Session>,
    pub(super) me: RwLock<Me>,
    /// When the last heartbeat ACK arrived (ms since the epoch, 0: never).
    pub(super) last_ack: AtomicI64,
}

impl DiscordChannel {
    pub fn new(
        name: &str,
        tenant: TenantId,
        config: DiscordChannelConfig,
        env_token: Option<Secret>,
        vault: Option<Arc<SecretVault>>,
        client: exoclaw_egress::EgressClient,
    ) -> Self {
        Self {
            info: ChannelInfo {
                name: name.to_owned(),
                kind: "discord",
                can_edit: true,
                can_react: true,
                can_type: true,
                can_files: true,
            },
            tenant,
            config,
            env_token,
            vault,
            client,
            session: Mutex::new(Session::default()),
            me: RwLock::new(Me::default()),
            last_ack: AtomicI64::new(0),
        }
    }

    /// When the Gateway last acknowledged a heartbeat (ms since the epoch).
    pub fn last_heartbeat_ack(&self) -> Option<i64> {
        Some(self.last_ack.load(Ordering::Relaxed)).filter(|t| *t > 0)
    }

    pub(super) async fn token(&self) -> Result<Secret, ChannelError> {
        if let Some(t) = &self.env_token {
            return Ok(t.clone());
        }
        let Some(v) = &self.vault else {
            return Err(ChannelError::Auth);
        };
        match v
            .get(
                &self.tenant,
                &super::super::webhook::secret_owner(&self.info.name),
                TOKEN_SECRET,
            )
            .await
        {
            Ok(Some(t)) => Ok(t),
            Ok(None) => Err(ChannelError::Auth),
            Err(_) => Err(ChannelError::Unavailable(
                "cannot read the bot token".to_owned(),
            )),
        }
    }

    pub(super) fn forget_session(&self) {
        *self.session.lock().unwrap_or_else(PoisonError::into_inner) = Session::default();
    }
}
