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
        return boxed(cmd::doctor::run(config_flag, env)).await;
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
        return boxed(cmd::audit::run(&settings, opts)).await;
    }
    let settings = crate::config::load(config_flag, env)?;
    exoclaw_gateway::runtime::guard::register_settings_secrets(&settings);
    // Each command's future is boxed behind `dyn Future`: inlined, every
    // command's state machine was one function of ~180 KiB that `serve`
    // ran through (and kept resident) at every start.
    match command {
        Command::Serve => boxed(serve::run(settings)).await?,
        Command::Config(c) => cmd::config::run(&c, &settings)?,
        Command::Upgrade(args) => boxed(cmd::migrate::upgrade(&args, &settings)).await?,
        Command::Migrate(m) => boxed(cmd::migrate::run(&m, &settings)).await?,
        Command::Secrets(s) => boxed(cmd::secrets::run(&s, &settings)).await?,
        Command::Agent(a) => boxed(cmd::agent::run(&a, settings, verbose)).await?,
        Command::Token(t) => boxed(cmd::token::run(&t, &settings)).await?,
        Command::Service(c) => cmd::service::run(&c, &settings)?,
        Command::Onboard(a) => boxed(cmd::onboard::run(&a, &settings)).await?,
        Command::Backup(b) => boxed(cmd::backup::run(&b, &settings)).await?,
        Command::Approvals(a) => boxed(cmd::approvals::run(&a, &settings)).await?,
        Command::Users(u) => boxed(cmd::users::run_users(&u, &settings)).await?,
        Command::Tenants(t) => boxed(cmd::tenants::run(&t, &settings)).await?,
        Command::Keys(k) => boxed(cmd::users::run_keys(&k, &settings)).await?,
        Command::Routes(j) => cmd::users::routes(j.json),
        Command::Pairing(p) => boxed(cmd::pairing::run(&p, &settings)).await?,
        Command::Sandbox(c) => return boxed(cmd::sandbox::run(&c, &settings)).await,
        Command::Audit(a) => return boxed(cmd::audit_log::run(&a, &settings)).await,
        Command::Delegations(d) => {
            boxed(cmd::orchestration::run_delegations(&d, &settings)).await?
        }
        Command::Bindings(b) => boxed(cmd::orchestration::run_bindings(&b, &settings)).await?,
        Command::Team(t) => boxed(cmd::team::run(&t, &settings)).await?,
        Command::Cron(c) => boxed(cmd::cron::run(&c, &settings)).await?,
        Command::Memory(c) => boxed(cmd::memory::run(&c, &settings)).await?,
        Command::Skills(c) => boxed(cmd::skills::run(&c, &settings)).await?,
        Command::Tools(t) => boxed(cmd::tools::run(&t, &settings)).await?,
        Command::Mcp(m) => boxed(cmd::mcp::run(&m, &settings)).await?,
        Command::Channels(c) => return boxed(cmd::channels::run(&c, &settings)).await,
        Command::Version(_) | Command::Doctor | Command::Security(_) => {}
    }
    Ok(true)
}

/// `f` behind a pointer, so that its state machine stays its own code.
fn boxed<'a, T>(
    f: impl std::future::Future<Output = T> + 'a,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + 'a>> {
    Box::pin(f)
}

/// One clear line on stderr, then a non-zero exit.
fn fail(e: &anyhow::Error) -> ExitCode {
    eprintln!("error: {e:#}");
    ExitCode::FAILURE
}
