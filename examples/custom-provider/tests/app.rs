//! A third-party provider crate, linked by an application, is discovered and routed to like a
//! first-party one, in-process and over HTTP; the seed's inline `CustomProvider` also works
//! through explicit registration.

use std::sync::Arc;

use fazztv::{
    ConfigOrigin, ManagerSettings, Provider, ProviderConfig, ProviderManager, QueryOptions,
    Registry,
};
use fazztv_core::serde_json;
// Naming the crate links it, which is what runs its `register_provider!`.
use fazztv_example_custom_provider::CustomProvider;
use fazztv_testkit::{ScriptedResponse, ScriptedServer};

#[tokio::test]
async fn a_linked_third_party_crate_is_discovered_and_routed_to() {
    let mut registry = Registry::discover().unwrap();
    let types: Vec<&str> = registry.provider_types().map(|r| r.provider_type).collect();
    // Beside the facade's providers (the workspace may unify more features than `mock`).
    assert!(
        types.contains(&"custom") && types.contains(&"mock"),
        "{types:?}"
    );
    registry
        .load(
            r#"{"providers": [{"name": "mine", "type": "custom", "options": {"prefix": "Hi, "}}]}"#,
            ConfigOrigin::Inline,
        )
        .unwrap();
    let manager = ProviderManager::new(registry, ManagerSettings::default());
    let response = manager
        .query_with_fallback("there", QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(
        (response.provider.as_str(), response.content.as_str()),
        ("mine", "Hi, there")
    );
    assert!(
        manager
            .registry()
            .config_schema()
            .to_string()
            .contains("\"custom\"")
    );
}

#[tokio::test]
async fn an_entry_with_a_base_url_is_routed_to_the_custom_api() {
    let answer = r#"{"model": "toy-1", "text": "Hello!", "finish_reason": "stop"}"#;
    let server = ScriptedServer::start([ScriptedResponse::with_body(200, answer)]).await;
    let mut registry = Registry::discover().unwrap();
    let config = format!(
        r#"{{"providers": [{{"name": "api", "type": "custom", "base_url": "{}",
            "api_key": "sk-app-test"}}]}}"#,
        server.base_url()
    );
    registry.load(&config, ConfigOrigin::Inline).unwrap();
    let manager = ProviderManager::new(registry, ManagerSettings::default());
    let response = manager
        .query_with_fallback("there", QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(
        (response.provider.as_str(), response.content.as_str()),
        ("api", "Hello!")
    );
    // Not reported, so unknown: never zeros.
    assert_eq!(response.usage, None);
    let sent = &server.requests()[0];
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        ("POST", "/v1/generate")
    );
    assert_eq!(sent.header("authorization"), Some("Bearer sk-app-test"));
    let body: serde_json::Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(body["messages"][0]["content"], "there");
    assert_eq!(body["stream"], false);
}

#[tokio::test]
async fn the_seeds_inline_custom_provider_registers_explicitly() {
    // registry = ProviderRegistry(); registry.add_provider(config, CustomProvider)
    let mut registry = Registry::empty();
    let config = ProviderConfig::new("custom");
    let provider: Arc<dyn Provider> = Arc::new(CustomProvider::new(&config));
    registry.add_provider(config, provider).unwrap();

    let provider = registry.get_provider("custom").unwrap();
    assert!(provider.check_availability().await.is_available());
    let response = provider
        .query("Your prompt", Default::default())
        .await
        .unwrap();
    assert_eq!(response.content, "Custom response to: Your prompt");
    let models = provider.list_models().await.unwrap();
    assert_eq!(models[0].name, "Custom Model");
}
