//! Budgets and rate limits, checked before each attempt is sent: a provider's `rate_limit`
//! (requests at once, requests and tokens per minute) waits for room or falls back, and every
//! budget that applies reserves what the attempt may cost at most, settled to what it cost
//! when it ends. Counts live in a [`StateStore`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use fazztv_core::calendar::civil_from_days;
use fazztv_core::{Error, ErrorKind, ListedPrice, OnLimit, RateLimit, Usage};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::config::{Budget, OnExceeded};
use crate::cost::PromptFacts;
use crate::deadline::Deadline;
use crate::manager::Inner;
use crate::registry::ProviderEntry;
use crate::state::{Exhausted, Refused, Reservation, StateStore, StoreUnavailable, Taken, Window};

/// Output tokens reserved for a request without `max_tokens` when its budget names none.
const DEFAULT_RESERVE_OUTPUT_TOKENS: u32 = 4_096;
const MINUTE: Duration = Duration::from_secs(60);

/// What a budget limits, parsed from its `scope`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scope {
    Global,
    Provider(String),
    Model(String),
    Tag(String),
    Key(String),
}

impl Scope {
    /// Parses `global`, `provider:NAME`, `model:ID`, `tag:TAG` or `key:NAME`; the error says
    /// what is expected.
    pub(crate) fn parse(scope: &str) -> Result<Self, String> {
        if scope == "global" {
            return Ok(Self::Global);
        }
        let expected = "expected `global`, `provider:NAME`, `model:ID`, `tag:TAG` or `key:NAME`";
        let Some((kind, name)) = scope.split_once(':').filter(|(_, name)| !name.is_empty()) else {
            return Err(format!("`{scope}` is not a budget scope; {expected}"));
        };
        let name = name.to_owned();
        match kind {
            "provider" => Ok(Self::Provider(name)),
            "model" => Ok(Self::Model(name)),
            "tag" => Ok(Self::Tag(name)),
            "key" => Ok(Self::Key(name)),
            _ => Err(format!(
                "`{kind}` is not a kind of budget scope; {expected}"
            )),
        }
    }
}

/// Who a request is for, as budgets see it: its tags and the name of the key it came with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Requester {
    pub(crate) tags: Vec<String>,
    pub(crate) key: Option<String>,
}

/// One budget, ready to check.
#[derive(Debug)]
struct BudgetRule {
    /// Its key in the store: the scope and window, so two budgets never share counts.
    key: String,
    scope: Scope,
    /// As configured, for messages.
    label: String,
    limit: f64,
    window: Window,
    on_exceeded: OnExceeded,
    reserve_output_tokens: u32,
}

impl BudgetRule {
    fn applies(&self, provider: &str, model: Option<&str>, requester: &Requester) -> bool {
        match &self.scope {
            Scope::Global => true,
            Scope::Provider(name) => name == provider,
            Scope::Model(id) => model == Some(id.as_str()),
            Scope::Tag(tag) => requester.tags.contains(tag),
            Scope::Key(name) => requester.key.as_deref() == Some(name.as_str()),
        }
    }

    /// The error of a request it has no room for at `now`; it carries the wait until the
    /// window resets as its retry-after, when the window ever resets.
    fn exceeded(&self, exhausted: Exhausted, wanted: f64, now: SystemTime) -> Error {
        let resets = match exhausted.resets_at {
            Some(at) => format!("it resets at {}", utc(at)),
            None => String::from("it never resets (window `total`)"),
        };
        let error = Error::new(
            ErrorKind::BudgetExceeded,
            format!("{}; {resets}", self.short_of(exhausted.remaining, wanted)),
        );
        match exhausted.resets_at {
            Some(at) => {
                let now = now
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |since| since.as_secs());
                error.with_retry_after(Duration::from_secs(at.saturating_sub(now).max(1)))
            }
            None => error,
        }
    }

    /// That it has `remaining` left, less than the `wanted` a request may cost.
    fn short_of(&self, remaining: f64, wanted: f64) -> String {
        format!(
            "budget `{}` ({} USD per {}) has {remaining:.6} USD left, less than this request \
             may cost ({wanted:.6} USD)",
            self.label,
            self.limit,
            self.window.as_str(),
        )
    }

    /// What a request with `facts` may cost at most at `price`; an unknown price cannot be
    /// reserved (counted as 0).
    fn wanted(&self, price: Option<&ListedPrice>, facts: PromptFacts) -> f64 {
        let output = facts.max_tokens.unwrap_or(self.reserve_output_tokens);
        price.map_or(0.0, |price| {
            let usage = Usage::new(facts.estimated_tokens, u64::from(output));
            price.pricing.cost(&usage, facts.images).0.total()
        })
    }
}

/// A provider's rate limit, ready to check: one set of counts per key, as each key has its
/// own limits at the provider.
#[derive(Debug)]
struct RateRule {
    limit: RateLimit,
    /// By key.
    concurrency: Vec<Option<Arc<Semaphore>>>,
    requests_keys: Vec<String>,
    tokens_keys: Vec<String>,
}

/// Every budget and rate limit of a manager, and the store that counts them.
#[derive(Debug)]
pub(crate) struct Limits {
    pub(crate) store: Arc<dyn StateStore>,
    budgets: Vec<BudgetRule>,
    /// By entry index.
    rates: Vec<Option<RateRule>>,
}

/// Why an attempt may not be sent.
pub(crate) enum Refusal {
    /// Try the next provider; the reason is listed as a skipped attempt.
    Skip { reason: String, error: Error },
    /// End the request with this error.
    Fail(Error),
}

impl Limits {
    /// The limits of `budgets` and of each entry's `rate_limit`. Budgets were validated with
    /// the configuration; one whose scope does not parse is left out.
    pub(crate) fn new(
        store: Arc<dyn StateStore>,
        budgets: &[Budget],
        entries: &[ProviderEntry],
    ) -> Self {
        let budgets = budgets
            .iter()
            .filter_map(|budget| {
                let scope = Scope::parse(&budget.scope).ok()?;
                Some(BudgetRule {
                    key: format!("budget/{}/{}", budget.scope, budget.window.as_str()),
                    scope,
                    label: budget.scope.clone(),
                    limit: budget.limit_usd,
                    window: budget.window,
                    on_exceeded: budget.on_exceeded,
                    reserve_output_tokens: budget
                        .reserve_output_tokens
                        .unwrap_or(DEFAULT_RESERVE_OUTPUT_TOKENS),
                })
            })
            .collect();
        let rates = entries
            .iter()
            .map(|entry| {
                let limit = entry.config().rate_limit.clone()?;
                let keys = 0..entry.keys().len();
                let concurrency = keys
                    .clone()
                    .map(|_| {
                        limit
                            .max_concurrent
                            .map(|max| Arc::new(Semaphore::new(max as usize)))
                    })
                    .collect();
                let counts = |kind: &str| {
                    keys.clone()
                        .map(|key| format!("{kind}/{}/{key}", entry.name()))
                        .collect()
                };
                Some(RateRule {
                    concurrency,
                    requests_keys: counts("rpm"),
                    tokens_keys: counts("tpm"),
                    limit,
                })
            })
            .collect();
        Self {
            store,
            budgets,
            rates,
        }
    }

    /// The budgets that apply to an attempt at `entry` asking `model` for `requester`.
    fn applying<'a>(
        &'a self,
        entry: &'a ProviderEntry,
        model: Option<&'a str>,
        requester: &'a Requester,
    ) -> impl Iterator<Item = &'a BudgetRule> + 'a {
        self.budgets
            .iter()
            .filter(move |rule| rule.applies(entry.name(), model, requester))
    }

    /// Whether nothing is limited: the routing loop then skips every check.
    pub(crate) fn is_empty(&self) -> bool {
        self.budgets.is_empty() && self.rates.iter().all(Option::is_none)
    }
}

/// What one attempt holds while it runs: room in each budget that applies, its place in its
/// provider's rate limits. Settled when the attempt ends; dropped unsettled (the request was
/// cancelled), the budget reservations are released and the rest stays counted.
#[derive(Debug)]
pub(crate) struct Held {
    store: Arc<dyn StateStore>,
    reservations: Vec<Reservation>,
    request: Option<Taken>,
    tokens: Option<Taken>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Held {
    fn new(store: Arc<dyn StateStore>) -> Self {
        Self {
            store,
            reservations: Vec::new(),
            request: None,
            tokens: None,
            _permit: None,
        }
    }

    /// The attempt ended, having cost `spent_usd` (0 when unknown or not billed) and used
    /// `usage` (`None`: no tokens are counted).
    pub(crate) fn settle(mut self, spent_usd: f64, usage: Option<&Usage>) {
        for reservation in std::mem::take(&mut self.reservations) {
            self.store.settle(reservation, spent_usd);
        }
        if let Some(tokens) = self.tokens.take() {
            let used = usage.map_or(0, |usage| usage.total_tokens);
            self.store.correct(tokens, used);
        }
    }

    /// The attempt was never sent: nothing it took counts.
    fn abandon(mut self) {
        if let Some(request) = self.request.take() {
            self.store.correct(request, 0);
        }
        if let Some(tokens) = self.tokens.take() {
            self.store.correct(tokens, 0);
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        for reservation in std::mem::take(&mut self.reservations) {
            self.store.settle(reservation, 0.0);
        }
    }
}

impl Inner {
    /// Makes room for an attempt at entry `index` with key `key`, as [`hold`](Self::hold)
    /// does; a key at its own rate limit hands over to another key with room. Returns the key
    /// that got room (or the one asked for).
    pub(crate) async fn hold_any_key(
        &self,
        index: usize,
        key: usize,
        model: Option<&str>,
        facts: PromptFacts,
        requester: &Requester,
        deadline: Option<Deadline>,
    ) -> (usize, Result<Option<Held>, Refusal>) {
        let mut held = self
            .hold(index, key, model, facts, requester, deadline)
            .await;
        let keys = self.registry.entries()[index].keys().len();
        for other in (0..keys).filter(|other| *other != key) {
            let Err(Refusal::Skip { error, .. }) = &held else {
                break;
            };
            if error.kind() != ErrorKind::RateLimited {
                break;
            }
            held = self
                .hold(index, other, model, facts, requester, deadline)
                .await;
            if held.is_ok() {
                return (other, held);
            }
        }
        (key, held)
    }

    /// Makes room for an attempt at entry `index` (asking `model`): its provider's rate limit,
    /// waiting within the deadline when it says so, then every budget that applies. What it
    /// took is returned to settle when the attempt ends.
    async fn hold(
        &self,
        index: usize,
        key: usize,
        model: Option<&str>,
        facts: PromptFacts,
        requester: &Requester,
        deadline: Option<Deadline>,
    ) -> Result<Option<Held>, Refusal> {
        let limits = &self.limits;
        let entry = &self.registry.entries()[index];
        let mut held = Held::new(limits.store.clone());
        if let Some(rule) = &limits.rates[index] {
            self.take_rate(rule, key, entry, facts, deadline, &mut held)
                .await?;
        }
        let mut applying = limits.applying(entry, model, requester).peekable();
        if applying.peek().is_none() {
            return Ok(Some(held));
        }
        let price = self.price(index, [model, None]);
        let now = SystemTime::now();
        for rule in applying {
            let wanted = rule.wanted(price.as_ref(), facts);
            match limits
                .store
                .reserve(&rule.key, rule.window, now, rule.limit, wanted)
                .await
            {
                Ok(reservation) => held.reservations.push(reservation),
                Err(Refused::Unavailable(outage)) => {
                    held.abandon();
                    return Err(Refusal::Fail(
                        unavailable(&outage).with_provider(entry.name()),
                    ));
                }
                Err(Refused::Full(exhausted)) => {
                    let error = rule
                        .exceeded(exhausted, wanted, now)
                        .with_provider(entry.name());
                    held.abandon();
                    return Err(match rule.on_exceeded {
                        OnExceeded::Fail => Refusal::Fail(error),
                        OnExceeded::Fallback => Refusal::Skip {
                            reason: error.message().to_owned(),
                            error,
                        },
                    });
                }
            }
        }
        Ok(Some(held))
    }

    /// Why the budgets would refuse an attempt at entry `index` asking `model` now, without
    /// reserving anything (for explanations): each budget that applies and has less left than
    /// the request may cost, and what that does.
    pub(crate) async fn budget_shortfalls(
        &self,
        index: usize,
        model: Option<&str>,
        facts: PromptFacts,
        requester: &Requester,
    ) -> Vec<String> {
        let entry = &self.registry.entries()[index];
        let price = self.price(index, [model, None]);
        let now = SystemTime::now();
        let mut shortfalls = Vec::new();
        for rule in self.limits.applying(entry, model, requester) {
            let wanted = rule.wanted(price.as_ref(), facts);
            let used = match self.limits.store.used(&rule.key, rule.window, now).await {
                Ok(used) => used,
                Err(outage) => {
                    shortfalls.push(format!(
                        "budget `{}` cannot be checked: {outage}; the request would fail",
                        rule.label
                    ));
                    continue;
                }
            };
            let remaining = rule.limit - used;
            if remaining < wanted {
                let effect = match rule.on_exceeded {
                    OnExceeded::Fail => "the request would fail",
                    OnExceeded::Fallback => "this target would be skipped",
                };
                shortfalls.push(format!(
                    "{}: {effect}",
                    rule.short_of(remaining.max(0.0), wanted)
                ));
            }
        }
        shortfalls
    }

    /// Takes the attempt's place in its provider's rate limit.
    async fn take_rate(
        &self,
        rule: &RateRule,
        key: usize,
        entry: &ProviderEntry,
        facts: PromptFacts,
        deadline: Option<Deadline>,
        held: &mut Held,
    ) -> Result<(), Refusal> {
        let wait = rule.limit.on_limit == OnLimit::Wait;
        let limited = |what: String| {
            let error = Error::new(
                ErrorKind::RateLimited,
                format!("{what} (its `rate_limit`; not sent)"),
            )
            .with_provider(entry.name());
            Refusal::Skip {
                reason: error.message().to_owned(),
                error,
            }
        };
        if let Some(semaphore) = rule.concurrency.get(key).and_then(Option::as_ref) {
            let max = rule.limit.max_concurrent.unwrap_or_default();
            let permit = match semaphore.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) if wait => {
                    let acquire = semaphore.clone().acquire_owned();
                    let permit = match deadline {
                        Some(deadline) => tokio::time::timeout(deadline.left(), acquire).await.ok(),
                        None => Some(acquire.await),
                    };
                    match permit.and_then(Result::ok) {
                        Some(permit) => permit,
                        None => {
                            return Err(limited(format!(
                                "{max} requests already in flight until the deadline"
                            )));
                        }
                    }
                }
                Err(_) => return Err(limited(format!("{max} requests already in flight"))),
            };
            held._permit = Some(permit);
        }
        let store = &self.limits.store;
        let tokens = facts.estimated_tokens + u64::from(facts.max_tokens.unwrap_or(0));
        let takes = [
            (rule.limit.rpm, &rule.requests_keys, 1, "requests"),
            (rule.limit.tpm, &rule.tokens_keys, tokens, "tokens"),
        ];
        for (limit, counts, amount, what) in takes {
            let (Some(limit), Some(counted_as)) = (limit, counts.get(key)) else {
                continue;
            };
            let taken = loop {
                match store
                    .acquire(counted_as, MINUTE, Instant::now(), limit, amount)
                    .await
                {
                    Ok(taken) => break taken,
                    Err(Refused::Unavailable(outage)) => {
                        let taken_so_far = std::mem::replace(held, Held::new(store.clone()));
                        taken_so_far.abandon();
                        return Err(Refusal::Fail(
                            unavailable(&outage).with_provider(entry.name()),
                        ));
                    }
                    Err(Refused::Full(room_in)) => {
                        let in_time = deadline.is_none_or(|deadline| room_in < deadline.left());
                        if !wait || !in_time {
                            let taken_so_far = std::mem::replace(held, Held::new(store.clone()));
                            taken_so_far.abandon();
                            return Err(limited(format!(
                                "{limit} {what} per minute reached; room again in {:.1} s",
                                room_in.as_secs_f64()
                            )));
                        }
                        tokio::time::sleep(room_in).await;
                    }
                }
            };
            if what == "requests" {
                held.request = Some(taken);
            } else {
                held.tokens = Some(taken);
            }
        }
        Ok(())
    }
}

/// The error of a request whose limits could not be checked: it is refused (never let through
/// uncounted), and no other provider would fare better as they share the store.
fn unavailable(outage: &StoreUnavailable) -> Error {
    Error::new(
        ErrorKind::StoreUnavailable,
        format!("{outage}; the request was not sent (budgets and rate limits cannot be checked)"),
    )
}

/// How long a key is left aside after the provider refused it, when the provider did not say
/// (`Retry-After`): a rate limit passes within a minute; a rejected key or an exhausted quota
/// does not pass by itself.
const RATE_LIMITED_KEY_REST: Duration = Duration::from_secs(60);
const REJECTED_KEY_REST: Duration = Duration::from_secs(60 * 60);

/// The keys of providers with several, left aside after the provider refused them (a 429 or
/// 401 on one key tries the next before falling back), by (entry index, key).
#[derive(Debug, Default)]
pub(crate) struct KeyRests {
    until: Mutex<BTreeMap<(usize, usize), Instant>>,
}

impl KeyRests {
    fn until(&self) -> MutexGuard<'_, BTreeMap<(usize, usize), Instant>> {
        self.until.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The key to use for the next try at entry `index` with `count` keys: the first not
    /// resting, else the one whose rest ends first.
    pub(crate) fn pick(&self, index: usize, count: usize) -> usize {
        if count < 2 {
            return 0;
        }
        let now = Instant::now();
        let until = self.until();
        let rest = |key: usize| until.get(&(index, key)).filter(|until| **until > now);
        (0..count)
            .find(|key| rest(*key).is_none())
            .or_else(|| (0..count).min_by_key(|key| rest(*key).copied()))
            .unwrap_or(0)
    }

    /// Sets key `key` of entry `index` aside after `error` when the error is about the key (a
    /// rate limit, a rejected key, an exhausted quota); whether it was.
    pub(crate) fn rest(&self, index: usize, key: usize, error: &Error) -> bool {
        let length = match error.kind() {
            ErrorKind::RateLimited => error.retry_after().unwrap_or(RATE_LIMITED_KEY_REST),
            ErrorKind::Authentication | ErrorKind::QuotaExhausted => REJECTED_KEY_REST,
            _ => return false,
        };
        self.until().insert((index, key), Instant::now() + length);
        true
    }
}

/// `seconds` since the Unix epoch as an RFC 3339 UTC time.
fn utc(seconds: u64) -> String {
    let days = i64::try_from(seconds / 86_400).unwrap_or(i64::MAX);
    let (year, month, day) = civil_from_days(days);
    let of_day = seconds % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        of_day / 3_600,
        of_day % 3_600 / 60,
        of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_bad_ones_say_what_is_expected() {
        assert_eq!(Scope::parse("global"), Ok(Scope::Global));
        assert_eq!(
            Scope::parse("provider:openai"),
            Ok(Scope::Provider("openai".into()))
        );
        assert_eq!(
            Scope::parse("model:gpt-4o:mini"),
            Ok(Scope::Model("gpt-4o:mini".into()))
        );
        assert_eq!(Scope::parse("tag:team-a"), Ok(Scope::Tag("team-a".into())));
        assert_eq!(Scope::parse("key:alice"), Ok(Scope::Key("alice".into())));
        for bad in ["", "provider:", "team:a", "globals"] {
            let error = Scope::parse(bad).unwrap_err();
            assert!(error.contains("expected `global`"), "{bad}: {error}");
        }
    }

    #[test]
    fn reset_times_are_rfc3339_utc() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(1_796_083_200 + 3_723), "2026-12-01T01:02:03Z");
    }
}
