//! Telegram files both ways, for `telegram.rs`: the files an update
//! announces (`photo` — the largest size within the cap —, `voice`,
//! `audio`, `video`, `document`) as [`InboundFile`]s, the download of one
//! (`getFile`, then `<api_base>/file/bot<token>/<file_path>` read under the
//! cap: the announced size first, then the bytes as they stream, never
//! buffering past it), and the `multipart/form-data` body of `sendPhoto` /
//! `sendDocument`.
//!
//! The download URL holds the bot token: no URL and no transport error text
//! is ever logged or returned; every failure is one of the fixed messages
//! below.

use exoclaw_core::channel::{ChannelError, FileKind, InboundFile, OutgoingFile};
use serde_json::Value;
use std::time::Duration;

/// How long one download may take.
pub(super) const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(120);
/// The largest photo `sendPhoto` takes; a larger image goes as a document.
const MAX_PHOTO_BYTES: usize = 10 * 1024 * 1024;
/// Telegram's longest caption.
const MAX_CAPTION_CHARS: usize = 1024;

/// The files `m` (a Telegram `Message`) carries. A photo comes in several
/// sizes: the largest whose announced size fits `photo_cap` (else the
/// smallest, refused later by its size).
pub(super) fn files_of(m: &Value, photo_cap: u64) -> Vec<InboundFile> {
    let mut out = Vec::new();
    if let Some(sizes) = m["photo"].as_array() {
        let mut usable: Vec<(&str, Option<u64>)> = sizes
            .iter()
            .filter_map(|p| Some((p["file_id"].as_str()?, p["file_size"].as_u64())))
            .collect();
        // Telegram lists sizes smallest first; sort to be sure.
        usable.sort_by_key(|(_, size)| size.unwrap_or(0));
        let fitting = usable
            .iter()
            .rev()
            .find(|(_, size)| size.is_some_and(|s| s <= photo_cap))
            .or_else(|| usable.first());
        if let Some((id, size)) = fitting {
            out.push(InboundFile {
                kind: FileKind::Photo,
                file_ref: (*id).to_owned(),
                name: None,
                mime: Some("image/jpeg".to_owned()),
                size: *size,
            });
        }
    }
    for (field, kind) in [
        ("voice", FileKind::Voice),
        ("audio", FileKind::Audio),
        ("video", FileKind::Video),
        ("document", FileKind::Document),
    ] {
        let f = &m[field];
        let Some(id) = f["file_id"].as_str() else {
            continue;
        };
        out.push(InboundFile {
            kind,
            file_ref: id.to_owned(),
            name: f["file_name"].as_str().map(str::to_owned),
            mime: f["mime_type"].as_str().map(str::to_owned),
            size: f["file_size"].as_u64(),
        });
    }
    out
}

/// Whether `p` (a `getFile` answer's `file_path`) is a plain relative path
/// that can go into the download URL as it is.
pub(super) fn is_safe_file_path(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 512
        && !p.starts_with('/')
        && p.split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '.'))
}

/// The refusal of a file larger than `max` bytes.
pub(super) fn too_large(max: u64) -> ChannelError {
    ChannelError::Rejected(format!("the file is larger than {max} bytes"))
}

/// GET `url` (which holds the token) and read the body, refusing one
/// larger than `max` bytes: by its `Content-Length` before reading, and by
/// counting while it streams.
pub(super) async fn download(
    client: &exoclaw_egress::EgressClient,
    url: &str,
    max: u64,
) -> Result<Vec<u8>, ChannelError> {
    let request = client
        .request(exoclaw_egress::Method::GET, url)
        .map_err(|r| {
            ChannelError::Rejected(format!("refused by the egress policy ({})", r.rule))
        })?;
    let mut resp = request
        .timeout(DOWNLOAD_TIMEOUT)
        .send()
        .await
        .map_err(|e| {
            ChannelError::Unavailable(if e.is_timeout() {
                "the file download timed out".to_owned()
            } else {
                "cannot reach the Telegram file server".to_owned()
            })
        })?;
    match resp.status().as_u16() {
        200 => {}
        401 => return Err(ChannelError::Auth),
        404 => {
            return Err(ChannelError::Rejected(
                "the file is no longer available".to_owned(),
            ));
        }
        429 => {
            return Err(ChannelError::RateLimited {
                retry_after: Duration::from_secs(1),
            });
        }
        s @ 400..=499 => {
            return Err(ChannelError::Rejected(format!(
                "the file server answered {s}"
            )));
        }
        s => {
            return Err(ChannelError::Unavailable(format!(
                "the file server answered {s}"
            )));
        }
    }
    if resp.content_length().is_some_and(|n| n > max) {
        return Err(too_large(max));
    }
    let mut body = Vec::new();
    loop {
        let chunk = resp.chunk().await.map_err(|e| {
            ChannelError::Unavailable(if e.is_timeout() {
                "the file download timed out".to_owned()
            } else {
                "the file download broke off".to_owned()
            })
        })?;
        let Some(chunk) = chunk else { break };
        if u64::try_from(body.len() + chunk.len()).unwrap_or(u64::MAX) > max {
            return Err(too_large(max));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The method and its file field for `file`: `sendPhoto` for an image
/// Telegram shows as a photo, `sendDocument` otherwise.
pub(super) fn method_for(file: &OutgoingFile) -> (&'static str, &'static str) {
    let photo = matches!(
        file.mime.as_deref(),
        Some("image/jpeg" | "image/png" | "image/webp")
    ) && file.bytes.len() <= MAX_PHOTO_BYTES;
    if photo {
        ("sendPhoto", "photo")
    } else {
        ("sendDocument", "document")
    }
}

/// A name for a `Content-Disposition` header: no quotes, backslashes or
/// control characters, at most 128 characters.
fn header_safe(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | '\\' | '/'))
        .take(128)
        .collect();
    if cleaned.trim().is_empty() {
        "file".to_owned()
    } else {
        cleaned
    }
}

/// The `multipart/form-data` body of a send: `fields` as text parts, then
/// `file` under `file_field`, with a caption of at most 1,024 characters.
/// Returns the content type (with its boundary) and the body.
pub(super) fn multipart(
    fields: &[(&str, String)],
    file_field: &str,
    file: &OutgoingFile,
    boundary: &str,
) -> (String, Vec<u8>) {
    let mut body = Vec::with_capacity(file.bytes.len() + 1024);
    let mut part = |headers: String, value: &[u8]| {
        body.extend_from_slice(format!("--{boundary}\r\n{headers}\r\n\r\n").as_bytes());
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    };
    for (name, value) in fields {
        part(
            format!("Content-Disposition: form-data; name=\"{name}\""),
            value.as_bytes(),
        );
    }
    if let Some(caption) = &file.caption {
        let caption: String = caption.chars().take(MAX_CAPTION_CHARS).collect();
        part(
            "Content-Disposition: form-data; name=\"caption\"".to_owned(),
            caption.as_bytes(),
        );
    }
    let mime = file
        .mime
        .as_deref()
        .filter(|m| !m.is_empty() && m.chars().all(|c| c.is_ascii_graphic()))
        .unwrap_or("application/octet-stream");
    part(
        format!(
            "Content-Disposition: form-data; name=\"{file_field}\"; filename=\"{}\"\r\nContent-Type: {mime}",
            header_safe(&file.name)
        ),
        &file.bytes,
    );
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_largest_photo_within_the_cap_and_every_other_kind_is_announced() {
        let m = json!({"photo": [
            {"file_id": "small", "file_size": 1_000},
            {"file_id": "big", "file_size": 900_000},
            {"file_id": "mid", "file_size": 50_000}],
            "document": {"file_id": "doc", "file_name": "../../etc/passwd",
                "mime_type": "text/plain", "file_size": 12},
            "voice": {"file_id": "v", "mime_type": "audio/ogg"}});
        let got = files_of(&m, 100_000);
        let refs: Vec<_> = got.iter().map(|f| (f.kind, f.file_ref.as_str())).collect();
        assert_eq!(
            refs,
            [
                (FileKind::Photo, "mid"),
                (FileKind::Voice, "v"),
                (FileKind::Document, "doc")
            ]
        );
        assert_eq!(got[2].name.as_deref(), Some("../../etc/passwd"));
        // Nothing fits: the smallest, refused later by its size.
        assert_eq!(files_of(&m, 10)[0].file_ref, "small");
        assert!(files_of(&json!({"text": "hi"}), 10).is_empty());
    }

    #[test]
    fn only_plain_relative_file_paths_go_into_a_url() {
        for ok in ["photos/file_1.jpg", "documents/a-b.pdf"] {
            assert!(is_safe_file_path(ok), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "a?b",
            "a#b",
            "a b",
            "a%2e",
        ] {
            assert!(!is_safe_file_path(bad), "{bad}");
        }
    }

    #[test]
    fn a_send_is_multipart_with_a_safe_file_name() {
        let file = OutgoingFile {
            peer: "42".to_owned(),
            name: "re\"port\r\n.pdf".to_owned(),
            mime: Some("application/pdf".to_owned()),
            bytes: b"%PDF\0bytes".to_vec(),
            caption: Some("here".to_owned()),
            idempotency_key: "k".to_owned(),
        };
        assert_eq!(method_for(&file), ("sendDocument", "document"));
        let (ct, body) = multipart(&[("chat_id", "42".to_owned())], "document", &file, "XyZ");
        assert_eq!(ct, "multipart/form-data; boundary=XyZ");
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("name=\"chat_id\"\r\n\r\n42\r\n"), "{text}");
        assert!(text.contains("name=\"caption\"\r\n\r\nhere\r\n"), "{text}");
        assert!(
            text.contains("filename=\"report.pdf\"\r\nContent-Type: application/pdf\r\n\r\n%PDF\0bytes\r\n--XyZ--"),
            "{text}"
        );
        let png = OutgoingFile {
            mime: Some("image/png".to_owned()),
            ..file
        };
        assert_eq!(method_for(&png), ("sendPhoto", "photo"));
    }
}
