//! What the pages read from a request: a posted form's fields, a query
//! parameter, and the API request body built from them (refused the way the
//! API refuses a bad body), so every page asks the API with its own types.

use super::super::error::ApiError;
use serde::de::DeserializeOwned;

/// Field `name` of a form body (`application/x-www-form-urlencoded`),
/// trimmed, empty when absent. The CSRF field was checked before any
/// handler ran.
pub fn field(body: &[u8], name: &str) -> String {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default()
}

/// Query parameter `name`, when present and not empty.
pub fn param(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
}

/// An API request type from the JSON a page assembled.
pub fn api<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(|e| ApiError::invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn fields_and_params_are_read_decoded() {
        assert_eq!(super::field(b"a=1&name=+b+c%26d+", "name"), "b c&d");
        assert_eq!(super::field(b"a=1", "name"), "");
        assert_eq!(
            super::param(Some("q=x%20y&e="), "q").as_deref(),
            Some("x y")
        );
        assert_eq!(super::param(Some("q=x&e="), "e"), None);
        assert_eq!(super::param(None, "q"), None);
    }
}
