//! Health: ejection, half-open probes, panic mode and the routing strategies (rows 5, 6 and
//! 41–44 of the reliability matrix), with scripted providers on a paused clock.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Scripted, Step, config, manager, outcomes, retrying};
use fazztv_core::{ErrorKind, RetrySettings};
use fazztv_manager::{
    HealthSettings, HealthState, ManagerSettings, ProviderManager, QueryOptions, Strategy,
};
use {
    criterion as _, fazztv_provider_mock as _, fazztv_testkit as _, futures as _, insta as _,
    jsonschema as _, moka as _, proptest as _, regex as _, schemars as _, serde as _,
    serde_json as _, sha2 as _, thiserror as _, tracing as _,
};

const SECOND: Duration = Duration::from_secs(1);

fn triple(provider: &str, outcome: &str, retries: u32) -> (String, String, u32) {
    (provider.to_owned(), outcome.to_owned(), retries)
}

/// Ejection after `failures` in a row, for 1 s doubling up to 8 s.
fn ejecting(failures: u32) -> HealthSettings {
    HealthSettings::default()
        .with_consecutive_failures(failures)
        .with_ejection_ms(1_000, 8_000)
}

fn state(manager: &ProviderManager, provider: &str) -> HealthState {
    manager
        .health()
        .into_iter()
        .find(|health| health.provider == provider)
        .unwrap()
        .state
}

async fn ask(manager: &ProviderManager) -> fazztv_core::Result<fazztv_core::ChatResponse> {
    manager.query_with_fallback("x", QueryOptions::new()).await
}

#[tokio::test(start_paused = true)]
async fn row_05_a_provider_that_keeps_failing_is_ejected_skipped_probed_and_ejected_for_longer() {
    let a = Arc::new(Scripted::new("a").script(vec![Step::Fail(ErrorKind::Overloaded); 10]));
    let b = Arc::new(Scripted::new("b"));
    let m = manager(
        &[(&a, config("a")), (&b, config("b"))],
        ManagerSettings::default()
            .with_retry(
                RetrySettings::default()
                    .with_max_retries(2)
                    .with_initial_backoff_ms(1),
            )
            .with_health(ejecting(3)),
    );
    // Three tries (retries exhausted), the third failure in a row ejects it; then `b`.
    let response = ask(&m).await.unwrap();
    assert_eq!(
        outcomes(&response.attempts),
        [
            triple("a", "overloaded", 0),
            triple("a", "overloaded", 1),
            triple("a", "overloaded", 2),
            triple("b", "ok", 0)
        ]
    );
    assert_eq!(
        state(&m, "a"),
        HealthState::Ejected {
            ejected_for: SECOND
        }
    );
    // While ejected it is skipped, and says why.
    let response = ask(&m).await.unwrap();
    assert_eq!(
        outcomes(&response.attempts),
        [triple("a", "skipped", 0), triple("b", "ok", 0)]
    );
    assert_eq!(a.calls(), 3);
    // The ejection ends: one real request probes it, fails, and ejects it for twice as long.
    tokio::time::advance(SECOND).await;
    assert_eq!(state(&m, "a"), HealthState::HalfOpen);
    let response = ask(&m).await.unwrap();
    assert_eq!(
        outcomes(&response.attempts),
        [triple("a", "overloaded", 0), triple("b", "ok", 0)],
        "a failed probe is not retried: the next provider is the better bet"
    );
    assert_eq!(
        state(&m, "a"),
        HealthState::Ejected {
            ejected_for: 2 * SECOND
        }
    );
    let stats = m.get_usage_stats();
    assert_eq!(stats.ejections, 2);
    assert_eq!(stats.providers["a"].ejected, 2);
    let health = &m.health()[0];
    assert_eq!(health.recent_errors, vec![ErrorKind::Overloaded; 4]);
    assert_eq!(health.ejections, 2);
}

#[tokio::test(start_paused = true)]
async fn row_06_an_overloaded_529_counts_toward_ejection_and_client_mistakes_never_do() {
    assert_eq!(
        ErrorKind::from_http_status(529, Some("overloaded_error"), "Overloaded"),
        ErrorKind::Overloaded
    );
    let a = Arc::new(Scripted::new("a").script([
        Step::Fail(ErrorKind::InvalidRequest),
        Step::Fail(ErrorKind::InvalidRequest),
        Step::Fail(ErrorKind::ContextLengthExceeded),
        Step::Fail(ErrorKind::Overloaded),
        Step::Fail(ErrorKind::Overloaded),
    ]));
    let m = manager(
        &[(&a, config("a"))],
        ManagerSettings::default().with_health(ejecting(2)),
    );
    for _ in 0..3 {
        ask(&m).await.unwrap_err();
    }
    assert_eq!(
        state(&m, "a"),
        HealthState::Healthy,
        "the requests were wrong"
    );
    ask(&m).await.unwrap_err();
    ask(&m).await.unwrap_err();
    assert!(matches!(state(&m, "a"), HealthState::Ejected { .. }));
}

#[tokio::test(start_paused = true)]
async fn a_probe_that_succeeds_puts_the_provider_back_and_only_one_request_probes() {
    let a = Arc::new(Scripted::new("a").script([
        Step::Fail(ErrorKind::ServerError),
        Step::Hang,
        Step::Ok,
    ]));
    let b = Arc::new(Scripted::new("b"));
    let m = manager(
        &[(&a, config("a")), (&b, config("b"))],
        ManagerSettings::default().with_health(ejecting(1)),
    );
    assert_eq!(ask(&m).await.unwrap().provider, "b");
    tokio::time::advance(SECOND).await;
    // The probe hangs; meanwhile another request does not probe too: it goes to `b`.
    let probe = tokio::spawn({
        let m = m.clone();
        async move { ask(&m).await }
    });
    tokio::task::yield_now().await;
    let response = ask(&m).await.unwrap();
    assert_eq!(
        outcomes(&response.attempts),
        [triple("a", "skipped", 0), triple("b", "ok", 0)]
    );
    // The hung probe is cancelled: its turn goes back, and the next request probes.
    probe.abort();
    let _ = probe.await;
    let response = ask(&m).await.unwrap();
    assert_eq!(response.provider, "a");
    assert_eq!(state(&m, "a"), HealthState::Healthy);
    assert_eq!(a.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn row_43_when_every_candidate_is_ejected_the_one_recovering_first_is_tried() {
    let a = Arc::new(Scripted::new("a").script([Step::Fail(ErrorKind::ServerError)]));
    let b = Arc::new(Scripted::new("b").script([Step::Fail(ErrorKind::ServerError)]));
    let m = manager(
        &[(&a, config("a")), (&b, config("b"))],
        ManagerSettings::default().with_health(ejecting(1)),
    );
    let only = |name: &str| QueryOptions::new().preferred_provider(name).fallback(false);
    // `a` is ejected until 1 s, `b` until 1.5 s.
    m.query_with_fallback("x", only("a")).await.unwrap_err();
    tokio::time::advance(SECOND / 2).await;
    m.query_with_fallback("x", only("b")).await.unwrap_err();
    assert!(matches!(state(&m, "a"), HealthState::Ejected { .. }));
    assert!(matches!(state(&m, "b"), HealthState::Ejected { .. }));
    // Both ejected: `a` recovers first, so it is tried rather than failing outright.
    let response = ask(&m).await.unwrap();
    assert_eq!(response.provider, "a");
    assert_eq!(
        outcomes(&response.attempts),
        [triple("b", "skipped", 0), triple("a", "ok", 0)]
    );
    assert_eq!(m.get_usage_stats().panic_mode, 1);
    assert_eq!(
        state(&m, "a"),
        HealthState::Healthy,
        "its answer put it back"
    );
}

#[tokio::test(start_paused = true)]
async fn row_42_a_flapping_provider_gets_no_requests_while_ejected_and_ejections_grow() {
    // Down for 3 calls, up for 3, down for 3...
    let mut script = Vec::new();
    for _ in 0..4 {
        script.extend(vec![Step::Fail(ErrorKind::ServerError); 3]);
        script.extend(vec![Step::Ok; 3]);
    }
    let a = Arc::new(Scripted::new("a").script(script));
    let b = Arc::new(Scripted::new("b"));
    let m = manager(
        &[(&a, config("a")), (&b, config("b"))],
        ManagerSettings::default().with_health(ejecting(3)),
    );
    let mut sent_while_ejected = 0;
    let mut lengths = Vec::new();
    for _ in 0..60 {
        let before = m.health()[0].clone();
        let calls = a.calls();
        ask(&m).await.unwrap();
        if matches!(before.state, HealthState::Ejected { .. }) && a.calls() > calls {
            sent_while_ejected += 1;
        }
        if let HealthState::Ejected { ejected_for } = m.health()[0].state {
            if !matches!(before.state, HealthState::Ejected { .. }) {
                lengths.push(ejected_for.as_millis());
            }
        }
        tokio::time::advance(Duration::from_millis(250)).await;
    }
    assert_eq!(sent_while_ejected, 0, "only half-open probes reach it");
    assert!(lengths.len() >= 2, "{lengths:?}");
    assert!(
        lengths.windows(2).all(|pair| pair[1] >= pair[0]),
        "{lengths:?}"
    );
    assert_eq!(m.get_usage_stats().successful_requests, 60);
}

#[tokio::test(start_paused = true)]
async fn least_busy_puts_the_provider_with_the_fewest_requests_in_flight_first() {
    let a = Arc::new(Scripted::new("a").script([Step::Hang, Step::Hang]));
    let b = Arc::new(Scripted::new("b").script([Step::Hang]));
    let c = Arc::new(Scripted::new("c"));
    let m = manager(
        &[(&a, config("a")), (&b, config("b")), (&c, config("c"))],
        ManagerSettings::default().with_strategy(Strategy::LeastBusy),
    );
    let mut hung = Vec::new();
    for _ in 0..2 {
        let m = m.clone();
        hung.push(tokio::spawn(async move { ask(&m).await }));
        tokio::task::yield_now().await;
    }
    // `a` (first by priority) and then `b` took the two hanging requests.
    assert_eq!(
        m.health().iter().map(|h| h.in_flight).collect::<Vec<_>>(),
        [1, 1, 0]
    );
    assert_eq!(ask(&m).await.unwrap().provider, "c");
    for task in hung {
        task.abort();
    }
    tokio::task::yield_now().await;
    assert!(m.health().iter().all(|h| h.in_flight == 0));
}

#[tokio::test(start_paused = true)]
async fn latency_prefers_the_faster_provider_once_both_are_measured() {
    let fast = Arc::new(Scripted::new("fast"));
    let slow = Arc::new(Scripted::new("slow").delay_by_prompt());
    let m = manager(
        &[(&slow, config("slow")), (&fast, config("fast"))],
        ManagerSettings::default().with_strategy(Strategy::Latency),
    );
    // Measure each once.
    for provider in ["slow", "fast"] {
        m.query_with_fallback("x", QueryOptions::new().preferred_provider(provider))
            .await
            .unwrap();
    }
    // Two candidates: power of two choices always compares both.
    for _ in 0..20 {
        assert_eq!(ask(&m).await.unwrap().provider, "fast");
    }
}

#[tokio::test]
async fn a_strategy_contradicting_load_balancing_is_a_configuration_error() {
    let registry = fazztv_manager::Registry::discover().unwrap();
    let error = registry
        .validate(
            r#"{"providers": [{"name": "m", "type": "mock"}],
                "manager": {"load_balancing": true, "strategy": "latency"}}"#,
            fazztv_manager::ConfigOrigin::Inline,
        )
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("/manager/load_balancing") && error.contains("`latency`"),
        "{error}"
    );
    let config = registry
        .validate(
            r#"{"providers": [{"name": "m", "type": "mock"}],
                "manager": {"load_balancing": true, "strategy": "weighted"}}"#,
            fazztv_manager::ConfigOrigin::Inline,
        )
        .unwrap();
    assert_eq!(config.manager.effective_strategy(), Strategy::Weighted);
}

#[tokio::test(start_paused = true)]
async fn a_request_retried_alone_keeps_trying_its_only_provider() {
    // With one provider, ejection never leaves a request with nothing to try.
    let a = Arc::new(Scripted::new("a").script(vec![Step::Fail(ErrorKind::ServerError); 3]));
    let m = manager(&[(&a, config("a"))], retrying(3).with_health(ejecting(2)));
    let response = ask(&m).await.unwrap();
    assert_eq!(response.attempts.len(), 4);
    assert_eq!(a.calls(), 4);
}
