//! `exoclaw config show|path|validate`.

use crate::cli::ConfigCommand;
use crate::config::Settings;

pub fn run(cmd: &ConfigCommand, settings: &Settings) -> anyhow::Result<()> {
    match cmd {
        ConfigCommand::Show => {
            crate::outln!("{}", serde_json::to_string_pretty(&settings.show())?);
        }
        ConfigCommand::Path => crate::outln!("{}", settings.config_path.display()),
        ConfigCommand::Validate => {
            // Loading already validated everything; reaching here means valid.
            let source = if settings.config_file_exists {
                settings.config_path.display().to_string()
            } else {
                format!("{} (absent: defaults)", settings.config_path.display())
            };
            crate::outln!("configuration is valid: {source}");
        }
    }
    Ok(())
}
