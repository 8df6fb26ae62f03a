//! ProviderManager behaviour: fallback, commit point, load balancing, stats, batch, compare,
//! selection.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::{Delta, Scripted, Step, config, manager, outcomes, priced, retrying, texts};
use fazztv_core::{ErrorKind, ModelCapability, StreamEvent};
use fazztv_manager::{HealthSettings, ManagerSettings, ProviderManager, QueryOptions};
use futures::StreamExt;
use {
    criterion as _, fazztv_provider_mock as _, fazztv_testkit as _, insta as _, jsonschema as _,
    moka as _, proptest as _, regex as _, schemars as _, serde as _, serde_json as _, sha2 as _,
    thiserror as _, tracing as _,
};

/// A manager over `a` then `b`, each under its own name, with default settings.
fn a_then_b(a: &Arc<Scripted>, b: &Arc<Scripted>) -> ProviderManager {
    manager(
        &[(a, config("a")), (b, config("b"))],
        ManagerSettings::default(),
    )
}

/// A request that offers one tool, so it needs `tool_calling`.
fn weather_request() -> fazztv_core::ChatRequest {
    fazztv_core::ChatRequest::from_prompt("weather?").with_tool(fazztv_core::Tool::new(
        "get_weather",
        serde_json::json!({"type": "object"}),
    ))
}

/// The provider that answers a plain query with fallback.
async fn answered_by(m: &ProviderManager) -> String {
    m.query_with_fallback("x", QueryOptions::new())
        .await
        .unwrap()
        .provider
}

/// Expected attempts that are all first tries (no retry).
fn pairs(list: &[(&str, &str)]) -> Vec<(String, String, u32)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string(), 0))
        .collect()
}

#[tokio::test]
async fn falls_back_in_configured_order_and_reports_every_attempt() {
    let a = Arc::new(Scripted::new("a").script([Step::Fail(ErrorKind::ServerError)]));
    let b = Arc::new(Scripted::new("b").script([Step::Fail(ErrorKind::RateLimited)]));
    let c = Arc::new(Scripted::new("c"));
    let m = manager(
        &[(&a, config("a")), (&b, config("b")), (&c, config("c"))],
        ManagerSettings::default(),
    );

    let response = m
        .query_with_fallback("hello", QueryOptions::new())
        .await
        .unwrap();

    assert_eq!(response.content, "c says: hello");
    assert_eq!(response.provider, "c");
    assert_eq!(
        outcomes(&response.attempts),
        pairs(&[("a", "server_error"), ("b", "rate_limited"), ("c", "ok")])
    );
    assert_eq!((a.calls(), b.calls(), c.calls()), (1, 1, 1));
    let stats = m.get_usage_stats();
    assert_eq!(stats.total_requests, 1);
    assert_eq!(stats.successful_requests, 1);
    assert_eq!(stats.fallbacks, 2);
    assert_eq!(
        stats.request_counts.values().copied().collect::<Vec<_>>(),
        [1, 1, 1]
    );
    assert_eq!(stats.providers["a"].errors[&ErrorKind::ServerError], 1);
    assert_eq!(stats.providers["c"].total_tokens, 7);
}

#[tokio::test]
async fn preferred_provider_goes_first_and_fallback_keeps_its_model() {
    let a = Arc::new(Scripted::new("a"));
    let b = Arc::new(Scripted::new("b").script([
        Step::Fail(ErrorKind::Overloaded),
        Step::Fail(ErrorKind::Overloaded),
    ]));
    let c = Arc::new(Scripted::new("c"));
    let m = manager(
        &[
            (&a, config("a")),
            (&b, config("b")),
            (&c, config("c").with_models(["b-large"])),
        ],
        ManagerSettings::default(),
    );

    let options = QueryOptions::new().preferred_provider("b").model("b-large");
    let response = m.query_with_fallback("x", options.clone()).await.unwrap();

    // `a` does not list `b-large`: it is never sent it, nor asked for its own default model.
    assert_eq!(
        outcomes(&response.attempts),
        pairs(&[("a", "skipped"), ("b", "overloaded"), ("c", "ok")])
    );
    assert_eq!(a.calls(), 0);
    assert_eq!(
        *b.last_model.lock().unwrap(),
        Some(Some("b-large".to_owned()))
    );
    assert_eq!(
        *c.last_model.lock().unwrap(),
        Some(Some("b-large".to_owned()))
    );
    // Attempts not answered name the model asked for (the answer names the one used).
    assert_eq!(response.attempts[0].model.as_deref(), Some("b-large"));
    assert_eq!(response.attempts[1].model.as_deref(), Some("b-large"));

    // The preferred provider's own name as a prefix reads as its model.
    let prefixed = QueryOptions::new()
        .preferred_provider("c")
        .model("c/b-large");
    let response = m.query_with_fallback("x", prefixed).await.unwrap();
    assert_eq!(response.provider, "c");
    assert_eq!(
        *c.last_model.lock().unwrap(),
        Some(Some("b-large".to_owned()))
    );
}

#[tokio::test]
async fn priority_orders_fallback_and_unknown_preferred_provider_is_a_clear_error() {
    let a = Arc::new(Scripted::new("a"));
    let b = Arc::new(Scripted::new("b"));
    let m = manager(
        &[
            (&a, config("a").with_priority(5)),
            (&b, config("b").with_priority(1)),
        ],
        ManagerSettings::default(),
    );
    assert_eq!(answered_by(&m).await, "b");

    let error = m
        .query_with_fallback("x", QueryOptions::new().preferred_provider("zz"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Configuration);
    assert_eq!(
        error.message(),
        "unknown provider `zz`; configured providers: a, b"
    );
}

#[tokio::test]
async fn falls_back_exactly_on_fallback_worthy_kinds() {
    for &kind in ErrorKind::ALL {
        let a = Arc::new(Scripted::new("a").script([Step::Fail(kind)]));
        let b = Arc::new(Scripted::new("b"));
        let m = a_then_b(&a, &b);
        let result = m.query_with_fallback("x", QueryOptions::new()).await;
        if kind.should_fallback() {
            assert_eq!(result.unwrap().provider, "b", "{kind} should fall back");
        } else {
            let error = result.unwrap_err();
            assert_eq!(error.kind(), kind, "{kind} must be returned as is");
            assert_eq!(b.calls(), 0, "{kind} must not reach the next provider");
            assert_eq!(outcomes(error.attempts()), pairs(&[("a", kind.as_str())]));
        }
    }
}

#[tokio::test]
async fn fallback_disabled_means_exactly_one_attempt() {
    let a = Arc::new(Scripted::new("a").script([Step::Fail(ErrorKind::ServerError)]));
    let b = Arc::new(Scripted::new("b"));
    let m = manager(
        &[(&a, config("a")), (&b, config("b"))],
        ManagerSettings::default().with_fallback(false),
    );

    let error = m
        .query_with_fallback("x", QueryOptions::new())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ServerError);
    assert_eq!(error.provider(), Some("a"));
    assert_eq!(b.calls(), 0);

    // And per request, overriding an enabled default.
    let m = a_then_b(&a, &b);
    a.script
        .lock()
        .unwrap()
        .push_back(Step::Fail(ErrorKind::ServerError));
    let error = m
        .query_with_fallback("x", QueryOptions::new().fallback(false))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ServerError);
    assert_eq!(b.calls(), 0);
}

#[tokio::test]
async fn when_all_fail_one_error_lists_every_attempt() {
    let a = Arc::new(Scripted::new("a").script([Step::Fail(ErrorKind::Authentication)]));
    let b = Arc::new(Scripted::new("b").script([Step::Fail(ErrorKind::Network)]));
    let m = a_then_b(&a, &b);

    let error = m
        .query_with_fallback("x", QueryOptions::new())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AllProvidersFailed);
    assert_eq!(
        error.to_string(),
        "all_providers_failed: every provider failed\n  - a: authentication: scripted authentication\n  - b: network: scripted network"
    );
    let stats = m.get_usage_stats();
    assert_eq!(
        (stats.total_requests, stats.failed_requests, stats.fallbacks),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn providers_lacking_the_capability_are_not_tried() {
    let a = Arc::new(Scripted::new("a"));
    let b = Arc::new(Scripted::new("b"));
    let coder =
        config("b").with_capabilities([ModelCapability::CodeGeneration, ModelCapability::Chat]);
    let m = manager(
        &[(&a, config("a")), (&b, coder)],
        ManagerSettings::default(),
    );
    let response = m
        .query_with_fallback(
            "x",
            QueryOptions::new().capability(ModelCapability::CodeGeneration),
        )
        .await
        .unwrap();
    assert_eq!(response.provider, "b");
    assert_eq!(a.calls(), 0);

    let error = m
        .query_with_fallback(
            "x",
            QueryOptions::new().capability(ModelCapability::VideoGeneration),
        )
        .await
        .unwrap_err();
    assert_eq!(
        error.message(),
        "no enabled provider offers video_generation; configured providers: a, b"
    );
}

#[tokio::test]
async fn stream_falls_back_before_the_first_content_chunk() {
    let a = Arc::new(Scripted::new("a").script([Step::Stream {
        deltas: texts(&[]),
        complete: false,
        error: Some(ErrorKind::Overloaded),
    }]));
    let b = Arc::new(Scripted::new("b"));
    let m = a_then_b(&a, &b);

    let stream = m
        .query_stream_with_fallback("x", QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(stream.provider(), "b");
    assert_eq!(
        outcomes(stream.attempts()),
        pairs(&[("a", "overloaded"), ("b", "ok")])
    );
    let events: Vec<StreamEvent> = stream.map(|event| event.unwrap()).collect().await;
    let text: String = events.iter().filter_map(StreamEvent::as_text).collect();
    assert_eq!(text, "b streamed");
    assert!(events.last().unwrap().is_finish());
    let stats = m.get_usage_stats();
    assert_eq!(
        (
            stats.total_requests,
            stats.successful_requests,
            stats.fallbacks
        ),
        (1, 1, 1)
    );
    assert_eq!(stats.providers["b"].total_tokens, 4);
}

#[tokio::test]
async fn truncated_stream_before_output_also_falls_back() {
    let a = Arc::new(Scripted::new("a").script([Step::Stream {
        deltas: texts(&[]),
        complete: false,
        error: None,
    }]));
    let b = Arc::new(Scripted::new("b"));
    let m = a_then_b(&a, &b);
    let stream = m
        .query_stream_with_fallback("x", QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(
        outcomes(stream.attempts()),
        pairs(&[("a", "stream_interrupted"), ("b", "ok")])
    );
}

#[tokio::test]
async fn after_the_first_content_a_failure_interrupts_and_never_splices() {
    let a = Arc::new(Scripted::new("a").script([Step::Stream {
        deltas: texts(&["Hel", "lo"]),
        complete: false,
        error: Some(ErrorKind::Network),
    }]));
    let b = Arc::new(Scripted::new("b"));
    let m = a_then_b(&a, &b);

    let items: Vec<_> = m
        .query_stream_with_fallback("x", QueryOptions::new())
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(items.len(), 3);
    assert_eq!(items[0].as_ref().unwrap(), &StreamEvent::text("Hel"));
    assert_eq!(items[1].as_ref().unwrap(), &StreamEvent::text("lo"));
    let error = items[2].as_ref().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::StreamInterrupted);
    assert_eq!(error.provider(), Some("a"));
    assert!(error.message().contains("network"), "{error}");
    assert_eq!(
        b.calls(),
        0,
        "no other provider may be asked once output began"
    );
    let stats = m.get_usage_stats();
    assert_eq!((stats.successful_requests, stats.failed_requests), (0, 1));
    assert_eq!(stats.providers["a"].interrupted_streams, 1);
    assert_eq!(stats.providers["a"].responses_without_usage, 1);
    assert_eq!(
        (
            stats.providers["a"].successes,
            stats.providers["a"].failures
        ),
        (0, 1)
    );
}

#[tokio::test]
async fn a_tool_call_or_reasoning_is_output_too_so_it_commits_the_stream() {
    for first in [
        Delta::ToolCall("get_weather"),
        Delta::Reasoning("Let me think."),
    ] {
        let a = Arc::new(Scripted::new("a").script([Step::Stream {
            deltas: vec![first.clone()],
            complete: false,
            error: Some(ErrorKind::Network),
        }]));
        let b = Arc::new(Scripted::new("b"));
        let m = a_then_b(&a, &b);
        let items: Vec<_> = m
            .query_stream_with_fallback("x", QueryOptions::new())
            .await
            .unwrap()
            .collect()
            .await;
        assert_eq!(items.len(), 2, "{first:?}: {items:?}");
        assert!(items[0].as_ref().unwrap().is_delta());
        assert_eq!(
            items[1].as_ref().unwrap_err().kind(),
            ErrorKind::StreamInterrupted
        );
        assert_eq!(
            b.calls(),
            0,
            "{first:?}: nothing may be spliced after output"
        );
    }
}

#[tokio::test]
async fn a_stream_that_just_stops_is_an_error_not_a_clean_end() {
    let a = Arc::new(Scripted::new("a").script([Step::Stream {
        deltas: texts(&["partial"]),
        complete: false,
        error: None,
    }]));
    let m = manager(&[(&a, config("a"))], ManagerSettings::default());
    let items: Vec<_> = m
        .query_stream_with_fallback("x", QueryOptions::new())
        .await
        .unwrap()
        .collect()
        .await;
    assert_eq!(items.len(), 2);
    assert_eq!(
        items[1].as_ref().unwrap_err().kind(),
        ErrorKind::StreamInterrupted
    );
}

#[tokio::test]
async fn dropping_a_stream_early_counts_as_cancelled() {
    let a = Arc::new(Scripted::new("a").script([Step::Stream {
        deltas: texts(&["one", "two"]),
        complete: true,
        error: None,
    }]));
    let m = manager(&[(&a, config("a"))], ManagerSettings::default());
    let mut stream = m
        .query_stream_with_fallback("x", QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(
        stream.next().await.unwrap().unwrap(),
        StreamEvent::text("one")
    );
    drop(stream);
    let stats = m.get_usage_stats();
    assert_eq!(
        (
            stats.cancelled_requests,
            stats.successful_requests,
            stats.failed_requests
        ),
        (1, 0, 0)
    );
    // Cut short, its usage is unknown: not counted as 0 tokens.
    let a_stats = &stats.providers["a"];
    assert_eq!(
        (a_stats.responses_without_usage, a_stats.total_tokens),
        (1, 0)
    );
}

#[tokio::test]
async fn load_balancing_follows_the_weights() {
    let a = Arc::new(Scripted::new("a"));
    let b = Arc::new(Scripted::new("b"));
    let c = Arc::new(Scripted::new("c"));
    let m = manager(
        &[
            (&a, config("a").with_weight(1)),
            (&b, config("b").with_weight(2)),
            (&c, config("c").with_weight(3)),
        ],
        ManagerSettings::default(),
    );
    m.enable_load_balancing(true);
    for _ in 0..600 {
        m.query_with_fallback("x", QueryOptions::new())
            .await
            .unwrap();
    }
    let counts = m.get_usage_stats().request_counts;
    for (name, expected) in [("a", 100.0), ("b", 200.0), ("c", 300.0)] {
        let got = counts[name] as f64;
        assert!(
            (got - expected).abs() <= expected * 0.05,
            "{name}: {got} vs {expected}"
        );
    }

    m.enable_load_balancing(false);
    let before = a.calls();
    for _ in 0..10 {
        m.query_with_fallback("x", QueryOptions::new())
            .await
            .unwrap();
    }
    assert_eq!(
        a.calls(),
        before + 10,
        "without balancing the first provider serves all"
    );
}

#[tokio::test]
async fn load_balancing_still_falls_back() {
    let a =
        Arc::new(Scripted::new("a").script((0..50).map(|_| Step::Fail(ErrorKind::ServerError))));
    let b = Arc::new(Scripted::new("b"));
    // Never ejected here (that is the health tests' subject): `a` keeps its turns.
    let m = manager(
        &[(&a, config("a")), (&b, config("b"))],
        ManagerSettings::default()
            .with_load_balancing(true)
            .with_health(HealthSettings::default().with_consecutive_failures(1_000)),
    );
    for _ in 0..20 {
        assert_eq!(answered_by(&m).await, "b");
    }
    let stats = m.get_usage_stats();
    assert_eq!((stats.total_requests, stats.successful_requests), (20, 20));
    // Half the requests start at `a` (weights 1:1) and fall back from it.
    assert_eq!(
        (stats.request_counts["a"], stats.request_counts["b"]),
        (10, 20)
    );
    assert_eq!(stats.fallbacks, 10);
}

// On a paused clock: the scripted delays order completions without waiting in real time.
#[tokio::test(start_paused = true)]
async fn batch_keeps_input_order_bounds_concurrency_and_keeps_failures() {
    let a = Arc::new(Scripted::new("a").delay_by_prompt());
    let m = manager(
        &[(&a, config("a"))],
        ManagerSettings::default().with_batch_concurrency(3),
    );
    let prompts: Vec<String> = (0..12)
        .map(|i| {
            if i == 5 {
                "FAIL me".to_owned()
            } else {
                "p".repeat(i + 1)
            }
        })
        .collect();

    let results = m.batch_query(&prompts, QueryOptions::new()).await;

    assert_eq!(results.len(), 12);
    for (i, result) in results.iter().enumerate() {
        if i == 5 {
            assert_eq!(
                result.as_ref().unwrap_err().kind(),
                ErrorKind::InvalidRequest
            );
        } else {
            assert_eq!(
                result.as_ref().unwrap().content,
                format!("a says: {}", prompts[i])
            );
        }
    }
    let max = a.max_in_flight.load(Ordering::SeqCst);
    assert!((2..=3).contains(&max), "max in flight {max}");
    let stats = m.get_usage_stats();
    assert_eq!(
        (
            stats.total_requests,
            stats.successful_requests,
            stats.failed_requests
        ),
        (12, 11, 1)
    );
}

#[tokio::test]
async fn compare_returns_every_answer_and_every_error() {
    let a = Arc::new(Scripted::new("a"));
    let b = Arc::new(Scripted::new("b").script([Step::Fail(ErrorKind::Authentication)]));
    let m = a_then_b(&a, &b);

    let results = m
        .compare_responses("hi", &["a", "b", "nope"], QueryOptions::new())
        .await;

    assert_eq!(results.keys().collect::<Vec<_>>(), ["a", "b", "nope"]);
    assert_eq!(results["a"].as_ref().unwrap().content, "a says: hi");
    assert_eq!(
        results["b"].as_ref().unwrap_err().kind(),
        ErrorKind::Authentication
    );
    assert_eq!(
        results["nope"].as_ref().unwrap_err().kind(),
        ErrorKind::Configuration
    );
    // One attempt each, no fallback from b to a.
    assert_eq!((a.calls(), b.calls()), (1, 1));
}

#[tokio::test]
async fn cheapest_model_honours_capability_and_free_only() {
    use ModelCapability::*;
    let a = Arc::new(Scripted::new("a").models(vec![
        priced("big", "a", 10.0, 30.0, &[Chat, TextGeneration]),
        priced("small", "a", 0.15, 0.6, &[Chat, TextGeneration]),
        priced("embed", "a", 0.02, 0.0, &[Embedding]),
    ]));
    let b = Arc::new(Scripted::new("b").models(vec![
        priced("free-chat:free", "b", 0.0, 0.0, &[Chat, TextGeneration]),
        fazztv_core::ModelInfo::new("unpriced", "b").with_capabilities([Chat]),
    ]));
    let m = a_then_b(&a, &b);

    assert_eq!(
        m.get_cheapest_model(TextGeneration, false)
            .await
            .unwrap()
            .id,
        "free-chat:free"
    );
    assert_eq!(
        m.get_cheapest_model(TextGeneration, true).await.unwrap().id,
        "free-chat:free"
    );
    assert_eq!(
        m.get_cheapest_model(Embedding, false).await.unwrap().id,
        "embed"
    );
    assert!(m.get_cheapest_model(Embedding, true).await.is_none());
    assert!(m.get_cheapest_model(VideoGeneration, false).await.is_none());
}

#[tokio::test]
async fn cheapest_prefers_a_known_price_over_an_unknown_one() {
    use ModelCapability::*;
    let a = Arc::new(Scripted::new("a").models(vec![
        fazztv_core::ModelInfo::new("mystery", "a").with_capabilities([Chat]),
        priced("priced", "a", 5.0, 5.0, &[Chat]),
    ]));
    let m = manager(&[(&a, config("a"))], ManagerSettings::default());
    assert_eq!(
        m.get_cheapest_model(Chat, false).await.unwrap().id,
        "priced"
    );
}

#[tokio::test]
async fn find_best_provider_skips_unavailable_ones() {
    let a = Arc::new(Scripted::new("a").unavailable());
    let b = Arc::new(Scripted::new("b"));
    let m = a_then_b(&a, &b);
    assert_eq!(
        m.find_best_provider(ModelCapability::Chat)
            .await
            .unwrap()
            .name(),
        "b"
    );
    assert!(
        m.find_best_provider(ModelCapability::Moderation)
            .await
            .is_none()
    );

    let statuses = m.check_all_availability().await;
    let summary: Vec<_> = statuses
        .iter()
        .map(|(e, a)| (e.name().to_owned(), a.is_available()))
        .collect();
    assert_eq!(summary, [("a".to_owned(), false), ("b".to_owned(), true)]);
}

#[tokio::test]
async fn disabled_providers_are_never_routed_to() {
    let a = Arc::new(Scripted::new("a"));
    let b = Arc::new(Scripted::new("b"));
    let mut disabled = config("a");
    disabled.enabled = false;
    let m = manager(
        &[(&a, disabled), (&b, config("b"))],
        ManagerSettings::default(),
    );
    assert_eq!(answered_by(&m).await, "b");
    assert_eq!(a.calls(), 0);
    let error = m
        .query_with_fallback("x", QueryOptions::new().preferred_provider("a"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Configuration);
    assert!(matches!(error.attempts(), []));
}

#[tokio::test]
async fn keys_quoted_back_by_a_server_are_masked_in_attempts_and_errors() {
    let a = Arc::new(Scripted::new("a").script([Step::Fail(ErrorKind::Authentication)]));
    a.echo_secret("sk-live-abcdef123456");
    let m = manager(
        &[(&a, config("a").with_api_key("sk-live-abcdef123456"))],
        ManagerSettings::default(),
    );
    let error = m
        .query_with_fallback("x", QueryOptions::new())
        .await
        .unwrap_err();
    assert_eq!(
        error.message(),
        "scripted authentication: bad key [REDACTED]"
    );
    let text = format!("{error} {error:?}");
    assert!(!text.contains("sk-live-abcdef123456"), "{text}");
}

#[tokio::test]
async fn the_successful_attempt_records_the_model_that_answered() {
    let a = Arc::new(Scripted::new("a"));
    let m = manager(
        &[(&a, config("a").with_default_model("alias"))],
        ManagerSettings::default(),
    );
    let response = m
        .query_with_fallback("x", QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(response.attempts[0].model.as_deref(), Some("a-model"));
}

#[tokio::test]
async fn a_request_with_tools_skips_providers_without_tool_calling_and_says_so() {
    let a = Arc::new(Scripted::new("a"));
    let b = Arc::new(Scripted::new("b"));
    // `a` names some of the content capabilities but not tool calling: that is its ceiling.
    let m = manager(
        &[
            (
                &a,
                config("a").with_capabilities([
                    ModelCapability::Chat,
                    ModelCapability::TextGeneration,
                    ModelCapability::Vision,
                ]),
            ),
            (
                &b,
                config("b").with_capabilities([
                    ModelCapability::Chat,
                    ModelCapability::TextGeneration,
                    ModelCapability::ToolCalling,
                ]),
            ),
        ],
        ManagerSettings::default(),
    );
    let request = weather_request();
    let response = m.chat(request.clone(), QueryOptions::new()).await.unwrap();
    assert_eq!(response.provider, "b");
    assert_eq!(
        outcomes(&response.attempts),
        pairs(&[("a", "skipped"), ("b", "ok")])
    );
    assert_eq!(
        response.attempts[0].outcome,
        fazztv_core::AttemptOutcome::Skipped {
            reason: "lacks tool_calling".into()
        }
    );
    assert_eq!(
        a.calls(),
        0,
        "a provider without tool calling is never sent tools"
    );

    // Streams skip alike; with only `a` left, the error names what is missing.
    let stream = m
        .chat_stream(request.clone(), QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(stream.provider(), "b");
    let error = m
        .chat(
            request,
            QueryOptions::new().preferred_provider("a").fallback(false),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unsupported);
    assert!(error.message().contains("needs tool_calling"), "{error}");
    assert_eq!(outcomes(error.attempts()), pairs(&[("a", "skipped")]));
    assert_eq!(a.calls(), 0);
}

#[tokio::test]
async fn a_configuration_naming_no_content_capability_leaves_them_to_the_type() {
    use fazztv_core::ProviderConfig;
    use fazztv_provider_mock::{MockOptions, MockProvider};
    // The seed's file names only text capabilities: the mock type's tool calling still applies.
    let seed_like = ProviderConfig::new("m")
        .with_type("mock")
        .with_capabilities([ModelCapability::Chat, ModelCapability::TextGeneration]);
    let mut registry = fazztv_manager::Registry::empty()
        .with(registration("mock"))
        .unwrap();
    let mock = MockProvider::new(
        seed_like.clone(),
        MockOptions::default().tool_call("get_weather", serde_json::json!({"city": "Paris"})),
    );
    registry.add_provider(seed_like, Arc::new(mock)).unwrap();
    let m = ProviderManager::new(registry, ManagerSettings::default());
    let request = weather_request();
    let response = m.chat(request, QueryOptions::new()).await.unwrap();
    assert_eq!(response.tool_calls[0].name, "get_weather");
}

fn registration(provider_type: &str) -> &'static fazztv_core::ProviderRegistration {
    fazztv_core::ProviderRegistration::linked()
        .find(|registration| registration.provider_type == provider_type)
        .expect("linked")
}

#[tokio::test]
async fn a_model_listing_without_tool_calling_narrows_what_the_configuration_allows() {
    use fazztv_core::ModelInfo;
    let with_tools = [
        ModelCapability::Chat,
        ModelCapability::TextGeneration,
        ModelCapability::ToolCalling,
    ];
    // The listing speaks about content capabilities (structured output) and has no tools for
    // the model `a` would use.
    let a = Arc::new(Scripted::new("a").models(vec![
        ModelInfo::new("a-model", "a").with_capabilities([
            ModelCapability::Chat,
            ModelCapability::StructuredOutput,
        ]),
    ]));
    // `b`'s listing names no content capability at all: it narrows nothing.
    let b = Arc::new(Scripted::new("b"));
    let m = manager(
        &[
            (
                &a,
                config("a")
                    .with_default_model("a-model")
                    .with_capabilities(with_tools),
            ),
            (&b, config("b").with_capabilities(with_tools)),
        ],
        ManagerSettings::default(),
    );
    let request = weather_request();
    let response = m.chat(request.clone(), QueryOptions::new()).await.unwrap();
    assert_eq!(response.provider, "b");
    assert_eq!(
        response.attempts[0].outcome,
        fazztv_core::AttemptOutcome::Skipped {
            reason: "model `a-model` lacks tool_calling (per its model listing)".into()
        }
    );
    assert_eq!(a.calls(), 0);
    // A plain request is not affected by the listing.
    let plain = m
        .query_with_fallback("hi", QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(plain.provider, "a");
}

#[tokio::test(start_paused = true)]
async fn a_request_dropped_before_it_ends_counts_as_cancelled_calls_and_streams_alike() {
    let a = Arc::new(Scripted::new("a").script([Step::Fail(ErrorKind::ServerError), Step::Hang]));
    let b = Arc::new(Scripted::new("b").script([Step::Hang]));
    let m = a_then_b(&a, &b);
    // `a` fails, the request falls back to `b`, which never answers: the caller gives up.
    let call = m.query_with_fallback("x", QueryOptions::new());
    let gave_up = tokio::time::timeout(std::time::Duration::from_secs(5), call).await;
    assert!(gave_up.is_err(), "the hanging attempt must not answer");
    // A stream dropped before its first delta is a cancelled request too.
    let stream = m.query_stream_with_fallback("x", QueryOptions::new());
    assert!(
        tokio::time::timeout(std::time::Duration::from_secs(5), stream)
            .await
            .is_err()
    );
    let stats = m.get_usage_stats();
    assert_eq!(
        (
            stats.total_requests,
            stats.cancelled_requests,
            stats.successful_requests,
            stats.failed_requests,
            stats.fallbacks,
        ),
        (2, 2, 0, 0, 1)
    );
    assert_eq!(stats.providers["a"].errors[&ErrorKind::ServerError], 1);
    // The attempts under way when the caller gave up were sent: they count, as neither an
    // answer nor a failure.
    assert_eq!(stats.request_counts["a"], 2);
    assert_eq!(stats.request_counts["b"], 1);
    assert_eq!(
        (
            stats.providers["b"].successes,
            stats.providers["b"].failures
        ),
        (0, 0)
    );
}

fn triple(list: &[(&str, &str, u32)]) -> Vec<(String, String, u32)> {
    list.iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), *c))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn row_01_a_429_with_retry_after_is_retried_on_the_same_provider_after_the_hint() {
    let hint = std::time::Duration::from_secs(2);
    let a = Arc::new(Scripted::new("a").script([Step::RateLimited(hint)]));
    let b = Arc::new(Scripted::new("b"));
    let m = manager(&[(&a, config("a")), (&b, config("b"))], retrying(2));
    let started = tokio::time::Instant::now();
    let response = m
        .query_with_fallback("x", QueryOptions::new())
        .await
        .unwrap();
    assert!(started.elapsed() >= hint, "waited {:?}", started.elapsed());
    assert_eq!(response.provider, "a");
    assert_eq!(
        outcomes(&response.attempts),
        triple(&[("a", "rate_limited", 0), ("a", "ok", 1)])
    );
    assert!(response.attempts[1].waited >= hint, "the hint is a floor");
    assert_eq!((a.calls(), b.calls()), (2, 0));
    let stats = m.get_usage_stats();
    assert_eq!(
        (stats.retries, stats.fallbacks, stats.successful_requests),
        (1, 0, 1)
    );
    assert_eq!(stats.request_counts["a"], 2);
    assert_eq!(stats.providers["a"].retries, 1);
}

#[tokio::test(start_paused = true)]
async fn row_02_a_retry_after_beyond_the_limit_fails_over_at_once() {
    let a = Arc::new(
        Scripted::new("a").script([Step::RateLimited(std::time::Duration::from_secs(61))]),
    );
    let b = Arc::new(Scripted::new("b"));
    let m = manager(&[(&a, config("a")), (&b, config("b"))], retrying(2));
    let started = tokio::time::Instant::now();
    let response = m
        .query_with_fallback("x", QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(started.elapsed(), std::time::Duration::ZERO, "no wait");
    assert_eq!(response.provider, "b");
    assert_eq!(
        outcomes(&response.attempts),
        triple(&[("a", "rate_limited", 0), ("b", "ok", 0)])
    );
    assert_eq!(m.get_usage_stats().retries, 0);

    // An unreadable hint is ignored: the normal backoff applies, and it is counted.
    let a = Arc::new(Scripted::new("a").script([Step::RateLimitedUnreadableHint]));
    let m = manager(&[(&a, config("a"))], retrying(1));
    let response = m
        .query_with_fallback("x", QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(
        outcomes(&response.attempts),
        triple(&[("a", "rate_limited", 0), ("a", "ok", 1)])
    );
    assert!(response.attempts[1].waited <= std::time::Duration::from_millis(500));
    let stats = m.get_usage_stats();
    assert_eq!((stats.retries, stats.retry_after_invalid), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn row_03_quota_and_authentication_are_never_retried() {
    for kind in [ErrorKind::QuotaExhausted, ErrorKind::Authentication] {
        let a = Arc::new(Scripted::new("a").script([Step::Fail(kind)]));
        let b = Arc::new(Scripted::new("b"));
        let m = manager(&[(&a, config("a")), (&b, config("b"))], retrying(2));
        let response = m
            .query_with_fallback("x", QueryOptions::new())
            .await
            .unwrap();
        assert_eq!(response.provider, "b", "{kind}");
        assert_eq!(a.calls(), 1, "{kind} is not retried");
        assert_eq!(m.get_usage_stats().retries, 0);
    }
}

#[tokio::test(start_paused = true)]
async fn row_04_a_500_then_200_is_one_answer_after_one_retry() {
    let a = Arc::new(Scripted::new("a").script([Step::Fail(ErrorKind::ServerError)]));
    let m = manager(&[(&a, config("a"))], retrying(2));
    let response = m
        .query_with_fallback("x", QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(response.content, "a says: x");
    assert_eq!(
        outcomes(&response.attempts),
        triple(&[("a", "server_error", 0), ("a", "ok", 1)])
    );
    // Full jitter: the wait is at most the first backoff cap (500 ms by default).
    assert!(response.attempts[1].waited <= std::time::Duration::from_millis(500));
    let stats = m.get_usage_stats();
    assert_eq!(
        (
            stats.total_requests,
            stats.successful_requests,
            stats.retries
        ),
        (1, 1, 1)
    );
    // A stream is retried alike before its commit point.
    let a = Arc::new(Scripted::new("a").script([Step::Fail(ErrorKind::Overloaded)]));
    let m = manager(&[(&a, config("a"))], retrying(1));
    let stream = m
        .query_stream_with_fallback("x", QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(
        outcomes(stream.attempts()),
        triple(&[("a", "overloaded", 0), ("a", "ok", 1)])
    );
}

#[tokio::test(start_paused = true)]
async fn retries_stop_at_the_limit_the_request_may_lower_it_and_the_last_error_is_kept() {
    let failing = || {
        Arc::new(
            Scripted::new("a").script(std::iter::repeat_n(Step::Fail(ErrorKind::ServerError), 10)),
        )
    };
    let a = failing();
    let m = manager(&[(&a, config("a"))], retrying(2));
    let error = m
        .query_with_fallback("x", QueryOptions::new())
        .await
        .unwrap_err();
    // One provider tried three times: its own error, not "all providers failed".
    assert_eq!(error.kind(), ErrorKind::ServerError);
    assert_eq!(
        outcomes(error.attempts()),
        triple(&[
            ("a", "server_error", 0),
            ("a", "server_error", 1),
            ("a", "server_error", 2)
        ])
    );
    let a = failing();
    let m = manager(&[(&a, config("a"))], retrying(2));
    let error = m
        .query_with_fallback("x", QueryOptions::new().retries(0))
        .await
        .unwrap_err();
    assert_eq!(
        error.attempts().len(),
        1,
        "--retries 0 means exactly one hit"
    );
    assert_eq!(a.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_retry_budget_bounds_retries_to_a_share_of_requests_plus_a_floor() {
    let a = Arc::new(Scripted::new("a").script(std::iter::repeat_n(
        Step::Fail(ErrorKind::ServerError),
        1000,
    )));
    let m = manager(&[(&a, config("a"))], retrying(2));
    for _ in 0..30 {
        assert!(
            m.query_with_fallback("x", QueryOptions::new())
                .await
                .is_err()
        );
    }
    let stats = m.get_usage_stats();
    // Without a budget: 60 retries. With it: the floor (10) plus 20 % of 30 requests.
    assert!(stats.retries <= 16, "{} retries", stats.retries);
    assert!(stats.retries >= 10, "{} retries", stats.retries);
    assert_eq!(stats.request_counts["a"], 30 + stats.retries);
}
