//! The web tools, both through the process's [`EgressClient`] (SSRF rules,
//! DNS pinning, domain lists, redirects re-checked, size caps, timeouts):
//!
//! - `web_fetch` `{"url", "max_bytes"?}`: HTML becomes readable Markdown,
//!   `text/plain` and `text/markdown` pass through, other types are refused;
//!   the body is capped (`egress.too_large`).
//! - `web_search` `{"query", "count"?}`: the Brave Search API when a key is
//!   configured (`X-Subscription-Token`), otherwise DuckDuckGo's HTML
//!   endpoint parsed into title/url/snippet.
//!
//! A tenant's own egress lists (its settings, looked up in memory per call
//! through [`TenantRules`]) are one more layer on the client's: they can
//! only narrow what the process allows.
//!
//! Refusals answer `security.ssrf_blocked` / `security.egress_denied` with
//! the rule. `check` (the `dry_run` of `/v1/tools/invoke`) runs the same
//! decision as `call`, name resolution included, without connecting.
//! Endpoints are injectable so tests run against loopback fakes added to the
//! client's explicit origins.

mod html;
#[cfg(test)]
mod tests;

use async_trait::async_trait;
use exoclaw_core::Secret;
use exoclaw_core::TenantId;
use exoclaw_core::provider::ToolSpec;
use exoclaw_core::tool::{Check, Provenance, Tool, ToolContext, ToolEffect, ToolError, ToolOutput};
use exoclaw_egress::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use exoclaw_egress::{DomainRules, EgressClient, EgressError, FetchLimits, Fetched, Url};
use serde::Deserialize;
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::time::Duration;

/// `max_bytes` when the call names none.
pub const DEFAULT_MAX_BYTES: usize = 1024 * 1024;
/// The largest `max_bytes` a call may ask for.
pub const MAX_BYTES: usize = 5 * 1024 * 1024;
/// Brave Search's web search endpoint.
pub const BRAVE_ENDPOINT: &str = "https://api.search.brave.com/res/v1/web/search";
/// DuckDuckGo's JavaScript-free result page.
pub const DDG_ENDPOINT: &str = "https://html.duckduckgo.com/html/";
/// Largest search response read.
const SEARCH_MAX_BYTES: usize = 2 * 1024 * 1024;
const MAX_RESULTS: u64 = 20;
const MAX_QUERY_CHARS: usize = 400;

/// The tool error for an egress failure: refusals keep their security code
/// and name the rule; the rest keep their `egress.*` code.
pub fn egress_error(e: &EgressError) -> ToolError {
    match e {
        EgressError::Refused(r) => {
            ToolError::new(r.code(), format!("{} (rule {})", r.reason, r.rule))
        }
        other => {
            let text = other.to_string();
            let message = text
                .split_once(": ")
                .map_or(text.as_str(), |(_, m)| m)
                .to_owned();
            ToolError::new(other.code(), message)
        }
    }
}

/// The media type (lowercase, no parameters) and charset of a response.
fn content_type(headers: &HeaderMap) -> (String, Option<String>) {
    let raw = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut parts = raw.split(';');
    let mime = parts.next().unwrap_or("").trim().to_owned();
    let charset = parts
        .filter_map(|p| p.trim().strip_prefix("charset="))
        .map(|c| c.trim_matches('"').to_owned())
        .next();
    (mime, charset)
}

/// Bytes to text: Latin-1 family as Latin-1, everything else as UTF-8
/// (invalid sequences replaced).
fn decode(body: &[u8], charset: Option<&str>) -> String {
    match charset {
        Some("iso-8859-1" | "latin1" | "windows-1252" | "us-ascii") => {
            body.iter().map(|&b| char::from(b)).collect()
        }
        _ => String::from_utf8_lossy(body).into_owned(),
    }
}

fn http_status_error(fetched: &Fetched) -> ToolError {
    let host = fetched.url.host_str().unwrap_or("the server");
    ToolError::failed(format!("{host} answered HTTP {}", fetched.status))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FetchArgs {
    url: String,
    max_bytes: Option<u64>,
}

impl FetchArgs {
    fn max_bytes(&self) -> Result<usize, ToolError> {
        match self.max_bytes {
            None => Ok(DEFAULT_MAX_BYTES),
            Some(n) if n >= 1 && n <= MAX_BYTES as u64 => {
                usize::try_from(n).map_err(|_| ToolError::invalid_args("max_bytes: too large"))
            }
            Some(_) => Err(ToolError::invalid_args(format!(
                "max_bytes: must be between 1 and {MAX_BYTES}"
            ))),
        }
    }
}

/// A tenant's own domain rules (`None`: the tenant has none), looked up per
/// call without IO; added as one more layer, so they only narrow.
pub type TenantRules = std::sync::Arc<dyn Fn(&TenantId) -> Option<DomainRules> + Send + Sync>;

/// `client`, narrowed by the tenant's rules when it has any.
fn client_for(
    client: &EgressClient,
    rules: Option<&TenantRules>,
    ctx: &ToolContext,
) -> EgressClient {
    match rules.and_then(|f| f(&ctx.tenant)) {
        Some(r) => client.with_rules(r),
        None => client.clone(),
    }
}

/// `web_fetch`: one page, as Markdown or text.
pub struct WebFetch {
    client: EgressClient,
    tenant_rules: Option<TenantRules>,
    timeout: Duration,
}

impl WebFetch {
    /// `client` carries the process policy plus `tools.web_fetch`'s lists
    /// (see [`EgressClient::with_rules`]); it should have no explicit
    /// private origins.
    pub fn new(client: EgressClient) -> Self {
        Self {
            client,
            tenant_rules: None,
            timeout: Duration::from_secs(30),
        }
    }

    /// Narrow each call by its tenant's own rules.
    #[must_use]
    pub fn with_tenant_rules(mut self, rules: TenantRules) -> Self {
        self.tenant_rules = Some(rules);
        self
    }

    /// The whole call, redirects and body included (default 30 s).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

#[async_trait]
impl Tool for WebFetch {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "web_fetch".into(),
            description: "Fetch a public web page (http or https) and return it as Markdown (HTML) or text. Private, local and metadata addresses are refused.".into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "url": {"type": "string", "description": "an http(s) URL"},
                    "max_bytes": {"type": "integer", "minimum": 1, "maximum": MAX_BYTES,
                                  "description": format!("largest body to read, default {DEFAULT_MAX_BYTES}")}
                },
                "required": ["url"],
                "additionalProperties": false
            }),
        }
    }

    /// A fetch reaches a host outside: after untrusted content entered the
    /// run, a host the run has not seen needs the provenance gate.
    fn effect(&self) -> ToolEffect {
        ToolEffect::External
    }

    fn provenance(&self) -> Provenance {
        Provenance::Untrusted
    }

    fn destination(&self, args: &Value) -> Option<String> {
        let url = Url::parse(args.get("url").and_then(Value::as_str)?.trim()).ok()?;
        url.host_str().map(str::to_ascii_lowercase)
    }

    fn source(&self, args: &Value) -> String {
        format!(
            "web_fetch:{}",
            args.get("url").and_then(Value::as_str).unwrap_or("")
        )
    }

    async fn check(&self, ctx: &ToolContext, args: &Value) -> Result<Check, ToolError> {
        let a: FetchArgs = crate::args::parse(args)?;
        a.max_bytes()?;
        client_for(&self.client, self.tenant_rules.as_ref(), ctx)
            .dry_run(a.url.trim())
            .await
            .map(|_| ())
            .map_err(|e| egress_error(&e))?;
        Ok(Check::Allow)
    }

    async fn call(&self, ctx: &ToolContext, args: &Value) -> Result<ToolOutput, ToolError> {
        let a: FetchArgs = crate::args::parse(args)?;
        let limits = FetchLimits {
            max_bytes: a.max_bytes()?,
            timeout: self.timeout,
            ..FetchLimits::default()
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            HeaderValue::from_static(
                "text/html,application/xhtml+xml,text/plain;q=0.9,text/markdown;q=0.9",
            ),
        );
        let fetched = client_for(&self.client, self.tenant_rules.as_ref(), ctx)
            .fetch(a.url.trim(), headers, &limits)
            .await
            .map_err(|e| egress_error(&e))?;
        if !fetched.status.is_success() {
            return Err(http_status_error(&fetched));
        }
        let (mime, charset) = content_type(&fetched.headers);
        let text = decode(&fetched.body, charset.as_deref());
        let sniffed_html = mime.is_empty() && {
            let head = text
                .trim_start()
                .get(..15)
                .unwrap_or("")
                .to_ascii_lowercase();
            head.starts_with("<!doctype html") || head.starts_with("<html")
        };
        let mut out = format!("URL: {}\n", fetched.url);
        match mime.as_str() {
            "text/html" | "application/xhtml+xml" => write_page(&mut out, &text),
            _ if sniffed_html => write_page(&mut out, &text),
            "" if std::str::from_utf8(&fetched.body).is_err() => {
                return Err(ToolError::failed(
                    "the response has no content type and is not text: web_fetch reads HTML and plain text",
                ));
            }
            "text/plain" | "text/markdown" | "text/x-markdown" | "" => {
                out.push('\n');
                out.push_str(&text);
            }
            other => {
                return Err(ToolError::failed(format!(
                    "{other} is not supported: web_fetch reads HTML and plain text"
                )));
            }
        }
        Ok(ToolOutput::text(out))
    }
}

fn write_page(out: &mut String, html_text: &str) {
    let page = html::to_markdown(html_text);
    if let Some(title) = page.title {
        let _ = writeln!(out, "Title: {title}");
    }
    out.push('\n');
    out.push_str(&page.markdown);
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    query: String,
    count: Option<u64>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Engine {
    Brave,
    DuckDuckGo,
}

#[derive(Deserialize)]
struct BraveResponse {
    #[serde(default)]
    web: Option<BraveWeb>,
}

#[derive(Deserialize)]
struct BraveWeb {
    #[serde(default)]
    results: Vec<BraveResult>,
}

#[derive(Deserialize)]
struct BraveResult {
    #[serde(default)]
    title: String,
    url: String,
    #[serde(default)]
    description: String,
}

/// `web_search`: Brave Search with a key, DuckDuckGo without.
pub struct WebSearch {
    client: EgressClient,
    tenant_rules: Option<TenantRules>,
    brave_key: Option<Secret>,
    brave_endpoint: String,
    ddg_endpoint: String,
    timeout: Duration,
}

impl WebSearch {
    /// `brave_key`: the Brave Search API key, if configured.
    pub fn new(client: EgressClient, brave_key: Option<Secret>) -> Self {
        Self {
            client,
            tenant_rules: None,
            brave_key: brave_key.filter(|k| !k.is_empty()),
            brave_endpoint: BRAVE_ENDPOINT.to_owned(),
            ddg_endpoint: DDG_ENDPOINT.to_owned(),
            timeout: Duration::from_secs(20),
        }
    }

    /// Narrow each call by its tenant's own rules.
    #[must_use]
    pub fn with_tenant_rules(mut self, rules: TenantRules) -> Self {
        self.tenant_rules = Some(rules);
        self
    }

    /// Other endpoints (tests: loopback fakes).
    #[must_use]
    pub fn with_endpoints(
        mut self,
        brave: impl Into<String>,
        duckduckgo: impl Into<String>,
    ) -> Self {
        self.brave_endpoint = brave.into();
        self.ddg_endpoint = duckduckgo.into();
        self
    }

    fn plan(&self, a: &SearchArgs) -> Result<(Engine, String, usize), ToolError> {
        let query = a.query.trim();
        if query.is_empty() || query.chars().count() > MAX_QUERY_CHARS {
            return Err(ToolError::invalid_args(format!(
                "query: must be 1 to {MAX_QUERY_CHARS} characters"
            )));
        }
        let count = a.count.unwrap_or(5);
        if !(1..=MAX_RESULTS).contains(&count) {
            return Err(ToolError::invalid_args(format!(
                "count: must be between 1 and {MAX_RESULTS}"
            )));
        }
        let (engine, endpoint) = if self.brave_key.is_some() {
            (Engine::Brave, &self.brave_endpoint)
        } else {
            (Engine::DuckDuckGo, &self.ddg_endpoint)
        };
        let mut url = Url::parse(endpoint)
            .map_err(|_| ToolError::failed("the search endpoint is not a valid URL"))?;
        url.query_pairs_mut().append_pair("q", query);
        if engine == Engine::Brave {
            url.query_pairs_mut()
                .append_pair("count", &count.to_string());
        }
        let count = usize::try_from(count).unwrap_or(5);
        Ok((engine, url.into(), count))
    }

    fn headers(&self, engine: Engine) -> Result<HeaderMap, ToolError> {
        let mut headers = HeaderMap::new();
        if engine == Engine::Brave {
            headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
            if let Some(key) = &self.brave_key {
                let mut v = HeaderValue::from_str(key.expose()).map_err(|_| {
                    ToolError::failed(
                        "the Brave Search API key contains characters not allowed in a header",
                    )
                })?;
                v.set_sensitive(true);
                headers.insert(HeaderName::from_static("x-subscription-token"), v);
            }
        } else {
            headers.insert(ACCEPT, HeaderValue::from_static("text/html"));
        }
        Ok(headers)
    }
}

#[async_trait]
impl Tool for WebSearch {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "web_search".into(),
            description: "Search the web; returns titles, URLs and snippets.".into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "query": {"type": "string", "maxLength": MAX_QUERY_CHARS},
                    "count": {"type": "integer", "minimum": 1, "maximum": MAX_RESULTS, "description": "results, default 5"}
                },
                "required": ["query"],
                "additionalProperties": false
            }),
        }
    }

    fn effect(&self) -> ToolEffect {
        ToolEffect::ReadOnly
    }

    /// Results are other sites' text: untrusted. (A query is a read of the
    /// configured engine and is not gated.)
    fn provenance(&self) -> Provenance {
        Provenance::Untrusted
    }

    async fn check(&self, ctx: &ToolContext, args: &Value) -> Result<Check, ToolError> {
        let a: SearchArgs = crate::args::parse(args)?;
        let (engine, url, _) = self.plan(&a)?;
        self.headers(engine)?;
        client_for(&self.client, self.tenant_rules.as_ref(), ctx)
            .dry_run(&url)
            .await
            .map(|_| ())
            .map_err(|e| egress_error(&e))?;
        Ok(Check::Allow)
    }

    async fn call(&self, ctx: &ToolContext, args: &Value) -> Result<ToolOutput, ToolError> {
        let a: SearchArgs = crate::args::parse(args)?;
        let (engine, url, count) = self.plan(&a)?;
        let limits = FetchLimits {
            max_bytes: SEARCH_MAX_BYTES,
            timeout: self.timeout,
            ..FetchLimits::default()
        };
        let fetched = client_for(&self.client, self.tenant_rules.as_ref(), ctx)
            .fetch(&url, self.headers(engine)?, &limits)
            .await
            .map_err(|e| egress_error(&e))?;
        if !fetched.status.is_success() {
            return Err(http_status_error(&fetched));
        }
        let (name, hits) = match engine {
            Engine::Brave => {
                let parsed: BraveResponse =
                    serde_json::from_slice(&fetched.body).map_err(|_| {
                        ToolError::failed("the Brave Search answer is not the expected JSON")
                    })?;
                let hits = parsed
                    .web
                    .map(|w| w.results)
                    .unwrap_or_default()
                    .into_iter()
                    .take(count)
                    .map(|r| html::Hit {
                        title: html::strip_tags(&r.title),
                        url: r.url,
                        snippet: html::strip_tags(&r.description),
                    })
                    .collect::<Vec<_>>();
                ("Brave Search", hits)
            }
            Engine::DuckDuckGo => {
                let text = String::from_utf8_lossy(&fetched.body);
                ("DuckDuckGo", html::ddg_hits(&text, count))
            }
        };
        let query = a.query.trim();
        if hits.is_empty() {
            return Ok(ToolOutput::text(format!(
                "No results for {query:?} ({name})."
            )));
        }
        let mut out = format!("Results for {query:?} ({name}):\n");
        for (i, hit) in hits.iter().enumerate() {
            let _ = write!(out, "\n{}. {}\n   {}\n", i + 1, hit.title, hit.url);
            if !hit.snippet.is_empty() {
                let _ = writeln!(out, "   {}", hit.snippet);
            }
        }
        Ok(ToolOutput::text(out))
    }
}
