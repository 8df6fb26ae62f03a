//! Shared by the facade-level tests that drive real providers through the manager: a manager
//! built from a configuration document, OpenAI entries pointed at loopback servers, and the
//! attempts of an answer as comparable tuples.
#![allow(dead_code, reason = "each test binary uses a part")]

use fazztv::{Attempt, ConfigOrigin, Environment, ProviderManager, Registry};
use serde_json::{Value, json};

/// An `openai` provider entry named `name` at `base_url` (which includes `/v1`), its key in
/// `OPENAI_API_KEY`, with `settings` added to the entry.
pub fn openai_entry(name: &str, base_url: &str, settings: &Value) -> Value {
    let mut entry = json!({
        "name": name,
        "type": "openai",
        "api_key_env": "OPENAI_API_KEY",
        "base_url": base_url,
        "default_model": "gpt-4o-mini",
    });
    if let (Some(entry), Some(settings)) = (entry.as_object_mut(), settings.as_object()) {
        entry.extend(settings.clone());
    }
    entry
}

/// A manager for `document`, loaded as a file would be, with `key` in `OPENAI_API_KEY` and no
/// other variable.
pub fn manager_for(document: &Value, key: &str) -> ProviderManager {
    let mut registry = Registry::discover()
        .unwrap()
        .with_environment(Environment::from_vars([("OPENAI_API_KEY", key)]));
    let config = registry
        .load(&document.to_string(), ConfigOrigin::Inline)
        .unwrap();
    ProviderManager::new(registry, config.manager)
}

/// Each attempt as (provider, outcome, retry number).
pub fn outcomes(attempts: &[Attempt]) -> Vec<(String, String, u32)> {
    attempts
        .iter()
        .map(|a| (a.provider.clone(), a.outcome.label().to_owned(), a.retries))
        .collect()
}

/// One expected attempt.
pub fn triple(provider: &str, outcome: &str, retries: u32) -> (String, String, u32) {
    (provider.to_owned(), outcome.to_owned(), retries)
}
