//! Passive health: each provider's recent failures, its ejection from rotation when it keeps
//! failing (for a time that grows while it keeps failing and shrinks while it stays healthy),
//! one half-open probe with a real request when the ejection ends, and the latency and
//! in-flight figures the routing strategies read.
//!
//! Admission is read lock-free on every attempt (one atomic load while a provider is healthy);
//! the lock is only taken on failures and state changes.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use fazztv_core::ErrorKind;
use serde::Serialize;
use tokio::time::Instant;

use crate::config::HealthSettings;

/// How many recent error kinds a provider's health keeps.
const RECENT_ERRORS: usize = 8;
/// Weight of the newest sample in the latency averages.
const EWMA_WEIGHT: f64 = 0.2;

/// A provider's state, as [`ProviderManager::health`](crate::ProviderManager::health) reports it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum HealthState {
    /// In rotation.
    Healthy,
    /// Out of rotation for this much longer (requests skip it, unless every candidate is
    /// ejected).
    Ejected {
        /// Time left of the ejection.
        #[serde(rename = "ejected_for_ms", serialize_with = "milliseconds")]
        ejected_for: Duration,
    },
    /// The ejection ended: the next request is a probe, and its outcome decides.
    HalfOpen,
}

impl HealthState {
    /// `healthy`, `ejected` or `half_open`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Ejected { .. } => "ejected",
            Self::HalfOpen => "half_open",
        }
    }
}

fn milliseconds<S: serde::Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
}

/// One provider's health.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ProviderHealth {
    /// The instance name.
    pub provider: String,
    /// Healthy, ejected or half-open.
    #[serde(flatten)]
    pub state: HealthState,
    /// Failures in a row that count against its health.
    pub consecutive_failures: u32,
    /// The kinds of its latest failures, oldest first (at most 8).
    pub recent_errors: Vec<ErrorKind>,
    /// Moving average of its one-piece answers' latency, in milliseconds (`None` before any).
    pub latency_ms: Option<f64>,
    /// Moving average of its streams' time to first token, in milliseconds.
    pub ttft_ms: Option<f64>,
    /// Requests it is serving now (streams until their end).
    pub in_flight: usize,
    /// Times it was ejected.
    pub ejections: u64,
}

/// Whether an attempt may go to a provider now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Healthy: go.
    Open,
    /// Its ejection ended and this attempt is the one probe: go, and its outcome decides.
    Probe,
    /// Every candidate is ejected and this one recovers first: go anyway (panic mode).
    Panic,
    /// Out of rotation for `left` more (zero: half-open, another request is probing it).
    Ejected { left: Duration },
}

/// What a recorded outcome changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// The provider was ejected for `length` after a failure of `kind`.
    Ejected { length: Duration, kind: ErrorKind },
    /// An ejected provider answered: it is back in rotation.
    Recovered,
}

/// The resolved `manager.health` settings.
#[derive(Debug, Clone, Copy)]
struct Policy {
    consecutive_failures: u32,
    base_ejection: Duration,
    max_ejection: Duration,
}

impl Policy {
    fn new(settings: &HealthSettings) -> Self {
        let base = Duration::from_millis(settings.base_ejection_ms.unwrap_or(30_000).max(1));
        Self {
            consecutive_failures: settings.consecutive_failures.unwrap_or(5).max(1),
            base_ejection: base,
            max_ejection: Duration::from_millis(settings.max_ejection_ms.unwrap_or(300_000))
                .max(base),
        }
    }
}

/// The health of every provider, by entry index.
#[derive(Debug)]
pub(crate) struct Health {
    policy: Policy,
    /// Times are kept as milliseconds since this instant, so they fit in atomics.
    epoch: Instant,
    slots: Vec<Slot>,
}

#[derive(Debug, Default)]
struct Slot {
    /// When the ejection ends, in ms since the epoch plus one; 0 while in rotation.
    ejected_until: AtomicU64,
    consecutive: AtomicU32,
    in_flight: AtomicUsize,
    latency: Ewma,
    ttft: Ewma,
    detail: Mutex<Detail>,
}

#[derive(Debug, Default)]
struct Detail {
    /// Ejections without a healthy period long enough to forget them: the exponent of the
    /// next ejection's length.
    in_a_row: u32,
    /// Whether a probe is under way (half-open).
    probing: bool,
    /// When it last came back into rotation (ms since the epoch).
    healthy_since: u64,
    recent: VecDeque<ErrorKind>,
    ejections: u64,
}

/// Whether a failure of this kind says something about the provider's health. A request's
/// own faults (bad request, unknown model, content refused), the caller's deadline or
/// cancellation, and local configuration never do.
fn counts(kind: ErrorKind) -> bool {
    kind.is_upstream_failure() || is_credential(kind) || kind == ErrorKind::RateLimited
}

/// A rejected key or an exhausted quota: waiting a little will not fix it.
fn is_credential(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::Authentication | ErrorKind::PermissionDenied | ErrorKind::QuotaExhausted
    )
}

impl Health {
    pub(crate) fn new(settings: &HealthSettings, providers: usize) -> Self {
        Self {
            policy: Policy::new(settings),
            epoch: Instant::now(),
            slots: (0..providers).map(|_| Slot::default()).collect(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// May an attempt go to provider `index` now? A half-open provider admits one probe.
    pub(crate) fn admit(&self, index: usize) -> Admission {
        let slot = &self.slots[index];
        let until = slot.ejected_until.load(Ordering::Acquire);
        if until == 0 {
            return Admission::Open;
        }
        let now = self.now_ms() + 1;
        if now < until {
            return Admission::Ejected {
                left: Duration::from_millis(until - now),
            };
        }
        let mut detail = lock(&slot.detail);
        if detail.probing {
            return Admission::Ejected {
                left: Duration::ZERO,
            };
        }
        detail.probing = true;
        Admission::Probe
    }

    /// Whether provider `index` takes requests (healthy, or half-open), without claiming a
    /// probe.
    pub(crate) fn in_rotation(&self, index: usize) -> bool {
        let until = self.slots[index].ejected_until.load(Ordering::Acquire);
        until == 0 || self.now_ms() + 1 >= until
    }

    /// Of the ejected providers `indices`, the one whose ejection ends first.
    pub(crate) fn recovers_first(&self, indices: impl Iterator<Item = usize>) -> Option<usize> {
        indices.min_by_key(|&index| self.slots[index].ejected_until.load(Ordering::Acquire))
    }

    /// An attempt starts: counted in flight until [`finished`](Self::finished).
    pub(crate) fn started(&self, index: usize) {
        self.slots[index].in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// An attempt (or a committed stream) ended.
    pub(crate) fn finished(&self, index: usize) {
        self.slots[index].in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// Requests provider `index` is serving now.
    pub(crate) fn in_flight(&self, index: usize) -> usize {
        self.slots[index].in_flight.load(Ordering::Relaxed)
    }

    /// Its moving average latency (time to first token for streams), if it answered before.
    pub(crate) fn latency(&self, index: usize) -> Option<f64> {
        let slot = &self.slots[index];
        slot.latency.get().or_else(|| slot.ttft.get())
    }

    /// An attempt admitted as `admission` answered (`streamed`: its latency is a time to first
    /// token).
    pub(crate) fn succeeded(
        &self,
        index: usize,
        admission: Admission,
        latency: Duration,
        streamed: bool,
    ) -> Option<Change> {
        let slot = &self.slots[index];
        let milliseconds = latency.as_secs_f64() * 1_000.0;
        if streamed {
            slot.ttft.add(milliseconds);
        } else {
            slot.latency.add(milliseconds);
        }
        if slot.consecutive.load(Ordering::Relaxed) != 0 {
            slot.consecutive.store(0, Ordering::Relaxed);
        }
        if admission == Admission::Open && slot.ejected_until.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut detail = lock(&slot.detail);
        if admission == Admission::Probe {
            detail.probing = false;
        }
        if slot.ejected_until.swap(0, Ordering::AcqRel) == 0 {
            return None;
        }
        detail.healthy_since = self.now_ms();
        Some(Change::Recovered)
    }

    /// An attempt admitted as `admission` failed with `kind`. Ejects the provider after enough
    /// failures in a row, at once for a rejected key or an exhausted quota (for the longest
    /// time), and again when its probe fails. An ejection is only ever extended.
    pub(crate) fn failed(
        &self,
        index: usize,
        admission: Admission,
        kind: ErrorKind,
    ) -> Option<Change> {
        let probe = admission == Admission::Probe;
        self.fail(index, kind, probe, probe)
    }

    /// An active check of provider `index` failed with `kind`: it could not even answer a
    /// cheap request, so a check that says something about its health ejects it at once.
    pub(crate) fn check_failed(&self, index: usize, kind: ErrorKind) -> Option<Change> {
        self.fail(index, kind, true, false)
    }

    /// An active check of provider `index` passed: a provider whose ejection has ended (and
    /// that no request is probing) is back in rotation. Passive evidence decides otherwise.
    pub(crate) fn check_passed(&self, index: usize) -> Option<Change> {
        let slot = &self.slots[index];
        let until = slot.ejected_until.load(Ordering::Acquire);
        if until == 0 || self.now_ms() + 1 < until {
            return None;
        }
        let mut detail = lock(&slot.detail);
        if detail.probing || slot.ejected_until.swap(0, Ordering::AcqRel) == 0 {
            return None;
        }
        detail.healthy_since = self.now_ms();
        Some(Change::Recovered)
    }

    /// Records a failure of `kind`; `decisive` ejects at once, `ends_probe` gives the probe's
    /// turn back.
    fn fail(
        &self,
        index: usize,
        kind: ErrorKind,
        decisive: bool,
        ends_probe: bool,
    ) -> Option<Change> {
        let slot = &self.slots[index];
        let mut detail = lock(&slot.detail);
        if detail.recent.len() == RECENT_ERRORS {
            detail.recent.pop_front();
        }
        detail.recent.push_back(kind);
        if ends_probe {
            detail.probing = false;
        }
        if !counts(kind) {
            return None;
        }
        let failures = slot.consecutive.fetch_add(1, Ordering::Relaxed) + 1;
        let eject = decisive || is_credential(kind) || failures >= self.policy.consecutive_failures;
        if !eject {
            return None;
        }
        let now = self.now_ms();
        let until = slot.ejected_until.load(Ordering::Acquire);
        if until == 0 {
            // Each healthy period as long as the base ejection forgets one ejection in a row.
            let healthy = now.saturating_sub(detail.healthy_since);
            let forgotten = healthy
                / u64::try_from(self.policy.base_ejection.as_millis())
                    .unwrap_or(u64::MAX)
                    .max(1);
            detail.in_a_row = detail
                .in_a_row
                .saturating_sub(u32::try_from(forgotten).unwrap_or(u32::MAX));
        }
        let length = if is_credential(kind) {
            self.policy.max_ejection
        } else {
            self.policy
                .base_ejection
                .saturating_mul(1u32.checked_shl(detail.in_a_row).unwrap_or(u32::MAX))
                .min(self.policy.max_ejection)
        };
        let new_until = now + u64::try_from(length.as_millis()).unwrap_or(u64::MAX) + 1;
        // Never shortened: a second failure with a shorter ejection keeps the longer one.
        slot.ejected_until.fetch_max(new_until, Ordering::AcqRel);
        slot.consecutive.store(0, Ordering::Relaxed);
        detail.in_a_row = detail.in_a_row.saturating_add(1);
        detail.ejections += 1;
        Some(Change::Ejected { length, kind })
    }

    /// An attempt admitted as `admission` was cancelled: a probe gives its turn back.
    pub(crate) fn cancelled(&self, index: usize, admission: Admission) {
        if admission == Admission::Probe {
            lock(&self.slots[index].detail).probing = false;
        }
    }

    /// The health of provider `index`, named `provider`.
    pub(crate) fn report(&self, index: usize, provider: &str) -> ProviderHealth {
        let slot = &self.slots[index];
        let detail = lock(&slot.detail);
        let until = slot.ejected_until.load(Ordering::Acquire);
        let now = self.now_ms() + 1;
        let state = if until == 0 {
            HealthState::Healthy
        } else if now < until {
            HealthState::Ejected {
                ejected_for: Duration::from_millis(until - now),
            }
        } else {
            HealthState::HalfOpen
        };
        ProviderHealth {
            provider: provider.to_owned(),
            state,
            consecutive_failures: slot.consecutive.load(Ordering::Relaxed),
            recent_errors: detail.recent.iter().copied().collect(),
            latency_ms: slot.latency.get(),
            ttft_ms: slot.ttft.get(),
            in_flight: slot.in_flight.load(Ordering::Relaxed),
            ejections: detail.ejections,
        }
    }
}

/// An exponentially weighted moving average, lock-free (`f64` bits in an atomic; 0: none yet).
#[derive(Debug, Default)]
struct Ewma(AtomicU64);

impl Ewma {
    fn add(&self, sample: f64) {
        // A plain load and store, not a compare-and-swap loop that concurrent requests would
        // contend on: a lost race drops one sample's weight, and either value is a fair average.
        let bits = self.0.load(Ordering::Relaxed);
        let average = f64::from_bits(bits);
        let next = if bits == 0 {
            sample
        } else {
            average + EWMA_WEIGHT * (sample - average)
        };
        // A zero sample must not read as "none yet".
        self.0
            .store(next.max(f64::MIN_POSITIVE).to_bits(), Ordering::Relaxed);
    }

    fn get(&self) -> Option<f64> {
        let bits = self.0.load(Ordering::Relaxed);
        (bits != 0).then(|| f64::from_bits(bits))
    }
}

/// Poisoning cannot leave the detail inconsistent in a way that matters.
fn lock(detail: &Mutex<Detail>) -> MutexGuard<'_, Detail> {
    detail
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(failures: u32) -> Health {
        Health::new(
            &HealthSettings::default()
                .with_consecutive_failures(failures)
                .with_ejection_ms(1_000, 8_000),
            1,
        )
    }

    fn ejected(seconds: u64, kind: ErrorKind) -> Option<Change> {
        Some(Change::Ejected {
            length: Duration::from_secs(seconds),
            kind,
        })
    }

    fn eject(health: &Health) -> Option<Change> {
        health.failed(0, Admission::Open, ErrorKind::ServerError)
    }

    #[tokio::test(start_paused = true)]
    async fn consecutive_failures_eject_and_a_success_in_between_starts_the_count_again() {
        let health = health(3);
        assert_eq!(eject(&health), None);
        assert_eq!(eject(&health), None);
        health.succeeded(0, Admission::Open, Duration::from_millis(5), false);
        assert_eq!(eject(&health), None);
        assert_eq!(eject(&health), None);
        // Client mistakes never count.
        assert_eq!(
            health.failed(0, Admission::Open, ErrorKind::InvalidRequest),
            None
        );
        assert_eq!(eject(&health), ejected(1, ErrorKind::ServerError));
        assert_eq!(
            health.admit(0),
            Admission::Ejected {
                left: Duration::from_secs(1)
            }
        );
        assert_eq!(health.report(0, "p").recent_errors.len(), 6);
    }

    #[tokio::test(start_paused = true)]
    async fn one_probe_at_a_time_after_the_ejection_and_its_outcome_decides() {
        let health = health(1);
        eject(&health);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(health.report(0, "p").state, HealthState::HalfOpen);
        assert_eq!(health.admit(0), Admission::Probe);
        assert_eq!(
            health.admit(0),
            Admission::Ejected {
                left: Duration::ZERO
            }
        );
        // The probe fails: ejected again, for twice as long.
        assert_eq!(
            health.failed(0, Admission::Probe, ErrorKind::Timeout),
            ejected(2, ErrorKind::Timeout)
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(health.admit(0), Admission::Probe);
        assert_eq!(
            health.succeeded(0, Admission::Probe, Duration::from_millis(3), false),
            Some(Change::Recovered)
        );
        assert_eq!(health.admit(0), Admission::Open);
        assert_eq!(health.report(0, "p").ejections, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn ejections_grow_while_failing_are_capped_and_decay_while_healthy() {
        let health = health(1);
        let mut lengths = Vec::new();
        for _ in 0..5 {
            let Some(Change::Ejected { length, .. }) = eject(&health) else {
                panic!("ejected")
            };
            lengths.push(length.as_secs());
            tokio::time::advance(length).await;
            assert_eq!(health.admit(0), Admission::Probe);
            health.succeeded(0, Admission::Probe, Duration::ZERO, false);
        }
        assert_eq!(lengths, [1, 2, 4, 8, 8]);
        // Healthy for 3 base periods: three ejections in a row are forgotten.
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(eject(&health), ejected(4, ErrorKind::ServerError));
    }

    #[tokio::test(start_paused = true)]
    async fn row_44_an_ejection_is_extended_never_shortened() {
        let health = health(1);
        // A rejected key ejects at once for the longest time.
        assert_eq!(
            health.failed(0, Admission::Open, ErrorKind::Authentication),
            ejected(8, ErrorKind::Authentication)
        );
        // A later, shorter ejection (a server error) does not cut it short.
        health.failed(0, Admission::Open, ErrorKind::ServerError);
        assert_eq!(
            health.admit(0),
            Admission::Ejected {
                left: Duration::from_secs(8)
            }
        );
    }

    #[test]
    fn a_moving_average_starts_at_its_first_sample_and_leans_to_new_ones() {
        let average = Ewma::default();
        assert_eq!(average.get(), None);
        average.add(100.0);
        assert_eq!(average.get(), Some(100.0));
        average.add(200.0);
        assert_eq!(average.get(), Some(120.0));
        let zero = Ewma::default();
        zero.add(0.0);
        assert!(zero.get().is_some());
    }
}
