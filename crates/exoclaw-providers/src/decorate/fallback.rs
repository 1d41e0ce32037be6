//! [`Fallback`]: an ordered chain of (provider, model) routes for one model
//! alias. A retryable failure (after that route's own retries) moves on to
//! the next route; any other error is returned at once. When every route
//! fails, the error names each one and why.

use super::first_event;
use exoclaw_core::provider::{ChatRequest, ChatStream, Provider, ProviderError, ProviderInfo};
use std::sync::Arc;

/// One place a model alias can be served.
#[derive(Clone)]
pub struct Route {
    pub provider: Arc<dyn Provider>,
    /// The model name as this provider knows it.
    pub model: String,
}

pub struct Fallback {
    alias: String,
    routes: Vec<Route>,
}

impl Fallback {
    pub fn new(alias: impl Into<String>, routes: Vec<Route>) -> Self {
        Self {
            alias: alias.into(),
            routes,
        }
    }

    pub fn alias(&self) -> &str {
        &self.alias
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }
}

#[async_trait::async_trait]
impl Provider for Fallback {
    /// The first route's provider.
    fn info(&self) -> ProviderInfo {
        match self.routes.first() {
            Some(route) => route.provider.info(),
            None => ProviderInfo {
                name: "none".into(),
                wire: "none",
            },
        }
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream, ProviderError> {
        if self.routes.is_empty() {
            return Err(ProviderError::NoProvider(self.alias.clone()));
        }
        let mut failures: Vec<(String, String, ProviderError)> = Vec::new();
        for (i, route) in self.routes.iter().enumerate() {
            let mut attempt = request.clone();
            attempt.model.clone_from(&route.model);
            let result = match route.provider.stream(attempt).await {
                Ok(stream) => first_event(stream).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(stream) => return Ok(stream),
                Err(e) if e.is_retryable() => {
                    let name = route.provider.info().name;
                    if i + 1 < self.routes.len() {
                        tracing::warn!(
                            alias = %self.alias,
                            provider = %name,
                            model = %route.model,
                            code = e.code(),
                            error = %e,
                            "provider failed; falling back to the next route"
                        );
                    }
                    failures.push((name, route.model.clone(), e));
                }
                Err(e) => return Err(e),
            }
        }
        if failures.len() == 1
            && let Some((_, _, e)) = failures.pop()
        {
            return Err(e);
        }
        let tried: Vec<String> = failures
            .iter()
            .map(|(name, model, e)| format!("{name} ({model}): {e}"))
            .collect();
        Err(ProviderError::Unavailable(format!(
            "all {} routes for model {:?} failed: {}",
            failures.len(),
            self.alias,
            tried.join("; ")
        )))
    }
}
