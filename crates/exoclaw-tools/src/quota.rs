//! Workspace quotas: how many bytes and files one user's workspace, and all
//! the workspaces of one tenant together, may hold. The [`QuotaLedger`]
//! (one per gateway, shared by the file tools and `exec`/`process`) knows
//! each workspace's usage, measured by walking it ([`Usage`] says what
//! counts) and kept current between walks by the tools' own writes.
//!
//! Enforcement:
//! - `write_file` / `edit_file` reserve their growth (new size minus old
//!   size, one file per new file and new parent directory) before touching
//!   the disk; a write that does not fit the user's or the tenant's quota is
//!   refused with [`QUOTA_EXCEEDED`] and nothing is written. A write that
//!   does not grow the workspace is always allowed, so truncating files is a
//!   way back under the quota.
//! - `exec` / `process` refuse to start while the workspace is full or over
//!   quota; a command gets `RLIMIT_FSIZE` = the bytes left (if below
//!   `max_file_mb`), so no single file it writes can pass the quota; after
//!   it ends the workspace is measured again and the result says if it is
//!   now over quota. While a command runs, the ledger trusts no cached
//!   figure for that workspace and measures it on every check.
//!
//! What is not bounded exactly: several commands running at once each get
//! the whole remainder as their file-size limit, and `RLIMIT_FSIZE` caps
//! one file, not a count of files; both overshoots are found by the
//! measurement after the command and refuse everything after it. The
//! sandbox's `/tmp` is a separate size-capped tmpfs, not counted (but
//! `RLIMIT_FSIZE` applies there too). With the sandbox off, commands run
//! without the rlimit and only the measurement applies.
//!
//! Layout: the tenant's directory comes from the closure given to
//! [`QuotaLedger::new`] (the binary owns the layout); a user's workspace
//! must lie inside it, and a tenant's usage is everything under it.

mod measure;
mod message;

#[cfg(test)]
mod tests;

pub use measure::Usage;
pub(crate) use measure::entry_bytes;

use exoclaw_core::tool::{ToolContext, ToolError};
use measure::{MeasureError, Tree, measure, share};
pub use message::QUOTA_EXCEEDED;
pub(crate) use message::human_bytes;
use message::{Limit, Scope, describe, exceeded, unavailable, unmeasurable};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a measurement is trusted by default (the tools' own writes keep
/// it current in between).
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);
/// A figure that would refuse is measured again if older than this, so
/// that files deleted by other means count soon.
const RECHECK_BEFORE_REFUSING: Duration = Duration::from_secs(5);
/// Attempts at measuring a tree that keeps moving while it is walked.
const MEASURE_ATTEMPTS: usize = 3;

/// Limits of one workspace, or of a tenant's workspaces together; `None`
/// is unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkspaceQuota {
    /// Bytes, as [`Usage::bytes`] counts them.
    pub max_bytes: Option<u64>,
    /// Entries of any type, directories and symlinks included.
    pub max_files: Option<u64>,
}

impl WorkspaceQuota {
    pub fn is_limited(&self) -> bool {
        self.max_bytes.is_some() || self.max_files.is_some()
    }
}

/// The per-user and per-tenant quotas; the default limits nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Quotas {
    pub user: WorkspaceQuota,
    pub tenant: WorkspaceQuota,
}

/// A workspace's usage as the ledger sees it; `tenant` when a tenant quota
/// is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaUsage {
    pub user: Usage,
    pub tenant: Option<Usage>,
}

/// Usage of every workspace, shared by the tools (see the module comment).
pub struct QuotaLedger {
    quotas: Quotas,
    tenant_root: Box<dyn Fn(&str) -> PathBuf + Send + Sync>,
    max_age: Duration,
    entries: Mutex<HashMap<PathBuf, Entry>>,
    /// One walk of a tree at a time: who finds a walk under way waits for
    /// its figure instead of walking too.
    walks: Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>,
}

impl std::fmt::Debug for QuotaLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuotaLedger")
            .field("quotas", &self.quotas)
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

/// What one write adds (negative: frees).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Growth {
    pub bytes: i64,
    pub files: i64,
}

impl Growth {
    fn is_growing(self) -> bool {
        self.bytes > 0 || self.files > 0
    }
}

/// One measured tree (a user's workspace or a tenant's directory).
#[derive(Debug, Default)]
struct Entry {
    /// The last measurement plus the writes committed since.
    base: Usage,
    /// Reserved by writes that have not finished.
    in_flight: Growth,
    /// Growth committed ever (only increases): a measurement that raced a
    /// write adds what was committed while it walked.
    grown: Usage,
    /// When last measured; `None`: never, or a command ended since.
    measured: Option<Instant>,
    /// Measured at least once (its figure is part of the tenant's).
    known: bool,
    /// The last walk stopped early (over the file quota).
    partial: bool,
    /// Commands running in this workspace now.
    running: u32,
    /// Bumped when a command ends: a walk that overlapped it is not fresh.
    changes: u64,
}

impl Entry {
    fn usage(&self) -> Usage {
        Usage {
            bytes: add_signed(self.base.bytes, self.in_flight.bytes),
            files: add_signed(self.base.files, self.in_flight.files),
        }
    }

    fn age(&self, now: Instant) -> Option<Duration> {
        if self.running > 0 {
            return None;
        }
        self.measured.map(|t| now.saturating_duration_since(t))
    }
}

fn add_signed(n: u64, d: i64) -> u64 {
    if d >= 0 {
        n.saturating_add(d.unsigned_abs())
    } else {
        n.saturating_sub(d.unsigned_abs())
    }
}

/// The entries one call looks at.
struct Keys {
    user: PathBuf,
    /// `Some` when a tenant quota is set.
    tenant: Option<PathBuf>,
}

impl QuotaLedger {
    /// A ledger enforcing `quotas`; `tenant_root` maps a tenant id to the
    /// directory that holds all its users' workspaces (for the layout
    /// `<data>/workspace/<tenant>/<user>`: `<data>/workspace/<tenant>`).
    pub fn new(
        quotas: Quotas,
        tenant_root: impl Fn(&str) -> PathBuf + Send + Sync + 'static,
    ) -> Self {
        Self {
            quotas,
            tenant_root: Box::new(tenant_root),
            max_age: DEFAULT_MAX_AGE,
            entries: Mutex::new(HashMap::new()),
            walks: Mutex::new(HashMap::new()),
        }
    }

    /// Trust a measurement for `max_age` instead of [`DEFAULT_MAX_AGE`]
    /// (zero: measure on every check; a refusal rechecks after at most this).
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    pub fn quotas(&self) -> Quotas {
        self.quotas
    }

    /// Whether any limit is set (without one the ledger never measures).
    pub fn is_active(&self) -> bool {
        self.quotas.user.is_limited() || self.quotas.tenant.is_limited()
    }

    /// The usage of `ctx`'s workspace (and tenant), measured if stale.
    /// Blocking: it may walk the workspace.
    pub fn usage(&self, ctx: &ToolContext) -> Result<QuotaUsage, ToolError> {
        let keys = self.keys(ctx);
        self.refresh(&keys, Freshness::MaxAge)?;
        let entries = self.lock()?;
        let get = |k: &Path| entries.get(k).map(Entry::usage).unwrap_or_default();
        Ok(QuotaUsage {
            user: get(&keys.user),
            tenant: keys.tenant.as_deref().map(get),
        })
    }

    fn keys(&self, ctx: &ToolContext) -> Keys {
        Keys {
            user: ctx.workspace.clone(),
            tenant: self
                .quotas
                .tenant
                .is_limited()
                .then(|| (self.tenant_root)(ctx.tenant.as_str())),
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, HashMap<PathBuf, Entry>>, ToolError> {
        self.entries.lock().map_err(|_| unavailable())
    }

    fn scopes<'k>(&self, keys: &'k Keys) -> Vec<(Scope, &'k Path, WorkspaceQuota)> {
        let mut v = vec![(Scope::User, keys.user.as_path(), self.quotas.user)];
        if let Some(t) = &keys.tenant {
            v.push((Scope::Tenant, t.as_path(), self.quotas.tenant));
        }
        v
    }

    /// Dry run of a write: would `growth` fit? Blocking.
    pub(crate) fn check_growth(&self, ctx: &ToolContext, growth: Growth) -> Result<(), ToolError> {
        if !self.is_active() {
            return Ok(());
        }
        if !growth.is_growing() {
            return Ok(());
        }
        let keys = self.keys(ctx);
        self.decide(&keys, |entries| self.fits(&keys, entries, growth))
    }

    /// Reserve `growth` for a write about to happen: refused (nothing
    /// reserved) if it does not fit; dropping the reservation without
    /// [`Reservation::commit`] gives it back. Blocking.
    pub(crate) fn reserve(
        &self,
        ctx: &ToolContext,
        growth: Growth,
    ) -> Result<Reservation<'_>, ToolError> {
        let keys = self.keys(ctx);
        let mut reservation = Reservation {
            ledger: self,
            keys: Vec::new(),
            growth,
        };
        if !self.is_active() {
            return Ok(reservation);
        }
        let mut apply = |entries: &mut HashMap<PathBuf, Entry>| {
            for (_, key, _) in self.scopes(&keys) {
                let e = entries.entry(key.to_path_buf()).or_default();
                e.in_flight.bytes = e.in_flight.bytes.saturating_add(growth.bytes);
                e.in_flight.files = e.in_flight.files.saturating_add(growth.files);
                reservation.keys.push(key.to_path_buf());
            }
        };
        if growth.is_growing() {
            self.decide(&keys, |entries| {
                self.fits(&keys, entries, growth)?;
                apply(entries);
                Ok(())
            })?;
        } else {
            // Freeing space is always allowed and needs no measurement.
            apply(&mut *self.lock()?);
        }
        Ok(reservation)
    }

    /// Before a command: refused while the workspace is full or over
    /// quota; else the bytes left (the smaller of user and tenant), if a
    /// byte quota is set. Blocking.
    pub(crate) fn admit_command(&self, ctx: &ToolContext) -> Result<Option<u64>, ToolError> {
        if !self.is_active() {
            return Ok(None);
        }
        let keys = self.keys(ctx);
        self.decide(&keys, |entries| {
            let mut left = None::<u64>;
            for (scope, key, quota) in self.scopes(&keys) {
                let (usage, partial) = usage_of(entries, key);
                if let Some(limit) = full_or_over(quota, usage) {
                    return Err(exceeded(scope, limit, usage, partial, None));
                }
                if let Some(max) = quota.max_bytes {
                    let room = max.saturating_sub(usage.bytes);
                    left = Some(left.map_or(room, |l| l.min(room)));
                }
            }
            Ok(left)
        })
    }

    /// A command starts in `ctx`'s workspace: until the guard drops, every
    /// check measures the workspace again.
    pub(crate) fn command_started(self: &Arc<Self>, ctx: &ToolContext) -> CommandGuard {
        let key = ctx.workspace.clone();
        if self.is_active()
            && let Ok(mut entries) = self.lock()
        {
            entries.entry(key.clone()).or_default().running += 1;
        }
        CommandGuard {
            ledger: Arc::clone(self),
            key,
        }
    }

    /// After a command: measure the workspace again; a note for the result
    /// if it is now full or over quota (or could not be measured). Blocking.
    pub(crate) fn settle(&self, ctx: &ToolContext) -> Option<String> {
        if !self.is_active() {
            return None;
        }
        let keys = self.keys(ctx);
        let measured = self.gate(&keys.user).and_then(|gate| {
            let _walking = gate.lock().map_err(|_| unavailable())?;
            self.remeasure_user(&keys)
        });
        if let Err(e) = measured {
            return Some(e.message);
        }
        let entries = self.lock().ok()?;
        self.scopes(&keys).into_iter().find_map(|(scope, key, quota)| {
            let (usage, partial) = usage_of(&entries, key);
            let limit = full_or_over(quota, usage)?;
            Some(format!(
                "workspace quota exceeded: {} now {} {}; writes and commands are refused until files are deleted",
                scope.subject(),
                scope.holds(),
                describe(limit, usage, partial),
            ))
        })
    }

    /// Run `decide` on fresh enough figures: stale entries are measured
    /// first, and a refusal based on a figure older than the recheck
    /// interval is measured once more before it stands.
    fn decide<T>(
        &self,
        keys: &Keys,
        mut decide: impl FnMut(&mut HashMap<PathBuf, Entry>) -> Result<T, ToolError>,
    ) -> Result<T, ToolError> {
        self.refresh(keys, Freshness::MaxAge)?;
        let refused = {
            let mut entries = self.lock()?;
            match decide(&mut entries) {
                Err(e) if e.code == QUOTA_EXCEEDED => e,
                other => return other,
            }
        };
        if !self.refresh(keys, Freshness::Recheck)? {
            return Err(refused);
        }
        decide(&mut *self.lock()?)
    }

    /// Whether `growth` fits every scope.
    fn fits(
        &self,
        keys: &Keys,
        entries: &HashMap<PathBuf, Entry>,
        growth: Growth,
    ) -> Result<(), ToolError> {
        for (scope, key, quota) in self.scopes(keys) {
            let (usage, partial) = usage_of(entries, key);
            let too_many =
                |max: &u64, used: u64, more: i64| more > 0 && add_signed(used, more) > *max;
            if let Some(max) = quota
                .max_bytes
                .filter(|m| too_many(m, usage.bytes, growth.bytes))
            {
                let limit = Limit::Bytes(max);
                return Err(exceeded(scope, limit, usage, partial, Some(growth.bytes)));
            }
            if let Some(max) = quota
                .max_files
                .filter(|m| too_many(m, usage.files, growth.files))
            {
                let limit = Limit::Files(max);
                return Err(exceeded(scope, limit, usage, partial, Some(growth.files)));
            }
        }
        Ok(())
    }

    /// Measure the entries of `keys` that are stale by `freshness`; whether
    /// anything was measured.
    fn refresh(&self, keys: &Keys, freshness: Freshness) -> Result<bool, ToolError> {
        let max_age = match freshness {
            Freshness::MaxAge => self.max_age,
            Freshness::Recheck => self.max_age.min(RECHECK_BEFORE_REFUSING),
        };
        let stale = |entries: &HashMap<PathBuf, Entry>, key: &Path| {
            let now = Instant::now();
            entries
                .get(key)
                .and_then(|e| e.age(now))
                .is_none_or(|age| age > max_age)
        };
        let mut measured = false;
        if let Some(tenant) = &keys.tenant {
            let gate = self.gate(tenant)?;
            let _walking = gate.lock().map_err(|_| unavailable())?;
            // Checked with the gate held: a walk that just ended counts.
            let is_stale = stale(&*self.lock()?, tenant);
            if is_stale {
                self.remeasure_tenant(tenant, &keys.user)?;
                measured = true;
            }
        }
        let gate = self.gate(&keys.user)?;
        let _walking = gate.lock().map_err(|_| unavailable())?;
        let is_stale = stale(&*self.lock()?, &keys.user);
        if is_stale {
            self.remeasure_user(keys)?;
            measured = true;
        }
        Ok(measured)
    }

    /// The lock that one walk of `key` holds.
    fn gate(&self, key: &Path) -> Result<Arc<Mutex<()>>, ToolError> {
        let mut walks = self.walks.lock().map_err(|_| unavailable())?;
        Ok(Arc::clone(walks.entry(key.to_path_buf()).or_default()))
    }

    /// Walk the tenant's directory; also seeds the user's entry when the
    /// user's workspace is one of its top-level directories.
    fn remeasure_tenant(&self, tenant: &Path, user: &Path) -> Result<(), ToolError> {
        let snapshot = self.snapshot(&[tenant, user])?;
        let tree = walk(tenant, self.quotas.tenant.max_files)
            .map_err(|e| unmeasurable(Scope::Tenant, &e))?;
        let seed = match (user.parent(), user.file_name()) {
            (Some(parent), Some(name)) if parent == tenant && !tree.partial => {
                Some(share(&tree, name))
            }
            _ => None,
        };
        let mut entries = self.lock()?;
        store(&mut entries, tenant, &snapshot[0], tree.total, tree.partial);
        let running = entries.get(user).is_some_and(|e| e.running > 0);
        if let (Some(u), false) = (seed, running) {
            store(&mut entries, user, &snapshot[1], u, false);
        }
        Ok(())
    }

    /// Walk the user's workspace and carry the change into the tenant's figure.
    fn remeasure_user(&self, keys: &Keys) -> Result<(), ToolError> {
        let snapshot = self.snapshot(&[&keys.user])?;
        // Past either file quota the exact count no longer matters.
        let stop = match (self.quotas.user.max_files, self.quotas.tenant.max_files) {
            (Some(u), Some(t)) => Some(u.min(t)),
            (u, t) => u.or(t),
        };
        let tree = walk(&keys.user, stop).map_err(|e| unmeasurable(Scope::User, &e))?;
        let mut entries = self.lock()?;
        let (was_known, before) = entries
            .get(&keys.user)
            .map(|e| (e.known, e.base))
            .unwrap_or_default();
        store(
            &mut entries,
            &keys.user,
            &snapshot[0],
            tree.total,
            tree.partial,
        );
        let after = entries.get(&keys.user).map(|e| e.base).unwrap_or_default();
        // A figure the tenant's walk already included changed by the difference.
        if was_known && let Some(t) = keys.tenant.as_ref().and_then(|t| entries.get_mut(t)) {
            t.base.bytes = t
                .base
                .bytes
                .saturating_add(after.bytes)
                .saturating_sub(before.bytes);
            t.base.files = t
                .base
                .files
                .saturating_add(after.files)
                .saturating_sub(before.files);
        }
        Ok(())
    }

    fn snapshot(&self, keys: &[&Path]) -> Result<Vec<Snapshot>, ToolError> {
        let entries = self.lock()?;
        Ok(keys
            .iter()
            .map(|k| {
                entries.get(*k).map_or(Snapshot::default(), |e| Snapshot {
                    grown: e.grown,
                    changes: e.changes,
                })
            })
            .collect())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Freshness {
    /// Older than the ledger's max age.
    MaxAge,
    /// Older than the recheck interval (before a refusal stands).
    Recheck,
}

/// An entry's counters when a walk began.
#[derive(Default)]
struct Snapshot {
    grown: Usage,
    changes: u64,
}

/// Store a walk's result, adding what was committed while it walked.
fn store(
    entries: &mut HashMap<PathBuf, Entry>,
    key: &Path,
    before: &Snapshot,
    walked: Usage,
    partial: bool,
) {
    let e = entries.entry(key.to_path_buf()).or_default();
    e.base = Usage {
        bytes: walked
            .bytes
            .saturating_add(e.grown.bytes.saturating_sub(before.grown.bytes)),
        files: walked
            .files
            .saturating_add(e.grown.files.saturating_sub(before.grown.files)),
    };
    e.partial = partial;
    e.known = true;
    // A command that ended during the walk may have written after it passed.
    e.measured = (e.changes == before.changes).then(Instant::now);
}

fn walk(root: &Path, stop_after_files: Option<u64>) -> Result<Tree, MeasureError> {
    let mut last = MeasureError::Moved;
    for _ in 0..MEASURE_ATTEMPTS {
        match measure(root, stop_after_files) {
            Err(MeasureError::Moved) => last = MeasureError::Moved,
            other => return other,
        }
    }
    Err(last)
}

/// The limit a workspace is at (bytes: no byte left) or over (files: more
/// than allowed; at the file limit existing files may still be changed).
fn full_or_over(quota: WorkspaceQuota, usage: Usage) -> Option<Limit> {
    match (quota.max_bytes, quota.max_files) {
        (Some(max), _) if usage.bytes >= max => Some(Limit::Bytes(max)),
        (_, Some(max)) if usage.files > max => Some(Limit::Files(max)),
        _ => None,
    }
}

fn usage_of(entries: &HashMap<PathBuf, Entry>, key: &Path) -> (Usage, bool) {
    entries
        .get(key)
        .map(|e| (e.usage(), e.partial))
        .unwrap_or_default()
}

/// A write's reserved growth; given back on drop unless committed.
#[must_use = "dropping a reservation gives the growth back"]
pub(crate) struct Reservation<'l> {
    ledger: &'l QuotaLedger,
    keys: Vec<PathBuf>,
    growth: Growth,
}

impl Reservation<'_> {
    /// The write happened: the growth is now part of the usage.
    pub fn commit(mut self) {
        let keys = std::mem::take(&mut self.keys);
        if let Ok(mut entries) = self.ledger.lock() {
            for key in keys {
                let e = entries.entry(key).or_default();
                e.in_flight.bytes = e.in_flight.bytes.saturating_sub(self.growth.bytes);
                e.in_flight.files = e.in_flight.files.saturating_sub(self.growth.files);
                e.base.bytes = add_signed(e.base.bytes, self.growth.bytes);
                e.base.files = add_signed(e.base.files, self.growth.files);
                e.grown.bytes = e
                    .grown
                    .bytes
                    .saturating_add(u64::try_from(self.growth.bytes).unwrap_or(0));
                e.grown.files = e
                    .grown
                    .files
                    .saturating_add(u64::try_from(self.growth.files).unwrap_or(0));
            }
        }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.keys.is_empty() {
            return;
        }
        if let Ok(mut entries) = self.ledger.lock() {
            for key in &self.keys {
                if let Some(e) = entries.get_mut(key) {
                    e.in_flight.bytes = e.in_flight.bytes.saturating_sub(self.growth.bytes);
                    e.in_flight.files = e.in_flight.files.saturating_sub(self.growth.files);
                }
            }
        }
    }
}

/// A running command (see [`QuotaLedger::command_started`]); dropping it,
/// also when the command's future is dropped, makes the next check measure.
#[derive(Debug)]
pub(crate) struct CommandGuard {
    ledger: Arc<QuotaLedger>,
    key: PathBuf,
}

impl Drop for CommandGuard {
    fn drop(&mut self) {
        if !self.ledger.is_active() {
            return;
        }
        if let Ok(mut entries) = self.ledger.lock() {
            let e = entries.entry(self.key.clone()).or_default();
            e.running = e.running.saturating_sub(1);
            e.changes += 1;
            e.measured = None;
        }
    }
}
