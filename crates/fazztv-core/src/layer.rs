//! Layers: a provider wrapped around another one, as tower or opendal layers are.
//!
//! A layer implements [`ProviderLayer`]: it names the provider it wraps and overrides only the
//! calls it changes; every other call (embeddings, moderation, model listings, availability,
//! `model_manager()`, so Ollama pulls keep working behind a layer) goes to the inner provider
//! untouched. Every `ProviderLayer` is a [`Provider`], so layers stack.
//!
//! Methods return boxed futures instead of being `async fn`s: a forwarded call hands back the
//! inner provider's future as it is, so a layer costs nothing on the calls it does not change.

use std::fmt;

use crate::{
    Availability, BoxFuture, ChatRequest, ChatResponse, ChatStream, EmbeddingRequest,
    EmbeddingResponse, GenerationOptions, ListedPrice, ModelInfo, ModelManager, ModerationResult,
    Provider, Result,
};

/// A provider that decorates another: every method forwards to [`inner`](Self::inner) unless
/// the layer overrides it.
///
/// ```
/// use fazztv_core::layer::ProviderLayer;
/// use fazztv_core::{BoxFuture, ChatRequest, ChatResponse, Provider, Result};
///
/// /// Counts chat calls; everything else passes through.
/// #[derive(Debug)]
/// struct Counting {
///     inner: Box<dyn Provider>,
///     calls: std::sync::atomic::AtomicU64,
/// }
///
/// impl ProviderLayer for Counting {
///     fn inner(&self) -> &dyn Provider {
///         self.inner.as_ref()
///     }
///
///     fn chat(&self, request: ChatRequest) -> BoxFuture<'_, Result<ChatResponse>> {
///         self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
///         self.inner.chat(request)
///     }
/// }
/// ```
pub trait ProviderLayer: fmt::Debug + Send + Sync {
    /// The provider this layer wraps.
    fn inner(&self) -> &dyn Provider;

    /// See [`Provider::name`].
    fn name(&self) -> &str {
        self.inner().name()
    }

    /// See [`Provider::chat`].
    fn chat(&self, request: ChatRequest) -> BoxFuture<'_, Result<ChatResponse>> {
        self.inner().chat(request)
    }

    /// See [`Provider::list_models`].
    fn list_models(&self) -> BoxFuture<'_, Result<Vec<ModelInfo>>> {
        self.inner().list_models()
    }

    /// See [`Provider::query`].
    fn query<'a>(
        &'a self,
        prompt: &'a str,
        options: GenerationOptions,
    ) -> BoxFuture<'a, Result<ChatResponse>> {
        self.inner().query(prompt, options)
    }

    /// See [`Provider::chat_stream`].
    fn chat_stream(&self, request: ChatRequest) -> BoxFuture<'_, Result<ChatStream>> {
        self.inner().chat_stream(request)
    }

    /// See [`Provider::check_availability`].
    fn check_availability(&self) -> BoxFuture<'_, Availability> {
        self.inner().check_availability()
    }

    /// See [`Provider::get_embeddings`].
    fn get_embeddings(
        &self,
        request: EmbeddingRequest,
    ) -> BoxFuture<'_, Result<EmbeddingResponse>> {
        self.inner().get_embeddings(request)
    }

    /// See [`Provider::moderate_content`].
    fn moderate_content<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Result<ModerationResult>> {
        self.inner().moderate_content(text)
    }

    /// See [`Provider::model_manager`].
    fn model_manager(&self) -> Option<&dyn ModelManager> {
        self.inner().model_manager()
    }

    /// See [`Provider::list_price`].
    fn list_price(&self, model: &str) -> Option<ListedPrice> {
        self.inner().list_price(model)
    }
}

// The signatures are those `#[async_trait]` gives `Provider`'s methods; each body hands the
// layer's future over without boxing it again.
impl<L: ProviderLayer> Provider for L {
    fn name(&self) -> &str {
        ProviderLayer::name(self)
    }

    fn chat<'life0, 'async_trait>(
        &'life0 self,
        request: ChatRequest,
    ) -> BoxFuture<'async_trait, Result<ChatResponse>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        ProviderLayer::chat(self, request)
    }

    fn list_models<'life0, 'async_trait>(
        &'life0 self,
    ) -> BoxFuture<'async_trait, Result<Vec<ModelInfo>>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        ProviderLayer::list_models(self)
    }

    fn query<'life0, 'life1, 'async_trait>(
        &'life0 self,
        prompt: &'life1 str,
        options: GenerationOptions,
    ) -> BoxFuture<'async_trait, Result<ChatResponse>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        ProviderLayer::query(self, prompt, options)
    }

    fn chat_stream<'life0, 'async_trait>(
        &'life0 self,
        request: ChatRequest,
    ) -> BoxFuture<'async_trait, Result<ChatStream>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        ProviderLayer::chat_stream(self, request)
    }

    fn check_availability<'life0, 'async_trait>(
        &'life0 self,
    ) -> BoxFuture<'async_trait, Availability>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        ProviderLayer::check_availability(self)
    }

    fn get_embeddings<'life0, 'async_trait>(
        &'life0 self,
        request: EmbeddingRequest,
    ) -> BoxFuture<'async_trait, Result<EmbeddingResponse>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        ProviderLayer::get_embeddings(self, request)
    }

    fn moderate_content<'life0, 'life1, 'async_trait>(
        &'life0 self,
        text: &'life1 str,
    ) -> BoxFuture<'async_trait, Result<ModerationResult>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        ProviderLayer::moderate_content(self, text)
    }

    fn model_manager(&self) -> Option<&dyn ModelManager> {
        ProviderLayer::model_manager(self)
    }

    fn list_price(&self, model: &str) -> Option<ListedPrice> {
        ProviderLayer::list_price(self, model)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::{Error, ErrorKind, async_trait};

    /// An inner provider that answers everything, so forwarding can be seen.
    #[derive(Debug)]
    struct Inner;

    #[async_trait]
    impl Provider for Inner {
        fn name(&self) -> &str {
            "inner"
        }

        async fn chat(&self, _request: ChatRequest) -> Result<ChatResponse> {
            Ok(ChatResponse::new("from inner", "m", "inner"))
        }

        async fn list_models(&self) -> Result<Vec<ModelInfo>> {
            Ok(vec![ModelInfo::new("m", "inner")])
        }

        async fn get_embeddings(&self, _request: EmbeddingRequest) -> Result<EmbeddingResponse> {
            Err(Error::new(ErrorKind::RateLimited, "inner embeddings"))
        }
    }

    /// Overrides `chat` only.
    #[derive(Debug)]
    struct Tagging {
        inner: Box<dyn Provider>,
        chats: AtomicUsize,
    }

    fn tagging(inner: impl Provider + 'static) -> Tagging {
        Tagging {
            inner: Box::new(inner),
            chats: AtomicUsize::new(0),
        }
    }

    impl ProviderLayer for Tagging {
        fn inner(&self) -> &dyn Provider {
            self.inner.as_ref()
        }

        fn chat(&self, request: ChatRequest) -> BoxFuture<'_, Result<ChatResponse>> {
            self.chats.fetch_add(1, Ordering::Relaxed);
            Box::pin(async move {
                let mut response = self.inner.chat(request).await?;
                response.content.push_str(" via layer");
                Ok(response)
            })
        }
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(future)
    }

    #[test]
    fn a_layer_changes_what_it_overrides_and_forwards_everything_else() {
        let layer = tagging(Inner);
        let provider: &dyn Provider = &layer;
        assert_eq!(provider.name(), "inner");
        let answer = block_on(provider.chat(ChatRequest::from_prompt("hi"))).unwrap();
        assert_eq!(answer.content, "from inner via layer");
        // `query` is the inner provider's default, which calls the inner `chat`: not the layer.
        let queried = block_on(provider.query("hi", GenerationOptions::default())).unwrap();
        assert_eq!(queried.content, "from inner");
        assert_eq!(layer.chats.load(Ordering::Relaxed), 1);
        assert_eq!(block_on(provider.list_models()).unwrap().len(), 1);
        let error = block_on(provider.get_embeddings(EmbeddingRequest::new("x"))).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::RateLimited);
        assert!(block_on(provider.moderate_content("x")).is_err());
        assert_eq!(
            block_on(provider.check_availability()),
            Availability::Available
        );
        assert!(provider.model_manager().is_none());
        // Layers stack: a layer over a layer is a provider too.
        let stacked = tagging(tagging(Inner));
        let answer = block_on(Provider::chat(&stacked, ChatRequest::from_prompt("hi"))).unwrap();
        assert_eq!(answer.content, "from inner via layer via layer");
    }
}
