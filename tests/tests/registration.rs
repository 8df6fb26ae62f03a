//! Exactly the selected provider types are discovered: nothing missing (a provider crate the
//! linker dropped, inventory#7/#50) and nothing extra (a provider crate depending on another).
//! Run once per feature: `cargo test -p fazztv-tests --no-default-features --features <f>`.

use fazztv::{ConfigOrigin, Registry};
use {fazztv_testkit as _, tokio as _};

fn selected() -> Vec<&'static str> {
    let mut ids = Vec::new();
    if cfg!(feature = "anthropic") || cfg!(feature = "all-providers") {
        ids.push("anthropic");
    }
    if cfg!(feature = "cohere") || cfg!(feature = "all-providers") {
        ids.push("cohere");
    }
    if cfg!(feature = "huggingface") || cfg!(feature = "all-providers") {
        ids.push("huggingface");
    }
    if cfg!(feature = "mock") || cfg!(feature = "all-providers") {
        ids.push("mock");
    }
    if cfg!(feature = "ollama") || cfg!(feature = "all-providers") {
        ids.push("ollama");
    }
    if cfg!(feature = "openai") || cfg!(feature = "all-providers") {
        ids.push("openai");
    }
    if cfg!(feature = "openrouter") || cfg!(feature = "all-providers") {
        ids.push("openrouter");
    }
    ids
}

#[test]
fn discovered_types_are_exactly_the_selected_features() {
    let registry = Registry::discover().expect("no duplicate registrations");
    let found: Vec<&str> = registry
        .provider_types()
        .map(|registration| registration.provider_type)
        .collect();
    assert_eq!(found, selected());
}

#[test]
fn every_registration_names_its_crate_and_feature() {
    let registry = Registry::discover().unwrap();
    for registration in registry.provider_types() {
        assert_eq!(
            registration.crate_name,
            format!("fazztv-provider-{}", registration.provider_type)
        );
        assert_eq!(registration.cargo_feature, Some(registration.provider_type));
        assert!(
            !registration.capabilities.is_empty(),
            "{}",
            registration.provider_type
        );
    }
}

#[test]
fn every_example_config_validates_and_builds() {
    let registry = Registry::discover().unwrap();
    for registration in registry.provider_types() {
        let document = serde_json::json!({"providers": [(registration.example_config)()]});
        let mut fresh = Registry::discover().unwrap();
        fresh
            .load(&document.to_string(), ConfigOrigin::Inline)
            .unwrap_or_else(|error| {
                panic!(
                    "example of `{}` is invalid: {error}",
                    registration.provider_type
                )
            });
        assert_eq!(fresh.entries().len(), 1);
    }
}
