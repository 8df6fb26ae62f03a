//! The committed configuration schema is the one this (all-providers) build generates.
#![cfg(feature = "all-providers")]

use fazztv::Registry;
use {fazztv_testkit as _, tokio as _};

#[test]
fn committed_schema_is_fresh() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../schemas/providers.schema.json"
    );
    let committed = std::fs::read_to_string(path)
        .expect("schemas/providers.schema.json exists: run `cargo xtask schema`");
    let generated = serde_json::to_string_pretty(&Registry::discover().unwrap().config_schema())
        .unwrap()
        + "\n";
    assert!(
        committed == generated,
        "schemas/providers.schema.json is stale: run `cargo xtask schema` and commit it"
    );
}

#[test]
fn the_schema_offers_every_compiled_in_type_and_its_options() {
    let schema = Registry::discover().unwrap().config_schema();
    let types = schema
        .pointer("/$defs/ProviderConfig/properties/type/enum")
        .unwrap();
    assert_eq!(
        types,
        &serde_json::json!([
            "anthropic",
            "cohere",
            "huggingface",
            "mock",
            "ollama",
            "openai",
            "openrouter"
        ])
    );
    let conditionals = schema
        .pointer("/$defs/ProviderConfig/allOf")
        .unwrap()
        .as_array()
        .unwrap();
    assert_eq!(conditionals.len(), 7);
}
