//! The layer that keeps a provider's secrets out of everything it returns.

use std::fmt;
use std::sync::Arc;

use fazztv_core::layer::ProviderLayer;
use fazztv_core::secret::MIN_SECRET_LEN;
use fazztv_core::{
    Availability, BoxFuture, ChatRequest, ChatResponse, ChatStream, EmbeddingRequest,
    EmbeddingResponse, Error, ExposeSecret, GenerationOptions, ModelInfo, ModelManager,
    ModerationResult, Provider, ProviderConfig, PullStream, Result, async_trait,
};
use futures::StreamExt;

/// Wraps a configured provider so that its key and header values, wherever a server or a
/// transport error quotes them, come out as `[REDACTED]`: in errors of every operation
/// (including stream items after the commit point, model listings, pulls and deletes), their
/// wrapped sources and availability reasons. Every call is forwarded; only errors change, so
/// this layer overrides every call of [`ProviderLayer`].
pub(crate) struct Redacting {
    inner: Arc<dyn Provider>,
    secrets: Arc<[String]>,
}

impl Redacting {
    /// `provider` behind the layer, or as it is when its configuration holds no secret.
    pub(crate) fn wrap(config: &ProviderConfig, provider: Arc<dyn Provider>) -> Arc<dyn Provider> {
        let secrets: Vec<String> = config
            .api_key
            .iter()
            .map(|key| key.expose_secret().to_owned())
            .chain(config.headers.values().cloned())
            .filter(|secret| secret.len() >= MIN_SECRET_LEN)
            .collect();
        if secrets.is_empty() {
            return provider;
        }
        Arc::new(Self {
            inner: provider,
            secrets: secrets.into(),
        })
    }

    fn error(&self, error: Error) -> Error {
        redact(error, &self.secrets)
    }
}

fn redact(error: Error, secrets: &[String]) -> Error {
    secrets
        .iter()
        .fold(error, |error, secret| error.redact(secret))
}

impl fmt::Debug for Redacting {
    /// Transparent: the provider's own `Debug` (which already hides its key); never the
    /// secrets this layer holds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl ProviderLayer for Redacting {
    fn inner(&self) -> &dyn Provider {
        self.inner.as_ref()
    }

    // The inner future is made before boxing ours, so ours holds it and not the request too.
    fn chat(&self, request: ChatRequest) -> BoxFuture<'_, Result<ChatResponse>> {
        let inner = self.inner.chat(request);
        Box::pin(async move { inner.await.map_err(|e| self.error(e)) })
    }

    fn list_models(&self) -> BoxFuture<'_, Result<Vec<ModelInfo>>> {
        Box::pin(async move { self.inner.list_models().await.map_err(|e| self.error(e)) })
    }

    fn query<'a>(
        &'a self,
        prompt: &'a str,
        options: GenerationOptions,
    ) -> BoxFuture<'a, Result<ChatResponse>> {
        Box::pin(async move {
            self.inner
                .query(prompt, options)
                .await
                .map_err(|e| self.error(e))
        })
    }

    fn chat_stream(&self, request: ChatRequest) -> BoxFuture<'_, Result<ChatStream>> {
        let inner = self.inner.chat_stream(request);
        Box::pin(async move {
            let stream = inner.await.map_err(|e| self.error(e))?;
            let secrets = self.secrets.clone();
            let stream: ChatStream =
                Box::pin(stream.map(move |item| item.map_err(|error| redact(error, &secrets))));
            Ok(stream)
        })
    }

    fn check_availability(&self) -> BoxFuture<'_, Availability> {
        Box::pin(async move {
            match self.inner.check_availability().await {
                Availability::Unavailable { reason } => Availability::unavailable(
                    self.secrets
                        .iter()
                        .fold(reason, |reason, secret| reason.redact(secret)),
                ),
                available => available,
            }
        })
    }

    fn get_embeddings(
        &self,
        request: EmbeddingRequest,
    ) -> BoxFuture<'_, Result<EmbeddingResponse>> {
        Box::pin(async move {
            self.inner
                .get_embeddings(request)
                .await
                .map_err(|e| self.error(e))
        })
    }

    fn moderate_content<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Result<ModerationResult>> {
        Box::pin(async move {
            self.inner
                .moderate_content(text)
                .await
                .map_err(|e| self.error(e))
        })
    }

    fn model_manager(&self) -> Option<&dyn ModelManager> {
        // Present exactly when the provider's is; calls go through this layer.
        self.inner
            .model_manager()
            .map(|_| self as &dyn ModelManager)
    }
}

#[async_trait]
impl ModelManager for Redacting {
    async fn pull_model(&self, model: &str) -> Result<PullStream> {
        let Some(manager) = self.inner.model_manager() else {
            return Err(Error::unsupported("model management").with_provider(self.inner.name()));
        };
        let stream = manager.pull_model(model).await.map_err(|e| self.error(e))?;
        let secrets = self.secrets.clone();
        Ok(Box::pin(stream.map(move |item| {
            item.map_err(|error| redact(error, &secrets))
        })))
    }

    async fn delete_model(&self, model: &str) -> Result<()> {
        let Some(manager) = self.inner.model_manager() else {
            return Err(Error::unsupported("model management").with_provider(self.inner.name()));
        };
        manager.delete_model(model).await.map_err(|e| self.error(e))
    }
}
