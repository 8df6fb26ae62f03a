//! The sentinel-key test: a provider that quotes its key back in every error it can return
//! (messages, wrapped sources, stream items after the commit point, model listings, pulls,
//! deletes, availability) never gets the key past the manager.

use std::fmt;
use std::sync::Arc;

use fazztv_core::{
    Availability, ChatRequest, ChatResponse, ChatStream, EmbeddingRequest, EmbeddingResponse,
    Error, ErrorKind, ModelCapability, ModelInfo, ModelManager, ModerationResult, Provider,
    ProviderConfig, PullProgress, PullStream, Result, StreamEvent, UnavailableReason, async_trait,
};
use fazztv_manager::{ManagerSettings, ProviderManager, QueryOptions, Registry};
use futures::StreamExt;
use {
    criterion as _, fazztv_provider_mock as _, fazztv_testkit as _, insta as _, jsonschema as _,
    moka as _, proptest as _, regex as _, schemars as _, serde as _, serde_json as _, sha2 as _,
    thiserror as _, tracing as _,
};

const KEY: &str = "sk-SENTINEL-0123456789abcdef";
const PROXY_TOKEN: &str = "proxy-SENTINEL-token-42";

/// A transport-level cause that carries the key, as a careless HTTP error could.
#[derive(Debug)]
struct Cause(String);

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sent Authorization: Bearer {}", self.0)
    }
}

impl std::error::Error for Cause {}

/// Quotes the key (and a header value) in every error.
#[derive(Debug)]
struct Leaky;

fn leak(kind: ErrorKind, what: &str) -> Error {
    Error::new(
        kind,
        format!("{what} failed for key {KEY} via {PROXY_TOKEN}"),
    )
    .with_provider("leaky")
    .with_source(Cause(KEY.to_owned()))
}

#[async_trait]
impl Provider for Leaky {
    fn name(&self) -> &str {
        "leaky"
    }

    async fn chat(&self, _request: ChatRequest) -> Result<ChatResponse> {
        Err(leak(ErrorKind::Authentication, "chat"))
    }

    async fn chat_stream(&self, _request: ChatRequest) -> Result<ChatStream> {
        // Commits with its first chunk, then breaks quoting the key.
        let items = vec![
            Ok(StreamEvent::text("partial")),
            Err(leak(ErrorKind::Network, "stream")),
        ];
        Ok(Box::pin(futures::stream::iter(items)))
    }

    async fn list_models(&self) -> Result<Vec<ModelInfo>> {
        Err(leak(ErrorKind::Authentication, "listing"))
    }

    async fn check_availability(&self) -> Availability {
        Availability::unavailable(UnavailableReason::AuthenticationFailed {
            message: format!("rejected {KEY}"),
        })
    }

    async fn get_embeddings(&self, _request: EmbeddingRequest) -> Result<EmbeddingResponse> {
        Err(leak(ErrorKind::Authentication, "embeddings"))
    }

    async fn moderate_content(&self, _text: &str) -> Result<ModerationResult> {
        Err(leak(ErrorKind::Authentication, "moderation"))
    }

    fn model_manager(&self) -> Option<&dyn ModelManager> {
        Some(self)
    }
}

#[async_trait]
impl ModelManager for Leaky {
    async fn pull_model(&self, _model: &str) -> Result<PullStream> {
        let items = vec![
            Ok(PullProgress::status("pulling manifest")),
            Err(leak(ErrorKind::Network, "pull")),
        ];
        Ok(Box::pin(futures::stream::iter(items)))
    }

    async fn delete_model(&self, _model: &str) -> Result<()> {
        Err(leak(ErrorKind::Authentication, "delete"))
    }
}

fn leaky_manager() -> ProviderManager {
    let config = ProviderConfig::new("leaky")
        .with_type("leaky")
        .with_api_key(KEY)
        .with_header("x-proxy-token", PROXY_TOKEN)
        .with_capabilities([
            ModelCapability::Chat,
            ModelCapability::TextGeneration,
            ModelCapability::Embedding,
            ModelCapability::Moderation,
        ]);
    let mut registry = Registry::empty();
    registry.add_provider(config, Arc::new(Leaky)).unwrap();
    ProviderManager::new(registry, ManagerSettings::default())
}

/// Display, Debug and every source of `error`, all of which must be free of secrets.
fn everything_printed(error: &Error) -> String {
    let mut text = format!("{error}\n{error:?}");
    let mut next = std::error::Error::source(error);
    while let Some(cause) = next {
        text.push_str(&format!("\n{cause}\n{cause:?}"));
        next = cause.source();
    }
    text
}

fn assert_clean(what: &str, error: &Error) {
    let text = everything_printed(error);
    assert!(
        !text.contains("SENTINEL"),
        "{what} leaked a secret:\n{text}"
    );
    assert!(text.contains("[REDACTED]"), "{what}: {text}");
}

#[tokio::test]
async fn the_sentinel_key_never_leaves_the_manager_in_any_error() {
    let manager = leaky_manager();

    let error = manager
        .query_with_fallback("x", QueryOptions::new())
        .await
        .unwrap_err();
    assert_clean("chat", &error);

    // After the commit point: the error item that ends the stream.
    let mut stream = manager
        .query_stream_with_fallback("x", QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(
        stream.next().await.unwrap().unwrap(),
        StreamEvent::text("partial")
    );
    let error = stream.next().await.unwrap().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::StreamInterrupted);
    assert_clean("stream after commit", &error);

    let error = manager
        .get_embeddings_with_fallback(EmbeddingRequest::new("x"), QueryOptions::new())
        .await
        .unwrap_err();
    assert_clean("embeddings", &error);
    let error = manager
        .moderate_with_fallback("x", QueryOptions::new())
        .await
        .unwrap_err();
    assert_clean("moderation", &error);

    let (_, failures) = manager.registry().list_all_models().await;
    assert_eq!(failures.len(), 1);
    assert_clean("model listing", &failures[0].1);

    let provider = manager.get_provider("leaky").unwrap();
    let models = provider
        .model_manager()
        .expect("model management passes through");
    let mut pull = models.pull_model("m").await.unwrap();
    assert_eq!(
        pull.next().await.unwrap().unwrap().status,
        "pulling manifest"
    );
    assert_clean("pull", &pull.next().await.unwrap().unwrap_err());
    assert_clean("delete", &models.delete_model("m").await.unwrap_err());

    for (_, availability) in manager.check_all_availability().await {
        let reason = availability.reason().unwrap().to_string();
        assert_eq!(reason, "the API key was rejected: rejected [REDACTED]");
    }

    // And the provider itself, as the manager hands it out, prints no secret either.
    let debug = format!("{provider:?} {:?}", manager.registry());
    assert!(!debug.contains("SENTINEL"), "{debug}");
}
