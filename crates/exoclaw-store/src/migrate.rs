//! The migrations each backend ships, embedded at build time, and the
//! dialect-free part of running them: planning one step at a time and the
//! wording of schema errors.
//!
//! Version bookkeeping follows golang-migrate: a table
//! `schema_migrations (version BIGINT NOT NULL, dirty BOOLEAN NOT NULL)` with
//! one row. Each step runs in its own transaction together with the version
//! update, so a failed step leaves the previous version behind. A migration
//! whose SQL starts with [`NO_TRANSACTION`] runs outside a transaction: the
//! version is first recorded as dirty and cleared only when the step succeeds,
//! so a failure half-way is visible and blocks further migrations until an
//! operator repairs the database and runs `exoclaw migrate force N`.
//!
//! A new SQLite database (version 0, migrated to the latest version, as on a
//! gateway's first start) is made in one step instead: the squashed schema in
//! `migrations/sqlite/schema.sql` is what every migration applied in order
//! leaves behind, generated from them and checked against them by a test
//! (`sqlite::squashed_tests`), so both paths give the same database. Each
//! migration step costs its own transaction and, for the `ALTER TABLE`s and
//! table rebuilds, a re-read of the whole schema; with the one script a
//! gateway's first start is ready in 19–20 ms instead of 30–36 ms
//! (BENCHMARKS.md, issue 11).

use exoclaw_core::store::{MigrationInfo, SchemaStatus, StoreError, StoreResult};

/// First line of a migration that must not run inside a transaction.
pub(crate) const NO_TRANSACTION: &str = "-- exoclaw:no-transaction";

/// A backend's migrations: `infos[i]` is version `i + 1`, `downs[i]` reverts it.
pub(crate) struct Migrations {
    pub(crate) infos: &'static [MigrationInfo],
    pub(crate) downs: &'static [&'static str],
    /// The schema at [`Migrations::latest`] in one transactional script, for
    /// a database at version 0 migrated all the way up.
    pub(crate) squashed: Option<&'static str>,
}

pub(crate) static SQLITE: Migrations = Migrations {
    squashed: Some(include_str!("../migrations/sqlite/schema.sql")),
    infos: &[
        MigrationInfo {
            version: 1,
            name: "init",
            up_sql: include_str!("../migrations/sqlite/0001_init.up.sql"),
        },
        MigrationInfo {
            version: 2,
            name: "vault_audit",
            up_sql: include_str!("../migrations/sqlite/0002_vault_audit.up.sql"),
        },
        MigrationInfo {
            version: 3,
            name: "traces_usage",
            up_sql: include_str!("../migrations/sqlite/0003_traces_usage.up.sql"),
        },
        MigrationInfo {
            version: 4,
            name: "gateway_tokens",
            up_sql: include_str!("../migrations/sqlite/0004_gateway_tokens.up.sql"),
        },
        MigrationInfo {
            version: 5,
            name: "approvals",
            up_sql: include_str!("../migrations/sqlite/0005_approvals.up.sql"),
        },
        MigrationInfo {
            version: 6,
            name: "audit_chain",
            up_sql: include_str!("../migrations/sqlite/0006_audit_chain.up.sql"),
        },
        MigrationInfo {
            version: 7,
            name: "api_keys",
            up_sql: include_str!("../migrations/sqlite/0007_api_keys.up.sql"),
        },
        MigrationInfo {
            version: 8,
            name: "pairing",
            up_sql: include_str!("../migrations/sqlite/0008_pairing.up.sql"),
        },
        MigrationInfo {
            version: 9,
            name: "job_runs",
            up_sql: include_str!("../migrations/sqlite/0009_job_runs.up.sql"),
        },
        MigrationInfo {
            version: 10,
            name: "orchestration",
            up_sql: include_str!("../migrations/sqlite/0010_orchestration.up.sql"),
        },
        MigrationInfo {
            version: 11,
            name: "teams",
            up_sql: include_str!("../migrations/sqlite/0011_teams.up.sql"),
        },
        MigrationInfo {
            version: 12,
            name: "run_owner",
            up_sql: include_str!("../migrations/sqlite/0012_run_owner.up.sql"),
        },
        MigrationInfo {
            version: 13,
            name: "cron",
            up_sql: include_str!("../migrations/sqlite/0013_cron.up.sql"),
        },
        MigrationInfo {
            version: 14,
            name: "tool_sources",
            up_sql: include_str!("../migrations/sqlite/0014_tool_sources.up.sql"),
        },
        MigrationInfo {
            version: 15,
            name: "channels",
            up_sql: include_str!("../migrations/sqlite/0015_channels.up.sql"),
        },
        MigrationInfo {
            version: 16,
            name: "turn_reads",
            up_sql: include_str!("../migrations/sqlite/0016_turn_reads.up.sql"),
        },
        MigrationInfo {
            version: 17,
            name: "memory",
            up_sql: include_str!("../migrations/sqlite/0017_memory.up.sql"),
        },
        MigrationInfo {
            version: 18,
            name: "budget_reservations",
            up_sql: include_str!("../migrations/sqlite/0018_budget_reservations.up.sql"),
        },
        MigrationInfo {
            version: 19,
            name: "tenant_settings",
            up_sql: include_str!("../migrations/sqlite/0019_tenant_settings.up.sql"),
        },
        MigrationInfo {
            version: 20,
            name: "skills",
            up_sql: include_str!("../migrations/sqlite/0020_skills.up.sql"),
        },
        MigrationInfo {
            version: 21,
            name: "outbox_files",
            up_sql: include_str!("../migrations/sqlite/0021_outbox_files.up.sql"),
        },
        MigrationInfo {
            version: 22,
            name: "channel_claims",
            up_sql: include_str!("../migrations/sqlite/0022_channel_claims.up.sql"),
        },
        MigrationInfo {
            version: 23,
            name: "dashboard_sessions",
            up_sql: include_str!("../migrations/sqlite/0023_dashboard_sessions.up.sql"),
        },
        MigrationInfo {
            version: 24,
            name: "memory_index",
            up_sql: include_str!("../migrations/sqlite/0024_memory_index.up.sql"),
        },
        MigrationInfo {
            version: 25,
            name: "memory_generation",
            up_sql: include_str!("../migrations/sqlite/0025_memory_generation.up.sql"),
        },
        MigrationInfo {
            version: 26,
            name: "memory_terms",
            up_sql: include_str!("../migrations/sqlite/0026_memory_terms.up.sql"),
        },
    ],
    downs: &[
        include_str!("../migrations/sqlite/0001_init.down.sql"),
        include_str!("../migrations/sqlite/0002_vault_audit.down.sql"),
        include_str!("../migrations/sqlite/0003_traces_usage.down.sql"),
        include_str!("../migrations/sqlite/0004_gateway_tokens.down.sql"),
        include_str!("../migrations/sqlite/0005_approvals.down.sql"),
        include_str!("../migrations/sqlite/0006_audit_chain.down.sql"),
        include_str!("../migrations/sqlite/0007_api_keys.down.sql"),
        include_str!("../migrations/sqlite/0008_pairing.down.sql"),
        include_str!("../migrations/sqlite/0009_job_runs.down.sql"),
        include_str!("../migrations/sqlite/0010_orchestration.down.sql"),
        include_str!("../migrations/sqlite/0011_teams.down.sql"),
        include_str!("../migrations/sqlite/0012_run_owner.down.sql"),
        include_str!("../migrations/sqlite/0013_cron.down.sql"),
        include_str!("../migrations/sqlite/0014_tool_sources.down.sql"),
        include_str!("../migrations/sqlite/0015_channels.down.sql"),
        include_str!("../migrations/sqlite/0016_turn_reads.down.sql"),
        include_str!("../migrations/sqlite/0017_memory.down.sql"),
        include_str!("../migrations/sqlite/0018_budget_reservations.down.sql"),
        include_str!("../migrations/sqlite/0019_tenant_settings.down.sql"),
        include_str!("../migrations/sqlite/0020_skills.down.sql"),
        include_str!("../migrations/sqlite/0021_outbox_files.down.sql"),
        include_str!("../migrations/sqlite/0022_channel_claims.down.sql"),
        include_str!("../migrations/sqlite/0023_dashboard_sessions.down.sql"),
        include_str!("../migrations/sqlite/0024_memory_index.down.sql"),
        include_str!("../migrations/sqlite/0025_memory_generation.down.sql"),
        include_str!("../migrations/sqlite/0026_memory_terms.down.sql"),
    ],
};

pub(crate) static POSTGRES: Migrations = Migrations {
    squashed: None,
    infos: &[
        MigrationInfo {
            version: 1,
            name: "init",
            up_sql: include_str!("../migrations/postgres/0001_init.up.sql"),
        },
        MigrationInfo {
            version: 2,
            name: "vault_audit",
            up_sql: include_str!("../migrations/postgres/0002_vault_audit.up.sql"),
        },
        MigrationInfo {
            version: 3,
            name: "traces_usage",
            up_sql: include_str!("../migrations/postgres/0003_traces_usage.up.sql"),
        },
        MigrationInfo {
            version: 4,
            name: "gateway_tokens",
            up_sql: include_str!("../migrations/postgres/0004_gateway_tokens.up.sql"),
        },
        MigrationInfo {
            version: 5,
            name: "approvals",
            up_sql: include_str!("../migrations/postgres/0005_approvals.up.sql"),
        },
        MigrationInfo {
            version: 6,
            name: "audit_chain",
            up_sql: include_str!("../migrations/postgres/0006_audit_chain.up.sql"),
        },
        MigrationInfo {
            version: 7,
            name: "api_keys",
            up_sql: include_str!("../migrations/postgres/0007_api_keys.up.sql"),
        },
        MigrationInfo {
            version: 8,
            name: "pairing",
            up_sql: include_str!("../migrations/postgres/0008_pairing.up.sql"),
        },
        MigrationInfo {
            version: 9,
            name: "job_runs",
            up_sql: include_str!("../migrations/postgres/0009_job_runs.up.sql"),
        },
        MigrationInfo {
            version: 10,
            name: "orchestration",
            up_sql: include_str!("../migrations/postgres/0010_orchestration.up.sql"),
        },
        MigrationInfo {
            version: 11,
            name: "teams",
            up_sql: include_str!("../migrations/postgres/0011_teams.up.sql"),
        },
        MigrationInfo {
            version: 12,
            name: "run_owner",
            up_sql: include_str!("../migrations/postgres/0012_run_owner.up.sql"),
        },
        MigrationInfo {
            version: 13,
            name: "cron",
            up_sql: include_str!("../migrations/postgres/0013_cron.up.sql"),
        },
        MigrationInfo {
            version: 14,
            name: "tool_sources",
            up_sql: include_str!("../migrations/postgres/0014_tool_sources.up.sql"),
        },
        MigrationInfo {
            version: 15,
            name: "channels",
            up_sql: include_str!("../migrations/postgres/0015_channels.up.sql"),
        },
        MigrationInfo {
            version: 16,
            name: "turn_reads",
            up_sql: include_str!("../migrations/postgres/0016_turn_reads.up.sql"),
        },
        MigrationInfo {
            version: 17,
            name: "memory",
            up_sql: include_str!("../migrations/postgres/0017_memory.up.sql"),
        },
        MigrationInfo {
            version: 18,
            name: "budget_reservations",
            up_sql: include_str!("../migrations/postgres/0018_budget_reservations.up.sql"),
        },
        MigrationInfo {
            version: 19,
            name: "tenant_settings",
            up_sql: include_str!("../migrations/postgres/0019_tenant_settings.up.sql"),
        },
        MigrationInfo {
            version: 20,
            name: "skills",
            up_sql: include_str!("../migrations/postgres/0020_skills.up.sql"),
        },
        MigrationInfo {
            version: 21,
            name: "outbox_files",
            up_sql: include_str!("../migrations/postgres/0021_outbox_files.up.sql"),
        },
        MigrationInfo {
            version: 22,
            name: "channel_claims",
            up_sql: include_str!("../migrations/postgres/0022_channel_claims.up.sql"),
        },
        MigrationInfo {
            version: 23,
            name: "dashboard_sessions",
            up_sql: include_str!("../migrations/postgres/0023_dashboard_sessions.up.sql"),
        },
        MigrationInfo {
            version: 24,
            name: "memory_index",
            up_sql: include_str!("../migrations/postgres/0024_memory_index.up.sql"),
        },
        MigrationInfo {
            version: 25,
            name: "memory_generation",
            up_sql: include_str!("../migrations/postgres/0025_memory_generation.up.sql"),
        },
        MigrationInfo {
            version: 26,
            name: "memory_terms",
            up_sql: include_str!("../migrations/postgres/0026_memory_terms.up.sql"),
        },
    ],
    downs: &[
        include_str!("../migrations/postgres/0001_init.down.sql"),
        include_str!("../migrations/postgres/0002_vault_audit.down.sql"),
        include_str!("../migrations/postgres/0003_traces_usage.down.sql"),
        include_str!("../migrations/postgres/0004_gateway_tokens.down.sql"),
        include_str!("../migrations/postgres/0005_approvals.down.sql"),
        include_str!("../migrations/postgres/0006_audit_chain.down.sql"),
        include_str!("../migrations/postgres/0007_api_keys.down.sql"),
        include_str!("../migrations/postgres/0008_pairing.down.sql"),
        include_str!("../migrations/postgres/0009_job_runs.down.sql"),
        include_str!("../migrations/postgres/0010_orchestration.down.sql"),
        include_str!("../migrations/postgres/0011_teams.down.sql"),
        include_str!("../migrations/postgres/0012_run_owner.down.sql"),
        include_str!("../migrations/postgres/0013_cron.down.sql"),
        include_str!("../migrations/postgres/0014_tool_sources.down.sql"),
        include_str!("../migrations/postgres/0015_channels.down.sql"),
        include_str!("../migrations/postgres/0016_turn_reads.down.sql"),
        include_str!("../migrations/postgres/0017_memory.down.sql"),
        include_str!("../migrations/postgres/0018_budget_reservations.down.sql"),
        include_str!("../migrations/postgres/0019_tenant_settings.down.sql"),
        include_str!("../migrations/postgres/0020_skills.down.sql"),
        include_str!("../migrations/postgres/0021_outbox_files.down.sql"),
        include_str!("../migrations/postgres/0022_channel_claims.down.sql"),
        include_str!("../migrations/postgres/0023_dashboard_sessions.down.sql"),
        include_str!("../migrations/postgres/0024_memory_index.down.sql"),
        include_str!("../migrations/postgres/0025_memory_generation.down.sql"),
        include_str!("../migrations/postgres/0026_memory_terms.down.sql"),
    ],
};

/// One step from `from` to `to`: adjacent versions, either direction, or
/// from 0 to the latest version through the squashed schema.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Step {
    pub(crate) from: i64,
    pub(crate) to: i64,
    pub(crate) name: &'static str,
    pub(crate) sql: &'static str,
}

impl Step {
    pub(crate) fn is_transactional(&self) -> bool {
        !self.sql.trim_start().starts_with(NO_TRANSACTION)
    }

    /// The error for a step whose SQL failed. Connection trouble stays
    /// `Unavailable` (retrying may help); anything else is a schema problem.
    pub(crate) fn failed(&self, err: StoreError) -> StoreError {
        if err.is_retryable() {
            return err;
        }
        if self.to - self.from > 1 {
            return StoreError::Schema(format!(
                "creating the schema of version {} ({}) failed, the database was left at version \
                 {}: {err}",
                self.to, self.name, self.from
            ));
        }
        let verb = if self.to > self.from {
            "applying"
        } else {
            "reverting"
        };
        let version = self.from.max(self.to);
        if self.is_transactional() {
            StoreError::Schema(format!(
                "{verb} migration {version} ({}) failed, the schema was left at version {}: {err}",
                self.name, self.from
            ))
        } else {
            StoreError::Schema(format!(
                "{verb} migration {version} ({}) failed outside a transaction and left the \
                 schema dirty at version {}: {err}; repair the database (or restore a backup), \
                 then run `exoclaw migrate force N` with the version it is really at",
                self.name, self.to
            ))
        }
    }

    /// The versions this step reaches, in order (every version of the
    /// squashed schema's step, as if applied one by one).
    pub(crate) fn versions(&self) -> Vec<i64> {
        if self.to > self.from {
            (self.from + 1..=self.to).collect()
        } else {
            vec![self.to]
        }
    }
}

impl Migrations {
    /// Migrations applied one by one, with no squashed schema.
    #[cfg(test)]
    pub(crate) const fn for_tests(
        infos: &'static [MigrationInfo],
        downs: &'static [&'static str],
    ) -> Self {
        Self {
            infos,
            downs,
            squashed: None,
        }
    }

    /// The newest version (0 when there are none).
    pub(crate) fn latest(&self) -> i64 {
        i64::try_from(self.infos.len()).unwrap_or(i64::MAX)
    }

    pub(crate) fn status(&self, current: i64, dirty: bool) -> SchemaStatus {
        SchemaStatus {
            current,
            latest: self.latest(),
            dirty,
        }
    }

    /// Refuses a target this binary cannot reach.
    pub(crate) fn check_target(&self, target: i64) -> StoreResult<()> {
        if target < 0 || target > self.latest() {
            return Err(StoreError::Invalid(format!(
                "cannot migrate to version {target}: this exoclaw knows versions 0 to {}",
                self.latest()
            )));
        }
        Ok(())
    }

    /// The next step from `current` towards `target`, `None` once there.
    pub(crate) fn next_step(&self, current: i64, target: i64) -> StoreResult<Option<Step>> {
        self.check_target(target)?;
        if current == target {
            return Ok(None);
        }
        if current > self.latest() || current < 0 {
            return Err(newer_error(current, self.latest()));
        }
        if let (0, Some(sql)) = (current, self.squashed)
            && target == self.latest()
        {
            return Ok(Some(Step {
                from: 0,
                to: target,
                name: "squashed schema",
                sql,
            }));
        }
        let (from, to, index) = if current < target {
            (current, current + 1, current)
        } else {
            (current, current - 1, current - 1)
        };
        let index = usize::try_from(index).map_err(|_| newer_error(current, self.latest()))?;
        let (Some(info), Some(down)) = (self.infos.get(index), self.downs.get(index)) else {
            return Err(newer_error(current, self.latest()));
        };
        Ok(Some(Step {
            from,
            to,
            name: info.name,
            sql: if to > from { info.up_sql } else { down },
        }))
    }
}

/// Migrating refused because a step failed half-way earlier.
pub(crate) fn dirty_error(version: i64) -> StoreError {
    StoreError::Schema(format!(
        "the database schema is dirty at version {version}: a migration failed half-way; \
         repair the database (or restore a backup), then run `exoclaw migrate force N` with \
         the version it is really at ({} if the failed migration left no trace, {version} if \
         it was completed by hand)",
        (version - 1).max(0)
    ))
}

fn newer_error(current: i64, latest: i64) -> StoreError {
    StoreError::Schema(format!(
        "the database schema is version {current}, newer than this exoclaw supports (up to \
         {latest}); run a newer exoclaw, or restore a backup made by this version"
    ))
}

/// `Ok` when the schema is exactly what this binary expects; otherwise a
/// `Schema` error that says what to do (upgrade, force, newer binary).
pub fn require_current_schema(status: &SchemaStatus) -> StoreResult<()> {
    if status.dirty {
        return Err(dirty_error(status.current));
    }
    if status.is_newer_than_binary() {
        return Err(newer_error(status.current, status.latest));
    }
    if status.current < status.latest {
        return Err(StoreError::Schema(format!(
            "the database schema is version {}, this exoclaw needs version {}; back up the \
             database and run `exoclaw upgrade`",
            status.current, status.latest
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_contiguous_and_dialects_agree() {
        for table in [&SQLITE, &POSTGRES] {
            assert_eq!(table.infos.len(), table.downs.len());
            for (i, info) in table.infos.iter().enumerate() {
                assert_eq!(info.version, i as i64 + 1);
            }
        }
        let names = |t: &Migrations| t.infos.iter().map(|i| i.name).collect::<Vec<_>>();
        assert_eq!(names(&SQLITE), names(&POSTGRES));
    }

    #[test]
    fn steps_walk_one_version_at_a_time() {
        let up = SQLITE.next_step(0, 1).unwrap().unwrap();
        assert_eq!((up.from, up.to), (0, 1));
        assert!(up.sql.contains("CREATE TABLE tenants"));
        assert!(up.is_transactional());
        let down = SQLITE.next_step(1, 0).unwrap().unwrap();
        assert_eq!((down.from, down.to), (1, 0));
        assert!(down.sql.contains("DROP TABLE"));
        assert!(SQLITE.next_step(1, 1).unwrap().is_none());
    }

    #[test]
    fn out_of_range_targets_are_refused() {
        let latest = SQLITE.latest();
        assert!(matches!(
            SQLITE.next_step(0, latest + 1),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            SQLITE.next_step(0, -1),
            Err(StoreError::Invalid(_))
        ));
        let err = SQLITE.next_step(latest + 5, latest).unwrap_err();
        assert!(err.to_string().contains("newer than this exoclaw"), "{err}");
    }

    #[test]
    fn status_errors_name_the_fix() {
        let latest = SQLITE.latest();
        assert!(require_current_schema(&SQLITE.status(latest, false)).is_ok());
        let dirty = require_current_schema(&SQLITE.status(1, true)).unwrap_err();
        assert!(
            dirty.to_string().contains("exoclaw migrate force N"),
            "{dirty}"
        );
        let old = require_current_schema(&SQLITE.status(0, false)).unwrap_err();
        assert!(old.to_string().contains("exoclaw upgrade"), "{old}");
        let newer = require_current_schema(&SQLITE.status(latest + 1, false)).unwrap_err();
        assert!(newer.to_string().contains("newer"), "{newer}");
    }
}
