//! [`ErrorCode`]: every machine code the HTTP API and the WebSocket RPC
//! answer, each with its HTTP status, in one table. The wire strings are a
//! public contract (clients and docs/protocol.md match on them): never
//! rename one; add a variant instead.
//!
//! Codes that come from the agent loop or a tool as text (a run's failure,
//! a tool's refusal) are read back with [`ErrorCode::from_wire`]; the
//! `known_codes` test below fails when the tool crates start using a code
//! this table lacks.

use axum::http::StatusCode;

/// Declares [`ErrorCode`]: `Variant = "wire.code" => STATUS`, one a line,
/// with its doc. Expands to the enum, [`ErrorCode::ALL`],
/// [`ErrorCode::as_str`] and [`ErrorCode::status`] (each one `match`).
macro_rules! error_codes {
    ($( $(#[doc = $doc:literal])* $variant:ident = $wire:literal => $status:ident, )*) => {
        /// A stable machine code with its HTTP status (see the module docs).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl ErrorCode {
            /// Every code, in table order.
            pub const ALL: &[ErrorCode] = &[ $( ErrorCode::$variant, )* ];

            /// The code on the wire (`error.code`).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( ErrorCode::$variant => $wire, )*
                }
            }

            /// The HTTP status an [`ApiError`](super::ApiError) with this
            /// code answers.
            pub const fn status(self) -> StatusCode {
                match self {
                    $( ErrorCode::$variant => StatusCode::$status, )*
                }
            }
        }
    };
}

error_codes! {
    // Authentication and authorisation.
    /// No credential, or one that is not valid.
    AuthUnauthorized = "auth.unauthorized" => UNAUTHORIZED,
    /// The API key has expired.
    AuthKeyExpired = "auth.key_expired" => UNAUTHORIZED,
    /// The API key (or device credential) was revoked.
    AuthKeyRevoked = "auth.key_revoked" => UNAUTHORIZED,
    /// The credential's user is disabled.
    AuthUserDisabled = "auth.user_disabled" => UNAUTHORIZED,
    /// More than one `Authorization` header.
    AuthAmbiguous = "auth.ambiguous" => BAD_REQUEST,
    /// The credential lacks the permission (or the rank) the action needs.
    AuthForbidden = "auth.forbidden" => FORBIDDEN,
    /// A WebSocket upgrade from an `Origin` not in `gateway.allowed_origins`.
    AuthOriginRefused = "auth.origin_refused" => FORBIDDEN,
    /// A dashboard request that changes something without the session's
    /// CSRF token, or from another site's `Origin`.
    AuthCsrf = "auth.csrf" => FORBIDDEN,

    // The request.
    /// A parameter or field has a value the route refuses.
    RequestInvalid = "request.invalid" => BAD_REQUEST,
    /// The body is not JSON (or a WebSocket frame is not).
    RequestInvalidJson = "request.invalid_json" => BAD_REQUEST,
    /// The body is JSON but not the route's shape (a missing, unknown or
    /// mistyped field). Shares its wire code with `RequestInvalidJson`.
    RequestJsonMismatch = "request.invalid_json" => UNPROCESSABLE_ENTITY,
    /// A JSON body without `Content-Type: application/json`. Shares its wire
    /// code with `RequestInvalidJson`.
    RequestJsonContentType = "request.invalid_json" => UNSUPPORTED_MEDIA_TYPE,
    /// The body (or a secret value) is larger than allowed.
    RequestTooLarge = "request.too_large" => PAYLOAD_TOO_LARGE,
    /// The path exists but not with this method (`Allow` lists the methods).
    RequestMethodNotAllowed = "request.method_not_allowed" => METHOD_NOT_ALLOWED,
    /// A WebSocket method that does not exist.
    RequestUnknownMethod = "request.unknown_method" => BAD_REQUEST,
    /// A WebSocket `connect` asking for a protocol version this gateway
    /// does not speak.
    ProtocolUnsupported = "protocol.unsupported" => BAD_REQUEST,
    /// Over `gateway.rate_limit_rpm` (`Retry-After` says when to retry).
    RateLimited = "rate_limited" => TOO_MANY_REQUESTS,
    /// No such resource (or one of another tenant, or not visible to the
    /// caller: existence does not leak).
    NotFound = "not_found" => NOT_FOUND,
    /// The resource already exists, or is not in a state that allows this.
    Conflict = "conflict" => CONFLICT,
    /// `model` names no agent (`GET /v1/models` lists them).
    ModelNotFound = "model_not_found" => NOT_FOUND,
    /// The body names an agent the tenant does not have where the path
    /// names another (a link's `target`): `404` stays about the path's.
    AgentUnknown = "agent.unknown" => UNPROCESSABLE_ENTITY,

    // The gateway.
    /// Our fault; the detail is in the gateway log under the request id.
    Internal = "internal" => INTERNAL_SERVER_ERROR,
    /// The store cannot be reached right now; retry.
    StoreUnavailable = "store.unavailable" => SERVICE_UNAVAILABLE,
    /// The secret vault cannot serve the request (see the gateway log).
    VaultUnavailable = "vault.unavailable" => INTERNAL_SERVER_ERROR,
    /// Every connection slot is taken (answered before HTTP is read).
    ServerBusy = "server.busy" => SERVICE_UNAVAILABLE,
    /// The user or address holds as many WebSocket connections as
    /// `gateway.max_ws_per_user` / `gateway.max_ws_per_ip` allow.
    ConnectionLimit = "connection.limit" => TOO_MANY_REQUESTS,
    /// The tenant has as many requests or runs in progress as
    /// `gateway.max_requests_per_tenant` / `gateway.max_runs_per_tenant`
    /// allow; retry when one ends.
    TenantBusy = "tenant.busy" => TOO_MANY_REQUESTS,
    /// Tenant settings that are not the documented shape (an unknown
    /// field, a bad domain pattern, a negative budget).
    TenantSettingsInvalid = "tenant.settings_invalid" => BAD_REQUEST,
    /// Tenant settings that would widen the gateway's configuration (the
    /// message names each field and the gateway's value): a tenant's
    /// settings can only narrow it.
    TenantSettingsWiden = "tenant.settings_widen" => BAD_REQUEST,

    // Pairing.
    /// No pending pairing request has this code.
    PairingInvalidCode = "pairing.invalid_code" => NOT_FOUND,
    /// The pairing request was already approved or denied.
    PairingAlreadyDecided = "pairing.already_decided" => CONFLICT,
    /// Too many failed approvals: deciding is locked for a while.
    PairingLocked = "pairing.locked" => TOO_MANY_REQUESTS,
    /// The user to pair does not exist or is disabled.
    PairingUserUnavailable = "pairing.user_unavailable" => CONFLICT,
    /// The user already has the most pending pairing requests.
    PairingTooManyPending = "pairing.too_many_pending" => TOO_MANY_REQUESTS,

    // A run of the agent (chat completions, the WebSocket's `chat.send`).
    /// No provider serves the agent's model.
    ProviderNotConfigured = "provider.not_configured" => SERVICE_UNAVAILABLE,
    /// The provider answered 429.
    ProviderRateLimited = "provider.rate_limited" => TOO_MANY_REQUESTS,
    /// The gateway's own per-model limit (RPM/TPM).
    ProviderLocalRateLimit = "provider.local_rate_limit" => TOO_MANY_REQUESTS,
    /// The provider did not answer in time.
    ProviderTimeout = "provider.timeout" => GATEWAY_TIMEOUT,
    /// The provider's stream stalled.
    ProviderStalled = "provider.stalled" => GATEWAY_TIMEOUT,
    /// The provider cannot be reached or failed.
    ProviderUnavailable = "provider.unavailable" => BAD_GATEWAY,
    /// The provider refused the request.
    ProviderRejected = "provider.rejected" => BAD_GATEWAY,
    /// The provider refused the gateway's key.
    ProviderAuth = "provider.auth" => BAD_GATEWAY,
    /// The provider's answer could not be read.
    ProviderMalformed = "provider.malformed" => BAD_GATEWAY,
    /// The provider reported an error inside its stream.
    ProviderStreamError = "provider.stream_error" => BAD_GATEWAY,
    /// A budget would be exceeded.
    BudgetExceeded = "budget.exceeded" => TOO_MANY_REQUESTS,
    /// The run reached `agents.defaults.max_iterations`.
    AgentMaxIterations = "agent.max_iterations" => INTERNAL_SERVER_ERROR,
    /// The history could not be compacted to fit the context window.
    AgentCompactionFailed = "agent.compaction_failed" => INTERNAL_SERVER_ERROR,
    /// The run failed for a reason without a code of its own.
    AgentFailed = "agent.failed" => INTERNAL_SERVER_ERROR,
    /// The agent's `disabled` setting is on: it answers nothing.
    AgentDisabled = "agent.disabled" => FORBIDDEN,

    // Delegation and subagents (tool errors of `delegate` and `spawn`).
    /// Other agents cannot be reached from here (outside an agent run, or
    /// while the gateway stops).
    DelegationUnavailable = "delegation.unavailable" => SERVICE_UNAVAILABLE,
    /// An agent asked to delegate to itself.
    DelegationSelf = "delegation.self" => BAD_REQUEST,
    /// The chain of delegations would be deeper than allowed.
    DelegationDepth = "delegation.depth" => UNPROCESSABLE_ENTITY,
    /// No such agent in the caller's tenant.
    DelegationNoAgent = "delegation.no_agent" => NOT_FOUND,
    /// The target agent is disabled.
    DelegationDisabled = "delegation.disabled" => FORBIDDEN,
    /// No permission link lets the caller reach the target.
    DelegationNoLink = "delegation.no_link" => FORBIDDEN,
    /// The link is not open to this user.
    DelegationUserDenied = "delegation.user_denied" => FORBIDDEN,
    /// Every slot of the link or target stayed taken for the whole wait.
    DelegationBusy = "delegation.busy" => TOO_MANY_REQUESTS,
    /// The delegated run was stopped.
    DelegationCancelled = "delegation.cancelled" => CONFLICT,
    /// The delegated run failed.
    DelegationFailed = "delegation.failed" => BAD_GATEWAY,
    /// The delegated run did not finish in time.
    DelegationTimeout = "delegation.timeout" => GATEWAY_TIMEOUT,
    /// A subagent may not spawn another at this depth.
    SpawnDepth = "spawn.depth" => UNPROCESSABLE_ENTITY,
    /// A handoff cannot be recorded right now (the gateway stops).
    HandoffUnavailable = "handoff.unavailable" => SERVICE_UNAVAILABLE,
    /// There is no conversation to hand over (outside a session).
    HandoffNoConversation = "handoff.no_conversation" => UNPROCESSABLE_ENTITY,
    /// Only the agent talking to the user may hand over.
    HandoffNotHere = "handoff.not_here" => UNPROCESSABLE_ENTITY,
    /// A handoff to the agent itself.
    HandoffSelf = "handoff.self" => BAD_REQUEST,
    /// No link (or team) lets the agent hand over to the target.
    HandoffNotAllowed = "handoff.not_allowed" => FORBIDDEN,
    /// An output did not pass a blocking quality gate after its retries.
    GateFailed = "gate.failed" => UNPROCESSABLE_ENTITY,
    /// A blocking quality gate refused a team task's result: revise it and
    /// complete the task again.
    GateRejected = "gate.rejected" => UNPROCESSABLE_ENTITY,
    /// No such team in the tenant.
    TeamNotFound = "team.not_found" => NOT_FOUND,
    /// The agent is neither the team's lead nor a member: it acts only for
    /// its own teams.
    TeamNotMember = "team.not_member" => FORBIDDEN,
    /// A message (or a claim, a task) names an agent that is not in the
    /// team.
    TeamUnknownMember = "team.unknown_member" => UNPROCESSABLE_ENTITY,
    /// No such task on the team's board.
    TeamTaskNotFound = "team.task_not_found" => NOT_FOUND,
    /// The task is not in a state that allows this (claimed already,
    /// blocked, finished; finished only by its owner, once).
    TeamTaskConflict = "team.task_conflict" => CONFLICT,
    /// `blocked_by` names a task that is not on the team's board (so no
    /// dependency can loop).
    TeamInvalidDependency = "team.invalid_dependency" => UNPROCESSABLE_ENTITY,
    /// The team board cannot be reached right now (the gateway stops, or
    /// the store is unavailable).
    TeamUnavailable = "team.unavailable" => SERVICE_UNAVAILABLE,
    /// A cron schedule that is not a schedule (the message says why).
    CronInvalidSchedule = "cron.invalid_schedule" => BAD_REQUEST,
    /// A cron schedule naming a time zone that does not exist.
    CronInvalidTimezone = "cron.invalid_timezone" => BAD_REQUEST,
    /// A cron schedule with no occurrence after now (an `at` in the past).
    CronNoNextRun = "cron.no_next_run" => BAD_REQUEST,
    /// A cron job's delivery (session, channel peer, webhook) is not usable.
    CronInvalidDelivery = "cron.invalid_delivery" => BAD_REQUEST,
    /// Other cron job input (name, message, jitter).
    CronInvalid = "cron.invalid" => BAD_REQUEST,
    /// The agent has `cron.max_jobs_per_agent` jobs already.
    CronLimit = "cron.limit" => CONFLICT,
    /// No such cron job (or not one the caller may see).
    CronNotFound = "cron.not_found" => NOT_FOUND,
    /// The cron tool cannot reach the runtime (the gateway stops).
    CronUnavailable = "cron.unavailable" => SERVICE_UNAVAILABLE,
    /// Memory input the gateway refuses: empty, oversized (the limit
    /// named), importance out of range, a search without an agent.
    MemoryInvalid = "memory.invalid" => BAD_REQUEST,
    /// No such memory (or not one the caller may see).
    MemoryNotFound = "memory.not_found" => NOT_FOUND,
    /// A skill the install pipeline refuses: a corrupt or hostile archive
    /// (a path out of the skill, a link, a device, binary content) or a
    /// bad `SKILL.md`.
    SkillInvalid = "skill.invalid" => BAD_REQUEST,
    /// A skill over a `skills.*` cap (the limit named).
    SkillTooLarge = "skill.too_large" => PAYLOAD_TOO_LARGE,
    /// No such skill (or not the tenant's).
    SkillNotFound = "skill.not_found" => NOT_FOUND,
    /// The skill changed since it was reviewed (approval by `sha256`).
    SkillConflict = "skill.conflict" => CONFLICT,
    /// No channel of that name (or not a webhook channel).
    ChannelUnknown = "channel.unknown" => NOT_FOUND,
    /// A webhook request whose signature, timestamp or their headers do
    /// not verify (audited).
    ChannelSignatureInvalid = "channel.signature_invalid" => UNAUTHORIZED,
    /// A webhook event id seen before (audited).
    ChannelReplay = "channel.replay" => CONFLICT,
    /// The channel cannot take messages yet (no webhook secret stored).
    ChannelNotReady = "channel.not_ready" => SERVICE_UNAVAILABLE,
    /// A channel's settings that are not valid, or a key a `PATCH` does
    /// not change (the message names each field).
    ChannelSettingsInvalid = "channel.settings_invalid" => BAD_REQUEST,
    /// `config.json` cannot be rewritten (not a regular file, not
    /// writable): edit it by hand.
    ChannelConfigUnwritable = "channel.config_unwritable" => CONFLICT,
    /// `channel_send_file` outside a messaging channel's conversation.
    ChannelNoChannel = "channel.no_channel" => UNPROCESSABLE_ENTITY,
    /// `channel_send_file` on a channel that does not send files.
    ChannelFilesDisabled = "channel.files_disabled" => UNPROCESSABLE_ENTITY,
    /// The run was cancelled.
    Cancelled = "cancelled" => INTERNAL_SERVER_ERROR,

    // Security policies. As an API error: the input was refused
    // (injection) or the egress policy refused the provider's address (the
    // gateway's configuration, not the request: 502). A tool call refused by
    // any of them answers 403 ([`ErrorCode::tool_status`]).
    /// Prompt-injection patterns in the input (or a tool's output) blocked.
    SecurityInjectionBlocked = "security.injection_blocked" => BAD_REQUEST,
    /// An address the egress policy never reaches (private, loopback, ...).
    SecuritySsrfBlocked = "security.ssrf_blocked" => BAD_GATEWAY,
    /// A domain the egress policy does not allow.
    SecurityEgressDenied = "security.egress_denied" => BAD_GATEWAY,
    /// A path outside the workspace or on the deny list.
    SecurityPathDenied = "security.path_denied" => FORBIDDEN,
    /// A shell command a rule refuses.
    SecurityShellDenied = "security.shell_denied" => FORBIDDEN,
    /// A shell command that cannot be analysed.
    SecurityShellUnparseable = "security.shell_unparseable" => FORBIDDEN,
    /// A tool not allowed for the agent.
    SecurityToolDenied = "security.tool_denied" => FORBIDDEN,
    /// A tool refused once untrusted content entered the run.
    SecurityUntrustedContent = "security.untrusted_content" => FORBIDDEN,
    /// The exec sandbox cannot be set up on this host.
    SecuritySandboxUnavailable = "security.sandbox_unavailable" => FORBIDDEN,
    /// The command needs an operator's approval.
    SecurityApprovalRequired = "security.approval_required" => FORBIDDEN,
    /// An operator denied the command.
    SecurityApprovalDenied = "security.approval_denied" => FORBIDDEN,
    /// No operator decided in time.
    SecurityApprovalTimeout = "security.approval_timeout" => FORBIDDEN,
    /// Approvals cannot be asked for right now.
    SecurityApprovalUnavailable = "security.approval_unavailable" => FORBIDDEN,

    // Tools (`POST /v1/tools/invoke`).
    /// No tool of that name.
    ToolNotFound = "tool.not_found" => NOT_FOUND,
    /// The arguments do not fit the tool's schema.
    ToolInvalidArgs = "tool.invalid_args" => BAD_REQUEST,
    /// Over `tools.rate_limit_per_hour` in this session.
    ToolRateLimited = "tool.rate_limited" => TOO_MANY_REQUESTS,
    /// The tool did not finish in time.
    ToolTimeout = "tool.timeout" => GATEWAY_TIMEOUT,
    /// The tool ran and failed.
    ToolFailed = "tool.failed" => UNPROCESSABLE_ENTITY,
    /// `edit_file` could not apply an edit.
    ToolEditFailed = "tool.edit_failed" => UNPROCESSABLE_ENTITY,
    /// A per-session limit of the tool (background jobs).
    ToolLimit = "tool.limit" => UNPROCESSABLE_ENTITY,
    /// The workspace quota would be exceeded.
    ToolQuotaExceeded = "tool.quota_exceeded" => UNPROCESSABLE_ENTITY,
    /// A tool registered at run time has a name that is not a tool name.
    ToolInvalidName = "tool.invalid_name" => BAD_REQUEST,
    /// A tool registered at run time takes a built-in tool's name.
    ToolNameTaken = "tool.name_taken" => CONFLICT,
    /// A tool registered at run time declares a parameter schema that is
    /// not a valid JSON Schema.
    ToolBadSchema = "tool.bad_schema" => BAD_REQUEST,
    /// A custom tool's definition was refused (`/v1/tools/custom`).
    ToolInvalidDefinition = "tool.invalid_definition" => BAD_REQUEST,
    /// A file larger than the tool (or its channel) takes.
    ToolTooLarge = "tool.too_large" => UNPROCESSABLE_ENTITY,
    /// An MCP server's definition or grant was refused (`/v1/mcp/*`).
    McpInvalidServer = "mcp.invalid_server" => BAD_REQUEST,
    /// The MCP server a tool belongs to is down (it is being restarted).
    McpServerDown = "mcp.server_down" => SERVICE_UNAVAILABLE,
    /// A web tool's answer was larger than allowed.
    EgressTooLarge = "egress.too_large" => UNPROCESSABLE_ENTITY,
    /// A web tool met too many redirects.
    EgressTooManyRedirects = "egress.too_many_redirects" => UNPROCESSABLE_ENTITY,
    /// A web tool's request timed out.
    EgressTimeout = "egress.timeout" => UNPROCESSABLE_ENTITY,
    /// A web tool could not reach the server.
    EgressUnavailable = "egress.unavailable" => UNPROCESSABLE_ENTITY,
}

impl ErrorCode {
    /// The code with this wire string (the first, for the three that share
    /// `request.invalid_json`).
    pub fn from_wire(code: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.as_str() == code)
    }

    /// The code a run failed with (`Finish::Failed`), or `agent.failed`.
    pub fn of_run_failure(code: &str) -> Self {
        Self::from_wire(code).unwrap_or(Self::AgentFailed)
    }

    /// The code a tool refused or failed with, or `tool.failed` (logged:
    /// a tool crate has a code this table lacks).
    pub fn of_tool_error(code: &str) -> Self {
        Self::from_wire(code).unwrap_or_else(|| {
            tracing::warn!(code, "a tool error code unknown to the HTTP API");
            Self::ToolFailed
        })
    }

    /// Whether this is a security policy's refusal (`security.*`).
    pub fn is_security(self) -> bool {
        self.as_str().starts_with("security.")
    }

    /// The status of a tool call refused or failed with this code: a
    /// security policy's refusal is the caller's `403`, whatever its status
    /// as an API error; the others as [`ErrorCode::status`].
    pub fn tool_status(self) -> StatusCode {
        if self.is_security() {
            StatusCode::FORBIDDEN
        } else {
            self.status()
        }
    }

    /// Every distinct wire string, in table order (the OpenAPI enum).
    pub fn wire_strings() -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::with_capacity(Self::ALL.len());
        for c in Self::ALL {
            if !out.contains(&c.as_str()) {
                out.push(c.as_str());
            }
        }
        out
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl utoipa::PartialSchema for ErrorCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "A stable machine code (docs/openapi.json lists every one; never renamed)",
            ))
            .enum_values(Some(Self::wire_strings()))
            .into()
    }
}

impl utoipa::ToSchema for ErrorCode {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_strings_are_dotted_words_and_only_the_json_ones_repeat() {
        for c in ErrorCode::ALL {
            let s = c.as_str();
            assert!(
                s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_'),
                "{s}"
            );
            assert!(c.status().is_client_error() || c.status().is_server_error());
            assert_eq!(ErrorCode::from_wire(s).map(ErrorCode::as_str), Some(s));
        }
        let shared = ErrorCode::ALL.len() - ErrorCode::wire_strings().len();
        assert_eq!(shared, 2, "only request.invalid_json has three statuses");
    }

    #[test]
    fn statuses_of_run_failures_and_tool_refusals_are_as_before() {
        use ErrorCode as C;
        for (code, status) in [
            ("budget.exceeded", 429),
            ("provider.rate_limited", 429),
            ("provider.local_rate_limit", 429),
            ("provider.timeout", 504),
            ("provider.stalled", 504),
            ("provider.unavailable", 502),
            ("provider.malformed", 502),
            ("security.ssrf_blocked", 502),
            ("security.egress_denied", 502),
            ("agent.max_iterations", 500),
            ("cancelled", 500),
            ("something.new", 500),
        ] {
            assert_eq!(C::of_run_failure(code).status().as_u16(), status, "{code}");
        }
        assert_eq!(C::of_run_failure("security.other"), C::AgentFailed);
        for (code, status) in [
            ("tool.not_found", 404),
            ("not_found", 404),
            ("tool.invalid_args", 400),
            ("tool.rate_limited", 429),
            ("tool.timeout", 504),
            ("tool.failed", 422),
            ("tool.quota_exceeded", 422),
            ("egress.timeout", 422),
            ("security.ssrf_blocked", 403),
            ("security.injection_blocked", 403),
            ("security.path_denied", 403),
        ] {
            assert_eq!(
                C::of_tool_error(code).tool_status().as_u16(),
                status,
                "{code}"
            );
        }
    }

    /// Every code literal the tool crates and the runtime give a
    /// `ToolError`, and every provider and egress code, is in the table:
    /// a new one must be added here (with its status) before it reaches a
    /// client as `tool.failed`.
    #[test]
    fn known_codes() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut literals = Vec::new();
        for dir in ["exoclaw-tools/src", "exoclaw-gateway/src/runtime"] {
            collect_tool_error_codes(&root.join(dir), &mut literals);
        }
        assert!(literals.len() >= 15, "{literals:?}");
        literals.push(exoclaw_tools::quota::QUOTA_EXCEEDED.to_owned());
        for e in [
            exoclaw_egress::EgressError::Timeout,
            exoclaw_egress::EgressError::TooLarge { limit: 1 },
            exoclaw_egress::EgressError::TooManyRedirects { max: 1 },
            exoclaw_egress::EgressError::Unavailable(String::new()),
        ] {
            literals.push(e.code().to_owned());
        }
        literals.extend(["security.ssrf_blocked", "security.egress_denied"].map(str::to_owned));
        use exoclaw_gateway::runtime::teams::TeamError as T;
        for e in [
            T::NoTeam(String::new()),
            T::NotMember {
                agent: exoclaw_core::AgentId::new("a"),
                team: String::new(),
            },
            T::UnknownMember {
                agent: exoclaw_core::AgentId::new("a"),
                team: String::new(),
            },
            T::NoTask {
                task: String::new(),
                team: String::new(),
            },
            T::Conflict(String::new()),
            T::Dependency(String::new()),
            T::Invalid(String::new()),
            T::Unavailable,
            T::Internal,
        ] {
            literals.push(e.code().to_owned());
        }
        use exoclaw_core::provider::ProviderError as P;
        for e in [
            P::Unavailable(String::new()),
            P::Auth(String::new()),
            P::Timeout(std::time::Duration::ZERO),
            P::Stalled(std::time::Duration::ZERO),
            P::Malformed(String::new()),
            P::Stream(String::new()),
            P::Budget(String::new()),
            P::LocalRateLimit(String::new()),
            P::NoProvider(String::new()),
            P::Cancelled,
        ] {
            literals.push(e.code().to_owned());
        }
        for code in literals {
            assert!(
                ErrorCode::from_wire(&code).is_some(),
                "{code} is not an ErrorCode: add it to src/http/error/code.rs"
            );
        }
    }

    fn collect_tool_error_codes(dir: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            // Tests invent codes of their own.
            if path
                .file_name()
                .is_some_and(|n| n == "tests" || n == "tests.rs")
            {
                continue;
            }
            if path.is_dir() {
                collect_tool_error_codes(&path, out);
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            for (i, _) in text.match_indices("ToolError::new(") {
                let rest = text[i + "ToolError::new(".len()..].trim_start();
                if let Some(lit) = rest.strip_prefix('"')
                    && let Some(end) = lit.find('"')
                {
                    out.push(lit[..end].to_owned());
                }
            }
        }
    }
}
