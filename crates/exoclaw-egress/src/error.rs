//! What a refused or failed outbound call reports: a [`Refusal`] (a policy
//! decision with a stable code and the rule that fired) or an
//! [`EgressError`] (refusal, size cap, redirect limit, timeout, transport).

use std::borrow::Cow;

/// Which control refused: the address class (SSRF) or the domain policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RefusalKind {
    /// `security.ssrf_blocked`: the URL is malformed or tricky, or the host
    /// (by name, literal or resolved address) is not a public address.
    SsrfBlocked,
    /// `security.egress_denied`: the domain lists, the port list or the
    /// redirect rules refuse an otherwise public target.
    EgressDenied,
}

impl RefusalKind {
    /// The stable machine code.
    pub fn code(self) -> &'static str {
        match self {
            Self::SsrfBlocked => "security.ssrf_blocked",
            Self::EgressDenied => "security.egress_denied",
        }
    }
}

/// A policy decision against an outbound target. `rule` is stable
/// (`addr.loopback`, `host.metadata`, `url.userinfo`, `domain.not_allowed`,
/// ...); `reason` is for people and names the host, never the whole URL
/// (whose query may carry a secret).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {reason} (rule {rule})", kind.code())]
pub struct Refusal {
    pub kind: RefusalKind,
    pub rule: &'static str,
    pub reason: Cow<'static, str>,
}

impl Refusal {
    pub(crate) fn ssrf(rule: &'static str, reason: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind: RefusalKind::SsrfBlocked,
            rule,
            reason: reason.into(),
        }
    }

    pub(crate) fn denied(rule: &'static str, reason: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind: RefusalKind::EgressDenied,
            rule,
            reason: reason.into(),
        }
    }

    /// `security.ssrf_blocked` or `security.egress_denied`.
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }
}

/// A failed outbound call.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    /// The policy refused the target (or a redirect hop); no connection was
    /// made to it.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The body is larger than the cap; reading stopped at the cap.
    #[error("egress.too_large: the response is larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// More redirects than allowed.
    #[error("egress.too_many_redirects: more than {max} redirects")]
    TooManyRedirects { max: u8 },
    /// The connect or total timeout passed.
    #[error("egress.timeout: the request timed out")]
    Timeout,
    /// Name resolution, connection, TLS or protocol failure.
    #[error("egress.unavailable: {0}")]
    Unavailable(String),
}

impl EgressError {
    /// The stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Refused(r) => r.code(),
            Self::TooLarge { .. } => "egress.too_large",
            Self::TooManyRedirects { .. } => "egress.too_many_redirects",
            Self::Timeout => "egress.timeout",
            Self::Unavailable(_) => "egress.unavailable",
        }
    }

    /// The refusal, when the policy refused.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Self::Refused(r) => Some(r),
            _ => None,
        }
    }

    /// Classify a reqwest error. A refusal raised inside the pinning
    /// resolver travels as the error's source; it is recovered here so a
    /// rebinding answer reads as `security.ssrf_blocked`, not as a DNS
    /// failure.
    pub fn from_reqwest(e: &reqwest::Error) -> Self {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(s) = source {
            if let Some(r) = s.downcast_ref::<Refusal>() {
                return Self::Refused(r.clone());
            }
            source = s.source();
        }
        if e.is_timeout() {
            return Self::Timeout;
        }
        let mut detail = String::from(if e.is_connect() {
            "cannot connect"
        } else {
            "request failed"
        });
        // The innermost cause says what happened (refused, reset, DNS, TLS).
        let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
        let mut last = None;
        while let Some(c) = cause {
            last = Some(c);
            cause = c.source();
        }
        if let Some(c) = last {
            detail.push_str(": ");
            detail.push_str(&c.to_string());
        }
        Self::Unavailable(detail)
    }
}
