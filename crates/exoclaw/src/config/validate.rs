//! The second stage of configuration: collect every problem at once, each with
//! its JSON path (or the env var it came from).

use super::env::Env;
use super::file::{AlertsConfig, FileConfig, SECTIONS, TelemetryConfig, TelemetryProtocol};
use exoclaw_core::Secret;
use exoclaw_gateway::config::MIN_TOKEN_LEN;
use serde_json::Value;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

/// One configuration problem: where, and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

fn problem(path: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        path: path.into(),
        message: message.into(),
    }
}

/// Parse `config.json` text. Reports JSON syntax errors, unknown keys, type
/// errors (one per section) and secret-looking values, all together.
pub fn parse_config_text(text: &str) -> Result<FileConfig, Vec<Problem>> {
    let root: Value = serde_json::from_str(text).map_err(|e| {
        vec![problem(
            "(file)",
            format!(
                "not valid JSON at line {} column {}: {}",
                e.line(),
                e.column(),
                json_error_kind(&e)
            ),
        )]
    })?;
    let Value::Object(map) = &root else {
        return Err(vec![problem(
            "(file)",
            "the top level must be a JSON object",
        )]);
    };

    let mut problems = Vec::new();
    find_secret_values(&root, "", &mut problems);
    for (key, value) in map {
        if !SECTIONS.contains(&key.as_str()) {
            problems.push(problem(
                key.clone(),
                format!("unknown key (known sections: {})", SECTIONS.join(", ")),
            ));
            continue;
        }
        // Deserialize each section on its own so that a type error in one
        // does not hide the problems of the others.
        let mut unknown = Vec::new();
        let mut on_unknown = |p: serde_ignored::Path<'_>| unknown.push(format!("{key}.{p}"));
        let ignored = serde_ignored::Deserializer::new(value.clone(), &mut on_unknown);
        let typed: Result<Value, _> = match key.as_str() {
            "gateway" => deser::<super::file::GatewayConfig>(ignored),
            "database" => deser::<super::file::DatabaseConfig>(ignored),
            "agents" => deser::<super::file::AgentsConfig>(ignored),
            "tools" => deser::<super::file::ToolsConfig>(ignored),
            "providers" => {
                deser::<std::collections::BTreeMap<String, super::file::ProviderConfig>>(ignored)
            }
            "egress" => deser::<super::file::EgressConfig>(ignored),
            "models" => deser::<super::file::ModelsConfig>(ignored),
            "budgets" => deser::<exoclaw_providers::BudgetConfig>(ignored),
            "retry" => deser::<super::file::RetryConfig>(ignored),
            "telemetry" => deser::<super::file::TelemetryConfig>(ignored),
            "alerts" => deser::<super::file::AlertsConfig>(ignored),
            "channels" => {
                deser::<std::collections::BTreeMap<String, super::file::ChannelConfig>>(ignored)
            }
            "scheduler" => deser::<super::file::SchedulerConfig>(ignored),
            "cron" => deser::<super::file::CronConfig>(ignored),
            "memory" => deser::<exoclaw_gateway::config::memory::MemoryConfig>(ignored),
            "skills" => deser::<exoclaw_gateway::config::skills::SkillsConfig>(ignored),
            _ => deser::<super::file::BackupConfig>(ignored),
        };
        if let Err((path, msg)) = typed {
            let full = if path.is_empty() || path == "." {
                key.clone()
            } else {
                format!("{key}.{path}")
            };
            problems.push(problem(full, msg));
        }
        for path in unknown {
            problems.push(problem(path, "unknown key"));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    serde_json::from_value(root).map_err(|e| vec![problem("(file)", e.to_string())])
}

fn deser<'de, T: serde::Deserialize<'de>>(
    de: impl serde::Deserializer<'de>,
) -> Result<Value, (String, String)> {
    serde_path_to_error::deserialize::<_, T>(de)
        .map(|_| Value::Null)
        .map_err(|e| (e.path().to_string(), e.inner().to_string()))
}

/// serde_json's message without the echoed input (which may be a secret).
fn json_error_kind(e: &serde_json::Error) -> &'static str {
    use serde_json::error::Category;
    match e.classify() {
        Category::Io => "read error",
        Category::Syntax => "syntax error",
        Category::Data => "unexpected data",
        Category::Eof => "unexpected end of file",
    }
}

/// Key fragments that mark a value as a secret.
const SECRET_KEY_HINTS: &[&str] = &[
    "token",
    "secret",
    "password",
    "passwd",
    "api_key",
    "apikey",
    "private_key",
    "dsn",
    "credential",
    "encryption_key",
];

/// Value shapes that are secrets whatever their key.
fn looks_like_secret_value(v: &str) -> bool {
    let prefixes = [
        "sk-",
        "sk_",
        "xoxb-",
        "xoxp-",
        "ghp_",
        "gho_",
        "github_pat_",
        "AKIA",
        "AIza",
        "glpat-",
    ];
    prefixes.iter().any(|p| v.starts_with(p) && v.len() >= 20)
        || v.contains("-----BEGIN")
        || url::Url::parse(v).is_ok_and(|u| u.password().is_some())
}

fn find_secret_values(v: &Value, path: &str, out: &mut Vec<Problem>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                let key = k.to_ascii_lowercase();
                let secret_key = SECRET_KEY_HINTS.iter().any(|h| key.contains(h));
                match child {
                    Value::String(s)
                        if !s.is_empty() && (secret_key || looks_like_secret_value(s)) =>
                    {
                        out.push(problem(
                            p.clone(),
                            format!(
                                "looks like a secret; config.json holds no secrets: remove it and set {} in the environment or the data dir's .env",
                                env_var_for(&p)
                            ),
                        ));
                    }
                    _ => find_secret_values(child, &p, out),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let p = format!("{path}[{i}]");
                match item {
                    Value::String(s) if looks_like_secret_value(s) => out.push(problem(
                        p.clone(),
                        format!(
                            "looks like a secret; config.json holds no secrets: set {} in the environment or the data dir's .env",
                            env_var_for(path)
                        ),
                    )),
                    _ => find_secret_values(item, &p, out),
                }
            }
        }
        _ => {}
    }
}

/// The environment variable that holds the secret a config path tried to hold.
pub fn env_var_for(path: &str) -> String {
    let known = [
        ("gateway.token", "EXOCLAW_GATEWAY_TOKEN"),
        ("gateway.gateway_token", "EXOCLAW_GATEWAY_TOKEN"),
        ("database.postgres_dsn", "EXOCLAW_POSTGRES_DSN"),
        ("database.dsn", "EXOCLAW_POSTGRES_DSN"),
        ("encryption_key", "EXOCLAW_ENCRYPTION_KEY"),
    ];
    if let Some((_, var)) = known.iter().find(|(p, _)| *p == path) {
        return (*var).to_owned();
    }
    let parts: Vec<&str> = path.split('.').collect();
    if parts.len() == 3 && parts[0] == "channels" {
        return format!(
            "EXOCLAW_{}_{}",
            parts[1].to_ascii_uppercase().replace('-', "_"),
            parts[2].to_ascii_uppercase()
        );
    }
    if parts.len() == 3 && parts[0] == "providers" {
        return format!(
            "EXOCLAW_{}_API_KEY",
            parts[1].to_ascii_uppercase().replace('-', "_")
        );
    }
    let mut var = String::from("EXOCLAW_");
    for c in path.chars() {
        match c {
            'a'..='z' => var.push(c.to_ascii_uppercase()),
            'A'..='Z' | '0'..='9' => var.push(c),
            _ if !var.ends_with('_') => var.push('_'),
            _ => {}
        }
    }
    var.trim_end_matches('_').to_owned()
}

/// Apply `EXOCLAW_*` overrides; a malformed value is a problem named by its
/// variable.
pub fn apply_env_overrides(config: &mut FileConfig, env: &Env) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Some(host) = env.get("EXOCLAW_HOST") {
        config.gateway.host = host.to_owned();
    }
    if let Some(port) = env.get("EXOCLAW_PORT") {
        match port.parse::<u16>() {
            Ok(p) => config.gateway.port = p,
            Err(_) => problems.push(problem(
                "EXOCLAW_PORT",
                "must be a port number from 0 to 65535",
            )),
        }
    }
    if let Some(p) = env.get("EXOCLAW_PROVIDER") {
        config.agents.defaults.provider = Some(p.to_owned());
    }
    if let Some(m) = env.get("EXOCLAW_MODEL") {
        config.agents.defaults.model = Some(m.to_owned());
    }
    let t = &mut config.telemetry;
    if env.get("EXOCLAW_TELEMETRY_ENABLED").is_some() {
        t.enabled = env.flag("EXOCLAW_TELEMETRY_ENABLED");
    }
    if let Some(e) = env.get("EXOCLAW_TELEMETRY_ENDPOINT") {
        t.endpoint = Some(e.to_owned());
    }
    if let Some(p) = env.get("EXOCLAW_TELEMETRY_PROTOCOL") {
        match p.to_ascii_lowercase().as_str() {
            "http" | "http/protobuf" => t.protocol = TelemetryProtocol::Http,
            "grpc" => t.protocol = TelemetryProtocol::Grpc,
            _ => problems.push(problem(
                "EXOCLAW_TELEMETRY_PROTOCOL",
                "must be http (OTLP/HTTP protobuf) or grpc",
            )),
        }
    }
    if env.get("EXOCLAW_TELEMETRY_INSECURE").is_some() {
        t.insecure = env.flag("EXOCLAW_TELEMETRY_INSECURE");
    }
    if let Some(n) = env.get("EXOCLAW_TELEMETRY_SERVICE_NAME") {
        t.service_name = n.to_owned();
    }
    if let Some(u) = env.get("EXOCLAW_ALERTS_WEBHOOK_URL") {
        config.alerts.webhook_url = Some(u.to_owned());
    }
    problems
}

/// The `telemetry` section: an enabled export needs the `otel` build, the
/// `http` protocol and a collector URL that is https, loopback or allowed
/// in plain text (`insecure`).
fn validate_telemetry(p: &mut Vec<Problem>, t: &TelemetryConfig) {
    if !t.enabled {
        return;
    }
    if !cfg!(feature = "otel") {
        p.push(problem(
            "telemetry.enabled",
            "this exoclaw was built without OpenTelemetry export; build it with `cargo build --release --features otel`, or set telemetry.enabled / EXOCLAW_TELEMETRY_ENABLED to false",
        ));
    }
    if t.protocol == TelemetryProtocol::Grpc {
        p.push(problem(
            "telemetry.protocol",
            "grpc is not supported; use http (OTLP/HTTP protobuf, usually port 4318 of the collector)",
        ));
    }
    if t.service_name.trim().is_empty() {
        p.push(problem("telemetry.service_name", "must not be empty"));
    }
    match &t.endpoint {
        None => p.push(problem(
            "telemetry.endpoint",
            "telemetry is enabled but no collector is set (EXOCLAW_TELEMETRY_ENDPOINT, e.g. http://127.0.0.1:4318)",
        )),
        Some(e) => {
            if let Err(m) = check_base_url(e) {
                p.push(problem("telemetry.endpoint", m));
            } else if let Ok(url) = url::Url::parse(e)
                && url.scheme() == "http"
                && !t.insecure
                && !is_loopback_host(&url)
            {
                p.push(problem(
                    "telemetry.endpoint",
                    "a plain http collector beyond loopback sends traces unencrypted; use https, or set telemetry.insecure / EXOCLAW_TELEMETRY_INSECURE=true",
                ));
            }
        }
    }
}

fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn validate_alerts(p: &mut Vec<Problem>, a: &AlertsConfig) {
    if let Some(u) = &a.webhook_url
        && let Err(m) = check_base_url(u)
    {
        p.push(problem("alerts.webhook_url", m));
    }
    if !(a.budget_threshold > 0.0 && a.budget_threshold <= 1.0) {
        p.push(problem(
            "alerts.budget_threshold",
            "must be a ratio above 0 and at most 1 (e.g. 0.8)",
        ));
    }
    range(
        p,
        "alerts.security_burst.count",
        a.security_burst.count.into(),
        1,
        100_000,
    );
    range(
        p,
        "alerts.security_burst.window_sec",
        a.security_burst.window_sec,
        1,
        86_400,
    );
    range(
        p,
        "alerts.provider_failures",
        a.provider_failures.into(),
        1,
        1000,
    );
    range(p, "alerts.throttle_sec", a.throttle_sec, 0, 7 * 86_400);
}

/// Range and cross-field rules.
pub fn validate(c: &FileConfig) -> Vec<Problem> {
    let mut p = Vec::new();
    if let Err(m) = parse_host(&c.gateway.host) {
        p.push(problem("gateway.host", m));
    }
    for (i, origin) in c.gateway.allowed_origins.iter().enumerate() {
        if let Err(m) = check_origin(origin) {
            p.push(problem(format!("gateway.allowed_origins[{i}]"), m));
        }
    }
    for (i, proxy) in c.gateway.trusted_proxies.iter().enumerate() {
        if proxy.parse::<IpAddr>().is_err() {
            p.push(problem(
                format!("gateway.trusted_proxies[{i}]"),
                "must be an IP address such as 127.0.0.1",
            ));
        }
    }
    range(
        &mut p,
        "gateway.shutdown_grace_sec",
        c.gateway.shutdown_grace_sec,
        0,
        3600,
    );
    range(
        &mut p,
        "gateway.pairing_ttl_sec",
        c.gateway.pairing_ttl_sec,
        1,
        3600,
    );
    range(
        &mut p,
        "gateway.credential_recheck_sec",
        c.gateway.credential_recheck_sec,
        1,
        3600,
    );
    for (path, value) in [
        ("gateway.max_connections", c.gateway.max_connections),
        (
            "gateway.max_connections_per_ip",
            c.gateway.max_connections_per_ip,
        ),
        ("gateway.max_unauthenticated", c.gateway.max_unauthenticated),
        (
            "gateway.max_unauthenticated_per_ip",
            c.gateway.max_unauthenticated_per_ip,
        ),
        ("gateway.max_ws_per_user", c.gateway.max_ws_per_user),
        ("gateway.max_ws_per_ip", c.gateway.max_ws_per_ip),
        (
            "gateway.max_requests_per_tenant",
            c.gateway.max_requests_per_tenant,
        ),
        ("gateway.max_runs_per_tenant", c.gateway.max_runs_per_tenant),
    ] {
        range(&mut p, path, value as u64, 1, 1_000_000);
    }
    range(
        &mut p,
        "gateway.header_timeout_sec",
        c.gateway.header_timeout_sec,
        1,
        300,
    );
    range(
        &mut p,
        "gateway.write_stall_timeout_sec",
        c.gateway.write_stall_timeout_sec,
        1,
        3600,
    );
    range(
        &mut p,
        "gateway.max_header_bytes",
        c.gateway.max_header_bytes as u64,
        4096,
        1024 * 1024,
    );
    channels(&mut p, &c.channels);
    range(
        &mut p,
        "gateway.max_body_bytes",
        c.gateway.max_body_bytes as u64,
        1024,
        64 * 1024 * 1024,
    );
    range(
        &mut p,
        "database.max_connections",
        c.database.max_connections.into(),
        1,
        1000,
    );
    range(
        &mut p,
        "database.busy_timeout_ms",
        c.database.busy_timeout_ms,
        0,
        600_000,
    );
    let d = &c.agents.defaults;
    range(
        &mut p,
        "agents.defaults.max_iterations",
        d.max_iterations.into(),
        1,
        1000,
    );
    for (path, value, lo, hi) in [
        (
            "agents.defaults.subagents.max_depth",
            d.subagents.max_depth.into(),
            0,
            8,
        ),
        (
            "agents.defaults.subagents.max_concurrent",
            d.subagents.max_concurrent.into(),
            1,
            64,
        ),
        (
            "agents.defaults.subagents.timeout_sec",
            d.subagents.timeout_sec,
            1,
            86_400,
        ),
        (
            "agents.defaults.delegation.max_depth",
            d.delegation.max_depth.into(),
            1,
            8,
        ),
        (
            "agents.defaults.delegation.wait_sec",
            d.delegation.wait_sec,
            0,
            3_600,
        ),
        (
            "agents.defaults.delegation.timeout_sec",
            d.delegation.timeout_sec,
            1,
            86_400,
        ),
        (
            "agents.defaults.handoff.idle_sec",
            d.handoff.idle_sec,
            60,
            30 * 86_400,
        ),
    ] {
        range(&mut p, path, value, lo, hi);
    }
    let s = &d.sandbox;
    range(
        &mut p,
        "agents.defaults.sandbox.memory_mb",
        s.memory_mb.into(),
        16,
        1 << 20,
    );
    range(
        &mut p,
        "agents.defaults.sandbox.cpus",
        s.cpus.into(),
        1,
        1024,
    );
    range(
        &mut p,
        "agents.defaults.sandbox.timeout_sec",
        s.timeout_sec,
        1,
        86_400,
    );
    range(
        &mut p,
        "agents.defaults.sandbox.max_pids",
        s.max_pids.into(),
        1,
        65_536,
    );
    range(
        &mut p,
        "agents.defaults.sandbox.max_open_files",
        s.max_open_files.into(),
        16,
        1 << 20,
    );
    for (name, provider) in &c.providers {
        if !exoclaw_core::id::is_valid_slug(name) {
            p.push(problem(
                format!("providers.{name}"),
                "provider names are lowercase letters, digits, '-' and '_'",
            ));
        }
        if let Some(base) = &provider.base_url
            && let Err(m) = check_base_url(base)
        {
            p.push(problem(format!("providers.{name}.base_url"), m));
        }
    }
    domain_list(&mut p, "egress.allow_domains", &c.egress.allow_domains);
    range(
        &mut p,
        "agents.window_cache_idle_sec",
        c.agents.window_cache_idle_sec,
        1,
        86_400,
    );
    range(
        &mut p,
        "egress.pool_max_idle_per_host",
        c.egress.pool_max_idle_per_host as u64,
        0,
        10_000,
    );
    range(
        &mut p,
        "egress.pool_idle_timeout_sec",
        c.egress.pool_idle_timeout_sec,
        1,
        3_600,
    );
    domain_list(
        &mut p,
        "tools.web_fetch.allow_domains",
        &c.tools.web_fetch.allow_domains,
    );
    domain_list(
        &mut p,
        "tools.web_fetch.deny_domains",
        &c.tools.web_fetch.deny_domains,
    );
    for (i, s) in c.tools.mcp.servers.iter().enumerate() {
        if let Err(m) = s.server.validate() {
            p.push(problem(format!("tools.mcp.servers[{i}].server"), m));
        }
    }
    for (i, origin) in c.tools.mcp.allow_private_origins.iter().enumerate() {
        if let Err(e) = exoclaw_egress::EgressClient::builder().allow_origin(origin) {
            p.push(problem(
                format!("tools.mcp.allow_private_origins[{i}]"),
                e.reason.to_string(),
            ));
        }
    }
    range(
        &mut p,
        "backup.keep_days",
        c.backup.keep_days.into(),
        1,
        3650,
    );
    if let Some(s) = &c.backup.schedule
        && let Err(e) = exoclaw_gateway::backup::schedule::parse_schedule(s)
    {
        p.push(problem("backup.schedule", e));
    }
    validate_telemetry(&mut p, &c.telemetry);
    validate_alerts(&mut p, &c.alerts);
    for (path, message) in c
        .scheduler
        .problems()
        .into_iter()
        .chain(c.cron.problems())
        .chain(c.memory.problems())
        .chain(c.skills.problems())
    {
        p.push(problem(path, message));
    }
    p
}

fn channels(
    p: &mut Vec<Problem>,
    channels: &std::collections::BTreeMap<String, super::file::ChannelConfig>,
) {
    use super::file::DmPolicy;
    for (name, c) in channels {
        if !exoclaw_core::id::is_valid_slug(name) {
            p.push(problem(
                format!("channels.{name}"),
                "channel names are lowercase letters, digits, '-' and '_'",
            ));
        }
        for (field, list) in [
            ("allow_from", &c.allow_from),
            ("groups.allow", &c.groups.allow),
        ] {
            for (i, id) in list.iter().enumerate() {
                if id.trim().is_empty() || id.len() > 256 || id.chars().any(char::is_control) {
                    p.push(problem(
                        format!("channels.{name}.{field}[{i}]"),
                        "must be a non-empty id of at most 256 characters",
                    ));
                }
            }
        }
        for (path, message) in exoclaw_gateway::config::channels::problems(
            &c.webhook,
            &c.telegram,
            &c.discord,
            &c.outbox,
            &c.progress,
            &c.files,
        ) {
            p.push(problem(format!("channels.{name}.{path}"), message));
        }
        if c.dm_policy == DmPolicy::Allowlist && c.allow_from.is_empty() {
            p.push(problem(
                format!("channels.{name}.allow_from"),
                "dm_policy allowlist with an empty allow_from admits nobody; list sender ids or \
                 set dm_policy to disabled",
            ));
        }
    }
}

fn range(p: &mut Vec<Problem>, path: &str, v: u64, min: u64, max: u64) {
    if v < min || v > max {
        p.push(problem(
            path,
            format!("must be between {min} and {max} (got {v})"),
        ));
    }
}

/// `gateway.host` must be an IP literal or `localhost`.
pub fn parse_host(host: &str) -> Result<IpAddr, String> {
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    host.trim_matches(|c| c == '[' || c == ']')
        .parse::<IpAddr>()
        .map_err(|_| "must be an IP address (127.0.0.1, ::1, 0.0.0.0) or localhost".to_owned())
}

fn check_origin(origin: &str) -> Result<(), String> {
    if origin.contains('*') {
        return Err("wildcards are not allowed; list each origin".into());
    }
    let url = url::Url::parse(origin).map_err(|_| "must be scheme://host[:port]".to_owned())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("must be an http or https origin".into());
    }
    if url.path() != "/" || url.query().is_some() || !url.username().is_empty() {
        return Err("an origin has no path, query or user info".into());
    }
    Ok(())
}

fn check_base_url(base: &str) -> Result<(), String> {
    let url = url::Url::parse(base).map_err(|_| "must be an absolute http(s) URL".to_owned())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must use http or https".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials; keys come from the environment".into());
    }
    Ok(())
}

fn domain_list(p: &mut Vec<Problem>, path: &str, list: &[String]) {
    for (i, d) in list.iter().enumerate() {
        let bare = d.strip_prefix("*.").unwrap_or(d);
        let ok = !bare.is_empty()
            && bare.len() <= 253
            && bare.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            });
        if !ok {
            p.push(problem(
                format!("{path}[{i}]"),
                "must be a lowercase domain (example.com) or a wildcard (*.example.com)",
            ));
        }
    }
}

/// Read and check the secret variables. Never echoes a value.
pub fn secrets_from_env(env: &Env) -> (exoclaw_gateway::config::SecretSettings, Vec<Problem>) {
    let mut p = Vec::new();
    let gateway_token = env.get("EXOCLAW_GATEWAY_TOKEN").map(Secret::new);
    if let Some(t) = &gateway_token
        && t.len() < MIN_TOKEN_LEN
    {
        p.push(problem(
            "EXOCLAW_GATEWAY_TOKEN",
            format!(
                "is {} characters; a gateway token needs at least {MIN_TOKEN_LEN} (generate one with `openssl rand -hex 32`)",
                t.len()
            ),
        ));
    }
    let mut key = |name: &str| {
        let v = env.get(name).map(Secret::new);
        if let Some(k) = &v
            && !is_hex_key(k.expose())
        {
            p.push(problem(
                name,
                "must be 64 hex characters (generate one with `openssl rand -hex 32`)",
            ));
        }
        v
    };
    let encryption_key = key("EXOCLAW_ENCRYPTION_KEY");
    let encryption_key_old = key("EXOCLAW_ENCRYPTION_KEY_OLD");
    let backup_key = key("EXOCLAW_BACKUP_KEY");
    let postgres_dsn = env.get("EXOCLAW_POSTGRES_DSN").map(Secret::new);
    if let Some(dsn) = &postgres_dsn
        && !(dsn.expose().starts_with("postgres://") || dsn.expose().starts_with("postgresql://"))
    {
        p.push(problem(
            "EXOCLAW_POSTGRES_DSN",
            "must be a postgres:// or postgresql:// URL",
        ));
    }
    (
        exoclaw_gateway::config::SecretSettings {
            gateway_token,
            encryption_key,
            encryption_key_old,
            backup_key,
            postgres_dsn,
        },
        p,
    )
}

fn is_hex_key(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}
