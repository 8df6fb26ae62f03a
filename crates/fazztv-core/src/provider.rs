//! The `Provider` trait: what every model provider implements.

use std::fmt;

use async_trait::async_trait;

use crate::{
    Availability, ChatRequest, ChatResponse, ChatStream, EmbeddingRequest, EmbeddingResponse,
    Error, GenerationOptions, ListedPrice, ModelInfo, ModelManager, ModerationResult, Result,
};

/// A `Send` future on the heap: what [`Provider`]'s methods return (through `#[async_trait]`).
/// A provider may write a method by hand with it, to do synchronous work (checking and
/// writing out the request) before the future exists, so the future does not carry the
/// arguments.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// The future `make` returns, boxed where it is built. `Box::pin(future)` builds the future on
/// the stack and then copies all of it into the box (kilobytes for a large `async fn`, most of
/// it not yet in use); allocating first lets the compiler build it in the box, writing only
/// what it captures.
#[inline]
pub fn box_in_place<F: std::future::Future>(make: impl FnOnce() -> F) -> std::pin::Pin<Box<F>> {
    Box::into_pin(Box::write(Box::new_uninit(), make()))
}

/// A model provider. Object-safe: the manager holds providers as `Arc<dyn Provider>`.
///
/// Only [`chat`](Provider::chat) and [`list_models`](Provider::list_models) are required; every
/// other operation has a default that either derives from them (`query`, `chat_stream`) or
/// reports [`crate::ErrorKind::Unsupported`]. Decorators (retries, rate limits, caches) are
/// providers wrapping providers, so this trait is the one seam later features plug into.
///
/// ```
/// use async_trait::async_trait;
/// use fazztv_core::{
///     Availability, ChatRequest, ChatResponse, ModelCapability, ModelInfo, Provider, Result,
/// };
///
/// /// The seed's `CustomProvider`.
/// #[derive(Debug)]
/// struct CustomProvider;
///
/// #[async_trait]
/// impl Provider for CustomProvider {
///     fn name(&self) -> &str {
///         "custom"
///     }
///
///     async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
///         let prompt = request.messages.last().map(|m| m.text()).unwrap_or_default();
///         Ok(ChatResponse::new(format!("Custom response to: {prompt}"), "custom-model", "custom"))
///     }
///
///     async fn list_models(&self) -> Result<Vec<ModelInfo>> {
///         Ok(vec![ModelInfo::new("custom-model", "custom")
///             .with_name("Custom Model")
///             .with_capabilities([ModelCapability::TextGeneration])])
///     }
///
///     async fn check_availability(&self) -> Availability {
///         Availability::Available
///     }
/// }
///
/// # tokio_test_block_on(async {
/// let response = CustomProvider.query("hi", Default::default()).await.unwrap();
/// assert_eq!(response.content, "Custom response to: hi");
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[async_trait]
pub trait Provider: Send + Sync + fmt::Debug {
    /// The instance name from configuration; responses and errors carry it.
    fn name(&self) -> &str;

    /// Answers a conversation.
    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse>;

    /// Lists the models this provider can serve now.
    async fn list_models(&self) -> Result<Vec<ModelInfo>>;

    /// Answers a single prompt (sent as one user message).
    async fn query(&self, prompt: &str, options: GenerationOptions) -> Result<ChatResponse> {
        self.chat(ChatRequest::from_prompt(prompt).with_options(options))
            .await
    }

    /// Streams an answer: deltas (text, reasoning, tool calls), then one
    /// [`StreamEvent::Finish`](crate::StreamEvent::Finish) with the finish reason and usage.
    ///
    /// The default calls [`chat`](Provider::chat) and replays the whole answer as events
    /// ([`ChatResponse::to_events`]), so every provider can be streamed from.
    async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream> {
        let events = self.chat(request).await?.to_events();
        Ok(Box::pin(futures::stream::iter(events.into_iter().map(Ok))))
    }

    /// Says whether the provider can serve now and, if not, why. Should be cheap (no
    /// generation); the default assumes an in-process provider that is always ready.
    async fn check_availability(&self) -> Availability {
        Availability::Available
    }

    /// Embeds one or more texts.
    async fn get_embeddings(&self, request: EmbeddingRequest) -> Result<EmbeddingResponse> {
        let _ = request;
        Err(Error::unsupported("embeddings").with_provider(self.name()))
    }

    /// Judges whether content is safe.
    async fn moderate_content(&self, text: &str) -> Result<ModerationResult> {
        let _ = text;
        Err(Error::unsupported("moderation").with_provider(self.name()))
    }

    /// Local model management, for providers that host models (Ollama).
    fn model_manager(&self) -> Option<&dyn ModelManager> {
        None
    }

    /// The price of `model` as the provider knows it without asking its server: from a price
    /// table shipped with the crate ([`PriceTable`](crate::PriceTable)), or no charge for a
    /// model on the user's machine ([`ListedPrice::local`]). `None` when unknown: the manager
    /// then reports the cost as unknown, never as 0. Must be quick (the manager asks once per
    /// answer). Prices in a live catalog belong in [`list_models`](Self::list_models).
    fn list_price(&self, model: &str) -> Option<ListedPrice> {
        let _ = model;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_future_boxed_in_place_runs_with_what_it_captured() {
        let words = ["boxed".to_owned(), "in".to_owned(), "place".to_owned()];
        let joined = box_in_place(|| async move { words.join(" ") });
        let dynamic: BoxFuture<'_, String> = joined;
        assert_eq!(dynamic.await, "boxed in place");
    }
}
