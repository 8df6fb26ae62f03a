//! The seed's `providers.json` loads verbatim, and providers whose key variable is unset are
//! configured but say they are unavailable, naming the variable.
#![cfg(feature = "all-providers")]

use fazztv::{ConfigOrigin, Environment, ModelCapability, Registry, UnavailableReason};
use {fazztv_testkit as _, serde_json as _};

const SEED_CONFIG: &str = r#"{
  "providers": [
    {
      "name": "openrouter",
      "type": "openrouter",
      "api_key_env": "OPENROUTER_API_KEY",
      "default_model": "cognitivecomputations/dolphin3.0-r1-mistral-24b:free",
      "capabilities": [
        "text_generation",
        "chat",
        "code_generation",
        "translation",
        "summarization"
      ]
    },
    {
      "name": "openai",
      "type": "openai",
      "api_key_env": "OPENAI_API_KEY",
      "default_model": "gpt-3.5-turbo",
      "capabilities": [
        "text_generation",
        "chat",
        "code_generation",
        "translation",
        "summarization",
        "embedding",
        "moderation"
      ]
    },
    {
      "name": "ollama",
      "type": "ollama",
      "base_url": "http://localhost:11434",
      "default_model": "llama2",
      "capabilities": [
        "text_generation",
        "chat",
        "code_generation"
      ]
    }
  ],
  "manager": {
    "fallback_enabled": true,
    "load_balancing": false
  }
}"#;

#[tokio::test]
async fn the_seed_configuration_loads_verbatim() {
    let mut registry = Registry::discover()
        .unwrap()
        .with_environment(Environment::from_vars([("HOME", "/nowhere")]));
    let config = registry.load(SEED_CONFIG, ConfigOrigin::Inline).unwrap();
    assert!(config.manager.fallback_enabled);
    assert_eq!(
        registry.provider_names(),
        ["openrouter", "openai", "ollama"]
    );
    let openai = registry.entry("openai").unwrap();
    assert!(openai.supports(ModelCapability::Moderation));
    assert_eq!(openai.default_model(), Some("gpt-3.5-turbo"));

    for (name, variable) in [
        ("openrouter", "OPENROUTER_API_KEY"),
        ("openai", "OPENAI_API_KEY"),
    ] {
        let availability = registry
            .get_provider(name)
            .unwrap()
            .check_availability()
            .await;
        assert_eq!(
            availability.reason(),
            Some(&UnavailableReason::MissingApiKey {
                env_var: Some(variable.to_owned())
            }),
            "{name}"
        );
    }
}
