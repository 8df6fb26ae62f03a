//! Request/response endpoints against wiremock.

use std::time::Duration;

use fazztv_core::{
    Availability, ChatMessage, ChatRequest, ContentPart, EmbeddingRequest, ErrorKind, FinishReason,
    GenerationOptions, ImageSource, ModelCapability, ModelPricing, PriceSource, Provider,
    ProviderConfig, ReasoningControl, Tool, ToolCall, ToolChoice, ToolResult, UnavailableReason,
    Usage, assemble,
};
use fazztv_provider_openai::OpenAiProvider;
use fazztv_testkit::mock::{self, ErrorContext, only_request, snapshot_of};
use fazztv_testkit::provider::{closed_port, example_setup, registration};
use fazztv_testkit::{Gate, ScriptedResponse, ScriptedServer, fixtures};
use serde_json::{Value, json};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::{SENTINEL_KEY, assert_no_key, config, no_env, provider};

async fn server_with(route: &str, response: ResponseTemplate) -> MockServer {
    mock::server_with(&format!("/v1/{route}"), response).await
}

fn json_response(status: u16, body: &str) -> ResponseTemplate {
    mock::json_response(status, body).insert_header("x-request-id", "req_abc123")
}

fn base(server: &MockServer) -> String {
    format!("{}/v1", server.uri())
}

fn assert_bearer(request: &Request) {
    mock::assert_bearer(request, SENTINEL_KEY);
    let agent = request.headers.get("user-agent").unwrap().to_str().unwrap();
    assert!(agent.starts_with("fazztv/"), "{agent}");
}

/// The one request `server` got: checks its key and matches it, key redacted, against the
/// snapshot `name`.
async fn assert_request_snapshot(server: &MockServer, name: &str) {
    let request = only_request(server).await;
    assert_bearer(&request);
    insta::assert_json_snapshot!(name, snapshot_of(&request), {
        ".headers.authorization" => "[redacted]"
    });
}

fn full_request() -> ChatRequest {
    let mut options = GenerationOptions::with_model("gpt-4o")
        .temperature(0.2)
        .max_tokens(256)
        .extra("user", json!("user-1234"))
        .extra("model", json!("not-this-one"));
    options.top_p = Some(1.0);
    options.stop = vec!["\n\n\n".into()];
    options.seed = Some(42);
    ChatRequest::new(vec![
        ChatMessage::system("You are a concise assistant."),
        ChatMessage::user("Say hello"),
    ])
    .with_options(options)
}

#[tokio::test]
async fn chat_sends_the_documented_request_and_decodes_the_completion() {
    let server = server_with(
        "chat/completions",
        json_response(200, fixtures::OPENAI_CHAT_COMPLETION),
    )
    .await;
    let provider = provider(
        config(&base(&server))
            .with_option("organization", json!("org-test"))
            .with_option("project", json!("proj_test")),
    );
    let response = provider.chat(full_request()).await.unwrap();
    assert_eq!(response.content, "Hello! How can I assist you today?");
    assert_eq!(response.model, "gpt-4o-2024-08-06");
    assert_eq!(response.provider, "openai");
    assert_eq!(response.finish_reason, Some(FinishReason::Stop));
    assert_eq!(
        response.usage,
        Some(
            Usage::new(19, 10)
                .with_cached_tokens(Some(0))
                .with_reasoning_tokens(Some(0))
        )
    );
    assert_eq!(response.request_id.as_deref(), Some("req_abc123"));

    assert_request_snapshot(&server, "chat_request").await;
}

#[tokio::test]
async fn query_uses_the_default_model_and_a_missing_usage_stays_unknown() {
    let body = r#"{"id":"chatcmpl-9","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}]}"#;
    let server = server_with(
        "chat/completions",
        ResponseTemplate::new(200).set_body_raw(body, "application/json"),
    )
    .await;
    let provider = provider(config(&base(&server)));
    let response = provider
        .query("Hi", GenerationOptions::default())
        .await
        .unwrap();
    assert_eq!(response.usage, None);
    assert_eq!(response.request_id.as_deref(), Some("chatcmpl-9"));
    let request = only_request(&server).await;
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(
        body,
        json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], "stream": false})
    );
}

#[tokio::test]
async fn tool_call_completions_decode_with_empty_content() {
    let server = server_with(
        "chat/completions",
        json_response(200, fixtures::OPENAI_TOOL_CALL_COMPLETION),
    )
    .await;
    let response = provider(config(&base(&server)))
        .query("weather?", GenerationOptions::default())
        .await
        .unwrap();
    assert_eq!(response.content, "");
    assert_eq!(response.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(
        response.usage,
        Some(Usage::new(82, 17).with_reasoning_tokens(Some(0)))
    );
    assert_eq!(
        response.tool_calls,
        [ToolCall::new(
            "call_abc123",
            "get_current_weather",
            json!({"location": "Boston, MA"})
        )]
    );
}

/// The whole tool loop against a loopback OpenAI: the user asks (with an image), the model
/// calls a tool, the result goes back, the model answers; non-streamed and streamed, each
/// request pinned by a snapshot.
#[tokio::test]
async fn a_tool_call_conversation_round_trips_in_the_documented_shapes() {
    let weather = Tool::new(
        "get_current_weather",
        json!({"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}),
    )
    .with_description("The weather where you are");
    let question = ChatMessage::user("What's the weather like here?").with_part(
        ContentPart::image(ImageSource::from_bytes("image/png", &b"\x89PNG"[..])),
    );
    let first = ChatRequest::new(vec![question.clone()])
        .with_tool(weather.clone())
        .with_tool_choice(ToolChoice::Auto);

    let server = server_with(
        "chat/completions",
        json_response(200, fixtures::OPENAI_TOOL_CALL_COMPLETION),
    )
    .await;
    let provider = provider(config(&base(&server)));
    let asked = provider.chat(first.clone()).await.unwrap();
    assert_eq!(asked.tool_calls.len(), 1);
    assert_request_snapshot(&server, "tool_call_request").await;

    // The model's turn and the tool's result go back in OpenAI's shapes.
    let followup = ChatRequest::new(vec![
        question,
        ChatMessage::from_response(&asked),
        ChatMessage::tool_result(ToolResult::new(
            asked.tool_calls[0].id.clone(),
            r#"{"temperature": 22, "unit": "celsius"}"#,
        )),
    ])
    .with_tool(weather);
    let server = server_with(
        "chat/completions",
        json_response(200, fixtures::OPENAI_CHAT_COMPLETION),
    )
    .await;
    let provider = crate::provider(config(&base(&server)));
    let answer = provider.chat(followup.clone()).await.unwrap();
    assert!(answer.tool_calls.is_empty());
    assert_eq!(answer.finish_reason, Some(FinishReason::Stop));
    assert_request_snapshot(&server, "tool_result_request").await;

    // Streamed, the recorded tool-call stream assembles to the same kind of answer.
    let server = server_with(
        "chat/completions",
        ResponseTemplate::new(200).set_body_raw(
            fixtures::OPENAI_TOOL_CALL_STREAM.as_bytes().to_vec(),
            "text/event-stream",
        ),
    )
    .await;
    let provider = crate::provider(config(&base(&server)));
    let streamed = assemble(provider.chat_stream(first).await.unwrap(), "openai")
        .await
        .unwrap();
    assert_eq!(streamed.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(
        streamed.tool_calls,
        [ToolCall::new(
            "call_4XzlGBLtUe9dy3GVNV4jhq7h",
            "get_weather",
            json!({"city": "New York City"})
        )]
    );
    let body: Value = serde_json::from_slice(&only_request(&server).await.body).unwrap();
    assert_eq!(body["stream"], true);
    assert_eq!(body["tools"][0]["function"]["name"], "get_current_weather");
}

#[tokio::test]
async fn a_reasoning_budget_is_refused_before_anything_is_sent() {
    let server = server_with(
        "chat/completions",
        json_response(200, fixtures::OPENAI_CHAT_COMPLETION),
    )
    .await;
    let request =
        ChatRequest::from_prompt("think").with_reasoning(ReasoningControl::BudgetTokens(1024));
    let error = provider(config(&base(&server)))
        .chat(request)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unsupported);
    assert!(error.message().contains("budget"), "{error}");
    assert!(server.received_requests().await.unwrap().is_empty());
}

/// What the conformance suite cannot know: the spec's own error bodies, whose codes refine the
/// status (context length, quota), an HTML gateway page, and the request id header.
#[tokio::test]
async fn documented_error_bodies_keep_their_kind_message_and_request_id() {
    let cases: &[(u16, &str, ErrorKind, &str)] = &[
        (
            400,
            fixtures::OPENAI_CONTEXT_LENGTH_EXCEEDED,
            ErrorKind::ContextLengthExceeded,
            "maximum context length is 8192 tokens",
        ),
        (
            401,
            fixtures::OPENAI_INVALID_API_KEY,
            ErrorKind::Authentication,
            "Incorrect API key provided",
        ),
        (
            404,
            fixtures::OPENAI_MODEL_NOT_FOUND,
            ErrorKind::ModelNotFound,
            "does not exist",
        ),
        (
            429,
            fixtures::OPENAI_RATE_LIMITED,
            ErrorKind::RateLimited,
            "Rate limit reached for gpt-4o",
        ),
        (
            429,
            fixtures::OPENAI_INSUFFICIENT_QUOTA,
            ErrorKind::QuotaExhausted,
            "You exceeded your current quota",
        ),
        (
            502,
            "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>cloudflare</body></html>",
            ErrorKind::ServerError,
            "502 Bad Gateway",
        ),
    ];
    let server = MockServer::start().await;
    let provider = provider(config(&base(&server)));
    let expected = ErrorContext {
        provider: "openai",
        request_id: "req_abc123",
        key: SENTINEL_KEY,
    };
    mock::assert_error_statuses(
        &server,
        "/v1/chat/completions",
        &provider,
        json_response,
        expected,
        cases,
    )
    .await;
}

#[tokio::test]
async fn an_html_200_or_one_without_choices_is_a_protocol_error() {
    let html = "<!DOCTYPE html><html><body><h1>Welcome to the hotel Wi-Fi</h1></body></html>";
    let server = server_with(
        "chat/completions",
        ResponseTemplate::new(200)
            .set_body_raw(html, "text/html")
            .insert_header("x-request-id", "req_html"),
    )
    .await;
    let provider = crate::provider(config(&base(&server)));
    let error = provider
        .query("hi", GenerationOptions::default())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Protocol);
    assert_eq!(error.request_id(), Some("req_html"));
    assert!(
        error.message().contains("hotel Wi-Fi"),
        "{}",
        error.message()
    );

    let empty = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[]}"#;
    let server = server_with("chat/completions", json_response(200, empty)).await;
    let error = crate::provider(config(&base(&server)))
        .query("hi", GenerationOptions::default())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Protocol);
    assert!(
        error.message().contains("no choices"),
        "{}",
        error.message()
    );
}

#[tokio::test]
async fn list_models_infers_capabilities_and_joins_prices() {
    let server = server_with("models", json_response(200, fixtures::OPENAI_MODELS)).await;
    let models = provider(config(&base(&server)))
        .list_models()
        .await
        .unwrap();
    let ids: Vec<&str> = models.iter().map(|model| model.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "ft:gpt-4o-mini:acemeco:suffix:abc123",
            "gpt-4o-mini",
            "text-embedding-3-small"
        ]
    );
    let mini = &models[1];
    assert_eq!(mini.provider, "openai");
    assert!(mini.supports(ModelCapability::Chat));
    // Content capabilities by family, also for a fine-tune of it.
    for model in &models[..2] {
        assert!(model.supports(ModelCapability::ToolCalling), "{}", model.id);
        assert!(
            model.supports(ModelCapability::StructuredOutput),
            "{}",
            model.id
        );
        assert!(!model.supports(ModelCapability::Reasoning), "{}", model.id);
    }
    assert_eq!(
        mini.pricing,
        Some(ModelPricing::per_million(0.15, 0.60).with_cached_prompt(0.075 / 1e6))
    );
    assert_eq!(
        mini.price_source,
        Some(PriceSource::Table {
            as_of: "2025-08-07".into()
        })
    );
    assert_eq!(mini.context_length, Some(128_000));
    assert!(!mini.free);
    assert_eq!(models[2].capabilities, [ModelCapability::Embedding]);
    assert_eq!(models[0].pricing, None, "fine-tune prices are unknown");
    let request = only_request(&server).await;
    assert_eq!(request.method.as_str(), "GET");
    assert_bearer(&request);
}

#[tokio::test]
async fn embeddings_send_every_input_and_return_vectors_in_order() {
    let server = server_with(
        "embeddings",
        json_response(200, fixtures::OPENAI_EMBEDDINGS),
    )
    .await;
    let provider = provider(config(&base(&server)));
    let mut request = EmbeddingRequest::batch([
        "The food was delicious and the waiter was friendly.",
        "The quick brown fox",
    ]);
    request.dimensions = Some(8);
    let response = provider.get_embeddings(request).await.unwrap();
    assert_eq!(response.embeddings.len(), 2);
    assert_eq!(response.embeddings[0][0], 0.0023064255);
    assert_eq!(response.embeddings[1][0], -0.010751318);
    assert_eq!(response.model, "text-embedding-3-small");
    assert_eq!(response.usage.map(|usage| usage.prompt_tokens), Some(16));
    assert_request_snapshot(&server, "embeddings_request").await;
}

#[tokio::test]
async fn embeddings_of_one_text_use_the_configured_model() {
    let body = r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]}],"model":"text-embedding-3-large","usage":{"prompt_tokens":2,"total_tokens":2}}"#;
    let server = server_with("embeddings", json_response(200, body)).await;
    let provider = provider(
        config(&base(&server)).with_option("embedding_model", json!("text-embedding-3-large")),
    );
    let response = provider.get_embeddings("Sample text".into()).await.unwrap();
    assert_eq!(response.embeddings, vec![vec![0.1, 0.2]]);
    let body: Value = serde_json::from_slice(&only_request(&server).await.body).unwrap();
    assert_eq!(body["model"], "text-embedding-3-large");
    assert_eq!(body["input"], json!(["Sample text"]));
}

#[tokio::test]
async fn moderation_reports_concerns_and_the_highest_score_as_rating() {
    let server = server_with(
        "moderations",
        json_response(200, fixtures::OPENAI_MODERATION),
    )
    .await;
    let provider = provider(config(&base(&server)));
    let verdict = provider
        .moderate_content("...text to classify goes here...")
        .await
        .unwrap();
    assert!(!verdict.safe);
    assert_eq!(
        verdict.concerns,
        [
            "harassment",
            "harassment/threatening",
            "violence",
            "violence/graphic"
        ]
    );
    assert_eq!(verdict.rating, 0.9999992735124786);
    assert_eq!(verdict.category_scores.len(), 13);
    assert_eq!(verdict.model.as_deref(), Some("omni-moderation-latest"));
    assert_request_snapshot(&server, "moderation_request").await;
}

#[tokio::test]
async fn availability_distinguishes_missing_rejected_and_unreachable() {
    let server = server_with("models", json_response(200, fixtures::OPENAI_MODELS)).await;
    assert_eq!(
        provider(config(&base(&server))).check_availability().await,
        Availability::Available
    );

    let server = server_with(
        "models",
        json_response(401, fixtures::OPENAI_INVALID_API_KEY),
    )
    .await;
    let availability = provider(config(&base(&server))).check_availability().await;
    assert!(
        matches!(availability.reason(), Some(UnavailableReason::AuthenticationFailed { message }) if message.contains("Incorrect API key")),
        "{availability:?}"
    );

    let closed = closed_port();
    let url = format!("{}/v1", closed.url());
    let availability = provider(config(&url)).check_availability().await;
    assert!(
        matches!(availability.reason(), Some(UnavailableReason::Unreachable { url: reported, .. }) if *reported == url),
        "{availability:?}"
    );
    assert_no_key(&format!("{availability:?} {availability}"));

    let server = MockServer::start().await;
    let keyless = ProviderConfig::new("openai").with_base_url(base(&server));
    let provider = provider(keyless);
    assert_eq!(
        provider.check_availability().await,
        Availability::unavailable(UnavailableReason::MissingApiKey {
            env_var: Some("OPENAI_API_KEY".into())
        })
    );
    let error = provider
        .query("hi", GenerationOptions::default())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Configuration);
    assert!(error.message().contains("OPENAI_API_KEY"), "{error}");
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_availability_probe_without_an_answer_times_out_as_unreachable() {
    // The server takes the request and never answers it while the test runs.
    let never = Gate::new();
    let silent = ScriptedServer::start([
        ScriptedResponse::with_body(200, fixtures::OPENAI_MODELS).head_after_gate(&never)
    ])
    .await;
    let url = format!("{}/v1", silent.base_url());
    let availability = provider(config(&url).with_timeout(Duration::from_millis(200)))
        .check_availability()
        .await;
    assert!(
        matches!(availability.reason(), Some(UnavailableReason::Unreachable { url: reported, message }) if *reported == url && message.contains("timed out")),
        "{availability:?}"
    );
    assert_eq!(silent.requests()[0].path, "/v1/models");
    assert_no_key(&format!("{availability:?} {availability}"));
}

#[tokio::test]
async fn a_keyless_local_server_gets_no_authorization_header() {
    let server = server_with(
        "chat/completions",
        json_response(200, fixtures::OPENAI_CHAT_COMPLETION),
    )
    .await;
    Mock::given(path("/v1/models"))
        .respond_with(json_response(200, fixtures::OPENAI_MODELS))
        .mount(&server)
        .await;
    let provider = provider(
        ProviderConfig::new("local")
            .with_type("openai")
            .with_base_url(base(&server))
            .with_default_model("llama3.2")
            .with_option("require_api_key", json!(false))
            .with_option("max_tokens_field", json!("max_tokens")),
    );
    assert!(provider.check_availability().await.is_available());
    provider
        .query("hi", GenerationOptions::default().max_tokens(5))
        .await
        .unwrap();
    let requests = server.received_requests().await.unwrap();
    let chat = requests
        .iter()
        .find(|r| r.url.path().ends_with("/chat/completions"))
        .unwrap();
    assert!(chat.headers.get("authorization").is_none());
    let body: Value = serde_json::from_slice(&chat.body).unwrap();
    assert_eq!(
        (body["model"].as_str(), body["max_tokens"].as_u64()),
        (Some("llama3.2"), Some(5))
    );
}

#[tokio::test]
async fn base_url_comes_from_config_then_openai_base_url_then_the_default() {
    let server = server_with("models", json_response(200, fixtures::OPENAI_MODELS)).await;
    let environment = fazztv_core::Environment::from_vars([
        ("OPENAI_BASE_URL", base(&server)),
        ("OPENAI_API_KEY", SENTINEL_KEY.to_owned()),
    ]);
    let from_env =
        OpenAiProvider::with_environment(ProviderConfig::new("openai"), &environment).unwrap();
    assert_eq!(from_env.base_url(), base(&server));
    assert_eq!(from_env.list_models().await.unwrap().len(), 3);
    assert_bearer(&only_request(&server).await);

    // Only parsed, never connected to; still a port where nothing answers.
    let closed = closed_port();
    let configured = OpenAiProvider::with_environment(
        ProviderConfig::new("openai").with_base_url(format!("{}/v1/", closed.url())),
        &environment,
    )
    .unwrap();
    assert_eq!(configured.base_url(), format!("{}/v1", closed.url()));
    let default =
        OpenAiProvider::with_environment(ProviderConfig::new("openai"), &no_env()).unwrap();
    assert_eq!(default.base_url(), "https://api.openai.com/v1");
    assert_eq!(default.default_model(), "gpt-4o-mini");

    for bad in [
        "ftp://example.com/v1",
        "https://user:pass@example.com/v1",
        "not a url",
    ] {
        let error = OpenAiProvider::with_environment(config(bad), &no_env()).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Configuration, "{bad}");
        assert!(!error.message().contains("pass@"), "{error}");
    }
    let error = OpenAiProvider::with_environment(
        config("http://127.0.0.1/v1").with_option("organisation", json!("typo")),
        &no_env(),
    )
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Configuration);
    assert!(error.message().contains("organisation"), "{error}");
}

#[tokio::test]
async fn the_registration_builds_a_working_provider_from_configuration() {
    let registration = registration("openai");
    assert_eq!(registration.default_api_key_env, Some("OPENAI_API_KEY"));
    assert_eq!(registration.cargo_feature, Some("openai"));
    assert_eq!(registration.crate_name, "fazztv-provider-openai");

    let server = server_with(
        "chat/completions",
        json_response(200, fixtures::OPENAI_CHAT_COMPLETION),
    )
    .await;
    let (config, context) = example_setup(registration, &base(&server), SENTINEL_KEY);
    let provider = registration.build(&config, &context).unwrap();
    assert_eq!(provider.name(), "openai");
    let response = provider
        .query("hi", GenerationOptions::default())
        .await
        .unwrap();
    assert_eq!(response.content, "Hello! How can I assist you today?");
    assert_bearer(&only_request(&server).await);

    let bad = config.clone().with_option("embeding_model", json!("typo"));
    let error = registration.build(&bad, &context).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Configuration);
    assert!(error.message().contains("embeding_model"), "{error}");
}

#[test]
fn the_options_schema_is_stable() {
    insta::assert_json_snapshot!("options_schema", (registration("openai").options_schema)());
}

/// The request is written out when `chat` is called, but nothing is sent (and no timer of the
/// runtime is needed) until the future is polled: a future made outside a runtime works.
#[test]
fn a_chat_future_made_outside_a_runtime_sends_when_awaited_inside_one() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = runtime.block_on(server_with(
        "chat/completions",
        json_response(200, fixtures::OPENAI_CHAT_COMPLETION),
    ));
    let provider = provider(config(&base(&server)).with_timeout(Duration::from_secs(30)));
    let answer = provider.chat(ChatRequest::from_prompt("Say hello"));
    let stream = provider.chat_stream(ChatRequest::from_prompt("Say hello"));
    // Not polled yet: nothing reached the server.
    assert!(
        runtime
            .block_on(server.received_requests())
            .unwrap()
            .is_empty()
    );
    let answer = runtime.block_on(answer).unwrap();
    assert_eq!(answer.content, "Hello! How can I assist you today?");
    drop(stream);
    assert_eq!(
        runtime.block_on(server.received_requests()).unwrap().len(),
        1
    );
}
