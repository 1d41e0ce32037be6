//! PostgreSQL backups: a transaction-consistent export of every table as
//! JSON lines, and its import into an empty database (format and checks in
//! `crate::backup`).
//!
//! The export reads in one `REPEATABLE READ, READ ONLY` transaction, so it
//! sees one snapshot of the whole database while a gateway keeps writing.
//! The import migrates an empty database to the export's schema version and
//! loads every row in one transaction; if loading fails the database is
//! migrated back to empty, so a failed restore leaves nothing half-done.

use super::{PgStore, read_version};
use crate::backup::{
    DERIVED, ExportReader, ExportSummary, Line, MAX_LINE_BYTES, TABLES, TableSpec, VERSION_TABLE,
    line_text,
};
use crate::error;
use crate::migrate::POSTGRES;
use exoclaw_core::store::{SchemaStore as _, StoreError, StoreResult};
use futures_util::TryStreamExt as _;
use serde_json::{Map, Value};
use sqlx::AssertSqlSafe;
use sqlx::postgres::PgConnection;
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt as _, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _,
};

/// Rows per `INSERT` during an import.
const BATCH_ROWS: usize = 500;
/// JSON bytes per `INSERT` during an import.
const BATCH_BYTES: usize = 8 * 1024 * 1024;

fn write_error(e: &std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("cannot write the export: {e}"))
}

impl PgStore {
    /// Writes every table of the schema to `out` as JSON lines (the format
    /// of `crate::backup`), read in one `REPEATABLE READ, READ ONLY`
    /// transaction. Refuses a dirty or unknown schema, and a table that the
    /// export's table list does not cover.
    pub async fn export_jsonl<W>(&self, out: &mut W) -> StoreResult<ExportSummary>
    where
        W: AsyncWrite + Unpin + Send,
    {
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await
            .map_err(error::postgres)?;
        sqlx::query("SET LOCAL bytea_output = 'hex'")
            .execute(&mut *tx)
            .await
            .map_err(error::postgres)?;
        let (version, dirty) = read_version(&mut tx).await?;
        if dirty {
            return Err(crate::migrate::dirty_error(version));
        }
        if version < 1 {
            return Err(StoreError::Invalid(
                "the PostgreSQL database has no exoclaw schema yet: nothing to back up".to_owned(),
            ));
        }
        POSTGRES.check_target(version).map_err(|_| {
            StoreError::Schema(format!(
                "the database schema is version {version}, newer than this exoclaw knows ({}); \
                 back it up with the newer exoclaw",
                POSTGRES.latest()
            ))
        })?;
        let present = schema_tables(&mut tx).await?;
        if let Some(stray) = present
            .iter()
            .find(|t| !TABLES.iter().any(|s| s.name == *t) && !DERIVED.contains(&t.as_str()))
        {
            return Err(StoreError::Schema(format!(
                "table {stray} is in the database but not in the backup's table list; this \
                 exoclaw cannot export it (is the database shared with another application?)"
            )));
        }
        let tables: Vec<&TableSpec> = TABLES
            .iter()
            .filter(|s| present.iter().any(|t| t == s.name))
            .collect();
        let names: Vec<&str> = tables.iter().map(|s| s.name).collect();
        let header = serde_json::json!({
            "format": crate::backup::EXPORT_FORMAT,
            "version": crate::backup::EXPORT_VERSION,
            "schema_version": version,
            "tables": names,
        });
        out.write_all(format!("{header}\n").as_bytes())
            .await
            .map_err(|e| write_error(&e))?;
        let mut summary = ExportSummary {
            schema_version: version,
            rows: Default::default(),
        };
        for spec in tables {
            let sql = format!(
                "SELECT {} FROM {} AS t ORDER BY {}",
                crate::backup::export_row_json(spec.name),
                spec.name,
                spec.order_by
            );
            let prefix = format!("{{\"table\":\"{}\",\"row\":", spec.name);
            let mut count = 0u64;
            let mut rows = sqlx::query_scalar::<_, String>(AssertSqlSafe(sql)).fetch(&mut *tx);
            while let Some(row) = rows.try_next().await.map_err(error::postgres)? {
                let line = format!("{prefix}{row}}}\n");
                out.write_all(line.as_bytes())
                    .await
                    .map_err(|e| write_error(&e))?;
                count += 1;
            }
            drop(rows);
            summary.rows.insert(spec.name.to_owned(), count);
        }
        let end = serde_json::json!({"end": true, "rows": summary.rows});
        out.write_all(format!("{end}\n").as_bytes())
            .await
            .map_err(|e| write_error(&e))?;
        out.flush().await.map_err(|e| write_error(&e))?;
        tx.rollback().await.map_err(error::postgres)?;
        Ok(summary)
    }

    /// Loads an export into this database, which must be empty (schema
    /// version 0 and no tables but the version table): migrates it to the export's schema version,
    /// then inserts every row in one transaction and moves sequences past
    /// the imported values. On failure the database is migrated back to
    /// empty. The export is checked line by line as it is read.
    pub async fn import_jsonl<R>(&self, mut reader: R) -> StoreResult<ExportSummary>
    where
        R: AsyncBufRead + Unpin + Send,
    {
        let mut export = ExportReader::new();
        let mut buf = Vec::new();
        if read_line(&mut reader, &mut buf).await? == 0 {
            return export.finish();
        }
        let Line::Header { schema_version, .. } = export.feed(line_text(&buf, 1)?)? else {
            return Err(StoreError::Corrupt(
                "the PostgreSQL export does not start with its header".to_owned(),
            ));
        };
        self.require_empty().await?;
        self.migrate_to(schema_version).await?;
        match self.load_rows(export, &mut reader, &mut buf).await {
            Ok(summary) => Ok(summary),
            Err(e) => {
                if let Err(undo) = self.migrate_to(0).await {
                    tracing::warn!(error = %undo, "could not empty the database after a failed import");
                    return Err(StoreError::Other(format!(
                        "{e}; the database could not be emptied again ({undo}): drop and \
                         recreate it before the next attempt"
                    )));
                }
                Err(e)
            }
        }
    }

    /// Refuses a database that holds anything: a schema version above 0, or
    /// a table other than an empty version table.
    async fn require_empty(&self) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await.map_err(error::postgres)?;
        let (version, dirty) = read_version(&mut conn).await?;
        if version != 0 || dirty {
            return Err(StoreError::Invalid(format!(
                "the target PostgreSQL database is not empty (schema version {version}); \
                 restore into a new, empty database"
            )));
        }
        // A database migrated all the way down keeps only the version table.
        let mut tables = schema_tables(&mut conn).await?;
        tables.retain(|t| t != VERSION_TABLE);
        if !tables.is_empty() {
            return Err(StoreError::Invalid(format!(
                "the target PostgreSQL database is not empty ({} tables, e.g. {}); restore \
                 into a new, empty database",
                tables.len(),
                tables[0]
            )));
        }
        Ok(())
    }

    async fn load_rows<R>(
        &self,
        mut export: ExportReader,
        reader: &mut R,
        buf: &mut Vec<u8>,
    ) -> StoreResult<ExportSummary>
    where
        R: AsyncBufRead + Unpin + Send,
    {
        let mut tx = self.pool.begin().await.map_err(error::postgres)?;
        // The first migration seeds the default tenant; the export has its own.
        sqlx::query("DELETE FROM tenants")
            .execute(&mut *tx)
            .await
            .map_err(error::postgres)?;
        let mut batch = Batch::default();
        loop {
            if read_line(reader, buf).await? == 0 {
                // No end line: `finish` names the cut.
                return export.finish();
            }
            let number = export.lines_read() + 1;
            let len = buf.len();
            match export.feed(line_text(buf, number)?)? {
                Line::Header { .. } => {}
                Line::Row { table, row } => {
                    let spec = table_spec(&table)?;
                    if spec.name == VERSION_TABLE {
                        continue; // written by the migrations, checked by `feed`
                    }
                    if batch.table.is_some_and(|t| t != spec.name) {
                        batch.flush(&mut tx).await?;
                    }
                    batch.push(spec.name, row, len);
                    if batch.rows.len() >= BATCH_ROWS || batch.bytes >= BATCH_BYTES {
                        batch.flush(&mut tx).await?;
                    }
                }
                Line::End { .. } => break,
            }
        }
        batch.flush(&mut tx).await?;
        let summary = export.finish()?;
        for table in summary.rows.keys() {
            reset_sequences(&mut tx, table_spec(table)?.name).await?;
        }
        tx.commit().await.map_err(error::postgres)?;
        Ok(summary)
    }
}

/// The static spec of a table named in an export (already checked by
/// `ExportReader`, looked up again so that SQL is built only from constants).
fn table_spec(name: &str) -> StoreResult<&'static TableSpec> {
    TABLES
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| StoreError::Corrupt(format!("the export names unknown table {name:?}")))
}

/// Rows of one table waiting to be inserted.
#[derive(Default)]
struct Batch {
    table: Option<&'static str>,
    rows: Vec<Value>,
    bytes: usize,
}

impl Batch {
    fn push(&mut self, table: &'static str, row: Map<String, Value>, line_len: usize) {
        self.table = Some(table);
        self.bytes += line_len;
        self.rows.push(Value::Object(row));
    }

    async fn flush(&mut self, conn: &mut PgConnection) -> StoreResult<()> {
        let Some(table) = self.table.take() else {
            return Ok(());
        };
        let rows = std::mem::take(&mut self.rows);
        self.bytes = 0;
        let expected = u64::try_from(rows.len()).unwrap_or(u64::MAX);
        let json = serde_json::to_string(&rows)
            .map_err(|e| StoreError::Other(format!("cannot re-encode rows of {table}: {e}")))?;
        let sql = format!(
            "INSERT INTO {table} SELECT * FROM json_populate_recordset(NULL::{table}, $1::json)"
        );
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(json)
            .execute(conn)
            .await
            .map_err(|e| match error::postgres(e) {
                StoreError::NotFound => StoreError::Corrupt(format!(
                    "rows of {table} refer to rows missing from the export"
                )),
                other => other,
            })?;
        if done.rows_affected() != expected {
            return Err(StoreError::Other(format!(
                "inserted {} of {expected} rows of {table}",
                done.rows_affected()
            )));
        }
        Ok(())
    }
}

/// Moves every sequence owned by a column of `table` past its largest value,
/// so the next insert does not collide with an imported row.
async fn reset_sequences(conn: &mut PgConnection, table: &'static str) -> StoreResult<()> {
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT a.attname::text FROM pg_attribute a \
         WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped \
           AND pg_get_serial_sequence($1, a.attname) IS NOT NULL",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await
    .map_err(error::postgres)?;
    for column in columns {
        let quoted = format!("\"{}\"", column.replace('"', "\"\""));
        let sql = format!(
            "SELECT setval(pg_get_serial_sequence($1, $2), COALESCE(MAX({quoted}), 1), \
             MAX({quoted}) IS NOT NULL) FROM {table}"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(table)
            .bind(&column)
            .execute(&mut *conn)
            .await
            .map_err(error::postgres)?;
    }
    Ok(())
}

/// The base tables of the current schema.
async fn schema_tables(conn: &mut PgConnection) -> StoreResult<Vec<String>> {
    sqlx::query_scalar(
        "SELECT tablename::text FROM pg_catalog.pg_tables \
         WHERE schemaname = current_schema() ORDER BY tablename",
    )
    .fetch_all(conn)
    .await
    .map_err(error::postgres)
}

/// One line into `buf` (newline removed), refusing overlong lines; 0 at the end.
async fn read_line<R: AsyncBufRead + Unpin + Send>(
    reader: &mut R,
    buf: &mut Vec<u8>,
) -> StoreResult<usize> {
    buf.clear();
    let limit = u64::try_from(MAX_LINE_BYTES).unwrap_or(u64::MAX) + 1;
    let n = (&mut *reader)
        .take(limit)
        .read_until(b'\n', buf)
        .await
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
