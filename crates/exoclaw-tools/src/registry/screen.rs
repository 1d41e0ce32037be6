//! What a tool's output becomes before anyone reads it: scrubbed of every
//! secret the gateway knows for the caller's tenant (and known credential
//! formats); and when the tool's provenance (or this one output) is
//! untrusted, scanned for
//! prompt injection (logged and audited; withheld under `block`), wrapped
//! in untrusted-content markers with forged markers defanged, and the run
//! marked tainted. Errors are scrubbed too. A call whose output a person
//! reads directly (`RunState::direct`) is scrubbed only.

use super::audit;
use super::call::Call;
use super::policy::InjectionMode;
use exoclaw_core::store::AuditStore;
use exoclaw_core::tool::{Provenance, ToolContext, ToolError, ToolOutput};
use exoclaw_guard::inject::Scanner;
use exoclaw_guard::{markers, scrub};
use std::sync::{Arc, LazyLock};

static SCANNER: LazyLock<Scanner> = LazyLock::new(Scanner::new);

/// The rule ids of the injection patterns found in `text`.
pub fn injection_rules(text: &str) -> Vec<&'static str> {
    SCANNER.scan(text).into_iter().map(|h| h.rule).collect()
}

/// Screen one successful output (see the module docs).
pub(super) async fn output(
    call: Call<'_>,
    out: ToolOutput,
    max_bytes: usize,
    injection: InjectionMode,
    audit_store: Option<&Arc<dyn AuditStore>>,
) -> Result<ToolOutput, ToolError> {
    let (ctx, tool) = (call.ctx, call.name);
    // Scrubbed before it is cut, so a cut never leaves half a secret.
    let untrusted = out.untrusted || call.tool.provenance() == Provenance::Untrusted;
    let scrubbed = ToolOutput::text(
        scrub::global()
            .scrub_for(ctx.tenant.as_str(), &out.content)
            .into_owned(),
    );
    let content = truncate(scrubbed, max_bytes).content;
    if !untrusted || !ctx.run.feeds_model() {
        return Ok(ToolOutput::text(content));
    }
    let source = call.tool.source(call.args);
    ctx.run.taint();
    if injection != InjectionMode::Off {
        let rules = injection_rules(&content);
        if !rules.is_empty() {
            let block = injection == InjectionMode::Block;
            audit::injection(audit_store, ctx, &source, &rules, block).await;
            if block {
                return Err(ToolError::new(
                    "security.injection_blocked",
                    format!(
                        "the output of {tool} was withheld: it contains prompt-injection \
                         patterns ({})",
                        rules.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(ToolOutput::text(markers::wrap(&source, &content)))
}

/// A tool error as the caller sees it: scrubbed for the tenant.
pub(super) fn error(ctx: &ToolContext, mut e: ToolError) -> ToolError {
    e.message = scrub::global()
        .scrub_for(ctx.tenant.as_str(), &e.message)
        .into_owned();
    e
}

/// `out` cut to at most `max` bytes on a char boundary, with a marker.
fn truncate(mut out: ToolOutput, max: usize) -> ToolOutput {
    if out.content.len() <= max {
        return out;
    }
    let total = out.content.len();
    let mut cut = max;
    while !out.content.is_char_boundary(cut) {
        cut -= 1;
    }
    out.content.truncate(cut);
    out.content.push_str(&format!(
        "\n[output truncated: {cut} of {total} bytes shown]"
    ));
    out
}
