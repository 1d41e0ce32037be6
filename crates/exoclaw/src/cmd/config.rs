//! `exoclaw config show|path|validate`.

use crate::cli::ConfigCommand;
use crate::config::Settings;

pub fn run(cmd: &ConfigCommand, settings: &Settings) -> anyhow::Result<()> {
    match cmd {
        ConfigCommand::Show => {
            println!("{}", serde_json::to_string_pretty(&settings.show())?);
        }
        ConfigCommand::Path => println!("{}", settings.config_path.display()),
        ConfigCommand::Validate => {
            // Loading already validated everything; reaching here means valid.
            let source = if settings.config_file_exists {
                settings.config_path.display().to_string()
            } else {
                format!("{} (absent: defaults)", settings.config_path.display())
            };
            println!("configuration is valid: {source}");
        }
    }
    Ok(())
}
