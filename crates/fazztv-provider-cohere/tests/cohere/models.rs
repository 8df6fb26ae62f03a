//! `GET /v1/models` (listing, availability) against wiremock.

use fazztv_core::{
    Availability, ErrorKind, ModelCapability as C, ModelPricing, PriceSource, Provider,
    ProviderConfig, UnavailableReason,
};
use fazztv_testkit::mock;
use fazztv_testkit::provider::closed_port;
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer};

use crate::{SENTINEL_KEY, assert_no_key, config, provider};

const PAGE_1: &str = r#"{"models":[
  {"name":"embed-v4.0","endpoints":["embed","classify"],"finetuned":false,"context_length":128000,"tokenizer_url":null,"default_endpoints":["embed"]},
  {"name":"command-a-03-2025","endpoints":["chat","generate"],"finetuned":false,"context_length":256000,"tokenizer_url":"https://storage.googleapis.com/cohere-public/tokenizers/command-a-03-2025.json","default_endpoints":["chat"],"features":["json_mode","json_schema","safety_modes","strict_tools","tool_use"]}
],"next_page_token":"page-2"}"#;

const PAGE_2: &str = r#"{"models":[
  {"name":"command-a-vision-07-2025","endpoints":["chat"],"finetuned":false,"context_length":128000,"default_endpoints":[]},
  {"name":"rerank-v3.5","endpoints":["rerank"],"finetuned":false,"context_length":4096,"default_endpoints":["rerank"]}
],"next_page_token":""}"#;

async fn paged_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .and(query_param("page_size", "1000"))
        .and(query_param_is_missing("page_token"))
        .respond_with(mock::json_response(200, PAGE_1))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .and(query_param("page_token", "page-2"))
        .respond_with(mock::json_response(200, PAGE_2))
        .expect(1)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn every_page_is_listed_with_capabilities_from_endpoints_and_features() {
    let server = paged_server().await;
    let models = provider(config(&server.uri())).list_models().await.unwrap();
    let listed: Vec<(&str, &[C], Option<u64>)> = models
        .iter()
        .map(|model| {
            (
                model.id.as_str(),
                model.capabilities.as_slice(),
                model.context_length,
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (
                "command-a-03-2025",
                &[
                    C::TextGeneration,
                    C::Chat,
                    C::ToolCalling,
                    C::StructuredOutput
                ][..],
                Some(256_000)
            ),
            (
                "command-a-vision-07-2025",
                &[
                    C::TextGeneration,
                    C::Chat,
                    C::ToolCalling,
                    C::StructuredOutput,
                    C::Vision
                ][..],
                Some(128_000)
            ),
            ("embed-v4.0", &[C::Embedding][..], Some(128_000)),
            ("rerank-v3.5", &[][..], Some(4096)),
        ]
    );
    assert!(models.iter().all(|model| model.provider == "cohere"));
    for request in server.received_requests().await.unwrap() {
        mock::assert_bearer(&request, SENTINEL_KEY);
    }
}

#[tokio::test]
async fn listed_models_carry_the_shipped_table_prices() {
    let server = paged_server().await;
    let cohere = provider(config(&server.uri()));
    let models = cohere.list_models().await.unwrap();
    let prices: Vec<(&str, Option<ModelPricing>)> = models
        .iter()
        .map(|model| (model.id.as_str(), model.pricing))
        .collect();
    assert_eq!(
        prices,
        [
            (
                "command-a-03-2025",
                Some(ModelPricing::per_million(2.5, 10.0))
            ),
            ("command-a-vision-07-2025", None),
            ("embed-v4.0", Some(ModelPricing::per_million(0.12, 0.0))),
            ("rerank-v3.5", None),
        ]
    );
    let table = PriceSource::Table {
        as_of: fazztv_provider_cohere::price_table().as_of.clone(),
    };
    assert_eq!(models[0].price_source, Some(table));
    assert!(!models[2].free, "embeddings cost input tokens");
    // The manager gets the same prices without listing.
    for model in &models {
        assert_eq!(cohere.list_price(&model.id), model.price(), "{}", model.id);
    }
}

#[tokio::test]
async fn a_listing_that_repeats_its_page_token_is_a_protocol_error() {
    let looping = r#"{"models":[],"next_page_token":"again"}"#;
    let server = mock::server_with("/v1/models", mock::json_response(200, looping)).await;
    let error = provider(config(&server.uri()))
        .list_models()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Protocol);
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_listing_without_a_key_fails_fast_naming_the_variable() {
    let server = paged_server().await;
    server.reset().await;
    let provider = provider(ProviderConfig::new("cohere").with_base_url(server.uri()));
    let error = provider.list_models().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Configuration);
    assert!(
        error.message().contains("CO_API_KEY") && error.message().contains("COHERE_API_KEY"),
        "{error}"
    );
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn availability_names_the_missing_variable_without_a_request() {
    let provider = provider(ProviderConfig::new("cohere"));
    let availability = provider.check_availability().await;
    assert_eq!(
        availability,
        Availability::unavailable(UnavailableReason::MissingApiKey {
            env_var: Some("CO_API_KEY".into())
        })
    );
    assert!(availability.to_string().contains("CO_API_KEY"));
}

#[tokio::test]
async fn availability_probes_one_small_page() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .and(query_param("page_size", "1"))
        .respond_with(mock::json_response(200, r#"{"models":[]}"#))
        .expect(1)
        .mount(&server)
        .await;
    let availability = provider(config(&server.uri())).check_availability().await;
    assert_eq!(availability, Availability::Available);
}

#[tokio::test]
async fn a_rejected_key_and_an_unreachable_server_are_told_apart() {
    for status in [401, 498] {
        let body = format!(r#"{{"id":"x","message":"invalid api token {SENTINEL_KEY}"}}"#);
        let server = mock::server_with("/v1/models", mock::json_response(status, &body)).await;
        let availability = provider(config(&server.uri())).check_availability().await;
        assert!(
            matches!(
                availability.reason(),
                Some(UnavailableReason::AuthenticationFailed { .. })
            ),
            "{status}: {availability}"
        );
        assert_no_key(&format!("{availability:?} {availability}"));
    }
    let server = mock::server_with(
        "/v1/models",
        mock::json_response(500, r#"{"id":"x","message":"internal"}"#),
    )
    .await;
    let availability = provider(config(&server.uri())).check_availability().await;
    assert!(
        matches!(availability.reason(), Some(UnavailableReason::Other { .. })),
        "{availability}"
    );

    let closed = closed_port();
    let availability = provider(config(&closed.url())).check_availability().await;
    match availability.reason() {
        Some(UnavailableReason::Unreachable { url, .. }) => assert_eq!(url, &closed.url()),
        other => panic!("expected unreachable, got {other:?}"),
    }
}
