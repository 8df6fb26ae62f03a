//! Retrying a failed attempt on the same provider: when (the error kind, the server's
//! `Retry-After`, the retry budget) and how long to wait (capped exponential backoff with full
//! jitter, the hint as a floor).

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use fazztv_core::{Error, RetryPolicy};

/// Retries a provider may spend however few requests it has seen (as Finagle's floor).
const FLOOR_RETRIES: u64 = 10;
/// Budget units per retry: a request deposits `budget_percent` units, a retry costs 100.
const RETRY_COST: u64 = 100;

/// Per-provider token bucket bounding retries to `budget_percent`% of requests plus a floor,
/// so an outage does not multiply the load on the provider that is failing.
#[derive(Debug)]
pub(crate) struct RetryBudget {
    units: AtomicU64,
}

impl RetryBudget {
    pub(crate) fn new() -> Self {
        Self {
            units: AtomicU64::new(FLOOR_RETRIES * RETRY_COST),
        }
    }

    /// A request reached this provider: it earns `percent`% of a retry, up to the floor's worth.
    pub(crate) fn deposit(&self, percent: u32) {
        let cap = FLOOR_RETRIES * RETRY_COST;
        // A failed update means another request changed the balance; either result is fine.
        let _ = self
            .units
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |units| {
                Some((units + u64::from(percent)).min(cap))
            });
    }

    /// Takes one retry from the budget; `false` when it is spent.
    pub(crate) fn withdraw(&self) -> bool {
        self.units
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |units| {
                units.checked_sub(RETRY_COST)
            })
            .is_ok()
    }
}

/// Why a failed attempt is not retried on the same provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoRetry {
    /// This failure took the provider out of rotation: another provider is the better bet.
    Ejected,
    /// The error kind is not worth retrying here, or the retries are used up.
    NotRetryable,
    /// The server asked for a longer wait than `max_retry_after`: better another provider.
    HintTooLong,
    /// The provider's retry budget is spent.
    BudgetSpent,
    /// The wait would outlast the request's deadline: better another provider now.
    PastDeadline,
}

/// How long to wait before retry number `retry` (0-based) after `error`, or why not to retry.
/// `max_retries` is the policy's or the request's own; `left` is the time left before the
/// request's deadline, if it has one.
pub(crate) fn wait_before_retry(
    policy: &RetryPolicy,
    max_retries: u32,
    retry: u32,
    error: &Error,
    budget: &RetryBudget,
    left: Option<Duration>,
) -> Result<Duration, NoRetry> {
    if !error.is_retryable() || retry >= max_retries {
        return Err(NoRetry::NotRetryable);
    }
    let hint = error.retry_after();
    if hint.is_some_and(|hint| hint > policy.max_retry_after) {
        return Err(NoRetry::HintTooLong);
    }
    let jittered = full_jitter(policy.backoff_cap(retry));
    // The server's hint is a floor, never shortened by jitter.
    let wait = hint.map_or(jittered, |hint| hint.max(jittered));
    // A retry that could only start at or after the deadline is no retry.
    if left.is_some_and(|left| wait >= left) {
        return Err(NoRetry::PastDeadline);
    }
    if !budget.withdraw() {
        return Err(NoRetry::BudgetSpent);
    }
    Ok(wait)
}

/// A uniformly drawn duration in `[0, cap]`.
fn full_jitter(cap: Duration) -> Duration {
    let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(uniform(nanos.saturating_add(1)))
}

/// A number drawn uniformly (up to a negligible modulo bias) from `[0, bound)`; 0 when `bound`
/// is 0.
pub(crate) fn uniform(bound: u64) -> u64 {
    if bound == 0 {
        return 0;
    }
    // A fresh `RandomState` is randomly keyed: enough randomness for jitter and for picking
    // candidates, with no RNG crate.
    RandomState::new().hash_one(bound) % bound
}

#[cfg(test)]
mod tests {
    use fazztv_core::{ErrorKind, RetrySettings};

    use super::*;

    fn policy() -> RetryPolicy {
        RetrySettings::default().policy()
    }

    #[test]
    fn backoff_doubles_from_the_initial_cap_up_to_the_largest_and_jitter_stays_below_it() {
        let policy = policy();
        let caps: Vec<u64> = (0..7)
            .map(|retry| policy.backoff_cap(retry).as_millis() as u64)
            .collect();
        assert_eq!(caps, [500, 1000, 2000, 4000, 8000, 8000, 8000]);
        assert_eq!(policy.backoff_cap(u32::MAX), Duration::from_secs(8));
        let budget = RetryBudget::new();
        let error = Error::new(ErrorKind::ServerError, "boom");
        for retry in 0..2 {
            for _ in 0..4 {
                budget.deposit(100);
                let wait = wait_before_retry(&policy, 2, retry, &error, &budget, None).unwrap();
                assert!(wait <= policy.backoff_cap(retry), "{wait:?}");
            }
        }
    }

    #[test]
    fn only_retryable_kinds_within_the_limit_and_the_hint_are_retried() {
        let policy = policy();
        let budget = RetryBudget::new();
        let quota = Error::new(ErrorKind::QuotaExhausted, "insufficient_quota");
        assert_eq!(
            wait_before_retry(&policy, 2, 0, &quota, &budget, None),
            Err(NoRetry::NotRetryable)
        );
        let busy = Error::new(ErrorKind::Overloaded, "busy");
        assert_eq!(
            wait_before_retry(&policy, 2, 2, &busy, &budget, None),
            Err(NoRetry::NotRetryable)
        );
        let limited = |seconds| {
            Error::new(ErrorKind::RateLimited, "slow down")
                .with_retry_after(Duration::from_secs(seconds))
        };
        let wait = wait_before_retry(&policy, 2, 0, &limited(2), &budget, None).unwrap();
        assert!(
            wait >= Duration::from_secs(2),
            "the hint is a floor: {wait:?}"
        );
        assert_eq!(
            wait_before_retry(&policy, 2, 0, &limited(61), &budget, None),
            Err(NoRetry::HintTooLong)
        );
    }

    #[test]
    fn a_wait_that_would_outlast_the_deadline_is_no_retry_and_costs_no_budget() {
        let policy = policy();
        let budget = RetryBudget::new();
        let limited = Error::new(ErrorKind::RateLimited, "slow down")
            .with_retry_after(Duration::from_secs(2));
        for left in [Duration::from_secs(2), Duration::from_millis(1_999)] {
            assert_eq!(
                wait_before_retry(&policy, 5, 0, &limited, &budget, Some(left)),
                Err(NoRetry::PastDeadline)
            );
        }
        // Nothing was withdrawn: the floor's ten retries are all still there.
        assert_eq!((0..20).filter(|_| budget.withdraw()).count(), 10);
        budget.deposit(100);
        let wait = wait_before_retry(
            &policy,
            5,
            0,
            &limited,
            &budget,
            Some(Duration::from_secs(3)),
        )
        .unwrap();
        assert!(wait >= Duration::from_secs(2) && wait < Duration::from_secs(3));
    }

    #[test]
    fn the_budget_allows_the_floor_then_a_share_of_requests() {
        let budget = RetryBudget::new();
        assert_eq!((0..20).filter(|_| budget.withdraw()).count(), 10);
        // 20 % of 50 requests: 10 more retries, and no more.
        for _ in 0..50 {
            budget.deposit(20);
        }
        assert_eq!((0..20).filter(|_| budget.withdraw()).count(), 10);
        // Deposits never bank more than the floor's worth.
        for _ in 0..1000 {
            budget.deposit(100);
        }
        assert_eq!((0..20).filter(|_| budget.withdraw()).count(), 10);
    }
}
