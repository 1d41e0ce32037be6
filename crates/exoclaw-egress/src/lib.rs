//! exoclaw's egress control: the one outbound HTTP client of the process
//! ([`EgressClient`]) and the egress forward proxy ([`EgressProxy`]), both
//! enforcing one policy.
//!
//! # What is refused
//!
//! - **URL tricks** (`security.ssrf_blocked`, rules `url.*`): schemes other
//!   than http and https, any userinfo (`http://user@evil@good`,
//!   `http://good@evil`), a backslash before the query, percent-encoded
//!   bytes in the authority, whitespace and control characters.
//! - **Non-public addresses** (`security.ssrf_blocked`, rules `addr.*`,
//!   `host.*`, `dns.mixed`): loopback, private, link-local, CGNAT,
//!   unique-local, multicast, broadcast, unspecified, reserved,
//!   documentation and benchmark ranges and cloud metadata addresses, in
//!   every notation the URL parser accepts (decimal, octal, hex, short and
//!   mixed IPv4; IPv4-mapped, NAT64, 6to4 and Teredo IPv6; see
//!   [`ip`]); special-use names (`localhost`, `*.localhost`, `*.local`,
//!   `*.internal`, `*.home.arpa`, metadata names) by name; and every name
//!   whose resolved answers are not all public (a mixed answer is refused
//!   whole).
//! - **Domain policy** (`security.egress_denied`, rules `domain.*`,
//!   `origin.not_allowed`, `port.not_allowed`, `redirect.downgrade`): see
//!   [`domain`] for the pattern semantics — `example.com` is exact,
//!   `*.example.com` is subdomains only, case-insensitive on the punycode
//!   form, IP literals never match, deny wins.
//!
//! # DNS pinning
//!
//! Names are resolved once by the client's resolver (the system's, via
//! getaddrinfo: `/etc/hosts` included), every answer is classified, and
//! the connection is made to exactly those answers. IP literals never reach
//! a resolver, so [`EgressClient`] classifies them itself before a request
//! exists; there is no way to get a request out of it without that check.
//!
//! # Explicit origins
//!
//! A loopback or private origin (a local Ollama) is reachable only when
//! allowed explicitly and exactly ([`EgressClientBuilder::allow_origin`]):
//! see [`policy`].
//!
//! # Redirects, caps, timeouts
//!
//! The reqwest client never follows redirects; [`EgressClient::fetch`]
//! follows at most [`MAX_REDIRECTS`] by hand, re-checking each hop, and
//! refuses https to http. Bodies are read under a cap (`egress.too_large`),
//! with connect and total timeouts (`egress.timeout`).

pub mod classify;
mod client;
pub mod domain;
mod error;
pub mod ip;
pub mod policy;
mod proxy;
pub mod resolve;
#[cfg(feature = "testing")]
pub mod testing;
mod tls;

pub use classify::{Host, Target, classify};
pub use client::{
    DEFAULT_POOL_IDLE_TIMEOUT, DEFAULT_POOL_MAX_IDLE_PER_HOST, Decision, EgressClient,
    EgressClientBuilder, FetchLimits, Fetched, MAX_REDIRECTS, Vetted,
};
pub use domain::{DomainPattern, DomainRules, PatternError};
pub use error::{EgressError, Refusal, RefusalKind};
pub use policy::{Admission, EgressPolicy, Origin, OriginError};
pub use proxy::{EgressProxy, ProxyConfig, RefusalSink};
pub use reqwest::{Method, StatusCode, header};
pub use resolve::{Resolver, SystemResolver};
pub use url::Url;

/// Log a refusal: target `exoclaw::egress`, at warn, the event named by
/// its code (`security.ssrf_blocked` / `security.egress_denied`).
pub(crate) fn log_refusal(client: &str, dest: &str, r: &Refusal) {
    tracing::warn!(
        target: "exoclaw::egress",
        event = r.code(),
        rule = r.rule,
        client = %client,
        dest = %dest,
        decision = "refused",
        reason = %r.reason,
        "egress refused"
    );
}
