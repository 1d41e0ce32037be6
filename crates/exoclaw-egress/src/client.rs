//! [`EgressClient`]: the process's one outbound HTTP client. It wraps a
//! `reqwest::Client` built here with the pinning resolver, no automatic
//! redirects and no environment proxies, and checks every URL (syntax, IP
//! literal class, explicit origins, domain lists) before a request exists.
//! [`EgressClient::fetch`] follows redirects by hand, re-checking every hop,
//! and reads bodies under a cap; [`EgressClient::request`] hands callers
//! that stream (the providers) a checked `reqwest::RequestBuilder`;
//! [`EgressClient::dry_run`] does the whole decision, DNS included, without
//! connecting.

use crate::classify::{self, Host, Target};
use crate::domain::{DomainRules, PatternError};
use crate::error::{EgressError, Refusal};
use crate::policy::{Admission, EgressPolicy, Origin, OriginError};
use crate::resolve::{LookupError, Pinner, Resolver, SystemResolver};
use bytes::{Bytes, BytesMut};
use reqwest::header::{HeaderMap, LOCATION};
use reqwest::{Method, StatusCode};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use url::Url;

/// Most redirects [`EgressClient::fetch`] ever follows.
pub const MAX_REDIRECTS: u8 = 5;

/// Idle keep-alive connections a client keeps per host by default: enough
/// for 64 concurrent calls to one provider to reuse theirs, while a larger
/// burst's extra connections are closed when their calls end instead of
/// staying resident (about 12 KiB each) until the idle timeout.
pub const DEFAULT_POOL_MAX_IDLE_PER_HOST: usize = 64;

/// How long an idle keep-alive connection is kept by default (reqwest's).
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Builds an [`EgressClient`].
pub struct EgressClientBuilder {
    policy: EgressPolicy,
    resolver: Arc<dyn Resolver>,
    connect_timeout: Duration,
    dns_timeout: Duration,
    pool_idle_timeout: Duration,
    pool_max_idle_per_host: usize,
    user_agent: String,
    #[cfg(feature = "testing")]
    dial: std::collections::HashMap<IpAddr, std::net::SocketAddr>,
}

impl EgressClientBuilder {
    fn new() -> Self {
        Self {
            policy: EgressPolicy::new(),
            resolver: Arc::new(SystemResolver),
            connect_timeout: Duration::from_secs(10),
            dns_timeout: Duration::from_secs(10),
            pool_idle_timeout: DEFAULT_POOL_IDLE_TIMEOUT,
            pool_max_idle_per_host: DEFAULT_POOL_MAX_IDLE_PER_HOST,
            user_agent: concat!("exoclaw/", env!("CARGO_PKG_VERSION")).to_owned(),
            #[cfg(feature = "testing")]
            dial: std::collections::HashMap::new(),
        }
    }

    /// Replace the policy (domain layers and explicit origins).
    #[must_use]
    pub fn policy(mut self, policy: EgressPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// `egress.allow_domains`: the process-wide allowlist (empty = none).
    pub fn allow_domains<S: AsRef<str>>(mut self, domains: &[S]) -> Result<Self, PatternError> {
        let rules = DomainRules::allow_only("egress.allow_domains", domains)?;
        self.policy = self.policy.with_rules(rules);
        Ok(self)
    }

    /// Allow one origin (`scheme://host[:port]`, a path is ignored) even
    /// when it is loopback or private: a local Ollama or vLLM configured
    /// explicitly. Exact match on scheme, host and port.
    pub fn allow_origin(mut self, origin: &str) -> Result<Self, OriginError> {
        self.policy = self.policy.with_origin(Origin::parse(origin)?);
        Ok(self)
    }

    /// The provider profile: only the origins of these base URLs can be
    /// reached (public ones by class; a private one only when also passed to
    /// [`Self::allow_origin`]).
    pub fn provider_profile<S: AsRef<str>>(mut self, base_urls: &[S]) -> Result<Self, OriginError> {
        let origins = base_urls
            .iter()
            .map(|u| Origin::parse(u.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        self.policy = self.policy.with_origin_allowlist(origins);
        Ok(self)
    }

    /// The resolver (default: the system's). Tests inject a stub.
    #[must_use]
    pub fn resolver(mut self, resolver: Arc<dyn Resolver>) -> Self {
        self.resolver = resolver;
        self
    }

    /// TCP connect timeout per address (default 10 s).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Name resolution timeout (default 10 s).
    #[must_use]
    pub fn dns_timeout(mut self, timeout: Duration) -> Self {
        self.dns_timeout = timeout;
        self
    }

    /// Idle connections kept per host (default
    /// [`DEFAULT_POOL_MAX_IDLE_PER_HOST`]). `0` keeps none, so no pool
    /// timers run: paused-time tests see only the timers under test.
    #[must_use]
    pub fn pool_max_idle_per_host(mut self, max: usize) -> Self {
        self.pool_max_idle_per_host = max;
        self
    }

    /// How long an idle connection is kept (default
    /// [`DEFAULT_POOL_IDLE_TIMEOUT`]).
    #[must_use]
    pub fn pool_idle_timeout(mut self, timeout: Duration) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }

    #[must_use]
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Tests only: connect to `to` whenever the vetted address is `ip`, so
    /// a "public" name served by a loopback server proves the policy
    /// without internet. The port in `to` is used when the URL has none.
    #[cfg(feature = "testing")]
    #[must_use]
    pub fn dial_override(mut self, ip: IpAddr, to: std::net::SocketAddr) -> Self {
        self.dial.insert(ip, to);
        self
    }

    pub fn build(self) -> Result<EgressClient, EgressError> {
        let tls = crate::tls::client_config()?;
        let pinner = Pinner::new(
            self.resolver,
            self.policy.explicit_names(),
            self.dns_timeout,
        );
        #[cfg(feature = "testing")]
        let pinner = pinner.with_dial(self.dial);
        #[allow(
            clippy::disallowed_methods,
            reason = "the egress client is the one place a reqwest client is built"
        )]
        let builder = reqwest::Client::builder();
        let http = builder
            .dns_resolver(pinner.clone())
            // An HTTP(S)_PROXY from the environment would resolve names
            // itself, behind the pinning resolver's back.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(self.connect_timeout)
            .pool_idle_timeout(self.pool_idle_timeout)
            .pool_max_idle_per_host(self.pool_max_idle_per_host)
            .user_agent(self.user_agent)
            .tls_backend_preconfigured(tls)
            .build()
            .map_err(|e| EgressError::Unavailable(format!("cannot build the HTTP client: {e}")))?;
        Ok(EgressClient {
            http,
            policy: self.policy,
            pinner,
        })
    }
}

/// Limits for one [`EgressClient::fetch`].
#[derive(Clone, Debug)]
pub struct FetchLimits {
    /// Largest body read; past it the call fails with `egress.too_large`.
    pub max_bytes: usize,
    /// The whole call, redirects and body included.
    pub timeout: Duration,
    /// Redirects followed, at most [`MAX_REDIRECTS`].
    pub max_redirects: u8,
}

impl Default for FetchLimits {
    fn default() -> Self {
        Self {
            max_bytes: 2 * 1024 * 1024,
            timeout: Duration::from_secs(30),
            max_redirects: MAX_REDIRECTS,
        }
    }
}

/// A fetched response with its body read.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// The URL that answered (after redirects).
    pub url: Url,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A target the policy allows, with the addresses a connection would use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vetted {
    pub url: Url,
    pub host: Host,
    pub port: u16,
    pub admission: Admission,
    /// The vetted addresses (the literal itself for an IP literal).
    pub addrs: Vec<IpAddr>,
}

/// The outcome of [`EgressClient::dry_run`].
pub type Decision = Result<Vetted, EgressError>;

/// The outbound HTTP client. Cheap to clone (connection pool shared).
#[derive(Clone)]
pub struct EgressClient {
    http: reqwest::Client,
    policy: EgressPolicy,
    pinner: Pinner,
}

impl std::fmt::Debug for EgressClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EgressClient")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl EgressClient {
    pub fn builder() -> EgressClientBuilder {
        EgressClientBuilder::new()
    }

    pub fn policy(&self) -> &EgressPolicy {
        &self.policy
    }

    /// The same client (and connection pool) with one more layer of domain
    /// rules, e.g. `tools.web_fetch.allow_domains` / `deny_domains`.
    /// Explicit origins are kept: derive tool clients from a client built
    /// without them.
    #[must_use]
    pub fn with_rules(&self, rules: DomainRules) -> Self {
        Self {
            http: self.http.clone(),
            policy: self.policy.clone().with_rules(rules),
            pinner: self.pinner.clone(),
        }
    }

    /// Syntax, IP literal class, explicit origins and domain lists: every
    /// check that needs no DNS (names are checked again when resolved).
    pub fn check_url(&self, url: &str) -> Result<(Target, Admission), Refusal> {
        let target = classify::parse(url)?;
        let admission = self.policy.check_target(&target)?;
        Ok((target, admission))
    }

    fn checked(&self, url: &str) -> Result<(Target, Admission), Refusal> {
        self.check_url(url).inspect_err(|r| {
            let host = classify::parse(url).map_or_else(|_| "-".to_owned(), |t| t.host.to_string());
            crate::log_refusal("client", &host, r);
        })
    }

    /// The whole decision, name resolution included, without connecting.
    pub async fn dry_run(&self, url: &str) -> Decision {
        let (target, admission) = self.check_url(url)?;
        let addrs = match &target.host {
            Host::Ip(ip) => vec![*ip],
            Host::Name(name) => self.pinner.vetted(name).await.map_err(lookup_error)?,
        };
        Ok(Vetted {
            url: target.url,
            host: target.host,
            port: target.port,
            admission,
            addrs,
        })
    }

    /// A checked request builder for callers that stream (providers).
    /// Redirects are not followed (a 3xx comes back as it is), names are
    /// resolved and pinned by the client's resolver, and there is no total
    /// timeout: set one per request or wrap the call.
    pub fn request(&self, method: Method, url: &str) -> Result<reqwest::RequestBuilder, Refusal> {
        let (target, _) = self.checked(url)?;
        Ok(self.http.request(method, target.url))
    }

    /// GET `url`, following up to `limits.max_redirects` redirects (each hop
    /// checked like the first; https never redirects to http; `headers`
    /// are dropped when a redirect leaves the origin) and reading the body
    /// under `limits.max_bytes`.
    pub async fn fetch(
        &self,
        url: &str,
        headers: HeaderMap,
        limits: &FetchLimits,
    ) -> Result<Fetched, EgressError> {
        match tokio::time::timeout(limits.timeout, self.fetch_inner(url, headers, limits)).await {
            Ok(r) => r,
            Err(_) => Err(EgressError::Timeout),
        }
    }

    async fn fetch_inner(
        &self,
        url: &str,
        headers: HeaderMap,
        limits: &FetchLimits,
    ) -> Result<Fetched, EgressError> {
        let deadline = Instant::now() + limits.timeout;
        let max_redirects = limits.max_redirects.min(MAX_REDIRECTS);
        let (first, _) = self.checked(url)?;
        let mut target = first.clone();
        let mut hops = 0u8;
        loop {
            let mut request = self
                .http
                .get(target.url.clone())
                .timeout(deadline.saturating_duration_since(Instant::now()));
            if target.same_origin(&first) {
                request = request.headers(headers.clone());
            }
            let response = request
                .send()
                .await
                .map_err(|e| EgressError::from_reqwest(&e))?;
            let status = response.status();
            if matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
                && let Some(location) = response.headers().get(LOCATION)
            {
                hops += 1;
                if hops > max_redirects {
                    return Err(EgressError::TooManyRedirects { max: max_redirects });
                }
                let next = redirect_target(&target, location.as_bytes())?;
                let (next, _) = self.checked(next.as_str())?;
                target = next;
                continue;
            }
            let headers = response.headers().clone();
            let body = read_capped(response, limits.max_bytes).await?;
            return Ok(Fetched {
                url: target.url,
                status,
                headers,
                body,
            });
        }
    }
}

fn lookup_error(e: LookupError) -> EgressError {
    match e {
        LookupError::Refused(r) => EgressError::Refused(r),
        LookupError::Failed(msg) => EgressError::Unavailable(msg),
    }
}

/// Resolve a `Location` against the current URL and refuse a downgrade.
fn redirect_target(from: &Target, location: &[u8]) -> Result<Url, Refusal> {
    let location = std::str::from_utf8(location)
        .map_err(|_| Refusal::ssrf("url.malformed", "the redirect location is not UTF-8"))?;
    let next = from.url.join(location).map_err(|e| {
        Refusal::ssrf(
            "url.malformed",
            format!("the redirect location is not a valid URL: {e}"),
        )
    })?;
    if from.is_https() && next.scheme() == "http" {
        let r = Refusal::denied(
            "redirect.downgrade",
            format!("{} redirects from https to http", from.host),
        );
        crate::log_refusal("client", &from.host.to_string(), &r);
        return Err(r);
    }
    Ok(next)
}

/// Read a body, failing as soon as it passes `limit` bytes.
async fn read_capped(mut response: reqwest::Response, limit: usize) -> Result<Bytes, EgressError> {
    if response
        .content_length()
        .is_some_and(|n| n > u64::try_from(limit).unwrap_or(u64::MAX))
    {
        return Err(EgressError::TooLarge { limit });
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| EgressError::from_reqwest(&e))?
    {
        if body.len() + chunk.len() > limit {
            return Err(EgressError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> Target {
        classify::parse(url).unwrap()
    }

    #[test]
    fn redirects_resolve_relative_locations_and_refuse_downgrades() {
        let https = target("https://example.com/a/b");
        assert_eq!(
            redirect_target(&https, b"../c?d").unwrap().as_str(),
            "https://example.com/c?d"
        );
        assert_eq!(
            redirect_target(&https, b"//other.example/x")
                .unwrap()
                .as_str(),
            "https://other.example/x"
        );
        assert_eq!(
            redirect_target(&https, b"https://other.example/")
                .unwrap()
                .as_str(),
            "https://other.example/"
        );
        let down = redirect_target(&https, b"http://example.com/").unwrap_err();
        assert_eq!(
            (down.code(), down.rule),
            ("security.egress_denied", "redirect.downgrade")
        );
        // http -> https is an upgrade and fine.
        let http = target("http://example.com/");
        assert!(redirect_target(&http, b"https://example.com/").is_ok());
        assert_eq!(
            redirect_target(&http, b"\xff").unwrap_err().rule,
            "url.malformed"
        );
    }
}
