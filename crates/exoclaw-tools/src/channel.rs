//! `channel_send_file`: the agent sends a file from the user's workspace to
//! the person it talks to on a messaging channel, over the
//! [`ChannelFiles`] port the gateway gives it. The path resolves anchored
//! beneath the workspace (always, whatever `restrict_to_workspace` says:
//! `..` above the root, an absolute path or a symlink out is refused), the
//! file is read only when it fits the channel's cap, and the gateway queues
//! it in the durable outbox. Outside a channel's session it is a clear tool
//! error. It reaches outside the gateway ([`ToolEffect::External`]), so a
//! run that read untrusted content needs the untrusted-content policy's
//! consent first.

use crate::args::parse;
use async_trait::async_trait;
use exoclaw_core::provider::ToolSpec;
use exoclaw_core::tool::{
    ChannelFile, ChannelFiles, Check, Tool, ToolContext, ToolEffect, ToolError, ToolOutput,
};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// The tool's name.
pub const TOOL_NAME: &str = "channel_send_file";
/// The longest caption, in characters (Telegram's).
const MAX_CAPTION_CHARS: usize = 1024;

/// The tool, over `port`.
pub fn tool(port: &Arc<dyn ChannelFiles>) -> Arc<dyn Tool> {
    Arc::new(SendFile(port.clone()))
}

struct SendFile(Arc<dyn ChannelFiles>);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    path: String,
    #[serde(default)]
    caption: Option<String>,
}

impl Args {
    fn checked(args: &Value) -> Result<Self, ToolError> {
        let a: Args = parse(args)?;
        crate::path::Workspace::validate_restricted(&a.path)?;
        if a.caption
            .as_ref()
            .is_some_and(|c| c.chars().count() > MAX_CAPTION_CHARS)
        {
            return Err(ToolError::invalid_args(format!(
                "caption: at most {MAX_CAPTION_CHARS} characters"
            )));
        }
        Ok(a)
    }
}

/// The file's type by its extension (what the recipient's app shows).
fn mime_of(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "pdf" => "application/pdf",
        "txt" | "md" | "log" => "text/plain",
        "csv" => "text/csv",
        "json" => "application/json",
        "html" | "htm" => "text/html",
        "zip" => "application/zip",
        "ogg" | "oga" => "audio/ogg",
        "mp3" => "audio/mpeg",
        "mp4" => "video/mp4",
        _ => return None,
    })
}

#[async_trait]
impl Tool for SendFile {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: TOOL_NAME.into(),
            description: "Send a file from the workspace to the person you are talking to on \
                 their messaging channel (Telegram, ...), with an optional caption. Only in a \
                 conversation on such a channel."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "the file, relative to the workspace"},
                    "caption": {"type": "string", "description": "text sent with it", "maxLength": MAX_CAPTION_CHARS}
                },
                "required": ["path"],
                "additionalProperties": false
            }),
        }
    }

    fn effect(&self) -> ToolEffect {
        ToolEffect::External
    }

    async fn check(&self, ctx: &ToolContext, args: &Value) -> Result<Check, ToolError> {
        Args::checked(args)?;
        self.0.file_cap(ctx).await?;
        Ok(Check::Allow)
    }

    async fn call(&self, ctx: &ToolContext, args: &Value) -> Result<ToolOutput, ToolError> {
        let a = Args::checked(args)?;
        let cap = self.0.file_cap(ctx).await?;
        let read_ctx = ctx.clone();
        let path = a.path.clone();
        let bytes =
            tokio::task::spawn_blocking(move || crate::fs::read_capped(&read_ctx, &path, cap))
                .await
                .map_err(|_| ToolError::failed("the file could not be read"))??;
        let name = a
            .path
            .rsplit('/')
            .find(|p| !p.is_empty())
            .unwrap_or("file")
            .to_owned();
        let file = ChannelFile {
            mime: mime_of(&name).map(str::to_owned),
            name,
            bytes,
            caption: a.caption.filter(|c| !c.trim().is_empty()),
        };
        let said = self.0.send_file(ctx, file).await?;
        Ok(ToolOutput::text(said))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_follow_the_extension() {
        assert_eq!(mime_of("chart.PNG"), Some("image/png"));
        assert_eq!(mime_of("report.pdf"), Some("application/pdf"));
        assert_eq!(mime_of("noext"), None);
        assert_eq!(mime_of("x.unknown"), None);
    }

    #[test]
    fn arguments_are_checked_before_anything_is_read() {
        assert!(Args::checked(&json!({"path": "out/chart.png"})).is_ok());
        for bad in [
            json!({}),
            json!({"path": ""}),
            json!({"path": "/etc/passwd"}),
            json!({"path": "../../etc/passwd"}),
            json!({"path": "a\u{0}b"}),
            json!({"path": "a", "caption": "x".repeat(1025)}),
            json!({"path": "a", "to": "someone else"}),
        ] {
            assert!(Args::checked(&bad).is_err(), "{bad}");
        }
    }
}
