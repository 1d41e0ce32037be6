//! Parsing the command line, with a short way for the gateway's own start:
//! `exoclaw [serve]` is tried against a command line that knows only it.

use super::{Cli, Command};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// The command line of this process (see [`parse_from`]).
pub fn parse() -> Cli {
    parse_from(std::env::args_os())
}

/// Parses `args` as [`Cli::parse_from`] does, but the gateway's own start
/// (`exoclaw [serve] [-c FILE] [-v]`) is first tried against [`ServeCli`], a
/// command line that knows nothing else: building the whole tree (about a
/// hundred subcommands and their arguments) was the largest block of code a
/// start ran before the gateway's own, and it stayed resident. Anything
/// `ServeCli` does not take (another command, `--help`, `--version`, a
/// mistake) goes to the whole [`Cli`], which answers exactly as before.
pub fn parse_from<I, T>(args: I) -> Cli
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    match ServeCli::try_parse_from(&args) {
        Ok(serve) => Cli {
            config: serve.config,
            verbose: serve.verbose,
            command: serve.command.map(|ServeOnly::Serve| Command::Serve),
        },
        Err(_) => Cli::parse_from(args),
    }
}

/// `exoclaw [serve]` with the global options, nothing else (see
/// [`parse_from`]); no help or version flag, so that those go to [`Cli`].
#[derive(Debug, Parser)]
#[command(
    name = "exoclaw",
    disable_help_flag = true,
    disable_version_flag = true,
    disable_help_subcommand = true
)]
struct ServeCli {
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[arg(long, short = 'v', global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Option<ServeOnly>,
}

#[derive(Debug, Subcommand)]
enum ServeOnly {
    Serve,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The short way gives what the whole tree gives, and everything else is
    /// the whole tree's.
    #[test]
    fn serve_parses_as_the_whole_command_line_does() {
        for args in [
            &["exoclaw"][..],
            &["exoclaw", "serve"],
            &["exoclaw", "-v"],
            &["exoclaw", "serve", "-c", "/tmp/c.json", "--verbose"],
            &["exoclaw", "--config=/tmp/c.json", "serve"],
            &["exoclaw", "-v", "doctor"],
            &["exoclaw", "agent", "list"],
            &["exoclaw", "-c", "/x", "version", "--json"],
        ] {
            let short = format!("{:?}", parse_from(args));
            let whole = format!("{:?}", Cli::parse_from(args));
            assert_eq!(short, whole, "{args:?}");
        }
        assert!(ServeCli::try_parse_from(["exoclaw", "serve"]).is_ok());
        for refused in [
            &["exoclaw", "--help"][..],
            &["exoclaw", "serve", "--help"],
            &["exoclaw", "--version"],
            &["exoclaw", "serve", "now"],
            &["exoclaw", "doctor"],
        ] {
            assert!(ServeCli::try_parse_from(refused).is_err(), "{refused:?}");
        }
    }
}
