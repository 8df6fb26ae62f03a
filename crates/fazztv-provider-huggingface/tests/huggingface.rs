//! The Hugging Face provider against loopback servers speaking the router's and TGI's
//! OpenAI-compatible dialect and TEI's `/embed`, as `shared/specs/cohere-huggingface.md`
//! (part B) describes them.

use fazztv_core::{
    ChatRequest, EmbeddingRequest, Environment, ErrorKind, FinishReason, GenerationOptions,
    Provider, ProviderConfig, ResponseFormat, StreamEvent, UnavailableReason, Usage,
};
use fazztv_provider_huggingface::HuggingFaceProvider;
use fazztv_testkit::mock::{self, only_request, snapshot_of};
use fazztv_testkit::provider::{assert_no_key, drain, example_setup, no_env, registration};
use fazztv_testkit::{ScriptedResponse, ScriptedServer};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};
// The library's own dependencies, linked into this test crate too.
use {fazztv_openai_compat as _, schemars as _, serde as _};

const SENTINEL_KEY: &str = "hf_SENTINEL-do-not-leak-41c2";

/// TGI's non-streamed answer (spec B.3): an empty id, its version as the fingerprint.
const TGI_COMPLETION: &str = r#"{
  "id": "",
  "object": "chat.completion",
  "created": 1741265133,
  "model": "meta-llama/Llama-3.1-8B-Instruct",
  "system_fingerprint": "3.1.2-dev0-native",
  "choices": [
    {"index": 0, "message": {"role": "assistant", "content": "Deep learning is a subset of machine learning..."}, "logprobs": null, "finish_reason": "length"}
  ],
  "usage": {"prompt_tokens": 25, "completion_tokens": 20, "total_tokens": 45}
}"#;

/// TGI's stream with usage (spec B.3, verbatim).
const TGI_STREAM: &str = r#"data: {"id":"","object":"chat.completion.chunk","created":1741265133,"model":"meta-llama/Llama-3.1-8B-Instruct","system_fingerprint":"3.1.2-dev0-native","choices":[{"index":0,"delta":{"role":"assistant","content":"OK"},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"","object":"chat.completion.chunk","created":1741265133,"model":"meta-llama/Llama-3.1-8B-Instruct","system_fingerprint":"3.1.2-dev0-native","choices":[{"index":0,"delta":{"role":"assistant","content":"!"},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"","object":"chat.completion.chunk","created":1741265133,"model":"meta-llama/Llama-3.1-8B-Instruct","system_fingerprint":"3.1.2-dev0-native","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":"stop"}],"usage":null}

data: {"id":"","object":"chat.completion.chunk","created":1741265133,"model":"meta-llama/Llama-3.1-8B-Instruct","system_fingerprint":"3.1.2-dev0-native","choices":[],"usage":{"completion_tokens":3,"prompt_tokens":39,"total_tokens":42}}

data: [DONE]

"#;

/// TGI's error body (spec B.3).
const TGI_VALIDATION_ERROR: &str = r#"{"error": "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. Given: 4000 `inputs` tokens and 200 `max_new_tokens`", "error_type": "validation"}"#;

fn keyed(base_url: &str) -> ProviderConfig {
    ProviderConfig::new("huggingface")
        .with_api_key(SENTINEL_KEY)
        .with_base_url(base_url)
}

/// A local server's entry: no key, and `embeddings_url` if given.
fn keyless(base_url: &str, embeddings_url: Option<&str>) -> ProviderConfig {
    let config = ProviderConfig::new("tgi")
        .with_base_url(base_url)
        .with_option("require_api_key", json!(false));
    match embeddings_url {
        Some(url) => config.with_option("embeddings_url", json!(url)),
        None => config,
    }
}

fn provider(config: ProviderConfig) -> HuggingFaceProvider {
    HuggingFaceProvider::with_environment(config, &no_env()).expect("valid configuration")
}

#[tokio::test]
async fn router_chat_sends_the_suffixed_model_verbatim_and_max_tokens() {
    let server = mock::server_with(
        "/v1/chat/completions",
        mock::json_response(200, TGI_COMPLETION),
    )
    .await;
    let provider = provider(keyed(&format!("{}/v1", server.uri())));
    let request = ChatRequest::from_prompt("What is the capital of France?")
        .with_options(
            GenerationOptions::with_model("meta-llama/Llama-3.1-8B-Instruct:fastest")
                .max_tokens(64),
        )
        .with_response_format(ResponseFormat::Text);
    let response = provider.chat(request).await.unwrap();
    assert_eq!(
        response.content,
        "Deep learning is a subset of machine learning..."
    );
    assert_eq!(response.finish_reason, Some(FinishReason::Length));
    assert_eq!(response.usage, Some(Usage::new(25, 20)));

    let request = only_request(&server).await;
    mock::assert_bearer(&request, SENTINEL_KEY);
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    // Plain text is left out (TGI refuses it), and the limit is `max_tokens`.
    assert!(body.get("response_format").is_none(), "{body}");
    assert!(body.get("max_completion_tokens").is_none(), "{body}");
    insta::assert_json_snapshot!("router_chat_request", snapshot_of(&request), {
        ".headers.authorization" => "[redacted]"
    });
}

#[tokio::test]
async fn a_structured_output_request_keeps_its_format() {
    let server = mock::server_with(
        "/v1/chat/completions",
        mock::json_response(200, TGI_COMPLETION),
    )
    .await;
    let provider = provider(keyed(&format!("{}/v1", server.uri())));
    let request =
        ChatRequest::from_prompt("JSON please").with_response_format(ResponseFormat::JsonObject);
    provider.chat(request).await.unwrap();
    let body: Value = serde_json::from_slice(&only_request(&server).await.body).unwrap();
    assert_eq!(body["response_format"], json!({"type": "json_object"}));
}

#[tokio::test]
async fn the_tgi_stream_yields_its_text_then_one_finish_with_usage() {
    let server =
        ScriptedServer::start([ScriptedResponse::with_body(200, TGI_STREAM)
            .header("content-type", "text/event-stream")])
        .await;
    let provider = provider(keyless(&format!("{}/v1", server.base_url()), None));
    let stream = provider
        .chat_stream(ChatRequest::from_prompt("Say OK"))
        .await
        .unwrap();
    let (events, error) = drain(stream).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(
        events,
        [
            StreamEvent::model("meta-llama/Llama-3.1-8B-Instruct"),
            StreamEvent::text("OK"),
            StreamEvent::text("!"),
            StreamEvent::finish(FinishReason::Stop, Some(Usage::new(39, 3))),
        ]
    );
    // A keyless server gets no Authorization header at all.
    assert_eq!(server.requests()[0].header("authorization"), None);
}

#[tokio::test]
async fn tgi_and_router_error_bodies_give_their_message_and_the_status_its_kind() {
    let cases = [
        (
            422,
            TGI_VALIDATION_ERROR,
            ErrorKind::InvalidRequest,
            "Input validation error",
        ),
        (
            503,
            r#"{"error": "Model is overloaded, please try again later."}"#,
            ErrorKind::Overloaded,
            "Model is overloaded",
        ),
        (
            401,
            r#"{"error": "Invalid credentials in Authorization header"}"#,
            ErrorKind::Authentication,
            "Invalid credentials",
        ),
    ];
    for (status, body, kind, says) in cases {
        let server =
            mock::server_with("/v1/chat/completions", mock::json_response(status, body)).await;
        let provider = provider(keyed(&format!("{}/v1", server.uri())));
        let error = provider
            .chat(ChatRequest::from_prompt("Hi"))
            .await
            .unwrap_err();
        assert_eq!(
            (error.kind(), error.status()),
            (kind, Some(status)),
            "{error}"
        );
        assert!(error.message().contains(says), "{error}");
        assert_no_key(&format!("{error} {error:?}"), SENTINEL_KEY);
    }
}

async fn embed_server(route: &str, answer: Value) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(route))
        .respond_with(ResponseTemplate::new(200).set_body_json(answer))
        .expect(1)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn a_tei_base_url_embeds_at_its_embed_route() {
    let server = embed_server("/embed", json!([[0.1, 0.2], [0.3, 0.4]])).await;
    let provider = provider(keyless(&server.uri(), None));
    let response = provider
        .get_embeddings(EmbeddingRequest::batch([
            "Today is sunny.",
            "It is raining.",
        ]))
        .await
        .unwrap();
    assert_eq!(response.embeddings, [vec![0.1, 0.2], vec![0.3, 0.4]]);
    let body: Value = serde_json::from_slice(&only_request(&server).await.body).unwrap();
    assert_eq!(
        body,
        json!({"inputs": ["Today is sunny.", "It is raining."]})
    );
}

#[tokio::test]
async fn embeddings_url_points_a_tgi_entry_at_its_tei_server() {
    let tei = embed_server("/embed", json!([[1.0, 0.0]])).await;
    let provider = provider(keyless("http://127.0.0.1:9/v1", Some(&tei.uri())));
    let response = provider
        .get_embeddings(EmbeddingRequest::new("hello"))
        .await
        .unwrap();
    assert_eq!(response.embeddings, [vec![1.0, 0.0]]);
}

#[tokio::test]
async fn the_router_embeds_through_the_feature_extraction_pipeline() {
    let model = "intfloat/multilingual-e5-large-instruct";
    let server = embed_server(
        &format!("/hf-inference/models/{model}/pipeline/feature-extraction"),
        json!([[0.5, 0.5, 0.5]]),
    )
    .await;
    let provider = provider(keyed(&format!("{}/v1", server.uri())));
    let response = provider
        .get_embeddings(EmbeddingRequest::new("hello"))
        .await
        .unwrap();
    assert_eq!(
        (response.model.as_str(), response.embeddings.len()),
        (model, 1)
    );
    mock::assert_bearer(&only_request(&server).await, SENTINEL_KEY);
}

#[tokio::test]
async fn a_vector_count_that_does_not_match_the_inputs_is_a_protocol_error() {
    let server = embed_server("/embed", json!([[0.1, 0.2]])).await;
    let provider = provider(keyless(&server.uri(), None));
    let error = provider
        .get_embeddings(EmbeddingRequest::batch(["a", "b"]))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Protocol);
    assert!(
        error.message().contains("1 vectors for 2 inputs"),
        "{error}"
    );
}

#[tokio::test]
async fn the_key_comes_from_hf_token_and_a_missing_one_is_named() {
    let server = mock::server_with(
        "/v1/chat/completions",
        mock::json_response(200, TGI_COMPLETION),
    )
    .await;
    let config = ProviderConfig::new("huggingface").with_base_url(format!("{}/v1", server.uri()));
    let environment = Environment::from_vars([("HF_TOKEN", SENTINEL_KEY)]);
    let from_env = HuggingFaceProvider::with_environment(config.clone(), &environment).unwrap();
    from_env.chat(ChatRequest::from_prompt("Hi")).await.unwrap();
    mock::assert_bearer(&only_request(&server).await, SENTINEL_KEY);

    let missing = provider(config);
    let error = missing
        .chat(ChatRequest::from_prompt("Hi"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Configuration);
    assert!(error.message().contains("HF_TOKEN"), "{error}");
    let availability = missing.check_availability().await;
    assert!(
        matches!(
            availability.reason(),
            Some(UnavailableReason::MissingApiKey { env_var: Some(var) }) if var == "HF_TOKEN"
        ),
        "{availability:?}"
    );
}

#[test]
fn the_key_never_appears_in_debug_output_and_embeddings_are_not_sent_in_clear() {
    let provider = provider(keyed("https://router.huggingface.co/v1"));
    assert_no_key(&format!("{provider:?}"), SENTINEL_KEY);
    // The token would travel to a non-loopback host over plain http.
    let error = HuggingFaceProvider::with_environment(
        keyed("https://router.huggingface.co/v1")
            .with_option("embeddings_url", json!("http://tei.example.com")),
        &no_env(),
    )
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Configuration);
    assert!(error.message().contains("embeddings_url"), "{error}");
}

#[tokio::test]
async fn the_registration_builds_a_working_provider_from_its_example() {
    let server = mock::server_with(
        "/v1/chat/completions",
        mock::json_response(200, TGI_COMPLETION),
    )
    .await;
    let registration = registration("huggingface");
    let (config, context) =
        example_setup(registration, &format!("{}/v1", server.uri()), SENTINEL_KEY);
    let provider = registration.build(&config, &context).unwrap();
    let response = provider.query("Hi", Default::default()).await.unwrap();
    assert_eq!(response.provider, "huggingface");
    let body: Value = serde_json::from_slice(&only_request(&server).await.body).unwrap();
    assert_eq!(body["model"], "meta-llama/Llama-3.1-8B-Instruct:fastest");
}
