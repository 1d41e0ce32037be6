//! The dashboard's static files, embedded in the binary: one stylesheet,
//! one script and the icon. Their URLs carry a digest of their content, so they are
//! cached for a year and a new binary's files are fetched at once.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::LazyLock;

struct Asset {
    name: &'static str,
    mime: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "app.css",
        mime: "text/css; charset=utf-8",
        body: include_bytes!("../../../assets/ui/app.css"),
    },
    Asset {
        name: "favicon.svg",
        mime: "image/svg+xml",
        body: include_bytes!("../../../assets/ui/favicon.svg"),
    },
    Asset {
        name: "app.js",
        mime: "text/javascript; charset=utf-8",
        body: include_bytes!("../../../assets/ui/app.js"),
    },
];

const DIR: &str = "/ui/assets/";

/// Each asset's content digest (the first 16 hex digits of its SHA-256).
static VERSIONS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| {
            use sha2::Digest as _;
            hex::encode(&sha2::Sha256::digest(a.body)[..8])
        })
        .collect()
});

/// Whether `path` names one of the assets.
pub fn is_asset(path: &str) -> bool {
    path.strip_prefix(DIR)
        .is_some_and(|name| ASSETS.iter().any(|a| a.name == name))
}

/// The URL of asset `name`, with its digest.
pub fn url(name: &str) -> String {
    match ASSETS.iter().position(|a| a.name == name) {
        Some(i) => format!("{DIR}{name}?v={}", VERSIONS[i]),
        None => format!("{DIR}{name}"),
    }
}

pub async fn serve(Path(name): Path<String>) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(asset.mime)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        asset.body,
    )
        .into_response()
}
