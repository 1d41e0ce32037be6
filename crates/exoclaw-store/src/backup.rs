//! What a store puts into a backup, and how such a copy is checked without
//! a database. The dialect code lives beside each store:
//!
//! - SQLite ([`crate::SqliteStore::snapshot_to`]): `VACUUM INTO` a new file,
//!   a consistent copy of the live database; [`check_sqlite_snapshot`] opens
//!   such a copy read-only and runs `PRAGMA integrity_check`.
//! - PostgreSQL ([`crate::PgStore::export_jsonl`] and
//!   [`crate::PgStore::import_jsonl`]): every table of the schema as JSON
//!   lines, read in one `REPEATABLE READ, READ ONLY` transaction, in
//!   foreign-key order; [`check_export`] parses such an export line by line.
//!
//! The export format (version [`EXPORT_VERSION`]), one JSON value per line:
//!
//! ```text
//! {"format":"exoclaw-postgres-export","version":1,"schema_version":4,"tables":["tenants",...]}
//! {"table":"tenants","row":{"id":"default","name":"Default","created_at":...}}
//! ...
//! {"end":true,"rows":{"tenants":1,...}}
//! ```
//!
//! Rows are PostgreSQL's own `row_to_json` (bytea as `\x...` hex text, JSONB
//! as nested JSON), so an import feeds them back through
//! `json_populate_recordset` unchanged. The end line's counts make a cut-off
//! export detectable on its own.

use crate::migrate::{POSTGRES, SQLITE};
use exoclaw_core::store::{StoreError, StoreResult};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::BufRead;

/// The `format` of an export's first line.
pub const EXPORT_FORMAT: &str = "exoclaw-postgres-export";
/// The version of the export format this build writes and reads.
pub const EXPORT_VERSION: u64 = 1;
/// Longest line an export may have (a row with a large JSON message).
pub(crate) const MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

/// One table of the export: its name and the order its rows are written in.
pub(crate) struct TableSpec {
    pub(crate) name: &'static str,
    pub(crate) order_by: &'static str,
}

/// Tables of the schema that hold only what the store derives from other
/// tables by itself (schema 16's directory versions and schema 26's memory
/// term counts, kept by triggers): not exported, and rebuilt by the import as
/// the rows they follow come in.
pub(crate) const DERIVED: &[&str] = &["directory_versions", "memory_terms"];

/// Columns the store derives from other columns of their row by itself
/// (schema 24's `memories.tsv` and `memories.embedding_v`, set by a trigger
/// on every insert and update): left out of the export (an export of
/// schema 24 is as large as one of 23) and rebuilt by the import, whose
/// rows go through that trigger.
pub(crate) const DERIVED_COLUMNS: &[(&str, &[&str])] = &[("memories", &["tsv", "embedding_v"])];

/// The `SELECT` list that exports one row of `table` as JSON text (`t` is
/// the row): all of it, less its derived columns.
pub(crate) fn export_row_json(table: &str) -> String {
    match DERIVED_COLUMNS.iter().find(|(t, _)| *t == table) {
        None => "row_to_json(t)::text".to_owned(),
        Some((_, cols)) => {
            let less: String = cols.iter().map(|c| format!(" - '{c}'")).collect();
            format!("(to_jsonb(t){less})::text")
        }
    }
}

/// Every table of the schema, parents before children (the order rows are
/// exported and imported in). A table the schema has and this list lacks
/// makes an export fail, so a new migration cannot be silently left out.
pub(crate) const TABLES: &[TableSpec] = &[
    TableSpec {
        name: "tenants",
        order_by: "id",
    },
    TableSpec {
        name: "users",
        order_by: "id",
    },
    TableSpec {
        name: "agents",
        order_by: "tenant_id, id",
    },
    TableSpec {
        name: "sessions",
        order_by: "id",
    },
    TableSpec {
        name: "messages",
        order_by: "session_id, seq",
    },
    TableSpec {
        name: "secrets",
        order_by: "tenant_id, owner, name",
    },
    TableSpec {
        name: "vault_check",
        order_by: "id",
    },
    TableSpec {
        name: "audit_events",
        order_by: "seq",
    },
    TableSpec {
        name: "audit_heads",
        order_by: "tenant_id",
    },
    TableSpec {
        name: "traces",
        order_by: "id",
    },
    TableSpec {
        name: "spans",
        order_by: "id",
    },
    TableSpec {
        name: "usage_ledger",
        order_by: "id",
    },
    TableSpec {
        name: "gateway_tokens",
        order_by: "id",
    },
    TableSpec {
        name: "approvals",
        order_by: "id",
    },
    TableSpec {
        name: "api_keys",
        order_by: "id",
    },
    TableSpec {
        name: "pairing_requests",
        order_by: "id",
    },
    TableSpec {
        name: "devices",
        order_by: "id",
    },
    TableSpec {
        name: "channel_senders",
        order_by: "tenant_id, channel, sender_id",
    },
    TableSpec {
        name: "pairing_failures",
        order_by: "id",
    },
    TableSpec {
        name: "job_runs",
        order_by: "tenant_id, job, due_at",
    },
    TableSpec {
        name: "agent_links",
        order_by: "tenant_id, source, target",
    },
    TableSpec {
        name: "delegations",
        order_by: "id",
    },
    TableSpec {
        name: "bindings",
        order_by: "id",
    },
    TableSpec {
        name: "teams",
        order_by: "tenant_id, id",
    },
    TableSpec {
        name: "team_members",
        order_by: "tenant_id, team_id, agent",
    },
    TableSpec {
        name: "team_tasks",
        order_by: "id",
    },
    TableSpec {
        name: "team_task_deps",
        order_by: "tenant_id, team_id, task_id, blocked_by",
    },
    TableSpec {
        name: "team_task_comments",
        order_by: "seq",
    },
    TableSpec {
        name: "team_mail",
        order_by: "seq",
    },
    TableSpec {
        name: "team_mail_reads",
        order_by: "tenant_id, mail_id, agent",
    },
    TableSpec {
        name: "handoffs",
        order_by: "tenant_id, channel, peer, user_id",
    },
    TableSpec {
        name: "cron_jobs",
        order_by: "tenant_id, id",
    },
    TableSpec {
        name: "tool_sources",
        order_by: "tenant_id, kind, name",
    },
    TableSpec {
        name: "tool_grants",
        order_by: "tenant_id, kind, source, agent_id, user_id",
    },
    TableSpec {
        name: "channel_outbox",
        order_by: "tenant_id, id",
    },
    TableSpec {
        name: "channel_inbound",
        order_by: "tenant_id, channel, platform_id",
    },
    TableSpec {
        name: "channel_cursors",
        order_by: "tenant_id, channel",
    },
    TableSpec {
        name: "channel_leases",
        order_by: "tenant_id, channel",
    },
    TableSpec {
        name: "dashboard_sessions",
        order_by: "id_hash",
    },
    TableSpec {
        name: "memories",
        order_by: "tenant_id, id",
    },
    TableSpec {
        name: "budget_reservations",
        order_by: "tenant_id, id",
    },
    TableSpec {
        name: "skills",
        order_by: "id",
    },
    TableSpec {
        name: "skill_files",
        order_by: "skill_id, path",
    },
    TableSpec {
        name: "schema_migrations",
        order_by: "version",
    },
];

/// The table that records the schema version: exported for completeness,
/// but on import the migrations write it.
pub(crate) const VERSION_TABLE: &str = "schema_migrations";

/// What an export holds: its schema version and the rows per table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportSummary {
    pub schema_version: i64,
    /// Rows per table, for every table in the export (zero included).
    pub rows: BTreeMap<String, u64>,
}

impl ExportSummary {
    /// Rows in all tables.
    pub fn total_rows(&self) -> u64 {
        self.rows.values().sum()
    }
}

/// What a checked SQLite copy holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub schema_version: i64,
}

/// One parsed line of an export.
#[derive(Debug)]
pub(crate) enum Line {
    Header {
        schema_version: i64,
        tables: Vec<String>,
    },
    Row {
        table: String,
        row: serde_json::Map<String, Value>,
    },
    End {
        rows: BTreeMap<String, u64>,
    },
}

fn bad(line: u64, what: &str) -> StoreError {
    StoreError::Corrupt(format!(
        "the PostgreSQL export is damaged at line {line}: {what}"
    ))
}

/// Parses one line (`number` is 1-based, for messages).
pub(crate) fn parse_line(text: &str, number: u64) -> StoreResult<Line> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| bad(number, &format!("not JSON ({e})")))?;
    let Value::Object(mut obj) = value else {
        return Err(bad(number, "not a JSON object"));
    };
    if obj.contains_key("format") {
        if obj.get("format").and_then(Value::as_str) != Some(EXPORT_FORMAT) {
            return Err(bad(number, "not an exoclaw PostgreSQL export"));
        }
        let version = obj.get("version").and_then(Value::as_u64).unwrap_or(0);
        if version != EXPORT_VERSION {
            return Err(StoreError::Invalid(format!(
                "the PostgreSQL export has format version {version}; this exoclaw reads version \
                 {EXPORT_VERSION} (use the exoclaw release that made it)"
            )));
        }
        let schema_version = obj
            .get("schema_version")
            .and_then(Value::as_i64)
            .ok_or_else(|| bad(number, "the header has no schema_version"))?;
        let tables = obj
            .get("tables")
            .and_then(Value::as_array)
            .ok_or_else(|| bad(number, "the header has no table list"))?
            .iter()
            .map(|t| t.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad(number, "the table list holds a non-string"))?;
        return Ok(Line::Header {
            schema_version,
            tables,
        });
    }
    if let Some(table) = obj.get("table").and_then(Value::as_str).map(str::to_owned) {
        let Some(Value::Object(row)) = obj.remove("row") else {
            return Err(bad(number, "a row line without a row object"));
        };
        return Ok(Line::Row { table, row });
    }
    if obj.get("end").and_then(Value::as_bool) == Some(true) {
        let rows = obj
            .get("rows")
            .and_then(Value::as_object)
            .ok_or_else(|| bad(number, "the end line has no row counts"))?
            .iter()
            .map(|(k, v)| v.as_u64().map(|n| (k.clone(), n)))
            .collect::<Option<BTreeMap<_, _>>>()
            .ok_or_else(|| bad(number, "a row count is not a number"))?;
        return Ok(Line::End { rows });
    }
    Err(bad(number, "neither a header, a row nor the end line"))
}

/// Follows an export line by line and enforces its shape: the header first,
/// known tables in foreign-key order, rows only of listed tables, the end
/// line last with counts that match, nothing after it.
pub(crate) struct ExportReader {
    line: u64,
    header: Option<(i64, Vec<String>)>,
    /// Index into `TABLES` of the table rows were last seen for.
    position: usize,
    rows: BTreeMap<String, u64>,
    ended: bool,
}

impl ExportReader {
    pub(crate) fn new() -> Self {
        Self {
            line: 0,
            header: None,
            position: 0,
            rows: BTreeMap::new(),
            ended: false,
        }
    }

    /// Lines fed so far.
    pub(crate) fn lines_read(&self) -> u64 {
        self.line
    }

    /// Feeds one line; returns it parsed, after checking it fits.
    pub(crate) fn feed(&mut self, text: &str) -> StoreResult<Line> {
        self.line += 1;
        let n = self.line;
        if self.ended {
            return Err(bad(n, "data after the end line"));
        }
        let line = parse_line(text, n)?;
        match (&line, &self.header) {
            (Line::Header { .. }, Some(_)) => return Err(bad(n, "a second header")),
            (Line::Header { .. }, None) => {}
            (_, None) => return Err(bad(n, "the header line is missing")),
            _ => {}
        }
        match &line {
            Line::Header {
                schema_version,
                tables,
            } => {
                let latest = POSTGRES.latest();
                if *schema_version < 1 || *schema_version > latest {
                    return Err(StoreError::Schema(format!(
                        "the PostgreSQL export has schema version {schema_version}; this exoclaw \
                         knows versions 1 to {latest} (restore it with the exoclaw release that \
                         made it)"
                    )));
                }
                let mut last = None;
                for t in tables {
                    let Some(i) = TABLES.iter().position(|s| s.name == t) else {
                        return Err(bad(n, &format!("unknown table {t:?}")));
                    };
                    if last.is_some_and(|l| i <= l) {
                        return Err(bad(n, "tables out of order"));
                    }
                    last = Some(i);
                    self.rows.insert(t.clone(), 0);
                }
                self.header = Some((*schema_version, tables.clone()));
            }
            Line::Row { table, row } => {
                let Some(i) = TABLES.iter().position(|s| s.name == table) else {
                    return Err(bad(n, &format!("a row of unknown table {table:?}")));
                };
                if i < self.position {
                    return Err(bad(n, &format!("a row of {table} out of order")));
                }
                self.position = i;
                let Some(count) = self.rows.get_mut(table) else {
                    return Err(bad(n, &format!("a row of {table}, not in the header")));
                };
                *count += 1;
                if table == VERSION_TABLE {
                    let version = row.get("version").and_then(Value::as_i64);
                    let dirty = row.get("dirty").and_then(Value::as_bool);
                    let expected = self.header.as_ref().map(|(v, _)| *v);
                    if version != expected || dirty != Some(false) {
                        return Err(bad(
                            n,
                            "schema_migrations does not match the header's schema version",
                        ));
                    }
                }
            }
            Line::End { rows } => {
                if rows != &self.rows {
                    return Err(bad(
                        n,
                        "the row counts of the end line do not match the rows present",
                    ));
                }
                self.ended = true;
            }
        }
        Ok(line)
    }

    /// The summary, once the end line was seen.
    pub(crate) fn finish(self) -> StoreResult<ExportSummary> {
        match (self.header, self.ended) {
            (None, _) => Err(StoreError::Corrupt(
                "the PostgreSQL export is empty (no header line)".to_owned(),
            )),
            (Some(_), false) => Err(StoreError::Corrupt(format!(
                "the PostgreSQL export is cut off after line {}: its end line is missing",
                self.line
            ))),
            (Some((schema_version, _)), true) => Ok(ExportSummary {
                schema_version,
                rows: self.rows,
            }),
        }
    }
}

/// Parses every line of a PostgreSQL export and checks its shape (see
/// [`ExportReader`]); touches no database.
pub fn check_export(mut reader: impl BufRead) -> StoreResult<ExportSummary> {
    let mut export = ExportReader::new();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = read_line(&mut reader, &mut buf)?;
        if n == 0 {
            return export.finish();
        }
        export.feed(line_text(&buf, export.line + 1)?)?;
    }
}

/// One line into `buf` (without the newline), refusing lines longer than
/// [`MAX_LINE_BYTES`]; 0 at the end.
fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> StoreResult<usize> {
    use std::io::Read as _;
    let limit = u64::try_from(MAX_LINE_BYTES).unwrap_or(u64::MAX) + 1;
    let n = reader
        .by_ref()
        .take(limit)
        .read_until(b'\n', buf)
        .map_err(|e| StoreError::Unavailable(format!("cannot read the export: {e}")))?;
    if buf.len() > MAX_LINE_BYTES {
        return Err(StoreError::Corrupt(format!(
            "the PostgreSQL export has a line longer than {MAX_LINE_BYTES} bytes"
        )));
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    }
    Ok(n)
}

/// The bytes of line `number` as text.
pub(crate) fn line_text(buf: &[u8], number: u64) -> StoreResult<&str> {
    std::str::from_utf8(buf).map_err(|_| bad(number, "not UTF-8"))
}

/// The latest SQLite schema version this build knows (for snapshot checks).
pub(crate) fn sqlite_latest() -> i64 {
    SQLITE.latest()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export(lines: &[&str]) -> StoreResult<ExportSummary> {
        check_export(lines.join("\n").as_bytes())
    }

    const HEADER: &str = r#"{"format":"exoclaw-postgres-export","version":1,"schema_version":1,"tables":["tenants","schema_migrations"]}"#;
    const TENANT: &str = r#"{"table":"tenants","row":{"id":"default","name":"D","created_at":1}}"#;
    const VERSION: &str = r#"{"table":"schema_migrations","row":{"version":1,"dirty":false}}"#;
    const END: &str = r#"{"end":true,"rows":{"tenants":1,"schema_migrations":1}}"#;

    #[test]
    fn a_well_formed_export_is_summarised() {
        let s = export(&[HEADER, TENANT, VERSION, END]).unwrap();
        assert_eq!(s.schema_version, 1);
        assert_eq!(s.total_rows(), 2);
        assert_eq!(s.rows["tenants"], 1);
    }

    #[test]
    fn damage_is_named_with_its_line() {
        let cut = export(&[HEADER, TENANT, VERSION]).unwrap_err().to_string();
        assert!(cut.contains("end line is missing"), "{cut}");
        let order = export(&[HEADER, VERSION, TENANT, END])
            .unwrap_err()
            .to_string();
        assert!(
            order.contains("line 3") && order.contains("out of order"),
            "{order}"
        );
        let count = export(&[HEADER, TENANT, TENANT, VERSION, END])
            .unwrap_err()
            .to_string();
        assert!(count.contains("do not match"), "{count}");
        let garbage = export(&[HEADER, "{nope"]).unwrap_err().to_string();
        assert!(
            garbage.contains("line 2") && garbage.contains("not JSON"),
            "{garbage}"
        );
        let after = export(&[HEADER, TENANT, VERSION, END, TENANT])
            .unwrap_err()
            .to_string();
        assert!(after.contains("after the end line"), "{after}");
        let headless = export(&[TENANT]).unwrap_err().to_string();
        assert!(headless.contains("header line is missing"), "{headless}");
        let unknown = export(&[
            r#"{"format":"exoclaw-postgres-export","version":1,"schema_version":1,"tables":["nope"]}"#,
        ])
        .unwrap_err()
        .to_string();
        assert!(unknown.contains("unknown table"), "{unknown}");
    }

    #[test]
    fn a_newer_schema_or_format_is_refused() {
        let newer = format!(
            r#"{{"format":"exoclaw-postgres-export","version":1,"schema_version":{},"tables":[]}}"#,
            POSTGRES.latest() + 1
        );
        let err = export(&[&newer]).unwrap_err().to_string();
        assert!(err.contains("knows versions"), "{err}");
        let format =
            r#"{"format":"exoclaw-postgres-export","version":9,"schema_version":1,"tables":[]}"#;
        let err = export(&[format]).unwrap_err().to_string();
        assert!(err.contains("format version 9"), "{err}");
    }

    #[test]
    fn the_table_list_covers_every_migrated_table() {
        for info in POSTGRES.infos {
            for word in info.up_sql.split("CREATE TABLE ").skip(1) {
                let name = word.split_whitespace().next().unwrap_or_default();
                assert!(
                    TABLES.iter().any(|t| t.name == name) || DERIVED.contains(&name),
                    "migration {} creates {name}, which the backup export does not list",
                    info.version
                );
            }
        }
    }
}
