//! Chat and query: templates, models, latency and scripted failures.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use fazztv_core::{
    ChatMessage, ChatRequest, ErrorKind, FinishReason, GenerationOptions, Provider, ProviderConfig,
    Usage,
};
use fazztv_provider_mock::{MockFailures, MockModel, MockOptions, MockProvider};
use futures as _;
use insta as _;
use schemars as _;
use serde as _;
use serde_json as _;

fn mock(options: MockOptions) -> MockProvider {
    MockProvider::new(ProviderConfig::new("mock-test").with_type("mock"), options)
}

fn model(name: &str) -> GenerationOptions {
    GenerationOptions::with_model(name)
}

#[tokio::test]
async fn default_reply_echoes_the_prompt_with_usage_and_request_id() {
    let provider = mock(MockOptions::default());
    let response = provider
        .query("hello world", GenerationOptions::default())
        .await
        .unwrap();
    assert_eq!(response.content, "Mock response to: hello world");
    assert_eq!(response.model, "mock-1");
    assert_eq!(response.provider, "mock-test");
    assert_eq!(response.finish_reason, Some(FinishReason::Stop));
    assert_eq!(response.usage, Some(Usage::new(2, 5)));
    assert_eq!(response.request_id.as_deref(), Some("mock-1"));
    assert_eq!(provider.calls(), 1);
}

#[tokio::test]
async fn template_substitutes_every_placeholder_in_one_pass() {
    let provider = mock(MockOptions::default().reply("{provider}|{model}|{call}|{prompt} {x}"));
    let request = ChatRequest::new(vec![
        ChatMessage::system("be terse"),
        ChatMessage::user("first question"),
        ChatMessage::assistant("ok"),
        ChatMessage::user("echo {model}"),
    ])
    .with_options(model("big-model"));
    let first = provider.chat(request.clone()).await.unwrap();
    assert_eq!(first.content, "mock-test|big-model|1|echo {model} {x}");
    // Prompt words count every message: 2 + 2 + 1 + 2.
    assert_eq!(first.usage, Some(Usage::new(7, 3)));
    let second = provider.chat(request).await.unwrap();
    assert_eq!(second.content, "mock-test|big-model|2|echo {model} {x}");
}

#[tokio::test]
async fn prompt_is_empty_without_a_user_message() {
    let provider = mock(MockOptions::default().reply("[{prompt}]"));
    let response = provider
        .chat(ChatRequest::new(vec![ChatMessage::system("rules")]))
        .await
        .unwrap();
    assert_eq!(response.content, "[]");
    assert_eq!(response.usage, Some(Usage::new(1, 1)));
}

#[tokio::test]
async fn requests_without_a_model_use_the_configured_default() {
    let config = ProviderConfig::new("m")
        .with_type("mock")
        .with_default_model("configured");
    let provider = MockProvider::new(config, MockOptions::default().reply("{model}"));
    let response = provider.query("hi", Default::default()).await.unwrap();
    assert_eq!(
        (response.content.as_str(), response.model.as_str()),
        ("configured", "configured")
    );
}

#[tokio::test]
async fn without_advertised_models_any_model_is_accepted() {
    let provider = mock(MockOptions::default());
    let response = provider
        .query("hi", model("anything/at-all"))
        .await
        .unwrap();
    assert_eq!(response.model, "anything/at-all");
}

#[tokio::test]
async fn unadvertised_models_are_not_found() {
    let provider = mock(
        MockOptions::default()
            .model(MockModel::new("small"))
            .model(MockModel::new("large")),
    );
    assert_eq!(
        provider
            .query("hi", Default::default())
            .await
            .unwrap()
            .model,
        "small"
    );
    assert_eq!(
        provider.query("hi", model("large")).await.unwrap().model,
        "large"
    );

    let error = provider.query("hi", model("huge")).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ModelNotFound);
    assert_eq!(error.provider(), Some("mock-test"));
    assert_eq!(
        error.message(),
        "model `huge` is not offered by this mock provider; it offers: small, large \
         (add it to `options.models` or pull it)"
    );
    assert_eq!(
        provider.calls(),
        3,
        "a model-not-found request is still a call"
    );
}

#[tokio::test(start_paused = true)]
async fn latency_delays_every_answer_exactly() {
    let provider = mock(MockOptions::default().latency_ms(1_500));
    let start = tokio::time::Instant::now();
    let early = tokio::time::timeout(
        Duration::from_millis(1_499),
        provider.query("hi", Default::default()),
    )
    .await;
    assert!(early.is_err(), "answered before the latency elapsed");

    let start_second = tokio::time::Instant::now();
    provider.query("hi", Default::default()).await.unwrap();
    assert_eq!(start_second.elapsed(), Duration::from_millis(1_500));
    assert_eq!(start.elapsed(), Duration::from_millis(2_999));
    assert_eq!(provider.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn scripted_failures_also_wait_for_the_latency() {
    let provider = mock(MockOptions::default().latency_ms(200).fail_first(1));
    let start = tokio::time::Instant::now();
    provider.query("hi", Default::default()).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_millis(200));
}

#[tokio::test]
async fn fails_the_first_calls_then_answers() {
    let provider = mock(
        MockOptions::default()
            .fail_first(2)
            .failure_kind(ErrorKind::Overloaded)
            .failure_message("down for maintenance"),
    );
    for call in 1..=2 {
        let error = provider.query("hi", Default::default()).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Overloaded, "call {call}");
        assert_eq!(error.message(), "down for maintenance");
        assert_eq!(error.provider(), Some("mock-test"));
        assert_eq!(error.retry_after(), None);
        assert_eq!(
            error.to_string(),
            "mock-test: overloaded: down for maintenance"
        );
    }
    let response = provider.query("hi", Default::default()).await.unwrap();
    assert_eq!(response.request_id.as_deref(), Some("mock-3"));
    assert_eq!(provider.calls(), 3);
}

#[tokio::test]
async fn default_failure_is_a_server_error() {
    let provider = mock(MockOptions::default().fail_first(1));
    let error = provider.query("hi", Default::default()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ServerError);
    assert_eq!(error.message(), "simulated failure");
}

#[tokio::test]
async fn rate_limited_failures_ask_to_wait_one_second() {
    let provider = mock(
        MockOptions::default()
            .fail_first(1)
            .failure_kind(ErrorKind::RateLimited),
    );
    let error = provider.query("hi", Default::default()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RateLimited);
    assert_eq!(error.retry_after(), Some(Duration::from_secs(1)));
}

/// The documented formula, written out independently of the crate.
fn documented_fails(first: u64, rate: f64, seed: u64, call: u64) -> bool {
    let mut z = seed.wrapping_add(call).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    call <= first || ((z >> 11) as f64 / 9_007_199_254_740_992.0) < rate
}

#[tokio::test]
async fn seeded_rate_fails_the_predicted_calls_and_about_that_fraction() {
    let provider = mock(MockOptions::default().fail_rate(0.3, 7));
    let mut failed = Vec::new();
    for call in 1..=1_000_u64 {
        let outcome = provider.query("hi", Default::default()).await;
        assert_eq!(
            outcome.is_err(),
            documented_fails(0, 0.3, 7, call),
            "call {call} disagrees with the documented formula"
        );
        assert_eq!(outcome.is_err(), provider.options().failures.fails(call));
        if outcome.is_err() {
            failed.push(call);
        }
    }
    assert!(
        (250..=350).contains(&failed.len()),
        "{} of 1000 calls failed at rate 0.3",
        failed.len()
    );

    // The same seed fails the same calls; another seed fails others.
    let mut failures = MockFailures::default();
    failures.rate = 0.3;
    failures.seed = 7;
    let again: Vec<u64> = (1..=1_000).filter(|call| failures.fails(*call)).collect();
    assert_eq!(again, failed);
    failures.seed = 8;
    let other: Vec<u64> = (1..=1_000).filter(|call| failures.fails(*call)).collect();
    assert_ne!(other, failed);
}

#[test]
fn rate_extremes_and_first_combine() {
    let mut failures = MockFailures::default();
    assert!(
        (1..=1_000).all(|call| !failures.fails(call)),
        "defaults never fail"
    );
    failures.rate = 1.0;
    assert!((1..=1_000).all(|call| failures.fails(call)));
    failures.rate = 0.5;
    failures.first = 3;
    assert!((1..=3).all(|call| failures.fails(call)));
    assert!((4..=1_000).all(|call| failures.fails(call) == documented_fails(3, 0.5, 0, call)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_get_distinct_numbers() {
    let provider = Arc::new(mock(MockOptions::default().reply("{call}")));
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let provider = Arc::clone(&provider);
            tokio::spawn(async move { provider.query("hi", Default::default()).await })
        })
        .collect();
    let mut numbers = BTreeSet::new();
    for task in tasks {
        let response = task.await.unwrap().unwrap();
        assert_eq!(
            response.request_id,
            Some(format!("mock-{}", response.content))
        );
        numbers.insert(response.content.parse::<u64>().unwrap());
    }
    assert_eq!(numbers, (1..=200).collect::<BTreeSet<_>>());
    assert_eq!(provider.calls(), 200);
}
