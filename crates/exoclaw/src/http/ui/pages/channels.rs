//! Messaging channels' state (`GET /v1/channels`): running or not, queue
//! depth, dead letters, the last error.

use super::super::super::channels;
use super::super::super::state::AppState;
use super::super::table::{TablesPage, section};
use super::super::{Shell, UiError, render};
use axum::Extension;
use axum::extract::State;
use axum::response::Html;

pub async fn list(shell: Shell, state: State<AppState>) -> Result<Html<String>, UiError> {
    let list = channels::list(state, Extension(shell.who.clone())).await?.0;
    let list = serde_json::to_value(&list).unwrap_or_default();
    let items = list["channels"].as_array().cloned().unwrap_or_default();
    let table = section(
        "",
        "No channels configured (`channels.<name>` in config.json: Telegram, Discord, a signed webhook).",
        &items,
        &[
            ("Channel", "name"),
            ("Kind", "kind"),
            ("Running", "running"),
            ("In", "inbound"),
            ("Sent", "sent"),
            ("Queued", "queue_depth"),
            ("Failed", "failed"),
            ("Dead", "dead"),
            ("Restarts", "restarts"),
            ("Last error", "last_error"),
            ("Last in (UTC)", "last_inbound_at"),
        ],
    );
    render(&TablesPage {
        shell,
        title: "Channels".to_owned(),
        intro: String::new(),
        sections: vec![table],
        live: true,
        upload: None,
    })
}
