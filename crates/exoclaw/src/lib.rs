//! exoclaw's edge and composition root, as a library so that tests drive
//! it in-process: the command line (`cli`, `cmd`), reading and validating
//! the configuration (`config`), the HTTP and WebSocket API (`http`) and the
//! wiring that runs a gateway (`serve`). The gateway itself is the
//! `exoclaw-gateway` crate. See ARCHITECTURE.md for the map.
//!
//! Modules form layers (checked by `cargo xtask tidy`): `alloc`, `logging`,
//! `version`, `config`, `cli` < `http` < `serve` < `cmd`.

mod alloc;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod http;
pub(crate) mod logging;
pub mod out;
pub mod security;
pub mod serve;
pub mod version;

use cli::Command;
use config::env::Env;
use futures_util::FutureExt as _;
use std::process::ExitCode;

/// The `exoclaw` command: parse the command line, read the configuration
/// once, run the command. `main` calls it.
pub fn main() -> ExitCode {
    // The sandbox's init is this binary too; it must start before any thread
    // or runtime does (it forks into namespaces).
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == exoclaw_gateway::runtime::tools::SANDBOX_INIT_ARG)
    {
        return exoclaw_tools::sandbox::init_main();
    }
    alloc::tune();
    let cli = cli::parse();
    let env = crate::config::env::from_process();
    let command = cli.command.unwrap_or(Command::Serve);
    let default_level = if matches!(command, Command::Serve) {
        "info"
    } else {
        "warn"
    };
    logging::init(cli.verbose, env.get("EXOCLAW_LOG"), default_level);

    if let Command::Version(flag) = &command {
        version::run(flag.json);
        return ExitCode::SUCCESS;
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get().min(4)))
        .max_blocking_threads(16)
        .on_thread_park(alloc::collect_when_idle)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    let result = runtime.block_on(dispatch(command, cli.config.as_deref(), cli.verbose, env));
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => fail(&e),
    }
}

/// Runs the command; `Ok(false)` means "completed, but report failure".
async fn dispatch(
    command: Command,
    config_flag: Option<&std::path::Path>,
    verbose: bool,
    env: Env,
) -> anyhow::Result<bool> {
    if let Command::Doctor = command {
        return cmd::doctor::run(config_flag, env).boxed_local().await;
    }
    if let Command::Audit(cli::AuditCommand::Verify {
        bundle: Some(bundle),
        public_key,
        json,
        ..
    }) = &command
    {
        // Offline: no config, no store.
        return cmd::audit_log::verify_bundle(bundle, public_key.as_deref(), *json);
    }
    if let Command::Security(cli::SecurityCommand::Audit {
        deep,
        fix,
        yes,
        json,
    }) = command
    {
        let settings = crate::config::load(config_flag, env)?;
        let opts = cmd::audit::Options {
            deep,
            fix,
            yes,
            json,
        };
        return cmd::audit::run(&settings, opts).boxed_local().await;
    }
    let settings = crate::config::load(config_flag, env)?;
    exoclaw_gateway::runtime::guard::register_settings_secrets(&settings);
    // Each command's future is boxed behind `dyn Future`: inlined, every
    // command's state machine was one function of ~180 KiB that `serve`
    // ran through (and kept resident) at every start.
    match command {
        Command::Serve => serve::run(settings).boxed_local().await?,
        Command::Config(c) => cmd::config::run(&c, &settings)?,
        Command::Upgrade(args) => {
            cmd::migrate::upgrade(&args, &settings)
                .boxed_local()
                .await?
        }
        Command::Migrate(m) => cmd::migrate::run(&m, &settings).boxed_local().await?,
        Command::Secrets(s) => cmd::secrets::run(&s, &settings).boxed_local().await?,
        Command::Agent(a) => cmd::agent::run(&a, settings, verbose).boxed_local().await?,
        Command::Token(t) => cmd::token::run(&t, &settings).boxed_local().await?,
        Command::Service(c) => cmd::service::run(&c, &settings)?,
        Command::Onboard(a) => cmd::onboard::run(&a, &settings).boxed_local().await?,
        Command::Backup(b) => cmd::backup::run(&b, &settings).boxed_local().await?,
        Command::Approvals(a) => cmd::approvals::run(&a, &settings).boxed_local().await?,
        Command::Users(u) => cmd::users::run_users(&u, &settings).boxed_local().await?,
        Command::Tenants(t) => cmd::tenants::run(&t, &settings).boxed_local().await?,
        Command::Keys(k) => cmd::users::run_keys(&k, &settings).boxed_local().await?,
        Command::Routes(j) => cmd::users::routes(j.json),
        Command::Pairing(p) => cmd::pairing::run(&p, &settings).boxed_local().await?,
        Command::Sandbox(c) => return cmd::sandbox::run(&c, &settings).boxed_local().await,
        Command::Audit(a) => return cmd::audit_log::run(&a, &settings).boxed_local().await,
        Command::Delegations(d) => {
            cmd::orchestration::run_delegations(&d, &settings)
                .boxed_local()
                .await?
        }
        Command::Bindings(b) => {
            cmd::orchestration::run_bindings(&b, &settings)
                .boxed_local()
                .await?
        }
        Command::Team(t) => cmd::team::run(&t, &settings).boxed_local().await?,
        Command::Cron(c) => cmd::cron::run(&c, &settings).boxed_local().await?,
        Command::Memory(c) => cmd::memory::run(&c, &settings).boxed_local().await?,
        Command::Skills(c) => cmd::skills::run(&c, &settings).boxed_local().await?,
        Command::Tools(t) => cmd::tools::run(&t, &settings).boxed_local().await?,
        Command::Mcp(m) => cmd::mcp::run(&m, &settings).boxed_local().await?,
        Command::Channels(c) => return cmd::channels::run(&c, &settings).boxed_local().await,
        Command::Version(_) | Command::Doctor | Command::Security(_) => {}
    }
    Ok(true)
}

/// One clear line on stderr, then a non-zero exit.
fn fail(e: &anyhow::Error) -> ExitCode {
    eprintln!("error: {e:#}");
    ExitCode::FAILURE
}
