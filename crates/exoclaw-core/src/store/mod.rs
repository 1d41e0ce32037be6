//! Store ports. Narrow traits, one per aggregate, all tenant-scoped; a backend
//! implements every one of them and is used as `Arc<dyn Store>`.
//!
//! Both backends (`SqliteStore`, `PgStore` in `exoclaw-store`) pass one shared
//! contract suite, so callers never branch on the backend.

use crate::model::{
    Agent, AgentUpdate, AuditEvent, AuditFilter, AuditVerify, ChannelSender, Device, Message,
    NewAgent, NewAuditEvent, NewDevice, NewMessage, NewPairingRequest, NewUser, PairingCreated,
    PairingDecision, PairingFailure, PairingRequest, PairingStatus, SecretMeta, SecretRecord,
    Session, SessionFilter, SessionScope, Tenant, User, VaultCheck,
};
use crate::{AgentId, SessionId, TenantId, UnixMillis, UserId};
use async_trait::async_trait;
use std::fmt;

pub mod channel;
pub mod cron;
pub mod dashboard;
mod error;
pub mod memory;
pub mod orchestration;
pub mod skill;
pub mod teams;
pub mod tool_sources;

pub use channel::ChannelStore;
pub use cron::CronStore;
pub use dashboard::{DashboardSession, DashboardStore};
pub use error::{StoreError, StoreResult};
pub use memory::MemoryStore;
pub use orchestration::{BindingStore, DelegationStore, LinkStore};
pub use skill::SkillStore;
pub use teams::{HandoffStore, MailStore, TaskStore, TeamStore};
pub use tool_sources::{EVERY_AGENT, ToolGrant, ToolSource, ToolSourceKind, ToolSourceStore};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// Where a schema stands relative to the migrations this binary ships.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchemaStatus {
    /// The applied version; 0 for an empty database.
    pub current: i64,
    /// The newest version this binary knows.
    pub latest: i64,
    /// A migration failed half-way; `migrate force N` clears it after repair.
    pub dirty: bool,
}

impl SchemaStatus {
    pub fn is_current(&self) -> bool {
        self.current == self.latest && !self.dirty
    }
    pub fn is_fresh(&self) -> bool {
        self.current == 0 && !self.dirty
    }
    pub fn is_newer_than_binary(&self) -> bool {
        self.current > self.latest
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationInfo {
    pub version: i64,
    pub name: &'static str,
    /// The SQL that `up` would run, for `upgrade --dry-run`.
    pub up_sql: &'static str,
}

/// Health and schema administration.
#[async_trait]
pub trait SchemaStore: Send + Sync {
    fn backend(&self) -> Backend;
    /// A cheap round trip proving the database answers.
    async fn ping(&self) -> StoreResult<()>;
    async fn schema_status(&self) -> StoreResult<SchemaStatus>;
    /// The migrations this binary ships, oldest first.
    fn migrations(&self) -> &'static [MigrationInfo];
    /// Apply (up) or revert (down) migrations until `target` is the current
    /// version; each step runs in its own transaction. Returns the versions
    /// passed through, in order. Refuses on a dirty schema.
    async fn migrate_to(&self, target: i64) -> StoreResult<Vec<i64>>;
    /// Set the recorded version without running anything and clear `dirty`.
    async fn force_version(&self, version: i64) -> StoreResult<()>;
}

#[async_trait]
pub trait TenantStore: Send + Sync {
    async fn create_tenant(&self, id: &TenantId, name: &str) -> StoreResult<Tenant>;
    async fn get_tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>>;
    async fn list_tenants(&self) -> StoreResult<Vec<Tenant>>;
    /// Replace the tenant's settings (a JSON object) and bump its
    /// `settings_version`; returns the tenant as stored. With `expected`,
    /// only while the version is still that one (`Conflict` otherwise: a
    /// read-modify-write that lost a race changes nothing). `NotFound` for
    /// an unknown tenant, `Invalid` when `settings` is not an object.
    async fn set_tenant_settings(
        &self,
        id: &TenantId,
        settings: &serde_json::Value,
        expected: Option<i64>,
    ) -> StoreResult<Tenant>;
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// `Conflict` when the name is taken inside the tenant.
    async fn create_user(&self, tenant: &TenantId, user: &NewUser) -> StoreResult<User>;
    async fn get_user(&self, tenant: &TenantId, id: &UserId) -> StoreResult<Option<User>>;
    async fn find_user_by_name(&self, tenant: &TenantId, name: &str) -> StoreResult<Option<User>>;
    async fn list_users(&self, tenant: &TenantId) -> StoreResult<Vec<User>>;
    async fn set_user_disabled(
        &self,
        tenant: &TenantId,
        id: &UserId,
        disabled: bool,
    ) -> StoreResult<()>;
    /// Deletes the user and everything they own (sessions, messages, the
    /// handoffs of their conversations).
    async fn delete_user(&self, tenant: &TenantId, id: &UserId) -> StoreResult<()>;
}

#[async_trait]
pub trait AgentStore: Send + Sync {
    async fn create_agent(&self, tenant: &TenantId, agent: &NewAgent) -> StoreResult<Agent>;
    async fn get_agent(&self, tenant: &TenantId, id: &AgentId) -> StoreResult<Option<Agent>>;
    /// A number that changes whenever the tenant's agents, agent links,
    /// teams, team members or handoffs (set or cleared) change, whoever
    /// changes them: a reader may keep those rows while it stays the same.
    /// `None` when the backend keeps no such number (then nothing may be
    /// kept).
    async fn directory_version(&self, tenant: &TenantId) -> StoreResult<Option<i64>> {
        let _ = tenant;
        Ok(None)
    }
    async fn list_agents(&self, tenant: &TenantId) -> StoreResult<Vec<Agent>>;
    async fn update_agent(
        &self,
        tenant: &TenantId,
        id: &AgentId,
        update: &AgentUpdate,
    ) -> StoreResult<Agent>;
    /// Deletes the agent and its sessions, and the links, bindings, team
    /// memberships and handoffs naming it. `Conflict` while it leads a team
    /// (give the team another lead or delete it first).
    async fn delete_agent(&self, tenant: &TenantId, id: &AgentId) -> StoreResult<()>;
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    /// The session for this scope, created on first use (safe under races).
    async fn get_or_create_session(
        &self,
        tenant: &TenantId,
        scope: &SessionScope,
    ) -> StoreResult<Session>;
    async fn get_session(&self, tenant: &TenantId, id: &SessionId) -> StoreResult<Option<Session>>;
    /// Newest first.
    async fn list_sessions(
        &self,
        tenant: &TenantId,
        filter: &SessionFilter,
    ) -> StoreResult<Vec<Session>>;
    async fn delete_session(&self, tenant: &TenantId, id: &SessionId) -> StoreResult<()>;
    /// Appends with the next `seq` (atomic under concurrent appends) and bumps
    /// the session's `updated_at`. `NotFound` when the session is not the tenant's.
    async fn append_message(
        &self,
        tenant: &TenantId,
        session: &SessionId,
        message: &NewMessage,
    ) -> StoreResult<Message>;
    /// Oldest first, `seq > after_seq`, at most `limit` (0 = all).
    async fn list_messages(
        &self,
        tenant: &TenantId,
        session: &SessionId,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<Message>>;
    /// What the model sees of the session, oldest first: the messages after
    /// the point its latest compaction summary covers (`compacted_through`
    /// in the summary's meta), the summary among them; all of them when
    /// there is none. Errors as [`Self::list_messages`]. The default reads
    /// everything; the backends read only the window.
    async fn list_window(
        &self,
        tenant: &TenantId,
        session: &SessionId,
    ) -> StoreResult<Vec<Message>> {
        self.list_messages(tenant, session, 0, 0).await
    }
}

/// Ciphertext storage for the secret vault. Plaintext never reaches a store.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// Insert or replace (keeps `created_at` on replace).
    async fn put_secret(&self, record: &SecretRecord) -> StoreResult<()>;
    async fn get_secret(
        &self,
        tenant: &TenantId,
        owner: &str,
        name: &str,
    ) -> StoreResult<Option<SecretRecord>>;
    async fn list_secrets(
        &self,
        tenant: &TenantId,
        owner: Option<&str>,
    ) -> StoreResult<Vec<SecretMeta>>;
    async fn delete_secret(&self, tenant: &TenantId, owner: &str, name: &str) -> StoreResult<()>;
    /// Every secret of every tenant, for key rotation.
    async fn all_secrets(&self) -> StoreResult<Vec<SecretRecord>>;
    /// Key rotation: replace the given records (matched by tenant, owner,
    /// name) and the vault check in one transaction: all or nothing.
    async fn replace_secrets(
        &self,
        records: &[SecretRecord],
        check: &VaultCheck,
    ) -> StoreResult<()>;
    async fn vault_check(&self) -> StoreResult<Option<VaultCheck>>;
    async fn set_vault_check(&self, check: &VaultCheck) -> StoreResult<()>;
}

/// The append-only, hash-chained audit log.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends to the tenant's chain. Appends to one tenant are serialised
    /// (also across processes sharing a PostgreSQL database).
    async fn append_audit(&self, event: &NewAuditEvent) -> StoreResult<AuditEvent>;
    /// Newest first.
    async fn list_audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEvent>>;
    /// Recomputes the chain of one tenant (or of every tenant with events)
    /// and reports the first break of each: an edit, a deletion (also of
    /// the newest events, through the chain head) or a reordering.
    async fn verify_audit(&self, tenant: Option<&TenantId>) -> StoreResult<AuditVerify>;
}

/// Everything a backend provides. Blanket-implemented.
pub trait Store:
    SchemaStore
    + TenantStore
    + UserStore
    + AgentStore
    + SessionStore
    + SecretStore
    + AuditStore
    + TraceStore
    + UsageStore
    + UsageReportStore
    + TraceBatchStore
    + GatewayTokenStore
    + ApprovalStore
    + ApiKeyStore
    + PairingStore
    + JobStore
    + LinkStore
    + DelegationStore
    + BindingStore
    + TeamStore
    + TaskStore
    + MailStore
    + HandoffStore
    + CronStore
    + ChannelStore
    + RecoveryStore
    + ToolSourceStore
    + MemoryStore
    + SkillStore
    + DashboardStore
{
}

impl<T> Store for T where
    T: SchemaStore
        + TenantStore
        + UserStore
        + AgentStore
        + SessionStore
        + SecretStore
        + AuditStore
        + TraceStore
        + UsageStore
        + UsageReportStore
        + TraceBatchStore
        + GatewayTokenStore
        + ApprovalStore
        + ApiKeyStore
        + PairingStore
        + JobStore
        + LinkStore
        + DelegationStore
        + BindingStore
        + TeamStore
        + TaskStore
        + MailStore
        + HandoffStore
        + CronStore
        + ChannelStore
        + RecoveryStore
        + ToolSourceStore
        + MemoryStore
        + SkillStore
        + DashboardStore
{
}

/// One occurrence of a scheduled job (a daily backup, later cron jobs),
/// claimed by the gateway that runs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobRun {
    pub tenant_id: TenantId,
    /// The job's stable id (`backup.daily`, a cron job's id).
    pub job: String,
    /// The occurrence: when it was due.
    pub due_at: UnixMillis,
    /// The instance that claimed it.
    pub owner: String,
    pub started_at: UnixMillis,
    /// `running`, `ok`, `failed`, `skipped`.
    pub status: String,
    /// A short outcome (an error code, a trace id), never secrets.
    pub detail: Option<String>,
    pub finished_at: Option<UnixMillis>,
}

/// Scheduled occurrences, so that every occurrence of a job runs once even
/// when several gateways share one database (the first claim wins), and so
/// that missed occurrences after downtime can be found.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Claim occurrence `due_at` of `job` for `owner`: `true` for exactly
    /// one claimer of that occurrence, also across processes.
    async fn claim_job_run(
        &self,
        tenant: &TenantId,
        job: &str,
        due_at: UnixMillis,
        owner: &str,
        now: UnixMillis,
    ) -> StoreResult<bool>;
    /// Record how a claimed occurrence ended. `NotFound` if it was never
    /// claimed.
    async fn finish_job_run(
        &self,
        tenant: &TenantId,
        job: &str,
        due_at: UnixMillis,
        status: &str,
        detail: Option<&str>,
        now: UnixMillis,
    ) -> StoreResult<()>;
    /// Every tenant's occurrences still `running` under `owner` (a gateway
    /// stopped or killed while they ran), marked `failed` with the detail
    /// `error=interrupted` and finished at `now`; how many.
    async fn interrupt_job_runs(&self, owner: &str, now: UnixMillis) -> StoreResult<u64>;
    /// The newest occurrences of `job`, newest first, at most `limit`.
    async fn list_job_runs(
        &self,
        tenant: &TenantId,
        job: &str,
        limit: u32,
    ) -> StoreResult<Vec<JobRun>>;
}

/// Runs a stopped gateway left behind.
#[async_trait]
pub trait RecoveryStore: Send + Sync {
    /// Every tenant's traces still `running` under `owner` (a gateway that
    /// stopped or was killed while they ran), marked `interrupted` and
    /// ended at `now`, returned oldest first.
    async fn interrupt_running_traces(
        &self,
        owner: &str,
        now: UnixMillis,
    ) -> StoreResult<Vec<crate::trace::Trace>>;
}

/// Traces and spans of agent runs.
#[async_trait]
pub trait TraceStore: Send + Sync {
    /// Starts a trace with status `running`.
    async fn create_trace(
        &self,
        trace: &crate::trace::NewTrace,
    ) -> StoreResult<crate::trace::Trace>;
    /// `NotFound` when the trace is not the tenant's.
    async fn finish_trace(
        &self,
        tenant: &TenantId,
        id: &str,
        end: &crate::trace::TraceEnd,
    ) -> StoreResult<()>;
    /// `NotFound` when the trace is not the tenant's.
    async fn add_span(&self, span: &crate::trace::NewSpan) -> StoreResult<crate::trace::Span>;
    /// Newest first.
    async fn list_traces(
        &self,
        tenant: &TenantId,
        filter: &crate::trace::TraceFilter,
    ) -> StoreResult<Vec<crate::trace::Trace>>;
    /// The trace and its spans (in start order).
    async fn get_trace(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> StoreResult<Option<(crate::trace::Trace, Vec<crate::trace::Span>)>>;
}

/// The usage ledger budgets are checked against.
#[async_trait]
pub trait UsageStore: Send + Sync {
    async fn record_usage(&self, entry: &crate::trace::UsageEntry) -> StoreResult<()>;
    /// Total cost in micro-dollars of the tenant's calls in `scope` at or
    /// after `since`.
    async fn spend_since(
        &self,
        tenant: &TenantId,
        scope: &crate::trace::SpendScope,
        since: UnixMillis,
    ) -> StoreResult<i64>;
    /// In one transaction that excludes every other reservation of the
    /// tenant (also from other gateways on the same database): sums each
    /// window (ledger entries since its start plus live reservations) and,
    /// when the new reservation fits in all of them, inserts it. Expired
    /// reservations of the tenant are deleted on the way.
    async fn reserve(
        &self,
        reservation: &crate::trace::NewReservation,
        windows: &[crate::trace::BudgetWindow],
    ) -> StoreResult<crate::trace::Reserved>;
    /// Deletes the reservation `id` and, when given, records the call's
    /// ledger entry, in one transaction (so the spend is never counted
    /// twice nor missing in between). An unknown id only records the entry.
    async fn settle(
        &self,
        tenant: &TenantId,
        id: &str,
        entry: Option<&crate::trace::UsageEntry>,
    ) -> StoreResult<()>;
}

/// Reports over the usage ledger (the dashboard's usage page and
/// `GET /v1/usage`, `GET /v1/budgets`).
#[async_trait]
pub trait UsageReportStore: Send + Sync {
    /// The calls of `q`'s range summed per UTC day and key, by day then key.
    async fn usage_by_day(
        &self,
        tenant: &TenantId,
        q: &crate::trace::UsageQuery,
    ) -> StoreResult<Vec<crate::trace::UsageBucket>>;
    /// What `window` has used at `now`: ledger entries since its start plus
    /// live reservations, in the window's unit (what
    /// [`UsageStore::reserve`] checks against its limit).
    async fn budget_used(
        &self,
        tenant: &TenantId,
        window: &crate::trace::BudgetWindow,
        now: UnixMillis,
    ) -> StoreResult<i64>;
}

/// Trace, span and usage writes committed together (the write-behind queue
/// of the gateway uses it to take them off the request path).
#[async_trait]
pub trait TraceBatchStore: Send + Sync {
    /// Applies `writes` in order, in one transaction. A span or an end whose
    /// trace is not its tenant's, and a write the store refuses as
    /// `Invalid` (a count too large, a negative cost), is skipped and
    /// counted in the result instead of failing the others; any other error
    /// writes nothing.
    async fn write_traces(&self, writes: &[crate::trace::TraceWrite]) -> StoreResult<usize>;
}

/// One stored gateway token: only its SHA-256 digest (hex) is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayToken {
    pub id: String,
    pub token_hash: String,
    pub created_at: UnixMillis,
    /// When the token stops working (set by a rotation); `None` = no expiry.
    pub expires_at: Option<UnixMillis>,
}

/// What seeding a token found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeedOutcome {
    /// The token was new and is now active.
    Inserted,
    /// The token was already stored (active or still in its overlap window).
    Known,
    /// The token was rotated out: it is not brought back.
    Retired,
}

/// The gateway tokens (hashed). `EXOCLAW_GATEWAY_TOKEN` only seeds this
/// table; `exoclaw token rotate` replaces the active token with an overlap
/// window, effective in running gateways without a restart.
#[async_trait]
pub trait GatewayTokenStore: Send + Sync {
    /// Every token, retired ones included, oldest first.
    async fn gateway_tokens(&self) -> StoreResult<Vec<GatewayToken>>;
    /// Store `token_hash` unless it is known; never revives a retired one.
    async fn seed_gateway_token(
        &self,
        token_hash: &str,
        now: UnixMillis,
    ) -> StoreResult<SeedOutcome>;
    /// In one transaction: every token without an expiry (or expiring later)
    /// now expires at `old_valid_until`, and `new_hash` becomes active.
    async fn rotate_gateway_token(
        &self,
        new_hash: &str,
        old_valid_until: UnixMillis,
        now: UnixMillis,
    ) -> StoreResult<()>;
}

/// Where an exec approval stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Denied,
    Expired,
}

impl ApprovalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Denied => "denied",
            ApprovalStatus::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Approved, Self::Denied, Self::Expired]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// A flagged command waiting for (or decided by) an operator. The approval
/// is bound to `command_hash`: the resolved argv, cwd and environment.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Approval {
    pub id: String,
    pub tenant_id: TenantId,
    pub agent_id: AgentId,
    pub user_id: UserId,
    pub session_id: Option<SessionId>,
    /// The command as requested (shown to the operator).
    pub command: String,
    pub cwd: String,
    pub command_hash: String,
    /// The rule that flagged it.
    pub rule: String,
    pub status: ApprovalStatus,
    pub requested_at: UnixMillis,
    pub decided_at: Option<UnixMillis>,
    pub decided_by: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewApproval {
    pub tenant_id: TenantId,
    pub agent_id: AgentId,
    pub user_id: UserId,
    pub session_id: Option<SessionId>,
    pub command: String,
    pub cwd: String,
    pub command_hash: String,
    pub rule: String,
}

/// Exec approvals (`tools.exec_approval.security = ask`).
#[async_trait]
pub trait ApprovalStore: Send + Sync {
    /// A pending approval for the request: an existing pending one with the
    /// same tenant and hash is returned instead of a duplicate.
    async fn request_approval(&self, new: &NewApproval, now: UnixMillis) -> StoreResult<Approval>;
    async fn get_approval(&self, tenant: &TenantId, id: &str) -> StoreResult<Option<Approval>>;
    /// Newest first; `None` lists every status.
    async fn list_approvals(
        &self,
        tenant: &TenantId,
        status: Option<ApprovalStatus>,
    ) -> StoreResult<Vec<Approval>>;
    /// Pending -> `to` (approved, denied or expired), once: deciding an
    /// approval that is not pending is `Conflict`; another tenant's is
    /// `NotFound`.
    async fn decide_approval(
        &self,
        tenant: &TenantId,
        id: &str,
        to: ApprovalStatus,
        by: &str,
        now: UnixMillis,
    ) -> StoreResult<Approval>;
    /// Whether `hash` was approved in this tenant at or after `since`.
    async fn is_approved(
        &self,
        tenant: &TenantId,
        hash: &str,
        since: UnixMillis,
    ) -> StoreResult<bool>;
}

/// An API key: a user's bearer credential. Only the SHA-256 digest of the key
/// is stored; `prefix` (the first characters) identifies it in listings.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ApiKey {
    pub id: String,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub name: String,
    pub prefix: String,
    /// Permissions this key is limited to; empty = everything the role allows.
    pub scopes: Vec<String>,
    pub created_at: UnixMillis,
    pub expires_at: Option<UnixMillis>,
    pub revoked_at: Option<UnixMillis>,
    pub last_used_at: Option<UnixMillis>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewApiKey {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub name: String,
    pub key_hash: String,
    pub prefix: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<UnixMillis>,
}

/// API keys of users (`exoclaw keys`, `/v1/keys`).
#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// `NotFound` when the user is not the tenant's; `Conflict` on a digest
    /// collision (never in practice).
    async fn create_api_key(&self, key: &NewApiKey, now: UnixMillis) -> StoreResult<ApiKey>;
    /// The key with this digest and its user, whatever its state (expired,
    /// revoked, user disabled): the caller decides and says why.
    async fn find_api_key(&self, key_hash: &str) -> StoreResult<Option<(ApiKey, User)>>;
    /// Newest first; only `user`'s keys when given.
    async fn list_api_keys(
        &self,
        tenant: &TenantId,
        user: Option<&UserId>,
    ) -> StoreResult<Vec<ApiKey>>;
    /// Marks the key revoked (idempotent). `NotFound` when it is not the
    /// tenant's (or, with `user`, not that user's).
    async fn revoke_api_key(
        &self,
        tenant: &TenantId,
        user: Option<&UserId>,
        id: &str,
        now: UnixMillis,
    ) -> StoreResult<()>;
    /// Records a use (callers rate-limit this to about once a minute per key).
    async fn touch_api_key(&self, id: &str, now: UnixMillis) -> StoreResult<()>;
}

/// Browser and channel pairing: requests (only code hashes), paired devices
/// (only credential hashes), channel senders mapped to users, and the failed
/// approval attempts the lockout counts (kept in the store so that the CLI
/// and every gateway instance on one database share it).
#[async_trait]
pub trait PairingStore: Send + Sync {
    /// A new pending request, unless the requester (the user of a device
    /// request, the channel sender of a channel request) already has
    /// `max_pending` pending requests live at `now`. Pending requests of the
    /// requester past their expiry are marked `expired` first. Atomic under
    /// concurrent calls, also across instances. `Conflict` when the code hash
    /// is taken (the caller draws a new code).
    async fn create_pairing_request(
        &self,
        new: &NewPairingRequest,
        max_pending: u32,
        now: UnixMillis,
    ) -> StoreResult<PairingCreated>;
    async fn get_pairing_request(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> StoreResult<Option<PairingRequest>>;
    /// The tenant's request with this code hash, whatever its status.
    async fn find_pairing_request_by_code(
        &self,
        tenant: &TenantId,
        code_hash: &str,
    ) -> StoreResult<Option<PairingRequest>>;
    /// Newest first, at most 500; `None` lists every status.
    async fn list_pairing_requests(
        &self,
        tenant: &TenantId,
        status: Option<PairingStatus>,
    ) -> StoreResult<Vec<PairingRequest>>;
    /// Pending and unexpired at `now` -> approved or denied, once: a request
    /// that is not (or no longer) pending is `Conflict` (its status named in
    /// the message); another tenant's is `NotFound`. Approving sets
    /// `user_id`, and maps a channel request's sender to that user in the
    /// same transaction (an existing mapping is kept).
    async fn decide_pairing_request(
        &self,
        tenant: &TenantId,
        id: &str,
        decision: &PairingDecision,
        by: &str,
        now: UnixMillis,
    ) -> StoreResult<PairingRequest>;
    /// In one transaction: an `approved` device request becomes `issued` and
    /// the device is stored. `Ok(None)` when the request is not `approved`
    /// (already issued, or never approved): a credential is issued once.
    async fn issue_device(
        &self,
        tenant: &TenantId,
        request_id: &str,
        device: &NewDevice,
        now: UnixMillis,
    ) -> StoreResult<Option<Device>>;
    /// The device (of any tenant) whose credential hashes to `token_hash`,
    /// revoked or not.
    async fn find_device_by_token_hash(&self, token_hash: &str) -> StoreResult<Option<Device>>;
    /// Sets `last_seen_at`.
    async fn touch_device(&self, tenant: &TenantId, id: &str, now: UnixMillis) -> StoreResult<()>;
    /// Newest first, revoked ones included.
    async fn list_devices(&self, tenant: &TenantId) -> StoreResult<Vec<Device>>;
    /// Revokes once: `Conflict` if already revoked, `NotFound` if not the
    /// tenant's.
    async fn revoke_device(
        &self,
        tenant: &TenantId,
        id: &str,
        now: UnixMillis,
    ) -> StoreResult<Device>;
    async fn get_channel_sender(
        &self,
        tenant: &TenantId,
        channel: &str,
        sender_id: &str,
    ) -> StoreResult<Option<ChannelSender>>;
    /// Maps the sender to `user` unless it is mapped already; returns the
    /// mapping in force (the first one wins, also under races).
    async fn map_channel_sender(
        &self,
        tenant: &TenantId,
        channel: &str,
        sender_id: &str,
        user: &UserId,
        now: UnixMillis,
    ) -> StoreResult<ChannelSender>;
    /// Records a failed approval attempt (and forgets those older than a day).
    async fn record_pairing_failure(
        &self,
        tenant: &TenantId,
        actor: &str,
        now: UnixMillis,
    ) -> StoreResult<()>;
    /// The tenant's failed attempts at or after `since`, oldest first.
    async fn pairing_failures(
        &self,
        tenant: &TenantId,
        since: UnixMillis,
    ) -> StoreResult<Vec<PairingFailure>>;
}
