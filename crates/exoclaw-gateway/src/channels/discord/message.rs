//! Discord's message shapes: a `MESSAGE_CREATE` dispatch as an
//! [`InboundMessage`] (direct or guild, mentions, threads, attachments),
//! the bot's mention taken out of the text so `@bot /stop` is the command
//! `/stop`, and answers split at Discord's 2,000 characters on safe
//! boundaries (Discord renders Markdown itself: nothing is converted).

use exoclaw_core::channel::{ChatKind, FileKind, InboundFile, InboundMessage};
use serde_json::Value;

/// Discord's limit per message, in characters.
pub const MAX_CHARS: usize = 2000;
/// Attachments taken from one message at most.
const MAX_FILES: usize = 10;

/// The bot itself, from READY.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Me {
    pub id: String,
    pub username: String,
}

/// `text` in parts of at most [`MAX_CHARS`], cut at a blank line, a line
/// end or a space where there is one (a code block cut in two is closed and
/// reopened).
pub fn split(text: &str) -> Vec<String> {
    super::super::telegram_format::split(text, MAX_CHARS)
}

/// What kind of file an attachment is, by its content type (a voice
/// message is audio with a duration and the voice-message flag).
fn file_kind(a: &Value, voice_message: bool) -> FileKind {
    let mime = a["content_type"].as_str().unwrap_or_default();
    match mime.split('/').next().unwrap_or_default() {
        "image" => FileKind::Photo,
        "audio" if voice_message || a["duration_secs"].is_number() => FileKind::Voice,
        "audio" => FileKind::Audio,
        "video" => FileKind::Video,
        _ => FileKind::Document,
    }
}

/// The bot's mentions (`<@id>`, `<@!id>`) taken out, whitespace trimmed.
fn without_mention(text: &str, me: &Me) -> String {
    if me.id.is_empty() {
        return text.trim().to_owned();
    }
    text.replace(&format!("<@{}>", me.id), "")
        .replace(&format!("<@!{}>", me.id), "")
        .trim()
        .to_owned()
}

/// A `MESSAGE_CREATE` payload (`d`) as an inbound message; `None` for the
/// bot's own messages, other bots', and messages with neither text nor
/// files. Direct when it has no `guild_id`; in a guild the group is the
/// guild and the peer the channel (a thread is its own channel, so its own
/// session).
pub fn parse(d: &Value, me: &Me) -> Option<InboundMessage> {
    let id = d["id"].as_str()?;
    let channel = d["channel_id"].as_str()?;
    let author = &d["author"];
    let sender_id = author["id"].as_str()?;
    if author["bot"] == true || sender_id == me.id {
        return None;
    }
    let raw = d["content"].as_str().unwrap_or_default();
    let mentioned = d["mentions"]
        .as_array()
        .is_some_and(|m| m.iter().any(|u| u["id"].as_str() == Some(me.id.as_str())))
        || d["referenced_message"]["author"]["id"].as_str() == Some(me.id.as_str());
    let text = without_mention(raw, me);
    // Flag 1 << 13: IS_VOICE_MESSAGE.
    let voice = d["flags"].as_u64().is_some_and(|f| f & (1 << 13) != 0);
    let files: Vec<InboundFile> = d["attachments"]
        .as_array()
        .map(|list| {
            list.iter()
                .take(MAX_FILES)
                .filter_map(|a| {
                    Some(InboundFile {
                        kind: file_kind(a, voice),
                        file_ref: a["url"].as_str()?.to_owned(),
                        name: a["filename"].as_str().map(str::to_owned),
                        mime: a["content_type"].as_str().map(str::to_owned),
                        size: a["size"].as_u64(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    if text.is_empty() && files.is_empty() {
        return None;
    }
    let sender_name = author["global_name"]
        .as_str()
        .or_else(|| author["username"].as_str())
        .unwrap_or_default()
        .to_owned();
    Some(InboundMessage {
        platform_id: id.to_owned(),
        sender_id: sender_id.to_owned(),
        sender_name,
        chat: match d["guild_id"].as_str() {
            None => ChatKind::Direct,
            Some(guild) => ChatKind::Group {
                id: guild.to_owned(),
            },
        },
        peer: channel.to_owned(),
        account: None,
        mentioned,
        text,
        message_ref: Some(id.to_owned()),
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn me() -> Me {
        Me {
            id: "900".to_owned(),
            username: "exo".to_owned(),
        }
    }

    #[test]
    fn dispatches_become_messages_with_mentions_guilds_threads_and_files() {
        let dm = json!({"id": "11", "channel_id": "70", "content": "hi",
            "author": {"id": "42", "username": "ann", "global_name": "Ann"}});
        let m = parse(&dm, &me()).unwrap();
        assert_eq!(
            (
                m.platform_id.as_str(),
                m.peer.as_str(),
                m.sender_id.as_str()
            ),
            ("11", "70", "42")
        );
        assert_eq!(
            (m.chat, m.mentioned, m.sender_name.as_str()),
            (ChatKind::Direct, false, "Ann")
        );
        assert_eq!(m.message_ref.as_deref(), Some("11"));

        let guild = json!({"id": "12", "channel_id": "71", "guild_id": "5",
            "content": "<@900> /stop", "mentions": [{"id": "900"}],
            "author": {"id": "42", "username": "ann"}});
        let m = parse(&guild, &me()).unwrap();
        assert_eq!(m.chat, ChatKind::Group { id: "5".to_owned() });
        assert_eq!((m.mentioned, m.text.as_str()), (true, "/stop"));
        let nick = json!({"id": "13", "channel_id": "72", "guild_id": "5",
            "content": "<@!900> hello", "mentions": [{"id": "900"}], "author": {"id": "42"}});
        assert_eq!(parse(&nick, &me()).unwrap().text, "hello");
        // A reply to the bot counts as a mention; other people's mentions do not.
        let reply = json!({"id": "14", "channel_id": "71", "guild_id": "5", "content": "yes",
            "referenced_message": {"author": {"id": "900"}}, "author": {"id": "42"}});
        assert!(parse(&reply, &me()).unwrap().mentioned);
        let other = json!({"id": "15", "channel_id": "71", "guild_id": "5", "content": "<@7> hi",
            "mentions": [{"id": "7"}], "author": {"id": "42"}});
        assert!(!parse(&other, &me()).unwrap().mentioned);

        // The bot's own messages, other bots', empty ones and malformed ones are skipped.
        let own =
            json!({"id": "16", "channel_id": "70", "content": "answer", "author": {"id": "900"}});
        assert!(parse(&own, &me()).is_none());
        let bot = json!({"id": "17", "channel_id": "70", "content": "x", "author": {"id": "8", "bot": true}});
        assert!(parse(&bot, &me()).is_none());
        let empty =
            json!({"id": "18", "channel_id": "70", "content": "<@900>", "author": {"id": "42"}});
        assert!(parse(&empty, &me()).is_none());
        assert!(parse(&json!({"id": 19, "channel_id": "70"}), &me()).is_none());
        assert!(parse(&json!("nope"), &me()).is_none());

        let files = json!({"id": "20", "channel_id": "70", "content": "", "author": {"id": "42"},
        "flags": 8192,
        "attachments": [
            {"id": "1", "filename": "cat.png", "size": 10, "url": "https://cdn.discordapp.com/a/cat.png", "content_type": "image/png"},
            {"id": "2", "filename": "voice.ogg", "size": 20, "url": "https://cdn.discordapp.com/a/v.ogg", "content_type": "audio/ogg", "duration_secs": 2.5},
            {"id": "3", "filename": "notes.pdf", "size": 30, "url": "https://cdn.discordapp.com/a/n.pdf"},
            {"id": "4", "filename": "no-url.txt"}
        ]});
        let m = parse(&files, &me()).unwrap();
        assert_eq!(m.text, "");
        let kinds: Vec<_> = m.files.iter().map(|f| f.kind).collect();
        assert_eq!(
            kinds,
            [FileKind::Photo, FileKind::Voice, FileKind::Document]
        );
        assert_eq!(m.files[0].file_ref, "https://cdn.discordapp.com/a/cat.png");
        assert_eq!(
            (
                m.files[0].name.as_deref(),
                m.files[0].mime.as_deref(),
                m.files[0].size
            ),
            (Some("cat.png"), Some("image/png"), Some(10))
        );
    }

    #[test]
    fn answers_split_at_two_thousand_characters_on_boundaries() {
        let para = "word ".repeat(300);
        let text = format!("{para}\n\n{para}\n\n{para}");
        let parts = split(&text);
        assert!(parts.len() >= 3, "{}", parts.len());
        assert!(parts.iter().all(|p| p.chars().count() <= MAX_CHARS));
        assert!(parts.iter().all(|p| !p.ends_with("wor")));
        let words: usize = parts.iter().map(|p| p.matches("word").count()).sum();
        assert_eq!(words, 900);
        let long: String = "é".repeat(4500);
        let parts = split(&long);
        assert!(parts.iter().all(|p| p.chars().count() <= MAX_CHARS));
        assert_eq!(parts.iter().map(|p| p.chars().count()).sum::<usize>(), 4500);
        assert_eq!(split("short"), ["short"]);
    }
}
