//! The egress policy: domain rule layers (the process-wide
//! `egress.allow_domains`, a tool's own lists, a profile's allowlist — every
//! layer must pass) and the explicitly allowed origins that may be private
//! (a local Ollama or vLLM configured as a provider base URL).
//!
//! An explicitly allowed origin matches on scheme, host and port exactly
//! (`http://127.0.0.1:11434` does not allow `http://127.0.0.1:11435` nor
//! `https://127.0.0.1:11434`; `http://localhost:11434` does not allow
//! `http://127.0.0.1:11434`). It bypasses the address class rules, the
//! special-use name rules, the allowlists and the proxy's port list; deny
//! lists still apply to it. Everything else must be public. A host name
//! that is part of an explicit origin is reserved for it: the same name
//! with another scheme or port is refused (`host.explicit_only`), because
//! the pinning resolver accepts private answers for that name.
//!
//! An origin allowlist ([`EgressPolicy::with_origin_allowlist`], the
//! provider profile) narrows further: only those exact origins, public ones
//! by class, private ones only when also explicitly allowed.

use crate::classify::{self, Host, Target};
use crate::domain::DomainRules;
use crate::error::Refusal;
use crate::ip;
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

/// Scheme, host and port of an explicitly allowed origin.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Origin {
    pub scheme: String,
    pub host: Host,
    pub port: u16,
}

/// An explicit origin that is not `scheme://host[:port]`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{origin:?} is not an origin (scheme://host[:port]): {reason}")]
pub struct OriginError {
    pub origin: String,
    pub reason: String,
}

impl Origin {
    /// Parse `scheme://host[:port]` (a trailing path such as a provider base
    /// URL's `/v1` is ignored; userinfo and other tricks are refused).
    pub fn parse(s: &str) -> Result<Self, OriginError> {
        let t = classify::parse(s).map_err(|r| OriginError {
            origin: s.to_owned(),
            reason: r.reason.into_owned(),
        })?;
        Ok(Self {
            scheme: t.url.scheme().to_owned(),
            host: t.host,
            port: t.port,
        })
    }

    fn matches(&self, scheme: Option<&str>, host: &Host, port: u16) -> bool {
        scheme.is_none_or(|s| s == self.scheme) && self.host == *host && self.port == port
    }
}

/// How a target was admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Public by class (a public IP literal, or a name whose addresses are
    /// checked when resolved).
    Public,
    /// An explicitly allowed origin: its addresses are not classified.
    Explicit,
}

#[derive(Clone, Debug, Default)]
struct Inner {
    layers: Vec<DomainRules>,
    /// Origin allowlists (a profile's): a target must match one origin of
    /// every list.
    origin_layers: Vec<Vec<Origin>>,
    explicit: Vec<Origin>,
}

/// Domain rule layers plus explicit origins. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct EgressPolicy {
    inner: Arc<Inner>,
}

impl EgressPolicy {
    /// No domain lists, no explicit origins: every public target.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a layer of domain rules; a target must pass every layer.
    #[must_use]
    pub fn with_rules(mut self, rules: DomainRules) -> Self {
        if !rules.is_empty() {
            Arc::make_mut(&mut self.inner).layers.push(rules);
        }
        self
    }

    /// Add an origin allowlist: a target must match one of `origins`
    /// exactly (scheme, host, port). The provider profile uses this with
    /// the configured base URLs.
    #[must_use]
    pub fn with_origin_allowlist(mut self, origins: Vec<Origin>) -> Self {
        Arc::make_mut(&mut self.inner).origin_layers.push(origins);
        self
    }

    /// Allow one origin even when it is private (see the module docs).
    #[must_use]
    pub fn with_origin(mut self, origin: Origin) -> Self {
        Arc::make_mut(&mut self.inner).explicit.push(origin);
        self
    }

    /// The explicit origins.
    pub fn origins(&self) -> &[Origin] {
        &self.inner.explicit
    }

    /// Host names of explicit origins: the pinning resolver lets their
    /// answers be private.
    pub(crate) fn explicit_names(&self) -> HashSet<String> {
        self.inner
            .explicit
            .iter()
            .filter_map(|o| match &o.host {
                Host::Name(n) => Some(n.clone()),
                Host::Ip(_) => None,
            })
            .collect()
    }

    /// Whether `host:port` (with `scheme`, or any scheme for a proxy
    /// `CONNECT`) is an explicit origin.
    pub fn is_explicit(&self, scheme: Option<&str>, host: &Host, port: u16) -> bool {
        self.inner
            .explicit
            .iter()
            .any(|o| o.matches(scheme, host, port))
    }

    /// Everything that needs no DNS: address class or explicit origin,
    /// then the domain layers.
    pub fn check_target(&self, target: &Target) -> Result<Admission, Refusal> {
        self.check_host(Some(target.url.scheme()), &target.host, target.port)
    }

    /// [`Self::check_target`] for a host and port (`scheme` is `None` for
    /// a proxy `CONNECT`).
    pub fn check_host(
        &self,
        scheme: Option<&str>,
        host: &Host,
        port: u16,
    ) -> Result<Admission, Refusal> {
        if self.is_explicit(scheme, host, port) {
            // An explicit origin may be private (a local Ollama or vLLM),
            // never a cloud metadata service.
            if let Err(r) = classify::classify_host(host)
                && matches!(r.rule, "addr.metadata" | "host.metadata")
            {
                return Err(r);
            }
            // Deny lists still apply to an explicit origin.
            for layer in &self.inner.layers {
                if let Err(r) = layer.check(host)
                    && r.rule == "domain.denied"
                {
                    return Err(r);
                }
            }
            return Ok(Admission::Explicit);
        }
        if let Host::Name(name) = host
            && self.inner.explicit.iter().any(|o| o.host == *host)
        {
            // The pinning resolver lets this name's answers be private, so
            // the name is reserved for its explicit origins.
            return Err(Refusal::ssrf(
                "host.explicit_only",
                format!("{name} is allowed only as its configured origin (scheme and port)"),
            ));
        }
        classify::classify_host(host)?;
        for layer in &self.inner.layers {
            layer.check(host)?;
        }
        for origins in &self.inner.origin_layers {
            if !origins.iter().any(|o| o.matches(scheme, host, port)) {
                return Err(Refusal::denied(
                    "origin.not_allowed",
                    format!("{host}:{port} is not one of the configured origins"),
                ));
            }
        }
        Ok(Admission::Public)
    }
}

/// Check resolved answers for `name`: every one must be public. A mixed
/// answer (some public, some not) is refused whole, so a rebinding
/// attacker cannot slip a private address in next to a public one.
pub fn vet_answers(name: &str, answers: &[IpAddr]) -> Result<(), Refusal> {
    let mut public = 0;
    let mut first_blocked = None;
    for ip in answers {
        match ip::classify_ip(*ip) {
            Ok(()) => public += 1,
            Err(b) => {
                if first_blocked.is_none() {
                    first_blocked = Some((*ip, b));
                }
            }
        }
    }
    match first_blocked {
        None => Ok(()),
        Some((ip, b)) if public > 0 => Err(Refusal::ssrf(
            "dns.mixed",
            format!(
                "{name} resolves to public and non-public addresses ({ip} is {}); mixed answers are refused",
                b.what
            ),
        )),
        Some((ip, b)) => Err(classify::refuse_addr(name, ip, b)),
    }
}
