//! Where budgets, rate limits and the response cache keep their state: the [`StateStore`]
//! interface and the in-memory store a manager uses unless given another (a gateway's replicas
//! share one, e.g. in Redis, by implementing the same interface).

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fazztv_core::async_trait;
use fazztv_core::calendar::{civil_from_days, days_from_civil};
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::time::Instant;

/// A calendar window of a budget, in UTC.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Window {
    /// Each clock minute.
    Minute,
    /// Each clock hour.
    Hour,
    /// Each day, from midnight UTC.
    Day,
    /// Each calendar month, from the 1st, midnight UTC.
    Month,
    /// Forever: never resets.
    #[default]
    Total,
}

impl Window {
    /// The name used in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Month => "month",
            Self::Total => "total",
        }
    }

    /// The window containing `now`: its start and its end (when it resets), as seconds since
    /// the Unix epoch; `Total` is one window from 0, never ending.
    pub fn bounds(self, now: SystemTime) -> (u64, Option<u64>) {
        let seconds = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        let fixed = |length: u64| {
            let start = seconds - seconds % length;
            (start, Some(start + length))
        };
        match self {
            Self::Minute => fixed(60),
            Self::Hour => fixed(3_600),
            Self::Day => fixed(86_400),
            Self::Month => {
                let days = i64::try_from(seconds / 86_400).unwrap_or(i64::MAX);
                let (year, month, _) = civil_from_days(days);
                let (next_year, next_month) = if month == 12 {
                    (year + 1, 1)
                } else {
                    (year, month + 1)
                };
                let start = days_from_civil(year, month, 1);
                let end = days_from_civil(next_year, next_month, 1);
                let seconds_of = |days: i64| u64::try_from(days).unwrap_or(0) * 86_400;
                (seconds_of(start), Some(seconds_of(end)))
            }
            Self::Total => (0, None),
        }
    }
}

/// An amount held against a limit until the work it pays for has ended: then
/// [settled](StateStore::settle) to what was really spent (0 releases it).
#[derive(Debug, Clone, PartialEq)]
pub struct Reservation {
    key: String,
    window_start: u64,
    amount: f64,
}

impl Reservation {
    /// A reservation of `amount` under `key` in the window starting at `window_start` (seconds
    /// since the Unix epoch), as a store hands it out.
    pub fn new(key: impl Into<String>, window_start: u64, amount: f64) -> Self {
        Self {
            key: key.into(),
            window_start,
            amount,
        }
    }

    /// The amount held.
    pub fn amount(&self) -> f64 {
        self.amount
    }

    /// The key it is held under.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The start of the window it is held in (seconds since the Unix epoch).
    pub fn window_start(&self) -> u64 {
        self.window_start
    }
}

/// A limit that has no room for what was asked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exhausted {
    /// What is left in the current window (may be less than asked).
    pub remaining: f64,
    /// When the window resets (seconds since the Unix epoch); `None` for one that never does.
    pub resets_at: Option<u64>,
}

impl Exhausted {
    /// A window of `limit` of which `used` is taken (or held), resetting at `resets_at`.
    pub fn after(limit: f64, used: f64, resets_at: Option<u64>) -> Self {
        Self {
            remaining: (limit - used).max(0.0),
            resets_at,
        }
    }
}

/// A store that could not be asked: a shared store's server is unreachable, too slow or
/// failing. Nothing was taken; the request is refused rather than let through uncounted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StoreUnavailable {
    message: String,
}

impl StoreUnavailable {
    /// An outage described by `message`: which store, what failed and what to check. It must
    /// not quote a password.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// What failed.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Why a store gave no room: exhaustive, as a store either has no room or cannot be asked.
#[derive(Debug, Clone, PartialEq)]
pub enum Refused<T> {
    /// The limit has no room: for a budget what is left and when it resets ([`Exhausted`]),
    /// for a sliding window how long until there is room.
    Full(T),
    /// The store could not be asked, so nothing was taken.
    Unavailable(StoreUnavailable),
}

/// Shared counts behind budgets and rate limits. Every operation is atomic: two requests
/// that each fit alone but not together never both get room. Taking room is async (a shared
/// store asks its server); giving it back is not, so that a request dropped midway can give
/// back what it held (a shared store sends that in the background).
#[async_trait]
pub trait StateStore: fmt::Debug + Send + Sync {
    /// Holds `amount` against `limit` under `key` in the `window` containing `now`, when what
    /// was spent plus what is held plus `amount` stays within `limit`.
    async fn reserve(
        &self,
        key: &str,
        window: Window,
        now: SystemTime,
        limit: f64,
        amount: f64,
    ) -> Result<Reservation, Refused<Exhausted>>;

    /// Turns a reservation into what was really spent (0 releases it). Spending more than was
    /// held is recorded as spent (the limit can then be overrun by that one request).
    fn settle(&self, reservation: Reservation, spent: f64);

    /// What was spent and is held under `key` in the window containing `now`.
    async fn used(
        &self,
        key: &str,
        window: Window,
        now: SystemTime,
    ) -> Result<f64, StoreUnavailable>;

    /// Takes `amount` from a sliding-window limit of `limit` per `period` under `key`, as of
    /// `now`: `Ok` with a handle to correct it later, or how long until it would fit. A shared
    /// store may count on its own clock instead of `now` (which is local to this process).
    async fn acquire(
        &self,
        key: &str,
        period: Duration,
        now: Instant,
        limit: u64,
        amount: u64,
    ) -> Result<Taken, Refused<Duration>>;

    /// Corrects what an [`acquire`](Self::acquire) took to `amount` (a token estimate to the
    /// reported usage).
    fn correct(&self, taken: Taken, amount: u64);

    /// The answer cached under `key` (a serialised answer), unless there is none or it expired
    /// by `now`. A store that cannot be asked answers none.
    async fn cache_get(&self, key: &str, now: Instant) -> Option<Vec<u8>>;

    /// Caches `value` under `key` from `now` for `ttl`, replacing what was there. Not async,
    /// so that a stream can store its answer as its last event passes (a shared store sends
    /// it in the background). A store may keep fewer entries than it is given.
    fn cache_put(&self, key: &str, value: Vec<u8>, ttl: Duration, now: Instant);

    /// Waits until what was handed over without waiting (settlements, corrections, cached
    /// answers) has reached the store, so that a process about to exit loses none; a store
    /// that applies them at once has nothing to wait for.
    async fn flush(&self) {}
}

/// What one [`StateStore::acquire`] took, to correct it later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    key: String,
    id: u64,
}

impl Taken {
    /// What acquisition `id` took under `key`, as a store hands it out.
    pub fn new(key: impl Into<String>, id: u64) -> Self {
        Self {
            key: key.into(),
            id,
        }
    }

    /// The key it was taken under.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The acquisition's id, unique under its key.
    pub fn id(&self) -> u64 {
        self.id
    }
}

/// The store a manager uses unless given another: counts and cached answers in this process.
/// It keeps at most its `max_entries` answers (the least used go first), each until its TTL.
pub struct InMemoryStore {
    inner: Mutex<Counts>,
    answers: moka::sync::Cache<String, Cached>,
}

/// One cached answer: its bytes, and when it expires on the caller's clock (the one a test
/// can pause; the cache's own clock only frees the memory).
#[derive(Debug, Clone)]
struct Cached {
    value: Arc<[u8]>,
    expires: Instant,
    ttl: Duration,
}

/// Each entry lives as long as it was stored for.
struct EntryTtl;

impl moka::Expiry<String, Cached> for EntryTtl {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Cached,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

impl fmt::Debug for InMemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the answers themselves: they are the users' conversations.
        f.debug_struct("InMemoryStore")
            .field("counts", &self.inner)
            .field("cached_answers", &self.answers.entry_count())
            .finish()
    }
}

impl Default for InMemoryStore {
    fn default() -> Self {
        Self::with_max_entries(crate::config::CacheSettings::default().max_entries)
    }
}

#[derive(Debug, Default)]
struct Counts {
    /// Per key: the window it counts in and what is spent plus held there.
    budgets: BTreeMap<String, (u64, f64)>,
    /// Per key: what each acquisition took, and when, oldest first.
    windows: BTreeMap<String, VecDeque<(Instant, u64, u64)>>,
    next_id: u64,
}

impl InMemoryStore {
    /// An empty store keeping the default number of answers (`cache.max_entries`).
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store keeping at most `max_entries` cached answers.
    pub fn with_max_entries(max_entries: u64) -> Self {
        Self {
            inner: Mutex::default(),
            answers: moka::sync::Cache::builder()
                .max_capacity(max_entries)
                .expire_after(EntryTtl)
                .build(),
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        // Counts stay consistent under a panic elsewhere: each update is one assignment.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl StateStore for InMemoryStore {
    async fn reserve(
        &self,
        key: &str,
        window: Window,
        now: SystemTime,
        limit: f64,
        amount: f64,
    ) -> Result<Reservation, Refused<Exhausted>> {
        let (start, end) = window.bounds(now);
        let mut counts = self.counts();
        let used = match counts.budgets.get(key) {
            Some((counted_from, used)) if *counted_from == start => *used,
            _ => 0.0,
        };
        if used + amount > limit {
            return Err(Refused::Full(Exhausted::after(limit, used, end)));
        }
        counts
            .budgets
            .insert(key.to_owned(), (start, used + amount));
        Ok(Reservation {
            key: key.to_owned(),
            window_start: start,
            amount,
        })
    }

    fn settle(&self, reservation: Reservation, spent: f64) {
        let mut counts = self.counts();
        if let Some((start, used)) = counts.budgets.get_mut(&reservation.key) {
            // A window that reset meanwhile no longer holds the reservation; the spending
            // counts in the window it was reserved in, which is over.
            if *start == reservation.window_start {
                *used = (*used - reservation.amount + spent).max(0.0);
            }
        }
    }

    async fn used(
        &self,
        key: &str,
        window: Window,
        now: SystemTime,
    ) -> Result<f64, StoreUnavailable> {
        let (start, _) = window.bounds(now);
        Ok(match self.counts().budgets.get(key) {
            Some((counted_from, used)) if *counted_from == start => *used,
            _ => 0.0,
        })
    }

    async fn acquire(
        &self,
        key: &str,
        period: Duration,
        now: Instant,
        limit: u64,
        amount: u64,
    ) -> Result<Taken, Refused<Duration>> {
        let mut counts = self.counts();
        let id = counts.next_id;
        let entries = counts.windows.entry(key.to_owned()).or_default();
        while entries
            .front()
            .is_some_and(|(at, _, _)| now.duration_since(*at) >= period)
        {
            entries.pop_front();
        }
        let mut taken: u64 = entries.iter().map(|(_, _, amount)| amount).sum();
        // One request larger than the whole limit would never fit: let it through alone.
        let amount_counted = amount.min(limit);
        if taken + amount_counted > limit {
            // Room comes as the oldest entries leave the window.
            for (at, _, amount) in entries.iter() {
                taken = taken.saturating_sub(*amount);
                if taken + amount_counted <= limit {
                    return Err(Refused::Full((*at + period).saturating_duration_since(now)));
                }
            }
            return Err(Refused::Full(period));
        }
        entries.push_back((now, id, amount));
        counts.next_id += 1;
        Ok(Taken {
            key: key.to_owned(),
            id,
        })
    }

    fn correct(&self, taken: Taken, amount: u64) {
        let mut counts = self.counts();
        if let Some(entries) = counts.windows.get_mut(&taken.key) {
            if let Some(entry) = entries.iter_mut().find(|(_, id, _)| *id == taken.id) {
                entry.2 = amount;
            }
        }
    }

    async fn cache_get(&self, key: &str, now: Instant) -> Option<Vec<u8>> {
        let cached = self.answers.get(key)?;
        if now >= cached.expires {
            self.answers.invalidate(key);
            return None;
        }
        Some(cached.value.to_vec())
    }

    fn cache_put(&self, key: &str, value: Vec<u8>, ttl: Duration, now: Instant) {
        let cached = Cached {
            value: value.into(),
            expires: now + ttl,
            ttl,
        };
        self.answers.insert(key.to_owned(), cached);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(date: (i64, u32, u32), seconds: u64) -> SystemTime {
        let days = u64::try_from(days_from_civil(date.0, date.1, date.2)).unwrap();
        UNIX_EPOCH + Duration::from_secs(days * 86_400 + seconds)
    }

    #[tokio::test]
    async fn the_in_memory_store_passes_the_state_store_checks() {
        use crate::state_conformance as checks;
        let day = at((2026, 11, 30), 0);
        checks::reservations_hold_room_until_settled_and_windows_reset(&InMemoryStore::new(), day)
            .await;
        checks::a_settlement_after_its_window_reset_does_not_touch_the_new_window(
            &InMemoryStore::new(),
            day,
        )
        .await;
        checks::a_correction_replaces_the_estimate(&InMemoryStore::new()).await;
    }

    #[test]
    fn calendar_windows_start_and_reset_on_utc_boundaries() {
        let now = at((2026, 12, 31), 3_723); // 01:02:03
        let day = |date: (i64, u32, u32)| {
            u64::try_from(days_from_civil(date.0, date.1, date.2)).unwrap() * 86_400
        };
        let midnight = day((2026, 12, 31));
        assert_eq!(
            Window::Minute.bounds(now),
            (midnight + 3_720, Some(midnight + 3_780))
        );
        assert_eq!(
            Window::Hour.bounds(now),
            (midnight + 3_600, Some(midnight + 7_200))
        );
        assert_eq!(Window::Day.bounds(now), (midnight, Some(midnight + 86_400)));
        assert_eq!(
            Window::Month.bounds(now),
            (day((2026, 12, 1)), Some(day((2027, 1, 1))))
        );
        assert_eq!(
            Window::Month.bounds(at((2028, 2, 29), 0)),
            (day((2028, 2, 1)), Some(day((2028, 3, 1))))
        );
        assert_eq!(Window::Total.bounds(now), (0, None));
    }

    #[tokio::test]
    async fn a_sliding_window_says_when_room_comes_back() {
        let store = InMemoryStore::new();
        let start = Instant::now();
        let minute = Duration::from_secs(60);
        store.acquire("r", minute, start, 2, 1).await.unwrap();
        store
            .acquire("r", minute, start + Duration::from_secs(10), 2, 1)
            .await
            .unwrap();
        let wait = store
            .acquire("r", minute, start + Duration::from_secs(30), 2, 1)
            .await
            .unwrap_err();
        assert_eq!(wait, Refused::Full(Duration::from_secs(30)));
        // Once the first leaves the window, there is room again.
        assert!(
            store
                .acquire("r", minute, start + minute, 2, 1)
                .await
                .is_ok()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn cached_answers_expire_after_their_ttl() {
        let store = InMemoryStore::new();
        let minute = Duration::from_secs(60);
        store.cache_put("a", b"answer".to_vec(), minute, Instant::now());
        store.cache_put("b", b"other".to_vec(), 2 * minute, Instant::now());
        assert_eq!(
            store.cache_get("a", Instant::now()).await,
            Some(b"answer".to_vec())
        );
        tokio::time::advance(minute - Duration::from_millis(1)).await;
        assert!(store.cache_get("a", Instant::now()).await.is_some());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(store.cache_get("a", Instant::now()).await, None);
        // Each entry keeps its own TTL; a new put starts it again.
        assert!(store.cache_get("b", Instant::now()).await.is_some());
        store.cache_put("a", b"again".to_vec(), minute, Instant::now());
        assert_eq!(
            store.cache_get("a", Instant::now()).await,
            Some(b"again".to_vec())
        );
    }

    #[tokio::test]
    async fn the_cache_keeps_at_most_its_max_entries() {
        let store = InMemoryStore::with_max_entries(3);
        let hour = Duration::from_secs(3_600);
        for index in 0..20 {
            store.cache_put(&format!("k{index}"), vec![index], hour, Instant::now());
        }
        // Eviction is the cache's housekeeping, done in batches: done now, to count.
        store.answers.run_pending_tasks();
        assert!(store.answers.entry_count() <= 3, "{store:?}");
        let mut kept = 0;
        for index in 0..20 {
            kept += usize::from(
                store
                    .cache_get(&format!("k{index}"), Instant::now())
                    .await
                    .is_some(),
            );
        }
        assert!((1..=3).contains(&kept), "{kept} kept");
    }
}
