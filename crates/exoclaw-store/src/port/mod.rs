//! The store ports, written once for both backends.
//!
//! Each file here holds one `macro_rules!` whose body is the port
//! implementations (`impl TenantStore for $store { ... }` and so on), with
//! one query text per operation. [`expand`] expands all of them inside a
//! backend's module, once in `crate::sqlite` and once in `crate::postgres`
//! (and [`schema::version_table`] the schema bookkeeping around each
//! backend's migration runner);
//! `$d` is that backend's `dialect` module (the hooks listed in
//! [`crate::dialect`]). Business rules come from [`crate::rule`], row
//! decoding from [`crate::row`]. What the backends really do differently
//! stays in them: SQLite's writer connection and the group commit of message
//! appends, PostgreSQL's row-locked appends, migrations, backups.
//!
//! One operation, as written here:
//!
//! ```text
//! async fn get_session(&self, tenant: &TenantId, id: &SessionId)
//!     -> StoreResult<Option<Session>>
//! {
//!     sqlx::query($d::sql!(
//!         "SELECT ", session_cols!(), " FROM sessions WHERE tenant_id = ? AND id = ?"
//!     ))
//!         .bind(tenant.as_str())
//!         .bind(id.as_str())
//!         .fetch_optional(&self.pool)
//!         .await
//!         .map_err($d::err)?
//!         .as_ref()
//!         .map(row::session)
//!         .transpose()
//! }
//! ```
//!
//! On SQLite `$d::sql!` is that literal; on PostgreSQL it is the same text
//! with `$1`, `$2`, rewritten once into a `static`. Reads use each store's
//! `pool`; writes take `self.write_conn()` (SQLite: the one writer
//! connection; PostgreSQL: a pooled one) and transactions that write begin
//! with `$d::BEGIN_WRITE`.
//!
//! Why a macro and not functions generic over `sqlx::Database`: generic sqlx
//! code needs bounds such as `for<'c> &'c mut DB::Connection: Executor<'c,
//! Database = DB>` and `&str: Encode<DB> + Type<DB>` for every bound type,
//! and Rust does not carry such bounds (they are not on `Self`) from a
//! bundling trait to its users, so every function would repeat them and a
//! missing one reports pages of trait errors. Nor can the port traits (they
//! belong to `exoclaw-core`) be implemented once for every `T: Backend`, so
//! each method would still need a forwarding impl per backend. After
//! expansion a body here is ordinary code on concrete types, checked per
//! backend, formatted by rustfmt, linted by clippy; a compile error points at
//! the line in this directory and at the backend that expanded it. No `Any`
//! driver and no compile-time query macros: every statement is runtime
//! checked by the contract suite on both backends.

pub(crate) mod approval;
pub(crate) mod audit;
pub(crate) mod channel;
pub(crate) mod cron;
pub(crate) mod dashboard;
pub(crate) mod data;
pub(crate) mod grouped;
pub(crate) mod job;
pub(crate) mod key;
pub(crate) mod mail;
pub(crate) mod memory;
pub(crate) mod orchestration;
pub(crate) mod pairing;
pub(crate) mod schema;
pub(crate) mod secret;
pub(crate) mod skill;
pub(crate) mod team;
pub(crate) mod token;
pub(crate) mod tool_source;
pub(crate) mod trace;

pub(crate) use data::{MessageRow, SessionRow};

/// Implements every port for `$store`, in the backend module that invokes
/// it; that module must have a `dialect` module, and `$store` must have
/// `pool`, `write_conn()`, `insert_message()`, `insert_session()`,
/// `write_grouped()` (see [`grouped`]) and `write_traces_at_once()`. The mail ports call the
/// team ports' `require_team`, imported here.
macro_rules! expand {
    ($store:ident) => {
        mod data_ports {
            use super::{dialect, $store};
            $crate::port::data::ports!($store, dialect);
        }
        mod secret_ports {
            use super::{dialect, $store};
            $crate::port::secret::ports!($store, dialect);
        }
        mod audit_ports {
            use super::{dialect, $store};
            $crate::port::audit::ports!($store, dialect);
        }
        mod trace_ports {
            use super::{dialect, $store};
            $crate::port::trace::ports!($store, dialect);
        }
        mod approval_ports {
            use super::{dialect, $store};
            $crate::port::approval::ports!($store, dialect);
        }
        mod key_ports {
            use super::{dialect, $store};
            $crate::port::key::ports!($store, dialect);
        }
        mod token_ports {
            use super::{dialect, $store};
            $crate::port::token::ports!($store, dialect);
        }
        mod pairing_ports {
            use super::{dialect, $store};
            $crate::port::pairing::ports!($store, dialect);
        }
        mod channel_ports {
            use super::{dialect, $store};
            $crate::port::channel::ports!($store, dialect);
        }
        mod cron_ports {
            use super::{dialect, $store};
            $crate::port::cron::ports!($store, dialect);
        }
        mod job_ports {
            use super::{dialect, $store};
            $crate::port::job::ports!($store, dialect);
        }
        mod orchestration_ports {
            use super::{dialect, $store};
            $crate::port::orchestration::ports!($store, dialect);
        }
        mod team_ports {
            use super::{dialect, $store};
            $crate::port::team::ports!($store, dialect);
        }
        mod memory_ports {
            use super::{dialect, $store};
            $crate::port::memory::ports!($store, dialect);
        }
        mod skill_ports {
            use super::{dialect, $store};
            $crate::port::skill::ports!($store, dialect);
        }
        mod tool_source_ports {
            use super::{dialect, $store};
            $crate::port::tool_source::ports!($store, dialect);
        }
        mod dashboard_ports {
            use super::{dialect, $store};
            $crate::port::dashboard::ports!($store, dialect);
        }
        mod mail_ports {
            use super::team_ports::require_team;
            use super::{dialect, $store};
            $crate::port::mail::ports!($store, dialect);
        }
    };
}

pub(crate) use expand;
