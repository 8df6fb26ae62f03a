//! Row 41 of the reliability matrix: ten thousand requests, calls and streams, over providers
//! that answer, rate limit with `Retry-After`, fail, cut streams before and after their first
//! token and stall — on a paused clock, so the backoffs and timeouts cost no real time. The
//! books must balance afterwards.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Scripted, Step, config, manager, texts};
use fazztv_core::{ErrorKind, RetrySettings, StreamEvent};
use fazztv_manager::{HealthSettings, ManagerSettings, ProviderManager, QueryOptions};
use futures::StreamExt;
use {
    criterion as _, fazztv_provider_mock as _, fazztv_testkit as _, insta as _, jsonschema as _,
    moka as _, proptest as _, regex as _, schemars as _, serde as _, serde_json as _, sha2 as _,
    thiserror as _, tracing as _,
};

const REQUESTS: usize = 10_000;

/// A script of `length` steps drawn from the fault mix by a fixed-seed generator.
fn script(seed: u64, length: usize) -> Vec<Step> {
    let mut state = seed;
    (0..length)
        .map(|_| {
            // A 64-bit linear congruential generator (Knuth's MMIX constants).
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            match (state >> 33) % 100 {
                0..70 => Step::Ok,
                70..78 => Step::RateLimited(Duration::from_secs(1)),
                78..86 => Step::Fail(ErrorKind::ServerError),
                // A stream cut before its first token (a call answers).
                86..90 => Step::Stream {
                    deltas: Vec::new(),
                    complete: false,
                    error: None,
                },
                // A stream cut after its first token.
                90..94 => Step::Stream {
                    deltas: texts(&["partial"]),
                    complete: false,
                    error: None,
                },
                // Stalls, before and after the first token.
                94..97 => Step::Stall(Vec::new()),
                _ => Step::Stall(texts(&["partial"])),
            }
        })
        .collect()
}

/// How one request ended: answered, or failed (a stream also when it broke after output).
async fn one(manager: &ProviderManager, number: usize) -> bool {
    if number.is_multiple_of(2) {
        return manager
            .query_with_fallback("x", QueryOptions::new())
            .await
            .is_ok();
    }
    let Ok(mut stream) = manager
        .query_stream_with_fallback("x", QueryOptions::new())
        .await
    else {
        return false;
    };
    let committed = stream.attempts().len();
    let mut finished = false;
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => finished |= matches!(event, StreamEvent::Finish { .. }),
            Err(error) => {
                assert_eq!(error.kind(), ErrorKind::StreamInterrupted, "{error}");
                break;
            }
        }
    }
    // Nothing was tried after the commit point.
    assert_eq!(stream.attempts().len(), committed);
    assert_eq!(stream.attempts().last().unwrap().outcome.label(), "ok");
    finished
}

#[tokio::test(start_paused = true)]
async fn row_41_ten_thousand_requests_with_mixed_faults_add_up() {
    let providers: Vec<Arc<Scripted>> = ["a", "b", "c"]
        .iter()
        .zip([1_u64, 2, 3])
        .map(|(name, seed)| Arc::new(Scripted::new(name).script(script(seed, 3 * REQUESTS))))
        .collect();
    let configs: Vec<_> = providers
        .iter()
        .map(|provider| {
            (
                provider,
                config(&provider.name)
                    .with_first_token_timeout(Duration::from_secs(2))
                    .with_idle_timeout(Duration::from_secs(2)),
            )
        })
        .collect();
    let m = manager(
        &configs,
        ManagerSettings::default()
            .with_load_balancing(true)
            .with_retry(
                RetrySettings::default()
                    .with_max_retries(2)
                    .with_initial_backoff_ms(100),
            )
            .with_health(HealthSettings::default().with_ejection_ms(5_000, 60_000)),
    );
    let run = futures::stream::iter(0..REQUESTS)
        .map(|number| {
            let m = &m;
            async move { one(m, number).await }
        })
        .buffer_unordered(64)
        .collect::<Vec<bool>>();
    // A deadlock would let the paused clock run to this bound and fail instead of hanging.
    let outcomes = tokio::time::timeout(Duration::from_secs(24 * 3_600), run)
        .await
        .expect("no deadlock");
    let answered = outcomes.iter().filter(|ok| **ok).count();

    let stats = m.get_usage_stats();
    // Every request ended exactly once.
    assert_eq!(stats.total_requests, REQUESTS as u64);
    assert_eq!(
        stats.successful_requests + stats.failed_requests,
        REQUESTS as u64
    );
    assert_eq!(stats.successful_requests, answered as u64);
    assert_eq!(stats.cancelled_requests, 0);
    // Every attempt is a first try, a retry or a failover; and each reached its provider once.
    let attempts: u64 = stats.request_counts.values().sum();
    assert_eq!(
        attempts,
        stats.total_requests + stats.retries + stats.fallbacks
    );
    let calls: usize = providers.iter().map(|provider| provider.calls()).sum();
    assert_eq!(calls as u64, attempts);
    // Retries stay within each provider's budget: 20 % of the requests that reached it, plus
    // the floor of 10.
    for (name, provider) in &stats.providers {
        let first_tries = provider.requests - provider.retries;
        assert!(
            provider.retries <= 10 + first_tries / 5,
            "{name}: {} retries for {first_tries} requests",
            provider.retries
        );
    }
    // The faults happened, and were survived mostly.
    assert!(stats.retries > 0 && stats.fallbacks > 0);
    assert!(answered > REQUESTS * 9 / 10, "{answered}");
    // Nothing is left in flight.
    assert!(m.health().iter().all(|health| health.in_flight == 0));
    println!(
        "answered {answered} of {REQUESTS}; attempts {attempts}, retries {}, fallbacks {}, \
         ejections {}, panic mode {}",
        stats.retries, stats.fallbacks, stats.ejections, stats.panic_mode
    );
}
