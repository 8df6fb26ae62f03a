//! Request/response endpoints against wiremock.

use fazztv_core::{
    Availability, ChatRequest, EmbeddingRequest, ErrorKind, FinishReason, GenerationOptions,
    ModelCapability, ModelPricing, PriceSource, Provider, ProviderConfig, UnavailableReason, Usage,
};
use fazztv_provider_openrouter::OpenRouterProvider;
use fazztv_testkit::fixtures;
use fazztv_testkit::mock::{self, ErrorContext, only_request, snapshot_of};
use fazztv_testkit::provider::{closed_port, example_setup, registration};
use serde_json::{Value, json};
use wiremock::{MockServer, Request, ResponseTemplate};

use crate::{SENTINEL_KEY, config, no_env, provider};

async fn server_with(route: &str, response: ResponseTemplate) -> MockServer {
    mock::server_with(&format!("/api/v1/{route}"), response).await
}

fn json_response(status: u16, body: &str) -> ResponseTemplate {
    mock::json_response(status, body).insert_header("x-generation-id", "gen-1755600000-hdr")
}

fn base(server: &MockServer) -> String {
    format!("{}/api/v1", server.uri())
}

fn assert_bearer(request: &Request) {
    mock::assert_bearer(request, SENTINEL_KEY);
}

fn attributed(base_url: &str) -> ProviderConfig {
    config(base_url)
        .with_option("http_referer", json!("https://example.com"))
        .with_option("x_title", json!("Example App"))
        .with_option(
            "provider",
            json!({"order": ["anthropic", "amazon-bedrock"], "data_collection": "deny"}),
        )
}

#[tokio::test]
async fn chat_sends_attribution_and_routing_and_decodes_the_completion() {
    let server = server_with(
        "chat/completions",
        json_response(200, fixtures::OPENROUTER_CHAT_COMPLETION),
    )
    .await;
    let provider = provider(attributed(&base(&server)));
    let request = ChatRequest::from_prompt("What is the meaning of life?").with_options(
        GenerationOptions::with_model("openai/gpt-4o")
            .temperature(0.7)
            .max_tokens(512),
    );
    let response = provider.chat(request).await.unwrap();
    assert_eq!(response.content, "Hello there!");
    assert_eq!(response.model, "openai/gpt-4o");
    assert_eq!(response.provider, "openrouter");
    assert_eq!(response.finish_reason, Some(FinishReason::Stop));
    assert_eq!(
        response.usage,
        Some(
            Usage::new(10, 4)
                .with_cached_tokens(Some(0))
                .with_reasoning_tokens(Some(0))
                // What OpenRouter charged; `cost_details` is a breakdown of it.
                .with_cost_usd(Some(0.000065))
        )
    );
    assert_eq!(response.request_id.as_deref(), Some("gen-1755600000-hdr"));

    let request = only_request(&server).await;
    assert_bearer(&request);
    insta::assert_json_snapshot!("chat_request", snapshot_of(&request), {
        ".headers.authorization" => "[redacted]"
    });
}

#[tokio::test]
async fn the_default_model_is_used_and_a_request_can_bring_its_own_routing() {
    let body = fixtures::OPENROUTER_CHAT_COMPLETION;
    let server = server_with(
        "chat/completions",
        ResponseTemplate::new(200).set_body_raw(body, "application/json"),
    )
    .await;
    let provider = provider(attributed(&base(&server)));
    assert_eq!(provider.default_model(), "openai/gpt-4o-mini");
    let options = GenerationOptions::default().extra("provider", json!({"sort": "price"}));
    let response = provider.query("hi", options).await.unwrap();
    assert_eq!(
        response.request_id.as_deref(),
        Some("gen-1755600000-AbCdEfGhIjKlMnOpQrSt"),
        "the body id when no header carries one"
    );
    let body: Value = serde_json::from_slice(&only_request(&server).await.body).unwrap();
    assert_eq!(body["model"], "openai/gpt-4o-mini");
    assert_eq!(body["provider"], json!({"sort": "price"}));
}

/// What the conformance suite cannot know: OpenRouter's typed bodies, whose codes, metadata
/// and upstream `raw` errors refine the status, and the generation id header.
#[tokio::test]
async fn documented_error_bodies_keep_their_kind_message_and_request_id() {
    let cases: &[(u16, &str, ErrorKind, &str)] = &[
        (
            400,
            fixtures::OPENROUTER_PROVIDER_ERROR,
            ErrorKind::InvalidRequest,
            "Provider returned error (Crucible): Model 'moonshotai/kimi-k2.6' supports at most 1 image per prompt.",
        ),
        (
            400,
            r#"{"error":{"code":400,"message":"This endpoint's maximum context length is 131072 tokens. However, you requested about 200000 tokens.","metadata":{"error_type":"context_length_exceeded"}}}"#,
            ErrorKind::ContextLengthExceeded,
            "maximum context length",
        ),
        (
            400,
            r#"{"error":{"message":"acme/fake-1.0 is not a valid model ID","error_type":"invalid_request","http_status":400,"availability":{"code":"model_not_found","retryable":false,"requested_models":["acme/fake-1.0"]}}}"#,
            ErrorKind::ModelNotFound,
            "not a valid model ID",
        ),
        (
            402,
            fixtures::OPENROUTER_INSUFFICIENT_CREDITS,
            ErrorKind::QuotaExhausted,
            "Insufficient credits",
        ),
        (
            403,
            r#"{"error":{"code":403,"message":"Input was flagged by moderation","metadata":{"reasons":["violence"],"flagged_input":"...","provider_name":"OpenAI","model_slug":"openai/gpt-4o"}}}"#,
            ErrorKind::ContentFiltered,
            "flagged by moderation",
        ),
        (
            429,
            fixtures::OPENROUTER_RATE_LIMITED,
            ErrorKind::RateLimited,
            "Rate limit exceeded",
        ),
        (
            429,
            fixtures::OPENROUTER_CAPACITY_EXHAUSTED,
            ErrorKind::RateLimited,
            "at capacity",
        ),
        (
            429,
            // A BYOK key out of quota upstream: only `metadata.raw` says so.
            r#"{"error":{"message":"Provider returned error","code":429,"metadata":{"raw":"{\"error\":{\"message\":\"You exceeded your current quota, please check your plan and billing details.\",\"type\":\"insufficient_quota\",\"code\":\"insufficient_quota\"}}","provider_name":"OpenAI","is_byok":true}}}"#,
            ErrorKind::QuotaExhausted,
            "exceeded your current quota",
        ),
    ];
    let server = MockServer::start().await;
    let provider = provider(config(&base(&server)));
    let expected = ErrorContext {
        provider: "openrouter",
        request_id: "gen-1755600000-hdr",
        key: SENTINEL_KEY,
    };
    mock::assert_error_statuses(
        &server,
        "/api/v1/chat/completions",
        &provider,
        json_response,
        expected,
        cases,
    )
    .await;
}

#[tokio::test]
async fn an_html_200_is_a_protocol_error() {
    let html =
        "<!DOCTYPE html><html><body><h1>Please sign in to the captive portal</h1></body></html>";
    let server = server_with(
        "chat/completions",
        ResponseTemplate::new(200).set_body_raw(html, "text/html"),
    )
    .await;
    let error = provider(config(&base(&server)))
        .query("hi", GenerationOptions::default())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Protocol);
    assert!(
        error.message().contains("captive portal"),
        "{}",
        error.message()
    );
}

#[tokio::test]
async fn models_carry_prices_context_capabilities_and_free_flags_even_without_a_key() {
    let server = server_with("models", json_response(200, fixtures::OPENROUTER_MODELS)).await;
    let keyless = ProviderConfig::new("openrouter").with_base_url(base(&server));
    let models = provider(keyless).list_models().await.unwrap();
    assert_eq!(models.len(), 2);
    let llama = &models[0];
    assert_eq!(llama.id, "meta-llama/llama-3.3-70b-instruct:free");
    assert_eq!(llama.name, "Meta: Llama 3.3 70B Instruct (free)");
    assert!(llama.free);
    let free = ModelPricing::per_token(0.0, 0.0).with_fixed(Some(0.0), Some(0.0));
    assert_eq!(llama.pricing, Some(free));
    assert_eq!(llama.price_source, Some(PriceSource::Catalog));
    assert_eq!(llama.context_length, Some(131_072));
    let gpt4 = &models[1];
    assert_eq!(gpt4.id, "openai/gpt-4");
    assert!(!gpt4.free);
    assert_eq!(
        gpt4.pricing,
        Some(ModelPricing::per_token(0.00003, 0.00006).with_fixed(Some(0.0), Some(0.0)))
    );
    assert_eq!(gpt4.price_source, Some(PriceSource::Catalog));
    assert_eq!(gpt4.context_length, Some(8192));
    assert!(gpt4.supports(ModelCapability::Chat));
    assert!(!gpt4.supports(ModelCapability::ImageGeneration));
    assert_eq!(gpt4.provider, "openrouter");
    let request = only_request(&server).await;
    assert_eq!(request.method.as_str(), "GET");
    assert!(request.headers.get("authorization").is_none());
}

#[tokio::test]
async fn availability_uses_the_key_endpoint() {
    let server = server_with("key", json_response(200, fixtures::OPENROUTER_KEY)).await;
    assert_eq!(
        provider(config(&base(&server))).check_availability().await,
        Availability::Available
    );
    assert_bearer(&only_request(&server).await);

    let rejected = r#"{"error":{"code":401,"message":"User not found."}}"#;
    let server = server_with("key", json_response(401, rejected)).await;
    let availability = provider(config(&base(&server))).check_availability().await;
    assert_eq!(
        availability,
        Availability::unavailable(UnavailableReason::AuthenticationFailed {
            message: "User not found.".into()
        })
    );

    let closed = closed_port();
    let availability = provider(config(&format!("{}/api/v1", closed.url())))
        .check_availability()
        .await;
    assert!(
        matches!(
            availability.reason(),
            Some(UnavailableReason::Unreachable { .. })
        ),
        "{availability:?}"
    );

    let server = MockServer::start().await;
    let keyless = provider(ProviderConfig::new("openrouter").with_base_url(base(&server)));
    assert_eq!(
        keyless.check_availability().await,
        Availability::unavailable(UnavailableReason::MissingApiKey {
            env_var: Some("OPENROUTER_API_KEY".into())
        })
    );
    let error = keyless
        .query("hi", GenerationOptions::default())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Configuration);
    assert!(error.message().contains("OPENROUTER_API_KEY"), "{error}");
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn embeddings_use_the_openrouter_default_model_and_moderation_is_unsupported() {
    let server = server_with(
        "embeddings",
        json_response(200, fixtures::OPENAI_EMBEDDINGS),
    )
    .await;
    let provider = provider(config(&base(&server)));
    let response = provider
        .get_embeddings(EmbeddingRequest::batch(["a", "b"]))
        .await
        .unwrap();
    assert_eq!(response.embeddings.len(), 2);
    let body: Value = serde_json::from_slice(&only_request(&server).await.body).unwrap();
    assert_eq!(
        body,
        json!({"model": "openai/text-embedding-3-small", "input": ["a", "b"], "encoding_format": "float"})
    );
    let error = provider.moderate_content("text").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unsupported);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_registration_builds_a_working_provider_from_configuration() {
    let registration = registration("openrouter");
    assert_eq!(registration.default_api_key_env, Some("OPENROUTER_API_KEY"));
    assert_eq!(registration.cargo_feature, Some("openrouter"));
    assert_eq!(registration.crate_name, "fazztv-provider-openrouter");

    let server = server_with(
        "chat/completions",
        json_response(200, fixtures::OPENROUTER_CHAT_COMPLETION),
    )
    .await;
    let (config, context) = example_setup(registration, &base(&server), SENTINEL_KEY);
    let provider = registration.build(&config, &context).unwrap();
    assert_eq!(provider.name(), "openrouter");
    let response = provider
        .query("hi", GenerationOptions::default())
        .await
        .unwrap();
    assert_eq!(response.content, "Hello there!");
    let request = only_request(&server).await;
    assert_bearer(&request);
    assert_eq!(request.headers.get("x-title").unwrap(), "Example App");

    let bad = config.clone().with_option("x-title", json!("typo"));
    let error = registration.build(&bad, &context).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Configuration);
    assert!(error.message().contains("x-title"), "{error}");
}

#[test]
fn the_default_endpoint_and_options_schema_are_stable() {
    let default =
        OpenRouterProvider::with_environment(ProviderConfig::new("openrouter"), &no_env()).unwrap();
    assert_eq!(default.base_url(), "https://openrouter.ai/api/v1");
    insta::assert_json_snapshot!(
        "options_schema",
        (registration("openrouter").options_schema)()
    );
}
