//! `POST /v2/embed` against wiremock.

use fazztv_core::{EmbeddingRequest, ErrorKind, Provider, Usage};
use fazztv_testkit::mock::{self, only_request};
use serde_json::{Value, json};

use crate::{EMBED_REQUEST, EMBED_RESPONSE, SENTINEL_KEY, config, provider};

async fn embed_server(body: &str) -> wiremock::MockServer {
    mock::server_with("/v2/embed", mock::json_response(200, body)).await
}

#[tokio::test]
async fn the_specs_embed_request_and_answer() {
    let server = embed_server(EMBED_RESPONSE).await;
    let provider = provider(
        config(&server.uri()).with_option("embedding_input_type", json!("classification")),
    );
    let response = provider
        .get_embeddings(EmbeddingRequest::batch(["hello", "goodbye"]))
        .await
        .unwrap();
    assert_eq!(
        response.embeddings,
        [
            vec![
                0.016296387,
                -0.008354187,
                -0.04699707,
                -0.07104492,
                0.00013196468
            ],
            vec![0.014839172, 0.0158, -0.021530151, -0.014663696, 0.051849365],
        ]
    );
    assert_eq!(response.model, "embed-v4.0");
    assert_eq!(response.provider, "cohere");
    assert_eq!(response.usage, Some(Usage::new(2, 0)));
    let request = only_request(&server).await;
    mock::assert_bearer(&request, SENTINEL_KEY);
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body, serde_json::from_str::<Value>(EMBED_REQUEST).unwrap());
    insta::assert_json_snapshot!("embed_request", mock::snapshot_of(&request), {
        ".headers.authorization" => "[redacted]"
    });
}

#[tokio::test]
async fn the_request_model_and_size_win_and_the_input_type_defaults_to_search_document() {
    let server = embed_server(EMBED_RESPONSE).await;
    let provider =
        provider(config(&server.uri()).with_option("embedding_model", json!("embed-english-v3.0")));
    let mut request = EmbeddingRequest::batch(["hello", "goodbye"]).with_model("embed-v4.0");
    request.dimensions = Some(256);
    let response = provider.get_embeddings(request).await.unwrap();
    assert_eq!(response.model, "embed-v4.0");
    let body: Value = serde_json::from_slice(&only_request(&server).await.body).unwrap();
    assert_eq!(body["input_type"], "search_document");
    assert_eq!(body["output_dimension"], 256);
    assert_eq!(body["model"], "embed-v4.0");

    let server = embed_server(EMBED_RESPONSE).await;
    let configured = crate::provider(
        config(&server.uri()).with_option("embedding_model", json!("embed-english-v3.0")),
    );
    configured
        .get_embeddings(EmbeddingRequest::batch(["hello", "goodbye"]))
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&only_request(&server).await.body).unwrap();
    assert_eq!(body["model"], "embed-english-v3.0");
}

#[tokio::test]
async fn vectors_keep_input_order_and_a_count_mismatch_is_a_protocol_error() {
    let three = json!({"id": "e", "embeddings": {"float": [[1.0], [2.0], [3.0]]}}).to_string();
    let server = embed_server(&three).await;
    let provider = provider(config(&server.uri()));
    let response = provider
        .get_embeddings(EmbeddingRequest::batch(["a", "b", "c"]))
        .await
        .unwrap();
    assert_eq!(response.embeddings, [vec![1.0], vec![2.0], vec![3.0]]);
    // No `meta.billed_units`: usage unknown, not zero.
    assert_eq!(response.usage, None);

    let error = provider
        .get_embeddings(EmbeddingRequest::batch(["a", "b"]))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Protocol);
    assert!(
        error.message().contains("2 embeddings and got 3"),
        "{error}"
    );

    let server = embed_server(r#"{"id":"e","embeddings":{"int8":[[1]]}}"#).await;
    let error = provider_for(&server)
        .get_embeddings(EmbeddingRequest::new("a"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Protocol);
}

fn provider_for(server: &wiremock::MockServer) -> fazztv_provider_cohere::CohereProvider {
    provider(config(&server.uri()))
}

#[tokio::test]
async fn empty_and_oversized_batches_are_refused_without_a_request() {
    let server = embed_server(EMBED_RESPONSE).await;
    let provider = provider_for(&server);
    let error = provider
        .get_embeddings(EmbeddingRequest::batch(Vec::<String>::new()))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidRequest);
    let error = provider
        .get_embeddings(EmbeddingRequest::batch((0..97).map(|n| n.to_string())))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unsupported);
    assert!(error.message().contains("96"), "{error}");
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn embed_errors_are_classified() {
    let server = mock::server_with(
        "/v2/embed",
        mock::json_response(498, r#"{"id":"x","message":"invalid api token"}"#),
    )
    .await;
    let error = provider_for(&server)
        .get_embeddings(EmbeddingRequest::new("a"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Authentication);
    assert_eq!(error.message(), "invalid api token");
}
