//! Registration, configuration, options and where the key comes from.

use fazztv_core::{
    Availability, ChatRequest, Environment, ErrorKind, ModelCapability, Provider, ProviderConfig,
    ProviderContext, UnavailableReason,
};
use fazztv_provider_cohere::CohereProvider;
use fazztv_testkit::mock::{self, only_request};
use fazztv_testkit::provider::{example_setup, registration};
use serde_json::json;
use wiremock::MockServer;

use crate::{CHAT_RESPONSE, SENTINEL_KEY, assert_no_key, no_env};

async fn chat_server() -> MockServer {
    mock::server_with("/v2/chat", mock::json_response(200, CHAT_RESPONSE)).await
}

#[test]
fn the_registration_describes_the_type() {
    // Named through the testkit, as the facade will name the crate.
    let registration = registration("cohere");
    assert_eq!(registration.crate_name, "fazztv-provider-cohere");
    assert_eq!(registration.display_name, "Cohere");
    assert_eq!(registration.default_api_key_env, Some("CO_API_KEY"));
    assert_eq!(registration.cargo_feature, Some("cohere"));
    for capability in [
        ModelCapability::Chat,
        ModelCapability::Embedding,
        ModelCapability::ToolCalling,
        ModelCapability::Vision,
        ModelCapability::StructuredOutput,
        ModelCapability::Reasoning,
    ] {
        assert!(
            registration.capabilities.contains(&capability),
            "{capability}"
        );
    }
    let schema = serde_json::to_value((registration.options_schema)()).unwrap();
    assert_eq!(schema["additionalProperties"], json!(false), "{schema}");
    for field in ["embedding_model", "embedding_input_type", "client_name"] {
        assert!(
            schema["properties"].get(field).is_some(),
            "{field}: {schema}"
        );
    }
}

#[tokio::test]
async fn the_example_config_builds_a_working_provider() {
    let server = chat_server().await;
    let registration = registration("cohere");
    let (config, context) = example_setup(registration, &server.uri(), SENTINEL_KEY);
    let provider = registration.build(&config, &context).unwrap();
    assert_no_key(&format!("{provider:?} {config:?}"));
    let response = provider.chat(ChatRequest::from_prompt("Hi")).await.unwrap();
    assert!(response.content.starts_with("LLMs"));
    assert_eq!(response.model, "command-a-03-2025");
    let request = only_request(&server).await;
    mock::assert_bearer(&request, SENTINEL_KEY);
    assert_eq!(
        request
            .headers
            .get("x-client-name")
            .unwrap()
            .to_str()
            .unwrap(),
        "fazztv"
    );
}

fn entry(base_url: &str) -> ProviderConfig {
    serde_json::from_value(json!({"name": "cohere", "type": "cohere", "base_url": base_url}))
        .unwrap()
}

fn context(vars: &[(&str, &str)]) -> ProviderContext {
    ProviderContext::new(Environment::from_vars(vars.iter().copied()))
}

async fn bearer_sent(provider: &dyn Provider, server: &MockServer) -> String {
    provider.chat(ChatRequest::from_prompt("Hi")).await.unwrap();
    let request = only_request(server).await;
    let value = request.headers.get("authorization").unwrap();
    value.to_str().unwrap().to_owned()
}

#[tokio::test]
async fn co_api_key_is_read_first_and_cohere_api_key_as_the_fallback() {
    let both = [
        ("CO_API_KEY", "co-first-do-not-leak-1"),
        ("COHERE_API_KEY", "co-second-do-not-leak-2"),
    ];
    let server = chat_server().await;
    let provider = registration("cohere")
        .build(&entry(&server.uri()), &context(&both))
        .unwrap();
    assert_eq!(
        bearer_sent(&*provider, &server).await,
        "Bearer co-first-do-not-leak-1"
    );

    let server = chat_server().await;
    let provider = registration("cohere")
        .build(&entry(&server.uri()), &context(&both[1..]))
        .unwrap();
    assert_eq!(
        bearer_sent(&*provider, &server).await,
        "Bearer co-second-do-not-leak-2"
    );
    assert_no_key(&format!("{provider:?}"));
    assert!(!format!("{provider:?}").contains("co-second"));

    // Direct construction reads the fallback too.
    let server = chat_server().await;
    let direct = CohereProvider::with_environment(
        ProviderConfig::new("cohere").with_base_url(server.uri()),
        &Environment::from_vars([("COHERE_API_KEY", "co-direct-do-not-leak-3")]),
    )
    .unwrap();
    let debug = format!("{direct:?}");
    assert!(
        debug.contains("has_key: true") && !debug.contains("co-direct"),
        "{debug}"
    );
    assert_eq!(
        bearer_sent(&direct, &server).await,
        "Bearer co-direct-do-not-leak-3"
    );
}

#[tokio::test]
async fn a_variable_named_in_api_key_env_is_not_replaced_by_the_fallback() {
    let mut config = entry("https://api.cohere.com");
    config.api_key_env = Some("TEAM_COHERE_KEY".into());
    let provider = registration("cohere")
        .build(
            &config,
            &context(&[("COHERE_API_KEY", "co-other-do-not-leak-4")]),
        )
        .unwrap();
    assert_eq!(
        provider.check_availability().await,
        Availability::unavailable(UnavailableReason::MissingApiKey {
            env_var: Some("TEAM_COHERE_KEY".into())
        })
    );
    let error = provider
        .chat(ChatRequest::from_prompt("Hi"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Configuration);
    assert!(error.message().contains("TEAM_COHERE_KEY"), "{error}");
}

#[tokio::test]
async fn no_key_at_all_is_unavailable_naming_co_api_key() {
    let provider = registration("cohere")
        .build(&entry("https://api.cohere.com"), &context(&[]))
        .unwrap();
    let availability = provider.check_availability().await;
    assert_eq!(
        availability,
        Availability::unavailable(UnavailableReason::MissingApiKey {
            env_var: Some("CO_API_KEY".into())
        })
    );
    let error = provider
        .chat(ChatRequest::from_prompt("Hi"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Configuration);
    assert!(error.message().contains("COHERE_API_KEY"), "{error}");
}

#[test]
fn unknown_or_invalid_options_are_configuration_errors() {
    for (option, value) in [
        ("embedding_modle", json!("embed-v4.0")),
        ("embedding_input_type", json!("image")),
        ("client_name", json!(42)),
    ] {
        let config = entry("https://api.cohere.com").with_option(option, value);
        let error = registration("cohere")
            .build(&config, &context(&[("CO_API_KEY", SENTINEL_KEY)]))
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Configuration, "{option}");
        assert!(error.message().contains("options"), "{error}");
    }
}

#[test]
fn the_key_never_crosses_plain_http_to_another_host() {
    for vars in [
        [("CO_API_KEY", SENTINEL_KEY)],
        [("COHERE_API_KEY", SENTINEL_KEY)],
    ] {
        let error = registration("cohere")
            .build(&entry("http://api.example.com"), &context(&vars))
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Configuration);
        assert!(error.message().contains("allow_insecure_http"), "{error}");
        assert_no_key(&format!("{error:?} {error}"));
    }
    let loopback = registration("cohere").build(
        &entry("http://127.0.0.1:9"),
        &context(&[("CO_API_KEY", SENTINEL_KEY)]),
    );
    assert!(loopback.is_ok());
}

#[test]
fn base_urls_are_the_api_root_and_bad_ones_are_refused() {
    let build = |base_url: &str| {
        CohereProvider::with_environment(
            ProviderConfig::new("cohere")
                .with_api_key(SENTINEL_KEY)
                .with_base_url(base_url),
            &no_env(),
        )
    };
    assert_eq!(
        build("https://api.cohere.com/v2/").unwrap().base_url(),
        "https://api.cohere.com"
    );
    assert_eq!(
        build("https://proxy.example.com/cohere/v1")
            .unwrap()
            .base_url(),
        "https://proxy.example.com/cohere"
    );
    for bad in [
        "not a url",
        "ftp://api.cohere.com",
        "https://user:pw@api.cohere.com",
        "https://api.cohere.com?x=1",
    ] {
        let error = build(bad).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Configuration, "{bad}");
        assert!(!error.message().contains("pw@"), "{error}");
    }
}

#[tokio::test]
async fn a_fallback_key_quoted_back_by_the_server_is_masked_by_the_provider_itself() {
    // The manager's redacting layer only knows keys from the configuration, so the provider
    // masks the one it read from COHERE_API_KEY.
    let key = "co-fallback-do-not-leak-5";
    let body = json!({"id": "x", "message": format!("invalid api token {key}")}).to_string();
    let server = mock::server_with("/v2/chat", mock::json_response(498, &body)).await;
    let provider = registration("cohere")
        .build(&entry(&server.uri()), &context(&[("COHERE_API_KEY", key)]))
        .unwrap();
    let error = provider
        .chat(ChatRequest::from_prompt("Hi"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Authentication);
    let shown = format!("{error:?} {error}");
    assert!(
        !shown.contains(key) && shown.contains("[REDACTED]"),
        "{shown}"
    );
}
