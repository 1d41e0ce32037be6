//! Domain lists: `egress.allow_domains` (the whole process) and a tool's own
//! `allow_domains` / `deny_domains` (`tools.web_fetch.*`).
//!
//! Pattern semantics:
//! - `example.com` matches exactly `example.com`, not `www.example.com`;
//! - `*.example.com` matches every subdomain (`a.example.com`,
//!   `a.b.example.com`) but not the apex `example.com` — list both to allow
//!   both;
//! - matching is case-insensitive on the IDNA ASCII (punycode) form with
//!   trailing dots removed: `BÜCHER.example.` and `xn--bcher-kva.example`
//!   are the same name, in a pattern and in a URL;
//! - IP literals are never matched by a pattern: with an allowlist, a URL
//!   whose host is an IP literal is refused (`domain.ip_literal`); a deny
//!   list does not name addresses (the address class rules do);
//! - deny wins over allow; an empty allowlist allows every name.

use crate::classify::{Host, normalize_name};
use crate::error::Refusal;
use std::fmt;
use std::str::FromStr;

/// One domain pattern: an exact name or `*.` and a suffix.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DomainPattern {
    /// Normalised name (IDNA ASCII, lowercase, no trailing dot).
    name: String,
    /// `*.name`: subdomains of `name`, not `name` itself.
    subdomains: bool,
}

/// A pattern that is not a domain or `*.domain`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{pattern:?} is not a domain pattern: {reason}")]
pub struct PatternError {
    pub pattern: String,
    pub reason: &'static str,
}

impl FromStr for DomainPattern {
    type Err = PatternError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| PatternError {
            pattern: s.to_owned(),
            reason,
        };
        let (subdomains, rest) = match s.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        if rest.contains(['*', '/', ':', '@', '%']) || rest.chars().any(char::is_whitespace) {
            return Err(err(
                "write a bare name (example.com) or a wildcard (*.example.com), nothing else",
            ));
        }
        let host = url::Host::parse(rest).map_err(|_| err("not a valid host name"))?;
        let name = match host {
            url::Host::Domain(d) => normalize_name(&d),
            url::Host::Ipv4(_) | url::Host::Ipv6(_) => {
                return Err(err("IP addresses are not domain patterns"));
            }
        };
        if name.is_empty() || name.split('.').any(str::is_empty) {
            return Err(err("empty label"));
        }
        Ok(Self { name, subdomains })
    }
}

impl fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.subdomains {
            f.write_str("*.")?;
        }
        f.write_str(&self.name)
    }
}

impl DomainPattern {
    /// Whether a normalised name (see [`normalize_name`]) matches.
    pub fn matches(&self, name: &str) -> bool {
        if self.subdomains {
            name.strip_suffix(self.name.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.'))
        } else {
            name == self.name
        }
    }
}

/// An allowlist and a denylist. Empty allow = every name is allowed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DomainRules {
    allow: Vec<DomainPattern>,
    deny: Vec<DomainPattern>,
    /// Names the refusal after the list (`egress.allow_domains`, ...).
    label: &'static str,
}

fn parse_all<S: AsRef<str>>(list: &[S]) -> Result<Vec<DomainPattern>, PatternError> {
    list.iter().map(|s| s.as_ref().parse()).collect()
}

impl DomainRules {
    /// Rules from configuration strings; `label` names the configuration
    /// (`egress.allow_domains`, `tools.web_fetch`) in refusals.
    pub fn new<S: AsRef<str>>(
        label: &'static str,
        allow: &[S],
        deny: &[S],
    ) -> Result<Self, PatternError> {
        Ok(Self {
            allow: parse_all(allow)?,
            deny: parse_all(deny)?,
            label,
        })
    }

    /// An allowlist only.
    pub fn allow_only<S: AsRef<str>>(
        label: &'static str,
        allow: &[S],
    ) -> Result<Self, PatternError> {
        Self::new::<S>(label, allow, &[])
    }

    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }

    /// Check a host. Deny wins; an IP literal passes only without an
    /// allowlist.
    pub fn check(&self, host: &Host) -> Result<(), Refusal> {
        match host {
            Host::Ip(ip) => {
                if self.allow.is_empty() {
                    Ok(())
                } else {
                    Err(Refusal::denied(
                        "domain.ip_literal",
                        format!(
                            "{ip} is an IP address and {} allows only listed domains",
                            self.label
                        ),
                    ))
                }
            }
            Host::Name(name) => {
                let name = normalize_name(name);
                if let Some(p) = self.deny.iter().find(|p| p.matches(&name)) {
                    return Err(Refusal::denied(
                        "domain.denied",
                        format!("{name} matches {p} in the deny list of {}", self.label),
                    ));
                }
                if !self.allow.is_empty() && !self.allow.iter().any(|p| p.matches(&name)) {
                    return Err(Refusal::denied(
                        "domain.not_allowed",
                        format!("{name} is not in the allowlist of {}", self.label),
                    ));
                }
                Ok(())
            }
        }
    }
}
