//! `exoclaw upgrade [--status|--dry-run]` and `exoclaw migrate
//! up|down|version|force|goto`.

use crate::cli::{MigrateCommand, UpgradeArgs};
use crate::config::Settings;
use crate::serve::refuse_unsafe_home;
use anyhow::bail;
use exoclaw_gateway::db::{self, Db};

/// Open the store for schema administration (creating the data dir and the
/// SQLite file when missing), after the read-only checks pass.
async fn open_admin(settings: &Settings) -> anyhow::Result<Db> {
    refuse_unsafe_home(&settings.home)?;
    db::inspect(settings).await?;
    if settings.secrets.postgres_dsn.is_none() {
        settings.home.ensure_layout()?;
    }
    db::open(settings).await
}

pub async fn upgrade(args: &UpgradeArgs, settings: &Settings) -> anyhow::Result<()> {
    if args.status || args.dry_run {
        let inspection = db::inspect(settings).await?;
        let s = inspection.status;
        let pending = (s.latest - s.current).max(0);
        crate::outln!(
            "schema: current {}, required {}, {pending} pending{}",
            s.current,
            s.latest,
            if s.dirty { " (dirty)" } else { "" }
        );
        if s.is_newer_than_binary() {
            crate::outln!("the database is newer than this exoclaw; upgrade the binary");
        }
        if args.dry_run {
            for m in exoclaw_store::migrations(if settings.secrets.postgres_dsn.is_some() {
                exoclaw_core::store::Backend::Postgres
            } else {
                exoclaw_core::store::Backend::Sqlite
            })
            .iter()
            .filter(|m| m.version > s.current)
            {
                crate::outln!(
                    "-- would apply {:04} {}\n{}",
                    m.version,
                    m.name,
                    m.up_sql.trim()
                );
            }
        }
        return Ok(());
    }
    let db = open_admin(settings).await?;
    let store = db.store();
    let result = async {
        let status = store.schema_status().await?;
        if status.is_newer_than_binary() {
            bail!(
                "the database schema is version {}, newer than this exoclaw supports ({}); run a newer exoclaw",
                status.current,
                status.latest
            );
        }
        let steps = db::migrate_latest(store.as_ref()).await?;
        if steps.is_empty() {
            crate::outln!("schema is current (version {})", status.latest);
        } else {
            crate::outln!("upgraded schema to version {} (applied {steps:?})", status.latest);
        }
        Ok(())
    }
    .await;
    db.close().await;
    result
}

pub async fn run(cmd: &MigrateCommand, settings: &Settings) -> anyhow::Result<()> {
    let db = open_admin(settings).await?;
    let store = db.store();
    let result = async {
        let status = store.schema_status().await?;
        match cmd {
            MigrateCommand::Version => {
                crate::outln!(
                    "{}{}",
                    status.current,
                    if status.dirty { " (dirty)" } else { "" }
                );
            }
            MigrateCommand::Up => {
                let steps = db::migrate_latest(store.as_ref()).await?;
                crate::outln!("at version {} (applied {steps:?})", status.latest);
            }
            MigrateCommand::Down { steps } => {
                if *steps < 1 {
                    bail!("down takes a positive number of steps");
                }
                let target = (status.current - steps).max(0);
                let passed = store.migrate_to(target).await?;
                crate::outln!("at version {target} (reverted {passed:?})");
            }
            MigrateCommand::Goto { version } => {
                let passed = store.migrate_to(*version).await?;
                crate::outln!("at version {version} (passed {passed:?})");
            }
            MigrateCommand::Force { version } => {
                store.force_version(*version).await?;
                crate::outln!("recorded version {version}; dirty flag cleared");
            }
        }
        Ok(())
    }
    .await;
    db.close().await;
    result
}
