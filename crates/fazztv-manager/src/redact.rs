//! The layer that keeps a provider's secrets out of everything it returns.

use std::fmt;
use std::sync::Arc;

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
/// wrapped sources and availability reasons. Every call is forwarded; only errors change.
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

#[async_trait]
impl Provider for Redacting {
    fn name(&self) -> &str {
        self.inner.name()
    }

    // `chat` and `chat_stream` are written out so that their futures hold the inner future
    // only, not the request too (the signatures are those `#[async_trait]` gives).
    fn chat<'life0, 'async_trait>(
        &'life0 self,
        request: ChatRequest,
    ) -> BoxFuture<'async_trait, Result<ChatResponse>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        let inner = self.inner.chat(request);
        Box::pin(async move { inner.await.map_err(|e| self.error(e)) })
    }

    async fn list_models(&self) -> Result<Vec<ModelInfo>> {
        self.inner.list_models().await.map_err(|e| self.error(e))
    }

    async fn query(&self, prompt: &str, options: GenerationOptions) -> Result<ChatResponse> {
        self.inner
            .query(prompt, options)
            .await
            .map_err(|e| self.error(e))
    }

    fn chat_stream<'life0, 'async_trait>(
        &'life0 self,
        request: ChatRequest,
    ) -> BoxFuture<'async_trait, Result<ChatStream>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        let inner = self.inner.chat_stream(request);
        Box::pin(async move {
            let stream = inner.await.map_err(|e| self.error(e))?;
            let secrets = self.secrets.clone();
            let stream: ChatStream =
                Box::pin(stream.map(move |item| item.map_err(|error| redact(error, &secrets))));
            Ok(stream)
        })
    }

    async fn check_availability(&self) -> Availability {
        match self.inner.check_availability().await {
            Availability::Unavailable { reason } => Availability::unavailable(
                self.secrets
                    .iter()
                    .fold(reason, |reason, secret| reason.redact(secret)),
            ),
            available => available,
        }
    }

    async fn get_embeddings(&self, request: EmbeddingRequest) -> Result<EmbeddingResponse> {
        self.inner
            .get_embeddings(request)
            .await
            .map_err(|e| self.error(e))
    }

    async fn moderate_content(&self, text: &str) -> Result<ModerationResult> {
        self.inner
            .moderate_content(text)
            .await
            .map_err(|e| self.error(e))
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
            return Err(Error::unsupported("model management").with_provider(self.name()));
        };
        let stream = manager.pull_model(model).await.map_err(|e| self.error(e))?;
        let secrets = self.secrets.clone();
        Ok(Box::pin(stream.map(move |item| {
            item.map_err(|error| redact(error, &secrets))
        })))
    }

    async fn delete_model(&self, model: &str) -> Result<()> {
        let Some(manager) = self.inner.model_manager() else {
            return Err(Error::unsupported("model management").with_provider(self.name()));
        };
        manager.delete_model(model).await.map_err(|e| self.error(e))
    }
}
