//! `exoclaw backup create|verify|restore`: the command-line face of
//! `exoclaw_gateway::backup`. Output names files, sizes, the store and the key id;
//! never a key or a secret.

use crate::cli::BackupCommand;
use crate::config::Settings;
use crate::serve::refuse_unsafe_home;
use anyhow::bail;
use exoclaw_gateway::backup::{self, Created};
use exoclaw_gateway::db;

pub async fn run(cmd: &BackupCommand, settings: &Settings) -> anyhow::Result<()> {
    let key = backup::key(settings)?;
    match cmd {
        BackupCommand::Create { out } => {
            let created = create(settings, &key, out.as_deref()).await?;
            print_created(&created);
        }
        BackupCommand::Verify { file } => {
            let v = backup::verify(&key, file).await?;
            crate::outln!(
                "backup ok: {}\n  created {} by exoclaw {}; {}; {} files, {} bytes; key id {}",
                file.display(),
                v.manifest.created_at,
                v.manifest.exoclaw_version,
                v.store,
                v.manifest.files.len(),
                v.manifest.total_bytes(),
                key.key_id()
            );
        }
        BackupCommand::Restore { file, home } => {
            let r = backup::restore(settings, &key, file, home).await?;
            crate::outln!(
                "restored {} into {}\n  created {} by exoclaw {}; {}; {} files",
                file.display(),
                r.home.display(),
                r.manifest.created_at,
                r.manifest.exoclaw_version,
                r.store,
                r.manifest.files.len()
            );
            for note in &r.notes {
                crate::outln!("  note: {note}");
            }
            crate::outln!(
                "start it with: EXOCLAW_HOME={} exoclaw serve",
                r.home.display()
            );
        }
    }
    Ok(())
}

async fn create(
    settings: &Settings,
    key: &backup::BackupKey,
    out: Option<&std::path::Path>,
) -> anyhow::Result<Created> {
    refuse_unsafe_home(&settings.home)?;
    let inspection = db::inspect(settings).await?;
    if !inspection.exists || inspection.status.current == 0 {
        bail!(
            "nothing to back up: the {} store has no exoclaw schema yet (start the gateway once)",
            db::backend_name(settings)
        );
    }
    if inspection.status.dirty || inspection.status.is_newer_than_binary() {
        bail!(
            "the store schema is version {}{} and cannot be backed up by this exoclaw; run \
             `exoclaw doctor`",
            inspection.status.current,
            if inspection.status.dirty {
                " (dirty)"
            } else {
                ", newer than this binary"
            }
        );
    }
    let out_dir = match out {
        Some(dir) => dir.to_path_buf(),
        None => backup::default_dir(&settings.home),
    };
    let db = db::open(settings).await?;
    let result = backup::create(settings, &db, key, &out_dir).await;
    db.close().await;
    result
}

fn print_created(c: &Created) {
    crate::outln!(
        "backup written: {}\n  {} bytes; {} files ({} bytes); {} store at schema {}; key id {} ({})",
        c.path.display(),
        c.bytes,
        c.manifest.files.len(),
        c.manifest.total_bytes(),
        c.manifest.store.kind.name(),
        c.manifest.store.schema_version,
        c.key_id,
        c.key_source
    );
    for s in &c.manifest.skipped {
        crate::outln!("  left out: {} ({})", s.path, s.reason);
    }
    for p in &c.pruned.removed {
        crate::outln!("  pruned: {}", p.display());
    }
    for e in &c.pruned.errors {
        crate::outln!("  warning: {e}");
    }
}
