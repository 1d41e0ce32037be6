//! Name resolution and DNS pinning. A [`Resolver`] answers addresses for a
//! name; the [`SystemResolver`] asks the operating system (getaddrinfo on a
//! blocking thread via `tokio::net::lookup_host`), so `/etc/hosts`,
//! `nsswitch.conf` and `resolv.conf` apply exactly as for every other
//! program on the host — a pure-Rust DNS client would have to re-implement
//! that and would drift from it. Tests inject their own resolver to play
//! rebinding and mixed answers.
//!
//! The [`Pinner`] wraps a resolver: it resolves once, classifies every
//! answer (all must be public; a mixed answer is refused whole) and hands
//! the HTTP client (or the proxy) exactly the vetted addresses, so the
//! connection goes where the check looked and no second lookup happens.

use crate::classify::{self, normalize_name};
use crate::error::Refusal;
use crate::policy;
use async_trait::async_trait;
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Answers the addresses of a name.
#[async_trait]
pub trait Resolver: Send + Sync + 'static {
    /// Every address of `name` (normalised: lowercase ASCII, no trailing
    /// dot), in the order the system would try them.
    async fn lookup(&self, name: &str) -> std::io::Result<Vec<IpAddr>>;
}

/// The operating system's resolver (getaddrinfo): `/etc/hosts` included.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemResolver;

#[async_trait]
impl Resolver for SystemResolver {
    async fn lookup(&self, name: &str) -> std::io::Result<Vec<IpAddr>> {
        let mut out: Vec<IpAddr> = Vec::new();
        for addr in tokio::net::lookup_host((name, 0)).await? {
            if !out.contains(&addr.ip()) {
                out.push(addr.ip());
            }
        }
        Ok(out)
    }
}

/// A lookup that did not produce vetted addresses.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The name or an answer is refused by policy.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// Resolution failed or timed out.
    #[error("{0}")]
    Failed(String),
}

/// Resolve, classify, pin. Cheap to clone.
#[derive(Clone)]
pub struct Pinner {
    resolver: Arc<dyn Resolver>,
    /// Names of explicitly allowed origins: their answers may be private.
    explicit: Arc<HashSet<String>>,
    timeout: Duration,
    #[cfg(feature = "testing")]
    dial: Arc<std::collections::HashMap<IpAddr, SocketAddr>>,
}

impl Pinner {
    pub(crate) fn new(
        resolver: Arc<dyn Resolver>,
        explicit: HashSet<String>,
        timeout: Duration,
    ) -> Self {
        Self {
            resolver,
            explicit: Arc::new(explicit),
            timeout,
            #[cfg(feature = "testing")]
            dial: Arc::default(),
        }
    }

    #[cfg(feature = "testing")]
    pub(crate) fn with_dial(mut self, dial: std::collections::HashMap<IpAddr, SocketAddr>) -> Self {
        self.dial = Arc::new(dial);
        self
    }

    /// Resolve `name` once and vet every answer. Names of explicit origins
    /// skip the class checks; every other name must pass the special-use
    /// name rules and resolve to public addresses only.
    pub async fn vetted(&self, name: &str) -> Result<Vec<IpAddr>, LookupError> {
        let name = normalize_name(name);
        if let Ok(ip) = name.parse::<IpAddr>() {
            // Not reached through the HTTP client (it connects to literals
            // itself); kept so no caller can smuggle a literal through.
            classify::classify_host(&classify::Host::Ip(ip))?;
            return Ok(vec![ip]);
        }
        let explicit = self.explicit.contains(&name);
        if !explicit {
            classify::classify_name(&name)?;
        }
        let answers = match tokio::time::timeout(self.timeout, self.resolver.lookup(&name)).await {
            Err(_) => {
                return Err(LookupError::Failed(format!(
                    "cannot resolve {name}: timed out"
                )));
            }
            Ok(Err(e)) => return Err(LookupError::Failed(format!("cannot resolve {name}: {e}"))),
            Ok(Ok(a)) => a,
        };
        if answers.is_empty() {
            return Err(LookupError::Failed(format!("{name} has no addresses")));
        }
        if explicit {
            // An explicit origin may be private (a local Ollama), never a
            // cloud metadata service.
            for ip in &answers {
                if let Err(r) = classify::classify_host(&classify::Host::Ip(*ip))
                    && r.rule == "addr.metadata"
                {
                    return Err(r.into());
                }
            }
        } else {
            policy::vet_answers(&name, &answers)?;
        }
        Ok(answers)
    }

    /// Where to connect for a vetted address. Always `ip:port`, except in
    /// tests, where `dial_override` may send a vetted public address to a
    /// loopback server.
    pub fn dial(&self, ip: IpAddr, port: u16) -> SocketAddr {
        #[cfg(feature = "testing")]
        if let Some(to) = self.dial.get(&ip) {
            return *to;
        }
        SocketAddr::new(ip, port)
    }
}

impl reqwest::dns::Resolve for Pinner {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let this = self.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            match this.vetted(&host).await {
                Ok(ips) => {
                    // Port 0: the client puts in the URL's port. (A test
                    // dial override carries its own port, which the client
                    // keeps when the URL names none.)
                    let addrs: Vec<SocketAddr> =
                        ips.into_iter().map(|ip| this.dial(ip, 0)).collect();
                    Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
                }
                Err(LookupError::Refused(r)) => {
                    crate::log_refusal("client", &host, &r);
                    Err(Box::new(r) as Box<dyn std::error::Error + Send + Sync>)
                }
                Err(LookupError::Failed(msg)) => Err(Box::new(std::io::Error::other(msg)) as _),
            }
        })
    }
}
