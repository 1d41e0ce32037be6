//! URL classification without IO: parse with the WHATWG rules the HTTP
//! client itself uses (the `url` crate, which normalises every IPv4
//! notation — decimal `2130706433`, octal `0177.0.0.1`, hex `0x7f.1`, short
//! `127.1`, mixed, trailing dot — and IDNA/fullwidth host names), refuse
//! what is malformed or tricky (non-http(s) schemes, any userinfo, a
//! backslash or a percent-encoded byte in the authority, whitespace and
//! control characters), and classify the host: an IP literal by its address
//! class ([`crate::ip`]), a name by the special-use name rules
//! (`localhost`, `*.localhost`, `*.local`, `*.internal`, `*.home.arpa`,
//! cloud metadata names). Names that pass still have every resolved address
//! classified at connect time (see [`crate::resolve`]).

use crate::error::Refusal;
use crate::ip;
use std::fmt;
use std::net::IpAddr;
use url::Url;

/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 8 * 1024;

/// Names of cloud metadata services, refused wherever they resolve.
const METADATA_NAMES: &[&str] = &[
    "metadata.google.internal",
    "metadata.goog",
    "metadata",
    "metadata.azure.internal",
    "instance-data",
    "instance-data.ec2.internal",
];

/// Special-use name suffixes that never name a public host.
const LOCAL_SUFFIXES: &[(&str, &str, &str)] = &[
    ("localhost", "host.localhost", "a localhost name"),
    ("local", "host.local", "a multicast-DNS (.local) name"),
    ("internal", "host.internal", "an internal (.internal) name"),
    (
        "home.arpa",
        "host.home_arpa",
        "a home network (.home.arpa) name",
    ),
];

/// A URL's host after normalisation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// A DNS name: lowercase IDNA ASCII (punycode), trailing dots removed.
    Name(String),
    /// An IP literal, in whatever notation it was written.
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(n) => f.write_str(n),
            Self::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            Self::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
        }
    }
}

/// A parsed, syntactically safe outbound target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub url: Url,
    pub host: Host,
    /// The port, the scheme's default when the URL has none.
    pub port: u16,
}

impl Target {
    pub fn is_https(&self) -> bool {
        self.url.scheme() == "https"
    }

    /// Same scheme, host and port.
    pub fn same_origin(&self, other: &Target) -> bool {
        self.url.scheme() == other.url.scheme()
            && self.host == other.host
            && self.port == other.port
    }
}

/// A name as policies compare it: ASCII lowercase, trailing dots removed.
/// (The URL parser already lowercases and applies IDNA.)
pub fn normalize_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn malformed(reason: impl Into<String>) -> Refusal {
    Refusal::ssrf("url.malformed", reason.into())
}

/// Parse and check the syntax of a URL; the host is not classified (see
/// [`classify_host`]), so an explicitly allowed origin can bypass the
/// address class but never the syntax rules.
pub fn parse(raw: &str) -> Result<Target, Refusal> {
    if raw.len() > MAX_URL_LEN {
        return Err(malformed(format!(
            "the URL is longer than {MAX_URL_LEN} bytes"
        )));
    }
    if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(malformed(
            "the URL contains whitespace or control characters",
        ));
    }
    let before_query = raw.split(['?', '#']).next().unwrap_or(raw);
    if before_query.contains('\\') {
        return Err(Refusal::ssrf(
            "url.backslash",
            "a backslash before the query is read as a slash by some parsers and not by others",
        ));
    }
    let url = Url::parse(raw).map_err(|e| malformed(format!("not a valid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Refusal::ssrf(
            "url.scheme",
            format!(
                "the scheme {:?} is not allowed: only http and https",
                url.scheme()
            ),
        ));
    }
    // The raw authority: after `scheme:` and any slashes, up to the path,
    // query or fragment (a backslash was refused above).
    let after_scheme = raw.split_once(':').map_or("", |(_, rest)| rest);
    let authority = after_scheme
        .trim_start_matches('/')
        .split(['/', '?', '#'])
        .next()
        .unwrap_or("");
    if !url.username().is_empty() || url.password().is_some() || authority.contains('@') {
        return Err(Refusal::ssrf(
            "url.userinfo",
            "URLs with a user name or password (`user@host`) are refused",
        ));
    }
    if authority.contains('%') {
        return Err(Refusal::ssrf(
            "url.encoded_host",
            "percent-encoded bytes in the host are refused",
        ));
    }
    let host = match url.host() {
        Some(url::Host::Domain(d)) => Host::Name(normalize_name(d)),
        Some(url::Host::Ipv4(v4)) => Host::Ip(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => Host::Ip(IpAddr::V6(v6)),
        None => return Err(malformed("the URL has no host")),
    };
    if let Host::Name(n) = &host {
        check_name_syntax(n)?;
    }
    let port = match url.port_or_known_default() {
        Some(0) | None => return Err(malformed("port 0 is not a valid destination")),
        Some(p) => p,
    };
    Ok(Target { url, host, port })
}

/// Letters, digits, `-` and `_`, non-empty labels, and a last label that
/// is not numeric (an all-numeric last label is an IPv4 literal to every
/// resolver; the URL parser turns those into [`Host::Ip`] already, this is
/// the second line).
fn check_name_syntax(name: &str) -> Result<(), Refusal> {
    if name.is_empty() || name.len() > 253 {
        return Err(malformed("the host name is empty or too long"));
    }
    let ok_chars = name
        .bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'_' | b'.'));
    if !ok_chars || name.split('.').any(|l| l.is_empty() || l.len() > 63) {
        return Err(malformed(
            "the host name has characters or labels a DNS name cannot have",
        ));
    }
    let last = name.rsplit('.').next().unwrap_or(name);
    let numeric = last.bytes().all(|c| c.is_ascii_digit())
        || last
            .strip_prefix("0x")
            .is_some_and(|h| h.bytes().all(|c| c.is_ascii_hexdigit()));
    if numeric {
        return Err(malformed("the host name ends in a numeric label"));
    }
    Ok(())
}

/// The special-use name rules: metadata names and local-only suffixes.
/// `name` is normalised ([`normalize_name`]).
pub fn classify_name(name: &str) -> Result<(), Refusal> {
    if METADATA_NAMES.contains(&name) {
        return Err(Refusal::ssrf(
            "host.metadata",
            format!("{name} is a cloud metadata service"),
        ));
    }
    for (suffix, rule, what) in LOCAL_SUFFIXES {
        let hit = name == *suffix
            || name
                .strip_suffix(suffix)
                .is_some_and(|head| head.ends_with('.'));
        if hit {
            return Err(Refusal::ssrf(rule, format!("{name} is {what}")));
        }
    }
    Ok(())
}

/// The refusal for a non-public address, naming the host as written.
pub fn refuse_addr(host: &str, ip: IpAddr, blocked: ip::Blocked) -> Refusal {
    let reason = if host == ip.to_string() {
        format!("{ip} is {}", blocked.what)
    } else {
        format!("{host} is {ip}, {}", blocked.what)
    };
    Refusal::ssrf(blocked.rule, reason)
}

/// Classify a parsed host: an IP literal by its address class, a name by
/// the special-use name rules.
pub fn classify_host(host: &Host) -> Result<(), Refusal> {
    match host {
        Host::Ip(ip) => ip::classify_ip(*ip).map_err(|b| refuse_addr(&ip.to_string(), *ip, b)),
        Host::Name(name) => classify_name(name),
    }
}

/// [`parse`] then [`classify_host`]: the whole check that needs no DNS.
/// What this allows has a public IP literal or a name that is not
/// special-use; the name's addresses are checked when it is resolved.
pub fn classify(raw: &str) -> Result<Target, Refusal> {
    let target = parse(raw)?;
    classify_host(&target.host)?;
    Ok(target)
}
