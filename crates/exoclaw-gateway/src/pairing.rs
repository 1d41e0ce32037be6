//! Pairing, shared by the HTTP API, the CLI and the channel gate: pairing
//! codes, device credentials, creating requests (capped per requester),
//! deciding them by code (once, with a brute-force lockout), issuing a
//! device credential once, and authenticating a presented credential.
//!
//! Codes and credentials are never stored, logged or audited: the store
//! keeps their SHA-256 digests. The lockout counts failed attempts in the
//! store (not in memory), so the CLI and every gateway instance on one
//! database see the same count.

use exoclaw_core::model::{
    Device, NewAuditEvent, NewDevice, NewPairingRequest, NewUser, PairingCreated, PairingDecision,
    PairingKind, PairingRequest, PairingStatus, Role,
};
use exoclaw_core::store::{AuditStore, PairingStore, StoreError, UserStore};
use exoclaw_core::{Secret, TenantId, UnixMillis, UserId};
use sha2::{Digest as _, Sha256};
use std::time::Duration;

/// Characters of a pairing code.
pub const CODE_LEN: usize = 8;
/// 32 symbols without the look-alikes `I`, `O`, `0`, `1`.
const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// Prefix of a device credential.
pub const TOKEN_PREFIX: &str = "exd_";
/// base64url characters of 32 bytes, unpadded.
const TOKEN_BODY_LEN: usize = 43;
/// Pending device requests per user (and channel requests per sender: 1).
pub const MAX_PENDING_PER_USER: u32 = 3;
/// Failed approvals (unknown or expired codes) that lock approving out ...
pub const MAX_FAILURES: usize = 5;
/// ... within this window, per actor and for the whole tenant.
pub const LOCKOUT_WINDOW: Duration = Duration::from_secs(15 * 60);
/// `last_seen_at` of a device is written at most this often.
const TOUCH_EVERY_MS: i64 = 60_000;

pub use exoclaw_core::now_ms;

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn random<const N: usize>() -> Result<[u8; N], StoreError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b)
        .map_err(|e| StoreError::Other(format!("the OS random number generator failed: {e}")))?;
    Ok(b)
}

/// A fresh pairing code: 8 symbols, each from one CSPRNG byte masked to its
/// low 5 bits. 256 is a multiple of 32, so every symbol is exactly equally
/// likely (no modulo bias): 40 bits per code.
pub fn new_code() -> Result<Secret, StoreError> {
    Ok(Secret::new(code_from_bytes(random::<CODE_LEN>()?)))
}

fn code_from_bytes(bytes: [u8; CODE_LEN]) -> String {
    bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 0x1f)]))
        .collect()
}

/// A code as typed by a person (any case, spaces or dashes between groups)
/// in canonical form; `None` when it cannot be a code.
pub fn normalize_code(input: &str) -> Option<String> {
    let code: String = input
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == CODE_LEN && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

/// The digest a code is stored and looked up by.
pub fn code_hash(code: &str) -> String {
    sha256_hex(code)
}

/// A fresh device credential: `exd_` + base64url (unpadded) of 32 CSPRNG
/// bytes.
pub fn new_device_token() -> Result<Secret, StoreError> {
    Ok(Secret::new(format!(
        "{TOKEN_PREFIX}{}",
        base64url(&random::<32>()?)
    )))
}

/// The digest a device credential is stored and looked up by.
pub fn token_hash(token: &str) -> String {
    sha256_hex(token)
}

fn base64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let sextets = [n >> 18, n >> 12, n >> 6, n];
        for s in sextets.iter().take(chunk.len() + 1) {
            out.push(char::from(A[(s & 0x3f) as usize]));
        }
    }
    out
}

pub fn is_well_formed_token(presented: &str) -> bool {
    presented.strip_prefix(TOKEN_PREFIX).is_some_and(|body| {
        body.len() == TOKEN_BODY_LEN
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// The device a presented bearer credential belongs to: `None` when it is
/// malformed, unknown, revoked, or its user is gone or disabled (the caller
/// answers 401 `auth.unauthorized`, and the browser pairs again). Touches
/// `last_seen_at` at most once a minute.
pub async fn authenticate_device(
    store: &(impl PairingStore + UserStore + AuditStore + ?Sized),
    presented: &str,
) -> Result<Option<(Device, exoclaw_core::model::User)>, StoreError> {
    if !is_well_formed_token(presented) {
        return Ok(None);
    }
    authenticate_device_hash(store, &token_hash(presented)).await
}

/// [`authenticate_device`] by the credential's digest ([`token_hash`]), as a
/// dashboard session re-checks the device it was exchanged for.
pub async fn authenticate_device_hash(
    store: &(impl PairingStore + UserStore + AuditStore + ?Sized),
    hash: &str,
) -> Result<Option<(Device, exoclaw_core::model::User)>, StoreError> {
    let Some(device) = store.find_device_by_token_hash(hash).await? else {
        return Ok(None);
    };
    if device.revoked_at.is_some() {
        return Ok(None);
    }
    let user = match store.get_user(&device.tenant_id, &device.user_id).await? {
        Some(u) if !u.disabled => u,
        _ => return Ok(None),
    };
    let now = now_ms();
    if device
        .last_seen_at
        .is_none_or(|seen| now.saturating_sub(seen) >= TOUCH_EVERY_MS)
        && let Err(e) = store.touch_device(&device.tenant_id, &device.id, now).await
    {
        tracing::warn!(error = %e, device = %device.id, "cannot record device use");
    }
    Ok(Some((device, user)))
}

/// A new request and its code (the only time the code exists in clear).
pub enum Requested {
    Created {
        request: PairingRequest,
        code: Secret,
    },
    /// The requester has the maximum of pending requests.
    TooManyPending { oldest: PairingRequest },
}

/// Who asks to be paired.
pub enum Requester<'a> {
    Device {
        user: &'a UserId,
    },
    Channel {
        channel: &'a str,
        sender_id: &'a str,
    },
}

/// Create a pending request with a fresh code, valid for `ttl`.
pub async fn request(
    store: &(impl PairingStore + UserStore + AuditStore + ?Sized),
    tenant: &TenantId,
    who: &Requester<'_>,
    max_pending: u32,
    ttl: Duration,
) -> Result<Requested, StoreError> {
    let (kind, user_id, channel, sender_id) = match who {
        Requester::Device { user } => (PairingKind::Device, Some((*user).clone()), None, None),
        Requester::Channel { channel, sender_id } => (
            PairingKind::Channel,
            None,
            Some((*channel).to_owned()),
            Some((*sender_id).to_owned()),
        ),
    };
    // A code collision (40 bits) is astronomically rare; draw again.
    let mut attempts = 0;
    loop {
        attempts += 1;
        let code = new_code()?;
        let now = now_ms();
        let new = NewPairingRequest {
            tenant_id: tenant.clone(),
            kind,
            user_id: user_id.clone(),
            channel: channel.clone(),
            sender_id: sender_id.clone(),
            code_hash: code_hash(code.expose()),
            expires_at: now.saturating_add(millis(ttl)),
        };
        match store.create_pairing_request(&new, max_pending, now).await {
            Ok(PairingCreated::Created(request)) => {
                tracing::info!(
                    pairing = %request.id,
                    kind = kind.as_str(),
                    "pairing requested"
                );
                return Ok(Requested::Created { request, code });
            }
            Ok(PairingCreated::TooManyPending { oldest }) => {
                return Ok(Requested::TooManyPending { oldest });
            }
            Err(StoreError::Conflict(_)) if attempts < 3 => {}
            Err(e) => return Err(e),
        }
    }
}

/// What an operator does with a code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Approve,
    Deny,
}

impl Verdict {
    fn action(self) -> &'static str {
        match self {
            Verdict::Approve => "approve",
            Verdict::Deny => "deny",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PairingError {
    /// Unknown, expired or malformed: counted towards the lockout.
    #[error("no pending pairing request has this code (unknown or expired)")]
    InvalidCode,
    #[error("this pairing request is already {}", .0.as_str())]
    AlreadyDecided(PairingStatus),
    #[error("too many failed pairing approvals; retry in {}s", .retry_after.as_secs())]
    Locked { retry_after: Duration },
    #[error("user {0} does not exist or is disabled")]
    UserUnavailable(UserId),
    /// A browser asked for a name that is one user's name and another's id.
    #[error(
        "{0:?} is the name of one user and the id of another; ask the browser to pair with the id"
    )]
    UserAmbiguous(String),
    /// The paired user's role is above the approver's.
    #[error("a {approver} cannot approve a credential with the role {paired}")]
    Forbidden { approver: Role, paired: Role },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `Some(wait)` while `actor` (or the tenant as a whole) has
/// [`MAX_FAILURES`] failures inside [`LOCKOUT_WINDOW`].
pub async fn locked_for(
    store: &(impl PairingStore + UserStore + AuditStore + ?Sized),
    tenant: &TenantId,
    actor: &str,
    now: UnixMillis,
) -> Result<Option<Duration>, StoreError> {
    let window = millis(LOCKOUT_WINDOW);
    let all = store
        .pairing_failures(tenant, now.saturating_sub(window))
        .await?;
    let mine: Vec<UnixMillis> = all
        .iter()
        .filter(|f| f.actor == actor)
        .map(|f| f.at)
        .collect();
    let every: Vec<UnixMillis> = all.iter().map(|f| f.at).collect();
    // The lock lifts once fewer than MAX_FAILURES remain in the window, i.e.
    // when the (n - MAX_FAILURES)-th oldest leaves it.
    let lifts = |ats: &[UnixMillis]| {
        (ats.len() >= MAX_FAILURES)
            .then(|| ats.get(ats.len() - MAX_FAILURES).map(|at| at + window))
            .flatten()
    };
    Ok(lifts(&mine)
        .into_iter()
        .chain(lifts(&every))
        .max()
        .map(|until| {
            Duration::from_millis(u64::try_from(until.saturating_sub(now)).unwrap_or(0))
                .max(Duration::from_secs(1))
        }))
}

/// Who decides a pairing request: the name audited as the actor and the
/// rank they hold. Approving issues a credential of the paired user, so the
/// rule is the one for minting a key: nobody approves a credential above
/// their own role, and owners' devices are approved only by an owner.
#[derive(Clone, Copy, Debug)]
pub struct Approver<'a> {
    pub actor: &'a str,
    pub role: Role,
    /// `EXOCLAW_OWNER_IDS`, for the paired user's effective role.
    pub owner_ids: &'a [String],
}

impl<'a> Approver<'a> {
    /// An owner, such as the operator at the CLI (who holds the data dir).
    pub fn owner(actor: &'a str, owner_ids: &'a [String]) -> Self {
        Self {
            actor,
            role: Role::Owner,
            owner_ids,
        }
    }
}

/// Approve or deny the pending request with `code`, once. Approving a device
/// request needs its user to exist and be enabled; approving a channel
/// request creates the user `<channel>:<sender_id>` (role `user`) if needed
/// and maps the sender to it. Either way the paired user's effective role
/// must not be above the approver's ([`Approver`]). Audited; failures (never
/// the code) too.
pub async fn decide(
    store: &(impl PairingStore + UserStore + AuditStore + ?Sized),
    tenant: &TenantId,
    code: &str,
    verdict: Verdict,
    approver: &Approver<'_>,
    request_id: Option<String>,
) -> Result<PairingRequest, PairingError> {
    let actor = approver.actor;
    let now = now_ms();
    if let Some(retry_after) = locked_for(store, tenant, actor, now).await? {
        tracing::warn!(
            event = "security.pairing_bruteforce",
            actor,
            retry_after_sec = retry_after.as_secs(),
            "pairing approvals are locked out after repeated failures"
        );
        return Err(PairingError::Locked { retry_after });
    }
    let fail = || async { failed(store, tenant, actor, verdict, request_id.clone(), now).await };
    let Some(code) = normalize_code(code) else {
        return Err(fail().await);
    };
    let Some(found) = store
        .find_pairing_request_by_code(tenant, &code_hash(&code))
        .await?
    else {
        return Err(fail().await);
    };
    match found.status_at(now) {
        PairingStatus::Pending => {}
        PairingStatus::Expired => return Err(fail().await),
        other => return Err(PairingError::AlreadyDecided(other)),
    }
    let decision = match verdict {
        Verdict::Deny => PairingDecision::Deny,
        Verdict::Approve => PairingDecision::Approve {
            user: approving_user(store, tenant, &found, approver).await?,
        },
    };
    let decided = match store
        .decide_pairing_request(tenant, &found.id, &decision, actor, now)
        .await
    {
        Ok(r) => r,
        Err(StoreError::Conflict(_)) => {
            let status = store
                .get_pairing_request(tenant, &found.id)
                .await?
                .map_or(PairingStatus::Expired, |r| r.status_at(now));
            if status == PairingStatus::Expired {
                return Err(fail().await);
            }
            return Err(PairingError::AlreadyDecided(status));
        }
        Err(StoreError::NotFound) => return Err(fail().await),
        Err(e) => return Err(e.into()),
    };
    audit(
        store,
        NewAuditEvent {
            tenant_id: tenant.clone(),
            actor: actor.to_owned(),
            action: format!("pairing.{}", verdict.action()),
            resource: format!("pairing:{}", decided.kind.as_str()),
            decision: match verdict {
                Verdict::Approve => "allow",
                Verdict::Deny => "deny",
            }
            .to_owned(),
            reason: String::new(),
            request_id,
            agent_id: None,
            session_id: None,
            detail: serde_json::json!({
                "kind": decided.kind.as_str(),
                "user_id": decided.user_id,
                "channel": decided.channel,
                "sender_id": decided.sender_id,
            }),
        },
    )
    .await;
    tracing::info!(
        kind = decided.kind.as_str(),
        decision = verdict.action(),
        by = actor,
        "pairing decided"
    );
    Ok(decided)
}

/// The user an approval pairs to (see [`decide`]).
async fn approving_user(
    store: &(impl PairingStore + UserStore + AuditStore + ?Sized),
    tenant: &TenantId,
    request: &PairingRequest,
    approver: &Approver<'_>,
) -> Result<UserId, PairingError> {
    let outranks = |u: &exoclaw_core::model::User| {
        let role = crate::access::effective_role(approver.owner_ids, u);
        if role < approver.role {
            tracing::warn!(
                event = "security.forbidden",
                actor = approver.actor,
                role = %approver.role,
                paired_role = %role,
                "refused approving a pairing above the approver's role"
            );
            Err(PairingError::Forbidden {
                approver: approver.role,
                paired: role,
            })
        } else {
            Ok(())
        }
    };
    match (request.kind, &request.user_id) {
        (PairingKind::Device, Some(user)) => {
            match resolve_user(store, tenant, user.as_str()).await? {
                Some(u) if !u.disabled => {
                    outranks(&u)?;
                    Ok(u.id)
                }
                _ => Err(PairingError::UserUnavailable(user.clone())),
            }
        }
        (PairingKind::Channel, _) => {
            let (Some(channel), Some(sender)) = (&request.channel, &request.sender_id) else {
                return Err(
                    StoreError::Corrupt("a channel request without its sender".into()).into(),
                );
            };
            let user = channel_user(store, tenant, channel, sender).await?;
            match store.get_user(tenant, &user).await? {
                Some(u) if !u.disabled => {
                    outranks(&u)?;
                    Ok(u.id)
                }
                _ => Err(PairingError::UserUnavailable(user)),
            }
        }
        (PairingKind::Device, None) => {
            Err(StoreError::Corrupt("a device request without its user".into()).into())
        }
    }
}

/// The user a browser asked for: `handle` is a user's id or name in the
/// tenant (people know their names); `UserAmbiguous` when it is one user's
/// id and another's name. Resolved when an admin approves, so a request
/// reveals nothing about which users exist.
pub async fn resolve_user(
    store: &(impl UserStore + ?Sized),
    tenant: &TenantId,
    handle: &str,
) -> Result<Option<exoclaw_core::model::User>, PairingError> {
    let by_id = store.get_user(tenant, &UserId::new(handle)).await?;
    let by_name = store.find_user_by_name(tenant, handle).await?;
    match (by_id, by_name) {
        (Some(a), Some(b)) if a.id != b.id => Err(PairingError::UserAmbiguous(handle.to_owned())),
        (Some(u), _) | (None, Some(u)) => Ok(Some(u)),
        (None, None) => Ok(None),
    }
}

/// The user `<channel>:<sender_id>` (role `user`), created if needed (safe
/// under races).
pub async fn channel_user(
    store: &(impl PairingStore + UserStore + AuditStore + ?Sized),
    tenant: &TenantId,
    channel: &str,
    sender_id: &str,
) -> Result<UserId, StoreError> {
    let name = format!("{channel}:{sender_id}");
    if let Some(u) = store.find_user_by_name(tenant, &name).await? {
        return Ok(u.id);
    }
    let new = NewUser {
        name: name.clone(),
        role: Role::User,
    };
    match store.create_user(tenant, &new).await {
        Ok(u) => Ok(u.id),
        Err(StoreError::Conflict(_)) => store
            .find_user_by_name(tenant, &name)
            .await?
            .map(|u| u.id)
            .ok_or(StoreError::NotFound),
        Err(e) => Err(e),
    }
}

/// Count, audit and (at the threshold) log a failed attempt.
async fn failed(
    store: &(impl PairingStore + UserStore + AuditStore + ?Sized),
    tenant: &TenantId,
    actor: &str,
    verdict: Verdict,
    request_id: Option<String>,
    now: UnixMillis,
) -> PairingError {
    if let Err(e) = store.record_pairing_failure(tenant, actor, now).await {
        tracing::error!(error = %e, "cannot record a failed pairing attempt");
        return e.into();
    }
    audit(
        store,
        NewAuditEvent {
            tenant_id: tenant.clone(),
            actor: actor.to_owned(),
            action: format!("pairing.{}_failed", verdict.action()),
            resource: "pairing".to_owned(),
            decision: "deny".to_owned(),
            reason: "unknown or expired code".to_owned(),
            request_id,
            agent_id: None,
            session_id: None,
            detail: serde_json::json!({}),
        },
    )
    .await;
    tracing::info!(
        event = "security.pairing_failed",
        actor,
        "pairing code unknown or expired"
    );
    if let Ok(Some(wait)) = locked_for(store, tenant, actor, now).await {
        tracing::warn!(
            event = "security.pairing_bruteforce",
            actor,
            retry_after_sec = wait.as_secs(),
            "pairing approvals are now locked out after repeated failures"
        );
    }
    PairingError::InvalidCode
}

async fn audit(
    store: &(impl PairingStore + UserStore + AuditStore + ?Sized),
    event: NewAuditEvent,
) {
    crate::audit::record(store, &event).await;
}

/// Revoke a device (audited); its browser falls back to pairing.
/// `NotFound` for another tenant's or an unknown id, `Conflict` if revoked.
pub async fn revoke(
    store: &(impl PairingStore + UserStore + AuditStore + ?Sized),
    tenant: &TenantId,
    id: &str,
    actor: &str,
    request_id: Option<String>,
) -> Result<Device, StoreError> {
    let device = store.revoke_device(tenant, id, now_ms()).await?;
    audit(
        store,
        NewAuditEvent {
            tenant_id: tenant.clone(),
            actor: actor.to_owned(),
            action: "pairing.revoke".to_owned(),
            resource: format!("device:{id}"),
            decision: "allow".to_owned(),
            reason: String::new(),
            request_id,
            agent_id: None,
            session_id: None,
            detail: serde_json::json!({"user_id": device.user_id}),
        },
    )
    .await;
    tracing::info!(device = id, by = actor, "device revoked");
    Ok(device)
}

/// What polling a device request answers.
pub enum Poll {
    Pending {
        expires_at: UnixMillis,
        /// The user the request is for, as the browser named it (an id or
        /// a name).
        user: String,
    },
    /// Approved just now: the credential, handed out this once.
    Approved {
        token: Secret,
        device: Device,
    },
    Issued,
    Denied,
    Expired,
}

/// Poll a device request; the first poll after approval issues the
/// credential (once, also under concurrent polls). `None`: no such device
/// request in the tenant.
pub async fn poll(
    store: &(impl PairingStore + UserStore + AuditStore + ?Sized),
    tenant: &TenantId,
    request_id: &str,
    label: &str,
) -> Result<Option<Poll>, StoreError> {
    let Some(r) = store.get_pairing_request(tenant, request_id).await? else {
        return Ok(None);
    };
    if r.kind != PairingKind::Device {
        return Ok(None);
    }
    let now = now_ms();
    Ok(Some(match r.status_at(now) {
        PairingStatus::Pending => Poll::Pending {
            expires_at: r.expires_at,
            user: r
                .user_id
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        },
        PairingStatus::Approved => {
            let Some(user) = r.user_id.clone() else {
                return Err(StoreError::Corrupt(
                    "a device request without its user".into(),
                ));
            };
            let token = new_device_token()?;
            let new = NewDevice {
                user_id: user,
                token_hash: token_hash(token.expose()),
                label: label.to_owned(),
            };
            match store.issue_device(tenant, &r.id, &new, now).await? {
                Some(device) => {
                    tracing::info!(device = %device.id, "device paired");
                    Poll::Approved { token, device }
                }
                None => Poll::Issued,
            }
        }
        PairingStatus::Issued => Poll::Issued,
        PairingStatus::Denied => Poll::Denied,
        PairingStatus::Expired => Poll::Expired,
    }))
}

#[cfg(test)]
mod tests;
