//! The dialect layer: what differs between SQLite and PostgreSQL in a query
//! that is otherwise written once (see [`crate::port`]).
//!
//! Query texts are written in SQLite's spelling: `?` or `?N` placeholders,
//! standard SQL otherwise (`ON CONFLICT ... DO NOTHING/UPDATE`, `RETURNING`,
//! `IS NOT DISTINCT FROM`, `TRUE`/`FALSE`, `CAST(... AS BIGINT)`). Each
//! backend has a module `dialect` (`crate::sqlite::dialect`,
//! `crate::postgres::dialect`) with the same items, which the port bodies
//! reach as `$d::...`:
//!
//! | item | SQLite | PostgreSQL |
//! |---|---|---|
//! | `sql!(parts..)` | `concat!(parts..)`, a literal | the same text, placeholders rewritten to `$N` once ([`numbered`], in a `LazyLock`) |
//! | `json_col!("c")`, `json_col!("t.", "c")` | `c` (JSON is `TEXT`) | `c::text AS c` (JSONB read as text) |
//! | `json_arg!("?")` | `?` | `?::jsonb` |
//! | `limit!("?N")` | `CAST(?N AS INTEGER)`: a parameter alone in `LIMIT` makes SQLite re-compile the statement at every binding, a cast keeps the cached one | `?N` |
//! | `NO_LIMIT` | `Some(-1)` | `None` (`LIMIT NULL`) |
//! | `for_update!()` | nothing (writers hold SQLite's write lock) | ` FOR UPDATE` |
//! | `skip_locked!()` | nothing (likewise) | ` FOR UPDATE SKIP LOCKED` |
//! | `BEGIN_WRITE` | `BEGIN IMMEDIATE` on the writer connection | `BEGIN` |
//! | `BEGIN_SNAPSHOT` | `BEGIN` (a read transaction sees one snapshot) | `BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY` |
//! | `lock(conn, key)` | nothing (`BEGIN IMMEDIATE` serialises writers) | `pg_advisory_xact_lock(hashtext(key))`, also across processes |
//! | `lock_migrations(conn)` | nothing (likewise) | a fixed advisory lock, so two gateways starting at once cannot both migrate |
//! | `has_table(conn, name)` | `sqlite_master` | `to_regclass` |
//! | `MIGRATIONS`, `BACKEND` | `migrate::SQLITE`, `Backend::Sqlite` | `migrate::POSTGRES`, `Backend::Postgres` |
//! | `err` | [`crate::error::sqlite`] | [`crate::error::postgres`] (unique violation -> `Conflict`, foreign key -> `NotFound`, by SQLSTATE) |
//! | `Conn` | `SqliteConnection` | `PgConnection` |
//!
//! Parameters are bound with their Rust types; sqlx declares each one's type
//! to PostgreSQL when it prepares a statement, so `? IS NULL` needs no cast.

use std::fmt::Write as _;

/// `sql` with SQLite's placeholders rewritten for PostgreSQL, numbered the
/// way sqlx binds them on SQLite: `?N` is argument N, and a bare `?` the
/// next argument counting bare ones only (so a statement mixes them only as
/// bare ones first, then `?N` from there on). Quoted literals and
/// identifiers are copied unchanged. Run once per statement (the result is
/// kept in a `static`).
pub(crate) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut bare = 0u32;
    let mut quote = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                out.push(c);
            }
            '?' => {
                let mut number = None::<u32>;
                while let Some(digit) = chars.peek().and_then(|d| d.to_digit(10)) {
                    number = Some(number.unwrap_or(0).saturating_mul(10).saturating_add(digit));
                    chars.next();
                }
                let n = number.unwrap_or_else(|| {
                    bare += 1;
                    bare
                });
                let _ = write!(out, "${n}");
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::numbered;

    #[test]
    fn placeholders_are_numbered_like_sqlx_binds_them_on_sqlite() {
        assert_eq!(
            numbered("SELECT a FROM t WHERE x = ? AND y = ? LIMIT ?"),
            "SELECT a FROM t WHERE x = $1 AND y = $2 LIMIT $3"
        );
        assert_eq!(
            numbered("WHERE t = ?1 AND (?2 IS NULL OR a = ?2) AND b = ?10"),
            "WHERE t = $1 AND ($2 IS NULL OR a = $2) AND b = $10"
        );
        assert_eq!(
            numbered("WHERE t = ? AND j = ? ORDER BY d LIMIT CAST(?3 AS INTEGER)"),
            "WHERE t = $1 AND j = $2 ORDER BY d LIMIT CAST($3 AS INTEGER)"
        );
        // sqlx counts bare `?` on their own, whatever `?N` stand before them.
        assert_eq!(numbered("?2, ?, ?1, ?"), "$2, $1, $1, $2");
    }

    #[test]
    fn quoted_text_is_left_alone() {
        assert_eq!(
            numbered("SET status = 'why?' , \"odd?\" = ? WHERE k = 'it''s ?'"),
            "SET status = 'why?' , \"odd?\" = $1 WHERE k = 'it''s ?'"
        );
        assert_eq!(numbered("x::jsonb = ?::jsonb"), "x::jsonb = $1::jsonb");
    }
}
