//! Request/response endpoints against wiremock.

use std::time::Duration;

use fazztv_core::{
    Availability, ChatMessage, ChatRequest, ContentPart, ErrorKind, FinishReason,
    GenerationOptions, ImageSource, ModelCapability, ModelPricing, PriceSource, Provider,
    ProviderConfig, ReasoningControl, ResponseFormat, Role, Tool, ToolCall, ToolChoice, ToolResult,
    UnavailableReason, Usage,
};
use fazztv_provider_anthropic::AnthropicProvider;
use fazztv_testkit::mock::{self, ErrorContext, only_request, snapshot_of};
use fazztv_testkit::provider::{closed_port, example_setup, registration};
use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::{SENTINEL_KEY, assert_no_key, config, fixtures, no_env, provider};

const MESSAGES: &str = "/v1/messages";

fn json_response(status: u16, body: &str) -> ResponseTemplate {
    mock::json_response(status, body).insert_header("request-id", "req_011CSLsW7mFqvHHnzrKdKjAE")
}

async fn messages_server(body: &str) -> MockServer {
    mock::server_with(MESSAGES, json_response(200, body)).await
}

fn assert_key(request: &Request) {
    assert_eq!(
        request.headers.get("x-api-key").unwrap().to_str().unwrap(),
        SENTINEL_KEY
    );
    assert!(request.headers.get("authorization").is_none());
}

/// The one request `server` got: checks its key and matches it, key redacted, against the
/// snapshot `name`; returns its body.
async fn assert_request_snapshot(server: &MockServer, name: &str) -> Value {
    let request = only_request(server).await;
    assert_key(&request);
    let snapshot = snapshot_of(&request);
    assert_no_key(&snapshot.to_string().replace(SENTINEL_KEY, "[redacted]"));
    insta::assert_json_snapshot!(name, snapshot, {
        ".headers[\"x-api-key\"]" => "[redacted]",
        ".headers[\"content-length\"]" => "[length]"
    });
    snapshot["body"].clone()
}

fn weather_tool() -> Tool {
    Tool::new(
        "get_weather",
        json!({
            "type": "object",
            "properties": {"location": {"type": "string", "description": "City name"}},
            "required": ["location"]
        }),
    )
    .with_description("Get the current weather in a given location")
}

#[tokio::test]
async fn a_plain_chat_sends_the_documented_request_and_decodes_the_message() {
    let server = messages_server(fixtures::MESSAGE).await;
    let mut options = GenerationOptions::with_model("claude-sonnet-4-20250514")
        .temperature(0.5)
        .max_tokens(1024)
        .extra("top_k", json!(40))
        .extra("metadata", json!({"user_id": "user-1234"}))
        .extra("model", json!("not-this-one"));
    options.stop = vec!["\n\nHuman:".into()];
    options.top_p = Some(0.9);
    let request = ChatRequest::new(vec![
        ChatMessage::system("You are a concise assistant."),
        ChatMessage::user("Hello, Claude"),
    ])
    .with_options(options);
    let response = provider(config(&server.uri())).chat(request).await.unwrap();
    assert_eq!(response.content, "Hello! How can I help you today?");
    assert_eq!(response.model, "claude-sonnet-4-20250514");
    assert_eq!(response.provider, "anthropic");
    assert_eq!(response.finish_reason, Some(FinishReason::Stop));
    assert_eq!(
        response.usage,
        Some(
            Usage::new(12, 12)
                .with_cached_tokens(Some(0))
                .with_cache_creation_tokens(Some(0))
        )
    );
    assert_eq!(
        response.request_id.as_deref(),
        Some("req_011CSLsW7mFqvHHnzrKdKjAE")
    );
    let body = assert_request_snapshot(&server, "chat_request").await;
    assert_eq!(body["model"], "claude-sonnet-4-20250514");
}

#[tokio::test]
async fn a_query_uses_the_default_model_and_max_tokens() {
    let server = messages_server(fixtures::MESSAGE).await;
    let provider = provider(config(&server.uri()).with_option("default_max_tokens", json!(777)));
    provider
        .query("Hi", GenerationOptions::default())
        .await
        .unwrap();
    let request = only_request(&server).await;
    assert_eq!(request.url.path(), MESSAGES);
    assert_eq!(
        request.headers.get("anthropic-version").unwrap(),
        "2023-06-01"
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&request.body).unwrap(),
        json!({"model": "claude-sonnet-4-20250514", "max_tokens": 777,
               "messages": [{"role": "user", "content": "Hi"}]})
    );
}

/// The spec's tool loop: the model calls `get_weather`, the result goes back in the
/// documented shapes (§1.2), each request pinned by a snapshot.
#[tokio::test]
async fn a_tool_conversation_round_trips_in_the_documented_shapes() {
    let question = ChatMessage::user("What's the weather in Paris?");
    let first = ChatRequest::new(vec![question.clone()])
        .with_tool(weather_tool())
        .with_tool_choice(ToolChoice::Auto)
        .with_options(GenerationOptions::default().max_tokens(1024));
    let server = messages_server(fixtures::TOOL_USE_MESSAGE).await;
    let asked = provider(config(&server.uri())).chat(first).await.unwrap();
    assert_eq!(
        asked.content,
        "I'll check the current weather in Paris for you."
    );
    assert_eq!(
        asked.tool_calls,
        [ToolCall::new(
            "toolu_01NRLabsLyVHZPKxbKvkfSMn",
            "get_weather",
            json!({"location": "Paris"})
        )]
    );
    assert_eq!(asked.finish_reason, Some(FinishReason::ToolCalls));
    assert_request_snapshot(&server, "tool_call_request").await;

    let followup = ChatRequest::new(vec![
        question,
        ChatMessage::from_response(&asked),
        ChatMessage::tool_result(ToolResult::new(
            asked.tool_calls[0].id.clone(),
            "15 degrees, light rain",
        )),
    ])
    .with_tool(weather_tool())
    .with_tool_choice(ToolChoice::Auto)
    .with_options(GenerationOptions::default().max_tokens(1024));
    let server = messages_server(fixtures::MESSAGE).await;
    let answer = provider(config(&server.uri()))
        .chat(followup)
        .await
        .unwrap();
    assert!(answer.tool_calls.is_empty());
    let body = assert_request_snapshot(&server, "tool_result_request").await;
    // Exactly the conversation of `anthropic.md` §1.2.
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": "What's the weather in Paris?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "I'll check the current weather in Paris for you."},
                {"type": "tool_use", "id": "toolu_01NRLabsLyVHZPKxbKvkfSMn", "name": "get_weather", "input": {"location": "Paris"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01NRLabsLyVHZPKxbKvkfSMn", "content": "15 degrees, light rain"}
            ]}
        ])
    );
}

#[tokio::test]
async fn tool_choices_and_serial_tool_use_map_to_the_api_shapes() {
    for (choice, parallel, expected) in [
        (ToolChoice::Required, None, json!({"type": "any"})),
        (
            ToolChoice::Tool("get_weather".into()),
            Some(false),
            json!({"type": "tool", "name": "get_weather", "disable_parallel_tool_use": true}),
        ),
        (ToolChoice::None, Some(false), json!({"type": "none"})),
    ] {
        let server = messages_server(fixtures::MESSAGE).await;
        let mut request = ChatRequest::from_prompt("x")
            .with_tool(weather_tool())
            .with_tool_choice(choice);
        request.parallel_tool_calls = parallel;
        provider(config(&server.uri())).chat(request).await.unwrap();
        let body: Value = serde_json::from_slice(&only_request(&server).await.body).unwrap();
        assert_eq!(body["tool_choice"], expected);
    }
}

#[tokio::test]
async fn images_are_sent_as_base64_and_url_sources() {
    let server = messages_server(fixtures::MESSAGE).await;
    let png = b"\x89PNG\r\n\x1a\n";
    let request = ChatRequest::new(vec![
        ChatMessage::user("What is in these images?")
            .with_part(ContentPart::image(ImageSource::from_bytes(
                "image/png",
                &png[..],
            )))
            .with_part(ContentPart::image(ImageSource::Url(
                "https://example.com/cat.jpg".into(),
            ))),
    ]);
    provider(config(&server.uri())).chat(request).await.unwrap();
    let body = assert_request_snapshot(&server, "image_request").await;
    assert_eq!(
        body["messages"][0]["content"][1]["source"],
        json!({"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="})
    );
}

/// A thinking answer: the reasoning text with its signature and the redacted block (kept
/// verbatim) come back, and go back unchanged in the next turn.
#[tokio::test]
async fn thinking_and_redacted_thinking_are_decoded_and_replayed_unchanged() {
    let thinking = json!({"type": "thinking", "thinking": "The user wants the weather.", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3h"});
    let redacted = json!({"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"});
    let body = json!({
        "id": "msg_thinking", "type": "message", "role": "assistant",
        "model": "claude-sonnet-4-20250514",
        "content": [thinking, redacted, {"type": "text", "text": "Let me check."}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 50, "output_tokens": 80}
    });
    let server = messages_server(&body.to_string()).await;
    let request =
        ChatRequest::from_prompt("Weather?").with_reasoning(ReasoningControl::BudgetTokens(2048));
    let answer = provider(config(&server.uri())).chat(request).await.unwrap();
    let reasoning = answer.reasoning.clone().unwrap();
    assert_eq!(reasoning.text, "The user wants the weather.");
    assert_eq!(
        reasoning.signature.as_deref(),
        Some("EqQBCgIYAhIM1gbcDa9GJwZA2b3h")
    );
    let opaque = reasoning.opaque.unwrap();
    assert_eq!(
        (opaque.provider_type.as_str(), &opaque.payload),
        ("anthropic", &json!([redacted]))
    );
    assert_eq!(answer.usage, Some(Usage::new(50, 80)));
    let sent: Value = serde_json::from_slice(&only_request(&server).await.body).unwrap();
    assert_eq!(
        sent["thinking"],
        json!({"type": "enabled", "budget_tokens": 2048})
    );
    assert_eq!(sent["max_tokens"], 4096 + 2048);

    let server = messages_server(fixtures::MESSAGE).await;
    let replay = ChatRequest::new(vec![
        ChatMessage::user("Weather?"),
        ChatMessage::from_response(&answer),
        ChatMessage::user("And tomorrow?"),
    ])
    .with_reasoning(ReasoningControl::BudgetTokens(2048));
    provider(config(&server.uri())).chat(replay).await.unwrap();
    let body = assert_request_snapshot(&server, "thinking_replay_request").await;
    assert_eq!(
        body["messages"][1]["content"],
        json!([thinking, redacted, {"type": "text", "text": "Let me check."}])
    );
}

#[tokio::test]
async fn cache_markers_become_cache_control_and_cache_usage_is_reported() {
    let body = json!({
        "id": "msg_cache", "type": "message", "role": "assistant", "model": "claude-sonnet-4-20250514",
        "content": [{"type": "text", "text": "Done."}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 10, "cache_creation_input_tokens": 200, "cache_read_input_tokens": 3000, "output_tokens": 5}
    });
    let server = messages_server(&body.to_string()).await;
    let mut tool = weather_tool();
    tool.cache = Some(fazztv_core::CacheMarker::Ephemeral);
    let request = ChatRequest::new(vec![
        ChatMessage::from_parts(
            Role::System,
            vec![ContentPart::text("A long, stable system prompt.").cached()],
        ),
        ChatMessage::from_parts(
            Role::User,
            vec![
                ContentPart::text("A long document.").cached(),
                ContentPart::text("Summarise it."),
            ],
        ),
    ])
    .with_tool(tool);
    let answer = provider(config(&server.uri())).chat(request).await.unwrap();
    assert_eq!(
        answer.usage,
        Some(
            Usage::new(3210, 5)
                .with_cached_tokens(Some(3000))
                .with_cache_creation_tokens(Some(200))
        )
    );
    let body = assert_request_snapshot(&server, "cache_request").await;
    assert_eq!(
        body["system"],
        json!([{"type": "text", "text": "A long, stable system prompt.", "cache_control": {"type": "ephemeral"}}])
    );
}

#[tokio::test]
async fn error_statuses_are_classified_by_the_core_table() {
    let server = MockServer::start().await;
    let provider = provider(config(&server.uri()));
    let body = |kind: &str, message: &str| {
        json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_body"})
            .to_string()
    };
    let cases: Vec<(u16, String, ErrorKind, &str)> = vec![
        (
            400,
            body("invalid_request_error", "max_tokens: Field required"),
            ErrorKind::InvalidRequest,
            "max_tokens",
        ),
        (
            400,
            body(
                "invalid_request_error",
                "prompt is too long: 210000 tokens > 200000 maximum",
            ),
            ErrorKind::ContextLengthExceeded,
            "too long",
        ),
        (
            401,
            body("authentication_error", "invalid x-api-key"),
            ErrorKind::Authentication,
            "x-api-key",
        ),
        (
            402,
            body("billing_error", "Your credit balance is too low"),
            ErrorKind::QuotaExhausted,
            "credit",
        ),
        (
            403,
            body("permission_error", "Your API key does not have permission"),
            ErrorKind::PermissionDenied,
            "permission",
        ),
        (
            404,
            body("not_found_error", "model: claude-9"),
            ErrorKind::ModelNotFound,
            "claude-9",
        ),
        (
            413,
            body(
                "request_too_large",
                "Request exceeds the maximum allowed number of bytes.",
            ),
            ErrorKind::InvalidRequest,
            "maximum",
        ),
        (
            429,
            fixtures::RATE_LIMITED.to_owned(),
            ErrorKind::RateLimited,
            "rate limit",
        ),
        (
            500,
            body("api_error", "Internal server error"),
            ErrorKind::ServerError,
            "Internal",
        ),
        (
            504,
            body("timeout_error", "Request timeout"),
            ErrorKind::ServerError,
            "timeout",
        ),
        (
            529,
            fixtures::OVERLOADED.to_owned(),
            ErrorKind::Overloaded,
            "Overloaded",
        ),
    ];
    let cases: Vec<(u16, &str, ErrorKind, &str)> = cases
        .iter()
        .map(|(status, body, kind, message)| (*status, body.as_str(), *kind, *message))
        .collect();
    mock::assert_error_statuses(
        &server,
        MESSAGES,
        &provider,
        json_response,
        ErrorContext {
            provider: "anthropic",
            request_id: "req_011CSLsW7mFqvHHnzrKdKjAE",
            key: SENTINEL_KEY,
        },
        &cases,
    )
    .await;
}

#[tokio::test]
async fn retry_after_is_the_retry_hint_of_429_and_529() {
    for (status, body) in [(429, fixtures::RATE_LIMITED), (529, fixtures::OVERLOADED)] {
        let server = mock::server_with(
            MESSAGES,
            json_response(status, body).insert_header("retry-after", "17"),
        )
        .await;
        let error = provider(config(&server.uri()))
            .query("hi", GenerationOptions::default())
            .await
            .unwrap_err();
        assert!(error.is_retryable(), "{error}");
        assert_eq!(error.retry_after(), Some(Duration::from_secs(17)));
    }
}

#[tokio::test]
async fn what_the_api_cannot_carry_is_refused_before_sending() {
    let server = messages_server(fixtures::MESSAGE).await;
    let provider = provider(config(&server.uri()));
    let schema = ChatRequest::from_prompt("weather as JSON").with_response_format(
        ResponseFormat::JsonSchema {
            name: "weather".into(),
            schema: json!({"type": "object"}),
            strict: None,
        },
    );
    let error = provider.chat(schema).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unsupported);
    assert!(error.message().contains("response-format"), "{error}");
    assert_eq!(error.provider(), Some("anthropic"));
    let tiny = ChatRequest::from_prompt("x").with_reasoning(ReasoningControl::BudgetTokens(100));
    assert_eq!(
        provider.chat_stream(tiny).await.err().unwrap().kind(),
        ErrorKind::Unsupported
    );
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn models_are_listed_across_pages_with_their_capabilities() {
    let server = MockServer::start().await;
    let first = json!({
        "data": [{"type": "model", "id": "claude-opus-4-1-20250805", "display_name": "Claude Opus 4.1",
                  "created_at": "2025-08-05T00:00:00Z", "max_input_tokens": 200000,
                  "capabilities": {"image_input": {"supported": true}, "thinking": {"supported": false}}}],
        "has_more": true, "first_id": "claude-opus-4-1-20250805", "last_id": "claude-opus-4-1-20250805"
    });
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .and(query_param_is_missing("after_id"))
        .respond_with(json_response(200, &first.to_string()))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .and(query_param("after_id", "claude-opus-4-1-20250805"))
        .respond_with(json_response(200, fixtures::MODELS))
        .mount(&server)
        .await;
    let anthropic = provider(config(&server.uri()));
    let models = anthropic.list_models().await.unwrap();
    let ids: Vec<&str> = models.iter().map(|model| model.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "claude-opus-4-1-20250805",
            "claude-sonnet-4-20250514",
            "claude-3-5-haiku-20241022"
        ]
    );
    let opus = &models[0];
    assert_eq!(opus.name, "Claude Opus 4.1");
    assert_eq!(opus.context_length, Some(200_000));
    // Dated ids are priced as their alias, from the shipped table.
    let per_mtok = |usd: f64| usd / 1_000_000.0;
    assert_eq!(
        opus.pricing,
        Some(
            ModelPricing::per_million(15.0, 75.0)
                .with_cached_prompt(per_mtok(1.50))
                .with_cache_write(per_mtok(18.75), Some(per_mtok(30.0)))
        )
    );
    let table = PriceSource::Table {
        as_of: fazztv_provider_anthropic::price_table().as_of.clone(),
    };
    assert!(
        models
            .iter()
            .all(|model| model.price_source.as_ref() == Some(&table)),
        "{models:?}"
    );
    assert_eq!(
        models[1].pricing.map(|pricing| pricing.prompt),
        Some(per_mtok(3.0)),
        "claude-sonnet-4-20250514 is claude-sonnet-4-0"
    );
    // The manager gets the same price without listing.
    for model in &models {
        assert_eq!(
            anthropic.list_price(&model.id),
            model.price(),
            "{}",
            model.id
        );
    }
    assert_eq!(anthropic.list_price("claude-2.1"), None);
    // The listing's window wins; without one, the table's.
    assert_eq!(models[1].context_length, Some(200_000));
    assert!(opus.supports(ModelCapability::Vision) && !opus.supports(ModelCapability::Reasoning));
    assert!(models[1].supports(ModelCapability::Reasoning));
    assert!(models[2].supports(ModelCapability::ToolCalling));
    assert!(!models[2].supports(ModelCapability::Reasoning));
    assert!(
        models
            .iter()
            .all(|model| !model.supports(ModelCapability::StructuredOutput))
    );
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|request| {
        request.headers.get("x-api-key").unwrap() == SENTINEL_KEY
            && request.headers.get("anthropic-version").unwrap() == "2023-06-01"
    }));
}

#[tokio::test]
async fn availability_names_a_missing_key_a_rejected_key_and_an_unreachable_server() {
    let keyless =
        AnthropicProvider::with_environment(ProviderConfig::new("anthropic"), &no_env()).unwrap();
    assert_eq!(
        keyless.check_availability().await,
        Availability::unavailable(UnavailableReason::MissingApiKey {
            env_var: Some("ANTHROPIC_API_KEY".into())
        })
    );
    let error = keyless
        .query("hi", GenerationOptions::default())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Configuration);
    assert!(error.message().contains("ANTHROPIC_API_KEY"), "{error}");

    let server = mock::server_with(
        "/v1/models",
        json_response(401, r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#),
    )
    .await;
    let rejected = provider(config(&server.uri())).check_availability().await;
    assert!(
        matches!(rejected.reason(), Some(UnavailableReason::AuthenticationFailed { message }) if message.contains("invalid x-api-key")),
        "{rejected:?}"
    );
    assert_no_key(&format!("{rejected:?}"));

    let closed = closed_port();
    let unreachable = provider(config(&closed.url())).check_availability().await;
    assert!(
        matches!(
            unreachable.reason(),
            Some(UnavailableReason::Unreachable { .. })
        ),
        "{unreachable:?}"
    );

    let server = mock::server_with("/v1/models", json_response(200, fixtures::MODELS)).await;
    assert!(
        provider(config(&server.uri()))
            .check_availability()
            .await
            .is_available()
    );
    let request = only_request(&server).await;
    assert_eq!(request.url.query(), Some("limit=1"));
}

#[tokio::test]
async fn the_registration_builds_a_working_provider_from_its_example() {
    let server = messages_server(fixtures::MESSAGE).await;
    let registration = registration("anthropic");
    assert_eq!(registration.default_api_key_env, Some("ANTHROPIC_API_KEY"));
    assert_eq!(registration.cargo_feature, Some("anthropic"));
    let (config, context) = example_setup(registration, &server.uri(), SENTINEL_KEY);
    let provider = registration.build(&config, &context).unwrap();
    assert_no_key(&format!("{provider:?} {config:?}"));
    let answer = provider
        .query("Hello, Claude", GenerationOptions::default())
        .await
        .unwrap();
    assert_eq!(answer.content, "Hello! How can I help you today?");
    assert_key(&only_request(&server).await);
    insta::assert_json_snapshot!("options_schema", (registration.options_schema)());
}

#[test]
fn bad_configurations_fail_at_build_time_without_echoing_the_key() {
    let build = |config: ProviderConfig| AnthropicProvider::with_environment(config, &no_env());
    let unknown =
        build(config("https://api.anthropic.com").with_option("anthropic_verison", json!("x")));
    let error = unknown.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Configuration);
    assert!(error.message().contains("anthropic_verison"), "{error}");
    let insecure = build(config("http://10.0.0.5:8080")).unwrap_err();
    assert!(
        insecure.message().contains("allow_insecure_http"),
        "{insecure}"
    );
    assert!(build(config("http://10.0.0.5:8080").with_allow_insecure_http(true)).is_ok());
    let zero =
        build(config("https://api.anthropic.com").with_option("default_max_tokens", json!(0)));
    assert_eq!(zero.unwrap_err().kind(), ErrorKind::Configuration);
    assert_no_key(&format!("{insecure:?} {insecure}"));
    let fine = build(config("https://api.anthropic.com/")).unwrap();
    assert_eq!(fine.base_url(), "https://api.anthropic.com");
    assert_no_key(&format!("{fine:?}"));
}
