//! Budgets (reserve, then settle) and rate limits (requests and tokens per minute, requests at
//! once), checked before anything is sent.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Scripted, config, manager};
use fazztv_core::{
    ErrorKind, GenerationOptions, ListedPrice, ModelPricing, OnLimit, PriceSource, RateLimit,
};
use fazztv_manager::{
    Budget, ConfigOrigin, FazztvConfig, ManagerSettings, OnExceeded, ProviderManager, QueryOptions,
    Registry, Window,
};
use futures::StreamExt;
use futures::future::join_all;
use {
    criterion as _, fazztv_provider_mock as _, fazztv_testkit as _, insta as _, jsonschema as _,
    moka as _, proptest as _, regex as _, schemars as _, serde as _, serde_json as _, sha2 as _,
    thiserror as _, tracing as _,
};

/// 1 USD per 1000 completion tokens, prompts free: a request with `max_tokens` 10 may cost
/// at most 0.01 USD; the scripted answer (4 completion tokens) costs 0.004.
fn per_output_token() -> ListedPrice {
    ListedPrice::new(
        ModelPricing::per_token(0.0, 0.001),
        PriceSource::Table {
            as_of: "2025-08-07".into(),
        },
    )
}

fn with_max_tokens() -> QueryOptions {
    QueryOptions::new().generation(GenerationOptions::default().max_tokens(10))
}

/// A manager built from a configuration (budgets are top-level configuration).
fn configured(
    providers: &[(&Arc<Scripted>, fazztv_core::ProviderConfig)],
    budgets: Vec<Budget>,
) -> ProviderManager {
    let mut registry = Registry::empty();
    for (provider, config) in providers {
        let provider: Arc<dyn fazztv_core::Provider> = (*provider).clone();
        registry.add_provider(config.clone(), provider).unwrap();
    }
    let mut config = FazztvConfig::new([]);
    for budget in budgets {
        config = config.with_budget(budget);
    }
    registry.load_config(&config, ConfigOrigin::Inline).unwrap();
    let settings = ManagerSettings::default()
        .with_retry(fazztv_core::RetrySettings::default().with_max_retries(0));
    ProviderManager::new(registry, settings)
}

#[tokio::test]
async fn fifty_concurrent_requests_against_a_budget_for_one_cannot_overspend() {
    // Fault-matrix row 40.
    let a = Arc::new(Scripted::new("a").price(per_output_token()));
    let manager = configured(
        &[(&a, config("a").with_default_model("a-model"))],
        vec![Budget::new("global", 0.01, Window::Total)],
    );
    let results =
        join_all((0..50).map(|_| manager.query_with_fallback("hi", with_max_tokens()))).await;
    let answered = results.iter().filter(|result| result.is_ok()).count();
    let refused = results
        .iter()
        .filter(|result| {
            result
                .as_ref()
                .is_err_and(|error| error.kind() == ErrorKind::BudgetExceeded)
        })
        .count();
    assert_eq!((answered, refused), (1, 49));
    assert_eq!(a.calls(), 1, "refused requests are never sent");
    let spent = manager.get_usage_stats().cost_usd;
    assert!(spent <= 0.01 + 1e-12, "spent {spent}");
    // The answer cost 0.004: the rest of the reservation was given back.
    assert!(
        manager
            .query_with_fallback(
                "again",
                QueryOptions::new().generation(GenerationOptions::default().max_tokens(5))
            )
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_refusal_names_the_budget_what_is_left_and_when_it_resets() {
    let error = refused_by_a_budget_of(Window::Day).await;
    let message = error.to_string();
    for expected in [
        "budget `provider:a` (0.005 USD per day) has 0.005000 USD left",
        "less than this request may cost (0.010000 USD)",
        "it resets at ",
        "T00:00:00Z",
    ] {
        assert!(message.contains(expected), "{expected:?} in {message}");
    }
    // How long until it resets, for a gateway's Retry-After: at most a day.
    let wait = error.retry_after().expect("a daily budget resets");
    assert!(
        wait > Duration::ZERO && wait <= Duration::from_secs(86_400),
        "{wait:?}"
    );
}

#[tokio::test]
async fn a_budget_that_never_resets_gives_no_retry_after() {
    let error = refused_by_a_budget_of(Window::Total).await;
    assert_eq!(error.retry_after(), None);
}

/// A request that a `provider:a` budget of 0.005 USD per `window` refuses (it may cost 0.01)
/// before the provider is called.
async fn refused_by_a_budget_of(window: Window) -> fazztv_core::Error {
    let a = Arc::new(Scripted::new("a").price(per_output_token()));
    let manager = configured(
        &[(&a, config("a").with_default_model("a-model"))],
        vec![Budget::new("provider:a", 0.005, window)],
    );
    let error = manager
        .query_with_fallback("hi", with_max_tokens())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::BudgetExceeded);
    assert_eq!(a.calls(), 0);
    error
}

#[test]
fn a_gateway_keys_budget_is_a_key_budget_and_is_validated() {
    let sha = "f77894fdfa58e447c57e077eaa9708e8e009c84dc6aba2db80461275e9b85be7";
    let document = serde_json::json!({
        "providers": [{"name": "local", "type": "mock"}],
        "gateway": {"keys": [
            {"name": "team", "sha256": sha, "budget_usd": 2.5, "budget_window": "month", "rpm": 10},
            {"name": "open", "sha256": sha.replace('f', "e")}
        ]}
    });
    let mut registry = Registry::discover().unwrap();
    let loaded = registry
        .load(&document.to_string(), ConfigOrigin::Inline)
        .unwrap();
    assert_eq!(loaded.gateway.keys.len(), 2);
    assert_eq!(registry.gateway().keys[0].rpm, Some(10));
    assert_eq!(registry.gateway().max_body_bytes, 4 * 1024 * 1024);
    assert_eq!(
        registry.budgets(),
        [Budget::new("key:team", 2.5, Window::Month)]
    );
    let document = serde_json::json!({
        "providers": [{"name": "local", "type": "mock"}],
        "budgets": [{"scope": "key:team", "limit_usd": 1}],
        "gateway": {"keys": [
            {"name": "team", "sha256": sha, "budget_usd": 1},
            {"name": "team", "sha256": sha.to_uppercase()}
        ]}
    });
    let error = Registry::discover()
        .unwrap()
        .load(&document.to_string(), ConfigOrigin::Inline)
        .unwrap_err()
        .to_string();
    for expected in [
        "/gateway/keys/0/budget_usd",
        "also declared in `budgets`",
        "/gateway/keys/1/name",
        "duplicate key name `team`",
        "/gateway/keys/1/sha256",
    ] {
        assert!(error.contains(expected), "{expected:?} in {error}");
    }
    assert!(!error.contains(sha), "a hash is never quoted: {error}");
    let malformed = serde_json::json!({
        "providers": [{"name": "local", "type": "mock"}],
        "gateway": {"auth": "sometimes", "keys": [{"name": "team", "sha256": "abc"}]}
    });
    let error = Registry::discover()
        .unwrap()
        .load(&malformed.to_string(), ConfigOrigin::Inline)
        .unwrap_err()
        .to_string();
    for expected in ["/gateway/auth", "/gateway/keys/0/sha256"] {
        assert!(error.contains(expected), "{expected:?} in {error}");
    }
}

#[tokio::test]
async fn a_budget_that_falls_back_sends_the_request_to_a_cheaper_or_free_provider() {
    let dear = Arc::new(Scripted::new("dear").price(per_output_token()));
    let free = Arc::new(Scripted::new("free").price(ListedPrice::local()));
    let manager = configured(
        &[
            (&dear, config("dear").with_default_model("d")),
            (&free, config("free").with_default_model("f")),
        ],
        vec![Budget::new("global", 0.001, Window::Month).on_exceeded(OnExceeded::Fallback)],
    );
    let response = manager
        .query_with_fallback("hi", with_max_tokens())
        .await
        .unwrap();
    assert_eq!(response.provider, "free");
    assert_eq!(response.attempts[0].outcome.label(), "skipped");
    assert_eq!(dear.calls(), 0);
    // When no candidate fits, the error is the budget's, with every candidate listed.
    let only_dear = configured(
        &[(&dear, config("dear").with_default_model("d"))],
        vec![Budget::new("global", 0.001, Window::Month).on_exceeded(OnExceeded::Fallback)],
    );
    let error = only_dear
        .query_with_fallback("hi", with_max_tokens())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::BudgetExceeded);
    assert_eq!(error.attempts().len(), 1);
}

#[tokio::test]
async fn tag_and_key_budgets_apply_only_to_their_requests() {
    let a = Arc::new(Scripted::new("a").price(per_output_token()));
    let manager = configured(
        &[(&a, config("a").with_default_model("a-model"))],
        vec![
            Budget::new("tag:batch", 0.0, Window::Total),
            Budget::new("key:alice", 0.0, Window::Total),
        ],
    );
    assert!(
        manager
            .query_with_fallback("hi", with_max_tokens())
            .await
            .is_ok()
    );
    for options in [
        with_max_tokens().tag("batch"),
        with_max_tokens().key_name("alice"),
    ] {
        let error = manager
            .query_with_fallback("hi", options)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::BudgetExceeded);
    }
    assert!(
        manager
            .query_with_fallback("hi", with_max_tokens().key_name("bob"))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_stream_holds_its_reservation_until_it_ends() {
    let a = Arc::new(Scripted::new("a").price(per_output_token()));
    let manager = configured(
        &[(&a, config("a").with_default_model("a-model"))],
        vec![Budget::new("global", 0.015, Window::Total)],
    );
    let mut stream = manager
        .chat_stream(
            fazztv_core::ChatRequest::from_prompt("hi"),
            with_max_tokens(),
        )
        .await
        .unwrap();
    // While it runs, the budget is held: another request does not fit.
    let error = manager
        .query_with_fallback("hi", with_max_tokens())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::BudgetExceeded);
    while stream.next().await.is_some() {}
    // Settled to its cost (2 completion tokens: 0.002): the next one (0.01) fits.
    assert!(
        manager
            .query_with_fallback("hi", with_max_tokens())
            .await
            .is_ok()
    );
}

#[tokio::test(start_paused = true)]
async fn requests_per_minute_wait_for_room_on_the_sliding_window() {
    let a = Arc::new(Scripted::new("a"));
    let limited = config("a").with_rate_limit(RateLimit::default().with_rpm(2));
    let manager = manager(&[(&a, limited)], ManagerSettings::default());
    let started = tokio::time::Instant::now();
    for _ in 0..3 {
        manager
            .query_with_fallback("hi", QueryOptions::new())
            .await
            .unwrap();
    }
    // The third waited until the first left the minute.
    assert!(
        started.elapsed() >= Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(a.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_wait_that_would_pass_the_deadline_falls_back_instead() {
    let a = Arc::new(Scripted::new("a"));
    let b = Arc::new(Scripted::new("b"));
    let limited = config("a").with_rate_limit(RateLimit::default().with_rpm(1));
    let manager = manager(
        &[(&a, limited), (&b, config("b"))],
        ManagerSettings::default(),
    );
    manager
        .query_with_fallback("hi", QueryOptions::new())
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let response = manager
        .query_with_fallback("hi", QueryOptions::new().deadline(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(response.provider, "b");
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "no wait it could not finish"
    );
    let skipped = &response.attempts[0];
    assert_eq!(skipped.outcome.label(), "skipped");
}

#[tokio::test]
async fn requests_at_once_and_fallback_on_limit() {
    let a = Arc::new(Scripted::new("a").delay_by_prompt());
    let b = Arc::new(Scripted::new("b"));
    let limited = config("a").with_rate_limit(
        RateLimit::default()
            .with_max_concurrent(1)
            .with_on_limit(OnLimit::Fallback),
    );
    let manager = manager(
        &[(&a, limited), (&b, config("b"))],
        ManagerSettings::default(),
    );
    let (first, second) = tokio::join!(
        manager.query_with_fallback("x", QueryOptions::new()),
        manager.query_with_fallback("y", QueryOptions::new()),
    );
    let providers = [first.unwrap().provider, second.unwrap().provider];
    assert!(providers.contains(&"a".to_owned()) && providers.contains(&"b".to_owned()));
    assert_eq!(a.calls(), 1);
    // Room again once the first ended.
    let third = manager
        .query_with_fallback("z", QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(third.provider, "a");
}

#[tokio::test(start_paused = true)]
async fn tokens_per_minute_count_the_estimate_then_the_reported_usage() {
    let a = Arc::new(Scripted::new("a"));
    let b = Arc::new(Scripted::new("b"));
    let limited = config("a").with_rate_limit(
        RateLimit::default()
            .with_tpm(100)
            .with_on_limit(OnLimit::Fallback),
    );
    let manager = manager(
        &[(&a, limited), (&b, config("b"))],
        ManagerSettings::default(),
    );
    let options = || QueryOptions::new().generation(GenerationOptions::default().max_tokens(60));
    // Each takes its estimate (1 prompt + 60 tokens), corrected to the reported 7 when it
    // ends: three in a row fit (7 + 7 + 61), though three estimates (183) would not.
    for _ in 0..3 {
        let response = manager.query_with_fallback("hi", options()).await.unwrap();
        assert_eq!(response.provider, "a");
    }
    let large = QueryOptions::new().generation(GenerationOptions::default().max_tokens(90));
    let response = manager.query_with_fallback("hi", large).await.unwrap();
    assert_eq!(response.provider, "b", "21 used + 91 estimated is over 100");
}

#[test]
fn budgets_are_validated_with_pointers() {
    let document = serde_json::json!({
        "providers": [{"name": "local", "type": "mock"}],
        "budgets": [
            {"scope": "team:a", "limit_usd": 1},
            {"scope": "provider:nope", "limit_usd": 1},
            {"scope": "global", "limit_usd": -1, "window": "day"},
            {"scope": "global", "limit_usd": 1, "window": "week"},
        ]
    });
    let error = Registry::discover()
        .unwrap()
        .load(&document.to_string(), ConfigOrigin::Inline)
        .unwrap_err()
        .to_string();
    assert!(error.contains("/budgets/3/window"), "{error}");
    let document = serde_json::json!({
        "providers": [{"name": "local", "type": "mock"}],
        "budgets": [
            {"scope": "team:a", "limit_usd": 1},
            {"scope": "provider:nope", "limit_usd": 1},
            {"scope": "global", "limit_usd": -1, "window": "day"},
        ]
    });
    let error = Registry::discover()
        .unwrap()
        .load(&document.to_string(), ConfigOrigin::Inline)
        .unwrap_err()
        .to_string();
    for expected in [
        "/budgets/0/scope",
        "`team` is not a kind of budget scope",
        "/budgets/1/scope",
        "`nope` is not a provider instance",
        "/budgets/2/limit_usd",
    ] {
        assert!(error.contains(expected), "{expected:?} in {error}");
    }
}
