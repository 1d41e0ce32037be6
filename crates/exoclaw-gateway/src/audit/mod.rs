//! The binary's one way into the audit log: [`record`] appends an event and,
//! when it is alert-worthy (a `deny` decision or a `security.*` action),
//! also logs it at warn level as `security.*`, so alerting can key on the
//! log alone. [`Alerting`] gives the tool registry (which only knows the
//! `AuditStore` port) the same behaviour. [`AuthSeen`] keeps successful
//! HTTP authentications to one audit event per credential per hour.

use async_trait::async_trait;
use exoclaw_core::model::{AuditEvent, AuditFilter, AuditVerify, NewAuditEvent};
use exoclaw_core::store::{AuditStore, StoreResult};
use exoclaw_core::{TenantId, UnixMillis};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod bundle;

/// The `event` field of an alert's log line: the action when it is a
/// `security.*` one, else a `security.*` reason (a tool refused with
/// `security.ssrf_blocked`), else `security.` and the action with `_` for
/// `.` (`auth.failure` -> `security.auth_failure`).
pub fn alert_name(event: &NewAuditEvent) -> String {
    if event.action.starts_with("security.") {
        event.action.clone()
    } else if event.reason.starts_with("security.") {
        event.reason.clone()
    } else {
        format!("security.{}", event.action.replace('.', "_"))
    }
}

/// Logs an alert-worthy event at warn level (no detail: it is for the log
/// only what the audit row says, and the row never holds secrets).
fn warn_if_alert(event: &NewAuditEvent) {
    if !event.is_alert() {
        return;
    }
    tracing::warn!(
        event = %alert_name(event),
        action = %event.action,
        actor = %event.actor,
        tenant = %event.tenant_id,
        resource = %event.resource,
        decision = %event.decision,
        reason = %event.reason,
        request_id = event.request_id.as_deref(),
        agent = event.agent_id.as_ref().map(|a| a.as_str()),
        session = event.session_id.as_ref().map(|s| s.as_str()),
        "security event: {} {}",
        event.action,
        event.decision
    );
}

/// Appends `event` (warning first if it is alert-worthy). A failed append
/// is logged, never fatal: the action it records has already happened.
pub async fn record<S: AuditStore + ?Sized>(
    store: &S,
    event: &NewAuditEvent,
) -> Option<AuditEvent> {
    warn_if_alert(event);
    match store.append_audit(event).await {
        Ok(e) => Some(e),
        Err(e) => {
            tracing::error!(error = %e, action = %event.action, "cannot write the audit event");
            None
        }
    }
}

/// Appends an event whose warn line its source already wrote (the egress
/// proxy logs every refusal as `security.*` itself).
pub async fn record_logged<S: AuditStore + ?Sized>(store: &S, event: &NewAuditEvent) {
    if let Err(e) = store.append_audit(event).await {
        tracing::error!(error = %e, action = %event.action, "cannot write the audit event");
    }
}

/// At most `max` bytes of `s` (on a character boundary): audit fields that
/// hold a client's text are bounded.
pub fn bounded(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Audits the egress proxy's refusals (`security.ssrf_blocked`,
/// `security.egress_denied`). The proxy serves sandboxed commands over one
/// socket, so the tenant is the default one and agent and session are not
/// known here; the tool call that ran the command has its own event.
pub struct EgressRefusals(pub Arc<dyn AuditStore>);

#[async_trait]
impl exoclaw_egress::RefusalSink for EgressRefusals {
    async fn refused(&self, client: &str, dest: &str, refusal: &exoclaw_egress::Refusal) {
        let mut event = NewAuditEvent::new(
            TenantId::new(exoclaw_core::DEFAULT_TENANT),
            "sandbox",
            refusal.code(),
            format!("egress:{}", bounded(dest, 255)),
            "deny",
        );
        event.reason = bounded(&refusal.reason, 500).to_owned();
        event.detail = serde_json::json!({"rule": refusal.rule, "client": bounded(client, 100)});
        record_logged(self.0.as_ref(), &event).await;
    }
}

/// An `AuditStore` that warns like [`record`] on every append (for the tool
/// registry, which lives in a crate that cannot see this module).
pub struct Alerting(pub Arc<dyn AuditStore>);

#[async_trait]
impl AuditStore for Alerting {
    async fn append_audit(&self, event: &NewAuditEvent) -> StoreResult<AuditEvent> {
        warn_if_alert(event);
        self.0.append_audit(event).await
    }

    async fn list_audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEvent>> {
        self.0.list_audit(filter).await
    }

    async fn verify_audit(&self, tenant: Option<&TenantId>) -> StoreResult<AuditVerify> {
        self.0.verify_audit(tenant).await
    }
}

/// How long one credential's successful authentication is not audited again.
pub const AUTH_SUCCESS_EVERY: Duration = Duration::from_secs(3600);

/// Credentials (token digests) whose success was audited recently, so that
/// a busy gateway writes one `auth.success` row per credential per hour
/// rather than one per request. In memory only: a restart audits each
/// credential's next use again.
#[derive(Default)]
pub struct AuthSeen {
    seen: Mutex<HashMap<[u8; 32], Instant>>,
}

impl AuthSeen {
    /// Whether this success should be audited (and remember that it was).
    pub fn should_record(&self, credential: &[u8; 32]) -> bool {
        self.should_record_at(credential, Instant::now())
    }

    fn should_record_at(&self, credential: &[u8; 32], now: Instant) -> bool {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Only valid credentials get here, so the map stays tiny; forget old
        // entries anyway.
        seen.retain(|_, at| now.saturating_duration_since(*at) < AUTH_SUCCESS_EVERY);
        if seen.contains_key(credential) {
            return false;
        }
        seen.insert(*credential, now);
        true
    }
}

/// A short, non-reversible name for a credential in audit rows: the first
/// 12 hex digits of its SHA-256 (the full digest is what the store holds).
pub fn credential_id(digest: &[u8; 32]) -> String {
    hex::encode(&digest[..6])
}

/// A point in time for `--since`/`since=`: a duration back from `now`
/// (`90s`, `30m`, `2h`, `7d`), a date (`2026-05-01`, midnight UTC) or a UTC
/// date-time (`2026-05-01T12:00:00Z`, seconds and `Z` optional), or Unix
/// milliseconds (13 digits or more).
pub fn parse_time(s: &str, now: UnixMillis) -> Result<UnixMillis, String> {
    let s = s.trim();
    let bad = || {
        format!(
            "{s:?} is not a time: use a duration back from now (30m, 2h, 7d), a date \
             (2026-05-01), a UTC date-time (2026-05-01T12:00:00Z) or Unix milliseconds"
        )
    };
    if s.len() >= 13 && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map_err(|_| bad());
    }
    if let Some(unit) = s.chars().last().filter(|c| "smhd".contains(*c)) {
        let num = &s[..s.len() - 1];
        if !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit()) {
            let n: i64 = num.parse().map_err(|_| bad())?;
            let secs = match unit {
                's' => n,
                'm' => n.saturating_mul(60),
                'h' => n.saturating_mul(3600),
                _ => n.saturating_mul(86_400),
            };
            return Ok(now.saturating_sub(secs.saturating_mul(1000)));
        }
    }
    let (date, time) = s.split_once(['T', ' ']).unwrap_or((s, ""));
    let mut d = date.splitn(3, '-').map(str::parse::<u32>);
    let (Some(Ok(y)), Some(Ok(m)), Some(Ok(day))) = (d.next(), d.next(), d.next()) else {
        return Err(bad());
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || !(1970..=9999).contains(&y) {
        return Err(bad());
    }
    let time = time.strip_suffix(['Z', 'z']).unwrap_or(time);
    let mut secs_of_day = 0i64;
    if !time.is_empty() {
        let mut parts = time.split(':');
        let mut next = |max: i64| -> Result<i64, String> {
            match parts.next() {
                None => Ok(0),
                Some(p) => p
                    .parse::<i64>()
                    .ok()
                    .filter(|v| (0..=max).contains(v))
                    .ok_or_else(bad),
            }
        };
        let (h, mi, se) = (next(23)?, next(59)?, next(60)?);
        if parts.next().is_some() {
            return Err(bad());
        }
        secs_of_day = h * 3600 + mi * 60 + se;
    }
    let days = exoclaw_providers::calendar::days_from_civil(i64::from(y), m, day);
    Ok((days * 86_400 + secs_of_day) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(action: &str, decision: &str, reason: &str) -> NewAuditEvent {
        let mut e = NewAuditEvent::new(TenantId::new("t"), "cli", action, "r", decision);
        e.reason = reason.to_owned();
        e
    }

    #[test]
    fn alert_names() {
        assert_eq!(
            alert_name(&ev("auth.failure", "deny", "invalid")),
            "security.auth_failure"
        );
        assert_eq!(
            alert_name(&ev("tool.call", "deny", "security.ssrf_blocked")),
            "security.ssrf_blocked"
        );
        assert_eq!(
            alert_name(&ev("security.egress_denied", "deny", "")),
            "security.egress_denied"
        );
        assert!(ev("security.x", "info", "").is_alert());
        assert!(ev("approval.denied", "deny", "").is_alert());
        assert!(!ev("secret.put", "allow", "").is_alert());
    }

    #[test]
    fn times() {
        let now = 1_700_000_000_000;
        assert_eq!(parse_time("2h", now).unwrap(), now - 7_200_000);
        assert_eq!(parse_time("7d", now).unwrap(), now - 7 * 86_400_000);
        assert_eq!(parse_time("1970-01-02", now).unwrap(), 86_400_000);
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z", now).unwrap(),
            1_700_000_000_000
        );
        assert_eq!(
            parse_time("2023-11-14T22:13", now).unwrap(),
            1_699_999_980_000
        );
        assert_eq!(parse_time("1700000000000", now).unwrap(), now);
        for bad in [
            "",
            "h",
            "2x",
            "yesterday",
            "2023-13-01",
            "2023-11-14T25:00Z",
            "1:2:3:4",
        ] {
            assert!(parse_time(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_credential_is_recorded_once_an_hour() {
        let seen = AuthSeen::default();
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let t0 = Instant::now();
        assert!(seen.should_record_at(&a, t0));
        assert!(!seen.should_record_at(&a, t0 + Duration::from_secs(10)));
        assert!(seen.should_record_at(&b, t0 + Duration::from_secs(10)));
        assert!(!seen.should_record_at(&a, t0 + Duration::from_secs(3599)));
        assert!(seen.should_record_at(&a, t0 + Duration::from_secs(3601)));
    }
}
