//! The response cache and in-flight deduplication: what is cached and for whom, what a hit
//! costs and counts, streams replayed and stored, and identical requests in flight sharing one
//! call.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{Delta, Scripted, Step, config, manager};
use fazztv_core::{
    AttemptOutcome, ChatRequest, ChatResponse, Cost, ErrorKind, GenerationOptions, StreamEvent,
    assemble,
};
use fazztv_manager::{
    CacheMode, CachePolicy, ConfigOrigin, ManagerSettings, ProviderManager, QueryOptions, Registry,
};
use futures::StreamExt;
use futures::future::join_all;
use {
    criterion as _, fazztv_provider_mock as _, fazztv_testkit as _, insta as _, jsonschema as _,
    moka as _, proptest as _, regex as _, schemars as _, serde as _, sha2 as _, thiserror as _,
    tracing as _,
};

/// A request at temperature 0: cached by default.
fn deterministic(prompt: &str) -> ChatRequest {
    ChatRequest::from_prompt(prompt).with_options(GenerationOptions::default().temperature(0.0))
}

fn one(name: &str) -> (Arc<Scripted>, ProviderManager) {
    let provider = Arc::new(Scripted::new(name));
    // A request naming a model goes only where it is known to be served.
    let config = config(name).with_models(["a-large", "a-small"]);
    let manager = manager(&[(&provider, config)], ManagerSettings::default());
    (provider, manager)
}

/// Asserts that `answer` was served without asking a provider.
fn assert_served(answer: &ChatResponse, provider: &str) {
    assert!(answer.cached, "{answer:?}");
    assert_eq!(answer.cost, Some(Cost::not_billed()));
    let cost = answer.cost.as_ref().unwrap();
    assert_eq!(
        (cost.usd, &cost.source, cost.estimated),
        (Some(0.0), &None, false)
    );
    assert_eq!(answer.attempts.len(), 1, "{:?}", answer.attempts);
    let attempt = &answer.attempts[0];
    assert!(attempt.cached);
    assert_eq!(attempt.provider, provider);
    assert_eq!(attempt.outcome, AttemptOutcome::Ok);
    assert_eq!(attempt.cost, Some(Cost::not_billed()));
}

#[tokio::test]
async fn a_deterministic_repeat_is_served_from_the_cache_at_no_cost() {
    let (a, manager) = one("a");
    let first = manager
        .chat(deterministic("hi"), QueryOptions::new())
        .await
        .unwrap();
    assert!(!first.cached);
    let second = manager
        .chat(deterministic("hi"), QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(a.calls(), 1);
    assert_eq!(second.content, first.content);
    assert_eq!(second.usage, first.usage);
    assert_served(&second, "a");
    // A seed makes a request deterministic too.
    let seeded = || {
        let mut request = ChatRequest::from_prompt("hi");
        request.options.seed = Some(7);
        request
    };
    manager.chat(seeded(), QueryOptions::new()).await.unwrap();
    let again = manager.chat(seeded(), QueryOptions::new()).await.unwrap();
    assert_served(&again, "a");
    assert_eq!(
        a.calls(),
        2,
        "the seeded request is not the temperature-0 one"
    );
}

#[tokio::test]
async fn a_hit_is_never_counted_as_a_provider_request() {
    let (a, manager) = one("a");
    for _ in 0..3 {
        manager
            .chat(deterministic("hi"), QueryOptions::new())
            .await
            .unwrap();
    }
    assert_eq!(a.calls(), 1);
    let stats = manager.get_usage_stats();
    assert_eq!((stats.cache_hits, stats.cache_misses), (2, 1));
    assert_eq!(stats.request_counts["a"], 1);
    assert_eq!(stats.providers["a"].requests, 1);
    assert_eq!(
        stats.providers["a"].prompt_tokens, 3,
        "tokens of the one call"
    );
    assert_eq!(
        (stats.total_requests, stats.successful_requests),
        (3, 3),
        "hits are requests, answered"
    );
}

#[tokio::test]
async fn requests_that_sample_are_not_cached_unless_the_policy_says_so() {
    let (a, manager) = one("a");
    for _ in 0..2 {
        let answer = manager.query_with_fallback("hi", QueryOptions::new()).await;
        assert!(!answer.unwrap().cached);
    }
    assert_eq!(a.calls(), 2, "an omitted temperature samples");
    let stats = manager.get_usage_stats();
    assert_eq!((stats.cache_hits, stats.cache_misses), (0, 0));
    // The caller asked for the cache: whatever the request is.
    let always = || QueryOptions::new().cache(CachePolicy::always());
    manager.query_with_fallback("hi", always()).await.unwrap();
    let answer = manager.query_with_fallback("hi", always()).await.unwrap();
    assert_served(&answer, "a");
    assert_eq!(a.calls(), 3);
}

#[tokio::test]
async fn the_cache_can_be_off_read_only_or_write_only_per_request() {
    let (a, manager) = one("a");
    let with = |mode| QueryOptions::new().cache(CachePolicy::new(mode));
    let ask = |mode| manager.chat(deterministic("hi"), with(mode));
    // Off: neither looked up nor stored.
    ask(CacheMode::Off).await.unwrap();
    // Read only: looked up (nothing there), not stored.
    assert!(!ask(CacheMode::ReadOnly).await.unwrap().cached);
    assert!(!ask(CacheMode::ReadOnly).await.unwrap().cached);
    assert_eq!(a.calls(), 3);
    // Write only: stored, never looked up.
    assert!(!ask(CacheMode::WriteOnly).await.unwrap().cached);
    assert!(!ask(CacheMode::WriteOnly).await.unwrap().cached);
    assert_eq!(a.calls(), 5);
    assert_served(&ask(CacheMode::ReadOnly).await.unwrap(), "a");
    assert!(!ask(CacheMode::Off).await.unwrap().cached);
    assert_served(&ask(CacheMode::On).await.unwrap(), "a");
    assert_eq!(a.calls(), 6);
}

#[tokio::test]
async fn errors_are_never_cached() {
    let a = Arc::new(Scripted::new("a").script([Step::Fail(ErrorKind::ServerError)]));
    let manager = manager(&[(&a, config("a"))], ManagerSettings::default());
    let failed = manager
        .chat(deterministic("hi"), QueryOptions::new())
        .await
        .unwrap_err();
    assert_eq!(failed.kind(), ErrorKind::ServerError);
    let answer = manager
        .chat(deterministic("hi"), QueryOptions::new())
        .await
        .unwrap();
    assert!(!answer.cached);
    assert_eq!(a.calls(), 2);
}

#[tokio::test]
async fn no_hit_across_tenants_models_or_differing_parameters() {
    let (a, manager) = one("a");
    let ask = |request: ChatRequest, options: QueryOptions| {
        let manager = &manager;
        async move { manager.chat(request, options).await.unwrap().cached }
    };
    let tenant = |name: &str| QueryOptions::new().key_name(name);
    assert!(!ask(deterministic("hi"), tenant("team-a")).await);
    assert!(!ask(deterministic("hi"), tenant("team-b")).await);
    assert!(!ask(deterministic("hi"), QueryOptions::new()).await);
    assert!(ask(deterministic("hi"), tenant("team-a")).await);
    let calls = a.calls();
    assert_eq!(calls, 3);
    // Differing only in max_tokens, an extra field, or the model.
    let mut limited = deterministic("hi");
    limited.options.max_tokens = Some(5);
    assert!(!ask(limited, QueryOptions::new()).await);
    let mut extra = deterministic("hi");
    extra.options.extra.insert("top_k".into(), 1.into());
    assert!(!ask(extra, QueryOptions::new()).await);
    assert!(!ask(deterministic("hi"), QueryOptions::new().model("a-large")).await);
    assert!(!ask(deterministic("hi"), QueryOptions::new().model("a-small")).await);
    assert!(ask(deterministic("hi"), QueryOptions::new().model("a-large")).await);
    assert_eq!(a.calls(), calls + 4);
}

#[tokio::test]
async fn a_fallback_answer_is_kept_for_its_own_provider_only() {
    let primary = Arc::new(Scripted::new("primary").script([Step::Fail(ErrorKind::ServerError)]));
    let backup = Arc::new(Scripted::new("backup"));
    let manager = manager(
        &[(&primary, config("primary")), (&backup, config("backup"))],
        ManagerSettings::default(),
    );
    let first = manager
        .chat(deterministic("hi"), QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(first.provider, "backup");
    // The primary is asked first again: the backup's answer is not its answer.
    let second = manager
        .chat(deterministic("hi"), QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(
        (second.provider.as_str(), second.cached),
        ("primary", false)
    );
    // A request that goes to the backup first gets the backup's.
    let third = manager
        .chat(
            deterministic("hi"),
            QueryOptions::new().preferred_provider("backup"),
        )
        .await
        .unwrap();
    assert_served(&third, "backup");
    assert_eq!(third.content, first.content);
    assert_eq!((primary.calls(), backup.calls()), (2, 1));
}

#[tokio::test(start_paused = true)]
async fn an_answer_expires_after_the_ttl() {
    let (a, manager) = one("a");
    let ask = || manager.chat(deterministic("hi"), QueryOptions::new());
    ask().await.unwrap();
    // The default TTL is an hour.
    tokio::time::advance(Duration::from_secs(3_599)).await;
    assert!(ask().await.unwrap().cached);
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(!ask().await.unwrap().cached);
    assert_eq!(a.calls(), 2);
}

/// Reads a stream to its end: its events, and whether each was an error.
async fn events(mut stream: fazztv_manager::ManagedStream) -> Vec<StreamEvent> {
    let mut events = Vec::new();
    while let Some(event) = stream.next().await {
        events.push(event.unwrap());
    }
    events
}

#[tokio::test]
async fn a_finished_stream_is_stored_and_replayed_as_a_stream() {
    let (a, manager) = one("a");
    let live = manager
        .chat_stream(deterministic("hi"), QueryOptions::new())
        .await
        .unwrap();
    assert!(!live.cached());
    let live_events = events(live).await;
    let replay = manager
        .chat_stream(deterministic("hi"), QueryOptions::new())
        .await
        .unwrap();
    assert!(replay.cached());
    assert_eq!(replay.provider(), "a");
    assert_eq!(replay.attempts().len(), 1);
    assert!(replay.attempts()[0].cached);
    assert_eq!(replay.cost(), Some(&Cost::not_billed()));
    let replayed = events(replay).await;
    assert_eq!(a.calls(), 1);
    let text = |events: &[StreamEvent]| -> String {
        events.iter().filter_map(StreamEvent::as_text).collect()
    };
    assert_eq!(text(&replayed), "a streamed");
    assert_eq!(text(&replayed), text(&live_events));
    let Some(StreamEvent::Finish { cost, usage, .. }) = replayed.last() else {
        panic!("ends with its finish: {replayed:?}");
    };
    assert_eq!(cost, &Some(Cost::not_billed()));
    assert!(usage.is_some());
    // The streamed answer serves a call too, and a call's answer a stream.
    let answer = manager
        .chat(deterministic("hi"), QueryOptions::new())
        .await
        .unwrap();
    assert_served(&answer, "a");
    assert_eq!(answer.content, "a streamed");
    manager
        .chat(deterministic("other"), QueryOptions::new())
        .await
        .unwrap();
    let stream = manager
        .chat_stream(deterministic("other"), QueryOptions::new())
        .await
        .unwrap();
    assert!(stream.cached());
    let replayed = assemble(Box::pin(stream), "a").await.unwrap();
    assert_eq!(replayed.content, "a says: other");
    assert_eq!(a.calls(), 2);
    let stats = manager.get_usage_stats();
    assert_eq!((stats.cache_hits, stats.cache_misses), (3, 2));
    assert_eq!(stats.request_counts["a"], 2);
    assert_eq!(stats.cancelled_requests, 0);
}

#[tokio::test]
async fn a_stream_cut_before_its_finish_is_not_stored() {
    let a = Arc::new(Scripted::new("a").script([Step::Stream {
        deltas: vec![Delta::Text("part")],
        complete: false,
        error: None,
    }]));
    let manager = manager(&[(&a, config("a"))], ManagerSettings::default());
    let mut cut = manager
        .chat_stream(deterministic("hi"), QueryOptions::new())
        .await
        .unwrap();
    let mut failed = false;
    while let Some(event) = cut.next().await {
        failed |= event.is_err();
    }
    assert!(failed);
    let next = manager
        .chat_stream(deterministic("hi"), QueryOptions::new())
        .await
        .unwrap();
    assert!(!next.cached());
    // Nor is a stream dropped midway.
    drop(next);
    let after = manager
        .chat_stream(deterministic("hi"), QueryOptions::new())
        .await
        .unwrap();
    assert!(!after.cached());
    assert_eq!(a.calls(), 3);
}

#[tokio::test]
async fn a_hundred_identical_concurrent_requests_make_one_upstream_call() {
    // Read only, so that every answer but the first comes from the shared call, not the store.
    let (a, manager) = one("a");
    let options = QueryOptions::new().cache(CachePolicy::new(CacheMode::ReadOnly));
    let answers =
        join_all((0..100).map(|_| manager.chat(deterministic("hi"), options.clone()))).await;
    assert_eq!(a.calls(), 1);
    let answers: Vec<ChatResponse> = answers.into_iter().map(Result::unwrap).collect();
    assert!(answers.iter().all(|answer| answer.content == "a says: hi"));
    let sent: Vec<&ChatResponse> = answers.iter().filter(|answer| !answer.cached).collect();
    assert_eq!(sent.len(), 1, "one answer was asked for");
    assert!(sent[0].cost.as_ref().is_some_and(|cost| !cost.estimated));
    for answer in answers.iter().filter(|answer| answer.cached) {
        assert_served(answer, "a");
    }
    let stats = manager.get_usage_stats();
    assert_eq!((stats.cache_hits, stats.cache_misses), (99, 1));
    assert_eq!(stats.request_counts["a"], 1);
    assert_eq!(
        (stats.total_requests, stats.successful_requests),
        (100, 100)
    );
    // The flight is over: the next identical request sends again.
    manager.chat(deterministic("hi"), options).await.unwrap();
    assert_eq!(a.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn cancelling_one_waiter_does_not_cancel_the_others() {
    // Each call takes a while (shorter prompts longer).
    let a = Arc::new(Scripted::new("a").delay_by_prompt());
    let manager = manager(&[(&a, config("a"))], ManagerSettings::default());
    let ask = || Box::pin(manager.chat(deterministic("x"), QueryOptions::new()));
    let (mut sender, mut waiter, other) = (ask(), ask(), ask());
    assert!(futures::poll!(sender.as_mut()).is_pending());
    assert!(futures::poll!(waiter.as_mut()).is_pending());
    // The call is under way when the request that sent it is dropped.
    until(|| a.in_flight.load(Ordering::SeqCst) == 1).await;
    drop(sender);
    let (waited, other) = tokio::join!(waiter, other);
    assert_eq!(waited.unwrap().content, "a says: x");
    assert_eq!(other.unwrap().content, "a says: x");
    assert_eq!(a.calls(), 1);
    assert_eq!(manager.get_usage_stats().cancelled_requests, 0);
}

#[tokio::test(start_paused = true)]
async fn cancelling_every_waiter_cancels_the_call() {
    let a = Arc::new(Scripted::new("a").delay_by_prompt());
    let manager = manager(&[(&a, config("a"))], ManagerSettings::default());
    let ask = || Box::pin(manager.chat(deterministic("x"), QueryOptions::new()));
    let (mut first, mut second) = (ask(), ask());
    assert!(futures::poll!(first.as_mut()).is_pending());
    assert!(futures::poll!(second.as_mut()).is_pending());
    // The call is under way when both requests are dropped.
    until(|| a.in_flight.load(Ordering::SeqCst) == 1).await;
    drop((first, second));
    // Its task sees the abort and reports the cancellation.
    until(|| manager.get_usage_stats().cancelled_requests == 1).await;
    let stats = manager.get_usage_stats();
    assert_eq!(stats.cancelled_requests, 1, "{stats:?}");
    assert_eq!(stats.successful_requests, 0);
    // Nothing was stored, and nothing is left in flight: the next request sends anew.
    let answer = manager
        .chat(deterministic("x"), QueryOptions::new())
        .await
        .unwrap();
    assert!(!answer.cached);
    // The scripted provider counts a call when it answers: the cancelled one never did.
    assert_eq!(a.calls(), 1);
}

#[tokio::test]
async fn a_failing_shared_call_gives_every_waiter_the_same_error_and_is_not_cached() {
    let a = Arc::new(Scripted::new("a").script([Step::Fail(ErrorKind::ServerError)]));
    let manager = manager(&[(&a, config("a"))], ManagerSettings::default());
    let results =
        join_all((0..10).map(|_| manager.chat(deterministic("hi"), QueryOptions::new()))).await;
    assert_eq!(a.calls(), 1);
    let errors: Vec<fazztv_core::Error> = results.into_iter().map(Result::unwrap_err).collect();
    for error in &errors {
        assert_eq!(error.kind(), ErrorKind::ServerError);
        assert_eq!(error.to_string(), errors[0].to_string());
        assert_eq!(error.attempts(), errors[0].attempts());
    }
    let stats = manager.get_usage_stats();
    assert_eq!((stats.cache_hits, stats.cache_misses), (0, 10));
    assert_eq!((stats.total_requests, stats.failed_requests), (10, 10));
    assert_eq!(stats.request_counts["a"], 1);
    let answer = manager
        .chat(deterministic("hi"), QueryOptions::new())
        .await
        .unwrap();
    assert!(!answer.cached);
    assert_eq!(a.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_waiter_still_ends_at_its_own_deadline() {
    let a = Arc::new(Scripted::new("a").delay_by_prompt());
    let manager = manager(&[(&a, config("a"))], ManagerSettings::default());
    let sender = manager.chat(deterministic("x"), QueryOptions::new());
    let impatient = manager.chat(
        deterministic("x"),
        QueryOptions::new().deadline(Duration::from_millis(10)),
    );
    let (sent, waited) = tokio::join!(sender, impatient);
    assert_eq!(sent.unwrap().content, "a says: x");
    assert_eq!(waited.unwrap_err().kind(), ErrorKind::DeadlineExceeded);
    assert_eq!(a.calls(), 1);
    let stats = manager.get_usage_stats();
    assert_eq!(
        (
            stats.total_requests,
            stats.successful_requests,
            stats.failed_requests
        ),
        (2, 1, 1)
    );
}

/// A configuration of one mock provider whose replies count its calls, with `cache`.
fn mock_config(cache: serde_json::Value) -> String {
    serde_json::json!({
        "providers": [{"name": "local", "type": "mock", "options": {"reply": "#{call}"}}],
        "cache": cache,
    })
    .to_string()
}

#[tokio::test]
async fn the_configured_cache_reaches_the_manager() {
    let mut registry = Registry::discover().unwrap();
    registry
        .load(
            &mock_config(serde_json::json!({"mode": "off", "ttl_s": 60})),
            ConfigOrigin::Inline,
        )
        .unwrap();
    let cache = registry.cache();
    assert_eq!(
        (cache.mode, cache.ttl_s, cache.max_entries),
        (CacheMode::Off, 60, 1000)
    );
    let manager = ProviderManager::new(registry, ManagerSettings::default());
    let mut replies = Vec::new();
    for _ in 0..2 {
        let answer = manager
            .chat(deterministic("hi"), QueryOptions::new())
            .await
            .unwrap();
        replies.push(answer.content);
    }
    assert_eq!(replies, ["#1", "#2"], "the cache is off");
    let error = Registry::discover()
        .unwrap()
        .load(
            &mock_config(serde_json::json!({"mode": "sometimes", "ttl": 5, "max_entries": 0})),
            ConfigOrigin::Inline,
        )
        .unwrap_err()
        .to_string();
    for expected in ["/cache/mode", "ttl", "/cache/max_entries"] {
        assert!(error.contains(expected), "{expected:?} in {error}");
    }
}

/// Lets other tasks run until `done` holds: an explicit signal instead of a sleep. Panics
/// after many rounds, so that a regression fails rather than hangs.
async fn until(done: impl Fn() -> bool) {
    for _ in 0..10_000 {
        if done() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("the awaited condition never came true");
}
