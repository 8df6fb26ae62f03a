//! `GET /api/tags`, `POST /api/show`, `GET /api/version` and `POST /api/embed`.

mod common;

use common::{EMBED_REPLY, TAGS, closed_port, json_body, provider, provider_with};
use fazztv_core::{
    Availability, EmbeddingRequest, ErrorKind, ListedPrice, ModelCapability, PriceSource, Provider,
    ProviderConfig, UnavailableReason, Usage,
};
use serde_json::json;
use wiremock::matchers::{body_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn serving(verb: &str, route: &str, status: u16, body: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method(verb))
        .and(path(route))
        .respond_with(ResponseTemplate::new(status).set_body_raw(body, "application/json"))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn the_spec_tags_become_free_generative_models() {
    let server = serving("GET", "/api/tags", 200, TAGS).await;
    let models = provider(&server.uri()).list_models().await.unwrap();
    snapshot!("list_models_spec_tags", models);
    assert_eq!(models.len(), 2);
    assert!(
        models
            .iter()
            .all(|model| model.free && model.provider == "ollama")
    );
    assert!(models[1].supports(ModelCapability::Chat));
}

#[tokio::test]
async fn embedding_cloud_and_reported_capabilities_are_recognised() {
    let body = json!({"models": [
        {"name": "nomic-embed-text:latest", "model": "nomic-embed-text:latest", "size": 274302450,
         "details": {"family": "nomic-bert", "families": null, "parameter_size": "137M",
                     "quantization_level": "F16", "context_length": 2048}},
        {"name": "gpt-oss:120b-cloud", "model": "gpt-oss:120b-cloud", "size": 384,
         "remote_model": "gpt-oss:120b", "remote_host": "https://ollama.com:443",
         "details": {"family": "gptoss", "parameter_size": "116.8B", "quantization_level": "MXFP4"}},
        {"name": "llava:latest", "capabilities": ["completion", "vision"]},
        {"model": "embeddinggemma:latest", "capabilities": ["embedding"]}
    ]});
    let server = serving("GET", "/api/tags", 200, &body.to_string()).await;
    let models = provider(&server.uri()).list_models().await.unwrap();
    let summary: Vec<_> = models
        .iter()
        .map(|m| {
            (
                m.id.as_str(),
                m.capabilities.clone(),
                m.free,
                m.context_length,
            )
        })
        .collect();
    let generative = vec![
        ModelCapability::TextGeneration,
        ModelCapability::Chat,
        ModelCapability::CodeGeneration,
    ];
    assert_eq!(
        summary,
        vec![
            (
                "nomic-embed-text:latest",
                vec![ModelCapability::Embedding],
                true,
                Some(2048)
            ),
            ("gpt-oss:120b-cloud", generative.clone(), false, None),
            (
                "llava:latest",
                [
                    generative,
                    vec![ModelCapability::Vision, ModelCapability::StructuredOutput]
                ]
                .concat(),
                true,
                None
            ),
            (
                "embeddinggemma:latest",
                vec![ModelCapability::Embedding],
                true,
                None
            ),
        ]
    );
    assert_eq!(
        models[1].description.as_deref(),
        Some("gptoss, 116.8B parameters, MXFP4, cloud model served by https://ollama.com:443")
    );
    assert_eq!(models[1].pricing, None);
}

#[tokio::test]
async fn local_models_cost_nothing_and_cloud_models_are_unpriced() {
    let local = provider("http://127.0.0.1:11434");
    assert_eq!(local.list_price("llama3.2"), Some(ListedPrice::local()));
    assert_eq!(
        local.list_price("llama3.2:latest"),
        Some(ListedPrice::local())
    );
    for cloud in ["gpt-oss:120b-cloud", "qwen3-coder:480b-cloud:latest"] {
        assert_eq!(local.list_price(cloud), None, "{cloud}");
    }
    // On ollama.com itself every model runs in the cloud, whatever its name.
    let ollama_com = provider("https://ollama.com");
    assert_eq!(ollama_com.list_price("gpt-oss:120b"), None);

    let server = serving("GET", "/api/tags", 200, TAGS).await;
    let listed = provider(&server.uri()).list_models().await.unwrap();
    assert!(!listed.is_empty());
    for model in &listed {
        assert_eq!(model.price(), Some(ListedPrice::local()), "{}", model.id);
        assert_eq!(model.price_source, Some(PriceSource::Local));
    }
}

#[tokio::test]
async fn capabilities_missing_from_tags_are_asked_of_api_show() {
    let tags = json!({"models": [
        {"name": "llava:latest", "model": "llava:latest", "details": {"family": "llama"}},
        {"name": "gone:latest", "model": "gone:latest", "details": {"family": "llama"}},
        {"name": "old:latest", "model": "old:latest", "details": {"family": "llama"}},
        {"name": "qwen3:latest", "model": "qwen3:latest", "capabilities": ["completion", "thinking"]}
    ]});
    let server = serving("GET", "/api/tags", 200, &tags.to_string()).await;
    for (model, status, reply) in [
        (
            "llava:latest",
            200,
            json!({"details": {"family": "llama"}, "capabilities": ["completion", "tools", "vision"]}),
        ),
        (
            "gone:latest",
            404,
            json!({"error": "model 'gone:latest' not found"}),
        ),
        // A server too old to report capabilities at all.
        ("old:latest", 200, json!({"details": {"family": "llama"}})),
    ] {
        Mock::given(method("POST"))
            .and(path("/api/show"))
            .and(body_json(json!({"model": model})))
            .respond_with(
                ResponseTemplate::new(status).set_body_raw(reply.to_string(), "application/json"),
            )
            .expect(1)
            .mount(&server)
            .await;
    }
    let models = provider(&server.uri()).list_models().await.unwrap();
    let summary: Vec<_> = models
        .iter()
        .map(|m| (m.id.as_str(), m.capabilities.clone()))
        .collect();
    use ModelCapability::{
        Chat, CodeGeneration, Reasoning, StructuredOutput, TextGeneration, ToolCalling, Vision,
    };
    let generative = [TextGeneration, Chat, CodeGeneration];
    assert_eq!(
        summary,
        vec![
            (
                "llava:latest",
                [&generative[..], &[ToolCalling, Vision, StructuredOutput]].concat()
            ),
            // Unknown to /api/show, or not told: the heuristic, which narrows nothing.
            ("gone:latest", generative.to_vec()),
            ("old:latest", generative.to_vec()),
            // Listed in /api/tags: not asked again.
            (
                "qwen3:latest",
                [&generative[..], &[StructuredOutput, Reasoning]].concat()
            ),
        ]
    );
    let shown = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|request| request.url.path() == "/api/show")
        .count();
    assert_eq!(shown, 3);
}

#[tokio::test]
async fn empty_and_null_model_lists_are_empty() {
    for body in [r#"{"models":[]}"#, r#"{"models":null}"#, "{}"] {
        let server = serving("GET", "/api/tags", 200, body).await;
        assert!(
            provider(&server.uri())
                .list_models()
                .await
                .unwrap()
                .is_empty()
        );
    }
}

#[tokio::test]
async fn broken_tag_lists_are_errors() {
    let server = serving("GET", "/api/tags", 200, r#"{"models":[{"size":1}]}"#).await;
    let error = provider(&server.uri()).list_models().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Protocol);
    let server = serving("GET", "/api/tags", 500, r#"{"error":"boom"}"#).await;
    let error = provider(&server.uri()).list_models().await.unwrap_err();
    assert_eq!(
        (error.kind(), error.message()),
        (ErrorKind::ServerError, "boom")
    );
}

#[tokio::test]
async fn a_version_answer_means_available() {
    let server = serving("GET", "/api/version", 200, r#"{"version": "0.5.1"}"#).await;
    assert_eq!(
        provider(&server.uri()).check_availability().await,
        Availability::Available
    );
}

#[tokio::test]
async fn an_unreachable_server_is_reported_with_its_url() {
    let closed = closed_port();
    let url = closed.url();
    let availability = provider(&url).check_availability().await;
    let Some(UnavailableReason::Unreachable {
        url: reported,
        message,
    }) = availability.reason()
    else {
        panic!("expected unreachable, got {availability:?}");
    };
    assert_eq!(reported, &url);
    assert!(message.contains("could not connect"), "{message}");
}

#[tokio::test]
async fn other_answers_are_unavailable_with_the_reason() {
    let server = serving("GET", "/api/version", 401, r#"{"error":"unauthorized"}"#).await;
    let availability = provider(&server.uri()).check_availability().await;
    assert!(
        matches!(
            availability.reason(),
            Some(UnavailableReason::AuthenticationFailed { message }) if message.contains("unauthorized")
        ),
        "{availability:?}"
    );
    for (status, body, expected) in [
        (200, "<html>router login</html>", "not an Ollama server"),
        (200, r#"{"name":"something else"}"#, "without a version"),
        (503, r#"{"error":"server busy"}"#, "server busy"),
    ] {
        let server = serving("GET", "/api/version", status, body).await;
        let availability = provider(&server.uri()).check_availability().await;
        assert!(
            matches!(
                availability.reason(),
                Some(UnavailableReason::Other { message }) if message.contains(expected)
            ),
            "{body}: {availability:?}"
        );
    }
}

#[tokio::test]
async fn the_spec_embed_batch_keeps_order_and_usage() {
    let server = serving("POST", "/api/embed", 200, EMBED_REPLY).await;
    let response = provider(&server.uri())
        .get_embeddings(
            EmbeddingRequest::batch(["Why is the sky blue?", "Why is the grass green?"])
                .with_model("all-minilm"),
        )
        .await
        .unwrap();
    assert_eq!(response.embeddings.len(), 2);
    assert_eq!(response.embeddings[0].len(), 10);
    assert_eq!(response.embeddings[0][0], 0.010071029_f32);
    assert_eq!(response.embeddings[1][9], 0.09072481_f32);
    assert_eq!(response.model, "all-minilm");
    assert_eq!(response.provider, "ollama");
    assert_eq!(response.usage, Some(Usage::new(8, 0)));
    let body = json_body(&server.received_requests().await.unwrap()[0].body);
    snapshot!("embed_batch_request_body", body);
}

#[tokio::test]
async fn a_single_text_uses_the_configured_model_and_settings() {
    let reply = json!({"model": "nomic-embed-text", "embeddings": [[0.25, -0.5]]});
    let server = serving("POST", "/api/embed", 200, &reply.to_string()).await;
    let provider = provider_with(
        ProviderConfig::new("ollama")
            .with_base_url(server.uri())
            .with_option("embedding_model", json!("nomic-embed-text"))
            .with_option("keep_alive", json!(-1))
            .with_option("num_ctx", json!(2048)),
    );
    let mut request = EmbeddingRequest::new("hello");
    request.dimensions = Some(256);
    let response = provider.get_embeddings(request).await.unwrap();
    assert_eq!(response.embeddings, vec![vec![0.25, -0.5]]);
    assert_eq!(response.usage, None);
    let body = json_body(&server.received_requests().await.unwrap()[0].body);
    snapshot!("embed_single_request_body", body);
}

#[tokio::test]
async fn the_default_embedding_model_is_all_minilm() {
    let reply = json!({"model": "all-minilm", "embeddings": [[1.0]]});
    let server = serving("POST", "/api/embed", 200, &reply.to_string()).await;
    provider(&server.uri())
        .get_embeddings("text".into())
        .await
        .unwrap();
    let body = json_body(&server.received_requests().await.unwrap()[0].body);
    assert_eq!(body["model"], "all-minilm");
    assert_eq!(body["input"], json!(["text"]));
}

#[tokio::test]
async fn embedding_failures_are_typed() {
    let server = serving("POST", "/api/embed", 200, EMBED_REPLY).await;
    let provider_ = provider(&server.uri());
    let error = provider_
        .get_embeddings(EmbeddingRequest::new("only one"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Protocol);
    assert_eq!(error.message(), "asked Ollama for 1 embeddings and got 2");

    let error = provider_
        .get_embeddings(EmbeddingRequest::batch(Vec::<String>::new()))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidRequest);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);

    let server = serving(
        "POST",
        "/api/embed",
        404,
        r#"{"error":"model 'bge-m3' not found"}"#,
    )
    .await;
    let error = provider(&server.uri())
        .get_embeddings(EmbeddingRequest::new("x").with_model("bge-m3"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ModelNotFound);
    assert!(error.message().contains("ollama pull bge-m3"), "{error}");

    let server = serving(
        "POST",
        "/api/embed",
        400,
        r#"{"error":"invalid input type"}"#,
    )
    .await;
    let error = provider(&server.uri())
        .get_embeddings("x".into())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidRequest);
}

#[tokio::test]
async fn a_missing_endpoint_is_not_mistaken_for_a_missing_model() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/embed"))
        .respond_with(ResponseTemplate::new(404).set_body_raw("404 page not found", "text/plain"))
        .mount(&server)
        .await;
    let error = provider(&server.uri())
        .get_embeddings("x".into())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unsupported);
    assert_eq!(error.status(), Some(404));
    assert!(
        error
            .message()
            .starts_with(&format!("{}/api/embed does not exist", server.uri())),
        "{error}"
    );
}

#[tokio::test]
async fn a_configured_but_unset_key_variable_is_reported() {
    let server = serving("GET", "/api/version", 200, r#"{"version": "0.5.1"}"#).await;
    let provider = provider_with(
        ProviderConfig::new("ollama-cloud")
            .with_base_url(server.uri())
            .with_api_key_env("OLLAMA_API_KEY"),
    );
    assert_eq!(
        provider.check_availability().await,
        Availability::unavailable(UnavailableReason::MissingApiKey {
            env_var: Some("OLLAMA_API_KEY".into())
        })
    );
    assert!(server.received_requests().await.unwrap().is_empty());
}
