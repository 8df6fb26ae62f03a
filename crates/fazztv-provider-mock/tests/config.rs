//! Options parsing, validation, schema and registration.

use std::num::NonZeroUsize;

use fazztv_core::{
    Environment, ErrorKind, ModelCapability, ModelPricing, ProviderConfig, ProviderContext,
    ProviderRegistration,
};
use fazztv_provider_mock::{MockFactory, MockModel, MockOptions, MockProvider};
use futures as _;
use schemars as _;
use serde as _;
use serde_json::json;
use tokio as _;

fn with_options(options: serde_json::Value) -> ProviderConfig {
    serde_json::from_value(json!({"name": "demo", "type": "mock", "options": options})).unwrap()
}

fn options_error(options: serde_json::Value) -> String {
    let error = MockProvider::from_config(with_options(options)).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Configuration);
    assert_eq!(error.provider(), Some("demo"));
    error.message().to_owned()
}

fn registration() -> &'static ProviderRegistration {
    ProviderRegistration::linked()
        .find(|registration| registration.provider_type == "mock")
        .expect("the mock registers itself")
}

#[test]
fn empty_options_are_the_defaults() {
    let provider =
        MockProvider::from_config(ProviderConfig::new("demo").with_type("mock")).unwrap();
    assert_eq!(provider.options(), &MockOptions::default());
    let defaults = serde_json::to_value(MockOptions::default()).unwrap();
    assert_eq!(
        defaults,
        json!({
            "reply": "Mock response to: {prompt}",
            "latency_ms": 0,
            "chunk_latency_ms": 0,
            "stream_chunk_chars": 8,
            "cut_stream_after": null,
            "failures": {"first": 0, "rate": 0.0, "seed": 0, "kind": "server_error",
                         "message": "simulated failure"},
            "models": [],
            "available": true,
            "unavailable_reason": "the mock provider is configured as unavailable (`\"available\": false`)",
            "embedding_dimensions": 8,
            "moderation_blocklist": ["attack"],
            "tool_calls": [],
            "reasoning": null
        })
    );
}

#[test]
fn every_option_parses_into_the_same_value_the_setters_build() {
    let parsed = MockProvider::from_config(with_options(json!({
        "reply": "{model}: {prompt}",
        "latency_ms": 5,
        "chunk_latency_ms": 2,
        "stream_chunk_chars": 3,
        "cut_stream_after": 4,
        "failures": {"first": 1, "rate": 0.25, "seed": 9, "kind": "rate_limited", "message": "slow"},
        "models": [{"id": "m", "name": "M", "description": "d", "capabilities": ["chat"],
                    "context_length": 100, "pricing": {"prompt": 0.5, "completion": 1.0},
                    "free": false}],
        "available": false,
        "unavailable_reason": "off",
        "embedding_dimensions": 4,
        "moderation_blocklist": ["x"],
        "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "ping"}],
        "reasoning": "think"
    })))
    .unwrap();
    let built = MockOptions::default()
        .reply("{model}: {prompt}")
        .latency_ms(5)
        .chunk_latency_ms(2)
        .stream_chunk_chars(NonZeroUsize::new(3).unwrap())
        .cut_stream_after(4)
        .fail_first(1)
        .fail_rate(0.25, 9)
        .failure_kind(ErrorKind::RateLimited)
        .failure_message("slow")
        .model(
            MockModel::new("m")
                .with_name("M")
                .with_description("d")
                .with_capabilities([ModelCapability::Chat])
                .with_context_length(100)
                .with_pricing(ModelPricing::per_token(0.5, 1.0))
                .with_free(false),
        )
        .unavailable("off")
        .embedding_dimensions(NonZeroUsize::new(4).unwrap())
        .moderation_blocklist(["x"])
        .tool_call("get_weather", json!({"city": "Paris"}))
        .tool_call("ping", json!({}))
        .reasoning("think");
    assert_eq!(parsed.options(), &built);
}

#[test]
fn unknown_fields_are_rejected_by_name() {
    let message = options_error(json!({"replyy": "x"}));
    assert!(
        message.starts_with("invalid `options` for provider `demo` (type `mock`): unknown field `replyy`, expected one of"),
        "{message}"
    );
    assert!(options_error(json!({"failures": {"frist": 1}})).contains("unknown field `frist`"));
    assert!(
        options_error(json!({"models": [{"id": "a", "price": 1}]}))
            .contains("unknown field `price`")
    );
    assert!(options_error(json!({"models": [{"name": "no id"}]})).contains("missing field `id`"));
}

#[test]
fn invalid_values_are_rejected_with_the_field_named() {
    assert!(
        options_error(json!({"failures": {"kind": "explode"}}))
            .contains("unknown variant `explode`")
    );
    assert!(options_error(json!({"stream_chunk_chars": 0})).contains("nonzero"));
    assert!(options_error(json!({"latency_ms": -1})).contains("invalid value"));
    assert_eq!(
        options_error(json!({"failures": {"rate": 1.5}})),
        "invalid `options` for provider `demo` (type `mock`): `failures.rate` must be a fraction \
         from 0.0 to 1.0, got 1.5"
    );
    assert!(
        options_error(json!({"embedding_dimensions": 65_537}))
            .contains("`embedding_dimensions` must be at most 65536, got 65537")
    );
    assert!(
        options_error(json!({"models": [{"id": "a"}, {"id": "a"}]}))
            .contains("`models` lists `a` twice")
    );
    assert!(options_error(json!({"models": [{"id": " "}]})).contains("`models[0].id` is empty"));
}

#[test]
fn the_options_schema_is_stable() {
    insta::assert_json_snapshot!((registration().options_schema)());
}

#[test]
fn the_registration_describes_the_mock() {
    let registration = registration();
    assert_eq!(registration.crate_name, "fazztv-provider-mock");
    assert_eq!(registration.display_name, "Mock");
    assert_eq!(registration.cargo_feature, Some("mock"));
    assert_eq!(registration.default_api_key_env, None);
    assert_eq!(registration.capabilities, ModelCapability::ALL);
    assert_eq!(
        ProviderRegistration::linked()
            .filter(|registration| registration.provider_type == "mock")
            .count(),
        1
    );
}

#[tokio::test]
async fn the_registration_builds_the_example_without_a_key() {
    let registration = registration();
    let example = (registration.example_config)();
    assert_eq!(
        example,
        <MockFactory as fazztv_core::ProviderFactory>::example_config()
    );
    let config: ProviderConfig = serde_json::from_value(example).unwrap();
    let context = ProviderContext::new(Environment::from_vars(Vec::<(String, String)>::new()));
    let provider = registration.build(&config, &context).unwrap();
    assert_eq!(provider.name(), "mock");
    let ids: Vec<String> = provider
        .list_models()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids, ["mock-small", "mock-large"]);
    let response = provider.query("hello", Default::default()).await.unwrap();
    assert_eq!(response.content, "Mock response to: hello");
    assert_eq!(response.model, "mock-small");
    assert!(provider.model_manager().is_some());
}

#[test]
fn the_registration_validates_options() {
    let error = registration()
        .build(
            &with_options(json!({"failures": {"rate": -0.1}})),
            &ProviderContext::default(),
        )
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Configuration);
    assert!(error.message().contains("`failures.rate`"), "{error}");
    let error = registration()
        .build(
            &with_options(json!({"unknown": 1})),
            &ProviderContext::default(),
        )
        .unwrap_err();
    assert!(
        error.message().contains("unknown field `unknown`"),
        "{error}"
    );
}

#[test]
fn debug_output_never_shows_a_configured_key() {
    let config = ProviderConfig::new("demo")
        .with_type("mock")
        .with_api_key("sk-sentinel-123");
    let provider = MockProvider::new(config, MockOptions::default());
    let debug = format!("{provider:?}");
    assert!(!debug.contains("sk-sentinel-123"), "{debug}");
    assert!(debug.contains("MockProvider"));
}
