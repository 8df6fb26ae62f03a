//! Registration, configuration, options schema and construction from the environment.

mod common;

use common::{TAGS, no_env};
use fazztv_core::ProviderFactory;
use fazztv_core::{
    Environment, ErrorKind, ModelCapability, ProviderConfig, ProviderContext, ProviderRegistration,
};
use fazztv_provider_ollama::{DEFAULT_BASE_URL, OllamaFactory, OllamaProvider};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn registration() -> &'static ProviderRegistration {
    let found: Vec<_> = ProviderRegistration::linked()
        .filter(|registration| registration.provider_type == "ollama")
        .collect();
    assert_eq!(found.len(), 1, "exactly one ollama registration");
    found[0]
}

#[test]
fn the_registration_describes_the_type() {
    let registration = registration();
    assert_eq!(registration.crate_name, "fazztv-provider-ollama");
    assert_eq!(registration.display_name, "Ollama");
    assert_eq!(registration.default_api_key_env, None);
    assert_eq!(registration.cargo_feature, Some("ollama"));
    assert_eq!(
        registration.capabilities,
        [
            ModelCapability::TextGeneration,
            ModelCapability::Chat,
            ModelCapability::CodeGeneration,
            ModelCapability::Embedding,
            ModelCapability::ToolCalling,
            ModelCapability::Vision,
            ModelCapability::StructuredOutput,
            ModelCapability::Reasoning,
        ]
    );
}

#[tokio::test]
async fn the_registration_builds_a_provider_that_reads_ollama_host_from_the_context() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/tags"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(TAGS, "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    // OLLAMA_HOST without a scheme, as users set it.
    let host = server.address().to_string();
    let context = ProviderContext::new(Environment::from_vars([("OLLAMA_HOST", host.as_str())]));
    let provider = registration()
        .build(
            &ProviderConfig::new("local-llm").with_type("ollama"),
            &context,
        )
        .unwrap();
    assert_eq!(provider.name(), "local-llm");
    assert!(provider.model_manager().is_some());
    let models = provider.list_models().await.unwrap();
    assert_eq!(models[0].provider, "local-llm");
}

#[test]
fn the_example_config_is_valid_and_builds() {
    let example = (registration().example_config)();
    assert_eq!(example, OllamaFactory::example_config());
    let config: ProviderConfig = serde_json::from_value(example).unwrap();
    assert_eq!(config.provider_type, "ollama");
    registration()
        .build(&config, &ProviderContext::new(no_env()))
        .unwrap();
    let provider = OllamaProvider::with_environment(config, &no_env()).unwrap();
    assert_eq!(provider.base_url(), DEFAULT_BASE_URL);
    assert_eq!(provider.default_model(), "llama3.2");
    assert_eq!(provider.options().num_ctx.map(|n| n.get()), Some(8192));
}

#[test]
fn the_options_schema_is_stable() {
    snapshot!("options_schema", (registration().options_schema)());
}

#[test]
fn bad_options_are_configuration_errors_naming_the_field() {
    for (options, expected) in [
        (json!({"keep_alive": "ten minutes"}), "keep_alive"),
        (json!({"num_ctx": 0}), "num_ctx"),
        (json!({"num_ctxx": 4096}), "num_ctxx"),
        (json!({"embedding_model": " "}), "embedding_model"),
    ] {
        let mut config = ProviderConfig::new("ollama");
        config.options = options.as_object().unwrap().clone();
        let error = registration()
            .build(&config, &ProviderContext::new(no_env()))
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Configuration, "{options}");
        assert!(error.message().contains(expected), "{options}: {error}");
        let direct = OllamaProvider::with_environment(config, &no_env()).unwrap_err();
        assert_eq!(direct.message(), error.message());
    }
}

#[test]
fn the_server_address_comes_from_config_then_ollama_url_then_ollama_host() {
    let env = Environment::from_vars([
        ("OLLAMA_URL", "http://gpu-box:11434/"),
        ("OLLAMA_HOST", "0.0.0.0"),
    ]);
    let build = |config: ProviderConfig, env: &Environment| {
        OllamaProvider::with_environment(config, env)
            .unwrap()
            .base_url()
            .to_owned()
    };
    assert_eq!(
        build(
            ProviderConfig::new("ollama").with_base_url("https://ollama.com/api"),
            &env
        ),
        "https://ollama.com"
    );
    assert_eq!(
        build(ProviderConfig::new("ollama"), &env),
        "http://gpu-box:11434"
    );
    let host_only = Environment::from_vars([("OLLAMA_HOST", "0.0.0.0")]);
    assert_eq!(
        build(ProviderConfig::new("ollama"), &host_only),
        "http://127.0.0.1:11434"
    );
    let port_only = Environment::from_vars([("OLLAMA_HOST", ":8080")]);
    assert_eq!(
        build(ProviderConfig::new("ollama"), &port_only),
        "http://127.0.0.1:8080"
    );
    assert_eq!(
        build(ProviderConfig::new("ollama"), &no_env()),
        DEFAULT_BASE_URL
    );

    let error = OllamaProvider::with_environment(
        ProviderConfig::new("ollama"),
        &Environment::from_vars([("OLLAMA_HOST", "ftp://nas")]),
    )
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Configuration);
    assert_eq!(error.provider(), Some("ollama"));
    assert!(error.message().contains("OLLAMA_HOST"), "{error}");
}

#[test]
fn an_empty_default_model_is_refused() {
    let error = OllamaProvider::with_environment(
        ProviderConfig::new("ollama").with_default_model(" "),
        &no_env(),
    )
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Configuration);
    assert!(error.message().contains("default_model"), "{error}");
}
