//! Availability, embeddings, moderation, advertised models and model management.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::time::Duration;

use fazztv_core::{
    Availability, EmbeddingRequest, ErrorKind, GenerationOptions, ListedPrice, ModelCapability,
    ModelPricing, PriceSource, Provider, ProviderConfig, UnavailableReason, Usage,
};
use fazztv_provider_mock::{MAX_EMBEDDING_DIMENSIONS, MockModel, MockOptions, MockProvider};
use futures::StreamExt;
use insta as _;
use schemars as _;
use serde as _;
use serde_json as _;

fn config() -> ProviderConfig {
    ProviderConfig::new("mock-test").with_type("mock")
}

fn mock(options: MockOptions) -> MockProvider {
    MockProvider::new(config(), options)
}

const DEFAULT_CAPABILITIES: [ModelCapability; 7] = [
    ModelCapability::TextGeneration,
    ModelCapability::Chat,
    ModelCapability::CodeGeneration,
    ModelCapability::Translation,
    ModelCapability::Summarization,
    ModelCapability::Embedding,
    ModelCapability::Moderation,
];

#[tokio::test]
async fn availability_follows_the_options_and_does_not_stop_calls() {
    assert_eq!(
        mock(MockOptions::default()).check_availability().await,
        Availability::Available
    );
    let provider = mock(MockOptions::default().unavailable("down for maintenance"));
    let availability = provider.check_availability().await;
    assert_eq!(
        availability,
        Availability::unavailable(UnavailableReason::Other {
            message: "down for maintenance".into()
        })
    );
    assert_eq!(
        availability.to_string(),
        "unavailable: down for maintenance"
    );
    assert!(provider.query("hi", Default::default()).await.is_ok());
    assert_eq!(provider.calls(), 1, "availability checks are not calls");
}

#[tokio::test]
async fn embeddings_are_deterministic_unit_vectors() {
    let provider = mock(MockOptions::default());
    let response = provider
        .get_embeddings(EmbeddingRequest::batch([
            "alpha beta",
            "gamma",
            "alpha beta",
        ]))
        .await
        .unwrap();
    assert_eq!(response.model, "mock-1");
    assert_eq!(response.provider, "mock-test");
    assert_eq!(response.usage, Some(Usage::new(5, 0)));
    assert_eq!(response.embeddings.len(), 3);
    for vector in &response.embeddings {
        assert_eq!(vector.len(), 8);
        let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    }
    assert_eq!(response.embeddings[0], response.embeddings[2]);
    assert_ne!(response.embeddings[0], response.embeddings[1]);

    // Another instance (another process, another day) gives the same vectors.
    let again = mock(MockOptions::default())
        .get_embeddings(EmbeddingRequest::new("gamma"))
        .await
        .unwrap();
    assert_eq!(again.embeddings[0], response.embeddings[1]);
}

#[tokio::test]
async fn embedding_size_comes_from_options_or_the_request() {
    let provider =
        mock(MockOptions::default().embedding_dimensions(NonZeroUsize::new(32).unwrap()));
    let sized = provider.get_embeddings("text".into()).await.unwrap();
    assert_eq!(sized.embeddings[0].len(), 32);
    let mut request = EmbeddingRequest::new("text");
    request.dimensions = Some(3);
    let shortened = provider.get_embeddings(request).await.unwrap();
    assert_eq!(shortened.embeddings[0].len(), 3);
}

#[tokio::test]
async fn bad_embedding_requests_are_invalid() {
    let provider = mock(MockOptions::default());
    let empty = provider
        .get_embeddings(EmbeddingRequest::batch(Vec::<String>::new()))
        .await
        .unwrap_err();
    assert_eq!(empty.kind(), ErrorKind::InvalidRequest);
    assert_eq!(empty.message(), "no input texts to embed");
    for dimensions in [0, MAX_EMBEDDING_DIMENSIONS as u32 + 1] {
        let mut request = EmbeddingRequest::new("x");
        request.dimensions = Some(dimensions);
        let error = provider.get_embeddings(request).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidRequest);
        assert_eq!(
            error.message(),
            format!("embedding dimensions must be from 1 to 65536, got {dimensions}")
        );
    }
}

#[tokio::test]
async fn embeddings_and_moderation_are_calls_with_scripted_failures() {
    let provider = mock(MockOptions::default().fail_first(2));
    let embedding = provider.get_embeddings("x".into()).await.unwrap_err();
    assert_eq!(embedding.kind(), ErrorKind::ServerError);
    let moderation = provider.moderate_content("x").await.unwrap_err();
    assert_eq!(moderation.kind(), ErrorKind::ServerError);
    assert!(provider.query("x", Default::default()).await.is_ok());
    assert_eq!(provider.calls(), 3);
}

#[tokio::test]
async fn embedding_and_moderation_need_their_capability() {
    let provider = MockProvider::new(
        config().with_capabilities([ModelCapability::Chat]),
        MockOptions::default(),
    );
    let error = provider.get_embeddings("x".into()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unsupported);
    assert_eq!(
        error.to_string(),
        "mock-test: unsupported: this provider does not support embeddings"
    );
    let error = provider.moderate_content("x").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unsupported);
}

#[tokio::test]
async fn embeddings_check_the_model() {
    let provider = mock(MockOptions::default().model(MockModel::new("embedder")));
    assert_eq!(
        provider.get_embeddings("x".into()).await.unwrap().model,
        "embedder"
    );
    let error = provider
        .get_embeddings(EmbeddingRequest::new("x").with_model("other"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ModelNotFound);
}

#[tokio::test]
async fn moderation_flags_blocklisted_words_only() {
    let provider = mock(MockOptions::default());
    let flagged = provider
        .moderate_content("We ATTACK at dawn.")
        .await
        .unwrap();
    assert!(!flagged.safe);
    assert_eq!(flagged.concerns, ["attack"]);
    assert_eq!(flagged.rating, 1.0);
    assert_eq!(
        flagged.category_scores,
        BTreeMap::from([("attack".to_owned(), 1.0)])
    );
    assert_eq!(flagged.model.as_deref(), Some("mock-1"));

    let safe = provider
        .moderate_content("counterattacks are chess moves")
        .await
        .unwrap();
    assert!(safe.safe);
    assert!(safe.concerns.is_empty());
    assert_eq!(safe.rating, 0.0);
    assert_eq!(
        safe.category_scores,
        BTreeMap::from([("attack".to_owned(), 0.0)])
    );
}

#[tokio::test]
async fn moderation_blocklist_is_configurable() {
    let provider = mock(MockOptions::default().moderation_blocklist(["spam", "kill you", " "]));
    let result = provider
        .moderate_content("I will KILL YOU, no spam")
        .await
        .unwrap();
    assert!(!result.safe);
    assert_eq!(result.concerns, ["kill you", "spam"]);
    assert_eq!(
        result.category_scores,
        BTreeMap::from([("kill you".to_owned(), 1.0), ("spam".to_owned(), 1.0)])
    );
    let nothing = mock(MockOptions::default().moderation_blocklist(Vec::<String>::new()))
        .moderate_content("attack")
        .await
        .unwrap();
    assert!(nothing.safe);
}

#[tokio::test]
async fn without_advertised_models_one_free_default_model_is_listed() {
    let models = mock(MockOptions::default()).list_models().await.unwrap();
    assert_eq!(models.len(), 1);
    let model = &models[0];
    assert_eq!(
        (model.id.as_str(), model.name.as_str()),
        ("mock-1", "mock-1")
    );
    assert_eq!(model.provider, "mock-test");
    assert_eq!(model.capabilities, DEFAULT_CAPABILITIES);
    assert!(model.free);
    assert_eq!(model.pricing, Some(ModelPricing::per_token(0.0, 0.0)));

    let configured = MockProvider::new(
        config()
            .with_default_model("tiny")
            .with_capabilities([ModelCapability::Chat]),
        MockOptions::default(),
    );
    let models = configured.list_models().await.unwrap();
    assert_eq!(models[0].id, "tiny");
    assert_eq!(models[0].capabilities, [ModelCapability::Chat]);
}

#[tokio::test]
async fn advertised_models_carry_their_fields() {
    let provider = mock(
        MockOptions::default()
            .model(
                MockModel::new("small")
                    .with_name("Small")
                    .with_description("fast")
                    .with_capabilities([ModelCapability::Chat])
                    .with_context_length(8_192)
                    .with_pricing(ModelPricing::per_token(0.0, 0.0)),
            )
            .model(MockModel::new("priced").with_pricing(ModelPricing::per_million(1.0, 2.0)))
            .model(MockModel::new("paid-no-price").with_free(false)),
    );
    let models = provider.list_models().await.unwrap();
    let ids: Vec<&str> = models.iter().map(|model| model.id.as_str()).collect();
    assert_eq!(ids, ["small", "priced", "paid-no-price"]);

    let small = &models[0];
    assert_eq!(small.name, "Small");
    assert_eq!(small.description.as_deref(), Some("fast"));
    assert_eq!(small.capabilities, [ModelCapability::Chat]);
    assert_eq!(small.context_length, Some(8_192));
    assert!(small.free);

    let priced = &models[1];
    assert_eq!(priced.name, "priced");
    assert_eq!(priced.capabilities, DEFAULT_CAPABILITIES);
    assert_eq!(priced.pricing, Some(ModelPricing::per_million(1.0, 2.0)));
    assert!(!priced.free);
    assert_eq!(priced.context_length, None);

    assert!(!models[2].free);
    assert_eq!(models[2].pricing, None);
}

#[tokio::test]
async fn answers_are_priced_from_the_configured_models() {
    let catalog = |pricing: ModelPricing| Some(ListedPrice::new(pricing, PriceSource::Catalog));
    let provider = mock(
        MockOptions::default()
            .model(MockModel::new("priced").with_pricing(ModelPricing::per_million(1.0, 2.0)))
            .model(MockModel::new("free").with_free(true))
            .model(MockModel::new("unpriced"))
            .model(MockModel::new("paid-no-price").with_free(false)),
    );
    let free = catalog(ModelPricing::per_token(0.0, 0.0));
    assert_eq!(
        provider.list_price("priced"),
        catalog(ModelPricing::per_million(1.0, 2.0))
    );
    assert_eq!(provider.list_price("free"), free);
    assert_eq!(provider.list_price("unpriced"), free, "free unless said");
    assert_eq!(provider.list_price("paid-no-price"), None);
    assert_eq!(provider.list_price("not-offered"), None);
    // A listed price is the one the listing shows.
    let listed = provider.list_models().await.unwrap();
    assert_eq!(listed[0].price(), provider.list_price("priced"));

    // Without configured models every model is the mock's own, at no charge.
    let any = mock(MockOptions::default());
    assert_eq!(any.list_price("mock-1"), free);
    assert_eq!(any.list_price("whatever"), free);
}

#[tokio::test]
async fn pulling_reports_progress_then_lists_the_model() {
    let provider = mock(MockOptions::default().model(MockModel::new("llama2")));
    let manager = provider.model_manager().expect("mock manages models");
    let error = provider
        .query("hi", GenerationOptions::with_model("codellama"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ModelNotFound);

    let reports: Vec<_> = manager
        .pull_model("codellama")
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;
    let statuses: Vec<&str> = reports
        .iter()
        .map(|report| report.status.as_str())
        .collect();
    let layer = &statuses[1];
    assert!(
        layer.starts_with("pulling ") && layer.len() == "pulling ".len() + 12,
        "{layer}"
    );
    assert_eq!(
        statuses,
        [
            "pulling manifest",
            layer,
            layer,
            layer,
            layer,
            layer,
            "verifying sha256 digest",
            "writing manifest",
            "success"
        ]
    );
    let layers = &reports[1..6];
    let digest = layers[0].digest.clone().unwrap();
    assert!(digest.starts_with(&format!("sha256:{}", &layer["pulling ".len()..])));
    assert_eq!(digest.len(), 71);
    assert!(
        layers
            .iter()
            .all(|report| report.digest.as_deref() == Some(digest.as_str()))
    );
    assert!(layers.iter().all(|report| report.total == Some(4_194_304)));
    let completed: Vec<u64> = layers
        .iter()
        .map(|report| report.completed.unwrap())
        .collect();
    assert_eq!(completed, [0, 1_048_576, 2_097_152, 3_145_728, 4_194_304]);
    assert!(reports.last().unwrap().is_success());

    let ids: Vec<String> = provider
        .list_models()
        .await
        .unwrap()
        .into_iter()
        .map(|model| model.id)
        .collect();
    assert_eq!(ids, ["llama2", "codellama"]);
    let pulled = provider.list_models().await.unwrap().pop().unwrap();
    assert!(pulled.free);
    assert_eq!(pulled.capabilities, DEFAULT_CAPABILITIES);
    assert_eq!(
        provider
            .query("hi", GenerationOptions::with_model("codellama"))
            .await
            .unwrap()
            .model,
        "codellama"
    );

    // Pulling again succeeds and keeps one entry; the digest is stable.
    let again: Vec<_> = manager
        .pull_model("codellama")
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(
        again[1].as_ref().unwrap().digest.as_deref(),
        Some(digest.as_str())
    );
    assert_eq!(provider.list_models().await.unwrap().len(), 2);
}

#[tokio::test]
async fn an_abandoned_pull_lists_nothing() {
    let provider = mock(MockOptions::default());
    let manager = provider.model_manager().unwrap();
    let mut stream = manager.pull_model("phi3").await.unwrap();
    for _ in 0..8 {
        stream.next().await.unwrap().unwrap();
    }
    drop(stream);
    let ids: Vec<String> = provider
        .list_models()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids, ["mock-1"]);
}

#[tokio::test]
async fn pulling_an_empty_name_is_invalid() {
    let provider = mock(MockOptions::default());
    let error = provider
        .model_manager()
        .unwrap()
        .pull_model("  ")
        .await
        .err()
        .unwrap();
    assert_eq!(error.kind(), ErrorKind::InvalidRequest);
}

#[tokio::test(start_paused = true)]
async fn pull_progress_is_paced_by_chunk_latency() {
    let provider = mock(MockOptions::default().chunk_latency_ms(10));
    let start = tokio::time::Instant::now();
    let reports: Vec<_> = provider
        .model_manager()
        .unwrap()
        .pull_model("phi3")
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(reports.len(), 9);
    assert_eq!(start.elapsed(), Duration::from_millis(80));
}

#[tokio::test]
async fn deleting_removes_the_model_and_unknown_models_are_not_found() {
    let provider = mock(
        MockOptions::default()
            .model(MockModel::new("llama2"))
            .model(MockModel::new("mistral")),
    );
    let manager = provider.model_manager().unwrap();
    manager.delete_model("llama2").await.unwrap();
    let ids: Vec<String> = provider
        .list_models()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids, ["mistral"]);

    let error = provider.query("hi", Default::default()).await.unwrap_err();
    assert_eq!(
        error.kind(),
        ErrorKind::ModelNotFound,
        "the default model was deleted"
    );

    let error = manager.delete_model("llama2").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ModelNotFound);
    assert_eq!(error.provider(), Some("mock-test"));
    assert_eq!(
        error.message(),
        "model `llama2` is not installed on this mock provider"
    );
}
