//! Presets through the facade: the schema offers each type's preset names, a preset on a type
//! without presets is refused, and keyed presets join the built-in default.
#![cfg(feature = "all-providers")]

use fazztv::{ConfigLoader, ConfigOrigin, Environment, ProviderManager, Registry};
use {fazztv_testkit as _, tokio as _};

fn violations(text: &str) -> Vec<(String, String)> {
    Registry::discover()
        .unwrap()
        .validate(text, ConfigOrigin::Inline)
        .unwrap_err()
        .violations()
        .iter()
        .map(|violation| (violation.pointer.clone(), violation.message.clone()))
        .collect()
}

#[test]
fn the_schema_offers_each_types_presets_and_none_elsewhere() {
    let schema = Registry::discover().unwrap().config_schema();
    let conditionals = schema
        .pointer("/$defs/ProviderConfig/allOf")
        .unwrap()
        .as_array()
        .unwrap();
    let preset_of = |provider_type: &str| {
        conditionals
            .iter()
            .find(|c| c.pointer("/if/properties/type/const").unwrap() == provider_type)
            .and_then(|c| c.pointer("/then/properties/preset"))
            .cloned()
            .unwrap()
    };
    assert_eq!(
        preset_of("openai")["enum"],
        serde_json::json!([
            "groq",
            "together",
            "deepseek",
            "mistral",
            "fireworks",
            "xai",
            "vllm",
            "lmstudio",
            "llamacpp",
            "azure"
        ])
    );
    assert_eq!(preset_of("anthropic"), serde_json::json!(false));
}

#[test]
fn a_preset_is_refused_where_its_type_has_none_or_another_name() {
    assert_eq!(
        violations(r#"{"providers": [{"name": "a", "type": "anthropic", "preset": "groq"}]}"#),
        [(
            "/providers/0/preset".to_owned(),
            "provider type `anthropic` has no presets; remove `preset` (`groq`)".to_owned()
        )]
    );
    assert_eq!(
        violations(r#"{"providers": [{"name": "a", "type": "openai", "preset": "grok"}]}"#),
        [(
            "/providers/0/preset".to_owned(),
            "unknown preset `grok` for provider type `openai`; known presets: groq, together, \
             deepseek, mistral, fireworks, xai, vllm, lmstudio, llamacpp, azure"
                .to_owned()
        )]
    );
}

#[test]
fn keyed_presets_join_the_builtin_default_and_keyless_ones_never_do() {
    let dir = std::env::temp_dir().join(format!("fazztv-presets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let names = |vars: Vec<(&str, &str)>| {
        let loader = ConfigLoader::new()
            .working_dir(&dir)
            .environment(Environment::from_vars(vars));
        let manager = ProviderManager::load(&loader).unwrap();
        manager
            .registry()
            .entries()
            .iter()
            .map(|entry| {
                let config = entry.config();
                (
                    entry.name().to_owned(),
                    config.preset.clone(),
                    config.api_key_env.clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    let seed = names(vec![]);
    assert_eq!(
        seed.iter()
            .map(|(name, ..)| name.as_str())
            .collect::<Vec<_>>(),
        ["openrouter", "openai", "ollama"]
    );
    let with = names(vec![
        ("GROQ_API_KEY", "gsk-test"),
        ("AZURE_OPENAI_API_KEY", "azure-test"),
    ]);
    let added: Vec<_> = with[seed.len()..].to_vec();
    // Azure has no common endpoint, so its entry needs a file; it cannot join by key alone.
    assert_eq!(
        added,
        [(
            "groq".to_owned(),
            Some("groq".to_owned()),
            Some("GROQ_API_KEY".into())
        )]
    );
}
