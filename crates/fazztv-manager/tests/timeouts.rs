//! Deadlines and stream timeouts (rows 10–12 of the reliability matrix, and the request
//! deadline), with scripted providers on a paused clock: every duration below is exact.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Scripted, Step, config, manager, outcomes, retrying, texts};
use fazztv_core::{ErrorKind, StreamEvent};
use fazztv_manager::{ManagerSettings, QueryOptions};
use fazztv_testkit::provider::drain;
use tokio::time::Instant;
use {
    criterion as _, fazztv_provider_mock as _, futures as _, insta as _, jsonschema as _,
    moka as _, proptest as _, regex as _, schemars as _, serde as _, serde_json as _, sha2 as _,
    thiserror as _, tracing as _,
};

const SECOND: Duration = Duration::from_secs(1);

fn triple(provider: &str, outcome: &str, retries: u32) -> (String, String, u32) {
    (provider.to_owned(), outcome.to_owned(), retries)
}

#[tokio::test(start_paused = true)]
async fn the_deadline_ends_a_try_that_runs_past_it_and_nothing_more_is_tried() {
    let a = Arc::new(Scripted::new("a").script([Step::Hang]));
    let b = Arc::new(Scripted::new("b"));
    let m = manager(
        &[(&a, config("a")), (&b, config("b"))],
        retrying(3).with_deadline(5 * SECOND),
    );
    let started = Instant::now();
    let error = m
        .query_with_fallback("x", QueryOptions::new())
        .await
        .unwrap_err();
    assert_eq!(started.elapsed(), 5 * SECOND);
    assert_eq!(error.kind(), ErrorKind::DeadlineExceeded);
    assert!(error.message().contains("deadline of 5 s"), "{error}");
    assert_eq!(
        outcomes(error.attempts()),
        [triple("a", "deadline_exceeded", 0)]
    );
    assert_eq!(b.calls(), 0, "no time was left for another provider");
    let stats = m.get_usage_stats();
    assert_eq!(stats.failed_requests, 1);
    assert_eq!(stats.providers["a"].errors[&ErrorKind::DeadlineExceeded], 1);
}

#[tokio::test(start_paused = true)]
async fn a_wait_that_would_outlast_the_deadline_is_not_waited_the_next_provider_is_tried() {
    let a = Arc::new(Scripted::new("a").script([Step::RateLimited(10 * SECOND)]));
    let b = Arc::new(Scripted::new("b"));
    let m = manager(
        &[(&a, config("a")), (&b, config("b"))],
        retrying(2).with_deadline(5 * SECOND),
    );
    let started = Instant::now();
    let response = m
        .query_with_fallback("x", QueryOptions::new())
        .await
        .unwrap();
    assert_eq!(started.elapsed(), Duration::ZERO, "nothing was waited for");
    assert_eq!(response.provider, "b");
    assert_eq!(
        outcomes(&response.attempts),
        [triple("a", "rate_limited", 0), triple("b", "ok", 0)]
    );
}

#[tokio::test(start_paused = true)]
async fn retries_and_their_backoff_stay_within_the_deadline() {
    let a = Arc::new(Scripted::new("a").script(vec![Step::Fail(ErrorKind::ServerError); 6]));
    let m = manager(
        &[(&a, config("a"))],
        ManagerSettings::default()
            .with_retry(
                fazztv_core::RetrySettings::default()
                    .with_max_retries(5)
                    .with_initial_backoff_ms(1_000),
            )
            .with_deadline(2 * SECOND),
    );
    let started = Instant::now();
    let error = m
        .query_with_fallback("x", QueryOptions::new())
        .await
        .unwrap_err();
    // However the jitter falls, no wait reaches the deadline: the request ends on the
    // provider's own error before it, never by sleeping into it.
    assert_eq!(error.kind(), ErrorKind::ServerError, "{error}");
    assert!(started.elapsed() < 2 * SECOND, "{:?}", started.elapsed());
    // The timer rounds each sleep up to its millisecond.
    let waited: Duration = error.attempts().iter().map(|attempt| attempt.waited).sum();
    assert!(waited <= started.elapsed(), "{waited:?}");
    assert_eq!(a.calls(), error.attempts().len());
}

#[tokio::test(start_paused = true)]
async fn a_request_deadline_overrides_the_configured_one() {
    let a = Arc::new(Scripted::new("a").script([Step::Hang]));
    let m = manager(
        &[(&a, config("a"))],
        ManagerSettings::default().with_deadline(100 * SECOND),
    );
    let started = Instant::now();
    let error = m
        .query_with_fallback("x", QueryOptions::new().deadline(SECOND))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::DeadlineExceeded);
    assert_eq!(started.elapsed(), SECOND);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_bounds_a_stream_waiting_for_its_first_token() {
    let a = Arc::new(Scripted::new("a").script([Step::Hang]));
    let m = manager(
        &[(&a, config("a"))],
        ManagerSettings::default().with_deadline(2 * SECOND),
    );
    let started = Instant::now();
    let error = m
        .query_stream_with_fallback("x", QueryOptions::new())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::DeadlineExceeded);
    assert_eq!(started.elapsed(), 2 * SECOND);
}

#[tokio::test(start_paused = true)]
async fn row_11_no_first_token_in_time_is_a_timeout_that_is_retried_and_its_preamble_discarded() {
    // The first try names its model and sends an empty delta, then nothing: no output.
    let a = Arc::new(Scripted::new("a").script([Step::Stall(Vec::new()), Step::Ok]));
    let m = manager(
        &[(&a, config("a").with_first_token_timeout(3 * SECOND))],
        retrying(1),
    );
    let started = Instant::now();
    let stream = m
        .query_stream_with_fallback("x", QueryOptions::new())
        .await
        .unwrap();
    assert!(started.elapsed() >= 3 * SECOND, "{:?}", started.elapsed());
    assert_eq!(
        outcomes(stream.attempts()),
        [triple("a", "timeout", 0), triple("a", "ok", 1)]
    );
    let (events, error) = drain(stream).await;
    assert!(error.is_none(), "{error:?}");
    // The failed try's model announcement never reached the caller.
    assert!(
        !events
            .iter()
            .any(|event| matches!(event, StreamEvent::Model { model } if model == "a-model")),
        "{events:?}"
    );
    assert_eq!(a.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn row_12_a_stall_after_the_first_token_ends_the_stream_after_the_idle_timeout() {
    let a = Arc::new(Scripted::new("a").script([Step::Stall(texts(&["Hel"]))]));
    let b = Arc::new(Scripted::new("b"));
    let m = manager(
        &[
            (&a, config("a").with_idle_timeout(2 * SECOND)),
            (&b, config("b")),
        ],
        retrying(2),
    );
    let stream = m
        .query_stream_with_fallback("x", QueryOptions::new())
        .await
        .unwrap();
    let committed = Instant::now();
    let (events, error) = drain(stream).await;
    assert_eq!(committed.elapsed(), 2 * SECOND);
    let error = error.expect("a typed error, not a silent end");
    assert_eq!(error.kind(), ErrorKind::StreamInterrupted);
    assert!(error.message().contains("idle_timeout"), "{error}");
    let text: String = events
        .iter()
        .filter_map(|event| match event {
            StreamEvent::TextDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, "Hel", "the partial output was delivered");
    assert!(!events.iter().any(StreamEvent::is_finish));
    // Never retried or spliced after the commit point.
    assert_eq!((a.calls(), b.calls()), (1, 0));
    let stats = m.get_usage_stats();
    assert_eq!(stats.providers["a"].interrupted_streams, 1);
    assert_eq!(stats.providers["a"].responses_without_usage, 1);
    assert_eq!(stats.providers["a"].prompt_tokens, 0);
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_keeps_sending_outlasts_its_idle_timeout() {
    // Five deltas 1 s apart with a 2 s idle timeout: 6 s in all, never 2 s of silence.
    let a = Arc::new(Scripted::new("a").script([Step::Trickle {
        deltas: texts(&["a", "b", "c", "d", "e"]),
        gap: SECOND,
    }]));
    let m = manager(
        &[(&a, config("a").with_idle_timeout(2 * SECOND))],
        ManagerSettings::default(),
    );
    let started = Instant::now();
    let stream = m
        .query_stream_with_fallback("x", QueryOptions::new())
        .await
        .unwrap();
    let (events, error) = drain(stream).await;
    assert!(error.is_none(), "{error:?}");
    assert!(events.last().is_some_and(StreamEvent::is_finish));
    assert_eq!(started.elapsed(), 6 * SECOND);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_ends_a_committed_stream_that_stalled() {
    let a = Arc::new(Scripted::new("a").script([Step::Stall(texts(&["Hel"]))]));
    let m = manager(
        &[(&a, config("a"))],
        ManagerSettings::default().with_deadline(3 * SECOND),
    );
    let started = Instant::now();
    let stream = m
        .query_stream_with_fallback("x", QueryOptions::new())
        .await
        .unwrap();
    let (_, error) = drain(stream).await;
    // The idle timeout (60 s) is far away: the deadline ends it.
    assert_eq!(started.elapsed(), 3 * SECOND);
    let error = error.unwrap();
    assert_eq!(error.kind(), ErrorKind::StreamInterrupted);
    assert!(error.message().contains("deadline of 3 s"), "{error}");
}
