//! The streamable HTTP transport of the MCP client over the gateway's one
//! outbound client: rmcp's `StreamableHttpClient` implemented with an
//! [`EgressClient`] (URL and address policy, DNS pinning, no redirects), so
//! rmcp's own reqwest is never built. The server's headers and secret
//! headers (a bearer token from the vault) go on every request.

use exoclaw_core::Secret;
use exoclaw_egress::EgressClient;
use futures_util::StreamExt as _;
use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::common::client_side_sse::BoxedSseResponse;
use rmcp::transport::streamable_http_client::{
    StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
};
use std::collections::HashMap;
use std::sync::Arc;

/// Largest JSON answer read (an SSE stream is bounded by the tool's
/// output cap further up).
const MAX_JSON_BYTES: usize = 16 << 20;
const SESSION_HEADER: &str = "Mcp-Session-Id";
const EVENT_STREAM: &str = "text/event-stream";

/// Why an HTTP exchange failed (no header value, no body).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

type Failure = StreamableHttpError<HttpError>;

fn failure(e: impl std::fmt::Display) -> Failure {
    StreamableHttpError::Client(HttpError(e.to_string()))
}

/// The egress client with a server's headers.
#[derive(Clone)]
pub struct EgressMcpClient {
    client: EgressClient,
    headers: Arc<Vec<(String, Secret)>>,
}

impl EgressMcpClient {
    pub fn new(client: EgressClient, headers: Vec<(String, Secret)>) -> Self {
        Self {
            client,
            headers: Arc::new(headers),
        }
    }

    fn request(
        &self,
        method: Method,
        uri: &str,
        session_id: Option<&str>,
        auth_header: Option<String>,
        custom: HashMap<HeaderName, HeaderValue>,
    ) -> Result<reqwest::RequestBuilder, Failure> {
        let mut headers = HeaderMap::new();
        for (k, v) in self.headers.iter() {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(failure)?;
            let mut value = HeaderValue::from_str(v.expose())
                .map_err(|_| failure(format!("header {k}: not a valid value")))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        for (k, v) in custom {
            headers.insert(k, v);
        }
        if let Some(s) = session_id {
            headers.insert(
                SESSION_HEADER,
                HeaderValue::from_str(s).map_err(|_| failure("a session id that is no header"))?,
            );
        }
        if let Some(token) = auth_header {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| failure("a token that is no header"))?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let req = self
            .client
            .request(method, uri)
            .map_err(|r| failure(format!("the egress policy refused {uri}: {r}")))?;
        Ok(req.headers(headers))
    }
}

fn session_of(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn content_type(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase)
}

fn sse(resp: reqwest::Response) -> BoxedSseResponse {
    sse_stream::SseStream::from_bytes_stream(resp.bytes_stream()).boxed()
}

impl StreamableHttpClient for EgressMcpClient {
    type Error = HttpError;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, Failure> {
        let body = serde_json::to_vec(&message)?;
        let resp = self
            .request(
                Method::POST,
                &uri,
                session_id.as_deref(),
                auth_header,
                custom_headers,
            )?
            .header(ACCEPT, "application/json, text/event-stream")
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(failure)?;
        let status = resp.status();
        if status == reqwest::StatusCode::ACCEPTED || status == reqwest::StatusCode::NO_CONTENT {
            return Ok(StreamableHttpPostResponse::Accepted);
        }
        if status == reqwest::StatusCode::NOT_FOUND && session_id.is_some() {
            return Err(StreamableHttpError::SessionExpired);
        }
        if !status.is_success() {
            return Err(StreamableHttpError::UnexpectedServerResponse(
                format!("HTTP {status}").into(),
            ));
        }
        let session = session_of(&resp);
        match content_type(&resp) {
            Some(ct) if ct.starts_with(EVENT_STREAM) => {
                Ok(StreamableHttpPostResponse::Sse(sse(resp), session))
            }
            Some(ct) if ct.starts_with("application/json") => {
                let mut body = Vec::new();
                let mut stream = resp.bytes_stream();
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(failure)?;
                    if body.len() + chunk.len() > MAX_JSON_BYTES {
                        return Err(StreamableHttpError::ResponseBodyTooLarge {
                            max_size: MAX_JSON_BYTES,
                        });
                    }
                    body.extend_from_slice(&chunk);
                }
                let msg: ServerJsonRpcMessage = serde_json::from_slice(&body)?;
                Ok(StreamableHttpPostResponse::Json(msg, session))
            }
            other => Err(StreamableHttpError::UnexpectedContentType(other)),
        }
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), Failure> {
        let resp = self
            .request(
                Method::DELETE,
                &uri,
                Some(&session_id),
                auth_header,
                custom_headers,
            )?
            .send()
            .await
            .map_err(failure)?;
        if resp.status() == reqwest::StatusCode::METHOD_NOT_ALLOWED {
            return Err(StreamableHttpError::ServerDoesNotSupportDeleteSession);
        }
        Ok(())
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxedSseResponse, Failure> {
        let mut req = self
            .request(
                Method::GET,
                &uri,
                session_id.as_deref(),
                auth_header,
                custom_headers,
            )?
            .header(ACCEPT, EVENT_STREAM);
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-Id", id);
        }
        let resp = req.send().await.map_err(failure)?;
        let status = resp.status();
        if status == reqwest::StatusCode::METHOD_NOT_ALLOWED {
            return Err(StreamableHttpError::ServerDoesNotSupportSse);
        }
        if !status.is_success() {
            return Err(StreamableHttpError::UnexpectedServerResponse(
                format!("HTTP {status}").into(),
            ));
        }
        match content_type(&resp) {
            Some(ct) if ct.starts_with(EVENT_STREAM) => Ok(sse(resp)),
            other => Err(StreamableHttpError::UnexpectedContentType(other)),
        }
    }
}

/// The legacy HTTP+SSE transport (protocol 2024-11-05): `GET` the SSE
/// endpoint, whose `endpoint` event names where to `POST` messages (it must
/// stay on the same origin); answers come back as `message` events.
pub struct LegacySse {
    client: EgressMcpClient,
    post_to: Arc<str>,
    events: BoxedSseResponse,
}

/// Longest wait for the `endpoint` event.
const ENDPOINT_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

impl LegacySse {
    /// Open the event stream at `url` and wait for its `endpoint` event.
    pub async fn connect(client: EgressMcpClient, url: &str) -> Result<Self, String> {
        let base = url::Url::parse(url).map_err(|e| format!("url: {e}"))?;
        let resp = client
            .request(Method::GET, url, None, None, HashMap::new())
            .map_err(|e| e.to_string())?
            .header(ACCEPT, EVENT_STREAM)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("GET {url}: HTTP {}", resp.status()));
        }
        let mut events = sse(resp);
        let endpoint = tokio::time::timeout(ENDPOINT_WAIT, async {
            while let Some(ev) = events.next().await {
                let ev = ev.map_err(|e| e.to_string())?;
                if ev.event.as_deref() == Some("endpoint") {
                    return ev
                        .data
                        .ok_or_else(|| "an endpoint event without data".to_owned());
                }
            }
            Err("the event stream ended before its endpoint event".to_owned())
        })
        .await
        .map_err(|_| "no endpoint event in time".to_owned())??;
        let post_to = base
            .join(endpoint.trim())
            .map_err(|e| format!("the endpoint event: {e}"))?;
        if post_to.origin() != base.origin() {
            return Err("the endpoint event names another origin; refused".to_owned());
        }
        Ok(Self {
            client,
            post_to: post_to.as_str().into(),
            events,
        })
    }
}

impl rmcp::transport::Transport<rmcp::service::RoleClient> for LegacySse {
    type Error = HttpError;

    fn send(
        &mut self,
        item: ClientJsonRpcMessage,
    ) -> impl Future<Output = Result<(), HttpError>> + Send + 'static {
        let request = self
            .client
            .request(Method::POST, &self.post_to, None, None, HashMap::new())
            .map_err(|e| HttpError(e.to_string()));
        async move {
            let body = serde_json::to_vec(&item).map_err(|e| HttpError(e.to_string()))?;
            let resp = request?
                .header(CONTENT_TYPE, "application/json")
                .body(body)
                .send()
                .await
                .map_err(|e| HttpError(e.to_string()))?;
            if resp.status().is_success() {
                Ok(())
            } else {
                Err(HttpError(format!("POST: HTTP {}", resp.status())))
            }
        }
    }

    async fn receive(&mut self) -> Option<ServerJsonRpcMessage> {
        while let Some(ev) = self.events.next().await {
            let Ok(ev) = ev else { return None };
            if !matches!(ev.event.as_deref(), None | Some("message")) {
                continue;
            }
            let Some(data) = ev.data else { continue };
            match serde_json::from_str(&data) {
                Ok(msg) => return Some(msg),
                Err(e) => tracing::debug!(error = %e, "an SSE message that is not JSON-RPC"),
            }
        }
        None
    }

    async fn close(&mut self) -> Result<(), HttpError> {
        Ok(())
    }
}
