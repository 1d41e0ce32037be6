//! Where each provider's settings come from: the names the gateway knows
//! (the presets and `providers.*`), the variable names derived from them
//! (`EXOCLAW_<NAME>_API_KEY`), and a base URL the operator configured.

use super::Settings;

/// Every provider name the gateway knows: the presets, then the
/// `providers.*` entries of `config.json`.
pub fn known_names(settings: &Settings) -> Vec<String> {
    exoclaw_providers::PRESETS
        .iter()
        .map(|p| p.name.to_owned())
        .chain(settings.config.providers.keys().cloned())
        .collect()
}

/// `openai-compat` -> `OPENAI_COMPAT`, as in `EXOCLAW_<NAME>_API_KEY`.
pub fn env_name(provider: &str) -> String {
    provider.to_ascii_uppercase().replace('-', "_")
}

/// A base URL the operator set for a provider, and where it was set.
pub struct ConfiguredBaseUrl {
    /// `EXOCLAW_<NAME>_BASE_URL` or `providers.<name>.base_url`.
    pub setting: String,
    pub url: String,
}

/// The base URL configured for provider `name`: `EXOCLAW_<NAME>_BASE_URL`,
/// else `providers.<name>.base_url`; `None` when the preset's default
/// applies. The egress client allows exactly these origins explicitly
/// (so a loopback Ollama works only when configured).
pub fn configured_base_url(settings: &Settings, name: &str) -> Option<ConfiguredBaseUrl> {
    let env_setting = format!("EXOCLAW_{}_BASE_URL", env_name(name));
    if let Some(url) = settings.env.get(&env_setting) {
        return Some(ConfiguredBaseUrl {
            setting: env_setting,
            url: url.to_owned(),
        });
    }
    settings
        .config
        .providers
        .get(name)
        .and_then(|p| p.base_url.clone())
        .map(|url| ConfiguredBaseUrl {
            setting: format!("providers.{name}.base_url"),
            url,
        })
}
