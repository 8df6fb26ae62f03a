//! Several keys per provider: `api_key_env` as a list, one instance per key, a 429 or 401 on
//! one key tries the next before falling back, and rate limits count per key.

use std::sync::Arc;
use std::time::Duration;

use fazztv_core::{
    ChatRequest, ChatResponse, Environment, Error, ErrorKind, ExposeSecret, ModelInfo, Provider,
    ProviderConfig, ProviderContext, ProviderFactory, ProviderRegistration, Result, Usage,
    async_trait,
};
use fazztv_manager::{ConfigOrigin, ProviderManager, QueryOptions, Registry};
use schemars::JsonSchema;
use serde::Deserialize;
use {
    criterion as _, fazztv_provider_mock as _, fazztv_testkit as _, futures as _, insta as _,
    jsonschema as _, moka as _, proptest as _, regex as _, serde_json as _, sha2 as _,
    thiserror as _, tokio as _, tracing as _,
};

/// A provider whose answer depends on its key: `limited…` is rate limited (asking to wait
/// 30 s), `rejected…` is refused (401), anything else answers.
struct ByKey {
    name: String,
    key: String,
}

impl std::fmt::Debug for ByKey {
    /// Never the key: the manager's own Debug output is checked for it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ByKey").field("name", &self.name).finish()
    }
}

#[async_trait]
impl Provider for ByKey {
    fn name(&self) -> &str {
        &self.name
    }

    async fn chat(&self, _request: ChatRequest) -> Result<ChatResponse> {
        // In flight across one scheduling round, so that concurrent requests overlap.
        tokio::task::yield_now().await;
        if self.key.starts_with("limited") {
            return Err(Error::new(ErrorKind::RateLimited, "slow down")
                .with_retry_after(Duration::from_secs(30)));
        }
        if self.key.starts_with("rejected") {
            return Err(Error::new(ErrorKind::Authentication, "invalid key"));
        }
        Ok(
            ChatResponse::new(format!("answered with {}", self.key), "m", &self.name)
                .with_usage(Usage::new(1, 1)),
        )
    }

    async fn list_models(&self) -> Result<Vec<ModelInfo>> {
        Ok(Vec::new())
    }
}

struct ByKeyFactory;

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NoOptions {}

impl ProviderFactory for ByKeyFactory {
    const TYPE: &'static str = "bykey";
    const DISPLAY_NAME: &'static str = "By key";
    const DESCRIPTION: &'static str = "Answers according to its key.";
    const CAPABILITIES: &'static [fazztv_core::ModelCapability] = &[
        fazztv_core::ModelCapability::Chat,
        fazztv_core::ModelCapability::TextGeneration,
    ];
    type Options = NoOptions;

    fn build(
        config: &ProviderConfig,
        _options: NoOptions,
        _context: &ProviderContext,
    ) -> Result<Arc<dyn Provider>> {
        Ok(Arc::new(ByKey {
            name: config.name.clone(),
            key: config
                .api_key
                .as_ref()
                .map(|key| key.expose_secret().to_owned())
                .unwrap_or_default(),
        }))
    }

    fn example_config() -> serde_json::Value {
        serde_json::json!({"name": "k", "type": "bykey"})
    }
}

static BY_KEY: ProviderRegistration = ProviderRegistration::of::<ByKeyFactory>("keys-tests", "0");

fn manager(document: serde_json::Value, vars: &[(&str, &str)]) -> ProviderManager {
    let mut registry = Registry::empty()
        .with(&BY_KEY)
        .unwrap()
        .with_environment(Environment::from_vars(vars.iter().copied()));
    let config = registry
        .load(&document.to_string(), ConfigOrigin::Inline)
        .unwrap();
    ProviderManager::new(registry, config.manager)
}

fn keys_of(attempts: &[fazztv_core::Attempt]) -> Vec<(String, Option<String>)> {
    attempts
        .iter()
        .map(|attempt| (attempt.outcome.label().to_owned(), attempt.key.clone()))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_rate_limited_or_rejected_key_hands_over_to_the_next_before_any_fallback() {
    let manager = manager(
        serde_json::json!({
            "providers": [
                {"name": "p", "type": "bykey", "api_key_env": ["KEY_A", "KEY_B", "KEY_C"]},
                {"name": "backup", "type": "bykey", "api_key_env": "KEY_OK"}
            ],
            "manager": {"retry": {"max_retries": 0}}
        }),
        &[
            ("KEY_A", "limited-a"),
            ("KEY_B", "rejected-b"),
            ("KEY_C", "good-c"),
            ("KEY_OK", "good-backup"),
        ],
    );
    let started = tokio::time::Instant::now();
    let response = manager
        .query_with_fallback("hi", QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(response.provider, "p");
    assert_eq!(response.content, "answered with good-c");
    assert_eq!(started.elapsed(), Duration::ZERO, "no backoff between keys");
    assert_eq!(
        keys_of(&response.attempts),
        [
            ("rate_limited".into(), Some("KEY_A".into())),
            ("authentication".into(), Some("KEY_B".into())),
            ("ok".into(), Some("KEY_C".into())),
        ]
    );
    // The refused keys rest: the next request goes straight to the good one.
    let response = manager
        .query_with_fallback("again", QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(
        keys_of(&response.attempts),
        [("ok".into(), Some("KEY_C".into()))]
    );
    // A provider refused on one key is not ejected for it.
    let health = manager.health();
    assert_eq!(health[0].state.as_str(), "healthy");
}

#[tokio::test(start_paused = true)]
async fn a_rate_limited_key_comes_back_after_its_rest() {
    let manager = manager(
        serde_json::json!({
            "providers": [{"name": "p", "type": "bykey", "api_key_env": ["KEY_A", "KEY_B"]}],
            "manager": {"retry": {"max_retries": 0}}
        }),
        &[("KEY_A", "limited-a"), ("KEY_B", "good-b")],
    );
    manager
        .query_with_fallback("hi", QueryOptions::new())
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(31)).await;
    let response = manager
        .query_with_fallback("hi", QueryOptions::new())
        .await
        .unwrap();
    // Its 30 s rest is over: it is tried first again (and rests again).
    assert_eq!(
        keys_of(&response.attempts),
        [
            ("rate_limited".into(), Some("KEY_A".into())),
            ("ok".into(), Some("KEY_B".into())),
        ]
    );
}

#[tokio::test]
async fn keys_whose_variable_is_unset_are_left_out_with_a_warning() {
    let mut registry = Registry::empty()
        .with(&BY_KEY)
        .unwrap()
        .with_environment(Environment::from_vars([("KEY_B", "good-b")]));
    registry
        .load(
            &serde_json::json!({"providers": [
                {"name": "p", "type": "bykey", "api_key_env": ["KEY_A", "KEY_B"]}
            ]})
            .to_string(),
            ConfigOrigin::Inline,
        )
        .unwrap();
    let entry = &registry.entries()[0];
    let variables: Vec<Option<&str>> = entry.keys().iter().map(|key| key.variable()).collect();
    assert_eq!(variables, [Some("KEY_B")]);
    assert!(
        registry
            .warnings()
            .iter()
            .any(|warning| warning.contains("KEY_A is not set")),
        "{:?}",
        registry.warnings()
    );
    // The entry still names every variable it was configured with, and no key.
    assert_eq!(
        format!("{:?}", entry.config().api_key_env),
        r#"Some(["KEY_A", "KEY_B"])"#
    );
    assert!(!format!("{entry:?}").contains("good-b"));
}

#[test]
fn a_list_of_keys_is_validated_entry_by_entry() {
    let document = serde_json::json!({"providers": [
        {"name": "p", "type": "bykey", "api_key_env": ["KEY_A", "sk-pasted-0123456789abcdef"]},
        {"name": "q", "type": "bykey", "api_key_env": []},
        {"name": "r", "type": "bykey", "api_key_env": ["KEY_A", "KEY_B"], "api_key": "sk-x"}
    ]});
    let error = Registry::empty()
        .with(&BY_KEY)
        .unwrap()
        .load(&document.to_string(), ConfigOrigin::Inline)
        .unwrap_err()
        .to_string();
    assert!(
        !error.contains("sk-pasted"),
        "a pasted key is never echoed: {error}"
    );
    let document = serde_json::json!({"providers": [
        {"name": "p", "type": "bykey", "api_key_env": ["KEY_A", "sk-pasted-0123456789abcdef"]},
        {"name": "r", "type": "bykey", "api_key_env": ["KEY_A", "KEY_B"], "api_key": "sk-x"}
    ]});
    let error = Registry::empty()
        .with(&BY_KEY)
        .unwrap()
        .load(&document.to_string(), ConfigOrigin::Inline)
        .unwrap_err()
        .to_string();
    for expected in [
        "/providers/0/api_key_env/1",
        "is not an environment variable name",
        "/providers/1/api_key",
        "contradict each other",
    ] {
        assert!(error.contains(expected), "{expected:?} in {error}");
    }
    assert!(!error.contains("sk-pasted"), "{error}");
}

#[tokio::test]
async fn rate_limits_count_per_key_and_a_key_at_its_limit_hands_over() {
    let manager = manager(
        serde_json::json!({"providers": [{
            "name": "p", "type": "bykey", "api_key_env": ["KEY_A", "KEY_B"],
            "rate_limit": {"max_concurrent": 1, "on_limit": "fallback"}
        }]}),
        &[("KEY_A", "good-a"), ("KEY_B", "good-b")],
    );
    // Each key has its own room: while key A serves one request, key B serves the other.
    let (first, second) = tokio::join!(
        manager.query_with_fallback("one", QueryOptions::new()),
        manager.query_with_fallback("two", QueryOptions::new()),
    );
    let mut contents = [first.unwrap().content, second.unwrap().content];
    contents.sort();
    assert_eq!(contents, ["answered with good-a", "answered with good-b"]);
    // A third at once finds both keys busy: refused locally, never sent.
    let (a, b, c) = tokio::join!(
        manager.query_with_fallback("one", QueryOptions::new()),
        manager.query_with_fallback("two", QueryOptions::new()),
        manager.query_with_fallback("three", QueryOptions::new()),
    );
    let refused = [&a, &b, &c]
        .iter()
        .filter(|result| {
            result
                .as_ref()
                .is_err_and(|error| error.kind() == ErrorKind::RateLimited)
        })
        .count();
    assert_eq!(refused, 1);
}
